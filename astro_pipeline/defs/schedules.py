"""The re-evaluation schedule: on the recipe's cron, score every model stage on every benchmark.

A tick requests one run per benchmark x stage partition of eval_scores (the stages the recipe
lists), all tagged with the tick. With ``operations.schedule_training`` the tick instead runs SFT
then RL, and the follow-up sensor requests the evaluation runs when training succeeds. When the
last evaluation run of a tick has finished, the same sensor requests one report run. Run keys
carry the tick, so a daemon restart never doubles a run.
"""

import dagster as dg
from dagster import RunStatusSensorContext, ScheduleEvaluationContext

from astro_pipeline.defs.partitions import partitions_for
from astro_pipeline.defs.tags import RECIPE_TAG, STAGE_TAG
from astro_pipeline.recipe import load_recipe

TICK_TAG = "astro/tick"
EVAL_JOB = dg.define_asset_job("evaluation", selection=dg.AssetSelection.assets("eval_scores"),
                               description="Score model stages on benchmarks (one run per partition).")
TRAINING_JOB = dg.define_asset_job("training",
                                   selection=dg.AssetSelection.tag(STAGE_TAG, "sft") | dg.AssetSelection.tag(STAGE_TAG, "rl"),
                                   description="Re-run SFT then RL; evaluation and the report follow.")
REPORT_JOB = dg.define_asset_job("report_job", selection=dg.AssetSelection.assets("report"),
                                 description="Rebuild the report from the warehouse.")
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _eval_requests(recipe, tick: str) -> list[dg.RunRequest]:
    return [dg.RunRequest(job_name=EVAL_JOB.name, run_key=f"eval-{key}-{tick}", partition_key=key,
                          tags={TICK_TAG: tick, RECIPE_TAG: recipe.name})
            for key in partitions_for("benchmarks_x_stages", recipe)]


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
        tick = context.scheduled_execution_time.isoformat()
        if settings.schedule_training:
            return [dg.RunRequest(run_key=f"training-{tick}", tags={TICK_TAG: tick})]
        return _eval_requests(recipe, tick)

    return reevaluate


def make_followup_sensor(recipe_name: str) -> dg.SensorDefinition:
    recipe = load_recipe(recipe_name)

    @dg.run_status_sensor(
        name="scheduled_followups",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[TRAINING_JOB, EVAL_JOB],
        request_jobs=[EVAL_JOB, REPORT_JOB],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After scheduled training: evaluation; after a tick's last evaluation run: the report.",
    )
    def scheduled_followups(context: RunStatusSensorContext):
        return followups(context.instance, context.dagster_run, recipe)

    return scheduled_followups


def followups(instance: dg.DagsterInstance, run: dg.DagsterRun, recipe):
    """What follows a successful scheduled run: evaluation after training, the report after evaluation."""
    tick = run.tags.get(TICK_TAG)
    if tick is None:
        return dg.SkipReason("not started by the schedule")
    if run.job_name == TRAINING_JOB.name:
        return _eval_requests(recipe, tick)
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=EVAL_JOB.name, tags={TICK_TAG: tick}))
    waiting = [r.run_id for r in runs if r.run_id != run.run_id and r.status not in FINISHED]
    if waiting:
        return dg.SkipReason(f"{len(waiting)} evaluation run(s) of tick {tick} still running")
    return dg.RunRequest(job_name=REPORT_JOB.name, run_key=f"report-{tick}", tags={TICK_TAG: tick})
