"""Partitions, derived from the recipe so the UI offers exactly what the recipe builds.

* ``dataset`` (dynamic): the datasets that are searched and cloned (problems, search_trees,
  search_traces, cot_corpus): the recipe's ``datasets.train`` plus user datasets (``astro datasets
  add``, files dropped into the inbox), which the sensor runs. Dynamic, so a new problem file
  becomes a partition without reloading the code.
* ``benchmark`` (static): the recipe's ``datasets.benchmarks`` (benchmark_problems, and the first
  dimension of eval_scores). Static keys come from the code, so a benchmark of another recipe is
  never offered as "Missing".
* ``stage`` (static): the recipe's ``evaluate.stages`` (second dimension of eval_scores).

``sync_dataset_partitions`` makes the instance's dynamic keys exactly the wanted set: keys left by
another recipe (e.g. a benchmark that was once searched) are removed, so they do not show as
"Missing"; their past materializations stay in the event log.
"""

from __future__ import annotations

from dagster import (
    DagsterInstance,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from astro_pipeline.defs.tags import DATASETS_TAG

DATASET_PARTITIONS_NAME = "dataset"
dataset_partitions = DynamicPartitionsDefinition(name=DATASET_PARTITIONS_NAME)


def benchmark_partitions(recipe) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(list(recipe.section("datasets").benchmarks))


def eval_partitions(recipe) -> MultiPartitionsDefinition:
    stages = StaticPartitionsDefinition(list(recipe.section("evaluate").stages))
    return MultiPartitionsDefinition({"benchmark": benchmark_partitions(recipe), "stage": stages})


def search_datasets(recipe, user_datasets: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The keys of the ``dataset`` partitions: train datasets, then user datasets that are not benchmarks."""
    datasets = recipe.section("datasets")
    extra = [d for d in user_datasets if d not in datasets.benchmarks]
    return list(dict.fromkeys((*datasets.train, *extra)))


def ensure_dataset_partitions(instance: DagsterInstance, names: list[str] | tuple[str, ...]) -> list[str]:
    """Add the datasets that are not yet partitions; returns the ones added."""
    existing = set(instance.get_dynamic_partitions(DATASET_PARTITIONS_NAME))
    new = [n for n in dict.fromkeys(names) if n not in existing]
    if new:
        instance.add_dynamic_partitions(DATASET_PARTITIONS_NAME, new)
    return new


def sync_dataset_partitions(instance: DagsterInstance, wanted: list[str]) -> tuple[list[str], list[str]]:
    """Make the ``dataset`` partitions exactly ``wanted``; returns (added, removed)."""
    added = ensure_dataset_partitions(instance, wanted)
    removed = [k for k in instance.get_dynamic_partitions(DATASET_PARTITIONS_NAME) if k not in set(wanted)]
    for key in removed:
        instance.delete_dynamic_partition(DATASET_PARTITIONS_NAME, key)
    return added, removed


def sync_recipe_partitions(instance: DagsterInstance, recipe, extra: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """The instance's ``dataset`` partitions made those of this recipe (``astro run`` and ``astro ui``),
    plus ``extra``: registered datasets outside it that ``astro run --partition`` was asked for."""
    from astro_pipeline.data.registry import DatasetRegistry
    from astro_pipeline.storage import ArtifactStore, astro_home

    user = DatasetRegistry(ArtifactStore(astro_home())).user_names()
    return sync_dataset_partitions(instance, [*search_datasets(recipe, user), *extra])


def partitions_for(scope: str | None, recipe, extra: tuple[str, ...] = ()) -> list:
    """The partition keys an asset with ``astro/datasets`` tag ``scope`` runs for under this recipe
    (None: unpartitioned). The definitions offer the same keys (tested).

    ``extra``: registered datasets outside the recipe that this run was asked for by name; like a
    file dropped into the inbox they go through the per-dataset chain (the "train" assets).
    """
    datasets = recipe.section("datasets")
    if scope is None:
        return [None]
    if scope == "benchmarks_x_stages":
        stages = recipe.section("evaluate").stages
        return [MultiPartitionKey({"benchmark": b, "stage": s}) for b in datasets.benchmarks for s in stages]
    if scope == "train":
        return [*datasets.train, *(d for d in extra if d not in datasets.train)]
    if scope == "benchmarks":
        return list(datasets.benchmarks)
    raise ValueError(f"unknown {DATASETS_TAG} tag value {scope!r}")
