"""A tree view as indented text for a terminal (``astro show``), each line within ``width``.

One line per node: the branch drawing, the step (cut to fit), then the search's numbers
(N visits, Q value, P prior) and, for a node on the trace, its position in the trace (``#3``).
Terminals say ``correct`` or ``wrong`` with their answer, in words, so no colour is needed.
"""

from __future__ import annotations

from astro_pipeline.explore.tree_view import TreeView, ViewNode


def _label(node: ViewNode) -> str:
    if node.parent_id is None:
        return "(problem)"
    step = " ".join(node.step.split())  # one line: steps may hold newlines
    return step or "(empty step)"


def _stats(node: ViewNode) -> str:
    parts = node.numbers()
    if node.is_terminal:
        parts.insert(0, f"{node.kind} {node.answer if node.answer is not None else '(no answer)'}")
    if node.trace_pos is not None:
        parts.append(f"#{node.trace_pos}")
    return "  " + " ".join(parts)


def _cut(text: str, room: int) -> str:
    if room <= 1:
        return ""
    return text if len(text) <= room else text[: room - 1] + "…"


def tree_text(view: TreeView, width: int = 120) -> str:
    """The tree, then the trace's backtracks, as lines no longer than ``width``."""
    head = f"search tree of {view.problem_id}: {view.n_total} nodes"
    if len(view.nodes) < view.n_total:
        head += f", {len(view.nodes)} shown"
    if view.notes:
        head += " (" + ", ".join(f"{k} {v}" for k, v in view.notes.items()) + ")"
    key = "N visits, Q value, P prior" + ("; #k: trace order" if view.trace_id else "") + "; +k hidden: children not shown"
    lines = [_cut(head, width), _cut(key, width)]
    last_child = {}
    for node in view.nodes:
        if node.parent_id is not None:
            last_child[node.parent_id] = node.node_id  # depth-first order: the last one seen is the last
    by_id = {n.node_id: n for n in view.nodes}
    for node in view.nodes:
        prefix = ""
        if node.parent_id is not None:
            trail, cur = [], by_id.get(node.parent_id)
            while cur is not None and cur.parent_id is not None:
                trail.append("   " if last_child.get(cur.parent_id) == cur.node_id else "│  ")
                cur = by_id.get(cur.parent_id)
            prefix = "".join(reversed(trail)) + ("└─ " if last_child[node.parent_id] == node.node_id else "├─ ")
        stats = _stats(node)
        room = width - len(prefix) - len(stats)
        lines.append(prefix + _cut(_label(node), room) + stats)
    for bt in view.backtracks:
        where = "the root: restart" if bt.target == 0 else f"node {bt.target}"
        target = by_id.get(bt.target)
        if target is not None and bt.target != 0:
            where += f" ({_cut(_label(target), 50)})"
        source = by_id.get(bt.source)
        answer = f", answer {source.answer}" if source is not None and source.answer is not None else ""
        lines.append(_cut(f"backtrack {bt.index}: from wrong terminal {bt.source}{answer} back to {where}", width))
    return "\n".join(lines)
