"""One error path for the whole app.

Worker errors, worker crashes, bad files, failed validations, ``sys.excepthook`` and
``threading.excepthook`` all end in ``ErrorReporter.report``: the error is logged and a short
message is shown with the details (traceback) expandable under "Show Details…". The dialog
is non-modal, so the app stays usable and nothing blocks a test. Exceptions from other
threads are marshalled to the GUI thread through a queued signal.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from types import TracebackType

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("featherweight.gui")


@dataclass
class Problem:
    title: str
    message: str
    details: str = ""


class ErrorReporter(QObject):
    """Shows problems to the user; ``problems`` keeps them (tests read it)."""

    reported = Signal(object)  # Problem
    _marshal = Signal(str, str, str)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self.problems: list[Problem] = []
        self.show_dialogs = True
        self._boxes: list[QMessageBox] = []
        self._marshal.connect(self._report_on_gui_thread)
        self._old_hooks: tuple | None = None

    def report(self, title: str, message: str, details: str = "") -> None:
        """Thread-safe: log the problem and show it (on the GUI thread)."""
        self._marshal.emit(title, message, details)

    def report_exception(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self.report("Unexpected error", f"{exc_type.__name__}: {exc}", details)

    @Slot(str, str, str)
    def _report_on_gui_thread(self, title: str, message: str, details: str) -> None:
        problem = Problem(title, message, details)
        self.problems.append(problem)
        log.error("%s: %s\n%s", title, message, details)
        if self.show_dialogs:
            box = QMessageBox(self.parent_widget)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle(f"Featherweight — {title}")
            box.setText(message)
            if details:
                box.setDetailedText(details)
            box.setStandardButtons(QMessageBox.StandardButton.Ok)
            box.finished.connect(lambda _r, b=box: self._forget(b))
            self._boxes.append(box)
            box.open()
        self.reported.emit(problem)

    def _forget(self, box: QMessageBox) -> None:
        if box in self._boxes:
            self._boxes.remove(box)
        box.deleteLater()

    def close_dialogs(self) -> None:
        for box in list(self._boxes):
            box.close()
            self._forget(box)

    def install_hooks(self) -> None:
        """Route ``sys.excepthook`` and ``threading.excepthook`` here."""
        self._old_hooks = (sys.excepthook, threading.excepthook)

        def thread_hook(args: threading.ExceptHookArgs) -> None:
            if args.exc_type is SystemExit:
                return
            self.report_exception(
                args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
            )

        sys.excepthook = self.report_exception
        threading.excepthook = thread_hook

    def uninstall_hooks(self) -> None:
        if self._old_hooks is not None:
            sys.excepthook, threading.excepthook = self._old_hooks
            self._old_hooks = None
