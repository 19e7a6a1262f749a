"""Content checksums of a model folder: recorded when the folder is published, checked before use.

Design: a model folder (Hugging Face layout: weights, config, tokenizer) is trusted only as far as
its bytes match what was written. ``folder_checksums`` gives the sha256 and size of every file; the
stage that publishes the folder stores them in the model's manifest (key ``files``). Before a stage
reuses a finished model and before a model is loaded (search, training, evaluation), the folder is
hashed again and compared with ``verify_folder``: a truncated or overwritten file then fails with
the folder and file named, instead of the model being reused forever or evaluated on garbage. Every
file counts, not only the weights: a changed tokenizer or a stray adapter_config.json changes what
loads just as much. Folders are read through fsspec, so a folder on S3 is checked the same way.
Markers that say a copy is complete are not content and are left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import fsspec

# completion markers written by ArtifactStore.put_dir and the S3 model cache: not model content
MARKERS = frozenset({".complete", ".astro_complete"})
_CHUNK = 8 << 20


class CorruptModelError(RuntimeError):
    """A model folder does not match the checksums recorded when it was published."""


def _local_fs(fs: Any) -> Any:
    return fs if fs is not None else fsspec.filesystem("file")


def folder_checksums(folder: str | os.PathLike[str], fs: Any = None) -> dict[str, dict[str, Any]]:
    """relative path -> {"sha256", "size"} for every file under ``folder`` (markers excluded)."""
    fs = _local_fs(fs)
    root = str(folder).rstrip("/")
    prefix = root + "/"
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(fs.find(root)):
        rel = path[len(prefix):] if path.startswith(prefix) else path
        if rel.rsplit("/", 1)[-1] in MARKERS:
            continue
        digest, size = hashlib.sha256(), 0
        with fs.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        out[rel] = {"sha256": digest.hexdigest(), "size": size}
    return out


def checksum_differences(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between two ``folder_checksums`` results, one short line per file."""
    problems = []
    for rel in sorted(set(expected) | set(actual)):
        want, got = expected.get(rel), actual.get(rel)
        if got is None:
            problems.append(f"{rel} is missing")
        elif want is None:
            problems.append(f"{rel} was not part of the published model")
        elif want["size"] != got["size"]:
            problems.append(f"{rel} has {got['size']} bytes, {want['size']} were published (truncated or replaced)")
        elif want["sha256"] != got["sha256"]:
            problems.append(f"{rel} has other content than was published (overwritten)")
    return problems


def verify_folder(folder: str | os.PathLike[str], manifest: dict | None, *, where: str | None = None,
                  fs: Any = None) -> None:
    """Raise ``CorruptModelError`` (naming the folder) unless it matches ``manifest["files"]``."""
    where = where or str(folder)
    expected = (manifest or {}).get("files")
    if not expected:
        raise CorruptModelError(f"model folder {where} has no checksums in its manifest, so it cannot be "
                                "trusted; materialize its asset again")
    problems = checksum_differences(expected, folder_checksums(folder, fs))
    if problems:
        raise CorruptModelError(f"model folder {where} does not match its manifest: " + "; ".join(problems[:5])
                                + ("; ..." if len(problems) > 5 else "") + "; materialize its asset again")


def content_digest(manifest: dict | None) -> str | None:
    """One short hash of a model's recorded checksums (for fingerprints of what was made from it)."""
    files = (manifest or {}).get("files")
    if not files:
        return None
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
