"""Self-evaluation filter on correct terminals (Psi), to drop lucky guesses (ASTRO, Algorithm 1).

The policy is shown the problem and the solution on the root-to-terminal path and asked N times
whether it is correct; a terminal stays in Psi only if ALL N votes say yes. The prompt (one user
message, the backend applies its chat template)::

    Problem:
    {problem}

    Proposed solution:
    {solution}

    Is the proposed solution correct? Answer with "Yes" or "No" only.

A vote passes when the sample, after leading whitespace, quotes, asterisks and similar markup are
stripped, starts with "yes" (case-insensitive). Anything else (No, an empty or rambling answer)
fails: the filter is conservative, as the paper requires unanimity. Samples are drawn with
``n = N`` at ``self_eval_temperature``, with a per-terminal seed derived from the settings' seed.
All terminals of all trees go to the backend in one batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from astro_pipeline.cloning.phrases import fill
from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.cloning.tree import Tree, lookup_problem, problem_index
from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.llm.protocol import Backend, GenerationRequest, SamplingParams
from astro_pipeline.seeds import derive_seed

SELF_EVAL_PROMPT = (
    "Problem:\n{problem}\n\nProposed solution:\n{solution}\n\n"
    'Is the proposed solution correct? Answer with "Yes" or "No" only.'
)
_LEADING_JUNK = re.compile(r"^[\s\"'*_`>#:.\-]+")


def vote_passes(text: str) -> bool:
    return _LEADING_JUNK.sub("", text or "").lower().startswith("yes")


def self_eval_request(problem: str, solution: str, *, n_votes: int, temperature: float, max_new_tokens: int,
                      seed: int | None) -> GenerationRequest:
    content = fill(SELF_EVAL_PROMPT, problem=problem, solution=solution)
    return GenerationRequest(
        messages=chat_messages(content),
        params=SamplingParams(n=n_votes, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed),
    )


def self_evaluate(backend: Backend, items: Sequence[tuple[str, str]], settings: CloningSettings,
                  seeds: Sequence[int | None] | None = None) -> list[bool]:
    """For each (problem, solution): True when all ``self_eval_votes`` votes say yes."""
    if not items:
        return []
    seeds = list(seeds) if seeds is not None else [None] * len(items)
    requests = [
        self_eval_request(p, s, n_votes=settings.self_eval_votes, temperature=settings.self_eval_temperature,
                          max_new_tokens=settings.self_eval_max_new_tokens, seed=seed)
        for (p, s), seed in zip(items, seeds, strict=True)
    ]
    results = backend.generate(requests)
    if len(results) != len(requests):
        raise RuntimeError(f"backend returned {len(results)} results for {len(requests)} requests")
    return [len(samples) == settings.self_eval_votes and all(vote_passes(s.text) for s in samples)
            for samples in results]


def self_eval_filter(backend: Backend, trees: Sequence[Tree], problems: pl.DataFrame,
                     settings: CloningSettings) -> dict[tuple[str, str], set[int]]:
    """(dataset, problem_id) -> the correct terminals of that tree that passed the filter."""
    index = problem_index(problems)
    keys: list[tuple[str, str, int]] = []
    items: list[tuple[str, str]] = []
    seeds: list[int] = []
    for tree in trees:
        row = lookup_problem(index, tree.dataset, tree.problem_id)
        if row is None:
            raise KeyError(f"self-evaluation needs the problem text of {tree.dataset}/{tree.problem_id}")
        for nid in tree.correct_terminals():
            keys.append((tree.dataset, tree.problem_id, nid))
            items.append((str(row["problem"]), tree.solution_text(nid)))
            seeds.append(derive_seed(settings.seed, "self_eval", tree.dataset, tree.problem_id, nid))
    passed = self_evaluate(backend, items, settings, seeds)
    out: dict[tuple[str, str], set[int]] = {(t.dataset, t.problem_id): set() for t in trees}
    for (ds, pid, nid), ok in zip(keys, passed, strict=True):
        if ok:
            out[(ds, pid)].add(nid)
    return out
