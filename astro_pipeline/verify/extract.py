"""Final-answer extraction from a model response or a reference solution.

Design choices:

* ``last_boxed_content`` is one left-to-right pass over the backslashes and braces of the text
  with a stack of open groups (no backtracking regex, no rescans): linear in the input length, so
  hostile inputs (thousands of nested braces, megabyte strings) cost one pass and cannot hang.
* The LAST box wins: the complete ``\\boxed{...}``/``\\fbox{...}`` that closes last (for siblings the
  later one, for ``\\boxed{\\boxed{3}+1}`` the outer one). Solutions often box intermediate results
  or a first guess before the final answer.
* Braces are matched; escaped braces ``\\{``/``\\}`` do not count; a stray ``}`` is ignored.
* An unclosed box (``\\boxed{12`` with no closing brace, e.g. a truncated completion) is never an
  answer; an earlier complete box still is.
* The brace-less form ``\\boxed 2`` takes the token after the space up to the next ``$`` or
  whitespace (how the MATH dataset's own grader reads it). ``\\boxedx`` is another command.

Fallback order of ``extract_answer`` (first hit wins):

1. the last box as above, if its content is not blank (``last_boxed_content``);
2. the last GSM8K-style ``#### X`` line with a non-blank X (text after ``####`` to the end of
   that line, stripped);
3. the last "final answer is X" / "the answer is X" / "answer: X" phrase (case-insensitive; X is
   the rest of that line, at most 500 characters; one trailing period and surrounding ``$`` are
   stripped);
4. nothing: ``None`` (the caller reports verdict ``no_answer``).

No fallback guesses "the last number in the text": that rewards rambling responses that happen to
mention the right number and is a known source of false positives in peers' graders.

``gold_answer`` reads a reference: its last box, else its last ``####`` line, else the whole text
(never the phrase fallback: a bare gold answer is taken as it is).
"""

from __future__ import annotations

import re

# one pass over the characters that matter: a backslash (command or escape) or a brace
_SPECIAL_RE = re.compile(r"[\\{}]")
_BOX_NAME_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE_TOKEN_RE = re.compile(r" +([^\s$]+)")


def _box_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every complete box content, in order of the box's closing position.

    Single left-to-right pass with a stack of open braces, so the cost is linear in the length of
    the text whatever the nesting (a per-box rescan would be quadratic on ``\\boxed{\\boxed{...``).
    """
    spans: list[tuple[int, int]] = []
    stack: list[int] = []  # for each open brace: content start if it opens a box, else -1
    n = len(text)
    i = 0
    while True:
        m = _SPECIAL_RE.search(text, i)
        if m is None:
            break
        k = m.start()
        c = text[k]
        if c == "\\":
            name = _BOX_NAME_RE.match(text, k)
            if name is None:
                i = k + 2  # an escaped character (\\{, \\}, \\\\) never opens or closes a group
                continue
            j = name.end()
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "{":
                stack.append(j + 1)  # this brace opens a box
                i = j + 1
                continue
            # brace-less form "\\boxed 2": the token after the space, up to "$" or whitespace
            bare = _BARE_TOKEN_RE.match(text, name.end())
            if bare is not None:
                spans.append((bare.start(1), bare.end(1)))
                i = bare.end()
            else:
                i = name.end()
            continue
        if c == "{":
            stack.append(-1)
        elif stack:  # "}" closing a group; a stray "}" is ignored
            opened = stack.pop()
            if opened != -1:
                spans.append((opened, k))
        i = k + 1
    return spans


def last_boxed_content(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}``/``\\fbox{...}`` (or ``\\boxed X``) in ``text``.

    Braces are matched (nested braces stay inside the content); escaped braces ``\\{``/``\\}``
    do not count. "Last" means the complete box that closes last, so for siblings the later one
    and for ``\\boxed{\\boxed{3}+1}`` the outer one. Returns ``None`` when there is no complete box.
    """
    if not text or ("\\boxed" not in text and "\\fbox" not in text):
        return None
    spans = _box_spans(text)
    if not spans:
        return None
    start, end = spans[-1]
    return text[start:end]


# no lazy group followed by optional spaces here: "(.+?)[ \t]*$" is quadratic on long runs of spaces
_HASH_RE = re.compile(r"^[ \t]*####([^\n]*)$", re.MULTILINE)
_PHRASE_RE = re.compile(
    r"(?:final answer is|the answer is|answer\s*:)[ \t]*:?[ \t]*([^\n]{1,500})",
    re.IGNORECASE,
)


def _clean_phrase(ans: str) -> str:
    ans = ans.strip()
    # one sentence-ending period ("... is 5.") is punctuation, not part of the answer
    if ans.endswith("."):
        ans = ans[:-1].rstrip()
    if len(ans) >= 2 and ans.startswith("$") and ans.endswith("$"):
        ans = ans.strip("$").strip()
    return ans


def gold_answer(gold: str) -> str:
    """The answer in a gold text: its last box, else its last ``#### X`` line, else the whole text.

    Gold fields are usually the bare answer ("\\frac{1}{2}"); some datasets give a full solution
    (MATH ``solution``, GSM8K ``answer`` with a ``####`` line). The "the answer is" phrase is not
    used for gold: a bare answer text containing those words must stay as it is.
    """
    if not gold:
        return ""
    boxed = last_boxed_content(gold)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    hashes = [h.strip() for h in _HASH_RE.findall(gold)]
    hashes = [h for h in hashes if h]
    if hashes:
        return hashes[-1]
    return gold.strip()


def extract_answer(text: str) -> tuple[str | None, str]:
    """The final answer of ``text`` and how it was found: ``(answer, method)``.

    ``method`` is one of ``"boxed"``, ``"hash"``, ``"phrase"``, ``"none"`` (see the module docstring
    for the order).
    """
    if not text:
        return None, "none"
    boxed = last_boxed_content(text)
    if boxed is not None and boxed.strip():
        return boxed.strip(), "boxed"
    hashes = [h.strip() for h in _HASH_RE.findall(text)]
    hashes = [h for h in hashes if h]
    if hashes:
        return hashes[-1], "hash"
    phrases = _PHRASE_RE.findall(text)
    if phrases:
        ans = _clean_phrase(phrases[-1])
        if ans:
            return ans, "phrase"
    return None, "none"
