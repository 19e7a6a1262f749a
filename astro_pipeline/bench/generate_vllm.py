"""Benchmark: generated tokens/s of the vLLM backend and of the transformers backend on the same
MCTS-shaped request set, in one process (``astro bench generate --backend vllm``).

Method:

1. The request set is recorded from a real search (``search_problems`` through ``RecordingBackend``):
   every expansion asks for k next steps of a node whose prompt is the problem plus the node's steps,
   so siblings' prompts share all but their last step and a child's M rollouts share its whole
   prompt. That sharing is what vLLM's prefix caching is for. vLLM records (it is the faster one);
   which backend records does not change the shape of the calls.
2. Both backends replay exactly those calls (same requests, call boundaries, seeds and token caps),
   timing ``generate`` alone. vLLM's prefix cache is emptied before each of its replays, so it reuses
   prefixes only within one replay, as within one search.
3. One untimed warm-up call each, then the replays alternate ``repeats`` times and the best time of
   each backend is kept (the least disturbed by other work on shared cores).

Generated tokens are counted per backend: the samples differ (other random streams) and so do their
lengths, hence tokens/s rather than calls/s. With no ``model_dir`` a randomly initialised demo Llama
is written to a temporary folder (vLLM loads folders): throughput does not depend on what the weights
learned, and the output says so. Such a model rarely ends a step early, so most steps and rollouts
run to their token caps on both sides. The output names the CPU and the load average before and after,
because on shared cores the figure moves with other people's jobs.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from astro_pipeline.bench.mcts import RecordingBackend, replay_throughput
from astro_pipeline.config import to_dict
from astro_pipeline.llm.protocol import Backend, GenerationRequest
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.search.runner import search_problems
from astro_pipeline.search.settings import SearchSettings

# small enough for two CPU cores, shaped like the demo's search (k children, M rollouts, several levels)
BENCH_SEARCH = SearchSettings(k=4, m=4, iterations=4, max_step_tokens=24, max_rollout_tokens=64, parallel_trees=8)


def cpu_name() -> str:
    """The processor's model name from /proc/cpuinfo (or the platform's word for it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def synthetic_problems(n: int) -> pl.DataFrame:
    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows

    rows = generate_rows("test", SyntheticSettings(n_train=10, n_test=n))
    return pl.DataFrame({"dataset": ["synthetic_test"] * n, "problem_id": [r["id"] for r in rows],
                         "problem": [r["problem"] for r in rows], "answer": [r["answer"] for r in rows]})


def record_mcts_calls(backend: Backend, problems: pl.DataFrame, settings: SearchSettings) -> list[list[GenerationRequest]]:
    """The generation calls of one search over ``problems`` (requests with their seeds, in order)."""
    recorder = RecordingBackend(backend)
    search_problems(problems, recorder, FakeVerifier(), settings, progress=False)
    return recorder.calls


def request_set_shape(calls: Sequence[Sequence[GenerationRequest]], backend: Backend) -> dict[str, Any]:
    """How much the recorded prompts share: what prefix caching can save."""
    prompts = [backend.encode(r) for call in calls for r in call]  # type: ignore[attr-defined]
    sequences = sum(r.params.n for call in calls for r in call)
    trie: dict = {}  # token -> sub-trie: every prompt prefix seen so far
    new_tokens = 0  # prompt tokens that are not a prefix of an earlier prompt (what a prefix cache must compute)
    for ids in prompts:
        node = trie
        for tok in ids:
            if tok not in node:
                node[tok] = {}
                new_tokens += 1
            node = node[tok]
    total = sum(len(p) for p in prompts)
    return {"calls": len(calls), "requests": len(prompts), "sequences": sequences, "prompt_tokens": total,
            "prompt_tokens_shared_share": round(1 - new_tokens / total, 3) if total else 0.0}


def compare_on_calls(vllm: Backend, hf: Backend, calls: Sequence[Sequence[GenerationRequest]],
                     repeats: int = 2) -> dict[str, Any]:
    """Best-of-``repeats`` tokens/s of both backends replaying ``calls``, and their ratio."""
    if not calls:
        raise ValueError("no generation calls to replay")
    load_before = _load()
    for backend in (vllm, hf):
        backend.generate(calls[0])  # warm-up: allocator, kernels, tokenizer caches
    runs: dict[str, list[dict[str, float]]] = {"vllm": [], "transformers": []}
    for _ in range(max(1, repeats)):
        vllm.reset_prefix_cache()  # type: ignore[attr-defined]
        runs["vllm"].append(replay_throughput(vllm, calls))
        runs["transformers"].append(replay_throughput(hf, calls))
    best = {name: max(rs, key=lambda r: r["tokens_per_second"]) for name, rs in runs.items()}
    v, t = best["vllm"]["tokens_per_second"], best["transformers"]["tokens_per_second"]
    return {
        "vllm_tokens": best["vllm"]["tokens"],
        "vllm_s": round(best["vllm"]["seconds"], 3),
        "vllm_tokens_per_s": round(v, 1),
        "transformers_tokens": best["transformers"]["tokens"],
        "transformers_s": round(best["transformers"]["seconds"], 3),
        "transformers_tokens_per_s": round(t, 1),
        "ratio": round(v / t, 3) if t else 0.0,
        "repeats": max(1, repeats),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
    }


def _random_model_dir(out: Path, seed: int) -> Path:
    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
    from astro_pipeline.train.settings import BaseModelSettings
    from astro_pipeline.train.tiny_llama import save_random_llama
    from astro_pipeline.train.tokenizer import train_demo_tokenizer

    rows = generate_rows("train", SyntheticSettings(n_train=500, n_test=10))
    tokenizer = train_demo_tokenizer(r["problem"] + "\n" + r["solution"] for r in rows)
    s = BaseModelSettings()
    return save_random_llama(tokenizer, out, hidden_size=s.hidden_size, num_layers=s.num_layers,
                             num_heads=s.num_heads, intermediate_size=s.intermediate_size,
                             max_position_embeddings=s.max_position_embeddings, seed=seed)


def bench_generate_vllm(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    n_problems: int = 8,
    repeats: int = 2,
    search: SearchSettings = BENCH_SEARCH,
    vllm_settings: BackendSettings | None = None,
    hf_settings: BackendSettings | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Both backends on ``model_dir`` (default: a random demo Llama) over one recorded MCTS request set."""
    from astro_pipeline.llm.transformers_backend import TransformersBackend
    from astro_pipeline.llm.vllm_backend import VLLMBackend

    vllm_settings = vllm_settings or BackendSettings(name="vllm", dtype="float32")
    hf_settings = hf_settings or BackendSettings(dtype="float32")
    with tempfile.TemporaryDirectory(prefix="astro-bench-vllm-") as tmp:
        if model_dir is None:
            path = _random_model_dir(Path(tmp) / "model", seed)
            model_name = "random-init demo Llama (demo tokenizer; weights untrained, fine for throughput)"
        else:
            path, model_name = Path(model_dir), str(model_dir)
        t0 = time.perf_counter()
        vllm = VLLMBackend(path, vllm_settings)
        start_s = time.perf_counter() - t0
        try:
            hf = TransformersBackend(path, hf_settings)
            calls = record_mcts_calls(vllm, synthetic_problems(n_problems), search)
            result = compare_on_calls(vllm, hf, calls, repeats)
            shape = request_set_shape(calls, hf)
            import torch

            return {
                "model": model_name,
                **result,
                "request_set": {"problems": n_problems, "k": search.k, "m": search.m, "iterations": search.iterations,
                                "max_step_tokens": search.max_step_tokens,
                                "max_rollout_tokens": search.max_rollout_tokens, **shape},
                "vllm_engine_start_s": round(start_s, 1),
                "vllm_on_cpu": vllm.on_cpu,
                "vllm_engine": {k: v for k, v in vllm.engine_kwargs.items() if k != "model"},
                "transformers_threads": torch.get_num_threads(),
                "vllm_settings": to_dict(vllm_settings),
                "transformers_settings": to_dict(hf_settings),
            }
        finally:
            vllm.close()
