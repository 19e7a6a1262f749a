"""String normalization of extracted answers, and the plain-number reading used by the fast path.

Design choices:

* Only rewrites that cannot change the meaning of a well-formed answer are applied to the text that
  math-verify sees: ``\\dfrac``/``\\tfrac`` -> ``\\frac``, LaTeX spacing (``\\!``, ``\\,``,
  ``\\;``) and ``{,}`` inside numbers, ``\\$`` (currency), and for answers that are a single number:
  thousands separators, leading zeros and a zero fractional part ("2,125" -> "2125",
  "025" -> "25", "5.00" -> "5").
* Thousands separators are removed only when the WHOLE answer is one number with 3-digit groups
  (``-?\\d{1,3}(,\\d{3})+(\\.\\d+)?``), so tuples "(1,2)", intervals and answer lists "1,2,3" are
  untouched. The one ambiguity, "1,234" meaning the list (1, 234), reads as 1234, as math-verify
  itself does.
* Percent signs are NOT stripped from the math-verify input: math-verify already equates "50\\%"
  with both "50" and "0.5", and stripping would lose the second. The fast path mirrors that rule.
* Units: a trailing ``\\text{...}``/``\\mbox{...}`` of letters (e.g. ``10\\text{ cm}``) and degree
  marks (``^\\circ``) are dropped only when what precedes them is a plain number; a text answer like
  ``\\text{Monday}`` stays as it is.
* Digits are ASCII only (``[0-9]``, never ``\\d``, which in Python also matches Arabic-Indic,
  fullwidth and other Unicode digits): lookalike digits are not silently read as numbers here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

# a LaTeX line break "\\\\" is matched first so its second backslash is never read as "\\ " spacing
_SPACING_RE = re.compile(r"(\\\\)|\\[!,;:]|\\ ")
# a thousands-grouped number that is the whole content of a brace group, e.g. \frac{1}{29,322,216}
_BRACED_THOUSANDS_RE = re.compile(r"(?<!\\)\{(-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?)\}")
_THOUSANDS_RE = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_NUMBER_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_UNIT_TAIL_RE = re.compile(r"\s*(?:\\(?:text|textbf|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}|\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree)\s*$")
_PERCENT_TAIL_RE = re.compile(r"\s*(?:\\%|%|\\text\{\s*\\?%\s*\})\s*$")


_GROUPING_RE = re.compile(r"[{}()\[\]]")


def nesting_depth(ans: str) -> int:
    """Deepest nesting of {}, () and [] in ``ans`` (closers without an opener are ignored)."""
    depth = deepest = 0
    for m in _GROUPING_RE.finditer(ans):
        if m.group() in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    return deepest


# markers stand for already-reduced numbers too big to write out: "\x00N<k>\x00" -> digits[k]
_NUM = r"(?:[0-9]+|\x00N[0-9]+\x00)"
# "(N)" -> "N"; braces are left alone because "^{N}" is the exponent syntax the power rules read
_PAREN_NUM_RE = re.compile(r"\(\s*(" + _NUM + r")\s*\)")
_POW_RES = (
    # a^{b} innermost first; a^b with a bare exponent left to right (latex2sympy reads "10^10^10" as
    # (10^10)^10); a**b right to left (Python's and parse_expr's reading)
    re.compile(r"(" + _NUM + r")\s*\^\s*\{\s*(" + _NUM + r")\s*\}"),
    re.compile(r"(" + _NUM + r")\s*\^\s*(" + _NUM + r")"),
    re.compile(r"(" + _NUM + r")\s*\*\*\s*(" + _NUM + r")(?!\s*\*\*)"),
)
_FACT_RE = re.compile(r"(" + _NUM + r")\s*!")


def literal_digits(ans: str, limit: int) -> float:
    """Estimated number of digits of the largest integer that literal powers and factorials in
    ``ans`` build (``9^{9^{9}}``, ``10**10**10``, ``(10^{100})!``), or ``inf`` once over ``limit``.

    Used to refuse predictions that would make sympy build a number with billions of digits; it
    reads only literal integers, so anything symbolic is left to math-verify and the deadline.
    """
    if "^" not in ans and "**" not in ans and "!" not in ans:
        return 0.0
    s = ans.replace("\x00", "")
    big: list[float] = []

    def digits_of(tok: str) -> float:
        if tok.startswith("\x00"):
            return big[int(tok[2:-1])]
        return float(len(tok.lstrip("0")) or 1)

    def value_of(tok: str) -> float:  # only called on tokens of at most 15 digits
        return float(int(tok))

    def put(d: float, exact: int | None) -> str:
        # spaces around the result keep it from fusing with a neighbouring digit ("2^{10}3" is not 10243)
        if exact is not None:
            return f" {exact} "
        big.append(d)
        return f" \x00N{len(big) - 1}\x00 "

    deepest = 0.0
    for _ in range(256):  # enough for any real answer; past it the deadline still bounds the pair
        changed = False
        s2 = _PAREN_NUM_RE.sub(lambda m: m.group(1), s)
        changed |= s2 != s
        s = s2
        for rx in _POW_RES:
            m = rx.search(s)
            if m is None:
                continue
            base, exp = m.group(1), m.group(2)
            db, de = digits_of(base), digits_of(exp)
            if de > 15 or (not base.startswith("\x00") and value_of(base) <= 1 and db <= 1):
                # a huge exponent: huge unless the base is 0 or 1
                d = math.inf if not (db <= 1 and not base.startswith("\x00") and value_of(base) <= 1) else 1.0
            else:
                e = value_of(exp)
                d = 1.0 if e == 0 else e * (db if base.startswith("\x00") else math.log10(max(value_of(base), 1.0)) if db <= 15 else db) + 1
            if d > limit:
                return math.inf
            exact = int(base) ** int(exp) if (d <= 15 and not base.startswith("\x00") and not exp.startswith("\x00")) else None
            s = s[: m.start()] + put(d, exact) + s[m.end() :]
            deepest = max(deepest, d)
            changed = True
            break
        if not changed:
            m = _FACT_RE.search(s)
            if m is not None:
                n_tok = m.group(1)
                dn = digits_of(n_tok)
                if dn > 15:
                    return math.inf
                n = value_of(n_tok)
                d = (math.lgamma(n + 1) / math.log(10)) + 1 if n > 1 else 1.0
                if d > limit:
                    return math.inf
                exact = math.factorial(int(n)) if d <= 15 else None
                s = s[: m.start()] + put(d, exact) + s[m.end() :]
                deepest = max(deepest, d)
                changed = True
        if not changed:
            break
    return deepest


def normalize_answer(ans: str) -> str:
    """The answer text handed to math-verify (see the module docstring for every rewrite)."""
    s = ans.strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$").strip()
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\$", "").replace("{,}", ",")
    if s.startswith("$") and s[1:2].isdigit():  # a bare currency sign: "$18.90"
        s = s[1:]
    if "\\" in s:
        s = _SPACING_RE.sub(lambda m: m.group(1) or "", s)
    # a final answer never ends in punctuation: "30^\circ." and "\text{(E)}," lose it
    s = s.rstrip(" .,;")
    if "," in s and "{" in s:
        s = _BRACED_THOUSANDS_RE.sub(lambda m: "{" + m.group(1).replace(",", "") + "}", s)
    core, percent = _split_percent(s)
    plain = _plain_number_text(core)
    if plain is not None:
        return plain + ("\\%" if percent else "")
    return s


def _split_percent(s: str) -> tuple[str, bool]:
    m = _PERCENT_TAIL_RE.search(s)
    if m and m.start() > 0:
        return s[: m.start()].rstrip(), True
    return s, False


def _strip_units(s: str) -> str:
    # strip unit tails repeatedly ("5^\circ\text{C}"), but only keep the result if a number remains
    t = s
    for _ in range(3):
        m = _UNIT_TAIL_RE.search(t)
        if not m or m.start() == 0:
            break
        t = t[: m.start()].rstrip()
    return t if _NUMBER_RE.fullmatch(t.replace(",", "")) or _THOUSANDS_RE.fullmatch(t) else s


def _plain_number_text(s: str) -> str | None:
    """Canonical text of ``s`` if it is one plain decimal number (units allowed), else ``None``."""
    s = _strip_units(s)
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    if not _NUMBER_RE.fullmatch(s):
        return None
    neg = s.startswith("-")
    body = s[1:] if neg else s
    int_part, _, frac_part = body.partition(".")
    int_part = int_part.lstrip("0") or "0"
    frac_part = frac_part.rstrip("0")
    text = int_part + ("." + frac_part if frac_part else "")
    if neg and text != "0":
        text = "-" + text
    return text


# commands an answer may use and still be decided by exact string identity (see identical_math)
_SAFE_COMMANDS = frozenset(
    """frac sqrt pi cdot times div left right infty circ degree text textbf mathrm mbox operatorname
    le ge leq geq ne neq lt gt pm mp cup cap in notin subset subseteq emptyset varnothing setminus
    sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln exp lg min max gcd lcm
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi rho
    sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega
    begin end pmatrix bmatrix matrix overline bar hat vec dots ldots cdots quad qquad mathbb binom
    dbinom tbinom angle triangle perp parallel approx sim equiv mid""".split()
)
_ANSWER_CHARS_RE = re.compile(r"[A-Za-z0-9 +\-*/^_()\[\]{},.=<>|!'&:;%\\]*")
_COMMAND_RE = re.compile(r"\\([A-Za-z]+|.)")


def identical_math(gold: str, pred: str) -> bool:
    """True if the two normalized answers are the same string and that string is plainly math.

    Identity decides equivalence without sympy, but only for text that is unmistakably a math
    answer: at most 200 ASCII characters of ordinary math syntax, balanced braces, and LaTeX
    commands from ``_SAFE_COMMANDS``. Anything else (``@@``, ``\\input{...}``, odd Unicode) still
    goes to math-verify, so a gold answer that cannot be parsed is still reported as such.
    """
    if gold != pred or not gold or len(gold) > 200 or not _ANSWER_CHARS_RE.fullmatch(gold):
        return False
    depth = 0
    for c in gold.replace("\\{", "").replace("\\}", ""):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
    if depth:
        return False
    for m in _COMMAND_RE.finditer(gold):
        cmd = m.group(1)
        if cmd.isalpha() and cmd not in _SAFE_COMMANDS:
            return False
    return True


@dataclass(frozen=True)
class PlainNumber:
    """A plain decimal number read from an answer; ``percent`` when it carried a percent sign."""

    value: Fraction
    percent: bool
    is_integer_text: bool  # written without a decimal point (exact comparison is then math-verify's too)


def plain_number(normalized: str) -> PlainNumber | None:
    """Read a normalized answer as a plain number (optionally with a percent sign), else ``None``."""
    core, percent = _split_percent(normalized)
    if not _NUMBER_RE.fullmatch(core) or len(core) > 60:
        return None
    return PlainNumber(Fraction(core), percent, "." not in core)


def fast_decision(gold: PlainNumber, pred: PlainNumber) -> bool | None:
    """Decide two plain numbers without sympy, or ``None`` to leave the pair to math-verify.

    Equal values are equivalent. A percentage equals the same number or that number / 100 (as in
    math-verify). Unequal values are judged wrong only for two integers without percent signs,
    where math-verify's comparison is exact too; unequal decimals go to math-verify, whose float
    rounding (``float_rounding`` places) we do not re-implement.
    """
    candidates = {gold.value}
    if gold.percent:
        candidates.add(gold.value / 100)
    if pred.percent:
        candidates |= {c * 100 for c in list(candidates)}
    if pred.value in candidates:
        return True
    if gold.is_integer_text and pred.is_integer_text and not gold.percent and not pred.percent:
        return False
    return None
