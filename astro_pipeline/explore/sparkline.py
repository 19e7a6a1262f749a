"""Training curves small enough to be shown inline in the Dagster UI.

Why so small: the UI renders a Markdown metadata value inline only when its text is under 1,000
characters (longer ones hide behind a "[Show Markdown]" button), and an image there must be a
``data:`` URI. So each curve is one series as a tiny SVG polyline (base64), downsampled until the
whole Markdown fits ``MAX_CHARS``, with its first, last and extreme values written beside it: the
numbers are readable even where the picture is only a shape.

A curve is named by what it shows (``loss``, ``reward``, ...); metrics of the stage whose values
are identical to it at every step (e.g. TRL's ``reward`` and ``rewards/correctness/mean`` when
correctness is the only reward) are named with it instead of being drawn twice.
"""

from __future__ import annotations

import base64

import polars as pl

MAX_CHARS = 990
WIDTH, HEIGHT, PAD = 240, 48, 4

# curve name -> metric names that can carry it, first present wins (TRL, our reward fn, plain names)
CURVES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss",)),
    ("reward", ("reward", "reward_mean")),
    ("accuracy", ("accuracy", "mean_token_accuracy")),
    ("length", ("completions/mean_length", "completion_length")),
    ("truncation", ("truncated_share", "completions/clipped_ratio")),
    ("backtracks per completion", ("backtracks_per_completion",)),
    ("KL", ("kl",)),
    ("entropy", ("entropy",)),
)


def _downsample(points: list[tuple[int, float]], n: int) -> list[tuple[float, float]]:
    """At most ``n`` points: bucket means over consecutive steps (the first and last kept)."""
    if len(points) <= n:
        return [(float(s), v) for s, v in points]
    out = []
    for i in range(n):
        chunk = points[i * len(points) // n:(i + 1) * len(points) // n]
        out.append((sum(s for s, _ in chunk) / len(chunk), sum(v for _, v in chunk) / len(chunk)))
    return out


def sparkline_svg(points: list[tuple[int, float]], max_points: int = 48, color: str = "#2563eb") -> str:
    pts = _downsample(points, max_points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    sx = (WIDTH - 2 * PAD) / (x1 - x0) if x1 > x0 else 0.0
    sy = (HEIGHT - 2 * PAD) / (y1 - y0) if y1 > y0 else 0.0

    def xy(x: float, y: float) -> str:
        px = PAD + (x - x0) * sx if sx else WIDTH / 2
        py = HEIGHT - PAD - (y - y0) * sy if sy else HEIGHT / 2
        return f"{px:.0f},{py:.0f}"

    shape = (f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{" ".join(xy(x, y) for x, y in pts)}"/>'
             if len(pts) > 1 else f'<circle cx="{WIDTH / 2:.0f}" cy="{HEIGHT / 2:.0f}" r="3" fill="{color}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">'
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f8fafc" stroke="#e2e8f0"/>{shape}</svg>')


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def curve_markdown(name: str, points: list[tuple[int, float]], same_as: list[str] = ()) -> str:
    """One curve as Markdown of at most ``MAX_CHARS`` characters: its numbers, then the picture."""
    points = sorted(points)
    (s0, v0), (s1, v1) = points[0], points[-1]
    values = [v for _, v in points]
    text = f"**{name}**"
    if same_as:
        text += " (= " + ", ".join(same_as) + ")"
    text += f": {_num(v0)} at step {s0} → {_num(v1)} at step {s1}, min {_num(min(values))}, max {_num(max(values))}"
    for n in (48, 32, 20, 12, 6, 2):
        uri = base64.b64encode(sparkline_svg(points, max_points=n).encode()).decode("ascii")
        md = f"{text}\n\n![{name}](data:image/svg+xml;base64,{uri})"
        if len(md) <= MAX_CHARS:
            return md
    return text[:MAX_CHARS]


def identical_to(series: dict[str, list[tuple[int, float]]], metric: str) -> list[str]:
    """Other metrics with exactly the same (step, value) points; a constant series is nobody's twin
    (all-zero shares would all match each other by accident)."""
    mine = series[metric]
    if len({v for _, v in mine}) < 2:
        return []
    return sorted(other for other, pts in series.items() if other != metric and pts == mine)


def stage_curves(metrics: pl.DataFrame) -> dict[str, str]:
    """Curve name -> inline Markdown for one training run's metrics (columns step, name, value)."""
    series = {name: sorted(zip(g["step"].to_list(), g["value"].to_list()))
              for (name,), g in metrics.filter(pl.col("value").is_not_null()).group_by("name")}
    out: dict[str, str] = {}
    for curve, candidates in CURVES:
        metric = next((m for m in candidates if m in series), None)
        if metric is None:
            continue
        twins = identical_to(series, metric)
        label = curve if metric.replace("_", " ") == curve else f"{curve} ({metric})"
        out[curve] = curve_markdown(label, series[metric], twins)
    return out
