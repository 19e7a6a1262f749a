"""Hostile problem files: every input row ends in problems or in quarantine with a reason, in every
format, and a source that is not a file of sane size is refused by name instead of hanging or
eating memory."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest

from astro_pipeline.data import schema
from astro_pipeline.data.load import load_problems
from astro_pipeline.data.readers import DataSourceError
from astro_pipeline.data.settings import ProblemSettings
from astro_pipeline.data.sources import DatasetSource
from astro_pipeline.storage import ArtifactStore

BIG = 99999999999999999999  # beyond int64
# the two reasons for rows that cannot be stored (fixed strings, as SQL groups by them)
INVALID_TEXT, OUT_OF_RANGE = "invalid text", "number out of range"


def _source(path, **kw) -> DatasetSource:
    return DatasetSource(name="hostile", kind="file", location=str(path), **kw)


def _accounted(loaded, n_rows: int, tmp_path) -> dict[int, str]:
    """problems + quarantine == input rows, each quarantined row has a reason, and both tables can
    really be stored (the failures this guards against happened when the Parquet was written)."""
    assert loaded.problems.height + loaded.quarantine.height == n_rows == loaded.stats["input_rows"]
    assert loaded.quarantine["reason"].is_in(list(schema.REASONS)).all()
    assert {INVALID_TEXT, OUT_OF_RANGE} <= set(schema.REASONS)
    assert loaded.quarantine.height == 0 or loaded.quarantine["detail"].str.len_chars().min() > 0
    store = ArtifactStore(str(tmp_path / "home"))
    store.write_parquet(loaded.problems, "p.parquet")
    store.write_parquet(loaded.quarantine, "q.parquet")
    assert store.read_parquet("p.parquet").height + store.read_parquet("q.parquet").height == n_rows
    return dict(zip(loaded.quarantine["line"].to_list(), loaded.quarantine["reason"].to_list()))


def _rejected(rows, start: int = 1) -> dict[int, str]:
    """line -> expected reason of the (row, outcome) pairs that are not loaded, numbered from ``start``."""
    return {n: outcome for n, (_, outcome) in enumerate(rows, start=start) if outcome != "loaded"}


# (JSON text of the row, expected outcome): the same rows serve JSON Lines and a JSON list
JSON_ROWS = [
    ('{"id": "ok1", "problem": "What is 1+1?", "answer": "2"}', "loaded"),
    ('{"id": "s1", "problem": "P \\ud800 lone", "answer": "1"}', INVALID_TEXT),
    ('{"id": "s2", "problem": "P2", "answer": "1", "note": "\\udfff"}', INVALID_TEXT),
    ('{"problem": "\\ud800 and no id", "answer": "2"}', INVALID_TEXT),
    ('{"id": "s3", "problem": "P3", "answer": "\\ud83d"}', INVALID_TEXT),
    ('{"id": "emoji", "problem": "A pair \\ud83d\\ude00 is fine", "answer": "3"}', "loaded"),
    (f'{{"id": "n1", "problem": "P4", "answer": "1", "level": {BIG}}}', OUT_OF_RANGE),
    (f'{{"id": "n2", "problem": "P5", "answer": "1", "level": "Level {BIG}"}}', OUT_OF_RANGE),
    (f'{{"id": {BIG}, "problem": "A huge id is text", "answer": {BIG}}}', "loaded"),
    ('{"id": "nul", "problem": "NUL \\u0000 inside", "answer": "4"}', "loaded"),
    ('{"id": "deep", "problem": "Nested extra", "answer": "5", "meta": {"a": [1, {"b": null}]}}', "loaded"),
    ("5", schema.NOT_OBJECT),
    ("null", schema.NOT_OBJECT),
    ('{"id": "ok1", "problem": "Same id", "answer": "6"}', schema.DUPLICATE_ID),
    ('{"id": "last", "problem": "Still read after all that", "answer": "7"}', "loaded"),
]


def test_hostile_json_lines_rows_are_all_accounted_for(tmp_path):
    path = tmp_path / "h.jsonl"
    text = "\n".join(row for row, _ in JSON_ROWS[:5]) + "\n\n" + "\n".join(row for row, _ in JSON_ROWS[5:]) + "\n"
    path.write_text(text)
    loaded = load_problems(_source(path))
    lines = [n for n, line in enumerate(text.split("\n")[:-1], start=1) if line.strip()]
    got = _accounted(loaded, len(lines), tmp_path)
    expected = {n: outcome for n, (_, outcome) in zip(lines, JSON_ROWS) if outcome != "loaded"}
    assert got == expected
    assert loaded.problems["problem_id"].to_list() == ["ok1", "emoji", str(BIG), "nul", "deep", "last"]
    assert loaded.problems.filter(pl.col("problem_id") == str(BIG))["answer"].item() == str(BIG)
    raws = dict(zip(loaded.quarantine["line"].to_list(), loaded.quarantine["raw"].to_list()))
    assert raws[2] == JSON_ROWS[1][0]  # the line as written, escape included
    details = dict(zip(loaded.quarantine["line"].to_list(), loaded.quarantine["detail"].to_list()))
    assert "'problem'" in details[2] and "surrogate" in details[2]
    assert "unmapped" in details[3] and "'level'" in details[8]
    assert loaded.stats["quarantine_reasons"][INVALID_TEXT] == 4


def test_hostile_json_list_rows_are_all_accounted_for(tmp_path):
    path = tmp_path / "h.json"
    path.write_text("[" + ",\n".join(row for row, _ in JSON_ROWS) + "]")
    loaded = load_problems(_source(path))
    got = _accounted(loaded, len(JSON_ROWS), tmp_path)
    assert got == _rejected(JSON_ROWS)
    # a row with a lone surrogate has no original text: its JSON keeps the surrogate as an escape
    assert "\\ud800" in loaded.quarantine.filter(pl.col("line") == 2)["raw"].item()


def test_hostile_parquet_rows_are_all_accounted_for(tmp_path):
    rows = [  # (id, problem, answer, level, tags) and the outcome
        (("ok1", "What is 1+1?", "2", 1, ["easy"]), "loaded"),
        (("big", "Level beyond int64", "3", 2**64 - 1, None), OUT_OF_RANGE),
        (("nul", "NUL \x00 inside", "4", None, []), "loaded"),
        (("noprob", None, "5", None, None), schema.MISSING_PROBLEM),
        (("noans", "No answer", None, None, None), schema.MISSING_ANSWER),
        (("ok1", "Same id", "6", None, None), schema.DUPLICATE_ID),
        (("last", "Still read", "7", 3, ["a", "b"]), "loaded"),
    ]
    path = tmp_path / "h.parquet"
    pl.DataFrame([r for r, _ in rows], schema={"id": pl.Utf8, "problem": pl.Utf8, "answer": pl.Utf8,
                                                "level": pl.UInt64, "tags": pl.List(pl.Utf8)},
                 orient="row").write_parquet(path)
    loaded = load_problems(_source(path))
    got = _accounted(loaded, len(rows), tmp_path)
    assert got == _rejected(rows)
    assert json.loads(loaded.problems.filter(pl.col("problem_id") == "last")["extra"].item()) == {"tags": ["a", "b"]}


# CSV lines after the header: (line, outcome); the 2nd line opens a quote it never closes
CSV_LINES = [
    ("ok1,What is 1+1?,2,", "loaded"),
    ('a,"What is 2+2?,4,', schema.UNPARSABLE),
    ('b,"What is 3+3?",6,', "loaded"),
    ("c,Too many cells,1,2,extra", schema.UNPARSABLE),
    ("d,NUL \x00 inside,1,", "loaded"),
    (f"e,Level beyond int64,1,{BIG}", OUT_OF_RANGE),
    ('f,He said "hi" mid-field,3,', "loaded"),
    ('g,"closed"then more,1,', schema.UNPARSABLE),
    ("ok1,Same id,5,", schema.DUPLICATE_ID),
    ("i,Still read,9,", "loaded"),
    ('j,"never closed,1,', schema.UNPARSABLE),
]


def test_hostile_csv_rows_are_all_accounted_for(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("id,problem,answer,level\n" + "\n".join(line for line, _ in CSV_LINES) + "\n")
    loaded = load_problems(_source(path))
    got = _accounted(loaded, len(CSV_LINES), tmp_path)
    assert got == _rejected(CSV_LINES, start=2)  # line 1 is the header
    by_id = {r["problem_id"]: r for r in loaded.problems.iter_rows(named=True)}
    # the row after the unbalanced quote keeps its own text and answer, and problem a is not given them
    assert (by_id["b"]["problem"], by_id["b"]["answer"], by_id["b"]["source_line"]) == ("What is 3+3?", "6", 4)
    assert "a" not in by_id and by_id["f"]["problem"] == 'He said "hi" mid-field'
    bad = loaded.quarantine.filter(pl.col("line") == 3).row(0, named=True)
    assert bad["raw"] == CSV_LINES[1][0] and "quote" in bad["detail"]


def test_the_issue_csv_case_loads_b_and_quarantines_a(tmp_path):
    path = tmp_path / "issue.csv"
    path.write_text('id,problem,answer\na,"What is 2+2?,4\nb,"What is 3+3?",6\n')
    loaded = load_problems(_source(path))
    assert loaded.problems.select("problem_id", "problem", "answer").rows() == [("b", "What is 3+3?", "6")]
    assert loaded.quarantine.select("line", "reason").rows() == [(2, schema.UNPARSABLE)]


def test_a_json_problem_with_a_list_field_is_one_problem(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"id": "t1", "problem": "What is 1+1?", "answer": "2", "tags": ["easy", "arith"]}))
    loaded = load_problems(_source(path))
    assert loaded.problems.select("problem_id", "answer").rows() == [("t1", "2")] and loaded.quarantine.height == 0
    assert json.loads(loaded.problems["extra"].item()) == {"tags": ["easy", "arith"]}
    # an object that is not a row and holds two lists is an error naming the file
    path.write_text(json.dumps({"train": [], "test": []}))
    with pytest.raises(DataSourceError, match="one.json.*exactly one list"):
        load_problems(_source(path))


@pytest.mark.timeout(60)
def test_a_source_swapped_for_a_fifo_is_refused_not_waited_on(tmp_path):
    path = tmp_path / "swapped.jsonl"
    os.mkfifo(path)
    with pytest.raises(DataSourceError, match="swapped.jsonl is not a regular file"):
        load_problems(_source(path))


@pytest.mark.timeout(60)
def test_a_source_swapped_for_dev_zero_is_refused_not_read(tmp_path):
    path = tmp_path / "zero.jsonl"
    path.symlink_to("/dev/zero")
    with pytest.raises(DataSourceError, match="zero.jsonl is not a regular file"):
        load_problems(_source(path))


def test_a_source_over_the_size_cap_is_refused_with_its_size(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"id": "x", "problem": "P" * 5000, "answer": "1"}) + "\n")
    with pytest.raises(DataSourceError, match=r"big.jsonl is \d+ bytes, more than problems.max_source_bytes=1000"):
        load_problems(_source(path), ProblemSettings(max_source_bytes=1000))
    assert load_problems(_source(path), ProblemSettings(max_problem_chars=6000)).problems.height == 1
