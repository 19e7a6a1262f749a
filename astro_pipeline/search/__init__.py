"""MCTS search: a generic core (``mcts``), the LLM step world (``llm_world``), the tree table
(``tree_table``), and the runner that searches many problems in batches (``runner``)."""

from astro_pipeline.search.mcts import MCTS, Candidate, Evaluation, SearchNode, SearchTree, World
from astro_pipeline.search.runner import SearchSummary, search_problems
from astro_pipeline.search.settings import SearchSettings
from astro_pipeline.search.tree_table import TREE_NODES_SCHEMA, frame_to_tree, frame_to_trees, tree_to_frame

__all__ = [
    "MCTS",
    "TREE_NODES_SCHEMA",
    "Candidate",
    "Evaluation",
    "SearchNode",
    "SearchSettings",
    "SearchSummary",
    "SearchTree",
    "World",
    "frame_to_tree",
    "frame_to_trees",
    "search_problems",
    "tree_to_frame",
]
