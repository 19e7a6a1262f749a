"""What made an artifact: resolved settings, library versions, a fingerprint, a timestamp.

Design: every artifact folder or table gets a ``*.manifest.json`` beside it. A stage decides
whether it can reuse an existing artifact by comparing fingerprints (a hash of the settings and
inputs that determine the output), so "nothing changed" is checked, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from typing import Any

from astro_pipeline.storage import ArtifactStore

LIBRARIES = (
    "astro_pipeline", "torch", "transformers", "tokenizers", "trl", "peft", "accelerate",
    "polars", "duckdb", "math-verify", "sympy", "dagster", "vllm",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape results (missing ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts."""
    payload = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def write_manifest(store: ArtifactStore, rel: str, *, settings: Any, fingerprint: str, **extra: Any) -> dict:
    manifest = {
        "fingerprint": fingerprint,
        "settings": settings,
        "versions": library_versions(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    store.write_json(manifest, f"{rel}.manifest.json")
    return manifest


def read_manifest(store: ArtifactStore, rel: str) -> dict | None:
    path = f"{rel}.manifest.json"
    return store.read_json(path) if store.exists(path) else None
