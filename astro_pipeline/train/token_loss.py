"""How well a model already predicts the CoT corpus, by kind of text: prompt, solution steps, reflections.

Why: SFT can teach *when* to reflect only if the model already speaks the reflections' words. On the
first demo the base model had never predicted a reflection word (20-24 nats per token, against
~0.2 on its own solution steps), so SFT spent its gradients on spelling. The cot_corpus asset
records these figures for the base model before any fine-tuning (DESIGN §3, issue 12 item 8).

A completion paragraph is a reflection when the phrase-bank detector finds one in it
(``count_reflections``), else a step. Each token of the rendered chat text (chat template applied,
exactly as SFT sees it) belongs to the segment its first character falls in; its loss is the
negative log-likelihood of that token given everything before it.
"""

from __future__ import annotations

import math
import re

import polars as pl
import torch

from astro_pipeline.cloning.detect import count_reflections
from astro_pipeline.cloning.settings import PhraseBank
from astro_pipeline.llm.prompt import chat_example

SEGMENTS = ("prompt", "step", "reflection")
_PARAGRAPH_RE = re.compile(r"\n\s*\n")


def _segments(rendered: str, completion: str, bank: PhraseBank) -> list[tuple[int, int, str]]:
    """(start, end, segment) character spans of ``rendered``: the prompt, then each completion paragraph."""
    start = rendered.rfind(completion)
    if start < 0:
        raise ValueError("the rendered chat text does not contain the completion verbatim")
    spans = [(0, start, "prompt")]
    pos = 0
    for m in [*_PARAGRAPH_RE.finditer(completion), None]:
        end = m.start() if m is not None else len(completion)
        para = completion[pos:end]
        kind = "reflection" if count_reflections(para, bank)[0] > 0 else "step"
        spans.append((start + pos, start + end, kind))
        if m is not None:
            spans.append((start + end, start + m.end(), "step"))  # the delimiter goes with the steps
            pos = m.end()
    return spans


def loss_by_segment(model, tokenizer, cot: pl.DataFrame, bank: PhraseBank, *, max_examples: int = 200,
                    batch_size: int = 16) -> dict[str, float | int]:
    """Mean nats per token of ``model`` on the corpus's prompt, step and reflection tokens.

    Uses the first ``max_examples`` rows (the corpus's own order). Returns ``{segment: nats}`` plus
    ``{segment}_tokens`` counts; a segment without tokens is left out.
    """
    rows = cot.head(max_examples).select("prompt", "completion").to_dicts()
    totals = {s: 0.0 for s in SEGMENTS}
    counts = {s: 0 for s in SEGMENTS}
    model.eval()
    for i in range(0, len(rows), batch_size):
        batch = rows[i : i + batch_size]
        texts, spans = [], []
        for r in batch:
            example = chat_example(r["prompt"], r["completion"])
            messages = example["prompt"] + example["completion"]
            rendered = tokenizer.apply_chat_template(messages, tokenize=False)
            texts.append(rendered)
            spans.append(_segments(rendered, r["completion"], bank))
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, padding=True,
                        return_tensors="pt", padding_side="right")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), enc["input_ids"][:, 1:], reduction="none")
        for b, row_spans in enumerate(spans):
            offsets = enc["offset_mapping"][b].tolist()
            for t in range(1, int(enc["attention_mask"][b].sum())):
                first = offsets[t][0]
                kind = next((k for s, e, k in row_spans if s <= first < e), "step")
                totals[kind] += float(nll[b, t - 1])
                counts[kind] += 1
    out: dict[str, float | int] = {}
    for s in SEGMENTS:
        if counts[s]:
            out[s] = round(totals[s] / counts[s], 4) if math.isfinite(totals[s]) else float("inf")
            out[f"{s}_tokens"] = counts[s]
    return out
