"""Read a guess_check solution back against its problem: is a wrong answer an honest attempt?

Search is useful for learning only if its wrong branches are the model's own attempts ("Try x = 4."
followed by correct arithmetic that misses the result), not garbage ("B: _2 * 2 =  Add: 2") that SFT
would then teach (DESIGN §3). ``judge_attempt`` labels one root-to-terminal path:

* ``honest``: a guess inside the problem's range, one line per operation with the problem's label,
  operator and operand applied to the previous value with correct arithmetic, and a check line that
  restates the problem's result beside the last value with the right verdict ("The result is 19 and
  we got 19, so the answer is \\boxed{x}" or "..., so \\boxed{x} is not the answer");
* ``slip``: well-formed lines with an arithmetic error, a wrong operand/operator, or a check line
  that misstates a number or its verdict (calling a miss a match is the lie search exposes);
* ``malformed``: anything else (missing or extra lines, text that is not the world's format).

Parsing is by regular expressions only; model text is never evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from astro_pipeline.data.synthetic import SYMBOL, apply

_RANGE_RE = re.compile(r"^Find x from (\d+) to (\d+)\.$")
_RESULT_RE = re.compile(r"^The result is (\d+)\.$")
_OP_RE = re.compile(r"^([A-Z]): (?:(Add) (\d+) to (?:x|it)|(Subtract) (\d+) from (?:x|it)|(Multiply) (?:x|it) by (\d+)"
                    r"|(Divide) (?:x|it) by (\d+))\.$")
_GUESS_RE = re.compile(r"^Try x = (\d+)\.$")
_STEP_RE = re.compile(r"^([A-Z]): (\d+) ([-+*/]) (\d+) = (-?\d+)$")
# the check line (synthetic.check_line): result, value, verdict
_CHECK_RE = re.compile(r"^The result is (-?\d+) and we got (-?\d+), so the answer is \\boxed\{(-?\d+)\}$")
_MISMATCH_RE = re.compile(r"^The result is (-?\d+) and we got (-?\d+), so \\boxed\{(-?\d+)\} is not the answer$")
_SYMBOL = {"Add": "+", "Subtract": "-", "Multiply": "*", "Divide": "/"}
_OPERATION = {symbol: op for op, symbol in SYMBOL.items()}
LABELS = ("honest", "slip", "malformed")


@dataclass(frozen=True)
class GuessProblem:
    low: int
    high: int
    ops: tuple[tuple[str, str, int], ...]  # (label, symbol, operand)
    result: int


def parse_problem(text: str) -> GuessProblem | None:
    """The guess_check problem in ``text``, or None when it is not one."""
    lines = text.strip().split("\n")
    if len(lines) < 3 or not (m := _RANGE_RE.match(lines[0])) or not (r := _RESULT_RE.match(lines[-1])):
        return None
    ops = []
    for line in lines[1:-1]:
        op = _OP_RE.match(line)
        if op is None:
            return None
        groups = [g for g in op.groups()[1:] if g is not None]
        ops.append((op.group(1), _SYMBOL[groups[0]], int(groups[1])))
    return GuessProblem(int(m.group(1)), int(m.group(2)), tuple(ops), int(r.group(1)))


def _apply(symbol: str, a: int, b: int) -> int | None:
    """The world's own arithmetic (``synthetic.apply``) by the symbol a solution line writes."""
    return apply(_OPERATION[symbol], a, b) if b or symbol != "/" else None


def judge_attempt(problem: GuessProblem, steps: list[str]) -> str:
    """``honest``, ``slip`` or ``malformed`` for one attempt's steps (see the module docstring)."""
    if len(steps) != len(problem.ops) + 2 or not (g := _GUESS_RE.match(steps[0].strip())):
        return "malformed"
    value = int(g.group(1))
    label = "honest" if problem.low <= value <= problem.high else "slip"
    for step, (name, symbol, operand) in zip(steps[1:-1], problem.ops):
        m = _STEP_RE.match(step.strip())
        if m is None or m.group(1) != name:
            return "malformed"
        a, sym, b, got = int(m.group(2)), m.group(3), int(m.group(4)), int(m.group(5))
        if a != value or sym != symbol or b != operand or _apply(sym, a, b) != got:
            label = "slip"
        value = got
    check = _CHECK_RE.match(steps[-1].strip())
    mismatch = _MISMATCH_RE.match(steps[-1].strip())
    verdict = check or mismatch
    if verdict is None:
        return "malformed"
    said_match = check is not None
    if (int(verdict.group(2)) != value or int(verdict.group(1)) != problem.result
            or int(verdict.group(3)) != int(g.group(1)) or said_match != (value == problem.result)):
        label = "slip"
    return label


def wrong_terminal_labels(tree_nodes, problems) -> dict[str, int]:
    """Counts of ``LABELS`` over the incorrect terminals with an answer of guess_check trees.

    ``tree_nodes``/``problems``: polars frames (the warehouse tables); problems that are not
    guess_check problems are left out (an empty dict for another world).
    """
    texts = dict(zip(problems["problem_id"].cast(str).to_list(), problems["problem"].to_list()))
    counts = {label: 0 for label in LABELS}
    found = False
    for (pid,), part in tree_nodes.group_by("problem_id", maintain_order=True):
        problem = parse_problem(texts.get(str(pid), ""))
        if problem is None:
            continue
        found = True
        rows = {r["node_id"]: r for r in part.select("node_id", "parent_id", "step", "is_terminal", "correct", "answer")
                .iter_rows(named=True)}
        for r in rows.values():
            if not (r["is_terminal"] and r["correct"] is False and r["answer"] is not None):
                continue
            steps, node = [], r
            while node["parent_id"] is not None:
                steps.append(node["step"])
                node = rows[node["parent_id"]]
            counts[judge_attempt(problem, steps[::-1])] += 1
    return counts if found else {}
