"""The DuckDB warehouse: views over Parquet tables, read-only queries, query files."""

from __future__ import annotations

import polars as pl
import pytest

from astro_pipeline.storage import ArtifactStore, CorruptArtifactError
from astro_pipeline.warehouse import Warehouse, publish, table_file


def test_views_follow_new_files(tmp_path):
    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    publish(wh, "problems", "a", pl.DataFrame({"dataset": ["a"], "problem_id": ["1"], "answer": ["2"]}))
    assert wh.query("SELECT count(*) AS n FROM problems")["n"][0] == 1
    # a second file appears in the existing view without another refresh
    wh.store.write_parquet(pl.DataFrame({"dataset": ["b"], "problem_id": ["9"], "answer": ["3"]}),
                           table_file("problems", "b"))
    assert wh.query("SELECT count(*) AS n FROM problems")["n"][0] == 2


def test_nested_tables_need_a_group_and_union_columns(tmp_path):
    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    with pytest.raises(ValueError):
        table_file("quarantine", "a")
    publish(wh, "quarantine", "a", pl.DataFrame({"line": [1], "reason": ["x"]}), group="problems")
    publish(wh, "quarantine", "b", pl.DataFrame({"line": [2], "reason": ["y"], "extra": ["z"]}), group="search")
    df = wh.query("SELECT * FROM quarantine ORDER BY line")
    assert df["line"].to_list() == [1, 2] and df["extra"].to_list() == [None, "z"]


def test_read_only_queries_cannot_write(tmp_path):
    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    publish(wh, "problems", "a", pl.DataFrame({"x": [1]}))
    with pytest.raises(Exception, match="read-only"):
        wh.query("CREATE TABLE t AS SELECT 1")


def test_run_file_resolves_names_in_sql_dir(tmp_path):
    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    q = tmp_path / "q.sql"
    q.write_text("SELECT 41 + 1 AS answer")
    assert wh.run_file(q)["answer"][0] == 42
    with pytest.raises(FileNotFoundError):
        wh.run_file("no_such_query.sql")


def test_truncated_parquet_is_reported(tmp_path):
    store = ArtifactStore(str(tmp_path / "home"))
    store.write_parquet(pl.DataFrame({"x": list(range(1000))}), "t.parquet")
    data = store.read_bytes("t.parquet")
    store.write_bytes("t.parquet", data[: len(data) // 2])
    with pytest.raises(CorruptArtifactError, match="t.parquet"):
        store.read_parquet("t.parquet")


def test_a_corrupt_file_elsewhere_does_not_block_publishing(tmp_path):
    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    wh.store.write_bytes(table_file("traces", "broken"), b"not parquet at all")
    publish(wh, "problems", "a", pl.DataFrame({"x": [1]}))
    assert "traces" in wh.unreadable and "broken.parquet" in wh.unreadable["traces"]
    assert wh.query("SELECT count(*) AS n FROM problems")["n"][0] == 1
    with pytest.raises(CorruptArtifactError, match="broken.parquet"):
        publish(wh, "traces", "fine", pl.DataFrame({"x": [1]}))


def test_a_copied_home_queries_its_own_files_not_the_originals(tmp_path):
    import shutil

    first = Warehouse(ArtifactStore(str(tmp_path / "first")))
    publish(first, "problems", "a", pl.DataFrame({"answer": ["1"]}))
    publish(first, "traces", "a", pl.DataFrame({"answer": ["1"]}))
    assert first.query("SELECT answer FROM problems")["answer"].to_list() == ["1"]
    shutil.copytree(tmp_path / "first", tmp_path / "copy", symlinks=True)  # what `cp -a` does
    copy = Warehouse(ArtifactStore(str(tmp_path / "copy")))
    copy.store.write_parquet(pl.DataFrame({"answer": ["2"]}), table_file("problems", "a"))
    copy.store.write_bytes(table_file("traces", "a"), b"not parquet")  # and one table of the copy broken
    assert copy.query("SELECT answer FROM problems")["answer"].to_list() == ["2"]
    assert first.query("SELECT answer FROM problems")["answer"].to_list() == ["1"]
    # the broken table has no view, rather than the old one into the original's good file
    assert "traces" in copy.unreadable
    with pytest.raises(Exception, match="traces"):
        copy.query("SELECT * FROM traces")


def test_a_garbage_database_file_is_rebuilt_not_fatal(tmp_path):
    from pathlib import Path

    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    publish(wh, "problems", "a", pl.DataFrame({"x": [1]}))
    Path(wh.db_path).write_bytes(b"garbage " * 1000)
    publish(wh, "traces", "t", pl.DataFrame({"x": [1, 2]}))  # a publish goes on
    assert wh.query("SELECT (SELECT count(*) FROM problems) + (SELECT count(*) FROM traces) AS n")["n"][0] == 3
    data = Path(wh.db_path).read_bytes()
    Path(wh.db_path).write_bytes(data[: len(data) // 2])  # truncated this time; the reader rebuilds it
    assert wh.query("SELECT count(*) AS n FROM traces")["n"][0] == 2
