"""A metering wrapper around a generation backend: call counts, tokens, time inside generation.

Design: the search asks for one batch per phase; this wrapper optionally splits it into calls of at
most ``max_sequences`` sequences (requests x n, to bound backend memory; 0 = never split), times
each backend call with a monotonic clock, and counts generated tokens per phase. The runner's
summary and the benchmark read these counters (time in generation vs outside it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from astro_pipeline.llm.protocol import Backend, GenerationRequest, Sample


@dataclass
class GenerationStats:
    calls: int = 0
    sequences: int = 0
    tokens: int = 0
    seconds: float = 0.0
    tokens_by_phase: dict[str, int] = field(default_factory=dict)
    calls_by_phase: dict[str, int] = field(default_factory=dict)


def _chunks(requests: Sequence[GenerationRequest], max_sequences: int) -> list[list[GenerationRequest]]:
    if max_sequences <= 0:
        return [list(requests)]
    out: list[list[GenerationRequest]] = [[]]
    size = 0
    for req in requests:
        if out[-1] and size + req.params.n > max_sequences:
            out.append([])
            size = 0
        out[-1].append(req)
        size += req.params.n
    return out


class MeteredBackend:
    """Calls ``backend.generate`` in (optionally bounded) chunks and keeps ``GenerationStats``."""

    def __init__(self, backend: Backend, max_sequences: int = 0) -> None:
        self.backend = backend
        self.max_sequences = max_sequences
        self.stats = GenerationStats()

    def generate(self, requests: Sequence[GenerationRequest], phase: str = "") -> list[list[Sample]]:
        if not requests:
            return []
        results: list[list[Sample]] = []
        for chunk in _chunks(requests, self.max_sequences):
            t0 = time.perf_counter()
            out = self.backend.generate(chunk)
            self.stats.seconds += time.perf_counter() - t0
            if len(out) != len(chunk):
                raise ValueError(f"backend returned {len(out)} results for {len(chunk)} requests")
            tokens = sum(s.n_tokens for samples in out for s in samples)
            self.stats.calls += 1
            self.stats.sequences += sum(r.params.n for r in chunk)
            self.stats.tokens += tokens
            self.stats.tokens_by_phase[phase] = self.stats.tokens_by_phase.get(phase, 0) + tokens
            self.stats.calls_by_phase[phase] = self.stats.calls_by_phase.get(phase, 0) + 1
            results.extend(out)
        return results
