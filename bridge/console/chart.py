"""Small charts drawn by the server as inline SVG. Pure.

The page loads no script and its Content Security Policy allows no inline style, so a chart is
plain SVG elements with presentation attributes, its labels escaped like any other text, and a
title and a table-like description for screen readers.
"""

from __future__ import annotations

from markupsafe import Markup, escape

BAR_COLOUR = "#06357a"
VIEWS_COLOUR = "#1a7f37"
WIDTH, HEIGHT = 640, 220
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_LEFT = 24, 40, 12


def bar_chart(bars: list[tuple[str, int]], *, title: str, unit: str = "", ident: str = "chart",
              colour: str = BAR_COLOUR) -> Markup:
    """An SVG bar chart of `bars` (label, value >= 0), left to right, each bar with its value
    above it and its label below; `title` names it for screen readers. Values are drawn
    against the largest one (an empty or all-zero chart draws no bars, only its labels).
    `ident` (letters, digits, "-") prefixes the ids of its title and description, which must
    be unique in the page when it holds several charts."""
    if not ident.replace("-", "").isalnum():
        raise ValueError(f"chart id {ident!r}: letters, digits and - only")
    count = max(len(bars), 1)
    slot = (WIDTH - MARGIN_LEFT * 2) / count
    bar_width = slot * 0.6
    plot = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = max((value for _, value in bars), default=0)
    described = "; ".join(f"{label}: {value}{unit}" for label, value in bars)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" width="100%" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(described)}</desc>',
        f'<line x1="{MARGIN_LEFT}" y1="{HEIGHT - MARGIN_BOTTOM}" x2="{WIDTH - MARGIN_LEFT}" '
        f'y2="{HEIGHT - MARGIN_BOTTOM}" stroke="#999" stroke-width="1"/>',
    ]
    for index, (label, value) in enumerate(bars):
        height = plot * value / top if top else 0.0
        x = MARGIN_LEFT + slot * index + (slot - bar_width) / 2
        y = HEIGHT - MARGIN_BOTTOM - height
        middle = x + bar_width / 2
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{height:.1f}" '
                     f'fill="{colour}"><title>{escape(label)}: {value}{escape(unit)}</title></rect>')
        parts.append(f'<text x="{middle:.1f}" y="{y - 6:.1f}" text-anchor="middle" font-size="13" '
                     f'fill="#1b1b1b">{value}</text>')
        parts.append(f'<text x="{middle:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 18:.1f}" text-anchor="middle" '
                     f'font-size="12" fill="#555">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
