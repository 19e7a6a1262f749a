"""Stop strings: detection during decoding and truncation of the final text.

Design: during decoding only a window of the newest tokens is decoded (one batched call per
step), enough tokens to hold the longest stop string plus one more, so the cost per step does not
grow with the generated length. Any token decodes to at least one character except special and
partial-UTF-8 tokens, so a stop string completed by the newest token lies inside that window. The
final text is decoded once and cut at the first stop string, which is not part of the result.
"""

from __future__ import annotations

from collections.abc import Sequence


def window_tokens(stops: Sequence[str]) -> int:
    """How many newest tokens to decode to see any of ``stops`` completed by the newest one."""
    return max((len(s) for s in stops), default=0) + 2


def first_stop(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """(position, stop string) of the earliest stop string in ``text``; ties go to the longer one."""
    best: tuple[int, str] | None = None
    for s in stops:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(s) > len(best[1]))):
            best = (i, s)
    return best


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, str | None]:
    """``text`` up to (without) its first stop string, and which stop string that was."""
    hit = first_stop(text, stops)
    if hit is None:
        return text, None
    return text[: hit[0]], hit[1]
