"""One real run of the tiny recipe per test session, shared by the tests that inspect its results.

The run is ``astro run`` itself, in a subprocess as a person would start it (120 columns), against
its own DAGSTER_HOME and ASTRO_HOME; what it printed is kept, so its output can be tested too.
Tests that use the run point their environment at those homes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY = str(Path(__file__).parent / "recipes" / "tiny.yaml")


@dataclass(frozen=True)
class TinyRun:
    astro_home: Path
    dagster_home: Path
    recipe: str
    output: str  # stdout and stderr of `astro run`, interleaved as on a terminal


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    root = tmp_path_factory.mktemp("tiny_run")
    homes = {"ASTRO_HOME": root / "astro_home", "DAGSTER_HOME": root / "dagster_home"}
    homes["DAGSTER_HOME"].mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ASTRO_RECIPE", "ASTRO_PROGRESS_S")}
    env.update({k: str(v) for k, v in homes.items()}, COLUMNS="120", PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "astro_pipeline.cli", "run", "--recipe", TINY], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:]
    return TinyRun(homes["ASTRO_HOME"], homes["DAGSTER_HOME"], TINY, done.stdout)


@pytest.fixture
def in_tiny_run(tiny_run, monkeypatch) -> TinyRun:
    """Point this test's environment at the shared tiny run."""
    monkeypatch.setenv("ASTRO_HOME", str(tiny_run.astro_home))
    monkeypatch.setenv("DAGSTER_HOME", str(tiny_run.dagster_home))
    monkeypatch.setenv("ASTRO_RECIPE", tiny_run.recipe)
    return tiny_run


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path, monkeypatch) -> Path:
    """A copy of the shared tiny run's artifact root made the way people back up and share runs
    (``cp -a``), with this test's environment pointed at it; the Dagster home is the test's own
    fresh one. Tests that change or break artifacts do it here, never in the shared run."""
    import shutil

    copy = tmp_path / "copied_home"
    shutil.copytree(tiny_run.astro_home, copy, symlinks=True)
    monkeypatch.setenv("ASTRO_HOME", str(copy))
    monkeypatch.setenv("ASTRO_RECIPE", tiny_run.recipe)
    return copy
