"""``eval_scores[benchmark|stage]`` and ``report``: score every model stage, then one page.

eval_scores is partitioned by benchmark (the dataset partitions) x model stage, so a new stage or
benchmark is a new partition with no change here. Each partition writes its generations and its
scores row as files of the warehouse tables eval_generations and eval_scores (named
``<benchmark>__<stage>``), with the settings, model path, versions and seed inside the row.
"""

import base64
import warnings

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from astro_pipeline.cloning import count_reflections
from astro_pipeline.cloning.budget import check_budget, truncation_warning
from astro_pipeline.defs.assets.common import markdown_table, read_problems, train_corpus, work_dir
from astro_pipeline.defs.models import STAGES, load_model_dir, stage_model_ref
from astro_pipeline.defs.partitions import DATASET_PARTITIONS_NAME, dataset_partitions
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.evaluate import evaluate_model
from astro_pipeline.evaluate.report import build_report
from astro_pipeline.llm.factory import make_backend
from astro_pipeline.verify import BatchVerifier
from astro_pipeline.warehouse import publish

with warnings.catch_warnings():  # the mapping is marked beta; it is exactly the relation we mean
    warnings.simplefilter("ignore", dg.BetaWarning)
    problems_of_benchmark = dg.MultiToSingleDimensionPartitionMapping("benchmark")

eval_partitions = dg.MultiPartitionsDefinition(
    {"benchmark": dataset_partitions, "stage": dg.StaticPartitionsDefinition(list(STAGES))}
)


@dg.asset(
    partitions_def=eval_partitions,
    group_name="evaluation",
    deps=[
        dg.AssetDep("problems", partition_mapping=problems_of_benchmark),
        "base_model", "sft_model", "rl_model", "direct_sft_model", "direct_rl_model",
    ],
    kinds={"pytorch", "duckdb"},
    tags={"astro/datasets": "benchmarks_x_stages", "astro/gpu": "true"},
    description="pass@1 ± stderr, maj@k and greedy accuracy of one model stage on one benchmark (eval_scores).",
)
def eval_scores(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    benchmark, stage = keys["benchmark"], keys["stage"]
    recipe, store = astro.recipe(), astro.store()
    settings, cloning = recipe.section("evaluate"), recipe.section("cloning")
    problems = read_problems(store, recipe, benchmark)  # datasets.limits applies; max_problems below
    corpus = train_corpus(astro)
    if corpus is not None:  # completions like the taught ones must fit the budget
        p99 = check_budget(corpus, settings.max_new_tokens, "evaluate.max_new_tokens")
        context.log.info(f"evaluate.max_new_tokens {settings.max_new_tokens} >= corpus p99 {p99} tokens")
    model = stage_model_ref(astro, stage)
    # checked against its manifest first: a corrupt model fails here, named, instead of scoring garbage
    backend = make_backend(recipe.section("backend"), load_model_dir(astro, stage))

    def progress(done: int, total: int) -> None:
        context.log.info(f"eval {benchmark}/{stage}: {done}/{total} problems scored")

    with BatchVerifier(recipe.section("verify")) as verifier:
        result = evaluate_model(backend, problems, settings, verifier, benchmark=benchmark, stage=stage,
                                model_path=model, reflection_counter=lambda text: count_reflections(text, cloning),
                                progress=progress)
    name = f"{benchmark}__{stage}"
    warehouse = astro.warehouse()
    publish(warehouse, "eval_generations", name, result.generations)
    publish(warehouse, "eval_scores", name, result.scores)
    score = result.score
    context.log.info(f"{benchmark}/{stage}: pass@1 {_fmt(score['pass_at_1'])} ± {_fmt(score['stderr'])}, "
                     f"greedy {_fmt(score['greedy'])}")
    if (warning := truncation_warning(stage, benchmark, score.get("truncated_share"))) is not None:
        context.log.warning(warning)
    return dg.MaterializeResult(metadata={k: v for k, v in {
        "pass_at_1": score["pass_at_1"],
        "stderr": score["stderr"],
        "maj_at_k": score["maj_at_k"],
        "greedy": score["greedy"],
        "n_problems": score["n_problems"],
        "n_samples": score["n_samples"],
        "mean_backtracks": score.get("mean_backtracks"),
        "truncated_share": score.get("truncated_share"),
        "model": model,
        "timings": dg.MetadataValue.json(result.timings),
    }.items() if v is not None})


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@dg.asset(
    group_name="evaluation",
    deps=[eval_scores],
    kinds={"html", "duckdb"},
    description="Leaderboard, the paper's table beside ours, and plots, in $ASTRO_HOME/report/ (Markdown + HTML).",
)
def report(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    store, warehouse = astro.store(), astro.warehouse()
    present = set(warehouse.refresh())
    tables = {t: warehouse.query(f"SELECT * FROM {t}") if t in present else None
              for t in ("eval_scores", "eval_generations", "train_metrics")}
    out = work_dir(store, "report") if not store.is_local else store.path("report")
    result = build_report(tables["eval_scores"], tables["eval_generations"], tables["train_metrics"], out,
                          title=f"ASTRO evaluation report ({astro.recipe().name} recipe)")
    if not store.is_local:
        store.put_dir(out, "report")
    for plot, why in result.skipped.items():
        context.log.info(f"report: plot {plot} skipped: {why}")
    images = "\n\n".join(
        f"![{p.stem}](data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()})" for p in result.plot_paths)
    board = tables["eval_scores"]
    return dg.MaterializeResult(metadata={
        "html": store.uri("report/report.html"),
        "markdown": store.uri("report/report.md"),
        "plots": len(result.plot_paths),
        "leaderboard": dg.MetadataValue.md(markdown_table(
            board.select("benchmark", "stage", "pass_at_1", "stderr", "maj_at_k", "greedy", "n_problems"), max_rows=50)
            if board is not None else "no scores yet"),
        "report": dg.MetadataValue.md(result.markdown + ("\n\n" + images if images else "")),
    })
