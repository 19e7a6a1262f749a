"""The DuckDB warehouse: views over the artifact store's Parquet files, and SQL that returns polars.

Design: ``refresh()`` (re)creates one view per table that has files, pointing at the table's
glob; stages call it after writing. DuckDB allows one writing process per database file, so the
writer retries briefly on a lock instead of failing a run that only wanted to publish a view.
Readers (``astro sql``, notebooks) open the file read-only. For an ``s3://`` artifact root the
database file lives in a local folder (DuckDB cannot write a database on S3) and the s3fs
filesystem is registered on every connection so the views resolve.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from astro_pipeline.storage import ArtifactStore, CorruptArtifactError
from astro_pipeline.warehouse.tables import TABLE_GLOBS

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"


class Warehouse:
    def __init__(self, store: ArtifactStore, db_path: str | None = None) -> None:
        self.store = store
        if db_path is None:
            if store.is_local:
                db_path = store.path("warehouse.duckdb")
            else:
                cache = Path(os.environ.get("ASTRO_CACHE", Path.home() / ".cache" / "astro_pipeline"))
                db_path = str(cache / "warehouse" / (store.root.replace("://", "_").replace("/", "_") + ".duckdb"))
        self.db_path = db_path
        self.unreadable: dict[str, str] = {}  # table -> why its view could not be created (last refresh)

    # connections -----------------------------------------------------------------------------
    @contextmanager
    def connect(self, read_only: bool = True, retries: int = 50, wait_s: float = 0.2) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.db_path).exists():
            self.refresh()
        for attempt in range(retries):
            try:
                con = duckdb.connect(self.db_path, read_only=read_only)
                break
            except duckdb.IOException as exc:  # another process holds the write lock
                if "lock" not in str(exc).lower() or attempt == retries - 1:
                    raise
                time.sleep(wait_s)
        try:
            if not self.store.is_local:
                con.register_filesystem(self.store.fs)
            yield con
        finally:
            con.close()

    def _source(self, table: str) -> str:
        pattern = self.store.uri(TABLE_GLOBS[table]) if not self.store.is_local else self.store.path(TABLE_GLOBS[table])
        return f"read_parquet('{pattern}', union_by_name = true)"

    def refresh(self, tables: tuple[str, ...] = ()) -> list[str]:
        """Make sure every table with files has a view; returns the tables now present.

        Views over a glob see new files without being recreated, so only missing views are created,
        plus the ``tables`` named (their writer may have changed their columns). A view that cannot
        be created because one of its files is unreadable fails only when that table was named;
        otherwise it is left out and listed in ``self.unreadable``, so one corrupt file elsewhere does
        not stop a stage from publishing its own table.
        """
        present, self.unreadable = [], {}
        with self.connect(read_only=False) as con:
            views = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
            for table, pattern in TABLE_GLOBS.items():
                if not self.store.glob(pattern):
                    con.execute(f"DROP VIEW IF EXISTS {table}")
                    continue
                if table in views and table not in tables:
                    present.append(table)
                    continue
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self._source(table)}")
                    present.append(table)
                except duckdb.Error as exc:
                    if table in tables:
                        raise CorruptArtifactError(f"warehouse table {table}: {exc}") from exc
                    self.unreadable[table] = str(exc)
        return present

    # queries ---------------------------------------------------------------------------------
    def query(self, sql: str) -> pl.DataFrame:
        """Run SQL read-only and return the result as a polars frame."""
        with self.connect(read_only=True) as con:
            rel = con.sql(sql)
            return rel.pl() if rel is not None else pl.DataFrame()

    def run_file(self, path: str | os.PathLike[str]) -> pl.DataFrame:
        """Run one query file (a path, or a name in the repository's sql/ folder)."""
        p = Path(path)
        if not p.is_file() and (SQL_DIR / p.name).is_file():
            p = SQL_DIR / p.name
        if not p.is_file():
            raise FileNotFoundError(f"SQL file not found: {path}")
        return self.query(p.read_text())


def publish(warehouse: Warehouse, table: str, name: str, df: pl.DataFrame, group: str | None = None) -> str:
    """Write one Parquet file of ``table`` and make sure its view exists; returns the file's path."""
    from astro_pipeline.warehouse.tables import table_file

    rel = table_file(table, name, group)
    warehouse.store.write_parquet(df, rel)
    warehouse.refresh(tables=(table,))
    return rel
