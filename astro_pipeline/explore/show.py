"""``astro show PROBLEM_ID``: everything the warehouse knows about one problem, as terminal text.

Sections, each present only when its table has rows for the problem (and otherwise one line
saying so): the problem and its reference answer; its search tree (indented, the best trace
over it); its traces; its CoT examples; and every stage's completions with their verdicts
(sampled and greedy), stage by stage in pipeline order. Every line fits ``width`` columns;
completions are cut to ``lines`` lines each.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import polars as pl

from astro_pipeline.evaluate.paper import stage_rank
from astro_pipeline.explore.tree_text import tree_text
from astro_pipeline.explore.tree_view import best_trace, build_view

Query = Callable[[str], pl.DataFrame]


class ProblemNotFound(KeyError):
    pass


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _wrap(text: str, width: int, indent: str = "", max_lines: int | None = None) -> list[str]:
    lines: list[str] = []
    for para in (text or "").splitlines() or [""]:
        lines += textwrap.wrap(para, width=max(20, width - len(indent)), replace_whitespace=False,
                               drop_whitespace=True) or [""]
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines] + [f"[... {len(lines) - max_lines} more lines]"]
    return [indent + line for line in lines]


def _find(query: Query, tables: set[str], problem_id: str, dataset: str | None) -> dict:
    if "problems" not in tables:
        raise ProblemNotFound("the warehouse has no problems table yet; run `astro run` first")
    where = f"problem_id = {_quote(problem_id)}" + (f" AND dataset = {_quote(dataset)}" if dataset else "")
    rows = query(f"SELECT * FROM problems WHERE {where}")
    if rows.height == 0:
        hint = query("SELECT dataset, min(problem_id) AS example FROM problems GROUP BY dataset ORDER BY dataset")
        examples = ", ".join(f"{r['example']} ({r['dataset']})" for r in hint.iter_rows(named=True))
        raise ProblemNotFound(f"no problem {problem_id!r}{' in ' + dataset if dataset else ''}; "
                              f"ids look like: {examples}")
    datasets = rows["dataset"].unique().sort().to_list()
    if len(datasets) > 1:
        raise ProblemNotFound(f"{problem_id!r} is in several datasets ({', '.join(datasets)}); pick one with --dataset")
    return rows.row(0, named=True)


def _rows(query: Query, tables: set[str], table: str, where: str) -> pl.DataFrame:
    return query(f"SELECT * FROM {table} WHERE {where}") if table in tables else pl.DataFrame()


def show_problem(query: Query, tables: set[str], problem_id: str, dataset: str | None = None,
                 width: int = 120, lines: int = 6) -> str:
    problem = _find(query, tables, problem_id, dataset)
    ds = problem["dataset"]
    mine = f"problem_id = {_quote(problem_id)}"
    out = [f"PROBLEM {problem_id} (dataset {ds})", *_wrap(problem["problem"], width, "  "),
           f"  reference answer: {problem['answer']}", ""]

    nodes = _rows(query, tables, "tree_nodes", f"{mine} AND dataset = {_quote(ds)}")
    traces = _rows(query, tables, "traces", f"{mine} AND dataset = {_quote(ds)}")
    out.append("SEARCH TREE")
    if nodes.height:
        view = build_view(nodes, best_trace(traces, problem_id) if traces.height else None, max_nodes=10_000)
        out += ["  " + line for line in tree_text(view, width=width - 2).splitlines()]
    else:
        out.append(f"  none: {ds} was not searched (search runs on the recipe's train datasets)")
    out.append("")

    out.append(f"TRACES ({traces.height})")
    for t in (traces.sort("kind", "trace_id").iter_rows(named=True) if traces.height else ()):
        out += _wrap(_trace_line(t), width, "  ")
    out.append("")

    cot = _rows(query, tables, "cot_examples", f"{mine} AND dataset = {_quote(ds)}")
    out.append(f"COT EXAMPLES ({cot.height})")
    for c in (cot.sort("kind", "trace_id").iter_rows(named=True) if cot.height else ()):
        out.append(f"  [{c['kind']}, {c['n_backtracks']} backtrack(s), {c['n_tokens']} tokens] {c['trace_id']}")
        out += _wrap(c["completion"], width, "    | ", max_lines=lines)
    out.append("")

    gens = _rows(query, tables, "eval_generations", f"{mine} AND benchmark = {_quote(ds)}")
    out += _completions(gens, ds, width, lines)
    return "\n".join(line[:width] if len(line) > width else line for line in out).rstrip() + "\n"


def _trace_line(t: dict) -> str:
    back = dict(zip(t["backtrack_from"] or [], t["backtrack_targets"] or []))
    path = []
    for node in t["node_ids"] or []:
        path.append(str(node))
        if node in back:
            path.append(f"↩{back[node]}")
    wrong = ", ".join(t["wrong_answers"] or []) or "none"
    return (f"{t['kind']}: {t['n_backtracks']} backtrack(s) ({t['n_restarts']} restart(s)); nodes {' '.join(path)}; "
            f"wrong answers shown: {wrong}; ends at node {t['correct_node_id']} with answer {t['answer']}")


def _completions(gens: pl.DataFrame, dataset: str, width: int, lines: int) -> list[str]:
    if gens.height == 0:
        return ["EVALUATION", f"  none: {dataset} has no stored completions (evaluation runs on the recipe's benchmarks)"]
    out = [f"EVALUATION ({gens['stage'].n_unique()} stages)"]
    for stage in sorted(gens["stage"].unique().to_list(), key=stage_rank):
        g = gens.filter(pl.col("stage") == stage).sort(pl.col("sample") < 0, "sample")
        sampled = g.filter(pl.col("sample") >= 0)
        right = int(sampled["correct"].fill_null(False).sum())
        out.append(f"  {stage}: {right} of {sampled.height} sampled completions correct")
        for r in g.iter_rows(named=True):
            which = "greedy" if r["sample"] < 0 else f"sample {r['sample']}"
            cut = ", cut at the token budget" if r.get("finish_reason") == "length" else ""
            out.append(f"    {which}: {r['verdict']}, answer {r['answer']}, {r['n_backtracks'] or 0} backtrack(s), "
                       f"{r['n_tokens']} tokens{cut}")
            out += _wrap(r["completion"], width, "      | ", max_lines=lines)
    return out
