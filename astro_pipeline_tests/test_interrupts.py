"""One Ctrl-C or SIGTERM ends the whole `astro run`: the run in progress stops, no further run
starts, the command exits non-zero, and no half-written artifact is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

TINY = str(Path(__file__).parent / "recipes" / "tiny.yaml")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_one_signal_ends_the_whole_astro_run(signum):
    home = Path(os.environ["ASTRO_HOME"])
    # base_model runs first, then problems (which does not depend on it): the signal lands in base_model
    proc = subprocess.Popen([sys.executable, "-m", "astro_pipeline.cli", "run", "--recipe", TINY,
                             "--select", "base_model,problems"], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (home / "work" / "base_model").exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)  # inside the training loop
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)  # Ctrl-C in a terminal signals the whole foreground group
    else:
        os.kill(proc.pid, signum)  # `kill`, a service manager, a batch scheduler
    out, err = proc.communicate(timeout=180)

    assert proc.returncode == 128 + signum, (proc.returncode, out, err[-2000:])
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert "problems[" not in out, "a run started after the signal"
    instance = dg.DagsterInstance.get()
    assert not instance.fetch_materializations(dg.AssetKey("problems"), limit=1).records
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.FAILURE
    # nothing half-written: no model published, no temp or staging leftovers, every table readable
    assert not (home / "models" / "base" / ".complete").exists()
    assert not [p for p in home.rglob("*") if ".tmp-" in p.name or ".staging-" in p.name]
    for table in (home / "tables").rglob("*.parquet"):
        pl.read_parquet(table)


def test_a_signal_dagster_swallows_during_an_asset_check_is_still_seen():
    from astro_pipeline.defs.interrupts import StopSignals

    @dg.asset
    def thing() -> int:
        return 1

    @dg.asset_check(asset=thing)
    def thing_check() -> dg.AssetCheckResult:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while Dagster's handler only sets a flag
        time.sleep(0.2)
        return dg.AssetCheckResult(passed=True)

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        assert stop.received() is None
        result = dg.materialize([thing, thing_check], instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        assert stop.received() == signal.SIGTERM, f"run success={result.success}: the signal was lost"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers put back
