"""A few stored completions that show how a stage answers, for the UI and the report.

Design: the choice is deterministic (rows sorted by problem and sample) and favours the behaviour a
researcher looks for: first a correct completion with a counted backtrack, then one with any
backtrack, a correct one and a wrong one, then whatever is left. Only sampled completions
(``sample >= 0``) are shown: the greedy one is a different decoding. Long completions are cut for
display (never in the data) with the cut said in the text.
"""

from __future__ import annotations

import polars as pl

MAX_SHOWN_CHARS = 1500


def pick_samples(generations: pl.DataFrame, n: int = 3) -> pl.DataFrame:
    """Up to ``n`` sampled completions of one (benchmark, stage), the most telling first."""
    if generations.height == 0 or n < 1:
        return generations.head(0)
    g = generations.filter(pl.col("sample") >= 0).sort("problem_id", "sample")
    backtracks = pl.col("n_backtracks").fill_null(0) > 0
    correct = pl.col("correct").fill_null(False)
    preferences = [backtracks & correct, backtracks, correct, ~correct, pl.lit(True)]
    chosen: list[int] = []
    indexed = g.with_row_index("_row")
    for wanted in preferences:
        for row in indexed.filter(wanted)["_row"].to_list():
            if len(chosen) >= n:
                break
            if row not in chosen:
                chosen.append(row)
                break  # one per preference first, so the picks differ in kind
    for row in indexed["_row"].to_list():  # fill up when some kinds are absent
        if len(chosen) >= n:
            break
        if row not in chosen:
            chosen.append(row)
    return indexed.filter(pl.col("_row").is_in(chosen)).sort(
        pl.col("_row").replace_strict({r: i for i, r in enumerate(chosen)})).drop("_row")


def first_backtracking(generations: pl.DataFrame, stages: tuple[str, ...]) -> dict | None:
    """The first sampled completion of the given stages (in that order) with a counted backtrack,
    preferring correct ones, from the benchmark where the stage is most accurate (a lucky right
    answer on a benchmark the model cannot do shows little); None when no such completion is stored."""
    for stage in stages:
        mine = generations.filter((pl.col("stage") == stage) & (pl.col("sample") >= 0))
        g = mine.filter(pl.col("n_backtracks").fill_null(0) > 0)
        if g.height:
            accuracy = mine.group_by("benchmark").agg(pl.col("correct").fill_null(False).mean().alias("_accuracy"))
            return (g.join(accuracy, on="benchmark")
                    .sort(pl.col("correct").fill_null(False), "_accuracy", "benchmark", "problem_id", "sample",
                          descending=[True, True, False, False, False])
                    .drop("_accuracy").row(0, named=True))
    return None


def shown_text(completion: str | None, limit: int = MAX_SHOWN_CHARS) -> str:
    text = completion or ""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not shown]"


def sample_heading(row: dict) -> str:
    verdict = row.get("verdict") or ("correct" if row.get("correct") else "wrong")
    parts = [f"problem {row.get('problem_id')}", f"sample {row.get('sample')}", verdict,
             f"answer {row.get('answer')!s} (reference {row.get('gold')!s})",
             f"{row.get('n_backtracks') or 0} backtrack(s)", f"{row.get('n_tokens') or '?'} tokens"]
    if row.get("finish_reason") == "length":
        parts.append("cut at the token budget")
    return ", ".join(parts)


def samples_markdown(samples: pl.DataFrame) -> str:
    """The picked completions as Markdown: a heading line each, the text in a code block."""
    if samples.height == 0:
        return "no sampled completions stored"
    blocks = []
    for row in samples.iter_rows(named=True):
        text = shown_text(row.get("completion")).replace("```", "'''")
        blocks.append(f"**{sample_heading(row)}**\n\n```\n{text}\n```")
    return "\n\n".join(blocks)
