"""Training-asset plumbing: checkpoint folders per run, metric logs that survive a resume."""

from __future__ import annotations

import logging

from pathlib import Path

from astro_pipeline.defs.assets.training import MetricLog
from astro_pipeline.train.runs import run_folder


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


def test_a_guard_stop_in_rl_is_a_warning_in_the_assets_dagster_log(tmp_path, monkeypatch):
    """train_rl's guard stop reaches the rl_model asset's Dagster log as a WARNING (it once read keys
    the summary never had, so the stop was silent)."""
    import contextlib

    import dagster as dg
    import polars as pl

    from astro_pipeline.defs.assets import training
    from astro_pipeline.defs.resources import AstroResource
    from astro_pipeline.train.runs import RunSummary

    problems = pl.DataFrame({"problem_id": ["p1", "p2"], "problem": ["1 + 1", "2 + 2"], "answer": ["2", "4"]})
    start = tmp_path / "sft-model"
    start.mkdir()
    monkeypatch.setattr(training, "read_problems", lambda store, recipe, dataset: problems)
    monkeypatch.setattr(training, "train_corpus", lambda astro: None)
    monkeypatch.setattr(training, "load_model_dir", lambda astro, stage: str(start))
    monkeypatch.setattr(training, "make_backend", lambda settings, path: object())
    monkeypatch.setattr(training, "BatchVerifier", lambda settings: contextlib.nullcontext(object()))
    monkeypatch.setattr(training, "select_prompts", lambda backend, df, settings, verifier, system_prompt: df)

    def stopped_run(sft_dir, prompts, settings, out_dir, *, work_dir, on_log, verifier, reflection_counter,
                    system_prompt):
        out = Path(out_dir)
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"weights")
        on_log(1, {"reward": -1.0, "completions/mean_length": 384.0})
        on_log(2, {"reward": -1.0, "completions/mean_length": 384.0})
        reasons = ("length explosion: mean completion length 384 > 300 for 2 steps",)
        return RunSummary(stage="rl", fingerprint="f" * 16, steps=2, wall_s=0.1, stopped_by_guard=True,
                          stop_reasons=reasons, record={"stopped_by_guard": True, "stop_reasons": list(reasons)})

    monkeypatch.setattr(training, "train_rl", stopped_run)
    recipe = tmp_path / "guard.yaml"
    recipe.write_text("name: guard\ndatasets:\n  train: [synthetic_train]\n  benchmarks: [synthetic_test]\n")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([training.rl_model], instance=instance, resources={
        "astro": AstroResource(recipe_name=str(recipe), home=str(tmp_path / "home"))})
    assert result.success
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("rl: training stopped by a guard at step 2: length explosion" in m for m in warnings), warnings
    meta = result.asset_materializations_for_node("rl_model")[0].metadata
    assert meta["stopped_by_guard"].value is True and meta["steps"].value == 2
