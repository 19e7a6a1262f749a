"""The verifier worker process: parse with math-verify and compare, gold first.

Design choices:

* Runs in a child process managed by ``BatchVerifier``; the parent enforces the per-pair deadline by
  killing this process, so math-verify's own signal-based timeouts are switched off here
  (``parsing_timeout=None``, ``timeout_seconds=None``).
* The answers arriving here were already extracted and normalized by the parent, and are at most
  ``max_answer_chars`` long. Each is wrapped in ``\\boxed{...}`` and parsed with
  ``LatexExtractionConfig(boxed_match_priority=0)`` then ``ExprExtractionConfig()``.
* Gold is parsed first and must yield at least one sympy object; otherwise the verdict is
  ``unparsable_gold`` (never ``correct``, even if the strings match; the parent's identity fast
  path only takes identical strings of plain math syntax, so a gold like "@@" always gets here). ``verify(gold, pred)`` is called
  in that order because math-verify is not symmetric (e.g. gold "(1,2)" vs pred "1<x<2").
* Safety of math-verify's ``ExprExtractionConfig`` path: it calls sympy's ``parse_expr`` (which
  ``eval``s), but only on the regex group ``expr`` of ``math_verify.parser.lazy_expr_regex``, whose
  character class admits nothing but digits, ``.``, whitespace and ``+ - * × / ^ ( ) ÷``. With no
  letters, underscores, quotes or brackets no name can be referenced, so that ``eval`` can only
  build numbers and arithmetic on them; the worst it can do is a huge power, which is what the
  deadline and the address-space limit are for. The LaTeX path uses latex2sympy's ANTLR parser and
  evaluates nothing as code. No code in this package calls eval/exec/sympify/parse_expr itself.
* The prediction is parsed with ``extraction_mode="first_match"``: the WHOLE extracted answer must
  parse. math-verify's default ("any_match") falls back to any number inside the text, which
  judged ``\\boxed{1 if __import__('os')... else 2}`` and ``\\boxed{\\left( 1, 2 \\right}``
  equal to 2.
* The gold answer is trusted data, so it gets more attempts (``_GOLD_ATTEMPTS``): first_match; then
  with math-verify's unit stripping off (it eats unit-like letters: "a + b + c" -> "a +"); then
  any_match (e.g. "\\approx 8.24 \\text{ mph}"). The prediction is parsed with whichever
  extraction config parsed the gold, so both sides see the same normalization.
* Gold parses are cached (RL groups verify many responses against one gold answer).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from sympy import Basic
from sympy.matrices import MatrixBase

_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
# math-verify's unit stripping eats single letters that look like units ("a + b + c" -> "a +",
# "\sin^2 t" -> "\sin^2"); a gold answer it cannot parse is retried once without it, and the
# prediction is then parsed the same way, so both sides always see the same normalization.
_CONFIG_NO_UNITS = (
    LatexExtractionConfig(
        boxed_match_priority=0,
        normalization_config=NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
        ),
    ),
    ExprExtractionConfig(),
)

# verdict names as plain strings: the parent maps them onto its Verdict enum
CORRECT, WRONG, UNPARSABLE_GOLD = "correct", "wrong", "unparsable_gold"


def _quiet() -> None:
    # math-verify warns once that its timeouts are off (we enforce ours) and logs parse failures
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    import math_verify.grader as grader
    import math_verify.parser as parser

    grader.TIMEOUT_WARNING_SHOWN = True
    parser.TIMEOUT_WARNING_SHOWN = True


def _has_sympy(parsed: list[Any]) -> bool:
    return any(isinstance(x, (Basic, MatrixBase)) for x in parsed)


# (extraction config, extraction mode) tried in order for the gold answer; the first that yields an
# expression wins and the prediction is then parsed with the same config (always "first_match")
_GOLD_ATTEMPTS = (
    (_CONFIG, "first_match"),
    (_CONFIG_NO_UNITS, "first_match"),
    (_CONFIG, "any_match"),
)


@lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(parsed gold, the extraction config that parsed it); the parse has no expression if none did."""
    parsed: list[Any] = []
    for config, mode in _GOLD_ATTEMPTS:
        parsed = parse("\\boxed{" + gold + "}", extraction_config=config, extraction_mode=mode, parsing_timeout=None)
        if _has_sympy(parsed):
            return tuple(parsed), config
    return tuple(parsed), _CONFIG


def judge(gold: str, pred: str, float_rounding: int = 6, numeric_precision: int = 15, strict: bool = True) -> tuple[str, str]:
    """Verdict name and reason for normalized gold and predicted answers (gold first)."""
    try:
        gold_tuple, config = _parse_gold(gold)
        gold_parsed = list(gold_tuple)
    except Exception as exc:  # math-verify swallows most errors itself; be explicit for the rest
        return UNPARSABLE_GOLD, f"parsing the gold answer failed: {type(exc).__name__}"
    if not _has_sympy(gold_parsed):
        return UNPARSABLE_GOLD, "math-verify found no expression in the gold answer"
    pred_parsed = parse("\\boxed{" + pred + "}", extraction_config=config, extraction_mode="first_match", parsing_timeout=None)
    if not pred_parsed:
        return WRONG, "math-verify could not read the predicted answer"
    ok = verify(
        gold_parsed,
        pred_parsed,
        float_rounding=float_rounding,
        numeric_precision=numeric_precision,
        strict=strict,
        timeout_seconds=None,
    )
    if ok:
        return CORRECT, "math-verify: equivalent to the gold answer"
    return WRONG, "math-verify: not equivalent to the gold answer"


_WARM = False


# answer forms that cover the LaTeX grammar and sympy paths MATH-style answers use; the warm-up
# compares each with its neighbour (a wrong pair: the expensive path) and with itself
_WARM_FORMS = (
    "\\frac{1}{2}",
    "0.5",
    "(1,2)",
    "1<x<2",
    "[-2, 7)",
    "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
    "\\sqrt{3}",
    "2\\sqrt{2}+1",
    "\\text{(A)}",
    "\\text{Monday}",
    "50\\%",
    "\\{1,2\\}",
    "x^2+2x+1",
    "\\frac{\\pi}{3}",
    "3+4i",
    "y=2x-3",
    "\\left( 3, \\frac{\\pi}{2} \\right)",
    "(-\\infty, 0] \\cup [1, \\infty)",
    "10^{5}",
    "\\dfrac{14}{3}",
    "\\sin^2 t",
    "a + b + c",
    "4210_{5}",
    "x \\in [-2,7]",
    "1, 2, 3",
    "\\log_2 5",
    "30^\\circ",
    "nan",  # each of these pulls in a sympy code path that costs ~0.1-0.5 s the first time
    "\\sqrt{-1}",
    "1e400",
    "\\log(0)",
)


def warm_up() -> None:
    """Run typical comparisons once: compiles math-verify's large regexes, fills ANTLR's parser
    caches and imports sympy's lazily loaded paths, so a freshly forked worker does not spend its
    first pairs' deadlines on that (and runs at its steady-state speed from the start)."""
    global _WARM
    if _WARM:
        return
    _quiet()
    forms = _WARM_FORMS
    for i, gold in enumerate(forms):
        try:
            judge(gold, forms[(i + 1) % len(forms)])
            judge(gold, gold)
        except Exception:  # a warm-up failure must never stop a worker from serving
            pass
    _parse_gold.cache_clear()
    _WARM = True


def _limit_memory(mb: int) -> None:
    if mb <= 0:
        return
    try:
        import resource

        limit = mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not available on this platform: the deadline still holds
        pass


def worker_main(conn: Any, options: dict[str, Any]) -> None:
    """Serve chunks until the parent sends ``None`` or goes away.

    Protocol: the parent sends a list of ``(index, gold, pred)``; for each pair, in order, this
    process sends back ``(index, verdict, reason)`` as soon as it is decided, so the parent can
    time every pair on its own.
    """
    warm_up()  # a no-op in a worker forked from the warmed forkserver (see _preload)
    _limit_memory(int(options.get("worker_memory_mb", 0)))
    kwargs = {k: options[k] for k in ("float_rounding", "numeric_precision", "strict") if k in options}
    conn.send("ready")
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            break
        if chunk is None:
            break
        for index, gold, pred in chunk:
            try:
                verdict, reason = judge(gold, pred, **kwargs)
            except MemoryError:
                verdict, reason = "timeout", f"worker memory limit ({options.get('worker_memory_mb')} MiB) exceeded"
            except RecursionError:
                verdict, reason = WRONG, "expression too deeply nested to compare"
            except Exception as exc:  # math-verify normally swallows errors; anything left is a non-match
                verdict, reason = WRONG, f"comparison failed: {type(exc).__name__}"
            try:
                conn.send((index, verdict, reason))
            except (BrokenPipeError, OSError):
                os._exit(0)
    conn.close()
