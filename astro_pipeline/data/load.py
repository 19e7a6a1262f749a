"""``load_problems``: one dataset source -> the normalized ``problems`` table, the ``quarantine``
table and load statistics.

Design choices:

* No row is lost: every input row ends in ``problems`` or in ``quarantine`` with a reason, and
  ``load_problems`` asserts ``loaded + quarantined == input_rows`` before returning. Blank JSON
  Lines / CSV lines are not rows (they are counted in ``stats["blank_lines"]``).
* Duplicate ids: the first row with an id wins, later ones are quarantined as "duplicate id"
  (with the line of the first one in ``detail``). Rows rejected for another reason never claim
  an id.
* ``limit`` keeps the first N *problems* in source order; reading stops right after the N-th
  problem, so the rows counted (and accounted for) are those read up to that point and
  ``stats["stopped_at_limit"]`` says whether rows were left unread.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from astro_pipeline.data.normalize import Rejection, normalize_row
from astro_pipeline.data.readers import iter_raw_rows
from astro_pipeline.data.schema import DUPLICATE_ID, PROBLEM_SCHEMA, QUARANTINE_SCHEMA, UNPARSABLE
from astro_pipeline.data.settings import ProblemSettings
from astro_pipeline.data.sources import DatasetSource


@dataclass
class LoadedProblems:
    problems: pl.DataFrame  # PROBLEM_SCHEMA
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA
    stats: dict[str, Any] = field(default_factory=dict)


def load_problems(
    source: DatasetSource,
    settings: ProblemSettings | None = None,
    synthetic_settings: Any = None,
    *,
    limit: int | None = None,
) -> LoadedProblems:
    """Read, check and normalize every row of ``source`` (see the module docstring)."""
    settings = settings or ProblemSettings()
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    started = time.perf_counter()
    dataset = source.name
    problems: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    first_line_of_id: dict[str, int] = {}
    input_rows = blank_lines = 0
    stopped_at_limit = False

    rows = iter_raw_rows(source, synthetic_settings, max_bytes=settings.max_source_bytes)
    for raw_row in rows:
        if raw_row.blank:
            blank_lines += 1
            continue
        if limit is not None and len(problems) >= limit:
            stopped_at_limit = True  # a further row exists and is left unread
            break
        input_rows += 1
        if raw_row.error is not None:
            result: dict[str, Any] | Rejection = Rejection(UNPARSABLE, raw_row.error)
        else:
            result = normalize_row(raw_row.value, source, settings)
        if isinstance(result, dict) and result["problem_id"] in first_line_of_id:
            first = first_line_of_id[result["problem_id"]]
            result = Rejection(DUPLICATE_ID, f"id {result['problem_id']!r} already used by line {first}")
        if isinstance(result, Rejection):
            quarantine.append(
                {"dataset": dataset, "line": raw_row.line, "reason": result.reason,
                 "detail": result.detail, "raw": raw_row.raw()}
            )
            continue
        first_line_of_id[result["problem_id"]] = raw_row.line
        problems.append({"dataset": dataset, **result, "source_line": raw_row.line})

    # an explicit check, not `assert`, so it also holds under `python -O`
    if len(problems) + len(quarantine) != input_rows:
        raise AssertionError(
            f"{dataset}: {len(problems)} loaded + {len(quarantine)} quarantined != {input_rows} input rows"
        )
    problems_df = pl.DataFrame(problems, schema=PROBLEM_SCHEMA)
    quarantine_df = pl.DataFrame(quarantine, schema=QUARANTINE_SCHEMA)
    stats = {
        "dataset": dataset,
        "kind": source.kind,
        "location": source.location,
        "input_rows": input_rows,
        "loaded": len(problems),
        "quarantined": len(quarantine),
        "quarantine_reasons": dict(Counter(q["reason"] for q in quarantine)),
        "answer_sources": dict(Counter(p["answer_source"] for p in problems)),
        "answers_derived": sum(p["answer_source"] == "boxed_solution" for p in problems),
        "ids_hashed": sum(p["id_source"] == "content_hash" for p in problems),
        "blank_lines": blank_lines,
        "limit": limit,
        "stopped_at_limit": stopped_at_limit,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return LoadedProblems(problems=problems_df, quarantine=quarantine_df, stats=stats)
