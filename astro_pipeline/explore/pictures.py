"""A few sample trees of a dataset as pictures, each with the trace procedure cloning cuts from it.

Used by the search_trees and search_traces assets (Dagster metadata) and by the report. When the
traces are not written yet (the search_trees asset runs before search_traces), they are cut here
for the sample trees alone with the recipe's cloning settings: Algorithm 1 seeds each tree by its
dataset and problem id, so these are the traces search_traces will write. With ``self_eval`` on
that would need the policy model, so the pictures then show the trees without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from astro_pipeline.explore.tree_svg import data_uri, tree_svg
from astro_pipeline.explore.tree_text import tree_text
from astro_pipeline.explore.tree_view import TreeView, best_trace, build_view, pick_trees


@dataclass(frozen=True)
class TreePicture:
    problem_id: str
    view: TreeView
    svg: str

    @property
    def caption(self) -> str:
        v = self.view
        what = f"{v.n_total} nodes"
        if v.trace_id:
            what += f", trace '{v.trace_kind}' with {len(v.backtracks)} backtrack(s)"
        return f"{self.problem_id}: {what}"

    def markdown(self) -> str:
        return f"**{self.caption}**\n\n![tree {self.problem_id}]({data_uri(self.svg)})"

    def text(self, width: int = 120) -> str:
        return tree_text(self.view, width=width)


def _cut_traces(nodes: pl.DataFrame, problem_ids: list[str], cloning) -> pl.DataFrame | None:
    if cloning is None or cloning.self_eval or not problem_ids:
        return None
    from astro_pipeline.cloning import linearize_trees

    return linearize_trees(nodes.filter(pl.col("problem_id").is_in(problem_ids)), cloning).traces


def sample_pictures(tree_nodes: pl.DataFrame, traces: pl.DataFrame | None = None, *, cloning=None,
                    n: int = 3) -> list[TreePicture]:
    """Pictures of up to ``n`` telling trees of ``tree_nodes`` (see ``tree_view.pick_trees``).
    ``traces``: the traces table rows, or None to cut them here with ``cloning`` settings."""
    if tree_nodes.height == 0:
        return []
    if traces is None:
        # rank on the trees alone first, then cut traces for the candidates only
        candidates = [pid for pid, _ in pick_trees(tree_nodes, None, n=max(4 * n, 12))]
        traces = _cut_traces(tree_nodes, candidates, cloning)
        if traces is not None:
            tree_nodes = tree_nodes.filter(pl.col("problem_id").is_in(candidates))
    pictures = []
    for pid, _ in pick_trees(tree_nodes, traces, n=n):
        trace = best_trace(traces, pid) if traces is not None and traces.height else None
        view = build_view(tree_nodes.filter(pl.col("problem_id") == pid), trace)
        pictures.append(TreePicture(pid, view, tree_svg(view)))
    return pictures
