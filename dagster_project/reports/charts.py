"""Inline SVG charts for the HTML report (no scripts, no external files: the report is self-contained)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

PALETTE = ("#2f6f4f", "#d08c2a", "#c0392b", "#5b6abf", "#8e5ea2", "#7f8c8d", "#16a085", "#b7950b")
BUCKET_COLOURS = {
    "reconciled": "#2f6f4f", "open_exceptions": "#c0392b", "closed_by_people": "#8e5ea2",
    "in_progress": "#d08c2a", "cancelled_refunded": "#7f8c8d", "on_hold": "#5b6abf",
}


def _num(value: float | Decimal | int | None) -> float:
    return float(value or 0)


def _fmt(value: float | Decimal | int | None) -> str:
    v = _num(value)
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def stacked_bars(rows: Sequence[tuple[str, Sequence[tuple[str, float | Decimal, str]]]], *, title: str,
                 width: int = 720, bar_height: int = 22) -> str:
    """Horizontal 100%-wide stacked bars, one per row: (label, [(segment label, value, colour)]).

    Each bar is scaled to the largest row total, so bars compare in size as well as in mix.
    """
    label_w, right_pad = 190, 70
    plot_w = width - label_w - right_pad
    height = 28 + len(rows) * (bar_height + 10)
    biggest = max((sum(_num(v) for _, v, _ in segs) for _, segs in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="chart"><title>{escape(title)}</title>']
    for i, (label, segments) in enumerate(rows):
        y = 20 + i * (bar_height + 10)
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
                     f'class="lbl">{escape(label)}</text>')
        x = float(label_w)
        total = 0.0
        for seg_label, value, colour in segments:
            w = plot_w * _num(value) / biggest
            total += _num(value)
            if w <= 0:
                continue
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{colour}">'
                         f'<title>{escape(label)}: {escape(seg_label)} {_fmt(value)}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_height * 0.7:.1f}" class="val">{_fmt(total)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """An HTML legend: (label, colour)."""
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{escape(label)}</span>' for label, c in items) + "</div>"


def line_chart(x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]], *,
               title: str, width: int = 720, height: int = 220, percent: bool = False) -> str:
    """A line chart over days: series of (name, values, colour); None values leave a gap."""
    left, right, top, bottom = 56, 16, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vals, _ in series for v in vals if v is not None]
    high = max(values, default=1.0)
    low = min(0.0, min(values, default=0.0))
    if percent:
        high = max(high, 1.0)
    span = (high - low) or 1.0
    n = max(len(x_labels), 1)

    def px(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - low) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="chart"><title>{escape(title)}</title>']
    for k in range(5):
        v = low + span * k / 4
        y = py(v)
        text = f"{v * 100:.0f}%" if percent else _fmt(v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{text}</text>')
    step = max(1, n // 8)
    for i, label in enumerate(x_labels):
        if i % step == 0 or i == n - 1:
            parts.append(f'<text x="{px(i):.1f}" y="{height - 12}" text-anchor="middle" class="axis">'
                         f'{escape(label)}</text>')
    for name, vals, colour in series:
        path: list[str] = []
        for i, v in enumerate(vals):
            if v is None:
                continue
            path.append(f"{'M' if not path else 'L'}{px(i):.1f},{py(v):.1f}")
            parts.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(name)} {escape(x_labels[i])}: '
                         f'{f"{v * 100:.1f}%" if percent else _fmt(v)}</title></circle>')
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)
