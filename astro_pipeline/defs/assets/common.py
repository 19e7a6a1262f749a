"""Small pieces shared by the asset modules: metric tables and curves, local work folders, markdown
tables, the problems a stage works on."""

import os
import tempfile
import time
from pathlib import Path

import dagster as dg
import polars as pl

from astro_pipeline.explore.sparkline import stage_curves
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import publish, table_file
from astro_pipeline.warehouse.tables import TRAIN_METRICS


def metrics_frame(stage: str, rows: list[tuple[int, str, float]], run: str) -> pl.DataFrame:
    """Warehouse ``train_metrics`` rows of one training run: ``run`` is the fingerprint of what made it
    (the same id as its checkpoint folder ``run-<fingerprint>`` and model manifest), ``recorded_at``
    when it was published, so a retrain's curve is told apart from the one before it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return pl.DataFrame(
        [{"stage": stage, "run": run, "recorded_at": now, "step": int(s), "name": n, "value": float(v)}
         for s, n, v in rows], schema=TRAIN_METRICS.schema)


def publish_metrics(warehouse, frame: pl.DataFrame, stage: str, run: str) -> str:
    """One file per (stage, run): earlier runs' curves stay queryable beside the new one."""
    return publish(warehouse, "train_metrics", f"{stage}__{run}", frame)


def inline_curves(frame: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """``curve: NAME`` entries, each small enough for the UI to draw inline (see explore.sparkline)."""
    return {f"curve: {name}": dg.MetadataValue.md(md) for name, md in stage_curves(frame).items()}


def run_curves(warehouse, stage: str, run: str) -> dict[str, dg.MetadataValue]:
    """The inline curves of a finished run, from train_metrics (a reused model shows its curves too)."""
    if "train_metrics" not in warehouse.refresh():
        return {}
    frame = warehouse.query(f"SELECT step, name, value FROM train_metrics WHERE stage = '{stage}' AND run = '{run}'")
    return inline_curves(frame) if frame.height else {}


def read_problems(store: ArtifactStore, recipe, dataset: str) -> pl.DataFrame:
    """The problems of ``dataset`` that stages search, train and evaluate on.

    ``datasets.limits`` applies here, not when loading: the problems table keeps every input row
    (the rest are in quarantine), so a query shows the whole dataset, while the consumers take the
    first N problems in source order (the order the table is written in).
    """
    problems = store.read_parquet(table_file("problems", dataset))
    limit = recipe.section("datasets").limit_for(dataset)
    return problems.head(limit) if limit is not None else problems


def work_dir(store: ArtifactStore, name: str) -> Path:
    """A local folder for checkpoints and scratch: inside a local store, else under ASTRO_CACHE."""
    if store.is_local:
        path = Path(store.path(f"work/{name}"))
    else:
        cache = Path(os.environ.get("ASTRO_CACHE", Path(tempfile.gettempdir()) / "astro_cache"))
        path = cache / "work" / store.root.replace("://", "_").replace("/", "_") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def train_corpus(astro) -> pl.DataFrame | None:
    """The CoT corpus of the recipe's train datasets (None when none has been built yet)."""
    store = astro.store()
    files = [table_file("cot_examples", d) for d in astro.recipe().section("datasets").train]
    present = [f for f in files if store.exists(f)]
    return pl.concat([store.read_parquet(f) for f in present], how="vertical_relaxed") if present else None


def markdown_table(df: pl.DataFrame, max_rows: int = 10, max_chars: int = 120) -> str:
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for row in df.head(max_rows).iter_rows():
        cells = [str(v).replace("\n", " ").replace("|", "\\|")[:max_chars] for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves_markdown(metrics: pl.DataFrame, stage: str, curves: tuple[str, ...], folder: Path) -> str:
    """Training curves of one stage (``curves``: loss, reward, length) as PNGs embedded in Markdown
    (Dagster shows them in the UI)."""
    import base64

    from astro_pipeline.evaluate.plots import training_curve

    parts = []
    for curve in curves:
        plot = training_curve(metrics, folder, stage=stage, kind=curve)
        if plot.path is None:
            parts.append(f"*{plot.title}: {plot.note}*")
        else:
            parts.append(f"![{plot.title}](data:image/png;base64,{base64.b64encode(plot.path.read_bytes()).decode()})")
    return "\n\n".join(parts)
