"""A tiny random Llama with a character-level tokenizer and a chat template, built on the fly.

For tests and for ``bench_grpo`` when no model folder is given: nothing is downloaded, the folder is
an ordinary Hugging Face model folder (config, safetensors, tokenizer, chat template), so every code
path that loads the real demo or SFT model loads this one the same way.

Design choices: character-level (every printable ASCII character is a token, plus ``<|pad|>``,
``<|eos|>`` and one token per chat role) so any text encodes without an unknown token and the
vocabulary stays under 110 tokens; the chat template has the demo tokenizer's shape
(``<|user|>\\n{content}\\n<|assistant|>\\n{content}<|eos|>\\n``). ``tiny_problems`` gives one-step sums
with integer answers (what the verifier's fast path decides in-process).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import polars as pl
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from astro_pipeline.train.tiny_llama import save_random_llama
from astro_pipeline.train.tokenizer import EOS, PAD, ROLE_TOKENS, wrap_tokenizer

def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level fast tokenizer with pad/eos/role special tokens and the chat template."""
    chars = sorted(set(string.printable) - set("\r\x0b\x0c"))
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, *ROLE_TOKENS, *chars])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([PAD, EOS, *ROLE_TOKENS])
    return wrap_tokenizer(tok)


def build_tiny_model(
    out_dir: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_position_embeddings: int = 512,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised tiny Llama + tokenizer + chat template to ``out_dir``."""
    return save_random_llama(tiny_tokenizer(), out_dir, hidden_size=hidden_size, num_layers=num_layers,
                             num_heads=num_heads, intermediate_size=intermediate_size,
                             max_position_embeddings=max_position_embeddings, seed=seed)


def tiny_problems(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` one-step sums ("What is 3 + 4?", answer "7") as a problems-like table."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        rows.append({"problem_id": f"tiny-{i}", "problem": f"What is {a} + {b}?", "answer": str(a + b)})
    return pl.DataFrame(rows, schema={"problem_id": pl.Utf8, "problem": pl.Utf8, "answer": pl.Utf8})
