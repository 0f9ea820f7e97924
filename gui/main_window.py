"""The main window: three tabs, File/Help menus, status bar, drag-and-drop, settings, close.

Project files (New / Open / Save / Save As / recent, lock, autosave, recovery) and the run
lifecycle are handled by ``self.project`` (gui/project_controller.py), which is the Compress
tab's run hooks and sees this window as its ``ProjectHost``; the title is
``NAME[*] — Featherweight``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
)

import engine
from gui.compress_tab import CompressTab
from gui.errors import ErrorReporter
from gui.model_tab import ModelTab
from gui.project_controller import ProjectController
from gui.results_tab import ResultsTab
from gui.runner import FAILED, READY, EngineClient
from gui.settings import AppSettings
from gui.state import ModelInfo, RunRecord, Session

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
DEFAULT_SIZE = (1280, 800)
MODEL_TAB, COMPRESS_TAB, RESULTS_TAB = range(3)


def examples_dir() -> Path:
    from engine.core.demo import resources_dir

    return resources_dir() / "recipes"


def default_runs_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".featherweight") / "runs"


class MainWindow(QMainWindow):
    """The app window. ``worker_command`` and ``settings`` are injectable for tests."""

    def __init__(
        self,
        worker_command: list[str] | None = None,
        settings: QSettings | None = None,
        runs_dir: Path | None = None,
        session: Session | None = None,
        cancel_grace_s: float = 5.0,
        autosave_s: float | None = None,
    ) -> None:
        """``runs_dir``, when given, also holds untitled projects' workspaces (tests)."""
        super().__init__()
        self.setWindowTitle("Featherweight")
        self.setAcceptDrops(True)
        self.settings = AppSettings(settings)
        self.session = session or Session()
        self.errors = ErrorReporter(self)
        self.client = EngineClient(worker_command, cancel_grace_s=cancel_grace_s, parent=self)
        # Injectable questions (tests answer them without a modal dialog).
        self.confirm_close: Callable[[], bool] = self._ask_close
        self._closing = False
        self._charts_warm = False

        self.tabs = QTabWidget()
        self.model_tab = ModelTab(self.client, self.session, self.errors, self.settings.last_folder)
        self.compress_tab = CompressTab(
            self.client,
            self.session,
            self.errors,
            runs_dir or default_runs_dir(),
            self.settings.last_folder,
            self.settings.set_last_folder,
            examples_dir(),
        )
        self.results_tab = ResultsTab(
            self.session, self.errors, self.settings.last_folder, self.settings.set_last_folder
        )
        self.tabs.addTab(self.model_tab, "1  Model")
        self.tabs.addTab(self.compress_tab, "2  Compress")
        self.tabs.addTab(self.results_tab, "3  Results")
        self.setCentralWidget(self.tabs)

        self.model_tab.openRequested.connect(self.open_model_dialog)
        self.model_tab.demoRequested.connect(self.open_demo)
        self.model_tab.modelChanged.connect(self._on_model_changed)
        self.model_tab.dataChanged.connect(lambda _d: self.compress_tab.refresh_data())
        self.model_tab.baselineChanged.connect(lambda _b: self.results_tab.refresh())
        self.compress_tab.dataChosen.connect(self.model_tab.set_data)
        self.compress_tab.showResultsRequested.connect(
            lambda: self.tabs.setCurrentIndex(RESULTS_TAB)
        )
        self.client.engineState.connect(self._on_engine_state)
        self.client.crashed.connect(self._on_crash)
        self.client.versionsChanged.connect(lambda _v: self._update_engine_label())
        self.client.busyChanged.connect(lambda _b: self._update_engine_label())

        self.project = ProjectController(self, self, data_dir=runs_dir, autosave_s=autosave_s)
        self.project.changed.connect(self.update_title)
        # The project owns the runs (folder, id, split, record); the window shows them.
        self.compress_tab.set_run_hooks(self.project)
        self.compress_tab.recipeSaved.connect(self.project.remember_recipe)
        self.compress_tab.runStarted.connect(self._on_run_started)
        self.compress_tab.runFinished.connect(self._on_run_finished)
        self.model_tab.modelChanged.connect(lambda _m: self._content_changed())
        self.model_tab.dataChanged.connect(lambda _d: self._content_changed())
        self.model_tab.baselineChanged.connect(lambda _b: self._content_changed())

        self._build_menus()
        self._build_status_bar()
        self.update_title()
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._charts_warm:
            self._charts_warm = True
            # Build the live charts (imports pyqtgraph, ~0.3 s) just after the window is up,
            # so neither the first paint nor the first Run click pays for it.
            self.compress_tab.warm_up_charts(300)
            self.project.start()

    # -- menus & status -------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.act_new_project = QAction("&New project", self)
        self.act_new_project.setShortcut(QKeySequence.StandardKey.New)
        self.act_new_project.triggered.connect(self.project.new)
        self.act_open_project = QAction("Open &project…", self)
        self.act_open_project.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.act_open_project.triggered.connect(self.project.open_dialog)
        self.recent_projects_menu = QMenu("Recent pro&jects", self)
        self.recent_projects_menu.aboutToShow.connect(self._fill_recent_projects)
        self.act_save_project = QAction("&Save project", self)
        self.act_save_project.setShortcut(QKeySequence.StandardKey.Save)
        self.act_save_project.triggered.connect(self.project.save)
        self.act_save_project_as = QAction("Save project &as…", self)
        self.act_save_project_as.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.act_save_project_as.triggered.connect(lambda: self.project.save_as())
        self.act_open = QAction("&Open model…", self)
        self.act_open.setShortcut(QKeySequence.StandardKey.Open)
        self.act_open.triggered.connect(self.open_model_dialog)
        self.act_demo = QAction("Open &demo", self)
        self.act_demo.setShortcut(QKeySequence("Ctrl+D"))
        self.act_demo.triggered.connect(self.open_demo)
        self.recent_menu = QMenu("Open &recent model", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.model_tab.recent_button.setMenu(self.recent_menu)
        self.act_load_recipe = QAction("&Load recipe…", self)
        self.act_load_recipe.setShortcut(QKeySequence("Ctrl+L"))
        self.act_load_recipe.triggered.connect(self.compress_tab.load_recipe_dialog)
        self.act_save_recipe = QAction("&Save recipe…", self)
        self.act_save_recipe.setShortcut(QKeySequence("Ctrl+Alt+S"))
        self.act_save_recipe.triggered.connect(self.compress_tab.save_recipe_dialog)
        self.act_quit = QAction("&Quit", self)
        self.act_quit.setShortcut(QKeySequence.StandardKey.Quit)
        self.act_quit.triggered.connect(self.close)
        file_menu.addAction(self.act_new_project)
        file_menu.addAction(self.act_open_project)
        file_menu.addMenu(self.recent_projects_menu)
        file_menu.addAction(self.act_save_project)
        file_menu.addAction(self.act_save_project_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_open)
        file_menu.addAction(self.act_demo)
        file_menu.addMenu(self.recent_menu)
        self.project_separator = file_menu.addSeparator()
        file_menu.addAction(self.act_load_recipe)
        file_menu.addAction(self.act_save_recipe)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        self.file_menu = file_menu

        run_menu = self.menuBar().addMenu("&Run")
        self.act_run = QAction("&Run recipe", self)
        self.act_run.setShortcut(QKeySequence("Ctrl+R"))
        self.act_run.triggered.connect(self._run_shortcut)
        self.act_cancel = QAction("&Cancel run", self)
        self.act_cancel.setShortcut(QKeySequence("Esc"))
        self.act_cancel.triggered.connect(self.compress_tab.cancel_run)
        run_menu.addAction(self.act_run)
        run_menu.addAction(self.act_cancel)

        view_menu = self.menuBar().addMenu("&View")
        for i, name in enumerate(("&Model", "&Compress", "Re&sults")):
            act = QAction(name, self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _c=False, i=i: self.tabs.setCurrentIndex(i))
            view_menu.addAction(act)

        help_menu = self.menuBar().addMenu("&Help")
        self.act_about = QAction("&About Featherweight", self)
        self.act_about.triggered.connect(self.show_about)
        help_menu.addAction(self.act_about)

    def _build_status_bar(self) -> None:
        self.engine_label = QLabel()
        self.statusBar().addPermanentWidget(self.engine_label)
        self._update_engine_label()
        self.statusBar().showMessage("Open a model, drop one here, or press Ctrl+D for the demo.")

    def _update_engine_label(self) -> None:
        c = self.client
        if c.state == READY and c.busy and c.running_job is not None:
            text = f"● engine busy ({c.running_job.name})"
            color = "#8a6d00"
        elif c.state == READY:
            tf_v = c.versions.get("tensorflow")
            text = f"● engine ready{f' · TensorFlow {tf_v}' if tf_v else ''}"
            color = "#1b5e20"
        elif c.state == FAILED:
            text, color = f"● {c.state_message}", "#b00020"
        else:
            text, color = f"● {c.state_message}", "#555"
        self.engine_label.setText(text)
        self.engine_label.setStyleSheet(f"color: {color}; padding: 0 6px;")

    def _on_engine_state(self, state: str, message: str) -> None:
        self._update_engine_label()

    def _on_crash(self, message: str, details: str) -> None:
        self.statusBar().showMessage(message, 10000)
        if not self._closing:
            self.errors.report("The engine stopped", message, details)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = self.settings.recent_models()
        for path in items:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_model(p))
        if not items:
            act = self.recent_menu.addAction("(no recent models)")
            act.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.settings.clear_recent_models)

    def _fill_recent_projects(self) -> None:
        menu = self.recent_projects_menu
        menu.clear()
        gone = self.settings.prune_recent_projects()
        if gone:
            names = ", ".join(Path(p).name for p in gone)
            self.statusBar().showMessage(
                f"Removed from recent projects (file no longer there): {names}", 10000
            )
        items = self.settings.recent_projects()
        for path in items:
            act = menu.addAction(path)
            act.triggered.connect(lambda _c=False, p=path: self.project.open(p))
        if not items:
            act = menu.addAction("(no recent projects)")
            act.setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list", self.settings.clear_recent_projects)

    # -- project --------------------------------------------------------------------------
    # ProjectHost (what the project controller asks of the window)
    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        """A status-bar message."""
        self.statusBar().showMessage(message, timeout_ms)

    def view_state(self) -> dict[str, Any]:
        """The tab shown, the selected run and the Compress tab's view (``project.ui``)."""
        sel = self.results_tab.selected_run()
        return {
            "tab": self.tabs.currentIndex(),
            "selected_run": sel.id if sel is not None else None,
            **self.compress_tab.view_state(),
        }

    def restore_view_state(self, ui: dict[str, Any]) -> None:
        """Show what ``view_state`` recorded; stale entries are skipped."""
        self.compress_tab.restore_view_state(ui, self.session.runs)
        by_id = {r.id: r for r in self.session.runs}
        sel = by_id.get(ui.get("selected_run") or "")
        if sel is not None and sel.status == "finished":
            self.results_tab.select_run(sel)
        tab = ui.get("tab")
        if isinstance(tab, int) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)

    def show_references(self) -> None:
        """Show the session's model and dataset again (one was located elsewhere)."""
        self.model_tab.show_model(self.session.model)
        self.model_tab.data_picker.show_choice(self.session.data)

    def reinspect_model(self, spec: str, allow_unsafe: bool) -> None:
        """Ask the engine about the model again (report, dataset check, baseline)."""
        self.model_tab.open_model(spec, allow_unsafe)

    def _content_changed(self) -> None:
        self.update_title()

    def update_title(self) -> None:
        """``NAME[*] — Featherweight`` with Qt's modified mark for unsaved changes."""
        ctl = self.project
        extra = " (read-only)" if ctl.read_only else ""
        self.setWindowTitle(f"{ctl.title}[*]{extra} — Featherweight")
        self.setWindowModified(ctl.is_dirty())
        self.act_save_project.setEnabled(not ctl.read_only)

    def show_about(self) -> QMessageBox:
        v = self.client.versions
        lines = [
            f"<b>Featherweight {engine.__version__}</b>",
            "Makes Keras/TensorFlow models small enough for phones and boards.",
            "",
            f"TensorFlow: {v.get('tensorflow', 'engine not ready yet')}",
            f"tf-keras: {v.get('tf_keras', '—')}",
            f"TensorFlow Model Optimization: {v.get('tfmot', '—')}",
        ]
        from PySide6 import __version__ as pyside_version

        lines.append(f"PySide6: {pyside_version}")
        box = QMessageBox(self)
        box.setWindowTitle("About Featherweight")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText("<br>".join(lines))
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.about_box = box
        return box

    def set_session(self, session: Session) -> None:
        """Show another session (e.g. a reopened project) in all three tabs.

        The engine is not asked anything: the model report, dataset verdict, baseline and
        runs are shown as stored. Refused while a run is going.
        """
        if self.compress_tab.running:
            raise RuntimeError("cannot switch sessions while a run is going")
        self.session = session
        for tab in (self.model_tab, self.compress_tab, self.results_tab):
            tab.session = session
        self.model_tab.show_model(session.model)
        self.model_tab.data_picker.show_choice(session.data)
        self.model_tab.show_baseline(session.baseline)
        self.compress_tab.refresh_data()
        self.compress_tab.show_run(session.runs[-1] if session.runs else None)
        self.results_tab.refresh()
        if hasattr(self, "project"):
            session.project = self.project.project if session.project is None else session.project
            self.update_title()

    # -- actions --------------------------------------------------------------------------
    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open model",
            self.settings.last_folder("model"),
            "Keras models (*.keras *.h5 *.hdf5);;All files (*)",
        )
        if path:
            self.open_model(path)

    def open_model(self, spec: str) -> None:
        """Open a model ("demo" or a path) in the Model tab."""
        if spec != "demo":
            self.settings.set_last_folder("model", spec)
        self.tabs.setCurrentIndex(MODEL_TAB)
        self.model_tab.open_model(spec)

    def open_demo(self) -> None:
        """The demo model with the demo dataset: one click to a working setup."""
        self.session.data.spec = "demo"
        self.session.data.scale = "auto"
        self.model_tab.data_picker.show_choice(self.session.data)
        self.open_model("demo")

    def _on_model_changed(self, info: ModelInfo) -> None:
        if info.spec != "demo":
            self.settings.add_recent_model(info.spec)
        self.statusBar().showMessage(f"Opened {info.display_name}", 5000)
        self.compress_tab.refresh_data()

    def _run_shortcut(self) -> None:
        self.tabs.setCurrentIndex(COMPRESS_TAB)
        self.compress_tab.go_to(3)
        self.compress_tab.start_run()

    def _on_run_started(self, run: RunRecord) -> None:
        self.update_title()
        self.statusBar().showMessage(f"Running {run.name}… (you can keep using the app)", 5000)

    def _on_run_finished(self, run: RunRecord) -> None:
        self.update_title()
        self.results_tab.refresh()
        if run.status == "finished":
            self.results_tab.select_run(run)
            self.statusBar().showMessage(f"{run.name} finished — see the Results tab", 10000)
        else:
            self.statusBar().showMessage(f"{run.name} {run.status}", 10000)

    # -- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self._dropped_path(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = self._dropped_path(event)
        if path is None:
            return
        event.acceptProposedAction()
        self.open_dropped(path)

    def open_dropped(self, path: Path) -> None:
        """A dropped file: a project or model opens, an .npz becomes the dataset, a .json a
        recipe."""
        suffix = path.suffix.lower()
        if suffix == ".fwproj":
            self.project.open(path)
        elif suffix in MODEL_SUFFIXES or (path.is_dir() and (path / "saved_model.pb").exists()):
            self.open_model(str(path))
        elif suffix == ".npz" or path.is_dir():
            self.tabs.setCurrentIndex(MODEL_TAB)
            self.model_tab.set_data(str(path), self.session.data.scale)
        elif suffix == ".json":
            self.tabs.setCurrentIndex(COMPRESS_TAB)
            self.compress_tab.load_recipe_file(path)
        else:
            self.errors.report(
                "Cannot open this file",
                f"{path.name} is not a project (.fwproj), a model (.keras, .h5, SavedModel "
                "folder), a dataset "
                "(.npz, image folder) or a recipe (.json)",
            )

    @staticmethod
    def _dropped_path(event: Any) -> Path | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        urls = [u for u in mime.urls() if u.isLocalFile()]
        return Path(urls[0].toLocalFile()) if urls else None

    # -- closing --------------------------------------------------------------------------
    def _ask_close(self) -> bool:
        answer = QMessageBox.question(
            self,
            "A run is in progress",
            "A compression is still running. Cancel it and quit?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.compress_tab.running and not self._closing:
            if not self.confirm_close():
                event.ignore()
                return
        if not self._closing and not self.project.resolve_unsaved(then=self.close):
            event.ignore()
            return
        self._closing = True
        self.project.stop()
        self.settings.set_geometry(self.saveGeometry())
        self.settings.sync()
        self.compress_tab.stop_live_charts()
        self.errors.close_dialogs()
        self.client.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the engine without asking (tests, self-test); unsaved changes stay in the
        recovery file only if an autosave wrote them."""
        self._closing = True
        self.project.stop()
        self.compress_tab.stop_live_charts()
        self.errors.close_dialogs()
        self.client.shutdown()
