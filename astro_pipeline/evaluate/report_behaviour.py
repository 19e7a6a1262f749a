"""The report's sections on how the models search: truncation warnings, the correlation between
backtracks and correctness, one reflection in a model's own words, and sample search trees.

Each works from frames that may be empty or lack stages and then says so in a sentence.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from astro_pipeline.cloning.budget import truncation_warning
from astro_pipeline.evaluate.document import Document
from astro_pipeline.evaluate.paper import PAPER_RESULTS
from astro_pipeline.evaluate.samples import first_backtracking, sample_heading, shown_text

PAPER_NAMES = {row.stage: row.model for row in PAPER_RESULTS if row.stage != "base"}  # the arms' names


def truncation_warnings(latest_scores: pl.DataFrame) -> list[str]:
    """One line per (benchmark, stage) whose sampled completions were cut more often than the limit
    (``latest_scores``: the latest eval_scores row of each pair); the wording is ``truncation_warning``'s."""
    lines = []
    for r in latest_scores.iter_rows(named=True):
        warning = truncation_warning(r["stage"], r["benchmark"], r.get("truncated_share"), r.get("max_new_tokens"))
        if warning is not None:
            lines.append(f"Warning: {warning}")
    return lines


def describe_r(r: float | None) -> str:
    """Sign and size of a correlation in words (|r| < 0.1 negligible, < 0.3 weak, < 0.5 moderate)."""
    if r is None:
        return "undefined (no variance)"
    size = "negligible" if abs(r) < 0.1 else "weak" if abs(r) < 0.3 else "moderate" if abs(r) < 0.5 else "strong"
    sign = "positive" if r > 0 else "negative" if r < 0 else "zero"
    return f"{sign}, {size}"


def correlation_section(doc: Document, buckets: pl.DataFrame) -> None:
    doc.heading("Do backtracks go with correct answers?")
    if buckets.height == 0:
        doc.para("No stored completions.")
        return
    pairs = buckets.unique(["benchmark", "stage"], keep="first", maintain_order=True)
    doc.para("r per problem: Pearson correlation, over a stage's problems, between a problem's mean backtracks "
             "per sample and its share of correct samples (sql/backtracks_vs_accuracy.sql). Positive: the model "
             "backtracks more on the problems it solves. r per completion: the same over single completions.")
    rows = [[r["benchmark"], f"{r['stage']} ({PAPER_NAMES[r['stage']]})" if r["stage"] in PAPER_NAMES else r["stage"],
             _signed(r.get("r_per_problem")), describe_r(r.get("r_per_problem")), str(r.get("n_problems") or "—"),
             _signed(r.get("r_per_sample"))]
            for r in pairs.iter_rows(named=True)]
    doc.table(["benchmark", "stage", "r per problem", "sign and size", "problems", "r per completion"], rows)


def _signed(r: float | None) -> str:
    return "—" if r is None else f"{r:+.2f}"


def reflection_sample(doc: Document, generations: pl.DataFrame) -> None:
    doc.heading("A reflection in the model's own words")
    row = first_backtracking(generations, ("sft", "rl"))
    if row is None:
        doc.para("No sampled ASTRO-SFT or ASTRO-RL completion has a backtrack the detector counts.")
        return
    doc.para(f"{PAPER_NAMES.get(row['stage'], row['stage'])} on {row['benchmark']}: {sample_heading(row)}.")
    doc.code(shown_text(row["completion"]))


def trees_section(doc: Document, tree_nodes: pl.DataFrame | None, traces: pl.DataFrame | None, plot_dir: Path,
                  n: int = 2) -> list[Path]:
    """Up to ``n`` sample trees per searched dataset, as SVG files beside the plots."""
    from astro_pipeline.explore.pictures import sample_pictures

    doc.heading("Search trees and their traces")
    if tree_nodes is None or tree_nodes.height == 0:
        doc.para("No search trees in the warehouse.")
        return []
    doc.para("Each row is a node (N visits, Q value, P prior); green: correct terminal, red: wrong terminal; "
             "blue badges: the order in which the trace visits nodes; dashed orange arrows: its backtracks.")
    paths = []
    for (dataset,), nodes in tree_nodes.group_by("dataset", maintain_order=True):
        mine = traces.filter(pl.col("dataset") == dataset) if traces is not None and traces.height else None
        for picture in sample_pictures(nodes, mine, n=n):
            path = plot_dir / f"tree_{dataset}_{picture.problem_id}.svg"
            path.write_text(picture.svg, encoding="utf-8")
            doc.image(path, picture.caption)
            paths.append(path)
    return paths
