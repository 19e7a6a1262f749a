"""MCTS and evaluation through the vLLM engine write what they write through the transformers
backend: tree_nodes files of the same schema, and an eval_scores row the warehouse's SQL reads."""

from __future__ import annotations

import polars as pl
import pytest

from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.search.settings import SearchSettings

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SEARCH = SearchSettings(k=3, m=2, iterations=3, max_step_tokens=24, max_rollout_tokens=96, seed=5)


def _problems(n: int) -> pl.DataFrame:
    rows = generate_rows("test", SyntheticSettings(n_train=10, n_test=n))
    return pl.DataFrame({"dataset": ["synthetic_test"] * n, "problem_id": [r["id"] for r in rows],
                         "problem": [r["problem"] for r in rows], "answer": [r["answer"] for r in rows]})


def _search(backend, problems: pl.DataFrame, write=None) -> dict[str, pl.DataFrame]:
    from astro_pipeline.testing import FakeVerifier
    from astro_pipeline.search.runner import search_problems

    trees: dict[str, pl.DataFrame] = {}

    def on_tree(pid: str, nodes: pl.DataFrame) -> None:
        trees[pid] = nodes
        if write is not None:
            write(pid, nodes)

    summary = search_problems(problems, backend, FakeVerifier(), SEARCH, on_tree=on_tree, progress=False)
    assert summary.problems_searched == problems.height and summary.tokens_generated > 0
    return trees


def test_mcts_through_vllm_writes_trees_of_the_same_schema(vllm_backend, hf_backend):
    from astro_pipeline.search.tree_table import TREE_NODES_SCHEMA
    from astro_pipeline.storage import ArtifactStore
    from astro_pipeline.warehouse import Warehouse, table_file

    store = ArtifactStore.from_env()
    problems = _problems(3)
    written = _search(vllm_backend, problems,
                      lambda pid, df: store.write_parquet(df, table_file("tree_nodes", pid, group="synthetic_test")))
    reference = _search(hf_backend, problems.head(1))
    ref_schema = next(iter(reference.values())).schema
    assert ref_schema == pl.Schema(TREE_NODES_SCHEMA)
    for pid, df in written.items():
        back = store.read_parquet(table_file("tree_nodes", pid, group="synthetic_test"))
        assert back.schema == ref_schema and back.equals(df)
        kids = df.filter(pl.col("origin") == "expansion")  # sampled steps (rollout nodes carry no counts)
        assert kids.height >= 1 and (kids["step_tokens"] <= SEARCH.max_step_tokens).all()
        assert (kids["step_logprob"] < 0).all()
        sums = kids.group_by("parent_id").agg(pl.col("prior").sum())["prior"]
        assert ((sums - 1.0).abs() < 1e-9).all()  # priors normalized over siblings
    kids = pl.concat(written.values()).filter(pl.col("origin") == "expansion")
    # the "\n\n" stop string, not the token cap, cut the samples into solution steps
    assert (kids["step_tokens"] < SEARCH.max_step_tokens).mean() > 0.8
    assert not kids["step"].str.contains("\n\n", literal=True).any()
    # the warehouse's own query reads the trees written through vLLM
    stats = Warehouse(store).run_file("search_stats.sql").to_dicts()
    assert stats[0]["n_trees"] == 3
    # per-request seeds are honoured by the engine: the same search gives the same trees
    again = _search(vllm_backend, problems)
    assert all(again[pid].equals(df) for pid, df in written.items())


def test_evaluation_through_vllm_writes_eval_scores(vllm_backend, demo_base_dir):
    from astro_pipeline.evaluate import SCORES_SCHEMA, EvalSettings, evaluate_model
    from astro_pipeline.storage import ArtifactStore
    from astro_pipeline.verify import BatchVerifier
    from astro_pipeline.warehouse import Warehouse, publish

    settings = EvalSettings(n_samples=4, maj_k=4, temperature=0.7, max_new_tokens=160, greedy=True, batch_size=6, seed=1)
    problems = _problems(12)
    with BatchVerifier() as verifier:
        result = evaluate_model(vllm_backend, problems, settings, verifier, benchmark="synthetic_test", stage="base",
                                model_path=str(demo_base_dir))
    assert result.generations.height == 12 * (4 + 1)
    assert set(result.generations["finish_reason"]) <= {"stop", "length"}
    warehouse = Warehouse(ArtifactStore.from_env())
    publish(warehouse, "eval_generations", "synthetic_test__base", result.generations)
    publish(warehouse, "eval_scores", "synthetic_test__base", result.scores)
    rows = warehouse.query("SELECT * FROM eval_scores").to_dicts()
    assert len(rows) == 1 and set(SCORES_SCHEMA) <= set(rows[0])
    row = rows[0]
    assert (row["benchmark"], row["stage"], row["backend"], row["n_problems"]) == ("synthetic_test", "base", "vllm", 12)
    assert 0.0 <= row["pass_at_1"] <= 1.0 and 0.0 <= row["greedy"] <= 1.0
    board = warehouse.run_file("eval_leaderboard.sql").to_dicts()
    assert [(b["benchmark"], b["stage"]) for b in board] == [("synthetic_test", "base")]
