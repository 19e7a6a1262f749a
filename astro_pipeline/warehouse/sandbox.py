"""A DuckDB connection that can only read: the artifact root's files, and nothing else anywhere.

Design: ``astro sql`` runs whatever a user types, so read-only must hold for more than the database
file (``read_only=True`` covers only that). Two layers, because neither is enough alone:

* DuckDB's own settings: ``enable_external_access = false`` with ``allowed_directories`` set to the
  artifact root, so no function reads (``read_text``, ``glob``, ``read_csv``) or writes outside it and
  no other database is attached; extension auto-install and auto-load off, so a query cannot pull
  code from the network; then ``lock_configuration``, so a ``SET`` cannot undo any of it.
* A statement check: DuckDB's allowed directories are open for writing as well as reading, so a
  ``COPY ... TO '<root>/tables/...'`` would still overwrite warehouse data. Only SELECT statements
  (which include SHOW, DESCRIBE, SUMMARIZE and WITH queries) are run; anything else (COPY, EXPORT,
  SET, INSTALL, LOAD, ATTACH, CREATE, PRAGMA, EXPLAIN ANALYZE, ...) is refused before it executes.
"""

from __future__ import annotations

import duckdb

# statement types a read-only query may contain (DuckDB parses SHOW/DESCRIBE/SUMMARIZE as SELECT)
ALLOWED_STATEMENTS = frozenset({duckdb.StatementType.SELECT})


class ReadOnlyQueryError(ValueError):
    """A query that would do more than read (refused before it runs)."""


def lock_down(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Allow file access under ``root`` only, no extension installs or loads, and freeze the settings."""
    allowed = root.rstrip("/") + "/"
    con.execute("SET allowed_directories = $dirs", {"dirs": [allowed]})
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ``ReadOnlyQueryError`` unless every statement of ``sql`` is a SELECT."""
    statements = con.extract_statements(sql)
    for statement in statements:
        if statement.type not in ALLOWED_STATEMENTS:
            kind = str(statement.type).rsplit(".", 1)[-1]
            text = " ".join(statement.query.split())[:80]
            raise ReadOnlyQueryError(
                f"only SELECT queries run on the warehouse (read-only); refused a {kind} statement: {text}")
