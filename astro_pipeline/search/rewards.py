"""Turning a verifier into the search's reward function ``(golds, responses) -> list[float]``.

Design choices (DESIGN.md §5, "verifier misuse"):

* The verifier is the project's one protocol, ``verify.Verifier``: ``verify_many([(gold, response),
  ...]) -> list[Verification]``, gold first. A result earns 1.0 when its verdict is
  ``Verdict.CORRECT``, else 0.0.
* A missing or blank gold gives reward 0 without asking the verifier: a problem whose reference
  answer could not be parsed must never reward anything.
* One call per batch: the search collects every rollout and terminal of a phase and verifies them
  together, so a process-pool verifier is used at full width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from astro_pipeline.verify.rules import Verdict, Verifier

RewardFn = Callable[[Sequence[str], Sequence[str]], list[float]]


def make_reward_fn(verifier: Verifier) -> RewardFn:
    """A ``(golds, responses) -> rewards`` function over ``verifier.verify_many``."""
    if not hasattr(verifier, "verify_many"):
        raise TypeError(f"not a verifier: {verifier!r} (need verify_many(pairs) -> list[Verification])")

    def reward_fn(golds: Sequence[str], responses: Sequence[str]) -> list[float]:
        if len(golds) != len(responses):
            raise ValueError("golds and responses differ in length")
        rewards = [0.0] * len(golds)
        asked = [i for i, g in enumerate(golds) if g is not None and str(g).strip()]  # blank gold -> 0
        if asked:
            results = list(verifier.verify_many([(golds[i], responses[i]) for i in asked]))
            if len(results) != len(asked):
                raise ValueError(f"verifier returned {len(results)} results for {len(asked)} pairs")
            for i, res in zip(asked, results):
                rewards[i] = 1.0 if res.verdict == Verdict.CORRECT else 0.0
        return rewards

    return reward_fn
