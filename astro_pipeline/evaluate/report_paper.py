"""The report's two tables with the same rows: the paper's results, and this run's.

Rows are the paper's models (``paper.PAPER_RESULTS``: Llama-3.1-70B-Instruct, Direct-SFT,
ASTRO-SFT, Direct-RL, ASTRO-RL) matched by role to our stages (base, direct_sft, sft, direct_rl,
rl). Every number says how many samples it rests on: the paper's cells 16 samples per problem of
the whole benchmark; ours "problems x samples", and "20 of 500" where the recipe evaluates a slice.
A cell the run cannot fill carries a footnote saying why (stage not built by the recipe, not
scored yet, benchmark not in the recipe), instead of a bare dash that reads like a zero.
"""

from __future__ import annotations

import polars as pl

from astro_pipeline.evaluate.document import Document
from astro_pipeline.evaluate.paper import BENCHMARK_SIZES, BENCHMARK_TITLES, PAPER_RESULTS, PAPER_SAMPLES, SOURCE

DASH = "—"
NOT_BUILT = "stage not built by this recipe (add it to evaluate.stages)"
NOT_SCORED = "no score yet (the stage's eval_scores partition has not run or failed)"
AMBIGUOUS = "the paper's sources disagree on this cell"


class Footnotes:
    """Numbered footnotes, each text once; ``mark(text)`` gives the cell suffix."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"

    def render(self, doc: Document) -> None:
        if self.texts:
            doc.para(" ".join(f"[{i + 1}] {t}." for i, t in enumerate(self.texts)))


def pct(value, digits: int = 0) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def sample_size(benchmark: str, problems: int | None, samples: int | None) -> str:
    full = BENCHMARK_SIZES.get(benchmark)
    of = f"{problems} of {full}" if full and problems is not None and problems < full else f"{problems}"
    return f"{of} x {samples}"


def paper_table(doc: Document) -> None:
    doc.heading("The paper's results")
    notes = Footnotes()
    sizes = ", ".join(f"{BENCHMARK_TITLES[b]} {n}" for b, n in BENCHMARK_SIZES.items())
    doc.para(f"{SOURCE}. Llama-3.1-70B models; each cell averages {PAPER_SAMPLES} samples over every problem "
             f"of the benchmark ({sizes} problems).")
    rows = []
    for prow in PAPER_RESULTS:
        cells = [prow.model]
        for bench in BENCHMARK_TITLES:
            value = prow.values.get(bench, DASH)
            cells.append(value + (" " + notes.mark(AMBIGUOUS) if " or " in value else ""))
        rows.append(cells)
    doc.table(["model", *BENCHMARK_TITLES.values()], rows)
    notes.render(doc)


def our_table(doc: Document, board: pl.DataFrame, behaviour: pl.DataFrame,
              benchmarks: tuple[str, ...] | None, stages: tuple[str, ...] | None) -> None:
    """This run's table, rows as the paper's: pass@1 ± stderr (sample size), truncated share and the
    share of samples with a counted backtrack, per benchmark scored."""
    doc.heading("This run, the same rows")
    notes = Footnotes()
    scored = list(dict.fromkeys(board["benchmark"].to_list())) if board.height else []
    benches = [b for b in (benchmarks or ()) if b in scored] + [b for b in scored if b not in (benchmarks or ())]
    if not benches:
        doc.para("No evaluation scores yet.")
        return
    doc.para("pass@1 ± standard error in %, with problems x samples per problem; truncated: sampled completions "
             "cut at the token budget; backtracked: sampled completions with at least one backtrack the "
             "detector counts. Latest run per benchmark and stage.")
    cells = {(r["benchmark"], r["stage"]): r for r in board.iter_rows(named=True)}
    shares = {(r["benchmark"], r["stage"]): r for r in behaviour.iter_rows(named=True)}
    columns = ["paper's model", "our stage"]
    for b in benches:
        columns += [f"{b} pass@1", f"{b} truncated", f"{b} backtracked"]
    rows = []
    for prow in PAPER_RESULTS:
        row = [prow.model, prow.stage]
        for b in benches:
            score = cells.get((b, prow.stage))
            if score is None:
                why = NOT_BUILT if stages is not None and prow.stage not in stages else NOT_SCORED
                row += [f"{DASH} {notes.mark(why)}", DASH, DASH]
                continue
            share = shares.get((b, prow.stage)) or {}
            size = sample_size(b, score["n_problems"], score["n_samples"])
            row += [f"{score['pass_at_1_text'] or DASH} ({size})", pct(share.get("truncated_share")),
                    pct(share.get("backtrack_share"))]
        rows.append(row)
    doc.table(columns, rows)
    missing = [BENCHMARK_TITLES[b] for b in BENCHMARK_TITLES if b not in benches]
    if missing:
        notes.mark(f"{', '.join(missing)}: not evaluated in this run (not in the recipe's datasets.benchmarks, "
                   "or not scored yet), so the paper's columns for them have no counterpart here")
    notes.render(doc)
