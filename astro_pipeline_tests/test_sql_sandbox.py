"""`astro sql` is read-only for real: it cannot write files (not even inside the home), change its
settings, read outside the artifact root, or install extensions. Run as a user would, through
the command in its own process, against a real warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, publish


@pytest.fixture
def home(tmp_path) -> Path:
    """A warehouse whose problems table has 5 rows, and a file outside the home with a secret."""
    store = ArtifactStore.from_env()
    publish(Warehouse(store), "problems", "five", pl.DataFrame({"problem_id": [str(i) for i in range(5)]}))
    (tmp_path / "secret.txt").write_text("the secret outside the home\n")
    return Path(store.root)


def _sql(query: str, tmp_path: Path) -> subprocess.CompletedProcess:
    user_home = tmp_path / "user_home"  # DuckDB installs extensions under ~/.duckdb
    user_home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(user_home)}
    return subprocess.run([sys.executable, "-m", "astro_pipeline.cli", "sql", query, "--format", "json"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def _count(home: Path) -> int:
    return Warehouse(ArtifactStore(str(home))).query("SELECT count(*) AS n FROM problems")["n"][0]


def test_select_works_and_sees_the_home(home, tmp_path):
    done = _sql("SELECT count(*) AS n FROM problems", tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": 5}]
    inside = _sql(f"SELECT count(*) AS n FROM glob('{home}/tables/**')", tmp_path)
    assert inside.returncode == 0 and json.loads(inside.stdout) == [{"n": 1}], inside.stderr


def test_copy_cannot_overwrite_warehouse_data(home, tmp_path):
    target = home / "tables" / "problems" / "x.parquet"
    done = _sql(f"COPY (SELECT '9' AS problem_id) TO '{target}'", tmp_path)
    assert done.returncode != 0 and "COPY" in done.stderr
    assert not target.exists() and _count(home) == 5
    export = _sql(f"EXPORT DATABASE '{home}/exported'", tmp_path)
    assert export.returncode != 0 and not (home / "exported").exists()


def test_set_cannot_loosen_the_sandbox(home, tmp_path):
    done = _sql("SET memory_limit = '1GB'; SELECT current_setting('memory_limit') AS m", tmp_path)
    assert done.returncode != 0 and "SET" in done.stderr and "GiB" not in done.stdout
    # and on the connection itself, a SET that slipped past the statement check is locked out
    wh = Warehouse(ArtifactStore(str(home)))
    with wh.connect() as con, pytest.raises(duckdb.Error, match="locked"):
        con.execute("SET enable_external_access = true")


def test_files_outside_the_home_cannot_be_read(home, tmp_path):
    done = _sql(f"SELECT content FROM read_text('{tmp_path}/secret.txt')", tmp_path)
    assert done.returncode != 0 and "secret outside" not in done.stdout
    assert "Permission" in done.stderr
    listing = _sql("SELECT count(*) AS n FROM glob('/**')", tmp_path)
    assert listing.returncode != 0 and "Permission" in listing.stderr


def test_extensions_cannot_be_installed_or_loaded(home, tmp_path):
    done = _sql("INSTALL httpfs", tmp_path)
    assert done.returncode != 0 and "refused" in done.stderr
    assert not (tmp_path / "user_home" / ".duckdb").exists()
    # below the statement check: DuckDB itself refuses, and does not fetch one on demand either
    wh = Warehouse(ArtifactStore(str(home)))
    with wh.connect() as con:
        with pytest.raises(duckdb.Error, match="disabled"):
            con.execute("INSTALL httpfs")
        with pytest.raises(duckdb.Error, match="disabled"):
            con.execute("SELECT * FROM read_csv('https://example.com/x.csv')")
