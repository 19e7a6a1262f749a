"""``search_traces[dataset]`` and ``cot_corpus[dataset]``: procedure cloning and verbalization.

Both read the dataset's trees from the store, call one domain function and write one table file.
The corpus carries an asset check that re-verifies every search example's final answer against
the reference and checks that every backtrack returns to an ancestor with distinct wrong answers.
"""

import dagster as dg
import polars as pl
from dagster import AssetCheckExecutionContext, AssetExecutionContext

from astro_pipeline.cloning import check_corpus, linearize_trees, verbalize_traces
from astro_pipeline.config import to_dict
from astro_pipeline.defs.assets.base_model import base_model_ref
from astro_pipeline.defs.assets.common import markdown_table, read_problems
from astro_pipeline.defs.assets.search_trees import tree_pictures
from astro_pipeline.defs.models import load_model_dir
from astro_pipeline.defs.partitions import dataset_partitions
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.provenance import fingerprint, write_manifest
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.train.token_loss import loss_by_segment
from astro_pipeline.verify import BatchVerifier
from astro_pipeline.warehouse import publish, table_file


def load_trees(store: ArtifactStore, dataset: str) -> pl.DataFrame:
    files = store.glob(f"tables/tree_nodes/{dataset}/*.parquet")
    if not files:
        raise FileNotFoundError(f"no search trees for {dataset}; materialize search_trees[{dataset}] first")
    return pl.concat([store.read_parquet(f) for f in files], how="vertical_relaxed")


def _backend_if_needed(astro: AstroResource, needed: bool):
    if not needed:
        return None
    from astro_pipeline.llm.factory import make_backend

    return make_backend(astro.recipe().section("backend"), base_model_ref(astro))


def _cloning_asset(upstream: str, description: str):
    """The decorator of a per-dataset cloning asset."""
    return dg.asset(partitions_def=dataset_partitions, group_name="cloning", deps=[upstream],
                    kinds={"polars", "duckdb"}, tags={"astro/datasets": "train"}, description=description)


def _inputs(context: AssetExecutionContext, astro: AstroResource) -> tuple:
    """The partition's dataset, the artifact store, the cloning settings, the dataset's search trees
    and its problems."""
    dataset = context.partition_key
    recipe, store = astro.recipe(), astro.store()
    return dataset, store, recipe.section("cloning"), load_trees(store, dataset), read_problems(store, recipe, dataset)


def _publish(astro: AstroResource, table: str, dataset: str, frame: pl.DataFrame, settings, **manifest) -> None:
    """One dataset's rows of ``table``, with a manifest of the cloning settings that made them."""
    path = publish(astro.warehouse(), table, dataset, frame)
    write_manifest(astro.store(), path, settings=to_dict(settings), fingerprint=fingerprint(to_dict(settings)),
                   **manifest)


@_cloning_asset("search_trees",
                "Linearized search traces (Algorithm 1): wrong terminals, backtracks, a correct end (table traces).")
def search_traces(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    dataset, store, settings, trees, problems = _inputs(context, astro)
    result = linearize_trees(trees, settings, problems=problems, backend=_backend_if_needed(astro, settings.self_eval))
    _publish(astro, "traces", dataset, result.traces, settings, stats=result.stats)
    by_kind = result.traces.group_by("kind", "n_backtracks").len().sort("kind", "n_backtracks")
    if len(result.skipped):
        for reason, n in result.skipped.group_by("reason").len().iter_rows():
            context.log.warning(f"{dataset}: {n} problem(s) yield no trace: {reason}")
    return dg.MaterializeResult(metadata={
        "traces": len(result.traces),
        "problems_with_traces": result.traces["problem_id"].n_unique() if len(result.traces) else 0,
        "problems_skipped": len(result.skipped),
        "by_kind_and_backtracks": dg.MetadataValue.md(markdown_table(by_kind)),
        **tree_pictures(trees, result.traces, settings),
        "stats": dg.MetadataValue.json(result.stats),
    })


@_cloning_asset("search_traces",
                "Chain-of-thought examples with reflections at backtracks, plus the Direct arm (table cot_examples).")
def cot_corpus(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    dataset, store, settings, trees, problems = _inputs(context, astro)
    traces = store.read_parquet(table_file("traces", dataset))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = load_model_dir(astro, "base")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    cot = verbalize_traces(traces, trees, problems, settings, tokenizer,
                           backend=_backend_if_needed(astro, settings.llm_rewrite))
    # does the base model already speak the reflections' words? (nats per token, before any SFT)
    base_loss = loss_by_segment(AutoModelForCausalLM.from_pretrained(base_dir), tokenizer,
                                cot.filter(pl.col("n_backtracks") > 0), settings.phrases) if len(cot) else {}
    _publish(astro, "cot_examples", dataset, cot, settings)
    stats = cot.group_by("kind").agg(
        pl.len().alias("examples"), pl.col("n_backtracks").mean().alias("mean_backtracks"),
        pl.col("n_reflections").mean().alias("mean_reflections"), pl.col("n_tokens").mean().alias("mean_tokens"),
    ).sort("kind")
    sample = cot.filter(pl.col("n_backtracks") > 0).head(1)
    sample = sample if len(sample) else cot.head(1)
    metadata = {
        "examples": len(cot),
        "base_model_nats_per_token": dg.MetadataValue.json(base_loss),
        "by_kind": dg.MetadataValue.md(markdown_table(stats)),
        "backtracks_histogram": dg.MetadataValue.json(
            {str(k): n for k, n in cot.group_by("n_backtracks").len().sort("n_backtracks").iter_rows()}),
    }
    if len(sample):
        row = sample.to_dicts()[0]
        metadata["sample_cot"] = dg.MetadataValue.md(
            f"**Problem** ({row['problem_id']}, {row['kind']}, {row['n_backtracks']} backtracks)\n\n"
            f"```\n{row['prompt']}\n```\n\n**Chain of thought**\n\n```\n{row['completion']}\n```")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=cot_corpus, partitions_def=dataset_partitions,
                description="Search examples end correct; backtracks go to ancestors; wrong answers distinct.")
def cot_corpus_is_sound(context: AssetCheckExecutionContext, astro: AstroResource) -> dg.AssetCheckResult:
    dataset = context.partition_key
    store, recipe = astro.store(), astro.recipe()
    cot = store.read_parquet(table_file("cot_examples", dataset))
    with BatchVerifier(recipe.section("verify")) as verifier:
        def verify(gold: str, answer: str) -> bool:  # check_corpus hands over the extracted answer, not a response
            return verifier.verify(gold, f"\\boxed{{{answer}}}").verdict == "correct"

        problems_found = check_corpus(cot, store.read_parquet(table_file("traces", dataset)), load_trees(store, dataset),
                                      read_problems(store, recipe, dataset), verify,
                                      settings=recipe.section("cloning"))
    return dg.AssetCheckResult(
        passed=not problems_found,
        metadata={"dataset": dataset, "examples": len(cot), "problems_found": len(problems_found),
                  "first_problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems_found[:20]) or "none")},
    )
