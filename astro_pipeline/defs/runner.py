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
import uuid
from dataclasses import dataclass, field

from dagster import AssetKey, AssetSelection, DagsterEventType, DagsterInstance

from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.instance import dagster_instance
from astro_pipeline.defs.interrupts import StopSignals, signal_name
from astro_pipeline.defs.logs import logger_run_config
from astro_pipeline.defs.partitions import partitions_for, sync_recipe_partitions
from astro_pipeline.defs.tags import DATASETS_TAG, INVOCATION_TAG, RECIPE_TAG
from astro_pipeline.recipe import load_recipe
from astro_pipeline.storage import ArtifactStore

# datasets.optional marks a dataset that may be unreachable: only failing to *load* it is forgiven,
# a failure of anything built on it (a corrupt model in its evaluation) fails the command
LOADING_ASSETS = frozenset({AssetKey("problems"), AssetKey("benchmark_problems")})


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


class RunInterrupted(Exception):
    """SIGINT or SIGTERM arrived: the run in progress was stopped and no further run started."""

    def __init__(self, signum: int, outcomes: list[RunOutcome]) -> None:
        super().__init__(f"interrupted by {signal_name(signum)}")
        self.signum, self.outcomes = signum, outcomes


@dataclass(frozen=True)
class Step:
    key: AssetKey
    partition: str | None
    dataset: str | None  # the dataset the partition belongs to (the benchmark of an eval key)


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


def plan_steps(defs, recipe, selection: str | None, partition: str | None,
               extra: tuple[str, ...] = ()) -> list[Step]:
    """The (asset, partition) steps of a selection, in dependency order; ``extra`` as in ``partitions_for``."""
    graph = defs.resolve_asset_graph()
    wanted = parse_selection(selection).resolve(graph)
    steps = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if key not in wanted or not node.is_materializable:
            continue
        for pk in partitions_for(node.tags.get(DATASETS_TAG), recipe, extra):
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

    A failed step blocks what depends on it: everything downstream of a failed unpartitioned asset,
    and the same dataset's partitions downstream of a failed partition. Failing to load (problems,
    benchmark_problems) a dataset the recipe lists as optional (datasets.optional) is reported as
    skipped, not as a failure; what is built on it once loaded counts like anything else.
    """
    recipe = load_recipe(recipe_name)  # fail fast on a bad recipe, before any run starts
    extra = _extra_datasets(partition, recipe)
    os.environ["ASTRO_RECIPE"] = recipe.source or recipe_name
    from astro_pipeline.defs.definitions import build_definitions

    defs = build_definitions(recipe.source or recipe_name)
    if instance is None:
        instance = dagster_instance()
    sync_recipe_partitions(instance, recipe, extra)
    datasets = recipe.section("datasets")
    graph = defs.resolve_asset_graph()
    runs = pack_runs(defs, plan_steps(defs, recipe, selection, partition, extra))
    if not runs:
        raise ValueError(f"nothing to run: selection {selection or 'all'!r}"
                         + (f" has no partition {partition!r}" if partition else " plans no run")
                         + f" under recipe {recipe.name!r} (datasets: {', '.join(datasets.all_names())}; "
                         f"model stages: {', '.join(recipe.section('evaluate').stages)})")
    tags = {RECIPE_TAG: recipe.name, INVOCATION_TAG: uuid.uuid4().hex[:12]}

    outcomes: list[RunOutcome] = []
    failed_assets: set[AssetKey] = set()  # unpartitioned failures block everything downstream
    failed_datasets: dict[AssetKey, set[str]] = {}  # per-dataset failures block that dataset downstream
    with StopSignals() as stop:
        try:
            for job_name, key, steps in runs:
                runnable = []
                for s in steps:
                    ancestors = set(graph.get_ancestor_asset_keys(s.key))
                    blocked = set().union(*(failed_datasets.get(a, set()) for a in ancestors))
                    if not (failed_assets & ancestors) and s.dataset not in blocked:
                        runnable.append(s)
                if not runnable:
                    continue
                if (signum := stop.received()) is not None:
                    raise RunInterrupted(signum, outcomes)
                result = defs.resolve_job_def(job_name).execute_in_process(
                    instance=instance, partition_key=key, asset_selection=[s.key for s in runnable], tags=tags,
                    run_config=logger_run_config(verbose, [s.key.to_python_identifier() for s in runnable if s.partition]),
                    raise_on_error=False)
                signum = stop.received()
                stopped = f"stopped by {signal_name(signum)}" if signum is not None else None
                for s, outcome in zip(runnable, _step_outcomes(instance, result, runnable, job_name, stopped)):
                    if outcome is None:
                        continue  # never started: the signal ended the run before it
                    optional = s.dataset in datasets.optional and s.key in LOADING_ASSETS and stopped is None
                    outcome = RunOutcome(**{**outcome.__dict__, "skipped": not outcome.success and optional,
                                            "invocation": tags[INVOCATION_TAG]})
                    outcomes.append(outcome)
                    if not outcome.success:
                        if s.dataset is None:
                            failed_assets.add(s.key)
                        else:
                            failed_datasets.setdefault(s.key, set()).add(s.dataset)
                if signum is not None:
                    raise RunInterrupted(signum, outcomes)
        except KeyboardInterrupt:  # a second signal, or one our handler saw outside any run
            raise RunInterrupted(stop.received() or signal.SIGINT, outcomes) from None
    return outcomes


def _step_outcomes(instance: DagsterInstance, result, steps: list[Step], job_name: str,
                   stopped: str | None = None) -> list[RunOutcome | None]:
    """One outcome per step of a finished run, from its event log (times, failures, checks).

    ``stopped``: the run was ended by a signal ("stopped by SIGINT"); a step it interrupted fails
    with that note, and a step it never started has no outcome (None): nothing ran for it.
    """
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
        if stopped is not None and not ok:
            if name not in started:
                out.append(None)
                continue
            note = stopped + (f": {errors[name]}" if name in errors else "")
        else:
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
