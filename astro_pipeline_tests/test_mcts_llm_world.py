"""The LLM step world and the runner, driven by the scripted backend double (no model)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from astro_pipeline.search.rewards import make_reward_fn
from astro_pipeline.testing import FakeVerifier
from astro_pipeline.search.runner import search_problems
from astro_pipeline.search.scripted import ScriptedBackend
from astro_pipeline.search.settings import SearchSettings
from astro_pipeline.search.tree_table import TREE_NODES_SCHEMA


# the paper's search: every sample its own child, rollouts only score R(s'), no early stop
PAPER = dict(backup="paper", merge_siblings=False, early_stop=False)


def two_step_script(problem: str, prefix: str, i: int) -> str:
    """Two plain steps then a boxed one; even samples answer 3, odd ones 4."""
    depth = prefix.count("\n\n")
    steps = [f"s{d}.{i}" for d in range(depth, 2)] + [f"so \\boxed{{{3 if i % 2 == 0 else 4}}}"]
    return "\n\n".join(steps)


def _problems(n: int, answer: str = "3") -> pl.DataFrame:
    return pl.DataFrame({
        "dataset": ["toy"] * n,
        "problem_id": [f"p{i}" for i in range(n)],
        "problem": [f"problem {i}" for i in range(n)],
        "answer": [answer] * n,
    })


def _run(problems, backend, settings, verifier=None, **kw):
    trees: dict[str, pl.DataFrame] = {}
    summary = search_problems(problems, backend, verifier or FakeVerifier(), settings, on_tree=lambda pid, df: trees.__setitem__(pid, df),
                              progress=False, **kw)
    return summary, trees


def test_one_iteration_prefixes_stops_priors_rollouts_and_batching():
    backend = ScriptedBackend(two_step_script)
    settings = SearchSettings(k=2, m=4, iterations=1, max_step_tokens=7, max_rollout_tokens=50, system_prompt="Be brief.")
    summary, trees = _run(_problems(3), backend, settings)

    assert len(backend.calls) == 2  # ONE expansion call and ONE rollout call for all three trees
    expand, rollout = backend.calls
    assert len(expand) == 3 and {r.prefix for r in expand} == {""}
    assert all(r.params.n == 2 and r.params.stop == ("\n\n",) and r.params.max_new_tokens == 7 for r in expand)
    assert expand[0].messages == ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "problem 0"})
    assert len(rollout) == 6 and {r.prefix for r in rollout} == {"s0.0\n\n", "s0.1\n\n"}
    assert all(r.params.n == 4 and r.params.stop == () and r.params.max_new_tokens == 50 for r in rollout)

    df = trees["p1"]
    assert df.schema == pl.Schema(TREE_NODES_SCHEMA)
    children = df.filter(pl.col("depth") == 1).sort("node_id")
    assert children["step"].to_list() == ["s0.0", "s0.1"]
    # "sequence" priors: softmax of logprobs -0.5 and -0.6 over the two siblings
    p0 = 1 / (1 + math.exp(-0.1))
    assert children["prior"].to_list() == pytest.approx([p0, 1 - p0])
    assert children["n_rollouts"].to_list() == [4, 4]
    assert children["rollout_correct"].to_list() == [2, 2]  # rollouts 0 and 2 box 3, 1 and 3 box 4
    assert children["reward"].to_list() == pytest.approx([0.5, 0.5])
    assert children["is_terminal"].to_list() == [False, False]
    assert children["correct"].to_list() == [None, None]
    assert summary.problems_searched == 3 and summary.rollouts == 24 and summary.generate_calls == 2
    assert summary.tokens_generated == 3 * 2 * 1 + 6 * 4 * 3  # 1-word steps; rollouts "s1.i", "so", "\boxed{X}"


def test_full_search_terminals_answers_and_one_call_per_phase():
    backend = ScriptedBackend(two_step_script)
    settings = SearchSettings(k=2, m=2, iterations=5, max_depth=10, **PAPER)
    calls_per_step = []
    summary, trees = _run(_problems(4), backend, settings, log=lambda msg: calls_per_step.append(len(backend.calls)))
    steps = [b - a for a, b in zip([0, *calls_per_step], calls_per_step)]
    assert len(steps) == 5 and all(1 <= s <= 2 for s in steps)  # <= one expansion + one rollout call per step
    for df in trees.values():
        terms = df.filter(pl.col("is_terminal"))
        assert terms.height > 0
        assert (terms["answer"].is_in(["3", "4"])).all()
        assert terms["correct"].to_list() == [a == "3" for a in terms["answer"].to_list()]
        assert terms["reward"].to_list() == [1.0 if a == "3" else 0.0 for a in terms["answer"].to_list()]
        assert (terms["n_rollouts"] == 0).all()
        assert df.filter(~pl.col("is_terminal") & (pl.col("depth") > 0))["n_rollouts"].to_list() == [2] * (
            df.filter(~pl.col("is_terminal") & (pl.col("depth") > 0)).height
        )
        root = df.filter(pl.col("node_id") == 0).row(0, named=True)
        assert root["visits"] == 5 and root["parent_id"] is None and root["step"] == "" and root["prior"] == 1.0
    assert summary.share_with_correct == 1.0 and summary.share_with_both == 1.0


def test_terminal_rules_empty_eos_length_and_verifier_gets_gold_first():
    def script(problem, prefix, i):
        if prefix:
            return "more \\boxed{3}"
        return ["\n\nrest", "no answer here", " ".join(["w"] * 50), "so \\boxed{3}"][i]

    verifier = FakeVerifier()
    seen = verifier.pairs
    backend = ScriptedBackend(script)
    settings = SearchSettings(k=4, m=2, iterations=1, max_step_tokens=5)
    _, trees = _run(_problems(1), backend, settings, verifier=verifier)
    c = trees["p0"].filter(pl.col("depth") == 1).sort("node_id").to_dicts()
    assert c[0]["step"] == "" and c[0]["is_terminal"] and c[0]["answer"] is None and c[0]["correct"] is False
    assert c[1]["is_terminal"] and c[1]["answer"] is None and c[1]["correct"] is False and c[1]["reward"] == 0.0
    assert not c[2]["is_terminal"] and c[2]["step_tokens"] == 5 and c[2]["n_rollouts"] == 2
    assert c[2]["reward"] == 1.0 and c[2]["rollout_correct"] == 2
    assert c[3]["is_terminal"] and c[3]["answer"] == "3" and c[3]["correct"] is True and c[3]["reward"] == 1.0
    # only responses with a box reach the verifier, gold first, full solution text as the response
    assert sorted(seen) == sorted([("3", "w w w w w\n\nmore \\boxed{3}")] * 2 + [("3", "so \\boxed{3}")])


def test_on_tree_is_called_as_each_tree_finishes_and_done_ids_are_skipped():
    backend = ScriptedBackend(two_step_script)
    settings = SearchSettings(k=2, m=1, iterations=2, parallel_trees=1)
    problems = pl.concat([_problems(4), pl.DataFrame({"dataset": ["toy"], "problem_id": ["nogold"],
                                                        "problem": ["x"], "answer": [None]},
                                                       schema_overrides={"answer": pl.String})])
    order = []
    summary = search_problems(problems, backend, FakeVerifier(), settings, done_ids={"p1"},
                              on_tree=lambda pid, df: order.append((pid, len(backend.calls), df["problem_id"].unique().to_list())),
                              progress=False)
    assert [o[0] for o in order] == ["p0", "p2", "p3"]
    assert [o[2] for o in order] == [["p0"], ["p2"], ["p3"]]
    assert order[0][1] < order[1][1] < order[2][1]  # handed over before the next problem was searched
    assert all("problem 1" not in r.messages[-1]["content"] for call in backend.calls for r in call)
    assert summary.problems_skipped_done == 1 and summary.problems_skipped_no_gold == 1
    assert summary.problems_searched == 3


def test_max_sequences_per_call_splits_phases():
    backend = ScriptedBackend(two_step_script)
    settings = SearchSettings(k=2, m=4, iterations=1, max_sequences_per_call=8)
    _run(_problems(3), backend, settings)
    # expansion: 3 requests x 2 = 6 sequences -> one call; rollouts: 6 requests x 4 = 24 -> three calls
    assert [sum(r.params.n for r in call) for call in backend.calls] == [6, 8, 8, 8]


SEQ = 1 / (1 + math.exp(-3.0))


@pytest.mark.parametrize(("mode", "expected"), [("sequence", [SEQ, 1 - SEQ]), ("per_token", [0.5, 0.5]), ("uniform", [0.5, 0.5])])
def test_prior_normalization_modes(mode, expected):
    def script(problem, prefix, i):
        return ["a", "b c d e"][i] + "\n\nso \\boxed{3}"

    backend = ScriptedBackend(script, logprob=lambda text, i: -1.0 * len(text.split()))
    _, trees = _run(_problems(1), backend, SearchSettings(k=2, m=1, iterations=1, prior_normalization=mode))
    priors = trees["p0"].filter(pl.col("depth") == 1).sort("node_id")["prior"].to_list()
    # logprobs -1 (1 token) and -4 (4 tokens): per token both -1; sequence e^-1 : e^-4
    assert priors == pytest.approx(expected)


def test_request_seeds_do_not_depend_on_batch_company():
    def seeds(n_problems):
        backend = ScriptedBackend(two_step_script)
        _run(_problems(n_problems), backend, SearchSettings(k=2, m=2, iterations=3, seed=7))
        return {(r.messages[-1]["content"], r.prefix, r.params.stop): r.params.seed
                for call in backend.calls for r in call if r.messages[-1]["content"] == "problem 0"}

    alone, together = seeds(1), seeds(3)
    assert alone == together and len(set(alone.values())) == len(alone)


def test_reward_fn_asks_the_verifier_gold_first_and_blank_gold_scores_zero():
    verifier = FakeVerifier()
    fn = make_reward_fn(verifier)
    assert fn(["1", "2", "", None], ["\\boxed{1}", "\\boxed{3}", "\\boxed{}", "x"]) == [1.0, 0.0, 0.0, 0.0]
    assert verifier.pairs == [("1", "\\boxed{1}"), ("2", "\\boxed{3}")]  # gold first; blank/None golds never sent
    assert verifier.calls == 1  # one batch
    with pytest.raises(TypeError, match="not a verifier"):
        make_reward_fn(lambda golds, responses: None)  # one protocol: no callables sniffed by signature


def test_tree_with_nothing_left_finishes_early():
    backend = ScriptedBackend(lambda problem, prefix, i: f"so \\boxed{{{i}}}")  # every step is terminal
    summary, trees = _run(_problems(2), backend, SearchSettings(k=3, m=2, iterations=8, **PAPER))
    assert len(backend.calls) == 1  # one expansion; terminals need no rollouts; then nothing is left
    assert summary.problems_searched == 2 and trees["p0"].height == 4
    assert trees["p0"].filter(pl.col("node_id") == 0)["visits"].item() == 1
    assert summary.share_with_correct == 0.0  # answers 0, 1, 2; the gold is 3


def test_non_string_answers_are_compared_as_text():
    problems = _problems(1).with_columns(pl.lit(0).alias("answer"))  # an int 0 must not read as "no gold"
    backend = ScriptedBackend(lambda problem, prefix, i: f"so \\boxed{{{i}}}")
    summary, trees = _run(problems, backend, SearchSettings(k=2, m=1, iterations=1))
    assert summary.problems_skipped_no_gold == 0
    assert trees["p0"].filter(pl.col("is_terminal"))["correct"].to_list() == [True, False]


def test_identical_siblings_merge_into_one_child_with_their_prior_mass():
    # samples 0 and 2 write the same step up to whitespace; 1 and 3 another one
    def script(problem, prefix, i):
        if prefix:
            return "so \\boxed{3}"
        return ["A: 1 + 2 = 3", "B: 2 + 2 = 4", "A:  1 + 2 =  3", "B: 2 + 2 = 4"][i]

    backend = ScriptedBackend(script, logprob=lambda text, i: -1.0)
    summary, trees = _run(_problems(1), backend, SearchSettings(k=4, m=1, iterations=1, early_stop=False))
    kids = trees["p0"].filter(pl.col("depth") == 1).sort("node_id")
    assert kids["step"].to_list() == ["A: 1 + 2 = 3", "B: 2 + 2 = 4"]
    assert kids["n_copies"].to_list() == [2, 2] and kids["prior"].to_list() == pytest.approx([0.5, 0.5])
    assert summary.merged_samples == 2
    # the same tree without merging has four children with a quarter of the mass each
    _, unmerged = _run(_problems(1), ScriptedBackend(script, logprob=lambda text, i: -1.0),
                       SearchSettings(k=4, m=1, iterations=1, **PAPER))
    assert unmerged["p0"].filter(pl.col("depth") == 1)["prior"].to_list() == pytest.approx([0.25] * 4)


def test_expansion_samples_beyond_k_keep_the_k_most_probable_distinct_steps():
    def script(problem, prefix, i):
        return "so \\boxed{3}" if prefix else ["a", "b", "a", "c", "a", "b"][i]

    backend = ScriptedBackend(script, logprob=lambda text, i: -1.0)
    _, trees = _run(_problems(1), backend, SearchSettings(k=2, m=1, iterations=1, expansion_samples=6, early_stop=False))
    kids = trees["p0"].filter(pl.col("depth") == 1).sort("node_id")
    assert backend.calls[0][0].params.n == 6
    assert kids["step"].to_list() == ["a", "b"]  # c (1 of 6) is dropped; priors renormalized over a, b
    assert kids["prior"].to_list() == pytest.approx([3 / 5, 2 / 5]) and kids["n_copies"].to_list() == [3, 2]


def test_rollouts_become_nodes_with_sample_statistics():
    backend = ScriptedBackend(two_step_script)  # from the root: s0.i, s1.i, so boxed (3 if i even else 4)
    settings = SearchSettings(k=1, m=2, iterations=1, early_stop=False)
    summary, trees = _run(_problems(1), backend, settings)
    df = trees["p0"].sort("node_id")
    child = df.filter(pl.col("depth") == 1).row(0, named=True)
    assert child["origin"] == "expansion" and child["n_rollouts"] == 2 and child["reward"] == pytest.approx(0.5)
    assert child["visits"] == 2 and child["q_value"] == pytest.approx(0.5)  # N = samples through it, Q = their mean
    rollout = df.filter(pl.col("origin") == "rollout")
    # the two rollouts differ from their first step (s1.0 vs s1.1): two chains of two nodes each
    assert rollout.height == 4 and rollout["expanded"].to_list() == [False] * 4
    terms = rollout.filter(pl.col("is_terminal")).sort("node_id")
    assert terms["answer"].to_list() == ["3", "4"] and terms["correct"].to_list() == [True, False]
    assert terms["visits"].to_list() == [1, 1] and terms["q_value"].to_list() == [1.0, 0.0]
    firsts = rollout.filter(pl.col("depth") == 2)
    assert firsts["prior"].to_list() == pytest.approx([0.5, 0.5])  # share of the rollouts that took each step
    assert firsts["step_logprob"].to_list() == [None, None]
    root = df.row(0, named=True)
    assert root["visits"] == 2 and root["q_value"] == pytest.approx(0.5)
    assert root["tree_iterations"] == 1 and root["stop_reason"] == "iterations"
    assert summary.share_with_both == 1.0  # found through the rollouts alone, in one iteration


def test_a_rollout_step_can_be_expanded_later_and_merges_with_new_samples():
    backend = ScriptedBackend(two_step_script)
    _, trees = _run(_problems(1), backend, SearchSettings(k=2, m=1, iterations=6, early_stop=False))
    df = trees["p0"]
    expanded_rollout = df.filter((pl.col("origin") == "rollout") & pl.col("expanded"))
    assert expanded_rollout.height >= 1  # selection went down into a rollout chain and expanded it
    # every node id is unique and every parent exists
    assert df["node_id"].n_unique() == df.height
    assert set(df["parent_id"].drop_nulls().to_list()) <= set(df["node_id"].to_list())


def test_early_stop_once_cloning_has_a_correct_and_enough_distinct_wrong_answers():
    def script(problem, prefix, i):  # guesses 1..4 boxed at once; the gold is 3
        return f"so \\boxed{{{i + 1}}}"

    backend = ScriptedBackend(script)
    summary, trees = _run(_problems(2), backend, SearchSettings(k=4, m=1, iterations=8, stop_incorrect=2))
    assert summary.stop_reasons == {"cloning_ready": 2} and summary.mean_iterations == 1.0
    assert trees["p0"].row(0, named=True)["stop_reason"] == "cloning_ready"
    # asking for more distinct wrong answers than exist: the tree runs out of leaves instead
    summary, _ = _run(_problems(1), ScriptedBackend(script), SearchSettings(k=4, m=1, iterations=8, stop_incorrect=4))
    assert summary.stop_reasons == {"exhausted": 1}
