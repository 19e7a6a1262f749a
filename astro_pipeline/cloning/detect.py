"""Count reflections and backtracks in any text (verbalized CoT or a model's sample) from the phrase bank.

Matching is tolerant by construction:

* text and phrases are normalized alike: lower case, curly quotes straightened, "let us" -> "let's",
  "i am" -> "i'm";
* a phrase becomes a key: its words after dropping leading fillers ("but", "wait", "hmm", "yes", ...)
  and, for ``go_back``, everything from ``{ref}`` on; only the first ``KEY_WORDS`` words are kept,
  so a changed ending still matches; words may be separated by any punctuation/whitespace and
  apostrophes are optional ("lets go back", "Let's... go back");
* the bank's ``backtrack_patterns`` / ``reflection_patterns`` regexes catch variants the bank does
  not spell out ("we should go back", "start over", "I am not certain").

Counting: the text is split into paragraphs (blank lines) and sentences. ``n_backtracks`` is the
number of sentences containing a go-back or restart (phrase or pattern), so one sentence that says
both "let's go back" and "restart" counts once. ``n_reflections`` adds, per paragraph that contains
any reflection phrase, ``max(#question sentences, #backtrack sentences, 1)``: the verbalizer writes
one reflection (question first) per paragraph, and a model that merges two into one paragraph
is still counted twice when it asks twice or goes back twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from astro_pipeline.cloning.settings import CloningSettings, PhraseBank

FILLERS = frozenset({"but", "wait", "hmm", "so", "yes", "ok", "okay", "well", "now", "alright", "then", "oh", "ah"})
KEY_WORDS = 6
_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+")  # "2.5" and "x.y" stay inside one sentence
_WORD_RE = re.compile(r"[a-z0-9']+")


def normalize(text: str) -> str:
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    t = re.sub(r"\blet\s+us\b", "let's", t)
    return re.sub(r"\bi\s+am\b", "i'm", t)


def phrase_key(phrase: str) -> list[str]:
    """The words a phrase is recognised by (see the module docstring)."""
    head = phrase.split("{ref}")[0] if "{ref}" in phrase else phrase
    if not _WORD_RE.search(normalize(head)):  # "{ref} ..." with nothing before: use the tail
        head = phrase.split("{ref}")[-1]
    words = _WORD_RE.findall(normalize(head))
    while len(words) > 3 and words[0] in FILLERS:
        words = words[1:]
    return words[:KEY_WORDS]


def _key_regex(words: list[str]) -> str:
    body = r"[^a-z0-9']+".join(re.escape(w).replace("'", "'?") for w in words)
    return rf"(?<![a-z0-9']){body}(?![a-z0-9'])"


def _compile(regexes: list[str]) -> re.Pattern[str] | None:
    regexes = [r for r in regexes if r]
    return re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None


@dataclass(frozen=True)
class _Detector:
    question: re.Pattern[str] | None
    backtrack: re.Pattern[str] | None
    other: re.Pattern[str] | None


@lru_cache(maxsize=32)
def _detector(bank: PhraseBank) -> _Detector:
    def keys(phrases: tuple[str, ...]) -> list[str]:
        return sorted({_key_regex(k) for k in (phrase_key(p) for p in phrases) if k}, key=len, reverse=True)

    return _Detector(
        question=_compile(keys(bank.question)),
        backtrack=_compile(keys(bank.go_back) + keys(bank.restart) + list(bank.backtrack_patterns)),
        other=_compile(keys(bank.doubt) + keys(bank.confirmation) + list(bank.reflection_patterns)),
    )


def _sentences_with(pattern: re.Pattern[str] | None, sentences: list[str]) -> int:
    if pattern is None:
        return 0
    return sum(1 for s in sentences if pattern.search(s))


def count_reflections(text: str, settings: CloningSettings | PhraseBank) -> tuple[int, int]:
    """(n_reflections, n_backtracks) found in ``text`` with the phrase bank of ``settings``."""
    bank = settings.phrases if isinstance(settings, CloningSettings) else settings
    det = _detector(bank)
    n_refl = n_back = 0
    for para in _PARAGRAPH_RE.split(text or ""):
        norm = normalize(para)
        sentences = [s for s in _SENTENCE_SPLIT_RE.split(norm) if s.strip()]
        q = _sentences_with(det.question, sentences)
        b = _sentences_with(det.backtrack, sentences)
        any_other = det.other is not None and det.other.search(norm) is not None
        n_back += b
        if q or b or any_other:
            n_refl += max(q, b, 1)
    return n_refl, n_back
