"""What ``astro sql`` / ``astro show`` say when the warehouse is missing or DuckDB rejects a query.

* No warehouse file: say where it was looked for and how to make one, and create nothing (opening
  a missing DuckDB file would create an empty warehouse, after which every query fails with
  "Table ... does not exist! Did you mean pg_class?").
* A DuckDB error: one line, its kind and message with DuckDB's own hint ("Did you mean ...?")
  kept and the caret drawing dropped; for an unknown table, the tables the warehouse does have.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb


def open_warehouse():
    """(warehouse, None), or (None, a one-line message) when there is none; creates no file or folder
    (the artifact store makes its root when constructed, so a missing local root is checked first)."""
    from astro_pipeline.storage import ArtifactStore, astro_home
    from astro_pipeline.warehouse.duck import Warehouse

    home = astro_home()
    if "://" not in home and not Path(home).is_dir():
        return None, missing_warehouse(str(Path(home) / "warehouse.duckdb"))
    warehouse = Warehouse(ArtifactStore(home))
    return (None, message) if (message := missing_warehouse(warehouse.db_path)) else (warehouse, None)


def present_tables(warehouse) -> list[str]:
    """The warehouse tables that have files (what a query can name)."""
    from astro_pipeline.warehouse.tables import TABLE_GLOBS

    return [t for t, pattern in TABLE_GLOBS.items() if warehouse.store.glob(pattern)]


def missing_warehouse(db_path: str) -> str | None:
    """A one-line message when there is no warehouse file at ``db_path``, else None."""
    if Path(db_path).is_file():
        return None
    home = os.environ.get("ASTRO_HOME")
    where = f"ASTRO_HOME={home}" if home else "ASTRO_HOME is not set, so ./.astro was used"
    return (f"no warehouse at {db_path} ({where}); run `astro run` (or `make run`) first, "
            "or point ASTRO_HOME at the artifact folder of a run")


def one_line(exc: duckdb.Error, tables: list[str] | None = None) -> str:
    """DuckDB's message on one line: the lines before the ``LINE n:`` excerpt, joined."""
    kept = []
    for line in str(exc).splitlines():
        if line.startswith("LINE ") or line.strip() == "^":
            break
        if line.strip():
            kept.append(line.strip())
    text = " ".join(kept) or type(exc).__name__
    if isinstance(exc, duckdb.CatalogException) and tables is not None:
        text += f" (tables in this warehouse: {', '.join(sorted(tables)) or 'none'})"
    return text
