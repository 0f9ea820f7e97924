"""``featherweight --self-test``: prove that this build works end to end, printing each check.

Runs the real app path, in the frozen bundle or from source (``python -m gui --self-test``):
opens the main window (on whatever ``QT_QPA_PLATFORM`` says: ``offscreen``, ``xcb``...),
opens the bundled demo model in the Model tab, runs a tiny int8 quantization through the
Compress tab -- i.e. through the window's ``EngineClient``/``JobRunner`` and the engine
worker process it starts (``[sys.executable, "--worker"]`` when frozen) -- then loads the
produced ``.tflite`` with LiteRT and runs one inference. Exits 0 only if every check passed;
a watchdog ends the process with exit code 1 if the whole test takes longer than
``--timeout`` seconds.

Options: ``--timeout S`` (default 600), ``--out DIR`` (keep the run's files there instead of
a temporary folder), ``--screenshot PNG`` (save the window once the run finished),
``--hold S`` (keep the window open S seconds at the end, e.g. for an external screenshot);
with either of the last two the window shows the Results tab at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TINY_RECIPE: dict[str, Any] = {
    "schema_version": 1,
    "name": "self-test int8",
    "steps": [{"type": "quantize", "mode": "int8", "calibration_samples": 20}],
}
MIN_ACCURACY = 0.8  # the demo CNN scores ~0.97 on the digits test split; int8 keeps that


def seconds_since_process_start() -> float | None:
    """Wall time since this process was created (Linux: from /proc), else None."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode()
        # Field 22 (starttime, in clock ticks since boot); fields after the ")" of comm.
        start_ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Checks:
    """Prints ``PASS``/``FAIL`` lines as checks are made and remembers the outcome."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def summary(self) -> str:
        total = self.passed + self.failed
        if self.ok:
            return f"self-test: all {total} checks passed"
        return f"self-test: {self.failed} of {total} checks FAILED"


def _start_watchdog(seconds: float) -> threading.Timer:
    """After ``seconds``, print a failed check and end the process with exit code 1."""

    def expire() -> None:
        print(f"FAIL  self-test timed out after {seconds:g} s", flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Run the Qt event loop until ``predicate()`` is true or ``timeout_s`` passed."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    if predicate():
        return True
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(
        lambda: loop.quit() if predicate() or time.monotonic() > deadline else None
    )
    timer.start()
    loop.exec()
    timer.stop()
    return predicate()


def check_tflite(path: Path) -> tuple[bool, str]:
    """Load ``path`` with LiteRT, run one inference; ok if the output is (1, 10) and finite."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    rng = np.random.default_rng(0)
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        x = rng.integers(info.min, info.max, size=inp["shape"], endpoint=True).astype(inp["dtype"])
    else:
        x = rng.random(inp["shape"]).astype(inp["dtype"])
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    ok = tuple(y.shape) == (1, 10) and bool(np.all(np.isfinite(y.astype(np.float64))))
    detail = (
        f"input {tuple(int(d) for d in inp['shape'])} {np.dtype(inp['dtype']).name}, "
        f"output {tuple(y.shape)} {y.dtype.name}"
    )
    return ok, detail


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="featherweight --self-test")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--out", help="folder for the run's files (default: a temporary folder)")
    p.add_argument("--screenshot", help="save a PNG of the window after the run")
    p.add_argument("--hold", type=float, default=0.0, help="keep the window open S seconds")
    return p.parse_args(list(argv))


def main(argv: Sequence[str] = (), exit_process: bool = True) -> int:
    """Run the self-test: exit code 0 if all checks passed, 1 otherwise.

    With ``exit_process`` (the default, what ``featherweight --self-test`` uses) the process
    ends here with that code, skipping interpreter teardown: in the frozen bundle teardown
    after a LiteRT inference aborted with "Fatal Python error: bool_dealloc" (exit 134) even
    though every check had passed, and the verdict must not depend on teardown.
    """
    args = _parse(argv)
    started = seconds_since_process_start()
    t_main = time.perf_counter()
    watchdog = _start_watchdog(args.timeout)
    with tempfile.TemporaryDirectory(prefix="featherweight-selftest-") as tmp:
        checks = Checks()
        try:
            _run(args, Path(tmp), checks, started, t_main)
        except Exception as exc:  # a crash of the test itself is a failed check, not a traceback
            import traceback

            traceback.print_exc()
            checks.check("self-test ran to the end", False, f"{type(exc).__name__}: {exc}")
        print(checks.summary(), flush=True)
    watchdog.cancel()
    code = 0 if checks.ok else 1
    if exit_process:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(
    args: argparse.Namespace, tmp: Path, checks: Checks, started: float | None, t_main: float
) -> None:
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from PySide6.QtCore import QEvent, QObject, QSettings
    from PySide6.QtWidgets import QApplication

    import engine

    frozen = bool(getattr(sys, "frozen", False))
    print(
        f"featherweight {engine.__version__} self-test "
        f"({'frozen bundle ' + sys.executable if frozen else 'source tree'}, "
        f"QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', '(default)')})",
        flush=True,
    )

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "featherweight"])
    app.setApplicationName(engine.APP_NAME)
    app.setOrganizationName(engine.APP_NAME)
    app.setApplicationVersion(engine.__version__)
    want = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    checks.check(
        "Qt platform plugin loaded",
        not want or app.platformName() == want,
        f"{app.platformName()} (Qt {_qt_version()})",
    )

    from gui.app import create_window

    painted: list[float] = []

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
            if not painted and event.type() == QEvent.Type.Paint:
                painted.append(time.perf_counter())
            return False

    # Own settings file and runs folder: the self-test never touches the user's.
    settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
    out = Path(args.out).resolve() if args.out else tmp / "run"
    window = create_window(["--demo"], settings=settings, runs_dir=tmp / "runs")
    window.errors.show_dialogs = False  # problems are printed as failed checks instead
    watcher = FirstPaint()
    window.installEventFilter(watcher)
    window.show()
    try:
        _checks_with_window(args, window, checks, painted, started, t_main, out, frozen)
        if (args.screenshot or args.hold > 0) and window.session.runs:
            window.tabs.setCurrentIndex(window.tabs.indexOf(window.results_tab))
        if args.screenshot:
            window.raise_()
            _wait(lambda: False, 0.3)
            saved = window.grab().save(args.screenshot)
            checks.check("screenshot saved", bool(saved), args.screenshot)
        if args.hold > 0:
            _wait(lambda: False, args.hold)
    finally:
        pid = window.client.worker_pid
        window.shutdown()
        window.close()
    if pid:
        checks.check("engine worker stopped with the window", not _alive(pid), f"pid {pid}")
    problems = window.errors.problems
    checks.check(
        "no errors reported by the window",
        not problems,
        "; ".join(f"{p.title}: {p.message}" for p in problems[:3]),
    )


def _checks_with_window(
    args: argparse.Namespace,
    window: Any,
    checks: Checks,
    painted: list[float],
    started: float | None,
    t_main: float,
    out: Path,
    frozen: bool,
) -> None:
    from engine.pipeline.recipe import validate_recipe
    from gui.runner import FAILED, READY

    ok = _wait(lambda: bool(painted), 30)
    if ok:
        since_main = painted[0] - t_main
        detail = f"{since_main:.2f} s after main()"
        if started is not None:  # ``started``: process start -> main()
            detail = f"{started + since_main:.2f} s after process start ({detail})"
    else:
        detail = "no paint event within 30 s"
    checks.check("main window shown and painted", ok, detail)

    client = window.client
    expected = (
        [sys.executable, "--worker"] if frozen else [sys.executable, "-m", "engine.service.worker"]
    )
    checks.check(
        "engine worker command is this app's",
        client.command == expected,
        " ".join(client.command),
    )
    ok = _wait(lambda: client.state in (READY, FAILED), 180)
    versions = ", ".join(f"{k} {v}" for k, v in client.versions.items())
    checks.check(
        "engine worker process started and TensorFlow loaded",
        client.state == READY and client.worker_pid not in (0, os.getpid()),
        f"pid {client.worker_pid}: {versions}"
        if ok
        else f"state {client.state}: {client.state_message}",
    )

    ok = _wait(lambda: window.session.model is not None or bool(window.errors.problems), 180)
    model = window.session.model
    checks.check(
        "bundled demo model opened in the Model tab",
        model is not None and model.spec == "demo" and bool(model.layers),
        f"{len(model.layers)} layers, {model.totals.get('params', '?')} parameters"
        if model is not None
        else _problems(window),
    )
    if model is None:
        return

    tab = window.compress_tab
    tab.set_recipe(validate_recipe(TINY_RECIPE))
    t0 = time.monotonic()
    run = tab.start_run(out)
    checks.check(
        "compression run started from the Compress tab", run is not None, tab.message.text()
    )
    if run is None:
        return
    _wait(lambda: run.status != "running", max(10.0, args.timeout - 30))
    checks.check(
        "compression job finished in the engine worker",
        run.status == "finished",
        f"{time.monotonic() - t0:.1f} s"
        if run.status == "finished"
        else f"{run.status}: {run.error}",
    )
    if run.status != "finished":
        return

    tflite = out / "model.tflite"
    size = tflite.stat().st_size if tflite.exists() else 0
    shown = run.compressed.get("tflite_bytes")
    checks.check(
        "model.tflite written; its size is the one reported",
        size > 0 and shown == size,
        f"{tflite} ({size} bytes on disk, {shown} reported)",
    )
    acc = run.compressed.get("accuracy")
    checks.check(
        "int8 model accuracy on the demo test split",
        isinstance(acc, (int, float)) and acc >= MIN_ACCURACY,
        f"{acc} (baseline {run.baseline.get('accuracy')}, need >= {MIN_ACCURACY})",
    )
    if size:
        try:
            ok, detail = check_tflite(tflite)
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks.check("LiteRT loads model.tflite and runs one inference", ok, detail)


def _problems(window: Any) -> str:
    problems = window.errors.problems
    return "; ".join(f"{p.title}: {p.message}" for p in problems[:3]) or "timed out"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as gone (it has exited; only its parent's wait is missing).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _qt_version() -> str:
    from PySide6.QtCore import qVersion

    return qVersion()
