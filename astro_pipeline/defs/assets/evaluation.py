"""``eval_scores[benchmark|stage]``: score one model stage on one benchmark.

eval_scores is partitioned by the recipe's benchmarks x its ``evaluate.stages`` (see
``defs.partitions``), so the UI offers exactly the partitions the recipe builds, and a new stage or
benchmark is a new partition with no change here. Each partition writes its generations and its
scores row as files of the warehouse tables eval_generations and eval_scores (named
``<benchmark>__<stage>``), with the settings, model path, versions and seed inside the row.
"""

import warnings

import dagster as dg
from dagster import AssetExecutionContext

from astro_pipeline.cloning import count_reflections
from astro_pipeline.cloning.budget import check_budget, truncation_warning
from astro_pipeline.defs.assets.common import read_problems, train_corpus
from astro_pipeline.defs.models import STAGE_ASSETS, load_model_dir, stage_model_ref
from astro_pipeline.defs.partitions import eval_partitions
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.evaluate import evaluate_model
from astro_pipeline.evaluate.samples import pick_samples, samples_markdown
from astro_pipeline.llm.factory import make_backend
from astro_pipeline.runlog import Throttle
from astro_pipeline.verify import BatchVerifier
from astro_pipeline.warehouse import publish

with warnings.catch_warnings():  # the mapping is marked beta; it is exactly the relation we mean
    warnings.simplefilter("ignore", dg.BetaWarning)
    problems_of_benchmark = dg.MultiToSingleDimensionPartitionMapping("benchmark")


def make_eval_scores(recipe) -> dg.AssetsDefinition:
    """The eval_scores asset of a recipe: its partitions and its model dependencies come from it."""
    stages = recipe.section("evaluate").stages

    @dg.asset(
        name="eval_scores",
        partitions_def=eval_partitions(recipe),
        group_name="evaluation",
        deps=[dg.AssetDep("benchmark_problems", partition_mapping=problems_of_benchmark),
              *(STAGE_ASSETS[s] for s in stages)],
        kinds={"pytorch", "duckdb"},
        tags={"astro/datasets": "benchmarks_x_stages", "astro/gpu": "true"},
        description="pass@1 ± stderr, maj@k and greedy accuracy of one model stage on one benchmark (eval_scores).",
    )
    def eval_scores(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
        return score_partition(context, astro)

    return eval_scores


def score_partition(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
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

    log = Throttle(context.log.info)

    def progress(done: int, total: int) -> None:
        log(f"eval {benchmark}/{stage}: {done}/{total} problems scored")

    with BatchVerifier(recipe.section("verify")) as verifier:
        result = evaluate_model(backend, problems, settings, verifier, benchmark=benchmark, stage=stage,
                                model_path=model, reflection_counter=lambda text: count_reflections(text, cloning),
                                progress=progress)
    name = f"{benchmark}__{stage}"
    warehouse = astro.warehouse()
    publish(warehouse, "eval_generations", name, result.generations)
    publish(warehouse, "eval_scores", name, result.scores)
    score = result.score
    context.log.info(f"{benchmark}/{stage}: pass@1 {pct_text(score['pass_at_1'], score['stderr'])}, "
                     f"greedy {pct_text(score['greedy'])}")
    truncated = score.get("truncated_share")
    if (warning := truncation_warning(stage, benchmark, truncated, settings.max_new_tokens)) is not None:
        context.log.warning(warning)  # the run's one truncation warning; the report shows it, not logs it again
    samples = pick_samples(result.generations, n=3)
    return dg.MaterializeResult(metadata={k: v for k, v in {
        "pass_at_1": pct_text(score["pass_at_1"], score["stderr"]),
        "pass_at_1_value": _round(score["pass_at_1"]),
        "stderr": _round(score["stderr"]),
        "maj_at_k": _round(score["maj_at_k"]),
        "greedy": _round(score["greedy"]),
        "truncated_share": _round(truncated),
        "mean_backtracks": _round(score.get("mean_backtracks")),
        "n_problems": score["n_problems"],
        "n_samples": score["n_samples"],
        "model": model,
        "sample_completions": dg.MetadataValue.md(samples_markdown(samples)),
        "timings": dg.MetadataValue.json({k: round(v, 2) for k, v in result.timings.items()}),
    }.items() if v is not None})


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def pct_text(value: float | None, stderr: float | None = None) -> str:
    """A share as a percentage with one decimal, with its standard error when given: "55.5 ± 2.8 %"."""
    if value is None:
        return "n/a"
    return f"{100 * value:.1f} ± {100 * stderr:.1f} %" if stderr is not None else f"{100 * value:.1f} %"
