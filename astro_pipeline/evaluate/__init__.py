"""Evaluation: sampling each model stage on the benchmarks, scoring (pass@1 ± stderr, maj@k,
greedy), reflection/backtrack statistics, and the report. Plain Python; never imports dagster."""

from astro_pipeline.evaluate.metrics import answer_key, maj_at_k, majority_vote, pass_at_1
from astro_pipeline.evaluate.run import evaluate_model
from astro_pipeline.evaluate.scoring import (
    GENERATIONS_SCHEMA,
    SCORES_SCHEMA,
    EvalResult,
    score_completions,
    summarize,
)
from astro_pipeline.evaluate.settings import EvalSettings

__all__ = [
    "GENERATIONS_SCHEMA",
    "SCORES_SCHEMA",
    "EvalResult",
    "EvalSettings",
    "answer_key",
    "evaluate_model",
    "maj_at_k",
    "majority_vote",
    "pass_at_1",
    "score_completions",
    "summarize",
]
