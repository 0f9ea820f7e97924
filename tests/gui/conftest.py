"""GUI test fixtures: a fake worker, windows on a temporary QSettings, and a guard that
fails any test leaving a QThread, a QTimer or a child process running."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pytest  # noqa: E402

HERE = Path(__file__).resolve().parent
FAKE_WORKER = HERE / "fake_worker.py"


def fake_worker_command(*flags: str) -> list[str]:
    """Command for the recorded-events worker (see fake_worker.py for the flags)."""
    return [sys.executable, str(FAKE_WORKER), *flags]


def spy_submit(w):
    """Record every job the window submits (name, params); the jobs still run."""
    sent = []
    submit = w.client.submit

    def spy(name, params=None):
        sent.append((name, params))
        return submit(name, params)

    w.client.submit = spy
    return sent


def child_pids() -> set[int]:
    """Live child processes of this test process (Linux /proc)."""
    pids: set[int] = set()
    task_dir = Path(f"/proc/{os.getpid()}/task")
    for task in task_dir.iterdir():
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        pids.update(int(p) for p in text.split())
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.fixture(autouse=True)
def no_leftovers(request, monkeypatch, qapp):
    """Fail the test if it leaves a QThread, an active QTimer or a child process running."""
    from PySide6.QtCore import QThread, QTimer

    threads: list = []
    timers: list = []
    base_thread_start = QThread.start
    base_timer_start = QTimer.start

    def thread_start(self, *args):
        threads.append(self)
        return base_thread_start(self, *args)

    def timer_start(self, *args):
        timers.append(self)
        return base_timer_start(self, *args)

    monkeypatch.setattr(QThread, "start", thread_start)
    monkeypatch.setattr(QTimer, "start", timer_start)
    before = child_pids()
    yield
    qapp.processEvents()
    problems = []
    for t in threads:
        try:
            if t.isRunning():
                problems.append(f"QThread {t.objectName() or t!r} still running")
        except RuntimeError:  # C++ object already deleted: stopped
            pass
    for t in timers:
        try:
            if t.isActive():
                problems.append(f"QTimer {t!r} (parent {t.parent()!r}) still active")
        except RuntimeError:
            pass
    import time

    deadline = time.monotonic() + 5
    left = child_pids() - before
    while left and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.05)  # waiting for the OS to reap a killed child, not for the app
        left = child_pids() - before
    if left:
        problems.append(f"child processes still running: {sorted(left)}")
        for pid in left:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    for t in threads:
        try:
            if t.isRunning():
                t.quit()
                t.wait(2000)
        except RuntimeError:
            pass
    if problems:
        pytest.fail("left behind: " + "; ".join(problems))


@pytest.fixture
def qsettings(tmp_path):
    """A QSettings on a temporary INI file: tests never touch the user's settings."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, qsettings, tmp_path):
    """``make_window(*fake_flags, worker=None, **kwargs)`` -> a shown MainWindow with the
    engine ready. ``worker`` overrides the command (the real worker in slow tests)."""
    from gui.main_window import MainWindow
    from gui.runner import READY

    windows = []

    def make(
        *flags: str,
        worker: list[str] | None = None,
        wait_ready: bool = True,
        ready_timeout: int = 10_000,
        **kwargs,
    ):
        kwargs.setdefault("settings", qsettings)
        kwargs.setdefault("runs_dir", tmp_path / "runs")
        w = MainWindow(worker_command=worker or fake_worker_command(*flags), **kwargs)
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        if wait_ready and w.client.state != READY:
            with qtbot.waitSignal(w.client.versionsChanged, timeout=ready_timeout):
                pass
        return w

    yield make
    for w in windows:
        w.shutdown()
        w.close()


@pytest.fixture
def window(make_window):
    """A window on the fake worker (events 10 ms apart)."""
    return make_window()


@pytest.fixture
def demo_window(window, qtbot):
    """The window with the (recorded) demo model, dataset and baseline loaded."""
    with qtbot.waitSignal(
        window.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        window.open_demo()
    return window
