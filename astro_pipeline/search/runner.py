"""Search many problems: batched MCTS trees, per-tree hand-off, progress and a summary.

Design choices:

* Up to ``parallel_trees`` trees are active at once and advance in lock-step: one MCTS iteration of
  all of them costs one expansion generation call, one rollout generation call and one verifier
  call (more generation calls only when ``max_sequences_per_call`` splits a phase).
* A tree is finished after ``iterations`` iterations ("iterations"), earlier when nothing is left
  to expand ("exhausted": every leaf terminal, with ``skip_exhausted``), or, with ``early_stop``,
  once procedure cloning has what it needs ("cloning_ready": a correct terminal and
  ``stop_incorrect`` incorrect ones with pairwise distinct answers, after ``min_iterations``). The
  reason is kept on the tree (``stop_reason`` of its root row). A finished tree is turned into
  ``tree_nodes`` rows and handed to ``on_tree(problem_id, nodes_df)`` right away, and its slot is
  refilled from the queue, so a killed run loses at most the trees in flight. ``done_ids``
  (problem ids already written) are skipped: resuming never re-searches a finished problem.
* Problems without a gold answer (null or blank) are skipped and counted: a tree searched against
  no reference would only ever hold "incorrect" terminals.
* Progress: a tqdm bar (problems, tokens/s) when ``progress`` is true (None: when stderr is a
  terminal), and ``log(msg)`` lines after every iteration step and every finished batch of trees.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from astro_pipeline.cloning.tree import spelling_key
from astro_pipeline.llm.protocol import Backend
from astro_pipeline.search.llm_world import LLMStepWorld, Problem
from astro_pipeline.search.mcts import MCTS, SearchTree
from astro_pipeline.search.metered import MeteredBackend
from astro_pipeline.search.rewards import make_reward_fn
from astro_pipeline.search.settings import SearchSettings
from astro_pipeline.search.tree_table import tree_to_frame
from astro_pipeline.verify.rules import Verifier
from astro_pipeline.warehouse.tables import require_columns

PROBLEM_COLUMNS = ("dataset", "problem_id", "problem", "answer")


@dataclass
class SearchSummary:
    problems_total: int = 0  # rows in the problems frame
    problems_searched: int = 0
    problems_skipped_done: int = 0
    problems_skipped_no_gold: int = 0
    share_with_correct: float = 0.0  # trees with at least one correct terminal
    share_with_both: float = 0.0  # trees with a correct AND an incorrect terminal
    mean_nodes: float = 0.0
    tokens_generated: int = 0
    tokens_per_second: float = 0.0  # tokens generated / wall time
    generate_calls: int = 0
    rollouts: int = 0
    rollouts_truncated: int = 0
    merged_samples: int = 0  # sampled steps folded into an identical sibling or rollout step
    stop_reasons: dict[str, int] = field(default_factory=dict)  # why the trees stopped
    mean_iterations: float = 0.0
    wall_s: float = 0.0
    generation_s: float = 0.0
    outside_generation_s: float = 0.0
    verify_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tree_facts(tree: SearchTree) -> tuple[int, bool, bool]:
    """(nodes, has a correct terminal, has an incorrect terminal)."""
    terminals = [n for n in tree.nodes if n.terminal and n.reward is not None]
    correct = [bool(n.payload.get("correct")) for n in terminals]
    return len(tree.nodes), any(correct), any(not c for c in correct)


def cloning_ready(tree: SearchTree, need_incorrect: int) -> bool:
    """Whether ``tree`` holds what procedure cloning needs: a correct terminal and ``need_incorrect``
    incorrect terminals whose answers are pairwise distinct and differ from every correct answer."""
    terminals = [n for n in tree.nodes if n.terminal and n.reward is not None]
    correct = {spelling_key(n.payload.get("answer")) for n in terminals if n.payload.get("correct")}
    if not correct:
        return False
    wrong = {spelling_key(n.payload.get("answer")) for n in terminals
             if not n.payload.get("correct") and n.payload.get("answer") is not None}
    return len(wrong - correct - {None}) >= need_incorrect


def stop_reason(tree: SearchTree, mcts: MCTS, settings: SearchSettings) -> str | None:
    """Why ``tree`` is finished now (see the module docstring), or None while it goes on."""
    if settings.early_stop and tree.iterations >= settings.min_iterations and cloning_ready(tree, settings.stop_incorrect):
        return "cloning_ready"
    if mcts.exhausted(tree):
        return "exhausted"
    if tree.iterations >= settings.iterations:
        return "iterations"
    return None


def _problems(frame: pl.DataFrame) -> list[Problem]:
    require_columns(frame, PROBLEM_COLUMNS, "problems frame")
    keys = frame.select("dataset", "problem_id")
    if keys.is_duplicated().any():
        dup = keys.filter(keys.is_duplicated()).row(0)
        raise ValueError(f"problems frame has duplicate (dataset, problem_id), e.g. {dup}")
    return [Problem(str(r["dataset"]), str(r["problem_id"]), str(r["problem"]),
                    None if r["answer"] is None else str(r["answer"]))
            for r in frame.select(PROBLEM_COLUMNS).iter_rows(named=True)]


class _Progress:
    def __init__(self, total: int, enabled: bool | None, log: Callable[[str], None] | None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="problem", desc="search", dynamic_ncols=True)
        self.log = log
        self.total = total

    def update(self, done: int, finished_now: int, tokens: int, elapsed: float, active: int) -> None:
        tps = tokens / elapsed if elapsed > 0 else 0.0
        if self.bar is not None:
            self.bar.update(finished_now)
            self.bar.set_postfix(tok_s=f"{tps:,.0f}", active=active)
        if self.log is not None:
            self.log(f"search: {done}/{self.total} problems done, {active} trees active, "
                     f"{tokens:,} tokens, {tps:,.0f} tokens/s, {elapsed:,.1f}s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def search_problems(
    problems: pl.DataFrame,
    backend: Backend,
    verifier: Verifier,
    settings: SearchSettings,
    *,
    done_ids: Iterable[str] = (),
    on_tree: Callable[[str, pl.DataFrame], None] | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> SearchSummary:
    """MCTS for every problem not in ``done_ids``; ``on_tree`` gets each tree as soon as it is done.

    ``verifier``: a ``BatchVerifier`` (``verify_many``), a ``(golds, responses)`` callable or a
    ``(pairs)`` callable, gold first (see astro_pipeline.search.rewards).
    """
    t_start = time.perf_counter()
    all_problems = _problems(problems)
    done = {str(d) for d in done_ids}
    summary = SearchSummary(problems_total=len(all_problems))
    todo = [p for p in all_problems if p.problem_id not in done]
    summary.problems_skipped_done = len(all_problems) - len(todo)
    with_gold = [p for p in todo if p.answer is not None and str(p.answer).strip()]
    summary.problems_skipped_no_gold = len(todo) - len(with_gold)
    if log is not None and summary.problems_skipped_no_gold:
        log(f"search: skipping {summary.problems_skipped_no_gold} problem(s) without a gold answer")

    generator = MeteredBackend(backend, settings.max_sequences_per_call)
    world = LLMStepWorld(generator, make_reward_fn(verifier), settings)
    mcts = MCTS(world, c_puct=settings.c_puct, max_depth=settings.max_depth, skip_exhausted=settings.skip_exhausted,
                merge_siblings=settings.merge_siblings, max_children=settings.k, backup=settings.backup)
    queue = deque(with_gold)
    active: list[SearchTree] = []
    bar = _Progress(len(with_gold), progress, log)
    n_nodes = n_correct = n_both = n_iterations = 0
    reasons: dict[str, int] = {}
    try:
        while queue or active:
            while queue and len(active) < settings.parallel_trees:
                problem = queue.popleft()
                active.append(mcts.new_tree(world.root_state(problem), key=problem))
            mcts.step(active)
            for tree in active:
                tree.stop_reason = stop_reason(tree, mcts, settings)
            finished = [t for t in active if t.stop_reason is not None]
            active = [t for t in active if t.stop_reason is None]
            for tree in finished:
                nodes, has_correct, has_incorrect = _tree_facts(tree)
                n_nodes += nodes
                n_correct += has_correct
                n_both += has_correct and has_incorrect
                n_iterations += tree.iterations
                summary.merged_samples += tree.merged
                reasons[tree.stop_reason] = reasons.get(tree.stop_reason, 0) + 1
                summary.problems_searched += 1
                if on_tree is not None:
                    on_tree(tree.key.problem_id, tree_to_frame(tree.key.dataset, tree.key.problem_id, tree))
            bar.update(summary.problems_searched, len(finished), generator.stats.tokens,
                       time.perf_counter() - t_start, len(active))
    finally:
        bar.close()

    n = summary.problems_searched
    summary.share_with_correct = n_correct / n if n else 0.0
    summary.share_with_both = n_both / n if n else 0.0
    summary.mean_nodes = n_nodes / n if n else 0.0
    summary.mean_iterations = n_iterations / n if n else 0.0
    summary.stop_reasons = dict(sorted(reasons.items()))
    summary.tokens_generated = generator.stats.tokens
    summary.generate_calls = generator.stats.calls
    summary.generation_s = generator.stats.seconds
    summary.rollouts = world.stats.rollouts
    summary.rollouts_truncated = world.stats.rollouts_truncated
    summary.verify_s = world.stats.verify_seconds
    summary.wall_s = time.perf_counter() - t_start
    summary.outside_generation_s = summary.wall_s - summary.generation_s
    summary.tokens_per_second = summary.tokens_generated / summary.wall_s if summary.wall_s > 0 else 0.0
    return summary
