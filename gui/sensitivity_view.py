"""The Model tab's *Sensitivity* view: what each layer can take, from a sensitivity.json document.

State is the document itself (``engine.pipeline.sensitivity.analyze``'s dict, schema_version 1,
see docs/project-format.md); ``SensitivityView.show_document(doc)`` draws it, ``None`` shows the
empty state (a sentence and *Analyze*). The view never runs anything: it emits
``analyzeRequested`` / ``cancelRequested`` / ``recipeRequested`` and the Model tab runs the job
(``show_progress`` / ``show_running`` feed the progress bar while it runs).

Charts (pyqtgraph, imported on first use like gui/charts.py):

- *Pruning curves*: one curve per analysed layer, validation accuracy vs the sparsity of that
  layer alone (0 = the baseline); the legend (up to 12 layers) and hovering name the layer;
  the layer selected in the table (``select_layer``) is drawn thick, the others faded;
- *Heat map*: layers × sparsity, colour = accuracy loss in points (white 0 → dark red ≥ 30),
  the value written in each cell while cells are few;
- *Size*: int8 (compressed) and float32 bytes per layer, horizontal bars;
- *int8 error*: the per-layer int8 error (QuantizationDebugger), worst in red;
- *Clustering* / *Filter pruning*: accuracy vs clusters per layer and vs the fraction of filters
  removed, shown only when the document has them.

The pure helpers (``loss_points``, ``tolerated_value``, ``heat_matrix``) are what the layer table
and the tests read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.charts import make_plot, pg
from gui.format import fmt_bytes

# (document key, grid key, x label, x scale to show, x suffix)
CURVE_KINDS = {
    "prune": ("sparsity", "sparsity of the layer (%)", 100.0),
    "cluster": ("clusters", "clusters per layer", 1.0),
    "filters": ("ratio", "filters / units removed (%)", 100.0),
}
HEAT_MAX_PTS = 30.0  # colour saturates here (points of accuracy lost)
# loss (points) -> colour; positions are fractions of HEAT_MAX_PTS
HEAT_STOPS = (
    (0.0, "#ffffff"),
    (0.5 / HEAT_MAX_PTS, "#fff7bc"),
    (2.0 / HEAT_MAX_PTS, "#fec44f"),
    (5.0 / HEAT_MAX_PTS, "#fe9929"),
    (12.0 / HEAT_MAX_PTS, "#d7301f"),
    (1.0, "#7f0000"),
)
MAX_CELL_LABELS = 400  # write the loss in each heat-map cell up to this many cells
MAX_LEGEND = 12
EMPTY_TEXT = (
    "No sensitivity analysis yet. <b>Analyze</b> prunes, clusters and quantizes each layer "
    "alone (no training) and measures the validation accuracy, to show which layers can "
    "take how much. It takes about a minute for small models."
)
RUNNING_TEXT = (
    "Analysing: each layer is pruned, clustered and quantized alone and the model measured "
    "on the validation split. The charts appear here when it finishes; Cancel stops it."
)
NEEDS_DATA_TEXT = "Choose a dataset first: the analysis measures accuracy on its validation split."


def palette(n: int) -> list[str]:
    """``n`` distinguishable colours (tab10, then evenly spaced hues)."""
    base = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    if n <= len(base):
        return base[:n]
    return [QColor.fromHsvF((i * 0.618034) % 1.0, 0.75, 0.85).name() for i in range(n)]


def doc_layers(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The document's layer entries (dicts with a name)."""
    rows = (doc or {}).get("layers") or []
    return [r for r in rows if isinstance(r, dict) and r.get("name")]


def baseline_accuracy(doc: dict[str, Any] | None) -> float | None:
    b = (doc or {}).get("baseline") or {}
    a = b.get("accuracy") if isinstance(b, dict) else None
    return float(a) if isinstance(a, (int, float)) else None


def curve_points(
    doc: dict[str, Any], entry: dict[str, Any], kind: str = "prune"
) -> list[tuple[float, float]]:
    """(grid value, accuracy) of one layer's curve, sorted by grid value; [] when none."""
    key = CURVE_KINDS[kind][0]
    pts = []
    for p in entry.get(kind) or []:
        if isinstance(p, dict) and isinstance(p.get(key), (int, float)):
            acc = p.get("accuracy")
            if isinstance(acc, (int, float)):
                pts.append((float(p[key]), float(acc)))
    return sorted(pts)


def loss_points(doc: dict[str, Any], accuracy: float) -> float:
    """Accuracy lost against the document's baseline, in points (≥ 0)."""
    base = baseline_accuracy(doc)
    if base is None:
        return 0.0
    return max(0.0, (base - accuracy) * 100.0)


def tolerated_value(
    doc: dict[str, Any], entry: dict[str, Any], max_loss_pts: float, kind: str = "prune"
) -> float | None:
    """``engine.pipeline.sensitivity.tolerated`` against the document's baseline: the most
    aggressive grid value such that it and every milder one lose ≤ ``max_loss_pts``."""
    from engine.pipeline.sensitivity import tolerated as engine_tolerated

    base = baseline_accuracy(doc)
    if base is None or not entry.get(kind):
        return None
    return engine_tolerated(entry, max_loss_pts, kind, baseline=base)


tolerated = tolerated_value  # the layer table's name for it


def heat_matrix(doc: dict[str, Any], kind: str = "prune") -> tuple[list[str], list[float], Any]:
    """(layer names, grid values, numpy array layers × grid of loss points, NaN = not
    measured) for the layers that have a ``kind`` curve."""
    import numpy as np

    key = CURVE_KINDS[kind][0]
    grid = [float(v) for v in ((doc.get("grids") or {}).get(_grid_name(kind)) or [])]
    names: list[str] = []
    rows: list[dict[float, float]] = []
    for entry in doc_layers(doc):
        pts = curve_points(doc, entry, kind)
        if not pts:
            continue
        names.append(str(entry["name"]))
        rows.append({v: loss_points(doc, a) for v, a in pts})
        for v, _a in pts:
            if v not in grid:
                grid.append(v)
    grid = sorted(grid, reverse=(key == "clusters"))
    values = np.full((len(names), len(grid)), np.nan)
    for i, row in enumerate(rows):
        for j, v in enumerate(grid):
            if v in row:
                values[i, j] = row[v]
    return names, grid, values


def _grid_name(kind: str) -> str:
    return {"prune": "prune", "cluster": "cluster", "filters": "filters"}[kind]


def _to_x(kind: str, v: float) -> float:
    """Where grid value ``v`` goes on the x axis (percent; log2 of a cluster count)."""
    if kind == "cluster":
        return math.log2(max(v, 1.0))
    return v * CURVE_KINDS[kind][2]


def _fmt_grid(kind: str, v: float) -> str:
    if kind == "cluster":
        return f"{int(v)}"
    return f"{v * 100:g} %"


class _NameAxis:
    """Ticks for a categorical axis: one per layer name (every k-th when crowded)."""

    @staticmethod
    def ticks(names: Sequence[str], every: int = 1) -> list[list[tuple[float, str]]]:
        return [[(float(i), n) for i, n in enumerate(names) if i % every == 0]]


class SensitivityView(QWidget):
    """See the module docstring. ``doc`` is the document shown (None: empty state)."""

    analyzeRequested = Signal()
    cancelRequested = Signal()
    recipeRequested = Signal()
    layerSelected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: dict[str, Any] | None = None
        self.selected: str | None = None
        self.can_analyze = True
        self.plots: dict[str, Any] = {}  # chart name -> PlotWidget
        self.curves: dict[str, dict[str, Any]] = {}  # kind -> layer name -> PlotDataItem
        self.heat_image: Any = None
        self.heat_values: Any = None
        self.heat_names: list[str] = []
        self.heat_grid: list[float] = []
        self._heat_frame: Any = None
        self._bars: dict[str, Any] = {}
        self._tags: dict[str, Any] = {}  # kind -> TextItem naming the selected curve
        self._legend: Any = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        bar = QHBoxLayout()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: #444;")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.summary, 1)
        self.analyze_button = QPushButton("Analyze")
        self.analyze_button.setToolTip(
            "Measure, layer by layer, what pruning, clustering and int8 cost in validation "
            "accuracy (one-shot, no training). The result is kept in the project."
        )
        self.analyze_button.clicked.connect(self.analyzeRequested)
        self.recipe_button = QPushButton("Make per-layer recipe…")
        self.recipe_button.setToolTip(
            "Turn this analysis into a recipe: a global target spread over the layers by "
            "what each one tolerates, then int8."
        )
        self.recipe_button.clicked.connect(self.recipeRequested)
        bar.addWidget(self.recipe_button)
        bar.addWidget(self.analyze_button)
        lay.addLayout(bar)
        prog = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.cancel_button)
        self.progress_row = QWidget()
        self.progress_row.setLayout(prog)
        prog.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.progress_row)

        self.stack = QStackedWidget()
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet(
            "QLabel { color: #555; border: 2px dashed #bbb; border-radius: 8px; padding: 24px; }"
        )
        self.stack.addWidget(self.empty)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.stack.addWidget(self.tabs)
        lay.addWidget(self.stack, 1)
        self._pages: dict[str, QWidget] = {}
        self.show_running(False)
        self.show_document(None)

    # -- state ----------------------------------------------------------------------------
    def set_can_analyze(self, ok: bool, why: str = "") -> None:
        """Whether *Analyze* may run now (a model and a checked dataset); ``why`` when not."""
        self.can_analyze = ok
        self.analyze_button.setEnabled(ok and not self.progress_row.isVisible())
        self.analyze_button.setToolTip(
            why
            or "Measure, layer by layer, what pruning, clustering and int8 cost in validation "
            "accuracy (one-shot, no training). The result is kept in the project."
        )
        if self.doc is None:
            self.empty.setText(EMPTY_TEXT if ok or not why else f"{EMPTY_TEXT}<br><br>{why}")

    def show_running(self, running: bool, text: str = "") -> None:
        """Show the progress bar and *Cancel* (running) or hide them."""
        self.progress_row.setVisible(running)
        self.analyze_button.setEnabled(self.can_analyze and not running)
        self.recipe_button.setEnabled(self.doc is not None and not running)
        if running:
            self.progress.setValue(0)
            self.progress.setFormat(text or "starting…")
        if self.doc is None:
            self.empty.setText(RUNNING_TEXT if running else EMPTY_TEXT)

    def show_progress(self, fraction: float, text: str = "") -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        pct = f"{fraction * 100:.0f} %"
        self.progress.setFormat(f"{pct} — {text}" if text else pct)

    def show_document(self, doc: dict[str, Any] | None) -> None:
        """Draw ``doc`` (a sensitivity.json document); None: the empty state."""
        self.doc = doc if isinstance(doc, dict) and doc_layers(doc) else None
        self.recipe_button.setEnabled(self.doc is not None and not self.progress_row.isVisible())
        self.analyze_button.setText("Analyze again" if self.doc is not None else "Analyze")
        if self.doc is None:
            self.stack.setCurrentIndex(0)
            self.summary.setText("")
            return
        self.stack.setCurrentIndex(1)
        self.summary.setText(summary_text(self.doc))
        self._build()

    def select_layer(self, name: str | None) -> None:
        """Highlight ``name`` in every chart (None: no highlight)."""
        self.selected = name
        if self.doc is None:
            return
        for kind, curves in self.curves.items():
            self._style_curves(kind, curves)
        self._mark_heat_row()
        self._style_bars()

    # -- building -------------------------------------------------------------------------
    def _page(self, name: str, title: str, widget: QWidget) -> None:
        self._pages[name] = widget
        self.tabs.addTab(widget, title)

    def _build(self) -> None:
        doc = self.doc
        assert doc is not None
        current = self.tabs.currentIndex()
        self.tabs.clear()
        for w in self._pages.values():
            w.deleteLater()
        self._pages.clear()
        self.plots.clear()
        self.curves.clear()
        self._bars.clear()
        self._tags.clear()
        self._page("prune", "Pruning curves", self._curve_plot("prune"))
        self._page("heat", "Heat map", self._heat_plot())
        self._page("bytes", "Size per layer", self._bytes_plot())
        if any(isinstance(e.get("int8_error"), (int, float)) for e in doc_layers(doc)):
            self._page("int8", "int8 error", self._int8_plot())
        if any(e.get("cluster") for e in doc_layers(doc)):
            self._page("cluster", "Clustering", self._curve_plot("cluster"))
        if any(e.get("filters") for e in doc_layers(doc)):
            self._page("filters", "Filter pruning", self._curve_plot("filters"))
        self.tabs.setCurrentIndex(max(0, min(current, self.tabs.count() - 1)))
        self.select_layer(self.selected)

    def _curve_plot(self, kind: str) -> QWidget:
        doc = self.doc
        assert doc is not None
        key, x_label, scale = CURVE_KINDS[kind]
        title = {
            "prune": "Validation accuracy when one layer alone is pruned",
            "cluster": "Validation accuracy when one layer alone is clustered",
            "filters": "Validation accuracy when filters of one layer alone are removed",
        }[kind]
        plot = make_plot(f"<b>{title}</b>", x_label)
        plot.setLabel("left", "accuracy (%)")
        entries = [e for e in doc_layers(doc) if curve_points(doc, e, kind)]
        colors = palette(len(entries))
        base = baseline_accuracy(doc)
        if len(entries) <= MAX_LEGEND:
            # bottom left: the one corner the curves never reach (low accuracy, low sparsity)
            self._legend = plot.addLegend(offset=(10, -10), labelTextSize="8pt")
            self._legend.setBrush(pg().mkBrush(255, 255, 255, 220))
        curves: dict[str, Any] = {}
        all_y: list[float] = []
        for entry, color in zip(entries, colors):
            pts = curve_points(doc, entry, kind)
            if kind != "cluster" and base is not None and pts[0][0] > 0:
                pts = [(0.0, base), *pts]
            xs = [_to_x(kind, v) for v, _a in pts]
            ys = [a * 100 for _v, a in pts]
            all_y += ys
            name = str(entry["name"])
            item = plot.plot(
                xs,
                ys,
                pen=pg().mkPen(color, width=2),
                name=name,
                symbol="o",
                symbolSize=5,
                symbolBrush=color,
                symbolPen=color,
            )
            item.setCurveClickable(True, width=8)
            item.sigClicked.connect(lambda _it, _ev=None, n=name: self._clicked(n))
            item.setToolTip(name)
            item.layer_name = name
            item.layer_color = color
            curves[name] = item
        if base is not None:
            plot.addItem(
                pg().InfiniteLine(
                    pos=base * 100,
                    angle=0,
                    pen=pg().mkPen("#555", width=1, style=Qt.PenStyle.DashLine),
                    label="baseline",
                    labelOpts={"position": 0.05, "color": "#555"},
                )
            )
        if kind == "cluster":  # log2 axis labelled with the counts; fewer = to the right
            grid = sorted({v for e in entries for v, _a in curve_points(doc, e, kind)})
            plot.getAxis("bottom").setTicks([[(_to_x(kind, v), f"{v:g}") for v in grid]])
            plot.getPlotItem().invertX(True)
        low = min(all_y) if all_y else 0.0
        plot.setYRange(max(0.0, low - 3), 100.5 if base is None else min(100.5, base * 100 + 2))
        hover = pg().TextItem(
            "", color="#111", fill=pg().mkBrush(255, 255, 255, 230), anchor=(0, 1)
        )
        hover.setZValue(50)
        hover.hide()
        plot.addItem(hover, ignoreBounds=True)
        plot.scene().sigMouseMoved.connect(
            lambda pos, k=kind, p=plot, h=hover: self._on_hover(k, p, h, pos)
        )
        tag = pg().TextItem("", color="#111", anchor=(1, 1))
        tag.setZValue(40)
        tag.hide()
        plot.addItem(tag, ignoreBounds=True)
        self._tags[kind] = tag
        self.plots[kind] = plot
        self.curves[kind] = curves
        return plot

    def _on_hover(self, kind: str, plot: Any, label: Any, pos: Any) -> None:
        """Name the curve under the mouse (nearest within 10 pixels)."""
        vb = plot.getPlotItem().vb
        if not plot.sceneBoundingRect().contains(pos):
            label.hide()
            return
        p = vb.mapSceneToView(pos)
        px, py = vb.viewPixelSize()
        best: tuple[float, str, float, float] | None = None
        for name, item in self.curves.get(kind, {}).items():
            xs, ys = item.getData()
            if xs is None or len(xs) < 2:
                continue
            for i in range(len(xs) - 1):
                x0, x1 = float(xs[i]), float(xs[i + 1])
                lo, hi = min(x0, x1), max(x0, x1)
                if not lo <= p.x() <= hi or hi == lo:
                    continue
                t = (p.x() - x0) / (x1 - x0)
                y = float(ys[i]) + t * (float(ys[i + 1]) - float(ys[i]))
                dist = abs(y - p.y()) / max(py, 1e-12)
                if best is None or dist < best[0]:
                    best = (dist, name, p.x(), y)
        if best is None or best[0] > 10:
            label.hide()
            plot.setToolTip("")
            return
        _d, name, x, y = best
        xv = 2**x if kind == "cluster" else x / CURVE_KINDS[kind][2]
        loss = loss_points(self.doc or {}, y / 100)
        text = f"{name}: {y:.1f} % at {_fmt_grid(kind, xv)} (−{loss:.1f} pts)"
        label.setText(text)
        label.setPos(x, y)
        label.show()
        plot.setToolTip(text)

    def _clicked(self, name: str) -> None:
        self.select_layer(name)
        self.layerSelected.emit(name)

    def _style_curves(self, kind: str, curves: dict[str, Any]) -> None:
        sel = self.selected if self.selected in curves else None
        for name, item in curves.items():
            color = QColor(item.layer_color)
            if sel is not None and name != sel:
                color.setAlpha(60)
            width = 4 if name == sel else 2
            item.setPen(pg().mkPen(color, width=width))
            item.setSymbolBrush(color)
            item.setSymbolPen(color)
            item.setZValue(10 if name == sel else 0)
        tag = self._tags.get(kind)
        if tag is None:
            return
        if sel is None:
            tag.hide()
            return
        xs, ys = curves[sel].getData()
        tag.setText(sel)
        tag.setPos(float(xs[-1]), float(ys[-1]))  # at the curve's end, where curves part
        tag.show()

    def _name_axis_width(self, names: Sequence[str]) -> int:
        fm = QFontMetrics(self.font())
        return min(260, max((fm.horizontalAdvance(n) for n in names), default=40) + 16)

    def _tall(self, plot: Any, rows: int) -> QWidget:
        """``plot`` in a scroll area, at least 18 px per row (names stay readable)."""
        plot.setMinimumHeight(max(220, 18 * rows + 90))
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QScrollArea.Shape.NoFrame)
        area.setWidget(plot)
        return area

    def _name_axis(self, plot: Any, names: Sequence[str]) -> None:
        axis = plot.getAxis("left")
        axis.setTicks(_NameAxis.ticks(names))
        axis.setWidth(self._name_axis_width(names))
        plot.getPlotItem().invertY(True)  # first layer on top, like the table
        plot.showGrid(x=True, y=False, alpha=0.25)

    def _heat_plot(self) -> QWidget:
        import numpy as np

        doc = self.doc
        assert doc is not None
        names, grid, values = heat_matrix(doc, "prune")
        self.heat_names, self.heat_grid, self.heat_values = names, grid, values
        plot = make_plot(
            "<b>Accuracy lost (points) when one layer alone is pruned</b>", "sparsity of the layer"
        )
        self._name_axis(plot, names)
        plot.showGrid(x=False, y=False)
        ticks = [[(j + 0.0, _fmt_grid("prune", v)) for j, v in enumerate(grid)]]
        plot.getAxis("bottom").setTicks(ticks)
        if len(names) > 12:  # a tall map scrolls: the sparsities on top too
            plot.showAxis("top")
            plot.getAxis("top").setTicks(ticks)
            plot.getAxis("top").setStyle(maxTickLevel=1, tickLength=0)
        stops = [s for s, _c in HEAT_STOPS]
        cmap = pg().ColorMap(stops, [QColor(c) for _s, c in HEAT_STOPS])
        img = pg().ImageItem(np.nan_to_num(values.T, nan=0.0), axisOrder="col-major")
        img.setColorMap(cmap)
        img.setLevels((0.0, HEAT_MAX_PTS))
        img.setRect(-0.5, -0.5, max(1, len(grid)), max(1, len(names)))
        plot.addItem(img)
        self.heat_image = img
        if values.size <= MAX_CELL_LABELS:
            for i in range(len(names)):
                for j in range(len(grid)):
                    v = values[i, j]
                    if np.isnan(v):
                        continue
                    color = "#fff" if v >= 10 else "#222"
                    t = pg().TextItem(f"{v:.1f}", color=color, anchor=(0.5, 0.5))
                    t.setPos(j, i)
                    plot.addItem(t)
        plot.setXRange(-0.5, len(grid) - 0.5, padding=0)
        plot.setYRange(-0.5, len(names) - 0.5, padding=0)
        plot.setMouseEnabled(x=False, y=False)
        frame = pg().QtWidgets.QGraphicsRectItem(-0.5, -0.5, len(grid), 1)
        frame.setPen(pg().mkPen("#1f3fbf", width=3))
        frame.setZValue(20)
        frame.hide()
        plot.addItem(frame)
        self._heat_frame = frame
        bar = pg().ColorBarItem(
            values=(0, HEAT_MAX_PTS), colorMap=cmap, interactive=False, width=12, label="points"
        )
        bar.setImageItem(img, insert_in=plot.getPlotItem())
        self.plots["heat"] = plot
        return self._tall(plot, len(names))

    def _mark_heat_row(self) -> None:
        if self._heat_frame is None:
            return
        try:
            if self.selected in self.heat_names:
                i = self.heat_names.index(self.selected)
                self._heat_frame.setRect(-0.5, i - 0.5, len(self.heat_grid), 1)
                self._heat_frame.show()
            else:
                self._heat_frame.hide()
        except RuntimeError:  # the chart was rebuilt
            self._heat_frame = None

    def _hbar_plot(self, key: str, title: str, x_label: str, series: list) -> QWidget:
        """Horizontal bars, one row per layer. ``series``: [(name, values, colour, height)]."""
        doc = self.doc
        assert doc is not None
        names = [str(e["name"]) for e in doc_layers(doc)]
        plot = make_plot(f"<b>{title}</b>", x_label)
        self._name_axis(plot, names)
        ys = list(range(len(names)))
        items = []
        for label, values, color, height in series:
            bars = pg().BarGraphItem(
                x0=[0] * len(values), y=ys, height=height, width=values, brush=color, pen=None
            )
            bars.series_color = color
            plot.addItem(bars)
            items.append(bars)
            if len(series) > 1:
                plot.plot([], [], pen=None, symbol="s", symbolBrush=color, name=label)
        if len(series) > 1:
            legend = plot.getPlotItem().legend or plot.addLegend(offset=(-8, 8))
            legend.setBrush(pg().mkBrush(255, 255, 255, 220))
            for label, _v, color, _h in series:
                legend.addItem(pg().BarGraphItem(x=[0], height=[1], width=1, brush=color), label)
        plot.setMouseEnabled(x=False, y=False)
        plot.setYRange(-0.6, len(names) - 0.4, padding=0)
        top = max((max(v, default=0) for _l, v, _c, _h in series), default=1) or 1
        plot.setXRange(0, top * 1.05, padding=0)
        sel = pg().BarGraphItem(
            x0=[0], y=[0], height=0.9, width=[0], brush=None, pen=pg().mkPen("#1f3fbf", width=2)
        )
        sel.setZValue(20)
        sel.hide()
        plot.addItem(sel)
        self._bars[key] = (names, items, sel, top)
        self.plots[key] = plot
        return self._tall(plot, len(names))

    def _style_bars(self) -> None:
        for names, _items, sel, top in self._bars.values():
            try:
                if self.selected in names:
                    i = names.index(self.selected)
                    sel.setOpts(x0=[0], y=[i], height=0.9, width=[top * 1.02])
                    sel.show()
                else:
                    sel.hide()
            except RuntimeError:
                pass

    def _bytes_plot(self) -> QWidget:
        entries = doc_layers(self.doc)
        kb8 = [float(e.get("bytes_int8") or 0) / 1024 for e in entries]
        kb32 = [float(e.get("bytes_float32") or 0) / 1024 for e in entries]
        return self._hbar_plot(
            "bytes",
            "Weights per layer (KB)",
            "KB",
            [("float32", kb32, "#c6dbef", 0.8), ("int8", kb8, "#2171b5", 0.45)],
        )

    def _int8_plot(self) -> QWidget:
        entries = doc_layers(self.doc)
        errs = [float(e.get("int8_error") or 0.0) for e in entries]
        ranking = list(((self.doc or {}).get("quantization") or {}).get("ranking") or [])
        worst = set(ranking[: 1 if len(entries) <= 5 else 3])
        plot_w = self._hbar_plot(
            "int8",
            "int8 error per layer (QuantizationDebugger; longer = worse)",
            "error",
            [("int8 error", errs, "#fdae6b", 0.6)],
        )
        names, items, _sel, _top = self._bars["int8"]
        brushes = [pg().mkBrush("#d62728" if n in worst else "#fdae6b") for n in names]
        items[0].setOpts(brushes=brushes)
        return plot_w


def summary_text(doc: dict[str, Any]) -> str:
    """One line about the analysis: how many layers, baseline, how long, int8."""
    layers = doc_layers(doc)
    pruned = sum(1 for e in layers if e.get("prune"))
    base = baseline_accuracy(doc)
    b = doc.get("baseline") or {}
    parts = [f"{pruned} layer{'s' if pruned != 1 else ''} analysed"]
    if base is not None:
        parts.append(f"baseline {base * 100:.1f} % on {b.get('samples', '?')} validation samples")
    q = doc.get("quantization") or {}
    if isinstance(q.get("int8_accuracy"), (int, float)):
        parts.append(f"int8 {q['int8_accuracy'] * 100:.1f} %")
    if isinstance(doc.get("seconds"), (int, float)):
        parts.append(f"took {doc['seconds']:.0f} s")
    total8 = sum(float(e.get("bytes_int8") or 0) for e in layers)
    if total8:
        parts.append(f"{fmt_bytes(total8)} of int8 weights")
    return "Sensitivity: " + ", ".join(parts) + "."


# -- per-layer recipe -----------------------------------------------------------------------
TECHNIQUE_CHOICES = (
    ("prune", "Pruning (weights set to zero; smaller gzip / sparse .tflite)", "filters"),
    ("prune_filters", "Filter pruning (whole filters removed; smaller and faster)", "filters"),
)
# technique -> (document curve, step knob holding the global target)
TARGET_KNOB = {"prune": ("prune", "target_sparsity"), "prune_filters": ("filters", "ratio")}


def available_techniques(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(technique, label) the document has curves for and the engine has a step for."""
    from engine.pipeline import recipe as recipe_module

    out = []
    for tech, label, _k in TECHNIQUE_CHOICES:
        curve = TARGET_KNOB[tech][0]
        if tech in recipe_module.STEP_SPECS and any(e.get(curve) for e in doc_layers(doc)):
            out.append((tech, label))
    return out


def per_layer_map(doc: dict[str, Any], target: float, technique: str) -> dict[str, float]:
    """Per-layer values for a global ``target`` (``engine.pipeline.sensitivity.
    per_layer_recipe``, the engine's allocation). Raises the engine's BadInputError for an
    impossible target."""
    from engine.pipeline.sensitivity import per_layer_recipe

    return dict(per_layer_recipe(doc, target, technique=technique))


def per_layer_recipe_dict(
    doc: dict[str, Any],
    target: float,
    technique: str,
    mapping: dict[str, float],
    int8: bool = True,
) -> dict[str, Any]:
    """The recipe the wizard opens: a ``technique`` step at the global ``target`` with its
    ``per_layer`` map filled (rounded to 3 decimals), then an int8 conversion."""
    from engine.pipeline.recipe import SCHEMA_VERSION

    knob = TARGET_KNOB[technique][1]
    step: dict[str, Any] = {
        "type": technique,
        knob: round(float(target), 3),
        "per_layer": {k: round(float(v), 3) for k, v in mapping.items()},
    }
    steps = [step]
    if int8:
        steps.append({"type": "quantize", "mode": "int8"})
    word = "prune" if technique == "prune" else "filters"
    return {
        "schema_version": SCHEMA_VERSION,
        "name": f"per-layer-{word}-{round(target * 100)}" + ("-int8" if int8 else ""),
        "seed": 0,
        "batch_size": 32,
        "steps": steps,
    }


class PerLayerRecipeDialog(QDialog):
    """Global target (percent), technique and int8: ``options()`` -> (target, technique,
    int8)."""

    def __init__(self, parent: QWidget | None, doc: dict[str, Any]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Make a per-layer recipe")
        lay = QVBoxLayout(self)
        note = QLabel(
            "Featherweight spreads a global target over the layers by what each one "
            "tolerated in the analysis: robust layers take more, fragile ones less. The "
            "recipe opens in the Compress tab, where every layer's value can be edited."
        )
        note.setWordWrap(True)
        lay.addWidget(note)
        form = QFormLayout()
        self.technique = QComboBox()
        for tech, label in available_techniques(doc):
            self.technique.addItem(label, tech)
        self.target = QDoubleSpinBox()
        self.target.setRange(5.0, 95.0)
        self.target.setSingleStep(5.0)
        self.target.setDecimals(0)
        self.target.setSuffix(" %")
        self.target.setValue(80.0)
        self.technique.currentIndexChanged.connect(self._on_technique)
        self.int8 = QCheckBox("Then convert to int8")
        self.int8.setChecked(True)
        form.addRow("Technique:", self.technique)
        form.addRow("Global target:", self.target)
        form.addRow("", self.int8)
        lay.addLayout(form)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Make recipe")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
            self.technique.count() > 0
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._on_technique()
        self.setMinimumWidth(460)

    def _on_technique(self, *_args: Any) -> None:
        tech = self.technique.currentData()
        self.target.setToolTip(
            "Size-weighted mean sparsity over the pruned layers."
            if tech == "prune"
            else "Fraction of the filters / units removed, weighted by size."
        )
        if tech == "prune_filters" and self.target.value() > 75:
            self.target.setValue(50.0)

    def options(self) -> tuple[float, str, bool]:
        return self.target.value() / 100.0, str(self.technique.currentData()), self.int8.isChecked()


def ask_recipe_options(
    parent: QWidget | None, doc: dict[str, Any]
) -> tuple[float, str, bool] | None:
    """Show ``PerLayerRecipeDialog``; None when cancelled."""
    dialog = PerLayerRecipeDialog(parent, doc)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.options()
    finally:
        dialog.deleteLater()
