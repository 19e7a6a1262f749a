"""The Dagster code location: every asset, resource, check, job, sensor and schedule of the pipeline.

The recipe in force is ``$ASTRO_RECIPE`` (default ``demo``); ``astro ui --recipe`` and
``astro run --recipe`` set it. The definitions are built from it: the benchmark and stage
partitions, which model assets exist (only the stages it builds, see ``models.built_stages``),
the sensor's interval and the schedule's cron. So the UI offers what the recipe builds, nothing else.
"""

import os

import dagster as dg

from astro_pipeline.defs.assets.base_model import base_model
from astro_pipeline.defs.assets.cloning import cot_corpus, cot_corpus_is_sound, search_traces
from astro_pipeline.defs.assets.evaluation import make_eval_scores
from astro_pipeline.defs.assets.problems import make_benchmark_problems, problems
from astro_pipeline.defs.assets.report import report
from astro_pipeline.defs.assets.search_trees import search_trees
from astro_pipeline.defs.assets.training import MODEL_ASSETS, RL_CHECKS
from astro_pipeline.defs.jobs import ALL_JOBS
from astro_pipeline.defs.logs import console_logger
from astro_pipeline.defs.models import built_stages
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.defs.schedules import make_evaluation_schedule, make_followup_sensor
from astro_pipeline.defs.sensors import make_inbox_sensor
from astro_pipeline.recipe import load_recipe


def build_definitions(recipe_name: str | None = None) -> dg.Definitions:
    recipe_name = recipe_name or os.environ.get("ASTRO_RECIPE", "demo")
    recipe = load_recipe(recipe_name)
    stages = [s for s in built_stages(recipe) if s != "base"]
    return dg.Definitions(
        assets=[problems, make_benchmark_problems(recipe), base_model, search_trees, search_traces, cot_corpus,
                *(MODEL_ASSETS[s] for s in stages), make_eval_scores(recipe), report],
        asset_checks=[cot_corpus_is_sound, *(RL_CHECKS[s] for s in stages if s in RL_CHECKS)],
        jobs=list(ALL_JOBS),
        schedules=[make_evaluation_schedule(recipe_name)],
        sensors=[make_inbox_sensor(recipe_name), make_followup_sensor(recipe_name)],
        resources={"astro": AstroResource(recipe_name=recipe_name)},
        loggers={"console": console_logger},
    )


defs = build_definitions()
