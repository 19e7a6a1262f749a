"""The verdict rules: the project's ``Verdict``, ``Verification``, the ``Verifier`` protocol, and
``prepare``, which decides a (gold, response) pair in the calling process or hands it to math-verify
(steps 4 and 5 run in ``pool``).

Pipeline of one pair (the order is the order of the checks, first hit decides):

1. Gold answer: the last ``\\boxed{}`` of the gold text if it has one, else its last ``#### X`` line,
   else the whole gold text. Empty, longer than ``max_answer_chars`` or nested deeper than
   ``max_nesting_depth`` -> ``unparsable_gold``.
2. Response longer than ``max_response_chars`` -> ``no_answer``. Predicted answer by
   ``extract.extract_answer`` (last box, then ``####``, then "the answer is"); none -> ``no_answer``;
   longer than ``max_answer_chars`` or nested deeper than ``max_nesting_depth`` -> ``wrong``.
   A prediction whose literal powers/factorials build a number of more than ``max_number_digits``
   digits (``9^{9^{9}}``) -> ``wrong`` unless the gold does too (``normalize.literal_digits``).
3. Both answers are normalized (``normalize.normalize_answer``). The fast path then decides in the
   calling process, without sympy: identical strings of plain math syntax are ``correct``
   (``normalize.identical_math``); for two plain numbers (``normalize.fast_decision``) equal values
   are ``correct`` and two different integers ``wrong``. Anything else goes on.
4. math-verify in a worker process (``_worker.judge``): gold parsed first and required to yield an
   expression (else ``unparsable_gold``), then ``verify(gold, pred)`` in that order.
5. A worker that does not answer within ``timeout_s`` of starting the pair is killed and replaced;
   the pair gets ``timeout``. A worker that dies (a crash, the memory limit) gives ``timeout`` too:
   ``timeout`` means "no decision within the resource bounds", and is never counted as correct.

Every verifier of the project (the process pool ``pool.BatchVerifier``, the shared pools of
``shared``, the test fake ``testing.FakeVerifier``) has one call shape: ``verify_many(pairs) ->
list[Verification]``, gold first in each pair, one result per pair in order.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from astro_pipeline.verify.extract import extract_answer, gold_answer
from astro_pipeline.verify.normalize import (
    fast_decision,
    identical_math,
    literal_digits,
    nesting_depth,
    normalize_answer,
    plain_number,
)
from astro_pipeline.verify.settings import VerifySettings

_SHOWN_CHARS = 500  # answers kept in a Verification are cut to this many characters



class Verdict(str, enum.Enum):
    CORRECT = "correct"
    WRONG = "wrong"
    NO_ANSWER = "no_answer"
    UNPARSABLE_GOLD = "unparsable_gold"
    TIMEOUT = "timeout"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verification:
    """The verdict on one pair, why, and the answers that were compared (cut to 500 characters)."""

    verdict: Verdict
    reason: str
    gold_answer: str | None
    predicted_answer: str | None

    @property
    def correct(self) -> bool:
        return self.verdict is Verdict.CORRECT

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "gold_answer": self.gold_answer,
            "predicted_answer": self.predicted_answer,
        }


class Verifier(Protocol):
    """What every stage verifies with: one ``Verification`` per (gold, response) pair, in order."""

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Verification]: ...


def _shown(text: str | None) -> str | None:
    if text is None or len(text) <= _SHOWN_CHARS:
        return text
    return text[:_SHOWN_CHARS] + f"... [{len(text)} chars]"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


@dataclass
class _Job:
    """A pair that needs math-verify: its normalized answers and what to show in the verdict."""

    gold: str
    pred: str
    gold_shown: str | None
    pred_shown: str | None


def _too_large(answer: str, whose: str, settings: VerifySettings) -> str | None:
    """Why ``answer`` is too large to verify (too long, or nested too deep), or None."""
    if len(answer) > settings.max_answer_chars:
        return f"{whose} answer is too long ({len(answer)} > {settings.max_answer_chars} chars)"
    depth = nesting_depth(answer)
    if depth > settings.max_nesting_depth:
        return f"{whose} answer is nested {depth} levels deep (limit {settings.max_nesting_depth})"
    return None


def prepare(gold_text: Any, response: Any, settings: VerifySettings) -> Verification | _Job:
    """Steps 1-3 of the module docstring: a verdict decided without math-verify, or a job for it."""
    gold_text, response = _as_text(gold_text), _as_text(response)
    gold = gold_answer(gold_text)
    if not gold:
        return Verification(Verdict.UNPARSABLE_GOLD, "the gold answer is empty", gold, None)
    if (why := _too_large(gold, "the gold", settings)) is not None:
        return Verification(Verdict.UNPARSABLE_GOLD, why, _shown(gold), None)
    if len(response) > settings.max_response_chars:
        return Verification(
            Verdict.NO_ANSWER,
            f"the response is too long to search ({len(response)} > {settings.max_response_chars} chars)",
            _shown(gold),
            None,
        )
    pred, method = extract_answer(response)
    if pred is None:
        return Verification(
            Verdict.NO_ANSWER, "no \\boxed{}, '####' line or 'the answer is' phrase in the response", _shown(gold), None
        )
    if (why := _too_large(pred, "the predicted", settings)) is not None:
        return Verification(Verdict.WRONG, why, _shown(gold), _shown(pred))
    gold_norm, pred_norm = normalize_answer(gold), normalize_answer(pred)
    limit = settings.max_number_digits
    if literal_digits(pred_norm, limit) > limit and literal_digits(gold_norm, limit) <= limit:
        return Verification(
            Verdict.WRONG,
            f"the predicted answer builds a number of more than {limit} digits from literal powers or "
            "factorials (not evaluated)",
            _shown(gold),
            _shown(pred),
        )
    if settings.fast_path:
        if identical_math(gold_norm, pred_norm):
            return Verification(Verdict.CORRECT, f"fast path: identical answers ({method} answer)", gold, pred)
        g, p = plain_number(gold_norm), plain_number(pred_norm)
        if g is not None and p is not None:
            decided = fast_decision(g, p)
            if decided is not None:
                verdict = Verdict.CORRECT if decided else Verdict.WRONG
                how = "equal" if decided else "different"
                return Verification(verdict, f"fast path: {how} numbers ({method} answer)", gold, pred)
    return _Job(gold_norm, pred_norm, _shown(gold), _shown(pred))
