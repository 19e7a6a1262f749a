"""The base model: a tiny Llama trained from scratch on the synthetic demo problems, or a pretrained one.

Design choices:

* A plain PyTorch loop, not TRL: the job is next-token training of a ~1M-parameter model on
  pre-tokenized short sequences, where a trainer's machinery (datasets, collators, callbacks) costs
  more than the model. The loss covers the whole text, prompt included (``loss_on_prompt``): the base
  model is a language model of the problems too, so SFT does not open on prompt tokens it never
  predicted (the corpus is ``train.demo_corpus``).
* AdamW (0.9, 0.95), weight decay 0.1 on matrices only, linear warmup then cosine decay to
  ``min_lr_ratio``, gradient clipping; bfloat16 autocast only where ``precision`` asks for it
  (the demo recipe: fp32, see its comments).
* The budget is in optimizer steps; batches are drawn epoch by epoch in a seeded shuffled order.
* The output is an ordinary Hugging Face folder (config, safetensors, generation config, tokenizer
  with chat template) plus ``astro_base_model.json`` (the summary returned by the function).

What was tried and measured on the first demo's chain world (the guess_check world's figures are in
``train.demo_corpus`` and ``recipes/demo.yaml``) (2 cores shared with other engineers' jobs, 1 torch thread, bf16 autocast;
pass@1 = mean correctness of 8 samples per problem at T = 0.7 on the 200 synthetic_test problems,
through ``base_eval.measure_pass_at_1``; "3-4 steps" = the default synthetic settings, results 0-30):

  model (params)        data          batch x steps  final loss  pass@1  greedy  pass@8  wall
  h256 L4 (3.3M)        3-4 steps     16 x 1000      0.164       0.14    0.18    0.55    800 s (heavy load)
  h256 L4 (3.3M)        3-4 steps      8 x 2000      0.153       0.08    0.09    0.38    1470 s
  h256 L4 (3.3M)        2-3 steps/20   8 x 2000      0.142       0.17    0.22    0.60    1256 s
  h128 L4 (0.9M)        2-3 steps/20  16 x 800       0.025       0.64    0.81    0.96    203 s
  h128 L4 (0.9M)        3-4 steps     16 x 1200      0.003       0.91    0.92    0.98    338 s
  h128 L4 (0.9M)        3-4 steps     16 x 700       0.049/0.082 0.40/0.25 0.57/0.31 0.84/0.70 198 s (seeds 0/1)
  h128 L4 (0.9M)        3-4 steps     16 x 850       0.035/0.049 0.42/0.36 0.45/0.39 0.78/0.76 127 s (seeds 0/1)
  h128 L4 (0.9M, lr 6e-3) 2-3 steps/20 16 x 3000   (loss 0.037 at 2300; slower than lr 3e-3)
  h128 L4 (0.9M)        3-4 steps     16 x 1000      0.011/0.050 0.76/0.32 0.86/0.34 0.98/0.79 149 s (seeds 0/1)
  default settings: h128 L4, 3-4 steps, at most 1500 steps, stop at held-out pass@1 >= 0.4
    seed 0: stopped at 900 steps, 171 s   pass@1 0.515 +- 0.028  greedy 0.555  pass@8 0.83  mixed 0.53
    seed 1: stopped at 850 steps, 153 s   pass@1 0.460 +- 0.026  greedy 0.535  pass@8 0.84  mixed 0.65
    seed 2: stopped at 1050 steps, 186 s  pass@1 0.508 +- 0.025  greedy 0.550  pass@8 0.90  mixed 0.69
  (wall times include the held-out checks, ~3 s each; "mixed" = problems with both right and wrong
  samples among 8, what MCTS needs)

Findings: the 3.3M model of DESIGN's prototype underfits on this budget (its errors were mostly
single-digit additions and copying the wrong line's operand, on train problems as much as on
test ones), while a 0.9M model (hidden 128) makes each step ~2x cheaper and learns the task in
~1000 steps, with a sharp transition between ~700 and ~1200 steps whose timing depends on the seed
(at a fixed 1000 steps: 0.76 vs 0.32). A fixed step count therefore cannot promise the 30-70%
band; stopping at a held-out pass@1 target does (three seeds: 0.46-0.52). Batch 8 was worse than
batch 16 on the same tokens; lr 6e-3 was worse than 3e-3.
"""

from __future__ import annotations

import json
import math
import platform
import random
import time
from pathlib import Path
from typing import Any

import tokenizers
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from astro_pipeline.config import to_dict
from astro_pipeline.cloning.settings import PhraseBank
from astro_pipeline.data.synthetic import SyntheticSettings
from astro_pipeline.llm.device import set_threads, training_autocast
from astro_pipeline.llm.prompt import prompt_text
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.llm.transformers_backend import TransformersBackend
from astro_pipeline.train.base_eval import sampled_pass_at_1
from astro_pipeline.train.demo_corpus import Document, pretraining_documents, tokenizer_texts
from astro_pipeline.train.settings import BaseModelSettings
from astro_pipeline.train.tokenizer import train_demo_tokenizer
from astro_pipeline.verify import BatchVerifier, VerifySettings
from astro_pipeline.runlog import OnLog

SUMMARY_FILE = "astro_base_model.json"



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


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, docs: list[Document], loss_on_prompt: bool = True
) -> list[tuple[list[int], int]]:
    """(token ids, first position with a loss) per document: prompt, completion, EOS.

    ``loss_on_prompt``: the loss covers the whole text (a language model of prompts too), else only
    the completion and its EOS.
    """
    out = []
    for doc in docs:
        prompt = tokenizer(prompt_text(tokenizer, doc.prompt), add_special_tokens=False)["input_ids"]
        completion = tokenizer(doc.completion, add_special_tokens=False)["input_ids"]
        out.append((prompt + completion + [tokenizer.eos_token_id], 0 if loss_on_prompt else len(prompt)))
    return out


Row = tuple[list[int], list[int]]  # token ids, labels (-100 where there is no loss)


def pack_examples(examples: list[tuple[list[int], int]], length: int) -> list[Row]:
    """Rows of whole consecutive examples, each row at most ``length`` tokens (0 = one example per row).

    Packing makes every position up to ``length`` a trained one: the reflective traces SFT teaches
    are 3-4x longer than a solved problem, and a model pretrained on ~90-token documents lost track
    of its problem past that (measured: after a restart it applied operations the problem does not
    have). An example longer than ``length`` gets a row of its own. Attention is not masked between
    the examples of a row, as in ordinary language-model pretraining.
    """
    rows: list[Row] = []
    ids: list[int] = []
    labels: list[int] = []
    for example, first_loss in examples:
        if ids and (length <= 0 or len(ids) + len(example) > length):
            rows.append((ids, labels))
            ids, labels = [], []
        ids = ids + example
        labels = labels + [-100] * first_loss + example[first_loss:]
    if ids:
        rows.append((ids, labels))
    return rows


def _batch(rows: list[Row], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, row_labels) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(ids)] = torch.tensor(row_labels)
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
    phrases: PhraseBank | None = None,
) -> dict[str, Any]:
    """Build the base model into ``out_dir``: train it (kind=demo) or resolve and check it (pretrained).

    ``on_log(step, {"loss": ..., "lr": ...})`` is called every ``log_every`` steps (demo only).
    ``phrases``: the recipe's phrase bank, whose words the demo tokenizer and the plain pretraining
    documents hold (None = no plain documents).
    Returns a JSON-able summary, also written to ``out_dir/astro_base_model.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if settings.kind == "pretrained":
        from astro_pipeline.train.pretrained import check_pretrained

        summary = check_pretrained(settings.model)
    else:
        summary = _train_demo(settings, synthetic_settings, out, on_log, phrases)
    summary = {**summary, "settings": to_dict(settings), "synthetic": to_dict(synthetic_settings), "versions": library_versions()}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _train_demo(
    settings: BaseModelSettings, synthetic_settings: SyntheticSettings, out: Path, on_log: OnLog | None,
    phrases: PhraseBank | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    threads = set_threads(settings.threads)
    autocast, precision_reason = training_autocast(settings.precision, torch.device("cpu"))
    docs = pretraining_documents(synthetic_settings, phrases, settings.phrase_docs_share, settings.seed,
                                 settings.forward_docs_share, settings.check_docs_share,
                                 settings.miss_docs_share)
    # hold problems out only when a check can happen (a short run trains on every problem)
    check_target = (
        settings.target_pass_at_1 > 0 and settings.dev_problems > 0 and settings.steps >= settings.target_check_from
    )
    problem_docs = [d for d in docs if d.kind == "problem"]
    dev_docs = problem_docs[-settings.dev_problems :] if check_target else []
    held_out = {id(d) for d in dev_docs}
    train_docs = [d for d in docs if id(d) not in held_out]
    if not train_docs:
        raise ValueError("base_model: no training documents left after holding out dev_problems")
    tokenizer = train_demo_tokenizer(tokenizer_texts(train_docs, phrases), settings.vocab_size)
    examples = encode_examples(tokenizer, train_docs, settings.loss_on_prompt)
    longest = max(len(ids) for ids, _ in examples)
    if max(longest, settings.pack_length) > settings.max_position_embeddings:
        raise ValueError(f"base_model: rows of {max(longest, settings.pack_length)} tokens > max_position_embeddings")
    rows = pack_examples(examples, settings.pack_length)

    torch.manual_seed(settings.seed)
    model = LlamaForCausalLM(demo_config(settings, tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    dev_rows = [{"problem": d.prompt, "answer": d.answer} for d in dev_docs]
    check = _TargetCheck(settings, model, tokenizer, dev_rows, threads) if check_target else None
    try:
        run = _optimize(settings, model, rows, tokenizer.pad_token_id, check, on_log, autocast)
    finally:
        if check is not None:
            check.close()
    train_s = time.perf_counter() - started

    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "kind": "demo",
        "model_dir": str(out),
        "n_params": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "n_train_examples": len(examples),
        "n_rows": len(rows),
        "n_plain_documents": sum(d.kind == "plain" for d in train_docs),
        "n_forward_documents": sum(d.kind == "forward" for d in train_docs),
        "n_check_documents": sum(d.kind == "check" for d in train_docs),
        "n_miss_documents": sum(d.kind == "miss" for d in train_docs),
        "n_dev_problems": len(dev_docs),
        "longest_example_tokens": longest,
        "max_steps": settings.steps,
        "target_checks": check.history if check is not None else [],
        **run,
        "train_wall_s": round(train_s, 1),
        "threads": threads,
        "bf16_autocast": autocast,
        "precision_reason": precision_reason,
    }


def _optimize(
    settings: BaseModelSettings,
    model: LlamaForCausalLM,
    rows: list[Row],
    pad_id: int,
    check: _TargetCheck | None,
    on_log: OnLog | None,
    autocast: bool,
) -> dict[str, Any]:
    """The optimizer loop: at most ``settings.steps`` steps, fewer if the target check is met."""
    model.train()
    optimizer = _optimizer(model, settings)
    batches = _batches(len(rows), settings.batch_size, random.Random(settings.seed))
    log_loss, log_n, tokens_seen, last_loss = 0.0, 0, 0, float("nan")
    curve: list[dict[str, float]] = []
    steps_done, reached = 0, False
    for step in range(settings.steps):
        lr = lr_at(step, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _batch([rows[i] for i in next(batches)], pad_id)
        tokens_seen += int(batch["attention_mask"].sum())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        steps_done = step + 1
        log_loss += float(loss.detach())
        log_n += 1
        point: dict[str, float] = {}
        if steps_done % settings.log_every == 0 or steps_done == settings.steps:
            last_loss = log_loss / log_n
            point = {"loss": last_loss, "lr": lr}
            log_loss, log_n = 0.0, 0
        if check is not None and check.due(steps_done):
            point["dev_pass_at_1"] = check.run(steps_done)
            reached = point["dev_pass_at_1"] >= settings.target_pass_at_1
        if point:
            curve.append({"step": steps_done, **point})
            if on_log is not None:
                on_log(steps_done, point)
        if reached:
            break
    return {
        "steps": steps_done,
        "stopped_at_target": reached,
        "tokens_seen": tokens_seen,
        "final_loss": last_loss,
        "loss_curve": curve,
    }


class _TargetCheck:
    """Quick sampled pass@1 on held-out train problems, through the project's backend and verifier."""

    def __init__(self, settings: BaseModelSettings, model, tokenizer, rows: list[dict], threads: int) -> None:
        self.settings, self.model, self.rows = settings, model, rows
        self.backend = TransformersBackend(
            settings=BackendSettings(threads=threads, micro_batch_size=256), model=model, tokenizer=tokenizer
        )
        model.train()  # the backend put it in eval mode
        # one verifier for all checks: a non-numeric answer starts a math-verify worker once, not per check
        self.verifier = BatchVerifier(VerifySettings(workers=1))
        self.history: list[dict[str, float]] = []

    def due(self, step: int) -> bool:
        s = self.settings
        return step >= s.target_check_from and (step - s.target_check_from) % s.target_check_every == 0

    def run(self, step: int) -> float:
        s = self.settings
        self.model.eval()
        t0 = time.perf_counter()
        value = sampled_pass_at_1(
            self.backend, self.rows, s.dev_samples, s.eval_temperature, s.eval_top_p,
            s.eval_max_new_tokens, s.eval_seed, self.verifier,
        )
        self.model.train()
        self.history.append({"step": step, "dev_pass_at_1": value, "seconds": round(time.perf_counter() - t0, 2)})
        return value

    def close(self) -> None:
        self.verifier.close()
