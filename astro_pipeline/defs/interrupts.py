"""Noticing Ctrl-C (SIGINT) and SIGTERM across a whole `astro run`, whoever handles them meanwhile.

Design: `astro run` is a loop of in-process Dagster runs. During a run Dagster installs its own
SIGINT handler, and maps SIGTERM to it: the signal ends that run (or, in a phase Dagster does not
interrupt, such as an asset check, it only sets a flag that Dagster clears at the end of the run),
then Dagster puts the previous handlers back. So a handler of ours would never see the signal,
and the loop went on to the next run; a SIGTERM during a check vanished and the command exited 0.

Python's C-level signal handler writes the number of every caught signal to the *wakeup fd*,
whichever Python handler is installed at the time. A pipe set as wakeup fd for the duration of
the command therefore records each SIGINT/SIGTERM; the runner asks ``received()`` before and after
every run and stops at the first one. Our own handlers (between runs) only record too: the run in
progress is stopped by Dagster's, and writes are atomic, so no half-written artifact is left. A
second signal while no run is in progress raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager: records SIGINT/SIGTERM for ``received()``; a no-op outside the main thread."""

    def __init__(self) -> None:
        self._first: int | None = None
        self._active = False
        self._handled = 0

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals are delivered to the main thread only; nothing to watch from here
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._old_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._old_handlers = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        self._active = True
        return self

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        # the wakeup fd has recorded it; the runner stops before the next run. A second one means "now".
        self._handled += 1
        if self._handled > 1:
            raise KeyboardInterrupt

    def received(self) -> int | None:
        """The first SIGINT/SIGTERM caught since entering, or None."""
        if self._active:
            try:
                while chunk := os.read(self._read, 512):
                    for signum in chunk:
                        if self._first is None and signum in STOP_SIGNALS:
                            self._first = signum
            except BlockingIOError:
                pass
        return self._first

    def __exit__(self, *exc: object) -> None:
        if not self._active:
            return
        self.received()
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._read)
        os.close(self._write)
        self._active = False


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
