"""Procedure cloning (Algorithm 1 of ASTRO): search trees -> linear sequences with backtracks.

Per tree:

1. Psi = correct terminal leaves, Lambda = incorrect terminal leaves with an answer (``tree.py``).
   With ``self_eval`` on, Psi keeps only the terminals that passed the self-evaluation filter
   (``selfeval.py``; all N votes must say yes). No Psi -> no traces (reported, not silent).
2. Per sequence: draw n* uniformly from Psi; draw k incorrect terminals with PAIRWISE DIFFERENT
   answers (``spelling_key``), none with n*'s own answer: first k distinct answers are sampled
   without replacement, then one terminal per answer.
3. Visit the k incorrect terminals, then n* (always last). Each contributes its root path minus
   the nodes already in the sequence. The sequence's node set is closed under ancestors, so the
   nodes already present form a prefix of the next path: its last node is the backtrack target
   (the root = a restart) and the rest is appended. The order of the incorrect terminals (which
   the paper leaves open) is a depth-first order with seeded random sibling order and n*'s branch
   last (``visiting_order``): then each target is the lowest common ancestor of the terminal just
   left and the next one, i.e. every backtrack returns to a proper ancestor of the node it leaves.
4. Per problem: ``n_direct`` sequences with k = 0 (kind "direct") when 0 is an allowed k, and up to
   ``n_search`` with k drawn uniformly from the allowed k >= 1 that the tree can supply (kind
   "search"), deduplicated by node order; at most ``n_search * max_attempts_factor`` draws.

Randomness: one ``random.Random`` per problem, seeded from (settings.seed, dataset, problem_id)
through ``seeds.derive_seed``, with Psi/Lambda in node-id order, so the result does not depend on
row order, process or Python's hash seed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.trace import DIRECT, DIRECT_ARM, SEARCH, Trace, trace_id, traces_to_frame
from astro_pipeline.cloning.tree import Tree, spelling_key, iter_trees
from astro_pipeline.seeds import derive_seed

AnswerKey = Callable[[str | None], str | None]


def clone_sequence(tree: Tree, wrong: list[int], correct: int) -> tuple[list[int], list[int], list[int]]:
    """Visit ``wrong`` terminals (Lambda) in order, then n* = ``correct``.

    Returns (node_ids in visiting order, backtrack_from, backtrack_targets).
    """
    seq: list[int] = []
    present: set[int] = set()
    froms: list[int] = []
    targets: list[int] = []
    for terminal in [*wrong, correct]:
        path = tree.path(terminal)
        shared = 0
        while shared < len(path) and path[shared] in present:
            shared += 1
        new = path[shared:]
        if any(n in present for n in new):  # cannot happen for an ancestor-closed set
            raise AssertionError(f"{tree.problem_id}: nodes already visited are not a prefix of {path}")
        if not new:
            raise ValueError(f"{tree.problem_id}: terminal {terminal} already visited (is it an ancestor?)")
        if seq:
            froms.append(seq[-1])
            targets.append(path[shared - 1])  # deepest node of this path already in the sequence
        seq.extend(new)
        present.update(new)
    return seq, froms, targets


def visiting_order(tree: Tree, wrong: list[int], n_star: int, rng: random.Random) -> list[int]:
    """Order the incorrect terminals as a depth-first walk that reaches n* last.

    Children are taken in a seeded random order, except that the child leading to n* always comes
    last. In any depth-first order, the deepest node of the next path already visited is the
    lowest common ancestor of the terminal just left and the next one, so EVERY backtrack returns
    to an ancestor of the node it leaves (an arbitrary order could "go back" into a branch
    abandoned earlier, which is not a backtrack along the current line of reasoning).
    """
    on_star_path = set(tree.path(n_star))
    rank: dict[int, dict[int, int]] = {}  # parent -> child -> position among its siblings

    def key(terminal: int) -> tuple[int, ...]:
        out = []
        path = tree.path(terminal)
        for parent, child in zip(path, path[1:]):
            if parent not in rank:
                kids = list(tree.children[parent])
                rng.shuffle(kids)
                kids.sort(key=lambda c: c in on_star_path)  # stable: n*'s branch last
                rank[parent] = {c: i for i, c in enumerate(kids)}
            out.append(rank[parent][child])
        return tuple(out)

    keys = {w: key(w) for w in sorted(wrong)}
    return sorted(wrong, key=lambda w: keys[w])


def _answer_groups(tree: Tree, lam: list[int], key: AnswerKey) -> dict[str, list[int]]:
    """Lambda grouped by answer key (sorted keys, node ids ascending)."""
    groups: dict[str, list[int]] = {}
    for nid in lam:
        k = key(tree[nid].answer)
        if k is not None:
            groups.setdefault(k, []).append(nid)
    return dict(sorted(groups.items()))


def _make_trace(tree: Tree, kind: str, wrong: list[int], correct: int) -> Trace:
    seq, froms, targets = clone_sequence(tree, wrong, correct)
    return Trace(
        dataset=tree.dataset,
        problem_id=tree.problem_id,
        trace_id=trace_id(tree.problem_id, kind, seq),
        kind=kind,
        node_ids=tuple(seq),
        backtrack_from=tuple(froms),
        backtrack_targets=tuple(targets),
        wrong_answers=tuple(str(tree[n].answer) for n in wrong),
        correct_node_id=correct,
        answer=tree[correct].answer,
    )


def linearize_tree(
    nodes: pl.DataFrame | Tree,
    settings: CloningSettings,
    rng_seed: int,
    *,
    allowed_correct: Collection[int] | None = None,
    key: AnswerKey = spelling_key,
) -> list[Trace]:
    """Algorithm 1 on one problem's tree: direct (k=0) then search (k>=1) traces.

    ``allowed_correct``: the correct terminals that passed the self-evaluation filter (None = all
    of Psi). ``key``: answer normalization for "pairwise different answers".
    """
    tree = nodes if isinstance(nodes, Tree) else Tree.from_frame(nodes)
    psi = tree.correct_terminals()  # Psi
    if allowed_correct is not None:
        allowed = set(allowed_correct)
        psi = [n for n in psi if n in allowed]
    if not psi:
        return []
    lam = tree.incorrect_terminals()  # Lambda
    rng = random.Random(rng_seed)
    out: list[Trace] = []
    seen: set[tuple[int, ...]] = set()

    def keep(trace: Trace) -> bool:
        if trace.node_ids in seen:
            return False
        seen.add(trace.node_ids)
        out.append(trace)
        return True

    if 0 in settings.backtracks and settings.n_direct:
        wanted, made = settings.n_direct, 0
        for _ in range(settings.n_direct * settings.max_attempts_factor):
            n_star = rng.choice(psi)
            made += keep(_make_trace(tree, DIRECT, [], n_star))
            if made == wanted or made == len(psi):
                break

    groups = _answer_groups(tree, lam, key)
    star_key = {n: key(tree[n].answer) for n in psi}
    # the largest k any n* can use: distinct wrong answers other than n*'s own
    most = max(len(groups) - (star_key[n] in groups) for n in psi)
    ks = [k for k in settings.search_backtracks if k <= most]
    if ks and settings.n_search:
        made = 0
        for _ in range(settings.n_search * settings.max_attempts_factor):
            n_star = rng.choice(psi)
            k = rng.choice(ks)
            usable = [a for a in groups if a != star_key[n_star]]
            if k > len(usable):
                continue
            answers = rng.sample(usable, k)  # k pairwise different wrong answers
            wrong = visiting_order(tree, [rng.choice(groups[a]) for a in answers], n_star, rng)
            made += keep(_make_trace(tree, SEARCH, wrong, n_star))
            if made == settings.n_search:
                break
    return out


@dataclass
class LinearizeResult:
    """Traces of many problems plus what was skipped and why (for asset metadata)."""

    traces: pl.DataFrame
    skipped: pl.DataFrame  # dataset, problem_id, reason
    stats: dict[str, Any] = field(default_factory=dict)


SKIP_SCHEMA = {"dataset": pl.String, "problem_id": pl.String, "reason": pl.String}


def linearize_trees(
    trees: pl.DataFrame,
    settings: CloningSettings,
    *,
    problems: pl.DataFrame | None = None,
    backend: Any = None,
    key: AnswerKey = spelling_key,
) -> LinearizeResult:
    """Algorithm 1 over a tree_nodes frame of many problems (+ the Direct arm when enabled).

    Skipped problems are listed with a reason: ``no_correct_terminal`` (Psi empty),
    ``self_eval_rejected`` (no correct terminal passed the filter), ``no_sequence`` (the settings
    allow no sequence the tree can supply, e.g. k = 0 disabled and no wrong answer), ``no_tree``
    (in ``problems`` but without rows in ``trees``). ``backend`` and ``problems`` are needed only with ``self_eval``.
    """
    from astro_pipeline.cloning.direct_arm import direct_arm_traces

    tree_list = list(iter_trees(trees))
    allowed: dict[tuple[str, str], set[int]] | None = None
    if settings.self_eval:
        from astro_pipeline.cloning.selfeval import self_eval_filter

        if backend is None or problems is None:
            raise ValueError("cloning.self_eval is on: linearize_trees needs backend= and problems=")
        allowed = self_eval_filter(backend, tree_list, problems, settings)

    traces: list[Trace] = []
    skipped: list[dict[str, str]] = []
    usable: list[Tree] = []
    short_of_search = 0
    for tree in tree_list:
        k = (tree.dataset, tree.problem_id)
        if not tree.correct_terminals():
            skipped.append({"dataset": tree.dataset, "problem_id": tree.problem_id, "reason": "no_correct_terminal"})
            continue
        ok = None if allowed is None else allowed.get(k, set())
        if ok is not None and not ok:
            skipped.append({"dataset": tree.dataset, "problem_id": tree.problem_id, "reason": "self_eval_rejected"})
            continue
        got = linearize_tree(tree, settings, derive_seed(settings.seed, *k), allowed_correct=ok, key=key)
        if not got:  # e.g. direct sequences disabled and no distinct wrong answer to backtrack from
            skipped.append({"dataset": tree.dataset, "problem_id": tree.problem_id, "reason": "no_sequence"})
            continue
        usable.append(tree)
        short_of_search += sum(t.kind == SEARCH for t in got) < settings.n_search
        traces.extend(got)

    if problems is not None:
        has_ds = "dataset" in problems.columns
        have = {(t.dataset if has_ds else None, t.problem_id) for t in tree_list}
        for r in problems.iter_rows(named=True):
            ds = str(r["dataset"]) if has_ds else None
            pid = str(r["problem_id"])
            if (ds, pid) not in have:
                skipped.append({"dataset": ds or "", "problem_id": pid, "reason": "no_tree"})

    if settings.direct_arm:
        n_astro = Counter(t.dataset for t in traces)
        traces.extend(direct_arm_traces(usable, settings, n_astro if settings.direct_arm_count_match else None,
                                        allowed=allowed))

    frame = traces_to_frame(traces)
    skip_frame = pl.DataFrame(skipped, schema=SKIP_SCHEMA)
    astro = [t for t in traces if t.kind in (DIRECT, SEARCH)]
    reasons = Counter(s["reason"] for s in skipped)
    stats: dict[str, Any] = {
        "n_trees": len(tree_list),
        "n_problems_with_traces": len(usable),
        "n_no_correct_terminal": reasons.get("no_correct_terminal", 0),
        "n_self_eval_rejected": reasons.get("self_eval_rejected", 0),
        "n_no_sequence": reasons.get("no_sequence", 0),
        "n_no_tree": reasons.get("no_tree", 0),
        "n_short_of_search": short_of_search,
        "n_traces": {kind: sum(t.kind == kind for t in traces) for kind in (DIRECT, SEARCH, DIRECT_ARM)},
        "backtracks_histogram": {str(k): n for k, n in sorted(Counter(t.n_backtracks for t in astro).items())},
        "n_restarts": sum(t.n_restarts for t in astro),
        "tree_anomalies": dict(sum((Counter(t.anomalies) for t in tree_list), Counter())),
    }
    return LinearizeResult(traces=frame, skipped=skip_frame, stats=stats)
