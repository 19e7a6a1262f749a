"""The Dagster instance behind `astro` commands: DAGSTER_HOME defaulted, its storage created once.

Design: a command must work without DAGSTER_HOME set (it defaults to ./.dagster_home, as in the
Makefile), so nobody meets Dagster's DagsterHomeNotSetError. Dagster creates and stamps its sqlite
schemas on first use without any locking, so two commands starting together on a fresh home race
on the migration ("UNIQUE constraint failed: alembic_version"). Creating the instance under an
exclusive file lock in DAGSTER_HOME, and touching each storage while it is held, leaves a fully
created schema for whoever comes next; later commands take the lock only for that moment.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

REPO = Path(__file__).resolve().parent.parent.parent
LOCK_FILE = ".astro-instance.lock"


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default ./.dagster_home) exists and has the project's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and (REPO / "dagster.yaml").exists():
        tmp = home / f".dagster.yaml.{os.getpid()}"
        shutil.copy(REPO / "dagster.yaml", tmp)
        os.replace(tmp, config)  # a concurrent reader sees no file or the whole file
    return home


def dagster_instance() -> DagsterInstance:
    """The instance under DAGSTER_HOME, its run, event and schedule storage created (see the module)."""
    home = ensure_dagster_home()
    with open(home / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = DagsterInstance.get()
            instance.get_runs(limit=1)  # run storage
            instance.get_dynamic_partitions("dataset")  # event log storage
            instance.all_instigator_state()  # schedule storage
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return instance
