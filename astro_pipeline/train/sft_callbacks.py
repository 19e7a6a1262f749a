"""Trainer callbacks of the SFT stage: per-step metrics to a plain Python callable.

Design: TRL's SFTTrainer already computes loss, learning rate, grad norm, token accuracy, entropy and a
running count of non-padding tokens (``num_tokens``, summed over all processes); the callback adds
tokens per second (the growth of ``num_tokens`` over wall time since the previous log) and hands the
numeric values to ``on_log(step, metrics)`` on the main process only, so the caller (the Dagster
asset) never sees the same step twice from several ranks. It writes ``tokens_per_s`` back into the
log record, so trackers that run after it (TensorBoard) record it too. The trainer's final summary
record (``train_runtime`` and friends) is kept apart, not passed as a step.
"""

from __future__ import annotations

import logging
import math
import time

from transformers import TrainerCallback
from astro_pipeline.runlog import OnLog

log = logging.getLogger(__name__)



class StepMetricsCallback(TrainerCallback):
    """Forward every training log record (with tokens/s added) to ``on_log``; keep a history."""

    def __init__(self, on_log: OnLog | None = None) -> None:
        self.on_log_fn = on_log
        self.history: list[dict[str, float]] = []
        self.final: dict[str, float] = {}
        self._t_last = time.perf_counter()
        self._tokens_last = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        # TRL's token counter starts at 0 in every process, also after a resume; so does our clock.
        self._t_last = time.perf_counter()
        self._tokens_last = 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        if "train_runtime" in logs:  # the end-of-training summary, not a step
            self.final = {k: float(v) for k, v in logs.items() if _is_number(v)}
            return
        if "loss" not in logs:  # evaluation or other records
            return
        now = time.perf_counter()
        tokens = logs.get("num_tokens")
        if _is_number(tokens):
            elapsed = max(now - self._t_last, 1e-9)
            logs["tokens_per_s"] = (float(tokens) - self._tokens_last) / elapsed
            self._tokens_last = float(tokens)
        self._t_last = now
        if not state.is_world_process_zero:
            return
        metrics = {k: float(v) for k, v in logs.items() if _is_number(v)}
        self.history.append({"step": state.global_step, **metrics})
        log.info("sft step %d: %s", state.global_step, {k: round(v, 6) for k, v in metrics.items()})
        if self.on_log_fn is not None:
            self.on_log_fn(int(state.global_step), metrics)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
