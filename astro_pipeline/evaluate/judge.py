"""The verifier as scoring uses it: one batch function over ``(gold, response)`` pairs, gold first.

Design: scoring takes the verifier as a parameter so the real process-pool ``BatchVerifier``
(``astro_pipeline.verify``) is used in production and tests inject ``testing.FakeVerifier``. Both
are the project's one protocol, ``verify.Verifier``: ``verify_many(pairs) -> list[Verification]``,
where a ``Verification`` has ``.verdict`` (a ``Verdict``: correct, wrong, no_answer,
unparsable_gold, timeout) and ``.predicted_answer``.

Pairs are always ``(gold, response)``: gold first (DESIGN.md §5: "gold and prediction swapped").
Only the verdict ``correct`` counts as correct; ``unparsable_gold`` and ``timeout`` never do.
When the verifier reports no predicted answer, the answer column falls back to the last
``\\boxed{}`` of the response, so the answer shown beside a ``wrong`` verdict is what was judged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from astro_pipeline.verify.extract import last_boxed_content
from astro_pipeline.verify.rules import Verdict, Verifier

VERDICTS = tuple(v.value for v in Verdict)
CORRECT = Verdict.CORRECT.value


@dataclass(frozen=True)
class Judgement:
    verdict: str  # one of VERDICTS
    answer: str | None  # the extracted (predicted) answer, if any

    @property
    def correct(self) -> bool:
        return self.verdict == CORRECT


JudgeFn = Callable[[Sequence[tuple[str, str]]], list[Judgement]]


def _verdict_name(value: Any) -> str:
    name = getattr(value, "value", value)
    name = str(name)
    if name not in VERDICTS:
        raise ValueError(f"unknown verdict {value!r}; expected one of {VERDICTS}")
    return name


def _from_result(result: Any, response: str) -> Judgement:
    verdict = _verdict_name(result.verdict)
    answer = getattr(result, "predicted_answer", None)
    if answer is None and verdict != Verdict.NO_ANSWER:
        answer = last_boxed_content(response)
    return Judgement(verdict, answer)


def as_judge(verifier: Verifier) -> JudgeFn:
    """One batch function over ``(gold, response)`` pairs from a ``Verifier`` (``verify_many``)."""
    if not hasattr(verifier, "verify_many"):
        raise TypeError(f"verifier must have verify_many(pairs), got {type(verifier).__name__}")

    def judge_many(pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        pairs = list(pairs)
        if not pairs:
            return []
        results = verifier.verify_many(pairs)
        if len(results) != len(pairs):
            raise RuntimeError(f"verifier returned {len(results)} results for {len(pairs)} pairs")
        return [_from_result(r, resp) for r, (_, resp) in zip(results, pairs)]

    return judge_many
