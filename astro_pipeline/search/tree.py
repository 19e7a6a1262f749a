"""A search tree as rows of the warehouse table ``tree_nodes``, and back.

Design: one row per node, exactly the columns of ``TREE_NODES_SCHEMA`` (procedure cloning reads
them), rows in node-id order (= creation order, root 0). Non-terminals have ``correct`` null and
``answer`` null; ``reward`` is null for a node never evaluated (the root). The root's step is "",
its prior 1.0, its step log-prob and token count 0. ``frame_to_tree`` rebuilds ``Node`` objects
(without the world's state, which is not stored: a node's steps are the ``action`` values along
``node.path()``), so ``tree_to_frame(frame_to_tree(df))`` reproduces ``df``.
"""

from __future__ import annotations

import polars as pl

from astro_pipeline.search.mcts import Node

TREE_NODES_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(),
    "problem_id": pl.String(),
    "node_id": pl.Int64(),
    "parent_id": pl.Int64(),
    "depth": pl.Int64(),
    "step": pl.String(),
    "is_terminal": pl.Boolean(),
    "answer": pl.String(),
    "correct": pl.Boolean(),
    "visits": pl.Int64(),
    "q_value": pl.Float64(),
    "prior": pl.Float64(),
    "reward": pl.Float64(),
    "n_rollouts": pl.Int64(),
    "rollout_correct": pl.Int64(),
    "step_logprob": pl.Float64(),
    "step_tokens": pl.Int64(),
}


def _row(dataset: str, problem_id: str, node: Node) -> dict:
    p = node.payload
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
        "step_logprob": float(p.get("step_logprob", 0.0)),
        "step_tokens": int(p.get("step_tokens", 0)),
    }


def tree_to_frame(dataset: str, problem_id: str, root: Node) -> pl.DataFrame:
    """The ``tree_nodes`` rows of one tree, ordered by node_id."""
    rows = sorted((_row(dataset, problem_id, n) for n in root.walk()), key=lambda r: r["node_id"])
    return pl.DataFrame(rows, schema=TREE_NODES_SCHEMA, orient="row")


def empty_tree_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=TREE_NODES_SCHEMA)


def frame_to_tree(df: pl.DataFrame, dataset: str | None = None, problem_id: str | None = None) -> Node:
    """The root ``Node`` of the one tree in ``df`` (or of the tree selected by dataset/problem_id)."""
    if dataset is not None:
        df = df.filter(pl.col("dataset") == dataset)
    if problem_id is not None:
        df = df.filter(pl.col("problem_id") == problem_id)
    keys = df.select("dataset", "problem_id").unique()
    if keys.height != 1:
        raise ValueError(f"frame_to_tree needs exactly one tree, found {keys.height}; pass dataset/problem_id")
    nodes: dict[int, Node] = {}
    for r in df.sort("node_id").iter_rows(named=True):
        parent = nodes.get(r["parent_id"]) if r["parent_id"] is not None else None
        if r["parent_id"] is not None and parent is None:
            raise ValueError(f"node {r['node_id']}: parent {r['parent_id']} missing or created later")
        node = Node(
            node_id=r["node_id"],
            parent=parent,
            depth=r["depth"],
            action=r["step"] if parent is not None else None,
            prior=r["prior"],
            logprob=r["step_logprob"],
            visits=r["visits"],
            q=r["q_value"],
            reward=r["reward"],
            terminal=r["is_terminal"],
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
    return roots[0]


def frame_to_trees(df: pl.DataFrame) -> dict[tuple[str, str], Node]:
    """Every tree in ``df``, keyed by (dataset, problem_id)."""
    return {
        (ds, pid): frame_to_tree(part)
        for (ds, pid), part in df.group_by("dataset", "problem_id", maintain_order=True)
    }
