"""The corpus check and sql/backtrack_stats.sql on a corpus built from hand-made trees."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import polars as pl
import pytest

from astro_pipeline.cloning.check import check_corpus
from astro_pipeline.cloning.detect import count_reflections
from astro_pipeline.cloning.linearize import linearize_trees
from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.toytree import example_tree, random_tree
from astro_pipeline.cloning.verbalize import verbalize_traces
from astro_pipeline.verify.extract import last_boxed_content

SQL = Path(__file__).resolve().parent.parent / "sql" / "backtrack_stats.sql"
SETTINGS = replace(CloningSettings(), n_search=6)


def exact(gold: str, pred: str) -> bool:
    return gold.strip() == pred.strip()


@pytest.fixture(scope="module")
def corpus():
    trees = pl.concat([example_tree(problem_id=f"p{i}") for i in range(3)]
                      + [example_tree(dataset="other", problem_id="p0")])
    problems = pl.DataFrame({
        "dataset": ["toy", "toy", "toy", "other"], "problem_id": ["p0", "p1", "p2", "p0"],
        "problem": ["q0", "q1", "q2", "q3"], "answer": ["8", "8", "8", "8"],
    })
    res = linearize_trees(trees, SETTINGS)
    cot = verbalize_traces(res.traces, trees, problems, SETTINGS)
    return trees, problems, res.traces, cot


def test_clean_corpus_passes(corpus):
    trees, problems, traces, cot = corpus
    assert check_corpus(cot, traces, trees, problems, exact, settings=SETTINGS) == []


def test_wrong_final_answer_is_caught(corpus):
    trees, problems, traces, cot = corpus
    i = cot["kind"].to_list().index("search")
    bad = cot.with_columns(
        pl.when(pl.int_range(pl.len()) == i)
        .then(pl.col("completion") + "\n\nActually it is \\boxed{9}.")
        .otherwise(pl.col("completion"))
        .alias("completion")
    )
    found = check_corpus(bad, traces, trees, problems, exact)
    assert len(found) == 1 and "'9'" in found[0] and cot["trace_id"][i] in found[0]


def test_missing_box_and_verifier_crash_are_reported(corpus):
    trees, problems, traces, cot = corpus
    bad = cot.head(1).with_columns(pl.lit("no answer here").alias("completion"))
    assert any("no final" in f for f in check_corpus(bad, traces, trees, problems, exact))

    def boom(gold, pred):
        raise RuntimeError("parser died")

    found = check_corpus(cot.head(1), traces, trees, problems, boom)
    assert any("verifier raised RuntimeError" in f for f in found)


def _corrupt_trace(traces: pl.DataFrame, column: str, value) -> tuple[pl.DataFrame, str]:
    i = next(i for i, n in enumerate(traces["n_backtracks"]) if n == 2)
    rows = traces.to_dicts()
    rows[i][column] = value(rows[i])
    return pl.DataFrame(rows, schema=traces.schema), rows[i]["trace_id"]


def test_backtrack_to_a_non_ancestor_is_caught(corpus):
    trees, problems, traces, cot = corpus
    # node 6 (under node 5) is not an ancestor of any terminal in the other branches of the example tree
    bad, tid = _corrupt_trace(traces, "backtrack_targets", lambda r: [6, *r["backtrack_targets"][1:]])
    found = check_corpus(cot, bad, trees, problems, exact)
    assert any(tid in f and "not an ancestor" in f for f in found)


def test_repeated_wrong_answers_are_caught(corpus):
    trees, problems, traces, cot = corpus
    bad, tid = _corrupt_trace(traces, "wrong_answers", lambda r: [r["wrong_answers"][0]] * 2)
    found = check_corpus(cot, bad, trees, problems, exact)
    assert any(tid in f and "repeated wrong answers" in f for f in found)


def test_trace_not_ending_correct_and_count_mismatch_are_caught(corpus):
    trees, problems, traces, cot = corpus
    bad, tid = _corrupt_trace(traces, "node_ids", lambda r: r["node_ids"][:-1])
    found = check_corpus(cot, bad, trees, problems, exact)
    assert any(tid in f and "not at a correct terminal" in f for f in found)
    wrong_count = cot.with_columns(pl.col("n_backtracks") + 1)
    found = check_corpus(wrong_count, traces, trees, problems, exact, settings=SETTINGS)
    assert len([f for f in found if "detector finds" in f]) == cot.height


def test_backtrack_stats_sql(corpus):
    *_, cot = corpus
    cot_examples = cot  # noqa: F841  (the name the SQL reads)
    stats = duckdb.sql(SQL.read_text()).pl()
    expected = (
        cot.group_by("dataset", "kind")
        .agg(
            n_examples=pl.len(),
            bt0=(pl.col("n_backtracks") == 0).sum(),
            bt1=(pl.col("n_backtracks") == 1).sum(),
            bt2=(pl.col("n_backtracks") == 2).sum(),
            mean_reflections=pl.col("n_reflections").mean(),
            tokens_mean=pl.col("n_tokens").mean(),
            tokens_max=pl.col("n_tokens").max(),
            tokens_p50=pl.col("n_tokens").median(),
        )
        .sort("dataset", "kind")
    )
    assert stats.height == expected.height == 6  # 2 datasets x (direct, search, direct_arm)
    assert stats["n_examples"].to_list() == expected["n_examples"].to_list()
    assert stats["examples_bt_0"].to_list() == expected["bt0"].to_list()
    assert stats["examples_bt_1"].to_list() == expected["bt1"].to_list()
    assert stats["examples_bt_2"].to_list() == expected["bt2"].to_list()
    assert stats["mean_reflections"].to_list() == pytest.approx(expected["mean_reflections"].to_list())
    assert stats["tokens_mean"].to_list() == pytest.approx(expected["tokens_mean"].to_list())
    assert stats["tokens_p50"].to_list() == pytest.approx(expected["tokens_p50"].to_list())
    assert stats["tokens_max"].to_list() == expected["tokens_max"].to_list()
    search = stats.filter((pl.col("dataset") == "toy") & (pl.col("kind") == "search")).row(0, named=True)
    hist = {h["n_backtracks"]: h["n_examples"] for h in search["backtrack_histogram"]}
    assert sum(hist.values()) == search["n_examples"] and set(hist) <= {1, 2} and hist
    assert search["tokens_p90"] >= search["tokens_p50"]


@pytest.mark.parametrize("answer_boxes", ["keep", "final_only"])
def test_random_trees_satisfy_every_invariant(answer_boxes):
    frames, refs = [], {}
    for i in range(40):
        df, ref = random_tree(i, problem_id=f"r{i}")
        frames.append(df)
        refs[f"r{i}"] = ref
    trees = pl.concat(frames)
    problems = pl.DataFrame({"problem_id": list(refs), "problem": ["q"] * len(refs), "answer": list(refs.values())})
    settings = replace(CloningSettings(), answer_boxes=answer_boxes)
    res = linearize_trees(trees, settings, problems=problems)
    assert res.stats["n_problems_with_traces"] + res.stats["n_no_correct_terminal"] == 40
    assert res.stats["n_traces"]["search"] > 40  # the random trees do have wrong branches
    cot = verbalize_traces(res.traces, trees, problems, settings)
    assert check_corpus(cot, res.traces, trees, problems, exact, settings=settings) == []
    for r in cot.iter_rows(named=True):
        assert last_boxed_content(r["completion"]) == refs[r["problem_id"]]
        assert count_reflections(r["completion"], settings) == (r["n_reflections"], r["n_backtracks"])
