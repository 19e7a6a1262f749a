"""Slow: the search end to end on a tiny random Llama through the transformers backend."""

from __future__ import annotations

import polars as pl
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_backend():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
    from astro_pipeline.llm.settings import BackendSettings
    from astro_pipeline.llm.transformers_backend import TransformersBackend
    from astro_pipeline.train.tokenizer import train_demo_tokenizer

    rows = generate_rows("train", SyntheticSettings(n_train=200, n_test=4))
    tokenizer = train_demo_tokenizer([r["problem"] + "\n" + r["solution"] for r in rows], vocab_size=300)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    model = LlamaForCausalLM(config).eval()
    return TransformersBackend(model=model, tokenizer=tokenizer, settings=BackendSettings(device="cpu", threads=1))


def _problems() -> pl.DataFrame:
    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows

    rows = generate_rows("test", SyntheticSettings(n_train=10, n_test=3))
    return pl.DataFrame({"dataset": ["synthetic_test"] * 3, "problem_id": [r["id"] for r in rows],
                         "problem": [r["problem"] for r in rows], "answer": [r["answer"] for r in rows]})


def test_search_on_a_tiny_random_model(tiny_backend):
    from astro_pipeline.testing import FakeVerifier
    from astro_pipeline.search.runner import search_problems
    from astro_pipeline.search.settings import SearchSettings
    from astro_pipeline.search.tree_table import TREE_NODES_SCHEMA

    settings = SearchSettings(k=3, m=2, iterations=3, max_step_tokens=12, max_rollout_tokens=24, seed=5)

    def run():
        trees: dict[str, pl.DataFrame] = {}
        summary = search_problems(_problems(), tiny_backend, FakeVerifier(), settings,
                                  on_tree=lambda pid, df: trees.__setitem__(pid, df), progress=False)
        return summary, trees

    summary, trees = run()
    assert summary.problems_searched == 3 and summary.tokens_generated > 0
    for df in trees.values():
        assert df.schema == pl.Schema(TREE_NODES_SCHEMA)
        assert df.height >= 1 + settings.k  # the root was expanded at least once
        kids = df.filter(pl.col("depth") > 0)
        assert (kids["step_tokens"] <= settings.max_step_tokens).all() and (kids["step_logprob"] <= 0).all()
        sums = kids.group_by("parent_id").agg(pl.col("prior").sum())["prior"]
        assert ((sums - 1.0).abs() < 1e-9).all()  # priors normalized over siblings
        open_ = kids.filter(~pl.col("is_terminal"))
        assert (open_["n_rollouts"] == settings.m).all()
    # per-request seeds: the same search gives the same trees
    _, again = run()
    assert all(again[pid].equals(df) for pid, df in trees.items())


def test_bench_ratio_on_a_tiny_random_model(tiny_backend):
    from astro_pipeline.bench.mcts import bench_mcts
    from astro_pipeline.search.settings import SearchSettings

    out = bench_mcts(tiny_backend, _problems(), SearchSettings(k=3, m=2, iterations=3, max_step_tokens=12,
                                                                max_rollout_tokens=24), repeats=3)
    print({k: v for k, v in out.items() if k != "settings"})
    assert out["raw_tokens"] == out["mcts_tokens"]  # the replay reproduces the search's samples exactly
    # The ratio itself swings with other jobs on shared cores (0.7-1.0 seen on this tiny run), so the
    # assertion is on the load-robust part: the search's own time outside generation (measured ~1.5%).
    assert out["ratio"] > 0 and out["outside_generation_share"] < 0.2
