"""``astro ui``: the Dagster webserver and daemon on loopback, stopped cleanly on Ctrl-C or SIGTERM.

Design: both are child processes in their own process group. A shell that starts us in the
background leaves SIGINT ignored, and children inherit ignored signals, so we reset SIGINT and
SIGTERM to their defaults in the children (preexec_fn) and forward our own signals to them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from astro_pipeline.defs.instance import REPO, dagster_instance, ensure_dagster_home  # noqa: F401 (re-exported)


def _reset_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def serve(recipe: str = "demo", host: str = "127.0.0.1", port: int = 3000) -> int:
    dagster_instance().dispose()  # storage created now, so the webserver and daemon do not race on it
    os.environ["ASTRO_RECIPE"] = recipe
    workspace = str(REPO / "workspace.yaml")
    bindir = Path(sys.executable).parent
    commands = [
        [str(bindir / "dagster-webserver"), "-h", host, "-p", str(port), "-w", workspace],
        [str(bindir / "dagster-daemon"), "run", "-w", workspace],
    ]
    children = [subprocess.Popen(cmd, cwd=REPO, preexec_fn=_reset_signals) for cmd in commands]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"Dagster UI on http://{host}:{port} (recipe {recipe}); Ctrl-C stops it", flush=True)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
    return 0 if stopping else 1
