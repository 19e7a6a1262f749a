"""The ``transformers`` backend: a hand-written batched sampling loop over a KV cache, CPU or CUDA.

Design choices:

* Not ``model.generate``: DESIGN measured it slow on large batches, and a plain loop gives what the
  protocol needs directly (per-row temperature/top-p/stop strings/token budget, summed
  log-probabilities, finish reasons) with less overhead per step.
* Requests are expanded into rows (one per sample). Rows are sorted by prompt length so a
  micro-batch holds prompts of similar length (little left padding), and rows that share the same
  prompt sit together: that prompt is prefilled once and its KV cache copied to each of its rows.
  MCTS asks for k children of one node and M rollouts of each child, so most rows share a prompt.
  Different prompts that merely share a prefix (siblings' common steps) are prefilled separately:
  on the demo model prefill was ~20% of an MCTS-shaped call, not worth a prefix tree here; vLLM's
  prefix caching covers that case on GPUs.
* Prompts are left-padded; position ids count real tokens only, so a padded row computes exactly
  what it would alone (up to float rounding).
* Rows that finish (EOS, a stop string, or the token budget) are dropped from the batch and the
  cache once a fraction ``prune_fraction`` of the batch has finished: short steps ("\\n\\n" after one
  solution step) end at different times and should not keep paying for finished rows.
* The KV cache grows in chunks (``kv_cache.GrowingLayer``) instead of being concatenated at
  every token.
* Determinism: each sample's randomness is a hash of (request seed, sample index, step)
  (see ``sampling``), so the same request and seed give the same samples whatever else is batched
  with them. A request without a seed gets a fresh random one.
* Token counts include the token that completed a stop string or the EOS token; the summed
  log-probability covers the same tokens. The returned text never contains the stop string.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from astro_pipeline.llm.device import resolve_device, resolve_dtype, set_threads
from astro_pipeline.llm.kv_cache import growing_cache
from astro_pipeline.llm.model_ref import resolve_model_ref
from astro_pipeline.llm.prompt import encode as encode_prompt
from astro_pipeline.llm.prompt import render as render_prompt
from astro_pipeline.llm.protocol import GenerationRequest, Sample, check_params
from astro_pipeline.llm.sampling import choose_tokens, row_keys, uniforms
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.llm.stops import truncate_at_stop, window_tokens


@dataclass
class _Row:
    request: int
    sample: int
    prompt: int  # index into the unique prompts of this call
    seed: int
    temperature: float
    top_p: float
    max_new_tokens: int
    stop: tuple[str, ...]
    tokens: list[int] = field(default_factory=list)
    logprob: float = 0.0
    finish: str | None = None  # "eos", "stop", "length" while decoding


class TransformersBackend:
    """Generation protocol on a Hugging Face causal LM (see the module docstring)."""

    name = "transformers"

    def __init__(
        self,
        model_path: str | Path | None = None,
        settings: BackendSettings | None = None,
        *,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.settings = settings or BackendSettings()
        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model and tokenizer, or neither (and a model_path)")
        if model is None:
            if model_path is None:
                raise ValueError("TransformersBackend needs a model_path or a model and tokenizer")
            path = resolve_model_ref(model_path, self.settings.model_cache_dir or None)
            device = resolve_device(self.settings.device)
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.settings.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=resolve_dtype(self.settings.dtype, device),
                attn_implementation=self.settings.attn_implementation,
                trust_remote_code=self.settings.trust_remote_code,
            ).to(device)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        if self.device.type == "cpu":
            set_threads(self.settings.threads)
        self.eos_ids = _eos_ids(model, tokenizer)
        if not self.eos_ids:
            raise ValueError("the tokenizer and model define no EOS token; generation could not stop")
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)

    # rendering -------------------------------------------------------------------------------
    def render(self, request: GenerationRequest) -> str:
        return render_prompt(self.tokenizer, request)

    def encode(self, request: GenerationRequest) -> list[int]:
        return encode_prompt(self.tokenizer, request)

    # generation ------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        prompt_index: dict[tuple[int, ...], int] = {}
        prompts: list[list[int]] = []
        rows: list[_Row] = []
        for r, req in enumerate(requests):
            p = req.params
            check_params(r, p)
            ids = tuple(self.encode(req))
            if not ids:
                raise ValueError(f"request {r}: empty prompt")
            if ids not in prompt_index:
                prompt_index[ids] = len(prompts)
                prompts.append(list(ids))
            seed = p.seed if p.seed is not None else secrets.randbits(63)
            for j in range(p.n):
                rows.append(
                    _Row(r, j, prompt_index[ids], seed, p.temperature, p.top_p, p.max_new_tokens, tuple(p.stop))
                )
        todo = [row for row in rows if row.max_new_tokens > 0]
        for row in rows:
            if row.max_new_tokens == 0:
                row.finish = "length"
        # bucket by prompt length; rows of one prompt stay adjacent
        todo.sort(key=lambda row: (len(prompts[row.prompt]), row.prompt, row.request, row.sample))
        mbs = self.settings.micro_batch_size
        with torch.inference_mode():
            for start in range(0, len(todo), mbs):
                self._decode(todo[start : start + mbs], prompts)
        texts = self.tokenizer.batch_decode(
            [_strip_eos(row, self.eos_ids) for row in rows],
            skip_special_tokens=True,
            clean_up_tokenization_spaces=False,
        )
        out: list[list[Sample]] = [[] for _ in requests]
        for row, text in zip(rows, texts):
            text, hit = truncate_at_stop(text, row.stop) if row.stop else (text, None)
            reason = "stop" if (row.finish in ("eos", "stop") or hit) else "length"
            out[row.request].append(
                Sample(text=text, finish_reason=reason, n_tokens=len(row.tokens), logprob=row.logprob, stop_string=hit)
            )
        return out

    def _decode(self, rows: list[_Row], prompts: list[list[int]]) -> None:
        """Sample all ``rows`` of one micro-batch to completion (fills their tokens and finish)."""
        device = self.device
        uniq = list(dict.fromkeys(row.prompt for row in rows))
        where = {p: i for i, p in enumerate(uniq)}
        width = max(len(prompts[p]) for p in uniq)
        input_ids = torch.full((len(uniq), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(uniq), width), dtype=torch.long)
        for i, p in enumerate(uniq):
            ids = prompts[p]
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            mask[i, width - len(ids) :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        cache = growing_cache(self.model.config)
        logits = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]
        sel = torch.tensor([where[row.prompt] for row in rows], device=device)
        if len(uniq) != len(rows):
            cache.batch_select_indices(sel)
            logits, mask = logits[sel], mask[sel]
        pos = mask.sum(-1, keepdim=True)

        batch = list(rows)  # rows still in the tensors, in tensor order
        keys = row_keys([row.seed for row in batch], [row.sample for row in batch])
        temperature = torch.tensor([row.temperature for row in batch], device=device)
        top_p = torch.tensor([row.top_p for row in batch], device=device)
        eos = set(self.eos_ids)
        step = 0
        while True:
            u = torch.from_numpy(uniforms(keys, step)).to(device)
            tokens, logprobs = choose_tokens(logits, temperature, top_p, u)
            tok_list, lp_list = tokens.tolist(), logprobs.tolist()
            check: list[_Row] = []
            for row, tok, lp in zip(batch, tok_list, lp_list):
                if row.finish is not None:
                    continue
                row.tokens.append(tok)
                row.logprob += lp
                if tok in eos:
                    row.finish = "eos"
                elif row.stop:
                    check.append(row)
                elif len(row.tokens) >= row.max_new_tokens:
                    row.finish = "length"
            if check:
                windows = self.tokenizer.batch_decode(
                    [row.tokens[-window_tokens(row.stop) :] for row in check],
                    skip_special_tokens=True,
                    clean_up_tokenization_spaces=False,
                )
                for row, text in zip(check, windows):
                    if any(s in text for s in row.stop if s):
                        row.finish = "stop"
                    elif len(row.tokens) >= row.max_new_tokens:
                        row.finish = "length"
            n_done = sum(row.finish is not None for row in batch)
            if n_done == len(batch):
                return
            step += 1
            if n_done >= self.settings.prune_fraction * len(batch):
                keep = [i for i, row in enumerate(batch) if row.finish is None]
                idx = torch.tensor(keep, device=device)
                cache.batch_select_indices(idx)
                mask, pos, tokens = mask[idx], pos[idx], tokens[idx]
                temperature, top_p, keys = temperature[idx], top_p[idx], keys[keep]
                batch = [batch[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(batch), 1))], dim=-1)
            logits = self.model(
                input_ids=tokens.unsqueeze(-1),
                attention_mask=mask,
                position_ids=pos,
                past_key_values=cache,
                use_cache=True,
            ).logits[:, -1, :]
            pos = pos + 1


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return sorted(ids)


def _strip_eos(row: _Row, eos_ids: list[int]) -> list[int]:
    if row.finish == "eos" and row.tokens and row.tokens[-1] in eos_ids:
        return row.tokens[:-1]
    return row.tokens
