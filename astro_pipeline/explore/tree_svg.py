"""A tree view drawn as SVG: one row per node, the trace over it, backtracks as arrows.

Design choices:

* Drawn here as plain SVG text (no graph-layout library): one row per node in depth-first order,
  indented by depth, like a file tree, so step texts stay horizontal and readable however wide the
  tree branches. Monospace text, so widths are known without measuring fonts.
* Colours: correct terminals green, wrong terminals red, other steps hollow; each label also says
  "correct"/"wrong", so the picture reads without colour too.
* The trace: its nodes carry their visiting order (blue badges), tree edges it walks are thick
  blue, and every backtrack is a dashed orange arrow from the wrong terminal it leaves to the node
  it returns to, drawn in a lane right of the text.
* ``data_uri`` makes the picture embeddable in Markdown (Dagster metadata, the report).
"""

from __future__ import annotations

import base64
from html import escape

from astro_pipeline.explore.tree_view import TreeView, ViewNode

ROW, INDENT, LEFT, TOP = 22, 20, 14, 58
FONT, CHAR_W = 12, 7.25  # monospace px: width of one character at this size
WIDTH = 1000
LANE_STEP = 14
COLORS = {"correct": "#15803d", "wrong": "#b91c1c", "step": "#ffffff", "edge": "#9ca3af", "trace": "#2563eb",
          "backtrack": "#ea580c", "muted": "#6b7280"}


def _label(node: ViewNode) -> str:
    if node.parent_id is None:
        return "problem"
    step = " ".join(node.step.split()) or "(empty step)"
    if node.is_terminal:
        return f"{node.kind} {node.answer if node.answer is not None else '(no answer)'} | {step}"
    return step


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(1, chars - 1)] + "…"


def tree_svg(view: TreeView) -> str:
    rows = {n.node_id: i for i, n in enumerate(view.nodes)}
    y = {n.node_id: TOP + ROW * i + ROW // 2 for i, n in enumerate(view.nodes)}
    x = {n.node_id: LEFT + INDENT * n.depth for n in view.nodes}
    lane0 = WIDTH - 16 - LANE_STEP * max(1, len(view.backtracks))
    height = TOP + ROW * len(view.nodes) + 12
    walked = {(a, b) for a, b in _trace_edges(view)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans Mono, monospace" font-size="{FONT}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{COLORS["backtrack"]}"/></marker></defs>',
           f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>']
    title = f"{view.problem_id} ({view.dataset}): {view.n_total} nodes"
    if len(view.nodes) < view.n_total:
        title += f", {len(view.nodes)} shown"
    if view.trace_id:
        title += f"; trace '{view.trace_kind}' with {len(view.backtracks)} backtrack(s)"
    if view.notes:  # what the search recorded about the whole tree (iterations, why it stopped)
        title += " (" + ", ".join(f"{k} {v}" for k, v in view.notes.items()) + ")"
    out.append(f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(_fit(title, 130))}</text>')
    out.append(_legend(LEFT, 40))
    for node in view.nodes:  # edges first, so markers sit on top
        if node.parent_id is None or node.parent_id not in y:
            continue
        px, py = x[node.parent_id], y[node.parent_id]
        on_trace = (node.parent_id, node.node_id) in walked
        color, w = (COLORS["trace"], 2.5) if on_trace else (COLORS["edge"], 1)
        out.append(f'<path d="M{px},{py} V{y[node.node_id]} H{x[node.node_id]}" fill="none" '
                   f'stroke="{color}" stroke-width="{w}"/>')
    ends = {}
    for node in view.nodes:
        parts, ends[node.node_id] = _node(node, x[node.node_id], y[node.node_id], lane0)
        out += parts
    for bt in view.backtracks:
        if bt.source in rows and bt.target in rows:
            lane = lane0 + LANE_STEP * (bt.index - 1) + 8
            out.append(_arrow(bt.index, (ends[bt.source], y[bt.source]), (ends[bt.target], y[bt.target]), lane))
    out.append("</svg>")
    return "\n".join(out)


def _trace_edges(view: TreeView) -> list[tuple[int, int]]:
    on = {n.node_id for n in view.nodes if n.trace_pos is not None}
    return [(n.parent_id, n.node_id) for n in view.nodes if n.node_id in on and n.parent_id in on]


def _node(node: ViewNode, nx: int, ny: int, lane0: int) -> tuple[list[str], float]:
    """The node's marker, badge and text, and the x where its text ends (backtracks start there)."""
    kind = "step" if node.parent_id is None else node.kind
    fill = "#111827" if node.parent_id is None else COLORS[kind]
    stroke = "#111827" if kind == "step" else fill
    parts = [f'<circle cx="{nx}" cy="{ny}" r="5" fill="{fill}" stroke="{stroke}" stroke-width="1.5">'
             f'<title>node {node.node_id}</title></circle>']
    tx = nx + 10
    if node.trace_pos is not None:
        label = str(node.trace_pos)
        bw = 8 + CHAR_W * len(label)
        parts.append(f'<rect x="{tx}" y="{ny - 8}" width="{bw:.0f}" height="16" rx="7" fill="{COLORS["trace"]}"/>'
                     f'<text x="{tx + 4}" y="{ny + 4}" fill="#ffffff">{label}</text>')
        tx += bw + 5
    stats = " ".join(node.numbers())
    room = int((lane0 - 8 - tx) / CHAR_W) - len(stats) - 2
    color = COLORS[kind] if kind != "step" else "#111827"
    label = _fit(_label(node), room)
    parts.append(f'<text x="{tx}" y="{ny + 4}"><tspan fill="{color}">{escape(label)}</tspan>'
                 f'<tspan fill="{COLORS["muted"]}">  {escape(stats)}</tspan></text>')
    return parts, tx + CHAR_W * (len(label) + 2 + len(stats)) + 6


def _arrow(index: int, source: tuple[float, int], target: tuple[float, int], lane_x: float) -> str:
    """From the end of the wrong terminal's text out to its lane, along it, and back in to the end of
    the target's text, where the arrowhead points at the node returned to."""
    c = COLORS["backtrack"]
    (x0, y0), (x1, y1) = source, target
    return (f'<path d="M{x0:.0f},{y0} H{lane_x} V{y1} H{x1:.0f}" fill="none" stroke="{c}" '
            f'stroke-width="1.8" stroke-dasharray="5,3" marker-end="url(#arrow)"/>'
            f'<text x="{lane_x + 3}" y="{(y0 + y1) / 2:.0f}" font-size="10" fill="{c}">{index}</text>')


def _legend(lx: int, ly: int) -> str:
    items = [("circle", COLORS["correct"], "correct terminal"), ("circle", COLORS["wrong"], "wrong terminal"),
             ("hollow", "#111827", "step"), ("badge", COLORS["trace"], "trace order"),
             ("dash", COLORS["backtrack"], "backtrack"), ("text", COLORS["muted"], "N visits  Q value  P prior")]
    parts, cx = [], lx
    for kind, color, text in items:
        if kind in ("circle", "hollow"):
            fill = color if kind == "circle" else "#ffffff"
            parts.append(f'<circle cx="{cx + 5}" cy="{ly - 4}" r="5" fill="{fill}" stroke="{color}" stroke-width="1.5"/>')
            cx += 14
        elif kind == "badge":
            parts.append(f'<rect x="{cx}" y="{ly - 12}" width="16" height="16" rx="7" fill="{color}"/>'
                         f'<text x="{cx + 4}" y="{ly}" fill="#ffffff">1</text>')
            cx += 20
        elif kind == "dash":
            parts.append(f'<path d="M{cx},{ly - 4} H{cx + 22}" stroke="{color}" stroke-width="1.8" '
                         f'stroke-dasharray="5,3" marker-end="url(#arrow)"/>')
            cx += 28
        parts.append(f'<text x="{cx}" y="{ly}" fill="{color if kind == "text" else "#111827"}">{escape(text)}</text>')
        cx += int(CHAR_W * len(text)) + 18
    return "".join(parts)


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
