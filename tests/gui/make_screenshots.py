"""Drive the real app (real engine worker) and save screenshots of each tab to docs/screenshots.

    Xvfb :99 -screen 0 1400x900x24 &  DISPLAY=:99 QT_QPA_PLATFORM=xcb \
        python tests/gui/make_screenshots.py

Shots are taken of the real X window with imagemagick's ``import`` and written as
palette PNGs (kept < 200 KB). Not a test: a tool to regenerate the README pictures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))


def wait_until(app: QApplication, cond: Callable[[], bool], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: (cond() or time.monotonic() > deadline) and loop.quit())
    timer.start()
    loop.exec()
    timer.stop()
    if not cond():
        raise SystemExit("timed out waiting")


def settle(app: QApplication, seconds: float = 0.6) -> None:
    end = time.monotonic() + seconds
    wait_until(app, lambda: time.monotonic() > end, seconds + 5)


def shot(window, name: str) -> None:
    QApplication.processEvents()
    wid = int(window.winId())
    raw = Path(tempfile.mkdtemp()) / "raw.png"
    subprocess.run(["import", "-window", str(wid), str(raw)], check=True)
    dest = OUT / f"{name}.png"
    subprocess.run(["convert", str(raw), "-colors", "256", "-strip", f"PNG8:{dest}"], check=True)
    print(f"{dest.name}: {dest.stat().st_size // 1024} KB")


def main() -> int:
    from gui.app import create_window

    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    w = create_window([], settings=settings, runs_dir=tmp / "runs")
    w.show()
    settle(app, 1.0)
    shot(w, "1-model-empty")

    w.open_demo()
    wait_until(app, lambda: w.session.baseline is not None)
    settle(app)
    shot(w, "2-model-demo")

    tab = w.compress_tab
    w.tabs.setCurrentIndex(1)
    # first run: int8 post-training quantization
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    tab.recipe_name.setText("int8-ptq")
    tab.go_to(0)
    settle(app)
    shot(w, "3-compress-techniques")
    tab.start_run()
    wait_until(app, lambda: not tab.running)
    # second run: prune + int8, shown live
    for t, box in tab.technique_boxes.items():
        box.setChecked(t in ("prune", "quantize"))
    tab.editors["prune"]["epochs"].set_value(12)
    tab.editors["prune"]["learning_rate"].set_value(5e-4)
    tab.recipe_name.setText("prune80-int8")
    tab.go_to(1)
    settle(app)
    shot(w, "4-compress-settings")
    tab.go_to(3)
    settle(app)
    shot(w, "5-compress-review")
    run = tab.start_run()
    wait_until(app, lambda: len(run.series.get("val_accuracy", [])) >= 6)
    settle(app, 0.4)
    shot(w, "6-compress-running")
    wait_until(app, lambda: not tab.running)
    settle(app)
    shot(w, "7-compress-finished")
    w.tabs.setCurrentIndex(2)
    settle(app)
    shot(w, "8-results")
    w.shutdown()
    w.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    sys.exit(main())
