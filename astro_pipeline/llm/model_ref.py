"""Model references: a local folder, an ``s3://`` folder, or a hub id passed to the library as is.

Design choices:

* An ``s3://`` folder is copied once into a local cache and reused: the cache entry is named by a
  hash of the URI and of every object's relative path, ETag and size, so a re-uploaded model gets a
  fresh copy while an unchanged one is never downloaded again. The copy is made in a temporary
  folder and renamed into place, so a crash never leaves a half model that looks complete, and two
  processes racing for the same model both end with one complete copy.
* The S3 filesystem comes from fsspec/s3fs, so the usual AWS settings apply (credentials, region,
  ``AWS_ENDPOINT_URL`` for S3-compatible stores); ``storage_options`` overrides them.
* Anything else that names an existing folder is local. A string that looks like a path but does not
  exist is an error (a typo must not turn into a hub download attempt); ``org/name`` is a hub id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import fsspec

COMPLETE_MARKER = ".astro_complete"


def default_cache_dir() -> Path:
    return Path(os.environ.get("ASTRO_MODEL_CACHE", Path.home() / ".cache" / "astro" / "models"))


def is_hub_id(ref: str) -> bool:
    """``name`` or ``org/name`` without path syntax."""
    if not ref or "://" in ref or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        return False
    return all(part and not part.startswith(".") for part in ref.split("/"))


def resolve_model_ref(
    ref: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> str:
    """What ``from_pretrained`` should be given for ``ref``: a local folder path or a hub id."""
    ref = str(ref)
    if ref.startswith("s3://"):
        return str(fetch_s3_folder(ref, cache_dir, storage_options))
    if "://" in ref and not ref.startswith("file://"):
        raise ValueError(f"unsupported model reference {ref!r}: use a local folder, s3://, or a hub id")
    local = Path(ref.removeprefix("file://")).expanduser()
    if local.is_dir():
        return str(local.resolve())
    if is_hub_id(ref):
        return ref
    raise FileNotFoundError(f"model folder {ref!r} does not exist (and it is not a hub id)")


def fetch_s3_folder(
    uri: str, cache_dir: str | os.PathLike[str] | None = None, storage_options: dict[str, Any] | None = None
) -> Path:
    """Copy the objects under ``uri`` into the local cache (once per content) and return the folder."""
    fs, root = fsspec.core.url_to_fs(uri.rstrip("/"), **(storage_options or {}))
    fs.invalidate_cache()  # listings are cached per filesystem instance; we want the current content
    listing = fs.find(root, detail=True)
    prefix = root.rstrip("/") + "/"
    files = {p[len(prefix):]: info for p, info in listing.items() if p.startswith(prefix) and info.get("type") != "directory"}
    if not files:
        raise FileNotFoundError(f"no objects under {uri}")
    digest = hashlib.sha256(uri.rstrip("/").encode())
    for rel in sorted(files):
        info = files[rel]
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        digest.update(f"\0{rel}\0{etag}\0{info.get('size')}".encode())
    base = Path(cache_dir) if cache_dir else default_cache_dir()
    name = uri.rstrip("/").rsplit("/", 1)[-1] or "model"
    target = base / f"{name}-{digest.hexdigest()[:16]}"
    if (target / COMPLETE_MARKER).is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=base))
    try:
        for rel in sorted(files):
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(prefix + rel, str(dest))
        (tmp / COMPLETE_MARKER).write_text(uri + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first (or a stale incomplete copy is there)
            if not (target / COMPLETE_MARKER).is_file():
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
