"""End-to-end: the window driving the REAL engine worker and TensorFlow (slow)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer

from gui.compress_tab import REVIEW
from gui.runner import default_worker_command
from tests.gui.conftest import child_pids

pytestmark = pytest.mark.slow
READY_MS = 120_000  # TensorFlow import on a busy 2-core machine


@pytest.fixture
def real_window(make_window, qtbot):
    w = make_window(worker=default_worker_command(), ready_timeout=READY_MS)
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=READY_MS, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    return w


def choose(tab, steps, **knobs):
    for t, box in tab.technique_boxes.items():
        box.setChecked(t in steps)
    for key, value in knobs.items():
        stype, name = key.split("__")
        tab.editors[stype][name].set_value(value)


class GapRecorder:
    """A 10 ms QTimer that records the longest gap of the Qt event loop."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.last_cpu = 0.0
        self.max_gap_ms = 0.0  # wall clock: includes time the OS gave to other processes
        self.max_busy_ms = 0.0  # CPU time the GUI thread itself spent between two ticks
        self.ticks = 0

    def start(self) -> None:
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.timer.start()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.max_gap_ms = max(self.max_gap_ms, (now - self.last) * 1000)
        self.max_busy_ms = max(self.max_busy_ms, (cpu - self.last_cpu) * 1000)
        self.last, self.last_cpu = now, cpu
        self.ticks += 1

    def stop(self) -> None:
        self.timer.stop()


def test_wizard_run_on_the_real_engine_matches_metrics_json(real_window, qtbot, record_property):
    w = real_window
    tab = w.compress_tab
    choose(tab, {"prune", "quantize"}, prune__epochs=2, prune__learning_rate=5e-4)
    tab.go_to(REVIEW)
    gaps = GapRecorder()
    gaps.start()
    with qtbot.waitSignal(tab.runFinished, timeout=300_000) as blocker:
        qtbot.mouseClick(tab.next_button, Qt.MouseButton.LeftButton)
    gaps.stop()
    run = blocker.args[0]
    assert run.status == "finished", run.error
    record_property("max_event_loop_gap_ms", round(gaps.max_gap_ms, 1))
    record_property("max_gui_thread_busy_ms", round(gaps.max_busy_ms, 1))
    print(
        f"\nlongest Qt event-loop pause during the run: {gaps.max_gap_ms:.1f} ms wall, "
        f"{gaps.max_busy_ms:.1f} ms of GUI-thread CPU ({gaps.ticks} ticks)"
    )
    # Target < 50 ms. The wall figure also counts time the OS gives other processes (CI runs
    # other TensorFlow tests beside this one), so it is bounded loosely; the GUI thread's own
    # work between two ticks is what this app controls.
    assert gaps.max_busy_ms < 50
    assert gaps.max_gap_ms < 1000
    # The charts received the engine's per-epoch points.
    assert len(run.series.get("val_accuracy", [])) == 2
    qtbot.waitUntil(lambda: tab.charts.points_drawn == sum(map(len, run.series.values())))
    assert tab.charts.curves["est_gzip_bytes"].getData()[1] is not None
    # The Results row shows the numbers the engine wrote in metrics.json.
    m = json.loads((Path(run.out_dir) / "metrics.json").read_text())
    assert (Path(run.out_dir) / "model.tflite").exists()
    res = w.results_tab
    row = res.rows.index(run)
    cell = lambda c: res.table.item(row, c).text()  # noqa: E731
    assert cell(2) == f"{m['compressed']['accuracy'] * 100:.2f} %"
    assert cell(3) == f"{m['compressed']['keras_accuracy'] * 100:.2f} %"
    assert cell(5) == f"{m['compressed']['tflite_bytes'] / 1024:.1f} KB"
    assert cell(6) == f"{m['compressed']['tflite_gzip_bytes'] / 1024:.1f} KB"
    assert cell(7) == f"{m['ratio_raw']:.2f}×" and cell(8) == f"{m['ratio_gzip']:.2f}×"
    assert cell(9) == f"{m['compressed']['sparsity'] * 100:.1f} %"
    assert m["compressed"]["sparsity"] > 0.7
    assert res.table.item(row, 0).data(Qt.ItemDataRole.UserRole) == run.name
    assert res.table.item(row, 8).data(Qt.ItemDataRole.UserRole) == m["ratio_gzip"]


def test_cancel_a_real_run_mid_way(real_window, qtbot):
    w = real_window
    tab = w.compress_tab
    choose(tab, {"prune", "quantize"}, prune__epochs=40)
    pid = w.client.worker_pid
    run = tab.start_run()
    qtbot.waitUntil(lambda: tab.progress.value() > 300, timeout=120_000)  # inside pruning
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        tab.cancel_run()
    assert run.status == "cancelled"
    assert not (Path(run.out_dir) / "metrics.json").exists()
    assert w.client.worker_pid == pid  # the soft cancel worked: no restart needed
    assert w.results_tab.rows == [None]


def test_killing_the_real_worker_mid_run_recovers(real_window, qtbot):
    w = real_window
    tab = w.compress_tab
    choose(tab, {"prune", "quantize"}, prune__epochs=40)
    old = w.client.worker_pid
    run = tab.start_run()
    qtbot.waitUntil(lambda: tab.progress.value() > 300, timeout=120_000)
    with qtbot.waitSignal(w.errors.reported, timeout=10_000) as blocker:
        w.client.kill_worker()
    assert "engine process" in blocker.args[0].message
    assert run.status == "failed"
    with qtbot.waitSignal(w.client.versionsChanged, timeout=READY_MS):
        pass
    assert w.client.worker_pid != old and old not in child_pids()
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=READY_MS):
        w.open_demo()


def test_corrupt_model_message_from_the_real_engine(make_window, qtbot, tmp_path):
    w = make_window(worker=default_worker_command(), ready_timeout=READY_MS)
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 this is not a keras archive")
    with qtbot.waitSignal(w.errors.reported, timeout=READY_MS) as blocker:
        w.open_model(str(bad))
    problem = blocker.args[0]
    assert problem.title == "Cannot open broken.keras"
    assert "broken.keras" in problem.message and "\n" not in problem.message
    assert w.session.model is None and w.client.state == "ready"


def test_close_while_a_real_run_is_going(real_window, qtbot):
    w = real_window
    tab = w.compress_tab
    choose(tab, {"prune", "quantize"}, prune__epochs=40)
    run = tab.start_run()
    qtbot.waitUntil(lambda: tab.progress.value() > 300, timeout=120_000)
    pid = w.client.worker_pid
    w.confirm_close = lambda: True
    w.project.ask_unsaved = lambda: "discard"  # the unsaved-project question (issue 4)
    assert w.close()
    assert not w.client.is_alive() and pid not in child_pids()
    assert run.status == "cancelled"


def test_keras3_file_shows_the_import_check(make_window, qtbot, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "k3.keras"
    code = (
        "import keras\n"
        "m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),"
        " keras.layers.Flatten(), keras.layers.Dense(10, activation='softmax')])\n"
        f"m.save({str(path)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    w = make_window(worker=default_worker_command(), ready_timeout=READY_MS)
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=READY_MS) as blocker:
        w.open_model(str(path))
    assert blocker.args[0].report["source_format"].startswith("keras3")
    text = w.model_tab.subtitle.text()
    assert "Converted from Keras 3 to Keras 2; outputs match" in text, text
    assert w.model_tab.table.rowCount() == 3
