"""What the tiny run's materializations carry for a researcher: tree pictures, inline curves, the
TensorBoard folder, sample completions, rounded scores, the leaderboard table and the report path."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import pytest

from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse

pytestmark = pytest.mark.slow


def _latest(asset: str, partition: str | None = None) -> dict:
    instance = dg.DagsterInstance.get()
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1).records
    assert records, f"{asset} was not materialized"
    return records[0].asset_materialization.metadata


def test_search_partitions_show_tree_pictures(in_tiny_run):
    for asset in ("search_trees", "search_traces"):
        meta = _latest(asset, "synthetic_train")
        trees = {k: v for k, v in meta.items() if k.startswith("tree: ")}
        assert 1 <= len(trees) <= 3, asset
        md = next(iter(trees.values())).value
        svg = base64.b64decode(md.split("data:image/svg+xml;base64,")[1].rstrip(")")).decode()
        assert svg.startswith("<svg") and "N=" in svg
    # the trace drawn on search_trees (cut for the picture) is the one search_traces wrote
    wh = Warehouse(ArtifactStore.from_env())
    backtracking = set(wh.query("SELECT problem_id FROM traces WHERE n_backtracks > 0")["problem_id"])
    first = next(k for k in _latest("search_trees", "synthetic_train") if k.startswith("tree: "))
    assert first.removeprefix("tree: ") in backtracking


def test_training_assets_show_inline_curves_and_their_tensorboard_folder(in_tiny_run):
    wh = Warehouse(ArtifactStore.from_env())
    for asset, stage, curves in (("sft_model", "sft", ("loss",)), ("rl_model", "rl", ("loss", "reward", "length")),
                                 ("base_model", "pretrain", ("loss",))):
        meta = _latest(asset)
        for name in curves:
            md = meta[f"curve: {name}"].value
            assert len(md) < 1000 and "data:image/svg+xml;base64," in md, (asset, name)  # inline in the UI
        if asset != "base_model":
            folder = Path(meta["tensorboard"].value)
            assert folder.name == "tensorboard" and any(folder.rglob("events.out.tfevents.*")), asset
        runs = wh.query(f"SELECT DISTINCT run FROM train_metrics WHERE stage = '{stage}'")["run"].to_list()
        assert runs == [meta["fingerprint"].value], asset  # the curve is the current model's run


def test_eval_partitions_show_rounded_scores_and_sample_completions(in_tiny_run):
    meta = _latest("eval_scores", "synthetic_test|sft")
    assert meta["pass_at_1"].value.endswith(" %") and " ± " in meta["pass_at_1"].value
    assert meta["stderr"].value == round(meta["stderr"].value, 4)
    samples = meta["sample_completions"].value
    assert samples.count("**problem ") == 3 and samples.count("```") == 6


def test_the_report_has_a_leaderboard_table_and_path_entries(in_tiny_run):
    meta = _latest("report")
    table = meta["leaderboard"]
    assert [c.name for c in table.schema.columns] == ["benchmark", "problems x samples", "base", "sft", "rl"]
    assert [r.data["benchmark"] for r in table.records] == ["synthetic_test"]
    assert all("\u00a0±\u00a0" in r.data["rl"] for r in table.records)
    assert isinstance(meta["report"], dg.PathMetadataValue) and Path(meta["report"].value).is_file()
    assert "](plots/" not in meta["report page"].value  # every image inline: none broken in the UI
