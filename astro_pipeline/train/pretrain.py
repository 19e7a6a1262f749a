"""The base model: a tiny Llama trained from scratch on the synthetic demo problems, or a pretrained one.

Design choices:

* A plain PyTorch loop, not TRL: the job is next-token training of a 3M-parameter model on
  pre-tokenized short sequences, where a trainer's machinery (datasets, collators, callbacks) costs
  more than the model. Loss is on the solution (and its EOS) only: the problem is given, not learned.
* AdamW (0.9, 0.95), weight decay 0.1 on matrices only, linear warmup then cosine decay to
  ``min_lr_ratio``, gradient clipping, bfloat16 autocast: what DESIGN's measured prototype used.
* The budget is in optimizer steps; batches are drawn epoch by epoch in a seeded shuffled order.
* The output is an ordinary Hugging Face folder (config, safetensors, generation config, tokenizer
  with chat template) plus ``astro_base_model.json`` (the summary returned by the function).

What was tried and measured (2 shared cores; pass@1 = mean correctness of 8 samples per problem on
200 synthetic_test problems; see the module ``astro_pipeline.train.base_eval``):
  (filled in below as experiments finish)
"""

from __future__ import annotations

import json
import math
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tokenizers
import torch
import transformers
from transformers import AutoConfig, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from astro_pipeline.config import to_dict
from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.llm.device import set_threads
from astro_pipeline.train.settings import BaseModelSettings
from astro_pipeline.train.tokenizer import train_demo_tokenizer

SUMMARY_FILE = "astro_base_model.json"

OnLog = Callable[[int, dict[str, float]], None]


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def demo_config(settings: BaseModelSettings, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """The tiny Llama's configuration for ``tokenizer``'s vocabulary."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size,
        num_hidden_layers=settings.num_layers,
        num_attention_heads=settings.num_heads,
        num_key_value_heads=settings.num_heads,
        max_position_embeddings=settings.max_position_embeddings,
        tie_word_embeddings=True,  # the vocabulary is tiny; tying halves nothing big but helps rare tokens
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def prompt_text(tokenizer: PreTrainedTokenizerBase, problem: str) -> str:
    """The rendered prompt of one problem: a single user turn plus the assistant header."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": problem}], tokenize=False, add_generation_prompt=True
    )


def encode_examples(tokenizer: PreTrainedTokenizerBase, rows: list[dict]) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per row: prompt, solution, EOS. Loss later covers ids[prompt_len:]."""
    out = []
    for row in rows:
        prompt = tokenizer(prompt_text(tokenizer, row["problem"]), add_special_tokens=False)["input_ids"]
        completion = tokenizer(row["solution"], add_special_tokens=False)["input_ids"]
        out.append((prompt + completion + [tokenizer.eos_token_id], len(prompt)))
    return out


def _batch(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(examples):
        t = torch.tensor(ids)
        input_ids[i, : len(ids)] = t
        labels[i, n_prompt : len(ids)] = t[n_prompt:]
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def lr_at(step: int, settings: BaseModelSettings) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    span = max(1, settings.steps - settings.warmup_steps)
    progress = min(1.0, (step - settings.warmup_steps) / span)
    floor = settings.lr * settings.min_lr_ratio
    return floor + (settings.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(model: torch.nn.Module, settings: BaseModelSettings) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
        betas=(settings.beta1, settings.beta2),
    )


def _batches(n: int, batch_size: int, rng: random.Random):
    """Endless seeded epochs of index batches (a short tail batch is merged into the next epoch)."""
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            fresh = list(range(n))
            rng.shuffle(fresh)
            order += fresh
        yield order[:batch_size]
        del order[:batch_size]


def train_base_model(
    settings: BaseModelSettings,
    synthetic_settings: SyntheticSettings,
    out_dir: str | Path,
    on_log: OnLog | None = None,
) -> dict[str, Any]:
    """Build the base model into ``out_dir``: train it (kind=demo) or resolve and check it (pretrained).

    ``on_log(step, {"loss": ..., "lr": ...})`` is called every ``log_every`` steps (demo only).
    Returns a JSON-able summary, also written to ``out_dir/astro_base_model.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if settings.kind == "pretrained":
        from astro_pipeline.train.pretrained import check_pretrained

        summary = check_pretrained(settings.model)
    else:
        summary = _train_demo(settings, synthetic_settings, out, on_log)
    summary = {**summary, "settings": to_dict(settings), "synthetic": to_dict(synthetic_settings), "versions": library_versions()}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _train_demo(
    settings: BaseModelSettings, synthetic_settings: SyntheticSettings, out: Path, on_log: OnLog | None
) -> dict[str, Any]:
    started = time.perf_counter()
    threads = set_threads(settings.threads)
    rows = generate_rows("train", synthetic_settings)
    tokenizer = train_demo_tokenizer((r["problem"] + "\n" + r["solution"] for r in rows), settings.vocab_size)
    examples = encode_examples(tokenizer, rows)
    longest = max(len(ids) for ids, _ in examples)
    if longest > settings.max_position_embeddings:
        raise ValueError(f"base_model: a training example has {longest} tokens > max_position_embeddings")

    torch.manual_seed(settings.seed)
    model = LlamaForCausalLM(demo_config(settings, tokenizer))
    model.train()
    optimizer = _optimizer(model, settings)
    rng = random.Random(settings.seed)
    batches = _batches(len(examples), settings.batch_size, rng)
    use_bf16 = settings.bf16
    log_loss, log_n, tokens_seen, last_loss = 0.0, 0, 0, float("nan")
    curve: list[dict[str, float]] = []
    for step in range(settings.steps):
        lr = lr_at(step, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _batch([examples[i] for i in next(batches)], tokenizer.pad_token_id)
        tokens_seen += int(batch["attention_mask"].sum())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        log_loss += float(loss.detach())
        log_n += 1
        if (step + 1) % settings.log_every == 0 or step + 1 == settings.steps:
            last_loss = log_loss / log_n
            point = {"loss": last_loss, "lr": lr}
            curve.append({"step": step + 1, **point})
            if on_log is not None:
                on_log(step + 1, point)
            log_loss, log_n = 0.0, 0
    train_s = time.perf_counter() - started

    model.eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "kind": "demo",
        "model_dir": str(out),
        "n_params": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "n_train_examples": len(examples),
        "longest_example_tokens": longest,
        "steps": settings.steps,
        "tokens_seen": tokens_seen,
        "final_loss": last_loss,
        "train_wall_s": round(train_s, 1),
        "threads": threads,
        "loss_curve": curve,
    }


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(str(model_dir))


def load_config(model_dir: str | Path):
    return AutoConfig.from_pretrained(str(model_dir))
