"""Run records of the training stages: what SFT and RL (and the assets around them) share.

One place for the mechanics a resumable training run needs, so that a change to checkpointing or
publishing is made once:

* ``model_folder_hash(folder)``: a cheap identity of a model folder (file names and sizes, the
  config / tokenizer / chat-template texts), for the fingerprint of what was trained from it.
* ``run_folder(scratch, fp)``: the work folder of one exact run; other runs' folders are removed.
* ``complete_checkpoints`` / ``last_complete_checkpoint``: the ``checkpoint-N`` folders written to
  the end (the Trainer writes ``trainer_state.json`` last, so a readable one means complete).
* ``prepare_run(work, record, resume=..., other_run=...)``: the run record (``work/RUN_FILE`` with
  the run's fingerprint) and the checkpoints that may be resumed: half-written ones are deleted,
  and checkpoints of another run are either deleted (SFT) or refused (RL).
* ``AlreadyComplete`` / ``CompleteGuard``: stop before the first step when the resumed checkpoint
  already holds the last step (transformers 5 would train one step more).
* ``publish_folder(build, out_dir)``: build a folder beside ``out_dir`` and swap it in, so an
  interrupted save never leaves a half folder.
* ``RunSummary``: what a training function returns; the assets read it by attribute, and
  ``record`` is the JSON written beside the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
_PREFIX = "checkpoint-"



def model_folder_hash(folder: str | Path) -> str:
    """A cheap content fingerprint of a model folder: names, sizes and the config/tokenizer texts."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        h.update(f.name.encode())
        h.update(str(f.stat().st_size).encode())
        if f.suffix in (".json", ".jinja", ".txt") and f.stat().st_size < 4_000_000:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def digest(obj: Any) -> str:
    """16 hex digits of sha256 over ``obj`` as sorted JSON (the fingerprint of a run record)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_folder(scratch: Path, fp: str) -> Path:
    """The checkpoint folder of this exact run; folders of runs with other inputs are removed, since
    their checkpoints must never be resumed into this one."""
    for old in scratch.glob("run-*"):
        if old.name != f"run-{fp}":
            shutil.rmtree(old, ignore_errors=True)
    return scratch / f"run-{fp}"


def _checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every ``checkpoint-N`` folder, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(p.name[len(_PREFIX):]), p) for p in ckpt_dir.iterdir()
             if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit()]
    return sorted(found)


def is_complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing ``checkpoint`` (its last file, trainer_state.json, reads)."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def complete_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    """Checkpoint folders that were written to the end, oldest first (read only: safe to poll)."""
    return [p for _, p in _checkpoints(Path(ckpt_dir)) if is_complete(p)]


def last_complete_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-N`` (None if there is none)."""
    done = complete_checkpoints(ckpt_dir)
    return done[-1] if done else None


def drop_incomplete_checkpoints(ckpt_dir: str | Path) -> list[str]:
    """Delete checkpoints newer than the last complete one (left by a kill while saving); their names."""
    dropped = []
    for _, p in reversed(_checkpoints(Path(ckpt_dir))):
        if is_complete(p):
            break
        shutil.rmtree(p, ignore_errors=True)
        dropped.append(p.name)
    if dropped:
        log.warning("deleted incomplete checkpoint(s) %s in %s (killed while saving)", dropped, ckpt_dir)
    return dropped


def _drop_all(ckpt_dir: Path) -> list[str]:
    names = [p.name for _, p in _checkpoints(ckpt_dir)]
    for name in names:
        shutil.rmtree(ckpt_dir / name, ignore_errors=True)
    return names


def write_json_atomic(path: Path, obj: Any) -> None:
    """``obj`` as indented sorted JSON, written under a temporary name and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class PreparedRun:
    """What ``prepare_run`` found: the checkpoint to resume from and what it deleted."""

    resume_from: Path | None
    dropped_incomplete: list[str]
    discarded: list[str]  # checkpoints deleted because of resume=False or another run's fingerprint


def prepare_run(work: Path, record: dict[str, Any], *, run_file: str, resume: bool, other_run: str,
                who: str) -> PreparedRun:
    """Make ``work`` hold only checkpoints of the run ``record`` describes (``record["fingerprint"]``).

    Writes the record to ``work/run_file``. ``resume=False`` deletes every checkpoint. With
    ``resume``, half-written checkpoints are deleted and the newest complete one is returned, unless
    the previous record has another fingerprint: then ``other_run="discard"`` deletes its checkpoints
    and ``other_run="refuse"`` raises ``ValueError`` (resuming would silently mix two runs).
    """
    if other_run not in ("discard", "refuse"):
        raise ValueError(f"other_run must be discard or refuse, got {other_run!r}")
    ckpt_dir = work / CHECKPOINTS
    path = work / run_file
    previous = json.loads(path.read_text()).get("fingerprint") if path.is_file() else None
    same_run = previous == record["fingerprint"]
    discarded: list[str] = []
    if not resume:
        discarded = _drop_all(ckpt_dir)
    elif not same_run and complete_checkpoints(ckpt_dir):
        if other_run == "refuse" and previous is not None:
            raise ValueError(
                f"{who}: {work} holds checkpoints of a different run (fingerprint {previous} != "
                f"{record['fingerprint']}: settings, data or start model changed); pass resume=False to start over")
        discarded = _drop_all(ckpt_dir)
    if discarded:
        log.warning("%s: discarded checkpoints (%s): %s", who,
                    "resume=False" if not resume else "another run's", discarded)
    dropped = drop_incomplete_checkpoints(ckpt_dir)
    write_json_atomic(path, record)
    return PreparedRun(last_complete_checkpoint(ckpt_dir) if resume else None, dropped, discarded)


class AlreadyComplete(Exception):
    """Raised from on_train_begin when the resumed checkpoint already holds the last step."""


class CompleteGuard(TrainerCallback):
    """Stop before the first step when resuming from a checkpoint of the final step.

    transformers 5 checks for the end of training only after a step, so resuming from the last
    checkpoint (a run killed while writing its final folder, or simply rerun) would train one extra
    step and return a different model. on_train_begin runs after the checkpoint's weights, optimizer
    and state are loaded (for DDP, FSDP and DeepSpeed alike), so stopping there keeps them.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise AlreadyComplete()


def publish_folder(build: Callable[[Path], None] | None, out_dir: Path, *, tmp: Path | None = None) -> None:
    """Swap a folder built by ``build(tmp)`` in as ``out_dir`` (an interrupted save leaves no half folder).

    ``tmp``: the temporary folder beside ``out_dir`` to build in (default: a fresh name); ``build``
    may be ``None`` when the caller already filled ``tmp``.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    if build is not None:
        try:
            build(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class RunSummary:
    """What a training stage returns. The assets read the attributes; ``record`` is the full JSON
    summary saved in the model folder (stage-specific details, settings, library versions)."""

    stage: str
    fingerprint: str
    steps: int
    wall_s: float
    resumed_from: str | None = None
    final_loss: float | None = None
    stopped_by_guard: bool = False
    stop_reasons: tuple[str, ...] = ()
    record: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def headline(self, *extra: str) -> dict[str, Any]:
        """The numbers an asset shows in its materialization: steps, wall time, and ``extra`` record keys."""
        out: dict[str, Any] = {"steps": self.steps, "wall_s": self.wall_s}
        if self.final_loss is not None:
            out["final_loss"] = self.final_loss
        out.update({k: self.record[k] for k in extra if self.record.get(k) is not None})
        return out
