"""Problems read from s3:// (a local moto server reached through AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json

import fsspec
import pytest

from astro_pipeline.data.load import load_problems
from astro_pipeline.data.readers import DataSourceError
from astro_pipeline.data.registry import DatasetRegistry, source_path
from astro_pipeline.data.sources import DatasetSource
from astro_pipeline.storage import ArtifactStore
from astro_pipeline_tests.s3_fixture import moto_server, s3_bucket, s3_env  # noqa: F401

ROWS = [
    {"id": "s1", "problem": "What is 6*7?", "answer": "42"},
    {"id": "s2", "problem": "Half of 9?", "answer": "", "solution": "It is \\boxed{4.5}."},
    {"id": "s1", "problem": "again", "answer": "1"},
]


def test_jsonl_on_s3(s3_bucket):
    uri = f"{s3_bucket}/in/problems.jsonl"
    with fsspec.open(uri, "wb") as fh:  # plain fsspec: the endpoint comes from AWS_ENDPOINT_URL
        fh.write(("".join(json.dumps(r) + "\n" for r in ROWS) + "not json\n").encode())
    loaded = load_problems(DatasetSource(name="remote", kind="file", location=uri))
    assert loaded.problems.select("problem_id", "answer").rows() == [("s1", "42"), ("s2", "4.5")]
    assert loaded.quarantine.select("line", "reason").rows() == [(3, "duplicate id"), (4, "unparsable line")]
    assert loaded.stats["location"] == uri


def test_missing_s3_object_names_it(s3_bucket):
    with pytest.raises(DataSourceError, match="nothing-here.jsonl"):
        load_problems(DatasetSource(name="remote", kind="file", location=f"{s3_bucket}/nothing-here.jsonl"))


def test_registry_in_an_s3_store_with_an_s3_parquet(s3_bucket):
    import polars as pl

    uri = f"{s3_bucket}/data/p.parquet"
    with fsspec.open(uri, "wb") as fh:
        pl.DataFrame(ROWS[:2]).write_parquet(fh)
    store = ArtifactStore(f"{s3_bucket}/astro")
    DatasetRegistry(store).add("s3set", uri)
    assert store.exists(source_path("s3set"))
    src = DatasetRegistry(ArtifactStore(f"{s3_bucket}/astro")).get("s3set")  # a new instance reads it back
    assert src.format == "parquet"
    assert load_problems(src).problems["answer"].to_list() == ["42", "4.5"]
