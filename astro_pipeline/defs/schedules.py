"""The re-evaluation schedule: on the recipe's cron, score every model stage on every benchmark.

It requests one run per benchmark x stage partition of eval_scores (the stages the recipe lists);
the report follows through its automation condition. With ``operations.schedule_training`` it
instead re-runs SFT and RL first, and evaluation and the report follow them the same way.
"""

import dagster as dg
from dagster import ScheduleEvaluationContext

from astro_pipeline.defs.runner import partitions_for
from astro_pipeline.recipe import load_recipe

EVAL_JOB = dg.define_asset_job("evaluation", selection=dg.AssetSelection.assets("eval_scores"),
                               description="Score model stages on benchmarks (one run per partition).")
TRAINING_JOB = dg.define_asset_job("training", selection=dg.AssetSelection.assets("sft_model", "rl_model"),
                                   description="Re-run SFT then RL; evaluation and the report follow.")


def make_evaluation_schedule(recipe_name: str) -> dg.ScheduleDefinition:
    recipe = load_recipe(recipe_name)
    settings = recipe.section("operations")

    @dg.schedule(
        name="reevaluate",
        cron_schedule=settings.eval_cron,
        execution_timezone=settings.timezone,
        job=TRAINING_JOB if settings.schedule_training else EVAL_JOB,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Re-evaluate (optionally retrain) on the recipe's cron; switch it on in the UI.",
    )
    def reevaluate(context: ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.isoformat()  # one run per tick and partition
        if settings.schedule_training:
            return [dg.RunRequest(run_key=f"training-{stamp}")]
        return [dg.RunRequest(run_key=f"eval-{key}-{stamp}", partition_key=key)
                for key in partitions_for("benchmarks_x_stages", recipe)]

    return reevaluate
