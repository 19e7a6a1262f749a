"""The Dagster UI in a real browser: after a pipeline run, the asset graph and partitions are there.

Starts `astro ui` (webserver + daemon) on a free loopback port, drives Debian's Chromium with
playwright, saves a screenshot of the asset lineage, and checks asset names and partition keys.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ASSETS = ("problems", "base_model", "search_trees", "search_traces", "cot_corpus", "sft_model", "rl_model",
          "eval_scores", "report")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"astro ui exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {seconds}s")


@pytest.mark.slow
def test_ui_shows_assets_and_partitions(in_tiny_run, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium not installed (Debian package `chromium`; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "ui.log").open("wb")  # a file, not a pipe: nothing the UI starts can block our read
    proc = subprocess.Popen([sys.executable, "-m", "astro_pipeline.cli", "ui", "--recipe", in_tiny_run.recipe,
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_up(f"http://127.0.0.1:{port}/server_info", proc)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/assets/report?view=lineage&lineageScope=upstream&lineageDepth=10")
            page.wait_for_selector("text=search_trees", timeout=180_000)
            skip = page.get_by_role("button", name="Skip")  # the first-visit community dialog
            if skip.count():
                skip.click()
            page.wait_for_timeout(1500)
            shot = tmp_path / "asset_graph.png"
            page.screenshot(path=str(shot))
            graph_text = page.inner_text("body")

            page.goto(f"http://127.0.0.1:{port}/assets/problems?view=partitions")
            page.wait_for_selector("text=synthetic_train", timeout=180_000)
            partitions_text = page.inner_text("body")
            browser.close()
        assert shot.stat().st_size > 10_000
        assert all(a in graph_text for a in ASSETS), [a for a in ASSETS if a not in graph_text]
        assert "synthetic_train" in partitions_text and "synthetic_test" in partitions_text
    finally:
        proc.send_signal(signal.SIGTERM)  # astro ui must stop its webserver and daemon cleanly
        proc.wait(timeout=120)
        log.close()
    assert proc.returncode == 0, (tmp_path / "ui.log").read_text(errors="replace")[-2000:]
    leftovers = subprocess.run(["pgrep", "-f", f"dagster-webserver -h 127.0.0.1 -p {port}"], capture_output=True)
    assert leftovers.returncode == 1, "the webserver outlived astro ui"
