"""A search tree as rows of the warehouse table ``tree_nodes``, and back.

Design: one row per node, exactly the columns of ``TREE_NODES_SCHEMA`` (procedure cloning reads
them), rows in node-id order (= creation order, root 0). Non-terminals have ``correct`` null and
``answer`` null; ``reward`` is null for a node never evaluated (the root, rollout steps). The root's
step is "", its prior 1.0, its step log-prob and token count 0; a rollout step has no log-prob or
token count of its own (null: the backend reports them per rollout). ``origin`` says how a node
came to be (root, expansion, rollout), ``n_copies`` how many identical samples were merged into it,
and the root row alone carries the tree's facts: ``tree_iterations``, ``stop_reason`` and
``tree_merged`` (samples folded into identical siblings or rollout steps). ``frame_to_tree`` rebuilds a ``SearchTree`` of ``SearchNode`` objects
(without the world's state, which is not stored: a node's steps are the ``action`` values along
``node.path()``), so ``tree_to_frame(frame_to_tree(df))`` reproduces ``df``.
"""

from __future__ import annotations

import polars as pl

from astro_pipeline.search.mcts import SearchNode, SearchTree
from astro_pipeline.warehouse.tables import TREE_NODES

TREE_NODES_SCHEMA = TREE_NODES.schema  # the table's contract (warehouse.tables)


def _row(dataset: str, problem_id: str, node: SearchNode, tree: SearchTree | None) -> dict:
    p = node.payload
    root = node.parent is None
    return {
        "dataset": dataset,
        "problem_id": problem_id,
        "node_id": node.node_id,
        "parent_id": node.parent.node_id if node.parent is not None else None,
        "depth": node.depth,
        "step": node.action if node.action is not None else "",
        "is_terminal": node.terminal,
        "answer": p.get("answer"),
        "correct": bool(p.get("correct")) if node.terminal and p.get("correct") is not None else None,
        "visits": node.visits,
        "q_value": float(node.q),
        "prior": float(node.prior),
        "reward": node.reward,
        "n_rollouts": int(p.get("n_rollouts", 0)),
        "rollout_correct": int(p.get("rollout_correct", 0)),
        "step_logprob": None if p.get("step_logprob") is None and not root else float(p.get("step_logprob", 0.0)),
        "step_tokens": None if p.get("step_tokens") is None and not root else int(p.get("step_tokens", 0)),
        "origin": node.origin,
        "expanded": node.expanded,
        "n_copies": node.copies,
        "tree_iterations": tree.iterations if root and tree is not None else None,
        "stop_reason": tree.stop_reason if root and tree is not None else None,
        "tree_merged": tree.merged if root and tree is not None else None,
    }


def tree_to_frame(dataset: str, problem_id: str, root: SearchNode | SearchTree) -> pl.DataFrame:
    """The ``tree_nodes`` rows of one tree (a ``SearchTree``, or its root ``SearchNode`` without tree facts), by node_id."""
    tree = root if isinstance(root, SearchTree) else None
    start = root.root if isinstance(root, SearchTree) else root
    rows = sorted((_row(dataset, problem_id, n, tree) for n in start.walk()), key=lambda r: r["node_id"])
    return pl.DataFrame(rows, schema=TREE_NODES_SCHEMA, orient="row")


def empty_tree_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=TREE_NODES_SCHEMA)


def frame_to_tree(df: pl.DataFrame, dataset: str | None = None, problem_id: str | None = None) -> SearchTree:
    """The one tree in ``df`` (or the tree selected by dataset/problem_id), with its tree facts."""
    if dataset is not None:
        df = df.filter(pl.col("dataset") == dataset)
    if problem_id is not None:
        df = df.filter(pl.col("problem_id") == problem_id)
    keys = df.select("dataset", "problem_id").unique()
    if keys.height != 1:
        raise ValueError(f"frame_to_tree needs exactly one tree, found {keys.height}; pass dataset/problem_id")
    nodes: dict[int, SearchNode] = {}
    for r in df.sort("node_id").iter_rows(named=True):
        parent = nodes.get(r["parent_id"]) if r["parent_id"] is not None else None
        if r["parent_id"] is not None and parent is None:
            raise ValueError(f"node {r['node_id']}: parent {r['parent_id']} missing or created later")
        node = SearchNode(
            node_id=r["node_id"],
            parent=parent,
            depth=r["depth"],
            action=r["step"] if parent is not None else None,
            prior=r["prior"],
            logprob=r["step_logprob"] or 0.0,
            visits=r["visits"],
            q=r["q_value"],
            reward=r["reward"],
            terminal=r["is_terminal"],
            expanded=bool(r.get("expanded")),
            origin=r.get("origin") or ("root" if parent is None else "expansion"),
            copies=r.get("n_copies") or 1,
            payload={
                "answer": r["answer"],
                "correct": r["correct"],
                "n_rollouts": r["n_rollouts"],
                "rollout_correct": r["rollout_correct"],
                "step_logprob": r["step_logprob"],
                "step_tokens": r["step_tokens"],
            },
        )
        if parent is not None:
            parent.children.append(node)
        nodes[node.node_id] = node
    roots = [n for n in nodes.values() if n.parent is None]
    if len(roots) != 1:
        raise ValueError(f"expected one root, found {len(roots)}")
    first = df.filter(pl.col("parent_id").is_null()).row(0, named=True)
    return SearchTree(root=roots[0], key=(keys.row(0)), nodes=[nodes[i] for i in sorted(nodes)],
                iterations=first.get("tree_iterations") or 0, merged=first.get("tree_merged") or 0,
                stop_reason=first.get("stop_reason"))


def frame_to_trees(df: pl.DataFrame) -> dict[tuple[str, str], SearchTree]:
    """Every tree in ``df``, keyed by (dataset, problem_id)."""
    return {
        (ds, pid): frame_to_tree(part)
        for (ds, pid), part in df.group_by("dataset", "problem_id", maintain_order=True)
    }
