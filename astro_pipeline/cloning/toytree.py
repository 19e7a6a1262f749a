"""Hand-built search trees as ``tree_nodes`` frames (for tests, notebooks and asset tests).

A tree is described by the list of the root's children; each node is

* a string: a leaf step;
* a tuple ``(step, children)`` or ``(step, children, stats)``;
* a dict with ``step`` and optional ``children``, ``q``, ``visits``, ``correct``, ``answer``,
  ``is_terminal``.

Node ids are assigned in depth-first pre-order (root = 0, then the children left to right). A step
containing ``\\boxed`` is terminal; its answer is the last box's content and it is correct when that
answer equals ``reference`` (after ``spelling_key`` normalization). Unless given, ``visits`` is the
number of terminal leaves below a node (so MCTS-like: busier subtrees have more visits) and
``q_value`` the fraction of those that are correct.

Example::

    tree_frame([("A: 2 + 3 = 5", ["B: 5 * 2 = \\\\boxed{10}", "B: 5 * 3 = \\\\boxed{15}"])], reference="10")
"""

from __future__ import annotations

from typing import Any

import polars as pl

from astro_pipeline.cloning.tree import spelling_key
from astro_pipeline.verify.extract import last_boxed_content
from astro_pipeline.warehouse.tables import TREE_NODES


def _parse(spec: Any) -> tuple[str, list[Any], dict[str, Any]]:
    if isinstance(spec, str):
        return spec, [], {}
    if isinstance(spec, dict):
        extra = {k: v for k, v in spec.items() if k not in ("step", "children")}
        return spec["step"], list(spec.get("children", [])), extra
    if isinstance(spec, tuple) and 1 <= len(spec) <= 3:
        step = spec[0]
        children = list(spec[1]) if len(spec) > 1 else []
        extra = dict(spec[2]) if len(spec) > 2 else {}
        return step, children, extra
    raise TypeError(f"cannot read tree node spec {spec!r}")


def tree_frame(
    children: list[Any],
    *,
    reference: str,
    dataset: str = "toy",
    problem_id: str = "p1",
) -> pl.DataFrame:
    """A tree_nodes frame with exactly the contract's columns, from a nested description."""
    rows: list[dict[str, Any]] = []
    ref_key = spelling_key(reference)

    def add(step: str, kids: list[Any], extra: dict[str, Any], parent: int | None, depth: int) -> tuple[int, int]:
        """Append the node and its subtree; returns (terminal leaves, correct terminal leaves) below."""
        nid = len(rows)
        terminal = bool(extra.get("is_terminal", "\\boxed" in step))
        answer = extra.get("answer", last_boxed_content(step) if terminal else None)
        correct = extra.get("correct", (spelling_key(answer) == ref_key) if terminal and answer is not None else
                            (False if terminal else None))
        row = {
            "dataset": dataset, "problem_id": problem_id, "node_id": nid, "parent_id": parent, "depth": depth,
            "step": step, "is_terminal": terminal, "answer": answer, "correct": correct,
            "visits": 0, "q_value": 0.0, "prior": 1.0, "reward": None, "n_rollouts": 0, "rollout_correct": 0,
            "step_logprob": -1.0, "step_tokens": len(step.split()),
        }
        rows.append(row)
        if terminal and not kids:
            leaves, good = 1, int(bool(correct))
        else:
            leaves, good = 0, 0
        for kid in kids:
            s, k, e = _parse(kid)
            a, b = add(s, k, e, nid, depth + 1)
            leaves, good = leaves + a, good + b
        row["visits"] = int(extra.get("visits", max(leaves, 1)))
        row["q_value"] = float(extra.get("q", good / leaves if leaves else 0.0))
        if not terminal:
            row["reward"] = row["q_value"]
        return leaves, good

    add("", list(children), {"is_terminal": False}, None, 0)
    return pl.DataFrame(rows, schema=TREE_NODES.schema)


def example_tree(dataset: str = "toy", problem_id: str = "p1", reference: str = "8") -> pl.DataFrame:
    """A small demo-style tree (reference "8"): one correct terminal and four wrong ones, two of which
    share the answer 9::

        0 root
        ├─ 1 A: 2 + 3 = 5
        │  ├─ 2 B: 5 * 2 = 10
        │  │  ├─ 3 C: 10 - 1 = \\boxed{9}     wrong
        │  │  └─ 4 C: 10 - 2 = \\boxed{8}     correct (n*)
        │  └─ 5 B: 5 * 3 = 15
        │     └─ 6 C: 15 - 1 = \\boxed{14}    wrong
        └─ 7 A: 2 + 4 = 6
           ├─ 8 B: 6 * 2 = \\boxed{12}        wrong
           └─ 9 B: 6 * 3 = \\boxed{9}         wrong (same answer as 3)
    """
    b = "\\boxed"
    spec = [
        ("A: 2 + 3 = 5", [
            ("B: 5 * 2 = 10", [f"C: 10 - 1 = {b}{{9}}", f"C: 10 - 2 = {b}{{8}}"]),
            ("B: 5 * 3 = 15", [f"C: 15 - 1 = {b}{{14}}"]),
        ]),
        ("A: 2 + 4 = 6", [f"B: 6 * 2 = {b}{{12}}", f"B: 6 * 3 = {b}{{9}}"]),
    ]
    return tree_frame(spec, reference=reference, dataset=dataset, problem_id=problem_id)


def random_tree(seed: int, *, problem_id: str = "p1", dataset: str = "toy", width: int = 3, depth: int = 4,
                p_correct: float = 0.3) -> tuple[pl.DataFrame, str]:
    """A seeded random demo-style tree and its reference answer (for property tests).

    Labelled arithmetic steps ("B: 3 * 4 = 12"); a branch ends early with probability 0.2 per level
    and always at ``depth``; a terminal's answer is the reference with probability ``p_correct``,
    else a random number in 0-20 (so wrong answers repeat, as in real trees).
    """
    import random

    rng = random.Random(seed)
    reference = str(rng.randint(0, 20))

    def node(level: int) -> Any:
        label = chr(ord("A") + level - 1)
        if level == depth or (level > 1 and rng.random() < 0.2):
            answer = reference if rng.random() < p_correct else str(rng.randint(0, 20))
            return f"{label}: {rng.randint(1, 9)} + {rng.randint(1, 9)} = \\boxed{{{answer}}}"
        kids = [node(level + 1) for _ in range(rng.randint(1, width))]
        return (f"{label}: {rng.randint(1, 9)} * {rng.randint(1, 9)} = {rng.randint(1, 81)}", kids)

    children = [node(1) for _ in range(rng.randint(1, width))]
    return tree_frame(children, reference=reference, dataset=dataset, problem_id=problem_id), reference
