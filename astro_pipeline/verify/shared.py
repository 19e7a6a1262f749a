"""Module-level conveniences over the pool: ``verify_one`` (a process-wide pool shared per settings
value) and ``verify_file`` (verdict counts over a JSON Lines file)."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from astro_pipeline.verify.pool import BatchVerifier, VerifierClosed
from astro_pipeline.verify.rules import Verdict, Verification, _as_text
from astro_pipeline.verify.settings import VerifySettings


_SHARED: dict[VerifySettings, BatchVerifier] = {}  # insertion order = least recently used first
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 4  # pools kept for distinct settings; the least recently used one beyond is closed


def _shared(settings: VerifySettings) -> BatchVerifier:
    with _SHARED_LOCK:
        bv = _SHARED.pop(settings, None)
        if bv is None or bv._closed:
            bv = BatchVerifier(settings)
        _SHARED[settings] = bv
        stale = list(_SHARED)[:-_SHARED_MAX]
        for key in stale:
            _SHARED.pop(key).close()  # waits for a call in flight on that pool (its lock)
        return bv


@atexit.register
def _close_shared() -> None:
    with _SHARED_LOCK:
        for bv in _SHARED.values():
            bv.close()
        _SHARED.clear()


def verify_one(gold: str, response: str, settings: VerifySettings | None = None) -> Verification:
    """Verdict for one pair, using a process-wide worker pool shared per settings value."""
    settings = settings or VerifySettings()
    try:
        return _shared(settings).verify(gold, response)
    except VerifierClosed:  # evicted by another thread between lookup and call: once more
        return _shared(settings).verify(gold, response)


_FILE_BLOCK = 4096  # rows verified per verify_many call: bounds memory on big files


def verify_file(
    path: str | os.PathLike[str],
    gold_field: str = "answer",
    response_field: str = "solution",
    settings: VerifySettings | None = None,
) -> dict[str, Any]:
    """Counts of verdicts over a JSON Lines file of (gold, response) rows.

    Returns ``{"total": N, "correct": .., "wrong": .., "no_answer": .., "unparsable_gold": ..,
    "timeout": .., "bad_lines": .., "seconds": ..}``. ``bad_lines`` counts lines that are not a JSON
    object (they are not in ``total``); blank lines are skipped. A missing or null field is judged as
    an empty text (so a missing gold gives ``unparsable_gold``, a missing response ``no_answer``).
    """
    settings = settings or VerifySettings()
    counts: dict[str, Any] = {"total": 0, **{v.value: 0 for v in Verdict}, "bad_lines": 0}
    t0 = time.perf_counter()

    def flush(block: list[tuple[str, str]], bv: BatchVerifier) -> None:
        for v in bv.verify_many(block):
            counts[v.verdict.value] += 1
        counts["total"] += len(block)
        block.clear()

    block: list[tuple[str, str]] = []
    with BatchVerifier(settings) as bv, Path(path).open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:  # JSONDecodeError, or a number too long to convert
                counts["bad_lines"] += 1
                continue
            if not isinstance(row, dict):
                counts["bad_lines"] += 1
                continue
            block.append((_as_text(row.get(gold_field)), _as_text(row.get(response_field))))
            if len(block) >= _FILE_BLOCK:
                flush(block, bv)
        if block:
            flush(block, bv)
    counts["seconds"] = round(time.perf_counter() - t0, 3)
    return counts
