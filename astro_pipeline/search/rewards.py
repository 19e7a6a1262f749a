"""Turning a verifier into the search's reward function ``(golds, responses) -> list[float]``.

Design choices (DESIGN.md §5, "verifier misuse"):

* The gold always goes first: ``verify_many([(gold, response), ...])``; a plain callable is called
  as ``fn(golds, responses)``.
* Accepted verifiers, checked in this order:
  1. an object with ``verify_many(pairs) -> list[Verification]`` (astro_pipeline.verify's
     ``BatchVerifier``); a result counts as correct when its ``.verdict == "correct"``;
  2. a callable taking two required positional arguments: ``fn(golds, responses)``;
  3. a callable taking one: ``fn(pairs)`` (the ``verify_batch`` form).
  Each result may be a bool, a number (used as the reward) or a Verification-like object
  (``.verdict``).
* A missing or blank gold gives reward 0 without asking the verifier: a problem whose reference
  answer could not be parsed must never reward anything.
* One call per batch: the search collects every rollout and terminal of a phase and verifies them
  together, so a process-pool verifier is used at full width.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

RewardFn = Callable[[Sequence[str], Sequence[str]], list[float]]


def _to_reward(result: Any) -> float:
    if hasattr(result, "verdict"):
        return 1.0 if result.verdict == "correct" else 0.0
    if isinstance(result, bool):
        return 1.0 if result else 0.0
    if isinstance(result, (int, float)):
        return float(result)
    raise TypeError(f"verifier returned {type(result).__name__}; expected bool, number or Verification")


def _n_required_positional(fn: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)


def make_reward_fn(verifier: Any) -> RewardFn:
    """A ``(golds, responses) -> rewards`` function from any accepted verifier (see module doc)."""
    if hasattr(verifier, "verify_many"):

        def call(golds: Sequence[str], responses: Sequence[str]) -> list[Any]:
            return list(verifier.verify_many(list(zip(golds, responses))))

    elif callable(verifier):
        n_args = _n_required_positional(verifier)
        if n_args == 2:

            def call(golds: Sequence[str], responses: Sequence[str]) -> list[Any]:
                return list(verifier(list(golds), list(responses)))

        elif n_args == 1:

            def call(golds: Sequence[str], responses: Sequence[str]) -> list[Any]:
                return list(verifier(list(zip(golds, responses))))

        else:
            raise TypeError("a verifier callable must take (golds, responses) or (pairs)")
    else:
        raise TypeError(f"not a verifier: {verifier!r}")

    def reward_fn(golds: Sequence[str], responses: Sequence[str]) -> list[float]:
        if len(golds) != len(responses):
            raise ValueError("golds and responses differ in length")
        rewards = [0.0] * len(golds)
        asked = [i for i, g in enumerate(golds) if g is not None and str(g).strip()]  # blank gold -> 0
        if asked:
            results = call([golds[i] for i in asked], [responses[i] for i in asked])
            if len(results) != len(asked):
                raise ValueError(f"verifier returned {len(results)} results for {len(asked)} pairs")
            for i, res in zip(asked, results):
                rewards[i] = _to_reward(res)
        return rewards

    return reward_fn


def exact_match_boxed(golds: Sequence[str], responses: Sequence[str]) -> list[bool]:
    """A minimal verifier: the last ``\\boxed{}`` of the response equals the gold after stripping.

    For tests and benchmarks of the search machinery only; real runs use astro_pipeline.verify.
    """
    from astro_pipeline.verify.extract import last_boxed_content

    out = []
    for gold, response in zip(golds, responses):
        boxed = last_boxed_content(response)
        out.append(boxed is not None and boxed.strip() == str(gold).strip())
    return out
