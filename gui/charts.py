"""pyqtgraph charts: live training charts, accuracy-vs-size scatter, per-layer sparsity bars.

Live charts keep one curve per series and redraw from a 150 ms timer (``setData`` on the
whole series), never once per event, so a burst of events costs nothing on screen.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QGridLayout, QWidget  # noqa: E402

from gui.state import RunRecord  # noqa: E402

pg.setConfigOptions(antialias=True, background="w", foreground="#333")

REDRAW_MS = 150
TRAIN = pg.mkPen("#1f77b4", width=2)
VAL = pg.mkPen("#ff7f0e", width=2, style=Qt.PenStyle.DashLine)
# chart title, y label, [(series key, legend name, pen)]
LIVE_CHARTS = (
    ("Accuracy", "", [("accuracy", "train", TRAIN), ("val_accuracy", "validation", VAL)]),
    ("Loss", "", [("loss", "train", TRAIN), ("val_loss", "validation", VAL)]),
    ("Sparsity", "", [("sparsity", "weights = 0", pg.mkPen("#2ca02c", width=2))]),
    (
        "Estimated size (KB)",
        "",
        [
            ("est_tflite_bytes", ".tflite", pg.mkPen("#9467bd", width=2)),
            ("est_gzip_bytes", "gzip", pg.mkPen("#d62728", width=2)),
        ],
    ),
)
KB_SERIES = ("est_tflite_bytes", "est_gzip_bytes")


def _title_with_key(title: str, series: list) -> str:
    """The chart title with a colour key (instead of a legend box over the curves)."""
    keys = []
    for _key, name, pen in series:
        dash = pen.style() == Qt.PenStyle.DashLine
        keys.append(
            f"<span style='color:{pen.color().name()}'>{'╌╌' if dash else '━━'} {name}</span>"
        )
    return f"<b>{title}</b>&nbsp;&nbsp;" + "&nbsp;&nbsp;".join(keys)


def _plot(title: str) -> pg.PlotWidget:
    w = pg.PlotWidget()
    w.setTitle(title, size="10pt")
    w.showGrid(x=True, y=True, alpha=0.25)
    w.setLabel("bottom", "epoch")
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
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._chart_keys: list[list[str]] = []
        for i, (title, _y, series) in enumerate(LIVE_CHARTS):
            plot = _plot(_title_with_key(title, series))
            for key, name, pen in series:
                self.curves[key] = plot.plot(
                    [],
                    [],
                    pen=pen,
                    name=name,
                    symbol="o",
                    symbolSize=4,
                    symbolPen=pen,
                    symbolBrush=pen.color(),
                )
            self._chart_keys.append([key for key, _n, _p in series])
            self.plots[title] = plot
            grid.addWidget(plot, i // 2, i % 2)
        self.run: RunRecord | None = None
        self._drawn: dict[str, int] = {}  # points on each curve after the last setData
        self._next_chart = 0
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw_next)

    @property
    def points_drawn(self) -> int:
        """Total points on the curves (what the user sees)."""
        return sum(self._drawn.values())

    def show_run(self, run: RunRecord | None) -> None:
        """Draw ``run``'s series (and keep drawing them while it grows)."""
        self.run = run
        self._drawn.clear()
        self.redraw()

    def start_live(self) -> None:
        self._timer.start()

    def stop_live(self) -> None:
        self._timer.stop()
        self.redraw()

    def mark_dirty(self) -> None:
        """New points arrived; the timer draws them (kept for callers, nothing to do)."""

    def _stale(self, chart: int) -> bool:
        series = self.run.series if self.run is not None else {}
        return any(
            len(series.get(k, [])) != self._drawn.get(k, -1) for k in self._chart_keys[chart]
        )

    def _draw_chart(self, chart: int) -> None:
        series = self.run.series if self.run is not None else {}
        for key in self._chart_keys[chart]:
            pts = series.get(key, [])
            xs = [p[0] for p in pts]
            ys = [p[1] / 1024.0 if key in KB_SERIES else p[1] for p in pts]
            self.curves[key].setData(xs, ys)
            self._drawn[key] = len(pts)

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

    def redraw(self) -> None:
        """Redraw every stale chart now."""
        for chart in range(len(self._chart_keys)):
            if self._stale(chart):
                self._draw_chart(chart)
