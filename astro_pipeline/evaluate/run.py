"""``evaluate_model``: sample completions from a backend and score them, verification overlapped.

Design choices:

* Requests: per problem one chat request (``[system?] + user: problem``) for ``n_samples`` samples
  at the recipe's temperature/top_p and, with ``greedy`` on, one request with ``n = 1`` and
  temperature 0. Problems go to ``backend.generate`` in batches of ``batch_size`` problems; a
  batch carries both kinds of request (the protocol allows per-request parameters).
* Seeds: each problem's requests get ``derive_seed(settings.seed, "evaluate", problem_id)`` (see
  ``seeds``), so a problem's samples do not depend on which batch or position it landed in, and
  re-running one problem reproduces it (as far as the backend honours per-request seeds).
* Overlap: verification (a process pool in production) and reflection counting of batch i run in
  one worker thread while the calling thread generates batch i+1. Generation releases the GIL in
  torch kernels and the verifier works in other processes, so scoring costs little wall time
  on top of generation (measured by ``astro_pipeline.bench.eval``). Only that one thread ever
  calls the verifier, so it needs no locking.
* Scoring is ``scoring.judge_completions`` + ``scoring.summarize``: the same code that scores
  reference solutions in ``score_completions``.
* ``progress(done_problems, total_problems)`` is called after each batch is scored.
* ``EvalResult.timings``: ``generate_s`` (inside ``backend.generate``), ``score_s`` (inside
  verification + counting, in the scoring thread), ``score_wait_s`` (the calling thread waiting
  for scores: the part of scoring that did not overlap generation) and ``total_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import polars as pl

from astro_pipeline.evaluate.judge import as_judge
from astro_pipeline.evaluate.scoring import (
    GREEDY_SAMPLE,
    EvalResult,
    ReflectionCounter,
    gold_answers,
    empty_generations,
    judge_completions,
    summarize,
)
from astro_pipeline.evaluate.settings import EvalSettings
from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.llm.protocol import Backend, GenerationRequest, Sample, SamplingParams
from astro_pipeline.seeds import derive_seed
from astro_pipeline.verify.rules import Verifier
from astro_pipeline.warehouse.tables import require_columns

Progress = Callable[[int, int], None]


def build_requests(problems: pl.DataFrame, settings: EvalSettings) -> list[tuple[str, bool, GenerationRequest]]:
    """(problem_id, is_greedy, request) for every request of ``problems``, sampled ones first."""
    out: list[tuple[str, bool, GenerationRequest]] = []
    greedy: list[tuple[str, bool, GenerationRequest]] = []
    for pid, text in zip(problems["problem_id"].cast(pl.Utf8).to_list(), problems["problem"].to_list()):
        messages = chat_messages(text, settings.system_prompt)
        seed = derive_seed(settings.seed, "evaluate", pid)
        sampled = SamplingParams(
            n=settings.n_samples,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_new_tokens=settings.max_new_tokens,
            seed=seed,
        )
        out.append((pid, False, GenerationRequest(messages=messages, params=sampled)))
        if settings.greedy:
            params = SamplingParams(n=1, temperature=0.0, top_p=1.0, max_new_tokens=settings.max_new_tokens, seed=seed)
            greedy.append((pid, True, GenerationRequest(messages=messages, params=params)))
    return out + greedy


def completions_frame(
    tagged: Sequence[tuple[str, bool, GenerationRequest]], outputs: Sequence[Sequence[Sample]]
) -> pl.DataFrame:
    """One row per returned sample (problem_id, sample, greedy, completion, n_tokens, ...)."""
    if len(outputs) != len(tagged):
        raise RuntimeError(f"backend returned {len(outputs)} results for {len(tagged)} requests")
    rows: dict[str, list[Any]] = {k: [] for k in ("problem_id", "sample", "greedy", "completion", "n_tokens", "finish_reason", "logprob")}
    for (pid, is_greedy, request), samples in zip(tagged, outputs):
        if len(samples) != request.params.n:
            raise RuntimeError(f"backend returned {len(samples)} samples for problem {pid!r}, asked for {request.params.n}")
        for i, s in enumerate(samples):
            rows["problem_id"].append(pid)
            rows["sample"].append(GREEDY_SAMPLE if is_greedy else i)
            rows["greedy"].append(is_greedy)
            rows["completion"].append(s.text)
            rows["n_tokens"].append(int(s.n_tokens))
            rows["finish_reason"].append(s.finish_reason)
            rows["logprob"].append(float(s.logprob))
    return pl.DataFrame(
        rows,
        schema={
            "problem_id": pl.Utf8, "sample": pl.Int64, "greedy": pl.Boolean, "completion": pl.Utf8,
            "n_tokens": pl.Int64, "finish_reason": pl.Utf8, "logprob": pl.Float64,
        },
    )


def select_problems(problems: pl.DataFrame, settings: EvalSettings) -> pl.DataFrame:
    require_columns(problems, ("problem_id", "problem", "answer"), "problems frame")
    return problems.head(settings.max_problems) if settings.max_problems else problems


def evaluate_model(
    backend: Backend,
    problems: pl.DataFrame,
    settings: EvalSettings,
    verifier: Verifier,
    *,
    benchmark: str,
    stage: str,
    model_path: str,
    reflection_counter: ReflectionCounter | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Generate and score one (benchmark, stage); see the module docstring."""
    problems = select_problems(problems, settings)
    golds = gold_answers(problems)
    judge = as_judge(verifier)
    total = problems.height
    timings = {"generate_s": 0.0, "score_s": 0.0, "score_wait_s": 0.0}
    frames: list[pl.DataFrame] = []
    started = time.perf_counter()

    def score(batch_completions: pl.DataFrame) -> pl.DataFrame:
        t0 = time.perf_counter()
        try:
            return judge_completions(
                golds,
                batch_completions,
                judge,
                benchmark=benchmark,
                stage=stage,
                reflection_counter=reflection_counter,
                truncated_is_wrong=settings.truncated_is_wrong,
            )
        finally:  # only the one scoring thread writes this key
            timings["score_s"] += time.perf_counter() - t0

    def collect(future: Future, done: int) -> None:
        t0 = time.perf_counter()
        frames.append(future.result())
        timings["score_wait_s"] += time.perf_counter() - t0
        if progress is not None:
            progress(done, total)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eval-score") as pool:
        pending: tuple[Future, int] | None = None
        for start in range(0, total, settings.batch_size):
            batch = problems.slice(start, settings.batch_size)
            tagged = build_requests(batch, settings)
            t0 = time.perf_counter()
            outputs = backend.generate([r for _, _, r in tagged])
            timings["generate_s"] += time.perf_counter() - t0
            future = pool.submit(score, completions_frame(tagged, outputs))
            if pending is not None:
                collect(*pending)
            pending = (future, start + batch.height)
        if pending is not None:
            collect(*pending)

    generations = pl.concat(frames) if frames else empty_generations()
    scores = summarize(
        generations,
        benchmark=benchmark,
        stage=stage,
        settings=settings,
        model_path=model_path,
        backend=getattr(backend, "name", type(backend).__name__),
        backtracks_counted=reflection_counter is not None,
        expected_problems=list(golds),
    )
    timings["total_s"] = time.perf_counter() - started
    return EvalResult(generations, scores, timings)
