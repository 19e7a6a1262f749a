"""The re-evaluation schedule asks for one run per benchmark x stage, or for retraining."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from astro_pipeline.defs.definitions import build_definitions
from astro_pipeline.defs.schedules import make_evaluation_schedule


TICK = datetime(2026, 11, 23, 4, 15, tzinfo=timezone.utc)


def _recipe(tmp_path, training: bool) -> str:
    path = tmp_path / "sched.yaml"
    path.write_text("name: sched\ndatasets: {train: [synthetic_train], benchmarks: [synthetic_test, math500]}\n"
                    "evaluate: {stages: [base, sft]}\n"
                    f"operations: {{eval_cron: '15 4 * * 1', schedule_training: {str(training).lower()}}}\n")
    return str(path)


def test_schedule_requests_every_benchmark_and_stage(tmp_path):
    schedule = make_evaluation_schedule(_recipe(tmp_path, training=False))
    assert schedule.cron_schedule == "15 4 * * 1"
    requests = schedule(dg.build_schedule_context(scheduled_execution_time=TICK))
    keys = sorted(str(r.partition_key) for r in requests)
    assert keys == ["math500|base", "math500|sft", "synthetic_test|base", "synthetic_test|sft"]
    assert len({r.run_key for r in requests}) == 4 and all(TICK.isoformat() in r.run_key for r in requests)


def test_schedule_can_retrain_first(tmp_path):
    schedule = make_evaluation_schedule(_recipe(tmp_path, training=True))
    requests = schedule(dg.build_schedule_context(scheduled_execution_time=TICK))
    assert len(requests) == 1 and requests[0].partition_key is None and schedule.job_name == "training"


def test_definitions_carry_the_schedule_and_sensor(tmp_path):
    defs = build_definitions(_recipe(tmp_path, training=False))
    assert defs.get_schedule_def("reevaluate") and defs.get_sensor_def("new_problem_files")


def test_followups_chain_training_evaluation_and_one_report(tmp_path):
    from astro_pipeline.defs.schedules import EVAL_JOB, REPORT_JOB, TICK_TAG, TRAINING_JOB, followups
    from astro_pipeline.recipe import load_recipe

    recipe = load_recipe(_recipe(tmp_path, training=True))
    instance = dg.DagsterInstance.ephemeral()
    tick = TICK.isoformat()

    def run(job, run_id, status=dg.DagsterRunStatus.SUCCESS):
        r = dg.DagsterRun(job_name=job.name, run_id=run_id, status=status, tags={TICK_TAG: tick})
        instance.add_run(r)
        return r

    requests = followups(instance, run(TRAINING_JOB, "t1"), recipe)
    assert sorted(r.partition_key for r in requests) == ["math500|base", "math500|sft", "synthetic_test|base",
                                                         "synthetic_test|sft"]
    assert all(r.job_name == EVAL_JOB.name and r.tags[TICK_TAG] == tick for r in requests)
    # the report waits for the tick's last evaluation run
    run(EVAL_JOB, "e2", status=dg.DagsterRunStatus.STARTED)
    assert isinstance(followups(instance, run(EVAL_JOB, "e1"), recipe), dg.SkipReason)
    instance.delete_run("e2")
    run(EVAL_JOB, "e2")
    report = followups(instance, instance.get_run_by_id("e2"), recipe)
    assert report.job_name == REPORT_JOB.name and report.run_key == f"report-{tick}"
    assert isinstance(followups(instance, dg.DagsterRun(job_name=EVAL_JOB.name, run_id="x"), recipe), dg.SkipReason)
