"""Verbalization: a trace becomes a chain-of-thought completion (warehouse table ``cot_examples``).

Node by node along ``trace.node_ids`` (the root has no text), paragraphs joined by "\\n\\n", the
project's step delimiter:

* a node is written as its step (verbatim, or its LLM rewrite when ``llm_rewrite`` is on);
* after an incorrect terminal (a backtrack): one reflection paragraph, question + doubt + "let's go
  back to where we <named ancestor step>", or "let's restart ..." when the target is the root; the
  next paragraph is the first new step below the target;
* after at most ``confirm_max_per_example`` intermediate (non-terminal) steps with Q >= ``confirm_min_q``
  (highest Q first, then earliest): question + confirmation;
* after the final step (n*): question + confirmation.

Boxes (``answer_boxes``). The project's verifier and the RL reward read the LAST ``\\boxed`` of a
response, so we are free to show a wrong answer boxed before doubting it; what matters is that the
model cannot tell a right attempt from a wrong one by its formatting, so right and wrong terminal
steps are treated alike:

* ``"keep"`` (default, as the paper's CoT: the wrong answer is stated, boxed, then doubted): terminal
  steps are verbatim. The final step's box is the last box of the completion, and it is the only
  box after the last backtrack; the completion ends with the confirmation paragraph.
* ``"final_only"``: every terminal step is unboxed and a closing sentence ("Therefore, the final
  answer is \\boxed{17}.") after the confirmation carries the only box, at the very end.

Either way ``last_boxed_content(completion)`` is n*'s answer. (If n*'s step has no box at all, the
closing sentence is added in "keep" mode too.) The Direct arm gets no reflection and no confirmation.

Phrases are drawn with ``random.Random`` seeded from (settings.seed, trace_id): deterministic.

``n_tokens`` counts the completion's tokens with the tokenizer passed in (``n_tokens_method`` =
"tokenizer"), else estimates them as the number of words, single digits and punctuation marks
(``n_tokens_method`` = "estimate"; close to a word-level tokenizer with split digits like the demo's).

Chat form for TRL (conversational prompt-completion): ``to_chat_records`` / ``chat_frame`` give
``prompt = [{"role": "user", "content": problem}]`` and
``completion = [{"role": "assistant", "content": cot}]``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from astro_pipeline.cloning.phrases import backtrack_paragraph, closing_paragraph, confirmation_paragraph, unbox
from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.trace import ASTRO_KINDS, DIRECT_ARM, Trace, as_traces
from astro_pipeline.cloning.tree import ROOT, Tree, lookup_problem, problem_index, tree_index
from astro_pipeline.llm.prompt import chat_example
from astro_pipeline.seeds import derive_seed
from astro_pipeline.verify.extract import last_boxed_content
from astro_pipeline.warehouse.tables import COT_EXAMPLES

COT_SCHEMA = COT_EXAMPLES.schema  # the warehouse contract of the rows this module writes
_ESTIMATE_RE = re.compile(r"\d|[^\W\d]+|[^\w\s]")


@dataclass(frozen=True)
class Verbalized:
    text: str
    answer: str  # the final box's content (n*'s answer)
    n_backtracks: int
    n_restarts: int
    n_reflections: int  # backtrack reflections + confirmations
    n_confirmations: int


def count_tokens(text: str, tokenizer: Any = None) -> tuple[int, str]:
    """(token count, method): the tokenizer's count, or the regex estimate when ``tokenizer`` is None.

    ``tokenizer``: a Hugging Face tokenizer (``encode``), a ``tokenizers.Tokenizer`` (``encode`` -> Encoding)
    or any callable ``text -> int``.
    """
    if tokenizer is None:
        return len(_ESTIMATE_RE.findall(text)), "estimate"
    if hasattr(tokenizer, "encode"):
        try:
            ids = tokenizer.encode(text, add_special_tokens=False)
        except TypeError:
            ids = tokenizer.encode(text)
        ids = getattr(ids, "ids", ids)
        return len(ids), "tokenizer"
    return int(tokenizer(text)), "tokenizer"


def _confirm_nodes(trace: Trace, tree: Tree, settings: CloningSettings) -> set[int]:
    if settings.confirm_max_per_example <= 0:
        return set()
    cands = [
        (-tree[n].q_value, pos, n)
        for pos, n in enumerate(trace.node_ids)
        if n != ROOT and not tree[n].is_terminal and tree[n].q_value >= settings.confirm_min_q
    ]
    return {n for _, _, n in sorted(cands)[: settings.confirm_max_per_example]}


def verbalize_trace(
    trace: Trace, tree: Tree, settings: CloningSettings, *, steps: Mapping[int, str] | None = None
) -> Verbalized:
    """The CoT of one trace; ``steps`` overrides node texts (the LLM rewrites)."""
    bank = settings.phrases
    rng = random.Random(derive_seed(settings.seed, "verbalize", trace.trace_id))
    reflect = trace.kind != DIRECT_ARM
    final_only = settings.answer_boxes == "final_only"
    confirm = _confirm_nodes(trace, tree, settings) if reflect else set()
    targets = iter(trace.backtrack_targets)
    last = trace.node_ids[-1]
    paragraphs: list[str] = []
    n_conf = 0

    def text_of(nid: int) -> str:
        t = (steps or {}).get(nid, tree[nid].step).strip()
        return unbox(t) if final_only and tree[nid].is_terminal else t

    for nid in trace.node_ids:
        if nid == ROOT:
            continue
        paragraphs.append(text_of(nid))
        if nid == last:
            break
        if tree[nid].is_terminal:  # leaving an incorrect terminal: backtrack
            target = next(targets)
            paragraphs.append(backtrack_paragraph(bank, rng, None if target == ROOT else text_of(target)))
        elif nid in confirm:
            paragraphs.append(confirmation_paragraph(bank, rng))
            n_conf += 1
    if next(targets, None) is not None:
        raise ValueError(f"{trace.trace_id}: more backtrack targets than incorrect terminals visited")

    final_box = last_boxed_content(text_of(last))
    source_box = last_boxed_content((steps or {}).get(last, tree[last].step))
    answer = next(a for a in (final_box, source_box, trace.answer, tree[last].answer, "") if a is not None)
    if reflect:
        paragraphs.append(confirmation_paragraph(bank, rng))
        n_conf += 1
    if final_box is None:
        paragraphs.append(closing_paragraph(bank, rng, answer))
    return Verbalized(
        text="\n\n".join(p for p in paragraphs if p),
        answer=answer,
        n_backtracks=trace.n_backtracks,
        n_restarts=trace.n_restarts,
        n_reflections=trace.n_backtracks + n_conf,
        n_confirmations=n_conf,
    )


def _rewritten_steps(traces: Sequence[Trace], trees: Mapping[tuple[str, str], Tree], settings: CloningSettings,
                     backend: Any) -> dict[tuple[str, str], dict[int, str]]:
    from astro_pipeline.cloning.rewrite import rewrite_steps

    keys: list[tuple[str, str, int]] = []
    seen: set[tuple[str, str, int]] = set()
    for t in traces:
        for n in t.node_ids:
            k = (t.dataset, t.problem_id, n)
            if n != ROOT and k not in seen:
                seen.add(k)
                keys.append(k)
    steps, contexts = [], []
    for ds, pid, n in keys:
        tree = trees[(ds, pid)]
        steps.append(tree[n].step)
        contexts.append([tree[a].step for a in tree.path(n)[1:-1]])
    new = rewrite_steps(backend, steps, settings, contexts=contexts)
    out: dict[tuple[str, str], dict[int, str]] = {}
    for (ds, pid, n), text in zip(keys, new, strict=True):
        out.setdefault((ds, pid), {})[n] = text
    return out


def verbalize_traces(
    traces: pl.DataFrame | Sequence[Trace],
    trees: pl.DataFrame | Mapping[tuple[str, str], Tree],
    problems: pl.DataFrame,
    settings: CloningSettings,
    tokenizer: Any = None,
    *,
    backend: Any = None,
) -> pl.DataFrame:
    """cot_examples rows for ``traces`` (prompt = the problem text, completion = the CoT).

    ``backend`` is needed only when ``settings.llm_rewrite`` is on.
    """
    trace_list = as_traces(traces)
    index = tree_index(trees) if isinstance(trees, pl.DataFrame) else dict(trees)
    probs = problem_index(problems)
    rewritten: dict[tuple[str, str], dict[int, str]] = {}
    if settings.llm_rewrite:
        if backend is None:
            raise ValueError("cloning.llm_rewrite is on: verbalize_traces needs backend=")
        rewritten = _rewritten_steps(trace_list, index, settings, backend)
    rows = []
    for t in trace_list:
        key = (t.dataset, t.problem_id)
        if key not in index:
            raise KeyError(f"trace {t.trace_id}: no tree for {key}")
        prob = lookup_problem(probs, *key)
        if prob is None:
            raise KeyError(f"trace {t.trace_id}: no problem row for {key}")
        v = verbalize_trace(t, index[key], settings, steps=rewritten.get(key))
        n_tokens, method = count_tokens(v.text, tokenizer)
        rows.append({
            "dataset": t.dataset, "problem_id": t.problem_id, "trace_id": t.trace_id, "kind": t.kind,
            "prompt": str(prob["problem"]), "completion": v.text, "answer": v.answer,
            "reference": None if prob.get("answer") is None else str(prob["answer"]),
            "n_backtracks": v.n_backtracks, "n_restarts": v.n_restarts, "n_reflections": v.n_reflections,
            "n_confirmations": v.n_confirmations, "n_tokens": n_tokens, "n_tokens_method": method,
        })
    return pl.DataFrame(rows, schema=COT_SCHEMA)


def to_chat_records(cot_examples: pl.DataFrame, kinds: Sequence[str] | None = ASTRO_KINDS) -> list[dict[str, Any]]:
    """TRL conversational prompt-completion records of the rows whose kind is in ``kinds`` (None = all).

    The default selects the ASTRO corpus (direct + search); pass ``("direct_arm",)`` for the ablation.
    """
    df = cot_examples if kinds is None else cot_examples.filter(pl.col("kind").is_in(list(kinds)))
    return [
        {
            **chat_example(r["prompt"], r["completion"]),
            "dataset": r["dataset"], "problem_id": r["problem_id"], "trace_id": r["trace_id"], "kind": r["kind"],
        }
        for r in df.iter_rows(named=True)
    ]


def chat_frame(cot_examples: pl.DataFrame, kinds: Sequence[str] | None = ASTRO_KINDS) -> pl.DataFrame:
    """``to_chat_records`` as a polars frame (``datasets.Dataset.from_polars`` loads it for TRL)."""
    records = to_chat_records(cot_examples, kinds)
    msg = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    schema = {"prompt": msg, "completion": msg, "dataset": pl.String, "problem_id": pl.String,
              "trace_id": pl.String, "kind": pl.String}
    return pl.DataFrame(records, schema=schema)
