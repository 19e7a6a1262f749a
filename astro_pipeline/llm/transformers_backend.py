"""The ``transformers`` backend: a hand-written batched sampling loop over a KV cache, CPU or CUDA.

Design choices:

* Not ``model.generate``: DESIGN measured it slow on large batches, and a plain loop gives what the
  protocol needs directly (per-row temperature/top-p/stop strings/token budget, summed
  log-probabilities, finish reasons) with less overhead per step.
* Requests are expanded into rows (one per sample); identical prompts (one request's n samples,
  or several requests with the same text) get one prompt index. Prefix reuse (setting
  ``prefix_reuse``), per micro-batch:

  - ``prompt``: rows are sorted by prompt length (little left padding) with the rows of one prompt
    together; each distinct prompt is prefilled once and its KV cache copied to its rows
    (``batch_select_indices``). MCTS asks for k children of a node and M rollouts of each child,
    so most rows share a prompt.
  - ``prefix`` (default): as ``prompt``, and distinct prompts that share at least half of their
    tokens form a family (MCTS siblings: the node's whole prompt plus one step each); a family
    sits together in the row order and its shared prefix is prefilled once. Prefill then runs in
    two passes: the prefixes (one row per family), then every distinct prompt's suffix on top of a
    copy of its family's prefix cache. That leaves padding between prefix and suffix; the cache is
    then compacted (positions gathered, values copied unchanged) to the same left-padded layout as
    ``prompt``, so decoding is the same code. The two-pass plan is used only when it computes fewer
    positions (padding included, the extra pass charged one per row) than the one-pass one, and
    only for full-attention caches.
  - ``off``: every row prefills its own prompt (the comparison point: what ``model.generate`` with
    ``num_return_sequences`` does).

  Measured on the demo model (hidden 128, 4 layers, no GQA; ``astro bench generate --prefix-reuse``,
  2 shared cores): on a recorded MCTS request set ``prefix`` ran 38% fewer prefill tokens than
  ``prompt`` and its prefill forward passes took ~25% less time, but the extra cache copies (prefix
  rows to their prompts, compaction) took back most of it: end to end ~1.0x ``prompt``, ~1.3x
  ``off``. Prefill was ~13% of a call in ``prompt`` mode, a third of that the copy of each prompt's
  cache to its sample rows, which every sharing mode pays. Where KV rows are narrow against the
  model (GQA) and prompts long, the forward saving should dominate; not measured here.

  A family or a prompt whose rows straddle two micro-batches is prefilled in both. The
  counters in ``stats`` (``BackendStats``) say what prefill cost: prompt tokens of all rows against
  tokens and padded positions actually run. The results are the same in every mode up to float
  rounding (the prefix's keys and values come from a differently shaped batch).
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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from astro_pipeline.llm.device import resolve_device, resolve_dtype, set_threads
from astro_pipeline.llm.kv_cache import full_attention_only, gather_positions, growing_cache
from astro_pipeline.llm.model_ref import resolve_model_ref
from astro_pipeline.llm.prompt import encode as encode_prompt
from astro_pipeline.llm.prompt import render as render_prompt
from astro_pipeline.llm.protocol import GenerationRequest, Sample, check_params
from astro_pipeline.llm.sampling import choose_tokens, row_keys, uniforms
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.llm.stops import truncate_at_stop, window_tokens


@dataclass
class BackendStats:
    """What the backend has done since it was built (or ``reset``): prefill cost against its baseline."""

    calls: int = 0
    rows: int = 0  # samples decoded (rows with a token budget)
    prompt_tokens: int = 0  # prompt tokens over all rows: what prefilling each sample's prompt alone costs
    prefill_tokens: int = 0  # prompt tokens run through the model (shared prompts and prefixes once)
    prefill_positions: int = 0  # positions computed in prefill passes, left padding included
    prefill_passes: int = 0  # forward passes over prompts
    shared_prefix_tokens: int = 0  # prefix tokens prefilled once for a family instead of once per prompt
    generated_tokens: int = 0
    prefill_seconds: float = 0.0  # wall time in prefill (CUDA: synchronised at its end)

    def reset(self) -> None:
        for name, f in self.__dataclass_fields__.items():
            setattr(self, name, f.default)


@dataclass
class _Row:
    request: int
    sample: int
    prompt: int  # index into the unique prompts of this call
    family: int  # prompts of one family share a prefix (prefix_reuse "prefix"; else = prompt)
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
        self.stats = BackendStats()

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
                    _Row(r, j, prompt_index[ids], prompt_index[ids], seed, p.temperature, p.top_p,
                         p.max_new_tokens, tuple(p.stop))
                )
        todo = [row for row in rows if row.max_new_tokens > 0]
        for row in rows:
            if row.max_new_tokens == 0:
                row.finish = "length"
        if self.settings.prefix_reuse == "prefix":
            # families (prompts sharing a long prefix) together, shorter families first; within a
            # family prompts in token order, so members sharing more sit next to each other
            family, rank = _families(prompts)
            for row in todo:
                row.family = family[row.prompt]
            todo.sort(key=lambda row: (row.family, rank[row.prompt], row.request, row.sample))
        else:
            # bucket by prompt length; rows of one prompt stay adjacent
            todo.sort(key=lambda row: (len(prompts[row.prompt]), row.prompt, row.request, row.sample))
        self.stats.calls += 1
        self.stats.rows += len(todo)
        self.stats.prompt_tokens += sum(len(prompts[row.prompt]) for row in todo)
        mbs = self.settings.micro_batch_size
        with torch.inference_mode():
            for start in range(0, len(todo), mbs):
                self._decode(todo[start : start + mbs], prompts)
        self.stats.generated_tokens += sum(len(row.tokens) for row in todo)
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
        t0 = time.perf_counter()
        cache, logits, mask = self._prefill(rows, prompts)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.stats.prefill_seconds += time.perf_counter() - t0
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

    # prefill -----------------------------------------------------------------------------------
    def _prefill(self, rows: list[_Row], prompts: list[list[int]]):
        """KV cache, last-position logits and attention mask of ``rows``' prompts, one row each,
        left-padded to the longest prompt (see the module docstring for what is shared)."""
        device = self.device
        if self.settings.prefix_reuse == "off":
            seqs, families, sel = [prompts[row.prompt] for row in rows], list(range(len(rows))), None
        else:
            uniq = list(dict.fromkeys(row.prompt for row in rows))
            where = {p: i for i, p in enumerate(uniq)}
            family_of = {row.prompt: row.family for row in rows}
            seqs, families = [prompts[p] for p in uniq], [family_of[p] for p in uniq]
            sel = [where[row.prompt] for row in rows] if len(uniq) != len(rows) else None
        cache = growing_cache(self.model.config)
        plan = _two_pass_plan(seqs, families) if self.settings.prefix_reuse == "prefix" else None
        if plan is not None and full_attention_only(cache):
            logits, mask = self._prefill_two_pass(cache, seqs, *plan)
        else:
            width = max(len(ids) for ids in seqs)
            input_ids, mask = _left_pad([list(ids) for ids in seqs], width, self.pad_id)
            logits = self._forward(cache, input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0))
            mask = mask.to(device)
            self.stats.prefill_tokens += sum(len(ids) for ids in seqs)
        if sel is not None:
            idx = torch.tensor(sel, device=device)
            cache.batch_select_indices(idx)
            logits, mask = logits[idx], mask[idx]
        return cache, logits, mask

    def _forward(self, cache, input_ids: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """One prefill pass over ``input_ids`` on top of ``cache``; ``mask`` covers cache and input."""
        self.stats.prefill_passes += 1
        self.stats.prefill_positions += input_ids.numel()
        device = self.device
        return self.model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=position_ids.to(device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]

    def _prefill_two_pass(self, cache, seqs: list[list[int]], group: list[int], cut: list[int]):
        """Prefill the shared prefixes (one row per group), copy them to their prompts, prefill the
        suffixes, then compact the cache to the left-padded layout of a one-pass prefill."""
        n_groups = max(group) + 1
        first = {}
        for i, g in enumerate(group):
            first.setdefault(g, i)
        heads = [seqs[first[g]][: cut[first[g]]] for g in range(n_groups)]
        w1 = max(len(h) for h in heads)
        ids1, mask1 = _left_pad(heads, w1, self.pad_id)
        self._forward(cache, ids1, mask1, (mask1.cumsum(-1) - 1).clamp(min=0))
        gidx = torch.tensor(group)
        cache.batch_select_indices(gidx.to(self.device))
        tails = [ids[c:] for ids, c in zip(seqs, cut)]
        w2 = max(len(t) for t in tails)
        ids2, mask2 = _left_pad(tails, w2, self.pad_id)
        start = torch.tensor(cut).unsqueeze(-1)
        full = torch.cat([mask1[gidx], mask2], dim=-1)
        logits = self._forward(cache, ids2, full, (start + mask2.cumsum(-1) - 1).clamp(min=0))
        self.stats.prefill_tokens += sum(len(h) for h in heads) + sum(len(t) for t in tails)
        self.stats.shared_prefix_tokens += sum(cut) - sum(len(h) for h in heads)
        # compaction: each row's real positions, right-aligned; padding points at its first real one
        width = max(len(ids) for ids in seqs)
        real = full.bool()
        order = torch.argsort(real.to(torch.int8), dim=-1, stable=True)[:, -width:]
        lens = torch.tensor([len(ids) for ids in seqs]).unsqueeze(-1)
        pad = torch.arange(width).unsqueeze(0) < (width - lens)
        first_real = real.to(torch.int8).argmax(dim=-1, keepdim=True)
        index = torch.where(pad, first_real, order)
        gather_positions(cache, index.to(self.device))
        mask = (~pad).long().to(self.device)
        return logits, mask


def _left_pad(seqs: Sequence[Sequence[int]], width: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, ids in enumerate(seqs):
        if ids:
            input_ids[i, width - len(ids) :] = torch.tensor(list(ids))
            mask[i, width - len(ids) :] = 1
    return input_ids, mask


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


FAMILY_SHARE = 0.5  # a family's shared prefix covers at least this share of its longest prompt


def _families(prompts: list[list[int]]) -> tuple[list[int], list[int]]:
    """Family id and token-order rank of each prompt. In token order, a prompt joins the family
    before it while the family's common prefix stays >= FAMILY_SHARE of its longest member; family
    ids are numbered by longest member (similar lengths decode together)."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    rank = [0] * len(prompts)
    groups: list[list[int]] = []
    common = longest = 0
    for r, i in enumerate(order):
        rank[i] = r
        if groups:
            c = min(common, _lcp(prompts[groups[-1][-1]], prompts[i]))
            m = max(longest, len(prompts[i]))
            if c >= FAMILY_SHARE * m:
                groups[-1].append(i)
                common, longest = c, m
                continue
        groups.append([i])
        common, longest = len(prompts[i]), len(prompts[i])
    groups.sort(key=lambda g: (max(len(prompts[i]) for i in g), rank[g[0]]))
    family = [0] * len(prompts)
    for f, g in enumerate(groups):
        for i in g:
            family[i] = f
    return family, rank


def _two_pass_plan(seqs: list[list[int]], families: list[int]) -> tuple[list[int], list[int]] | None:
    """For distinct prompts ``seqs`` (a family's members adjacent): the prefix group of each and
    where its prompt is cut (prefix = ``seq[:cut]``, prefilled once per group; suffix >= 1 token),
    or None when no two prompts share a prefix or the two passes compute no fewer positions
    (padding included, plus one per row for the extra pass) than one."""
    runs: list[list[int]] = []
    for i, f in enumerate(families):
        if runs and families[runs[-1][-1]] == f:
            runs[-1].append(i)
        else:
            runs.append([i])
    shared: dict[int, int] = {}  # first member of a run of >= 2 prompts -> common prefix length
    for run in runs:
        if len(run) > 1:
            common = min(len(seqs[i]) for i in run) - 1
            for a, b in zip(run, run[1:]):
                common = min(common, _lcp(seqs[a], seqs[b]))
            if common > 0:
                shared[run[0]] = common
    if not shared:
        return None
    w2 = max(len(seqs[i]) - shared[run[0]] for run in runs if run[0] in shared for i in run)
    group: list[int] = [0] * len(seqs)
    cut: list[int] = [0] * len(seqs)
    g = 0
    for run in runs:
        if run[0] in shared:
            for i in run:
                group[i], cut[i] = g, shared[run[0]]
            g += 1
        else:  # prompts without a partner: all but their last w2 tokens go in the first pass
            for i in run:
                if len(seqs[i]) < 2:
                    return None
                group[i], cut[i] = g, max(len(seqs[i]) - w2, 1)
                g += 1
    w1 = max(cut)
    # the second pass is charged one position per row (about a decode step: its fixed cost)
    if g * w1 + len(seqs) * (w2 + 1) >= len(seqs) * max(len(ids) for ids in seqs):
        return None
    return group, cut


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
