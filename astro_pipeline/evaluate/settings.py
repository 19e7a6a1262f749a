"""Settings of the evaluation stage (recipe section ``evaluate``).

Design: every sampling knob that changes a reported number is a field here and is saved, as JSON,
in every ``eval_scores`` row (``settings_json``), so a pass@1 can always be traced to the exact
n, temperature, top_p, token budget, seed and prompt that produced it (DESIGN.md §5: "numbers that
cannot be reproduced"). The defaults are the paper's protocol as reported (DESIGN.md §2
"Evaluation": 16 samples per problem, maj@8, greedy too); the demo recipe shrinks them.

The benchmarks are the recipe's ``datasets.benchmarks`` (with ``datasets.limits``), not repeated
here. The temperature/top_p defaults (0.6/0.95) are common practice for reasoning evaluations; the
paper's sources do not state them.

``batch_size`` counts problems per ``backend.generate`` call: each problem contributes one request
for its ``n_samples`` sampled completions and, with ``greedy`` on, one request for its greedy
completion, so a call generates ``batch_size * (n_samples + greedy)`` sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting


@dataclass(frozen=True)
class EvalSettings:
    n_samples: int = setting(16, "sampled completions per problem; pass@1 is their mean correctness (paper: 16)")
    temperature: float = setting(0.6, "sampling temperature of the n_samples completions (> 0; greedy is separate)")
    top_p: float = setting(0.95, "nucleus sampling top_p of the sampled completions (1.0 = off)")
    max_new_tokens: int = setting(
        4096, "token budget per completion; a completion cut here has finish_reason 'length' (see truncated_share)"
    )
    maj_k: int = setting(
        8, "k of maj@k: majority vote over the first k sampled answers (clamped to n_samples; the k used is stored)"
    )
    greedy: bool = setting(True, "also generate one greedy (temperature 0) completion per problem and report its accuracy")
    truncated_is_wrong: bool = setting(
        False,
        "count a completion cut at max_new_tokens as wrong even if it contains a complete correct box "
        "(off: the verifier's verdict stands; truncation is reported either way)",
    )
    seed: int = setting(
        0, "base seed; each problem's requests get a seed derived from it and the problem id (order-independent)"
    )
    system_prompt: str = setting("", "optional system message before the problem ('' = none)")
    batch_size: int = setting(
        16, "problems per backend.generate call (each brings n_samples sampled + 1 greedy sequences)"
    )
    max_problems: int = setting(
        0, "evaluate only the first N problems of each benchmark, on top of datasets.limits (0 = all)"
    )
    stages: tuple[str, ...] = setting(
        ("base", "sft", "rl"),
        "model stages to evaluate; each is scored on every benchmark of the recipe's datasets.benchmarks",
    )

    def __post_init__(self) -> None:
        for name in ("n_samples", "max_new_tokens", "maj_k", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"evaluate.{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise ValueError("evaluate.temperature must be > 0 (the greedy completion is the 'greedy' switch)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"evaluate.top_p must be in (0, 1], got {self.top_p}")
        if self.max_problems < 0:
            raise ValueError("evaluate.max_problems must be >= 0 (0 = all)")
        if not self.stages:
            raise ValueError("evaluate.stages must name at least one model stage")

    @property
    def effective_k(self) -> int:
        """The k actually used for maj@k: ``maj_k`` clamped to ``n_samples``."""
        return min(self.maj_k, self.n_samples)
