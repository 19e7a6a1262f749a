"""Process entry point of the SFT stage, for torchrun / ``accelerate launch``, and a launcher for it.

    torchrun --nproc_per_node 2 -m astro_pipeline.train.sft_main \\
        --base BASE_DIR --corpus corpus.parquet --settings settings.json --out OUT_DIR --work WORK_DIR

    accelerate launch --config_file recipes/accelerate/fsdp.yaml -m astro_pipeline.train.sft_main ...

Design: every process runs the same ``train_sft`` (TRL/accelerate read the launcher's environment
and shard the batches); the inputs are files, because a launcher cannot pass a DataFrame. The
settings file is the plain dict of ``SFTSettings`` (what ``config.to_dict`` gives, i.e. what the
recipe's "sft" section holds). The main process appends each step's metrics as one JSON line to
``--metrics`` (default ``<work>/metrics.jsonl``) and the summary to ``--summary``, which is how
``run_distributed`` (for a caller in another process, like the Dagster asset) follows progress.

Note (DESIGN): ``accelerate launch --cpu --num_processes 2`` silently runs one process on CPU;
use torchrun for CPU data parallelism (gloo). On GPUs both work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from astro_pipeline.config import from_dict, to_dict
from astro_pipeline.train.sft_settings import SFTSettings
from astro_pipeline.runlog import OnLog



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astro_pipeline.train.sft_main", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="base model folder (Hugging Face format)")
    parser.add_argument("--corpus", required=True, help="Parquet file of cot_examples rows")
    parser.add_argument("--settings", required=True, help="JSON file: the 'sft' settings mapping")
    parser.add_argument("--out", required=True, help="final model folder")
    parser.add_argument("--work", required=True, help="work folder (checkpoints, TensorBoard)")
    parser.add_argument("--metrics", default=None, help="JSON-lines file for per-step metrics (default <work>/metrics.jsonl)")
    parser.add_argument("--summary", default=None, help="write the summary JSON here too (main process)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    args = parser.parse_args(argv)

    from astro_pipeline.train.sft import train_sft

    settings = from_dict(SFTSettings, json.loads(Path(args.settings).read_text()), where="sft")
    corpus = pl.read_parquet(args.corpus)
    metrics_path = Path(args.metrics or Path(args.work) / "metrics.jsonl")
    is_main = int(os.environ.get("RANK", "0")) == 0

    def on_log(step: int, metrics: dict[str, float]) -> None:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")

    summary = train_sft(args.base, corpus, settings, args.out, work_dir=args.work, on_log=on_log, resume=not args.no_resume)
    if is_main and args.summary:
        Path(args.summary).write_text(json.dumps(summary.record, indent=2, sort_keys=True, default=str) + "\n")
    return 0


def launch_command(
    *,
    base: str,
    corpus: str,
    settings: str,
    out: str,
    work: str,
    nproc_per_node: int = 1,
    accelerate_config: str | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """The argv that starts the stage: torchrun by default, ``accelerate launch`` with a config file."""
    if accelerate_config:
        head = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config]
        if nproc_per_node > 1:
            head += ["--num_processes", str(nproc_per_node)]
    else:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc_per_node)]
    tail = ["--base", base, "--corpus", corpus, "--settings", settings, "--out", out, "--work", work]
    return [*head, "-m", "astro_pipeline.train.sft_main", *tail, *(extra or [])]


def run_distributed(
    base_model_dir: str,
    corpus: pl.DataFrame,
    settings: SFTSettings,
    out_dir: str,
    *,
    work_dir: str,
    nproc_per_node: int,
    on_log: OnLog | None = None,
    resume: bool = True,
    accelerate_config: str | None = None,
    env: dict[str, str] | None = None,
    poll_s: float = 1.0,
) -> RunSummary:
    """``train_sft`` in ``nproc_per_node`` processes (torchrun, or accelerate with a config file).

    Writes the corpus and settings into ``<work_dir>/launch/``, starts the launcher, forwards the
    metrics lines the main process appends to ``on_log`` while it runs, and returns the summary.
    Raises ``RuntimeError`` (with the tail of the launcher's output) if it fails.
    """
    work = Path(work_dir)
    launch = work / "launch"
    launch.mkdir(parents=True, exist_ok=True)
    corpus_path, settings_path = launch / "corpus.parquet", launch / "settings.json"
    metrics_path, summary_path, log_path = launch / "metrics.jsonl", launch / "summary.json", launch / "launcher.log"
    corpus.write_parquet(corpus_path)
    settings_path.write_text(json.dumps(to_dict(settings), indent=2) + "\n")
    metrics_path.unlink(missing_ok=True)
    summary_path.unlink(missing_ok=True)
    extra = ["--metrics", str(metrics_path), "--summary", str(summary_path)] + ([] if resume else ["--no-resume"])
    cmd = launch_command(
        base=str(base_model_dir), corpus=str(corpus_path), settings=str(settings_path), out=str(out_dir),
        work=str(work), nproc_per_node=nproc_per_node, accelerate_config=accelerate_config, extra=extra,
    )
    offset = 0
    with log_path.open("w") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        while True:
            finished = proc.poll() is not None
            offset = _forward_metrics(metrics_path, offset, on_log)
            if finished:
                break
            time.sleep(poll_s)
    if proc.returncode != 0 or not summary_path.is_file():
        tail = log_path.read_text()[-4000:]
        raise RuntimeError(f"sft launcher exited with {proc.returncode}: {' '.join(cmd)}\n{tail}")
    from astro_pipeline.train.sft import run_summary

    return run_summary(json.loads(summary_path.read_text()))


def _forward_metrics(path: Path, offset: int, on_log: OnLog | None) -> int:
    """Call ``on_log`` for each complete new line after ``offset``; return the new offset."""
    if not path.is_file():
        return offset
    with path.open() as fh:
        fh.seek(offset)
        while True:
            line = fh.readline()
            if not line.endswith("\n"):  # a line still being written: read it next time
                break
            offset = fh.tell()
            record = json.loads(line)
            if on_log is not None:
                step = int(record.pop("step"))
                on_log(step, record)
    return offset


if __name__ == "__main__":
    raise SystemExit(main())
