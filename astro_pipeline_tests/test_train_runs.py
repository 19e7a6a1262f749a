"""Run records shared by the training stages: run record, checkpoint choice, atomic publish."""

from __future__ import annotations

import json

import pytest

from astro_pipeline.train.runs import (
    CHECKPOINTS,
    RunSummary,
    complete_checkpoints,
    model_folder_hash,
    prepare_run,
    publish_folder,
)


def _checkpoint(work, step, complete=True):
    folder = work / CHECKPOINTS / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_prepare_run_resumes_the_newest_complete_checkpoint_of_the_same_run(tmp_path):
    record = {"fingerprint": "aaa", "settings": {"lr": 1}}
    first = prepare_run(tmp_path, record, run_file="run.json", resume=True, other_run="discard", who="t")
    assert first.resume_from is None and json.loads((tmp_path / "run.json").read_text()) == record
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 6, complete=False)  # killed while saving
    again = prepare_run(tmp_path, record, run_file="run.json", resume=True, other_run="refuse", who="t")
    assert again.resume_from.name == "checkpoint-4" and again.dropped_incomplete == ["checkpoint-6"]
    assert [p.name for p in complete_checkpoints(tmp_path / CHECKPOINTS)] == ["checkpoint-2", "checkpoint-4"]


def test_another_runs_checkpoints_are_discarded_or_refused(tmp_path):
    prepare_run(tmp_path, {"fingerprint": "aaa"}, run_file="run.json", resume=True, other_run="discard", who="t")
    _checkpoint(tmp_path, 2)
    with pytest.raises(ValueError, match="different run"):
        prepare_run(tmp_path, {"fingerprint": "bbb"}, run_file="run.json", resume=True, other_run="refuse", who="t")
    assert complete_checkpoints(tmp_path / CHECKPOINTS)  # refusing deletes nothing
    other = prepare_run(tmp_path, {"fingerprint": "bbb"}, run_file="run.json", resume=True, other_run="discard",
                        who="t")
    assert other.resume_from is None and other.discarded == ["checkpoint-2"]
    _checkpoint(tmp_path, 3)
    fresh = prepare_run(tmp_path, {"fingerprint": "bbb"}, run_file="run.json", resume=False, other_run="refuse",
                        who="t")
    assert fresh.resume_from is None and fresh.discarded == ["checkpoint-3"]


def test_publish_folder_swaps_whole_folders_and_a_failed_build_keeps_the_old_one(tmp_path):
    out = tmp_path / "model"
    publish_folder(lambda tmp: (tmp.mkdir(), (tmp / "a.json").write_text("1")), out)
    assert (out / "a.json").read_text() == "1"

    def broken(tmp):
        tmp.mkdir()
        raise RuntimeError("killed while saving")

    with pytest.raises(RuntimeError):
        publish_folder(broken, out)
    assert sorted(p.name for p in out.iterdir()) == ["a.json"]
    publish_folder(lambda tmp: (tmp.mkdir(), (tmp / "b.json").write_text("2")), out)
    assert sorted(p.name for p in out.iterdir()) == ["b.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.old")] == []


def test_model_folder_hash_follows_config_text_and_weight_sizes(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    first = model_folder_hash(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"y" * 10)  # same size: the cheap hash does not read weights
    assert model_folder_hash(tmp_path) == first
    (tmp_path / "config.json").write_text('{"hidden_size": 16}')
    assert model_folder_hash(tmp_path) != first


def test_run_summary_headline_takes_record_keys_that_are_set():
    s = RunSummary(stage="sft", fingerprint="f", steps=3, wall_s=1.5, final_loss=0.5,
                   record={"tokens_per_s": 10.0, "resumed_from_step": 0, "missing": None})
    assert s.headline("tokens_per_s", "resumed_from_step", "missing") == {
        "steps": 3, "wall_s": 1.5, "final_loss": 0.5, "tokens_per_s": 10.0, "resumed_from_step": 0}
