"""The inbox sensor: a dropped file becomes a registered dataset, a partition and a run request."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.sensors import make_inbox_sensor
from astro_pipeline.operations import dataset_name_for, scan_inbox
from astro_pipeline.storage import ArtifactStore


def _recipe(tmp_path, inbox):
    path = tmp_path / "ops.yaml"
    path.write_text(f"name: ops\noperations:\n  inbox: {inbox}\n")
    return str(path)


def test_dataset_names_from_files():
    assert dataset_name_for("/x/My Problems.v2.jsonl") == "my_problems"
    assert dataset_name_for("s3://b/p/GSM-extra.parquet") == "gsm-extra"


def test_sensor_registers_new_files_once(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sensor = make_inbox_sensor(_recipe(tmp_path, inbox))
    instance = dg.DagsterInstance.ephemeral()

    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)

    (inbox / "new_set.jsonl").write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    (inbox / "notes.txt").write_text("not a problem file")
    result = sensor(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in result.run_requests] == ["new_set"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["new_set"]
    assert "new_set" in DatasetRegistry(ArtifactStore.from_env()).names()

    # same cursor: nothing new
    again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert isinstance(again, dg.SkipReason)

    # a replaced file under the same name triggers a re-run without re-registering
    (inbox / "new_set.jsonl").write_text(json.dumps({"problem": "2+2?", "answer": "4"}) + "\n" * 2)
    rerun = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert [r.partition_key for r in rerun.run_requests] == ["new_set"]


def test_scan_skips_unknown_formats(tmp_path):
    (tmp_path / "a.csv").write_text("problem,answer\n1+1,2\n")
    (tmp_path / "b.docx").write_text("x")
    files, skipped = scan_inbox(str(tmp_path))
    assert [f.dataset for f in files] == ["a"] and skipped[0].endswith("b.docx")


@pytest.mark.slow
def test_a_dropped_file_becomes_a_partition_with_trees_and_corpus(in_tiny_run):
    """Through the sensor alone: registration, the partition and the chain's run for the new file."""
    from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
    from astro_pipeline.defs.definitions import build_definitions
    from astro_pipeline.warehouse import Warehouse

    store = ArtifactStore.from_env()
    inbox = Path(store.path("inbox"))
    inbox.mkdir(parents=True, exist_ok=True)
    rows = generate_rows("test", SyntheticSettings(n_train=50, n_test=4, min_steps=2, max_steps=2))
    (inbox / "Fresh Problems.jsonl").write_text(
        "".join(json.dumps({"problem": r["problem"], "answer": r["answer"]}) + "\n" for r in rows))

    defs = build_definitions(in_tiny_run.recipe)
    sensor = defs.get_sensor_def("new_problem_files")
    instance = dg.DagsterInstance.get()
    result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert [r.partition_key for r in result.run_requests] == ["fresh_problems"]
    for request in result.dynamic_partitions_requests:  # what the daemon does with a SensorResult
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))

    graph = defs.resolve_asset_graph()
    selected = sensor.asset_selection.resolve(graph)
    assets = list(graph.assets_defs)
    for request in result.run_requests:
        for key in graph.toposorted_asset_keys:
            if key in selected:
                run = dg.materialize(assets, selection=[key], partition_key=request.partition_key, instance=instance,
                                     tags=request.tags)
                assert run.success, key

    wh = Warehouse(store)
    counts = wh.query("""
        SELECT (SELECT count(*) FROM problems WHERE dataset = 'fresh_problems') AS problems,
               (SELECT count(DISTINCT problem_id) FROM tree_nodes WHERE dataset = 'fresh_problems') AS trees,
               (SELECT count(*) FROM traces WHERE dataset = 'fresh_problems') AS traces""").to_dicts()[0]
    assert counts["problems"] == 4 and counts["trees"] == 4
    assert "fresh_problems" in instance.get_dynamic_partitions("dataset")
    corpus = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("cot_corpus"), asset_partitions=["fresh_problems"]), limit=1)
    assert corpus.records, "cot_corpus[fresh_problems] was not materialized"
