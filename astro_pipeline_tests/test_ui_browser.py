"""The Dagster UI in a real browser: after a pipeline run, what a researcher looks for is there.

Starts `astro ui` (webserver + daemon) on a free loopback port, drives Debian's Chromium with
playwright and saves screenshots: the asset lineage (asset names), the partitions (only those the
recipe builds), a search_trees partition's tree picture, a training asset's inline curve, and the
report's page whose images must all load.
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
ASSETS = ("problems", "benchmark_problems", "base_model", "search_trees", "search_traces", "cot_corpus", "sft_model",
          "rl_model", "eval_scores", "report")
LOADED = "img => img.complete && img.naturalWidth > 0"  # the image decoded: not a broken link


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
            # Dagster's first-visit "Join the Dagster community" dialog can open on any page, at any
            # time (once it covered the sft_model page and hid the curves): close it whenever it shows
            page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                                     lambda: page.get_by_role("button", name="Skip").click())
            page.goto(f"http://127.0.0.1:{port}/assets/report?view=lineage&lineageScope=upstream&lineageDepth=10")
            page.wait_for_selector("text=search_trees", timeout=180_000)
            page.wait_for_timeout(1500)
            shot = tmp_path / "asset_graph.png"
            page.screenshot(path=str(shot))
            graph_text = page.inner_text("body")

            page.goto(f"http://127.0.0.1:{port}/assets/problems?view=partitions")
            page.wait_for_selector("text=synthetic_train", timeout=180_000)
            partitions_text = page.inner_text("body")

            page.goto(f"http://127.0.0.1:{port}/assets/benchmark_problems?view=partitions")
            page.wait_for_selector("text=synthetic_test", timeout=180_000)
            benchmarks_text = page.inner_text("body")
            page.goto(f"http://127.0.0.1:{port}/assets/eval_scores?view=partitions")
            page.wait_for_selector("text=Missing (", timeout=180_000)
            eval_text = page.inner_text("body")

            # a search partition: its sample trees are pictures behind their metadata rows
            page.goto(f"http://127.0.0.1:{port}/assets/search_trees?view=partitions&partition=synthetic_train")
            row = page.locator("tr", has_text="tree: synthetic_train").first
            row.wait_for(timeout=180_000)
            row.get_by_text("[Show Markdown]").click()
            tree = page.locator('[role="dialog"] img[alt^="tree "]').first
            tree.wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            tree_loaded, tree_size = tree.evaluate(LOADED), tree.evaluate("i => i.naturalWidth * i.naturalHeight")
            page.screenshot(path=str(tmp_path / "search_tree.png"))
            page.keyboard.press("Escape")

            # a training asset: its curves are drawn inline in the metadata table
            page.goto(f"http://127.0.0.1:{port}/assets/sft_model")
            curve = page.locator('img[alt="loss"]').first
            curve.wait_for(timeout=180_000)
            curve.scroll_into_view_if_needed()
            curve_inline = curve.is_visible() and page.locator('[role="dialog"]').count() == 0
            curve_loaded = curve.evaluate(LOADED)
            page.screenshot(path=str(tmp_path / "sft_curves.png"))

            # the report: its page's images load in the UI
            page.goto(f"http://127.0.0.1:{port}/assets/report")
            report_row = page.locator("tr", has_text="report page").first
            report_row.wait_for(timeout=180_000)
            leaderboard_text = page.locator("tr", has_text="leaderboard").first.inner_text()
            report_row.get_by_text("[Show Markdown]").click()
            page.locator('[role="dialog"] img').first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            report_images = page.locator('[role="dialog"] img').evaluate_all(f"imgs => imgs.map({LOADED})")
            page.screenshot(path=str(tmp_path / "report.png"))
            browser.close()
        assert shot.stat().st_size > 10_000
        assert all(a in graph_text for a in ASSETS), [a for a in ASSETS if a not in graph_text]
        # searched datasets and benchmarks are different partitions: nothing is offered that nothing builds
        assert "synthetic_train" in partitions_text and "synthetic_test" not in partitions_text
        assert "synthetic_test" in benchmarks_text and "Missing (0)" in eval_text and "Materialized (3)" in eval_text
        assert tree_loaded and tree_size > 100_000, "the tree picture did not load"
        assert curve_inline and curve_loaded, "the loss curve is not drawn inline"
        assert "synthetic_test" in leaderboard_text and "±" in leaderboard_text
        assert len(report_images) >= 3 and all(report_images), report_images
    finally:
        proc.send_signal(signal.SIGTERM)  # astro ui must stop its webserver and daemon cleanly
        proc.wait(timeout=120)
        log.close()
    assert proc.returncode == 0, (tmp_path / "ui.log").read_text(errors="replace")[-2000:]
    leftovers = subprocess.run(["pgrep", "-f", f"dagster-webserver -h 127.0.0.1 -p {port}"], capture_output=True)
    assert leftovers.returncode == 1, "the webserver outlived astro ui"
