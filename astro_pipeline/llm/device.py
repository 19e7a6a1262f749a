"""Device, dtype and CPU-thread choices shared by the backends and the demo trainer.

Design: precision follows what the hardware has: bf16 autocast on a CPU pays only where the CPU
computes bf16 natively (AVX512-BF16 or AMX); on an AVX2-only AMD EPYC one demo pretraining step
took 2.78 s in bf16 autocast against 0.30 s in fp32 (9.4x, same process). Thread counts follow the cores that are free *now* (DESIGN: two jobs that each set
``torch.set_num_threads(2)`` on two cores ran 7-60x slower), so "auto" means cpu_count minus the
1-minute load average, at least 1. The load average is read before our own work starts.
"""

from __future__ import annotations

import os

import torch

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def free_cores() -> int:
    """CPU cores not busy according to the 1-minute load average (at least 1)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(n, int(n - busy + 0.5)))


def local_processes() -> int:
    """How many processes torchrun / accelerate started on this machine (1 outside a launcher)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def set_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads: ``threads`` if > 0, else the free cores shared among this
    machine's launched processes (``local_processes``). Returns the count."""
    n = threads if threads > 0 else max(1, free_cores() // local_processes())
    torch.set_num_threads(n)
    return n


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on CUDA (when supported), float32 on CPU (tiny models gain nothing)."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be auto or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where the file does not exist)."""
    try:
        with open(cpuinfo) as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    return bool(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))


def training_autocast(precision: str, device: torch.device, flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """(bf16 autocast on?, why) for ``precision`` in auto / fp32 / bf16 on ``device``.

    ``auto``: bf16 on a CUDA device that supports it and on a CPU with native bf16, fp32 otherwise.
    """
    if precision == "fp32":
        return False, "fp32 requested"
    if precision == "bf16":
        return True, "bf16 requested"
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "CUDA device with bf16" if ok else "CUDA device without bf16"
    if cpu_has_native_bf16(flags):
        return True, "CPU has native bf16 (" + "/".join(sorted(set(BF16_CPU_FLAGS) & (flags or cpu_flags()))) + ")"
    return False, "CPU without native bf16 (no avx512_bf16/amx_bf16): fp32 is ~9x faster than bf16 autocast"
