"""Procedure cloning (Algorithm 1) and verbalization: search trees -> traces -> CoT examples.

Plain Python (never imports dagster). The flow, as the Dagster assets call it::

    result = linearize_trees(tree_nodes, settings, problems=problems)          # traces table
    cot = verbalize_traces(result.traces, tree_nodes, problems, settings)      # cot_examples table
    problems_found = check_corpus(cot, result.traces, tree_nodes, problems, verify, settings=settings)

Modules: ``tree`` (one tree, Psi/Lambda), ``linearize`` (Algorithm 1), ``direct_arm`` (ablation),
``selfeval`` (optional filter), ``phrases`` / ``verbalize`` (CoT), ``rewrite`` (optional LLM
rewrite), ``detect`` (reflection counter for evaluation), ``check`` (corpus check), ``toytree``
(hand-built trees).
"""

from astro_pipeline.cloning.check import check_corpus, check_trace
from astro_pipeline.cloning.detect import count_reflections
from astro_pipeline.cloning.direct_arm import best_correct_path, direct_arm_traces
from astro_pipeline.cloning.linearize import LinearizeResult, linearize_tree, linearize_trees
from astro_pipeline.cloning.settings import CloningSettings, PhraseBank
from astro_pipeline.cloning.trace import (
    ASTRO_KINDS,
    DIRECT,
    DIRECT_ARM,
    SEARCH,
    Trace,
    traces_from_frame,
    traces_to_frame,
)
from astro_pipeline.cloning.tree import Tree
from astro_pipeline.cloning.verbalize import chat_frame, to_chat_records, verbalize_trace, verbalize_traces

__all__ = [
    "ASTRO_KINDS", "DIRECT", "DIRECT_ARM", "SEARCH", "CloningSettings", "LinearizeResult", "PhraseBank", "Trace",
    "Tree", "best_correct_path", "chat_frame", "check_corpus", "check_trace", "count_reflections",
    "direct_arm_traces", "linearize_tree", "linearize_trees", "to_chat_records", "traces_from_frame",
    "traces_to_frame", "verbalize_trace", "verbalize_traces",
]
