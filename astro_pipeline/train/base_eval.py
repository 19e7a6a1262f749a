"""pass@1 of a model folder on synthetic_test, sampled through the project's backend and verifier.

Design: the measurement that decides whether the demo base model is "imperfect enough" uses the
same path as the rest of the pipeline (chat template, ``TransformersBackend`` or whichever backend
the recipe names, ``astro_pipeline.verify``), so the number means what MCTS will see. pass@1 is
the mean correctness over ``eval_samples`` samples per problem at ``eval_temperature``; we also
report greedy accuracy, pass@k (any sample right) and the share of problems with both right and
wrong samples (what MCTS needs to find both kinds of branches). Every setting that shaped the
number is returned with it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from astro_pipeline.config import to_dict
from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.llm.factory import make_backend
from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.llm.protocol import Backend, GenerationRequest, SamplingParams
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.seeds import derive_seed
from astro_pipeline.train.settings import BaseModelSettings
from astro_pipeline.verify import BatchVerifier, VerifySettings


def _requests(rows: list[dict], n: int, temperature: float, top_p: float, max_new: int, seed: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=chat_messages(row["problem"]),
            params=SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new,
                                  seed=derive_seed(seed, "base_eval", i)),
        )
        for i, row in enumerate(rows)
    ]


def sampled_pass_at_1(
    backend: Backend,
    rows: list[dict],
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    verifier: BatchVerifier,
) -> float:
    """Mean correctness of ``n`` samples per row (the trainer's quick check on held-out rows)."""
    sampled = backend.generate(_requests(rows, n, temperature, top_p, max_new_tokens, seed))
    pairs = [(row["answer"], s.text) for row, samples in zip(rows, sampled) for s in samples]
    return sum(v.verdict == "correct" for v in verifier.verify_many(pairs)) / len(pairs)


def measure_pass_at_1(
    model_dir: str | Path,
    settings: BaseModelSettings,
    synthetic_settings: SyntheticSettings,
    backend_settings: BackendSettings | None = None,
    *,
    backend: Backend | None = None,
    verify_settings: VerifySettings | None = None,
    greedy: bool = True,
) -> dict[str, Any]:
    """Sampled pass@1 (and greedy accuracy, pass@k) of ``model_dir`` on synthetic_test."""
    started = time.perf_counter()
    rows = generate_rows("test", synthetic_settings)
    if settings.eval_problems:
        rows = rows[: settings.eval_problems]
    backend_settings = backend_settings or BackendSettings()
    backend = backend or make_backend(backend_settings, model_dir)
    k = settings.eval_samples
    sampled = backend.generate(
        _requests(rows, k, settings.eval_temperature, settings.eval_top_p, settings.eval_max_new_tokens, settings.eval_seed)
    )
    greedy_out = (
        backend.generate(_requests(rows, 1, 0.0, 1.0, settings.eval_max_new_tokens, settings.eval_seed)) if greedy else None
    )
    pairs = [(row["answer"], s.text) for row, samples in zip(rows, sampled) for s in samples]
    if greedy_out is not None:
        pairs += [(row["answer"], samples[0].text) for row, samples in zip(rows, greedy_out)]
    with BatchVerifier(verify_settings or VerifySettings(workers=1)) as verifier:
        verdicts = [v.verdict == "correct" for v in verifier.verify_many(pairs)]
    per_problem = [verdicts[i * k : (i + 1) * k] for i in range(len(rows))]
    rates = [sum(p) / k for p in per_problem]
    mean = sum(rates) / len(rates)
    var = sum((r - mean) ** 2 for r in rates) / max(1, len(rates) - 1)
    result: dict[str, Any] = {
        "model_dir": str(model_dir),
        "n_problems": len(rows),
        "n_samples": k,
        "temperature": settings.eval_temperature,
        "top_p": settings.eval_top_p,
        "max_new_tokens": settings.eval_max_new_tokens,
        "seed": settings.eval_seed,
        "pass_at_1": mean,
        "stderr": math.sqrt(var / len(rates)),
        f"pass_at_{k}": sum(any(p) for p in per_problem) / len(rows),
        "mixed_fraction": sum(0 < sum(p) < k for p in per_problem) / len(rows),
        "truncated_fraction": sum(s.finish_reason == "length" for ss in sampled for s in ss) / (k * len(rows)),
        "mean_tokens": sum(s.n_tokens for ss in sampled for s in ss) / (k * len(rows)),
        "backend": getattr(backend, "name", type(backend).__name__),
        "backend_settings": to_dict(backend_settings),
        "synthetic": to_dict(synthetic_settings),
    }
    if greedy_out is not None:
        result["greedy"] = sum(verdicts[len(rows) * k :]) / len(rows)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result
