"""Day-to-day operation settings and the inbox scan behind the new-problem sensor.

Design: the inbox is a folder or an S3 prefix (fsspec, like the artifact store). A file there
becomes a dataset named after its stem (lower-cased, unsafe characters replaced by "_"). A file
is identified by its path plus size and modification time (or ETag on S3), so a file replaced
under the same name is noticed; the caller keeps the set of identities it has acted on (the
Dagster sensor stores it in its cursor). Files whose format is unknown are reported, not dropped
silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import fsspec

from astro_pipeline.config import setting
from astro_pipeline.data.sources import SUFFIX_FORMATS


@dataclass(frozen=True)
class OperationsSettings:
    inbox: str = setting("", "folder or s3:// prefix watched for new problem files; empty = <ASTRO_HOME>/inbox")
    sensor_interval_s: int = setting(30, "seconds between two looks at the inbox")
    answer_field: str = setting("answer", "answer field of inbox files")
    problem_field: str = setting("problem", "problem field of inbox files")
    eval_cron: str = setting("0 3 * * *", "cron of the scheduled re-evaluation of every model stage")
    schedule_training: bool = setting(False, "whether the schedule also re-runs SFT and RL before evaluating")
    timezone: str = setting("UTC", "timezone of eval_cron")


@dataclass(frozen=True)
class InboxFile:
    dataset: str
    uri: str
    identity: str  # path + size + mtime/etag: changes when the file is replaced


def dataset_name_for(path: str) -> str:
    stem = PurePosixPath(path).name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_-") or "inbox"
    return name[:64]


def scan_inbox(inbox: str) -> tuple[list[InboxFile], list[str]]:
    """Problem files in the inbox (sorted by path) and the paths skipped for an unknown format."""
    fs, root = fsspec.core.url_to_fs(inbox)
    if not fs.exists(root):
        return [], []
    protocol = inbox.split("://")[0] + "://" if "://" in inbox else ""
    files, skipped = [], []
    for info in sorted(fs.ls(root, detail=True), key=lambda i: i["name"]):
        if info.get("type") != "file":
            continue
        path = info["name"]
        if not any(path.endswith(suffix) for suffix in SUFFIX_FORMATS):
            skipped.append(path)
            continue
        stamp = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
        uri = protocol + path if protocol else path
        files.append(InboxFile(dataset_name_for(path), uri, f"{path}|{info.get('size')}|{stamp}"))
    return files, skipped
