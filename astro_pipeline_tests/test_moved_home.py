"""A finished home copied elsewhere (a backup, a shared run, a restore) is a home of its own: SQL
and the report read the copy's tables, and a search in the copy reuses every finished tree."""

from __future__ import annotations

import json

import dagster as dg
import polars as pl
import pytest

from astro_pipeline.cli import main
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, table_file


@pytest.mark.slow
def test_a_copied_home_reads_its_own_tables_and_keeps_its_trees(tiny_run, tiny_run_copy, capsys):
    store = ArtifactStore(str(tiny_run_copy))
    scores = table_file("eval_scores", "synthetic_test__base")
    store.write_parquet(store.read_parquet(scores).with_columns(pl.lit(0.987654).alias("pass_at_1")), scores)

    capsys.readouterr()
    assert main(["sql", "SELECT pass_at_1 FROM eval_scores WHERE stage = 'base'", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"pass_at_1": 0.987654}]
    original = Warehouse(ArtifactStore(str(tiny_run.astro_home)))
    assert original.query("SELECT pass_at_1 FROM eval_scores WHERE stage = 'base'")["pass_at_1"][0] != 0.987654

    assert main(["run", "--recipe", tiny_run.recipe, "--select", "report"]) == 0
    report = (tiny_run_copy / "report" / "report.md").read_text()
    assert "98.8" in report
    assert "98.8" not in (tiny_run.astro_home / "report" / "report.md").read_text()

    trees = sorted((tiny_run_copy / "tables" / "tree_nodes" / "synthetic_train").glob("*.parquet"))
    stamps = {p.name: p.stat().st_mtime_ns for p in trees}
    assert len(trees) == 6
    assert main(["run", "--recipe", tiny_run.recipe, "--select", "search_trees"]) == 0
    meta = dg.DagsterInstance.get().fetch_materializations(dg.AssetKey("search_trees"), limit=1).records[0]
    metadata = meta.asset_materialization.metadata
    assert metadata["searched_now"].value == 0 and metadata["resumed_from"].value == 6
    assert {p.name: p.stat().st_mtime_ns for p in trees} == stamps, "a finished tree was discarded or rewritten"
