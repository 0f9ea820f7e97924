"""Results tab: every finished run beside the baseline (with a deployment badge),
accuracy-vs-size scatter and per-layer sparsity bars of the selected run, its deployment panel
(gui/deploy_panel.py), and export (.tflite, .keras, C array, CSV, PNG)."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui import charts
from gui.deploy_panel import DeployPanel, deploy_badge, load_report
from gui.errors import ErrorReporter
from gui.format import fmt_bytes, fmt_drop, fmt_ms, fmt_pct, fmt_ratio
from gui.state import RunRecord, Session

# header, tooltip, value getter (run metrics dict, is_baseline) -> (display, raw value)
COLUMNS = (
    ("Run", "Baseline = your model as float32 .tflite."),
    ("Recipe", "The steps of the recipe."),
    (".tflite accuracy", "Top-1 on the test split, running the exported .tflite with LiteRT."),
    ("Keras accuracy", "Top-1 of the Keras model before conversion (same test split)."),
    ("Drop", "Baseline .tflite accuracy minus this run's .tflite accuracy (points)."),
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
    "or ops that TensorFlow Lite for Microcontrollers lacks. Click for the deployment panel.",
)
DEPLOY_COL = len(COLUMNS)


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
    steps = recipe_text(run.recipe)
    return [
        (run.name, run.name),
        (steps, steps),
        (fmt_pct(c.get("accuracy")), c.get("accuracy")),
        (fmt_pct(c.get("keras_accuracy")), c.get("keras_accuracy")),
        (fmt_drop(drop), drop),
        (fmt_bytes(c.get("tflite_bytes")), c.get("tflite_bytes")),
        (fmt_bytes(c.get("tflite_gzip_bytes")), c.get("tflite_gzip_bytes")),
        (fmt_ratio(m.get("ratio_raw")), m.get("ratio_raw")),
        (fmt_ratio(m.get("ratio_gzip")), m.get("ratio_gzip")),
        (fmt_pct(c.get("sparsity"), 1), c.get("sparsity")),
        (fmt_ms(c.get("latency_ms")), c.get("latency_ms")),
    ]


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


class ResultsTab(QWidget):
    """Built on ``Session``: call ``refresh()`` after runs or the baseline change."""

    runSelected = Signal(object)  # RunRecord | None

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
        self.rows: list[RunRecord | None] = []

        lay = QVBoxLayout(self)
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
        self.point_labels: list[Any] = []
        self.deploy = DeployPanel(errors, self._folder, self._remember)
        self.deploy.exportTfliteRequested.connect(
            lambda: self._export_artifact_dialog("model.tflite")
        )
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
            "knows them."
        )
        self.export_csv = QPushButton("Export table (CSV)…")
        self.export_png = QPushButton("Export charts (PNG)…")
        self.export_tflite.clicked.connect(lambda: self._export_artifact_dialog("model.tflite"))
        self.export_keras.clicked.connect(lambda: self._export_artifact_dialog("model.keras"))
        self.export_csv.clicked.connect(self._export_csv_dialog)
        self.export_png.clicked.connect(self._export_png_dialog)
        for b in (self.export_tflite, self.export_keras, self.export_csv, self.export_png):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
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
        self.bars_plot = charts.make_plot("Per-layer sparsity of the selected run", "layer")
        self.bars_plot.setLabel("left", "zeros (%)")
        self.bars_plot.setYRange(0, 100)
        self.bars_plot.showGrid(x=False, y=True, alpha=0.25)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush="#2ca02c")
        self.bars_plot.addItem(self.bars)
        self._charts_layout.addWidget(self.bars_plot, 1)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        if self.scatter_plot is None:
            self.refresh()
        super().showEvent(event)

    # -- view -----------------------------------------------------------------------------
    def baseline(self) -> dict[str, Any]:
        """The baseline the runs' ratios refer to (the latest run's metrics.json), else the
        Model tab's measurement."""
        for run in reversed(self.session.finished_runs()):
            if run.baseline:
                return run.baseline
        return self.session.baseline or {}

    def refresh(self) -> None:
        selected = self.selected_run()
        runs = self.session.finished_runs()
        base = self.baseline()
        self.rows = ([None] if base else []) + list(runs)
        self.table.setRowCount(len(self.rows))
        for r, run in enumerate(self.rows):
            for c, (text, raw) in enumerate(run_row(run, base)):
                item = QTableWidgetItem(text)
                if c >= 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if run is None:
                    item.setBackground(QColor("#f3f3f3"))
                if c in (7, 8):
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                item.setData(Qt.ItemDataRole.UserRole, raw)
                self.table.setItem(r, c, item)
            self.table.setItem(r, DEPLOY_COL, self._badge_item(run))
        if runs:
            self.header.setText(
                f"{len(runs)} finished run(s) compared with the baseline. Sizes are of the "
                ".tflite files; accuracy is measured on the test split; latency is on this "
                "computer, not on the device."
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

    def _badge_item(self, run: RunRecord | None) -> QTableWidgetItem:
        badge = deploy_badge(load_report(run)) if run is not None else None
        if badge is None:
            item = QTableWidgetItem("" if run is None else "—")
            if run is not None:
                item.setToolTip("No deployment report for this run.")
            else:
                item.setBackground(QColor("#f3f3f3"))
            return item
        text, color, tip = badge
        item = QTableWidgetItem(text)
        item.setForeground(QColor(color))
        item.setToolTip(tip)
        if text.startswith("⚠"):
            f = item.font()
            f.setBold(True)
            item.setFont(f)
        return item

    def _show_deploy(self, run: RunRecord | None) -> None:
        self.deploy.set_run(run)
        badge = deploy_badge(self.deploy.report)
        warn = bool(badge and badge[0].startswith("⚠"))
        self.lower_tabs.setTabText(1, "Deployment ⚠" if warn else "Deployment")

    def _on_cell_clicked(self, _row: int, column: int) -> None:
        if column == DEPLOY_COL:
            self.lower_tabs.setCurrentWidget(self.deploy)

    def _draw_scatter(self, runs: list[RunRecord], base: dict[str, Any]) -> None:
        for item in self.point_labels:
            self.scatter_plot.removeItem(item)
        self.point_labels = []
        xs, ys = [], []
        for run in runs:
            c = run.compressed
            if isinstance(c.get("tflite_gzip_bytes"), (int, float)) and isinstance(
                c.get("accuracy"), (int, float)
            ):
                xs.append(c["tflite_gzip_bytes"] / 1024)
                ys.append(c["accuracy"] * 100)
                label = charts.pg().TextItem(run.name.split(" ")[0], color="#1f77b4", anchor=(0, 1))
                label.setPos(xs[-1], ys[-1])
                self.scatter_plot.addItem(label)
                self.point_labels.append(label)
        self.runs_scatter.setData(xs, ys)
        if isinstance(base.get("tflite_gzip_bytes"), (int, float)) and isinstance(
            base.get("accuracy"), (int, float)
        ):
            bx, by = base["tflite_gzip_bytes"] / 1024, base["accuracy"] * 100
            self.base_scatter.setData([bx], [by])
            label = charts.pg().TextItem("baseline", color="#d62728", anchor=(1.1, 1.1))
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
            self.scatter_plot.setYRange(max(0.0, lo - pad), min(100.5, hi + pad), padding=0)

    def _draw_bars(self, run: RunRecord | None) -> None:
        if self.bars_plot is None:
            return
        per_layer = run.compressed.get("per_layer_sparsity") if run else None
        if not isinstance(per_layer, dict):
            per_layer = {}
        names = list(per_layer)
        heights = [float(per_layer[n]) * 100 for n in names]
        self.bars.setOpts(x=list(range(len(names))), height=heights, width=0.6)
        ax = self.bars_plot.getAxis("bottom")
        ax.setTicks([[(i, n) for i, n in enumerate(names)]])
        if names:
            self.bars_plot.setXRange(-0.6, len(names) - 0.4, padding=0)
        title = (
            f"Per-layer sparsity — {run.name}" if run else "Per-layer sparsity of the selected run"
        )
        self.bars_plot.setTitle(title, size="10pt")

    def selected_run(self) -> RunRecord | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        r = rows[0].row()
        return self.rows[r] if 0 <= r < len(self.rows) else None

    def select_run(self, run: RunRecord) -> None:
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
        self.export_csv.setEnabled(bool(self.rows))

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
        return True

    def export_csv_file(self, dest: str | Path) -> bool:
        """The table as CSV with raw numbers (fractions, bytes, ms) for spreadsheets."""
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
        ]
        base = self.baseline()
        try:
            with open(dest, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(headers)
                for run in self.rows:
                    w.writerow(["" if v is None else v for _t, v in run_row(run, base)])
        except OSError as exc:
            self.errors.report("Export failed", f"cannot write {dest}: {exc.strerror or exc}")
            return False
        return True

    def export_png_file(self, dest: str | Path) -> bool:
        self.ensure_charts()
        ok = self.charts.grab().save(str(dest), "PNG")
        if not ok:
            self.errors.report("Export failed", f"cannot write {dest}")
        return ok

    def _ask_save(self, title: str, name: str, filt: str) -> str:
        start = str(Path(self._folder("export")) / name)
        path, _ = QFileDialog.getSaveFileName(self, title, start, filt)
        if path:
            self._remember("export", path)
        return path

    def _export_artifact_dialog(self, name: str) -> None:
        run = self.selected_run()
        if run is None:
            return
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in run.name).strip("_")
        ext = Path(name).suffix
        path = self._ask_save(f"Export {ext}", f"{stem}{ext}", f"*{ext}")
        if path:
            self.export_artifact(name, path)

    def _export_csv_dialog(self) -> None:
        path = self._ask_save("Export table", "featherweight-results.csv", "CSV (*.csv)")
        if path:
            self.export_csv_file(path)

    def _export_png_dialog(self) -> None:
        path = self._ask_save("Export charts", "featherweight-charts.png", "PNG (*.png)")
        if path:
            self.export_png_file(path)
