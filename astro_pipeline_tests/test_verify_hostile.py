"""Hostile responses: every one is judged, nothing is executed, every pair stays within the time bound.

The data file is written by ``data/make_hostile_responses.py`` (committed beside it).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from astro_pipeline.verify import BatchVerifier, Verdict, Verification, VerifySettings
from astro_pipeline.verify.rules import prepare

DATA = Path(__file__).resolve().parent / "data" / "hostile_responses.jsonl"
SENTINEL = Path("/tmp/astro_verify_pwned_sentinel")  # what every code payload tries to create
TIMEOUT_S = 0.5
# slack over the deadline for one pair: the parent notices an overrun at its next wake-up, and this
# machine is shared, so a loaded scheduler can delay that by a fraction of a second
SLACK_S = 2.0


def _rows() -> list[dict]:
    with DATA.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_hostile_file_is_what_the_generator_writes():
    rows = _rows()
    assert len(rows) >= 200
    kinds = Counter(r["kind"] for r in rows)
    assert set(kinds) >= {"nesting", "tower", "huge", "code", "latex", "unicode", "nul", "unbalanced"}
    assert max(len(r["response"]) for r in rows) >= 1_000_000
    assert any("__import__('os').system" in r["response"] for r in rows)
    assert any(r["response"].count("{") >= 5000 for r in rows)


@pytest.mark.timeout(300)
def test_hostile_responses_are_judged_safely_and_in_time():
    rows = _rows()
    if SENTINEL.exists():
        SENTINEL.unlink()
    settings = VerifySettings(timeout_s=TIMEOUT_S)

    # the calling process's share of the work (extraction, guards) is linear-time: bound it per row
    for r in rows:
        t0 = time.perf_counter()
        prepare(r["gold"], r["response"], settings)
        assert time.perf_counter() - t0 < 3.0, r["id"]

    results: list[Verification] = []
    errors: list[BaseException] = []
    with BatchVerifier(settings) as verifier:
        verifier.verify("\\frac{1}{2}", "\\boxed{0.5}")  # start the workers outside the measurement

        def run() -> None:
            try:
                results.extend(verifier.verify_many([(r["gold"], r["response"]) for r in rows]))
            except BaseException as exc:  # reported below
                errors.append(exc)

        # a watchdog thread: a hang fails the test instead of blocking the run
        t0 = time.perf_counter()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=240)
        elapsed = time.perf_counter() - t0
        assert not worker.is_alive(), "verify_many hung"
        assert not errors, errors
        stats = dict(verifier.stats)

    assert len(results) == len(rows)
    assert all(isinstance(v, Verification) and isinstance(v.verdict, Verdict) and v.reason for v in results)
    # nothing was executed
    assert not SENTINEL.exists(), "a payload ran"
    # every pair handed to a worker got its verdict or was killed within the bound
    assert stats["max_pair_s"] <= TIMEOUT_S + SLACK_S, stats
    n_worker = stats["worker"] - 1  # minus the warm-up pair
    assert elapsed <= n_worker * (TIMEOUT_S + SLACK_S), (elapsed, stats)

    by_id = {r["id"]: v for r, v in zip(rows, results)}
    verdicts = Counter(v.verdict for v in results)
    # a 1 MB response whose final box is right is still judged right
    huge = [r for r in rows if r["kind"] == "huge" and r["gold"] == "7"]
    assert huge and all(by_id[r["id"]].verdict is Verdict.CORRECT for r in huge)
    # lookalike digits are not read as the ASCII number (Arabic-Indic, fullwidth, math bold, ...)
    lookalikes = [r for r in rows if r["kind"] == "unicode" and r["gold"] == "25" and r["response"].startswith("\\boxed{")]
    non_ascii = [r for r in lookalikes if not any(c.isascii() and c.isdigit() for c in r["response"][7:-1])]
    assert len(non_ascii) >= 6 and all(by_id[r["id"]].verdict is not Verdict.CORRECT for r in non_ascii)
    # code payloads are never credited
    code = [r for r in rows if r["kind"] == "code" and r["gold"] == "2"]
    assert code and all(by_id[r["id"]].verdict is not Verdict.CORRECT for r in code)
    # towers of literal powers are refused without sympy, not timed out
    towers = [r for r in rows if r["kind"] == "tower" and r["gold"] == "1" and "9^{9^{9}}" in r["response"]]
    assert towers and all("digits" in by_id[r["id"]].reason for r in towers)
    print(f"hostile: {len(rows)} rows in {elapsed:.1f} s, {dict(verdicts)}, stats {stats}")
