"""The per-dataset chain wired through Dagster on a tiny recipe: base model, trees, traces, corpus."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from astro_pipeline.defs.definitions import build_definitions
from astro_pipeline.defs.runner import run_recipe
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse

TINY = str(Path(__file__).parent / "recipes" / "tiny.yaml")


@pytest.mark.slow
def test_tiny_recipe_runs_problems_to_corpus_and_reuses_the_model(monkeypatch):
    monkeypatch.setenv("ASTRO_RECIPE", TINY)
    outcomes = run_recipe(TINY, selection="problems,base_model,search_trees,search_traces,cot_corpus")
    assert all(o.success for o in outcomes), outcomes
    names = [(o.asset, o.partition) for o in outcomes]
    assert ("search_trees", "synthetic_train") in names and ("cot_corpus", "synthetic_train") in names
    corpus_run = next(o for o in outcomes if o.asset == "cot_corpus")
    assert corpus_run.checks == {"cot_corpus_is_sound": True}

    wh = Warehouse(ArtifactStore.from_env())
    trees = wh.query("SELECT count(DISTINCT problem_id) AS n, count(*) AS nodes FROM tree_nodes")
    assert trees["n"][0] == 6 and trees["nodes"][0] > 6
    metrics = wh.query("SELECT name FROM train_metrics WHERE stage = 'pretrain'")["name"].to_list()
    assert "loss" in metrics and "synthetic_test_pass_at_1" in metrics

    instance = dg.DagsterInstance.get()
    first = instance.fetch_materializations(dg.AssetKey("base_model"), limit=1).records[0]
    assert first.asset_materialization.metadata["reused"].value is False

    # a second run with nothing changed reuses the model and skips every finished tree
    again = run_recipe(TINY, selection="base_model,search_trees")
    assert all(o.success for o in again)
    latest = instance.fetch_materializations(dg.AssetKey("base_model"), limit=1).records[0]
    assert latest.asset_materialization.metadata["reused"].value is True
    trees_meta = instance.fetch_materializations(dg.AssetKey("search_trees"), limit=1).records[0].asset_materialization.metadata
    assert trees_meta["searched_now"].value == 0 and trees_meta["resumed_from"].value == 6


def test_definitions_load_with_every_asset():
    defs = build_definitions(TINY)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"problems", "base_model", "search_trees", "search_traces", "cot_corpus"} <= keys
