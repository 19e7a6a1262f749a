"""Benchmark: the transformers backend's generated tokens/s against a plain ``model.generate`` call.

Design: both run in the same process on the same model, the same prompts (synthetic test problems
through the chat template), the same sampling settings (samples per prompt, temperature, top-p,
token budget) and the same batch size (the backend's ``micro_batch_size`` rows per
``model.generate`` call). Only generated tokens count, up to and including EOS. The two are timed
in alternation, ``repeats`` times each after one warm-up, and the best time of each is kept (the
least disturbed by other work on shared cores). With no ``model_dir`` a randomly initialised tiny
Llama with the demo tokenizer is built: throughput does not depend on what the weights learned,
and the output says so (``model: "random-init ..."``). Such a model rarely emits EOS, so most rows
run to the budget on both sides.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.config import to_dict
from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.llm.protocol import GenerationRequest, SamplingParams
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.llm.transformers_backend import TransformersBackend


def _random_demo_model(seed: int):
    from transformers import LlamaForCausalLM

    from astro_pipeline.train.pretrain import demo_config
    from astro_pipeline.train.settings import BaseModelSettings
    from astro_pipeline.train.tokenizer import train_demo_tokenizer

    rows = generate_rows("train", SyntheticSettings(n_train=500, n_test=10))
    tokenizer = train_demo_tokenizer(r["problem"] + "\n" + r["solution"] for r in rows)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(demo_config(BaseModelSettings(), tokenizer)).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _generated_tokens(rows: torch.Tensor, eos: set[int]) -> int:
    total = 0
    for row in rows.tolist():
        n = len(row)
        for i, tok in enumerate(row):
            if tok in eos:
                n = i + 1
                break
        total += n
    return total


def bench_generate(
    model_dir: str | Path | None = None,
    *,
    n_prompts: int = 16,
    samples_per_prompt: int = 4,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    repeats: int = 2,
    seed: int = 0,
    backend_settings: BackendSettings | None = None,
) -> dict[str, Any]:
    """Tokens/s of ``TransformersBackend.generate`` and of ``model.generate``, and their ratio."""
    settings = backend_settings or BackendSettings()
    if model_dir is None:
        model, tokenizer = _random_demo_model(seed)
        backend = TransformersBackend(settings=settings, model=model, tokenizer=tokenizer)
        model_name = "random-init demo Llama (demo tokenizer; weights untrained, fine for throughput)"
    else:
        backend = TransformersBackend(model_dir, settings)
        model, tokenizer = backend.model, backend.tokenizer
        model_name = str(model_dir)
    problems = [r["problem"] for r in generate_rows("test", SyntheticSettings(n_test=n_prompts, n_train=1))]
    params = SamplingParams(n=samples_per_prompt, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    requests = [GenerationRequest(messages=chat_messages(p), params=params) for p in problems]
    eos = set(backend.eos_ids)

    def run_backend() -> int:
        return sum(s.n_tokens for samples in backend.generate(requests) for s in samples)

    prompts = [backend.render(r) for r in requests]
    per_call = max(1, settings.micro_batch_size // samples_per_prompt)

    def run_generate() -> int:
        tokens = 0
        with torch.inference_mode():
            for start in range(0, len(prompts), per_call):
                enc = tokenizer(prompts[start : start + per_call], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False).to(backend.device)
                out = model.generate(
                    **enc,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=top_p if temperature > 0 else None,
                    top_k=None,
                    max_new_tokens=max_new_tokens,
                    num_return_sequences=samples_per_prompt,
                    pad_token_id=backend.pad_id,
                    eos_token_id=sorted(eos),
                )
                tokens += _generated_tokens(out[:, enc["input_ids"].shape[1] :], eos)
        return tokens

    timings: dict[str, list[tuple[float, int]]] = {"backend": [], "generate": []}
    run_backend(), run_generate()  # warm-up: allocator, kernels, tokenizer caches
    for _ in range(repeats):
        for name, fn in (("backend", run_backend), ("generate", run_generate)):
            t0 = time.perf_counter()
            n = fn()
            timings[name].append((time.perf_counter() - t0, n))
    best = {name: min(runs) for name, runs in timings.items()}
    tps = {name: n / s for name, (s, n) in best.items()}
    return {
        "model": model_name,
        "device": str(backend.device),
        "threads": torch.get_num_threads(),
        "n_prompts": n_prompts,
        "samples_per_prompt": samples_per_prompt,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "repeats": repeats,
        "backend_tokens": best["backend"][1],
        "backend_s": round(best["backend"][0], 3),
        "backend_tokens_per_s": round(tps["backend"], 1),
        "generate_tokens": best["generate"][1],
        "generate_s": round(best["generate"][0], 3),
        "generate_tokens_per_s": round(tps["generate"], 1),
        "ratio": round(tps["backend"] / tps["generate"], 3),
        "backend_settings": to_dict(settings),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m astro_pipeline.bench.generate [--model-dir DIR] ...``: print the result as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None, help="model folder or reference; default: a random tiny Llama")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--micro-batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    result = bench_generate(
        args.model_dir,
        n_prompts=args.prompts,
        samples_per_prompt=args.samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        repeats=args.repeats,
        backend_settings=BackendSettings(micro_batch_size=args.micro_batch_size, threads=args.threads),
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
