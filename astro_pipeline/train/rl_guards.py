"""Guards against the RL stage's known failures: CoT length explosion and reward collapse.

Design choices:

* ``check_guards(metrics_history, settings)`` is a pure function over the per-step metric dicts (the
  same dicts ``train_rl`` passes to ``on_log`` and returns in its summary), so the Dagster asset check
  and the training callback apply exactly the same rule.
* A guard trips when its bound is violated on ``guard_patience`` CONSECUTIVE logged steps (one noisy
  batch of 16 completions must not stop a run). Bounds (see ``RLSettings``):
  - length explosion: mean completion length > ``length_bound`` (``max_mean_length``, or 0.9 of
    ``max_completion_length`` when unset), or truncated share > ``max_truncated_share``;
  - reward collapse: mean reward < ``min_mean_reward``.
  A step without the metric (or with NaN) breaks a run: a missing value is no evidence either way.
* ``GuardCallback`` is a ``transformers.TrainerCallback``: on every training log it records the
  step's metrics, forwards them to the user's ``on_log(step, metrics)``, re-runs ``check_guards`` over
  the whole history and, on a trip, sets ``control.should_training_stop`` and records why. The history
  is rebuilt from ``state.log_history`` at train begin, so a resumed run keeps counting a run of bad
  steps that began before the kill.
* Metric names are TRL's (``reward``, ``completions/mean_length``, ``completions/clipped_ratio``...),
  plus the reward function's own (``accuracy``, ``truncated_share``...); see ``rl.py``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from transformers import TrainerCallback
from astro_pipeline.runlog import OnLog

REWARD = "reward"
MEAN_LENGTH = "completions/mean_length"
TRUNCATED = "completions/clipped_ratio"
TRUNCATED_FALLBACK = "truncated_share"  # the reward function's own count (same rule as TRL's)


log = logging.getLogger(__name__)


def _value(entry: dict[str, Any], *names: str) -> float | None:
    for name in names:
        v = entry.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v)):
            return float(v)
    return None


def _first_run(
    history: Sequence[dict[str, Any]], names: tuple[str, ...], violated: Callable[[float], bool], patience: int
) -> tuple[int, int, float] | None:
    """(first step, last step, last value) of the first run of ``patience`` consecutive violations."""
    run: list[tuple[int, float]] = []
    for i, entry in enumerate(history):
        v = _value(entry, *names)
        if v is not None and violated(v):
            run.append((int(entry.get("step", i + 1)), v))
            if len(run) >= patience:
                return run[0][0], run[-1][0], run[-1][1]
        else:
            run = []
    return None


def check_guards(metrics_history: Sequence[dict[str, Any]], settings: Any) -> list[str]:
    """Why the run is unhealthy (empty list = healthy): one message per tripped guard.

    ``metrics_history``: per-step metric dicts in step order, each with a ``step`` key (the position
    is used when missing). ``settings``: an ``RLSettings`` (reads ``length_bound``,
    ``max_truncated_share``, ``min_mean_reward``, ``guard_patience``).
    """
    patience = int(settings.guard_patience)
    bound = float(settings.length_bound)
    max_trunc = float(settings.max_truncated_share)
    floor = float(settings.min_mean_reward)
    reasons = []
    hit = _first_run(metrics_history, (MEAN_LENGTH,), lambda v: v > bound, patience)
    if hit:
        reasons.append(
            f"length explosion: mean completion length > {bound:g} tokens for {patience} consecutive steps "
            f"(steps {hit[0]}-{hit[1]}, last {hit[2]:.1f})"
        )
    hit = _first_run(metrics_history, (TRUNCATED, TRUNCATED_FALLBACK), lambda v: v > max_trunc, patience)
    if hit:
        reasons.append(
            f"length explosion: truncated share > {max_trunc:g} for {patience} consecutive steps "
            f"(steps {hit[0]}-{hit[1]}, last {hit[2]:.2f})"
        )
    hit = _first_run(metrics_history, (REWARD,), lambda v: v < floor, patience)
    if hit:
        reasons.append(
            f"reward collapse: mean reward < {floor:g} for {patience} consecutive steps "
            f"(steps {hit[0]}-{hit[1]}, last {hit[2]:.3f})"
        )
    return reasons


def step_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of one trainer log (drops strings and the end-of-training summary keys)."""
    return {
        k: float(v)
        for k, v in logs.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("train_")
    }


def is_step_log(logs: dict[str, Any]) -> bool:
    """A per-step GRPO training log (has the reward), not the final summary or an eval log."""
    return REWARD in logs


class GuardCallback(TrainerCallback):
    """Records per-step metrics, forwards them to ``on_log`` and stops training when a guard trips."""

    def __init__(self, settings: Any, on_log: OnLog | None = None) -> None:
        self.settings = settings
        self.on_log_fn = on_log
        self.history: list[dict[str, float]] = []
        self.reasons: list[str] = []
        self.stopped_at: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        # a resumed run: the steps before the checkpoint count towards a guard's patience
        self.history = [
            {"step": float(e["step"]), **step_metrics(e)} for e in state.log_history if is_step_log(e) and "step" in e
        ]
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not is_step_log(logs):
            return control
        step = int(state.global_step)
        metrics = step_metrics(logs)
        self.history = [h for h in self.history if int(h["step"]) < step]  # a re-logged step replaces the old
        self.history.append({"step": float(step), **metrics})
        if self.on_log_fn is not None:
            self.on_log_fn(step, metrics)
        log.info(
            "rl step %d/%s: reward %.3f, accuracy %s, mean length %.1f, truncated %.2f",
            step, state.max_steps, metrics.get(REWARD, float("nan")), metrics.get("accuracy", "n/a"),
            metrics.get(MEAN_LENGTH, float("nan")), metrics.get(TRUNCATED, float("nan")),
        )
        reasons = check_guards(self.history, self.settings)
        if reasons and not self.reasons:
            self.reasons = reasons
            self.stopped_at = step if self.settings.guards_enabled else None
            log.warning("rl guard tripped at step %d: %s", step, "; ".join(reasons))
        if reasons and self.settings.guards_enabled:
            control.should_training_stop = True
        return control
