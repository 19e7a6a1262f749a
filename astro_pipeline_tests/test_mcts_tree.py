"""tree_nodes frames: the round trip through SearchNode objects, and sql/search_stats.sql over them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from astro_pipeline.search.runner import search_problems
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.search.scripted import ScriptedBackend
from astro_pipeline.search.settings import SearchSettings
from astro_pipeline.search.tree_table import TREE_NODES_SCHEMA, frame_to_tree, frame_to_trees, tree_to_frame

SQL = Path(__file__).resolve().parent.parent / "sql" / "search_stats.sql"


def script(problem: str, prefix: str, i: int) -> str:
    """Samples 0 and 1 box an answer at once, later ones after two plain steps; "good" problems box
    7 (the gold) or 8, "bad" ones 8 or 9."""
    depth = prefix.count("\n\n")
    answer = {"good": ["7", "8"], "bad": ["8", "9"]}[problem.split()[0]][i % 2]
    plain = 0 if i < 2 else 2
    steps = [f"x{d}.{i}" for d in range(depth, plain)] + [f"=> \\boxed{{{answer}}}"]
    return "\n\n".join(steps)


def _frames() -> pl.DataFrame:
    problems = pl.DataFrame({
        "dataset": ["d1", "d1", "d2"],
        "problem_id": ["a", "b", "a"],
        "problem": ["good one", "bad one", "good two"],
        "answer": ["7", "7", "7"],
    })
    frames: list[pl.DataFrame] = []
    search_problems(problems.filter(pl.col("dataset") == "d1"), ScriptedBackend(script), FakeVerifier(),
                    SearchSettings(k=3, m=2, iterations=4), on_tree=lambda pid, df: frames.append(df), progress=False)
    search_problems(problems.filter(pl.col("dataset") == "d2"), ScriptedBackend(script), FakeVerifier(),
                    SearchSettings(k=2, m=2, iterations=3), on_tree=lambda pid, df: frames.append(df), progress=False)
    return pl.concat(frames)


def test_round_trip_and_schema():
    df = _frames()
    assert df.schema == pl.Schema(TREE_NODES_SCHEMA)
    for (ds, pid), tree in frame_to_trees(df).items():
        root = tree.root
        part = df.filter((pl.col("dataset") == ds) & (pl.col("problem_id") == pid))
        assert tree_to_frame(ds, pid, tree).equals(part)
        assert tree.stop_reason in ("iterations", "exhausted", "cloning_ready") and tree.iterations >= 1
        assert part["node_id"].to_list() == list(range(part.height))
        leaf = max(root.walk(), key=lambda n: n.depth)
        assert [n.depth for n in leaf.path()] == list(range(leaf.depth + 1)) and leaf.path()[0] is root
        assert all(c.parent is n for n in root.walk() for c in n.children)
    with pytest.raises(ValueError):
        frame_to_tree(df)  # three trees
    root = frame_to_tree(df, dataset="d1", problem_id="b").root
    assert sum(1 for _ in root.walk()) == df.filter((pl.col("dataset") == "d1") & (pl.col("problem_id") == "b")).height


def test_search_stats_sql_matches_python():
    tree_nodes = _frames()  # noqa: F841  (duckdb reads the frame by this name)
    got = duckdb.sql(SQL.read_text()).pl()
    assert got.columns == ["dataset", "n_trees", "mean_nodes", "share_with_correct", "share_with_both", "mean_terminal_depth"]
    df = tree_nodes
    for row in got.iter_rows(named=True):
        part = df.filter(pl.col("dataset") == row["dataset"])
        trees = part.partition_by("problem_id")
        terms = [t.filter(pl.col("is_terminal")) for t in trees]
        with_correct = [bool(t["correct"].any()) for t in terms]
        with_both = [bool(t["correct"].any()) and not bool(t["correct"].all()) for t in terms]
        assert row["n_trees"] == len(trees)
        assert row["mean_nodes"] == pytest.approx(sum(t.height for t in trees) / len(trees))
        assert row["share_with_correct"] == pytest.approx(sum(with_correct) / len(trees))
        assert row["share_with_both"] == pytest.approx(sum(with_both) / len(trees))
        assert row["mean_terminal_depth"] == pytest.approx(part.filter(pl.col("is_terminal"))["depth"].mean())
    d1 = got.filter(pl.col("dataset") == "d1").row(0, named=True)
    assert d1["n_trees"] == 2 and d1["share_with_correct"] == 0.5  # "bad" never boxes the gold 7
    assert d1["share_with_both"] == 0.5  # "good" boxes 7 and 8
