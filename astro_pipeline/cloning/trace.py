"""The linearized sequence (warehouse table ``traces``) and its frame form.

A ``Trace`` is one walk through a search tree, produced by Algorithm 1 (procedure cloning):
``node_ids`` in visiting order (root first, each node once), the incorrect terminals it left
(``backtrack_from``, members of Lambda) and where each backtrack returned to (``backtrack_targets``:
the deepest node of the next path already in the sequence; the root means a restart), the wrong
answers it showed, and n* (``correct_node_id``), the correct terminal it ends at.

Kinds: ``"direct"`` (ASTRO's own k = 0 examples), ``"search"`` (k >= 1) and ``"direct_arm"`` (the
ablation corpus: best correct path, no reflection). ``ASTRO_KINDS`` are the kinds of the ASTRO SFT
corpus; consumers must select by kind so the Direct arm never leaks into it.

``trace_id`` is stable across runs: ``"{problem_id}#{kind}-{hash of node_ids}"`` (plus ``-r{repeat}``
for the Direct arm, whose count matching may repeat a problem).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from astro_pipeline.cloning.tree import ROOT
from astro_pipeline.warehouse.tables import TRACES

DIRECT = "direct"
SEARCH = "search"
DIRECT_ARM = "direct_arm"
ASTRO_KINDS = (DIRECT, SEARCH)
KINDS = (DIRECT, SEARCH, DIRECT_ARM)

TRACE_SCHEMA = TRACES.schema  # the traces table's contract (warehouse.tables)


@dataclass(frozen=True)
class Trace:
    dataset: str
    problem_id: str
    trace_id: str
    kind: str
    node_ids: tuple[int, ...]
    backtrack_from: tuple[int, ...]
    backtrack_targets: tuple[int, ...]
    wrong_answers: tuple[str, ...]
    correct_node_id: int  # n*
    answer: str | None  # n*'s answer
    repeat: int = 0

    @property
    def n_backtracks(self) -> int:
        return len(self.backtrack_targets)

    @property
    def n_restarts(self) -> int:
        return sum(1 for t in self.backtrack_targets if t == ROOT)

    def row(self) -> dict:
        return {
            "dataset": self.dataset,
            "problem_id": self.problem_id,
            "trace_id": self.trace_id,
            "kind": self.kind,
            "n_backtracks": self.n_backtracks,
            "n_restarts": self.n_restarts,
            "node_ids": list(self.node_ids),
            "backtrack_from": list(self.backtrack_from),
            "backtrack_targets": list(self.backtrack_targets),
            "wrong_answers": list(self.wrong_answers),
            "correct_node_id": self.correct_node_id,
            "answer": self.answer,
            "repeat": self.repeat,
        }


def trace_id(problem_id: str, kind: str, node_ids: Iterable[int], repeat: int | None = None) -> str:
    digest = hashlib.sha1(",".join(str(i) for i in node_ids).encode()).hexdigest()[:10]
    tid = f"{problem_id}#{kind}-{digest}"
    return tid if repeat is None else f"{tid}-r{repeat}"


def traces_to_frame(traces: Iterable[Trace]) -> pl.DataFrame:
    return pl.DataFrame([t.row() for t in traces], schema=TRACE_SCHEMA)


def traces_from_frame(frame: pl.DataFrame) -> list[Trace]:
    out = []
    for r in frame.iter_rows(named=True):
        out.append(
            Trace(
                dataset=str(r["dataset"]),
                problem_id=str(r["problem_id"]),
                trace_id=str(r["trace_id"]),
                kind=str(r["kind"]),
                node_ids=tuple(int(i) for i in r["node_ids"]),
                backtrack_from=tuple(int(i) for i in (r.get("backtrack_from") or [])),
                backtrack_targets=tuple(int(i) for i in (r.get("backtrack_targets") or [])),
                wrong_answers=tuple(r.get("wrong_answers") or []),
                correct_node_id=int(r["correct_node_id"]) if r.get("correct_node_id") is not None else int(r["node_ids"][-1]),
                answer=r.get("answer"),
                repeat=int(r.get("repeat") or 0),
            )
        )
    return out


def as_traces(traces: pl.DataFrame | Iterable[Trace]) -> list[Trace]:
    return traces_from_frame(traces) if isinstance(traces, pl.DataFrame) else list(traces)
