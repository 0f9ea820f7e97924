"""The main window: three tabs, File/Run/View/Help menus, status bar, drag-and-drop, settings,
close.

Project files (New / Open / Save / Save As / recent, lock, autosave, recovery) and the run
lifecycle are handled by ``self.project`` (gui/project_controller.py), which is the Compress
tab's run hooks and sees this window as its ``ProjectHost``; the title is
``NAME[*] — Featherweight``.

Every way of opening a model or choosing a dataset (menus, buttons, the data pickers, drag
and drop) goes through ``open_model`` / ``choose_data``, which ask the project first when the
change would start another comparison (``ProjectController.confirm_subject_change``). The
accuracy budget is the project's: the Results tab edits it (``budgetChanged``), the window
stores it and hands it to the tabs that judge runs (``set_accuracy_budget``).

Searches (issue 15) belong to the project too (``self.project`` is the Compress tab's search
hooks); ``restore_search`` shows the newest search of the current model and dataset, read
from its search.json, when a project opens or the model / dataset changes (a search of
another model or dataset is never shown with this one).

File → Export report… (issue 16) is ``self.report_export`` (gui/report_export.py): the worker job
``export_report`` on the project as it is in the app, the Results tab's selected run as the
chosen model; enabled when a model is open and no run, search, analysis or export is going
(``export_blocker``).

Questions and dialogs tests answer instead of a person: ``confirm_close``,
``ask_model_path`` (Open model…), ``ask_savedmodel_folder`` (Open SavedModel folder…) and
``open_url`` (Help → User guide).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QUrl
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
)

import engine
from gui.compress_tab import CompressTab
from gui.errors import ErrorReporter
from gui.model_tab import ModelTab
from gui.project_controller import ProjectController, stored_analysis, stored_search
from gui.report_export import ReportExporter
from gui.results_tab import ResultsTab
from gui.runner import FAILED, READY, EngineClient
from gui.settings import AppSettings
from gui.state import ModelInfo, RunRecord, Session

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_FILE = "saved_model.pb"
MODEL_FILTER = (
    "Keras models and SavedModels (*.keras *.h5 *.hdf5 saved_model.pb);;"
    "Keras files (*.keras *.h5 *.hdf5);;SavedModel (saved_model.pb);;All files (*)"
)
DEFAULT_SIZE = (1280, 800)
MODEL_TAB, COMPRESS_TAB, RESULTS_TAB = range(3)


def model_spec(path: str | Path) -> str:
    """What the engine opens for a picked path: a SavedModel's ``saved_model.pb`` stands for
    its folder; anything else is itself."""
    p = Path(path)
    if p.name == SAVED_MODEL_FILE:
        return str(p.parent)
    return str(p)


def is_saved_model_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / SAVED_MODEL_FILE).is_file()


def user_guide_path() -> Path:
    """docs/user-guide.md beside resources/ (source tree, bundle or install)."""
    from engine.core.demo import resources_dir

    return resources_dir().parent / "docs" / "user-guide.md"


def examples_dir() -> Path:
    from engine.core.demo import resources_dir

    return resources_dir() / "recipes"


def default_runs_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".featherweight") / "runs"


EXPORT_REPORT_TIP = (
    "One self-contained HTML file (or a PDF) with the model, every run, the charts and the "
    "deployment verdict, to hand to someone else"
)


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
        self.ask_model_path: Callable[[], str] = self._ask_model_path
        self.ask_savedmodel_folder: Callable[[], str] = self._ask_savedmodel_folder
        self.open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self._closing = False
        self._charts_warm = False
        self._shown = False
        self._launch_clean = False  # the demo opened at launch is the project's clean state
        self._applying_budget = False

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
        self.model_tab.baselineChanged.connect(lambda _b: self._refresh_results())
        self.model_tab.baselineChanged.connect(lambda _b: self.compress_tab.refresh_estimates())
        self.compress_tab.dataChosen.connect(self.choose_data)
        self._route_model_tab_picker()
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
        self.compress_tab.set_search_hooks(self.project)
        self.compress_tab.searchStarted.connect(self._on_search_started)
        self.compress_tab.searchFinished.connect(self._on_search_finished)
        self._shown_search: tuple[str, str] | None = None  # (model_id, dataset_id) shown
        self.compress_tab.recipeSaved.connect(self.project.remember_recipe)
        self.compress_tab.runStarted.connect(self._on_run_started)
        self.compress_tab.runFinished.connect(self._on_run_finished)
        self.model_tab.modelChanged.connect(lambda _m: self._content_changed())
        self.model_tab.dataChanged.connect(lambda _d: self._content_changed())
        self.model_tab.baselineChanged.connect(lambda _b: self._content_changed())
        self.model_tab.baselineChanged.connect(self._on_baseline_for_launch)
        self.model_tab.baselineChanged.connect(self._restore_analysis)
        self.model_tab.baselineChanged.connect(lambda _b: self.restore_search())
        self.model_tab.analysisChanged.connect(self._on_analysis)
        self.model_tab.recipeRequested.connect(self.open_recipe_in_wizard)
        self.results_tab.budgetChanged.connect(self.set_accuracy_budget)

        self.report_export = ReportExporter(
            self.client,
            self.project,
            self.errors,
            self.statusBar(),
            self._selected_run_id,
            self.settings.last_folder,
            self.settings.set_last_folder,
            parent=self,
        )
        self._build_menus()
        self._build_status_bar()
        self.report_export.busyChanged.connect(lambda _b: self.update_export_action())
        self.client.busyChanged.connect(lambda _b: self.update_export_action())
        self.model_tab.modelChanged.connect(lambda _m: self.update_export_action())
        self.update_title()
        self._apply_budget(self.session.accuracy_budget)
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self._shown = True
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
        self.act_export_report = QAction("&Export report…", self)
        self.act_export_report.setShortcut(QKeySequence("Ctrl+E"))
        self.act_export_report.setToolTip(EXPORT_REPORT_TIP)
        self.act_export_report.setStatusTip(EXPORT_REPORT_TIP)
        self.act_export_report.triggered.connect(self.export_report_dialog)
        # The Results tab offers it too, beside the other exports (same action, same state).
        self.export_report_button = QPushButton("Export report…")
        self.export_report_button.clicked.connect(self.act_export_report.trigger)
        self.results_tab.add_export_button(self.export_report_button)
        self.act_open = QAction("&Open model…", self)
        self.act_open.setShortcut(QKeySequence.StandardKey.Open)
        self.act_open.setToolTip("A .keras or .h5 file, or a SavedModel's saved_model.pb")
        self.act_open.triggered.connect(self.open_model_dialog)
        self.act_open_savedmodel = QAction("Open Saved&Model folder…", self)
        self.act_open_savedmodel.setShortcut(QKeySequence("Ctrl+Shift+M"))
        self.act_open_savedmodel.triggered.connect(self.open_savedmodel_dialog)
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
        file_menu.addAction(self.act_export_report)
        file_menu.addSeparator()
        file_menu.addAction(self.act_open)
        file_menu.addAction(self.act_open_savedmodel)
        file_menu.addAction(self.act_demo)
        file_menu.addMenu(self.recent_menu)
        self.project_separator = file_menu.addSeparator()
        file_menu.addAction(self.act_load_recipe)
        file_menu.addAction(self.act_save_recipe)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        self.file_menu = file_menu
        file_menu.aboutToShow.connect(self.update_export_action)
        self.update_export_action()

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
        self.act_user_guide = QAction("&User guide", self)
        self.act_user_guide.setShortcut(QKeySequence.StandardKey.HelpContents)
        self.act_user_guide.triggered.connect(self.show_user_guide)
        self.act_shortcuts = QAction("&Keyboard shortcuts", self)
        self.act_shortcuts.setShortcut(QKeySequence("Ctrl+/"))
        self.act_shortcuts.triggered.connect(self.show_shortcuts)
        self.act_report = QAction("&Report a problem", self)
        self.act_report.setToolTip(
            "Copies the versions and the last run's log to the clipboard, to paste in a report"
        )
        self.act_report.triggered.connect(self.report_problem)
        self.act_about = QAction("&About Featherweight", self)
        self.act_about.triggered.connect(self.show_about)
        help_menu.addAction(self.act_user_guide)
        help_menu.addAction(self.act_shortcuts)
        help_menu.addAction(self.act_report)
        help_menu.addSeparator()
        help_menu.addAction(self.act_about)
        self.help_menu = help_menu

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

    def reset_views(self) -> None:
        """Every tab as at a fresh launch: no model, no dataset path, no run, log or chart,
        the wizard on its first page (New project, and before another project is shown)."""
        self._launch_clean = False
        self.model_tab.reset()
        self.compress_tab.reset()
        self.results_tab.reset()

    # -- report ---------------------------------------------------------------------------
    def _selected_run_id(self) -> str | None:
        sel = self.results_tab.selected_run()
        return sel.id if sel is not None and sel.status == "finished" else None

    def export_blocker(self) -> str | None:
        """Why File → Export report… cannot start now (None: it can): no model yet, or a
        run, search, analysis or another export still writing into the project."""
        if self.session.model is None:
            return "Open a model first: the report is about a model and its runs"
        if self.report_export.running:
            return "A report is being exported"
        if self.compress_tab.searching:
            return "Wait for the search to end (or stop it) before exporting the report"
        if self.compress_tab.running or self.project.run_in_progress:
            return "Wait for the run to end before exporting the report"
        if self.model_tab.analyzing:
            return "Wait for the sensitivity analysis to end before exporting the report"
        return None

    def update_export_action(self) -> None:
        """Enable File → Export report… when a report can be exported now."""
        if not hasattr(self, "act_export_report"):
            return
        why = self.export_blocker()
        self.act_export_report.setEnabled(why is None)
        tip = why or EXPORT_REPORT_TIP
        self.act_export_report.setToolTip(tip)
        self.act_export_report.setStatusTip(tip)
        self.export_report_button.setEnabled(why is None)
        self.export_report_button.setToolTip(tip)

    def export_report_dialog(self) -> Any:
        """File → Export report…: ask for the file, then export through the engine (the
        Results tab's selected run is the one the deployment verdict is about)."""
        why = self.export_blocker()
        if why is not None:
            self.statusBar().showMessage(why, 8000)
            return None
        return self.report_export.export_dialog()

    # -- accuracy budget ------------------------------------------------------------------
    def set_accuracy_budget(self, points: float) -> None:
        """The user changed the budget (Results tab): store it in the project (an unsaved
        change) and judge every run against it."""
        if self._applying_budget:
            return
        value = self.project.set_accuracy_budget(points)
        self._apply_budget(value)
        self.update_title()

    def _apply_budget(self, points: float) -> None:
        """Hand the budget to the tabs that judge runs (the Results tab forwards it to its
        deploy panel)."""
        self._applying_budget = True
        try:
            self.compress_tab.set_accuracy_budget(points)
            self.results_tab.set_accuracy_budget(points)
        finally:
            self._applying_budget = False

    def _refresh_results(self) -> None:
        """Re-read the session in the Results tab, its subject up to date first."""
        self.project.sync_content()
        self.results_tab.refresh()

    def _content_changed(self) -> None:
        self.update_title()

    def update_title(self) -> None:
        """``NAME[*] — Featherweight`` with Qt's modified mark for unsaved changes."""
        ctl = self.project
        extra = " (read-only)" if ctl.read_only else ""
        self.setWindowTitle(f"{ctl.title}[*]{extra} — Featherweight")
        self.setWindowModified(ctl.is_dirty())
        self.act_save_project.setEnabled(not ctl.read_only)
        self.update_export_action()

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

    # -- help -----------------------------------------------------------------------------
    def show_user_guide(self) -> bool:
        """Open docs/user-guide.md with the desktop's viewer (the docs folder if the file
        is missing). False, with a status message, when neither can be opened."""
        guide = user_guide_path()
        target = guide if guide.is_file() else guide.parent
        if not target.exists():
            self.statusBar().showMessage(
                f"The user guide is not installed here (looked for {guide})", 10000
            )
            return False
        ok = bool(self.open_url(QUrl.fromLocalFile(str(target))))
        self.statusBar().showMessage(
            f"Opened {target}" if ok else f"Could not open {target}: open it by hand", 10000
        )
        return ok

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """``(what, keys)`` for every action of the window that has a shortcut: menu
        actions as "Menu → Item", then any other action, as the actions say them now."""
        rows: list[tuple[str, str]] = []
        seen: set[int] = set()

        def text(action: QAction) -> str:
            return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")

        def walk(menu: QMenu, path: str) -> None:
            for act in menu.actions():
                sub = act.menu()
                if isinstance(sub, QMenu):
                    walk(sub, f"{path} → {text(act)}")
                elif not act.isSeparator() and not act.shortcut().isEmpty():
                    seen.add(id(act))
                    keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                    rows.append((f"{path} → {text(act)}", keys))

        for top in self.menuBar().actions():
            sub = top.menu()
            if isinstance(sub, QMenu):
                walk(sub, text(top))
        for act in self.findChildren(QAction):
            if id(act) not in seen and not act.shortcut().isEmpty() and act.text():
                keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                rows.append((text(act), keys))
        return rows

    def show_shortcuts(self) -> QDialog:
        """A dialog listing ``shortcut_rows`` (non-blocking)."""
        dlg = QDialog(self)
        dlg.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(dlg)
        rows = self.shortcut_rows()
        table = QTableWidget(len(rows), 2, dlg)
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for i, (what, keys) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(what))
            table.setItem(i, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dlg)
        buttons.rejected.connect(dlg.close)
        lay.addWidget(buttons)
        dlg.resize(520, 480)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()
        self.shortcuts_dialog = dlg
        return dlg

    def problem_report(self) -> str:
        """Plain text for a bug report: app, library and system versions, the engine's
        state, and the last run (recipe, status, error, log)."""
        import platform

        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        from engine.project.document import current_versions

        lines = [f"Featherweight {engine.__version__} — problem report", ""]
        lines.append(f"System: {platform.platform()} ({platform.machine()})")
        lines.append(f"Python: {platform.python_version()}")
        lines.append(f"Qt: {qVersion()}, PySide6: {pyside_version}")
        versions = {**current_versions(), **self.client.versions}
        for key in sorted(versions):
            lines.append(f"{key}: {versions[key]}")
        lines.append(f"Engine: {self.client.state} {self.client.state_message}".rstrip())
        run = getattr(self.compress_tab, "run", None) or (
            self.session.runs[-1] if self.session.runs else None
        )
        lines.append("")
        if run is None:
            lines.append("No run yet.")
        else:
            import json

            lines.append(f"Last run: {run.name} — {run.status}")
            if run.error:
                lines.append(f"Error: {run.error}")
            if run.subject_label:
                lines.append(f"On: {run.subject_label}")
            lines.append("Recipe: " + json.dumps(run.recipe, sort_keys=True))
            lines.append("Log:")
            lines.extend(f"  {line}" for line in run.log)
        return "\n".join(lines) + "\n"

    def report_problem(self) -> str:
        """Copy ``problem_report`` to the clipboard and say so in the status bar."""
        text = self.problem_report()
        QGuiApplication.clipboard().setText(text)
        run = getattr(self.compress_tab, "run", None)
        what = f"the log of {run.name}" if run is not None else "no run log yet"
        self.statusBar().showMessage(
            f"Copied the versions and {what} to the clipboard: paste it into your report",
            15000,
        )
        return text

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
        self.model_tab.show_analysis(session.analysis)
        self.compress_tab.refresh_data()
        self.compress_tab.show_run(session.runs[-1] if session.runs else None)
        self._apply_budget(session.accuracy_budget)
        self.results_tab.refresh()
        if hasattr(self, "project"):
            session.project = self.project.project if session.project is None else session.project
            self.update_title()
            self.restore_search(force=True)

    # -- actions --------------------------------------------------------------------------
    def _ask_model_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open model", self.settings.last_folder("model"), MODEL_FILTER
        )
        return path

    def _ask_savedmodel_folder(self) -> str:
        return QFileDialog.getExistingDirectory(
            self, "Open SavedModel folder", self.settings.last_folder("model")
        )

    def open_model_dialog(self) -> None:
        """Open model…: a .keras/.h5 file, or a SavedModel's saved_model.pb (opens its
        folder)."""
        path = self.ask_model_path()
        if path:
            self.open_model(path)

    def open_savedmodel_dialog(self) -> None:
        """File → Open SavedModel folder…: a folder holding saved_model.pb."""
        folder = self.ask_savedmodel_folder()
        if not folder:
            return
        if not is_saved_model_dir(folder):
            self.errors.report(
                "Not a SavedModel folder",
                f"{Path(folder).name} has no {SAVED_MODEL_FILE}: choose the folder a Keras 2 "
                "model.save(folder) wrote (it holds saved_model.pb and keras_metadata.pb)",
            )
            return
        self.open_model(folder)

    def open_model(self, spec: str) -> bool:
        """Open a model ("demo", a file, a SavedModel folder or its saved_model.pb) in the
        Model tab. When the current comparison has runs, the project asks first (new
        project / new comparison / cancel); False when it does not open now."""
        spec = spec if spec == "demo" else model_spec(spec)
        name = "the demo model" if spec == "demo" else Path(spec).name
        if not self.project.confirm_subject_change(
            "model", name, lambda: self.open_model(spec), model=spec
        ):
            return False
        if spec != "demo":
            self.settings.set_last_folder("model", spec)
            self._launch_clean = False
        self.tabs.setCurrentIndex(MODEL_TAB)
        self.model_tab.open_model(spec)
        return True

    def open_demo(self) -> bool:
        """The demo model with the demo dataset: one click to a working setup."""
        if not self.project.confirm_subject_change(
            "model", "the demo", self.open_demo, model="demo", data=("demo", "auto")
        ):
            return False
        p = self.project.project
        # Opened while the app starts (``featherweight --demo``) into an empty project: the
        # demo is where the app starts, not an unsaved change (see _on_baseline_for_launch).
        self._launch_clean = not self._shown and not p.runs and p.model is None
        self.session.data.spec = "demo"
        self.session.data.scale = "auto"
        self.model_tab.data_picker.show_choice(self.session.data)
        self.tabs.setCurrentIndex(MODEL_TAB)
        self.model_tab.open_model("demo")
        return True

    def _on_baseline_for_launch(self, baseline: Any) -> None:
        if baseline is not None and self._launch_clean:
            self._launch_clean = False
            self.project.mark_unchanged()

    def choose_data(self, spec: str, scale: str) -> bool:
        """A dataset picked anywhere (Model tab, Compress tab, a drop): the project asks
        first when it would start another comparison. False when it is not used now (the
        pickers show the current dataset again)."""
        name = "the demo digits" if spec == "demo" else Path(spec).name
        if not self.project.confirm_subject_change(
            "dataset", name, lambda: self.choose_data(spec, scale), data=(spec, scale)
        ):
            self.model_tab.data_picker.show_choice(self.session.data)
            self.compress_tab.refresh_data()
            return False
        self._launch_clean = False
        self.model_tab.set_data(spec, scale)
        return True

    def _route_model_tab_picker(self) -> None:
        """The Model tab's picker sets the data through ``choose_data`` (which may ask)."""
        picker = self.model_tab.data_picker
        try:
            picker.changed.disconnect(self.model_tab.set_data)
        except (RuntimeError, TypeError):
            return  # wired differently: the tab handles its picker itself
        picker.changed.connect(self.choose_data)

    def _on_model_changed(self, info: ModelInfo | None) -> None:
        if info is None:
            return
        if info.spec != "demo":
            self.settings.add_recent_model(info.spec)
        self.statusBar().showMessage(f"Opened {info.display_name}", 5000)
        self.compress_tab.refresh_data()

    def _restore_analysis(self, baseline: Any) -> None:
        """The model and dataset are settled (this baseline is theirs; the project's subject
        was synced by ``_refresh_results``): show the analysis the project keeps for them,
        if any, without recomputing (e.g. back to a model analysed earlier this session)."""
        if baseline is None or self.session.analysis is not None:
            return
        doc = stored_analysis(self.project.project)
        if doc is not None:
            self.session.analysis = doc
            self.model_tab.show_analysis(doc)

    def restore_search(self, force: bool = False) -> None:
        """Show the project's newest search of the current model and dataset in the Compress
        tab (read from its search.json, nothing recomputed), or none: a search of another
        model or dataset is never shown with this one. Only when the subject changed since
        the search shown (or ``force``); never while a search runs."""
        from engine.project import document as ep

        tab = self.compress_tab
        if tab.searching:
            return
        p = self.project.project  # its subject is in step (``_refresh_results`` ran first)
        key = ep.search_ids(p) if p.model is not None and p.dataset is not None else None
        if not force and key == self._shown_search and tab.search_view.has_search:
            return
        found = stored_search(p) if key is not None else None
        if found is not None:
            tab.show_search(*found)
        else:
            tab.show_search(None)
        self._shown_search = key if found else None

    def _on_search_started(self, plan: Any) -> None:
        from engine.project import document as ep

        self._launch_clean = False
        self._shown_search = ep.search_ids(self.project.project)
        self.update_title()
        self.statusBar().showMessage(
            "Searching for the smallest model… (you can keep using the app)", 5000
        )

    def _on_search_finished(self, plan: Any, doc: dict[str, Any] | None) -> None:
        from engine.project import document as ep

        self.update_title()
        p = self.project.project
        if p.model is None or p.dataset is None or ep.search_ids(p) != self._shown_search:
            self.restore_search(force=True)  # the model or data changed while it ran
        if doc is None:
            self.statusBar().showMessage("The search stopped before its first trial", 10000)
            return
        n = len(doc.get("trials") or [])
        self.statusBar().showMessage(
            f"The search ended after {n} trial(s): select a point to open it as a run", 10000
        )

    def _on_analysis(self, doc: dict[str, Any] | None) -> None:
        """A sensitivity analysis finished (or was dropped): the project keeps it."""
        if doc is not None:
            self.project.record_analysis(doc)
        self._content_changed()

    def open_recipe_in_wizard(self, recipe: dict[str, Any]) -> bool:
        """Fill the Compress wizard with ``recipe`` (a dict) and show its Settings page; a
        recipe the engine refuses is reported and nothing changes."""
        from engine.core.errors import RecipeError
        from engine.pipeline.recipe import validate_recipe
        from gui.compress_tab import SETTINGS

        try:
            validated = validate_recipe(recipe)
        except RecipeError as exc:
            self.errors.report("Cannot open the recipe", str(exc))
            return False
        self.compress_tab.set_recipe(validated)
        self.tabs.setCurrentIndex(COMPRESS_TAB)
        self.compress_tab.go_to(SETTINGS)
        return True

    def _run_shortcut(self) -> None:
        self.tabs.setCurrentIndex(COMPRESS_TAB)
        self.compress_tab.go_to(3)
        if self.compress_tab.search_mode:  # page 1 says "Find the smallest model for me"
            self.compress_tab.start_search()
        else:
            self.compress_tab.start_run()

    def _on_run_started(self, run: RunRecord) -> None:
        self._launch_clean = False
        if not run.subject:  # a run the project does not own (no hooks): the current subject
            self.project.sync_content()
            run.subject, run.subject_label = self.session.subject, self.session.subject_label
        self.update_title()
        self.statusBar().showMessage(f"Running {run.name}… (you can keep using the app)", 5000)

    def _on_run_finished(self, run: RunRecord) -> None:
        self.update_title()
        self.results_tab.refresh()
        if run.status == "finished":
            self.results_tab.select_run(run)
            self.statusBar().showMessage(f"{run.name} finished — see the Results tab", 10000)
        elif run.status == "cancelled":
            self.statusBar().showMessage(
                f"{run.name}: nothing was kept (no run number, no files)", 10000
            )
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
        elif suffix in MODEL_SUFFIXES or path.name == SAVED_MODEL_FILE or is_saved_model_dir(path):
            self.open_model(str(path))
        elif suffix == ".npz" or path.is_dir():
            self.tabs.setCurrentIndex(MODEL_TAB)
            self.choose_data(str(path), self.session.data.scale)
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
        if self.compress_tab.searching:
            title = "A search is in progress"
            text = (
                "A search is still running. Stop it and quit? Every finished trial is kept; "
                "Continue the search resumes it."
            )
        else:
            title, text = (
                "A run is in progress",
                "A compression is still running. Cancel it and quit?",
            )
        answer = QMessageBox.question(
            self,
            title,
            text,
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
