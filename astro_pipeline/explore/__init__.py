"""Looking inside the pipeline's data: one search tree with its trace as a picture or as text, and
everything known about one problem (``astro show``). Reads the warehouse tables generically
(tree_nodes, traces, cot_examples, eval_generations); never imports dagster."""

from astro_pipeline.explore.tree_svg import tree_svg
from astro_pipeline.explore.tree_text import tree_text
from astro_pipeline.explore.tree_view import TreeView, build_view, pick_trees

__all__ = ["TreeView", "build_view", "pick_trees", "tree_svg", "tree_text"]
