"""Benchmark: does MCTS keep the generation backend busy?

Method (one process, one backend):

1. Warm the backend up with one untimed batch (so one-time costs are charged to neither side).
2. Run ``search_problems`` on ``problems`` through a recording wrapper: every generation call's
   requests are kept. MCTS throughput = generated tokens / search wall time (everything counted:
   selection, tree bookkeeping, verification, table building).
3. Replay exactly those calls (same requests, batch sizes, prefixes, token caps and seeds) straight
   to the backend, timing only ``generate``: the raw throughput the backend reaches on the same work.
4. Report their ratio (target >= 0.8: at most a fifth of the time lost outside generation) and the
   share of the search's wall time spent outside generation. On shared cores the ratio is noisy
   (another job can slow either phase); ``repeats`` alternates search and replay and reports the
   median. The outside-generation share is the load-robust number.

The default verifier is the in-process exact match of the boxed answer, so the number isolates the
search machinery; pass ``verifier=BatchVerifier(...)`` to include math-verify's cost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.llm.protocol import Backend, GenerationRequest, Sample, SamplingParams
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.verify.rules import Verifier
from astro_pipeline.search.runner import SearchSummary, search_problems
from astro_pipeline.search.settings import SearchSettings


class RecordingBackend:
    """Passes calls through to ``backend`` and keeps each call's requests."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = f"recording({backend.name})"
        self.calls: list[list[GenerationRequest]] = []

    def render(self, request: GenerationRequest) -> str:
        return self.backend.render(request)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        self.calls.append(list(requests))
        return self.backend.generate(requests)


def replay_throughput(backend: Backend, calls: Sequence[Sequence[GenerationRequest]]) -> dict[str, float]:
    """Tokens per second of ``backend`` on exactly these calls, timing ``generate`` alone."""
    tokens, seconds = 0, 0.0
    for requests in calls:
        t0 = time.perf_counter()
        out = backend.generate(requests)
        seconds += time.perf_counter() - t0
        tokens += sum(s.n_tokens for samples in out for s in samples)
    return {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds if seconds > 0 else 0.0}


def _warm_up(backend: Backend, problems: pl.DataFrame, settings: SearchSettings) -> None:
    """One batch shaped like a search phase (a few problems x M samples), untimed: the first large
    batch pays one-time costs (allocator growth, kernel selection) that neither side should carry."""
    texts = problems["problem"].head(8).to_list() or ["1 + 1"]
    params = SamplingParams(n=settings.m, max_new_tokens=settings.max_step_tokens, seed=0)
    backend.generate([GenerationRequest(messages=chat_messages(t), params=params) for t in texts])


def _one_round(backend: Backend, problems: pl.DataFrame, settings: SearchSettings, verifier: Verifier,
               log: Callable[[str], None] | None) -> tuple[SearchSummary, list[list[GenerationRequest]], dict[str, float]]:
    recorder = RecordingBackend(backend)
    summary = search_problems(problems, recorder, verifier, settings, progress=False, log=log)
    return summary, recorder.calls, replay_throughput(backend, recorder.calls)


def bench_mcts(
    backend: Backend,
    problems: pl.DataFrame,
    settings: SearchSettings,
    *,
    verifier: Verifier | None = None,
    repeats: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """MCTS tokens/s vs the backend's raw tokens/s on the same calls (see the module docstring).

    With ``repeats`` > 1 the search and its replay alternate that many times and the reported ratio
    is the median of the rounds' ratios (robust to other jobs sharing the cores); the other numbers
    are those of the median round.
    """
    verifier = verifier if verifier is not None else FakeVerifier()  # boxed exact match: no process pool
    _warm_up(backend, problems, settings)
    rounds = [_one_round(backend, problems, settings, verifier, log) for _ in range(max(1, repeats))]
    ratios = [s.tokens_per_second / raw["tokens_per_second"] if raw["tokens_per_second"] else 0.0
              for s, _, raw in rounds]
    median_round = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]
    summary, calls, raw = rounds[median_round]
    sizes = [sum(r.params.n for r in call) for call in calls]
    return {
        "problems": summary.problems_searched,
        "settings": {"k": settings.k, "m": settings.m, "iterations": settings.iterations,
                     "parallel_trees": settings.parallel_trees},
        "generate_calls": len(calls),
        "mean_sequences_per_call": sum(sizes) / len(sizes) if sizes else 0.0,
        "mcts_tokens": summary.tokens_generated,
        "mcts_wall_s": summary.wall_s,
        "mcts_tokens_per_second": summary.tokens_per_second,
        "mcts_generation_tokens_per_second": summary.tokens_generated / summary.generation_s if summary.generation_s else 0.0,
        "raw_tokens": raw["tokens"],
        "raw_seconds": raw["seconds"],
        "raw_tokens_per_second": raw["tokens_per_second"],
        "ratio": ratios[median_round],
        "ratios": ratios,
        "outside_generation_share": summary.outside_generation_s / summary.wall_s if summary.wall_s else 0.0,
        "verify_s": summary.verify_s,
        "share_with_correct": summary.share_with_correct,
        "share_with_both": summary.share_with_both,
        "mean_nodes": summary.mean_nodes,
    }


def bench_mcts_demo(
    model_dir: str | os.PathLike[str],
    problems: pl.DataFrame | None = None,
    settings: SearchSettings | None = None,
    *,
    n_problems: int = 16,
    backend_settings: Any = None,
    repeats: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``bench_mcts`` with the configured backend on ``model_dir`` and synthetic test problems."""
    from astro_pipeline.llm.factory import make_backend
    from astro_pipeline.llm.settings import BackendSettings

    if problems is None:
        from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows

        rows = generate_rows("test", SyntheticSettings(n_test=n_problems))
        problems = pl.DataFrame({"dataset": ["synthetic_test"] * len(rows), "problem_id": [r["id"] for r in rows],
                                 "problem": [r["problem"] for r in rows], "answer": [r["answer"] for r in rows]})
    backend = make_backend(backend_settings or BackendSettings(), model_dir)
    return bench_mcts(backend, problems.head(n_problems), settings or SearchSettings(), repeats=repeats, log=log)
