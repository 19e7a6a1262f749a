"""pass@1 with its standard error, and maj@k: the estimators behind every reported number.

pass@1 (mean over samples, then over problems)
    For problem i with n_i sampled completions of which c_i are correct, p_i = c_i / n_i.
    pass@1 = (1/N) * sum_i p_i over the N problems. With the same n for every problem this equals
    the mean correctness of all N*n samples; weighting problems equally (not samples) is what the
    estimator means when some problem has fewer samples.

Standard error (problems are the sampling unit)
    stderr = s / sqrt(N), where s is the sample standard deviation (ddof = 1) of the per-problem
    means p_i. Why this one: a benchmark is a draw of N problems, and each p_i is itself a noisy
    estimate of that problem's solve rate. The variance of the mean of the p_i is
    (Var_between + E[p(1-p)] / n) / N, and the sample variance of the observed p_i estimates exactly
    that sum, so s / sqrt(N) covers both the problem-sampling and the completion-sampling noise
    (the "clustered" standard error with equal cluster sizes). Treating all N*n samples as
    independent Bernoulli draws would understate it, since samples of one problem are correlated.
    With N < 2 the standard error is undefined and reported as None (null), never 0.

maj@k (majority vote)
    Per problem, the first k sampled completions (sample index 0..k-1) vote with their extracted
    answers after ``answer_key`` normalization; completions without an answer do not vote. The
    winning answer is the most frequent key; a tie goes to the key whose first vote came earliest
    (lowest sample index), so the result depends only on the (seeded) sample order, never on hash
    or dictionary order. The problem counts as solved when the verifier judged the winner's
    earliest completion correct (completions with the same key got the same verdict from a
    deterministic verifier; taking the earliest one keeps the rule well-defined if they did not).
    A problem where no completion has an answer is not solved. maj@k is the mean over problems.
    k is clamped to the number of samples available; the k actually used is reported beside it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from astro_pipeline.verify.normalize import normalize_answer


@dataclass(frozen=True)
class MeanWithError:
    mean: float | None  # None when there is no problem
    stderr: float | None  # None when fewer than 2 problems
    n: int


def per_problem_means(correct_by_problem: Sequence[Sequence[bool]]) -> list[float]:
    """p_i = c_i / n_i for each problem (each problem needs at least one sample)."""
    means = []
    for i, samples in enumerate(correct_by_problem):
        if len(samples) == 0:
            raise ValueError(f"problem #{i} has no samples: pass@1 is undefined for it")
        means.append(sum(1 for c in samples if c) / len(samples))
    return means


def mean_and_stderr(values: Sequence[float]) -> MeanWithError:
    """Mean and standard error s/sqrt(N) with the sample standard deviation (ddof = 1)."""
    n = len(values)
    if n == 0:
        return MeanWithError(None, None, 0)
    mean = sum(values) / n
    if n < 2:
        return MeanWithError(mean, None, n)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return MeanWithError(mean, math.sqrt(var / n), n)


def pass_at_1(correct_by_problem: Sequence[Sequence[bool]]) -> MeanWithError:
    """pass@1 and its standard error from per-problem lists of sample correctness."""
    return mean_and_stderr(per_problem_means(correct_by_problem))


# --- majority vote ---------------------------------------------------------------------------

_WRAPPERS = re.compile(r"\\(?:left|right|displaystyle)(?![A-Za-z])|\\[!,;: ]")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def answer_key(answer: str | None) -> str | None:
    """The string an answer votes with: a light, purely textual normalization.

    First the verifier's own ``normalize_answer`` (``\\dfrac`` -> ``\\frac``, spacing commands,
    surrounding ``$``, and for single numbers thousands separators, leading zeros, a zero fraction
    and unit tails: "2,125" -> "2125", "025" -> "25", "5.00" -> "5"), then: ``\\text{}``-style
    wrappers unwrapped, ``\\left``/``\\right``/``\\displaystyle`` dropped, all whitespace and a
    trailing period removed, and ``normalize_answer`` once more on the result.
    It only decides which answers pool their votes; correctness always comes from the verifier.
    Two equivalent but differently written answers ("0.5", "\\frac12") vote separately.
    """
    if answer is None:
        return None
    s = normalize_answer(answer)
    s = _TEXT.sub(r"\1", s)
    s = _WRAPPERS.sub("", s)
    s = "".join(s.split()).rstrip(".")
    s = normalize_answer(s) if s else s
    return s or None


@dataclass(frozen=True)
class Vote:
    key: str | None  # the winning answer key (None: no completion had an answer)
    correct: bool
    votes: int  # how many of the k completions voted for the winner
    index: int | None  # position (within the k) of the winner's earliest completion


def majority_vote(answers: Sequence[str | None], correct: Sequence[bool]) -> Vote:
    """Majority vote over one problem's completions, in sample order (see the module docstring)."""
    if len(answers) != len(correct):
        raise ValueError("answers and correct must have the same length")
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, ans in enumerate(answers):
        key = answer_key(ans)
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, i)
    if not counts:
        return Vote(None, False, 0, None)
    # most votes first; among equals, the earliest first vote
    winner = min(counts, key=lambda k: (-counts[k], first[k]))
    return Vote(winner, bool(correct[first[winner]]), counts[winner], first[winner])


def maj_at_k(answers_by_problem: Sequence[Sequence[str | None]], correct_by_problem: Sequence[Sequence[bool]], k: int) -> float | None:
    """maj@k over problems: the first ``k`` samples of each problem vote (None if no problem)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(answers_by_problem) != len(correct_by_problem):
        raise ValueError("answers and correct must cover the same problems")
    if not answers_by_problem:
        return None
    solved = [majority_vote(a[:k], c[:k]).correct for a, c in zip(answers_by_problem, correct_by_problem)]
    return sum(solved) / len(solved)
