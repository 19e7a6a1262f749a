"""Tiny stand-ins for the SFT stage's inputs: a CoT corpus shaped like ``cot_examples`` and a random Llama.

Used by the SFT tests and by ``astro_pipeline.bench.sft`` when no model is given; nothing here is
downloaded. Design choices:

* The corpus imitates the CoT stage's output: a labelled multi-step arithmetic problem as the prompt;
  as the completion, the steps separated by blank lines and ending in ``\\boxed{}``. "search" rows
  take a wrong step first, reflect, go back and finish correctly; "direct" and "direct_arm" rows go
  straight to the answer. The text is regular enough that a tiny model's loss falls within a few
  dozen steps.
* The tokenizer is the demo tokenizer (``astro_pipeline.train.tokenizer``) when that module is
  present, so the SFT code is exercised against the chat template the demo really uses; otherwise
  a small word-level tokenizer with the same template shape (``<|user|>\\n...\\n<|assistant|>\\n...``
  + EOS) stands in.
* The model is a randomly initialised ``LlamaForCausalLM`` saved as an ordinary Hugging Face folder
  with the tokenizer, i.e. exactly what the base-model stage hands to SFT.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import polars as pl

KIND_CYCLE = ("direct", "search", "search", "direct_arm")

def tiny_corpus(n: int = 64, seed: int = 0) -> pl.DataFrame:
    """``n`` cot_examples-like rows (dataset, problem_id, trace_id, kind, prompt, completion, n_backtracks)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = KIND_CYCLE[i % len(KIND_CYCLE)]
        start = rng.randint(1, 9)
        ops = [(rng.choice("+-*"), rng.randint(2, 3) if j % 2 else rng.randint(1, 9)) for j in range(rng.randint(2, 4))]
        labels = "ABCD"
        verbs = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}."}
        prompt = "\n".join([f"Start with {start}."] + [f"{labels[j]}: {verbs[o].format(x)}" for j, (o, x) in enumerate(ops)])
        steps, value = [], start
        for j, (o, x) in enumerate(ops):
            result = value + x if o == "+" else value - x if o == "-" else value * x
            steps.append(f"{labels[j]}: {value} {o} {x} = {result}")
            value = result
        backtracks = 0
        if kind == "search":
            wrong = steps[:1] + [steps[-1].rsplit("= ", 1)[0] + f"= {value + 1}", f"The answer is \\boxed{{{value + 1}}}."]
            wrong.append("Wait, is this solution right so far? Hmm, I am not sure. Let's go back to where we computed step A.")
            steps = wrong + steps[1:]
            backtracks = 1
        completion = "\n\n".join(steps) + f". The answer is \\boxed{{{value}}}"
        rows.append(
            {
                "dataset": "tiny",
                "problem_id": f"p{i // 2:04d}",
                "trace_id": f"t{i:04d}",
                "kind": kind,
                "prompt": prompt,
                "completion": completion,
                "n_backtracks": backtracks,
            }
        )
    return pl.DataFrame(rows)


def tiny_tokenizer(texts: Iterable[str]):
    """The demo tokenizer trained on ``texts`` (a 512-token ceiling)."""
    from astro_pipeline.train.tokenizer import train_demo_tokenizer

    return train_demo_tokenizer(texts, vocab_size=512)


def tiny_base_model(
    out_dir: str | Path,
    corpus: pl.DataFrame | None = None,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    seed: int = 0,
) -> str:
    """Save a random Llama plus a tokenizer trained on ``corpus``'s text into ``out_dir``; return the path."""

    corpus = tiny_corpus() if corpus is None else corpus
    texts = [p + "\n" + c for p, c in zip(corpus["prompt"], corpus["completion"])]
    tokenizer = tiny_tokenizer(texts)
    from astro_pipeline.train.tiny_llama import save_random_llama

    out = save_random_llama(tokenizer, out_dir, hidden_size=hidden_size, num_layers=num_layers, num_heads=num_heads,
                            intermediate_size=intermediate_size or 2 * hidden_size, max_position_embeddings=1024,
                            seed=seed)
    return str(out)
