"""The guess_check world's attempt judge, corpus-sized budgets and the per-segment token loss."""

from __future__ import annotations

import polars as pl
import pytest

from astro_pipeline.cloning.budget import check_budget, completion_quantile, truncation_warning
from astro_pipeline.cloning.settings import PhraseBank
from astro_pipeline.data.synthetic_check import judge_attempt, parse_problem, wrong_terminal_labels

PROBLEM = "Find x from 1 to 9.\nA: Multiply x by 3.\nB: Add 4 to it.\nThe result is 19."


def test_problem_parses_and_attempts_are_labelled_honest_slip_or_malformed():
    p = parse_problem(PROBLEM)
    assert (p.low, p.high, p.result) == (1, 9, 19) and p.ops == (("A", "*", 3), ("B", "+", 4))
    assert parse_problem("Start with 4.\nA: Add 2.") is None
    right = ["Try x = 5.", "A: 5 * 3 = 15", "B: 15 + 4 = 19", "The result is 19 and we got 19, so the answer is \\boxed{5}"]
    wrong = ["Try x = 3.", "A: 3 * 3 = 9", "B: 9 + 4 = 13", "The result is 19 and we got 13, so \\boxed{3} is not the answer"]
    assert judge_attempt(p, right) == "honest" and judge_attempt(p, wrong) == "honest"
    called_a_match = [*wrong[:3], "The result is 19 and we got 13, so the answer is \\boxed{3}"]
    assert judge_attempt(p, called_a_match) == "slip"  # a miss called a match is the lie search exposes
    steered = ["Try x = 3.", "A: 3 * 3 = 9", "B: 9 + 4 = 19", "The result is 19 and we got 19, so the answer is \\boxed{3}"]
    assert judge_attempt(p, steered) == "slip"  # the arithmetic bent towards the stated result
    lied = ["Try x = 3.", "A: 3 * 3 = 9", "B: 9 + 4 = 13", "The result is 19 and we got 19, so the answer is \\boxed{3}"]
    assert judge_attempt(p, lied) == "slip"  # the check line does not state the value computed
    misread = ["Try x = 3.", "A: 3 * 3 = 9", "B: 9 + 4 = 13", "The result is 13 and we got 13, so the answer is \\boxed{3}"]
    assert judge_attempt(p, misread) == "slip"  # nor the problem's result
    assert judge_attempt(p, ["Try x = 12.", *right[1:]]) == "slip"  # a guess outside the range
    assert judge_attempt(p, ["B: _2 * 2 =  Add: 2. The answer is \\boxed{26}"]) == "malformed"
    assert judge_attempt(p, right[:1] + right[2:]) == "malformed"  # a missing line


def test_wrong_terminal_labels_walk_each_incorrect_terminal_back_to_the_root():
    from astro_pipeline.cloning.toytree import tree_frame

    def attempt(x, a, b, stated):
        verdict = (f"The result is 19 and we got {stated}, so the answer is \\boxed{{{x}}}" if stated == 19 else
                   f"The result is 19 and we got {stated}, so \\boxed{{{x}}} is not the answer")
        return (f"Try x = {x}.", [(f"A: {x} * 3 = {a}", [(f"B: {a} + 4 = {b}", [verdict])])])

    nodes = tree_frame([attempt(3, 9, 13, 13), attempt(4, 12, 19, 19), attempt(5, 15, 19, 19)], reference="5",
                       dataset="d", problem_id="p")
    problems = pl.DataFrame({"problem_id": ["p"], "problem": [PROBLEM]})
    assert wrong_terminal_labels(nodes, problems) == {"honest": 1, "slip": 1, "malformed": 0}
    other_world = pl.DataFrame({"problem_id": ["p"], "problem": ["Start with 4.\nA: Add 2."]})
    assert wrong_terminal_labels(nodes, other_world) == {}


def test_budgets_below_the_corpus_p99_fail_with_the_setting_named():
    cot = pl.DataFrame({"n_tokens": list(range(1, 101))})
    assert completion_quantile(cot) == 100  # the upper neighbour: a budget never sits below the quantile
    assert check_budget(cot, 120, "evaluate.max_new_tokens") == 100
    with pytest.raises(ValueError, match=r"evaluate.max_new_tokens = 64 tokens is below the p99 .*\(100 tokens"):
        check_budget(cot, 64, "evaluate.max_new_tokens")
    assert truncation_warning("sft", "synthetic_test", 0.04) is None
    assert "57%" in truncation_warning("sft", "synthetic_test", 0.57)


def test_loss_by_segment_splits_prompt_steps_and_reflections(tmp_path):
    from astro_pipeline.train.token_loss import loss_by_segment
    from astro_pipeline_tests.tiny_models import demo_tokenizer, tiny_random_model

    completion = ("Try x = 3.\n\nA: 3 * 3 = 9\n\nThe result is 19 and we got 9, so \\boxed{3} is not the answer\n\n"
                  "Wait, is the solution right so far? Hmm... I am not sure about this. Let me start over from the beginning.\n\n"
                  "Try x = 5.\n\nA: 5 * 3 = 15")
    cot = pl.DataFrame({"prompt": [PROBLEM], "completion": [completion]})
    out = loss_by_segment(tiny_random_model(), demo_tokenizer(), cot, PhraseBank())
    assert set(out) == {"prompt", "prompt_tokens", "step", "step_tokens", "reflection", "reflection_tokens"}
    tok = demo_tokenizer()
    reflection = "Wait, is the solution right so far? Hmm... I am not sure about this. Let me start over from the beginning."
    assert out["reflection_tokens"] == len(tok(reflection, add_special_tokens=False)["input_ids"])
    assert all(out[s] > 0 for s in ("prompt", "step", "reflection"))  # a random model predicts nothing well
