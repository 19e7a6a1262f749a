"""The pipeline with its artifact root on S3 (a local moto server): every table, model and the
report land in the bucket, DuckDB reads the Parquet from there, and SQL answers over it."""

from __future__ import annotations

import pytest

from astro_pipeline.cli import main
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse
from astro_pipeline_tests.pipeline_fixture import TINY


@pytest.mark.slow
def test_tiny_pipeline_on_an_s3_artifact_root(s3_bucket, tmp_path, monkeypatch, capsys):
    root = f"{s3_bucket}/astro"
    monkeypatch.setenv("ASTRO_HOME", root)
    monkeypatch.setenv("ASTRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ASTRO_MODEL_CACHE", str(tmp_path / "models"))
    assert main(["run", "--recipe", TINY]) == 0, capsys.readouterr().out

    store = ArtifactStore(root)
    assert not store.is_local
    for rel in ("tables/problems/synthetic_train.parquet", "tables/cot_examples/synthetic_train.parquet",
                "models/base/.complete", "models/sft/config.json", "models/rl/model.safetensors",
                "report/report.html"):
        assert store.exists(rel), rel
    wh = Warehouse(store)
    stages = wh.query("SELECT DISTINCT stage FROM eval_scores ORDER BY stage")["stage"].to_list()
    assert stages == ["base", "rl", "sft"]
    capsys.readouterr()
    assert main(["sql", "sql/search_stats.sql", "--format", "csv"]) == 0
    assert "synthetic_train" in capsys.readouterr().out
