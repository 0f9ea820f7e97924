"""Entry point of the desktop app: ``main(argv) -> exit code``.

``gui.launcher`` calls ``main`` for ``featherweight`` with no command. ``argv`` may hold
``--demo`` (open the demo model and dataset at start) and/or a project file path
(``featherweight x.fwproj`` opens it; a path that does not exist yet becomes the new
project's file name, written by the first Save). Without a project, a recovery file left by
a crashed untitled session is offered back. ``--quit-after-paint`` prints
``painted <seconds since main() started>`` once the window is on screen and exits (used to
measure start-up). This module never imports TensorFlow: the engine worker process does.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtCore import QEvent, QObject, QTimer  # noqa: E402
from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import engine  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.state import Session  # noqa: E402


class _FirstPaint(QObject):
    """Calls ``callback`` once, after the first paint of the watched widget."""

    def __init__(self, callback) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._callback = callback
        self._done = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if not self._done and event.type() == QEvent.Type.Paint:
            self._done = True
            QTimer.singleShot(0, self._callback)
        return False


def parse_args(argv: Sequence[str]) -> dict:
    opts = {"demo": False, "project": None, "quit_after_paint": False}
    for arg in argv:
        if arg == "--demo":
            opts["demo"] = True
        elif arg == "--quit-after-paint":
            opts["quit_after_paint"] = True
        elif not arg.startswith("-") and opts["project"] is None:
            opts["project"] = arg
    return opts


def create_window(argv: Sequence[str] = (), **kwargs) -> MainWindow:  # type: ignore[no-untyped-def]
    """Build the window for ``argv`` (used by ``main`` and the self-test)."""
    opts = parse_args(argv)
    session = Session(project_path=opts["project"])
    ask_restore = kwargs.pop("ask_restore", None)  # tests answer the recovery question
    window = MainWindow(session=session, **kwargs)
    if ask_restore is not None:
        window.project.ask_restore = ask_restore
    path = opts["project"]
    if path and Path(path).exists():
        window.project.open(path, ask_first=False)
    elif path:
        window.project.set_target_path(path)
    elif not opts["demo"]:
        window.project.restore_untitled_on_start()
    if opts["demo"]:
        window.open_demo()
    return window


def app_icon() -> QIcon:
    """The application icon, in the sizes desktops use (files are loaded lazily by Qt)."""
    from engine.core.demo import resources_dir

    icon = QIcon()
    for size in (16, 32, 48, 64, 128, 256, 512):
        icon.addFile(str(resources_dir() / "icons" / f"featherweight-{size}.png"))
    return icon


def main(argv: Sequence[str] | None = None) -> int:
    t0 = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(argv)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "featherweight"])
    app.setApplicationName(engine.APP_NAME)
    app.setOrganizationName(engine.APP_NAME)
    app.setApplicationVersion(engine.__version__)
    app.setWindowIcon(app_icon())
    # Lets Wayland desktops match the window to packaging/linux/featherweight.desktop.
    app.setDesktopFileName("featherweight")
    window = create_window(argv)
    window.errors.install_hooks()
    if opts["quit_after_paint"]:

        def painted() -> None:
            print(f"painted {time.perf_counter() - t0:.3f}", flush=True)
            window.close()

        watcher = _FirstPaint(painted)
        window.installEventFilter(watcher)
    window.show()
    code = app.exec()
    window.errors.uninstall_hooks()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
