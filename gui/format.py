"""How numbers are written on screen (one place, so the table, tooltips and CSV agree)."""

from __future__ import annotations

from typing import Any

from engine.pipeline.budget import change_text, verdict, verdict_text


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def fmt_bytes(value: Any) -> str:
    """605224 -> '591.0 KB'; None -> '—'."""
    v = _num(value)
    if v is None:
        return "—"
    if v < 1024:
        return f"{v:.0f} B"
    if v < 1024 * 1024:
        return f"{v / 1024:.1f} KB"
    return f"{v / (1024 * 1024):.2f} MB"


def fmt_pct(value: Any, digits: int = 2) -> str:
    """A fraction 0-1 as a percentage: 0.98333 -> '98.33 %'."""
    v = _num(value)
    return "—" if v is None else f"{100 * v:.{digits}f} %"


def fmt_ratio(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else f"{v:.2f}×"


def fmt_int(value: Any) -> str:
    v = _num(value)
    return "—" if v is None else f"{int(v):,}"


def fmt_ms(value: Any) -> str:
    v = _num(value)
    if v is None:
        return "—"
    return f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms"


def fmt_duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def first_of(d: dict[str, Any], *keys: str) -> Any:
    """The first key of ``keys`` present (not None) in ``d``: engine output grows over time."""
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


# -- accuracy budget: one look for every place that judges a run ----------------------------
VERDICT_COLORS = {"within": "#2e7d32", "over": "#b26a00", "collapsed": "#c62828"}
VERDICT_MARKS = {"within": "✓", "over": "⚠", "collapsed": "✗"}


def run_verdict(metrics: dict[str, Any] | None, budget_pts: float) -> str | None:
    """``within`` / ``over`` / ``collapsed`` for a run's metrics (its compressed ``accuracy``
    against its own ``baseline.accuracy``), or None when either accuracy is missing."""
    m = metrics or {}
    base = _num((m.get("baseline") or {}).get("accuracy"))
    comp = _num((m.get("compressed") or {}).get("accuracy"))
    if base is None or comp is None:
        return None
    return verdict(base, comp, budget_pts)


def verdict_tooltip(metrics: dict[str, Any] | None, budget_pts: float) -> str:
    """'over the 1-point budget · drop 3.20 pts' (empty without both accuracies)."""
    v = run_verdict(metrics, budget_pts)
    if v is None:
        return ""
    m = metrics or {}
    base = float(m["baseline"]["accuracy"])
    comp = float(m["compressed"]["accuracy"])
    return f"{verdict_text(v, budget_pts)} · {change_text(base, comp)}"  # type: ignore[arg-type]
