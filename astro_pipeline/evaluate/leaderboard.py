"""The leaderboard as one small grid: a row per benchmark, a column per stage, pass@1 ± stderr in %.

Built from ``sql/eval_leaderboard.sql`` (the latest run of each benchmark and stage), so the
report, the report asset's table and the end of ``astro run`` show the same cells.
"""

from __future__ import annotations

import polars as pl

from astro_pipeline.evaluate.paper import stage_rank

MISSING = "—"


def stage_grid(board: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): ``benchmark``, ``problems x samples``, then one column per stage in
    pipeline order (base, direct_sft, sft, direct_rl, rl, others); a dash where a stage has no score."""
    if board.height == 0:
        return ["benchmark"], []
    stages = sorted(dict.fromkeys(board["stage"].to_list()), key=stage_rank)
    cells = {(r["benchmark"], r["stage"]): r for r in board.iter_rows(named=True)}
    rows = []
    for bench in dict.fromkeys(board["benchmark"].to_list()):
        sizes = {(r["n_problems"], r["n_samples"]) for (b, _), r in cells.items() if b == bench}
        size = " / ".join(f"{p} x {s}" for p, s in sorted(sizes, key=lambda t: (t[0] or 0, t[1] or 0)))
        rows.append([bench, size] + [(cells.get((bench, s)) or {}).get("pass_at_1_text") or MISSING for s in stages])
    return ["benchmark", "problems x samples", *stages], rows


def grid_text(columns: list[str], rows: list[list[str]]) -> str:
    """The grid as aligned plain text for a terminal."""
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c)) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(str(v).ljust(w) for v, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), *(line(r) for r in rows)])
