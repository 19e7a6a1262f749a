"""Settings of the policy backend (recipe section "backend") and the factory that builds one.

Design: one dataclass for both backends; each reads the fields that concern it (the vLLM-only
fields are ignored by the transformers backend and the other way round). ``make_backend`` imports
a backend lazily, so vLLM is needed only when it is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting

BACKENDS = ("transformers", "vllm")
PREFIX_REUSE = ("prefix", "prompt", "off")


@dataclass(frozen=True)
class BackendSettings:
    name: str = setting(
        "transformers", "backend: transformers (CPU or GPU) or vllm (GPU: the vllm extra; CPU: `make vllm-env`)"
    )
    device: str = setting("auto", "transformers: auto, cpu, cuda or cuda:N (auto = cuda when available)")
    dtype: str = setting(
        "auto", "weights dtype: auto (transformers: bfloat16 on CUDA; vllm: the model's own on GPU; float32 on CPU), "
        "float32, bfloat16, float16"
    )
    micro_batch_size: int = setting(64, "transformers: most sequences decoded together (bounds memory)")
    prune_fraction: float = setting(
        0.25, "transformers: drop finished rows from the batch once this fraction of it has finished"
    )
    prefix_reuse: str = setting(
        "prefix", "transformers: reuse of prompt KV caches. prefix: a prompt asked for n samples (or by several "
        "requests) is prefilled once per micro-batch, and prompts sharing at least half their tokens (MCTS "
        "siblings) prefill the shared part once; prompt: only identical prompts are shared; off: every sample "
        "prefills its own prompt (for comparison; same greedy output, more prefill work)"
    )
    threads: int = setting(0, "transformers on CPU: torch threads; 0 = the cores not busy now")
    attn_implementation: str = setting("sdpa", "transformers: attention kernel (sdpa, eager, flash_attention_2)")
    tensor_parallel_size: int = setting(1, "vllm: GPUs one model is split over")
    gpu_memory_utilization: float = setting(
        0.85, "vllm on GPU: fraction of GPU memory vLLM may take (not passed on CPU, where vLLM reads it as a share of RAM)"
    )
    kv_cache_gib: float = setting(
        0.0, "vllm: KV-cache size in GiB (vLLM's kv_cache_memory_bytes); 0 = on GPU what gpu_memory_utilization "
        "leaves, on CPU 1 GiB"
    )
    enable_prefix_caching: bool = setting(True, "vllm: reuse the KV cache of shared prompt prefixes (MCTS siblings)")
    max_model_len: int = setting(0, "vllm: longest prompt + completion; 0 = the model's own limit")
    enforce_eager: bool = setting(
        False, "vllm: no CUDA graphs on GPU, no torch.compile on CPU (slower decoding, faster start: the CPU "
        "compile warm-up took ~70 s on 2 cores)"
    )
    trust_remote_code: bool = setting(False, "allow model code from the model folder (never needed for Llama)")
    model_cache_dir: str = setting("", "where s3:// models are copied; empty = $ASTRO_MODEL_CACHE or ~/.cache/astro/models")

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ValueError(f"backend.name must be one of {BACKENDS}, got {self.name!r}")
        if self.micro_batch_size < 1:
            raise ValueError("backend.micro_batch_size must be >= 1")
        if not 0.0 < self.prune_fraction <= 1.0:
            raise ValueError("backend.prune_fraction must be in (0, 1]")
        if self.prefix_reuse not in PREFIX_REUSE:
            raise ValueError(f"backend.prefix_reuse must be one of {PREFIX_REUSE}, got {self.prefix_reuse!r}")
        if self.kv_cache_gib < 0:
            raise ValueError("backend.kv_cache_gib must be >= 0")
