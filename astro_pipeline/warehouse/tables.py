"""Where each warehouse table's Parquet files live in the artifact store.

Design: the artifact store holds the data (Parquet, written by the stage that owns it, one file
per partition or per finished unit of work); the DuckDB file holds views over those files. So the
data has one home, stages running in parallel processes never contend for DuckDB's single writer,
and a table on S3 is queried the same way as one on disk.
"""

from __future__ import annotations

# table -> glob of its Parquet files, relative to the artifact root
TABLE_GLOBS: dict[str, str] = {
    "problems": "tables/problems/*.parquet",
    "quarantine": "tables/quarantine/*/*.parquet",
    "tree_nodes": "tables/tree_nodes/*/*.parquet",
    "traces": "tables/traces/*.parquet",
    "cot_examples": "tables/cot_examples/*.parquet",
    "train_metrics": "tables/train_metrics/*.parquet",
    "eval_generations": "tables/eval_generations/*.parquet",
    "eval_scores": "tables/eval_scores/*.parquet",
}


def table_file(table: str, name: str, group: str | None = None) -> str:
    """Relative path of one Parquet file of ``table`` (``group`` is the sub-folder, e.g. a stage)."""
    if table not in TABLE_GLOBS:
        raise KeyError(f"unknown warehouse table {table!r}; known: {sorted(TABLE_GLOBS)}")
    nested = TABLE_GLOBS[table].count("/") == 3
    if nested and not group:
        raise ValueError(f"table {table!r} files live in sub-folders: pass group=")
    folder = f"tables/{table}/{group}" if nested else f"tables/{table}"
    return f"{folder}/{name}.parquet"


def dataset_artifacts(store, dataset: str, stages: tuple[str, ...]) -> list[str]:
    """Relative paths of every table file made for one dataset, with their manifests, sorted.

    That is its problems and quarantine rows, search trees, traces, CoT examples, and the evaluation
    generations and scores of each model stage on it (``<dataset>__<stage>``; exact names, so
    dataset "a" never claims the files of a dataset "a__b"). Dataset names hold no glob
    characters ([a-z0-9_-]).
    """
    files = [f"tables/{t}/{dataset}.parquet" for t in ("problems", "traces", "cot_examples")]
    files += [f"tables/{t}/{dataset}__{stage}.parquet" for t in ("eval_generations", "eval_scores") for stage in stages]
    files += [f"{f}.manifest.json" for f in files] + [f"tables/tree_nodes/{dataset}.manifest.json"]
    found = [f for f in files if store.exists(f)]
    found += store.glob(f"tables/quarantine/*/{dataset}.parquet") + store.glob(f"tables/tree_nodes/{dataset}/*")
    return sorted(set(found))
