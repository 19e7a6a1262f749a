"""pass@1, its standard error and maj@k against values computed by hand (arithmetic in comments)."""

from __future__ import annotations

import math

import pytest

from astro_pipeline.evaluate.metrics import answer_key, maj_at_k, majority_vote, mean_and_stderr, pass_at_1

# three problems, four samples each (1 = correct)
TABLE = [
    [True, True, False, True],  # p1 = 3/4
    [False, False, False, False],  # p2 = 0
    [True, False, True, False],  # p3 = 2/4 = 1/2
]


def test_pass_at_1_and_stderr_by_hand():
    r = pass_at_1(TABLE)
    # mean = (3/4 + 0 + 1/2) / 3 = (9/12 + 6/12) / 3 = 5/12 = 0.41667
    assert r.mean == pytest.approx(5 / 12)
    # deviations from 5/12: 4/12, -5/12, 1/12 -> squares 16/144 + 25/144 + 1/144 = 42/144
    # sample variance (ddof 1) = 42/144 / 2 = 21/144; stderr^2 = 21/144 / 3 = 7/144
    # stderr = sqrt(7)/12 = 0.220479
    assert r.stderr == pytest.approx(math.sqrt(7) / 12)
    assert r.stderr == pytest.approx(0.220479, abs=1e-6)
    assert r.n == 3
    # NOT the naive Bernoulli error over all 12 samples: sqrt((5/12)(7/12)/12) = 0.142319
    assert r.stderr != pytest.approx(math.sqrt(5 / 12 * 7 / 12 / 12))


def test_pass_at_1_weights_problems_not_samples():
    # p1 = 1/1 = 1, p2 = 1/4 = 0.25; mean over problems = 1.25/2 = 0.625
    # (the mean over the 5 samples would be 2/5 = 0.4)
    r = pass_at_1([[True], [True, False, False, False]])
    assert r.mean == pytest.approx(0.625)
    # deviations +-0.375, squares 2 * 0.140625 = 0.28125; /(2-1) = 0.28125; /2 = 0.140625; sqrt = 0.375
    assert r.stderr == pytest.approx(0.375)


def test_stderr_undefined_for_one_problem_and_none_for_zero():
    one = pass_at_1([[True, False]])
    assert one.mean == pytest.approx(0.5) and one.stderr is None
    assert mean_and_stderr([]).mean is None
    with pytest.raises(ValueError):
        pass_at_1([[True], []])


def test_all_correct_has_zero_stderr():
    r = pass_at_1([[True, True], [True, True], [True, True]])
    assert r.mean == 1.0 and r.stderr == 0.0


def test_majority_vote_tie_goes_to_earliest_first_vote_not_alphabetical():
    # "b" and "a" both have 2 votes; "b" voted first (index 0) -> "b" wins (alphabetical would pick "a")
    v = majority_vote(["b", "a", "a", "b"], [False, True, True, False])
    assert (v.key, v.votes, v.index, v.correct) == ("b", 2, 0, False)


def test_majority_vote_ignores_missing_answers_and_normalizes():
    # keys: None (no vote), "3", "3", "4" -> "3" wins with 2 votes; its earliest completion is index 1
    v = majority_vote([None, "3", "$3$", "4"], [False, True, True, False])
    assert (v.key, v.votes, v.index, v.correct) == ("3", 2, 1, True)
    # "025" and "25" pool (leading zeros), "2,125" and "2125" would too
    v = majority_vote(["24", "025", "25", "24", "24 "], [False, True, True, False, False])
    assert (v.key, v.votes) == ("24", 3)
    assert majority_vote([None, None], [False, False]).correct is False


def test_maj_at_k_by_hand():
    answers = [
        ["7", "5", "5", "5"],  # correct only for "7"
        [None, "3", "3", "4"],  # "3" is correct
        [None, None, None, None],  # no answer at all
    ]
    correct = [
        [True, False, False, False],
        [False, True, True, False],
        [False, False, False, False],
    ]
    # k=1: P1 "7" -> right; P2 no vote -> wrong; P3 wrong => 1/3
    assert maj_at_k(answers, correct, 1) == pytest.approx(1 / 3)
    # k=2: P1 tie "7"(first 0) vs "5"(first 1) -> "7" right; P2 only "3" -> right; P3 wrong => 2/3
    assert maj_at_k(answers, correct, 2) == pytest.approx(2 / 3)
    # k=4: P1 "5" has 3 votes -> wrong; P2 "3" 2 votes vs "4" 1 -> right; P3 wrong => 1/3
    assert maj_at_k(answers, correct, 4) == pytest.approx(1 / 3)
    assert maj_at_k([], [], 4) is None


def test_answer_key_normalization():
    assert answer_key(" $025$ ") == "25"
    assert answer_key("2,125.") == "2125"
    assert answer_key("\\left( 3, \\dfrac{\\pi}{2} \\right)") == "(3,\\frac{\\pi}{2})"
    assert answer_key("\\text{(B)}") == "(B)"
    assert answer_key("\\leftarrow") == "\\leftarrow"  # \left inside a longer command stays
    assert answer_key("0.5") == "0.5" and answer_key("-007") == "-7"
    assert answer_key("5.00") == answer_key("5") == "5"  # the verifier's own number normalization
    assert answer_key("   ") is None and answer_key(None) is None
