"""Named jobs: what ``astro run`` launches, so its runs show under their names in the UI.

A Dagster run covers one partition key, and its partitioned assets must share one partitions
definition; the pipeline has three (searched datasets, benchmarks, benchmark x stage). So a whole
``astro run`` is a few runs of these jobs, each with as many steps as that allows, all tagged with
the recipe and the invocation (``defs.runner``). Unpartitioned assets ride along: the first
``search`` run also builds the base model its trees need.
"""

import dagster as dg

from astro_pipeline.defs.schedules import EVAL_JOB, REPORT_JOB, TRAINING_JOB

SEARCH_JOB = dg.define_asset_job(
    "search", selection=dg.AssetSelection.tag("astro/datasets", "train") | dg.AssetSelection.assets("base_model"),
    description="One searched dataset: its problems, MCTS trees, traces and CoT corpus (and the base model they need).")
BENCHMARKS_JOB = dg.define_asset_job(
    "benchmarks", selection=dg.AssetSelection.assets("benchmark_problems"),
    description="Load one benchmark's problems.")
MODELS_JOB = dg.define_asset_job(
    "models", selection=dg.AssetSelection.groups("models"),
    description="The model stages: base model, SFT, RL (and the Direct-arm ablation when the recipe builds it).")

# in the order the runner prefers them for a step that several jobs hold
RUN_JOBS = (SEARCH_JOB, BENCHMARKS_JOB, MODELS_JOB, EVAL_JOB, REPORT_JOB)
ALL_JOBS = (*RUN_JOBS, TRAINING_JOB)
