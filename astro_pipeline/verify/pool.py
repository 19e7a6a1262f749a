"""The verifier process pool: ``BatchVerifier.verify_many(pairs) -> list[Verification]``.

Pairs the rules (``rules.prepare``) cannot decide in the calling process go to math-verify in worker
processes, each pair with its own deadline.

Design choices:

* Processes, not threads: math-verify's own timeouts use ``signal.alarm`` (main thread only, and a
  C-level sympy loop ignores them anyway). Killing a process is the only bound that always holds.
* Workers start from a ``forkserver`` that has imported math-verify once, so replacing a killed
  worker costs a fork, not a sympy import, and a multi-threaded caller is never ``fork()``ed.
* Pairs go to workers in chunks (one message per ``chunk_size`` pairs) but each verdict comes back
  on its own, so every pair has its own deadline and a slow pair never costs its chunk-mates.
* Only short extracted answers cross the process boundary (not whole responses), which keeps the
  inter-process traffic small; extraction itself is a linear scan in the calling process.
* Thread safety: a ``BatchVerifier`` serializes calls that need its workers with a lock; extraction
  and the fast path run outside it. ``verify_one`` shares one pool per distinct settings value.
* Nothing here evaluates text as code (see ``_worker`` for why math-verify's paths are safe).

Caveats: as with any ``spawn``/``forkserver`` multiprocessing, a *script* that uses this module
needs the ``if __name__ == "__main__":`` guard (the CLI, pytest, notebooks and Dagster are fine).
A daemonic process (e.g. a ``multiprocessing.Pool`` worker) cannot start workers; use it from the
main process or a non-daemonic one.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from multiprocessing.connection import wait as mp_wait
from typing import Any

from astro_pipeline.verify.rules import Verdict, Verification, _Job, prepare
from astro_pipeline.verify.settings import VerifySettings

_STARTUP_TIMEOUT_S = 120.0  # a worker that cannot even start is an environment error, not a verdict


class VerifierClosed(RuntimeError):
    """The BatchVerifier was closed (by ``close``, its ``with`` block, or eviction of a shared pool)."""


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _Worker:
    def __init__(self, process: Any, conn: Any) -> None:
        self.process = process
        self.conn = conn
        self.pending: deque[tuple[int, str, str]] = deque()
        self.started = 0.0  # when the pair at the head of ``pending`` started (monotonic seconds)

    def stop(self, kill: bool) -> None:
        try:
            if not kill:
                self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        if kill:
            self.process.kill()
        self.process.join(timeout=0.5 if not kill else 5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5.0)
        self.conn.close()


class BatchVerifier:
    """A pool of verifier worker processes; use as a context manager (or call ``close``).

    ``verify_many`` uses every worker (``settings.workers``, 0 = all cores) and returns one
    ``Verification`` per pair, in order. Workers start lazily on the first pair that needs one.
    """

    def __init__(self, settings: VerifySettings | None = None) -> None:
        self.settings = settings or VerifySettings()
        self.n_workers = self.settings.workers or _cpu_count()
        self._ctx = mp.get_context(self.settings.start_method)
        if self.settings.start_method == "forkserver":
            # only effective if this process has not started its forkserver yet; harmless otherwise
            self._ctx.set_forkserver_preload(["astro_pipeline.verify._preload"])
        self._slots: list[_Worker | None] = [None] * self.n_workers
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        # counters since creation; max_pair_s is the longest a worker spent on one pair (as timed by
        # this process, start of the pair to its verdict or to the kill), the bound the deadline enforces
        self.stats: dict[str, float] = {"fast_path": 0, "worker": 0, "timeouts": 0, "restarts": 0, "max_pair_s": 0.0}

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._pid != os.getpid():  # a forked copy: the workers belong to the parent
                self._slots = [None] * self.n_workers
                return
            for i, w in enumerate(self._slots):
                if w is not None:
                    w.stop(kill=False)
                    self._slots[i] = None

    def _options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "float_rounding": s.float_rounding,
            "numeric_precision": s.numeric_precision,
            "strict": s.strict,
            "worker_memory_mb": s.worker_memory_mb,
        }

    def _start_workers(self, slots: Iterable[int]) -> None:
        from astro_pipeline.verify._worker import worker_main

        started = []
        for i in slots:
            parent_conn, child_conn = self._ctx.Pipe(duplex=True)
            proc = self._ctx.Process(
                target=worker_main, args=(child_conn, self._options()), daemon=True, name=f"astro-verify-{i}"
            )
            proc.start()
            child_conn.close()
            started.append((i, _Worker(proc, parent_conn)))
        for i, w in started:
            # wait for the worker's "ready" so start-up time is never charged to a pair's deadline
            if not w.conn.poll(_STARTUP_TIMEOUT_S):
                w.stop(kill=True)
                raise RuntimeError(f"verifier worker did not start within {_STARTUP_TIMEOUT_S:.0f} s")
            try:
                w.conn.recv()
            except (EOFError, OSError) as exc:
                w.stop(kill=True)
                raise RuntimeError(f"verifier worker exited at start-up (exit code {w.process.exitcode})") from exc
            self._slots[i] = w

    def _discard(self, slot: int) -> None:
        w = self._slots[slot]
        if w is not None:
            w.stop(kill=True)
            self._slots[slot] = None
            self.stats["restarts"] += 1

    # -- verification ------------------------------------------------------------------------
    def verify(self, gold: str, response: str) -> Verification:
        return self.verify_many([(gold, response)])[0]

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Verification]:
        """One ``Verification`` per ``(gold, response)`` pair, in the same order."""
        results: list[Verification | None] = [None] * len(pairs)
        jobs: list[tuple[int, _Job]] = []
        for i, (gold, response) in enumerate(pairs):
            prepared = prepare(gold, response, self.settings)
            if isinstance(prepared, Verification):
                results[i] = prepared
            else:
                jobs.append((i, prepared))
        with self._lock:
            if self._closed:
                raise VerifierClosed("BatchVerifier is closed")
            self.stats["fast_path"] += len(pairs) - len(jobs)
            if jobs:
                if self._pid != os.getpid():  # forked: start our own workers, leave the parent's alone
                    self._slots = [None] * self.n_workers
                    self._pid = os.getpid()
                self.stats["worker"] += len(jobs)
                self._run_jobs(jobs, results)
        if any(r is None for r in results):
            _fail_missing(results)
        return results  # type: ignore[return-value]  # all settled, checked above

    def _run_jobs(self, jobs: list[tuple[int, _Job]], results: list[Verification | None]) -> None:
        s = self.settings
        by_index = dict(jobs)
        items = [(i, job.gold, job.pred) for i, job in jobs]
        queue: deque[tuple[int, str, str]] = deque(items)
        n_use = min(self.n_workers, len(queue))

        def next_chunk() -> list[tuple[int, str, str]]:
            # guided self-scheduling: full chunks while there is plenty left, smaller ones towards the
            # end, so one worker is not left with a chunk of slow pairs while the others sit idle
            k = max(1, min(s.chunk_size, len(queue) // (2 * n_use)))
            return [queue.popleft() for _ in range(min(k, len(queue)))]

        missing = [i for i in range(n_use) if self._slots[i] is None or not self._slots[i].process.is_alive()]
        for i in missing:
            if self._slots[i] is not None:
                self._discard(i)
        if missing:
            self._start_workers(missing)
        busy: dict[int, _Worker] = {}

        def settle(index: int, verdict: Verdict, reason: str) -> None:
            job = by_index[index]
            results[index] = Verification(verdict, reason, job.gold_shown, job.pred_shown)

        def fail_head(slot: int, w: _Worker, reason: str) -> None:
            # the pair being worked on gets 'timeout'; the rest of the chunk goes back to the queue
            self.stats["max_pair_s"] = max(self.stats["max_pair_s"], time.monotonic() - w.started)
            index = w.pending.popleft()[0]
            settle(index, Verdict.TIMEOUT, reason)
            self.stats["timeouts"] += 1
            if w.pending:
                queue.extendleft(reversed(w.pending))
            busy.pop(slot, None)
            self._discard(slot)

        try:
            while queue or busy:
                for slot in range(n_use):
                    if not queue:
                        break
                    if slot in busy:
                        continue
                    if self._slots[slot] is None:
                        self._start_workers([slot])
                    w = self._slots[slot]
                    assert w is not None
                    chunk = next_chunk()
                    try:
                        w.conn.send(chunk)
                    except (BrokenPipeError, OSError):
                        queue.extendleft(reversed(chunk))
                        self._discard(slot)
                        continue
                    w.pending = deque(chunk)
                    w.started = time.monotonic()
                    busy[slot] = w
                if not busy:
                    continue
                now = time.monotonic()
                next_deadline = min(w.started for w in busy.values()) + s.timeout_s
                ready = mp_wait([w.conn for w in busy.values()], timeout=max(0.0, next_deadline - now))
                by_conn = {id(w.conn): slot for slot, w in busy.items()}
                for conn in ready:
                    slot = by_conn[id(conn)]
                    w = busy[slot]
                    try:
                        while w.pending and conn.poll():
                            index, verdict, reason = conn.recv()
                            head = w.pending.popleft()
                            if head[0] != index:  # protocol invariant: answers come back in order
                                raise RuntimeError(f"verifier worker answered pair {index}, expected {head[0]}")
                            settle(index, Verdict(verdict), reason)
                            now = time.monotonic()
                            self.stats["max_pair_s"] = max(self.stats["max_pair_s"], now - w.started)
                            w.started = now
                    except (EOFError, OSError):
                        w.process.join(timeout=1.0)
                        fail_head(slot, w, f"the verifier worker died (exit code {w.process.exitcode})")
                        continue
                    if not w.pending:
                        busy.pop(slot)
                now = time.monotonic()
                for slot, w in list(busy.items()):
                    if now - w.started > s.timeout_s:
                        fail_head(slot, w, f"no verdict within {s.timeout_s:g} s (worker killed)")
        except BaseException:
            # interrupted mid-batch: busy workers hold stale answers, so they cannot be reused
            for slot in list(busy):
                self._discard(slot)
            raise


def _fail_missing(results: list[Verification | None]) -> None:
    # every pair is settled by construction; this guards the invariant instead of returning None
    missing = [i for i, r in enumerate(results) if r is None]
    raise RuntimeError(f"internal error: no verdict for pairs {missing[:10]}")
