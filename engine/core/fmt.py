"""How numbers are written for people: one place for the app, the CLI and the HTML report.

Every function takes any value and never raises: a missing or non-numeric value is shown as
an em dash (``—``). ``FORMATTERS`` names them for documents that record how a number was
written (the report's ``data-fmt`` attribute), so a test can apply the same function to the
same JSON field and compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "—"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def fmt_bytes(value: Any) -> str:
    """605224 -> '591.0 KB'; None -> '—'."""
    v = _num(value)
    if v is None:
        return DASH
    if v < 1024:
        return f"{v:.0f} B"
    if v < 1024 * 1024:
        return f"{v / 1024:.1f} KB"
    return f"{v / (1024 * 1024):.2f} MB"


def fmt_pct(value: Any, digits: int = 2) -> str:
    """A fraction 0-1 as a percentage: 0.98333 -> '98.33 %'."""
    v = _num(value)
    return DASH if v is None else f"{100 * v:.{digits}f} %"


def fmt_pct1(value: Any) -> str:
    """A fraction as a percentage with one decimal (sparsity, shares): 0.8 -> '80.0 %'."""
    return fmt_pct(value, 1)


def fmt_ratio(value: Any) -> str:
    """10.1223 -> '10.12×'."""
    v = _num(value)
    return DASH if v is None else f"{v:.2f}×"


def fmt_int(value: Any) -> str:
    """151306 -> '151,306'."""
    v = _num(value)
    return DASH if v is None else f"{int(v):,}"


def fmt_ms(value: Any) -> str:
    """Milliseconds: 0.0394 -> '0.039 ms', 12.5 -> '12.50 ms'."""
    v = _num(value)
    if v is None:
        return DASH
    return f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms"


def fmt_duration(seconds: Any) -> str:
    """Seconds as '42 s', '3 min 05 s' or '1 h 02 min'."""
    v = _num(seconds)
    if v is None:
        return DASH
    s = max(0, int(round(v)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def fmt_pts(value: Any) -> str:
    """An accuracy difference given as a fraction, in signed points: 0.0123 -> '+1.23 pts'."""
    v = _num(value)
    return DASH if v is None else f"{100 * v:+.2f} pts"


def fmt_points(value: Any) -> str:
    """A value already in points (budgets, validation drops, standard errors): '0.70 pts'."""
    v = _num(value)
    return DASH if v is None else f"{v:.2f} pts"


def fmt_drop_points(value: Any) -> str:
    """An accuracy drop in points as words: 1.2 -> 'drop 1.20 pts', -0.83 -> 'gain 0.83 pts',
    |x| < 0.005 -> 'no change' (engine.pipeline.budget.change_text uses it)."""
    v = _num(value)
    if v is None:
        return DASH
    if abs(v) < 0.005:
        return "no change"
    return f"drop {v:.2f} pts" if v > 0 else f"gain {-v:.2f} pts"


def fmt_drop(value: Any) -> str:
    """An accuracy drop given as a fraction (metrics.json ``accuracy_drop``) as words:
    0.012 -> 'drop 1.20 pts'."""
    v = _num(value)
    return DASH if v is None else fmt_drop_points(v * 100.0)


def fmt_float(value: Any) -> str:
    """A plain number, 6 significant digits: 0.00392156 -> '0.00392156'."""
    v = _num(value)
    return DASH if v is None else f"{v:.6g}"


def fmt_float2(value: Any) -> str:
    """A plain number with two decimals: 0.3294 -> '0.33'."""
    v = _num(value)
    return DASH if v is None else f"{v:.2f}"


def fmt_shape(value: Any) -> str:
    """A tensor shape: [None, 8, 8, 1] -> '? × 8 × 8 × 1'; [] -> 'scalar'."""
    if not isinstance(value, (list, tuple)):
        return DASH
    if not value:
        return "scalar"
    return " × ".join("?" if d is None or d == -1 else str(d) for d in value)


def fmt_text(value: Any) -> str:
    """A string as it is (numbers with ``str``); None -> '—'."""
    if value is None or value == "":
        return DASH
    return str(value)


def fmt_list(value: Any) -> str:
    """A list of strings: ['int32', 'int8'] -> 'int32, int8'; [] -> '—'."""
    if not isinstance(value, (list, tuple)) or not value:
        return DASH
    return ", ".join(str(v) for v in value)


def fmt_date(value: Any) -> str:
    """An ISO 8601 UTC time: '2026-12-01T05:49:53Z' -> '2026-12-01 05:49 UTC'."""
    if not isinstance(value, str) or len(value) < 16 or value[10] != "T":
        return fmt_text(value)
    return f"{value[:10]} {value[11:16]} UTC"


def fmt_hash(value: Any) -> str:
    """A sha256 shortened to 12 hex digits."""
    return value[:12] if isinstance(value, str) and value else DASH


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "bytes": fmt_bytes,
    "pct": fmt_pct,
    "pct1": fmt_pct1,
    "ratio": fmt_ratio,
    "int": fmt_int,
    "ms": fmt_ms,
    "duration": fmt_duration,
    "pts": fmt_pts,
    "points": fmt_points,
    "drop": fmt_drop,
    "drop_points": fmt_drop_points,
    "float": fmt_float,
    "float2": fmt_float2,
    "shape": fmt_shape,
    "text": fmt_text,
    "list": fmt_list,
    "date": fmt_date,
    "hash": fmt_hash,
}
