"""Model references: local folders, s3:// folders through the local cache (moto), hub ids."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from astro_pipeline.llm import BackendSettings, GenerationRequest, SamplingParams, make_backend
from astro_pipeline.llm import model_ref
from astro_pipeline.llm.model_ref import COMPLETE_MARKER, fetch_s3_folder, is_hub_id, resolve_model_ref
from astro_pipeline_tests.s3_fixture import moto_server, s3_bucket, s3_env  # noqa: F401
from astro_pipeline_tests.tiny_models import demo_tokenizer, tiny_random_model


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_model")
    tiny_random_model().save_pretrained(folder)
    demo_tokenizer().save_pretrained(folder)
    return folder


def _upload(folder: Path, uri: str) -> None:
    fs, root = fsspec.core.url_to_fs(uri)
    for f in folder.iterdir():
        fs.put_file(str(f), f"{root}/{f.name}")


def test_local_folder_and_hub_ids(model_folder, tmp_path):
    assert resolve_model_ref(model_folder) == str(model_folder.resolve())
    assert resolve_model_ref(f"file://{model_folder}") == str(model_folder.resolve())
    assert resolve_model_ref("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    assert is_hub_id("gpt2") and not is_hub_id("./x") and not is_hub_id("a/b/c")
    with pytest.raises(FileNotFoundError):
        resolve_model_ref(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        resolve_model_ref("./typo/model")
    with pytest.raises(ValueError):
        resolve_model_ref("gs://bucket/model")


def test_make_backend_loads_a_local_folder(model_folder):
    backend = make_backend(BackendSettings(threads=1), model_folder)
    out = backend.generate([GenerationRequest(prompt="Start with 3.", params=SamplingParams(n=2, max_new_tokens=3, seed=0))])
    assert [s.n_tokens for s in out[0]] == [3, 3]


def test_s3_folder_is_copied_once_and_refreshed_when_it_changes(model_folder, s3_bucket, tmp_path, monkeypatch):  # noqa: F811
    uri = f"{s3_bucket}/models/tiny"
    _upload(model_folder, uri)
    cache = tmp_path / "cache"
    first = Path(resolve_model_ref(uri, cache))
    assert (first / COMPLETE_MARKER).is_file()
    assert {p.name for p in model_folder.iterdir()} <= {p.name for p in first.iterdir()}
    assert (first / "model.safetensors").read_bytes() == (model_folder / "model.safetensors").read_bytes()

    # unchanged objects: the cached copy is reused, nothing is downloaded (every download starts
    # with a fresh temporary folder)
    calls = []
    original = model_ref.tempfile.mkdtemp
    monkeypatch.setattr(model_ref.tempfile, "mkdtemp", lambda *a, **k: calls.append(a) or original(*a, **k))
    assert fetch_s3_folder(uri, cache) == first
    assert calls == []

    # a re-uploaded file (new ETag and size) gives a fresh copy
    fs, root = fsspec.core.url_to_fs(uri)
    fs.pipe_file(f"{root}/README.md", b"changed\n")
    second = fetch_s3_folder(uri, cache)
    assert second != first and (second / "README.md").read_text() == "changed\n"
    assert len(calls) == 1

    backend = make_backend(BackendSettings(threads=1, model_cache_dir=str(cache)), uri)
    assert backend.generate([GenerationRequest(prompt="Start with 3.", params=SamplingParams(max_new_tokens=2, seed=1))])[0][0].n_tokens == 2


def test_missing_s3_folder_fails(s3_bucket, tmp_path):  # noqa: F811
    with pytest.raises(FileNotFoundError):
        resolve_model_ref(f"{s3_bucket}/nothing/here", tmp_path)
