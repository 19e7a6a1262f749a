"""The Dagster code location: every asset, resource, check, sensor and schedule of the pipeline.

The recipe in force is ``$ASTRO_RECIPE`` (default ``demo``); ``astro ui --recipe`` and
``astro run --recipe`` set it, so the sensor's interval and the schedule's cron come from it.
"""

import os

import dagster as dg

from astro_pipeline.defs.assets.base_model import base_model
from astro_pipeline.defs.assets.cloning import cot_corpus, cot_corpus_is_sound, search_traces
from astro_pipeline.defs.assets.evaluation import eval_scores, report
from astro_pipeline.defs.assets.problems import problems
from astro_pipeline.defs.assets.search_trees import search_trees
from astro_pipeline.defs.assets.training import direct_rl_model, direct_sft_model, rl_checks, rl_model, sft_model
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.defs.schedules import (
    EVAL_JOB,
    REPORT_JOB,
    TRAINING_JOB,
    make_evaluation_schedule,
    make_followup_sensor,
)
from astro_pipeline.defs.sensors import make_inbox_sensor


def build_definitions(recipe_name: str | None = None) -> dg.Definitions:
    recipe_name = recipe_name or os.environ.get("ASTRO_RECIPE", "demo")
    return dg.Definitions(
        assets=[problems, base_model, search_trees, search_traces, cot_corpus,
                sft_model, rl_model, direct_sft_model, direct_rl_model, eval_scores, report],
        asset_checks=[cot_corpus_is_sound, *rl_checks],
        jobs=[EVAL_JOB, TRAINING_JOB, REPORT_JOB],
        schedules=[make_evaluation_schedule(recipe_name)],
        sensors=[make_inbox_sensor(recipe_name), make_followup_sensor(recipe_name)],
        resources={"astro": AstroResource(recipe_name=recipe_name)},
    )


defs = build_definitions()
