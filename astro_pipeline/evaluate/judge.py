"""Adapters: whatever verifier the caller passes becomes one batch function, gold first.

Design: scoring takes the verifier as a parameter so the real process-pool ``BatchVerifier``
(``astro_pipeline.verify``) is used in production and tests can inject a simple one. Accepted:

* an object with ``verify_many(pairs) -> list[Verification]`` (the ``BatchVerifier``), where a
  ``Verification`` has ``.verdict`` (a str Enum or str: correct, wrong, no_answer,
  unparsable_gold, timeout) and ``.predicted_answer``;
* a plain callable ``f(gold, response)`` returning such an object, a verdict string, or a bool
  (True = correct; False = wrong, or no_answer when the response has no box).

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

VERDICTS = ("correct", "wrong", "no_answer", "unparsable_gold", "timeout")
CORRECT = "correct"


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
    if isinstance(result, bool):
        boxed = last_boxed_content(response)
        if result:
            return Judgement(CORRECT, boxed)
        return Judgement("wrong" if boxed is not None else "no_answer", boxed)
    if isinstance(result, str):  # a verdict name or a str Enum member
        return Judgement(_verdict_name(result), last_boxed_content(response))
    verdict = _verdict_name(result.verdict)
    answer = getattr(result, "predicted_answer", None)
    if answer is None and verdict != "no_answer":
        answer = last_boxed_content(response)
    return Judgement(verdict, answer)


def as_judge(verifier: Any) -> JudgeFn:
    """One batch function over ``(gold, response)`` pairs from a verifier object or callable."""
    if hasattr(verifier, "verify_many"):

        def judge_many(pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
            pairs = list(pairs)
            if not pairs:
                return []
            results = verifier.verify_many(pairs)
            if len(results) != len(pairs):
                raise RuntimeError(f"verifier returned {len(results)} results for {len(pairs)} pairs")
            return [_from_result(r, resp) for r, (_, resp) in zip(results, pairs)]

        return judge_many
    if callable(verifier):

        def judge_each(pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
            return [_from_result(verifier(gold, resp), resp) for gold, resp in pairs]

        return judge_each
    raise TypeError(f"verifier must have verify_many() or be callable, got {type(verifier).__name__}")
