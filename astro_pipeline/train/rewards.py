"""The RL reward: +1 for a verified-correct completion, -1 otherwise, truncation handled explicitly.

Design choices (DESIGN §2 "RL" and §5 "verifier misuse"):

* A reward function is a plain callable ``(completions, answer, **kwargs) -> list[float]`` (the form
  TRL's ``GRPOTrainer`` calls: the dataset's extra columns, here ``answer``, arrive as keyword
  arguments next to ``prompts``, ``completions``, ``completion_ids``, ``log_metric``...).
  ``completions`` may be strings or chat completions (``[{"role": "assistant", "content": ...}]``).
* The verifier is the project's one protocol (``verify.Verifier``), called with the gold FIRST:
  ``verify_many([(gold, completion), ...])``; each result has a ``Verdict`` (correct, wrong,
  no_answer, unparsable_gold, timeout).
* An unparsable (or blank) gold raises ``UnparsableGoldError``: a problem without a usable reference
  must never produce a reward, in either direction. ``check_golds`` runs the same check up front over
  a whole prompt set (each gold verified against ``\\boxed{gold}``) so a bad row fails before training.
* Only ``correct`` earns +1. ``wrong``, ``no_answer`` and ``timeout`` (no decision within the
  verifier's resource bounds) all earn -1.
* Truncation (a completion that hit the token budget without EOS): with ``truncation="penalize"`` it
  earns -1 whatever the verifier says; with ``"mask"`` it earns the verifier's reward and the trainer
  drops it from the loss (TRL's ``mask_truncated_completions``). Truncation is decided from
  ``completion_ids`` exactly as TRL decides it (last id not an EOS/pad id), or from an explicit
  ``truncated=[...]`` list when called outside TRL; with neither, nothing counts as truncated.
* Per-batch metrics go through TRL's ``log_metric`` (averaged per logged step by the trainer):
  accuracy (verifier says correct, before any truncation penalty), truncated/no-answer/timeout
  shares, and, with a ``reflection_counter(text) -> (n_reflections, n_backtracks)``, reflections and
  backtracks per completion. The last batch's verdicts stay on the object (``last_batch``) for
  inspection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from astro_pipeline.verify.rules import Verdict, Verification, Verifier

CORRECT, WRONG, NO_ANSWER, UNPARSABLE_GOLD, TIMEOUT = (
    Verdict.CORRECT, Verdict.WRONG, Verdict.NO_ANSWER, Verdict.UNPARSABLE_GOLD, Verdict.TIMEOUT)
TRUNCATION_MODES = ("penalize", "mask")

ReflectionCounter = Callable[[str], tuple[int, int]]


class UnparsableGoldError(ValueError):
    """A reference answer the verifier cannot parse: an error in the data, never a reward."""


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is, or the concatenated contents of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(m) for m in completion)
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def _verdict(result: Any) -> str:
    verdict = getattr(result, "verdict", None)
    if verdict is None:
        raise TypeError(f"verifier returned {type(result).__name__} without a .verdict")
    return str(getattr(verdict, "value", verdict))


def verify_pairs(verifier: Verifier, pairs: Sequence[tuple[str, str]]) -> list[Verification]:
    """Verify ``(gold, response)`` pairs (gold first) with ``verifier.verify_many``, one result each."""
    if not hasattr(verifier, "verify_many"):
        raise TypeError(f"not a verifier: {verifier!r} (need verify_many(pairs) -> list[Verification])")
    results = list(verifier.verify_many(list(pairs)))
    if len(results) != len(pairs):
        raise ValueError(f"verifier returned {len(results)} results for {len(pairs)} pairs")
    return results


def _raise_unparsable(golds: Sequence[Any], results: Sequence[Any], where: str) -> None:
    bad = [(g, getattr(r, "reason", "")) for g, r in zip(golds, results) if _verdict(r) == UNPARSABLE_GOLD]
    if bad:
        shown = "; ".join(f"{g!r} ({why})" for g, why in bad[:5])
        raise UnparsableGoldError(f"{where}: {len(bad)} unparsable gold answer(s): {shown}")


def check_golds(verifier: Verifier, golds: Iterable[Any], where: str = "rl prompts") -> None:
    """Raise ``UnparsableGoldError`` if any gold is blank or unparsable (checked as gold vs ``\\boxed{gold}``)."""
    distinct = sorted({"" if g is None else str(g) for g in golds})
    blank = [g for g in distinct if not g.strip()]
    if blank:
        raise UnparsableGoldError(f"{where}: a blank gold answer")
    if distinct:
        pairs = [(g, f"\\boxed{{{g}}}") for g in distinct]
        _raise_unparsable(distinct, verify_pairs(verifier, pairs), where)


@dataclass
class BatchStats:
    """What one reward call saw: per-completion verdicts, truncation, rewards and reflection counts."""

    verdicts: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    reflections: list[int] = field(default_factory=list)
    backtracks: list[int] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        n = max(1, len(self.verdicts))
        out = {
            "accuracy": sum(v == CORRECT for v in self.verdicts) / n,
            "truncated_share": sum(self.truncated) / n,
            "no_answer_share": sum(v == NO_ANSWER for v in self.verdicts) / n,
            "timeout_share": sum(v == TIMEOUT for v in self.verdicts) / n,
        }
        if self.reflections:
            out["reflections_per_completion"] = sum(self.reflections) / n
            out["backtracks_per_completion"] = sum(self.backtracks) / n
        return out


class CorrectnessReward:
    """``(completions, answer, **kwargs) -> list[float]``: +1 correct, -1 otherwise (see module doc)."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        truncation: str = "penalize",
        eos_token_ids: Iterable[int] = (),
        reflection_counter: ReflectionCounter | None = None,
    ) -> None:
        if truncation not in TRUNCATION_MODES:
            raise ValueError(f"truncation must be one of {TRUNCATION_MODES}, got {truncation!r}")
        self.verifier = verifier
        self.truncation = truncation
        self.eos_token_ids = frozenset(int(i) for i in eos_token_ids if i is not None)
        self.reflection_counter = reflection_counter
        self.last_batch = BatchStats()
        self.__name__ = "correctness"  # TRL names the logged rewards/<name>/mean after it

    def _truncated(self, n: int, completion_ids: Sequence[Sequence[int]] | None, truncated: Any) -> list[bool]:
        if truncated is not None:
            flags = [bool(t) for t in truncated]
        elif completion_ids is not None:
            if not self.eos_token_ids:
                raise ValueError("CorrectnessReward needs eos_token_ids to read truncation from completion_ids")
            # TRL's own test: a completion is truncated when its last id is not an EOS (or pad) id
            flags = [len(ids) == 0 or int(ids[-1]) not in self.eos_token_ids for ids in completion_ids]
        else:
            flags = [False] * n
        if len(flags) != n:
            raise ValueError(f"{len(flags)} truncation flags for {n} completions")
        return flags

    def __call__(
        self,
        completions: Sequence[Any],
        answer: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        truncated: Sequence[bool] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        texts = [completion_text(c) for c in completions]
        golds = ["" if a is None else str(a) for a in answer]
        if len(golds) != len(texts):
            raise ValueError(f"{len(golds)} answers for {len(texts)} completions")
        if any(not g.strip() for g in golds):
            raise UnparsableGoldError("reward: a blank gold answer")
        results = verify_pairs(self.verifier, list(zip(golds, texts)))
        _raise_unparsable(golds, results, "reward")
        verdicts = [_verdict(r) for r in results]
        flags = self._truncated(len(texts), completion_ids, truncated)
        rewards = []
        for verdict, cut in zip(verdicts, flags):
            if cut and self.truncation == "penalize":
                rewards.append(-1.0)
            else:
                rewards.append(1.0 if verdict == CORRECT else -1.0)
        stats = BatchStats(verdicts=verdicts, truncated=flags, rewards=rewards)
        if self.reflection_counter is not None:
            for text in texts:
                n_refl, n_back = self.reflection_counter(text)
                stats.reflections.append(int(n_refl))
                stats.backtracks.append(int(n_back))
        self.last_batch = stats
        if log_metric is not None:
            for name, value in stats.metrics().items():
                log_metric(name, value)
        return rewards
