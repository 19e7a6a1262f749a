"""``search_trees[dataset]``: MCTS over every problem of a training dataset, resumable per problem.

Each finished tree is written at once as its own Parquet file (``tables/tree_nodes/<dataset>/``,
named by a hash of the problem id), so a killed run loses only the trees in flight and the next
run skips every problem that has a file. The folder's manifest holds a fingerprint of what made the
trees (search settings, base model, problems): when that changes the old trees are discarded, as
trees from another policy or other settings must not be mixed into one corpus. An unreadable tree
file (a truncated write from outside) is reported, removed and searched again.
"""

import hashlib
import time

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from astro_pipeline.config import to_dict
from astro_pipeline.data.synthetic_check import wrong_terminal_labels
from astro_pipeline.defs.assets.base_model import MODEL_PATH
from astro_pipeline.defs.assets.common import read_problems
from astro_pipeline.defs.models import load_model_dir
from astro_pipeline.defs.partitions import dataset_partitions
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.llm.factory import make_backend
from astro_pipeline.provenance import fingerprint, read_manifest, write_manifest
from astro_pipeline.search.runner import search_problems
from astro_pipeline.storage import ArtifactStore, CorruptArtifactError
from astro_pipeline.train.model_manifest import content_digest
from astro_pipeline.verify import BatchVerifier
from astro_pipeline.warehouse import Warehouse, table_file


def tree_file(dataset: str, problem_id: str) -> str:
    return table_file("tree_nodes", hashlib.sha1(problem_id.encode()).hexdigest()[:20], group=dataset)


def finished_problem_ids(store: ArtifactStore, dataset: str, log) -> set[str]:
    """Problem ids with a readable tree file; unreadable files are removed so they are redone."""
    done: set[str] = set()
    for rel in store.glob(f"tables/tree_nodes/{dataset}/*.parquet"):
        try:
            ids = store.read_parquet(rel)["problem_id"].unique().to_list()
        except CorruptArtifactError as exc:
            log.warning(f"{exc}; removing it, that problem is searched again")
            store.remove(rel)
            continue
        done.update(ids)
    return done


@dg.asset(
    partitions_def=dataset_partitions,
    group_name="search",
    deps=["problems", "base_model"],
    kinds={"pytorch", "duckdb"},
    tags={"astro/datasets": "train", "astro/gpu": "true"},
    description="MCTS search trees over solution steps (warehouse table tree_nodes), one file per problem.",
)
def search_trees(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    dataset = context.partition_key
    recipe, store = astro.recipe(), astro.store()
    settings = recipe.section("search")
    problems = read_problems(store, recipe, dataset)
    base_manifest = read_manifest(store, MODEL_PATH) or {}
    # content only, never where the home is: a copied or moved home must keep its trees
    made_by = {"search": to_dict(settings), "base_model": base_manifest.get("fingerprint"),
               "base_files": content_digest(base_manifest),
               "problems": hashlib.sha1(problems.write_csv().encode()).hexdigest()}
    fp = fingerprint(made_by)
    folder = f"tables/tree_nodes/{dataset}"
    previous = read_manifest(store, folder)
    if previous and previous["fingerprint"] != fp:
        context.log.warning(f"search settings, model or problems changed since the trees of {dataset} were made; "
                            "discarding them and searching again")
        store.remove(folder, recursive=True)
    write_manifest(store, folder, settings=made_by, fingerprint=fp)
    done = finished_problem_ids(store, dataset, context.log)
    if done:
        context.log.info(f"resuming: {len(done)} of {len(problems)} problems already have a tree")

    def on_tree(problem_id: str, nodes: pl.DataFrame) -> None:
        store.write_parquet(nodes, tree_file(dataset, problem_id))

    backend = make_backend(recipe.section("backend"), load_model_dir(astro, "base"))
    with BatchVerifier(recipe.section("verify")) as verifier:
        summary = search_problems(problems, backend, verifier, settings, done_ids=done, on_tree=on_tree,
                                  log=context.log.info)
    warehouse = astro.warehouse()
    warehouse.refresh()
    stats = _tree_stats(warehouse, dataset)
    wrong = wrong_terminal_labels(warehouse.query(f"SELECT * FROM tree_nodes WHERE dataset = '{dataset}'"), problems)
    if wrong:
        total = sum(wrong.values())
        context.log.info(f"{dataset}: wrong terminals {wrong} ({wrong['honest'] / total:.0%} honest attempts)"
                         if total else f"{dataset}: no wrong terminals")
    metadata = {
        "problems": len(problems),
        "searched_now": summary.problems_searched,
        "resumed_from": len(done),
        "trees": stats["trees"],
        "share_with_correct": stats["share_with_correct"],
        "share_with_both": stats["share_with_both"],
        "mean_nodes": stats["mean_nodes"],
        "stop_reasons": dg.MetadataValue.json(summary.stop_reasons),
        "merged_samples": summary.merged_samples,
        "mean_iterations": round(summary.mean_iterations, 2),
        **({"wrong_terminals": dg.MetadataValue.json(wrong),
            "share_wrong_honest": round(wrong["honest"] / max(1, sum(wrong.values())), 3)} if wrong else {}),
        "tokens_generated": summary.tokens_generated,
        "tokens_per_second": round(summary.tokens_per_second, 1),
        "wall_s": round(summary.wall_s, 1),
        "share_outside_generation": round(summary.outside_generation_s / summary.wall_s, 3) if summary.wall_s else 0.0,
        "summary": dg.MetadataValue.json(summary.to_dict()),
        "settings": dg.MetadataValue.json(to_dict(settings)),
    }
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(f"{fp}-{stats['trees']}"))


def _tree_stats(warehouse: Warehouse, dataset: str) -> dict:
    """Whole-dataset figures from tree_nodes via sql/search_stats.sql (all trees, not only this run's)."""
    rows = warehouse.run_file("search_stats.sql").filter(pl.col("dataset") == dataset).to_dicts()
    row = rows[0] if rows else {"n_trees": 0, "mean_nodes": 0.0, "share_with_correct": 0.0, "share_with_both": 0.0}
    return {"trees": row["n_trees"], "mean_nodes": round(row["mean_nodes"], 2),
            "share_with_correct": round(row["share_with_correct"], 4), "share_with_both": round(row["share_with_both"], 4)}
