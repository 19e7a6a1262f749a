"""``astro run``: materialize a recipe's assets through the Dagster instance, in dependency order.

Design: the definitions are built from the recipe (``defs.definitions``), so its partitions are
the ones the recipe builds; each asset's tag ``astro/datasets`` names which ("train",
"benchmarks", "benchmarks_x_stages"; none: unpartitioned, see ``partitions.partitions_for``). The
runner makes the instance's dataset partitions match the recipe, then plans the (asset,
partition) steps and packs them into as few runs as Dagster allows: a run is one named job
(``defs.jobs``) and one partition key, and takes every pending step of that job and key whose
upstream steps are done or in the same run. The demo becomes about a dozen named runs (search,
benchmarks, models, one per evaluation partition, report) instead of one anonymous run per
step. Every run carries the recipe name and this invocation's id as tags, so the UI's run list
filtered by ``astro/invocation`` shows one ``astro run`` whole. Runs go against the real instance
under DAGSTER_HOME, so they are recorded exactly as if launched from the UI. A failed step stops
what depends on it: everything downstream of a failed unpartitioned asset, and the same dataset
downstream of a failed partition.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

from dagster import AssetKey, AssetSelection, DagsterEventType, DagsterInstance

from astro_pipeline.defs.logs import logger_run_config
from astro_pipeline.defs.partitions import partitions_for, sync_recipe_partitions
from astro_pipeline.defs.tags import DATASETS_TAG, INVOCATION_TAG, RECIPE_TAG
from astro_pipeline.defs.ui import ensure_dagster_home
from astro_pipeline.recipe import load_recipe


@dataclass(frozen=True)
class RunOutcome:
    asset: str
    partition: str | None
    run_id: str
    success: bool
    seconds: float
    checks: dict[str, bool] = field(default_factory=dict)  # asset check name -> passed
    skipped: bool = False  # failed on an optional dataset: reported, not counted as a failure
    note: str = ""  # first line of the error when the step failed
    job: str = ""  # the named job of the run
    invocation: str = ""  # the id every run of this `astro run` carries (tag astro/invocation)


@dataclass(frozen=True)
class Step:
    key: AssetKey
    partition: str | None
    dataset: str | None  # the dataset the partition belongs to (the benchmark of an eval key)


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


def plan_steps(defs, recipe, selection: str | None, partition: str | None) -> list[Step]:
    graph = defs.resolve_asset_graph()
    wanted = parse_selection(selection).resolve(graph)
    steps = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if key not in wanted or not node.is_materializable:
            continue
        for pk in partitions_for(node.tags.get(DATASETS_TAG), recipe):
            keys = (pk, *getattr(pk, "keys_by_dimension", {}).values())
            if partition is not None and pk is not None and partition not in keys:
                continue
            steps.append(Step(key, pk, _dataset_of(pk)))
    return steps


def pack_runs(defs, steps: list[Step]) -> list[tuple[str, str | None, list[Step]]]:
    """Steps grouped into (job name, partition key, steps) runs, in an order that respects dependencies."""
    from astro_pipeline.defs.jobs import RUN_JOBS

    graph = defs.resolve_asset_graph()
    jobs = [(job.name, set(job.selection.resolve(graph))) for job in RUN_JOBS]
    upstream = {s: {u for u in steps if u.key in graph.get(s.key).parent_keys and _feeds(u, s)} for s in steps}
    pending, done, runs = list(steps), set(), []
    while pending:
        ready = next(s for s in pending if upstream[s] <= done)
        best: tuple[str, str | None, list[Step]] | None = None
        for name, members in jobs:
            if ready.key not in members:
                continue
            key = ready.partition if ready.partition is not None else next(
                (s.partition for s in pending if s.key in members and s.partition is not None), None)
            taken: list[Step] = []
            for s in pending:  # in dependency order, so a step's upstream in the run comes first
                fits = s.key in members and (s.partition is None or s.partition == key)
                if fits and upstream[s] <= done | set(taken):
                    taken.append(s)
            if ready in taken and (best is None or len(taken) > len(best[2])):
                best = (name, key, taken)
        if best is None:
            raise ValueError(f"no job of defs.jobs holds {ready.key.to_user_string()}")
        runs.append(best)
        done |= set(best[2])
        pending = [s for s in pending if s not in done]
    return runs


def _feeds(up: Step, down: Step) -> bool:
    """Whether step ``up`` is an input of step ``down`` (same dataset, or either unpartitioned)."""
    return up.partition is None or down.partition is None or up.dataset == down.dataset


def run_recipe(recipe_name: str, selection: str | None = None, partition: str | None = None,
               instance: DagsterInstance | None = None, verbose: bool = False) -> list[RunOutcome]:
    """Materialize the selected assets for the recipe's partitions; see the module docstring.

    A failure on a dataset the recipe lists as optional (datasets.optional) is reported as skipped,
    not as a failure.
    """
    recipe = load_recipe(recipe_name)  # fail fast on a bad recipe, before any run starts
    os.environ["ASTRO_RECIPE"] = recipe.source or recipe_name
    from astro_pipeline.defs.definitions import build_definitions

    defs = build_definitions(recipe.source or recipe_name)
    if instance is None:
        ensure_dagster_home()
        instance = DagsterInstance.get()
    sync_recipe_partitions(instance, recipe)
    optional = set(recipe.section("datasets").optional)
    graph = defs.resolve_asset_graph()
    tags = {RECIPE_TAG: recipe.name, INVOCATION_TAG: uuid.uuid4().hex[:12]}

    outcomes: list[RunOutcome] = []
    failed_assets: set[AssetKey] = set()  # unpartitioned failures block everything downstream
    failed_datasets: dict[AssetKey, set[str]] = {}  # per-dataset failures block that dataset downstream
    for job_name, key, steps in pack_runs(defs, plan_steps(defs, recipe, selection, partition)):
        runnable = []
        for s in steps:
            ancestors = set(graph.get_ancestor_asset_keys(s.key))
            blocked = set().union(*(failed_datasets.get(a, set()) for a in ancestors))
            if not (failed_assets & ancestors) and s.dataset not in blocked:
                runnable.append(s)
        if not runnable:
            continue
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, partition_key=key, asset_selection=[s.key for s in runnable], tags=tags,
            run_config=logger_run_config(verbose, [s.key.to_python_identifier() for s in runnable if s.partition]),
            raise_on_error=False)
        for s, outcome in zip(runnable, _step_outcomes(instance, result, runnable, job_name)):
            outcome = RunOutcome(**{**outcome.__dict__, "skipped": not outcome.success and s.dataset in optional,
                                    "invocation": tags[INVOCATION_TAG]})
            outcomes.append(outcome)
            if not outcome.success:
                if s.dataset is None:
                    failed_assets.add(s.key)
                else:
                    failed_datasets.setdefault(s.key, set()).add(s.dataset)
    return outcomes


def _step_outcomes(instance: DagsterInstance, result, steps: list[Step], job_name: str) -> list[RunOutcome]:
    """One outcome per step of a finished run, from its event log (times, failures, checks)."""
    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    started, ended, errors = {}, {}, {}
    for entry in instance.all_logs(result.run_id, of_type=kinds):
        event = entry.dagster_event
        if event.event_type == DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        else:
            ended[event.step_key] = entry.timestamp
            if event.event_type == DagsterEventType.STEP_FAILURE:
                errors[event.step_key] = _failure_message(event.step_failure_data.error)
    made = {e.asset_key for e in result.get_asset_materialization_events() if e.asset_key is not None}
    checks: dict[AssetKey, dict[str, bool]] = {}
    for evaluation in result.get_asset_check_evaluations():
        checks.setdefault(evaluation.asset_key, {})[evaluation.check_name] = evaluation.passed
    out = []
    for s in steps:
        name = s.key.to_python_identifier()
        ok = s.key in made and name not in errors
        note = errors.get(name) or ("" if ok else "not run: a step it needs failed in the same run")
        out.append(RunOutcome(s.key.to_user_string(), s.partition, result.run_id, ok,
                              max(0.0, ended.get(name, 0.0) - started.get(name, 0.0)), checks.get(s.key, {}),
                              note=note, job=job_name))
    return out


def _failure_message(error) -> str:
    if error is None:
        return "step failed"
    # the outermost error raised by our code, not Dagster's wrapper nor the library cause below it
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    lines = (error.message or "").strip().splitlines()
    return lines[0][:300] if lines else "step failed"
