"""Scoring the reference solutions of MATH-500 as if a model had written them: pass@1 must be 1.0.

Runs the production scoring path (``score_completions`` = the verification and summary code
``evaluate_model`` uses) with the real process-pool ``BatchVerifier`` (math-verify)."""

from __future__ import annotations

import polars as pl
import pytest

from astro_pipeline.data.load import load_problems
from astro_pipeline.data.sources import builtin_source
from astro_pipeline.evaluate import EvalSettings, score_completions
from astro_pipeline.verify import BatchVerifier, VerifySettings


@pytest.fixture(scope="module")
def verifier():
    with BatchVerifier(VerifySettings(workers=2, timeout_s=20.0)) as bv:
        yield bv


def _reference(problems: pl.DataFrame) -> pl.DataFrame:
    return problems.select(
        "problem_id", pl.lit(0, pl.Int64).alias("sample"), pl.col("solution").alias("completion")
    )


def test_math500_reference_solutions_score_one(data_dir, verifier):
    problems = load_problems(builtin_source("math500")).problems
    assert problems.height == 500
    result = score_completions(
        problems, _reference(problems), verifier, benchmark="math500", stage="reference",
        settings=EvalSettings(n_samples=1, maj_k=1), model_path="(reference solutions)",
    )
    s = result.score
    wrong = result.generations.filter(~pl.col("correct")).select("problem_id", "gold", "answer", "verdict")
    assert wrong.height == 0, wrong.head(10)
    assert s["pass_at_1"] == 1.0 and s["maj_at_k"] == 1.0 and s["stderr"] == 0.0
    assert (s["n_problems"], s["n_samples"], s["k"], s["n_unparsable_gold"]) == (500, 1, 1, 0)
    assert s["greedy"] is None and s["mean_tokens"] is None  # no greedy rows; token counts unknown


def test_shuffled_reference_solutions_score_near_zero(data_dir, verifier):
    """The same path must also fail: each problem paired with another problem's solution."""
    problems = load_problems(builtin_source("math500"), limit=60).problems
    shifted = _reference(problems).with_columns(pl.col("completion").shift(1, fill_value=problems["solution"][-1]))
    result = score_completions(problems, shifted, verifier, benchmark="math500", stage="shuffled")
    # a few neighbours may share an answer by chance; far from all of them do
    assert result.score["pass_at_1"] < 0.2
