"""One search tree made ready for display: its nodes in drawing order and one trace laid over it.

Design choices:

* Input is the generic warehouse rows: tree_nodes (node_id, parent_id, depth, step, is_terminal,
  answer, correct, visits, q_value, prior; ``origin`` and ``n_copies`` are shown when the search
  wrote them) and one traces row (node_ids in visiting order, backtrack_from / backtrack_targets).
* Nodes are drawn depth first, children in creation order (node_id), so the same tree always gives
  the same picture.
* A picture stays legible only up to a few dozen rows: past ``max_nodes`` the view keeps the trace's
  nodes and their ancestors, then the most visited of the rest, breadth first, and says how many
  children of each kept node were left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from astro_pipeline.cloning.tree import ROOT, Node

MAX_NODES = 40


@dataclass(frozen=True)
class ViewNode(Node):
    """A stored tree node (``cloning.tree.Node``) with what the picture shows besides."""

    prior: float
    origin: str | None = None  # root / expansion / rollout, when the search recorded it
    n_copies: int | None = None  # identical samples merged into this node, when recorded
    trace_pos: int | None = None  # 1-based position in the trace's visiting order; None: not on it
    hidden_children: int = 0  # children left out of the view

    def numbers(self) -> list[str]:
        """What the search knows of the node, shortest first: N visits, Q, P prior (not for the root),
        then the optional origin, merged copies and hidden children."""
        parts = [f"N={self.visits}", f"Q={self.q_value:.2f}"]
        if self.parent_id is not None:
            parts.append(f"P={self.prior:.2f}")
        if self.origin and self.origin not in ("expansion", "root"):
            parts.append(self.origin)
        if self.n_copies and self.n_copies > 1:
            parts.append(f"x{self.n_copies}")
        if self.hidden_children:
            parts.append(f"+{self.hidden_children} hidden")
        return parts

    @property
    def kind(self) -> str:
        """correct / wrong (terminals; a terminal without a verdict counts as wrong) or step."""
        if not self.is_terminal:
            return "step"
        return "correct" if self.correct else "wrong"


@dataclass(frozen=True)
class Backtrack:
    index: int  # 1-based, in the trace's order
    source: int  # the wrong terminal left
    target: int  # the node returned to (the root: a restart)


@dataclass(frozen=True)
class TreeView:
    dataset: str
    problem_id: str
    nodes: tuple[ViewNode, ...]
    n_total: int  # nodes in the whole tree
    trace_id: str | None = None
    trace_kind: str | None = None
    backtracks: tuple[Backtrack, ...] = ()
    correct_node_id: int | None = None
    notes: dict = field(default_factory=dict)  # root-row facts the search recorded (iterations, stop reason)

    def children(self, node_id: int) -> list[ViewNode]:
        return [n for n in self.nodes if n.parent_id == node_id]


def _kept_ids(rows: dict[int, dict], children: dict[int, list[int]], must: set[int], max_nodes: int) -> set[int]:
    if len(rows) <= max_nodes:
        return set(rows)
    kept = {ROOT} | set(must)
    for node in list(kept):  # ancestors, so every kept node hangs from the root
        while node in rows and rows[node]["parent_id"] is not None:
            node = rows[node]["parent_id"]
            kept.add(node)
    frontier = [ROOT]
    while frontier and len(kept) < max_nodes:
        nxt = []
        for node in frontier:
            for child in sorted(children.get(node, []), key=lambda c: (-(rows[c]["visits"] or 0), c)):
                if len(kept) >= max_nodes:
                    break
                kept.add(child)
                nxt.append(child)
        frontier = nxt
    return kept


def build_view(nodes: pl.DataFrame, trace: dict | None = None, max_nodes: int = MAX_NODES) -> TreeView:
    """The view of one tree (the tree_nodes rows of one problem) with ``trace`` (a traces row) over it."""
    if nodes.height == 0:
        raise ValueError("no tree nodes to show")
    rows = {r["node_id"]: r for r in nodes.sort("node_id").iter_rows(named=True)}
    if ROOT not in rows:
        raise ValueError(f"tree of {nodes['problem_id'][0]} has no root (node_id {ROOT})")
    children: dict[int, list[int]] = {}
    for r in rows.values():
        if r["parent_id"] is not None:
            children.setdefault(r["parent_id"], []).append(r["node_id"])
    order = [int(i) for i in (trace or {}).get("node_ids") or []]
    position = {node: i + 1 for i, node in enumerate(order)}
    kept = _kept_ids(rows, children, set(order), max_nodes)

    drawn: list[ViewNode] = []
    stack = [ROOT]
    while stack:
        node_id = stack.pop()
        r = rows[node_id]
        kids = children.get(node_id, [])
        drawn.append(ViewNode(
            node_id=node_id, parent_id=r["parent_id"], depth=r["depth"], step=r["step"] or "",
            is_terminal=bool(r["is_terminal"]), answer=r["answer"], correct=r["correct"],
            visits=r["visits"] or 0, q_value=r["q_value"] or 0.0, prior=r["prior"] or 0.0,
            origin=r.get("origin"), n_copies=r.get("n_copies"), trace_pos=position.get(node_id),
            hidden_children=sum(1 for k in kids if k not in kept)))
        stack.extend(sorted((k for k in kids if k in kept), reverse=True))

    targets = [int(t) for t in (trace or {}).get("backtrack_targets") or []]
    sources = [int(s) for s in (trace or {}).get("backtrack_from") or []]
    root = rows[ROOT]
    notes = {k: root[k] for k in ("tree_iterations", "stop_reason", "tree_merged") if root.get(k) is not None}
    return TreeView(
        dataset=root.get("dataset") or "", problem_id=root.get("problem_id") or "", nodes=tuple(drawn),
        n_total=len(rows), trace_id=(trace or {}).get("trace_id"), trace_kind=(trace or {}).get("kind"),
        backtracks=tuple(Backtrack(i + 1, s, t) for i, (s, t) in enumerate(zip(sources, targets))),
        correct_node_id=(trace or {}).get("correct_node_id"), notes=notes)


def best_trace(traces: pl.DataFrame, problem_id: str) -> dict | None:
    """The problem's trace with the most backtracks (ASTRO kinds before the Direct arm), or None."""
    mine = traces.filter(pl.col("problem_id") == problem_id) if traces.height else traces
    if mine.height == 0:
        return None
    ranked = mine.with_columns((pl.col("kind") == "direct_arm").alias("_arm")).sort(
        "_arm", "n_backtracks", "trace_id", descending=[False, True, False])
    return ranked.drop("_arm").row(0, named=True)


def pick_trees(tree_nodes: pl.DataFrame, traces: pl.DataFrame | None, n: int = 3,
               max_nodes: int = MAX_NODES) -> list[tuple[str, dict | None]]:
    """Up to ``n`` (problem_id, trace) pairs worth a picture: trees whose trace backtracks (two
    backtracks first), that fit the picture whole, smallest first; then trees with a correct
    terminal. Deterministic."""
    if tree_nodes.height == 0:
        return []
    traces = traces if traces is not None else pl.DataFrame()
    sizes = tree_nodes.group_by("problem_id").agg(
        pl.len().alias("n_nodes"),
        (pl.col("is_terminal") & pl.col("correct").fill_null(False)).any().alias("has_correct"))
    if traces.height:
        best = (traces.filter(pl.col("kind") != "direct_arm").group_by("problem_id")
                .agg(pl.col("n_backtracks").max().alias("backtracks")))
        sizes = sizes.join(best, on="problem_id", how="left")
    else:
        sizes = sizes.with_columns(pl.lit(None, pl.Int64).alias("backtracks"))
    ranked = sizes.with_columns(
        (-pl.col("backtracks").fill_null(-1).clip(upper_bound=2)).alias("_bt"),
        (pl.col("n_nodes") > max_nodes).alias("_big"),
        (~pl.col("has_correct")).alias("_nocorrect"),
    ).sort("_bt", "_nocorrect", "_big", "n_nodes", "problem_id")
    return [(pid, best_trace(traces, pid) if traces.height else None) for pid in ranked["problem_id"].head(n)]
