"""Inline SVG charts for the shop-level report sections: bars with a rate colour, an hour-of-day heat map."""

from __future__ import annotations

from collections.abc import Sequence

from qa.report.charts import AXIS, GRID, _clip, _e, _svg, _text, text_width


def rate_color(rate: float | None) -> str:
    """Red at 50 % or less, green at 100 %; grey when unknown."""
    if rate is None:
        return "#9ca3af"
    hue = 120 * max(0.0, min(1.0, (rate - 0.5) / 0.5))
    return f"hsl({hue:.0f},65%,48%)"


def bars(items: Sequence[tuple[str, float, str | None, str]], *, label: str, width: int = 640,
         unit: str = "") -> str:
    """Horizontal bars of (name, value, colour or None, hover text), scaled to the largest value."""
    row, top = 22, 8
    left = min(260, max((text_width(s) for s, _, _, _ in items), default=40) + 12)
    pw = width - left - 60
    vmax = max((v for _, v, _, _ in items), default=0) or 1
    height = top + row * len(items) + 8
    body = []
    for i, (name, v, color, tip) in enumerate(items):
        y = top + i * row
        w = pw * max(0.0, v) / vmax
        body.append(_text(left - 8, y + 15, _clip(name, left - 12), anchor="end"))
        body.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                    f'fill="{color or "#2563eb"}"><title>{_e(tip)}</title></rect>')
        body.append(_text(left + w + 4, y + 15, f"{v:g}{unit}", size=11))
    return _svg(width, height, label, body)


def hour_heatmap(rows: Sequence[str], values: Sequence[Sequence[float | None]],
                 tips: Sequence[Sequence[str]], *, label: str, marked: Sequence[Sequence[bool]] | None = None,
                 fmt: str = "{:g}", hi: float | None = None) -> str:
    """Rows × 24 hours; blue scale from 0 to ``hi`` (default: the largest value); marked cells get a red frame."""
    cell_w, cell_h, top = 28, 24, 22
    left = min(260, max((text_width(r) for r in rows), default=40) + 12)
    width, height = left + cell_w * 24 + 4, top + cell_h * len(rows) + 4
    vmax = hi or max((v for vs in values for v in vs if v is not None), default=0) or 1
    body = [_text(left + (h + 0.5) * cell_w, top - 8, h, anchor="middle", size=10, fill=AXIS) for h in range(24)]
    for i, (name, vals) in enumerate(zip(rows, values)):
        y = top + i * cell_h
        body.append(_text(left - 8, y + 16, _clip(name, left - 12), anchor="end"))
        for h, v in enumerate(vals):
            x = left + h * cell_w
            if v is None:
                fill, txt = "#f3f4f6", ""
            else:
                light = 96 - 56 * max(0.0, min(1.0, v / vmax))
                fill, txt = f"hsl(217,80%,{light:.0f}%)", fmt.format(v) if v else ""
            mark = marked is not None and marked[i][h]
            stroke = ' stroke="#dc2626" stroke-width="2"' if mark else f' stroke="{GRID}"'
            cls = "cell hot" if mark else "cell"
            body.append(f'<rect class="{cls}" x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                        f'fill="{fill}"{stroke}><title>{_e(tips[i][h])}</title></rect>')
            if txt:
                dark = v is not None and v / vmax > 0.6
                body.append(_text(x + cell_w / 2, y + 16, txt, anchor="middle", size=10,
                                  fill="#ffffff" if dark else "#111827"))
    return _svg(width, height, label, body)
