"""The artifact store and the warehouse on an s3:// root (a local moto server)."""

from __future__ import annotations

import polars as pl

from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, publish


def test_store_round_trip_on_s3(s3_bucket):
    store = ArtifactStore(f"{s3_bucket}/prefix")
    assert not store.is_local
    store.write_parquet(pl.DataFrame({"x": [1, 2]}), "tables/problems/a.parquet")
    store.write_json({"k": 1}, "m.json")
    assert store.read_parquet("tables/problems/a.parquet")["x"].to_list() == [1, 2]
    assert store.read_json("m.json") == {"k": 1}
    assert store.glob("tables/problems/*.parquet") == ["tables/problems/a.parquet"]


def test_duckdb_reads_parquet_from_s3(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTRO_CACHE", str(tmp_path / "cache"))
    wh = Warehouse(ArtifactStore(f"{s3_bucket}/prefix"))
    publish(wh, "problems", "a", pl.DataFrame({"dataset": ["a", "a"], "answer": ["1", "2"]}))
    assert wh.db_path.startswith(str(tmp_path / "cache"))
    assert wh.query("SELECT count(*) AS n FROM problems")["n"][0] == 2
