"""Each warehouse table's contract, declared once: its name, where its Parquet files live in the
artifact store, and its column schema.

Design: the artifact store holds the data (Parquet, written by the stage that owns it, one file
per partition or per finished unit of work); the DuckDB file holds views over those files. So the
data has one home, stages running in parallel processes never contend for DuckDB's single writer,
and a table on S3 is queried the same way as one on disk. The schemas are explicit (not inferred
from the rows) so an empty table, or one whose optional columns are all null, still has the same
column types and the warehouse can union the per-partition files. The stages that write a table and
the ones that read it take its schema from here (``TREE_NODES.schema``, ``require_columns``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Table:
    name: str
    glob: str  # its Parquet files, relative to the artifact root
    schema: Mapping[str, pl.DataType]

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=dict(self.schema))


def require_columns(frame: pl.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ``ValueError`` naming the ``columns`` that ``frame`` (described as ``what``) lacks."""
    needed = tuple(columns)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; needs {list(needed)}, has {frame.columns}")


PROBLEMS = Table("problems", "tables/problems/*.parquet", {
    "dataset": pl.Utf8(),
    "problem_id": pl.Utf8(),  # the source's id, else "sha1-" + hash prefix of the problem text
    "problem": pl.Utf8(),
    "answer": pl.Utf8(),  # the reference answer as given (e.g. "025", "2,125")
    "solution": pl.Utf8(),  # nullable
    "answer_source": pl.Utf8(),  # "field" | "gsm8k_hash" | "boxed_solution"
    "id_source": pl.Utf8(),  # "field" | "content_hash"
    "subject": pl.Utf8(),  # nullable
    "level": pl.Int64(),  # nullable
    "source_line": pl.Int64(),  # line (JSON Lines, CSV) or 1-based record index (other sources)
    "extra": pl.Utf8(),  # unmapped source fields as a JSON object; nullable
})

QUARANTINE = Table("quarantine", "tables/quarantine/*/*.parquet", {
    "dataset": pl.Utf8(),
    "line": pl.Int64(),  # same meaning as problems.source_line
    "reason": pl.Utf8(),  # one of data.schema.REASONS
    "detail": pl.Utf8(),  # what exactly was wrong
    "raw": pl.Utf8(),  # the raw row text (JSON Lines/CSV) or the row as JSON (other sources)
})

# one row per search-tree node (search.tree_table writes them, procedure cloning reads them)
TREE_NODES = Table("tree_nodes", "tables/tree_nodes/*/*.parquet", {
    "dataset": pl.String(),
    "problem_id": pl.String(),
    "node_id": pl.Int64(),
    "parent_id": pl.Int64(),
    "depth": pl.Int64(),
    "step": pl.String(),
    "is_terminal": pl.Boolean(),
    "answer": pl.String(),
    "correct": pl.Boolean(),
    "visits": pl.Int64(),
    "q_value": pl.Float64(),
    "prior": pl.Float64(),
    "reward": pl.Float64(),
    "n_rollouts": pl.Int64(),
    "rollout_correct": pl.Int64(),
    "step_logprob": pl.Float64(),
    "step_tokens": pl.Int64(),
    "origin": pl.String(),
    "expanded": pl.Boolean(),
    "n_copies": pl.Int64(),
    "tree_iterations": pl.Int64(),
    "stop_reason": pl.String(),
    "tree_merged": pl.Int64(),
})

TRACES = Table("traces", "tables/traces/*.parquet", {
    "dataset": pl.String,
    "problem_id": pl.String,
    "trace_id": pl.String,
    "kind": pl.String,
    "n_backtracks": pl.Int64,
    "n_restarts": pl.Int64,
    "node_ids": pl.List(pl.Int64),
    "backtrack_from": pl.List(pl.Int64),
    "backtrack_targets": pl.List(pl.Int64),
    "wrong_answers": pl.List(pl.String),
    "correct_node_id": pl.Int64,
    "answer": pl.String,
    "repeat": pl.Int64,
})

COT_EXAMPLES = Table("cot_examples", "tables/cot_examples/*.parquet", {
    "dataset": pl.String(),
    "problem_id": pl.String(),
    "trace_id": pl.String(),
    "kind": pl.String(),  # direct / search (ASTRO) or direct_arm (the ablation)
    "prompt": pl.String(),
    "completion": pl.String(),
    "answer": pl.String(),
    "reference": pl.String(),
    "n_backtracks": pl.Int64(),
    "n_restarts": pl.Int64(),
    "n_reflections": pl.Int64(),
    "n_confirmations": pl.Int64(),
    "n_tokens": pl.Int64(),
    "n_tokens_method": pl.String(),
})

# one file per (stage, run): ``run`` is the fingerprint of what made the model
TRAIN_METRICS = Table("train_metrics", "tables/train_metrics/*.parquet", {
    "stage": pl.Utf8(), "run": pl.Utf8(), "recorded_at": pl.Utf8(), "step": pl.Int64(), "name": pl.Utf8(),
    "value": pl.Float64(),
})

EVAL_GENERATIONS = Table("eval_generations", "tables/eval_generations/*.parquet", {
    "benchmark": pl.Utf8(),
    "stage": pl.Utf8(),
    "problem_id": pl.Utf8(),
    "sample": pl.Int64(),  # 0..n-1 sampled; -1 the greedy completion
    "greedy": pl.Boolean(),
    "completion": pl.Utf8(),
    "gold": pl.Utf8(),  # the reference answer it was judged against
    "answer": pl.Utf8(),  # extracted answer (null: none found)
    "verdict": pl.Utf8(),  # correct | wrong | no_answer | unparsable_gold | timeout
    "correct": pl.Boolean(),
    "n_tokens": pl.Int64(),  # null when unknown (e.g. reference solutions)
    "finish_reason": pl.Utf8(),  # stop | length
    "logprob": pl.Float64(),  # sum of token log-probabilities (null when unknown)
    "n_backtracks": pl.Int64(),
    "n_reflections": pl.Int64(),
})

EVAL_SCORES = Table("eval_scores", "tables/eval_scores/*.parquet", {
    "benchmark": pl.Utf8(),
    "stage": pl.Utf8(),
    "n_problems": pl.Int64(),
    "n_samples": pl.Int64(),  # sampled completions per problem
    "pass_at_1": pl.Float64(),
    "stderr": pl.Float64(),  # of pass_at_1; null with < 2 problems
    "maj_at_k": pl.Float64(),
    "k": pl.Int64(),  # the k actually used (clamped to n_samples)
    "greedy": pl.Float64(),  # greedy accuracy; null when no greedy completion was made
    "mean_tokens": pl.Float64(),
    "mean_backtracks": pl.Float64(),
    "mean_reflections": pl.Float64(),
    "backtracks_counted": pl.Boolean(),
    "truncated_share": pl.Float64(),  # sampled completions with finish_reason 'length'
    "no_answer_share": pl.Float64(),  # sampled completions without an extracted answer
    "n_unparsable_gold": pl.Int64(),  # problems whose gold the verifier could not parse
    "n_timeouts": pl.Int64(),  # completions whose verification timed out
    "temperature": pl.Float64(),
    "top_p": pl.Float64(),
    "max_new_tokens": pl.Int64(),
    "seed": pl.Int64(),
    "model_path": pl.Utf8(),
    "backend": pl.Utf8(),
    "settings_json": pl.Utf8(),
    "versions_json": pl.Utf8(),
    "created_at": pl.Utf8(),  # ISO 8601, UTC
})

TABLES: dict[str, Table] = {t.name: t for t in (PROBLEMS, QUARANTINE, TREE_NODES, TRACES, COT_EXAMPLES, TRAIN_METRICS,
                                                 EVAL_GENERATIONS, EVAL_SCORES)}
# table -> glob of its Parquet files, relative to the artifact root
TABLE_GLOBS: dict[str, str] = {name: t.glob for name, t in TABLES.items()}


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
