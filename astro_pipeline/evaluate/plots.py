"""The report's plots (matplotlib, PNG), each a function of frames that may be empty.

Design choices:

* matplotlib's object API (``Figure`` + its Agg canvas), never ``pyplot``: no global figure
  state, no GUI backend chosen by the environment, safe in a Dagster worker thread.
* Every plot function returns a ``Plot``: the written path, or ``None`` and a note saying why the
  plot was skipped (its data is absent). A missing plot never stops the report.
* Inputs are the outputs of the ``sql/`` files (leaderboard, backtracks vs accuracy) and the raw
  tables, so a plot shows the same numbers as the report's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from astro_pipeline.evaluate.paper import stage_rank

DPI = 110


@dataclass(frozen=True)
class Plot:
    name: str
    title: str
    path: Path | None  # None: skipped
    note: str = ""  # why it was skipped, or a caption


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    return path


def accuracy_by_stage(board: pl.DataFrame, out: Path) -> Plot:
    """pass@1 (bars, ± stderr) with maj@k and greedy markers, stages grouped per benchmark."""
    title = "Accuracy by stage"
    if board.height == 0 or board["pass_at_1_pct"].drop_nulls().len() == 0:
        return Plot("accuracy_by_stage", title, None, "no evaluation scores")
    benchmarks = list(dict.fromkeys(board["benchmark"].to_list()))
    stages = list(dict.fromkeys(board["stage"].to_list()))
    fig = Figure(figsize=(max(6.0, 1.2 + 0.6 * len(benchmarks) * max(1, len(stages))), 3.8))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(stages))
    for j, stage in enumerate(stages):
        sub = board.filter(pl.col("stage") == stage)
        xs, ys, errs, majs, greedys = [], [], [], [], []
        for i, bench in enumerate(benchmarks):
            row = sub.filter(pl.col("benchmark") == bench)
            if row.height == 0:
                continue
            r = row.row(0, named=True)
            x = i - 0.4 + width * (j + 0.5)
            xs.append(x)
            ys.append(r["pass_at_1_pct"] or 0.0)
            errs.append(r["stderr_pct"] or 0.0)
            majs.append((x, r["maj_at_k_pct"]))
            greedys.append((x, r["greedy_pct"]))
        ax.bar(xs, ys, width=width * 0.9, yerr=errs, capsize=3, label=f"{stage} pass@1")
        pts = [(x, y) for x, y in majs if y is not None]
        if pts:
            ax.scatter(*zip(*pts), marker="^", color="black", s=18, zorder=3, label="maj@k" if j == 0 else None)
        pts = [(x, y) for x, y in greedys if y is not None]
        if pts:
            ax.scatter(*zip(*pts), marker="x", color="crimson", s=22, zorder=3, label="greedy" if j == 0 else None)
    ax.set_xticks(range(len(benchmarks)), benchmarks)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title + " (bars: pass@1 ± stderr)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return Plot("accuracy_by_stage", title, _save(fig, out / "accuracy_by_stage.png"))


def _sampled(generations: pl.DataFrame) -> pl.DataFrame:
    return generations.filter(pl.col("sample") >= 0)


def backtracks_histogram(generations: pl.DataFrame, out: Path) -> Plot:
    """Share of sampled completions by number of backtracks, one series per stage."""
    title = "Backtracks per completion"
    g = _sampled(generations).filter(pl.col("n_backtracks").is_not_null())
    if g.height == 0:
        return Plot("backtracks_histogram", title, None, "no sampled completions")
    if g["n_backtracks"].max() == 0:
        return Plot("backtracks_histogram", title, None, "every completion has 0 backtracks (or none were counted)")
    cap = min(int(g["n_backtracks"].max()), 15)
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    stages = sorted(set(g["stage"].to_list()), key=stage_rank)
    width = 0.8 / len(stages)
    for j, stage in enumerate(stages):
        counts = g.filter(pl.col("stage") == stage)["n_backtracks"].clip(upper_bound=cap).to_list()
        shares = [counts.count(v) / len(counts) for v in range(cap + 1)]
        ax.bar([v - 0.4 + width * (j + 0.5) for v in range(cap + 1)], shares, width=width * 0.9, label=stage)
    labels = [str(v) for v in range(cap)] + [f"{cap}+" if cap < g["n_backtracks"].max() else str(cap)]
    ax.set_xticks(range(cap + 1), labels)
    ax.set_xlabel("backtracks in the completion")
    ax.set_ylabel("share of completions")
    ax.set_title(title + " (all benchmarks, sampled)")
    ax.legend(fontsize=8)
    return Plot("backtracks_histogram", title, _save(fig, out / "backtracks_histogram.png"))


def backtracks_vs_accuracy(buckets: pl.DataFrame, board_scores: pl.DataFrame, out: Path) -> Plot:
    """Left: accuracy by backtrack bucket per (benchmark, stage). Right: stage mean backtracks vs
    pass@1 per benchmark (the paper's across-checkpoint view)."""
    title = "Backtracks vs accuracy"
    if buckets.height == 0:
        return Plot("backtracks_vs_accuracy", title, None, "no sampled completions")
    counted = board_scores.filter(pl.col("backtracks_counted").fill_null(False)) if "backtracks_counted" in board_scores.columns else board_scores.head(0)
    if buckets["backtracks_bucket"].n_unique() < 2 and counted.height == 0:
        return Plot("backtracks_vs_accuracy", title, None, "no backtracks were counted (all completions in one bucket)")
    fig = Figure(figsize=(9.0, 3.6))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    order = ["0", "1", "2", "3", "4-7", "8+"]
    for (bench, stage), sub in buckets.group_by(["benchmark", "stage"], maintain_order=True):
        pos = {b: i for i, b in enumerate(order)}
        pts = sorted((pos[b], 100 * a) for b, a in zip(sub["backtracks_bucket"], sub["accuracy"]))
        left.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{bench}/{stage}")
    left.set_xticks(range(len(order)), order)
    left.set_xlabel("backtracks in the completion")
    left.set_ylabel("accuracy (%)")
    left.set_ylim(-2, 102)
    left.set_title("per completion")
    left.legend(fontsize=7)
    if counted.height:
        for (bench,), sub in counted.group_by(["benchmark"], maintain_order=True):
            sub = sub.sort("mean_backtracks")
            right.plot(sub["mean_backtracks"], 100 * sub["pass_at_1"], marker="o", label=bench)
            for x, y, s in zip(sub["mean_backtracks"], sub["pass_at_1"], sub["stage"]):
                right.annotate(s, (x, 100 * y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        right.legend(fontsize=7)
    else:
        right.text(0.5, 0.5, "no stage with counted backtracks", ha="center", va="center", transform=right.transAxes)
    right.set_xlabel("mean backtracks per completion (stage)")
    right.set_ylabel("pass@1 (%)")
    right.set_title("per stage")
    return Plot("backtracks_vs_accuracy", title, _save(fig, out / "backtracks_vs_accuracy.png"))


def rl_curve(train_metrics: pl.DataFrame, out: Path, *, kind: str) -> Plot:
    """RL training curves: metrics of stage 'rl' whose name contains ``kind`` ("reward"/"length").

    Matches TRL's GRPO log names (``reward``, ``rewards/<fn>/mean``, ``completions/mean_length``,
    ``completions/mean_terminated_length``) and plain ones (``reward_mean``, ``completion_length``);
    std/min/max companions are left out when a central value is present; at most 6 curves."""
    return training_curve(train_metrics, out, stage="rl", kind=kind)


def training_curve(train_metrics: pl.DataFrame, out: Path, *, stage: str, kind: str) -> Plot:
    """Curves of one training stage's metrics whose name contains ``kind`` (e.g. sft "loss")."""
    title = f"{stage.upper() if len(stage) <= 3 else stage} {kind}"
    name = f"{stage}_{kind}"
    if train_metrics.height == 0:
        return Plot(name, title, None, "no training metrics")
    rl = train_metrics.filter(
        (pl.col("stage") == stage) & pl.col("name").str.contains(kind, literal=True) & pl.col("value").is_not_null()
    )
    if rl.height == 0:
        return Plot(name, title, None, f"no {stage} metric whose name contains '{kind}'")
    names = sorted(set(rl["name"].to_list()))
    # the mean comes first; spreads (std/min/max) are left out when a mean is there
    keep = [n for n in names if not any(t in n for t in ("std", "min", "max"))] or names
    fig = Figure(figsize=(6.0, 3.4))
    ax = fig.add_subplot()
    for n, label in _distinct_series(rl, keep)[:6]:
        sub = rl.filter(pl.col("name") == n).sort("step")
        ax.plot(sub["step"], sub["value"], label=label)
    ax.set_xlabel(f"{stage} step")
    ax.set_ylabel(kind)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return Plot(name, title, _save(fig, out / f"{name}.png"))


def _distinct_series(metrics: pl.DataFrame, names: list[str]) -> list[tuple[str, str]]:
    """(name, legend label) per distinct curve: a series identical at every step to an earlier one is
    not drawn again but named in that one's label ("reward = rewards/correctness/mean")."""
    points = {n: metrics.filter(pl.col("name") == n).sort("step").select("step", "value").rows() for n in names}
    kept: list[list[str]] = []
    for n in names:
        twin = next((group for group in kept if points[group[0]] == points[n]), None)
        if twin is None:
            kept.append([n])
        else:
            twin.append(n)
    return [(group[0], " = ".join(group)) for group in kept]
