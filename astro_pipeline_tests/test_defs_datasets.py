"""User datasets through the `astro` command and the Dagster layer, as the README tells people to use
them: add, run by partition, limit, remove; and the commands behave on a fresh machine."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from astro_pipeline.cli import main
from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.assets.problems import problems
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, table_file


def _problem_file(tmp_path: Path, n: int = 10, bad: int = 0, name: str = "mine.jsonl") -> Path:
    path = tmp_path / name
    rows = [json.dumps({"id": f"q{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1)}) for i in range(n)]
    rows += [json.dumps({"id": f"bad{i}", "problem": f"No answer {i}"}) for i in range(bad)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _recipe(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text("name: datasets_test\n" + text)
    return str(path)


def _astro(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "astro_pipeline.cli", *args], env=env or dict(os.environ),
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_limits_cut_where_problems_are_used_not_the_table(tmp_path):
    DatasetRegistry(ArtifactStore.from_env()).add("mine", str(_problem_file(tmp_path, n=10)))
    recipe = _recipe(tmp_path, "datasets:\n  train: [mine]\n  benchmarks: []\n  limits: {mine: 3}\n")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("dataset", ["mine"])
    result = dg.materialize([problems], partition_key="mine", instance=instance,
                            resources={"astro": AstroResource(recipe_name=recipe)})
    meta = result.asset_materializations_for_node("problems")[0].metadata
    # the table and the UI hold the whole dataset, and say how much of it the stages use
    assert meta["problems"].value == 10 and "first 3" in meta["used_downstream"].value
    store = ArtifactStore.from_env()
    assert Warehouse(store).query("SELECT count(*) AS n FROM problems WHERE dataset = 'mine'")["n"][0] == 10
    from astro_pipeline.defs.assets.common import read_problems
    from astro_pipeline.recipe import load_recipe

    used = read_problems(store, load_recipe(recipe), "mine")
    assert used["problem_id"].to_list() == ["q0", "q1", "q2"]


def test_quarantined_rows_are_warned_about_in_the_run_log(tmp_path):
    DatasetRegistry(ArtifactStore.from_env()).add("mine", str(_problem_file(tmp_path, n=2, bad=3)))
    recipe = _recipe(tmp_path, "datasets:\n  train: [mine]\n  benchmarks: []\n")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("dataset", ["mine"])
    result = dg.materialize([problems], partition_key="mine", instance=instance,
                            resources={"astro": AstroResource(recipe_name=recipe)})
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("mine: 3 row(s) quarantined: missing answer" in w for w in warnings), warnings


def test_the_readme_flow_add_then_run_by_partition(tmp_path, capsys):
    source = _problem_file(tmp_path, n=4)
    assert main(["datasets", "add", "mine", str(source)]) == 0
    recipe = _recipe(tmp_path, "datasets:\n  train: [synthetic_train]\n  benchmarks: []\n"
                               "synthetic: {n_train: 20, n_test: 5}\n")
    capsys.readouterr()
    assert main(["run", "--recipe", recipe, "--select", "problems", "--partition", "mine"]) == 0
    out = capsys.readouterr().out
    assert "ok      problems[mine]" in out and "synthetic_train" not in out
    assert Warehouse(ArtifactStore.from_env()).query("SELECT count(*) AS n FROM problems")["n"][0] == 4
    # a misspelt partition is an error that names what exists, not a silent exit 0
    assert main(["run", "--recipe", recipe, "--select", "problems", "--partition", "mien"]) == 2
    err = capsys.readouterr().err
    assert "unknown partition 'mien'" in err and "mine" in err
    # and so is a selection that plans no run at all
    assert main(["run", "--recipe", recipe, "--select", "search_trees", "--partition", "sft"]) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_removing_a_dataset_removes_its_rows(tmp_path, capsys):
    source = _problem_file(tmp_path, n=3, bad=1)
    assert main(["datasets", "add", "gone", str(source)]) == 0
    assert main(["datasets", "add", "kept", str(_problem_file(tmp_path, n=2, name="kept.jsonl"))]) == 0
    recipe = _recipe(tmp_path, "datasets:\n  train: [gone, kept]\n  benchmarks: []\n")
    assert main(["run", "--recipe", recipe, "--select", "problems"]) == 0
    store = ArtifactStore.from_env()
    # a leftover evaluation file of the dataset, to be removed with it
    store.write_parquet(pl.DataFrame({"benchmark": ["gone"], "stage": ["base"]}), table_file("eval_scores", "gone__base"))
    capsys.readouterr()
    assert main(["datasets", "remove", "gone"]) == 0
    assert "removed gone" in capsys.readouterr().out
    wh = Warehouse(store)
    assert wh.query("SELECT DISTINCT dataset FROM problems")["dataset"].to_list() == ["kept"]
    assert wh.query("SELECT count(*) AS n FROM quarantine")["n"][0] == 0
    assert "eval_scores" not in wh.refresh() and not store.exists(table_file("eval_scores", "gone__base"))
    assert "gone" not in dg.DagsterInstance.get().get_dynamic_partitions("dataset")


@pytest.mark.slow
def test_datasets_add_works_without_dagster_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = _astro("datasets", "add", "mine", str(_problem_file(tmp_path)), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DagsterHomeNotSetError" not in done.stderr
    assert (tmp_path / ".dagster_home" / "dagster.yaml").is_file()  # the default the Makefile uses too
    with dg.DagsterInstance.from_config(str(tmp_path / ".dagster_home")) as instance:
        assert instance.get_dynamic_partitions("dataset") == ["mine"]


@pytest.mark.slow
def test_concurrent_first_commands_on_a_fresh_dagster_home(tmp_path):
    fresh = tmp_path / "fresh_dagster_home"  # made as the Makefile does; no storage yet: the commands create it
    fresh.mkdir()
    source = _problem_file(tmp_path)
    procs = []
    for i in range(4):
        env = {**os.environ, "DAGSTER_HOME": str(fresh), "ASTRO_HOME": str(tmp_path / f"home{i}")}
        procs.append(subprocess.Popen([sys.executable, "-m", "astro_pipeline.cli", "datasets", "add", f"d{i}",
                                       str(source)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), [err[-500:] for code, err in results if code]
    with dg.DagsterInstance.from_config(str(fresh)) as instance:
        assert sorted(instance.get_dynamic_partitions("dataset")) == ["d0", "d1", "d2", "d3"]
