"""File → Export report…: the project's shareable HTML (or PDF) report, written by the engine.

``ReportExporter`` asks where to write (a save dialog with the filters "HTML report (*.html)"
and "PDF (*.pdf)"), then submits the worker job ``export_report`` (engine/service/jobs.py)
through the window's ``EngineClient`` like every other job, with the project as it is in the
app (``Project.to_dict()``, its file or, untitled, its workspace: an unsaved or untitled
project exports too). The model of the deployment verdict is the run selected in the Results
tab, if any (else the engine picks the smallest run within the budget).

While it runs, the status bar shows the stage, a progress bar and a Cancel button; errors go
to the app's one error path (``ErrorReporter``) as one line, the traceback under details.
When the file is written the status bar says where, with an "Open" button that opens it in
the system's browser / viewer (``QDesktopServices``).

The exporter knows the window only through the callables it is given; tests replace
``ask_path`` (returns ``(path, selected filter)``; an empty path cancels) and ``open_url``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStatusBar,
    QWidget,
)

from gui.errors import ErrorReporter
from gui.format import fmt_bytes
from gui.runner import EngineClient, Job

HTML_FILTER = "HTML report (*.html)"
PDF_FILTER = "PDF (*.pdf)"
REPORT_FILTERS = f"{HTML_FILTER};;{PDF_FILTER}"
DONE_MESSAGE_MS = 60_000


def report_target(path: str, selected_filter: str = "") -> tuple[str, str]:
    """``(kind, path)`` for a file picked in the save dialog: ``kind`` is "pdf" for a
    ``.pdf`` name (or the PDF filter with no suffix), else "html"; a name without the
    suffix of its kind gets it."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".pdf":
        return "pdf", str(p)
    if suffix in (".html", ".htm"):
        return "html", str(p)
    if selected_filter == PDF_FILTER:
        return "pdf", str(p.with_name(p.name + ".pdf"))
    return "html", str(p.with_name(p.name + ".html"))


def _safe_name(title: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_. " else "_" for c in title).strip(" .")
    return keep or "featherweight"


class ExportProgress(QWidget):
    """The status bar's export widgets: stage text, progress bar, Cancel; and, once a
    report is written, an Open button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setFixedWidth(140)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the export; no file is written")
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open the report with the system's browser or viewer")
        for w in (self.label, self.bar, self.cancel_button, self.open_button):
            lay.addWidget(w)
        for button in (self.cancel_button, self.open_button):
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.show_idle()

    def show_running(self, fraction: float, text: str) -> None:
        self.label.setText(text)
        self.bar.setValue(int(round(max(0.0, min(1.0, fraction)) * 100)))
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.open_button.setVisible(False)
        self.setVisible(True)

    def show_done(self) -> None:
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(False)
        self.open_button.setVisible(True)
        self.setVisible(True)

    def show_idle(self) -> None:
        self.setVisible(False)


class ReportExporter(QObject):
    """Runs File → Export report… for the window (see the module docstring).

    ``project`` is the window's ``ProjectController``; ``selected_run`` returns the Results
    tab's selected run id (or None); ``last_folder(kind)`` / ``set_last_folder(kind, path)``
    are the app's remembered folders.
    """

    started = Signal(object)  # Job
    finished = Signal(str, object)  # final state, the job's result (dict) or error (dict)
    busyChanged = Signal(bool)

    def __init__(
        self,
        client: EngineClient,
        project: Any,
        errors: ErrorReporter,
        status_bar: QStatusBar,
        selected_run: Callable[[], str | None],
        last_folder: Callable[[str], str],
        set_last_folder: Callable[[str, str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.project = project
        self.errors = errors
        self.status_bar = status_bar
        self.selected_run = selected_run
        self.last_folder = last_folder
        self.set_last_folder = set_last_folder
        self.parent_widget = parent
        self.job: Job | None = None
        self.last_result: dict[str, Any] | None = None
        self._stage = (0, 1, "")
        self._done_message = ""
        self.ask_path: Callable[[str], tuple[str, str]] = self._ask_path
        self.open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self.widget = ExportProgress()
        status_bar.addPermanentWidget(self.widget)
        self.widget.cancel_button.clicked.connect(self.cancel)
        self.widget.open_button.clicked.connect(self.open_last)
        status_bar.messageChanged.connect(self._on_message_changed)

    # -- state ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.done

    def default_path(self) -> str:
        """Where the save dialog starts: the last report folder (else the project's
        folder) and the project's name."""
        p = self.project.project
        folder = self.last_folder("report")
        if p.path is not None and folder == str(Path.home()):
            folder = str(p.path.parent)
        title = p.path.stem if p.path is not None else p.name
        return str(Path(folder) / f"{_safe_name(title)}-report.html")

    def _ask_path(self, start: str) -> tuple[str, str]:
        path, chosen = QFileDialog.getSaveFileName(
            self.parent_widget, "Export report", start, REPORT_FILTERS, HTML_FILTER
        )
        return path, chosen

    # -- actions --------------------------------------------------------------------------
    def export_dialog(self) -> Job | None:
        """Ask where to write, then export; None when the user cancelled the dialog (or
        an export is already running)."""
        if self.running:
            return self.job
        path, chosen = self.ask_path(self.default_path())
        if not path:
            return None
        kind, target = report_target(path, chosen)
        self.set_last_folder("report", target)
        return self.export(target, kind)

    def params(self, target: str, kind: str) -> dict[str, Any]:
        """The ``export_report`` job's parameters for the project as it is in the app."""
        ctl = self.project
        ctl.sync_content()
        p = ctl.project
        run = self.selected_run()
        if run is not None and run not in {r.id for r in p.runs}:
            run = None
        return {
            "project": p.to_dict(),
            "project_path": str(p.path) if p.path is not None else None,
            "workspace": str(p.workspace) if p.workspace is not None else None,
            kind: target,
            "run": run,
            "allow_unsafe": bool(p.model is not None and p.model.allow_unsafe),
        }

    def export(self, target: str, kind: str = "html") -> Job:
        """Submit the export of the project to ``target`` (``kind`` "html" or "pdf")."""
        job = self.client.submit("export_report", self.params(target, kind))
        self.job = job
        self._stage = (0, 1, "waiting for the engine…")
        self.widget.show_running(0.0, "Report: waiting for the engine…")
        self.status_bar.showMessage(f"Exporting the report to {Path(target).name}…")
        job.stage.connect(self._on_stage)
        job.progress.connect(self._on_progress)
        job.finished.connect(lambda state, j=job: self._on_finished(j, state))
        self.busyChanged.emit(True)
        self.started.emit(job)
        return job

    def cancel(self) -> None:
        if self.running and self.job is not None:
            self.widget.cancel_button.setEnabled(False)
            self.widget.label.setText("Report: cancelling…")
            self.client.cancel(self.job)

    def open_last(self) -> bool:
        """Open the last written report with the desktop's browser / viewer."""
        r = self.last_result or {}
        path = r.get("html") or r.get("pdf")
        if not path:
            return False
        ok = bool(self.open_url(QUrl.fromLocalFile(str(path))))
        if not ok:
            self.status_bar.showMessage(f"Could not open {path}: open it by hand", 10000)
        return ok

    # -- job events -----------------------------------------------------------------------
    def _on_stage(self, ev: dict[str, Any]) -> None:
        idx, count = int(ev.get("index", 0)), max(1, int(ev.get("count", 1)))
        label = str(ev.get("label") or ev.get("stage", ""))
        if ev.get("state", "start") == "start":
            self._stage = (idx, count, label)
            self.widget.show_running(idx / count, f"Report: {label}…")
        else:
            self.widget.show_running((idx + 1) / count, f"Report: {label}…")

    def _on_progress(self, ev: dict[str, Any]) -> None:
        idx, count, label = self._stage
        total = max(1, int(ev.get("total", 1) or 1))
        frac = min(total, int(ev.get("step", 0) or 0)) / total
        self.widget.show_running((idx + frac) / count, f"Report: {label}…")

    def _on_finished(self, job: Job, state: str) -> None:
        if job is not self.job:
            return
        if state == "finished":
            result = dict(job.result or {})
            self.last_result = result
            path = result.get("html") or result.get("pdf") or ""
            kind = "html" if result.get("html") else "pdf"
            size = fmt_bytes((result.get("bytes") or {}).get(kind))
            self._done_message = f"Report written: {path} ({size})"
            self.widget.show_done()
            self.status_bar.showMessage(self._done_message, DONE_MESSAGE_MS)
            self.finished.emit(state, result)
        elif state == "cancelled":
            self.widget.show_idle()
            self.status_bar.showMessage("Report export cancelled: no file was written", 10000)
            self.finished.emit(state, {"message": job.cancel_message})
        else:
            err = dict(job.error or {})
            self.widget.show_idle()
            self.status_bar.showMessage("The report could not be exported", 10000)
            if err.get("kind") != "crashed":  # the window already reported the crash
                self.errors.report(
                    "Cannot export the report",
                    " ".join(str(err.get("message", "unknown error")).split()),
                    str(err.get("details", "")),
                )
            self.finished.emit(state, err)
        self.busyChanged.emit(False)

    def _on_message_changed(self, message: str) -> None:
        """The Open button goes with the "Report written" message."""
        if not self.running and message != self._done_message:
            self.widget.show_idle()
