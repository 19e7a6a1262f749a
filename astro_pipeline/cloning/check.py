"""Corpus check (wired into a Dagster asset check): what must hold for every trace and CoT example.

Each violation is one human-readable line ``"<dataset>/<trace_id>: <what>"``; an empty list means
the corpus is sound. Checked:

* examples: the completion's last ``\\boxed`` answer exists and the injected ``verify(gold, pred)``
  (gold first) accepts it against the problem's reference answer, for every kind (search, direct,
  direct_arm); the example's trace exists and agrees on n_backtracks; with ``settings`` given, the
  phrase-bank detector finds exactly n_backtracks backtracks in the completion;
* traces: node ids exist, start at the root and are unique; each step either continues its
  predecessor (parent = previous node) or follows a backtrack, which leaves an incorrect terminal
  for a PROPER ANCESTOR of it (the recorded target) and continues with a child of that target; the
  trace ends at a correct terminal; backtrack counts agree with the kind (direct/direct_arm: 0,
  search: >= 1); the wrong answers of one trace are pairwise distinct, differ from n*'s answer and
  are the answers of the terminals it left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from astro_pipeline.cloning.detect import count_reflections
from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.trace import DIRECT, DIRECT_ARM, SEARCH, Trace, as_traces
from astro_pipeline.cloning.tree import ROOT, Tree, spelling_key, lookup_problem, problem_index, tree_index
from astro_pipeline.verify.extract import last_boxed_content

Verify = Callable[[str, str], bool]


def check_trace(trace: Trace, tree: Tree) -> list[str]:
    """Structural problems of one trace against its tree."""
    where = f"{trace.dataset}/{trace.trace_id}"
    ids = list(trace.node_ids)
    if not ids or ids[0] != ROOT:
        return [f"{where}: node_ids must start at the root (node {ROOT})"]
    missing = [n for n in ids if n not in tree]
    if missing:
        return [f"{where}: nodes {missing} are not in the tree"]
    out: list[str] = []
    if len(set(ids)) != len(ids):
        out.append(f"{where}: a node is visited twice")
    targets = list(trace.backtrack_targets)
    froms = list(trace.backtrack_from)
    left: list[int] = []
    for prev, nxt in zip(ids, ids[1:]):
        parent = tree[nxt].parent_id
        if tree[prev].is_terminal:
            j = len(left)
            left.append(prev)
            if j >= len(targets):
                out.append(f"{where}: backtrack from node {prev} has no recorded target")
                continue
            target = targets[j]
            if target not in tree or not tree.is_ancestor(target, prev):
                out.append(f"{where}: backtrack from node {prev} to {target}, which is not an ancestor of it")
            if parent != target:
                out.append(f"{where}: after backtracking to {target} the trace continues at {nxt}, not a child of it")
            if tree[prev].correct is not False:
                out.append(f"{where}: backtrack leaves node {prev}, which is not an incorrect terminal")
        elif parent != prev:
            out.append(f"{where}: node {nxt} does not continue node {prev} and no backtrack precedes it")
    if len(left) != len(targets):
        out.append(f"{where}: {len(targets)} backtrack targets recorded but {len(left)} backtracks in node_ids")
    if froms and froms != left:
        out.append(f"{where}: backtrack_from {froms} differs from the terminals left {left}")
    last = tree[ids[-1]]
    if not (last.is_terminal and last.correct is True):
        out.append(f"{where}: the trace ends at node {last.node_id}, not at a correct terminal")
    if ids[-1] != trace.correct_node_id:
        out.append(f"{where}: ends at {ids[-1]} but n* is recorded as {trace.correct_node_id}")
    if trace.kind in (DIRECT, DIRECT_ARM) and left:
        out.append(f"{where}: kind {trace.kind} must have no backtrack, has {len(left)}")
    if trace.kind == SEARCH and not left:
        out.append(f"{where}: a search trace without backtrack")
    keys = [spelling_key(a) for a in trace.wrong_answers]
    if len(set(keys)) != len(keys):
        out.append(f"{where}: repeated wrong answers {list(trace.wrong_answers)}")
    if spelling_key(last.answer) in keys:
        out.append(f"{where}: a wrong answer equals n*'s answer {last.answer!r}")
    shown = [spelling_key(tree[n].answer) for n in left]
    if sorted(k or "" for k in shown) != sorted(k or "" for k in keys):
        out.append(f"{where}: wrong_answers {list(trace.wrong_answers)} are not the answers of the terminals left")
    return out


def check_corpus(
    cot_examples: pl.DataFrame,
    traces: pl.DataFrame | list[Trace],
    trees: pl.DataFrame | Mapping[tuple[str, str], Tree],
    problems: pl.DataFrame,
    verify: Verify,
    *,
    settings: CloningSettings | None = None,
) -> list[str]:
    """All violations found (see the module docstring); ``verify(gold, pred) -> bool``."""
    trace_list = as_traces(traces)
    index = tree_index(trees) if isinstance(trees, pl.DataFrame) else dict(trees)
    probs = problem_index(problems)
    out: list[str] = []
    by_id: dict[tuple[str, str], Trace] = {}
    for t in trace_list:
        if (t.dataset, t.trace_id) in by_id:
            out.append(f"{t.dataset}/{t.trace_id}: duplicate trace_id")
        by_id[(t.dataset, t.trace_id)] = t
        tree = index.get((t.dataset, t.problem_id))
        if tree is None:
            out.append(f"{t.dataset}/{t.trace_id}: no tree for problem {t.problem_id}")
            continue
        out.extend(check_trace(t, tree))

    for r in cot_examples.iter_rows(named=True):
        where = f"{r['dataset']}/{r['trace_id']}"
        trace = by_id.get((r["dataset"], r["trace_id"]))
        if trace is None:
            out.append(f"{where}: example without a trace")
        elif trace.n_backtracks != r["n_backtracks"]:
            out.append(f"{where}: n_backtracks {r['n_backtracks']} but the trace has {trace.n_backtracks}")
        prob = lookup_problem(probs, r["dataset"], r["problem_id"])
        gold = None if prob is None else prob.get("answer")
        pred = last_boxed_content(r["completion"] or "")
        if gold is None:
            out.append(f"{where}: no reference answer for problem {r['problem_id']}")
        elif pred is None:
            out.append(f"{where}: the completion has no final \\boxed answer")
        else:
            try:
                ok = bool(verify(str(gold), pred))
            except Exception as exc:  # a verifier crash is a finding, not a crash of the check
                ok = False
                out.append(f"{where}: verifier raised {type(exc).__name__}: {exc}")
            if not ok:
                out.append(f"{where}: final answer {pred!r} does not match the reference {gold!r}")
        if settings is not None:
            _, found = count_reflections(r["completion"] or "", settings)
            if found != r["n_backtracks"]:
                out.append(f"{where}: the detector finds {found} backtracks, the example says {r['n_backtracks']}")
    return out
