"""Procedure cloning (Algorithm 1) and the Direct arm on hand-built trees."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace

import polars as pl
import pytest

from astro_pipeline.cloning.check import check_trace
from astro_pipeline.cloning.direct_arm import best_correct_path, direct_arm_traces
from astro_pipeline.cloning.linearize import clone_sequence, linearize_tree, linearize_trees, visiting_order
from astro_pipeline.cloning.selfeval import SELF_EVAL_PROMPT, self_eval_filter, vote_passes
from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.toytree import example_tree, tree_frame
from astro_pipeline.cloning.trace import DIRECT, DIRECT_ARM, SEARCH, traces_from_frame
from astro_pipeline.cloning.tree import Tree
from astro_pipeline.warehouse.tables import TREE_NODES
from astro_pipeline.config import from_dict
from astro_pipeline.llm.protocol import Sample

B = "\\boxed"
ASTRO_ONLY = CloningSettings(direct_arm=False)


def test_toy_tree_has_the_contract_columns_and_psi_lambda():
    df = example_tree()
    assert df.columns == list(TREE_NODES.schema)
    tree = Tree.from_frame(df)
    assert tree.correct_terminals() == [4]  # Psi
    assert tree.incorrect_terminals() == [3, 6, 8, 9]  # Lambda
    assert [tree[n].answer for n in (3, 6, 8, 9)] == ["9", "14", "12", "9"]


def test_clone_sequence_adds_only_new_nodes_and_records_targets():
    tree = Tree.from_frame(example_tree())
    seq, froms, targets = clone_sequence(tree, [3], 4)
    assert (seq, froms, targets) == ([0, 1, 2, 3, 4], [3], [2])
    seq, froms, targets = clone_sequence(tree, [6, 3], 4)
    assert (seq, froms, targets) == ([0, 1, 5, 6, 2, 3, 4], [6, 3], [1, 2])
    # a wrong terminal in the other root branch: the backtrack goes to the root (a restart)
    seq, froms, targets = clone_sequence(tree, [8], 4)
    assert (seq, froms, targets) == ([0, 7, 8, 1, 2, 4], [8], [0])
    seq, _, targets = clone_sequence(tree, [], 4)
    assert (seq, targets) == ([0, 1, 2, 4], [])


def test_visiting_order_is_depth_first_with_n_star_last_so_backtracks_go_to_ancestors():
    tree = Tree.from_frame(example_tree())
    for seed in range(20):
        rng = random.Random(seed)
        assert visiting_order(tree, [3, 8], 4, rng) == [8, 3]  # n*'s branch (node 1) is visited last
        assert visiting_order(tree, [3, 6], 4, rng) == [6, 3]
        assert visiting_order(tree, [6, 9], 4, rng) == [9, 6]
    # the order that a naive "as drawn" visit could produce goes back into an abandoned branch
    _, froms, targets = clone_sequence(tree, [3, 8], 4)
    assert targets == [0, 2] and not tree.is_ancestor(2, froms[1])
    _, froms, targets = clone_sequence(tree, [8, 3], 4)
    assert targets == [0, 2] and all(tree.is_ancestor(t, f) for t, f in zip(targets, froms))


def _wrong_sets(traces) -> set[frozenset[int]]:
    return {frozenset(t.backtrack_from) for t in traces if t.kind == SEARCH}


def test_search_traces_never_repeat_a_wrong_answer_and_cover_all_allowed_combinations():
    settings = replace(ASTRO_ONLY, n_search=50, n_direct=1)
    traces = linearize_tree(example_tree(), settings, rng_seed=7)
    search = [t for t in traces if t.kind == SEARCH]
    for t in search:
        assert len(set(t.wrong_answers)) == len(t.wrong_answers)
        assert not {3, 9} <= set(t.backtrack_from)  # both have answer 9
        assert t.node_ids[-1] == 4 and t.correct_node_id == 4 and t.answer == "8"
    # k=1: 4 single terminals; k=2: the 6 pairs minus {3, 9}
    expected = {frozenset({n}) for n in (3, 6, 8, 9)} | {
        frozenset(p) for p in ({3, 6}, {3, 8}, {6, 8}, {6, 9}, {8, 9})
    }
    assert _wrong_sets(search) == expected
    assert len({t.node_ids for t in traces}) == len(traces)  # deduplicated
    assert len({t.trace_id for t in traces}) == len(traces)


def test_traces_are_structurally_valid_and_restarts_appear():
    settings = replace(ASTRO_ONLY, n_search=50)
    tree = Tree.from_frame(example_tree())
    traces = linearize_tree(tree, settings, rng_seed=3)
    for t in traces:
        assert check_trace(t, tree) == []
        assert t.node_ids[0] == 0
        # node order: every node continues its predecessor unless a backtrack precedes it
        targets = iter(t.backtrack_targets)
        for prev, nxt in zip(t.node_ids, t.node_ids[1:]):
            expected_parent = next(targets) if tree[prev].is_terminal else prev
            assert tree[nxt].parent_id == expected_parent
    restarts = [t for t in traces if 0 in t.backtrack_targets]
    assert restarts and all(t.n_restarts >= 1 for t in restarts)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_allowed_backtrack_counts_are_respected(k):
    settings = replace(ASTRO_ONLY, backtracks=(k,), n_search=5, n_direct=1)
    traces = linearize_tree(example_tree(), settings, rng_seed=0)
    assert traces
    assert {t.n_backtracks for t in traces} == {k}
    assert {t.kind for t in traces} == ({DIRECT} if k == 0 else {SEARCH})


def test_default_settings_give_one_direct_and_three_search_sequences():
    traces = linearize_tree(example_tree(), ASTRO_ONLY, rng_seed=0)
    kinds = Counter(t.kind for t in traces)
    assert kinds == {DIRECT: 1, SEARCH: 3}
    direct = next(t for t in traces if t.kind == DIRECT)
    assert direct.node_ids == (0, 1, 2, 4) and direct.n_backtracks == 0


def test_k_is_limited_by_the_number_of_distinct_wrong_answers():
    # two wrong terminals with the same answer: only k = 1 is possible
    spec = [("A: 1 + 1 = 2", [f"B: 2 * 2 = {B}{{4}}", f"B: 2 * 3 = {B}{{5}}", f"B: 2 + 3 = {B}{{5}}"])]
    df = tree_frame(spec, reference="4")
    traces = linearize_tree(df, replace(ASTRO_ONLY, n_search=10), rng_seed=0)
    search = [t for t in traces if t.kind == SEARCH]
    assert {t.n_backtracks for t in search} == {1}
    assert len(search) == 2  # node 2 or node 3, never both
    # only one distinct answer and k = 2 demanded: no search sequence, but the direct one remains
    only2 = linearize_tree(df, replace(ASTRO_ONLY, backtracks=(0, 2)), rng_seed=0)
    assert [t.kind for t in only2] == [DIRECT]


def test_wrong_answer_equal_to_n_star_answer_is_not_used():
    # a terminal marked incorrect whose answer string equals n*'s (a verifier disagreement)
    spec = [("A: 1 + 1 = 2", [f"B: 2 * 2 = {B}{{4}}", {"step": f"B: 2 + 2 = {B}{{4}}", "correct": False},
                              f"B: 2 * 3 = {B}{{6}}"])]
    traces = linearize_tree(tree_frame(spec, reference="4"), replace(ASTRO_ONLY, n_search=10), rng_seed=0)
    assert all("4" not in t.wrong_answers for t in traces)
    assert {t.backtrack_from for t in traces if t.kind == SEARCH} == {(4,)}


def test_problem_without_correct_terminal_yields_no_traces_and_is_reported():
    bad = tree_frame([("A: 1 + 1 = 2", [f"B: 2 * 2 = {B}{{4}}"])], reference="5", problem_id="bad")
    good = example_tree(problem_id="good")
    assert linearize_tree(bad, ASTRO_ONLY, rng_seed=0) == []
    res = linearize_trees(pl.concat([bad, good]), ASTRO_ONLY)
    assert set(res.traces["problem_id"]) == {"good"}
    assert res.skipped.to_dicts() == [{"dataset": "toy", "problem_id": "bad", "reason": "no_correct_terminal"}]
    assert res.stats["n_no_correct_terminal"] == 1 and res.stats["n_problems_with_traces"] == 1


def test_problems_without_a_tree_are_reported():
    probs = pl.DataFrame({"dataset": ["toy", "toy"], "problem_id": ["p1", "p2"], "problem": ["x", "y"],
                          "answer": ["8", "1"]})
    res = linearize_trees(example_tree(), ASTRO_ONLY, problems=probs)
    assert res.skipped.filter(pl.col("reason") == "no_tree")["problem_id"].to_list() == ["p2"]


def test_seeded_determinism_independent_of_row_order():
    df = pl.concat([example_tree(problem_id=f"p{i}") for i in range(4)])
    settings = replace(ASTRO_ONLY, n_search=4)
    a = linearize_trees(df, settings).traces
    b = linearize_trees(df.sample(fraction=1.0, shuffle=True, seed=1), settings).traces
    assert a.equals(b)
    # the seed matters: some seed changes the drawn sequences
    others = [linearize_trees(df, replace(settings, seed=s)).traces for s in range(1, 6)]
    assert any(not a["node_ids"].equals(o["node_ids"]) for o in others)


def test_frame_roundtrip_keeps_traces():
    res = linearize_trees(example_tree(), CloningSettings())
    back = traces_from_frame(res.traces)
    assert [t.row() for t in back] == res.traces.to_dicts()
    assert res.traces.schema["node_ids"] == pl.List(pl.Int64)


# --- Direct arm -----------------------------------------------------------------------------


def test_best_correct_path_follows_visits_then_q_among_subtrees_with_a_correct_terminal():
    spec = [
        # the most visited branch has no correct terminal: it must not be taken
        ("A: 1 + 1 = 2", [f"B: 2 * 2 = {B}{{4}}"], {"visits": 50}),
        ("A: 1 + 2 = 3", [(f"B: 3 * 2 = {B}{{6}}", [], {"visits": 3}),
                          (f"B: 3 + 3 = {B}{{6}}", [], {"visits": 9})], {"visits": 12}),
        ("A: 2 + 1 = 3", [(f"B: 3 * 2 = {B}{{6}}", [], {"visits": 20})], {"visits": 10}),
    ]
    tree = Tree.from_frame(tree_frame(spec, reference="6"))
    assert best_correct_path(tree) == [0, 3, 5]
    assert best_correct_path(tree, allowed_correct={4}) == [0, 3, 4]
    assert best_correct_path(tree, allowed_correct=set()) is None


def test_direct_arm_count_matches_astro_examples_per_dataset():
    d1 = pl.concat([example_tree(dataset="d1", problem_id=f"p{i}") for i in range(2)])
    d2 = pl.concat([example_tree(dataset="d2", problem_id=f"q{i}") for i in range(3)])
    res = linearize_trees(pl.concat([d1, d2]), replace(CloningSettings(), backtracks=(0, 1)))
    t = res.traces
    for ds in ("d1", "d2"):
        astro = t.filter((pl.col("dataset") == ds) & pl.col("kind").is_in([DIRECT, SEARCH])).height
        arm = t.filter((pl.col("dataset") == ds) & (pl.col("kind") == DIRECT_ARM))
        assert arm.height == astro > 0
        counts = Counter(arm["problem_id"].to_list())
        assert max(counts.values()) - min(counts.values()) <= 1  # cycled evenly
    arm = t.filter(pl.col("kind") == DIRECT_ARM)
    assert arm["trace_id"].n_unique() == arm.height
    assert (arm["n_backtracks"] == 0).all()
    assert res.stats["n_traces"][DIRECT_ARM] == arm.height


def test_direct_arm_uneven_cycle_and_no_count_matching():
    trees = [Tree.from_frame(example_tree(problem_id=f"p{i}")) for i in range(3)]
    arm = direct_arm_traces(trees, CloningSettings(), {"toy": 7})
    counts = Counter(t.problem_id for t in arm)
    assert sorted(counts.values()) == [2, 2, 3]
    assert sorted(t.repeat for t in arm) == [0, 0, 0, 1, 1, 1, 2]
    again = direct_arm_traces(trees, CloningSettings(), {"toy": 7})
    assert [t.trace_id for t in arm] == [t.trace_id for t in again]
    one_each = direct_arm_traces(trees, CloningSettings(), None)
    assert sorted(t.problem_id for t in one_each) == ["p0", "p1", "p2"]
    assert all(t.node_ids == (0, 1, 2, 4) for t in one_each)
    res = linearize_trees(example_tree(), replace(CloningSettings(), direct_arm_count_match=False))
    assert res.traces.filter(pl.col("kind") == DIRECT_ARM).height == 1


# --- self-evaluation filter -----------------------------------------------------------------


@dataclass
class VotingBackend:
    """Says yes to solutions containing ``good`` and records the requests."""

    good: str
    name: str = "voting"

    def __post_init__(self):
        self.requests = []

    def render(self, request):
        return request.messages[0]["content"]

    def generate(self, requests):
        self.requests.extend(requests)
        out = []
        for r in requests:
            text = "Yes." if self.good in r.messages[0]["content"] else "No"
            out.append([Sample(text=text, finish_reason="stop", n_tokens=1, logprob=0.0)] * r.params.n)
        return out


def test_vote_parsing():
    assert vote_passes("Yes") and vote_passes("  **yes**, it is") and vote_passes('"Yes."')
    assert not vote_passes("No") and not vote_passes("") and not vote_passes("I think yes")


def test_self_eval_filter_keeps_only_unanimously_approved_correct_terminals():
    spec = [
        ("A: 2 + 3 = 5", [f"B: 5 + 3 = {B}{{8}}"]),  # node 2: lucky guess, rejected
        ("A: 4 + 4 = 8", [f"B: 8 * 1 = {B}{{8}}", f"B: 8 * 2 = {B}{{16}}"]),  # node 4 approved
    ]
    df = tree_frame(spec, reference="8")
    probs = pl.DataFrame({"dataset": ["toy"], "problem_id": ["p1"], "problem": ["Compute 8."], "answer": ["8"]})
    backend = VotingBackend(good="8 * 1")
    settings = replace(ASTRO_ONLY, self_eval=True, n_search=5)
    allowed = self_eval_filter(backend, [Tree.from_frame(df)], probs, settings)
    assert allowed == {("toy", "p1"): {4}}
    assert all(r.params.n == settings.self_eval_votes for r in backend.requests)
    assert "Compute 8." in backend.requests[0].messages[0]["content"]
    assert SELF_EVAL_PROMPT.split("{")[0] in backend.requests[0].messages[0]["content"]
    res = linearize_trees(df, settings, problems=probs, backend=VotingBackend(good="8 * 1"))
    assert set(res.traces["correct_node_id"]) == {4}
    rejected = linearize_trees(df, settings, problems=probs, backend=VotingBackend(good="nothing"))
    assert rejected.traces.height == 0
    assert rejected.skipped["reason"].to_list() == ["self_eval_rejected"]
    with pytest.raises(ValueError, match="backend"):
        linearize_trees(df, settings, problems=probs)


# --- settings -------------------------------------------------------------------------------


def test_settings_load_from_recipe_mappings_and_reject_bad_values():
    s = from_dict(CloningSettings, {"backtracks": [1, 2], "phrases": {"restart": ["Start over from scratch."]}})
    assert s.backtracks == (1, 2) and s.search_backtracks == (1, 2)
    assert s.phrases.restart == ("Start over from scratch.",)
    assert s.phrases.question == CloningSettings().phrases.question
    with pytest.raises(ValueError, match="ref"):
        from_dict(CloningSettings, {"phrases": {"go_back": ["Let's go back."]}})
    with pytest.raises(ValueError, match="one non-empty line"):
        from_dict(CloningSettings, {"phrases": {"doubt": ["Hmm.\n\nNot sure."]}})
    with pytest.raises(ValueError, match="answer_boxes"):
        CloningSettings(answer_boxes="none")
    with pytest.raises(ValueError, match="unknown"):
        from_dict(CloningSettings, {"n_searches": 3})
