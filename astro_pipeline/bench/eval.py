"""Benchmark: does scoring keep up with generation in ``evaluate_model``?

Method (one process, one backend, one verifier pool):

1. Warm up: one small generation call and one verification that needs a worker process, so model
   and pool start-up are not charged to either side (both are paid once per evaluation run).
2. Full path: ``evaluate_model`` on ``problems`` (generation + answer extraction + verification in
   the process-pool ``BatchVerifier`` + phrase-bank reflection counting + the tables), timed end
   to end. Rate = sampled-and-scored completions (greedy ones included) per second.
3. Raw path: the very same requests (``run.build_requests``, same batches, same per-problem seeds)
   sent straight to ``backend.generate``, timing only the generate calls. Rate = completions per
   second. Both paths generate the same tokens (``same_tokens`` checks the totals).
4. ratio = full rate / raw rate (target >= 0.85). With ``repeats`` > 1 the two paths alternate
   (raw first in even rounds, full first in odd ones) and the median round is reported; on cores
   shared with other jobs single rounds are noisy.

Without a model folder the backend is a random tiny Llama (the demo architecture and tokenizer,
untrained): its completions run to ``max_new_tokens`` without a box, so every verdict is
``no_answer`` and verification is only extraction. Pass ``model_dir`` (e.g. the trained demo base
model) for completions with answers; ``verdicts`` in the result says what the verifier had to do,
and ``score_s`` is the time spent scoring (overlapped with generation), ``score_wait_s`` the part
that was not hidden behind it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl

from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.evaluate.run import build_requests, evaluate_model
from astro_pipeline.evaluate.settings import EvalSettings
from astro_pipeline.llm.protocol import Backend, GenerationRequest, SamplingParams
from astro_pipeline.verify.rules import Verifier

BENCH_SETTINGS = EvalSettings(n_samples=4, maj_k=4, temperature=0.7, top_p=1.0, max_new_tokens=64, batch_size=8)


def synthetic_problems(n: int) -> pl.DataFrame:
    """The first ``n`` synthetic test problems as a problems frame."""
    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows

    rows = generate_rows("test", SyntheticSettings())[:n]
    return pl.DataFrame({
        "dataset": ["synthetic_test"] * len(rows),
        "problem_id": [str(r["id"]) for r in rows],
        "problem": [r["problem"] for r in rows],
        "answer": [str(r["answer"]) for r in rows],
    })


def random_tiny_backend(seed: int = 0, backend_settings: Any = None) -> Backend:
    """An untrained tiny Llama with the demo tokenizer (architecture of the demo base model)."""
    import torch
    from transformers import LlamaForCausalLM

    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
    from astro_pipeline.llm.transformers_backend import TransformersBackend
    from astro_pipeline.train.pretrain import demo_config
    from astro_pipeline.train.settings import BaseModelSettings
    from astro_pipeline.train.tokenizer import train_demo_tokenizer

    rows = generate_rows("train", SyntheticSettings())
    tokenizer = train_demo_tokenizer((r["problem"] + "\n" + r["solution"] for r in rows), BaseModelSettings().vocab_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(demo_config(BaseModelSettings(), tokenizer))
    return TransformersBackend(settings=backend_settings, model=model, tokenizer=tokenizer)


def raw_generation(backend: Backend, problems: pl.DataFrame, settings: EvalSettings) -> dict[str, float]:
    """``backend.generate`` alone on evaluate_model's requests (same batches and seeds)."""
    samples = tokens = 0
    seconds = 0.0
    for start in range(0, problems.height, settings.batch_size):
        requests = [r for _, _, r in build_requests(problems.slice(start, settings.batch_size), settings)]
        t0 = time.perf_counter()
        out = backend.generate(requests)
        seconds += time.perf_counter() - t0
        samples += sum(len(s) for s in out)
        tokens += sum(x.n_tokens for s in out for x in s)
    return {"samples": samples, "tokens": tokens, "seconds": seconds}


def _warm_up(backend: Backend, problems: pl.DataFrame, verifier: Verifier) -> None:
    backend.generate([GenerationRequest(messages=chat_messages(problems["problem"][0]),
                                        params=SamplingParams(n=2, max_new_tokens=8, seed=0))])
    if hasattr(verifier, "verify_many"):
        verifier.verify_many([("\\frac{1}{2}", "\\boxed{0.5}")])  # not a plain-number pair: a worker answers


def _full(backend: Backend, problems: pl.DataFrame, settings: EvalSettings, verifier: Verifier,
          counter: Callable[[str], tuple[int, int]] | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = evaluate_model(backend, problems, settings, verifier, benchmark="bench", stage="bench",
                            model_path="(bench)", reflection_counter=counter)
    seconds = time.perf_counter() - t0
    g = result.generations
    return {"samples": g.height, "tokens": int(g["n_tokens"].sum()), "seconds": seconds,
            "timings": result.timings, "verdicts": dict(Counter(g["verdict"].to_list())),
            "pass_at_1": result.score["pass_at_1"]}


def bench_eval(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    backend: Backend | None = None,
    problems: pl.DataFrame | None = None,
    settings: EvalSettings | None = None,
    n_problems: int = 16,
    verifier: Verifier | None = None,
    reflection_counter: Callable[[str], tuple[int, int]] | None = None,
    backend_settings: Any = None,
    repeats: int = 3,
) -> dict[str, Any]:
    """Scored samples/s of ``evaluate_model`` vs raw generation of the same tokens (module docstring)."""
    from astro_pipeline.evaluate.reflections import phrase_bank_counter
    from astro_pipeline.verify import BatchVerifier, VerifySettings

    settings = settings or BENCH_SETTINGS
    problems = (problems if problems is not None else synthetic_problems(n_problems)).head(n_problems)
    label = "(given backend)"
    if backend is None:
        label = str(model_dir) if model_dir is not None else "random tiny llama (untrained)"
        if model_dir is not None:
            from astro_pipeline.llm.factory import make_backend
            from astro_pipeline.llm.settings import BackendSettings

            backend = make_backend(backend_settings or BackendSettings(), model_dir)
        else:
            backend = random_tiny_backend(backend_settings=backend_settings)
    counter = reflection_counter or phrase_bank_counter()
    own_verifier = verifier is None
    if own_verifier:
        verifier = BatchVerifier(VerifySettings(workers=1)).__enter__()
    try:
        _warm_up(backend, problems, verifier)
        rounds = []
        for r in range(max(1, repeats)):
            if r % 2 == 0:
                raw = raw_generation(backend, problems, settings)
                full = _full(backend, problems, settings, verifier, counter)
            else:
                full = _full(backend, problems, settings, verifier, counter)
                raw = raw_generation(backend, problems, settings)
            rounds.append((raw, full))
    finally:
        if own_verifier:
            verifier.__exit__(None, None, None)

    def rate(x: dict) -> float:
        return x["samples"] / x["seconds"] if x["seconds"] > 0 else 0.0

    ratios = [rate(full) / rate(raw) if rate(raw) else 0.0 for raw, full in rounds]
    median = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]
    raw, full = rounds[median]
    return {
        "backend": getattr(backend, "name", type(backend).__name__),
        "model": label,
        "problems": problems.height,
        "settings": {"n_samples": settings.n_samples, "greedy": settings.greedy, "max_new_tokens": settings.max_new_tokens,
                     "batch_size": settings.batch_size, "temperature": settings.temperature},
        "full_samples_per_s": rate(full),
        "raw_samples_per_s": rate(raw),
        "ratio": ratios[median],
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "full_seconds": full["seconds"],
        "raw_seconds": raw["seconds"],
        "samples": full["samples"],
        "tokens": full["tokens"],
        "same_tokens": full["tokens"] == raw["tokens"] and full["samples"] == raw["samples"],
        "generate_s": full["timings"]["generate_s"],
        "score_s": full["timings"]["score_s"],
        "score_wait_s": full["timings"]["score_wait_s"],
        "verdicts": full["verdicts"],
        "pass_at_1": full["pass_at_1"],
    }


def main() -> None:  # python -m astro_pipeline.bench.eval [MODEL_DIR]
    import json
    import sys

    out = bench_eval(sys.argv[1] if len(sys.argv) > 1 else None)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
