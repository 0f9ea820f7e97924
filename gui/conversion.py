"""What a run's conversion did, in words: the int8 check, full-integer or not, conversion
notes and the Keras 3 export (issue 13). No Qt widgets here: the deployment panel and the
Compress tab's finish line show these texts.

Reads a run's ``metrics.json`` (engine/pipeline/run.py):

- ``compressed["int8_check"]``: ``engine.tflite.int8_debug.Int8Check.to_dict()`` or None
  (keys ``split``, ``float_accuracy``, ``pure_int8_accuracy``, ``int8_accuracy``,
  ``drop_points``, ``max_drop_points``, ``keep_float``, ``reasons``, ``full_integer``,
  ``float_ops``, ``warnings``…);
- ``compressed["full_integer"]``: bool, None when the file is not int8;
- ``compressed["conversion_notes"]``: sentences (e.g. recurrent layers converted at batch 1);
- ``files["keras3"]`` and ``keras3_export`` (engine.models.keras3_export.Keras3Export).

and the deployment report's ``full_integer`` (engine/tflite/report.py) for runs whose metrics
predate the check.
"""

from __future__ import annotations

import html
from typing import Any

from gui.format import fmt_pct

TFLM_NEEDS = (
    "TensorFlow Lite for Microcontrollers and int8-only accelerators need a full-integer "
    "model; LiteRT on a phone or a computer runs it as it is"
)
TFLM_NEEDS_SHORT = "TFLite Micro needs a full-integer model; LiteRT runs it as it is"


def _compressed(metrics: dict[str, Any] | None) -> dict[str, Any]:
    c = (metrics or {}).get("compressed")
    return c if isinstance(c, dict) else {}


def int8_check(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    check = _compressed(metrics).get("int8_check")
    return check if isinstance(check, dict) else None


def full_integer_state(
    report: dict[str, Any] | None, metrics: dict[str, Any] | None = None
) -> bool | None:
    """True: an int8 file where every op computes on integers; False: an int8 file with ops
    kept in float; None: not an int8 file (or nothing says). The run's metrics win over the
    deployment report (older reports have no ``full_integer``)."""
    c = _compressed(metrics)
    value = c.get("full_integer")
    if isinstance(value, bool):
        return value
    check = int8_check(metrics)
    if check is not None and isinstance(check.get("full_integer"), bool):
        return bool(check["full_integer"])
    integer = (report or {}).get("full_integer")
    if isinstance(integer, dict) and integer.get("int8"):
        return bool(integer.get("ok"))
    return None


def float_ops(report: dict[str, Any] | None, metrics: dict[str, Any] | None = None) -> list[str]:
    """The op names computing in float (from the int8 check, else from the report)."""
    check = int8_check(metrics)
    if check is not None and check.get("float_ops"):
        return [str(o) for o in check["float_ops"]]
    integer = (report or {}).get("full_integer")
    if isinstance(integer, dict):
        return [str(o) for o in integer.get("float_ops") or []]
    return []


def kept_float(metrics: dict[str, Any] | None) -> list[str]:
    check = int8_check(metrics)
    return [str(n) for n in (check or {}).get("keep_float") or []]


def _pts(value: Any) -> str:
    return f"{float(value):.1f} pts" if isinstance(value, (int, float)) else "?"


def _drop(base: Any, acc: Any) -> str:
    if not isinstance(base, (int, float)) or not isinstance(acc, (int, float)):
        return ""
    d = (float(base) - float(acc)) * 100.0
    if abs(d) < 0.05:
        return "±0 pts"
    return f"−{d:.1f} pts" if d > 0 else f"+{-d:.1f} pts"


def full_integer_line(
    report: dict[str, Any] | None, metrics: dict[str, Any] | None, short: bool = False
) -> str:
    """One plain sentence: full-integer or not (and what that means for TFLite Micro); ""
    when the file is not int8. ``short``: the deployment panel's wording."""
    state = full_integer_state(report, metrics)
    if state is None:
        return ""
    if state:
        return "✓ Full-integer int8: every op computes on integers (TFLite Micro ready)."
    ops = float_ops(report, metrics)
    layers = kept_float(metrics)
    what = f"{', '.join(layers)} kept in float" if layers else "ops kept in float"
    on = f" (float ops {', '.join(ops)})" if ops else ""
    return f"⚠ Not full-integer: {what}{on}. {TFLM_NEEDS_SHORT if short else TFLM_NEEDS}."


def int8_check_line(metrics: dict[str, Any] | None) -> str:
    """E.g. "int8 checked on the validation split: float 93.0 %, pure int8 61.5 % (−31.5 pts),
    final 92.5 % (−0.5 pts; allowed 2.0 pts)."; "" without a check."""
    check = int8_check(metrics)
    if check is None:
        return ""
    if not check.get("split") or check.get("float_accuracy") is None:
        return "int8 was not compared with float (no validation split)."
    split = {"val": "validation", "test": "test"}.get(str(check["split"]), str(check["split"]))
    base = check.get("float_accuracy")
    parts = [f"float {fmt_pct(base)}"]
    pure = check.get("pure_int8_accuracy")
    final = check.get("int8_accuracy")
    keep = check.get("keep_float") or []
    if isinstance(pure, (int, float)) and keep:
        parts.append(f"pure int8 {fmt_pct(pure)} ({_drop(base, pure)})")
    label = (
        f"int8 with {len(keep)} layer{'s' if len(keep) != 1 else ''} in float" if keep else "int8"
    )
    allowed = check.get("max_drop_points")
    parts.append(
        f"{label} {fmt_pct(final)} ({_drop(base, final)}; allowed {_pts(allowed)})"
        if allowed is not None
        else f"{label} {fmt_pct(final)} ({_drop(base, final)})"
    )
    return f"int8 checked against float on the {split} split: " + ", ".join(parts) + "."


def kept_float_reasons(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``(layer, why)`` for every layer the int8 conversion kept in float."""
    check = int8_check(metrics) or {}
    reasons = check.get("reasons") if isinstance(check.get("reasons"), dict) else {}
    out = []
    for name in check.get("keep_float") or []:
        why = str(reasons.get(name) or "asked in the recipe (Keep float)")
        out.append((str(name), why))
    return out


def conversion_notes(metrics: dict[str, Any] | None) -> list[str]:
    notes = _compressed(metrics).get("conversion_notes")
    return [str(n) for n in notes] if isinstance(notes, list) else []


def keras3_file(metrics: dict[str, Any] | None) -> str | None:
    """The run folder's Keras 3 file name (``files["keras3"]``), None when none was written."""
    files = (metrics or {}).get("files")
    name = files.get("keras3") if isinstance(files, dict) else None
    return str(name) if name else None


def keras3_notes(metrics: dict[str, Any] | None) -> list[str]:
    """What to know about the Keras 3 export (e.g. a QAT result exported as float weights)."""
    info = (metrics or {}).get("keras3_export")
    if not isinstance(info, dict):
        return []
    notes = [str(n) for n in info.get("notes") or []]
    if info.get("weights") == "qat_float" and not any("float" in n.lower() for n in notes):
        notes.insert(
            0,
            "QAT result exported as its float weights (Keras 3 has no QAT layers); the "
            ".tflite holds the int8 model",
        )
    return notes


def keras3_line(metrics: dict[str, Any] | None) -> str:
    """One sentence about the Keras 3 file, "" when there is none."""
    name = keras3_file(metrics)
    if not name:
        return ""
    info = (metrics or {}).get("keras3_export")
    info = info if isinstance(info, dict) else {}
    facts = []
    if isinstance(info.get("kernel_sparsity"), (int, float)):
        facts.append(f"kernel sparsity {fmt_pct(info['kernel_sparsity'], 1)}")
    diff = info.get("max_abs_diff")
    if isinstance(diff, (int, float)):
        facts.append(
            "the same outputs as the compressed model"
            if diff == 0
            else f"outputs within {diff:.1g} of the compressed model"
        )
    text = f"Keras 3 model written ({name}" + (f"; {', '.join(facts)}" if facts else "") + ")."
    notes = keras3_notes(metrics)
    if notes:
        text += " " + " ".join(n.rstrip(".") + "." for n in notes)
    return text


def finish_note(metrics: dict[str, Any] | None, report: dict[str, Any] | None = None) -> str:
    """A short line for the end of a run: the layers int8 kept in float / full-integer."""
    state = full_integer_state(report, metrics)
    layers = kept_float(metrics)
    if state is False:
        kept = f" ({', '.join(layers)} kept in float)" if layers else ""
        return f"⚠ Not full-integer{kept}: TFLite Micro needs full-integer."
    if state is True and int8_check(metrics) is not None:
        return "✓ Full-integer int8, checked against float on the validation split."
    return ""


def conversion_html(report: dict[str, Any] | None, metrics: dict[str, Any] | None) -> str:
    """The deployment panel's "Conversion" text (rich text; "" when there is nothing to say)."""
    lines = []
    full = full_integer_line(report, metrics, short=True)
    check = int8_check_line(metrics)
    if full.startswith("✓"):  # one line: full-integer, and the check that says so
        full = "✓ Full-integer int8 (TFLite Micro ready)." if check else full
        lines.append(f"<span style='color:#2e7d32'><b>{_esc(full)}</b></span> {_esc(check)}")
    else:
        if full:
            lines.append(f"<span style='color:#b26a00'><b>{_esc(full)}</b></span>")
        if check:
            lines.append(_esc(check))
    warnings = [str(w) for w in (int8_check(metrics) or {}).get("warnings") or []]
    for name, why in kept_float_reasons(metrics):
        about = [w for w in warnings if w.startswith(f"'{name}' (")]
        if any("input stays float32" in w for w in about):
            why += "; the model's input stays float32"
        warnings = [w for w in warnings if w not in about]  # said here
        lines.append(f"&nbsp;&nbsp;• <b>{_esc(name)}</b> kept in float: {_esc(why)}")
    for w in warnings:
        if "not full-integer" in w or "; kept in float: " in w:
            continue  # said by the lines above
        lines.append(f"<span style='color:#b26a00'>⚠ {_esc(w)}</span>")
    for note in conversion_notes(metrics):
        lines.append(f"ℹ {_esc(note)}")
    k3 = keras3_line(metrics)
    if k3:
        lines.append(f"ℹ {_esc(k3)}")
    return "<br>".join(lines)


def _esc(text: str) -> str:
    return html.escape(str(text), quote=False)
