"""Device, dtype and CPU-thread choices shared by the backends and the demo trainer.

Design: thread counts follow the cores that are free *now* (DESIGN: two jobs that each set
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


def set_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads: ``threads`` if > 0, else the free cores. Returns the count."""
    n = threads if threads > 0 else free_cores()
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
