"""Turning one parsed row into a normalized problem, or into a rejection with a reason.

Design choices:

* Text is kept as given: the problem and solution are not stripped or rewritten (LaTeX and
  whitespace intact); only the answer is stripped of surrounding whitespace. Answers are strings
  "as given": AIME's "025" stays "025" and GSM8K's "2,125" stays "2,125"; the verifier normalizes
  when it compares. A numeric answer (Parquet/HF columns) becomes its decimal text, with an
  integral float written as an integer (AMC's 27.0 -> "27").
* Answer resolution, first hit wins:
  1. the answer field ("field"); for answer_format "gsm8k" the text after the last "####" line
     ("gsm8k_hash");
  2. if that is missing or empty, the content of the solution's last ``\\boxed{}``
     ("boxed_solution"; only with ``derive_answer_from_solution``);
  3. otherwise the row is rejected ("missing answer"), e.g. MATH train's two ``\\boxed{}``.
* Ids: the id field's value (string, or integer written in decimal); rows without one get
  ``sha1-`` + a hex prefix of the SHA-1 of the problem text, so the id is stable across runs and
  row orders. Duplicates are decided by the loader (it sees all rows).
* Checks run in the order: object, problem, id, answer, lengths, storability, so the reason names
  the first thing wrong with the row. Fields the schema does not map are kept as a JSON object in
  ``extra``.
* Storability: JSON may carry a lone surrogate ("\\ud800") that no UTF-8 column can hold, and an
  integer beyond 64 bits (e.g. a level); either would fail the whole dataset when the table is
  built, with no line named, so the row is quarantined instead ("invalid text", "number out of range").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from astro_pipeline.data.schema import (
    ANSWER_TOO_LONG,
    INVALID_ANSWER,
    INVALID_ID,
    INVALID_TEXT,
    MISSING_ANSWER,
    MISSING_PROBLEM,
    NOT_OBJECT,
    NUMBER_OUT_OF_RANGE,
    PROBLEM_TOO_LONG,
)
from astro_pipeline.data.settings import ProblemSettings
from astro_pipeline.data.sources import DatasetSource
from astro_pipeline.verify.extract import last_boxed_content

_HASH_LINE_RE = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_LEVEL_RE = re.compile(r"^\s*(?:level\s*)?(\d+)\s*$", re.IGNORECASE)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True)
class Rejection:
    reason: str  # one of the schema's quarantine reasons
    detail: str  # what exactly was wrong, for a human reading the quarantine


def gsm8k_answer(text: str) -> str | None:
    """The text after the last ``####`` line of a GSM8K solution (stripped), or None."""
    found = _HASH_LINE_RE.findall(text)
    return found[-1] if found else None


def content_id(problem: str, n_chars: int) -> str:
    # surrogatepass: a text with a lone surrogate still gets an id (the row is quarantined later)
    return "sha1-" + hashlib.sha1(problem.encode("utf-8", "surrogatepass")).hexdigest()[:n_chars]


def answer_text(value: Any) -> str | None:
    """A scalar answer as text; None for absent; raises TypeError for lists, dicts, booleans."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        raise TypeError("a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"a non-finite number ({value})")
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(f"a {type(value).__name__}")


def parse_level(value: Any) -> int | None:
    """MATH levels come as 5, "5" or "Level 5"; anything else (e.g. "Level ?") is unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _LEVEL_RE.match(value)
        return int(m.group(1)) if m else None
    return None


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _fields_note(row: dict[str, Any]) -> str:
    names = sorted(map(str, row))
    return f"row has fields {names[:20]}" + (" ..." if len(names) > 20 else "")


def normalize_row(row: Any, source: DatasetSource, settings: ProblemSettings) -> dict[str, Any] | Rejection:
    """One problem record (without dataset/source_line, which the loader adds) or a Rejection."""
    if not isinstance(row, dict):
        return Rejection(NOT_OBJECT, f"expected an object, got {type(row).__name__}")

    problem = row.get(source.problem_field)
    if problem is None:
        return Rejection(MISSING_PROBLEM, f"no {source.problem_field!r} field; {_fields_note(row)}")
    if not isinstance(problem, str):
        return Rejection(MISSING_PROBLEM, f"{source.problem_field!r} is a {type(problem).__name__}, not text")
    if not problem.strip():
        return Rejection(MISSING_PROBLEM, f"{source.problem_field!r} is empty")

    raw_id = row.get(source.id_field) if source.id_field else None
    if isinstance(raw_id, str):
        raw_id = raw_id.strip()
    elif isinstance(raw_id, float) and raw_id.is_integer():
        raw_id = int(raw_id)  # pandas writes an integer column with gaps as float
    if raw_id is None or raw_id == "":
        problem_id = content_id(problem, settings.id_hash_chars)
        id_source = "content_hash"
    elif isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        return Rejection(INVALID_ID, f"{source.id_field!r} is a {type(raw_id).__name__}: {raw_id!r}"[:300])
    else:
        problem_id = str(raw_id)
        id_source = "field"

    solution = _optional_text(row.get(source.solution_field)) if source.solution_field else None

    answer: str | None = None
    answer_source = "field"
    why_missing = "no answer field configured" if source.answer_field is None else ""
    if source.answer_field is not None:
        raw_answer = row.get(source.answer_field)
        if source.answer_format == "gsm8k" and isinstance(raw_answer, str):
            answer = gsm8k_answer(raw_answer)
            answer_source = "gsm8k_hash"
            if answer is None:
                why_missing = f"{source.answer_field!r} has no '#### answer' line"
        else:
            try:
                answer = answer_text(raw_answer)
            except TypeError as exc:
                return Rejection(INVALID_ANSWER, f"{source.answer_field!r} is {exc}: {raw_answer!r}"[:300])
            if raw_answer is None:
                why_missing = f"no {source.answer_field!r} field"
        if answer == "":
            answer = None
            why_missing = f"{source.answer_field!r} is empty"
    if answer is None and settings.derive_answer_from_solution:
        boxed = last_boxed_content(solution) if solution else None
        if boxed is not None and boxed.strip():
            answer, answer_source = boxed.strip(), "boxed_solution"
        elif solution is None:
            why_missing += "; no solution"
        elif boxed is None:
            why_missing += "; the solution has no complete \\boxed{}"
        else:
            why_missing += "; the solution's last \\boxed{} is empty"
    if answer is None:
        return Rejection(MISSING_ANSWER, why_missing.lstrip("; ") or "no answer")

    if len(problem) > settings.max_problem_chars:
        return Rejection(PROBLEM_TOO_LONG, f"{len(problem)} characters > max_problem_chars={settings.max_problem_chars}")
    if len(answer) > settings.max_answer_chars:
        return Rejection(ANSWER_TOO_LONG, f"{len(answer)} characters > max_answer_chars={settings.max_answer_chars}")

    subject = _optional_text(row.get(source.subject_field)) if source.subject_field else None
    level = parse_level(row.get(source.level_field)) if source.level_field else None
    mapped = {source.problem_field, source.answer_field, source.id_field, source.solution_field,
              source.subject_field, source.level_field}
    extra = {str(k): v for k, v in row.items() if k not in mapped}
    record = {
        "problem_id": problem_id,
        "problem": problem,
        "answer": answer,
        "solution": solution,
        "answer_source": answer_source,
        "id_source": id_source,
        "subject": subject,
        "level": level,
        "extra": json.dumps(extra, ensure_ascii=False, default=str, sort_keys=True) if extra else None,
    }
    return _unstorable(record, source) or record


def _unstorable(record: dict[str, Any], source: DatasetSource) -> Rejection | None:
    """Why a normalized record cannot go into the table's columns, or None (see the module docstring)."""
    fields = {"problem_id": source.id_field, "problem": source.problem_field, "answer": source.answer_field,
              "solution": source.solution_field, "subject": source.subject_field, "level": source.level_field}
    for column, value in record.items():
        where = f"{fields[column]!r}" if fields.get(column) else ("an unmapped field" if column == "extra" else column)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return Rejection(INVALID_TEXT, f"{where} holds {value[exc.start:exc.end]!r}, a lone surrogate "
                                               "(a \\u escape of half a character), which UTF-8 cannot store")
        elif isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            return Rejection(NUMBER_OUT_OF_RANGE, f"{where} is {value}, beyond the 64-bit integer range"[:300])
    return None
