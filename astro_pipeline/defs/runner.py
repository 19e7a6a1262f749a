"""``astro run``: materialize a recipe's assets through the Dagster instance, in dependency order.

Design: each asset says which datasets it runs for with the tag ``astro/datasets`` ("all",
"train", "benchmarks", or "benchmarks_x_stages" for the benchmark x model-stage evaluation
partitions; none means unpartitioned). The runner makes sure those datasets exist as
dynamic partitions, then launches one in-process run per asset and partition, in topological
order, against the real instance under DAGSTER_HOME, so every run is recorded and shown in the UI
exactly as if it had been launched there. A failed run stops everything downstream of it.

``--partition KEY`` names one dataset (a recipe's, or any registered one: a dataset added with
``astro datasets add`` is run like the inbox sensor runs a new file, through the per-dataset
chain) or one model stage of the evaluation partitions; any other key is an error, and so is a
selection that plans no run at all, rather than a silent exit 0.

One SIGINT or SIGTERM ends the whole command: the run in progress is stopped by Dagster, no
further run starts, and ``RunInterrupted`` carries what ran (see ``interrupts``).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

from dagster import AssetKey, AssetSelection, DagsterInstance, MultiPartitionKey, materialize

from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.instance import dagster_instance
from astro_pipeline.defs.interrupts import StopSignals, signal_name
from astro_pipeline.defs.partitions import ensure_dataset_partitions
from astro_pipeline.recipe import load_recipe
from astro_pipeline.storage import ArtifactStore

DATASETS_TAG = "astro/datasets"
STAGE_TAG = "astro/model_stage"  # model assets: built only when the recipe's evaluate.stages lists the stage
# datasets.optional marks a dataset that may be unreachable: only failing to *load* it is forgiven,
# a failure of anything built on it (a corrupt model in its evaluation) fails the command
LOADING_ASSET = AssetKey("problems")


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


class RunInterrupted(Exception):
    """SIGINT or SIGTERM arrived: the run in progress was stopped and no further run started."""

    def __init__(self, signum: int, outcomes: list[RunOutcome]) -> None:
        super().__init__(f"interrupted by {signal_name(signum)}")
        self.signum, self.outcomes = signum, outcomes


def partitions_for(scope: str | None, recipe, extra: tuple[str, ...] = ()) -> list[str | None]:
    """The partition keys an asset runs for under this recipe (see the module docstring).

    ``extra``: registered datasets outside the recipe that this run was asked for by name; like a
    file dropped into the inbox they go through the per-dataset chain ("all" and "train" assets).
    """
    datasets = recipe.section("datasets")
    if scope is None:
        return [None]
    if scope == "benchmarks_x_stages":
        stages = recipe.section("evaluate").stages
        return [MultiPartitionKey({"benchmark": b, "stage": s}) for b in datasets.benchmarks for s in stages]
    if scope == "train":
        return [*datasets.train, *extra]
    if scope == "benchmarks":
        return list(datasets.benchmarks)
    if scope == "all":
        return [*datasets.all_names(), *extra]
    raise ValueError(f"unknown {DATASETS_TAG} tag value {scope!r}")


def _extra_datasets(partition: str | None, recipe) -> tuple[str, ...]:
    """Check ``--partition``: a dataset or a model stage; returns it if it is a dataset outside the recipe."""
    from astro_pipeline.defs.models import STAGES

    if partition is None or partition in STAGES or partition in recipe.section("datasets").all_names():
        return ()
    names = DatasetRegistry(ArtifactStore.from_env()).names()
    if partition not in names:
        raise ValueError(f"unknown partition {partition!r}: not a dataset ({', '.join(names)}) "
                         f"nor a model stage ({', '.join(STAGES)}); `astro datasets add` registers a dataset")
    return (partition,)


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
    and the same dataset's partitions downstream of a failed partition. Failing to load (problems) a
    dataset the recipe lists as optional (datasets.optional) is reported as skipped, not as a
    failure; what is built on it once loaded counts like anything else.
    """
    recipe = load_recipe(recipe_name)  # fail fast on a bad recipe, before any run starts
    extra = _extra_datasets(partition, recipe)
    os.environ["ASTRO_RECIPE"] = recipe.source or recipe_name
    from astro_pipeline.defs.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    if instance is None:
        instance = dagster_instance()
    datasets = recipe.section("datasets")
    ensure_dataset_partitions(instance, (*datasets.all_names(), *extra))

    wanted = parse_selection(selection).resolve(graph)
    assets = list(graph.assets_defs)
    outcomes: list[RunOutcome] = []
    failed_assets: set[AssetKey] = set()  # unpartitioned failures block everything downstream
    failed_datasets: dict[AssetKey, set[str]] = {}  # per-dataset failures block that dataset downstream
    with StopSignals() as stop:
        try:
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
                for pk in partitions_for(node.tags.get(DATASETS_TAG), recipe, extra):
                    if partition is not None and pk is not None and partition not in (pk, *getattr(pk, "keys_by_dimension", {}).values()):
                        continue
                    dataset = _dataset_of(pk)
                    if dataset in blocked:
                        continue
                    if (signum := stop.received()) is not None:
                        raise RunInterrupted(signum, outcomes)
                    started = time.monotonic()
                    result = materialize(assets, selection=[key], partition_key=pk, instance=instance,
                                         raise_on_error=False, tags={"astro/recipe": recipe.name})
                    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
                    optional = dataset is not None and dataset in datasets.optional and key == LOADING_ASSET
                    signum = stop.received()
                    note = _failure_message(result) if not result.success else ""
                    if signum is not None:
                        note = f"stopped by {signal_name(signum)}" + (f": {note}" if note else "")
                    outcomes.append(RunOutcome(key.to_user_string(), pk, result.run_id,
                                               result.success and signum is None, time.monotonic() - started, checks,
                                               skipped=not result.success and optional and signum is None, note=note))
                    if signum is not None:
                        raise RunInterrupted(signum, outcomes)
                    if not result.success:
                        if dataset is None:
                            failed_assets.add(key)
                        else:
                            failed_datasets.setdefault(key, set()).add(dataset)
        except KeyboardInterrupt:  # a second signal, or one our handler saw outside any run
            raise RunInterrupted(stop.received() or signal.SIGINT, outcomes) from None
    if not outcomes:
        raise ValueError(f"nothing to run: selection {selection or 'all'!r}"
                         + (f" has no partition {partition!r}" if partition else " plans no run")
                         + f" under recipe {recipe.name!r} (datasets: {', '.join(datasets.all_names())}; "
                         f"model stages: {', '.join(recipe.section('evaluate').stages)})")
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
