"""Training-asset plumbing: checkpoint folders per run, metric logs that survive a resume."""

from __future__ import annotations

import logging

from astro_pipeline.defs.assets.training import MetricLog, run_folder


class _Context:
    log = logging.getLogger("test")


def test_run_folders_of_other_runs_are_removed(tmp_path):
    old = run_folder(tmp_path, "aaa")
    (old / "checkpoints").mkdir(parents=True)
    new = run_folder(tmp_path, "bbb")
    assert new.name == "run-bbb" and not old.exists()
    same = run_folder(tmp_path, "bbb")
    assert same == new


def test_metric_log_keeps_steps_across_a_resume_and_the_latest_repeat(tmp_path):
    first = MetricLog(_Context(), "sft", tmp_path / "run-x")
    first(1, {"loss": 2.0, "note": "text is dropped"})
    first(2, {"loss": 1.5})
    first(3, {"loss": 1.4})  # logged, then the process is killed before the step-2 checkpoint is superseded
    resumed = MetricLog(_Context(), "sft", tmp_path / "run-x")
    resumed(3, {"loss": 1.3})  # the same step again after resuming from checkpoint 2
    resumed(4, {"loss": 1.2, "learning_rate": 1e-3})
    assert resumed.rows() == [(1, "loss", 2.0), (2, "loss", 1.5), (3, "loss", 1.3), (4, "learning_rate", 1e-3),
                              (4, "loss", 1.2)]
