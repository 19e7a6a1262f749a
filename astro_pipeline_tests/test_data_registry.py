"""DatasetRegistry (user datasets persisted in the artifact store) and the data settings."""

from __future__ import annotations

import json

import pytest

from astro_pipeline.config import from_dict
from astro_pipeline.data.load import load_problems
from astro_pipeline.data.registry import LEGACY_REGISTRY_PATH, DatasetRegistry, source_path
from astro_pipeline.data.settings import DatasetSettings, ProblemSettings
from astro_pipeline.data.sources import BUILTIN_NAMES, DatasetSource
from astro_pipeline.storage import ArtifactStore


@pytest.fixture
def registry() -> DatasetRegistry:
    return DatasetRegistry(ArtifactStore.from_env())


@pytest.fixture
def problem_file(tmp_path):
    path = tmp_path / "my problems.jsonl"
    path.write_text(json.dumps({"q": "What is 2+3?", "a": "5", "key": "k1"}) + "\n")
    return path


def test_add_get_names_remove(registry, problem_file):
    assert registry.names() == list(BUILTIN_NAMES)
    src = registry.add("my-set_1", str(problem_file), problem_field="q", answer_field="a", id_field="key")
    assert (src.kind, src.format, src.location) == ("file", "jsonl", str(problem_file))
    assert registry.get("my-set_1") == src
    assert registry.names() == [*BUILTIN_NAMES, "my-set_1"]
    assert "my-set_1" in registry and "nope" not in registry
    loaded = load_problems(registry.get("my-set_1"), ProblemSettings())
    assert loaded.problems.select("problem_id", "problem", "answer").rows() == [("k1", "What is 2+3?", "5")]
    registry.remove("my-set_1")
    assert registry.names() == list(BUILTIN_NAMES)
    with pytest.raises(KeyError, match="unknown dataset 'my-set_1'"):
        registry.get("my-set_1")
    with pytest.raises(KeyError, match="unknown user dataset"):
        registry.remove("my-set_1")


def test_persists_across_instances(problem_file):
    DatasetRegistry(ArtifactStore.from_env()).add("persisted", str(problem_file))
    fresh = DatasetRegistry(ArtifactStore.from_env())
    assert fresh.user_names() == ["persisted"]
    src = fresh.get("persisted")
    assert (src.problem_field, src.answer_field, src.id_field) == ("problem", "answer", "id")  # defaults
    doc = json.loads(ArtifactStore.from_env().read_bytes(source_path("persisted")))
    assert DatasetSource.from_dict(doc) == src


def test_a_registry_of_the_earlier_single_file_layout_is_still_read(problem_file):
    store = ArtifactStore.from_env()
    old = DatasetSource(name="old", kind="file", location=str(problem_file), format="jsonl").to_dict()
    store.write_json({"version": 1, "datasets": {"old": old}}, LEGACY_REGISTRY_PATH)
    registry = DatasetRegistry(store)
    registry.add("new", str(problem_file))
    assert registry.user_names() == ["new", "old"] and registry.get("old").location == str(problem_file)
    registry.remove("old")
    assert registry.user_names() == ["new"] and store.read_json(LEGACY_REGISTRY_PATH)["datasets"] == {}


def test_relative_local_paths_are_stored_absolute(registry, tmp_path, monkeypatch):
    (tmp_path / "rel.csv").write_text("problem,answer\nP,1\n")
    monkeypatch.chdir(tmp_path)
    src = registry.add("rel", "rel.csv")
    assert src.location == str(tmp_path / "rel.csv") and src.format == "csv"


@pytest.mark.parametrize("name", ["", "Upper", "has space", "../escape", "a/b", "-leading", "x" * 65, "dots.are.bad", None])
def test_bad_names_are_rejected(registry, problem_file, name):
    with pytest.raises(ValueError, match="invalid dataset name"):
        registry.add(name, str(problem_file))


@pytest.mark.parametrize("name", ["math500", "gsm8k_test", "synthetic_train"])
def test_builtin_names_cannot_be_taken_or_removed(registry, problem_file, name):
    with pytest.raises(ValueError, match="built-in"):
        registry.add(name, str(problem_file))
    with pytest.raises(ValueError, match="built in"):
        registry.remove(name)
    assert registry.get(name).name == name


def test_name_taken_twice(registry, problem_file):
    registry.add("twice", str(problem_file))
    with pytest.raises(ValueError, match="already registered"):
        registry.add("twice", str(problem_file))


def test_unknown_format_and_missing_file(registry, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"unknown format of .*notes\.txt.*\.parquet.*hf:ID"):
        registry.add("notes", str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match="unknown format"):
        registry.add("remote", "s3://bucket/data.xlsx")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        registry.add("missing", str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="hf:ID or hf:ID:split"):
        registry.add("hfbad", "hf:")
    assert registry.user_names() == []


def test_remote_and_hub_sources(registry):
    s3 = registry.add("remote", "s3://bucket/path/problems.parquet")  # checked when loaded
    assert (s3.kind, s3.location, s3.format) == ("file", "s3://bucket/path/problems.parquet", "parquet")
    hub = registry.add("hub", "hf:someone/problems:validation", problem_field="question", config="v2")
    assert (hub.kind, hub.location, hub.split, hub.config, hub.problem_field) == (
        "hf", "someone/problems", "validation", "v2", "question")
    assert registry.add("hub2", "hf:someone/problems").split == "train"


def test_source_round_trip_and_validation():
    src = DatasetSource(name="x", kind="hf", location="a/b", config="main", answer_field=None, answer_format="gsm8k")
    assert DatasetSource.from_dict(json.loads(json.dumps(src.to_dict()))) == src
    with pytest.raises(ValueError, match="unknown field"):
        DatasetSource.from_dict({**src.to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="unknown kind"):
        DatasetSource(name="x", kind="ftp", location="a")
    with pytest.raises(ValueError, match="answer_format"):
        DatasetSource(name="x", kind="file", location="a.jsonl", answer_format="latex")
    with pytest.raises(ValueError, match="needs a location"):
        DatasetSource(name="x", kind="file")


# settings ---------------------------------------------------------------------------------------
def test_dataset_settings_defaults_and_recipe_values():
    default = DatasetSettings()
    assert default.train == ("math_train",) and default.benchmarks == ("math500", "amc2023", "aime2024")
    assert default.limit_for("math500") is None
    s = from_dict(DatasetSettings, {"train": ["synthetic_train"], "benchmarks": ["synthetic_test", "math500"],
                                    "limits": {"math500": 50}})
    assert s.train == ("synthetic_train",) and s.limit_for("math500") == 50
    assert s.all_names() == ("synthetic_train", "synthetic_test", "math500")


@pytest.mark.parametrize(
    "data, match",
    [
        ({"limits": {"math500": 0}}, "positive integer"),
        ({"limits": {"math500": "50"}}, "positive integer"),
        ({"limits": ["math500"]}, "mapping"),
        ({"train": ["Bad Name"]}, "invalid dataset name"),
        ({"benchmarks": ["math500", "math500"]}, "duplicate"),
        ({"trian": ["math_train"]}, "unknown setting"),
    ],
)
def test_dataset_settings_reject_bad_values(data, match):
    with pytest.raises(ValueError, match=match):
        from_dict(DatasetSettings, data)


def test_problem_settings_validate():
    assert from_dict(ProblemSettings, {"max_problem_chars": 100}).max_problem_chars == 100
    with pytest.raises(ValueError, match="max_answer_chars"):
        ProblemSettings(max_answer_chars=0)
    with pytest.raises(ValueError, match="id_hash_chars"):
        ProblemSettings(id_hash_chars=4)


def test_recipe_sections_parse_into_the_data_settings():
    from astro_pipeline.config import to_dict
    from astro_pipeline.recipe import Recipe

    recipe = Recipe(name="t", raw={"datasets": {"limits": {"math500": 20}}, "problems": {"max_answer_chars": 80}})
    datasets = recipe.section("datasets")
    assert isinstance(datasets, DatasetSettings) and datasets.limit_for("math500") == 20
    assert recipe.section("problems").max_answer_chars == 80
    assert to_dict(datasets)["limits"] == {"math500": 20}


def _add_together(root: str, name: str, path: str, barrier) -> None:
    barrier.wait()  # every process adds at the same moment
    DatasetRegistry(ArtifactStore(root)).add(name, path)


def _run_together(root: str, names: list[str], path: str) -> list[int]:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(names))
    procs = [ctx.Process(target=_add_together, args=(root, name, path, barrier)) for name in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    return [p.exitcode for p in procs]


def test_concurrent_adds_keep_every_registration(problem_file):
    root = ArtifactStore.from_env().root
    names = [f"d{i}" for i in range(8)]
    assert _run_together(root, names, str(problem_file)) == [0] * 8
    assert DatasetRegistry(ArtifactStore(root)).user_names() == names
    # the same name from several processes at once: exactly one of them registers it
    codes = _run_together(root, ["same"] * 4, str(problem_file))
    assert sorted(codes) == [0, 1, 1, 1]
    assert "same" in DatasetRegistry(ArtifactStore(root))


@pytest.mark.parametrize("name", ["mine\n", "mine\r\n", "mine\t", " mine"])
def test_names_with_trailing_or_leading_whitespace_are_rejected(registry, problem_file, name):
    with pytest.raises(ValueError, match="invalid dataset name"):
        registry.add(name, str(problem_file))
    with pytest.raises(ValueError, match="invalid dataset name"):
        DatasetSettings(train=(name,))


def test_a_file_inside_the_home_follows_a_copied_home(tmp_path):
    import shutil

    first = ArtifactStore(str(tmp_path / "first"))
    first.write_bytes("inbox/drop.jsonl", (json.dumps({"problem": "What is 1+1?", "answer": "2"}) + "\n").encode())
    DatasetRegistry(first).add("drop", first.path("inbox/drop.jsonl"))
    assert DatasetRegistry(first).get("drop").location == first.uri("inbox/drop.jsonl")
    shutil.copytree(tmp_path / "first", tmp_path / "copy")
    copy = ArtifactStore(str(tmp_path / "copy"))
    copy.write_bytes("inbox/drop.jsonl", (json.dumps({"problem": "What is 2+2?", "answer": "4"}) + "\n").encode())
    src = DatasetRegistry(copy).get("drop")
    assert src.location == copy.uri("inbox/drop.jsonl")
    assert load_problems(src).problems["answer"].to_list() == ["4"]
