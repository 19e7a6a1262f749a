"""load_problems on hand-made files: broken rows, every format, limits, answer derivation,
the Hugging Face route (load_dataset monkeypatched) and synthetic problems."""

from __future__ import annotations

import csv
import json

import polars as pl
import pytest

from astro_pipeline.data import schema
from astro_pipeline.data.load import load_problems
from astro_pipeline.data.readers import DataSourceError
from astro_pipeline.data.settings import ProblemSettings
from astro_pipeline.data.sources import DatasetSource, builtin_source


def _file_source(path, name="mine", **kw) -> DatasetSource:
    return DatasetSource(name=name, kind="file", location=str(path), **kw)


def _j(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


# a broken JSON Lines file: (line text, expected outcome); outcome is "loaded", "blank" or a reason
BROKEN = [
    (_j({"id": "a", "problem": "What is 1+1?", "answer": "2"}), "loaded"),
    ("", "blank"),
    ('{"id": "b", "problem": "cut off', schema.UNPARSABLE),
    ("[1, 2]", schema.NOT_OBJECT),
    ('"just a string"', schema.NOT_OBJECT),
    (_j({"id": "c", "answer": "3"}), schema.MISSING_PROBLEM),
    (_j({"id": "c2", "problem": "   ", "answer": "3"}), schema.MISSING_PROBLEM),
    (_j({"id": "d", "problem": "No answer and no solution", "answer": ""}), schema.MISSING_ANSWER),
    (_j({"id": "d2", "problem": "Empty box", "answer": " ", "solution": "so \\boxed{}"}), schema.MISSING_ANSWER),
    (_j({"id": "e", "problem": "Derived", "answer": "", "solution": "first \\boxed{1}, then \\boxed{42}"}), "loaded"),
    (_j({"id": "a", "problem": "Same id again", "answer": "9"}), schema.DUPLICATE_ID),
    (_j({"id": "f", "problem": "x" * 120, "answer": "1"}), schema.PROBLEM_TOO_LONG),
    ("   \t", "blank"),
    (_j({"problem": "No id here", "answer": "7"}), "loaded"),
    (_j({"id": "g", "problem": "List answer", "answer": ["1", "2"]}), schema.INVALID_ANSWER),
    (_j({"id": {"x": 1}, "problem": "Dict id", "answer": "1"}), schema.INVALID_ID),
    (_j({"id": "h", "problem": "Long answer", "answer": "y" * 60}), schema.ANSWER_TOO_LONG),
    (_j({"id": 17, "problem": "Numeric id and answer", "answer": 3}), "loaded"),
    (_j({"id": 17.0, "problem": "Float id equal to an int id", "answer": 3}), schema.DUPLICATE_ID),
    (_j({"id": 17.5, "problem": "Fractional id", "answer": 3}), schema.INVALID_ID),
    # a raw U+2028 inside a JSON string must not split the line
    ('{"id": "i", "problem": "a\u2028b", "answer": "1"}', "loaded"),
    (_j({"id": "j", "problem": "Windows line end", "answer": "0"}) + "\r", "loaded"),
    (_j({"problem": "No id here", "answer": "8"}), schema.DUPLICATE_ID),  # same text -> same hash id
]
SMALL = ProblemSettings(max_problem_chars=100, max_answer_chars=50)


def _write_broken(tmp_path):
    path = tmp_path / "broken.jsonl"
    data = "\n".join(text for text, _ in BROKEN).encode("utf-8")
    # one line that is not UTF-8 at all, and no newline at the very end
    data += b"\n" + b'{"id": "k", "problem": "\xff\xfe", "answer": "1"}'
    path.write_bytes(data)
    return path, [*[o for _, o in BROKEN], schema.UNPARSABLE]


def test_broken_file_loses_no_row(tmp_path):
    path, outcomes = _write_broken(tmp_path)
    loaded = load_problems(_file_source(path), SMALL)
    rows = [o for o in outcomes if o != "blank"]
    st = loaded.stats
    assert st["input_rows"] == len(rows) == loaded.problems.height + loaded.quarantine.height
    assert st["blank_lines"] == outcomes.count("blank") == 2
    assert loaded.problems.height == rows.count("loaded") == 6
    # every quarantined line has the expected reason, at its physical line number
    expected = {i: o for i, o in enumerate(outcomes, start=1) if o not in ("loaded", "blank")}
    got = dict(zip(loaded.quarantine["line"].to_list(), loaded.quarantine["reason"].to_list()))
    assert got == expected
    assert st["quarantine_reasons"] == {r: list(expected.values()).count(r) for r in set(expected.values())}
    # the raw text is kept whole, including the undecodable bytes (as escapes)
    raws = dict(zip(loaded.quarantine["line"].to_list(), loaded.quarantine["raw"].to_list()))
    assert raws[3] == '{"id": "b", "problem": "cut off'
    assert "\\xff\\xfe" in raws[len(outcomes)]
    assert raws[6] == BROKEN[5][0]
    # the duplicate's detail points at the first occurrence
    detail = loaded.quarantine.filter(pl.col("line") == 11)["detail"].item()
    assert "line 1" in detail


def test_broken_file_problem_values(tmp_path):
    path, _ = _write_broken(tmp_path)
    p = {r["problem_id"]: r for r in load_problems(_file_source(path), SMALL).problems.iter_rows(named=True)}
    assert p["e"]["answer"] == "42" and p["e"]["answer_source"] == "boxed_solution"
    assert p["a"]["answer_source"] == "field" and p["a"]["source_line"] == 1
    assert p["17"]["answer"] == "3" and p["17"]["id_source"] == "field"
    assert p["i"]["problem"] == "a\u2028b"
    assert p["j"]["answer"] == "0"
    hashed = [r for r in p.values() if r["id_source"] == "content_hash"]
    assert len(hashed) == 1 and hashed[0]["problem_id"].startswith("sha1-") and len(hashed[0]["problem_id"]) == 5 + 16
    assert hashed[0]["answer"] == "7"  # the first of the two rows with the same text wins


def test_derivation_can_be_switched_off(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(_j({"id": "e", "problem": "P", "answer": "", "solution": "\\boxed{4}"}) + "\n")
    on = load_problems(_file_source(path), ProblemSettings())
    off = load_problems(_file_source(path), ProblemSettings(derive_answer_from_solution=False))
    assert on.problems["answer"].to_list() == ["4"] and on.stats["answers_derived"] == 1
    assert off.problems.height == 0 and off.quarantine["reason"].to_list() == [schema.MISSING_ANSWER]


def test_gsm8k_answer_format(tmp_path):
    path = tmp_path / "g.jsonl"
    rows = [
        {"question": "Q1", "answer": "She has 2,000 + 125 = <<2000+125=2125>>2,125\n#### 2,125"},
        {"question": "Q2", "answer": "no hash line, but \\boxed{5}"},
        {"question": "Q3", "answer": "nothing at all"},
        {"question": "Q4", "answer": "#### "},
    ]
    path.write_text("".join(_j(r) + "\n" for r in rows))
    src = _file_source(path, problem_field="question", answer_field="answer", solution_field="answer",
                       id_field=None, answer_format="gsm8k")
    loaded = load_problems(src)
    got = {r["problem"]: r for r in loaded.problems.iter_rows(named=True)}
    assert got["Q1"]["answer"] == "2,125" and got["Q1"]["answer_source"] == "gsm8k_hash"
    assert got["Q1"]["solution"] == rows[0]["answer"]  # the whole worked solution is kept
    assert got["Q2"]["answer"] == "5" and got["Q2"]["answer_source"] == "boxed_solution"
    assert loaded.quarantine["line"].to_list() == [3, 4]
    assert set(loaded.quarantine["reason"]) == {schema.MISSING_ANSWER}


ROWS = [
    {"id": "p1", "problem": "What is $1+1$?", "answer": "2", "solution": "$1+1=\\boxed{2}$", "level": "Level 2"},
    {"id": "p2", "problem": "An AIME-style one,\nover two lines", "answer": "025", "solution": None, "level": 5},
    {"id": "p3", "problem": "Derive me", "answer": None, "solution": "so \\boxed{\\frac{1}{2}}", "level": None},
    {"id": "p4", "problem": "Lost answer", "answer": None, "solution": None, "level": None},
]
EXPECTED = [("p1", "2", "field", 2), ("p2", "025", "field", 5), ("p3", "\\frac{1}{2}", "boxed_solution", None)]


def _write_format(tmp_path, fmt):
    path = tmp_path / f"rows.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(_j(r) + "\n" for r in ROWS))
    elif fmt == "json":
        path.write_text(_j({"version": 3, "data": ROWS}))
    elif fmt == "parquet":
        # level as text so the column has one type, as a user's parquet would
        pl.DataFrame([{**r, "level": None if r["level"] is None else str(r["level"])} for r in ROWS]).write_parquet(path)
    elif fmt == "csv":
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
            w.writeheader()
            w.writerows(ROWS)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "csv"])
def test_every_format_loads_the_same_problems(tmp_path, fmt):
    loaded = load_problems(_file_source(_write_format(tmp_path, fmt)))
    got = [(r["problem_id"], r["answer"], r["answer_source"], r["level"]) for r in loaded.problems.iter_rows(named=True)]
    assert got == EXPECTED
    assert loaded.problems["problem"].to_list() == [r["problem"] for r in ROWS[:3]]
    assert loaded.quarantine["reason"].to_list() == [schema.MISSING_ANSWER]
    raw = loaded.quarantine["raw"].item()
    if fmt in ("jsonl", "csv"):  # the original text of the row
        assert raw == {"jsonl": _j(ROWS[3]), "csv": "p4,Lost answer,,,"}[fmt]
    else:  # the row as JSON
        assert json.loads(raw) == ROWS[3]
    # line = physical line (jsonl, csv: header is line 1, p2 spans lines 3-4), else record index
    lines = {"jsonl": [1, 2, 3, 4], "json": [1, 2, 3, 4], "parquet": [1, 2, 3, 4], "csv": [2, 3, 5, 6]}[fmt]
    assert loaded.problems["source_line"].to_list() + loaded.quarantine["line"].to_list() == lines


def test_csv_quarantine_keeps_raw_text_and_catches_ragged_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('id,problem,answer\n1,"P, one",\n2,P two,5,extra\n\n3,P three,6\n')
    loaded = load_problems(_file_source(path))
    assert loaded.problems["problem_id"].to_list() == ["3"]
    assert loaded.quarantine.select("line", "reason", "raw").rows() == [
        (2, schema.MISSING_ANSWER, '1,"P, one",'),
        (3, schema.UNPARSABLE, "2,P two,5,extra"),
    ]
    assert loaded.stats["blank_lines"] == 1 and loaded.stats["input_rows"] == 3


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("bad.json", b"{not json", "cannot parse JSON file .*bad.json"),
        ("two.json", b'{"a": [], "b": []}', "exactly one list"),
        ("bad.parquet", b"PAR1 not really", "cannot read Parquet file .*bad.parquet"),
        ("latin.csv", "id,problem\n1,caf\xe9\n".encode("latin-1"), "latin.csv is not UTF-8"),
        ("empty.csv", b"", "empty.csv is empty"),
    ],
)
def test_unreadable_files_raise_naming_the_file(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataSourceError, match=match):
        load_problems(_file_source(tmp_path / name))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataSourceError, match="not found: .*nope.jsonl"):
        load_problems(_file_source(tmp_path / "nope.jsonl"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_problems(_file_source(tmp_path / "x.txt"))


def test_limit_keeps_first_problems_and_stops_reading(tmp_path):
    path = tmp_path / "l.jsonl"
    lines = [_j({"id": "q0", "problem": "P0"}), *(_j({"id": f"q{i}", "problem": f"P{i}", "answer": str(i)}) for i in range(1, 10))]
    path.write_text("\n".join(lines) + "\n")
    loaded = load_problems(_file_source(path), limit=3)
    assert loaded.problems["problem_id"].to_list() == ["q1", "q2", "q3"]
    assert loaded.stats["input_rows"] == 4 and loaded.quarantine.height == 1
    assert loaded.stats["stopped_at_limit"] is True
    whole = load_problems(_file_source(path), limit=9)
    assert whole.problems.height == 9 and whole.stats["stopped_at_limit"] is False
    with pytest.raises(ValueError, match="positive integer"):
        load_problems(_file_source(path), limit=0)


def test_empty_file_gives_empty_tables_with_schema(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    loaded = load_problems(_file_source(tmp_path / "e.jsonl"))
    assert loaded.problems.height == 0 and dict(loaded.problems.schema) == schema.PROBLEM_SCHEMA
    assert dict(loaded.quarantine.schema) == schema.QUARANTINE_SCHEMA
    assert loaded.stats["blank_lines"] == 2 and loaded.stats["input_rows"] == 0


# Hugging Face: the real loading code with datasets.load_dataset replaced by a local Dataset ------
def _fake_hub(monkeypatch, tables):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(tables[(path, name, split)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.delenv("ASTRO_DATA_DIR", raising=False)
    return calls


def test_hf_builtins_map_their_fields(monkeypatch):
    tables = {
        ("openai/gsm8k", "main", "test"): [
            {"question": "Janet has 3 ducks...", "answer": "3 + 2 = <<3+2=5>>5\n#### 5"},
            {"question": "Big numbers", "answer": "...\n#### 1,450,000"},
        ],
        ("DigitalLearningGmbH/MATH-lighteval", "default", "train"): [
            {"problem": "Find $x$.", "level": "Level 3", "type": "Algebra", "solution": "So $x=\\boxed{4}$."},
            {"problem": "A bad one", "level": "Level ?", "type": "Geometry", "solution": "\\boxed{}"},
        ],
        ("math-ai/amc23", None, "test"): [
            {"id": 0, "question": "Cities A and B...", "answer": 27.0, "url": "https://x"},
            {"id": 1, "question": "Pizza...", "answer": 4.5, "url": "https://y"},
        ],
        ("HuggingFaceH4/aime_2024", None, "train"): [
            {"id": 60, "problem": "Aya walks...", "solution": "... \\boxed{204}", "answer": "204", "url": "u", "year": "2024"},
            {"id": 61, "problem": "Find...", "solution": "...", "answer": "025", "url": "v", "year": "2024"},
        ],
        ("HuggingFaceH4/MATH-500", None, "test"): [
            {"problem": "P", "solution": "\\boxed{1}", "answer": "1", "subject": "Algebra", "level": 1,
             "unique_id": "test/algebra/1.json"},
        ],
    }
    calls = _fake_hub(monkeypatch, tables)

    gsm = load_problems(builtin_source("gsm8k_test"))
    assert gsm.problems["answer"].to_list() == ["5", "1,450,000"]
    assert set(gsm.problems["answer_source"]) == {"gsm8k_hash"}
    assert gsm.problems["solution"][0].endswith("#### 5")
    assert all(pid.startswith("sha1-") for pid in gsm.problems["problem_id"])

    math = load_problems(builtin_source("math_train"))
    row = math.problems.row(0, named=True)
    assert (row["answer"], row["answer_source"], row["level"], row["subject"]) == ("4", "boxed_solution", 3, "Algebra")
    assert math.quarantine["reason"].to_list() == [schema.MISSING_ANSWER]
    assert json.loads(math.quarantine["raw"].item())["type"] == "Geometry"

    amc = load_problems(builtin_source("amc2023"))
    assert amc.problems.select("problem_id", "answer").rows() == [("0", "27"), ("1", "4.5")]
    assert amc.problems["problem"][0] == "Cities A and B..."
    assert json.loads(amc.problems["extra"][0]) == {"url": "https://x"}

    aime = load_problems(builtin_source("aime2024"))
    assert aime.problems["answer"].to_list() == ["204", "025"]
    assert aime.problems["problem_id"].to_list() == ["60", "61"]

    m500 = load_problems(builtin_source("math500"))
    assert m500.problems.select("problem_id", "subject", "level").rows() == [("test/algebra/1.json", "Algebra", 1)]
    assert calls == list(tables)


def test_hf_class_labels_become_their_names(monkeypatch):
    import datasets

    features = datasets.Features({
        "problem": datasets.Value("string"), "solution": datasets.Value("string"),
        "level": datasets.ClassLabel(names=["Level 1", "Level 2", "Level 3", "Level 4", "Level 5", "Level ?"]),
    })
    ds = datasets.Dataset.from_dict(
        {"problem": ["P1", "P2"], "solution": ["\\boxed{1}", "\\boxed{2}"], "level": [4, 5]}, features=features
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: ds)
    src = DatasetSource(name="cl", kind="hf", location="x/y", answer_field=None)
    assert load_problems(src).problems["level"].to_list() == [5, None]


def test_hf_errors_name_the_dataset(monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    src = DatasetSource(name="x", kind="hf", location="someone/data", split="validation")
    with pytest.raises(DataSourceError, match="someone/data.*validation.*no network"):
        load_problems(src)


# synthetic -------------------------------------------------------------------------------------
def test_synthetic_uses_generate_rows(monkeypatch):
    from astro_pipeline.data import synthetic  # the project's own module: never skipped
    seen = []

    def fake_generate_rows(split, settings):
        seen.append((split, settings))
        return [{"id": f"s{i}", "problem": f"A: Add {i}.", "answer": str(i), "solution": f"\\boxed{{{i}}}"} for i in range(3)]

    monkeypatch.setattr(synthetic, "generate_rows", fake_generate_rows)
    marker = object()
    loaded = load_problems(builtin_source("synthetic_test"), ProblemSettings(), marker)
    assert seen == [("test", marker)]
    assert loaded.problems["problem_id"].to_list() == ["s0", "s1", "s2"]
    assert loaded.problems["source_line"].to_list() == [1, 2, 3]


def test_synthetic_real_generator_loads_cleanly():
    from astro_pipeline.data import synthetic  # the project's own module: never skipped
    settings = synthetic.SyntheticSettings(n_train=40, n_test=10)
    for name, n in (("synthetic_train", 40), ("synthetic_test", 10)):
        loaded = load_problems(builtin_source(name), ProblemSettings(), settings)
        assert (loaded.problems.height, loaded.quarantine.height) == (n, 0)
        assert set(loaded.problems["answer_source"]) == {"field"}
