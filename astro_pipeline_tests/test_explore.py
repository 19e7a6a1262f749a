"""The tree explorer (text and SVG), the sample-tree choice and the inline training curves."""

from __future__ import annotations

import base64
import math
import xml.etree.ElementTree as ET

import polars as pl

from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.explore import build_view, pick_trees, tree_svg, tree_text
from astro_pipeline.explore.pictures import sample_pictures
from astro_pipeline.explore.sparkline import MAX_CHARS, curve_markdown, stage_curves
from astro_pipeline.explore.tree_view import best_trace
from astro_pipeline_tests.toy_tree import trace_frame, tree_frame

SVG = "{http://www.w3.org/2000/svg}"


def _view(**extra):
    return build_view(tree_frame(**extra), best_trace(trace_frame(), "p1"))


def test_the_best_trace_is_the_one_with_most_backtracks():
    assert best_trace(trace_frame(), "p1")["kind"] == "search"
    assert best_trace(trace_frame(), "other") is None


def test_tree_text_shows_every_node_the_trace_order_and_the_backtracks():
    text = tree_text(_view(), width=90)
    lines = text.splitlines()
    assert all(len(line) <= 90 for line in lines)
    correct = next(line for line in lines if "\\boxed{16}" in line)
    assert "correct 16" in correct and correct.endswith("#6")  # the trace ends at the correct terminal
    assert "wrong 19" in next(line for line in lines if "\\boxed{19}" in line)
    assert lines[2].startswith("(problem)") and lines[3].startswith("├─ A: 3 + 5 = 8") and lines[-3].startswith("   └─")
    assert "backtrack 1: from wrong terminal 5, answer 19 back to the root: restart" in text
    assert "backtrack 2: from wrong terminal 4, answer 18 back to node 1 (A: 3 + 5 = 8)" in text


def test_tree_text_cuts_long_steps_to_the_width():
    nodes = tree_frame().with_columns(pl.when(pl.col("node_id") == 2).then(pl.lit("A: " + "x" * 300))
                                      .otherwise(pl.col("step")).alias("step"))
    lines = tree_text(build_view(nodes), width=60).splitlines()
    assert max(len(line) for line in lines) <= 60 and any("…" in line for line in lines)


def test_optional_search_columns_are_shown_when_present():
    view = _view(origin=["root", "expansion", "expansion", "rollout", "expansion", "expansion"],
                 n_copies=[1, 3, 1, 1, 1, 1])
    text = tree_text(view, width=120)
    assert "x3" in next(line for line in text.splitlines() if "3 + 5 = 8" in line)
    assert "rollout" in next(line for line in text.splitlines() if "\\boxed{16}" in line)
    # facts the search writes on the root row only are the tree's header
    root_only = [None] * 5
    view = _view(tree_iterations=[32, *root_only], stop_reason=["budget", *root_only])
    assert tree_text(view).splitlines()[0] == "search tree of p1: 6 nodes (tree_iterations 32, stop_reason budget)"
    assert "(tree_iterations 32, stop_reason budget)" in tree_svg(view)


def test_a_big_tree_is_cut_around_the_trace():
    rows = [{"dataset": "d", "problem_id": "big", "node_id": 0, "parent_id": None, "depth": 0, "step": "",
             "is_terminal": False, "answer": None, "correct": None, "visits": 100, "q_value": 0.1, "prior": 1.0}]
    for i in range(1, 61):  # 60 children of the root; node 61 under child 60 is the trace's end
        rows.append({**rows[0], "node_id": i, "parent_id": 0, "depth": 1, "step": f"A: {i}", "visits": i})
    rows.append({**rows[0], "node_id": 61, "parent_id": 60, "depth": 2, "step": "B: \\boxed{1}", "is_terminal": True,
                 "answer": "1", "correct": True, "visits": 1})
    trace = {"node_ids": [0, 60, 61], "backtrack_from": [], "backtrack_targets": [], "trace_id": "t", "kind": "direct",
             "correct_node_id": 61}
    view = build_view(pl.DataFrame(rows), trace, max_nodes=10)
    kept = {n.node_id for n in view.nodes}
    assert len(kept) == 10 and {0, 60, 61} <= kept
    root = view.nodes[0]
    assert root.hidden_children == 60 - 8  # 9 children of the root are shown (60 among them)
    assert "+52 hidden" in tree_text(view).splitlines()[2]


def test_tree_svg_draws_nodes_colours_badges_and_backtrack_arrows():
    svg = tree_svg(_view())
    root = ET.fromstring(svg)  # well-formed XML
    circles = [c for c in root.iter(f"{SVG}circle") if c.find(f"{SVG}title") is not None]
    assert len(circles) == 6
    fills = {c.find(f"{SVG}title").text: c.get("fill") for c in circles}
    assert fills["node 3"] == "#15803d" and fills["node 4"] == fills["node 5"] == "#b91c1c"
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("marker-end") == "url(#arrow)" and p.get("d").startswith("M")]
    assert len(arrows) == 2 + 1  # two backtracks, one in the legend
    badges = sorted(int(t.text) for t in root.iter(f"{SVG}text") if t.get("fill") == "#ffffff" and t.text.isdigit())
    assert badges == [1, 1, 2, 3, 4, 5, 6]  # the legend's "1" and the trace's six positions
    assert "correct 16" in svg and "wrong 19" in svg


def test_pick_trees_prefers_trees_whose_trace_backtracks():
    trees = pl.concat([tree_frame("p1"), tree_frame("p2")])
    traces = pl.concat([trace_frame("p1").filter(pl.col("kind") == "direct"), trace_frame("p2")])
    assert [pid for pid, _ in pick_trees(trees, traces, n=2)] == ["p2", "p1"]
    assert pick_trees(trees.head(0), traces) == []


def test_sample_pictures_cut_the_trace_procedure_cloning_would_write():
    """Without a traces table the pictures carry the traces Algorithm 1 cuts for those trees."""
    from astro_pipeline.cloning import linearize_trees

    settings = CloningSettings(self_eval=False, direct_arm=False)
    pictures = sample_pictures(tree_frame(), None, cloning=settings, n=1)
    written = linearize_trees(tree_frame(), settings).traces
    assert pictures and pictures[0].view.trace_id == best_trace(written, "p1")["trace_id"]
    assert pictures[0].markdown().startswith("**p1: 6 nodes, trace")
    data = pictures[0].markdown().split("base64,")[1].rstrip(")")
    assert base64.b64decode(data).decode().startswith("<svg")
    # self-evaluation needs the policy: then the tree is drawn without a trace
    assert sample_pictures(tree_frame(), None, cloning=CloningSettings(self_eval=True), n=1)[0].view.trace_id is None


def test_an_inline_curve_stays_under_the_inline_limit_with_its_numbers():
    points = [(s, 3 * math.exp(-s / 300) + 0.05 * math.sin(s)) for s in range(1, 3001)]
    md = curve_markdown("loss", points)
    assert len(md) <= MAX_CHARS < 1000  # the UI shows Markdown under 1,000 characters inline
    assert md.startswith("**loss**: 3.03 at step 1 → 0.0111 at step 3000, min -0.0498, max 3.03")
    assert "data:image/svg+xml;base64," in md
    svg = base64.b64decode(md.split("base64,")[1].rstrip(")")).decode()
    assert ET.fromstring(svg).find(f"{SVG}polyline") is not None


def test_stage_curves_name_series_and_draw_identical_ones_once():
    steps = [1, 2, 3]
    rows = [(s, "reward", v) for s, v in zip(steps, [-1.0, 0.0, 0.5])]
    rows += [(s, "rewards/correctness/mean", v) for s, v in zip(steps, [-1.0, 0.0, 0.5])]
    rows += [(s, "completions/mean_length", v) for s, v in zip(steps, [40.0, 41.0, 45.0])]
    rows += [(s, n, 0.0) for s in steps for n in ("kl", "truncated_share", "backtracks_per_completion")]
    curves = stage_curves(pl.DataFrame(rows, schema=["step", "name", "value"], orient="row"))
    assert list(curves) == ["reward", "length", "truncation", "backtracks per completion", "KL"]
    assert curves["reward"].startswith("**reward** (= rewards/correctness/mean): -1 at step 1 → 0.5 at step 3")
    assert curves["length"].startswith("**length (completions/mean_length)**")
    # constant series are not each other's twins
    assert "(=" not in curves["KL"] and "(=" not in curves["truncation"]
