"""The demo base model's pretraining corpus: solved problems plus plain sentences in the bank's words.

Design choices (DESIGN §3, issue 12 item 8):

* The documents are chat examples (a user prompt, an assistant completion), so pretraining sees
  exactly the prompt format of every later stage. Problems come from the ``pretrain`` split, which
  search, RL and evaluation never use.
* With the guess_check world, a share of the documents (``forward_docs_share``) are forward ones,
  half of each kind. No target to meet, no check, no wrong answer, so still no search:

  - chain-world problems over the same ranges ("Start with 4. / A: Multiply by 3." solved
    "A: 4 * 3 = 12"): arithmetic from any value. Without them the model learns that an attempt's
    last line always lands on the stated result, and a wrong guess comes out as "C: 16 + 4 = 19"
    (measured at T 0.7: 79% of wrong-guess attempts steered without them, 18% with them);
  - tabulations in the world's own wording ("Find the results for x = 4 and x = 7." solved "Try
    x = 4." + one line per operation + "For x = 4 the result is 16.", then the same for 7): the
    problem's operations applied again after a finished computation, far from the problem text.
    A model pretrained on single solutions wrote a correct first attempt after SFT but almost no
    correct second one (1 of 294: it recited other problems' operations); with tabulations 25%.
* With the guess_check world, a share (``check_docs_share``) are verification documents: "Check
  x = 4." plus the problem's lines, solved as an attempt at that x whose check line says whether the
  value reached matches the result ("The result is 19 and we got 16, so \\boxed{4} is not the
  answer"; a quarter of them with the right x). Checking a given candidate is not search (no guess
  of its own, no doubt, no retry); without it the model had never seen a value differ from the
  result in a check line and copied one number into both places (the value written twice), so a
  failed attempt did not show its failure and SFT could not learn when to doubt (measured: an SFT
  model stopped after 48% of its right attempts and after 53% of its wrong ones).
* With the guess_check world, a share (``miss_docs_share``) are failed attempts under the problem's
  own prompt: one wrong guess, its arithmetic, the check line saying it missed, then the end (no
  doubt, no retry: still not search). Under "Find x ..." the other documents only ever showed right
  guesses, so the model learned that an attempt at this prompt meets the result and wrote the value
  it reached in place of the result. Measured on synthetic_test (200 x 8 samples at T 0.7, AMD EPYC
  with AVX512-BF16, 2 cores; "R" = the wrong attempts' check lines that state the problem's result,
  "verdict" = right attempts that say so / wrong ones that say "is not the answer"):

    miss share  steps  precision  R      verdict (right / wrong)
    0 (before)  1500   fp32       6%     -     (search terminals of the earlier demo, README)
    0.4         1500   bf16       6%     81% / 21%
    0.4         1500   fp32       99%    72% / 28%
    0.4         3000   bf16       99%    83% / 22%
    1.0         1500   fp32       99%    51% / 61%
    1.0         3000   fp32       99%    96% / 88%   <- the demo recipe
    1.0         3000   fp32, batch 2       3%  (half the tokens: the copy never formed)
    1.0         2000   fp32, lr 5e-3       14%

  Copying the result and comparing it with the value are learned late and suddenly (between 1500
  and 3000 steps of 4 packed rows); bf16 autocast delays the copy. Two things that did not help:
  every number one token (tokenizer) and comparison drills (eight check lines with random numbers
  per document) at 1500 steps: verdicts stayed at the rate the model had seen (51% / 56%).
* A share of the documents (``phrase_docs_share``) are "plain" ones: the prompt ``Say something.``
  and a few sentences drawn from the phrase bank (questions, doubts, confirmations, go-back phrases
  with a real step named, restarts, closing sentences). They teach the words and grammar of the
  reflections, never *when* to use them: no solution contains a reflection, so the base model has
  not seen search. A base model that cannot spell its reflections makes SFT spend its gradients on
  spelling (measured: reflection words at 20-24 nats per token before SFT without these documents).
* The tokenizer is trained on the same documents plus the bank's text, so every word of the bank
  and of the synthetic world is one token (``tokenizer_texts``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from astro_pipeline.cloning.phrases import bank_text, describe_step, fill
from astro_pipeline.cloning.settings import PhraseBank
from astro_pipeline.data.synthetic import (
    SyntheticSettings, check_rows, generate_rows, held_out_ops, miss_rows, render, split_keys, tabulate_rows,
)

PLAIN_PROMPT = "Say something."
SENTENCES_PER_PLAIN_DOC = 3


@dataclass(frozen=True)
class Document:
    prompt: str
    completion: str
    kind: str  # "problem", "forward" (chain-world problems and tabulations), "check", "miss" or "plain"
    answer: str | None = None  # the gold answer of a problem document


def _steps_of(rows: list[dict]) -> list[str]:
    return [s for r in rows for s in r["solution"].split("\n\n") if "=" in s and "\\boxed" not in s]


def plain_sentence(bank: PhraseBank, rng: random.Random, steps: list[str]) -> str:
    """One sentence of the bank, placeholders filled with a real step and a real-looking answer."""
    kind = rng.choice(("question", "doubt", "go_back", "restart", "confirmation", "final_answer"))
    phrase = rng.choice(getattr(bank, kind))
    if kind == "go_back":
        return fill(phrase, ref=describe_step(rng.choice(steps)) if steps else "were")
    if kind == "final_answer":
        return fill(phrase, answer="\\boxed{" + str(rng.randint(0, 50)) + "}")
    return phrase


def plain_documents(bank: PhraseBank, n: int, seed: int, steps: list[str]) -> list[Document]:
    """``n`` plain documents of ``SENTENCES_PER_PLAIN_DOC`` bank sentences each (seeded)."""
    rng = random.Random(f"{seed}:plain")
    return [
        Document(PLAIN_PROMPT, " ".join(plain_sentence(bank, rng, steps) for _ in range(SENTENCES_PER_PLAIN_DOC)), "plain")
        for _ in range(n)
    ]


def forward_documents(synthetic: SyntheticSettings, n: int) -> list[Document]:
    """``n`` forward documents over ``synthetic``'s ranges: half chain problems, half tabulations.

    Chain problems on an operation chain of a train or test problem are left out (one started at
    that problem's x would compute its answer), so a few more are drawn than kept."""
    n_chain = n - n // 2
    held_out = held_out_ops(synthetic)
    chain = replace(synthetic, world="chain", n_pretrain=2 * n_chain + 16, n_train=0, n_test=0)
    keys = [k for k in split_keys("pretrain", chain) if k[1] not in held_out][:n_chain]
    if len(keys) < n_chain:
        raise ValueError(f"base_model: only {len(keys)} chain documents outside train and test, {n_chain} wanted")
    rows = [render(start, ops, chain) for start, ops in keys] + tabulate_rows(n // 2, synthetic)
    return [Document(r["problem"], r["solution"], "forward") for r in rows]


def pretraining_documents(
    synthetic: SyntheticSettings, bank: PhraseBank | None, phrase_docs_share: float, seed: int,
    forward_docs_share: float = 0.0, check_docs_share: float = 0.0, miss_docs_share: float = 0.0,
) -> list[Document]:
    """Solved ``pretrain`` problems, plus ``forward_docs_share``, ``check_docs_share``,
    ``miss_docs_share`` and ``phrase_docs_share`` x that many forward, verification, failed-attempt
    (these three guess_check only) and plain documents."""
    rows = generate_rows("pretrain", synthetic)
    docs = [Document(r["problem"], r["solution"], "problem", r["answer"]) for r in rows]
    guess_check = synthetic.world == "guess_check"
    if guess_check and forward_docs_share > 0:
        docs += forward_documents(synthetic, round(forward_docs_share * len(rows)))
    if guess_check and check_docs_share > 0:
        docs += [Document(r["problem"], r["solution"], "check")
                 for r in check_rows(round(check_docs_share * len(rows)), synthetic)]
    if guess_check and miss_docs_share > 0:
        docs += [Document(r["problem"], r["solution"], "miss")
                 for r in miss_rows(round(miss_docs_share * len(rows)), synthetic)]
    if bank is not None and phrase_docs_share > 0:
        docs += plain_documents(bank, round(phrase_docs_share * len(rows)), seed, _steps_of(rows))
    random.Random(f"{seed}:order").shuffle(docs)
    return docs


def tokenizer_texts(docs: list[Document], bank: PhraseBank | None) -> list[str]:
    """What the demo tokenizer is trained on: every document, and the whole bank (each phrasing once)."""
    texts = [d.prompt + "\n" + d.completion for d in docs]
    if bank is not None:
        texts.append(bank_text(bank))
    return texts
