"""Benchmark of the SFT stage: SFTTrainer steps vs a plain PyTorch loop on the same batches.

``bench_sft()`` measures non-padding tokens per second of

* the stage's trainer (``astro_pipeline.train.sft.build_trainer``: TRL's SFTTrainer exactly as
  ``train_sft`` configures it), and
* a plain loop: the same initial weights, the same optimizer class and arguments as the Trainer
  picks, the same schedule, gradient clipping, the very same batches (drawn from the trainer's own
  seeded dataloader, so the same examples, batch shape, padding and loss masking), ``model(**batch).loss``,
  ``backward``, ``step``,

in the same process, one after the other, alternating ``repeats`` times; the best of each is kept,
because other jobs on shared cores only ever make a run slower. The window is from the end of
step ``warmup_steps`` to the end of the last step, so model loading and dataset preparation are
left out of both. It reports both rates, their ratio (target >= 0.9) and the padding share of the
batches (padding tokens / all tokens in ``input_ids``).

Without ``model_dir`` a random Llama of the demo base model's shape (hidden 256, 4 layers) with a
small tokenizer is built on a synthetic CoT corpus (``astro_pipeline.train.sft_tiny``).

Measured (2 CPU cores shared with other jobs, 1 thread, hidden 256 x 4 layers, batch 16, 8-15
timed steps; trainer / plain tokens/s):

    setting                     trainer tok/s   plain tok/s   ratio       padding
    random order (default)      1127-1469       1056-1553     0.95-1.09   28%
    group_by_length             1960-1977       2115-2117     0.93        1.4%
    padding_free                1084            1109          0.98        0%
    packing (512-token rows)    324             319           1.02        0%
    dataloader_workers=1        1203            1194          1.01        28%

Rows were measured at different times and loads; only rows measured back to back compare
(random vs group_by_length: alternated in one process, twice). Both paths saw the same batches in
every row (TRL's own token count equals ours; the first-step losses agree to 5e-7).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from astro_pipeline.config import from_dict
from astro_pipeline.train.sft_settings import SFTSettings


def default_settings(**overrides: Any) -> SFTSettings:
    """Settings of the benchmark runs: the demo's lr and lengths, no checkpoints or trackers in the window."""
    base = dict(
        learning_rate=1e-3,
        batch_size=16,
        max_length=512,
        epochs=1000.0,  # the step budget below decides
        save_steps=1_000_000,
        logging_steps=10,
        report_to=(),
        progress_bar=False,
        threads=1,
    )
    base.update(overrides)
    return from_dict(SFTSettings, base, where="bench.sft")


def bench_sft(
    model_dir: str | None = None,
    corpus: pl.DataFrame | None = None,
    settings: SFTSettings | None = None,
    *,
    steps: int = 30,
    warmup_steps: int = 5,
    repeats: int = 2,
    work_dir: str | None = None,
    hidden_size: int = 256,
    num_layers: int = 4,
    n_examples: int = 512,
) -> dict[str, Any]:
    """Tokens/s of the stage's SFTTrainer and of a plain PyTorch loop on identical batches; their ratio."""
    import torch

    from astro_pipeline.llm.device import set_threads
    from astro_pipeline.train.sft import select_examples
    from astro_pipeline.train.sft_tiny import tiny_base_model, tiny_corpus

    settings = settings or default_settings()
    total = warmup_steps + steps
    settings = dataclasses.replace(settings, max_steps=total, save_steps=max(settings.save_steps, total + 1))
    threads = set_threads(settings.threads)
    tmp = tempfile.TemporaryDirectory(prefix="bench_sft_") if work_dir is None else None
    work = Path(work_dir or tmp.name)
    if corpus is None:
        corpus = tiny_corpus(n_examples, seed=settings.seed)
    if model_dir is None:
        model_dir = tiny_base_model(
            work / "base", corpus, hidden_size=hidden_size, num_layers=num_layers,
            intermediate_size=int(hidden_size * 2.75), seed=settings.seed,
        )
    rows = select_examples(corpus, settings.kinds)

    trainer_runs, plain_runs = [], []
    batches_info: dict[str, Any] = {}
    for r in range(repeats):
        plain_runs.append(_plain_run(model_dir, rows, settings, work / f"plain{r}", warmup_steps, batches_info))
        trainer_runs.append(_trainer_run(model_dir, rows, settings, work / f"trainer{r}", warmup_steps, batches_info))
    best_trainer = max(trainer_runs, key=lambda x: x["tokens_per_s"])
    best_plain = max(plain_runs, key=lambda x: x["tokens_per_s"])
    result = {
        "trainer_tokens_per_s": best_trainer["tokens_per_s"],
        "plain_tokens_per_s": best_plain["tokens_per_s"],
        "ratio": best_trainer["tokens_per_s"] / best_plain["tokens_per_s"],
        "padding_share": batches_info["padding_share"],
        "tokens_per_step": batches_info["tokens"] / max(1, batches_info["steps"]),
        "steps": steps,
        "warmup_steps": warmup_steps,
        "repeats": repeats,
        "trainer_runs": trainer_runs,
        "plain_runs": plain_runs,
        "same_loss_first_step": abs(best_trainer["first_loss"] - best_plain["first_loss"]),
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "model_dir": str(model_dir),
        "settings": {k: getattr(settings, k) for k in ("batch_size", "max_length", "packing", "padding_free", "sampling", "dataloader_workers", "completion_only_loss", "method")},
    }
    if tmp is not None:
        tmp.cleanup()
        result["model_dir"] = None
    return result


def _window_batches(trainer, n_steps: int) -> list[dict]:
    """The first ``n_steps`` optimizer steps' micro-batches, from a fresh copy of the trainer's seeded dataloader."""
    accumulation = trainer.args.gradient_accumulation_steps
    out, it = [], iter(trainer.get_train_dataloader())
    for _ in range(n_steps * accumulation):
        try:
            out.append(next(it))
        except StopIteration:
            it = iter(trainer.get_train_dataloader())
            out.append(next(it))
    return out


def _batch_counts(batch: dict) -> tuple[int, int]:
    """(non-padding tokens, all token slots) of one collated batch."""
    ids = batch["input_ids"]
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum()), ids.numel()
    # padding-free: one flat row; TRL pads nothing unless pad_to_multiple_of is set
    return ids.numel(), ids.numel()


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trainer_run(model_dir, rows, settings, work: Path, warmup: int, info: dict) -> dict[str, Any]:
    from transformers import TrainerCallback

    from astro_pipeline.train.sft import build_trainer

    stamps: dict[int, float] = {}
    losses: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            _sync(args.device)  # the plain loop syncs every step too (it reads the loss)
            stamps[state.global_step] = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    trainer = build_trainer(model_dir, rows, settings, work / "checkpoints", callbacks=[Clock()], logging_first_step=True)
    total = trainer.args.max_steps
    batches = _window_batches(trainer, total)
    accumulation = trainer.args.gradient_accumulation_steps
    counts = [_batch_counts(b) for b in batches]
    trainer.train()
    window = counts[warmup * accumulation : total * accumulation]
    tokens = sum(c[0] for c in window)
    info.setdefault("tokens", tokens)
    info.setdefault("steps", total - warmup)
    info.setdefault("padding_share", 1 - tokens / max(1, sum(c[1] for c in window)))
    seconds = stamps[total] - stamps[warmup]
    logged = trainer.state.log_history
    # TRL's own count of non-padding tokens must equal ours: proof that both paths saw the same batches
    trl_tokens = [h["num_tokens"] for h in logged if "num_tokens" in h]
    return {
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "first_loss": losses[0] if losses else math.nan,
        "trl_num_tokens": trl_tokens[-1] if trl_tokens else None,
        "expected_num_tokens": sum(c[0] for c in counts[: len(counts)]),
    }


def _plain_run(model_dir, rows, settings, work: Path, warmup: int, info: dict) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, Trainer, get_scheduler

    from astro_pipeline.train.sft import build_trainer

    # The trainer is built only to get its dataloader and optimizer choice; it never trains here.
    trainer = build_trainer(model_dir, rows, settings, work / "checkpoints")
    args = trainer.args
    total = args.max_steps
    accumulation = args.gradient_accumulation_steps
    batches = _window_batches(trainer, total)
    del trainer

    device = args.device
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, settings.model_dtype)).to(device)
    model.train()
    # the same mixed precision as the Trainer (bf16/fp16 autocast on GPUs; none on CPU by default)
    amp_dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
    autocast = contextlib.nullcontext if amp_dtype is None else (
        lambda: torch.autocast(device_type=device.type, dtype=amp_dtype)
    )
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer = optimizer_cls([p for p in model.parameters() if p.requires_grad], **optimizer_kwargs)
    scheduler = get_scheduler(
        args.lr_scheduler_type, optimizer, num_warmup_steps=args.get_warmup_steps(total),
        num_training_steps=total, scheduler_specific_kwargs=args.lr_scheduler_kwargs or {},
    )
    stamps: dict[int, float] = {}
    first_loss = math.nan
    keys = ("input_ids", "attention_mask", "labels", "position_ids")
    for step in range(1, total + 1):
        micro = batches[(step - 1) * accumulation : step * accumulation]
        n_items = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
        step_loss = 0.0
        for batch in micro:
            inputs = {k: batch[k].to(device) for k in keys if k in batch}
            # use_cache=False: with a cache object transformers skips the packed-sequence mask of padding-free rows
            with autocast():
                out = model(**inputs, use_cache=False)
            n = int((batch["labels"][:, 1:] != -100).sum())
            loss = out.loss * (n / max(1, n_items))  # token-weighted over the accumulated micro-batches, like TRL
            loss.backward()
            step_loss += float(loss.detach())
        if args.max_grad_norm and args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 1:
            first_loss = step_loss
        _sync(device)
        stamps[step] = time.perf_counter()
    counts = [_batch_counts(b) for b in batches[warmup * accumulation : total * accumulation]]
    tokens = sum(c[0] for c in counts)
    seconds = stamps[total] - stamps[warmup]
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "first_loss": first_loss}


def main() -> None:  # pragma: no cover - manual use: python -m astro_pipeline.bench.sft
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--set", action="append", default=[], help="override an SFT setting: name=json_value")
    ns = parser.parse_args()
    overrides = {}
    for item in ns.set:
        name, _, value = item.partition("=")
        overrides[name] = json.loads(value)
    result = bench_sft(
        ns.model, settings=default_settings(**overrides), steps=ns.steps, warmup_steps=ns.warmup,
        repeats=ns.repeats, hidden_size=ns.hidden, num_layers=ns.layers,
    )
    print(json.dumps({k: v for k, v in result.items()}, indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
