"""The reflection counter evaluation uses: the cloning stage's phrase-bank detector, bound to a
recipe's ``CloningSettings``.

Design: evaluation counts reflections and backtracks in model samples with exactly the phrase bank
the CoT corpus was verbalized with (``cloning.detect.count_reflections``), so "the model
backtracks" means "the model writes what it was taught to write when it backtracks".
``evaluate_model`` takes any ``text -> (n_reflections, n_backtracks)`` callable; this module only
builds the standard one.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from astro_pipeline.evaluate.scoring import ReflectionCounter


def phrase_bank_counter(cloning_settings: Any = None) -> ReflectionCounter:
    """``text -> (n_reflections, n_backtracks)`` with the phrase bank of ``cloning_settings``
    (a ``CloningSettings`` or ``PhraseBank``; the defaults when None)."""
    from astro_pipeline.cloning.detect import count_reflections
    from astro_pipeline.cloning.settings import CloningSettings

    return partial(count_reflections, settings=cloning_settings if cloning_settings is not None else CloningSettings())
