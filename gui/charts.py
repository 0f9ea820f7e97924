"""pyqtgraph charts: live training charts (and the one place pyqtgraph is configured).

pyqtgraph is imported on first use (``pg()``), not at start-up: it costs about half of the
window's start time. Live charts keep one curve per series and redraw from a 150 ms timer
(``setData`` on the whole series), never once per event, so a burst of events costs nothing.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QGridLayout, QWidget

from gui.state import RunRecord

REDRAW_MS = 150
TRAIN, VAL = "#1f77b4", "#ff7f0e"
# chart title, [(series key, legend name, colour, dashed)]
LIVE_CHARTS = (
    ("Accuracy", [("accuracy", "train", TRAIN, False), ("val_accuracy", "validation", VAL, True)]),
    ("Loss", [("loss", "train", TRAIN, False), ("val_loss", "validation", VAL, True)]),
    ("Sparsity", [("sparsity", "weights = 0", "#2ca02c", False)]),
    (
        "Estimated size (KB)",
        [
            ("est_tflite_bytes", ".tflite", "#9467bd", False),
            ("est_gzip_bytes", "gzip", "#d62728", False),
        ],
    ),
)
KB_SERIES = ("est_tflite_bytes", "est_gzip_bytes")


@cache
def pg() -> Any:
    """pyqtgraph, imported and configured once (PySide6 binding, white background)."""
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    import pyqtgraph

    pyqtgraph.setConfigOptions(antialias=True, background="w", foreground="#333")
    return pyqtgraph


def _title_with_key(title: str, series: list) -> str:
    """The chart title with a colour key (instead of a legend box over the curves)."""
    keys = [
        f"<span style='color:{color}'>{'╌╌' if dashed else '━━'} {name}</span>"
        for _key, name, color, dashed in series
    ]
    return f"<b>{title}</b>&nbsp;&nbsp;" + "&nbsp;&nbsp;".join(keys)


def integer_step(x0: float, x1: float, max_ticks: int = 8) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 … that puts at most ``max_ticks`` ticks on
    [x0, x1]."""
    span = max(1.0, float(x1) - float(x0))
    step = 1
    while span / step > max_ticks:
        digits = str(step)
        step = {1: 2, 2: 5, 5: 10}[int(digits[0])] * 10 ** (len(digits) - 1)
    return step


def set_integer_ticks(plot: Any, x0: float, x1: float, axis: str = "bottom") -> int:
    """Whole-number ticks only (epochs): 1, 2, 3 … or 2, 4 … / 5, 10 … on long runs.
    Returns the tick step."""
    step = integer_step(x0, x1)
    plot.getAxis(axis).setTickSpacing(levels=[(step, 0)])
    return step


def make_plot(title: str, x_label: str = "epoch") -> Any:
    """A PlotWidget in the app's style (grid, no context menu, light axes)."""
    w = pg().PlotWidget()
    w.setTitle(title, size="10pt")
    w.showGrid(x=True, y=True, alpha=0.25)
    w.setLabel("bottom", x_label)
    w.setMinimumSize(220, 150)
    w.setMenuEnabled(False)
    for name in ("left", "bottom"):
        w.getAxis(name).setStyle(maxTickLevel=1)  # no sub-minor grid: cheaper repaints
    return w


class LiveCharts(QWidget):
    """Four live charts bound to one ``RunRecord``'s series."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        self._grid = grid
        self.plots: dict[str, Any] = {}  # title -> pyqtgraph PlotWidget (built on first use)
        self.curves: dict[str, Any] = {}  # series key -> PlotDataItem
        self._chart_keys = [[k for k, _n, _c, _d in series] for _t, series in LIVE_CHARTS]
        self.run: RunRecord | None = None
        self._drawn: dict[str, int] = {}  # points on each curve after the last setData
        self._ranges: dict[str, tuple[float, float, float, float]] = {}  # view per chart
        self._live = False  # a run is streaming points: ranges grow with headroom
        self._refit: set[int] = set()  # charts to fit exactly to a finished run
        self._next_chart = 0
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw_next)

    def ensure_built(self) -> None:
        """Create the plots (imports pyqtgraph) the first time they are needed."""
        if self.plots:
            return
        mk = pg().mkPen
        for i, (title, series) in enumerate(LIVE_CHARTS):
            plot = make_plot(_title_with_key(title, series))
            for key, name, color, dashed in series:
                style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
                pen = mk(color, width=2, style=style)
                self.curves[key] = plot.plot(
                    [],
                    [],
                    pen=pen,
                    name=name,
                    symbol="o",
                    symbolSize=4,
                    symbolPen=pen,
                    symbolBrush=color,
                )
            # Ranges are set by _fit_range: pyqtgraph's auto-range re-lays-out and re-labels
            # the axes on every setData (~40-70 ms of GUI-thread time per redraw, measured).
            plot.disableAutoRange()
            plot.setRange(xRange=(0, 4), yRange=(0, 1), padding=0.02)
            set_integer_ticks(plot, 0, 4)  # empty charts too: epochs, never 0.2 / 0.4
            self.plots[title] = plot
            self._grid.addWidget(plot, i // 2, i % 2)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        self.ensure_built()
        self.redraw()
        super().showEvent(event)

    @property
    def drawing(self) -> bool:
        """True while the redraw timer still has points to draw (live run or final refit)."""
        return self._timer.isActive()

    @property
    def points_drawn(self) -> int:
        """Total points on the curves (what the user sees)."""
        return sum(self._drawn.values())

    def show_run(self, run: RunRecord | None) -> None:
        """Draw ``run``'s series (and keep drawing them while it grows)."""
        self.run = run
        self._drawn.clear()
        self._ranges.clear()
        self.redraw()

    def start_live(self) -> None:
        self._live = True
        self._refit.clear()
        self._timer.start()

    def stop_live(self) -> None:
        """Stop the redraw timer now (window closing) and draw what is left."""
        self._live = False
        self._timer.stop()
        self.redraw()

    def finish_live(self) -> None:
        """The run ended: refit every chart to the finished run, one chart per timer tick
        (redrawing all four at once stalls the event loop at the end of every run); the
        timer stops itself once all are drawn."""
        self._live = False
        self._refit = set(range(len(self._chart_keys)))
        if not self._timer.isActive():
            self._timer.start()

    def mark_dirty(self) -> None:
        """New points arrived; the timer draws them (kept for callers, nothing to do)."""

    def _stale(self, chart: int) -> bool:
        if chart in self._refit:
            return True
        series = self.run.series if self.run is not None else {}
        return any(
            len(series.get(k, [])) != self._drawn.get(k, -1) for k in self._chart_keys[chart]
        )

    def _draw_chart(self, chart: int) -> None:
        self.ensure_built()
        series = self.run.series if self.run is not None else {}
        all_x: list[float] = []
        all_y: list[float] = []
        for key in self._chart_keys[chart]:
            pts = series.get(key, [])
            xs = [p[0] for p in pts]
            ys = [p[1] / 1024.0 if key in KB_SERIES else p[1] for p in pts]
            self.curves[key].setData(xs, ys)
            self._drawn[key] = len(pts)
            all_x += xs
            all_y += ys
        title = LIVE_CHARTS[chart][0]
        if chart in self._refit:
            self._refit.discard(chart)
            self._ranges.pop(title, None)
        self._fit_range(title, all_x, all_y)

    def _fit_range(self, title: str, xs: list[float], ys: list[float]) -> None:
        """Set the view only when points leave it: grow with headroom while a run is live
        (so most new points need no re-layout), fit exactly when showing a finished run."""
        if not xs:
            if title not in self._ranges:  # no points yet: a clean epoch axis, not stale ones
                self.plots[title].setRange(xRange=(0, 4), yRange=(0, 1), padding=0.02)
                set_integer_ticks(self.plots[title], 0, 4)
            return
        live = self._live
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        view = self._ranges.get(title)
        if view is not None and view[0] <= x0 and x1 <= view[1] and view[2] <= y0 and y1 <= view[3]:
            return
        span = (y1 - y0) or abs(y1) or 1.0
        pad = 0.25 * span if live else 0.05 * span
        x_end = max(x1 * 1.5, x0 + 4) if live else max(x1, x0 + 1)
        view = (min(x0, 0.0), x_end, y0 - pad, y1 + pad)
        self._ranges[title] = view
        self.plots[title].setRange(xRange=view[:2], yRange=view[2:], padding=0.02)
        set_integer_ticks(self.plots[title], view[0], view[1])  # epochs are whole numbers

    def redraw_next(self) -> None:
        """Timer tick: redraw at most ONE stale chart, so a tick never repaints all four
        (each repaint of a chart costs the event loop several milliseconds)."""
        n = len(self._chart_keys)
        for step in range(n):
            chart = (self._next_chart + step) % n
            if self._stale(chart):
                self._draw_chart(chart)
                self._next_chart = (chart + 1) % n
                return
        if not self._live:
            self._timer.stop()  # the finished run is fully drawn

    def redraw(self) -> None:
        """Redraw every stale chart now."""
        for chart in range(len(self._chart_keys)):
            if self._stale(chart):
                self._draw_chart(chart)
