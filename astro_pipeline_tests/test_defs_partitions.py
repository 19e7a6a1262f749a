"""The UI offers exactly the partitions the recipe builds: no "Missing" partition nothing will fill.

Checked on the definitions themselves: every asset's partition keys (with the instance's dynamic
partitions as ``astro run`` leaves them) against the steps ``astro run`` plans, for the demo recipe,
the tiny test recipe and a recipe with the Direct arm.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from astro_pipeline.defs.definitions import build_definitions
from astro_pipeline.defs.partitions import search_datasets, sync_dataset_partitions
from astro_pipeline.defs.runner import pack_runs, plan_steps
from astro_pipeline.recipe import load_recipe

TINY = str(Path(__file__).parent / "recipes" / "tiny.yaml")


@pytest.fixture
def direct_recipe(tmp_path) -> str:
    path = tmp_path / "direct.yaml"
    path.write_text("name: direct\ndatasets: {train: [synthetic_train], benchmarks: [synthetic_test, math500]}\n"
                    "evaluate: {stages: [base, direct_sft, sft, direct_rl, rl]}\n")
    return str(path)


def _offered(defs, instance) -> set[tuple[str, str | None]]:
    graph = defs.resolve_asset_graph()
    out = set()
    for key in graph.materializable_asset_keys:
        pdef = graph.get(key).partitions_def
        keys = [None] if pdef is None else pdef.get_partition_keys(dynamic_partitions_store=instance)
        out |= {(key.to_user_string(), k) for k in keys}
    return out


@pytest.mark.parametrize("which", ["demo", "tiny", "direct"])
def test_every_offered_partition_is_one_the_recipe_builds(which, direct_recipe):
    name = {"demo": "demo", "tiny": TINY, "direct": direct_recipe}[which]
    recipe = load_recipe(name)
    defs = build_definitions(name)
    instance = dg.DagsterInstance.ephemeral()
    # a key left by another recipe (a benchmark that was once searched) must not stay offered
    instance.add_dynamic_partitions("dataset", ["synthetic_test", "math_train"])
    sync_dataset_partitions(instance, search_datasets(recipe))
    planned = {(s.key.to_user_string(), s.partition) for s in plan_steps(defs, recipe, None, None)}
    assert _offered(defs, instance) == planned

    datasets, stages = recipe.section("datasets"), recipe.section("evaluate").stages
    offered = _offered(defs, instance)
    assert {k for a, k in offered if a == "search_trees"} == set(datasets.train)
    assert {k for a, k in offered if a == "eval_scores"} == {f"{b}|{s}" for b in datasets.benchmarks for s in stages}
    models = {a for a, _ in offered if a.endswith("_model")}
    assert ("direct_sft_model" in models) == ("direct_sft" in stages)
    assert ("direct_rl_model" in models) == ("direct_rl" in stages)


def test_a_stage_that_needs_another_builds_it():
    from astro_pipeline.defs.models import built_stages

    class R:  # only the section built_stages reads
        def section(self, name):
            return type("E", (), {"stages": ("base", "rl", "direct_rl")})()

    assert built_stages(R()) == ["base", "sft", "rl", "direct_sft", "direct_rl"]


def test_astro_run_packs_steps_into_named_jobs(direct_recipe):
    recipe = load_recipe(direct_recipe)
    defs = build_definitions(direct_recipe)
    runs = pack_runs(defs, plan_steps(defs, recipe, None, None))
    jobs = [job for job, _, _ in runs]
    assert set(jobs) == {"search", "benchmarks", "models", "evaluation", "report_job"}
    first = runs[0]
    assert first[0] == "search" and [s.key.to_user_string() for s in first[2]][:1] == ["base_model"]
    assert {s.key.to_user_string() for s in first[2]} == {"base_model", "problems", "search_trees", "search_traces",
                                                           "cot_corpus"}
    models = next(steps for job, _, steps in runs if job == "models")
    names = [s.key.to_user_string() for s in models]  # one run, each RL stage after the SFT it starts from
    assert sorted(names) == ["direct_rl_model", "direct_sft_model", "rl_model", "sft_model"]
    assert names.index("sft_model") < names.index("rl_model") and names.index("direct_sft_model") < names.index(
        "direct_rl_model")
    assert jobs.count("evaluation") == 2 * 5 and jobs[-1] == "report_job"
    # every step planned is in exactly one run, after the runs of what it needs
    seen: set = set()
    for _, _, steps in runs:
        for s in steps:
            parents = defs.resolve_asset_graph().get(s.key).parent_keys
            assert all(p in {x.key for x in seen} or p in {x.key for x in steps} for p in parents), s
        seen |= set(steps)
    assert len(seen) == sum(len(steps) for _, _, steps in runs)
