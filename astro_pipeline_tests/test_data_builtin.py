"""The built-in datasets on the real benchmark files (../shared/data via the data_dir fixture)."""

from __future__ import annotations

import json

import pytest

from astro_pipeline.data.load import load_problems
from astro_pipeline.data.schema import MISSING_ANSWER, PROBLEM_SCHEMA, QUARANTINE_SCHEMA
from astro_pipeline.data.settings import ProblemSettings
from astro_pipeline.data.sources import BUILTIN_NAMES, builtin_source


def _line_count(path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


@pytest.mark.parametrize(
    "name, expected",
    [("math500", 500), ("aime2024", 30), ("amc2023", 40), ("gsm8k_test", 1319), ("gsm8k_train", 7473)],
)
def test_benchmarks_load_completely(data_dir, name, expected):
    loaded = load_problems(builtin_source(name), ProblemSettings())
    assert loaded.stats["input_rows"] == expected == _line_count(data_dir / f"{name}.jsonl")
    assert loaded.problems.height == expected
    assert loaded.quarantine.height == 0
    assert dict(loaded.problems.schema) == PROBLEM_SCHEMA
    assert loaded.problems["problem_id"].n_unique() == expected
    assert loaded.problems["answer"].null_count() == 0
    assert (loaded.problems["dataset"] == name).all()


def test_math500_rows_match_the_file(data_dir):
    loaded = load_problems(builtin_source("math500"), ProblemSettings())
    first = json.loads((data_dir / "math500.jsonl").open().readline())
    row = loaded.problems.row(0, named=True)
    assert row["problem_id"] == first["id"]
    assert row["problem"] == first["problem"]  # text unchanged
    assert row["answer"] == first["answer"]
    assert row["solution"] == first["solution"]
    assert row["subject"] == first["subject"] and row["level"] == first["level"]
    assert row["source_line"] == 1 and row["answer_source"] == "field"
    assert json.loads(row["extra"])["source"] == "MATH-500"
    assert loaded.problems["level"].null_count() == 0


def test_aime_answers_keep_leading_zeros(data_dir):
    answers = load_problems(builtin_source("aime2024")).problems["answer"].to_list()
    in_file = [json.loads(line)["answer"] for line in (data_dir / "aime2024.jsonl").open()]
    assert answers == in_file  # exactly as given
    # the file has 7 such answers (the data README says 10, but lists 7 distinct ones)
    assert sorted(a for a in answers if a.startswith("0")) == ["023", "025", "033", "045", "055", "073", "080"]


def test_gsm8k_keeps_thousands_separators(data_dir):
    answers = load_problems(builtin_source("gsm8k_test")).problems["answer"].to_list()
    assert "2,125" in answers
    assert sum("," in a for a in answers) == 14  # as counted in the data README


def test_math_train_accounts_for_every_row(data_dir):
    loaded = load_problems(builtin_source("math_train"), ProblemSettings())
    assert loaded.stats["input_rows"] == 7500
    assert loaded.problems.height == 7498
    assert loaded.quarantine.height == 2
    assert dict(loaded.quarantine.schema) == QUARANTINE_SCHEMA
    assert loaded.stats["quarantine_reasons"] == {MISSING_ANSWER: 2}
    ids = sorted(json.loads(raw)["id"] for raw in loaded.quarantine["raw"])
    assert ids == ["train/number_theory/7115.json", "train/number_theory/7117.json"]
    assert all("empty" in detail for detail in loaded.quarantine["detail"])
    # the two geometry rows with "Level ?" load with an unknown level instead of being dropped
    unknown_level = loaded.problems.filter(loaded.problems["level"].is_null())["problem_id"].to_list()
    assert sorted(unknown_level) == ["train/geometry/377.json", "train/geometry/471.json"]


def test_builtins_resolve_to_local_files_or_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("ASTRO_DATA_DIR", str(tmp_path))
    local = builtin_source("math500")
    assert (local.kind, local.location, local.format) == ("file", f"{tmp_path}/math500.jsonl", "jsonl")
    monkeypatch.delenv("ASTRO_DATA_DIR")
    hub = {name: builtin_source(name) for name in BUILTIN_NAMES}
    assert (hub["math500"].kind, hub["math500"].location, hub["math500"].split) == ("hf", "HuggingFaceH4/MATH-500", "test")
    assert (hub["gsm8k_test"].location, hub["gsm8k_test"].config, hub["gsm8k_test"].answer_format) == ("openai/gsm8k", "main", "gsm8k")
    assert hub["math_train"].answer_field is None  # answers come from the solutions' last \boxed
    assert hub["synthetic_test"].kind == "synthetic" and hub["synthetic_test"].split == "test"
    with pytest.raises(KeyError, match="unknown built-in"):
        builtin_source("math_501")


def test_missing_local_file_names_it(monkeypatch, tmp_path):
    from astro_pipeline.data.readers import DataSourceError

    monkeypatch.setenv("ASTRO_DATA_DIR", str(tmp_path))
    with pytest.raises(DataSourceError, match="math500.jsonl"):
        load_problems(builtin_source("math500"))
