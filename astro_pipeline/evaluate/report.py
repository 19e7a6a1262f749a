"""The evaluation report: a Markdown and an HTML page with the leaderboard, the paper's table
beside ours, sampling settings and versions, length and backtrack statistics, and plots.

Design choices:

* The numbers come from the repository's ``sql/`` files run on the given frames
  (``sqlfiles.run_sql_file``), so the report shows what ``astro sql`` shows on the warehouse.
* Inputs may be empty or lack optional columns (no RL run yet, no generations kept): each is
  conformed to its schema first, every section says "no data" instead of failing, and every
  plot that lacks data is skipped with a note (``ReportResult.skipped``).
* Output folder: ``report.md`` (images linked as ``plots/NAME.png``, relative: keep the folder
  together), ``report.html`` (images embedded as base64: one self-contained file), ``plots/``.
  Files are written to a temporary name and renamed, so a reader never sees half a page.
* The paper's table and ours have the same rows, matched by role (``paper.PAPER_RESULTS``: base,
  direct_sft, sft, direct_rl, rl; see ``report_paper``); every cell of ours says its sample size,
  and a cell the run cannot fill says why in a footnote.
* Behaviour sections (``report_behaviour``): a warning for every stage whose completions are cut
  too often, the per-problem correlation of backtracks and correctness with its sign and size, one
  ASTRO completion with a counted backtrack, and sample search trees with their traces.
* ``ReportResult.markdown_embedded`` is the page with images as ``data:`` URIs, for the Dagster UI
  (a relative link there would be a broken image).
"""

from __future__ import annotations

from collections.abc import Callable
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from astro_pipeline.evaluate import plots
from astro_pipeline.evaluate.document import Document
from astro_pipeline.evaluate.paper import PAPER_BACKTRACK_CORRELATION, stage_rank
from astro_pipeline.evaluate.report_behaviour import (
    correlation_section,
    reflection_sample,
    trees_section,
    truncation_warnings,
)
from astro_pipeline.evaluate.report_paper import our_table, paper_table
from astro_pipeline.evaluate.scoring import GENERATIONS_SCHEMA, SCORES_SCHEMA
from astro_pipeline.evaluate.sqlfiles import run_sql_file
from astro_pipeline.warehouse.tables import TRAIN_METRICS

DASH = "—"


@dataclass
class ReportResult:
    markdown: str
    html_path: Path
    markdown_path: Path
    plot_paths: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # plot name -> why it was skipped
    markdown_embedded: str = ""  # the same page with images inlined as data: URIs
    warnings: list[str] = field(default_factory=list)  # the truncation warnings at the top of the page
    tree_paths: list[Path] = field(default_factory=list)  # the sample trees' SVG files
    leaderboard: pl.DataFrame | None = None  # sql/eval_leaderboard.sql on the scores


def conform(df: pl.DataFrame | None, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``df`` with every column of ``schema`` (missing ones null) cast to the schema's types."""
    if df is None or df.width == 0:
        return pl.DataFrame(schema=schema)
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in df.columns]
    df = df.with_columns(missing) if missing else df
    return df.with_columns([pl.col(n).cast(t, strict=False) for n, t in schema.items()])


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def latest_runs(metrics: pl.DataFrame) -> pl.DataFrame:
    """The training metrics of each stage's latest run (``recorded_at``); rows without a run id (written
    before runs were recorded) count as one run."""
    if metrics.height == 0:
        return metrics
    latest = (metrics.group_by("stage", "run").agg(pl.col("recorded_at").max().alias("_at"))
              .sort("_at", nulls_last=False).unique("stage", keep="last"))
    return metrics.join(latest.select("stage", "run"), on=["stage", "run"], how="semi", nulls_equal=True)


def _latest(scores: pl.DataFrame) -> pl.DataFrame:
    """The latest row per (benchmark, stage), ordered by benchmark then stage (display order)."""
    latest = scores.sort("created_at", nulls_last=False).unique(["benchmark", "stage"], keep="last")
    order = sorted(latest.iter_rows(named=True), key=lambda r: (r["benchmark"] or "", stage_rank(r["stage"] or "")))
    return pl.DataFrame(order, schema=latest.schema)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_report(
    eval_scores: pl.DataFrame,
    eval_generations: pl.DataFrame,
    train_metrics: pl.DataFrame,
    out_dir: Path,
    *,
    title: str = "ASTRO evaluation report",
    tree_nodes: pl.DataFrame | None = None,
    traces: pl.DataFrame | None = None,
    benchmarks: tuple[str, ...] | None = None,
    stages: tuple[str, ...] | None = None,
) -> ReportResult:
    """Write ``report.md``, ``report.html`` and ``plots/*`` into ``out_dir`` (see module doc).

    ``tree_nodes``/``traces``: the searched datasets' trees for the tree pictures (optional);
    ``benchmarks``/``stages``: what the recipe evaluates, so an empty cell can say why it is empty."""
    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    scores = conform(eval_scores, SCORES_SCHEMA)
    generations = conform(eval_generations, GENERATIONS_SCHEMA)
    metrics = latest_runs(conform(train_metrics, TRAIN_METRICS.schema))

    board = run_sql_file("eval_leaderboard", eval_scores=scores)
    lengths = run_sql_file("length_by_stage", eval_generations=generations)
    buckets = run_sql_file("backtracks_vs_accuracy", eval_generations=generations, eval_scores=scores)
    behaviour = run_sql_file("stage_behaviour", eval_generations=generations, eval_scores=scores)
    latest = _latest(scores)

    doc = Document(title)
    made: list[plots.Plot] = []

    def add_plot(p: plots.Plot) -> None:
        made.append(p)
        if p.path is not None:
            doc.image(p.path, p.title)
        else:
            doc.para(f"Plot '{p.title}' skipped: {p.note}.")

    doc.para(
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {latest.height} "
        f"(benchmark, stage) score rows, {generations.height} stored completions and {metrics.height} training metric values."
    )
    doc.para(
        "pass@1: per problem the share of its n sampled completions judged correct, averaged over problems; "
        "± is the standard error (standard deviation over problems of the per-problem shares / sqrt(problems)). "
        "maj@k: majority vote over the first k sampled answers (ties: the answer seen first). "
        "greedy: one temperature-0 completion per problem. All values in %."
    )
    warnings = truncation_warnings(latest)
    for line in warnings:
        doc.para(line)

    _leaderboard(doc, board)
    add_plot(plots.accuracy_by_stage(board, plot_dir))
    paper_table(doc)
    our_table(doc, board, behaviour, benchmarks, stages)
    correlation_section(doc, buckets)
    reflection_sample(doc, generations)
    tree_paths = trees_section(doc, tree_nodes, traces, plot_dir)
    _settings(doc, latest)
    _lengths(doc, lengths)
    _backtracks(doc, buckets)
    add_plot(plots.backtracks_histogram(generations, plot_dir))
    add_plot(plots.backtracks_vs_accuracy(buckets, latest, plot_dir))
    doc.heading("RL training")
    add_plot(plots.rl_curve(metrics, plot_dir, kind="reward"))
    add_plot(plots.rl_curve(metrics, plot_dir, kind="length"))

    markdown = doc.to_markdown(out_dir)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    _write(md_path, markdown)
    _write(html_path, doc.to_html())
    return ReportResult(
        markdown=markdown,
        html_path=html_path,
        markdown_path=md_path,
        plot_paths=[p.path for p in made if p.path is not None],
        skipped={p.name: p.note for p in made if p.path is None},
        markdown_embedded=doc.to_markdown(out_dir, embed=True),
        warnings=warnings,
        tree_paths=tree_paths,
        leaderboard=board,
    )


def _table_section(doc: Document, title: str, frame: pl.DataFrame, empty: str, columns: list[str],
                   row: Callable[[dict], list], intro: str | None = None) -> bool:
    """A heading and one table row per row of ``frame`` (``empty`` as the text when it has none)."""
    doc.heading(title)
    if frame.height == 0:
        doc.para(empty)
        return False
    if intro:
        doc.para(intro)
    doc.table(columns, [row(r) for r in frame.iter_rows(named=True)])
    return True


def _leaderboard(doc: Document, board: pl.DataFrame) -> None:
    _table_section(
        doc, "Leaderboard", board, "No evaluation scores yet.",
        ["benchmark", "stage", "problems", "samples", "pass@1 ± se", "maj@k", "k", "greedy", "mean tokens", "truncated"],
        lambda r: [r["benchmark"], r["stage"], fmt(r["n_problems"]), fmt(r["n_samples"]), r["pass_at_1_text"] or DASH,
                   fmt(r["maj_at_k_pct"]), fmt(r["k"]), fmt(r["greedy_pct"]), fmt(r["mean_tokens"]),
                   fmt(r["truncated_pct"])])


def _settings(doc: Document, latest: pl.DataFrame) -> None:
    if not _table_section(
        doc, "Sampling settings and versions", latest, "No evaluation scores yet.",
        ["benchmark", "stage", "samples", "temperature", "top_p", "max new tokens", "seed", "backend", "model", "created"],
        lambda r: [r["benchmark"], r["stage"], fmt(r["n_samples"]), fmt(r["temperature"], 2), fmt(r["top_p"], 2),
                   fmt(r["max_new_tokens"]), fmt(r["seed"]), r["backend"] or DASH, r["model_path"] or DASH,
                   r["created_at"] or DASH]):
        return
    versions: dict[str, list[str]] = {}
    for r in latest.iter_rows(named=True):
        versions.setdefault(r["versions_json"] or "{}", []).append(f"{r['benchmark']}/{r['stage']}")
    for text, where in versions.items():
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = {}
        listed = ", ".join(f"{k} {v}" for k, v in sorted(parsed.items())) or "not recorded"
        scope = "all runs" if len(versions) == 1 else ", ".join(where)
        doc.para(f"Library versions ({scope}): {listed}.")


def _pct(share: float | None) -> str:
    return fmt(None if share is None else 100 * share)


def _lengths(doc: Document, lengths: pl.DataFrame) -> None:
    _table_section(
        doc, "Completion length", lengths, "No stored completions.",
        ["benchmark", "stage", "completions", "mean", "p50", "p90", "max", "truncated %"],
        lambda r: [r["benchmark"], r["stage"], fmt(r["n_completions"]), fmt(r["mean_tokens"]), fmt(r["p50_tokens"]),
                   fmt(r["p90_tokens"]), fmt(r["max_tokens"]), _pct(r["truncated_share"])],
        intro="Generated tokens per sampled completion ('all' pools the benchmarks of a stage); truncated = hit the "
              "token budget.")


def _backtracks(doc: Document, buckets: pl.DataFrame) -> None:
    lo, hi = PAPER_BACKTRACK_CORRELATION
    _table_section(
        doc, "Backtracks and accuracy", buckets, "No stored completions.",
        ["benchmark", "stage", "backtracks", "completions", "accuracy %", "r per sample", "r across stages", "stages"],
        lambda r: [r["benchmark"], r["stage"], r["backtracks_bucket"], fmt(r["n_completions"]), _pct(r["accuracy"]),
                   fmt(r["r_per_sample"], 3), fmt(r["r_across_stages"], 3), fmt(r["n_stages"])],
        intro="Accuracy of sampled completions by how often they backtrack. r per sample: Pearson correlation of a "
              "completion's backtracks with its correctness within a (benchmark, stage). r across stages: Pearson "
              "correlation of the stages' mean backtracks with their pass@1 within a benchmark (the paper reports "
              f"r = {lo}-{hi} across training checkpoints; with few stages this r rests on few points). "
              "A dash: undefined (no variance, or backtracks not counted).")
