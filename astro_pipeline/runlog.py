"""What a pipeline run prints: how often progress is logged, and which library warnings are dropped.

Design choices:

* Progress lines of long loops (search iterations, training steps, pretraining) go through a
  ``Throttle``: at most one line per ``ASTRO_PROGRESS_S`` seconds (default 30), and none for a step
  shorter than that, whose result line says enough. So the log's length follows the run's
  duration in minutes, not its number of steps.
* Known, harmless warnings are silenced by exact category and message, each with the reason; any
  other warning still shows. ``--verbose`` keeps them all.
* Hub progress bars (e.g. "Loading weights: 100%") are switched off unless the user set the
  variable: a run loads models dozens of times.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable

DEFAULT_EVERY_S = 30.0

OnLog = Callable[[int, dict[str, float]], None]
"""``on_log(step, metrics)``: what a training loop calls once per logged step (every stage's type)."""

# (message regex, why it is harmless here); matched on the start of the warning's text
KNOWN_WARNINGS: tuple[tuple[str, str], ...] = (
    (r"`past_key_values` is deprecated",
     "transformers (FutureWarning) renames a keyword of the forward call; behaviour is unchanged in this version"),
    (r"Specifying a partitions_def on an AssetCheckSpec",
     "Dagster (PreviewWarning): the corpus check is partitioned like its asset, which is what we mean"),
    (r"Class `MultiToSingleDimensionPartitionMapping` is currently in beta",
     "Dagster (BetaWarning): the eval_scores -> benchmark_problems mapping is exactly this relation"),
    (r"`is_gradient_checkpointing` is deprecated",
     "transformers (FutureWarning) renames an attribute TRL reads; gradient checkpointing is off on CPU anyway"),
)

# (logger, message regex, why it is harmless here): library log lines, not warnings
KNOWN_LOG_LINES: tuple[tuple[str, str, str], ...] = (
    ("transformers.trainer_utils", r"mtime may not be reliable",
     "checkpoint folders are then ordered by step number, which is what a resume needs"),
)


class _DropMatching(logging.Filter):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def progress_every_s() -> float:
    try:
        return max(0.0, float(os.environ.get("ASTRO_PROGRESS_S", DEFAULT_EVERY_S)))
    except ValueError:
        return DEFAULT_EVERY_S


class Throttle:
    """Wraps ``log(msg)``: passes a message on only when ``every_s`` seconds have gone by since the
    last one passed (or since the start), so short steps log no progress at all."""

    def __init__(self, log: Callable[[str], object], every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.clock = log, clock
        self.every_s = progress_every_s() if every_s is None else every_s
        self.last = clock()

    def __call__(self, message: str) -> None:
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            self.log(message)


def quiet_known_warnings() -> None:
    """Drop the warnings in ``KNOWN_WARNINGS`` in this process (the others still show)."""
    for message, _why in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name, message, _why in KNOWN_LOG_LINES:
        logging.getLogger(name).addFilter(_DropMatching(message))
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
