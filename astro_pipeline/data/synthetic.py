"""Synthetic demo problems: seeded multi-step problems with exact answers and step-by-step solutions.

Two worlds (``SyntheticSettings.world``; DESIGN §3 "What the demo world needs"):

* ``guess_check`` (default): find the unknown x of a chain of operations from its result::

      Find x from 1 to 9.            Try x = 5.
      A: Multiply x by 3.            A: 5 * 3 = 15
      B: Add 4 to it.                B: 15 + 4 = 19
      The result is 19.              The result is 19 and we got 19, so the answer is \\boxed{5}

  The reference solution always tries the right x, so a model must invert the chain to guess it
  (hard for a small model), while each step after the guess is forward arithmetic (easy). A wrong
  guess is an honest attempt whose failure shows in its own text: its check line restates the
  problem's result beside the value reached ("The result is 19 and we got 13, so \\boxed{3} is not
  the answer"), so the contradiction sits in one line, and a retry with another x can succeed: the
  generation-verification gap that search traces teach a model to use. Every x of the range keeps
  every intermediate value within
  [min_value, max_value], so a wrong guess computes numbers of the same kind as a right one.
* ``chain`` (the first demo): "Start with 7." plus labelled operations, solved forward
  ("A: 7 * 3 = 21", ..., "The answer is \\boxed{N}"). Its errors are arithmetic slips that nothing
  in the text reveals; kept as a recipe option for comparison.

Common choices:

* Every operation sits on its own labelled line of the problem and the same label opens the
  matching solution step: a ~1M-parameter model learns this mapping within minutes.
* Steps are separated by a blank line ("\\n\\n", the project's step delimiter); the last step holds
  the only ``\\boxed{...}``.
* Three disjoint splits: ``test`` (evaluation), ``train`` (search, RL prompts: the problems the
  later stages learn from) and ``pretrain`` (the demo base model's corpus). A problem's canonical key
  is (start or x-range, operations, answer); ``test`` is drawn first, ``train`` skips test's keys and
  ``pretrain`` skips both, so search and evaluation only see problems pretraining never saw.
* Deterministic under the seed: each split draws from ``random.Random("<seed>:<split>")`` (string
  seeds are hashed with SHA-512 by Python, independent of PYTHONHASHSEED). A split never changes
  when a split drawn after it changes size (test, then train, then pretrain).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, replace
from functools import lru_cache

from astro_pipeline.config import setting

SPLITS = ("pretrain", "train", "test")
MAX_MISSES = 5000  # consecutive draws of known problems after which a split gives up
WORLDS = ("guess_check", "chain")
OPERATIONS = ("add", "subtract", "multiply", "divide")

SYMBOL = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
_VERB = {"add": "Add {}.", "subtract": "Subtract {}.", "multiply": "Multiply by {}.", "divide": "Divide by {}."}
# guess_check wording: the first operation names x, later ones "it"
_GUESS_VERB = {"add": "Add {n} to {v}.", "subtract": "Subtract {n} from {v}.", "multiply": "Multiply {v} by {n}.",
               "divide": "Divide {v} by {n}."}


@dataclass(frozen=True)
class SyntheticSettings:
    world: str = setting(
        "guess_check",
        "guess_check: find x from the result of a chain of operations (guess, compute, check); chain: compute a "
        "chain of operations forward from a start number (the first demo world)",
    )
    seed: int = setting(0, "seed of the problem generator (each split is drawn from its own stream)")
    n_pretrain: int = setting(4000, "problems in the demo base model's pretraining corpus (never searched nor evaluated)")
    n_train: int = setting(512, "number of training problems (synthetic_train: search and RL prompts); never in pretraining")
    n_test: int = setting(200, "number of test problems (synthetic_test); never in train or pretraining")
    min_steps: int = setting(2, "fewest operations per problem")
    max_steps: int = setting(3, "most operations per problem")
    start_min: int = setting(1, "smallest start number (chain) or smallest possible x (guess_check)")
    start_max: int = setting(9, "largest start number (chain) or largest possible x (guess_check)")
    operand_min: int = setting(1, "smallest operand of add/subtract")
    operand_max: int = setting(9, "largest operand of add/subtract")
    multipliers: tuple[int, ...] = setting((2, 3), "allowed multipliers (and divisors, if 'divide' is on)")
    min_value: int = setting(0, "smallest allowed intermediate or final result (guess_check: for every x of the range)")
    max_value: int = setting(50, "largest allowed intermediate or final result (guess_check: for every x of the range)")
    operations: tuple[str, ...] = setting(
        ("add", "subtract", "multiply"), "operations to draw from: add, subtract, multiply, divide (exact only)"
    )

    def __post_init__(self) -> None:
        if self.world not in WORLDS:
            raise ValueError(f"synthetic.world must be one of {WORLDS}, got {self.world!r}")
        bad = sorted(set(self.operations) - set(OPERATIONS))
        if bad or not self.operations:
            raise ValueError(f"synthetic.operations: unknown {bad}; choose from {OPERATIONS}")
        if not 1 <= self.min_steps <= self.max_steps <= len(string.ascii_uppercase):
            raise ValueError("synthetic: need 1 <= min_steps <= max_steps <= 26")
        if self.start_min > self.start_max or self.operand_min > self.operand_max:
            raise ValueError("synthetic: empty start or operand range")
        if not self.min_value <= self.start_min or self.start_max > self.max_value:
            raise ValueError("synthetic: the start range must lie within [min_value, max_value]")
        if {"multiply", "divide"} & set(self.operations) and not self.multipliers:
            raise ValueError("synthetic: multiply/divide need at least one multiplier")
        if min(self.n_pretrain, self.n_train, self.n_test) < 0:
            raise ValueError("synthetic: split sizes must be >= 0")


Operation = tuple[str, int]  # (operation name, operand)
Key = tuple[int, tuple[Operation, ...]]  # (start or x, operations)


def apply(op: str, value: int, operand: int) -> int | None:
    """``value`` after operation ``op`` with ``operand``; None for an inexact division."""
    if op == "add":
        return value + operand
    if op == "subtract":
        return value - operand
    if op == "multiply":
        return value * operand
    if op == "divide":
        return value // operand if value % operand == 0 else None
    raise ValueError(op)


def _operands(op: str, settings: SyntheticSettings) -> range | tuple[int, ...]:
    if op in ("multiply", "divide"):
        return settings.multipliers
    return range(settings.operand_min, settings.operand_max + 1)


def _valid_ops(values: list[int], settings: SyntheticSettings) -> dict[str, list[int]]:
    """Operation -> operands that keep every value of ``values`` exact and within range."""
    choices: dict[str, list[int]] = {}
    for op in settings.operations:
        valid = []
        for x in _operands(op, settings):
            results = [apply(op, v, x) for v in values]
            if all(r is not None and settings.min_value <= r <= settings.max_value for r in results):
                valid.append(x)
        if valid:
            choices[op] = valid
    return choices


def _draw(rng: random.Random, settings: SyntheticSettings) -> Key:
    """One problem: a start (chain) or x (guess_check) and a chain of operations within range.

    Each step picks an operation uniformly among those that have at least one valid operand (so a
    value near the top of the range is not forced into "multiply" retries), then a valid operand.
    In guess_check an operation is valid only if it is valid for every x of the range.
    """
    start = rng.randint(settings.start_min, settings.start_max)
    n_steps = rng.randint(settings.min_steps, settings.max_steps)
    if settings.world == "guess_check":
        values = list(range(settings.start_min, settings.start_max + 1))
    else:
        values = [start]
    ops = []
    for _ in range(n_steps):
        choices = _valid_ops(values, settings)
        if not choices:
            raise ValueError(f"synthetic: no valid operation from values {values[:3]}...; widen the ranges")
        op = rng.choice(sorted(choices))
        operand = rng.choice(choices[op])
        ops.append((op, operand))
        values = [apply(op, v, operand) for v in values]  # type: ignore[misc]
    return start, tuple(ops)


def compute(start: int, ops: tuple[Operation, ...]) -> list[int]:
    """The values after each operation, starting from ``start``."""
    out, value = [], start
    for op, operand in ops:
        value = apply(op, value, operand)  # type: ignore[assignment]
        out.append(value)
    return out


def _chain_text(start: int, ops: tuple[Operation, ...]) -> dict[str, str]:
    lines = [f"Start with {start}."]
    steps = []
    value = start
    for label, (op, operand), result in zip(string.ascii_uppercase, ops, compute(start, ops)):
        lines.append(f"{label}: {_VERB[op].format(operand)}")
        steps.append(f"{label}: {value} {SYMBOL[op]} {operand} = {result}")
        value = result
    steps[-1] += f". The answer is \\boxed{{{value}}}"
    return {"problem": "\n".join(lines), "solution": "\n\n".join(steps), "answer": str(value)}


def check_line(value: int, result: int, x: int) -> str:
    """The last line of an attempt at ``x``: the problem's result, the value reached, the verdict.

    The result comes first, in the words of the problem's own last line ("The result is 19"), so
    that copying it from the prompt is a phrase match; the value reached is the previous line's
    last number; the verdict then compares two numbers side by side. Measured: with the earlier
    "13 matches the result 19" wording the demo base model misstated the result in 76% of its wrong
    search terminals and called 2 of 2,179 misses a miss; with this one it still wrote the value it
    reached as the result in 3,018 of 3,195 (README "Measured"): the copy is not learned yet.
    """
    if value == result:
        return f"The result is {result} and we got {value}, so the answer is \\boxed{{{x}}}"
    return f"The result is {result} and we got {value}, so \\boxed{{{x}}} is not the answer"


def attempt_steps(x: int, ops: tuple[Operation, ...], result: int | None = None) -> list[str]:
    """The guess_check steps of trying ``x``: the guess, one line per operation, the check line
    against ``result`` (default: the value reached, i.e. a right guess)."""
    steps = [f"Try x = {x}."]
    value = x
    for label, (op, operand), out in zip(string.ascii_uppercase, ops, compute(x, ops)):
        steps.append(f"{label}: {value} {SYMBOL[op]} {operand} = {out}")
        value = out
    steps.append(check_line(value, value if result is None else result, x))
    return steps


def _operation_lines(ops: tuple[Operation, ...]) -> list[str]:
    """The problem's labelled operation lines in guess_check wording ("A: Multiply x by 3.")."""
    return [f"{label}: {_GUESS_VERB[op].format(n=operand, v='x' if i == 0 else 'it')}"
            for i, (label, (op, operand)) in enumerate(zip(string.ascii_uppercase, ops))]


def _guess_check_text(x: int, ops: tuple[Operation, ...], settings: SyntheticSettings) -> dict[str, str]:
    lines = [f"Find x from {settings.start_min} to {settings.start_max}."]
    lines += _operation_lines(ops)
    result = compute(x, ops)[-1]
    lines.append(f"The result is {result}.")
    return {"problem": "\n".join(lines), "solution": "\n\n".join(attempt_steps(x, ops)), "answer": str(x)}


def tabulate_text(xs: tuple[int, ...], ops: tuple[Operation, ...]) -> dict[str, str]:
    """A forward document in guess_check wording: the chain's result for each given x, one after another.

    "Find the results for x = 4 and x = 7." plus the operation lines, solved "Try x = 4." + one line
    per operation + "For x = 4 the result is 16.", then the same for 7. No target, no check, no
    wrong answer: it teaches applying the problem's operations again after a finished computation,
    which every later attempt of a search trace does (see ``train.demo_corpus``). The blocks open
    exactly like an attempt ("Try x = 4."): with "Take x = 4." the base model re-applied the
    operations after a finished block of a tabulation but not after a finished attempt (4 of 200).
    """
    names = ", ".join(f"x = {x}" for x in xs[:-1]) + f" and x = {xs[-1]}" if len(xs) > 1 else f"x = {xs[0]}"
    lines = [f"Find the results for {names}."]
    lines += _operation_lines(ops)
    steps: list[str] = []
    for x in xs:
        attempt = attempt_steps(x, ops)
        steps += [*attempt[:-1], f"For x = {x} the result is {compute(x, ops)[-1]}."]
    return {"problem": "\n".join(lines), "solution": "\n\n".join(steps)}


def check_text(x: int, x_true: int, ops: tuple[Operation, ...], settings: SyntheticSettings) -> dict[str, str]:
    """A verification document: is the given x the solution? ("Check x = 4." + the problem's lines).

    Solved as an attempt at that x whose check line gives the verdict (``check_line``). Checking a
    given candidate is verification, not search: there is no guess of the model's own, no doubt, no
    retry. Without these documents the demo model never saw a value differ from the result in a
    check line and wrote the value twice, so a failed attempt never showed its failure (see
    ``train.demo_corpus``).
    """
    result = compute(x_true, ops)[-1]
    lines = [f"Check x = {x}."]
    lines += _operation_lines(ops)
    lines.append(f"The result is {result}.")
    return {"problem": "\n".join(lines), "solution": "\n\n".join(attempt_steps(x, ops, result))}


def miss_text(x: int, x_true: int, ops: tuple[Operation, ...], settings: SyntheticSettings) -> dict[str, str]:
    """A failed attempt at the problem itself: its own prompt ("Find x from 1 to 9." ...), one wrong
    guess, its arithmetic and a check line that says it missed, and nothing after it.

    A base model that saw only right guesses under this prompt learned that an attempt at it always
    meets the result, and wrote the value it reached as the result (3,018 of 3,195 wrong search
    terminals): the "Check x = N." documents taught the honest check line under another prompt
    only. A miss that ends there is not search (no doubt, no retry, no second attempt); it is what a
    real base model has read plenty of: a worked attempt that does not come out.
    """
    problem = _guess_check_text(x_true, ops, settings)["problem"]
    return {"problem": problem, "solution": "\n\n".join(attempt_steps(x, ops, compute(x_true, ops)[-1]))}


def held_out_ops(settings: SyntheticSettings) -> frozenset[tuple[Operation, ...]]:
    """The operation chains of the train and test problems: no extra document may use one, since a
    tabulation or a check of the same chain gives away which x meets which result."""
    gc = replace(settings, world="guess_check")
    return frozenset(ops for split in ("test", "train") for _, ops in split_keys(split, gc))


def _extra_draws(n: int, settings: SyntheticSettings, stream: str) -> list[Key]:
    """``n`` (x, operations) draws of the guess_check world from their own seeded ``stream``,
    skipping every chain of the train and test problems."""
    gc = replace(settings, world="guess_check")
    rng = random.Random(f"{settings.seed}:{stream}")
    held_out = held_out_ops(settings)
    draws: list[Key] = []
    misses = 0
    while len(draws) < n:
        x, ops = _draw(rng, gc)
        if ops in held_out:
            misses += 1
            if misses > MAX_MISSES:
                raise ValueError(f"synthetic: the {stream} documents found no chain outside train and test")
            continue
        misses = 0
        draws.append((x, ops))
    return draws


def check_rows(n: int, settings: SyntheticSettings, right_share: float = 0.25) -> list[dict]:
    """``n`` verification documents (a share ``right_share`` of them with the right x), own stream."""
    rng = random.Random(f"{settings.seed}:check:x")
    rows = []
    values = range(settings.start_min, settings.start_max + 1)
    for i, (x_true, ops) in enumerate(_extra_draws(n, settings, "check")):
        x = x_true if rng.random() < right_share else rng.choice([v for v in values if v != x_true])
        rows.append({"id": f"synthetic_check_{i:05d}", **check_text(x, x_true, ops, settings)})
    return rows


def miss_rows(n: int, settings: SyntheticSettings) -> list[dict]:
    """``n`` failed attempts at problems in their own prompt (``miss_text``), own stream."""
    rng = random.Random(f"{settings.seed}:miss:x")
    values = range(settings.start_min, settings.start_max + 1)
    return [{"id": f"synthetic_miss_{i:05d}",
             **miss_text(rng.choice([v for v in values if v != x_true]), x_true, ops, settings)}
            for i, (x_true, ops) in enumerate(_extra_draws(n, settings, "miss"))]


def tabulate_rows(n: int, settings: SyntheticSettings, max_values: int = 3) -> list[dict]:
    """``n`` forward documents (1 to ``max_values`` distinct x each) from their own seeded stream."""
    rng = random.Random(f"{settings.seed}:tabulate:x")
    rows = []
    for i, (_, ops) in enumerate(_extra_draws(n, settings, "tabulate")):
        xs = tuple(rng.sample(range(settings.start_min, settings.start_max + 1),
                              rng.randint(1, min(max_values, settings.start_max - settings.start_min + 1))))
        rows.append({"id": f"synthetic_tabulate_{i:05d}", **tabulate_text(xs, ops)})
    return rows


def render(start: int, ops: tuple[Operation, ...], settings: SyntheticSettings | None = None) -> dict[str, str]:
    """Problem text, reference solution (steps joined by a blank line) and answer of one problem."""
    settings = settings or SyntheticSettings()
    if settings.world == "guess_check":
        return _guess_check_text(start, ops, settings)
    return _chain_text(start, ops)


@lru_cache(maxsize=64)
def _keys(split: str, settings: SyntheticSettings, exclude: frozenset = frozenset()) -> tuple[Key, ...]:
    n = {"pretrain": settings.n_pretrain, "train": settings.n_train, "test": settings.n_test}[split]
    rng = random.Random(f"{settings.seed}:{split}")
    seen: set[Key] = set()
    keys: list[Key] = []
    attempts, misses, max_attempts = 0, 0, 50 * n + 1000
    while len(keys) < n:
        attempts += 1
        if attempts > max_attempts or misses > MAX_MISSES:  # the space is (nearly) used up
            raise ValueError(
                f"synthetic: could only draw {len(keys)} distinct {split} problems of {n}; "
                "widen the ranges or lower the counts"
            )
        key = _draw(rng, settings)
        if key in seen or key in exclude:
            misses += 1
            continue
        misses = 0
        seen.add(key)
        keys.append(key)
    return tuple(keys)  # cached: immutable


def split_keys(split: str, settings: SyntheticSettings) -> tuple[Key, ...]:
    """The problem keys of ``split``; test first, train avoids test, pretrain avoids both."""
    if split not in SPLITS:
        raise ValueError(f"synthetic split must be one of {SPLITS}, got {split!r}")
    test = _keys("test", settings)
    if split == "test":
        return test
    train = _keys("train", settings, exclude=frozenset(test))
    if split == "train":
        return train
    return _keys("pretrain", settings, exclude=frozenset(test) | frozenset(train))


def generate_rows(split: str, settings: SyntheticSettings) -> list[dict]:
    """The ``split`` problems (pretrain, train or test) as rows with keys id, problem, answer, solution."""
    rows = []
    for i, (start, ops) in enumerate(split_keys(split, settings)):
        r = render(start, ops, settings)
        rows.append({"id": f"synthetic_{split}_{i:05d}", "problem": r["problem"], "answer": r["answer"], "solution": r["solution"]})
    return rows
