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
* Our stages are matched to the paper's rows by role (``paper.PAPER_RESULTS``: base, direct_sft,
  sft, direct_rl, rl); our stages without a paper counterpart are listed after them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from astro_pipeline.evaluate import plots
from astro_pipeline.evaluate.document import Document
from astro_pipeline.evaluate.paper import BENCHMARK_TITLES, PAPER_BACKTRACK_CORRELATION, PAPER_RESULTS, SOURCE, stage_rank
from astro_pipeline.evaluate.scoring import GENERATIONS_SCHEMA, SCORES_SCHEMA
from astro_pipeline.evaluate.sqlfiles import run_sql_file

TRAIN_METRICS_SCHEMA: dict[str, pl.DataType] = {
    "stage": pl.Utf8(), "step": pl.Int64(), "name": pl.Utf8(), "value": pl.Float64(),
}
DASH = "—"


@dataclass
class ReportResult:
    markdown: str
    html_path: Path
    markdown_path: Path
    plot_paths: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # plot name -> why it was skipped


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
) -> ReportResult:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` into ``out_dir`` (see module doc)."""
    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    scores = conform(eval_scores, SCORES_SCHEMA)
    generations = conform(eval_generations, GENERATIONS_SCHEMA)
    metrics = conform(train_metrics, TRAIN_METRICS_SCHEMA)

    board = run_sql_file("eval_leaderboard", eval_scores=scores)
    lengths = run_sql_file("length_by_stage", eval_generations=generations)
    buckets = run_sql_file("backtracks_vs_accuracy", eval_generations=generations, eval_scores=scores)
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

    _leaderboard(doc, board)
    add_plot(plots.accuracy_by_stage(board, plot_dir))
    _paper_table(doc, board)
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
    )


def _leaderboard(doc: Document, board: pl.DataFrame) -> None:
    doc.heading("Leaderboard")
    if board.height == 0:
        doc.para("No evaluation scores yet.")
        return
    columns = ["benchmark", "stage", "problems", "samples", "pass@1 ± se", "maj@k", "k", "greedy", "mean tokens", "truncated"]
    rows = [
        [r["benchmark"], r["stage"], fmt(r["n_problems"]), fmt(r["n_samples"]), r["pass_at_1_text"] or DASH,
         fmt(r["maj_at_k_pct"]), fmt(r["k"]), fmt(r["greedy_pct"]), fmt(r["mean_tokens"]), fmt(r["truncated_pct"])]
        for r in board.iter_rows(named=True)
    ]
    doc.table(columns, rows)


def _paper_table(doc: Document, board: pl.DataFrame) -> None:
    doc.heading("The paper beside ours")
    doc.para(
        f"Paper: {SOURCE}. Ours: pass@1 ± standard error in %, latest run per benchmark and stage. "
        "The paper's models are Llama-3.1-70B; a small or demo model is not expected to reach its numbers, "
        "the comparison is of the shape (does each stage improve on the previous one)."
    )
    ours = {(r["benchmark"], r["stage"]): r["pass_at_1_text"] for r in board.iter_rows(named=True)}
    benches = list(BENCHMARK_TITLES)
    columns = ["paper model", "our stage"] + [f"{BENCHMARK_TITLES[b]} {who}" for b in benches for who in ("paper", "ours")]
    rows = []
    for prow in PAPER_RESULTS:
        cells = [prow.model, prow.stage]
        for b in benches:
            cells += [prow.values.get(b, DASH), ours.get((b, prow.stage)) or DASH]
        rows.append(cells)
    paper_stages = {p.stage for p in PAPER_RESULTS}
    for stage in dict.fromkeys(board["stage"].to_list()):
        if stage in paper_stages:
            continue
        cells = [DASH, stage]
        for b in benches:
            cells += [DASH, ours.get((b, stage)) or DASH]
        rows.append(cells)
    doc.table(columns, rows)
    others = sorted(set(board["benchmark"].to_list()) - set(benches))
    if others:
        doc.para(f"Benchmarks the paper does not report (see the leaderboard): {', '.join(others)}.")


def _settings(doc: Document, latest: pl.DataFrame) -> None:
    doc.heading("Sampling settings and versions")
    if latest.height == 0:
        doc.para("No evaluation scores yet.")
        return
    columns = ["benchmark", "stage", "samples", "temperature", "top_p", "max new tokens", "seed", "backend", "model", "created"]
    rows = [
        [r["benchmark"], r["stage"], fmt(r["n_samples"]), fmt(r["temperature"], 2), fmt(r["top_p"], 2),
         fmt(r["max_new_tokens"]), fmt(r["seed"]), r["backend"] or DASH, r["model_path"] or DASH, r["created_at"] or DASH]
        for r in latest.iter_rows(named=True)
    ]
    doc.table(columns, rows)
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


def _lengths(doc: Document, lengths: pl.DataFrame) -> None:
    doc.heading("Completion length")
    if lengths.height == 0:
        doc.para("No stored completions.")
        return
    doc.para("Generated tokens per sampled completion ('all' pools the benchmarks of a stage); truncated = hit the token budget.")
    columns = ["benchmark", "stage", "completions", "mean", "p50", "p90", "max", "truncated %"]
    rows = [
        [r["benchmark"], r["stage"], fmt(r["n_completions"]), fmt(r["mean_tokens"]), fmt(r["p50_tokens"]),
         fmt(r["p90_tokens"]), fmt(r["max_tokens"]), fmt(None if r["truncated_share"] is None else 100 * r["truncated_share"])]
        for r in lengths.iter_rows(named=True)
    ]
    doc.table(columns, rows)


def _backtracks(doc: Document, buckets: pl.DataFrame) -> None:
    doc.heading("Backtracks and accuracy")
    if buckets.height == 0:
        doc.para("No stored completions.")
        return
    lo, hi = PAPER_BACKTRACK_CORRELATION
    doc.para(
        "Accuracy of sampled completions by how often they backtrack. r per sample: Pearson correlation of a "
        "completion's backtracks with its correctness within a (benchmark, stage). r across stages: Pearson "
        "correlation of the stages' mean backtracks with their pass@1 within a benchmark (the paper reports "
        f"r = {lo}-{hi} across training checkpoints; with few stages this r rests on few points). "
        "A dash: undefined (no variance, or backtracks not counted)."
    )
    columns = ["benchmark", "stage", "backtracks", "completions", "accuracy %", "r per sample", "r across stages", "stages"]
    rows = [
        [r["benchmark"], r["stage"], r["backtracks_bucket"], fmt(r["n_completions"]),
         fmt(None if r["accuracy"] is None else 100 * r["accuracy"]), fmt(r["r_per_sample"], 3),
         fmt(r["r_across_stages"], 3), fmt(r["n_stages"])]
        for r in buckets.iter_rows(named=True)
    ]
    doc.table(columns, rows)
