"""A tiny document model (headings, paragraphs, tables, code, images) rendered to Markdown and HTML.

Design: the report is built once as blocks and rendered twice, so the Markdown and HTML pages
cannot disagree, and no Markdown-to-HTML library is needed. Text is plain (escaped in HTML,
table pipes escaped in Markdown). Images (PNG or SVG): the Markdown page links them by a path
relative to the page (``plots/x.png``: the folder is meant to be kept together), or, with
``embed=True`` (the copy shown in the Dagster UI, which has no folder to resolve links against),
as ``data:`` URIs; the HTML page always embeds them, so the single .html file is self-contained.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def table(self, columns: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (columns, rows)))

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("image", (path, alt)))

    def code(self, text: str) -> None:
        """Verbatim text (a model's completion): a fenced block in Markdown, <pre> in HTML."""
        self.blocks.append(("code", text))

    # --- Markdown ---------------------------------------------------------------------------
    def to_markdown(self, base: Path, embed: bool = False) -> str:
        out = [f"# {self.title}", ""]
        for kind, payload in self.blocks:
            if kind == "heading":
                level, text = payload  # type: ignore[misc]
                out += ["#" * level + " " + text, ""]
            elif kind == "para":
                out += [str(payload), ""]
            elif kind == "table":
                columns, rows = payload  # type: ignore[misc]
                cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
                out.append("| " + " | ".join(cell(c) for c in columns) + " |")
                out.append("| " + " | ".join("---" for _ in columns) + " |")
                out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
                out.append("")
            elif kind == "image":
                path, alt = payload  # type: ignore[misc]
                target = data_uri(Path(path)) if embed else Path(path).relative_to(base).as_posix()
                out += [f"![{alt}]({target})", ""]
            elif kind == "code":  # a fence inside the text would end the block early
                out += ["```", str(payload).replace("```", "'''"), "```", ""]
        return "\n".join(out).rstrip() + "\n"

    # --- HTML -------------------------------------------------------------------------------
    def to_html(self) -> str:
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        for kind, payload in self.blocks:
            if kind == "heading":
                level, text = payload  # type: ignore[misc]
                body.append(f"<h{level}>{esc(text)}</h{level}>")
            elif kind == "para":
                body.append(f"<p>{esc(str(payload))}</p>")
            elif kind == "table":
                columns, rows = payload  # type: ignore[misc]
                head = "".join(f"<th>{esc(str(c))}</th>" for c in columns)
                lines = ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows]
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>")
            elif kind == "image":
                path, alt = payload  # type: ignore[misc]
                body.append(f'<figure><img alt="{esc(alt)}" src="{data_uri(Path(path))}"/>'
                            f"<figcaption>{esc(alt)}</figcaption></figure>")
            elif kind == "code":
                body.append(f"<pre>{esc(str(payload))}</pre>")
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
            "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}"
            "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%}figcaption{font-size:0.85em;color:#555}"
            "pre{background:#f6f8fa;padding:0.8em;white-space:pre-wrap;font-size:0.85em}"
        )
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{esc(self.title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )


MIME = {".png": "image/png", ".svg": "image/svg+xml"}


def data_uri(path: Path) -> str:
    mime = MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
