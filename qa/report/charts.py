"""Inline SVG charts drawn in Python (no JavaScript, nothing fetched): score histogram, horizontal bars,
heatmap, and a line trend with threshold lines. Every text is escaped; each mark has a hover ``<title>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

BAND_COLORS = ((90, "#16a34a"), (75, "#84cc16"), (60, "#f59e0b"), (0, "#ef4444"))
BIN_COLORS = ("#ef4444",) * 6 + ("#f59e0b", "#facc15", "#84cc16", "#16a34a")
AXIS, GRID, INK = "#6b7280", "#e5e7eb", "#111827"


def _e(x: object) -> str:
    return escape(str(x), quote=True)


def _svg(width: float, height: float, label: str, body: list[str]) -> str:
    return (f'<svg class="chart" role="img" aria-label="{_e(label)}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}"><title>{_e(label)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, s: object, *, anchor: str = "start", size: int = 12, fill: str = INK,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{extra}>'
            f'{_e(s)}</text>')


def text_width(s: str, size: int = 12) -> float:
    """Rough rendered width: CJK and other wide characters a full em, the rest about half."""
    return sum(size if ord(c) > 0x2E7F else size * 0.58 for c in s)


def _clip(s: str, px: float, size: int = 12) -> str:
    """``s`` cut (with …) to ``px`` wide: one pass over the characters, whatever the label's length."""
    if text_width(s, size) <= px:
        return s
    room, width = px - text_width("…", size), 0.0
    for i, c in enumerate(s):
        width += text_width(c, size)
        if width > room:
            return s[:i] + "…"
    return s + "…"


def _nice_max(v: float) -> tuple[float, float]:
    """A round axis maximum ≥ v and its tick step (about five ticks)."""
    if v <= 0:
        return 1.0, 1.0
    mag = 10 ** math.floor(math.log10(v / 5)) if v >= 5 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if v / (m * mag) <= 5)
    return math.ceil(v / step) * step, step


def band_color(score: float | None) -> str:
    if score is None:
        return GRID
    return next(c for lo, c in BAND_COLORS if score >= lo)


def histogram(counts: Sequence[int], *, label: str, width: int = 560, height: int = 260) -> str:
    """Vertical bars, one per bin of 10 points (the last bin holds 90–100)."""
    left, right, top, bottom = 40, 10, 18, 36
    pw, ph = width - left - right, height - top - bottom
    ymax, step = _nice_max(max(counts, default=0))
    body = []
    for i in range(int(ymax / step) + 1):
        y = top + ph - ph * i * step / ymax
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{i * step:g}", anchor="end", size=11, fill=AXIS))
    bw = pw / len(counts)
    for i, c in enumerate(counts):
        h = ph * c / ymax
        x, y = left + i * bw, top + ph - h
        rng = f"{i * 10}–{i * 10 + 9 if i < len(counts) - 1 else 100}"
        body.append(f'<rect class="bar" x="{x + 3:.1f}" y="{y:.1f}" width="{bw - 6:.1f}" height="{h:.1f}" '
                    f'fill="{BIN_COLORS[i % len(BIN_COLORS)]}"><title>{_e(f"{rng} 分: {c} 个会话")}</title></rect>')
        if c:
            body.append(_text(x + bw / 2, y - 4, c, anchor="middle", size=11))
        body.append(_text(x + bw / 2, top + ph + 16, rng, anchor="middle", size=11, fill=AXIS))
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{top + ph}" y2="{top + ph}" stroke="{AXIS}"/>')
    body.append(_text(left + pw / 2, height - 4, "分数", anchor="middle", size=11, fill=AXIS))
    return _svg(width, height, label, body)


def hbars(items: Sequence[tuple[str, float | None, str]], *, label: str, vmax: float = 100,
          marks: Sequence[float] = (60, 75, 90), width: int = 640) -> str:
    """Horizontal bars of (label, value, hover text), coloured by score band, with dashed band marks."""
    row, top = 22, 22
    left = min(220, max((text_width(s) for s, _, _ in items), default=40) + 12)
    pw = width - left - 48
    height = top + row * len(items) + 8
    body = []
    for m in marks:
        x = left + pw * m / vmax
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 6}" stroke="{AXIS}" '
                    f'stroke-dasharray="3 3"/>')
        body.append(_text(x, top - 8, f"{m:g}", anchor="middle", size=10, fill=AXIS))
    for i, (name, v, tip) in enumerate(items):
        y = top + i * row
        body.append(_text(left - 8, y + 15, _clip(name, left - 12), anchor="end"))
        w = pw * max(0.0, min(v or 0.0, vmax)) / vmax
        body.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                    f'fill="{band_color(v)}"><title>{_e(tip)}</title></rect>')
        body.append(_text(left + w + 4, y + 15, "–" if v is None else f"{v:.1f}", size=11))
    return _svg(width, height, label, body)


def heatmap(rows: Sequence[str], cols: Sequence[str], values: Sequence[Sequence[float | None]], *,
            label: str, lo: float, hi: float) -> str:
    """A grid of mean levels: red at ``lo`` (the worst level), green at ``hi`` (the best)."""
    cell_h, top = 24, 30
    cell_w = max(64, max((text_width(c) for c in cols), default=0) + 10)
    left = min(220, max((text_width(r) for r in rows), default=40) + 12)
    width, height = left + cell_w * len(cols) + 4, top + cell_h * len(rows) + 4
    body = [_text(left + (j + 0.5) * cell_w, top - 10, c, anchor="middle", size=12) for j, c in enumerate(cols)]
    for i, (name, vals) in enumerate(zip(rows, values)):
        y = top + i * cell_h
        body.append(_text(left - 8, y + 16, _clip(name, left - 12), anchor="end"))
        for j, v in enumerate(vals):
            x = left + j * cell_w
            if v is None:
                fill, txt = "#f3f4f6", "–"
            else:
                hue = 120 * max(0.0, min(1.0, (v - lo) / ((hi - lo) or 1)))
                fill, txt = f"hsl({hue:.0f},70%,78%)", f"{v:.2f}"
            body.append(f'<rect class="cell" x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                        f'fill="{fill}"><title>{_e(f"{name} · {cols[j]}: {txt}")}</title></rect>')
            body.append(_text(x + cell_w / 2, y + 16, txt, anchor="middle", size=11))
    return _svg(width, height, label, body)


def trend(days: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None], float | None]], *,
          label: str, width: int = 760, height: int = 300) -> str:
    """Lines of rates (0–1) by day: series are (name, colour, values, threshold or None)."""
    left, right, top, bottom = 46, 190, 16, 44
    pw, ph = width - left - right, height - top - bottom
    seen = [v for _, _, vals, th in series for v in (*vals, th) if v is not None]
    lo = max(0.0, math.floor((min(seen, default=0.0) - 0.05) * 10) / 10)
    step = 0.1 if 1 - lo <= 0.5 else 0.2 if 1 - lo <= 1 else 0.25

    def px(i: int) -> float:
        return left + (pw / 2 if len(days) == 1 else pw * i / (len(days) - 1))

    def py(v: float) -> float:
        return top + ph * (1 - (v - lo) / ((1 - lo) or 1))

    body = []
    t = lo
    while t <= 1.0001:
        body.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, py(t) + 4, f"{t:.0%}", anchor="end", size=11, fill=AXIS))
        t += step
    every = max(1, math.ceil(len(days) / 10))
    for i, d in enumerate(days):
        if i % every == 0 or i == len(days) - 1:
            body.append(_text(px(i), top + ph + 16, d[5:] if len(d) == 10 else d, anchor="middle", size=11,
                              fill=AXIS, extra=f' data-day="{_e(d)}"'))
    for k, (name, color, vals, th) in enumerate(series):
        if th is not None:
            body.append(f'<line class="threshold" x1="{left}" x2="{left + pw}" y1="{py(th):.1f}" y2="{py(th):.1f}" '
                        f'stroke="{color}" stroke-dasharray="6 4" stroke-opacity="0.7">'
                        f'<title>{_e(f"{name} 阈值 {th:.0%}")}</title></line>')
        seg: list[str] = []
        for i, v in enumerate((*vals, None)):
            if v is not None:
                seg.append(f"{px(i):.1f},{py(v):.1f}")
                continue
            if len(seg) > 1:
                body.append(f'<polyline class="line" points="{" ".join(seg)}" fill="none" stroke="{color}" '
                            f'stroke-width="2"/>')
            seg = []
        for i, v in enumerate(vals):
            if v is not None:
                body.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3" fill="{color}">'
                            f'<title>{_e(f"{days[i]} {name}: {v:.1%}")}</title></circle>')
        ly = top + 10 + k * 36
        body.append(f'<line x1="{left + pw + 16}" x2="{left + pw + 36}" y1="{ly}" y2="{ly}" stroke="{color}" '
                    f'stroke-width="2"/>')
        body.append(_text(left + pw + 42, ly + 4, name, size=12))
        if th is not None:
            body.append(_text(left + pw + 42, ly + 20, f"阈值 ≥ {th:.0%} (虚线)", size=11, fill=AXIS))
    return _svg(width, height, label, body)
