"""The inbox sensor: a dropped file becomes a registered dataset, a partition and a run request."""

from __future__ import annotations

import json

import dagster as dg

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
