"""One real run of the tiny recipe per test session, shared by the tests that inspect its results.

The run goes through ``astro run`` machinery (the Dagster instance under its own DAGSTER_HOME,
the artifact store under its own ASTRO_HOME); tests that use it point their environment there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY = str(Path(__file__).parent / "recipes" / "tiny.yaml")


@dataclass(frozen=True)
class TinyRun:
    astro_home: Path
    dagster_home: Path
    recipe: str
    outcomes: list


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    from astro_pipeline.defs.runner import run_recipe

    root = tmp_path_factory.mktemp("tiny_run")
    homes = {"ASTRO_HOME": root / "astro_home", "DAGSTER_HOME": root / "dagster_home"}
    homes["DAGSTER_HOME"].mkdir()
    saved = {k: os.environ.get(k) for k in (*homes, "ASTRO_RECIPE")}
    os.environ.update({k: str(v) for k, v in homes.items()})
    try:
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            outcomes = run_recipe(TINY, instance=instance)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    failed = [o for o in outcomes if not o.success]
    assert not failed, failed
    return TinyRun(homes["ASTRO_HOME"], homes["DAGSTER_HOME"], TINY, outcomes)


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
