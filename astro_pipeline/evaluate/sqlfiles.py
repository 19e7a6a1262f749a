"""Run the repository's ``sql/`` files on in-memory polars frames (for the report and tests).

Design: the same SQL files serve the warehouse (views over Parquet, ``Warehouse.run_file``) and
the report, which gets its tables as frames: here each frame is registered under the view name the
SQL expects (``eval_scores``, ``eval_generations``, ``train_metrics``) in a throw-away in-memory
DuckDB connection, so the report's numbers are, by construction, what ``astro sql`` shows.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from astro_pipeline.warehouse.duck import SQL_DIR


def sql_path(name: str) -> Path:
    path = SQL_DIR / (name if name.endswith(".sql") else f"{name}.sql")
    if not path.is_file():
        raise FileNotFoundError(f"SQL file not found: {path}")
    return path


def run_sql_file(name: str, **tables: pl.DataFrame) -> pl.DataFrame:
    """Run ``sql/NAME.sql`` with each keyword frame visible as a view of that name."""
    con = duckdb.connect(":memory:")
    try:
        for view, frame in tables.items():
            con.register(view, frame.to_arrow())
        return con.sql(sql_path(name).read_text()).pl()
    finally:
        con.close()
