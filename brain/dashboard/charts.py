"""Small inline SVG charts, drawn on the server (no JavaScript build step)."""
from __future__ import annotations

from html import escape


def line_chart(series: dict[str, list[float]], width: int = 720, height: int = 220) -> str:
    """Lines normalised to a common scale; each series is a list of values in time order."""
    values = [v for s in series.values() for v in s]
    if not values:
        return '<p class="muted">no data yet</p>'
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    colours = ["#1f6feb", "#999999", "#d1242f"]
    paths = []
    for (name, s), colour in zip(series.items(), colours):
        if len(s) < 2:
            continue
        step = width / (len(s) - 1)
        points = " ".join(f"{i * step:.1f},{height - (v - lo) / span * (height - 10) - 5:.1f}" for i, v in enumerate(s))
        paths.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
                     f'<title>{escape(name)}</title></polyline>')
    legend = " ".join(f'<span style="color:{c}">&#9632; {escape(n)}</span>' for n, c in zip(series, colours))
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" height="{height}" role="img">{"".join(paths)}</svg>'
            f'<div class="legend">{legend} <span class="muted">range {lo:,.2f} to {hi:,.2f}</span></div>')


def bar_chart(rows: list[tuple[str, float]], width: int = 720, height: int = 160) -> str:
    if not rows:
        return '<p class="muted">no data yet</p>'
    top = max(v for _, v in rows) or 1.0
    w = width / len(rows)
    bars = "".join(f'<rect x="{i * w + 2:.1f}" y="{height - v / top * (height - 20):.1f}" width="{max(w - 4, 1):.1f}" '
                   f'height="{v / top * (height - 20):.1f}" fill="#1f6feb"><title>{escape(k)}: ${v:.4f}</title></rect>'
                   for i, (k, v) in enumerate(rows))
    return f'<svg viewBox="0 0 {width} {height}" width="100%" height="{height}" role="img">{bars}</svg>'
