"""What ``astro run`` prints when it is done: one line per step, the leaderboard, the report's path.

The log above it (``defs.logs``) is the run as it happens; this is the result, short enough to be
read at the end of a terminal: status, asset[partition], seconds and checks per step, then how to
find the runs in the UI (a link to the Runs page filtered by the invocation tag), the benchmark x stage grid of pass@1 and the report.
"""

from __future__ import annotations

from urllib.parse import quote

from astro_pipeline.defs.tags import INVOCATION_TAG

UI_RUNS = "http://127.0.0.1:3000/runs?q%5B0%5D="  # the Runs page of `astro ui`, filtered by a tag


def step_line(r) -> str:
    status = "ok     " if r.success else ("skipped" if r.skipped else "FAILED ")
    where = f"{r.asset}[{r.partition}]" if r.partition else r.asset
    checks = "".join(f"  check {name}: {'passed' if ok else 'FAILED'}" for name, ok in r.checks.items())
    note = f"\n        {r.note}" if r.note else ""
    return f"{status} {where:<42} {r.seconds:7.1f}s{checks}{note}"


def summary_lines(results: list) -> list[str]:
    lines = [step_line(r) for r in results]
    if not results:
        return ["nothing to run for this selection"]
    runs = len({r.run_id for r in results})
    ok = sum(r.success for r in results)
    tag = f"{INVOCATION_TAG}={results[0].invocation}"
    lines.append(f"{ok} of {len(results)} steps ok in {runs} Dagster runs, tagged {tag}")
    lines.append(f"these runs in the UI (make ui): {UI_RUNS}{quote('tag:' + tag, safe='/')}")
    lines += _leaderboard_and_report()
    return lines


def _leaderboard_and_report() -> list[str]:
    from astro_pipeline.evaluate.leaderboard import grid_text, stage_grid
    from astro_pipeline.storage import ArtifactStore
    from astro_pipeline.warehouse import TABLE_GLOBS, Warehouse
    from astro_pipeline.warehouse.errors import missing_warehouse

    store = ArtifactStore.from_env()
    warehouse = Warehouse(store)
    lines = []
    if missing_warehouse(warehouse.db_path) is None and store.glob(TABLE_GLOBS["eval_scores"]):
        columns, rows = stage_grid(warehouse.run_file("eval_leaderboard.sql"))
        lines += ["", "pass@1 ± stderr (%), latest run per benchmark and stage:", grid_text(columns, rows)]
    if store.exists("report/report.html"):
        lines += ["", f"report: {store.uri('report/report.html')}"]
    return lines
