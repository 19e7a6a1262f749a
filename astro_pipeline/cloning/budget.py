"""Token budgets that fit what the models are taught: checked against the CoT corpus.

A model fine-tuned on reflective traces writes completions as long as those traces; a generation
budget below them cuts the completions and judges them by an early, wrong box (measured on the
first demo: a 160-token evaluation budget cut 57% of the SFT samples, a 128-token RL budget paid
the policy to stop reflecting). So evaluation and RL budgets must reach the corpus completions'
p99 length; ``check_budget`` raises a clear error otherwise, and ``truncation_warning`` is the one
sentence the run log and the report show when a stage's truncated share still exceeds 5%.
"""

from __future__ import annotations

import math

import polars as pl

QUANTILE = 0.99
MAX_TRUNCATED_SHARE = 0.05


def completion_quantile(cot: pl.DataFrame, q: float = QUANTILE) -> int:
    """The ``q`` quantile of the corpus completions' token counts (``n_tokens``), rounded up."""
    if "n_tokens" not in cot.columns:
        raise ValueError(f"cot_examples lacks the n_tokens column; has {cot.columns}")
    lengths = cot["n_tokens"].drop_nulls()
    if lengths.is_empty():
        raise ValueError("cot_examples has no token counts: nothing to size a budget by")
    return int(math.ceil(float(lengths.quantile(q, interpolation="higher"))))


def check_budget(cot: pl.DataFrame, budget: int, setting: str, q: float = QUANTILE) -> int:
    """Raise when ``budget`` (the value of ``setting``) is below the corpus p99; return the p99."""
    p99 = completion_quantile(cot, q)
    if budget < p99:
        raise ValueError(
            f"{setting} = {budget} tokens is below the p{round(q * 100)} length of the CoT corpus ({p99} tokens, "
            f"longest {int(cot['n_tokens'].max())}): completions like the ones the model is taught would be cut; "
            f"raise {setting} to at least {p99}"
        )
    return p99


def truncation_warning(stage: str, benchmark: str, share: float | None) -> str | None:
    """The warning for a stage whose truncated share exceeds ``MAX_TRUNCATED_SHARE`` (else None)."""
    if share is None or share <= MAX_TRUNCATED_SHARE:
        return None
    return (f"{benchmark}/{stage}: {share:.0%} of the completions hit the token budget (more than "
            f"{MAX_TRUNCATED_SHARE:.0%}); a cut completion is judged by an early box")
