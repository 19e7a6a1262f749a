"""The artifact store: a root folder, local or ``s3://``, reached through fsspec.

Design: every artifact lives under one root (``ASTRO_HOME``, default ``.astro/`` in the working
directory). Tables are Parquet files written with polars under ``tables/<table>/...``; models are
folders under ``models/``. Writes are atomic: locally we write a temporary file and rename it; on
S3 an object appears only when its upload completes, so a reader never sees half a file. Paths
given to the store are relative ("tables/problems/math500.parquet").
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import polars as pl


def astro_home() -> str:
    """The artifact root: ``$ASTRO_HOME`` or ``.astro`` in the working directory (made absolute)."""
    root = os.environ.get("ASTRO_HOME", ".astro")
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).resolve())


@dataclass
class ArtifactStore:
    root: str

    def __post_init__(self) -> None:
        self.root = self.root.rstrip("/")
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.is_local = "file" in protocols
        if self.is_local:
            Path(self._root_path).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls) -> ArtifactStore:
        return cls(astro_home())

    # paths -----------------------------------------------------------------------------------
    def path(self, rel: str) -> str:
        """Filesystem path (without protocol) of a relative artifact path."""
        return f"{self._root_path}/{rel.lstrip('/')}"

    def uri(self, rel: str) -> str:
        """Full URI (with protocol for remote roots) of a relative artifact path."""
        return f"{self.root}/{rel.lstrip('/')}"

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching a glob under the root, sorted."""
        prefix = self._root_path.rstrip("/") + "/"
        return sorted(p[len(prefix):] if p.startswith(prefix) else p for p in self.fs.glob(self.path(pattern)))

    def remove(self, rel: str, recursive: bool = False) -> None:
        if self.exists(rel):
            self.fs.rm(self.path(rel), recursive=recursive)

    # bytes -----------------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes, exclusive: bool = False) -> None:
        """Write atomically: temp file + rename locally, a single upload on object stores.

        ``exclusive``: fail with ``FileExistsError`` if ``rel`` exists. Locally that is atomic (the
        temp file is hard-linked into place, which fails if the name is taken); an object store has
        no such primitive here, so there it is a check before the upload.
        """
        target = self.path(rel)
        if self.is_local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{target}.tmp-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                if exclusive:
                    os.link(tmp, target)
                else:
                    os.replace(tmp, target)
            finally:  # an interrupted write leaves no temp file behind
                Path(tmp).unlink(missing_ok=True)
        else:
            if exclusive and self.fs.exists(target):
                raise FileExistsError(f"{self.uri(rel)} exists")
            self.fs.pipe_file(target, data)

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    # folders (models) ---------------------------------------------------------------------------
    def put_dir(self, local_dir: str | os.PathLike[str], rel: str) -> str:
        """Publish a finished local folder as ``rel``, replacing what was there; returns its URI.

        Locally: copy beside the target, then swap by rename, so readers see the old or the new
        folder, never a mix. On S3: upload every file, then write the ``.complete`` marker last.
        """
        target = self.path(rel)
        if self.is_local:
            staging = f"{target}.staging-{uuid.uuid4().hex}"
            try:
                shutil.copytree(local_dir, staging)
                old = f"{target}.old-{uuid.uuid4().hex}"
                if Path(target).exists():
                    os.replace(target, old)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            finally:  # an interrupted copy leaves no staging folder behind
                shutil.rmtree(staging, ignore_errors=True)
        else:
            self.remove(rel, recursive=True)
            self.fs.put(str(local_dir).rstrip("/") + "/", target, recursive=True)
        self.write_bytes(f"{rel}/.complete", b"")
        return self.uri(rel)

    def model_ref(self, rel: str) -> str:
        """What to hand a model loader: the local folder, or the s3:// URI (fetched into a cache)."""
        if not self.exists(f"{rel}/.complete"):
            raise FileNotFoundError(f"no complete model folder at {self.uri(rel)}; materialize it first")
        return self.path(rel) if self.is_local else self.uri(rel)

    # tables and json -------------------------------------------------------------------------
    def write_parquet(self, df: pl.DataFrame, rel: str) -> None:
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd")
        self.write_bytes(rel, buf.getvalue())

    def read_parquet(self, rel: str) -> pl.DataFrame:
        """Read one Parquet file; a corrupt file raises ``CorruptArtifactError`` naming it."""
        data = self.read_bytes(rel)
        try:
            return pl.read_parquet(io.BytesIO(data))
        except Exception as exc:  # polars raises ComputeError/OSError variants for bad files
            raise CorruptArtifactError(f"cannot read Parquet artifact {self.uri(rel)}: {exc}") from exc

    def write_json(self, obj: Any, rel: str, exclusive: bool = False) -> None:
        self.write_bytes(rel, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode(), exclusive)

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))


class CorruptArtifactError(RuntimeError):
    """An artifact exists but cannot be read (truncated or overwritten file)."""
