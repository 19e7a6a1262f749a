"""The CLI in a 120-column terminal: astro sql output and errors, astro show, recipe --explain, datasets list."""

from __future__ import annotations

import polars as pl
import pytest
import yaml

from astro_pipeline.cli import main
from astro_pipeline.evaluate import score_completions
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, publish, table_file
from astro_pipeline.warehouse.format import render
from astro_pipeline_tests.test_eval_sql import scores_frame
from astro_pipeline_tests.toy_tree import trace_frame, tree_frame

WIDTH = 120


@pytest.fixture(autouse=True)
def _columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").splitlines()


def test_render_fits_the_width_and_rounds_floats():
    df = pl.DataFrame({"stage": ["base", "sft"], "pass_at_1": [0.5552, 0.1], "stderr": [0.028197526531817733, None]})
    out = render(df, width=WIDTH)
    assert _lines(out)[0].split() == ["stage", "pass_at_1", "stderr"]
    assert _lines(out)[2].split() == ["base", "0.5552", "0.0282"] and out.endswith("(2 rows)")
    wide = pl.DataFrame({f"column_{i}": [f"value {i} " * 20] * 6 for i in range(30)})
    for fmt in ("table", "records"):
        lines = _lines(render(wide, fmt, width=WIDTH))
        assert max(len(line) for line in lines) <= WIDTH
        assert "values cut to fit 120 columns; --format csv or json prints everything" in lines[-1]
    # many rows of a wide table wrap into column groups (far fewer lines than one block per row)
    assert len(_lines(render(wide, "table", width=WIDTH))) < len(_lines(render(wide, "records", width=WIDTH)))
    many = pl.DataFrame({"n": list(range(100))})
    assert _lines(render(many, width=WIDTH))[-1] == "(40 of 100 rows shown; --format csv or json prints everything)"
    md = render(pl.DataFrame({"a": ["x|y"], "b": [[1, 2]]}), "markdown")
    assert md.splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | [1, 2] |"]


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Warehouse:
    monkeypatch.setenv("ASTRO_HOME", str(tmp_path / "home"))
    wh = Warehouse(ArtifactStore.from_env())
    publish(wh, "eval_scores", "bench", scores_frame([
        {"benchmark": "bench", "stage": s, "pass_at_1": 0.1 * i, "stderr": 0.028197526531817733,
         "settings_json": "{" + '"x": 1, ' * 40 + "}", "model_path": f"/models/{s}"}
        for i, s in enumerate(("base", "direct_sft", "sft", "direct_rl", "rl", "other"))]))
    return wh


def test_astro_sql_on_a_wide_table_fits_the_terminal(warehouse, capsys):
    assert main(["sql", "SELECT * FROM eval_scores"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert max(len(line) for line in lines) <= WIDTH and len(lines) <= 60  # 6 rows x 29 columns
    assert any("0.0282" in line for line in lines) and not any("0.028197" in line for line in lines)
    assert main(["sql", "SELECT stage, pass_at_1 FROM eval_scores ORDER BY stage", "--format", "markdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["| stage | pass_at_1 |", "| --- | --- |", "| base | 0 |"]


def test_astro_sql_errors_are_one_line_with_duckdbs_hint(warehouse, capsys):
    assert main(["sql", "SELEC 1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("astro sql: Parser Error: syntax error at or near \"SELEC\"")
    assert main(["sql", "SELECT * FROM eval_score"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean \"eval_scores\"" in err
    assert err.rstrip().endswith("(tables in this warehouse: eval_scores)")


def test_without_a_warehouse_astro_sql_says_so_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ASTRO_HOME")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for argv in (["sql", "SELECT * FROM eval_scores"], ["show", "p1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no warehouse at" in err and "ASTRO_HOME is not set" in err
    assert list(work.iterdir()) == []  # no .astro folder, no empty warehouse.duckdb
    monkeypatch.setenv("ASTRO_HOME", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert main(["sql", "SELECT 1"]) == 2 and "ASTRO_HOME=" in capsys.readouterr().err
    assert list((tmp_path / "empty").iterdir()) == []


def _searched_and_evaluated(wh: Warehouse) -> None:
    """A dataset 'toy' that was both searched and evaluated: problem p1's tree, traces, and every stage's answers."""
    problems = pl.DataFrame({"dataset": ["toy"], "problem_id": ["p1"], "problem": ["Start with 3. A: Add 5. B: Double it."],
                             "answer": ["16"]})
    publish(wh, "problems", "toy", problems)
    wh.store.write_parquet(tree_frame(), table_file("tree_nodes", "p1", group="toy"))
    publish(wh, "traces", "toy", trace_frame())
    for stage, text in (("base", "A: 3 + 5 = 9\n\nB: 9 * 2 = 18. \\boxed{18}"),
                        ("rl", "A: 3 + 5 = 9\n\nB: 9 * 2 = 18. The answer is \\boxed{18}\n\nWait, is the solution "
                               "right so far? Let's go back to where we computed 3 + 5.\n\nA: 3 + 5 = 8\n\nB: \\boxed{16}")):
        done = score_completions(problems, pl.DataFrame({"problem_id": ["p1", "p1"], "sample": [0, -1],
                                                         "completion": [text, text]}),
                                 FakeVerifier(), benchmark="toy", stage=stage,
                                 model_path=f"/m/{stage}", reflection_counter=lambda t: (t.count("Wait"), t.count("go back")))
        publish(wh, "eval_generations", f"toy__{stage}", done.generations)
    wh.refresh()


def test_astro_show_prints_the_tree_traces_and_every_stage_answer(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASTRO_HOME", str(tmp_path / "home"))
    _searched_and_evaluated(Warehouse(ArtifactStore.from_env()))
    assert main(["show", "p1"]) == 0
    out = capsys.readouterr().out
    lines = _lines(out)
    assert max(len(line) for line in lines) <= WIDTH
    assert lines[0] == "PROBLEM p1 (dataset toy)" and "  reference answer: 16" in lines
    tree = out.split("SEARCH TREE\n")[1].split("\n\n")[0]
    assert "correct 16" in tree and "wrong 19" in tree and "backtrack 2: from wrong terminal 4" in tree
    assert "search: 2 backtrack(s) (1 restart(s)); nodes 0 2 5 ↩0 1 4 ↩1 3" in out
    evaluation = out.split("EVALUATION (2 stages)\n")[1]
    assert evaluation.index("  base: 0 of 1 sampled") < evaluation.index("  rl: 1 of 1 sampled")
    assert "    sample 0: correct, answer 16, 1 backtrack(s)" in evaluation and "    greedy: wrong, answer 18" in evaluation
    assert main(["show", "nope"]) == 2 and "ids look like: p1 (toy)" in capsys.readouterr().err


def test_astro_recipe_explain_gives_every_fields_help_as_yaml(capsys):
    from astro_pipeline.recipe import SECTIONS, load_recipe

    assert main(["recipe", "demo", "--explain"]) == 0
    out = capsys.readouterr().out
    recipe = load_recipe("demo")
    assert yaml.safe_load(out) == recipe.resolved()  # still the resolved recipe, as YAML
    import dataclasses
    text = " ".join(out.split())  # help texts are wrapped over comment lines
    for section in SECTIONS:
        for f in dataclasses.fields(recipe.section(section)):
            assert " ".join(f.metadata["help"].split()[:6]) in text.replace(" # ", " "), (section, f.name)
    assert "(set)" in out and max(len(line) for line in out.splitlines() if line.lstrip().startswith("#")) <= WIDTH
    assert main(["recipe", "demo"]) == 0
    plain = capsys.readouterr().out
    assert yaml.safe_load(plain) == recipe.resolved() and "#" not in plain.split("\n", 1)[1].split(":")[0]
    assert len(plain.splitlines()) < len(out.splitlines())


def test_astro_datasets_list_is_a_table(capsys):
    assert main(["datasets", "list"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert lines[0].split()[:3] == ["name", "kind", "location"] and max(len(line) for line in lines) <= WIDTH
    assert any(line.startswith("synthetic_train ") and "synthetic" in line for line in lines)
    assert main(["datasets", "list", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| name | kind | location |")


@pytest.mark.slow
def test_astro_show_on_the_tiny_runs_problems(in_tiny_run, capsys):
    """On a real run: a searched problem shows its tree, traces and CoT; a benchmark problem every stage."""
    wh = Warehouse(ArtifactStore.from_env())
    searched = wh.query("SELECT problem_id FROM traces WHERE n_backtracks > 0 ORDER BY problem_id LIMIT 1")["problem_id"][0]
    assert main(["show", searched]) == 0
    out = capsys.readouterr().out
    assert "N visits, Q value, P prior; #k: trace order" in out and "backtrack 1: from wrong terminal" in out
    assert "TRACES (" in out and "search: " in out and "COT EXAMPLES (" in out and "[search, " in out
    assert main(["show", "synthetic_test_00000"]) == 0
    out = capsys.readouterr().out
    assert "none: synthetic_test was not searched" in out
    for stage in ("base", "sft", "rl"):
        assert f"\n  {stage}: " in out and "sampled completions correct" in out
    assert max(len(line) for line in out.splitlines()) <= WIDTH
