"""Shared fixtures: every test gets its own artifact root and Dagster home; real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def _data_dir() -> Path | None:
    env = os.environ.get("ASTRO_DATA_DIR")
    if env and (Path(env) / "math500.jsonl").is_file():
        return Path(env)
    if (SHARED_DATA / "math500.jsonl").is_file():
        return SHARED_DATA
    return None


@pytest.fixture(autouse=True)
def _isolated_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTRO_HOME", str(tmp_path / "astro_home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    yield


@pytest.fixture
def data_dir(monkeypatch) -> Path:
    """The real benchmark files (../shared/data); tests that need them skip when absent."""
    found = _data_dir()
    if found is None:
        pytest.skip("benchmark data not found (set ASTRO_DATA_DIR or place ../shared/data)")
    monkeypatch.setenv("ASTRO_DATA_DIR", str(found))
    return found


# the local S3 server fixtures, for any test module
from astro_pipeline_tests.s3_fixture import moto_server, s3_bucket, s3_env  # noqa: E402,F401
from astro_pipeline_tests.pipeline_fixture import in_tiny_run, tiny_run, tiny_run_copy  # noqa: E402,F401
from astro_pipeline_tests.vllm_fixture import demo_base_dir, hf_backend, vllm_backend  # noqa: E402,F401


def pytest_collection_modifyitems(config, items):
    """Without vLLM (plain `pytest` in .venv) the engine tests are skipped with the way to run them;
    `make test` deselects them there and runs them in .venv-vllm, where they never skip."""
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        return
    skip = pytest.mark.skip(reason="needs vLLM: `make test-vllm` runs these in .venv-vllm")
    for item in items:
        if "vllm" in item.keywords:
            item.add_marker(skip)
