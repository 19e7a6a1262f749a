"""The verifier benchmark: its result on real pairs and on built-in pairs.

The ratio itself is a timing figure: it is measured with `astro bench verify` and reported, never
asserted here (it depends on what else the cores are doing)."""

from __future__ import annotations

import pytest

from astro_pipeline.bench.verify import bench_verify


@pytest.mark.slow
def test_bench_verify_on_math500(data_dir):
    result = bench_verify(n_pairs=100, data_dir=str(data_dir), repeats=1)
    assert result["source"].endswith("math500.jsonl")
    assert result["pairs_per_round"] == 100 and result["rounds"] == 1
    assert result["batch_per_s"] > 0 and result["sequential_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["batch_per_s"] / result["sequential_per_s"], rel=0.05)
    # half the pairs are an answer with its own solution, half with the next problem's
    assert 0.4 <= result["batch_correct_share"] <= 0.6
    # on these pairs the batch verdicts agree with the plain math-verify loop (gold in \boxed{})
    assert result["agreement"] >= 0.98
    assert 0.0 < result["fast_path_share"] < 1.0


@pytest.mark.slow
def test_bench_verify_builtin_pairs_without_data(tmp_path):
    result = bench_verify(n_pairs=32, data_dir=str(tmp_path), repeats=1)
    assert result["source"] == "builtin"
    assert result["pairs_per_round"] == 32
