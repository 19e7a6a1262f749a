"""Tiny models built on the fly for backend and training tests (never downloaded).

* ``tiny_random_model``: a randomly initialised small Llama with the demo tokenizer.
* ``sharp_random_model``: the same with its weight matrices scaled up, so greedy output depends
  on the prompt (a plain random init repeats one token whatever the prompt, which would hide a
  wrong KV cache).
* ``scripted_model``: the same, with the LM head replaced by a bias-only layer, so the next-token
  distribution is fixed and known (tests of EOS, top-p and exact log-probabilities).
"""

from __future__ import annotations

from functools import cache

import torch
from transformers import LlamaForCausalLM

from astro_pipeline.data.synthetic import SyntheticSettings, generate_rows
from astro_pipeline.train.pretrain import demo_config
from astro_pipeline.train.settings import BaseModelSettings
from astro_pipeline.train.tokenizer import train_demo_tokenizer

TINY = BaseModelSettings(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128, steps=3, batch_size=4)
TINY_SYNTHETIC = SyntheticSettings(n_pretrain=200, n_train=60, n_test=20)


@cache
def demo_tokenizer():
    rows = generate_rows("pretrain", TINY_SYNTHETIC)
    return train_demo_tokenizer(r["problem"] + "\n" + r["solution"] for r in rows)


def tiny_random_model(seed: int = 0) -> LlamaForCausalLM:
    tokenizer = demo_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(demo_config(TINY, tokenizer)).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def sharp_random_model(seed: int = 1, scale: float = 10.0) -> LlamaForCausalLM:
    model = tiny_random_model(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_(scale)
    return model


def scripted_model(token_probs: dict[int, float]) -> LlamaForCausalLM:
    """A model whose next-token distribution is ``token_probs`` (others ~0) at every position."""
    model = tiny_random_model()
    vocab = model.config.vocab_size
    head = torch.nn.Linear(model.config.hidden_size, vocab, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-1e4)
        for tok, p in token_probs.items():
            head.bias[tok] = float(torch.log(torch.tensor(p)))
    model.lm_head = head
    model.config.tie_word_embeddings = False
    return model
