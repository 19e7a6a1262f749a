"""The Direct arm (ablation): the best correct path per tree, no reflection, count-matched.

Best correct path: from the root, repeatedly step to the child that leads to an allowed correct
terminal (Psi, after the self-evaluation filter when it is on) and has the most visits; ties go to
the higher Q value, then the lower node id. Most-visited descent is how MCTS commits to a move
(AlphaZero-style), and restricting it to subtrees containing a correct terminal guarantees the path
ends correct. The trace has kind ``"direct_arm"`` (never ``"direct"``: that is the ASTRO corpus's own
k = 0 examples).

Count matching ("same number of examples", DESIGN.md §2): per dataset, the Direct arm gets as many
examples as the ASTRO corpus (direct + search) of that dataset. The problems with a correct path are
put in one order, a seeded shuffle (settings.seed, dataset) of their sorted ids, and taken
cyclically: example i is problem ``order[i % P]``, repeat ``i // P`` (the repeat index is part of
the trace id). So every problem appears ``floor(N/P)`` or ``ceil(N/P)`` times and which ones get the
extra copy is seeded, not alphabetical. Without count matching: one example per problem.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from itertools import groupby

from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.trace import DIRECT_ARM, Trace, trace_id
from astro_pipeline.cloning.tree import ROOT, Tree


def best_correct_path(tree: Tree, allowed_correct: Collection[int] | None = None) -> list[int] | None:
    """Root-to-n* node ids of the most-visited path to a correct terminal; None when Psi is empty."""
    psi = set(tree.correct_terminals())
    if allowed_correct is not None:
        psi &= set(allowed_correct)
    if not psi:
        return None
    good: set[int] = set()  # nodes whose subtree holds an allowed correct terminal
    for n in psi:
        good.update(tree.path(n))
    path = [ROOT]
    while path[-1] not in psi:
        kids = [c for c in tree.children[path[-1]] if c in good]
        best = max(kids, key=lambda c: (tree[c].visits, tree[c].q_value, -c))
        path.append(best)
    return path


def direct_arm_traces(
    trees: list[Tree],
    settings: CloningSettings,
    n_target: Mapping[str, int] | None,
    *,
    allowed: Mapping[tuple[str, str], Collection[int]] | None = None,
) -> list[Trace]:
    """Direct-arm traces for ``trees``; ``n_target[dataset]`` examples per dataset (None: one per problem)."""
    out: list[Trace] = []
    ordered = sorted(trees, key=lambda t: (t.dataset, t.problem_id))
    for dataset, group in groupby(ordered, key=lambda t: t.dataset):
        base: list[tuple[Tree, list[int]]] = []
        for tree in group:
            ok = None if allowed is None else allowed.get((tree.dataset, tree.problem_id), set())
            path = best_correct_path(tree, ok)
            if path is not None:
                base.append((tree, path))
        if not base:
            continue
        random.Random(f"{settings.seed}:direct_arm:{dataset}").shuffle(base)
        total = len(base) if n_target is None else int(n_target.get(dataset, 0))
        for i in range(total):
            tree, path = base[i % len(base)]
            rep = i // len(base)
            out.append(
                Trace(
                    dataset=tree.dataset,
                    problem_id=tree.problem_id,
                    trace_id=trace_id(tree.problem_id, DIRECT_ARM, path, repeat=rep),
                    kind=DIRECT_ARM,
                    node_ids=tuple(path),
                    backtrack_from=(),
                    backtrack_targets=(),
                    wrong_answers=(),
                    correct_node_id=path[-1],
                    answer=tree[path[-1]].answer,
                    repeat=rep,
                )
            )
    return out
