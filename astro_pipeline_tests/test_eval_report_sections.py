"""The report's comparison and behaviour sections: same rows as the paper, sample sizes, footnotes,
truncation warnings, the per-problem correlation, a quoted reflection, tree pictures; and a report
that still renders when stages are missing."""

from __future__ import annotations

import re

import polars as pl

from astro_pipeline.evaluate import score_completions
from astro_pipeline.evaluate.report import build_report, latest_runs
from astro_pipeline.evaluate.report_behaviour import describe_r
from astro_pipeline_tests.test_eval_report import RL_METRICS, _counter, _stage_frames, _verifier
from astro_pipeline_tests.toy_tree import trace_frame, tree_frame

PAPER_ROWS = ["Llama-3.1-70B-Instruct", "Direct-SFT", "ASTRO-SFT", "Direct-RL", "ASTRO-RL"]


def _table_rows(md: str, heading: str) -> list[list[str]]:
    section = md.split(f"## {heading}")[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")][1:]


def test_both_tables_have_the_paper_rows_and_ours_say_their_sample_size(tmp_path):
    scores, gens = _stage_frames()
    res = build_report(scores, gens, RL_METRICS, tmp_path, benchmarks=("synthetic_test", "math500"),
                       stages=("base", "sft", "rl"))
    paper, ours = _table_rows(res.markdown, "The paper's results"), _table_rows(res.markdown, "This run, the same rows")
    assert [r[0] for r in paper] == PAPER_ROWS and [r[0] for r in ours] == PAPER_ROWS
    assert [r[1] for r in ours] == ["base", "direct_sft", "sft", "direct_rl", "rl"]
    base = ours[0]  # synthetic_test first (the recipe's order), then math500, a slice of 6 of its 500 problems
    assert base[2:] == ["25.0 ± 0.0 (6 x 4)", "25%", "0%", "25.0 ± 0.0 (6 of 500 x 4)", "25%", "0%"]
    assert ours[4][2:5] == ["75.0 ± 0.0 (6 x 4)", "0%", "75%"]  # ASTRO-RL backtracks in 3 of 4 samples
    assert ours[1][2] == "— [1]" and "[1] stage not built by this recipe (add it to evaluate.stages)." in res.markdown
    assert "AMC 2023, AIME 2024: not evaluated in this run" in res.markdown
    # without the recipe's stages an empty cell cannot blame the recipe
    res = build_report(scores, gens, RL_METRICS, tmp_path / "nostages")
    assert "no score yet" in res.markdown and "not built" not in res.markdown


def test_a_stage_cut_too_often_gets_a_warning_line(tmp_path):
    scores, gens = _stage_frames()
    scores = scores.with_columns(pl.lit(48, pl.Int64).alias("max_new_tokens"))
    res = build_report(scores, gens, RL_METRICS, tmp_path)
    assert res.warnings == [line for line in res.markdown.splitlines() if line.startswith("Warning:")]
    assert len(res.warnings) == 2 and all(w.startswith("Warning: base on ") for w in res.warnings)
    assert "25% of sampled completions were cut at the 48-token budget (over 5%)" in res.warnings[0]


def _correlated_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """sft: problem i solves (i % 4) + 1 of 4 samples, and backtracks once in every solved sample, so
    the problems it backtracks on most are those it solves most: r per problem = +1."""
    problems = pl.DataFrame({"problem_id": [f"q{i}" for i in range(6)], "problem": ["?"] * 6,
                             "answer": [str(i) for i in range(6)]})
    rows = []
    for i in range(6):
        for s in range(4):
            right = s <= i % 4
            rows.append({"problem_id": f"q{i}", "sample": s, "n_tokens": 20, "finish_reason": "stop",
                         "completion": (" Wait, let us go back." if right else "") + f" \\boxed{{{i if right else 9}}}"})
    r = score_completions(problems, pl.DataFrame(rows), _verifier, benchmark="synthetic_test", stage="sft",
                          model_path="/m/sft", reflection_counter=_counter)
    return r.scores, r.generations


def test_the_per_problem_correlation_is_given_with_its_sign_and_size(tmp_path):
    scores, gens = _correlated_frames()
    res = build_report(scores, gens, pl.DataFrame(), tmp_path)
    rows = _table_rows(res.markdown, "Do backtracks go with correct answers?")
    assert rows == [["synthetic_test", "sft (ASTRO-SFT)", "+1.00", "positive, strong", "6", "+1.00"]]
    assert describe_r(-0.2) == "negative, weak" and describe_r(0.35) == "positive, moderate"
    assert describe_r(0.05) == "positive, negligible" and describe_r(None) == "undefined (no variance)"


def test_a_reflection_is_quoted_from_an_astro_stage(tmp_path):
    scores, gens = _stage_frames()
    res = build_report(scores, gens, RL_METRICS, tmp_path)
    section = res.markdown.split("## A reflection in the model's own words")[1].split("\n## ")[0]
    assert section.lstrip().startswith("ASTRO-SFT on ") and "1 backtrack(s)" in section
    assert "```\n Wait, let us go back. \\boxed{0}\n```" in section
    none = build_report(scores, gens.filter(pl.col("stage") == "base"), RL_METRICS, tmp_path / "none")
    assert "No sampled ASTRO-SFT or ASTRO-RL completion has a backtrack the detector counts." in none.markdown


def test_the_report_draws_sample_trees_with_their_traces(tmp_path):
    scores, gens = _stage_frames()
    res = build_report(scores, gens, RL_METRICS, tmp_path, tree_nodes=tree_frame(), traces=trace_frame())
    assert [p.name for p in res.tree_paths] == ["tree_toy_p1.svg"]
    assert res.tree_paths[0].read_text().startswith("<svg")
    assert "![p1: 6 nodes, trace 'search' with 2 backtrack(s)](plots/tree_toy_p1.svg)" in res.markdown
    assert "data:image/svg+xml;base64," in res.html_path.read_text()
    # the copy for the Dagster UI has every image inline: a relative link there is a broken image
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", res.markdown_embedded)
    assert len(links) == len(res.plot_paths) + 1 and all(link.startswith("data:image/") for link in links)
    assert "No search trees in the warehouse." in build_report(scores, gens, RL_METRICS, tmp_path / "t").markdown


def test_the_report_renders_with_only_the_base_stage(tmp_path):
    scores, gens = _stage_frames()
    res = build_report(scores.filter(pl.col("stage") == "base"), gens.filter(pl.col("stage") == "base"),
                       pl.DataFrame(), tmp_path, stages=("base", "sft", "rl"))
    ours = _table_rows(res.markdown, "This run, the same rows")
    assert [r[0] for r in ours] == PAPER_ROWS and ours[0][2].startswith("25.0 ± 0.0")
    assert ours[1][2] == ours[3][2] == "— [1]" and ours[2][2] == ours[4][2] == "— [2]"  # not built / not scored
    assert "[1] stage not built by this recipe" in res.markdown and "[2] no score yet" in res.markdown
    assert res.html_path.is_file() and "## Do backtracks go with correct answers?" in res.markdown


def test_curves_come_from_each_stage_latest_run():
    old = RL_METRICS.with_columns(pl.lit("r-old").alias("run"), pl.lit("2026-01-01T00:00:00Z").alias("recorded_at"))
    new = RL_METRICS.filter(pl.col("stage") == "rl").with_columns(
        pl.lit("r-new").alias("run"), pl.lit("2026-02-01T00:00:00Z").alias("recorded_at"), pl.col("value") * 2)
    kept = latest_runs(pl.concat([old, new]))
    assert set(kept.filter(pl.col("stage") == "rl")["run"]) == {"r-new"}
    assert set(kept.filter(pl.col("stage") == "sft")["run"]) == {"r-old"}  # sft was not retrained


def test_the_quoted_reflection_comes_from_the_benchmark_the_stage_does_best():
    import polars as pl

    from astro_pipeline.evaluate.samples import first_backtracking

    rows = [  # a lucky right answer on math500 (1 of 4 right) and a right one on synthetic_test (3 of 4)
        {"benchmark": "math500", "stage": "sft", "problem_id": "a", "sample": 0, "correct": True, "n_backtracks": 1},
        *({"benchmark": "math500", "stage": "sft", "problem_id": "a", "sample": i, "correct": False, "n_backtracks": 0}
          for i in (1, 2, 3)),
        *({"benchmark": "synthetic_test", "stage": "sft", "problem_id": "b", "sample": i, "correct": True,
           "n_backtracks": 2} for i in (0, 1, 2)),
        {"benchmark": "synthetic_test", "stage": "sft", "problem_id": "b", "sample": 3, "correct": False, "n_backtracks": 1},
    ]
    row = first_backtracking(pl.DataFrame(rows), ("sft", "rl"))
    assert (row["benchmark"], row["correct"], row["n_backtracks"]) == ("synthetic_test", True, 2)
    assert first_backtracking(pl.DataFrame(rows).with_columns(pl.lit(0).alias("n_backtracks")), ("sft",)) is None
