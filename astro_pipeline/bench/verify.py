"""Benchmark of the answer verifier: ``BatchVerifier.verify_many`` vs a plain math-verify loop.

``bench_verify()`` measures verifications per second of

* the batch API (``astro_pipeline.verify.BatchVerifier``: extraction, normalization and the
  plain-number fast path in this process, math-verify in ``settings.workers`` processes), and
* the naive way: for each pair, in this process, ``math_verify.parse("\\boxed{" + gold + "}")``,
  ``math_verify.parse(response)``, ``math_verify.verify(gold, pred)`` with math-verify's default
  extraction configs and timeouts (its signal-based timeouts need the main thread; called from
  another thread the loop runs with them off, and the result says so),

on the SAME pairs in the same process, alternating, for ``repeats`` rounds; the best round of each
is kept, because other jobs on shared cores only ever make a round slower. Each round takes its
own problems (a different slice of the file), so no round is sped up by the gold-parse caches of
an earlier one. The batch API is timed once more per round with the fast path off, to show what
the fast path buys. The worker pools are started (one warm-up pair with another gold answer)
before any clock starts; that start-up is reported on its own as ``batch_startup_s``.

Wall-clock rates depend on how busy the cores are (other jobs on a shared machine cap what worker
processes can gain), so the result also gives the 1-minute load average and the CPU time per
verification of both ways (the batch's counts this process and its workers, read from /proc).

Pairs: with a data folder (``data_dir`` or ``$ASTRO_DATA_DIR``) holding ``math500.jsonl``, half
are (answer_i, solution_i) and half (answer_i, solution_{i+1}): real answers, real solution texts,
both verdicts. Without one, a built-in list of typical pairs is cycled. The result also counts how
often the two methods agree on correct-vs-not (they differ where the naive loop reads any number in
a response as its answer, or misses leading zeros and the like).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from astro_pipeline.verify import BatchVerifier, Verdict, VerifySettings
from astro_pipeline.verify.pool import _cpu_count

BUILTIN_PAIRS: tuple[tuple[str, str], ...] = (
    ("\\frac{1}{2}", "We get $x = \\frac{2}{4}$, so the answer is $\\boxed{\\frac{1}{2}}$."),
    ("25", "The remainder is $\\boxed{025}$."),
    ("2,125", "Multiplying, the total is $\\boxed{2125}$."),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "So the point is $\\boxed{(3, \\frac{\\pi}{2})}$."),
    ("x^2 + 2x + 1", "Expanding gives $\\boxed{(x+1)^2}$."),
    ("50\\%", "Half of them, i.e. $\\boxed{50}$ percent."),
    ("\\sqrt{2}", "Then $d = \\boxed{\\frac{2}{\\sqrt{2}}}$."),
    ("[-2, 7]", "The solution set is $x \\in \\boxed{[-2,7]}$."),
    ("18", "She makes 9 * 2 = 18 dollars.\n#### 18"),
    ("\\text{(C)}", "The correct option is $\\boxed{\\text{(C)}}$."),
    ("7", "First $\\boxed{5}$, but rechecking, $\\boxed{7}$."),
    ("\\frac{3}{4}", "Thus the probability is $\\boxed{\\frac{2}{3}}$."),
    ("12", "The count is $\\boxed{13}$."),
    ("\\pi", "The area is $\\boxed{2\\pi}$."),
    ("(1, 2)", "The interval is $\\boxed{1 < x < 2}$."),
    ("10", "I am not sure."),
)


def _load_pairs(n_pairs: int, data_dir: str | None, offset: int = 0) -> tuple[list[tuple[str, str]], str]:
    """``n_pairs`` pairs starting at problem ``offset``: alternately matched and mismatched."""
    folder = data_dir or os.environ.get("ASTRO_DATA_DIR")
    path = Path(folder) / "math500.jsonl" if folder else None
    if path is not None and path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        pairs: list[tuple[str, str]] = []
        i = offset
        while len(pairs) < n_pairs:
            a, b = rows[i % len(rows)], rows[(i + 1) % len(rows)]
            pairs.append((a["answer"], a["solution"]))
            if len(pairs) < n_pairs:
                pairs.append((a["answer"], b["solution"]))
            i += 1
        return pairs, str(path)
    return [BUILTIN_PAIRS[(offset + i) % len(BUILTIN_PAIRS)] for i in range(n_pairs)], "builtin"


def _sequential(pairs: list[tuple[str, str]], use_timeouts: bool) -> tuple[float, list[bool], float]:
    from math_verify import parse, verify

    kwargs_parse: dict[str, Any] = {} if use_timeouts else {"parsing_timeout": None}
    kwargs_verify: dict[str, Any] = {} if use_timeouts else {"timeout_seconds": None}
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    out = []
    for gold, response in pairs:
        # the gold answer in \boxed{} so it is parsed at all ("x^2+1" without delimiters is not)
        g = parse("\\boxed{" + gold + "}", **kwargs_parse)
        p = parse(response, **kwargs_parse)
        out.append(bool(verify(g, p, **kwargs_verify)))
    return time.perf_counter() - t0, out, time.process_time() - cpu0


def _workers_cpu_s(bv: BatchVerifier) -> float | None:
    """CPU seconds used so far by the pool's live worker processes (Linux /proc), else None."""
    total = 0.0
    try:
        tick = os.sysconf("SC_CLK_TCK")
        for w in bv._slots:
            if w is not None:
                fields = Path(f"/proc/{w.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return total


def _timed(bv: BatchVerifier, pairs: list[tuple[str, str]]) -> tuple[float, list[bool], float | None]:
    """Wall seconds, correct flags, and CPU seconds of this process plus the workers (or None)."""
    cpu0, wcpu0 = time.process_time(), _workers_cpu_s(bv)
    t0 = time.perf_counter()
    results = bv.verify_many(pairs)
    elapsed = time.perf_counter() - t0
    cpu, wcpu1 = time.process_time() - cpu0, _workers_cpu_s(bv)
    total_cpu = cpu + (wcpu1 - wcpu0) if wcpu0 is not None and wcpu1 is not None else None
    return elapsed, [v.verdict is Verdict.CORRECT for v in results], total_cpu


def bench_verify(
    n_pairs: int = 200,
    data_dir: str | None = None,
    *,
    repeats: int = 3,
    settings: VerifySettings | None = None,
) -> dict[str, Any]:
    """Verifications per second of the batch API and of a sequential math-verify loop (see module doc)."""
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" warnings
    settings = settings or VerifySettings()
    no_fast = dataclasses.replace(settings, fast_path=False)
    use_timeouts = threading.current_thread() is threading.main_thread()
    repeats = max(1, repeats)

    seq_times, batch_times, nofast_times = [], [], []
    batch_correct = seq_correct = agree = total = 0
    batch_cpu: float | None = 0.0
    seq_cpu = 0.0
    t0 = time.perf_counter()
    with BatchVerifier(settings) as bv, BatchVerifier(no_fast) as bv_no_fast:
        # start both pools' workers outside the timed rounds (a gold answer no benchmark pair has)
        bv.verify("\\frac{123457}{2}", "\\boxed{61728.5}")
        bv_no_fast.verify("\\frac{123457}{2}", "\\boxed{61728.5}")
        startup = time.perf_counter() - t0
        source = ""
        for r in range(repeats):
            # each round its own problems, so no round is sped up by caches of an earlier one
            pairs, source = _load_pairs(n_pairs, data_dir, offset=r * ((n_pairs + 1) // 2))
            elapsed, batch_out, cpu = _timed(bv, pairs)
            batch_times.append(elapsed)
            batch_cpu = None if cpu is None or batch_cpu is None else batch_cpu + cpu
            elapsed, seq_out, cpu = _sequential(pairs, use_timeouts)
            seq_times.append(elapsed)
            seq_cpu += cpu
            nofast_times.append(_timed(bv_no_fast, pairs)[0])
            batch_correct += sum(batch_out)
            seq_correct += sum(seq_out)
            agree += sum(a == b for a, b in zip(batch_out, seq_out))
            total += len(pairs)
        stats = dict(bv.stats)

    batch_rate = n_pairs / min(batch_times)
    seq_rate = n_pairs / min(seq_times)
    return {
        "pairs_per_round": n_pairs,
        "rounds": repeats,
        "source": source,
        "workers": settings.workers or _cpu_count(),
        "cpu_count": _cpu_count(),
        # other jobs on the same cores cap what worker processes can gain; read the ratio with it
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "batch_per_s": round(batch_rate, 1),
        "batch_no_fast_path_per_s": round(n_pairs / min(nofast_times), 1),
        "sequential_per_s": round(seq_rate, 1),
        "ratio": round(batch_rate / seq_rate, 2),
        "fast_path_share": round(stats.get("fast_path", 0) / max(1, stats.get("fast_path", 0) + stats.get("worker", 0)), 3),
        "batch_startup_s": round(startup, 2),
        "batch_correct_share": round(batch_correct / total, 3),
        "sequential_correct_share": round(seq_correct / total, 3),
        "agreement": round(agree / total, 3),
        "sequential_timeouts": "signal" if use_timeouts else "off (not the main thread)",
        # CPU time per verification over all rounds (batch: this process plus its workers): the work
        # each way does, whatever else runs on the cores. On W free cores the batch rate approaches
        # W * sequential_cpu_ms / batch_cpu_ms times the sequential rate.
        "batch_cpu_ms_per_pair": None if batch_cpu is None else round(1000 * batch_cpu / total, 2),
        "sequential_cpu_ms_per_pair": round(1000 * seq_cpu / total, 2),
        "batch_rounds_s": [round(t, 2) for t in batch_times],
        "batch_no_fast_path_rounds_s": [round(t, 2) for t in nofast_times],
        "sequential_rounds_s": [round(t, 2) for t in seq_times],
    }
