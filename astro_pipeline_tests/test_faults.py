"""Faults: kill -9 in the middle of search, a truncated Parquet artifact.

The search is run by `astro run` in its own process group and killed with SIGKILL once some trees
are on disk; the second run must search only the rest, and every problem must end in tree_nodes
exactly once. A truncated table file must fail the consumer with a message naming the file and be
rebuilt by materializing its asset again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astro_pipeline.cli import main
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, table_file

TINY = Path(__file__).parent / "recipes" / "tiny.yaml"


def _recipe(tmp_path: Path, n_problems: int, parallel_trees: int) -> str:
    text = TINY.read_text().replace("synthetic_train: 6", f"synthetic_train: {n_problems}")
    text = text.replace("search: {", f"search: {{parallel_trees: {parallel_trees}, ")
    path = tmp_path / "faults.yaml"
    path.write_text(text)
    return str(path)


def _astro(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "astro_pipeline.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_kill_during_search_resumes_without_redoing_or_duplicating(tmp_path):
    recipe = _recipe(tmp_path, n_problems=12, parallel_trees=2)  # trees finish two at a time
    assert main(["run", "--recipe", recipe, "--select", "problems,base_model", "--partition", "synthetic_train"]) == 0
    store = ArtifactStore.from_env()
    trees = Path(store.path("tables/tree_nodes/synthetic_train"))

    proc = _astro("run", "--recipe", recipe, "--select", "search_trees")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(trees.glob("*.parquet"))) < 4:
        assert proc.poll() is None, "the search finished before it could be killed; make it longer"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in trees.glob("*.parquet")}
    assert 4 <= len(before) < 12

    assert main(["run", "--recipe", recipe, "--select", "search_trees"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in trees.glob("*.parquet")}
    assert len(after) == 12
    assert all(after[name] == stamp for name, stamp in before.items()), "a finished tree was searched again"
    per_problem = Warehouse(store).query(
        "SELECT problem_id, count(*) FILTER (WHERE node_id = 0) AS roots FROM tree_nodes GROUP BY 1")
    assert per_problem.height == 12 and set(per_problem["roots"].to_list()) == {1}


@pytest.mark.slow
def test_truncated_artifacts_are_reported_and_rebuilt(tmp_path, capsys):
    recipe = _recipe(tmp_path, n_problems=4, parallel_trees=4)
    assert main(["run", "--recipe", recipe, "--select", "problems,base_model,search_trees",
                 "--partition", "synthetic_train"]) == 0
    store = ArtifactStore.from_env()
    problems = table_file("problems", "synthetic_train")
    data = store.read_bytes(problems)
    store.write_bytes(problems, data[: len(data) // 3])
    tree = sorted(store.glob("tables/tree_nodes/synthetic_train/*.parquet"))[0]
    tree_data = store.read_bytes(tree)
    store.write_bytes(tree, tree_data[:100])
    capsys.readouterr()

    # the consumer fails with the file named
    assert main(["run", "--recipe", recipe, "--select", "search_trees"]) == 1
    assert "tables/problems/synthetic_train.parquet" in capsys.readouterr().out
    # materializing the producer again rebuilds it; the truncated tree is detected and searched again
    assert main(["run", "--recipe", recipe, "--select", "problems,search_trees", "--partition", "synthetic_train"]) == 0
    assert store.read_parquet(problems).height == 20  # every row of the source (tiny: n_train 20); the limit (4) applies downstream
    assert store.read_parquet(tree)["problem_id"].n_unique() == 1
    assert Warehouse(store).query("SELECT count(DISTINCT problem_id) AS n FROM tree_nodes")["n"][0] == 4


@pytest.mark.slow
def test_kill_during_sft_resumes_from_the_last_checkpoint(tmp_path):
    import dagster as dg

    text = TINY.read_text().replace("sft: {learning_rate: 1.0e-3, epochs: 1,", "sft: {learning_rate: 1.0e-3, epochs: 40,")
    recipe = tmp_path / "sft_faults.yaml"
    recipe.write_text(text)
    assert main(["run", "--recipe", str(recipe), "--select", "problems,base_model,search_trees,search_traces,cot_corpus",
                 "--partition", "synthetic_train"]) == 0
    store = ArtifactStore.from_env()
    work = Path(store.path("work/sft"))

    proc = _astro("run", "--recipe", str(recipe), "--select", "sft_model")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(work.glob("run-*/checkpoints/checkpoint-*/trainer_state.json"))) < 2:
        assert proc.poll() is None, "SFT finished before it could be killed; make it longer"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not store.exists("models/sft/.complete")

    assert main(["run", "--recipe", str(recipe), "--select", "sft_model"]) == 0
    meta = dg.DagsterInstance.get().fetch_materializations(dg.AssetKey("sft_model"), limit=1).records[0]
    assert meta.asset_materialization.metadata["resumed_from_step"].value > 0
    steps = Warehouse(store).query("SELECT step, count(*) AS n FROM train_metrics WHERE stage = 'sft' AND name = 'loss' "
                                   "GROUP BY step ORDER BY step")
    assert steps["n"].max() == 1, "a step was recorded twice"
    assert steps["step"].to_list() == list(range(1, steps.height + 1)), "a step was lost"
