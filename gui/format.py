"""How numbers are written on screen (one place, so the table, tooltips and CSV agree)."""

from __future__ import annotations

from typing import Any

from engine.core.fmt import (  # noqa: F401 - re-exported: the GUI's formatters (shared)
    _num,
    fmt_bytes,
    fmt_duration,
    fmt_int,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
)
from engine.pipeline.budget import change_text, verdict, verdict_text


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
