"""``DatasetRegistry``: the built-in datasets plus user datasets persisted in the artifact store.

Design choices:

* User datasets live in the store (local or s3://), one file per dataset
  (``datasets/sources/<name>.json``, the ``DatasetSource`` dict), so every process using the same
  ``ASTRO_HOME`` sees the same datasets (the Dagster layer turns ``names()`` into dynamic
  partitions). One file per dataset, not one shared file, because a shared file is a
  read-modify-write: two processes adding at the same moment (the inbox sensor and a user, or two
  users) lost one of the adds. Now adds of different names never touch the same file, and a local
  add creates its file exclusively, so two adds of one name cannot both succeed. Files are re-read
  on every call. A home made before this layout has ``datasets/registry.json``; its entries are
  still read, and removing one rewrites that file.
* ``add`` validates everything it can up front: the name (a safe partition key, not a built-in,
  not taken), the format (from the file suffix, or ``hf:ID[:split]``), and, for local paths, that
  the file exists. Local paths are stored absolute so the entry works from any directory. Remote
  files are checked when loaded (credentials may differ between the adding and loading machines).
* Built-ins are resolved on every ``get`` (``ASTRO_DATA_DIR`` may change between calls).
* A file inside the artifact root (the inbox) is stored relative to it (``${ASTRO_HOME}/inbox/x.jsonl``)
  and resolved against the current root on ``get``: a copied, moved or restored home must read
  its own inbox file, not the one in the home it was copied from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astro_pipeline.data.settings import check_dataset_name
from astro_pipeline.data.sources import (
    BUILTIN_NAMES,
    SUFFIX_FORMATS,
    DatasetSource,
    builtin_source,
    format_from_suffix,
)
from astro_pipeline.storage import ArtifactStore

SOURCES_DIR = "datasets/sources"
LEGACY_REGISTRY_PATH = "datasets/registry.json"  # the earlier single-file registry (read, never added to)
REGISTRY_VERSION = 1
HOME_PREFIX = "${ASTRO_HOME}/"  # a stored location inside the artifact root, relative to it


def source_path(name: str) -> str:
    """Where one user dataset's source is stored, relative to the artifact root."""
    return f"{SOURCES_DIR}/{name}.json"


class DatasetRegistry:
    def __init__(self, store: ArtifactStore):
        self.store = store

    # reading ---------------------------------------------------------------------------------
    def _legacy(self) -> dict[str, dict[str, Any]]:
        if not self.store.exists(LEGACY_REGISTRY_PATH):
            return {}
        doc = self.store.read_json(LEGACY_REGISTRY_PATH)
        if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
            raise ValueError(f"dataset registry {self.store.uri(LEGACY_REGISTRY_PATH)} is malformed")
        return doc["datasets"]

    def _user(self) -> dict[str, dict[str, Any]]:
        user = self._legacy()
        for rel in self.store.glob(f"{SOURCES_DIR}/*.json"):
            entry = self.store.read_json(rel)
            if not isinstance(entry, dict):
                raise ValueError(f"dataset source {self.store.uri(rel)} is malformed")
            user[rel.rsplit("/", 1)[-1].removesuffix(".json")] = entry
        return user

    def names(self) -> list[str]:
        """Built-in dataset names (in their fixed order), then user datasets (sorted)."""
        return [*BUILTIN_NAMES, *sorted(self._user())]

    def user_names(self) -> list[str]:
        return sorted(self._user())

    def get(self, name: str) -> DatasetSource:
        if name in BUILTIN_NAMES:
            return builtin_source(name)
        user = self._user()
        if name not in user:
            raise KeyError(f"unknown dataset {name!r}; known: {[*BUILTIN_NAMES, *sorted(user)]}")
        entry = dict(user[name])
        if entry.get("kind") == "file" and str(entry.get("location", "")).startswith(HOME_PREFIX):
            entry["location"] = self.store.uri(entry["location"][len(HOME_PREFIX):])
        return DatasetSource.from_dict(entry)

    def __contains__(self, name: str) -> bool:
        return name in BUILTIN_NAMES or name in self._user()

    # writing ---------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        source_uri: str,
        problem_field: str | None = None,
        answer_field: str | None = None,
        id_field: str | None = None,
        *,
        solution_field: str | None = None,
        answer_format: str = "plain",
        config: str | None = None,
        description: str = "",
    ) -> DatasetSource:
        """Register a user dataset; fields left None take the defaults problem/answer/id/solution.

        ``source_uri``: a local path or fsspec URI (``s3://bucket/key.jsonl``) ending in .jsonl,
        .ndjson, .json, .parquet or .csv; or ``hf:ID[:split]`` for a Hugging Face dataset (split
        defaults to "train"; ``config`` names the HF config).
        """
        check_dataset_name(name)
        if name in BUILTIN_NAMES:
            raise ValueError(f"dataset name {name!r} is a built-in dataset; choose another name")
        user = self._user()
        if name in user:
            raise ValueError(f"dataset {name!r} is already registered; remove it first")
        fields = {
            key: value
            for key, value in dict(problem_field=problem_field, answer_field=answer_field,
                                   id_field=id_field, solution_field=solution_field).items()
            if value is not None
        }
        source = DatasetSource(
            name=name, answer_format=answer_format, description=description,
            **_location(name, source_uri, config), **fields,
        )
        stored = source.to_dict()
        root = self.store.uri("").rstrip("/") + "/"
        if source.kind == "file" and source.location.startswith(root):
            stored["location"] = HOME_PREFIX + source.location[len(root):]
        try:
            self.store.write_json(stored, source_path(name), exclusive=True)
        except FileExistsError:
            raise ValueError(f"dataset {name!r} is already registered; remove it first") from None
        return source

    def remove(self, name: str) -> None:
        if name in BUILTIN_NAMES:
            raise ValueError(f"dataset {name!r} is built in and cannot be removed")
        user = self._user()
        if name not in user:
            raise KeyError(f"unknown user dataset {name!r}; user datasets: {sorted(user)}")
        self.store.remove(source_path(name))
        legacy = self._legacy()
        if name in legacy:
            del legacy[name]
            self.store.write_json({"version": REGISTRY_VERSION, "datasets": legacy}, LEGACY_REGISTRY_PATH)


def _location(name: str, source_uri: str, config: str | None) -> dict[str, Any]:
    """kind/location/split/config/format of a user source URI (validated)."""
    if not isinstance(source_uri, str) or not source_uri.strip():
        raise ValueError(f"dataset {name!r}: empty source")
    source_uri = source_uri.strip()
    if source_uri.startswith("hf:"):
        dataset_id, _, split = source_uri[3:].partition(":")
        if not dataset_id or ":" in split:
            raise ValueError(f"dataset {name!r}: expected hf:ID or hf:ID:split, got {source_uri!r}")
        return dict(kind="hf", location=dataset_id, split=split or "train", config=config)
    fmt = format_from_suffix(source_uri)
    if fmt is None:
        raise ValueError(
            f"dataset {name!r}: unknown format of {source_uri!r}; supported: files ending in "
            f"{', '.join(sorted(SUFFIX_FORMATS))}, or hf:ID[:split] for a Hugging Face dataset"
        )
    location = source_uri
    if "://" not in source_uri:  # a local path: must exist now, stored absolute
        path = Path(source_uri).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"dataset {name!r}: no such file {path}")
        location = str(path)
    return dict(kind="file", location=location, format=fmt)
