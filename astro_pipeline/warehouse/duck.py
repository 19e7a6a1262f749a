"""The DuckDB warehouse: views over the artifact store's Parquet files, and SQL that returns polars.

Design: ``refresh()`` (re)creates one view per table that has files, pointing at the table's
glob; stages call it after writing. DuckDB allows one writing process per database file, so the
writer retries briefly on a lock instead of failing a run that only wanted to publish a view.
Readers (``astro sql``, notebooks) open the file read-only. For an ``s3://`` artifact root the
database file lives in a local folder (DuckDB cannot write a database on S3) and the s3fs
filesystem is registered on every connection so the views resolve.

A view's glob is absolute (DuckDB resolves relative paths against the working directory, not the
database file), so a home that was copied, moved or restored holds views into its old place. Every
open therefore compares each view with the glob of the *current* root and rebuilds those that
differ before any query runs. The database file is derived data: one that DuckDB cannot open
(truncated, overwritten) is removed and rebuilt from the Parquet files. Queries run on a sandboxed
connection (``sandbox``): they read the artifact root and nothing else, and write nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from astro_pipeline.storage import ArtifactStore, CorruptArtifactError
from astro_pipeline.warehouse.sandbox import check_read_only, lock_down
from astro_pipeline.warehouse.tables import TABLE_GLOBS

SQL_DIR = Path(__file__).resolve().parent.parent.parent / "sql"
log = logging.getLogger(__name__)


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
        """A connection with views over the current root; read-only ones are sandboxed (``sandbox``)."""
        Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(self.db_path).exists():
            self.refresh()
        con = self._open(read_only, retries, wait_s)
        if read_only and self._stale_views(con):
            con.close()  # views into another root (a copied or moved home): rebuild them first
            self.refresh()
            con = self._open(read_only, retries, wait_s)
        try:
            if not self.store.is_local:
                con.register_filesystem(self.store.fs)
            if read_only:
                lock_down(con, self.store.uri("") if not self.store.is_local else self.store.path(""))
            yield con
        finally:
            con.close()

    def _open(self, read_only: bool, retries: int, wait_s: float) -> duckdb.DuckDBPyConnection:
        discarded = False
        for attempt in range(retries):
            try:
                return duckdb.connect(self.db_path, read_only=read_only)
            except duckdb.Error as exc:
                if _is_lock_error(exc):  # another process holds the write lock
                    if attempt == retries - 1:
                        raise
                    time.sleep(wait_s)
                    continue
                if discarded or not self._discard_unreadable(exc):
                    raise
                discarded = True
                if read_only:
                    self.refresh()  # a fresh file with every view, then open it as asked
        raise AssertionError("unreachable")

    def _discard_unreadable(self, exc: duckdb.Error) -> bool:
        """Remove a database file DuckDB cannot open (it only holds views); False if there was none."""
        path = Path(self.db_path)
        if not path.exists():
            return False
        log.warning(f"warehouse {path} cannot be opened ({exc}); it holds only views, rebuilding it")
        for stale in (path, path.with_name(path.name + ".wal")):
            stale.unlink(missing_ok=True)
        return True

    def _stale_views(self, con: duckdb.DuckDBPyConnection) -> bool:
        views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
        return any(table in views and not self._points_here(views[table], table) for table in TABLE_GLOBS)

    def _pattern(self, table: str) -> str:
        return self.store.uri(TABLE_GLOBS[table]) if not self.store.is_local else self.store.path(TABLE_GLOBS[table])

    def _points_here(self, view_sql: str | None, table: str) -> bool:
        return f"'{self._pattern(table)}'" in (view_sql or "")

    def _source(self, table: str) -> str:
        return f"read_parquet('{self._pattern(table)}', union_by_name = true)"

    def refresh(self, tables: tuple[str, ...] = ()) -> list[str]:
        """Make sure every table with files has a view; returns the tables now present.

        Views over a glob see new files without being recreated, so only missing views are created,
        views into another root (a copied or moved home), and the ``tables`` named (their writer
        may have changed their columns). A view that cannot
        be created because one of its files is unreadable fails only when that table was named;
        otherwise it is left out and listed in ``self.unreadable``, so one corrupt file elsewhere does
        not stop a stage from publishing its own table.
        """
        present, self.unreadable = [], {}
        with self.connect(read_only=False) as con:
            views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
            for table, pattern in TABLE_GLOBS.items():
                if not self.store.glob(pattern):
                    con.execute(f"DROP VIEW IF EXISTS {table}")
                    continue
                if table in views and table not in tables and self._points_here(views[table], table):
                    present.append(table)
                    continue
                try:
                    con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self._source(table)}")
                    present.append(table)
                except duckdb.Error as exc:
                    if table in views and not self._points_here(views[table], table):
                        con.execute(f"DROP VIEW IF EXISTS {table}")  # never leave a view into another root
                    if table in tables:
                        raise CorruptArtifactError(f"warehouse table {table}: {exc}") from exc
                    self.unreadable[table] = str(exc)
        return present

    # queries ---------------------------------------------------------------------------------
    def query(self, sql: str) -> pl.DataFrame:
        """Run SELECT statements on the sandboxed connection and return the last result as a polars frame."""
        with self.connect(read_only=True) as con:
            check_read_only(con, sql)
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


def _is_lock_error(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def publish(warehouse: Warehouse, table: str, name: str, df: pl.DataFrame, group: str | None = None) -> str:
    """Write one Parquet file of ``table`` and make sure its view exists; returns the file's path."""
    from astro_pipeline.warehouse.tables import table_file

    rel = table_file(table, name, group)
    warehouse.store.write_parquet(df, rel)
    warehouse.refresh(tables=(table,))
    return rel
