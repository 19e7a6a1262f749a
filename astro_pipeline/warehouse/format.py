"""Query results for a person at a terminal (``astro sql``): a table that fits the width, or one
record per block when it cannot, or Markdown.

Design choices:

* Width is the terminal's (``shutil.get_terminal_size``, so ``COLUMNS`` decides when output is not
  a terminal), 120 when unknown.
* A table is used if every column fits at a readable width (cells cut to ``MAX_CELL``
  characters, the widest narrowed down to ``MIN_CELL`` to fit). A wider table is either wrapped
  (its columns split into stacked tables that each fit, the first column repeated in each) or
  shown one record per block (``name  value`` lines, psql's expanded mode), whichever takes fewer
  lines: many rows wrap, few long rows become records. What was cut is said in a closing note,
  with the formats that print everything (csv, json).
* At most ``max_rows`` rows are printed; the note says how many there were.
* Floats show 4 significant digits (a standard error is 0.0282, not 0.028197526531817733); lists
  and structs are JSON text; nulls are empty.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import polars as pl

MAX_CELL = 40
MIN_CELL = 12  # narrower than this a column is unreadable: one record per block instead
DEFAULT_ROWS = 40


def terminal_width(default: int = 120) -> int:
    return max(40, shutil.get_terminal_size((default, 24)).columns)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value != value:  # NaN
            return "NaN"
        return f"{value:.0f}" if abs(value) >= 1e5 else f"{value:.4g}"
    if isinstance(value, pl.Series):
        value = value.to_list()
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if ("\n" in text or "\t" in text) else text


def _cut(text: str, width: int) -> tuple[str, bool]:
    if len(text) <= width:
        return text, False
    return text[: max(1, width - 1)] + "…", True


def _rows(df: pl.DataFrame, max_rows: int) -> list[list[str]]:
    return [[_one_line(cell(v)) for v in row] for row in df.head(max_rows).iter_rows()]


FULL_HINT = "--format csv or json prints everything"


def _note(df: pl.DataFrame, max_rows: int, cut: bool, width: int, hint: str = FULL_HINT) -> str:
    parts = []
    if df.height > max_rows:
        parts.append(f"{max_rows} of {df.height} rows shown")
    if cut:
        parts.append(f"values cut to fit {width} columns")
    if not parts:
        return f"({df.height} row{'s' if df.height != 1 else ''})"
    return "(" + "; ".join(parts + [hint]) + ")"


def _widths(df: pl.DataFrame, rows: list[list[str]]) -> list[int]:
    return [min(max([len(name), *(len(r[i]) for r in rows)]), max(MAX_CELL, len(name)))
            for i, name in enumerate(df.columns)]


def _grid(columns: list[str], rows: list[list[str]], widths: list[int]) -> tuple[list[str], bool]:
    lines, cut = [], False
    for cells in [columns, ["-" * w for w in widths], *rows]:
        out = []
        for text, w in zip(cells, widths):
            shown, was_cut = _cut(text, w)
            cut |= was_cut
            out.append(shown.ljust(w))
        lines.append("  ".join(out).rstrip())
    return lines, cut


def as_table(df: pl.DataFrame, width: int, max_rows: int = DEFAULT_ROWS, hint: str = FULL_HINT) -> str | None:
    """Aligned columns within ``width``, or None when the columns cannot fit."""
    rows = _rows(df, max_rows)
    widths = _widths(df, rows)
    while sum(widths) + 2 * (len(widths) - 1) > width:  # narrow the widest column, down to MIN_CELL
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= MIN_CELL:
            return None
        widths[widest] -= 1
    lines, cut = _grid(df.columns, rows, widths)
    return "\n".join(lines + [_note(df, max_rows, cut, width, hint)])


def as_wrapped(df: pl.DataFrame, width: int, max_rows: int = DEFAULT_ROWS, hint: str = FULL_HINT) -> str:
    """The columns split into stacked tables that each fit ``width``; the first column is repeated
    in each part (it usually names the row) when it is narrow."""
    rows = _rows(df, max_rows)
    widths = [min(w, width) for w in _widths(df, rows)]
    lead = [0] if len(df.columns) > 1 and widths[0] <= 24 else []
    groups, current = [], list(lead)
    for i in range(len(lead), len(df.columns)):
        used = sum(widths[j] + 2 for j in current)
        if current != lead and used + widths[i] > width:
            groups.append(current)
            current = list(lead)
        current.append(i)
    groups.append(current)
    lines, cut = [], False
    for n, group in enumerate(groups):
        if n:
            lines.append("")
        part, was_cut = _grid([df.columns[i] for i in group], [[r[i] for i in group] for r in rows],
                              [widths[i] for i in group])
        lines += part
        cut |= was_cut
    return "\n".join(lines + [_note(df, max_rows, cut, width, hint)])


def as_records(df: pl.DataFrame, width: int, max_rows: int = DEFAULT_ROWS, hint: str = FULL_HINT) -> str:
    """One block per row: ``name  value`` lines, each within ``width``."""
    key_w = max((len(c) for c in df.columns), default=0)
    room = max(10, width - key_w - 2)
    lines, cut = [], False
    for n, row in enumerate(_rows(df, max_rows), start=1):
        lines.append(f"-[ row {n} ]" + "-" * max(0, min(width, 40) - len(f"-[ row {n} ]")))
        for name, text in zip(df.columns, row):
            shown, was_cut = _cut(text, room)
            cut |= was_cut
            lines.append(f"{name.ljust(key_w)}  {shown}".rstrip())
    return "\n".join(lines + [_note(df, max_rows, cut, width, hint)])


def as_markdown(df: pl.DataFrame, max_rows: int | None = None) -> str:
    """A GitHub Markdown table with every value in full (pipes escaped, line breaks as spaces)."""
    rows = _rows(df, df.height if max_rows is None else max_rows)
    esc = lambda t: t.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in df.columns) + " |", "|" + " --- |" * len(df.columns)]
    lines += ["| " + " | ".join(esc(t) for t in r) + " |" for r in rows]
    return "\n".join(lines)


def render(df: pl.DataFrame, fmt: str = "table", width: int | None = None, max_rows: int = DEFAULT_ROWS,
           hint: str = FULL_HINT) -> str:
    """``table`` (wrapped or one record per block when too wide), ``records`` or ``markdown``."""
    width = width or terminal_width()
    if df.width == 0:
        return "(no columns)"
    if fmt == "markdown":
        return as_markdown(df)
    if fmt == "table":
        table = as_table(df, width, max_rows, hint)
        if table is not None:
            return table
        wrapped, records = as_wrapped(df, width, max_rows, hint), as_records(df, width, max_rows, hint)
        return wrapped if wrapped.count("\n") <= records.count("\n") else records
    return as_records(df, width, max_rows, hint)
