"""The new-problem sensor: a file dropped into the inbox becomes a dataset partition and a run.

Each new or replaced file is registered as a user dataset (named after the file), added as a
dynamic partition, and gets one run request for the per-dataset chain (problems, search trees,
traces, corpus: every asset partitioned by dataset). The cursor holds the identities (path, size,
mtime/etag) of the files already acted on, so a restart of the daemon re-triggers nothing.
"""

import json
from pathlib import Path

import dagster as dg
from dagster import SensorEvaluationContext

from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.partitions import DATASET_PARTITIONS_NAME
from astro_pipeline.defs.tags import DATASETS_TAG
from astro_pipeline.operations import scan_inbox
from astro_pipeline.recipe import load_recipe
from astro_pipeline.storage import ArtifactStore, astro_home

PER_DATASET_CHAIN = dg.AssetSelection.tag(DATASETS_TAG, "train")  # problems, search_trees, search_traces, cot_corpus


def inbox_location(settings, store: ArtifactStore) -> str:
    return settings.inbox or store.uri("inbox")


def make_inbox_sensor(recipe_name: str) -> dg.SensorDefinition:
    settings = load_recipe(recipe_name).section("operations")

    @dg.sensor(
        name="new_problem_files",
        minimum_interval_seconds=settings.sensor_interval_s,
        asset_selection=PER_DATASET_CHAIN,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Turns each new file in the inbox into a dataset partition and runs its search-to-corpus chain.",
    )
    def new_problem_files(context: SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        store = ArtifactStore(astro_home())
        inbox = inbox_location(settings, store)
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        files, skipped = scan_inbox(inbox)
        for path in skipped:
            context.log.warning(f"inbox: {path} has an unknown format; expected .jsonl/.json/.parquet/.csv")
        fresh = [f for f in files if f.identity not in seen]
        if not fresh:
            return dg.SkipReason(f"no new files in {inbox}")
        registry = DatasetRegistry(store)
        existing = set(context.instance.get_dynamic_partitions(DATASET_PARTITIONS_NAME))
        new_partitions, requests = [], []
        for f in fresh:
            if f.dataset in registry and registry.get(f.dataset).location != f.uri:
                context.log.error(f"inbox: {f.uri} would be dataset {f.dataset!r}, which is taken; rename the file")
                seen.add(f.identity)
                continue
            if f.dataset not in registry:
                registry.add(f.dataset, f.uri, problem_field=settings.problem_field, answer_field=settings.answer_field)
            if f.dataset not in existing:
                new_partitions.append(f.dataset)
            requests.append(dg.RunRequest(run_key=f.identity, partition_key=f.dataset,
                                          tags={"astro/source": Path(f.uri).name}))
            seen.add(f.identity)
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(DATASET_PARTITIONS_NAME, new_partitions)]
            if new_partitions else [],
            cursor=json.dumps(sorted(seen)),
        )

    return new_problem_files
