"""The SFT stage: fine-tune the base model on the CoT corpus with TRL's SFTTrainer.

``train_sft(base_model_dir, corpus, settings, out_dir, work_dir=...)`` turns the ``cot_examples``
rows of the selected kinds into TRL's conversational prompt-completion format, trains (full or
LoRA), and writes a plain Hugging Face folder (safetensors, tokenizer with its chat template,
``settings.json``, ``versions.json``, ``sft_summary.json``) to ``out_dir``.

Design choices:

* TRL's SFTTrainer does everything the recipe asks (prompt/completion masking, packing,
  padding-free batches, LoRA through peft, checkpoints, resume, DDP/FSDP/DeepSpeed through
  accelerate), so there is no home-made loop. What TRL gets wrong by default for us is set
  explicitly: ``use_cpu`` on machines without CUDA, ``bf16`` only where it helps,
  ``gradient_checkpointing`` off, and ``completion_only_loss`` always given (TRL masks the prompt of
  prompt/completion data by default; the paper trains on all tokens).
* Conversational data: prompt = one user turn (the problem), completion = one assistant turn (the
  CoT). The tokenizer's chat template renders both, so the SFT model sees exactly the prompt format
  the later stages (RL, evaluation) generate from.
* Exact resume. Checkpoints go to ``<work_dir>/checkpoints`` every ``save_steps``; a later call
  continues from the newest *complete* one (``trainer_state.json`` is written last, so a checkpoint
  without it was cut off by a kill and is deleted). The data order is a function of the settings'
  seed alone: the corpus is sorted by (dataset, problem_id, trace_id) before the seeded sampler
  shuffles it, so the order in which the warehouse returns rows does not matter and the Trainer's
  skip of already-consumed batches lands on the same examples. ``<work_dir>/run.json`` fingerprints
  what fixes the trajectory (training settings, corpus content, base model, number of processes);
  checkpoints of a different run are discarded instead of being resumed into the wrong one.
* ``max_steps`` caps the run: the schedule is laid out over ``min(max_steps, epochs' steps)``.
* LoRA output is merged: the adapter is saved, then applied to a freshly loaded base model and
  merged on the main process, so the stages after SFT always get a plain full model (and this works
  the same under DDP, FSDP or ZeRO-3, where the trained model object is sharded or wrapped).
* Writes are atomic: the final folder is assembled under a temporary name beside ``out_dir`` and
  renamed into place.
* Metrics: ``on_log(step, metrics)`` on the main process (see ``sft_callbacks``), TensorBoard event
  files in ``<work_dir>/tensorboard``, and the trainer's tqdm bar unless ``progress_bar`` is off.
* Several processes: the same function runs in every process started by torchrun or
  ``accelerate launch`` (see ``sft_main``); TRL/accelerate shard the batches and average gradients.

Measured on 2 CPU cores shared with other jobs (load 4-7), one thread, demo-shaped random Llama
(hidden 256, 4 layers, 3.4M parameters), batch 16, ~117 tokens per example (``astro_pipeline.bench.sft``):
SFTTrainer steps reach 0.93-1.09 of a plain PyTorch loop's tokens/s on the same batches (noise
between runs is about +-7%; TRL's fused LM head skips the padded and masked positions, which the
plain loop computes). Random batches carry 28% padding; ``sampling: group_by_length`` cuts it to
1.4% and raises tokens/s by ~35% (1450 -> 1970). ``padding_free`` removes padding but was ~10%
slower and ``packing`` (512-token rows) ~3.8x slower per token: on CPU both need an explicit
block-diagonal attention mask instead of SDPA's causal fast path (they pay off with FlashAttention on
GPUs). One DataLoader worker changed nothing measurable. DDP over gloo (2 x batch 2) matched one
process (batch 4) to 5e-7 in the per-step loss; after kill -9, the resumed run's losses equal the
uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from astro_pipeline.config import to_dict
from astro_pipeline.llm.device import set_threads
from astro_pipeline.llm.prompt import chat_example
from astro_pipeline.provenance import library_versions
from astro_pipeline.runlog import OnLog
from astro_pipeline.train.runs import (
    CHECKPOINTS,
    AlreadyComplete,
    CompleteGuard,
    RunSummary,
    complete_checkpoints,
    digest,
    model_folder_hash,
    prepare_run,
    publish_folder,
)
from astro_pipeline.train.sft_callbacks import StepMetricsCallback
from astro_pipeline.train.sft_settings import SFTSettings
from astro_pipeline.warehouse.tables import require_columns

log = logging.getLogger(__name__)

SUMMARY_FILE = "sft_summary.json"
SETTINGS_FILE = "settings.json"
VERSIONS_FILE = "versions.json"
RUN_FILE = "run.json"
REQUIRED_COLUMNS = ("prompt", "completion", "kind")
ORDER_COLUMNS = ("dataset", "problem_id", "trace_id")
# settings that change how a run is watched or stored, not which weights it produces
_NOT_TRAJECTORY = {"save_steps", "save_total_limit", "logging_steps", "report_to", "progress_bar", "threads", "dataloader_workers"}


# ------------------------------------------------------------------------------------------------
# data


def select_examples(corpus: pl.DataFrame, kinds: tuple[str, ...]) -> pl.DataFrame:
    """Rows of the wanted kinds, in a canonical order (so the seeded shuffle is the same every run)."""
    require_columns(corpus, REQUIRED_COLUMNS, "sft: corpus")
    rows = corpus.filter(pl.col("kind").is_in(list(kinds)))
    if rows.height == 0:
        found = sorted(corpus["kind"].unique().to_list()) if corpus.height else []
        raise ValueError(f"sft: no corpus rows of kinds {list(kinds)} (kinds present: {found})")
    bad = rows.filter(
        pl.col("prompt").is_null() | pl.col("completion").is_null() | (pl.col("completion").str.len_chars() == 0)
    )
    if bad.height:
        raise ValueError(f"sft: {bad.height} selected row(s) have an empty prompt or completion")
    keys = [c for c in ORDER_COLUMNS if c in rows.columns] + ["prompt", "completion"]
    return rows.sort(keys, maintain_order=True)


def to_conversational(rows: pl.DataFrame, system_prompt: str = ""):
    """TRL's conversational prompt-completion dataset: the problem's messages (``llm.prompt``: the
    system turn when one is set, one user turn), one assistant turn per row."""
    from datasets import Dataset

    examples = [chat_example(p, c, system_prompt) for p, c in zip(rows["prompt"].to_list(), rows["completion"].to_list())]
    return Dataset.from_dict({key: [e[key] for e in examples] for key in ("prompt", "completion")})


def corpus_fingerprint(rows: pl.DataFrame) -> str:
    """Content hash of the selected rows (prompt, completion), in their canonical order."""
    digest = hashlib.sha256()
    for prompt, completion in zip(rows["prompt"].to_list(), rows["completion"].to_list()):
        for text in (prompt, completion):
            data = text.encode()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# environment


def _precision(settings: SFTSettings) -> tuple[bool, bool, bool]:
    """(use_cpu, bf16, fp16) for the Trainer."""
    import torch

    cuda = torch.cuda.is_available()
    if settings.precision == "auto":
        return (not cuda, bool(cuda and torch.cuda.is_bf16_supported()), False)
    if settings.precision in ("bf16", "fp16") and not cuda:
        log.warning("sft: precision=%s requested without CUDA; CPU autocast is used", settings.precision)
    return (not cuda, settings.precision == "bf16", settings.precision == "fp16")


# ------------------------------------------------------------------------------------------------
# trainer


def build_sft_config(settings: SFTSettings, ckpt_dir: str, *, truncate: bool = True, **overrides: Any):
    """The SFTConfig for ``settings`` (every TRL default that matters here is set explicitly).

    ``truncate=False`` leaves ``max_length`` unset (the caller cuts the examples itself).
    """
    from trl import SFTConfig

    from astro_pipeline.train.hf_args import checkpointing_kwargs

    use_cpu, bf16, fp16 = _precision(settings)
    report_to = [r for r in settings.report_to if r not in ("tensorboard", "none")]
    kwargs: dict[str, Any] = dict(
        output_dir=ckpt_dir,
        num_train_epochs=settings.epochs if settings.epochs > 0 else 1.0,
        max_steps=settings.max_steps if settings.epochs <= 0 else -1,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        lr_scheduler_kwargs={"min_lr_rate": settings.min_lr_ratio} if settings.lr_scheduler == "cosine_with_min_lr" else None,
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a fraction of the steps in transformers 5
        weight_decay=settings.weight_decay,
        adam_beta1=settings.adam_beta1,
        adam_beta2=settings.adam_beta2,
        max_grad_norm=settings.max_grad_norm,
        max_length=settings.max_length if truncate else None,
        packing=settings.packing,
        padding_free=settings.padding_free,
        completion_only_loss=settings.completion_only_loss,
        seed=settings.seed,
        data_seed=settings.seed,
        # group_by_length is done by us as a seeded order of the dataset read sequentially (see
        # length_grouped_order). transformers' LengthGroupedSampler draws its permutation from the global
        # RNG when the epoch starts, so the order depends on whatever used random numbers before: a
        # second pass over the dataloader in one process gets other batches (seen in the benchmark).
        # It happened to resume exactly in our test, but the data order should not rest on that.
        train_sampling_strategy="sequential" if settings.sampling == "group_by_length" else "random",
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        logging_strategy="steps",
        logging_steps=settings.logging_steps,
        report_to=report_to or "none",
        disable_tqdm=not settings.progress_bar,
        use_cpu=use_cpu,
        bf16=bf16,
        fp16=fp16,
        # under the installed transformers' name (see hf_args): on 5.2x the old `gradient_checkpointing`
        # (TRL default True) only applies when `activation_checkpointing` is unset
        **checkpointing_kwargs(settings.gradient_checkpointing),
        dataloader_num_workers=settings.dataloader_workers,
        # every parameter gets a gradient (full or all-linear LoRA): skip DDP's unused-parameter search
        ddp_find_unused_parameters=False,
        # device_map=None: the Trainer/accelerate place the model (TRL's "auto" would spread it over every
        # visible GPU in each process under FSDP)
        model_init_kwargs={"dtype": settings.model_dtype, "device_map": None},
        eval_strategy="no",
    )
    kwargs.update(overrides)
    return SFTConfig(**kwargs)


def _peft_config(settings: SFTSettings):
    from peft import LoraConfig

    targets = settings.lora_target_modules
    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules="all-linear" if tuple(targets) == ("all-linear",) else list(targets),
        task_type="CAUSAL_LM",
    )


def load_tokenizer(model_dir: str | Path):
    """The base model's tokenizer; it must carry a chat template (the prompt format of every later stage)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"sft: the tokenizer in {model_dir} has no chat template; the CoT corpus is conversational")
    if tokenizer.pad_token is None:  # TRL would do the same; done here so the saved tokenizer says so
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_trainer(
    base_model_dir: str | Path,
    rows: pl.DataFrame,
    settings: SFTSettings,
    ckpt_dir: str | Path,
    *,
    callbacks: list | None = None,
    system_prompt: str = "",
    **config_overrides: Any,
):
    """An SFTTrainer over ``rows`` (already selected), with ``max_steps`` applied as a cap.

    Also used by the benchmark, so that it measures exactly the trainer the stage runs.
    """
    from trl import SFTTrainer

    tokenizer = load_tokenizer(base_model_dir)
    # TRL refuses max_length with padding_free and no packing (it cannot cut inside a flat batch);
    # we cut the prepared examples ourselves below, like TRL's own keep_start truncation.
    config = build_sft_config(settings, str(ckpt_dir), truncate=not settings.padding_free, **config_overrides)
    trainer = SFTTrainer(
        model=str(base_model_dir),
        args=config,
        train_dataset=to_conversational(rows, system_prompt),
        processing_class=tokenizer,
        peft_config=_peft_config(settings) if settings.method == "lora" else None,
        callbacks=callbacks,
    )
    if not settings.progress_bar:
        _remove_printer(trainer)
    if settings.padding_free:
        limit = settings.max_length
        trainer.train_dataset = trainer.train_dataset.map(
            lambda ex: {"input_ids": ex["input_ids"][:limit], "labels": ex["labels"][:limit]}
        ).filter(lambda ex: any(t != -100 for t in ex["labels"]))
    if settings.sampling == "group_by_length":
        group = settings.batch_size * trainer.args.world_size
        lengths = [len(ids) for ids in trainer.train_dataset.with_format("arrow")[:].column("input_ids").to_pylist()]
        trainer.train_dataset = trainer.train_dataset.select(length_grouped_order(lengths, group, settings.seed))
    if settings.max_steps > 0 and settings.epochs > 0:
        per_epoch = _update_steps_per_epoch(trainer)
        if settings.max_steps < math.ceil(settings.epochs * per_epoch):
            trainer.args.max_steps = settings.max_steps
    return trainer


def length_grouped_order(lengths: list[int], group: int, seed: int, megabatch: int = 50) -> list[int]:
    """A seeded example order in which every ``group`` consecutive examples have similar lengths.

    Like transformers' LengthGroupedSampler (shuffle, sort by length inside mega-batches of
    ``megabatch`` groups, longest group first so that an out-of-memory error shows at once), but a
    pure function of ``seed``: read sequentially, the order is the same in every run and every
    resumed run. ``group`` = per-device batch x processes, so the batches that make one optimizer
    step on the different ranks come from one group (similar lengths, balanced ranks).
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = group * megabatch
    groups = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: -lengths[i])
        groups += [chunk[i : i + group] for i in range(0, len(chunk), group)]
    rng.shuffle(groups)
    if groups:
        longest = max(range(len(groups)), key=lambda g: max(lengths[i] for i in groups[g]))
        groups.insert(0, groups.pop(longest))
    return [i for g in groups for i in g]


def _update_steps_per_epoch(trainer) -> int:
    """Optimizer steps in one epoch, computed like the Trainer does (batches per process / accumulation)."""
    batches = len(trainer.get_train_dataloader())
    accumulation = trainer.args.gradient_accumulation_steps
    return max(1, batches // accumulation + int(batches % accumulation > 0))


@contextlib.contextmanager
def _dataset_progress(enabled: bool):
    """Hide the datasets library's per-map progress bars while preparing data when bars are off."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            datasets.enable_progress_bars()


def _remove_printer(trainer) -> None:
    # Without tqdm the Trainer prints every log dict to stdout; our callback logs them already.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


# ------------------------------------------------------------------------------------------------
# the stage


def train_sft(
    base_model_dir: str,
    corpus: pl.DataFrame,
    settings: SFTSettings,
    out_dir: str,
    *,
    work_dir: str,
    on_log: OnLog | None = None,
    resume: bool = True,
    system_prompt: str = "",
) -> RunSummary:
    """Fine-tune ``base_model_dir`` on ``corpus`` (cot_examples rows) into a full model folder ``out_dir``.

    ``work_dir`` keeps resumable checkpoints and TensorBoard files; with ``resume`` a rerun after a
    kill continues from the newest complete checkpoint of the same run. ``on_log(step, metrics)`` gets
    loss, learning_rate, grad_norm, tokens_per_s, num_tokens, mean_token_accuracy, entropy, epoch at
    every ``logging_steps`` (main process only). Returns the run's summary; its ``record`` is also
    written to ``out_dir/sft_summary.json``. Run it in every process under torchrun/accelerate for data
    parallelism. ``system_prompt``: the system turn of every prompt (``llm.prompt``; the one the
    model is evaluated with).
    """
    started = time.perf_counter()
    threads = set_threads(settings.threads)
    work = Path(work_dir)
    ckpt_dir = work / CHECKPOINTS
    rows = select_examples(corpus, settings.kinds)

    # Building the config initialises the process group under torchrun; only then can ranks agree.
    from accelerate import PartialState

    build_sft_config(settings, str(ckpt_dir))
    state = PartialState()
    trajectory = {k: v for k, v in to_dict(settings).items() if k not in _NOT_TRAJECTORY}
    run = {
        "settings": trajectory,
        "corpus": corpus_fingerprint(rows),
        "n_examples": rows.height,
        "base_model": model_folder_hash(base_model_dir),
        "processes": state.num_processes,
        **({"system_prompt": system_prompt} if system_prompt else {}),
    }
    run["fingerprint"] = digest(run)
    discarded: list[str] = []
    if state.is_main_process:
        kept = prepare_run(work, run, run_file=RUN_FILE, resume=resume, other_run="discard", who="sft")
        discarded = kept.discarded + kept.dropped_incomplete
    state.wait_for_everyone()
    checkpoints = complete_checkpoints(ckpt_dir)
    resume_from = str(checkpoints[-1]) if (resume and checkpoints) else None

    metrics = StepMetricsCallback(on_log)
    callbacks: list = [CompleteGuard(), metrics]
    if "tensorboard" in settings.report_to and state.is_main_process:
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        # one writer on the main process only: the default callback would make event files per rank
        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(work / "tensorboard"))))
    with _dataset_progress(settings.progress_bar):
        trainer = build_trainer(base_model_dir, rows, settings, ckpt_dir, callbacks=callbacks,
                                system_prompt=system_prompt)
    prepared = trainer.train_dataset
    n_tokens, n_loss_tokens = _token_counts(prepared)
    setup_s = time.perf_counter() - started

    log.info("sft: %d examples, resume_from=%s, processes=%d", rows.height, resume_from, state.num_processes)
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
        train_loss: float | None = float(output.training_loss)
    except AlreadyComplete:
        # the newest checkpoint is the last step: its weights are loaded, nothing is left to train
        train_loss = None
    train_s = time.perf_counter() - started - setup_s
    logged = [h for h in trainer.state.log_history if "loss" in h]

    summary: dict[str, Any] = {
        "steps": int(trainer.state.global_step),
        "max_steps": int(trainer.state.max_steps),
        "final_loss": float(logged[-1]["loss"]) if logged else None,
        "train_loss": train_loss,
        "tokens_per_s": _overall_tokens_per_s(metrics, train_s),
        "wall_s": round(time.perf_counter() - started, 2),
        "train_s": round(train_s, 2),
        "setup_s": round(setup_s, 2),
        "n_examples": rows.height,
        "train_examples": rows.height,  # the name the sft_model asset reads
        "n_examples_by_kind": {k: int(n) for k, n in rows.group_by("kind").len().iter_rows()},
        "n_train_rows": len(prepared),
        "n_tokens": int(n_tokens),
        "n_loss_tokens": int(n_loss_tokens),
        "processes": state.num_processes,
        "global_batch_size": settings.batch_size * settings.gradient_accumulation_steps * state.num_processes,
        "threads": threads,
        "resumed_from": Path(resume_from).name if resume_from else None,
        "resumed_from_step": int(Path(resume_from).name.split("-")[1]) if resume_from else 0,
        "discarded_checkpoints": discarded,
        "run_fingerprint": run["fingerprint"],
        "method": settings.method,
        "loss_curve": [{"step": h["step"], "loss": h["loss"]} for h in metrics.history],
        "settings": to_dict(settings),
        "versions": library_versions(),
    }
    _save_final(trainer, base_model_dir, settings, Path(out_dir), summary, state)
    summary["wall_s"] = round(time.perf_counter() - started, 2)
    return run_summary(summary)


def run_summary(record: dict[str, Any]) -> RunSummary:
    """The typed summary of an SFT run from its JSON record (``sft_summary.json``)."""
    return RunSummary(stage="sft", fingerprint=record["run_fingerprint"], steps=record["steps"],
                      wall_s=record["wall_s"], resumed_from=record["resumed_from"],
                      final_loss=record["final_loss"], record=record)


def _token_counts(dataset) -> tuple[int, int]:
    """(tokens, tokens with a loss) of a prepared dataset, counted in Arrow (no Python lists of ids)."""
    import pyarrow.compute as pc

    table = dataset.with_format("arrow")[:]
    tokens = pc.sum(pc.list_value_length(table.column("input_ids"))).as_py() or 0
    labels = pc.list_flatten(table.column("labels"))
    return int(tokens), int(pc.sum(pc.not_equal(labels, -100).cast("int64")).as_py() or 0)


def _overall_tokens_per_s(metrics: StepMetricsCallback, train_s: float) -> float | None:
    if metrics.history and "num_tokens" in metrics.history[-1]:
        runtime = metrics.final.get("train_runtime", train_s)
        return metrics.history[-1]["num_tokens"] / max(runtime, 1e-9)
    return None


def _save_final(trainer, base_model_dir, settings: SFTSettings, out: Path, summary: dict, state) -> None:
    """Assemble the final folder under a temporary name, then rename it to ``out`` (main process)."""
    # The same temporary name on every rank: under FSDP/ZeRO-3 all ranks take part in save_model
    # (the full weights are gathered collectively) and some of them may create the folder.
    tmp = out.parent / f".{out.name}.tmp-{summary['run_fingerprint']}"
    if state.is_main_process:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving
    state.wait_for_everyone()
    if settings.method == "lora":
        adapter_dir = Path(trainer.args.output_dir) / "final-adapter"
        trainer.save_model(str(adapter_dir))
        if state.is_main_process:
            _merge_lora(base_model_dir, adapter_dir, tmp, settings.model_dtype)
    else:
        trainer.save_model(str(tmp))
    if state.is_main_process:
        tokenizer = trainer.processing_class
        tokenizer.save_pretrained(str(tmp))
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle of the trainer's arguments; settings.json says it
        (tmp / SETTINGS_FILE).write_text(json.dumps(to_dict(settings), indent=2, sort_keys=True) + "\n")
        (tmp / VERSIONS_FILE).write_text(json.dumps(summary["versions"], indent=2, sort_keys=True) + "\n")
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
        publish_folder(None, out, tmp=tmp)
    state.wait_for_everyone()


def _merge_lora(base_model_dir, adapter_dir: Path, dest: Path, dtype: str) -> None:
    """Apply the trained adapter to a fresh copy of the base model (on CPU), merge it, save a plain model."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(dest))
