"""Self-contained SVG charts for the report (stdlib only, deterministic, no Qt).

Each chart is one ``<svg xmlns=... viewBox=... role="img">`` element with a ``<title>``: no
``url(``, no links, no images, no scripts, no style sheets, system sans-serif fonts; it renders
inline in Chromium and in WeasyPrint. Text is measured with DejaVu Sans metrics (a little
generously), so labels are laid out, truncated with an ellipsis (the full text stays in a
``<title>`` tooltip) and never clipped.

- :func:`xy_chart`: scatter / line / step series on linear or log axes, dashed reference lines
  (the accuracy budget) labelled in the right margin, legend below the plot.
- :func:`bar_chart`: horizontal grouped bars (layers x runs), legend above the bars, the height
  grows with the number of rows; ``None`` values leave a gap marked "n/a".

Non-finite values (NaN, inf) are skipped, and so are values <= 0 on a log axis; markers carry
``class="pt"`` and bars ``class="bar"``. Tick labels are the caller's formatter's output with
insignificant trailing zeros removed ("2.0 KB" -> "2 KB"); tooltips keep the formatter's text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

__all__ = ["FONT_FAMILY", "PALETTE", "Series", "bar_chart", "text_width", "xy_chart"]

Fmt = Callable[[float], str]

#: Okabe-Ito colour-blind-safe palette (its yellow darkened so it reads on white).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#333333",
    "#B8A300",
)
FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif"
_INK = "#222222"
_MUTED = "#555555"
_AXIS = "#888888"
_GRID = "#e6e6e6"
_REF = "#444444"
_TITLE_SIZE = 14
_LABEL_SIZE = 12
_TICK_SIZE = 11
_MARKERS = ("circle", "square", "diamond", "star", "triangle")
_STYLES = ("points", "line", "line+points", "step")


@dataclass
class Series:
    """One data series of :func:`xy_chart`. ``tips``: one tooltip per point (default: label,
    x and y written with the chart's formatters)."""

    label: str
    points: list[tuple[float, float]]
    style: str = "points"  # "points" | "line" | "line+points" | "step"
    color: str | None = None  # None: next colour of PALETTE
    marker: str = "circle"  # "circle" | "square" | "diamond" | "star" | "triangle"
    hollow: bool = False
    tips: list[str] | None = None


# -- text -------------------------------------------------------------------------------------
# DejaVu Sans advance widths, in 1/100 em, for ASCII 32..126.
_WIDTHS = (
    [32, 40, 46, 84, 64, 95, 78, 27, 39, 39, 50, 84, 32, 36, 32, 34]
    + [64] * 10
    + [34, 34, 84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 77, 75, 29, 29, 66, 56, 86, 75, 79]
    + [60, 79, 69, 63, 61, 73, 68, 99, 69, 61, 69, 39, 34, 39, 84, 50, 50, 61, 63, 55, 63, 62]
    + [35, 63, 63, 28, 28, 58, 28, 97, 63, 61, 63, 63, 41, 52, 39, 63, 59, 82, 59, 59, 52, 64]
    + [34, 64, 84]
)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TRAILING_ZEROS = re.compile(r"(\d)\.(\d*?)0+(?!\d)")


def _clean(text: object) -> str:
    return _CONTROL.sub("", str(text))


def _esc(text: object) -> str:
    """XML-escaped text (safe in element content and in double-quoted attributes)."""
    s = _clean(text)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _char_w(ch: str) -> float:
    o = ord(ch)
    if 32 <= o <= 126:
        return _WIDTHS[o - 32] / 100
    if o >= 0x2E80:  # CJK and other wide scripts
        return 1.0
    return 0.8


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Estimated rendered width in px of ``text`` at ``size`` px (a little generous)."""
    w = sum(_char_w(c) for c in _clean(text)) * size * 1.04
    return w * 1.1 if bold else w


def _fit(text: str, max_w: float, size: float, bold: bool = False) -> str:
    """``text``, or its longest prefix + "…" that fits in ``max_w`` px."""
    text = _clean(text)
    if text_width(text, size, bold) <= max_w:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix with the ellipsis that fits
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid].rstrip() + "…", size, bold) <= max_w:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def _n(v: float) -> str:
    """A coordinate, deterministic and short."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = _TICK_SIZE,
    anchor: str = "start",
    fill: str = _MUTED,
    bold: bool = False,
    max_w: float | None = None,
    rotate: bool = False,
) -> str:
    """A ``<text>`` whose baseline is at ``y``; truncated to ``max_w`` with the full text in a
    ``<title>`` of a wrapping group."""
    shown = _fit(text, max_w, size, bold) if max_w is not None else _clean(text)
    attrs = f'x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{fill}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if bold:
        attrs += ' font-weight="bold"'
    if rotate:
        attrs += f' transform="rotate(-90 {_n(x)} {_n(y)})"'
    el = f"<text {attrs}>{_esc(shown)}</text>"
    if shown != _clean(text):
        return f"<g><title>{_esc(text)}</title>{el}</g>"
    return el


def _chart_title(title: str, pad: float, width: float) -> str:
    """The chart's bold title in its top-left corner, truncated to the picture's width."""
    return _text(
        pad, pad + _TITLE_SIZE, title, size=_TITLE_SIZE, fill=_INK, bold=True, max_w=width - 2 * pad
    )


def _axis_title(label: str, plot_left: float, plot_right: float, ticks_y: float) -> str:
    """The x axis's title, centred under the plot below its tick labels (baseline ``ticks_y``)."""
    return _text(
        (plot_left + plot_right) / 2,
        ticks_y + 8 + _LABEL_SIZE,
        label,
        size=_LABEL_SIZE,
        anchor="middle",
        fill=_INK,
        max_w=plot_right - plot_left,
    )


def _strip_zeros(label: str) -> str:
    """'2.0 KB' -> '2 KB', '97.50 %' -> '97.5 %' (tick labels only)."""

    def repl(m: re.Match[str]) -> str:
        return m.group(1) + ("." + m.group(2) if m.group(2) else "")

    return _TRAILING_ZEROS.sub(repl, label)


def _plain(v: float) -> str:
    """Default tooltip number."""
    return f"{v:.4g}".replace("-", "−")


# -- scales and ticks -------------------------------------------------------------------------
def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class _Scale:
    """Data domain [lo, hi] -> pixel range [p0, p1] (linear or log10)."""

    def __init__(self, lo: float, hi: float, log: bool, p0: float, p1: float) -> None:
        self.lo, self.hi, self.log, self.p0, self.p1 = lo, hi, log, p0, p1
        self._a = math.log10(lo) if log else lo
        self._b = math.log10(hi) if log else hi

    def usable(self, v: object) -> bool:
        return _finite(v) and (not self.log or float(v) > 0)  # type: ignore[arg-type]

    def px(self, v: float) -> float:
        t = (math.log10(v) if self.log else v) - self._a
        return self.p0 + (self.p1 - self.p0) * t / (self._b - self._a)

    def inside(self, v: float) -> bool:
        eps = (self.hi - self.lo) * 1e-9
        return self.lo - eps <= v <= self.hi + eps


def _domain(values: list[float], log: bool, pad: float = 0.05) -> tuple[float, float]:
    """A padded domain around ``values`` (already usable for the axis); a default when empty."""
    if not values:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(values), max(values)
    if log:
        a, b = math.log10(lo), math.log10(hi)
        if b - a < 1e-9:
            a, b = a - 0.25, b + 0.25
        span = b - a
        return 10 ** (a - pad * span), 10 ** (b + pad * span)
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        half = abs(lo) * 0.1 or 1.0
        return lo - half, hi + half
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _nice_step(span: float, target: float) -> float:
    """The 1-2-5 step nearest (in ratio) to ``span / target``."""
    raw = span / max(target, 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    return min((m * mag for m in (1, 2, 5, 10)), key=lambda st: abs(math.log(st / raw)))


def _next_step(step: float) -> float:
    mag = 10 ** math.floor(math.log10(step) + 1e-9)
    m = round(step / mag)
    return (2 if m < 2 else 5 if m < 5 else 10) * mag


def _linear_ticks(lo: float, hi: float, step: float) -> list[float]:
    k0 = math.ceil(lo / step - 1e-9)
    k1 = math.floor(hi / step + 1e-9)
    ticks = [float(f"{k * step:.12g}") for k in range(k0, k1 + 1)]
    return [0.0 if t == 0 else t for t in ticks]


def _default_fmt(step: float) -> Fmt:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))

    def fmt(v: float) -> str:
        s = f"{v:.{decimals}f}" if 1e-5 <= step < 1e9 else f"{v:.4g}"
        if float(s) == 0:
            s = s.lstrip("-")
        return s.replace("-", "−")

    return fmt


def _log_fmt(v: float) -> str:
    if 1e-4 <= abs(v) < 1e6:
        return f"{v:,.6f}".rstrip("0").rstrip(".").replace("-", "−")
    return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e−").replace("e+", "e")


def _log_tick_sets(lo: float, hi: float, unit: float) -> list[list[float]]:
    """Candidate labelled tick sets on a log axis, densest first."""
    a, b = math.log10(lo / unit), math.log10(hi / unit)
    sets: list[list[float]] = []
    for mults in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1, 3), (1,)):
        if mults[-1] == 9 and b - a > 1.2:
            continue
        ticks = [
            m * 10.0**k * unit
            for k in range(math.floor(a) - 1, math.ceil(b) + 1)
            for m in mults
            if lo * (1 - 1e-9) <= m * 10.0**k * unit <= hi * (1 + 1e-9)
        ]
        sets.append(ticks)
    for every in (2, 3, 5, 10):  # decades thinned out for huge spans
        ticks = [
            10.0**k * unit
            for k in range(math.ceil(a - 1e-9), math.floor(b + 1e-9) + 1)
            if k % every == 0
        ]
        sets.append(ticks)
    return [s for s in sets if s]


def _minor_log_ticks(lo: float, hi: float, unit: float) -> list[float]:
    a, b = math.log10(lo / unit), math.log10(hi / unit)
    if b - a > 6:
        return []
    return [
        m * 10.0**k * unit
        for k in range(math.floor(a) - 1, math.ceil(b) + 1)
        for m in range(1, 10)
        if lo <= m * 10.0**k * unit <= hi
    ]


def _snap_log(lo: float, hi: float, ticks: list[float], unit: float) -> tuple[float, float]:
    """A log domain stretched to the next labelled value just beyond an end (within 10 % of
    the span), so the axis does not end with a long unlabelled stretch."""
    a, b = math.log10(lo), math.log10(hi)
    decades = all(abs(math.log10(t / unit) - round(math.log10(t / unit))) < 1e-9 for t in ticks)
    mults = (1,) if decades else (1, 2, 5)
    family = [
        m * 10.0**k * unit
        for k in range(math.floor(a - math.log10(unit)) - 1, math.ceil(b - math.log10(unit)) + 2)
        for m in mults
    ]
    reach = 0.1 * (b - a)
    above = [v for v in family if b < math.log10(v) <= b + reach]
    below = [v for v in family if a - reach <= math.log10(v) < a]
    return (max(below) if below else lo), (min(above) if above else hi)


@dataclass
class _Ticks:
    values: list[float]
    labels: list[str]
    minor: list[float]
    unit: float = 1.0


def _positive(v: object) -> float | None:
    return float(v) if _finite(v) and float(v) > 0 else None  # type: ignore[arg-type]


def _max_digits(ticks: _Ticks) -> int:
    """The most significant digits any tick label has ("1.95 MB": 3, "500 KB": 1)."""
    return max((len(re.sub(r"\D", "", lab).strip("0")) for lab in ticks.labels), default=0)


def _roundness(ticks: _Ticks) -> float:
    """Mean count of significant digits of the non-zero tick labels (lower is rounder)."""
    digits = [
        len(re.sub(r"\D", "", lab).strip("0"))
        for v, lab in zip(ticks.values, ticks.labels)
        if v != 0
    ]
    return sum(digits) / len(digits) if digits else 0.0


def _choose_ticks(
    scale: _Scale,
    fmt: Fmt | None,
    unit: float | None,
    fits: Callable[[list[float], list[str]], bool],
    target: float,
) -> _Ticks:
    """Ticks for ``scale``: the densest candidate whose labels ``fits`` (and not over
    ``target`` ticks); the sparsest when none fits. Ticks are round multiples of ``unit``;
    None: 1, or 1024 when the formatter writes rounder labels for those (a bytes formatter)."""
    if unit is None:
        plain = _choose_ticks(scale, fmt, 1.0, fits, target)
        if fmt is None or not plain.labels:
            return plain
        binary = _choose_ticks(scale, fmt, 1024.0, fits, target)
        if len(binary.values) >= 2 and _roundness(binary) < _roundness(plain) - 0.5:
            return binary
        return plain
    lo, hi = scale.lo, scale.hi
    candidates: list[tuple[list[float], Fmt]] = []
    minor: list[float] = []
    if scale.log and math.log10(hi / lo) >= 0.5:
        for ticks in _log_tick_sets(lo, hi, unit):
            candidates.append((ticks, fmt or _log_fmt))
        minor = _minor_log_ticks(lo, hi, unit)
    else:
        step = _nice_step((hi - lo) / unit, target) * unit
        for _ in range(12):
            ticks = _linear_ticks(lo, hi, step)
            candidates.append((ticks, fmt or _default_fmt(step)))
            if len(ticks) <= 2:
                break
            step = _next_step(step / unit) * unit
    chosen: tuple[list[float], list[str]] | None = None
    for ticks, f in candidates:
        labels = [_strip_zeros(_clean(f(t))) for t in ticks]
        if len(ticks) > max(target * 1.6, 3) and len(candidates) > 1:
            chosen = (ticks, labels)
            continue
        chosen = (ticks, labels)
        if len(set(labels)) == len(labels) and fits(ticks, labels):
            break
    values, labels = chosen if chosen else ([], [])
    minor = [m for m in minor if all(abs(m - v) > 1e-9 * v for v in values)]
    return _Ticks(values, labels, minor, unit)


def _axis(
    dom: tuple[float, float],
    log: bool,
    pixels: tuple[float, float],
    fmt: Fmt | None,
    unit: float | None,
    fits: Callable[[_Scale, list[float], list[str]], bool],
    target: float,
    *,
    active: bool,
    snap: bool,
) -> tuple[_Scale, _Ticks, tuple[float, float]]:
    """The scale, ticks and domain of one axis over ``pixels``; no ticks unless ``active``.
    With ``snap``, a log domain stretches to the next label of the same tick family just
    beyond an end (``_snap_log``) when that keeps every label and adds one."""
    scale = _Scale(dom[0], dom[1], log, *pixels)
    if not active:
        return scale, _Ticks([], [], []), dom
    ticks = _choose_ticks(scale, fmt, unit, partial(fits, scale), target)
    if log and snap and ticks.values:
        snapped = _snap_log(dom[0], dom[1], ticks.values, ticks.unit)
        wider = _Scale(snapped[0], snapped[1], log, *pixels)
        more = _choose_ticks(wider, fmt, ticks.unit, partial(fits, wider), target)
        # the same tick family, one more label, and no less round (with 1024-multiples a
        # stretch past 1000 KB would end on "1.95 MB")
        if set(ticks.values) <= set(more.values) and _max_digits(more) <= _max_digits(ticks):
            return wider, more, snapped
    return scale, ticks, dom


def _x_tick(px: float, label: str, axis_y: float, text_y: float, width: float) -> list[str]:
    """A tick mark below the x axis at ``px`` and its label, kept inside the picture."""
    w = text_width(label, _TICK_SIZE)
    anchor, tx = "middle", px
    if px + w / 2 > width - 4:
        anchor, tx = "end", width - 4.0
    elif px - w / 2 < 4:
        anchor, tx = "start", 4.0
    return [
        f'<line x1="{_n(px)}" y1="{_n(axis_y)}" x2="{_n(px)}" y2="{_n(axis_y + 4)}" '
        f'stroke="{_AXIS}"/>',
        _text(tx, text_y, label, anchor=anchor),
    ]


# -- markers and swatches ---------------------------------------------------------------------
def _marker(kind: str, x: float, y: float, color: str, hollow: bool, tip: str | None) -> str:
    fill = "#ffffff" if hollow else color
    stroke = color if hollow else "#ffffff"
    sw = "1.6" if hollow else "0.8"
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"'
    r = 4.2
    if kind == "square":
        s = r * 1.7
        shape = f'<rect x="{_n(x - s / 2)}" y="{_n(y - s / 2)}" width="{_n(s)}" height="{_n(s)}"'
    elif kind == "diamond":
        d = r * 1.35
        pts = [(x, y - d), (x + d, y), (x, y + d), (x - d, y)]
        shape = f'<polygon points="{_pts(pts)}"'
    elif kind == "triangle":
        d = r * 1.35
        pts = [(x, y - d), (x + d * 0.95, y + d * 0.7), (x - d * 0.95, y + d * 0.7)]
        shape = f'<polygon points="{_pts(pts)}"'
    elif kind == "star":
        outer, inner = 8.0, 3.4
        pts = []
        for i in range(10):
            rad = outer if i % 2 == 0 else inner
            ang = -math.pi / 2 + i * math.pi / 5
            pts.append((x + rad * math.cos(ang), y + rad * math.sin(ang)))
        shape = f'<polygon points="{_pts(pts)}"'
        if not hollow:
            paint = f'fill="{fill}" stroke="{_INK}" stroke-width="0.8"'
    else:
        shape = f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}"'
    shape += f' class="pt" {paint}'
    if tip:
        return f"{shape}><title>{_esc(tip)}</title></{shape.split()[0][1:]}>"
    return shape + "/>"


def _pts(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _swatch(s: Series, color: str, dash: str, x: float, y: float) -> str:
    parts = []
    if s.style != "points":
        parts.append(
            f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 22)}" y2="{_n(y)}" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
        )
    if s.style in ("points", "line+points"):
        kind = s.marker if s.marker in _MARKERS else "circle"
        mark = _marker(kind, x + 11, y, color, s.hollow, None).replace(' class="pt"', "")
        parts.append(mark.replace('stroke="#ffffff"', f'stroke="{color}"'))
    return "".join(parts)


def _bar_swatch(color: str, x: float, y: float) -> str:
    return f'<rect x="{_n(x + 4)}" y="{_n(y - 6)}" width="14" height="12" fill="{color}"/>'


def _legend(
    items: Sequence[tuple[str, Callable[[float, float], str]]], x0: float, y0: float, avail: float
) -> tuple[list[str], float]:
    """Legend items flowed in rows from (x0, y0) within ``avail`` px; returns parts, height."""
    parts: list[str] = []
    row_h = 18.0
    x, y = x0, y0 + row_h / 2
    rows = 1
    for label, draw in items:
        shown = _fit(label, avail - 30, _TICK_SIZE)
        w = 28 + text_width(shown, _TICK_SIZE) + 18
        if x > x0 and x + w - 18 > x0 + avail:
            x, y, rows = x0, y + row_h, rows + 1
        parts.append(draw(x, y))
        parts.append(_text(x + 28, y + 4, label, fill=_INK, max_w=avail - 30))
        x += w
    return parts, rows * row_h


# -- clipping ---------------------------------------------------------------------------------
def _clip(
    p: tuple[float, float], q: tuple[float, float], box: tuple[float, float, float, float]
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Segment p-q clipped to box (x0, y0, x1, y1) (Liang-Barsky), or None when outside."""
    x0, y0, x1, y1 = box
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = 0.0, 1.0
    for pp, qq in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if pp == 0:
            if qq < 0:
                return None
            continue
        t = qq / pp
        if pp < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return (p[0] + t0 * dx, p[1] + t0 * dy), (p[0] + t1 * dx, p[1] + t1 * dy)


def _polylines(
    pixels: list[tuple[float, float] | None], box: tuple[float, float, float, float]
) -> list[list[tuple[float, float]]]:
    """Runs of consecutive points (None breaks a run) clipped to ``box``."""
    runs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    prev: tuple[float, float] | None = None
    for p in pixels:
        if p is None or prev is None:
            if len(cur) > 1:
                runs.append(cur)
            cur, prev = [], p
            continue
        seg = _clip(prev, p, box)
        if seg is None:
            if len(cur) > 1:
                runs.append(cur)
            cur = []
        else:
            a, b = seg
            if not cur or cur[-1] != a:
                if len(cur) > 1:
                    runs.append(cur)
                cur = [a]
            cur.append(b)
            if b != p:  # left the box
                runs.append(cur)
                cur = []
        prev = p
    if len(cur) > 1:
        runs.append(cur)
    return runs


# -- the svg element --------------------------------------------------------------------------
def _svg(title: str, width: float, height: float, body: list[str]) -> str:
    w, h = _n(width), _n(height)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
        f'height="{h}" role="img" aria-label="{_esc(title)}" class="fw-chart" '
        f'font-family="{FONT_FAMILY}" font-size="{_TICK_SIZE}">'
        f"<title>{_esc(title)}</title>"
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>'
    )
    return head + "".join(body) + "</svg>"


def _no_data(x0: float, y0: float, x1: float, y1: float) -> list[str]:
    return [
        f'<rect x="{_n(x0)}" y="{_n(y0)}" width="{_n(x1 - x0)}" height="{_n(y1 - y0)}" '
        f'fill="#fafafa" stroke="{_GRID}"/>',
        _text((x0 + x1) / 2, (y0 + y1) / 2 + 5, "no data", size=13, anchor="middle"),
    ]


def _color_for(s: Series, index: int) -> tuple[str, str]:
    """The series' colour and a dash attribute (dashed once the palette has been used up)."""
    color = s.color or PALETTE[index % len(PALETTE)]
    dash = ' stroke-dasharray="6 3"' if s.color is None and index >= len(PALETTE) else ""
    return _clean(color).replace('"', ""), dash


def xy_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool = False,
    y_log: bool = False,
    x_fmt: Fmt | None = None,
    y_fmt: Fmt | None = None,
    hlines: Sequence[tuple[float, str]] = (),
    vlines: Sequence[tuple[float, str]] = (),
    y_range: tuple[float, float] | None = None,
    width: int = 720,
    height: int = 380,
    x_tick_unit: float | None = None,
    y_tick_unit: float | None = None,
    x_ticks: Sequence[float] | None = None,
) -> str:
    """An x-y chart as one SVG element (``width`` x ``height`` px, taller when the legend needs
    more rows). ``x_fmt``/``y_fmt`` write tick labels and default tooltips; ``hlines``/``vlines``
    are dashed reference lines ``(value, label)``; ``y_range`` fixes the y domain (points outside
    are not drawn). On a log axis ticks are decades (with 2 and 5, or 1..9, when the span is small)
    times ``*_tick_unit``; by default the unit is 1, or 1024 when the formatter writes rounder
    labels that way (``fmt_bytes``: ticks at 2 KB, 5 KB, 10 KB... rather than 9.8 KB).
    ``x_ticks`` labels exactly those x values instead (e.g. the grid a curve was measured
    on: 4, 8, 16, 32, 64 clusters), the axis stretched to hold them."""
    width = max(int(width), 240)
    height = max(int(height), 180)
    x_unit, y_unit = _positive(x_tick_unit), _positive(y_tick_unit)
    series = [s for s in series if isinstance(s, Series)]
    xs_ok = (lambda v: _finite(v) and v > 0) if x_log else _finite
    ys_ok = (lambda v: _finite(v) and v > 0) if y_log else _finite

    def usable(p: object) -> bool:
        return isinstance(p, (tuple, list)) and len(p) == 2 and bool(xs_ok(p[0])) and ys_ok(p[1])

    clean_series: list[list[tuple[float, float] | None]] = [
        [(float(p[0]), float(p[1])) if usable(p) else None for p in (s.points or [])]
        for s in series
    ]
    hl = [(float(v), str(lab)) for v, lab in hlines if ys_ok(v)]
    vl = [(float(v), str(lab)) for v, lab in vlines if xs_ok(v)]
    all_pts = [p for pts in clean_series for p in pts if p is not None]
    has_data = bool(all_pts)
    fixed_x = sorted({float(v) for v in (x_ticks or ()) if xs_ok(v)})
    xdom = _domain([p[0] for p in all_pts] + [v for v, _ in vl] + fixed_x, x_log)
    ydom = _domain([p[1] for p in all_pts] + [v for v, _ in hl], y_log)
    y_fixed = False
    if (
        y_range is not None
        and len(y_range) == 2
        and all(ys_ok(v) for v in y_range)
        and y_range[0] < y_range[1]
    ):
        ydom = (float(y_range[0]), float(y_range[1]))
        y_fixed = True
    y_fmt_tip = y_fmt or _plain
    x_fmt_tip = x_fmt or _plain

    # vertical layout: title, (vline labels), plot, x ticks, x label, legend
    pad = 12.0
    top = pad + _TITLE_SIZE + 12
    if vl:
        top += 16
    legend_items = []
    for i, s in enumerate(series):
        if not _clean(s.label):
            continue
        color, dash = _color_for(s, i)
        legend_items.append((s.label, partial(_swatch, s, color, dash)))
    legend_parts: list[str] = []
    legend_h = 0.0
    if legend_items:
        legend_parts, legend_h = _legend(legend_items, pad, 0.0, width - 2 * pad)
    bottom_block = 6 + _TICK_SIZE + 8 + (_LABEL_SIZE + 6 if x_label else 0)
    plot_h = height - top - bottom_block - pad - (legend_h + 8 if legend_h else 0)
    if plot_h < 140:
        height += int(140 - plot_h)
        plot_h = 140
    plot_top, plot_bottom = top, top + plot_h

    # y ticks decide the left margin
    def y_fits(scale: _Scale, ticks: list[float], labels: list[str]) -> bool:
        pos = sorted(scale.px(t) for t in ticks)
        return all(b - a >= _TICK_SIZE + 6 for a, b in zip(pos, pos[1:]))

    yscale, yt, ydom = _axis(
        ydom,
        y_log,
        (plot_bottom, plot_top),
        y_fmt,
        y_unit,
        y_fits,
        max(2.0, plot_h / 48),
        active=has_data,
        snap=not y_fixed,
    )
    y_label_w = max((text_width(lab, _TICK_SIZE) for lab in yt.labels), default=0.0)
    y_label_w = min(y_label_w, width * 0.22)
    left = pad + (_LABEL_SIZE + 8 if y_label else 0) + y_label_w + 8
    ref_w = max((text_width(lab, _TICK_SIZE) for _, lab in hl), default=0.0)
    right = pad + min(ref_w + 8, width * 0.26) if hl else pad + 8
    plot_left, plot_right = left, width - right
    plot_w = plot_right - plot_left

    def x_fits(scale: _Scale, ticks: list[float], labels: list[str]) -> bool:
        pos = [scale.px(t) for t in ticks]
        ws = [text_width(lab, _TICK_SIZE) for lab in labels]
        return all(pos[i + 1] - pos[i] >= (ws[i] + ws[i + 1]) / 2 + 10 for i in range(len(pos) - 1))

    if fixed_x and has_data:
        xscale = _Scale(xdom[0], xdom[1], x_log, plot_left, plot_right)
        xt = _Ticks(fixed_x, [_strip_zeros(_clean(x_fmt_tip(v))) for v in fixed_x], [])
    else:
        xscale, xt, xdom = _axis(
            xdom,
            x_log,
            (plot_left, plot_right),
            x_fmt,
            x_unit,
            x_fits,
            max(2.0, plot_w / 90),
            active=has_data,
            snap=True,
        )
    body: list[str] = [_chart_title(title, pad, width)]

    if not has_data:
        body += _no_data(plot_left, plot_top, plot_right, plot_bottom)
    else:
        grid = []
        for t in yt.values:
            py = yscale.px(t)
            grid.append(
                f'<line x1="{_n(plot_left)}" y1="{_n(py)}" x2="{_n(plot_right)}" '
                f'y2="{_n(py)}" stroke="{_GRID}" stroke-width="1"/>'
            )
        for t in xt.values:
            px = xscale.px(t)
            grid.append(
                f'<line x1="{_n(px)}" y1="{_n(plot_top)}" x2="{_n(px)}" '
                f'y2="{_n(plot_bottom)}" stroke="{_GRID}" stroke-width="1"/>'
            )
        body.append('<g class="grid">' + "".join(grid) + "</g>")
    # axes
    body.append(
        f'<path d="M{_n(plot_left)},{_n(plot_top)} V{_n(plot_bottom)} H{_n(plot_right)}" '
        f'fill="none" stroke="{_AXIS}" stroke-width="1"/>'
    )
    ticks_svg = []
    for t, lab in zip(yt.values, yt.labels):
        py = yscale.px(t)
        ticks_svg.append(
            f'<line x1="{_n(plot_left - 4)}" y1="{_n(py)}" x2="{_n(plot_left)}" '
            f'y2="{_n(py)}" stroke="{_AXIS}"/>'
        )
        ticks_svg.append(_text(plot_left - 7, py + 4, lab, anchor="end", max_w=y_label_w + 2))
    for t in yt.minor:
        py = yscale.px(t)
        ticks_svg.append(
            f'<line x1="{_n(plot_left - 2.5)}" y1="{_n(py)}" x2="{_n(plot_left)}" '
            f'y2="{_n(py)}" stroke="{_AXIS}"/>'
        )
    x_tick_y = plot_bottom + 6 + _TICK_SIZE
    for t, lab in zip(xt.values, xt.labels):
        ticks_svg += _x_tick(xscale.px(t), lab, plot_bottom, x_tick_y, width)
    for t in xt.minor:
        px = xscale.px(t)
        ticks_svg.append(
            f'<line x1="{_n(px)}" y1="{_n(plot_bottom)}" x2="{_n(px)}" '
            f'y2="{_n(plot_bottom + 2.5)}" stroke="{_AXIS}"/>'
        )
    body.append('<g class="ticks">' + "".join(ticks_svg) + "</g>")
    if y_label:
        cy = (plot_top + plot_bottom) / 2
        body.append(
            _text(
                pad + _LABEL_SIZE,
                cy,
                y_label,
                size=_LABEL_SIZE,
                anchor="middle",
                fill=_INK,
                rotate=True,
                max_w=plot_h,
            )
        )
    if x_label:
        body.append(_axis_title(x_label, plot_left, plot_right, x_tick_y))

    box = (plot_left, plot_top, plot_right, plot_bottom)
    if has_data:
        # reference lines, under the data; labels in the right margin, pushed apart
        refs = []
        label_ys: list[tuple[float, str]] = []
        for v, lab in hl:
            if not yscale.inside(v):
                continue
            py = yscale.px(v)
            refs.append(
                f'<line x1="{_n(plot_left)}" y1="{_n(py)}" x2="{_n(plot_right)}" '
                f'y2="{_n(py)}" stroke="{_REF}" stroke-width="1.3" '
                f'stroke-dasharray="5 4"/>'
            )
            if lab:
                label_ys.append((py + 4, lab))
        label_ys.sort()
        for i in range(1, len(label_ys)):
            if label_ys[i][0] - label_ys[i - 1][0] < _TICK_SIZE + 2:
                label_ys[i] = (label_ys[i - 1][0] + _TICK_SIZE + 2, label_ys[i][1])
        for ly, lab in label_ys:
            refs.append(_text(plot_right + 6, ly, lab, fill=_REF, max_w=right - pad - 6 + 4))
        for v, lab in vl:
            if not xscale.inside(v):
                continue
            px = xscale.px(v)
            refs.append(
                f'<line x1="{_n(px)}" y1="{_n(plot_top)}" x2="{_n(px)}" '
                f'y2="{_n(plot_bottom)}" stroke="{_REF}" stroke-width="1.3" '
                f'stroke-dasharray="5 4"/>'
            )
            if lab:
                w = min(text_width(lab, _TICK_SIZE), plot_w)
                tx = min(max(px, plot_left + w / 2), plot_right - w / 2)
                refs.append(_text(tx, plot_top - 6, lab, anchor="middle", fill=_REF, max_w=plot_w))
        body.append('<g class="refs">' + "".join(refs) + "</g>")

        lines, marks = [], []
        for i, (s, pts) in enumerate(zip(series, clean_series)):
            color, dash = _color_for(s, i)
            style = s.style if s.style in _STYLES else "points"
            kind = s.marker if s.marker in _MARKERS else "circle"
            pixels: list[tuple[float, float] | None] = [
                (xscale.px(p[0]), yscale.px(p[1])) if p is not None else None for p in pts
            ]
            if style != "points":
                if style == "step":
                    stepped: list[tuple[float, float] | None] = []
                    for j, p in enumerate(pixels):
                        prev = pixels[j - 1] if j else None
                        if p is not None and prev is not None:
                            stepped.append((p[0], prev[1]))
                        stepped.append(p)
                    pixels_line = stepped
                else:
                    pixels_line = pixels
                for run in _polylines(pixels_line, box):
                    lines.append(
                        f'<polyline points="{_pts(run)}" fill="none" stroke="{color}" '
                        f'stroke-width="2" stroke-linejoin="round"{dash}/>'
                    )
            if style in ("points", "line+points"):
                tips = s.tips if isinstance(s.tips, list) else None
                for j, (p, pix) in enumerate(zip(pts, pixels)):
                    if p is None or pix is None:
                        continue
                    if not (xscale.inside(p[0]) and yscale.inside(p[1])):
                        continue
                    if tips is not None and j < len(tips) and tips[j] is not None:
                        tip = str(tips[j])
                    else:
                        name = f"{s.label}\n" if s.label else ""
                        tip = f"{name}{x_label or 'x'}: {x_fmt_tip(p[0])}\n"
                        tip += f"{y_label or 'y'}: {y_fmt_tip(p[1])}"
                    marks.append(_marker(kind, pix[0], pix[1], color, s.hollow, tip))
        body.append('<g class="lines">' + "".join(lines) + "</g>")
        body.append('<g class="points">' + "".join(marks) + "</g>")
    if legend_parts:
        ly = x_tick_y + (8 + _LABEL_SIZE if x_label else 0) + 14
        body.append(
            f'<g class="legend" transform="translate(0 {_n(ly)})">' + "".join(legend_parts) + "</g>"
        )
    return _svg(title, width, height, body)


def bar_chart(
    categories: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    value_label: str,
    value_fmt: Fmt | None = None,
    max_value: float | None = None,
    width: int = 720,
) -> str:
    """Horizontal grouped bars as one SVG element: one row per category (e.g. a layer), one bar
    per group ``(label, values)`` (e.g. a run); ``None`` or non-finite values leave a gap marked
    "n/a". The value axis starts at 0 (or below, for negative values) and ends at ``max_value``
    (or a nice round value above the data). The height grows with the rows."""
    width = max(int(width), 280)
    cats = [_clean(c) for c in categories]
    grp: list[tuple[str, list[float | None]]] = []
    for group in groups:
        label, values = group[0], list(group[1] or [])
        vals: list[float | None] = [
            float(v) if _finite(v) else None  # type: ignore[arg-type]
            for v in values[: len(cats)]
        ]
        vals += [None] * (len(cats) - len(vals))
        grp.append((_clean(label), vals))
    finite = [v for _, vals in grp for v in vals if v is not None]
    fmt = value_fmt
    pad = 12.0
    body = [_chart_title(title, pad, width)]
    y = pad + _TITLE_SIZE + 10
    if grp and (len(grp) > 1 or grp[0][0]):
        items = []
        for i, (label, _) in enumerate(grp):
            color = PALETTE[i % len(PALETTE)]
            items.append(
                (
                    label,
                    partial(_bar_swatch, color),
                )
            )
        parts, h = _legend(items, pad, y, width - 2 * pad)
        body += parts
        y += h + 6
    if not cats or not finite:
        plot_top = y + 4
        body += _no_data(pad, plot_top, width - pad, plot_top + 120)
        return _svg(title, width, plot_top + 120 + pad, body)

    lo = min(0.0, min(finite))
    hi = max(0.0, max(finite))
    if max_value is not None and _finite(max_value) and max_value > hi:
        hi = float(max_value)
    if hi - lo <= 0:
        hi = lo + 1.0
    n = max(1, len(grp))
    bar_h = 14.0 if n == 1 else 11.0 if n <= 3 else 8.0 if n <= 6 else 6.0
    band = n * bar_h + (n - 1) * 1.0 + 10
    label_w = min(max(text_width(c, _TICK_SIZE) for c in cats), width * 0.32, 240.0)
    # room for value labels at the bar ends (on the left too for negative values)
    probe = fmt or _plain
    show_values = bar_h >= 8
    val_w = max(text_width(probe(v), 10) for v in finite) + 8 if show_values else 0.0
    plot_left = pad + label_w + 10 + (val_w if lo < 0 else 0.0)
    plot_right = width - pad - max(val_w, 10.0)
    plot_w = plot_right - plot_left
    plot_top = y + 4
    plot_bottom = plot_top + band * len(cats)
    scale = _Scale(lo, hi, False, plot_left, plot_right)

    def fits(ticks: list[float], labels: list[str]) -> bool:
        pos = [scale.px(t) for t in ticks]
        ws = [text_width(lab, _TICK_SIZE) for lab in labels]
        return all(pos[i + 1] - pos[i] >= (ws[i] + ws[i + 1]) / 2 + 10 for i in range(len(pos) - 1))

    if max_value is None:  # round the end up to a tick
        step = _nice_step(hi - lo, max(2.0, plot_w / 90))
        hi = math.ceil(hi / step - 1e-9) * step
        lo = math.floor(lo / step + 1e-9) * step
        scale = _Scale(lo, hi, False, plot_left, plot_right)
    ticks = _choose_ticks(scale, fmt, None, fits, max(2.0, plot_w / 90))

    rows, grid, bars, vals_svg = [], [], [], []
    for r, cat in enumerate(cats):
        ry = plot_top + r * band
        if r % 2 == 1:
            rows.append(
                f'<rect x="{_n(pad)}" y="{_n(ry)}" width="{_n(plot_right - pad)}" '
                f'height="{_n(band)}" fill="#f6f7f9"/>'
            )
        rows.append(
            _text(pad + label_w + 2, ry + band / 2 + 4, cat, anchor="end", fill=_INK, max_w=label_w)
        )
        for g, (glabel, vals) in enumerate(grp):
            by = ry + 5 + g * (bar_h + 1)
            v = vals[r]
            if v is None:
                vals_svg.append(
                    _text(scale.px(0) + 3, by + bar_h / 2 + 3.5, "n/a", size=9, fill="#999999")
                )
                continue
            x0, x1 = sorted((scale.px(0), scale.px(v)))
            tip = f"{cat} — {glabel}: {probe(v)}" if glabel else f"{cat}: {probe(v)}"
            bars.append(
                f'<rect class="bar" x="{_n(x0)}" y="{_n(by)}" width="{_n(x1 - x0)}" '
                f'height="{_n(bar_h)}" fill="{PALETTE[g % len(PALETTE)]}">'
                f"<title>{_esc(tip)}</title></rect>"
            )
            if show_values:
                tx = x1 + 3 if v >= 0 else x0 - 3
                vals_svg.append(
                    _text(
                        tx,
                        by + bar_h / 2 + 3.5,
                        _clean(probe(v)),
                        size=9.5,
                        anchor="start" if v >= 0 else "end",
                    )
                )
    for t in ticks.values:
        px = scale.px(t)
        grid.append(
            f'<line x1="{_n(px)}" y1="{_n(plot_top)}" x2="{_n(px)}" '
            f'y2="{_n(plot_bottom)}" stroke="{_GRID}"/>'
        )
    axis = [
        f'<line x1="{_n(plot_left)}" y1="{_n(plot_bottom)}" x2="{_n(plot_right)}" '
        f'y2="{_n(plot_bottom)}" stroke="{_AXIS}"/>',
        f'<line x1="{_n(scale.px(0))}" y1="{_n(plot_top)}" x2="{_n(scale.px(0))}" '
        f'y2="{_n(plot_bottom)}" stroke="{_AXIS}"/>',
    ]
    tick_y = plot_bottom + 6 + _TICK_SIZE
    for t, lab in zip(ticks.values, ticks.labels):
        axis += _x_tick(scale.px(t), lab, plot_bottom, tick_y, width)
    height = tick_y + pad
    if value_label:
        axis.append(_axis_title(value_label, plot_left, plot_right, tick_y))
        height += 8 + _LABEL_SIZE
    body += [
        '<g class="rows">' + "".join(rows) + "</g>",
        '<g class="grid">' + "".join(grid) + "</g>",
        '<g class="bars">' + "".join(bars) + "</g>",
        '<g class="values">' + "".join(vals_svg) + "</g>",
        "".join(axis),
    ]
    return _svg(title, width, height, body)
