"""Write ``hostile_responses.jsonl``: responses built to crash, hang, exhaust or exploit a verifier.

Run ``python astro_pipeline_tests/data/make_hostile_responses.py`` to regenerate (deterministic).
Each line: ``{"id", "kind", "gold", "response"}``. Payloads that would run code all try to create
``SENTINEL``; ``test_verify_hostile.py`` checks that it never appears.

Kinds: nesting (thousands of nested or unbalanced braces), tower (power towers, factorials and
other values sympy cannot build), huge (1 MB responses), code (Python/shell payloads), latex
(``\\input``, ``\\def``, ``\\write18`` ...), unicode (control/bidi/zero-width characters,
lookalike digits, lone surrogates), nul (null bytes), unbalanced (broken delimiters), numeric
(oversized numbers, division by zero, nan/inf), regex (inputs aimed at backtracking regexes).
"""

from __future__ import annotations

import json
from pathlib import Path

SENTINEL = "/tmp/astro_verify_pwned_sentinel"
OUT = Path(__file__).resolve().parent / "hostile_responses.jsonl"


def _code_payloads() -> list[str]:
    touch = f"touch {SENTINEL}"
    return [
        f"__import__('os').system('{touch}')",
        f"__import__(\"os\").system(\"{touch}\")",
        f"exec(\"import os; os.system('{touch}')\")",
        f"eval(\"__import__('os').system('{touch}')\")",
        f"(lambda: __import__('subprocess').run(['touch', '{SENTINEL}']))()",
        f"().__class__.__bases__[0].__subclasses__()[0]('{touch}')",
        f"open('{SENTINEL}', 'w').write('x')",
        f"Symbol('x').__class__.__init__.__globals__['os'].system('{touch}')",
        f"$({touch})",
        f"`{touch}`",
        f"; {touch}; echo ",
        f"| {touch}",
        f"&& {touch}",
        "$(rm -rf ~)",
        "`rm -rf ~`",
        f"{{{{ ''.__class__.__mro__[1].__subclasses__() }}}} {touch}",
        f"__import__('pickle').loads(b'cos\\nsystem\\n(S\"{touch}\"\\ntR.')",
        f"import os\nos.system('{touch}')",
        f"1 if __import__('os').system('{touch}') else 2",
        f"x=__import__('os').system('{touch}')",
    ]


def _latex_payloads() -> list[str]:
    return [
        "\\input{/etc/passwd}",
        "\\include{/etc/shadow}",
        f"\\immediate\\write18{{touch {SENTINEL}}}",
        f"\\write18{{touch {SENTINEL}}}",
        "\\def\\x{\\x\\x}\\x",
        "\\def\\a{\\a}\\a 5",
        "\\newcommand{\\b}{\\b\\b}\\b",
        "\\renewcommand{\\frac}{\\input{/etc/passwd}}\\frac{1}{2}",
        "\\catcode`\\{=12 {1}",
        "\\csname input\\endcsname{/etc/passwd}",
        "\\verb|\\input{/etc/passwd}|",
        "\\openin5=/etc/passwd \\read5 to\\x \\x",
        "\\usepackage{shellesc}\\ShellEscape{rm -rf ~}",
        "\\begin{verbatim}\\input{/etc/passwd}\\end{verbatim}",
        "\\href{file:///etc/passwd}{3}",
        "\\loop\\iftrue\\repeat",
    ]


def _towers() -> list[str]:
    return [
        "10^10^10^10",
        "10^{10^{10^{10}}}",
        "9^{9^{9^{9}}}",
        "9^{9^{9}}",
        "2^{2^{2^{2^{2^{2}}}}}",
        "(10^{10})^{(10^{10})}",
        "2^{10^{10}}",
        "10^{10^{100}}",
        "(10^{100})!",
        "10!!!!!!",
        "\\binom{10^{100}}{10^{50}}",
        "\\sum_{k=1}^{10^{100}} k^{k}",
        "\\prod_{k=1}^{10^{12}} k",
        "\\int_0^{\\infty} e^{-x^{9^{9}}} dx",
        "9**9**9**9",
        "10**10**10**10",
        "((((2^2)^2)^2)^2)^{2^{2^{2^{2}}}}",
        "\\sqrt[10^{10}]{10^{10^{10}}}",
        "e^{e^{e^{e^{e^{e}}}}}",
        "\\Gamma(10^{20})",
        "1e99999999",
        "\\lim_{n\\to\\infty} n^{n^{n}}",
    ]


def _lookalikes() -> list[tuple[str, str]]:
    # (gold, answer written with non-ASCII digits)
    return [
        ("25", "\u0662\u0665"),  # Arabic-Indic
        ("25", "\u06f2\u06f5"),  # Extended Arabic-Indic (Persian)
        ("25", "\uff12\uff15"),  # fullwidth
        ("25", "\U0001d7d0\U0001d7d3"),  # mathematical bold
        ("25", "\U0001d7da\U0001d7dd"),  # mathematical double-struck
        ("25", "\u0968\u096b"),  # Devanagari
        ("25", "\u00b2\u2075"),  # superscripts
        ("25", "\u2461\u2464"),  # circled
        ("12", "\u216b"),  # roman numeral twelve
        ("1", "l"),
        ("0", "O"),
        ("0", "\u041e"),  # Cyrillic capital O
        ("1", "\u0406"),  # Cyrillic capital I
        ("1/2", "\u00bd"),  # vulgar fraction
        ("-5", "\u22125"),  # minus sign U+2212
        ("-5", "\u20135"),  # en dash
        ("3", "\u0033\u0301"),  # 3 + combining acute
        ("7", "\u0037\ufe0f\u20e3"),  # keycap seven
    ]


def _odd_unicode() -> list[str]:
    return [
        "\u202e52\u202c",  # right-to-left override
        "2\u200b5",  # zero-width space
        "2\u200d5",  # zero-width joiner
        "\ufeff25",  # byte order mark
        "25\u0000",
        "\U0001f4a9",
        "\u0301" * 1000,  # combining marks only
        "Z\u0351\u0352\u0357\u0358\u035b\u0350\u0351" * 300,  # zalgo
        "\ud800",  # lone high surrogate (written as a JSON escape)
        "\udfff25",  # lone low surrogate
        "\x1b[31m25\x1b[0m",  # terminal escape codes
        "\r\n25\r",
        "\u2028 25 \u2029",
        "\uffff\ufffe",
    ]


def _rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def add(kind: str, gold: str, response: str) -> None:
        rows.append({"id": f"{kind}-{len(rows):03d}", "kind": kind, "gold": gold, "response": response})

    # deep nesting, balanced and not
    for n in (100, 1000, 5000):
        add("nesting", "1", "\\boxed{" + "{" * n + "1" + "}" * n + "}")
        add("nesting", "1", "\\boxed{" + "{" * n + "1")
        add("nesting", "1", "}" * n + "\\boxed{1}")
        add("nesting", "1", "\\boxed{" * n + "1" + "}" * n)
        add("nesting", "1", "\\boxed{" + "\\frac{1}{" * n + "1" + "}" * n + "}")
        add("nesting", "1", "\\boxed{" + "\\sqrt{" * n + "1" + "}" * n + "}")
        add("nesting", "\\frac{1}{2}", "\\boxed{" + "(" * n + "1" + ")" * n + "}")
        add("nesting", "1", "The answer is " + "(" * n + "1" + ")" * n)
    add("nesting", "1", "\\boxed{" + "{" * 20_000 + "1" + "}" * 20_000 + "}")
    add("nesting", "1", "\\boxed{" * 20_000 + "1")
    add("nesting", "1", "\\boxed{" + "\\left(" * 3000 + "1" + "\\right)" * 3000 + "}")
    add("nesting", "1", "\\boxed{" + "[" * 3000 + "1" + "]" * 3000 + "}")
    add("nesting", "1", "\\boxed{" + "\\{" * 3000 + "1" + "\\}" * 3000 + "}")

    # towers and other unbuildable values, boxed and in the fallbacks, against a few golds
    for t in _towers():
        add("tower", "1", f"So we get $\\boxed{{{t}}}$.")
        add("tower", t if len(t) < 40 else "1", f"\\boxed{{{t}}}")
        add("tower", "10^{10}", f"The answer is {t}")
        add("tower", "2", f"#### {t}")

    # 1 MB responses: a wall of braces, and a megabyte of prose around many boxes
    add("huge", "1", "\\boxed{" + "{" * 500_000 + "1" + "}" * 500_000 + "}")
    add("huge", "7", ("lorem ipsum \\boxed{3} " * 47_000)[:1_000_000] + " \\boxed{7}")

    # code: in a box, as the phrase fallback, as a #### line, and as the gold itself
    for p in _code_payloads():
        add("code", "2", f"\\boxed{{{p}}}")
        add("code", "2", f"The answer is {p}")
        add("code", "2", f"#### {p}")
        add("code", p, "\\boxed{2}")

    for p in _latex_payloads():
        add("latex", "5", f"\\boxed{{{p}}}")
        add("latex", p, f"$\\boxed{{{p}}}$")

    for gold, ans in _lookalikes():
        add("unicode", gold, f"\\boxed{{{ans}}}")
        add("unicode", gold, f"The answer is {ans}.")
    for u in _odd_unicode():
        add("unicode", "25", f"\\boxed{{{u}}}")
        add("unicode", u, "\\boxed{25}")

    nul = "\x00"
    add("nul", "1", f"\\boxed{{1{nul}}}")
    add("nul", "1", nul * 10_000)
    add("nul", f"1{nul}", "\\boxed{1}")
    add("nul", "1", f"\\boxed{{{nul}}}")
    add("nul", "1", f"\\box{nul}ed{{1}}")
    add("nul", "1", f"#### {nul}1")

    for r in [
        "\\boxed{1",
        "\\boxed{{{",
        "}}}\\boxed{2}",
        "\\boxed{1}}}}}",
        "\\boxed{\\left( 1, 2 \\right}",
        "\\boxed{\\frac{1}{}",
        "\\boxed{\\frac{1}}",
        "\\boxed{$$$$$}",
        "\\boxed{" + "\\" * 1001 + "}",
        "\\boxed{\\}",
        "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3}",
        "\\boxed{\\end{array}}",
        "\\boxed{^^^^}",
        "\\boxed{_{_{_{_{}}}}}",
        "\\boxed",
        "\\boxed{}",
        "\\fbox{",
        "\\boxed \\boxed \\boxed",
        "$\\boxed{2$}",
        "\\boxed{\\text{}",
    ]:
        add("unbalanced", "2", r)

    for ans in [
        "1" * 1999,
        "1" * 5000,
        "9" * 4400,
        "0." + "3" * 1900,
        "1e400",
        "-1e-400",
        "nan",
        "NaN",
        "inf",
        "-\\infty",
        "\\infty - \\infty",
        "0/0",
        "1/0",
        "\\frac{1}{0}",
        "\\frac{0}{0}",
        "\\sqrt{-1}",
        "\\log(0)",
        "\\begin{pmatrix}" + " \\\\ ".join([" & ".join(["1"] * 60)] * 30) + "\\end{pmatrix}",
        "\\{" + ",".join(str(i) for i in range(400)) + "\\}",
        "x^{" + "x^{" * 200 + "}" * 200 + "}",
    ]:
        add("numeric", "1", f"\\boxed{{{ans}}}")

    for r in [
        "#### 1" + " " * 100_000 + "x",
        "the answer is " * 5_000,
        "answer:" * 20_000,
        "final answer is " + "1 " * 30_000,
        "$" * 100_000,
        "$$" + "\\boxed{" * 1000 + "$$",
        "\\boxed{1}" * 10_000,
        "\\boxed" + " " * 100_000 + "{2}",
        "\\(" * 20_000,
        "\\[" + "a" * 30_000,
    ]:
        add("regex", "2", r)
    return rows


def main() -> None:
    rows = _rows()
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            try:
                line = json.dumps(row, ensure_ascii=False)
                line.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: only valid as JSON escapes
                line = json.dumps(row, ensure_ascii=True)
            f.write(line + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
