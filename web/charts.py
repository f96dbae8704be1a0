"""Small server-side SVG pictures: no JavaScript, no inline styles (the CSP forbids them), numbers only."""

from __future__ import annotations

import math

from flask_babel import gettext
from markupsafe import Markup

from membership.lifetime import PRIOR_SHAPE

WIDTH, HEIGHT, PAD = 260, 80, 4
POINTS = 60
INK, PRIOR_INK, BAND, MARK = "#0b6e4f", "#8a99a8", "#d7f0e4", "#b3261e"


def weibull_survival(t: float, shape: float, scale: float, lapse: float = 0.0) -> float:
    """Share of purchases not yet followed by a repurchase after ``t`` days (lapsed members never are)."""
    return lapse + (1 - lapse) * math.exp(-((t / scale) ** shape))


def survival_svg(
    shape: float,
    scale: float,
    lapse: float = 0.0,
    low: float | None = None,
    high: float | None = None,
    mark: float | None = None,
    prior_days: float | None = None,
    label: str = "",
) -> Markup:
    """A survival curve: the fitted curve (green), its low–high band, the prior's curve (grey, dashed)
    and the value in use (a red line); the x axis runs to a little past the 90 % point."""
    prior_scale = prior_days / math.log(2) ** (1 / PRIOR_SHAPE) if prior_days else None
    ends = [scale * 2.303 ** (1 / shape), high or 0, (mark or 0) * 1.2]
    if prior_scale:
        ends.append(prior_scale * 2.303 ** (1 / PRIOR_SHAPE))
    x_max = max(max(ends) * 1.1, 1.0)

    def x(t: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * t / x_max

    def y(s: float) -> float:
        return PAD + (HEIGHT - 2 * PAD - 12) * (1 - s)

    def path(k: float, lam: float, pi: float) -> str:
        steps = (x_max * i / POINTS for i in range(POINTS + 1))
        return "M" + " L".join(f"{x(t):.1f},{y(weibull_survival(t, k, lam, pi)):.1f}" for t in steps)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{Markup.escape(label)}">',
        f"<title>{Markup.escape(label)}</title>",
    ]
    if low is not None and high is not None and high > low:
        parts.append(
            f'<rect x="{x(low):.1f}" y="{PAD}" width="{x(high) - x(low):.1f}" '
            f'height="{HEIGHT - 2 * PAD - 12}" fill="{BAND}"/>'
        )
    baseline = y(0)
    parts.append(
        f'<line x1="{PAD}" y1="{baseline:.1f}" x2="{WIDTH - PAD}" y2="{baseline:.1f}" stroke="#c5ced8"/>'
    )
    if prior_scale:
        parts.append(
            f'<path d="{path(PRIOR_SHAPE, prior_scale, 0.0)}" fill="none" stroke="{PRIOR_INK}" '
            'stroke-width="1.2" stroke-dasharray="4 3"/>'
        )
    parts.append(f'<path d="{path(shape, scale, lapse)}" fill="none" stroke="{INK}" stroke-width="2"/>')
    if mark is not None:
        parts.append(
            f'<line x1="{x(mark):.1f}" y1="{PAD}" x2="{x(mark):.1f}" y2="{baseline:.1f}" '
            f'stroke="{MARK}" stroke-width="1.5"/>'
        )
    for t in (0, x_max / 2, x_max):
        anchor = "start" if t == 0 else ("end" if t == x_max else "middle")
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - 2}" font-size="10" fill="#5c6b7a" '
            f'text-anchor="{anchor}">{gettext("%(days)s d", days=f"{t:.0f}")}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
