"""The ``problems`` and ``quarantine`` tables' column schemas (declared with their contracts in
``warehouse.tables``), and the quarantine reasons.

The reasons are fixed strings so SQL can group by them.
"""

from __future__ import annotations

from astro_pipeline.warehouse.tables import PROBLEMS, QUARANTINE

PROBLEM_SCHEMA = PROBLEMS.schema
QUARANTINE_SCHEMA = QUARANTINE.schema

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
