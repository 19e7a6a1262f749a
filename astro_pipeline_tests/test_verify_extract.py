"""Answer extraction and normalization: pure string functions, no worker processes."""

from __future__ import annotations

import math
import time

import pytest

from astro_pipeline.verify.extract import extract_answer, gold_answer, last_boxed_content
from astro_pipeline.verify.normalize import (
    fast_decision,
    literal_digits,
    nesting_depth,
    normalize_answer,
    plain_number,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{42}$.", "42"),
        ("first \\boxed{3}, then \\boxed{5}", "5"),  # several boxes -> the last
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),  # nested braces
        ("\\fbox{7}", "7"),
        ("\\boxed{1} and \\fbox{2}", "2"),
        ("$\\boxed 2$", "2"),  # brace-less form, up to the next $
        ("\\boxed 17 apples", "17"),  # brace-less form, up to whitespace
        ("\\boxed {4}", "4"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces do not close the box
        ("\\boxed{\\boxed{3}+1}", "\\boxed{3}+1"),  # the box that closes last
        ("\\boxed{5} then \\boxed{12", "5"),  # an unclosed box is ignored
        ("\\boxed{12", None),
        ("\\boxedx{3}", None),  # another command name
        ("no box here", None),
        ("", None),
        ("\\boxed{a \\\\ b}", "a \\\\ b"),  # a LaTeX line break inside
    ],
)
def test_last_boxed_content(text, expected):
    assert last_boxed_content(text) == expected


def test_last_boxed_content_is_linear_on_hostile_nesting():
    t0 = time.perf_counter()
    assert last_boxed_content("\\boxed{" * 100_000 + "1") is None
    assert last_boxed_content("\\boxed{" + "{" * 200_000 + "1" + "}" * 200_000 + "}") is not None
    assert last_boxed_content("}" * 100_000 + "\\boxed{1}") == "1"
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.parametrize(
    ("text", "answer", "method"),
    [
        ("work \\boxed{3}\n#### 4\nThe answer is 5.", "3", "boxed"),  # box first
        ("Janet sells 9 eggs.\n#### 18\n", "18", "hash"),
        ("#### 1,234", "1,234", "hash"),
        ("So the answer is $42$.", "42", "phrase"),
        ("The final answer is 3.5.", "3.5", "phrase"),
        ("Answer: 7", "7", "phrase"),
        ("#### 5\n####   \n", "5", "hash"),  # an empty #### line does not hide an earlier one
        ("I think it is two", None, "none"),
        ("\\boxed{}", None, "none"),  # an empty box is no answer
    ],
)
def test_extract_answer_fallback_order(text, answer, method):
    assert extract_answer(text) == (answer, method)


def test_gold_answer_forms():
    assert gold_answer("\\frac{1}{2}") == "\\frac{1}{2}"
    assert gold_answer("Solution ... so $\\boxed{7}$.") == "7"
    assert gold_answer("Janet ... 9 * 2 = 18\n#### 18") == "18"
    # the "answer is" phrase is not applied to gold: a bare text answer stays whole
    assert gold_answer("the answer is unique") == "the answer is unique"
    assert gold_answer("  ") == ""


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("025", "25"),
        ("-007", "-7"),
        ("2,125", "2125"),
        ("1,000,000", "1000000"),
        ("2{,}125", "2125"),
        ("2,\\!125", "2125"),
        ("(1,2)", "(1,2)"),  # tuples keep their commas
        ("1,2,3", "1,2,3"),  # answer lists too
        ("1, 234", "1, 234"),
        ("5.0", "5"),
        ("5.50", "5.5"),
        ("0.0", "0"),
        (".5", "0.5"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\tfrac12", "\\frac12"),
        ("\\$18.90", "18.9"),
        ("$18.90", "18.9"),
        ("10\\text{ cm}", "10"),
        ("30^\\circ", "30"),
        ("7\\text{ hours}.", "7"),
        ("\\text{Monday}", "\\text{Monday}"),  # a text answer is not a unit
        ("50\\%", "50\\%"),  # percent is kept for math-verify (it equates 50% with 50 and 0.5)
        ("\\frac{1}{29,\\!322,\\!216}", "\\frac{1}{29322216}"),
        ("\\begin{pmatrix}-6 \\\\ 8 \\end{pmatrix}", "\\begin{pmatrix}-6 \\\\ 8 \\end{pmatrix}"),
        ("\u0662\u0665", "\u0662\u0665"),  # Arabic-Indic digits are not read as a number
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_fast_decision_mirrors_math_verify_rules():
    def decide(g, p):
        gn, pn = plain_number(normalize_answer(g)), plain_number(normalize_answer(p))
        assert gn is not None and pn is not None
        return fast_decision(gn, pn)

    assert decide("025", "25") is True
    assert decide("5", "5.000") is True
    assert decide("50\\%", "50") is True
    assert decide("50", "50\\%") is True
    assert decide("0.5", "50\\%") is True
    assert decide("12", "13") is False
    assert decide("0.5", "0.50001") is None  # unequal decimals are left to math-verify's rounding
    assert decide("50\\%", "40") is None
    assert plain_number(normalize_answer("\uff12\uff15")) is None  # fullwidth digits: not a number here


def test_nesting_depth():
    assert nesting_depth("\\frac{1}{2}") == 1
    assert nesting_depth("((1))") == 2
    assert nesting_depth("}}}{") == 1
    assert nesting_depth("{" * 5000) == 5000


@pytest.mark.parametrize(
    ("answer", "huge"),
    [
        ("9^{9^{9}}", True),
        ("10^{10^{10^{10}}}", True),
        ("2^{10^{10}}", True),
        ("(10^{10})^{(10^{10})}", True),
        ("9**9**9**9", True),
        ("(10^{100})!", True),
        ("1000000!", True),
        ("10^10^10^10", False),  # latex2sympy reads it as ((10^10)^10)^10: 1001 digits
        ("2^{2^{2^{2}}}", False),  # 65536
        ("2^{2010}", False),
        ("100!", False),
        ("x^{y^{z}}", False),  # symbolic: left to math-verify
        ("1^{10^{100}}", False),
    ],
)
def test_literal_digits_flags_towers(answer, huge):
    assert (literal_digits(answer, 100_000) > 100_000) is huge


def test_literal_digits_values():
    assert literal_digits("2^{100}", 10**6) == pytest.approx(31.1, abs=0.1)
    assert literal_digits("no powers", 10) == 0.0
    assert literal_digits("9^{9^{9}}", 10**6) == math.inf
