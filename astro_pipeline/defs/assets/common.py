"""Small pieces shared by the asset modules: metric tables, local work folders, markdown tables,
the problems a stage works on."""

import os
import tempfile
from pathlib import Path

import polars as pl

from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import table_file

METRIC_SCHEMA = {"stage": pl.String, "step": pl.Int64, "name": pl.String, "value": pl.Float64}


def metrics_frame(stage: str, rows: list[tuple[int, str, float]]) -> pl.DataFrame:
    """Warehouse ``train_metrics`` rows (stage, step, name, value)."""
    return pl.DataFrame(
        [{"stage": stage, "step": int(s), "name": n, "value": float(v)} for s, n, v in rows], schema=METRIC_SCHEMA
    )


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


def curves_markdown(metrics: pl.DataFrame, stage: str, kinds: tuple[str, ...], folder: Path) -> str:
    """Training curves of one stage as PNGs embedded in Markdown (Dagster shows them in the UI)."""
    import base64

    from astro_pipeline.evaluate.plots import training_curve

    parts = []
    for kind in kinds:
        plot = training_curve(metrics, folder, stage=stage, kind=kind)
        if plot.path is None:
            parts.append(f"*{plot.title}: {plot.note}*")
        else:
            parts.append(f"![{plot.title}](data:image/png;base64,{base64.b64encode(plot.path.read_bytes()).decode()})")
    return "\n\n".join(parts)
