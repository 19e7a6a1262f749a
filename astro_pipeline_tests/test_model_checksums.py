"""Model folders carry checksums: a truncated or overwritten file is never reused or evaluated."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from astro_pipeline.cli import main


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / ".complete").write_text("")  # a marker, not content
    return folder


def test_checksums_name_what_changed(tmp_path):
    from astro_pipeline.train.model_manifest import (
        CorruptModelError,
        checksum_differences,
        content_digest,
        folder_checksums,
        verify_folder,
    )

    folder = _folder(tmp_path)
    manifest = {"files": folder_checksums(folder)}
    assert sorted(manifest["files"]) == ["config.json", "model.safetensors"]
    verify_folder(folder, manifest)  # unchanged: no error
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match=r"model.*model.safetensors has 8192 bytes, 16384 were published"):
        verify_folder(folder, manifest, where="models/sft")
    weights.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:164]) + data[164:])  # same size
    with pytest.raises(CorruptModelError, match="models/sft does not match.*model.safetensors has other content"):
        verify_folder(folder, manifest, where="models/sft")
    weights.write_bytes(data)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "config.json").unlink()
    assert checksum_differences(manifest["files"], folder_checksums(folder)) == [
        "adapter_config.json was not part of the published model", "config.json is missing"]
    with pytest.raises(CorruptModelError, match="no checksums"):
        verify_folder(folder, {"fingerprint": "x"})
    assert content_digest(manifest) and content_digest({}) is None


def _tiny_with_optional_benchmark(tmp_path: Path, recipe: str) -> str:
    text = Path(recipe).read_text().replace("  benchmarks: [synthetic_test]\n",
                                            "  benchmarks: [synthetic_test]\n  optional: [synthetic_test]\n")
    assert "optional" in text
    path = tmp_path / "tiny_optional.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.slow
def test_a_corrupt_model_fails_evaluation_by_name_and_is_trained_again(tiny_run, tiny_run_copy, tmp_path, capsys):
    weights = tiny_run_copy / "models" / "sft" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])  # truncated
    capsys.readouterr()

    # evaluation refuses the model, names it, and the command fails, even on a dataset marked optional
    optional = _tiny_with_optional_benchmark(tmp_path, tiny_run.recipe)
    assert main(["run", "--recipe", optional, "--select", "eval_scores", "--partition", "sft"]) == 1
    out = capsys.readouterr().out
    assert "FAILED  eval_scores" in out and "models/sft" in out and "model.safetensors" in out, out

    # the training stage does not reuse it: it is trained again, and then verified and evaluated
    assert main(["run", "--recipe", tiny_run.recipe, "--select", "sft_model"]) == 0
    record = dg.DagsterInstance.get().fetch_materializations(dg.AssetKey("sft_model"), limit=1).records[0]
    assert record.asset_materialization.metadata["reused"].value is False
    assert main(["run", "--recipe", tiny_run.recipe, "--select", "eval_scores", "--partition", "sft"]) == 0

    # part of a tensor overwritten in place (same size, loads fine): evaluation still refuses it
    data = weights.read_bytes()
    middle = len(data) // 2
    weights.write_bytes(data[:middle] + bytes(b ^ 0x55 for b in data[middle:middle + 256]) + data[middle + 256:])
    capsys.readouterr()
    assert main(["run", "--recipe", tiny_run.recipe, "--select", "eval_scores", "--partition", "sft"]) == 1
    assert "model.safetensors has other content than was published" in capsys.readouterr().out
