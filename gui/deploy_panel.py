"""Deployment panel of the Results tab: will the selected run's ``.tflite`` run on the target?

Shows the engine's deployment report (``report.json`` in the run folder, written by
``compress``; see engine/tflite/report.py for its keys): ops with counts and data types (Flex and
custom ops highlighted), the LiteRT and TFLite Micro verdicts, the memory estimate, the int8
I/O contract with copyable quantize/dequantize snippets, and the C-array export. Its
*Conversion* box (gui/conversion.py) says what the conversion did: full-integer or not, the
int8 check (float vs int8 validation accuracy, layers kept float and why), conversion notes
and the Keras 3 model, with *Export Keras 3 model…*. A model that is not full-integer gets
the badge "⚠ not full-integer" and a ✗ TensorFlow Lite for Microcontrollers verdict, also
when its report.json predates the check (the run's metrics win).

``load_report(run)`` and ``deploy_badge(report, metrics, budget_pts)`` are also used by the runs
table's "Deploy" column. The badge is never green for a run over the accuracy budget: a model
that deploys but lost too much accuracy is not ready to ship.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.core.errors import BadInputError
from engine.pipeline.budget import DEFAULT_BUDGET_PTS, check_budget
from gui.conversion import (
    conversion_html,
    float_ops,
    full_integer_line,
    full_integer_state,
    keras3_file,
    keras3_line,
)
from gui.errors import ErrorReporter
from gui.format import (
    VERDICT_COLORS,
    VERDICT_MARKS,
    fmt_bytes,
    fmt_pct,
    run_verdict,
    verdict_tooltip,
)
from gui.state import RunRecord

FLEX_COLOR = "#c62828"
WARN_COLOR = "#b26a00"
OK_COLOR = "#2e7d32"
FLEX_BG = "#ffd9d9"
CUSTOM_BG = "#ffe9c7"

_cache: dict[tuple[str, int], dict[str, Any] | None] = {}


def load_report(run: RunRecord | None) -> dict[str, Any] | None:
    """The deployment report of ``run``: its ``report.json``, else computed from its
    ``model.tflite`` (runs made before reports existed). None if neither gives one.

    Cached per file and modification time, so refreshing the runs table stays cheap.
    """
    if run is None:
        return None
    src = run.artifact("report.json") or run.artifact("model.tflite")
    if src is None:
        return None
    try:
        key = (str(src), src.stat().st_mtime_ns)
    except OSError:
        return None
    if key not in _cache:
        _cache[key] = _read(src)
    return _cache[key]


def _read(src: Path) -> dict[str, Any] | None:
    if src.name == "report.json":
        try:
            report = json.loads(src.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) and "verdicts" in report else None
    from engine.tflite.report import report_tflite

    try:
        return report_tflite(src)
    except BadInputError:
        return None


def _ops_badge(
    report: dict[str, Any], metrics: dict[str, Any] | None = None
) -> tuple[str, str, str]:
    """The badge from the ops (Flex, custom, not full-integer, TFLite Micro gaps, or fits
    both); ``metrics`` say whether an int8 conversion kept layers in float."""
    flex = report.get("flex_ops") or []
    verdicts = report.get("verdicts") or {}
    tflm = verdicts.get("tflite_micro") or {}
    lite = verdicts.get("litert_builtins") or {}
    if flex:
        return (
            "⚠ Flex ops",
            FLEX_COLOR,
            f"Uses Select-TF (Flex) ops {', '.join(flex)}: needs the full TensorFlow runtime "
            "(Flex delegate) on the device; TFLite Micro cannot run it.",
        )
    if not lite.get("ok", True):
        return ("⚠ custom ops", FLEX_COLOR, str(lite.get("summary", "")))
    if full_integer_state(report, metrics) is False:
        return ("⚠ not full-integer", WARN_COLOR, full_integer_line(report, metrics)[2:])
    if not tflm.get("ok", True):
        return ("⚠ not TFLM", WARN_COLOR, str(tflm.get("summary", "")))
    return (
        "✓ LiteRT + TFLM",
        OK_COLOR,
        "Only LiteRT built-in ops, all in TensorFlow Lite for Microcontrollers' kernel list.",
    )


def deploy_badge(
    report: dict[str, Any] | None,
    metrics: dict[str, Any] | None = None,
    budget_pts: float = DEFAULT_BUDGET_PTS,
) -> tuple[str, str, str] | None:
    """``(text, color, tooltip)`` for the runs table; None without a report.

    From the ops: a warning when the model uses Flex ops or ops TFLite Micro lacks, a check
    mark when it fits both. With the run's ``metrics``, the accuracy budget overrides the
    check mark: a run over budget gets "⚠ over budget" (amber), a collapsed one "✗ accuracy
    collapsed" (red), with the reason in the tooltip; an ops warning keeps its text and gains
    the reason (red when collapsed). Never green for a run over budget.
    """
    if report is None:
        return None
    text, color, tip = _ops_badge(report, metrics)
    v = run_verdict(metrics, budget_pts)
    if v is None or v == "within":
        return text, color, tip
    reason = verdict_tooltip(metrics, budget_pts)
    if text.startswith("✓"):
        label = "over budget" if v == "over" else "accuracy collapsed"
        return (
            f"{VERDICT_MARKS[v]} {label}",
            VERDICT_COLORS[v],
            f"Accuracy {reason}: not ready to ship, although its ops run on LiteRT and "
            "TensorFlow Lite for Microcontrollers.",
        )
    if v == "collapsed":
        color = VERDICT_COLORS["collapsed"]
    return text, color, f"{tip}\nAccuracy: {reason}."


def _dims(shape: Any) -> str:
    return "×".join(str(d) for d in shape) if isinstance(shape, list) and shape else "scalar"


def _scale_text(t: dict[str, Any]) -> tuple[str, str]:
    if t.get("scale") is not None:
        return f"{t['scale']:.9g}", str(t.get("zero_point"))
    if t.get("per_channel_scales"):
        return f"per-channel ({t['per_channel_scales']})", "—"
    return "—", "—"


def _one(value: Any) -> Any:
    """[255.0] -> 255 (one value per channel, shown plainly when there is one channel)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _small(label: QLabel) -> QLabel:
    f = label.font()
    f.setPointSizeF(max(7.0, f.pointSizeF() * 0.9))
    label.setFont(f)
    label.setStyleSheet("color: #555;")
    label.setWordWrap(True)
    return label


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 10)
    t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
    t.setWordWrap(False)
    hh = t.horizontalHeader()
    hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    hh.setStretchLastSection(True)
    return t


class DeployPanel(QWidget):
    """Deployment view of one run: ``set_run(run)`` (None clears it). ``exportTfliteRequested``
    asks the Results tab to run its ``.tflite`` export; ``exported(path)`` follows every
    file written (the Results tab confirms it in the status bar). ``set_accuracy_budget``
    sets the budget the badge judges the run's accuracy by."""

    exportTfliteRequested = Signal()
    exportKeras3Requested = Signal()
    exported = Signal(str)

    OP_HEADERS = ["Op", "Count", "Kind", "In types", "Out types"]
    IO_HEADERS = ["", "Type", "Shape", "Scale", "Zero point"]

    def __init__(
        self,
        errors: ErrorReporter,
        last_folder: Callable[[str], str] | None = None,
        remember_folder: Callable[[str, str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.errors = errors
        self._folder = last_folder or (lambda _k: "")
        self._remember = remember_folder or (lambda _k, _p: None)
        # Asked before overwriting model.c / model.h (an attribute so tests can answer it).
        self.confirm_overwrite: Callable[[list[Path]], bool] = self._ask_overwrite
        self.run: RunRecord | None = None
        self.report: dict[str, Any] | None = None
        self.budget: float = DEFAULT_BUDGET_PTS

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.summary, 1)
        self.export_c_button = QPushButton("Export C array…")
        self.export_c_button.setToolTip(
            "Write model.c and model.h: the .tflite as a 16-byte aligned byte array "
            "(like xxd -i) for TensorFlow Lite Micro builds: tflite::GetModel(model)."
        )
        self.export_c_button.clicked.connect(self._export_c_dialog)
        self.export_tflite_button = QPushButton("Export .tflite…")
        self.export_tflite_button.clicked.connect(self.exportTfliteRequested)
        top.addWidget(self.export_c_button)
        top.addWidget(self.export_tflite_button)
        lay.addLayout(top)
        # What the conversion did: int8 check, full-integer or not, notes, Keras 3 export.
        self.conversion_box = QGroupBox("Conversion")
        conv_lay = QHBoxLayout(self.conversion_box)
        conv_lay.setContentsMargins(8, 4, 8, 4)
        self.conversion_label = QLabel("")
        self.conversion_label.setObjectName("conversionNotes")
        self.conversion_label.setWordWrap(True)
        self.conversion_label.setTextFormat(Qt.TextFormat.RichText)
        self.conversion_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        conv_lay.addWidget(self.conversion_label, 1)
        self.export_keras3_button = QPushButton("Export Keras 3 model…")
        self.export_keras3_button.setToolTip(
            "Copy model_keras3.keras: the compressed model in your model's own Keras 3 "
            "architecture (written for models imported from Keras 3)."
        )
        self.export_keras3_button.clicked.connect(self.exportKeras3Requested)
        conv_lay.addWidget(self.export_keras3_button, 0, Qt.AlignmentFlag.AlignTop)
        self.conversion_box.setVisible(False)
        lay.addWidget(self.conversion_box)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        lay.addWidget(split, 1)

        # column 1: ops
        ops_box = QGroupBox("Ops in the .tflite")
        ops_lay = QVBoxLayout(ops_box)
        self.ops_table = _table(self.OP_HEADERS)
        ops_lay.addWidget(self.ops_table)
        split.addWidget(ops_box)

        # column 2: verdicts and memory
        mid = QWidget()
        mid_lay = QVBoxLayout(mid)
        mid_lay.setContentsMargins(0, 0, 0, 0)
        runs_box = QGroupBox("Runs on")
        runs_lay = QVBoxLayout(runs_box)
        self.verdict_labels: dict[str, QLabel] = {}
        for key in ("litert_builtins", "tflite_micro"):
            lab = QLabel("")
            lab.setWordWrap(True)
            lab.setTextFormat(Qt.TextFormat.RichText)
            lab.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            self.verdict_labels[key] = lab
            runs_lay.addWidget(lab)
        self.tflm_source = _small(QLabel(""))
        self.tflm_source.setTextFormat(Qt.TextFormat.RichText)
        self.tflm_source.setOpenExternalLinks(True)
        runs_lay.addWidget(self.tflm_source)
        runs_lay.addStretch(1)
        mid_lay.addWidget(runs_box, 1)
        mem_box = QGroupBox("Memory (estimate)")
        mem_form = QFormLayout(mem_box)
        mem_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.memory_labels: dict[str, QLabel] = {}
        for key, text, tip in (
            ("file_bytes", ".tflite file", "Size of model.tflite."),
            ("weights_bytes", "Weights (flash)", "Constant buffers: what stays in flash."),
            (
                "arena_estimate_bytes",
                "Tensor arena (estimate)",
                "Activations planned by lifetime in execution order, 16-byte aligned.",
            ),
            (
                "activation_peak_live_bytes",
                "Peak live activations",
                "Largest total of activations alive at the same op.",
            ),
        ):
            lab = QLabel("—")
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.memory_labels[key] = lab
            name = QLabel(text)
            name.setToolTip(tip)
            mem_form.addRow(name, lab)
        self.memory_note = _small(QLabel(""))
        mem_form.addRow(self.memory_note)
        mid_lay.addWidget(mem_box)
        # The verdicts can be long (and the Conversion box takes height): scroll, never clip.
        self.mid_scroll = QScrollArea()
        self.mid_scroll.setWidgetResizable(True)
        self.mid_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.mid_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.mid_scroll.setWidget(mid)
        self.mid_scroll.viewport().setAutoFillBackground(False)  # same background as beside
        mid.setAutoFillBackground(False)
        split.addWidget(self.mid_scroll)

        # column 3: I/O contract and snippets
        io_box = QGroupBox("Input / output contract")
        io_lay = QVBoxLayout(io_box)
        self.io_table = _table(self.IO_HEADERS)
        self.io_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        io_lay.addWidget(self.io_table)
        self.snippet_note = QLabel("")
        self.snippet_note.setWordWrap(True)
        self.snippet_note.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        io_lay.addWidget(self.snippet_note)
        self.snippet_tabs = QTabWidget()
        self.snippet_edits: dict[str, QPlainTextEdit] = {}
        self.copy_buttons: dict[str, QPushButton] = {}
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for key, title in (("python", "Python"), ("c", "C")):
            page = QWidget()
            page_lay = QVBoxLayout(page)
            page_lay.setContentsMargins(2, 2, 2, 2)
            edit = QPlainTextEdit()
            edit.setReadOnly(True)
            edit.setFont(mono)
            edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            button = QPushButton(f"Copy {title}")
            button.setToolTip(f"Copy the {title} quantize/dequantize code to the clipboard.")
            button.clicked.connect(lambda _=False, k=key: self.copy_snippet(k))
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(button)
            page_lay.addWidget(edit, 1)
            page_lay.addLayout(row)
            self.snippet_edits[key] = edit
            self.copy_buttons[key] = button
            self.snippet_tabs.addTab(page, title)
        io_lay.addWidget(self.snippet_tabs, 1)
        self.metadata_label = _small(QLabel(""))
        io_lay.addWidget(self.metadata_label)
        split.addWidget(io_box)

        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 5)
        split.setSizes([420, 320, 490])
        self.set_run(None)

    # -- view -----------------------------------------------------------------------------
    def set_accuracy_budget(self, pts: float) -> None:
        """Judge accuracy by ``pts`` points from now on (ValueError outside 0–100)."""
        self.budget = check_budget(pts)
        if self.run is not None:
            self.set_run(self.run)

    def set_run(self, run: RunRecord | None) -> None:
        """Show ``run``'s deployment report (its report.json), or say why there is none."""
        self.run = run
        self.report = load_report(run)
        r = self.report
        has_tflite = bool(run and run.artifact("model.tflite"))
        self.export_c_button.setEnabled(has_tflite)
        self.export_tflite_button.setEnabled(has_tflite)
        self._show_conversion(run, r)
        if r is None:
            if run is None:
                why = "Select a run in the table above to see whether its .tflite will deploy."
            elif has_tflite:
                why = f"{html.escape(run.name)}: its model.tflite could not be read as a model."
            else:
                why = f"{html.escape(run.name)} has no model.tflite."
            self.summary.setText(why)
            self._show_ops([])
            for lab in self.verdict_labels.values():
                lab.setText("")
            self.tflm_source.setText("")
            for lab in self.memory_labels.values():
                lab.setText("—")
            self.memory_note.setText("")
            self._show_io([])
            self._show_snippets({"needed": False, "note": "", "python": "", "c": ""})
            self.metadata_label.setText("")
            return
        metrics = run.metrics if run else None
        badge = deploy_badge(r, metrics, self.budget)
        head = f"<b>{html.escape(run.name if run else '')}</b> — model.tflite"
        if badge:
            head += f" &nbsp;<span style='color:{badge[1]}'><b>{html.escape(badge[0])}</b></span>"
        v = run_verdict(metrics, self.budget)
        if v is not None and run is not None:
            acc = fmt_pct(run.compressed.get("accuracy"))
            base = fmt_pct(run.baseline.get("accuracy"))
            head += (
                f"<br><span style='color:{VERDICT_COLORS[v]}'>{VERDICT_MARKS[v]} .tflite "
                f"accuracy {acc} (baseline {base}) — "
                f"{html.escape(verdict_tooltip(metrics, self.budget))}</span>"
            )
        self.summary.setText(head)
        self.summary.setToolTip(badge[2] if badge else "")
        self._show_ops(r.get("ops") or [])
        self._show_verdicts(r)
        self._show_memory(r.get("memory") or {})
        io = r.get("io") or {}
        self._show_io(
            [("in", t) for t in io.get("inputs") or []]
            + [("out", t) for t in io.get("outputs") or []]
        )
        self._show_snippets(r.get("snippets") or {})
        self._show_metadata(r.get("metadata"))

    def has_keras3(self) -> bool:
        """Whether the run shown has a Keras 3 model file on disk."""
        name = keras3_file(self.run.metrics) if self.run is not None else None
        return bool(name and self.run is not None and self.run.artifact(name))

    def _show_conversion(self, run: RunRecord | None, report: dict[str, Any] | None) -> None:
        metrics = run.metrics if run is not None else None
        text = conversion_html(report, metrics) if run is not None else ""
        k3 = self.has_keras3()
        self.conversion_label.setText(text)
        self.export_keras3_button.setVisible(k3)
        self.export_keras3_button.setToolTip(
            "Copy model_keras3.keras: the compressed model in your model's own Keras 3 "
            "architecture. " + keras3_line(metrics)
            if k3
            else ""
        )
        self.conversion_box.setVisible(bool(text) or k3)

    def _show_ops(self, ops: list[dict[str, Any]]) -> None:
        tflm_missing = set(
            ((self.report or {}).get("verdicts") or {}).get("tflite_micro", {}).get("missing", [])
        )
        self.ops_table.setRowCount(len(ops))
        for r, op in enumerate(ops):
            kind = str(op.get("kind", ""))
            cells = [
                str(op.get("name", "")),
                str(op.get("count", "")),
                {"flex": "Flex (TF)", "custom": "custom"}.get(kind, "built-in"),
                ", ".join(op.get("input_dtypes") or []) or "—",
                ", ".join(op.get("output_dtypes") or []) or "—",
            ]
            tip = f"{cells[0]} v{op.get('version', '?')}"
            bg = None
            if kind == "flex":
                bg = FLEX_BG
                tip += ": Select-TF op, needs the full TensorFlow runtime (Flex delegate)"
            elif kind == "custom":
                bg = CUSTOM_BG
                tip += ": custom op, the app must register a kernel for it"
            elif cells[0] in tflm_missing:
                bg = CUSTOM_BG
                tip += ": not in TensorFlow Lite for Microcontrollers"
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if c == 1:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if bg:
                    item.setBackground(QColor(bg))
                self.ops_table.setItem(r, c, item)
        seq = (self.report or {}).get("op_sequence") or []
        self.ops_table.setToolTip("Execution order: " + " → ".join(seq) if seq else "")

    def _show_verdicts(self, r: dict[str, Any]) -> None:
        verdicts = r.get("verdicts") or {}
        titles = {
            "litert_builtins": "LiteRT (TensorFlow Lite) built-ins",
            "tflite_micro": "TensorFlow Lite for Microcontrollers",
        }
        metrics = self.run.metrics if self.run else None
        not_integer = full_integer_state(r, metrics) is False
        for key, lab in self.verdict_labels.items():
            v = dict(verdicts.get(key) or {})
            lab.setToolTip(str(v.get("summary", "")))
            if key == "tflite_micro" and not_integer:
                # One short sentence (the engine's long one is the tooltip); a report older
                # than the int8 check says "ok": the run's metrics say it is mixed int8/float.
                ops = ", ".join(float_ops(r, metrics))
                v["ok"] = False
                v["summary"] = (
                    f"Not full-integer (float {ops or 'ops'}): TFLite Micro needs a "
                    "full-integer model; its float ops would run on reference kernels, if at all."
                )
                v["problems"] = [p for p in v.get("problems") or [] if "full-integer" not in p]
            ok = bool(v.get("ok"))
            mark = (
                f"<span style='color:{OK_COLOR}'>✓</span>"
                if ok
                else f"<span style='color:{FLEX_COLOR}'>✗</span>"
            )
            parts = [f"<b>{mark} {titles[key]}</b><br>{html.escape(str(v.get('summary', '')))}"]
            if v.get("missing"):
                parts.append(
                    "Missing: <b>" + html.escape(", ".join(map(str, v["missing"]))) + "</b>"
                )
            for p in v.get("problems") or []:
                if str(p) not in str(v.get("summary", "")):  # the summary often says it
                    parts.append("Problem: " + html.escape(str(p)))
            lab.setText("<br>".join(parts))
        src = r.get("tflm_ops_source") or {}
        if src:
            commit = str(src.get("commit", ""))[:7]
            url = html.escape(str(src.get("url", "")), quote=True)
            text = (
                f"TFLite Micro op list: <a href='{url}'>tflite-micro@{html.escape(commit)}</a>"
                f", retrieved {html.escape(str(src.get('retrieved', '?')))}"
            )
            if src.get("checked_against"):
                text += f"; checked against {html.escape(str(src['checked_against']))}"
            self.tflm_source.setText(text + ".")
            self.tflm_source.setToolTip(str(src.get("note", "")))
        else:
            self.tflm_source.setText("")

    def _show_memory(self, mem: dict[str, Any]) -> None:
        for key, lab in self.memory_labels.items():
            value = mem.get(key)
            text = fmt_bytes(value)
            if isinstance(value, int) and value >= 1024:
                text += f"  ({value:,} B)"
            lab.setText(text)
        self.memory_note.setText(
            "Estimate, not a measurement: a real arena adds scratch buffers and bookkeeping."
        )
        self.memory_note.setToolTip(str(mem.get("note", "")))

    def _show_io(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        self.io_table.setRowCount(len(rows))
        for r, (role, t) in enumerate(rows):
            scale, zp = _scale_text(t)
            cells = [role, str(t.get("dtype", "")), _dims(t.get("shape")), scale, zp]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{t.get('name', '')} (tensor {t.get('index', '?')})")
                if c >= 3:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.io_table.setItem(r, c, item)
        h = self.io_table.horizontalHeader().height() + 4
        h += sum(self.io_table.rowHeight(i) for i in range(len(rows))) or 24
        self.io_table.setFixedHeight(h)

    def _show_snippets(self, snip: dict[str, Any]) -> None:
        needed = bool(snip.get("needed"))
        self.snippet_note.setText(str(snip.get("note", "")))
        for key, edit in self.snippet_edits.items():
            edit.setPlainText(str(snip.get(key, "")) if needed else "")
            self.copy_buttons[key].setEnabled(needed)
        self.snippet_tabs.setVisible(needed)
        lay = self.snippet_note.parentWidget().layout()
        lay.setStretchFactor(self.snippet_note, 0 if needed else 1)

    def _show_metadata(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            self.metadata_label.setText("model.tflite carries no Featherweight metadata.")
            return
        parts = []
        labels = meta.get("labels")
        if labels:
            shown = ", ".join(map(str, labels[:6])) + (" …" if len(labels) > 6 else "")
            parts.append(f"{len(labels)} class labels ({shown})")
        norm = meta.get("input_normalization")
        if isinstance(norm, dict):
            mean, std = _one(norm.get("mean")), _one(norm.get("std"))
            parts.append(f"input normalization (x − {mean}) / {std}")
        self.metadata_label.setText(
            "Exported .tflite carries metadata: " + "; ".join(parts) + "."
            if parts
            else "model.tflite carries Featherweight metadata."
        )

    # -- actions --------------------------------------------------------------------------
    def copy_snippet(self, key: str) -> None:
        """Put the ``python`` or ``c`` snippet on the clipboard."""
        text = self.snippet_edits[key].toPlainText()
        if text:
            QGuiApplication.clipboard().setText(text)

    def export_c_array(self, out_dir: str | Path, name: str = "model") -> tuple[Path, Path] | None:
        """Write ``<name>.c`` / ``<name>.h`` of the run's model.tflite into ``out_dir``.

        Returns the two paths, or None (after telling the user) if it failed or was declined.
        """
        src = self.run.artifact("model.tflite") if self.run else None
        if src is None:
            self.errors.report("Nothing to export", "the selected run has no model.tflite")
            return None
        from engine.tflite.export_c import write_c_array

        existing = [
            p for p in (Path(out_dir) / f"{name}.c", Path(out_dir) / f"{name}.h") if p.exists()
        ]
        if existing and not self.confirm_overwrite(existing):
            return None
        try:
            paths = write_c_array(src, out_dir, name)
        except BadInputError as exc:
            self.errors.report("Export failed", str(exc))
            return None
        self.exported.emit(str(paths[0]))
        return paths

    def _ask_overwrite(self, paths: list[Path]) -> bool:
        names = ", ".join(p.name for p in paths)
        answer = QMessageBox.question(
            self, "Overwrite?", f"{names} already exist in {paths[0].parent}. Replace them?"
        )
        return answer == QMessageBox.StandardButton.Yes

    def _export_c_dialog(self) -> None:
        if self.run is None:
            return
        folder = QFileDialog.getExistingDirectory(
            self, "Export C array (model.c, model.h) to folder", self._folder("export")
        )
        if folder:
            self._remember("export", str(Path(folder) / "model.c"))
            paths = self.export_c_array(folder)
            if paths:
                self.summary.setToolTip(f"Wrote {paths[0]} and {paths[1]}")
