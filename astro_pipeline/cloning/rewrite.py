"""Optional LLM rewrite of search steps into a fluent continuation (the paper's verbalization).

Off by default (``cloning.llm_rewrite``): the demo's steps are already in the target format. Each
step is sent with the steps before it on its root path (one user message; greedy decoding, so the
rewrite is reproducible)::

    Here is the beginning of a step-by-step solution:

    {previous steps, or "(nothing yet)"}

    Rewrite the next step so that it reads as a fluent continuation of the solution. Keep every
    number, equation and \\boxed{} answer exactly as it is. Reply with the rewritten step only.

    Next step:
    {step}

The rewrite is discarded for the original step when it is empty, cut by the token limit, longer
than ``rewrite_max_growth`` x the original + 40 characters, contains a blank line (it would split
into two steps), drops a number of the original, or changes the last ``\\boxed`` answer: a fluent
step that says something else would corrupt the trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from astro_pipeline.cloning.phrases import fill
from astro_pipeline.cloning.settings import CloningSettings
from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.llm.protocol import Backend, GenerationRequest, SamplingParams
from astro_pipeline.verify.extract import last_boxed_content

REWRITE_PROMPT = (
    "Here is the beginning of a step-by-step solution:\n\n{context}\n\n"
    "Rewrite the next step so that it reads as a fluent continuation of the solution. Keep every number, "
    "equation and \\boxed{} answer exactly as it is. Reply with the rewritten step only.\n\nNext step:\n{step}"
)
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


def acceptable_rewrite(original: str, rewritten: str, finish_reason: str, max_growth: float) -> bool:
    new = rewritten.strip()
    if not new or finish_reason == "length" or "\n\n" in new:
        return False
    if len(new) > max_growth * len(original) + 40:
        return False
    if set(_NUMBER_RE.findall(original)) - set(_NUMBER_RE.findall(new)):
        return False
    return last_boxed_content(original) == last_boxed_content(new)


def rewrite_steps(
    backend: Backend,
    steps: Sequence[str],
    settings: CloningSettings,
    *,
    contexts: Sequence[Sequence[str]] | None = None,
) -> list[str]:
    """Fluent rewrites of ``steps`` (originals where a rewrite is rejected).

    ``contexts[i]`` are the steps before ``steps[i]``; by default ``steps`` is one path and step i's
    context is ``steps[:i]``. All steps go to the backend in one batch.
    """
    if not steps:
        return []
    if contexts is None:
        contexts = [steps[:i] for i in range(len(steps))]
    requests = []
    for step, ctx in zip(steps, contexts, strict=True):
        content = fill(REWRITE_PROMPT, context="\n\n".join(ctx) or "(nothing yet)", step=step)
        requests.append(
            GenerationRequest(
                messages=chat_messages(content),
                params=SamplingParams(n=1, temperature=0.0, max_new_tokens=settings.rewrite_max_new_tokens,
                                      seed=settings.seed),
            )
        )
    results = backend.generate(requests)
    out = []
    for step, samples in zip(steps, results, strict=True):
        s = samples[0] if samples else None
        ok = s is not None and acceptable_rewrite(step, s.text, s.finish_reason, settings.rewrite_max_growth)
        out.append(s.text.strip() if ok else step)
    return out
