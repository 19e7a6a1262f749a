"""The evaluation benchmark runs and compares like with like (same requests, same tokens)."""

from __future__ import annotations

import polars as pl
import pytest

from astro_pipeline.bench.eval import bench_eval, synthetic_problems
from astro_pipeline.evaluate.settings import EvalSettings
from astro_pipeline_tests.test_eval_model import ScriptedEvalBackend, exact_verifier

SMALL = EvalSettings(n_samples=2, maj_k=2, max_new_tokens=16, batch_size=2)


def test_bench_with_a_scripted_backend_counts_the_same_work():
    problems = synthetic_problems(3).with_columns(pl.Series("problem", [f"Add {i} and 5." for i in range(1, 4)]))
    out = bench_eval(backend=ScriptedEvalBackend(), problems=problems, settings=SMALL, verifier=exact_verifier,
                     repeats=2)
    assert out["problems"] == 3 and out["samples"] == 3 * (2 + 1)  # 2 sampled + 1 greedy per problem
    assert out["same_tokens"] is True and len(out["ratios"]) == 2
    assert out["raw_samples_per_s"] > 0 and out["full_samples_per_s"] > 0
    # the reported ratio is the median round's full / raw rate, and those are the rates reported
    assert out["ratio"] in out["ratios"] and out["ratio"] == max(out["ratios"])  # 2 rounds: index 1 of sorted
    assert out["ratio"] == pytest.approx(out["full_samples_per_s"] / out["raw_samples_per_s"])
    assert sum(out["verdicts"].values()) == out["samples"]


@pytest.mark.slow
def test_bench_on_a_random_tiny_llama():
    out = bench_eval(n_problems=2, settings=SMALL, repeats=1)
    assert out["model"].startswith("random tiny llama") and out["backend"] == "transformers"
    assert out["samples"] == 2 * 3 and out["same_tokens"] is True
    assert out["tokens"] > 0 and 0 < out["ratio"]
