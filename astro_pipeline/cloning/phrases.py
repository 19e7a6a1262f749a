"""Reflection paragraphs from the phrase bank, and how a backtrack names its ancestor step.

A backtrack reflection is ONE paragraph: question + doubt + (go back to the named ancestor | restart
from the beginning when the target is the root). A confirmation is question + confirmation. Each
part is drawn from the bank with the caller's seeded ``random.Random``.

Naming the ancestor (``describe_step``), so "go back to where we {ref}" points at a real step:

* the step's equation when it has one: the last sentence (or line) with "=", trimmed to the run of
  mathematical tokens around its first "=" ("So the total is 21 - 4 = 17 apples." -> "computed
  21 - 4 = 17"); a chain longer than 60 characters keeps its last link only;
* otherwise its opening words: 'wrote "First, find the common denominator"';
* a demo-style label ("B: 21 - 4 = 17") adds " in step B".

The reference is one line without ``\\boxed`` (whitespace collapsed, boxes unwrapped), so the
reflection stays a single paragraph and never adds a box.
"""

from __future__ import annotations

import random
import re

from astro_pipeline.cloning.settings import PhraseBank

_LABEL_RE = re.compile(r"^\s*([A-Z])\s*:\s*")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?;])\s+|\s*\n\s*")
_MATH_TOKEN_RE = re.compile(r"[0-9=+\-*/^()\\{}\[\]<>|×÷·]")
_BOX_OPEN_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
MAX_EQUATION_CHARS = 60
OPENING_WORDS = 8


def fill(template: str, **values: str) -> str:
    """Substitute ``{name}`` placeholders in one pass (inserted text is never re-scanned; LaTeX
    braces elsewhere in the template are left alone, unlike ``str.format``)."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    return pattern.sub(lambda m: values[m.group(1)], template)


def unbox(text: str) -> str:
    """``\\boxed{X}``/``\\fbox{X}`` -> ``X`` (braces matched, escaped braces skipped)."""
    out: list[str] = []
    i = 0
    while True:
        m = _BOX_OPEN_RE.search(text, i)
        if m is None:
            out.append(text[i:])
            return "".join(out)
        j, depth = m.end(), 1
        while j < len(text) and depth:
            c = text[j]
            if c == "\\":
                j += 2
                continue
            depth += c == "{"
            depth -= c == "}"
            j += 1
        if depth:  # unbalanced: leave the rest as is
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : m.start()])
        out.append(text[m.end() : j - 1])
        i = j


def _is_math(tok: str) -> bool:
    core = tok.strip("()[]{}.,;:!?$\"'")
    return bool(_MATH_TOKEN_RE.search(core)) or (len(core) == 1 and core.isalpha())


def _equation(body: str) -> str | None:
    """The mathematical part of the last sentence (or line) of ``body`` that has an "=" in it."""
    sentences = [s for s in _SENTENCE_SPLIT_RE.split(body) if "=" in s]
    if not sentences:
        return None
    toks = sentences[-1].split()
    first_eq = next(i for i, t in enumerate(toks) if "=" in t)
    start = first_eq
    while start > 0 and _is_math(toks[start - 1]):
        start -= 1
    if start == first_eq and start > 0 and re.fullmatch(r"[A-Za-z_]\w*", toks[start - 1]):
        start -= 1  # a named quantity: "area = 3 * 4 = 12"
    end = first_eq + 1
    while end < len(toks) and _is_math(toks[end]):
        end += 1
    eq = " ".join(toks[start:end]).replace("$", "").strip().rstrip(".,;:!?").strip()
    if len(eq) > MAX_EQUATION_CHARS:
        parts = eq.split("=")
        eq = f"{parts[-2].strip()} = {parts[-1].strip()}"
    if len(eq) > MAX_EQUATION_CHARS or eq.startswith("=") or eq.endswith("="):
        return None
    return eq


def describe_step(step: str) -> str:
    """A verb phrase naming ``step`` for "let's go back to where we {ref}"."""
    text = unbox(step).strip()
    label = None
    m = _LABEL_RE.match(text)
    if m:
        label, text = m.group(1), text[m.end() :]
    eq = _equation(text)
    if eq:
        ref = f"computed {' '.join(eq.split())}"
    else:
        words = text.split()[:OPENING_WORDS]
        opening = " ".join(words).rstrip(".,;:!?")
        ref = f'wrote "{opening}"' if opening else "were"
    return f"{ref} in step {label}" if label else ref


def backtrack_paragraph(bank: PhraseBank, rng: random.Random, target_step: str | None) -> str:
    """Question + doubt + go back to ``target_step`` (None = the root: restart)."""
    parts = [rng.choice(bank.question), rng.choice(bank.doubt)]
    if target_step is None:
        parts.append(rng.choice(bank.restart))
    else:
        parts.append(fill(rng.choice(bank.go_back), ref=describe_step(target_step)))
    return " ".join(parts)


def confirmation_paragraph(bank: PhraseBank, rng: random.Random) -> str:
    return f"{rng.choice(bank.question)} {rng.choice(bank.confirmation)}"


def closing_paragraph(bank: PhraseBank, rng: random.Random, answer: str) -> str:
    return fill(rng.choice(bank.final_answer), answer="\\boxed{" + answer + "}")


def bank_text(bank: PhraseBank) -> str:
    """Every phrasing of the bank as one text (placeholders dropped), e.g. for a tokenizer's extra
    words, so that a word-level demo tokenizer holds the reflection vocabulary as whole tokens."""
    phrases = (*bank.question, *bank.doubt, *bank.go_back, *bank.restart, *bank.confirmation, *bank.final_answer)
    return " ".join(fill(p, ref="", answer="") for p in phrases)
