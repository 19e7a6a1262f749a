"""The test kit: test doubles and tiny models for tests and benchmarks (nothing here is downloaded).

* ``FakeVerifier(rule)``: the one fake of the ``verify.Verifier`` protocol. ``verify_many(pairs)``
  returns a real ``Verification`` per pair; a blank gold is ``unparsable_gold`` (as the real
  verifier says), anything else is ``rule(gold, response) -> Verdict``. It counts its calls and keeps
  the pairs it saw. Rules: ``boxed_match`` (the last ``\\boxed{}`` equals the gold after stripping;
  the default) and ``contains_seven`` (any "7" is correct, else no answer: a random character model
  then solves about one completion in six, so GRPO groups have mixed rewards).
* Fake backends: ``ScriptedBackend`` (a scripted policy, ``search.scripted``).
* Tiny models and tokenizers: ``tiny_tokenizer`` / ``build_tiny_model`` (character level, for RL),
  ``tiny_base_model`` / ``tiny_corpus`` (SFT), ``random_tiny_backend`` (the demo architecture behind
  the ``Backend`` protocol), ``save_random_llama`` (any tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from astro_pipeline.search.scripted import ScriptedBackend
from astro_pipeline.train.rl_tiny import build_tiny_model, tiny_problems, tiny_tokenizer
from astro_pipeline.train.sft_tiny import tiny_base_model, tiny_corpus
from astro_pipeline.train.tiny_llama import save_random_llama
from astro_pipeline.verify.extract import last_boxed_content
from astro_pipeline.verify.rules import Verdict, Verification

Rule = Callable[[str, str], Verdict]

__all__ = [
    "FakeVerifier",
    "ScriptedBackend",
    "boxed_match",
    "build_tiny_model",
    "contains_seven",
    "random_tiny_backend",
    "save_random_llama",
    "tiny_base_model",
    "tiny_corpus",
    "tiny_problems",
    "tiny_tokenizer",
]


def boxed_match(gold: str, response: str) -> Verdict:
    """Correct when the response's last ``\\boxed{}`` equals the gold (both stripped)."""
    boxed = last_boxed_content(response)
    if boxed is None:
        return Verdict.NO_ANSWER
    return Verdict.CORRECT if boxed.strip() == str(gold).strip() else Verdict.WRONG


def contains_seven(gold: str, response: str) -> Verdict:
    """Correct when the response contains the character 7, else no answer (see the module doc)."""
    return Verdict.CORRECT if "7" in response else Verdict.NO_ANSWER


class FakeVerifier:
    """A deterministic ``Verifier`` for tests and benchmarks of the search, RL and evaluation machinery."""

    def __init__(self, rule: Rule = boxed_match) -> None:
        self.rule = rule
        self.calls = 0
        self.pairs: list[tuple[str, str]] = []

    def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[Verification]:
        self.calls += 1
        self.pairs.extend(pairs)
        out = []
        for gold, response in pairs:
            if not str(gold or "").strip():
                out.append(Verification(Verdict.UNPARSABLE_GOLD, "blank gold", None, None))
            else:
                verdict = self.rule(str(gold), response)
                out.append(Verification(verdict, f"fake: {self.rule.__name__}", str(gold), last_boxed_content(response)))
        return out

    def close(self) -> None:
        """Nothing to release (present so it can stand where a ``BatchVerifier`` is closed)."""


def random_tiny_backend(seed: int = 0, backend_settings=None):
    """An untrained tiny Llama with the demo tokenizer behind the ``Backend`` protocol."""
    from astro_pipeline.bench.eval import random_tiny_backend as build

    return build(seed, backend_settings)
