"""Results tab: the finished runs of one comparison (one model + dataset + split, its
*subject*) beside that subject's own baseline, each judged by the project's accuracy budget
(within / over / collapsed, with a deployment badge that is never green over budget); an
accuracy-vs-size scatter and a per-layer sparsity chart of the selected run (horizontal bars
in a scroll area, readable for 100+ layers); its deployment panel (gui/deploy_panel.py); and
export (.tflite, .keras, the Keras 3 model of a run imported from Keras 3, C array, CSV, PNG)
confirmed in the window's status bar with a *Show in folder* button.

When the session's runs belong to more than one subject, a combo above the table chooses
which comparison is shown (default: the session's current subject); runs of different
models or splits are never in one table."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFontMetrics,
    QGuiApplication,
    QShowEvent,
    QTransform,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStatusBar,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.pipeline.budget import DEFAULT_BUDGET_PTS, change_text, check_budget, collapse_pts
from gui import charts
from gui.conversion import keras3_file
from gui.deploy_panel import DeployPanel, deploy_badge, load_report
from gui.errors import ErrorReporter
from gui.format import (
    VERDICT_COLORS,
    VERDICT_MARKS,
    fmt_bytes,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    run_verdict,
    verdict_tooltip,
)
from gui.state import RunRecord, Session

# header, tooltip, value getter (run metrics dict, is_baseline) -> (display, raw value)
COLUMNS = (
    ("Run", "Baseline = your model as float32 .tflite."),
    ("Recipe", "The steps of the recipe."),
    (".tflite accuracy", "Top-1 on the test split, running the exported .tflite with LiteRT."),
    ("Keras accuracy", "Top-1 of the Keras model before conversion (same test split)."),
    (
        "Accuracy change",
        "Baseline .tflite accuracy minus this run's .tflite accuracy (points), judged by the "
        "accuracy budget: ✓ within, ⚠ over, ✗ collapsed.",
    ),
    ("Raw size", "Size of the .tflite file (flash on the device)."),
    ("gzip size", "Size of the .tflite after gzip -9 (download size)."),
    ("Ratio raw", "Baseline raw size / this raw size."),
    ("Ratio gzip", "Baseline gzip size / this gzip size."),
    ("Sparsity", "Fraction of exact zeros in Conv/Dense kernels of the exported model."),
    (
        "Latency (this computer)",
        "Median time of one inference with LiteRT on this computer's CPU (not on the device).",
    ),
)
# Shown after COLUMNS (not in the CSV): does the run's .tflite deploy?
DEPLOY_HEADER = (
    "Deploy",
    "⚠ when the .tflite uses Select-TF (Flex) ops, which need the full TensorFlow runtime, "
    "or ops that TensorFlow Lite for Microcontrollers lacks, or when the run is over the "
    "accuracy budget. Click for the deployment panel.",
)
DEPLOY_COL = len(COLUMNS)
RUN_COL, ACC_COL, CHANGE_COL = 0, 2, 4
BASELINE_BG = "#f3f3f3"
BAR_PITCH_PX = 18  # one row of the per-layer chart: room for one line of label text
BAR_NAME_CHARS = 30  # longer layer names are shortened in the middle (full name: table)


def run_row(run: RunRecord | None, baseline: dict[str, Any]) -> list[tuple[str, Any]]:
    """(text, raw value) per column for a run, or for the baseline when ``run`` is None."""
    if run is None:
        b = baseline
        return [
            ("Baseline", "baseline"),
            ("float32, no optimizations", ""),
            (fmt_pct(b.get("accuracy")), b.get("accuracy")),
            (fmt_pct(b.get("keras_accuracy")), b.get("keras_accuracy")),
            ("—", None),
            (fmt_bytes(b.get("tflite_bytes")), b.get("tflite_bytes")),
            (fmt_bytes(b.get("tflite_gzip_bytes")), b.get("tflite_gzip_bytes")),
            ("1.00×", 1.0),
            ("1.00×", 1.0),
            (fmt_pct(b.get("sparsity"), 1), b.get("sparsity")),
            (fmt_ms(b.get("latency_ms")), b.get("latency_ms")),
        ]
    m = run.metrics or {}
    c = run.compressed
    drop = m.get("accuracy_drop")
    base_acc, acc = run.baseline.get("accuracy"), c.get("accuracy")
    if isinstance(base_acc, (int, float)) and isinstance(acc, (int, float)):
        change = change_text(base_acc, acc)
    elif isinstance(drop, (int, float)):
        change = change_text(drop, 0.0)  # the drop alone: as if from `drop` to 0
    else:
        change = "—"
    steps = recipe_text(run.recipe)
    return [
        (run.name, run.name),
        (steps, steps),
        (fmt_pct(acc), acc),
        (fmt_pct(c.get("keras_accuracy")), c.get("keras_accuracy")),
        (change, drop),
        (fmt_bytes(c.get("tflite_bytes")), c.get("tflite_bytes")),
        (fmt_bytes(c.get("tflite_gzip_bytes")), c.get("tflite_gzip_bytes")),
        (fmt_ratio(m.get("ratio_raw")), m.get("ratio_raw")),
        (fmt_ratio(m.get("ratio_gzip")), m.get("ratio_gzip")),
        (fmt_pct(c.get("sparsity"), 1), c.get("sparsity")),
        (fmt_ms(c.get("latency_ms")), c.get("latency_ms")),
    ]


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def recipe_text(recipe: dict[str, Any]) -> str:
    """Short form of a recipe: 'prune 80 % (12 ep) → int8'."""
    parts = []
    for s in recipe.get("steps", []):
        t = s.get("type", "?")
        if t == "prune":
            parts.append(f"prune {s.get('target_sparsity', 0) * 100:.0f} % ({s.get('epochs')} ep)")
        elif t == "cluster":
            parts.append(f"cluster {s.get('clusters')} ({s.get('epochs')} ep)")
        elif t == "distill":
            parts.append(f"distill {s.get('width')}× ({s.get('epochs')} ep)")
        elif t == "quantize":
            parts.append(str(s.get("mode", "quantize")) + (" sparse" if s.get("sparse") else ""))
        elif "epochs" in s:
            parts.append(f"{t} ({s.get('epochs')} ep)")
        else:  # a technique that does not train
            parts.append(str(t))
    return " → ".join(parts)


def run_subject(run: RunRecord) -> str:
    """The key of the model + dataset + split ``run`` ran on ("" when unknown)."""
    return str(getattr(run, "subject", "") or "")


def _model_name(spec: str) -> str:
    if not spec or spec == "demo":
        return "Demo model"
    return Path(spec).name or spec


def _data_name(spec: str) -> str:
    if not spec or spec == "demo":
        return "demo digits"
    return Path(spec).name or spec


def run_subject_label(run: RunRecord) -> str:
    """How the comparison of ``run`` is named on screen: 'model · data (split …)'."""
    label = str(getattr(run, "subject_label", "") or "")
    return label or f"{_model_name(run.model)} · {_data_name(run.data)}"


def _safe_name(text: str) -> str:
    """A file-name-safe version of ``text`` (letters, digits, '-', '_', '.')."""
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return out.strip("_.") or "model"


def _short_layer_name(name: str) -> str:
    if len(name) <= BAR_NAME_CHARS:
        return name
    head = (BAR_NAME_CHARS - 1) // 2
    return name[:head] + "…" + name[-(BAR_NAME_CHARS - 1 - head) :]


class ResultsTab(QWidget):
    """Built on ``Session``: call ``refresh()`` after runs, the baseline or the session's
    subject change (it re-reads the session).

    ``budgetChanged(pts)`` is emitted when the user edits the accuracy budget;
    ``set_accuracy_budget(pts)`` sets it from outside (no signal) and forwards it to the
    deployment panel. ``reset()`` empties the tab as at a fresh launch. ``open_url`` opens
    the *Show in folder* location (replace it in tests).
    """

    runSelected = Signal(object)  # RunRecord | None
    budgetChanged = Signal(float)

    def __init__(
        self,
        session: Session,
        errors: ErrorReporter,
        last_folder: Callable[[str], str] | None = None,
        remember_folder: Callable[[str, str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.errors = errors
        self._folder = last_folder or (lambda _k: "")
        self._remember = remember_folder or (lambda _k, _p: None)
        self.open_url: Callable[[QUrl], Any] = QDesktopServices.openUrl
        self.rows: list[RunRecord | None] = []
        self.subject: str | None = None  # chosen in the combo; None: follow the session
        self._seen_current: str | None = None
        self.shown_subject = ""
        try:
            self.budget = check_budget(getattr(session, "accuracy_budget", DEFAULT_BUDGET_PTS))
        except ValueError:
            self.budget = DEFAULT_BUDGET_PTS
        self.export_folder: Path | None = None  # folder of the last export (Show in folder)
        self.export_message = ""
        self._status_bar: QStatusBar | None = None

        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.subject_caption = QLabel("Comparison:")
        self.subject_combo = QComboBox()
        self.subject_combo.setToolTip(
            "This project holds runs of several models, datasets or splits. Runs are compared "
            "only with the baseline of the model + data + split they ran on."
        )
        self.subject_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.subject_combo.currentIndexChanged.connect(self._on_subject_chosen)
        top.addWidget(self.subject_caption)
        top.addWidget(self.subject_combo)
        top.addStretch(1)
        budget_label = QLabel("Accuracy budget:")
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setRange(0.0, 100.0)
        self.budget_spin.setSingleStep(0.5)
        self.budget_spin.setDecimals(2)
        self.budget_spin.setSuffix(" pts")
        self.budget_spin.setKeyboardTracking(False)  # typed values count on Enter / leaving
        self.budget_spin.setValue(self.budget)
        self._budget_tooltip()
        budget_label.setBuddy(self.budget_spin)
        self.budget_spin.valueChanged.connect(self._on_budget_edited)
        top.addWidget(budget_label)
        top.addWidget(self.budget_spin)
        lay.addLayout(top)
        self.header = QLabel("")
        self.header.setWordWrap(True)
        lay.addWidget(self.header)
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS) + 1)
        self.table.setHorizontalHeaderLabels([c[0] for c in (*COLUMNS, DEPLOY_HEADER)])
        for i, (_h, tip) in enumerate((*COLUMNS, DEPLOY_HEADER)):
            self.table.horizontalHeaderItem(i).setToolTip(tip)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.cellClicked.connect(self._on_cell_clicked)
        split.addWidget(self.table)

        self.charts = QWidget()
        self._charts_layout = QHBoxLayout(self.charts)
        self._charts_layout.setContentsMargins(0, 0, 0, 0)
        self.charts.setMinimumHeight(200)
        self.scatter_plot: Any = None  # pyqtgraph widgets, built when first needed
        self.bars_plot: Any = None
        self.bars_scroll: QScrollArea | None = None
        self.bars_title: QLabel | None = None
        self.bar_names: list[str] = []
        self.point_labels: list[Any] = []
        self.deploy = DeployPanel(errors, self._folder, self._remember)
        self.deploy.set_accuracy_budget(self.budget)
        self.deploy.exportTfliteRequested.connect(
            lambda: self._export_artifact_dialog("model.tflite")
        )
        self.deploy.exportKeras3Requested.connect(self._export_keras3_dialog)
        self.deploy.exported.connect(lambda p: self.confirm_export(Path(p)))
        self.lower_tabs = QTabWidget()
        self.lower_tabs.addTab(self.charts, "Charts")
        self.lower_tabs.addTab(self.deploy, "Deployment")
        self.lower_tabs.setTabToolTip(
            1, "Ops, runtime compatibility, memory estimate and int8 I/O of the selected run."
        )
        split.addWidget(self.lower_tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 2)
        split.setSizes([170, 520])  # room for the deployment panel at 1280×800
        lay.addWidget(split, 1)

        row = QHBoxLayout()
        self.export_tflite = QPushButton("Export .tflite…")
        self.export_keras = QPushButton("Export .keras…")
        self.export_tflite.setToolTip(
            "The .tflite carries metadata (class labels, input normalization) when the run "
            "knows them. Proposed name: <model>-<recipe>.tflite next to the model."
        )
        self.export_keras.setToolTip("The compressed Keras 2 (tf_keras) model of the run.")
        self.export_keras3 = QPushButton("Export Keras 3 model…")
        self.export_keras3.setToolTip(
            "The compressed model in your model's own Keras 3 architecture "
            "(model_keras3.keras; written for models imported from Keras 3)."
        )
        self.export_csv = QPushButton("Export table (CSV)…")
        self.export_png = QPushButton("Export charts (PNG)…")
        self.export_tflite.clicked.connect(lambda: self._export_artifact_dialog("model.tflite"))
        self.export_keras.clicked.connect(lambda: self._export_artifact_dialog("model.keras"))
        self.export_keras3.clicked.connect(self._export_keras3_dialog)
        self.export_csv.clicked.connect(self._export_csv_dialog)
        self.export_png.clicked.connect(self._export_png_dialog)
        for b in (
            self.export_tflite,
            self.export_keras,
            self.export_keras3,
            self.export_csv,
            self.export_png,
        ):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self._export_row = row

        # Added to the window's status bar after an export (see confirm_export).
        self.show_folder_button = QPushButton("Show in folder")
        self.show_folder_button.setToolTip("Open the folder of the exported file.")
        self.show_folder_button.clicked.connect(self.show_export_folder)
        self.show_folder_button.hide()
        self.refresh()

    def ensure_charts(self) -> None:
        """Create the scatter and bar charts (imports pyqtgraph) the first time they are needed."""
        if self.scatter_plot is not None:
            return
        pg = charts.pg()
        self.scatter_plot = charts.make_plot(
            "Accuracy vs gzip size (one point per run)", "gzip size (KB)"
        )
        self.scatter_plot.setLabel("left", ".tflite accuracy (%)")
        self.runs_scatter = pg.ScatterPlotItem(size=11, brush=pg.mkBrush("#1f77b4"), name="runs")
        self.base_scatter = pg.ScatterPlotItem(
            size=18, symbol="star", brush=pg.mkBrush("#d62728"), name="baseline"
        )
        self.scatter_plot.addItem(self.runs_scatter)
        self.scatter_plot.addItem(self.base_scatter)
        self._charts_layout.addWidget(self.scatter_plot, 1)

        # Per-layer sparsity: one horizontal bar per layer, layer names on the left axis at a
        # fixed pitch, in a scroll area — readable for any number of layers.
        box = QWidget()
        box_lay = QVBoxLayout(box)
        box_lay.setContentsMargins(0, 0, 0, 0)
        box_lay.setSpacing(2)
        self.bars_title = QLabel("<b>Per-layer sparsity of the selected run</b>")
        self.bars_title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        box_lay.addWidget(self.bars_title)
        self.bars_plot = pg.PlotWidget()
        self.bars_plot.setMenuEnabled(False)
        self.bars_plot.setMouseEnabled(x=False, y=False)
        self.bars_plot.hideButtons()
        self.bars_plot.showAxis("top")
        self.bars_plot.hideAxis("bottom")
        self.bars_plot.setLabel("top", "zeros (%)")
        self.bars_plot.showGrid(x=True, y=False, alpha=0.25)
        self.bars_plot.getViewBox().invertY(True)
        self.bars_plot.setXRange(0, 100, padding=0.02)
        for name in ("left", "top"):
            self.bars_plot.getAxis(name).setStyle(maxTickLevel=1)
        # Bars are built vertically (x = layer index, height = zeros %) and drawn with x and
        # y swapped, so they lie horizontally with their layer on the left axis.
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush="#2ca02c")
        self.bars.setTransform(QTransform(0, 1, 1, 0, 0, 0))
        self.bars_plot.addItem(self.bars)
        self.bars_scroll = QScrollArea()
        self.bars_scroll.setWidgetResizable(True)
        self.bars_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.bars_scroll.setWidget(self.bars_plot)
        box_lay.addWidget(self.bars_scroll, 1)
        self._charts_layout.addWidget(box, 1)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        if self.scatter_plot is None:
            self.refresh()
        super().showEvent(event)

    # -- subjects -------------------------------------------------------------------------
    def current_subject(self) -> str:
        """The session's current model + data + split key ("" when unknown)."""
        return str(getattr(self.session, "subject", "") or "")

    def subjects(self) -> list[tuple[str, str, int]]:
        """``(key, label, finished runs)`` per comparison in the session, in the order their
        first run appeared; the current one is included once a model is loaded."""
        out: dict[str, list[Any]] = {}
        for run in self.session.finished_runs():
            key = run_subject(run)
            if key not in out:
                out[key] = [run_subject_label(run), 0]
            out[key][1] += 1
        cur = self.current_subject()
        label = str(getattr(self.session, "subject_label", "") or "")
        if cur in out:
            out[cur][0] = label or out[cur][0]
        elif self.session.model is not None or self.session.baseline:
            name = self.session.model.display_name if self.session.model else "Current model"
            out[cur] = [label or f"{name} · {_data_name(self.session.data.spec)}", 0]
        return [(k, str(v[0]), int(v[1])) for k, v in out.items()]

    def _choose_subject(self, keys: list[str]) -> str:
        cur = self.current_subject()
        if cur != self._seen_current:  # another model / data / split: follow it
            self._seen_current = cur
            self.subject = None
        if self.subject is not None and self.subject in keys:
            return self.subject
        if cur in keys:
            return cur
        runs = self.session.finished_runs()
        return run_subject(runs[-1]) if runs else cur

    def show_subject(self, key: str) -> None:
        """Show the comparison ``key`` (as if chosen in the combo)."""
        self.subject = key
        self.refresh()

    def _on_subject_chosen(self, index: int) -> None:
        key = self.subject_combo.itemData(index)
        if isinstance(key, str) and key != self.shown_subject:
            self.show_subject(key)

    def _fill_subject_combo(self, subjects: list[tuple[str, str, int]], chosen: str) -> None:
        combo = self.subject_combo
        combo.blockSignals(True)
        combo.clear()
        for key, label, n in subjects:
            combo.addItem(f"{label} — {n} run{'s' if n != 1 else ''}", key)
            combo.setItemData(combo.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        keys = [k for k, _l, _n in subjects]
        if chosen in keys:
            combo.setCurrentIndex(keys.index(chosen))
        combo.blockSignals(False)
        several = len(subjects) > 1
        combo.setVisible(several)
        self.subject_caption.setVisible(several)

    # -- budget ---------------------------------------------------------------------------
    def set_accuracy_budget(self, pts: float) -> None:
        """Judge runs by ``pts`` points (no ``budgetChanged``); forwarded to the deploy panel.
        ValueError outside 0–100."""
        pts = check_budget(pts)
        self.budget_spin.blockSignals(True)
        self.budget_spin.setValue(pts)
        self.budget_spin.blockSignals(False)
        self._apply_budget(pts)

    def _on_budget_edited(self, value: float) -> None:
        self._apply_budget(float(value))
        self.budgetChanged.emit(self.budget)

    def _apply_budget(self, pts: float) -> None:
        self.budget = pts
        self._budget_tooltip()
        self.deploy.set_accuracy_budget(pts)
        self.refresh()

    def _budget_tooltip(self) -> None:
        self.budget_spin.setToolTip(
            "The largest accuracy drop (points, .tflite on the test split) a run may have and "
            f"still count as a success. A drop of {collapse_pts(self.budget):g} points or more "
            "counts as collapsed. Saved with the project."
        )

    # -- view -----------------------------------------------------------------------------
    def runs_shown(self) -> list[RunRecord]:
        """The finished runs of the comparison on screen."""
        return [r for r in self.session.finished_runs() if run_subject(r) == self.shown_subject]

    def baseline(self) -> dict[str, Any]:
        """The baseline of the comparison on screen: the one its newest run was measured
        against (the ratios refer to it), else the Model tab's measurement when it is the
        current model + data + split."""
        for run in reversed(self.runs_shown()):
            if run.baseline:
                return run.baseline
        if self.shown_subject == self.current_subject():
            return self.session.baseline or {}
        return {}

    def refresh(self) -> None:
        selected = self.selected_run()
        subjects = self.subjects()
        self.shown_subject = self._choose_subject([k for k, _l, _n in subjects])
        self._fill_subject_combo(subjects, self.shown_subject)
        runs = self.runs_shown()
        base = self.baseline()
        self.rows = ([None] if base else []) + list(runs)
        self.table.setRowCount(len(self.rows))
        for r, run in enumerate(self.rows):
            self._fill_row(r, run, base)
        label = next((lab for k, lab, _n in subjects if k == self.shown_subject), "")
        of = f" of {label}" if label and len(subjects) > 1 else ""
        if runs:
            self.header.setText(
                f"{len(runs)} finished run(s){of} compared with their baseline, judged by the "
                f"{self.budget:g}-point accuracy budget. Sizes are of the .tflite files; "
                "accuracy is measured on the test split; latency is on this computer, not on "
                "the device."
            )
        else:
            self.header.setText(
                "No finished runs yet. Run a recipe in the Compress tab; each finished run "
                "appears here beside the baseline."
            )
        if self.rows or self.isVisible():
            self.ensure_charts()
        if self.scatter_plot is not None:
            self._draw_scatter(runs, base)
        target = selected if selected in runs else (runs[-1] if runs else None)
        if target is not None:
            self.select_run(target)
        else:
            self._draw_bars(None)
            self._show_deploy(None)
        self._sync_buttons()

    def _fill_row(self, r: int, run: RunRecord | None, base: dict[str, Any]) -> None:
        v = run_verdict(run.metrics, self.budget) if run is not None else None
        tip = verdict_tooltip(run.metrics, self.budget) if run is not None else ""
        for c, (text, raw) in enumerate(run_row(run, base)):
            if c == CHANGE_COL and v is not None:
                text = f"{VERDICT_MARKS[v]} {text}"
            item = QTableWidgetItem(text)
            if c >= 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if run is None:
                item.setBackground(QColor(BASELINE_BG))
            if c in (7, 8) or (c == CHANGE_COL and v not in (None, "within")):
                f = item.font()
                f.setBold(True)
                item.setFont(f)
            if v is not None and c in (RUN_COL, ACC_COL, CHANGE_COL):
                item.setForeground(QColor(VERDICT_COLORS[v]))
                item.setToolTip(tip[:1].upper() + tip[1:])
            item.setData(Qt.ItemDataRole.UserRole, raw)
            self.table.setItem(r, c, item)
        self.table.setItem(r, DEPLOY_COL, self._badge_item(run))

    def _badge_item(self, run: RunRecord | None) -> QTableWidgetItem:
        report = load_report(run) if run is not None else None
        badge = deploy_badge(report, run.metrics, self.budget) if run is not None else None
        if badge is None:
            item = QTableWidgetItem("" if run is None else "—")
            if run is not None:
                item.setToolTip("No deployment report for this run.")
            else:
                item.setBackground(QColor(BASELINE_BG))
            return item
        text, color, tip = badge
        item = QTableWidgetItem(text)
        item.setForeground(QColor(color))
        item.setToolTip(tip)
        if not text.startswith("✓"):
            f = item.font()
            f.setBold(True)
            item.setFont(f)
        return item

    def _show_deploy(self, run: RunRecord | None) -> None:
        self.deploy.set_run(run)
        badge = deploy_badge(self.deploy.report, run.metrics if run else None, self.budget)
        warn = bool(badge and not badge[0].startswith("✓"))
        self.lower_tabs.setTabText(1, "Deployment ⚠" if warn else "Deployment")

    def _on_cell_clicked(self, _row: int, column: int) -> None:
        if column == DEPLOY_COL:
            self.lower_tabs.setCurrentWidget(self.deploy)

    def _draw_scatter(self, runs: list[RunRecord], base: dict[str, Any]) -> None:
        pg = charts.pg()
        for item in self.point_labels:
            self.scatter_plot.removeItem(item)
        self.point_labels = []
        xs, ys, brushes = [], [], []
        for run in runs:
            c = run.compressed
            if _is_num(c.get("tflite_gzip_bytes")) and _is_num(c.get("accuracy")):
                xs.append(c["tflite_gzip_bytes"] / 1024)
                ys.append(c["accuracy"] * 100)
                v = run_verdict(run.metrics, self.budget)
                color = VERDICT_COLORS[v] if v else "#1f77b4"
                brushes.append(pg.mkBrush(color))
                label = pg.TextItem(run.name.split(" ")[0], color=color, anchor=(0, 1))
                label.setPos(xs[-1], ys[-1])
                self.scatter_plot.addItem(label)
                self.point_labels.append(label)
        self.runs_scatter.setData(xs, ys, brush=brushes)
        if _is_num(base.get("tflite_gzip_bytes")) and _is_num(base.get("accuracy")):
            bx, by = base["tflite_gzip_bytes"] / 1024, base["accuracy"] * 100
            self.base_scatter.setData([bx], [by])
            label = pg.TextItem("baseline", color="#d62728", anchor=(1.1, 1.1))
            label.setPos(bx, by)
            self.scatter_plot.addItem(label)
            self.point_labels.append(label)
        else:
            self.base_scatter.setData([], [])
        all_x = xs + ([base["tflite_gzip_bytes"] / 1024] if self.base_scatter.data.size else [])
        all_y = ys + ([base["accuracy"] * 100] if self.base_scatter.data.size else [])
        if all_x:
            self.scatter_plot.setXRange(0, max(all_x) * 1.12, padding=0)
            # at least ±1 point of accuracy, so tiny differences do not look dramatic
            lo, hi = min(all_y), max(all_y)
            pad = max(1.0, (hi - lo) * 0.15)
            top = min(100.5, hi + pad)
            self.scatter_plot.setYRange(max(0.0, lo - pad), top, padding=0)
            # labels of points near the top go below them, so the frame does not cut them
            near_top = top - 0.08 * (top - max(0.0, lo - pad))
            for item in self.point_labels:
                if item.pos().y() > near_top:
                    item.setAnchor((item.anchor.x(), -0.1))

    def _draw_bars(self, run: RunRecord | None) -> None:
        if self.bars_plot is None or self.bars_title is None:
            return
        per_layer = run.compressed.get("per_layer_sparsity") if run else None
        if not isinstance(per_layer, dict):
            per_layer = {}
        names = [str(n) for n in per_layer]
        self.bar_names = names
        heights = [float(v) * 100 if _is_num(v) else 0.0 for v in per_layer.values()]
        self.bars.setOpts(x=list(range(len(names))), height=heights, width=0.6)
        ax = self.bars_plot.getAxis("left")
        shown = [_short_layer_name(n) for n in names]
        ax.setTicks([[(i, s) for i, s in enumerate(shown)]])
        fm = QFontMetrics(QGuiApplication.font())
        widest = max((fm.horizontalAdvance(s) for s in shown), default=30)
        ax.setWidth(widest + 16)
        n = max(1, len(names))
        self.bars_plot.setYRange(-0.6, n - 0.4, padding=0)
        # fixed pitch per layer: the scroll area scrolls instead of squeezing the labels
        self.bars_plot.setMinimumHeight(max(140, n * BAR_PITCH_PX + 60))
        self.bars_plot.setToolTip(
            "\n".join(f"{nm}: {h:.1f} % zeros" for nm, h in zip(names, heights, strict=True))
            if 0 < len(names) <= 40
            else ""
        )
        if run is None:
            title = "Per-layer sparsity of the selected run"
        else:
            title = f"Per-layer sparsity — {run.name} ({len(names)} layers)"
        self.bars_title.setText(f"<b>{title}</b>")
        if self.bars_scroll is not None:
            self.bars_scroll.verticalScrollBar().setValue(0)

    def selected_run(self) -> RunRecord | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        r = rows[0].row()
        return self.rows[r] if 0 <= r < len(self.rows) else None

    def select_run(self, run: RunRecord) -> None:
        """Select ``run`` (switching to its comparison if another one is shown)."""
        if run not in self.rows and run.status == "finished" and run in self.session.runs:
            if run_subject(run) != self.shown_subject:
                self.subject = run_subject(run)
                self.refresh()
        if run in self.rows:
            self.table.selectRow(self.rows.index(run))
            self._draw_bars(run)
            self._show_deploy(run)

    def _on_selection(self) -> None:
        run = self.selected_run()
        self._draw_bars(run)
        self._show_deploy(run)
        self._sync_buttons()
        self.runSelected.emit(run)

    def _sync_buttons(self) -> None:
        run = self.selected_run()
        self.export_tflite.setEnabled(bool(run and run.artifact("model.tflite")))
        self.export_keras.setEnabled(bool(run and run.artifact("model.keras")))
        k3 = self.keras3_artifact(run)
        self.export_keras3.setVisible(k3 is not None)
        self.export_keras3.setEnabled(k3 is not None)
        self.export_csv.setEnabled(bool(self.rows))

    def reset(self) -> None:
        """Back to a fresh launch: no comparison chosen, default budget (no signal), empty
        table, charts and deployment panel, no export confirmation. Does not read the
        session; ``refresh()`` shows it again."""
        self.subject = None
        self._seen_current = None
        self.shown_subject = ""
        self.budget_spin.blockSignals(True)
        self.budget_spin.setValue(DEFAULT_BUDGET_PTS)
        self.budget_spin.blockSignals(False)
        self.budget = DEFAULT_BUDGET_PTS
        self._budget_tooltip()
        self.deploy.set_accuracy_budget(DEFAULT_BUDGET_PTS)
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.rows = []
        self.table.setRowCount(0)
        self.table.blockSignals(False)
        self._fill_subject_combo([], "")
        self.header.setText(
            "No finished runs yet. Run a recipe in the Compress tab; each finished run "
            "appears here beside the baseline."
        )
        if self.scatter_plot is not None:
            self._draw_scatter([], {})
        self._draw_bars(None)
        self._show_deploy(None)
        self.lower_tabs.setCurrentIndex(0)
        self.export_folder = None
        self.export_message = ""
        self.show_folder_button.hide()
        self._sync_buttons()

    # -- export ---------------------------------------------------------------------------
    def export_artifact(self, name: str, dest: str | Path) -> bool:
        run = self.selected_run()
        src = run.artifact(name) if run else None
        if src is None:
            self.errors.report("Nothing to export", f"the selected run has no {name}")
            return False
        try:
            shutil.copyfile(src, dest)
        except OSError as exc:
            self.errors.report("Export failed", f"cannot write {dest}: {exc.strerror or exc}")
            return False
        self.confirm_export(Path(dest))
        return True

    def export_csv_file(self, dest: str | Path) -> bool:
        """The table as CSV with raw numbers (fractions, bytes, ms) for spreadsheets, and
        each run's verdict under the accuracy budget."""
        headers = [
            "run",
            "recipe",
            "tflite_accuracy",
            "keras_accuracy",
            "accuracy_drop",
            "tflite_bytes",
            "tflite_gzip_bytes",
            "ratio_raw",
            "ratio_gzip",
            "sparsity",
            "latency_ms_this_computer",
            f"verdict_budget_{self.budget:g}_pts",
        ]
        base = self.baseline()
        try:
            with open(dest, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(headers)
                for run in self.rows:
                    values = ["" if v is None else v for _t, v in run_row(run, base)]
                    v = run_verdict(run.metrics, self.budget) if run is not None else None
                    w.writerow([*values, v or ""])
        except OSError as exc:
            self.errors.report("Export failed", f"cannot write {dest}: {exc.strerror or exc}")
            return False
        self.confirm_export(Path(dest))
        return True

    def export_png_file(self, dest: str | Path) -> bool:
        self.ensure_charts()
        ok = self.charts.grab().save(str(dest), "PNG")
        if not ok:
            self.errors.report("Export failed", f"cannot write {dest}")
        else:
            self.confirm_export(Path(dest))
        return ok

    def confirm_export(self, path: Path) -> None:
        """Say in the window's status bar that ``path`` was written, with *Show in folder*."""
        self.export_folder = path.parent
        self.export_message = f"Exported {path.name} to {path.parent}"
        win = self.window()
        bar = win.statusBar() if isinstance(win, QMainWindow) else None
        if bar is None:
            return
        if bar is not self._status_bar:
            self._status_bar = bar
            bar.addPermanentWidget(self.show_folder_button)
            bar.messageChanged.connect(self._on_status_message)
        bar.showMessage(self.export_message, 20_000)
        self.show_folder_button.show()

    def _on_status_message(self, text: str) -> None:
        self.show_folder_button.setVisible(bool(text) and text == self.export_message)

    def show_export_folder(self) -> None:
        """Open the folder of the last export in the file manager."""
        if self.export_folder is not None:
            self.open_url(QUrl.fromLocalFile(str(self.export_folder)))

    def model_path(self, run: RunRecord) -> Path | None:
        """The model file (or SavedModel folder) ``run`` compressed, if it is on disk."""
        if not run.model or run.model == "demo":
            return None
        p = Path(run.model)
        if not p.is_absolute() and self.session.project_path:
            p = Path(self.session.project_path).parent / p
        return p if p.exists() else None

    def default_export_path(self, run: RunRecord, ext: str) -> Path:
        """``<model stem>-<recipe name><ext>`` next to the model; for the demo model (or a
        model no longer on disk) in the last export folder."""
        model = self.model_path(run)
        if model is not None:
            stem = model.name if model.is_dir() else model.stem  # a SavedModel is a folder
        else:
            stem = Path(run.model).stem if run.model and run.model != "demo" else "demo"
        recipe = str(run.recipe.get("name") or "") or run.name
        name = f"{_safe_name(stem)}-{_safe_name(recipe)}{ext}"
        folder = model.parent if model is not None else Path(self._folder("export") or ".")
        return folder / name

    def _ask_save(self, title: str, start: Path | str, filt: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(start), filt)
        if path:
            self._remember("export", path)
        return path

    def keras3_artifact(self, run: RunRecord | None) -> Path | None:
        """The run's Keras 3 model file (``metrics["files"]["keras3"]``) if it is on disk."""
        name = keras3_file(run.metrics) if run is not None else None
        return run.artifact(name) if run is not None and name else None

    def export_keras3_file(self, dest: str | Path) -> bool:
        """Copy the selected run's Keras 3 model to ``dest`` (confirmed in the status bar,
        with *Show in folder*); a run without one is reported."""
        run = self.selected_run()
        name = keras3_file(run.metrics) if run is not None else None
        if not name:
            self.errors.report(
                "Nothing to export",
                "the selected run has no Keras 3 model (only models imported from Keras 3 get one)",
            )
            return False
        return self.export_artifact(name, dest)

    def _export_keras3_dialog(self) -> None:
        run = self.selected_run()
        if run is None or self.keras3_artifact(run) is None:
            return
        start = self.default_export_path(run, "-keras3.keras")
        path = self._ask_save("Export Keras 3 model", start, "Keras 3 model (*.keras)")
        if path:
            self.export_keras3_file(path)

    def _export_artifact_dialog(self, name: str) -> None:
        run = self.selected_run()
        if run is None:
            return
        ext = Path(name).suffix
        path = self._ask_save(f"Export {ext}", self.default_export_path(run, ext), f"*{ext}")
        if path:
            self.export_artifact(name, path)

    def add_export_button(self, button: QWidget) -> None:
        """A button of the window's (Export report…) after the run's own export buttons."""
        self._export_row.insertWidget(self._export_row.count() - 1, button)

    def _export_csv_dialog(self) -> None:
        start = Path(self._folder("export") or ".") / "featherweight-results.csv"
        path = self._ask_save("Export table", start, "CSV (*.csv)")
        if path:
            self.export_csv_file(path)

    def _export_png_dialog(self) -> None:
        start = Path(self._folder("export") or ".") / "featherweight-charts.png"
        path = self._ask_save("Export charts", start, "PNG (*.png)")
        if path:
            self.export_png_file(path)
