"""The evaluation SQL files on small frames, against numbers worked out by hand (in the comments)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from astro_pipeline.evaluate.scoring import GENERATIONS_SCHEMA, SCORES_SCHEMA
from astro_pipeline.evaluate.sqlfiles import run_sql_file
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse, publish


def scores_frame(rows: list[dict]) -> pl.DataFrame:
    defaults = {"backtracks_counted": True, "created_at": "2026-01-02T00:00:00Z", "n_problems": 10, "n_samples": 4, "k": 4}
    return pl.DataFrame([{**{c: None for c in SCORES_SCHEMA}, **defaults, **r} for r in rows], schema=SCORES_SCHEMA)


def generations_frame(rows: list[tuple]) -> pl.DataFrame:
    """rows: (benchmark, stage, sample, n_tokens, finish_reason, n_backtracks, correct)."""
    out = []
    for i, (bench, stage, sample, tokens, finish, backtracks, correct) in enumerate(rows):
        out.append({
            **{c: None for c in GENERATIONS_SCHEMA}, "benchmark": bench, "stage": stage, "problem_id": f"q{i}",
            "sample": sample, "greedy": sample == -1, "n_tokens": tokens, "finish_reason": finish,
            "n_backtracks": backtracks, "n_reflections": 0, "correct": correct, "completion": "",
        })
    return pl.DataFrame(out, schema=GENERATIONS_SCHEMA)


def test_leaderboard_latest_run_order_and_text():
    scores = scores_frame([
        {"benchmark": "math500", "stage": "sft", "pass_at_1": 0.30, "stderr": 0.01, "created_at": "2026-01-01T00:00:00Z"},
        {"benchmark": "math500", "stage": "sft", "pass_at_1": 5 / 12, "stderr": math.sqrt(7) / 12, "maj_at_k": 1 / 3,
         "greedy": 2 / 3, "mean_tokens": 123.456, "truncated_share": 0.25},
        {"benchmark": "math500", "stage": "base", "pass_at_1": 0.1, "stderr": 0.05},
        {"benchmark": "aime2024", "stage": "rl", "n_problems": 1, "pass_at_1": 1.0, "stderr": None},
    ])
    board = run_sql_file("eval_leaderboard", eval_scores=scores)
    assert board.select("benchmark", "stage").rows() == [("aime2024", "rl"), ("math500", "base"), ("math500", "sft")]
    sft = board.row(2, named=True)
    # the newer sft run: 100 * 5/12 = 41.67 -> 41.7; 100 * sqrt(7)/12 = 22.05 -> 22.0 (older run: 30.0 ignored)
    assert (sft["pass_at_1_pct"], sft["stderr_pct"], sft["pass_at_1_text"]) == (41.7, 22.0, "41.7 ± 22.0")
    # maj 100/3 = 33.3; greedy 200/3 = 66.7; tokens 123.5; truncated 25.0
    assert (sft["maj_at_k_pct"], sft["greedy_pct"], sft["mean_tokens"], sft["truncated_pct"]) == (33.3, 66.7, 123.5, 25.0)
    aime = board.row(0, named=True)
    assert aime["pass_at_1_text"] == "100.0" and aime["stderr_pct"] is None  # one problem: no error bar


GENS = generations_frame([
    # math500 / base: backtracks x = [0,0,1,2,5,9], correct y = [0,0,1,1,1,0]; plus a greedy row (left out)
    ("math500", "base", 0, 10, "stop", 0, False),
    ("math500", "base", 1, 20, "stop", 0, False),
    ("math500", "base", 2, 30, "stop", 1, True),
    ("math500", "base", 3, 100, "length", 2, True),
    ("math500", "base", 0, 40, "stop", 5, True),
    ("math500", "base", 1, 60, "stop", 9, False),
    ("math500", "base", -1, 1000, "length", 3, True),
    # math500 / sft: x = [0,1,1,3], y = [1,1,0,1]
    ("math500", "sft", 0, 5, "stop", 0, True),
    ("math500", "sft", 1, 15, "stop", 1, True),
    ("math500", "sft", 2, 5, "stop", 1, False),
    ("math500", "sft", 3, 15, "stop", 3, True),
    # aime2024 / base: no backtracks at all (no variance)
    ("aime2024", "base", 0, 50, "stop", 0, True),
    ("aime2024", "base", 1, 70, "stop", 0, False),
])


def test_length_by_stage():
    out = run_sql_file("length_by_stage", eval_generations=GENS)
    rows = {(r["benchmark"], r["stage"]): r for r in out.iter_rows(named=True)}
    assert list(rows) == [("aime2024", "base"), ("math500", "base"), ("math500", "sft"), ("all", "base"), ("all", "sft")]
    m = rows[("math500", "base")]
    # tokens [10,20,30,100,40,60] (greedy 1000 excluded): mean 260/6 = 43.33; sorted 10,20,30,40,60,100
    # p50 at position 2.5 -> (30+40)/2 = 35; p90 at position 4.5 -> 60 + 0.5*40 = 80; 1 of 6 cut
    assert m["n_completions"] == 6 and m["mean_tokens"] == pytest.approx(260 / 6)
    assert (m["p50_tokens"], m["p90_tokens"], m["max_tokens"]) == (pytest.approx(35), pytest.approx(80), 100)
    assert m["truncated_share"] == pytest.approx(1 / 6)
    a = rows[("all", "base")]
    # pooled with aime [50,70]: 8 values, sum 380 -> 47.5; sorted 10,20,30,40,50,60,70,100
    # p50 at 3.5 -> 45; p90 at 6.3 -> 70 + 0.3*30 = 79; 1 of 8 cut
    assert a["n_completions"] == 8 and a["mean_tokens"] == pytest.approx(47.5)
    assert (a["p50_tokens"], a["p90_tokens"]) == (pytest.approx(45), pytest.approx(79))
    assert a["truncated_share"] == pytest.approx(1 / 8)
    s = rows[("math500", "sft")]
    # [5,15,5,15]: mean 10, p50 at 1.5 -> 10, p90 at 2.7 -> 15
    assert (s["mean_tokens"], s["p50_tokens"], s["p90_tokens"]) == (10, 10, 15)


def test_backtracks_vs_accuracy():
    scores = scores_frame([
        # across stages: x = mean_backtracks [1,2,4], y = pass@1 [0.2,0.4,0.5]
        {"benchmark": "math500", "stage": "base", "mean_backtracks": 1.0, "pass_at_1": 0.2},
        {"benchmark": "math500", "stage": "sft", "mean_backtracks": 2.0, "pass_at_1": 0.4},
        {"benchmark": "math500", "stage": "rl", "mean_backtracks": 4.0, "pass_at_1": 0.5},
        # an older rl run (ignored: the latest run counts) and a stage without counting (ignored)
        {"benchmark": "math500", "stage": "rl", "mean_backtracks": 0.0, "pass_at_1": 0.9, "created_at": "2025-01-01"},
        {"benchmark": "math500", "stage": "direct_sft", "mean_backtracks": 0.0, "pass_at_1": 0.9, "backtracks_counted": False},
    ])
    out = run_sql_file("backtracks_vs_accuracy", eval_generations=GENS, eval_scores=scores)
    key = [(r["benchmark"], r["stage"], r["backtracks_bucket"]) for r in out.iter_rows(named=True)]
    assert key == [
        ("aime2024", "base", "0"),
        ("math500", "base", "0"), ("math500", "base", "1"), ("math500", "base", "2"),
        ("math500", "base", "4-7"), ("math500", "base", "8+"),
        ("math500", "sft", "0"), ("math500", "sft", "1"), ("math500", "sft", "3"),
    ]
    rows = {k: r for k, r in zip(key, out.iter_rows(named=True))}
    # math500/base buckets: "0" = 2 completions, both wrong; "8+" = one (9 backtracks), wrong
    assert (rows[("math500", "base", "0")]["n_completions"], rows[("math500", "base", "0")]["accuracy"]) == (2, 0.0)
    assert rows[("math500", "base", "4-7")]["accuracy"] == 1.0 and rows[("math500", "base", "8+")]["accuracy"] == 0.0
    # sft bucket "1": one right, one wrong -> 0.5
    assert rows[("math500", "sft", "1")]["accuracy"] == 0.5
    # per sample, base: sxy = sum(xy) - n*mx*my = 8 - 6*(17/6)*(1/2) = -0.5; sxx = 111 - 17^2/6 = 377/6;
    # syy = 3 - 9/6 = 3/2; r = -0.5 / sqrt(377/6 * 3/2) = -1/sqrt(377) = -0.0515
    assert rows[("math500", "base", "1")]["r_per_sample"] == pytest.approx(-1 / math.sqrt(377))
    # per sample, sft: sxy = 4 - 4*(5/4)*(3/4) = 1/4; sxx = 11 - 25/4 = 19/4; syy = 3 - 9/4 = 3/4
    # r = (1/4) / sqrt(57/16) = 1/sqrt(57) = 0.1325
    assert rows[("math500", "sft", "3")]["r_per_sample"] == pytest.approx(1 / math.sqrt(57))
    assert rows[("aime2024", "base", "0")]["r_per_sample"] is None  # no variance -> undefined, not NaN
    # across stages: sxy = 3.0 - 3*(7/3)*(1.1/3) = 13/30; sxx = 21 - 49/3 = 14/3; syy = 0.45 - 1.21/3 = 7/150
    # r = (13/30) / sqrt(14/3 * 7/150) = (13/30) / (7/15) = 13/14 = 0.9286, over 3 stages
    m = rows[("math500", "base", "0")]
    assert m["r_across_stages"] == pytest.approx(13 / 14) and m["n_stages"] == 3
    assert rows[("aime2024", "base", "0")]["r_across_stages"] is None  # aime has no scores rows


def test_sql_files_run_on_the_warehouse_views(tmp_path):
    """The same files through the real warehouse: Parquet written by the store, DuckDB views."""
    wh = Warehouse(ArtifactStore(str(tmp_path / "home")))
    publish(wh, "eval_generations", "math500__base", GENS)
    publish(wh, "eval_scores", "math500__base", scores_frame([
        {"benchmark": "math500", "stage": "base", "pass_at_1": 0.5, "stderr": 0.1, "mean_backtracks": 1.0},
    ]))
    board = wh.run_file("eval_leaderboard.sql")
    assert board["pass_at_1_text"].to_list() == ["50.0 ± 10.0"]
    assert wh.run_file("length_by_stage.sql").height == 5
    assert wh.run_file("backtracks_vs_accuracy.sql").height == 9


def _per_problem_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """sft on bench: 4 problems x 2 samples (backtracks, correct), plus a greedy row that must not count;
    base: backtracks not counted."""
    samples = {"p1": [(0, False), (2, True)], "p2": [(0, False), (0, False)], "p3": [(2, True), (2, True)],
               "p4": [(1, False), (0, False)]}
    rows = []
    for pid, pairs in samples.items():
        for s, (bt, ok) in enumerate(pairs):
            rows.append({"stage": "sft", "problem_id": pid, "sample": s, "n_backtracks": bt, "correct": ok,
                         "finish_reason": "length" if pid == "p2" else "stop"})
    rows.append({"stage": "sft", "problem_id": "p1", "sample": -1, "n_backtracks": 5, "correct": True, "finish_reason": "stop"})
    rows += [{"stage": "base", "problem_id": p, "sample": 0, "n_backtracks": 0, "correct": True, "finish_reason": "stop"}
             for p in samples]
    gens = pl.DataFrame([{**{c: None for c in GENERATIONS_SCHEMA}, "benchmark": "bench", "n_tokens": 10, "completion": "",
                          **r} for r in rows], schema=GENERATIONS_SCHEMA)
    scores = scores_frame([{"benchmark": "bench", "stage": "sft", "pass_at_1": 0.375, "mean_backtracks": 0.875},
                           {"benchmark": "bench", "stage": "base", "pass_at_1": 1.0, "backtracks_counted": False}])
    return gens, scores


def test_backtracks_vs_accuracy_per_problem():
    gens, scores = _per_problem_frames()
    out = run_sql_file("backtracks_vs_accuracy", eval_generations=gens, eval_scores=scores)
    sft = out.filter(pl.col("stage") == "sft").row(0, named=True)
    # per problem (mean backtracks, share correct): p1 (1, .5), p2 (0, 0), p3 (2, 1), p4 (.5, 0);
    # mx = .875, my = .375: sxy = 1.1875, sxx = 2.1875, syy = .6875
    assert sft["r_per_problem"] == pytest.approx(1.1875 / math.sqrt(2.1875 * 0.6875)) and sft["n_problems"] == 4
    assert out.filter(pl.col("stage") == "base")["r_per_problem"].to_list() == [None]  # no variance


def test_stage_behaviour_shares():
    gens, scores = _per_problem_frames()
    out = {r["stage"]: r for r in run_sql_file("stage_behaviour", eval_generations=gens, eval_scores=scores).iter_rows(named=True)}
    assert list(out) == ["base", "sft"]
    sft = out["sft"]  # 8 sampled completions (the greedy one is left out): p2's two were cut, 4 backtrack
    assert (sft["n_completions"], sft["truncated_share"], sft["backtrack_share"]) == (8, 0.25, 0.5)
    assert sft["mean_backtracks"] == pytest.approx(7 / 8)
    assert out["base"]["backtrack_share"] is None and out["base"]["mean_backtracks"] is None  # not counted
