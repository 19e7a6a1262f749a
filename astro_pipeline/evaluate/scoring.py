"""Backend-independent scoring: completions (from a model, or reference solutions) -> the
``eval_generations`` rows and the one ``eval_scores`` row of a (benchmark, stage).

Design choices:

* ``judge_completions`` (verify + count reflections for one batch) and ``summarize`` (the scores
  row) are the two halves; ``score_completions`` is both, and ``evaluate_model`` calls the same two
  on what the backend generated, so scoring reference solutions exercises the production path.
* The greedy completion is stored as ``sample = -1`` and ``greedy = true``; sampled completions
  have ``sample = 0..n-1`` and ``greedy = false``. Both columns are kept so SQL can filter either way.
  pass@1, maj@k, mean_tokens, mean_backtracks and truncated_share use sampled rows only; the
  ``greedy`` score is the mean correctness of the greedy rows (null when there are none).
* Every problem must have the same number of sampled completions (that number is ``n_samples``);
  a problem without completions is an error, not a silently smaller denominator.
* Fractions, not percents, are stored (pass_at_1 = 0.42); reports format percents.
* Problems whose gold answer the verifier cannot parse stay in the denominator (their samples are
  not correct: no free points, DESIGN.md §5) and are counted in ``n_unparsable_gold`` so they can
  be found and fixed. ``timeout`` verdicts are counted in ``n_timeouts``.
* Reflections/backtracks come from ``reflection_counter(text) -> (n_reflections, n_backtracks)``
  (the cloning stage's phrase-bank counter). Without one both are 0 and the scores row says
  ``backtracks_counted = false``, so a zero is never mistaken for a measurement.
* With ``settings.truncated_is_wrong`` a completion cut at the token budget is not correct whatever
  its verdict; ``truncated_share`` is reported either way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from astro_pipeline.config import to_dict
from astro_pipeline.evaluate.judge import JudgeFn, as_judge
from astro_pipeline.evaluate.metrics import maj_at_k, pass_at_1
from astro_pipeline.evaluate.settings import EvalSettings
from astro_pipeline.provenance import library_versions
from astro_pipeline.verify.rules import Verifier
from astro_pipeline.warehouse.tables import EVAL_GENERATIONS, EVAL_SCORES, require_columns

ReflectionCounter = Callable[[str], tuple[int, int]]

GREEDY_SAMPLE = -1

# the tables' contracts (columns and their meaning) are declared in warehouse.tables
GENERATIONS_SCHEMA = EVAL_GENERATIONS.schema
SCORES_SCHEMA = EVAL_SCORES.schema

COMPLETION_COLUMNS = ("problem_id", "sample", "completion")


@dataclass
class EvalResult:
    generations: pl.DataFrame  # GENERATIONS_SCHEMA
    scores: pl.DataFrame  # SCORES_SCHEMA, one row
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> dict[str, Any]:
        """The scores row as a dict."""
        return self.scores.row(0, named=True)


def empty_generations() -> pl.DataFrame:
    return pl.DataFrame(schema=GENERATIONS_SCHEMA)


def gold_answers(problems: pl.DataFrame) -> dict[str, str]:
    require_columns(problems, ("problem_id", "answer"), "problems frame")
    ids = problems["problem_id"].cast(pl.Utf8)
    if ids.n_unique() != problems.height:
        raise ValueError("problems frame has duplicate problem_id values")
    return dict(zip(ids.to_list(), problems["answer"].cast(pl.Utf8).to_list()))


def judge_completions(
    golds: dict[str, str],
    completions: pl.DataFrame,
    judge: JudgeFn,
    *,
    benchmark: str,
    stage: str,
    reflection_counter: ReflectionCounter | None = None,
    truncated_is_wrong: bool = False,
) -> pl.DataFrame:
    """Verify and count one batch of completions; returns ``eval_generations`` rows.

    ``completions`` needs problem_id, sample, completion; n_tokens, finish_reason, logprob and greedy
    are optional (null, "stop", null and ``sample == -1``)."""
    require_columns(completions, COMPLETION_COLUMNS, "completions frame")
    if completions.height == 0:
        return empty_generations()
    ids = completions["problem_id"].cast(pl.Utf8).to_list()
    unknown = sorted({pid for pid in ids if pid not in golds})
    if unknown:
        raise ValueError(f"completions for unknown problem ids: {unknown[:5]}")
    texts = [t or "" for t in completions["completion"].to_list()]
    gold = [golds[pid] for pid in ids]
    judgements = judge(list(zip(gold, texts)))
    if reflection_counter is not None:
        counts = [reflection_counter(t) for t in texts]
    else:
        counts = [(0, 0)] * len(texts)
    n = completions.height

    def column(name: str, default: Any) -> list[Any]:
        return completions[name].to_list() if name in completions.columns else [default] * n

    samples = [int(s) for s in completions["sample"].to_list()]
    finish = [f or "stop" for f in column("finish_reason", "stop")]
    greedy = column("greedy", None)
    greedy = [bool(g) if g is not None else s == GREEDY_SAMPLE for g, s in zip(greedy, samples)]
    correct = [
        j.correct and not (truncated_is_wrong and fr == "length") for j, fr in zip(judgements, finish)
    ]
    return pl.DataFrame(
        {
            "benchmark": [benchmark] * n,
            "stage": [stage] * n,
            "problem_id": ids,
            "sample": samples,
            "greedy": greedy,
            "completion": texts,
            "gold": gold,
            "answer": [j.answer for j in judgements],
            "verdict": [j.verdict for j in judgements],
            "correct": correct,
            "n_tokens": column("n_tokens", None),
            "finish_reason": finish,
            "logprob": column("logprob", None),
            "n_backtracks": [int(c[1]) for c in counts],
            "n_reflections": [int(c[0]) for c in counts],
        },
        schema=GENERATIONS_SCHEMA,
    )


def _mean(series: pl.Series) -> float | None:
    value = series.drop_nulls().cast(pl.Float64).mean()
    return None if value is None else float(value)


def summarize(
    generations: pl.DataFrame,
    *,
    benchmark: str,
    stage: str,
    settings: EvalSettings | None = None,
    maj_k: int | None = None,
    model_path: str = "",
    backend: str = "",
    backtracks_counted: bool = False,
    expected_problems: list[str] | None = None,
) -> pl.DataFrame:
    """The one ``eval_scores`` row of a (benchmark, stage) from its generations.

    ``maj_k`` defaults to ``settings.maj_k`` (or n_samples without settings) and is clamped to
    n_samples. ``expected_problems``: ids that must all have completions (checked)."""
    sampled = generations.filter(~pl.col("greedy")).sort("problem_id", "sample")
    greedy_rows = generations.filter(pl.col("greedy"))
    per_problem = sampled.group_by("problem_id", maintain_order=True).agg(
        pl.col("correct"), pl.col("answer"), pl.col("sample")
    )
    if expected_problems is not None:
        missing = sorted(set(expected_problems) - set(per_problem["problem_id"].to_list()))
        if missing:
            raise ValueError(f"{len(missing)} problem(s) have no sampled completion, e.g. {missing[:5]}")
    sizes = {len(s) for s in per_problem["sample"].to_list()}
    if len(sizes) > 1:
        raise ValueError(f"problems have different numbers of sampled completions: {sorted(sizes)}")
    for samples in per_problem["sample"].to_list():
        if len(set(samples)) != len(samples):
            raise ValueError("a problem has duplicate sample indices")
    n_samples = sizes.pop() if sizes else 0
    correct = per_problem["correct"].to_list()
    answers = per_problem["answer"].to_list()
    p1 = pass_at_1(correct) if correct else None
    k_wanted = maj_k if maj_k is not None else (settings.maj_k if settings is not None else n_samples)
    k = max(1, min(k_wanted, n_samples)) if n_samples else 0
    maj = maj_at_k(answers, correct, k) if correct else None
    unparsable = generations.filter(pl.col("verdict") == "unparsable_gold")["problem_id"].n_unique()
    row = {
        "benchmark": benchmark,
        "stage": stage,
        "n_problems": per_problem.height,
        "n_samples": n_samples,
        "pass_at_1": p1.mean if p1 else None,
        "stderr": p1.stderr if p1 else None,
        "maj_at_k": maj,
        "k": k,
        "greedy": _mean(greedy_rows["correct"]) if greedy_rows.height else None,
        "mean_tokens": _mean(sampled["n_tokens"]),
        "mean_backtracks": _mean(sampled["n_backtracks"]),
        "mean_reflections": _mean(sampled["n_reflections"]),
        "backtracks_counted": backtracks_counted,
        "truncated_share": _mean(sampled["finish_reason"] == "length") if sampled.height else None,
        "no_answer_share": _mean(sampled["answer"].is_null()) if sampled.height else None,
        "n_unparsable_gold": unparsable,
        "n_timeouts": generations.filter(pl.col("verdict") == "timeout").height,
        "temperature": settings.temperature if settings else None,
        "top_p": settings.top_p if settings else None,
        "max_new_tokens": settings.max_new_tokens if settings else None,
        "seed": settings.seed if settings else None,
        "model_path": model_path,
        "backend": backend,
        "settings_json": json.dumps(to_dict(settings) if settings else {}, sort_keys=True),
        "versions_json": json.dumps(library_versions(), sort_keys=True),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return pl.DataFrame([row], schema=SCORES_SCHEMA)


def score_completions(
    problems: pl.DataFrame,
    completions: pl.DataFrame,
    verifier: Verifier,
    *,
    benchmark: str,
    stage: str,
    settings: EvalSettings | None = None,
    maj_k: int | None = None,
    model_path: str = "",
    backend: str = "",
    reflection_counter: ReflectionCounter | None = None,
) -> EvalResult:
    """Score given completions of ``problems`` (columns problem_id, answer): verification,
    reflection counts, pass@1 ± stderr, maj@k, greedy. ``verifier``: see ``judge.as_judge``."""
    golds = gold_answers(problems)
    generations = judge_completions(
        golds,
        completions,
        as_judge(verifier),
        benchmark=benchmark,
        stage=stage,
        reflection_counter=reflection_counter,
        truncated_is_wrong=bool(settings and settings.truncated_is_wrong),
    )
    scores = summarize(
        generations,
        benchmark=benchmark,
        stage=stage,
        settings=settings,
        maj_k=maj_k,
        model_path=model_path,
        backend=backend,
        backtracks_counted=reflection_counter is not None,
        expected_problems=list(golds),
    )
    return EvalResult(generations, scores)
