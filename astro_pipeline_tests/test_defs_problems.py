"""Wiring of the problems asset: Dagster materializations, warehouse tables, the run planner."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from astro_pipeline.cli import main
from astro_pipeline.defs.assets.problems import problems
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text("name: mini\ndatasets:\n  train: [amc2023]\n  benchmarks: [aime2024]\n")
    return path


def test_problems_asset_materializes_and_loads_warehouse(data_dir, recipe_file, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("dataset", ["aime2024"])
    result = dg.materialize([problems], partition_key="aime2024", instance=instance,
                            resources={"astro": AstroResource(recipe_name=str(recipe_file))})
    assert result.success
    meta = result.asset_materializations_for_node("problems")[0].metadata
    assert meta["problems"].value == 30 and meta["quarantined"].value == 0
    wh = Warehouse(ArtifactStore.from_env())
    got = wh.query("SELECT count(*) AS n, min(answer) AS a FROM problems WHERE dataset = 'aime2024'")
    assert got["n"][0] == 30
    # the settings and versions that made the table sit beside it
    manifest = ArtifactStore.from_env().read_json("tables/problems/aime2024.parquet.manifest.json")
    assert manifest["versions"]["polars"] and manifest["settings"]["source"]["name"] == "aime2024"


def test_astro_run_records_runs_in_the_instance(data_dir, recipe_file, capsys):
    assert main(["run", "--recipe", str(recipe_file), "--select", "problems,benchmark_problems"]) == 0
    out = capsys.readouterr().out
    assert "problems[amc2023]" in out and "benchmark_problems[aime2024]" in out
    instance = dg.DagsterInstance.get()
    # searched datasets are dynamic partitions; benchmarks are static ones, from the recipe
    assert instance.get_dynamic_partitions("dataset") == ["amc2023"]
    records = instance.fetch_materializations(dg.AssetKey("problems"), limit=10).records
    assert {r.partition_key for r in records} == {"amc2023"}
    records = instance.fetch_materializations(dg.AssetKey("benchmark_problems"), limit=10).records
    assert {r.partition_key for r in records} == {"aime2024"}
    # one invocation: named jobs, every run tagged with the recipe and the same invocation id
    runs = instance.get_runs()
    assert {r.job_name for r in runs} == {"search", "benchmarks"}
    assert {r.tags["astro/recipe"] for r in runs} == {"mini"} and len({r.tags["astro/invocation"] for r in runs}) == 1

    assert main(["sql", "SELECT dataset, count(*) AS n FROM problems GROUP BY 1 ORDER BY 1",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"dataset": "aime2024", "n": 30}, {"dataset": "amc2023", "n": 40}]


def test_astro_run_only_one_partition(data_dir, recipe_file, capsys):
    assert main(["run", "--recipe", str(recipe_file), "--select", "problems", "--partition", "amc2023"]) == 0
    out = capsys.readouterr().out
    assert "problems[amc2023]" in out and "aime2024" not in out


def test_an_unreachable_optional_dataset_is_skipped_not_failed(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "opt.yaml"
    recipe.write_text("name: opt\ndatasets:\n  train: [synthetic_test]\n  benchmarks: [math500]\n"
                      "  optional: [math500]\nsynthetic: {n_train: 20, n_test: 5}\n")
    monkeypatch.setenv("ASTRO_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["run", "--recipe", str(recipe), "--select", "problems,benchmark_problems"]) == 0
    out = capsys.readouterr().out
    assert "ok      problems[synthetic_test]" in out
    assert "skipped benchmark_problems[math500]" in out and "math500.jsonl" in out
    # without the optional mark the same failure fails the command
    recipe.write_text(recipe.read_text().replace("  optional: [math500]\n", ""))
    assert main(["run", "--recipe", str(recipe), "--select", "problems,benchmark_problems"]) == 1
