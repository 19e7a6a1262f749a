"""``astro run``: materialize a recipe's assets through the Dagster instance, in dependency order.

Design: each asset says which datasets it runs for with the tag ``astro/datasets`` ("all",
"train", "benchmarks", or "benchmarks_x_stages" for the benchmark x model-stage evaluation
partitions; none means unpartitioned). The runner makes sure those datasets exist as
dynamic partitions, then launches one in-process run per asset and partition, in topological
order, against the real instance under DAGSTER_HOME, so every run is recorded and shown in the UI
exactly as if it had been launched there. A failed run stops everything downstream of it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from dagster import AssetKey, AssetSelection, DagsterInstance, MultiPartitionKey, materialize

from astro_pipeline.defs.partitions import ensure_dataset_partitions
from astro_pipeline.defs.ui import ensure_dagster_home
from astro_pipeline.recipe import load_recipe

DATASETS_TAG = "astro/datasets"
STAGE_TAG = "astro/model_stage"  # model assets: built only when the recipe's evaluate.stages lists the stage


@dataclass(frozen=True)
class RunOutcome:
    asset: str
    partition: str | None
    run_id: str
    success: bool
    seconds: float
    checks: dict[str, bool] = field(default_factory=dict)  # asset check name -> passed
    skipped: bool = False  # failed on an optional dataset: reported, not counted as a failure
    note: str = ""  # first line of the error when the run failed


def partitions_for(scope: str | None, recipe) -> list[str | None]:
    """The partition keys an asset runs for under this recipe (see the module docstring)."""
    datasets = recipe.section("datasets")
    if scope is None:
        return [None]
    if scope == "benchmarks_x_stages":
        stages = recipe.section("evaluate").stages
        return [MultiPartitionKey({"benchmark": b, "stage": s}) for b in datasets.benchmarks for s in stages]
    if scope == "train":
        return list(datasets.train)
    if scope == "benchmarks":
        return list(datasets.benchmarks)
    if scope == "all":
        return list(datasets.all_names())
    raise ValueError(f"unknown {DATASETS_TAG} tag value {scope!r}")


def parse_selection(selection: str | None) -> AssetSelection:
    """Dagster selection clauses joined by commas: "problems,+search_trees,cot_corpus*"."""
    if not selection:
        return AssetSelection.all()
    clauses = [c.strip() for c in selection.split(",") if c.strip()]
    result = AssetSelection.from_string(clauses[0])
    for clause in clauses[1:]:
        result = result | AssetSelection.from_string(clause)
    return result


def _dataset_of(pk: str | None) -> str | None:
    if pk is None:
        return None
    return getattr(pk, "keys_by_dimension", {}).get("benchmark", pk)


def run_recipe(recipe_name: str, selection: str | None = None, partition: str | None = None,
               instance: DagsterInstance | None = None) -> list[RunOutcome]:
    """Materialize the selected assets for the recipe's partitions; see the module docstring.

    A failed run blocks what depends on it: everything downstream of a failed unpartitioned asset,
    and the same dataset's partitions downstream of a failed partition. A failure on a dataset the
    recipe lists as optional (datasets.optional) is reported as skipped, not as a failure.
    """
    recipe = load_recipe(recipe_name)  # fail fast on a bad recipe, before any run starts
    os.environ["ASTRO_RECIPE"] = recipe.source or recipe_name
    from astro_pipeline.defs.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    if instance is None:
        ensure_dagster_home()
        instance = DagsterInstance.get()
    datasets = recipe.section("datasets")
    ensure_dataset_partitions(instance, datasets.all_names())

    wanted = parse_selection(selection).resolve(graph)
    assets = list(graph.assets_defs)
    outcomes: list[RunOutcome] = []
    failed_assets: set[AssetKey] = set()  # unpartitioned failures block everything downstream
    failed_datasets: dict[AssetKey, set[str]] = {}  # per-dataset failures block that dataset downstream
    for key in graph.toposorted_asset_keys:
        if key not in wanted or not graph.get(key).is_materializable:
            continue
        ancestors = set(graph.get_ancestor_asset_keys(key))
        if failed_assets & ancestors:
            continue  # an upstream run failed: nothing to build on
        blocked = set().union(*(failed_datasets.get(a, set()) for a in ancestors))
        node = graph.get(key)
        stage = node.tags.get(STAGE_TAG)
        if stage is not None and stage not in recipe.section("evaluate").stages:
            continue  # a model stage this recipe does not build (e.g. the Direct ablation)
        for pk in partitions_for(node.tags.get(DATASETS_TAG), recipe):
            if partition is not None and pk is not None and partition not in (pk, *getattr(pk, "keys_by_dimension", {}).values()):
                continue
            dataset = _dataset_of(pk)
            if dataset in blocked:
                continue
            started = time.monotonic()
            result = materialize(assets, selection=[key], partition_key=pk, instance=instance, raise_on_error=False,
                                 tags={"astro/recipe": recipe.name})
            checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
            optional = dataset is not None and dataset in datasets.optional
            outcomes.append(RunOutcome(key.to_user_string(), pk, result.run_id, result.success,
                                       time.monotonic() - started, checks, skipped=not result.success and optional,
                                       note=_failure_message(result) if not result.success else ""))
            if not result.success:
                if dataset is None:
                    failed_assets.add(key)
                else:
                    failed_datasets.setdefault(key, set()).add(dataset)
    return outcomes


def _failure_message(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            # the outermost error raised by our code, not Dagster's wrapper nor the library cause below it
            while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
                error = error.cause
            return error.message.strip().splitlines()[0][:300]
    return "run failed"
