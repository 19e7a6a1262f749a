"""One search tree read from the warehouse table ``tree_nodes`` (the MCTS's output contract).

Design: a ``Tree`` is an immutable index over the rows of one problem (node id -> row, parent,
children, root path). It validates what procedure cloning relies on: exactly one root (node 0, no
parent), every parent present, node ids unique. It then splits the terminals into the paper's sets:

* Psi (``correct_terminals``): terminal leaves with ``correct`` true;
* Lambda (``incorrect_terminals``): terminal leaves with ``correct`` false AND a non-null answer.

A terminal without an answer (a depth-limited dead end) is not in Lambda: Algorithm 1 needs the
wrong answer to tell incorrect terminals apart ("pairwise different answers") and the verbalized
doubt refers to it. A terminal that has children (the MCTS should never expand one) is in neither
set, so a backtrack always leaves a leaf; both cases are counted in ``anomalies``.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from astro_pipeline.warehouse.tables import require_columns

# the columns of the tree_nodes contract (warehouse.tables.TREE_NODES) that procedure cloning reads
# (the rest is carried but not needed)
REQUIRED_COLUMNS = ("dataset", "problem_id", "node_id", "parent_id", "step", "is_terminal", "answer", "correct",
                    "visits", "q_value")
ROOT = 0


def spelling_key(answer: str | None) -> str | None:
    """The string under which two answers are spelled the same, for Lambda's distinctness.

    Whitespace, surrounding ``$`` and a trailing period are ignored ("1/2", "$1/2$", " 1 / 2 ." agree).
    Callers with a real equivalence (math-verify) can pass their own key to ``linearize_tree``.
    Not the majority vote's key (``evaluate.metrics.answer_key``, which normalizes LaTeX and numbers
    too): the trees and traces already written were split with this one.
    """
    if answer is None:
        return None
    s = "".join(answer.split()).strip("$")
    return s[:-1] if s.endswith(".") and len(s) > 1 else s


def check_columns(nodes: pl.DataFrame) -> None:
    require_columns(nodes, REQUIRED_COLUMNS, "tree_nodes frame")


@dataclass(frozen=True)
class Node:
    node_id: int
    parent_id: int | None
    step: str
    is_terminal: bool
    answer: str | None
    correct: bool | None
    visits: int
    q_value: float
    depth: int


@dataclass
class Tree:
    dataset: str
    problem_id: str
    nodes: dict[int, Node]
    children: dict[int, list[int]] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, nodes: pl.DataFrame) -> Tree:
        """Index the rows of ONE problem's tree."""
        check_columns(nodes)
        if nodes.height == 0:
            raise ValueError("empty tree")
        keys = nodes.select("dataset", "problem_id").unique()
        if keys.height != 1:
            raise ValueError(f"a Tree holds one problem, got {keys.height} (dataset, problem_id) pairs")
        return cls.from_rows(_rows(nodes))

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Tree:
        """Index row dicts (tree_nodes columns) of one problem, in any order."""
        by_id: dict[int, Node] = {}
        for r in sorted(rows, key=lambda r: r["node_id"]):
            nid = int(r["node_id"])
            if nid in by_id:
                raise ValueError(f"{r['problem_id']}: duplicate node_id {nid}")
            by_id[nid] = Node(
                node_id=nid,
                parent_id=None if r["parent_id"] is None else int(r["parent_id"]),
                step=r["step"] or "",
                is_terminal=bool(r["is_terminal"]),
                answer=r["answer"],
                correct=r["correct"],
                visits=int(r["visits"] or 0),
                q_value=float(r["q_value"] if r["q_value"] is not None else 0.0),
                depth=int(r["depth"]) if r.get("depth") is not None else -1,
            )
        tree = cls(dataset=str(rows[0]["dataset"]), problem_id=str(rows[0]["problem_id"]), nodes=by_id)
        tree._index()
        return tree

    def _index(self) -> None:
        roots = [n.node_id for n in self.nodes.values() if n.parent_id is None]
        if roots != [ROOT]:
            raise ValueError(f"{self.problem_id}: expected exactly one root with node_id {ROOT}, got {roots}")
        self.children = {nid: [] for nid in self.nodes}
        for n in self.nodes.values():
            if n.parent_id is None:
                continue
            if n.parent_id not in self.nodes:
                raise ValueError(f"{self.problem_id}: node {n.node_id} has unknown parent {n.parent_id}")
            self.children[n.parent_id].append(n.node_id)
        # a cycle would make path() loop; every node must reach the root within len(nodes) hops
        for nid in self.nodes:
            self.path(nid)
        self.anomalies = {
            "nonleaf_terminals": sum(1 for n in self.nodes.values() if n.is_terminal and self.children[n.node_id]),
            "unanswered_terminals": sum(
                1 for n in self.nodes.values() if n.is_terminal and not n.correct and n.answer is None
            ),
        }

    # structure ---------------------------------------------------------------------------------
    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def path(self, node_id: int) -> list[int]:
        """Node ids from the root to ``node_id`` (both included)."""
        out = [node_id]
        cur = self.nodes[node_id].parent_id
        while cur is not None:
            out.append(cur)
            if len(out) > len(self.nodes):
                raise ValueError(f"{self.problem_id}: parent cycle through node {node_id}")
            cur = self.nodes[cur].parent_id
        return out[::-1]

    def is_ancestor(self, ancestor: int, node_id: int) -> bool:
        """True when ``ancestor`` is a proper ancestor of ``node_id``."""
        return ancestor != node_id and ancestor in self.path(node_id)

    def is_leaf(self, node_id: int) -> bool:
        return not self.children[node_id]

    # Psi and Lambda ----------------------------------------------------------------------------
    def correct_terminals(self) -> list[int]:
        """Psi: correct terminal leaves, sorted by node id."""
        return [n.node_id for n in self.nodes.values() if n.is_terminal and n.correct is True and self.is_leaf(n.node_id)]

    def incorrect_terminals(self) -> list[int]:
        """Lambda: incorrect terminal leaves that state an answer, sorted by node id."""
        return [
            n.node_id
            for n in self.nodes.values()
            if n.is_terminal and n.correct is False and n.answer is not None and self.is_leaf(n.node_id)
        ]

    def solution_text(self, node_id: int) -> str:
        """The steps from the root to ``node_id`` joined by the step delimiter."""
        return "\n\n".join(self.nodes[i].step for i in self.path(node_id) if i != ROOT)


def _rows(nodes: pl.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in (*REQUIRED_COLUMNS, "depth") if c in nodes.columns]
    return nodes.select(cols).to_dicts()


def iter_trees(trees: pl.DataFrame) -> Iterator[Tree]:
    """One ``Tree`` per (dataset, problem_id) of a tree_nodes frame, in sorted key order."""
    check_columns(trees)
    if trees.height == 0:
        return
    ordered = trees.with_columns(pl.col("dataset").cast(pl.String), pl.col("problem_id").cast(pl.String))
    ordered = ordered.sort("dataset", "problem_id", "node_id")
    for _, group in groupby(_rows(ordered), key=lambda r: (r["dataset"], r["problem_id"])):
        yield Tree.from_rows(list(group))


def tree_index(trees: pl.DataFrame) -> dict[tuple[str, str], Tree]:
    return {(t.dataset, t.problem_id): t for t in iter_trees(trees)}


def problem_index(problems: pl.DataFrame | None) -> dict[tuple[str | None, str], dict[str, Any]]:
    """(dataset, problem_id) -> problem row (problem, answer, ...).

    The problems frame may lack ``dataset`` (one dataset at a time); its rows are then keyed
    ``(None, problem_id)`` and ``lookup_problem`` falls back to them.
    """
    out: dict[tuple[str | None, str], dict[str, Any]] = {}
    if problems is None:
        return out
    has_ds = "dataset" in problems.columns
    for r in problems.iter_rows(named=True):
        out[(str(r["dataset"]) if has_ds else None, str(r["problem_id"]))] = r
    return out


def lookup_problem(index: dict[tuple[str | None, str], dict[str, Any]], dataset: str, problem_id: str) -> dict[str, Any] | None:
    return index.get((dataset, problem_id)) or index.get((None, problem_id))
