"""Screenshots of File -> Export report... on the demo project (real engine worker).

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \
        .venv/bin/python tests/gui/make_report_export_screenshots.py [OUTDIR]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.gui.make_screenshots import settle, wait_until  # noqa: E402


def grab(window, dest: Path) -> None:
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    geo = window.frameGeometry()
    pix = window.screen().grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
    pix.save(str(dest), "PNG")
    print(dest, pix.width(), pix.height())


def main(out: Path) -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from gui.report_export import HTML_FILTER

    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(ROOT / "tests/data/report_sample", tmp / "sample")
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, runs_dir=tmp / "runs")
    w.project.ask_unsaved = lambda: "discard"
    w.resize(1300, 820)
    w.move(40, 30)
    w.show()
    settle(app, 1.0)
    wait_until(app, lambda: w.client.state == "ready", 300)
    assert w.project.open(tmp / "sample" / "demo.fwproj", ask_first=False)
    wait_until(app, lambda: w.session.model is not None, 60)
    wait_until(app, lambda: not w.client.busy, 120)
    w.tabs.setCurrentWidget(w.results_tab)
    run = next(r for r in w.session.runs if r.id == "run-002")
    w.results_tab.select_run(run)
    settle(app, 1.0)

    # The File menu, open, with Export report... hovered.
    def open_menu() -> None:
        bar = w.menuBar()
        top = next(a for a in bar.actions() if a.menu() is w.file_menu)
        bar.setActiveAction(top)

    QTimer.singleShot(100, open_menu)
    settle(app, 1.0)
    w.file_menu.setActiveAction(w.act_export_report)
    settle(app, 0.8)
    grab(w, out / "report-export-menu.png")
    w.file_menu.close()
    settle(app, 0.5)

    target = tmp / "out" / "demo-report"
    w.report_export.ask_path = lambda start: (str(target), HTML_FILTER)
    w.report_export.open_url = lambda url: True
    states: list[str] = []
    w.report_export.finished.connect(lambda s, r: states.append(s))
    shots_running = [False]

    def running_shot() -> None:
        if w.report_export.running and not shots_running[0]:
            shots_running[0] = True
            grab(w, out / "report-export-running.png")

    timer = QTimer()
    timer.setInterval(300)
    timer.timeout.connect(running_shot)
    t0 = time.monotonic()
    w.export_report_dialog()
    timer.start()
    wait_until(app, lambda: bool(states), 300)
    timer.stop()
    print("export", states, f"{time.monotonic() - t0:.1f} s", w.report_export.last_result)
    settle(app, 0.8)
    grab(w, out / "report-export-finished.png")
    w.shutdown()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
