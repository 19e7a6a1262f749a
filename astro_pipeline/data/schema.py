"""Column schemas of the ``problems`` and ``quarantine`` tables, and the quarantine reasons.

Design: the schemas are explicit (not inferred from the rows) so an empty table, or one whose
optional columns are all null, still has the same column types, and the warehouse can union the
per-dataset partitions. The reasons are fixed strings so SQL can group by them.
"""

from __future__ import annotations

import polars as pl

PROBLEM_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.Utf8(),
    "problem_id": pl.Utf8(),  # the source's id, else "sha1-" + hash prefix of the problem text
    "problem": pl.Utf8(),
    "answer": pl.Utf8(),  # the reference answer as given (e.g. "025", "2,125")
    "solution": pl.Utf8(),  # nullable
    "answer_source": pl.Utf8(),  # "field" | "gsm8k_hash" | "boxed_solution"
    "id_source": pl.Utf8(),  # "field" | "content_hash"
    "subject": pl.Utf8(),  # nullable
    "level": pl.Int64(),  # nullable
    "source_line": pl.Int64(),  # line (JSON Lines, CSV) or 1-based record index (other sources)
    "extra": pl.Utf8(),  # unmapped source fields as a JSON object; nullable
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.Utf8(),
    "line": pl.Int64(),  # same meaning as problems.source_line
    "reason": pl.Utf8(),  # one of REASONS
    "detail": pl.Utf8(),  # what exactly was wrong
    "raw": pl.Utf8(),  # the raw row text (JSON Lines/CSV) or the row as JSON (other sources)
}

UNPARSABLE = "unparsable line"
NOT_OBJECT = "not an object"
MISSING_PROBLEM = "missing problem"
INVALID_ID = "invalid id"
MISSING_ANSWER = "missing answer"
INVALID_ANSWER = "invalid answer"
PROBLEM_TOO_LONG = "problem too long"
ANSWER_TOO_LONG = "answer too long"
DUPLICATE_ID = "duplicate id"
INVALID_TEXT = "invalid text"  # a lone surrogate ("\ud800" in JSON): not storable as UTF-8
NUMBER_OUT_OF_RANGE = "number out of range"  # an integer beyond the 64-bit columns (e.g. a level)

REASONS: tuple[str, ...] = (
    UNPARSABLE,
    NOT_OBJECT,
    MISSING_PROBLEM,
    INVALID_ID,
    MISSING_ANSWER,
    INVALID_ANSWER,
    PROBLEM_TOO_LONG,
    ANSWER_TOO_LONG,
    DUPLICATE_ID,
    INVALID_TEXT,
    NUMBER_OUT_OF_RANGE,
)
