"""What ``astro run`` prints: a short INFO log (DEBUG with --verbose), then steps, leaderboard, report path.

The line count of the real demo (`make run`, about 15 minutes) cannot be measured in the suite; the
policy that bounds it is: no Dagster framework events below WARNING, progress of long loops at most
once per ASTRO_PROGRESS_S seconds (none for short steps), one result line per evaluation, known
harmless warnings dropped, and a closing summary. Here it is checked on the tiny pipeline's output.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from astro_pipeline.cli import main
from astro_pipeline.runlog import Throttle, quiet_known_warnings

FRAMEWORK_EVENTS = ("STEP_START", "STEP_SUCCESS", "RESOURCE_INIT", "LOGS_CAPTURED", "ENGINE_EVENT", "RUN_START",
                    "STEP_OUTPUT", "ASSET_MATERIALIZATION", "HANDLED_OUTPUT")


def test_throttle_passes_one_message_per_interval_and_none_before_the_first():
    now = [0.0]
    seen: list[str] = []
    log = Throttle(seen.append, every_s=30, clock=lambda: now[0])
    for t in range(0, 100, 5):  # a message every 5 s for 95 s
        now[0] = float(t)
        log(f"at {t}")
    assert seen == ["at 30", "at 60", "at 90"]
    short: list[str] = []
    quick = Throttle(short.append, every_s=30, clock=lambda: 10.0)
    quick("done in 10 s")
    assert short == []


def test_known_warnings_are_dropped_and_others_kept():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn("`past_key_values` is deprecated and will be removed in version 5.40.0", FutureWarning)
        warnings.warn("something new went wrong", UserWarning)
    assert [str(w.message) for w in caught] == ["something new went wrong"]


@pytest.mark.slow
def test_the_tiny_runs_output_is_short_and_ends_with_the_leaderboard_and_report(tiny_run):
    lines = tiny_run.output.rstrip("\n").splitlines()
    assert len(lines) < 60, tiny_run.output  # the demo must stay under 150; the tiny run has fewer stages
    assert not [line for line in lines if " DEBUG " in line or any(e in line for e in FRAMEWORK_EVENTS)]
    assert not [line for line in lines if "past_key_values" in line or "is_gradient_checkpointing" in line]
    assert not [line for line in lines if "Loading weights" in line or "mtime may not be reliable" in line]
    # each evaluation partition reports its score in one line
    assert sum("pass@1" in line and line.split()[1].startswith("eval_scores[") for line in lines) == 3
    # then one line per step, the invocation's tag, the leaderboard, the report
    assert any(line.startswith("ok      search_trees[synthetic_train]") for line in lines)
    count = next(i for i, line in enumerate(lines) if " steps ok in " in line)
    assert lines[count].startswith("12 of 12 steps ok in 7 Dagster runs, tagged astro/invocation=")
    invocation = lines[count].rsplit("=", 1)[1]
    assert lines[count + 1] == ("these runs in the UI (make ui): "
                                f"http://127.0.0.1:3000/runs?q%5B0%5D=tag%3Aastro/invocation%3D{invocation}")
    grid = lines.index("pass@1 ± stderr (%), latest run per benchmark and stage:")
    assert lines[grid + 1].split() == ["benchmark", "problems", "x", "samples", "base", "sft", "rl"]
    assert lines[grid + 2].startswith("synthetic_test  6 x 2")
    assert lines[-1] == f"report: {Path(tiny_run.astro_home) / 'report' / 'report.html'}"


def test_verbose_shows_debug_and_dagster_events(tmp_path, capfd):
    recipe = tmp_path / "v.yaml"
    recipe.write_text("name: v\ndatasets: {train: [synthetic_train], benchmarks: [synthetic_test]}\n"
                      "synthetic: {n_train: 20, n_test: 5}\n")
    assert main(["run", "--recipe", str(recipe), "--select", "problems"]) == 0
    quiet = capfd.readouterr()
    assert "STEP_START" not in quiet.err and "DEBUG" not in quiet.err
    assert main(["run", "--recipe", str(recipe), "--select", "problems", "--verbose"]) == 0
    loud = capfd.readouterr()
    assert "DEBUG problems[synthetic_train]: STEP_START" in loud.err
