"""Run one recipe through the real desktop app (offscreen) and measure what the user feels.

Called by ``benchmarks/run.py`` in a fresh process::

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_probe.py RECIPE.json --seed 0 --out DIR

The real ``MainWindow`` (``gui.app.create_window(["--demo"])``: real ``EngineClient``,
``JobRunner`` on its ``QThread``, real engine worker process) opens the demo, waits until the
engine is idle (inspect / check_data / baseline jobs of the Model tab done), shows the Compress
tab (live charts on) and starts the run with ``CompressTab.start_run``. While the run lasts a
10 ms ``QTimer`` records the gaps between its ticks: the longest gap is the longest time the
event loop could not react. Prints one JSON line: ``gui_s`` (start_run → job finished),
``max_gap_ms``, ``gaps_over_50ms``, the worker's own stage timings, and the peak RSS
(``VmHWM``) of this process and of the worker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TICK_MS = 10


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident set size (``VmHWM``) of a process in MiB, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU time of a process so far (all threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _grow_only_ranges(charts: Any) -> None:
    """Experiment for the GUI owner (not shipped): turn off pyqtgraph's auto-range on the live
    charts and widen a chart's view only when new data leaves it, so drawing a point does not
    re-lay-out and re-label the axes every time (measured ~6 ms instead of ~40-70 ms of
    GUI-thread CPU for a redraw of all four charts)."""
    from gui.charts import KB_SERIES, LIVE_CHARTS

    charts.ensure_built()
    titles = [title for title, _series in LIVE_CHARTS]
    bounds: dict[str, list[float]] = {}
    for title in titles:
        charts.plots[title].disableAutoRange()
        charts.plots[title].setRange(xRange=(0, 1), yRange=(0, 1), padding=0.05)
        bounds[title] = [0.0, 1.0, 0.0, 1.0]
    original = charts._draw_chart

    def draw_chart(chart: int) -> None:
        original(chart)
        title, series = LIVE_CHARTS[chart]
        run_series = charts.run.series if charts.run is not None else {}
        xs: list[float] = []
        ys: list[float] = []
        for key, _name, _color, _dashed in series:
            for x, y in run_series.get(key, []):
                xs.append(x)
                ys.append(y / 1024.0 if key in KB_SERIES else y)
        if not xs:
            return
        b = bounds[title]
        if max(xs) > b[1] or min(ys) < b[2] or max(ys) > b[3]:
            b[1] = max(b[1], max(xs) * 1.5)
            span = max(ys) - min(ys) or abs(max(ys)) or 1.0
            b[2] = min(b[2], min(ys) - 0.25 * span)
            b[3] = max(b[3], max(ys) + 0.25 * span)
            charts.plots[title].setRange(xRange=(b[0], b[1]), yRange=(b[2], b[3]))

    charts._draw_chart = draw_chart


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the run here")
    parser.add_argument(
        "--worker-nice", type=int, default=0, help="experiment: start the worker with nice N"
    )
    parser.add_argument(
        "--no-antialias", action="store_true", help="experiment: pyqtgraph antialias off"
    )
    parser.add_argument(
        "--no-ticker", action="store_true", help="experiment: no 10 ms pause meter (its own cost)"
    )
    parser.add_argument(
        "--grow-only-ranges",
        action="store_true",
        help="experiment: live charts without per-redraw auto-range (see _grow_only_ranges)",
    )
    args = parser.parse_args(argv)

    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.pipeline.recipe import load_recipe
    from gui.app import create_window

    app = QApplication.instance() or QApplication(["featherweight-bench"])
    tmp = Path(tempfile.mkdtemp(prefix="fw-gui-probe-"))
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    kwargs: dict[str, Any] = {}
    if args.worker_nice:
        from gui.runner import default_worker_command

        kwargs["worker_command"] = ["nice", "-n", str(args.worker_nice), *default_worker_command()]
    if args.no_antialias:
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=False)
    window = create_window(["--demo"], settings=settings, runs_dir=tmp / "runs", **kwargs)
    if args.grow_only_ranges:
        _grow_only_ranges(window.compress_tab.charts)
    window.errors.show_dialogs = False
    window.show()

    def stop_loop() -> None:
        # exit(), not quit(): in Qt 6 quit() closes the windows first, and the window would
        # ask (modally) whether to save the session's unsaved run.
        app.exit(0)

    recipe = load_recipe(args.recipe)
    recipe.seed = args.seed
    result: dict[str, Any] = {"recipe": recipe.name, "seed": args.seed}
    gaps: list[float] = []
    clock = QElapsedTimer()
    last = [0.0]
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(TICK_MS)

    # (ms since the run started, gap ms, GUI-thread CPU ms used during the gap), gaps > 50 ms
    big: list[tuple[float, float, float]] = []
    last_cpu = [0.0]
    busy = [0.0]  # most GUI-thread CPU time (ms) spent between two ticks: self-inflicted
    timeline: list[tuple[float, str]] = []  # (ms since the run started, what happened)

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        cpu = time.thread_time() * 1000.0
        gap = now - last[0]
        gaps.append(gap)
        busy[0] = max(busy[0], cpu - last_cpu[0])
        if gap > 50.0:
            big.append((round(now - gap, 1), round(gap, 1), round(cpu - last_cpu[0], 1)))
        last[0] = now
        last_cpu[0] = cpu

    def mark(what: str) -> None:
        timeline.append((round(clock.nsecsElapsed() / 1e6, 1), what))

    ticker.timeout.connect(tick)
    t_start = [0.0]
    cpu_start = [0.0]
    idle_since = [None]

    def finished(state: str) -> None:
        elapsed = time.perf_counter() - t_start[0]
        result["gui_cpu_s"] = time.process_time() - cpu_start[0]  # all threads of the app
        mark("finished")
        # Keep measuring a moment: the app's own end-of-run work (results tab) counts too.
        QTimer.singleShot(500, lambda: report(state, elapsed))

    def report(state: str, elapsed: float) -> None:
        ticker.stop()
        job = window.compress_tab.job
        res = (job.result if job is not None else None) or {}
        result.update(
            state=state,
            gui_s=elapsed,
            max_gap_ms=max(gaps) if gaps else None,
            gaps_over_50ms=sum(1 for g in gaps if g > 50.0),
            max_busy_ms=busy[0],
            big_gaps=big,
            timeline=timeline,
            ticks=len(gaps),
            worker_timings=res.get("timings"),
            ratio_gzip=res.get("ratio_gzip"),
            accuracy_drop=res.get("accuracy_drop"),
            chart_points=window.compress_tab.charts.points_drawn,
            error=(job.error if job is not None else None),
            gui_peak_rss_mib=vm_hwm_mib(),
            worker_peak_rss_mib=vm_hwm_mib(window.client.worker_pid),
            worker_cpu_s=cpu_seconds(window.client.worker_pid),
        )
        QTimer.singleShot(0, stop_loop)

    def start() -> None:
        tab = window.compress_tab
        window.tabs.setCurrentIndex(1)  # the Compress tab, where the live charts are
        tab.set_recipe(recipe)
        clock.start()
        last[0] = 0.0
        last_cpu[0] = time.thread_time() * 1000.0
        if not args.no_ticker:
            ticker.start()
        t_start[0] = time.perf_counter()
        cpu_start[0] = time.process_time()
        run = tab.start_run(args.out)
        if run is None:
            result["error"] = tab.message.text()
            ticker.stop()
            QTimer.singleShot(0, stop_loop)
            return
        tab.job.finished.connect(finished)
        tab.job.stage.connect(lambda ev: mark(f"{ev.get('stage')} {ev.get('state')}"))
        tab.job.metric.connect(lambda ev: mark(f"metric {ev.get('epoch')}"))

    def poll() -> None:
        c = window.client
        ready = (
            c.state == "ready"
            and window.session.model is not None
            and not c.busy
            and not c.queued_jobs
        )
        if not ready:
            idle_since[0] = None
            return
        if idle_since[0] is None:
            idle_since[0] = time.perf_counter()
        elif time.perf_counter() - idle_since[0] > 0.5:  # idle for a while: Model tab done
            poller.stop()
            start()

    poller = QTimer()
    poller.setInterval(100)
    poller.timeout.connect(poll)
    poller.start()
    QTimer.singleShot(int(args.timeout * 1000), stop_loop)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler  # profiling only; not a dependency of the app

        profiler = Profiler(interval=0.001)
        profiler.start()
    app.exec()
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_text(unicode=False, show_all=True))
    print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()
    # Stop the engine; no window.close(): it would ask about the unsaved session (modal).
    window.shutdown()
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
