"""Project files in the window: New / Open / Save / Save As, the lock, autosave, recovery.

The engine's ``Project`` (engine/project/document.py) is the one record of what a project holds; the
tabs keep working on ``gui.state.Session`` / ``RunRecord`` (their view of it).
``ProjectController`` keeps the two in step. It owns the run lifecycle of the Compress tab
through the tab's ``RunHooks`` (gui/state.py): ``before_start`` decides the run's id, its
folder (``NAME_files/runs/<id>``) and the split (the project's dataset reference: its seed
and validation fraction, as ``featherweight run`` uses them), or refuses a run in a read-only
project; it creates an engine ``Run`` when the run starts, records each metric event into it
and records the result when the run ends. The model/dataset references follow the Model tab.
Reopening builds a ``Session`` back from the ``Project`` (``session_from_project``).
It is also the tab's ``SearchHooks``: a search gets a project entry and its study folder
(``NAME_files/searches/<id>``) when it starts (``before_search``); ``stored_search`` reads the
newest search of the current model and dataset back for the window.

The controller knows the window only through ``ProjectHost`` (below): it never imports
gui.main_window and never touches another class's widgets.

A comparison is about one *subject* (model + dataset + split): every run records the
subject it ran on (``RunRecord.subject``, from its config) and the session names the current
one (``Session.subject``, kept up to date by ``sync_content``). Changing the model or dataset
while the current subject has runs asks first (``confirm_subject_change``): a new project, a
new comparison in this project, or cancel. Runs get numbers (#1, #2 …) only when they finish
or fail; a cancelled run is dropped from the project with its folder.

Questions that would block a test are attributes: ``ask_unsaved`` ("save" | "discard" |
"cancel"), ``ask_save_path``, ``ask_open_path``, ``ask_restore(recovery_path) -> bool``,
``ask_locate(problem) -> str | None`` (a new path, or None to continue without it),
``ask_new_comparison(what, name) -> str`` ("new_project" | "new_comparison" | "cancel").
"""

from __future__ import annotations

import os
import re
import threading
import time
from calendar import timegm
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine.project import document as ep
from engine.project.document import Project, ProjectError, Run
from engine.project.lock import ProjectLock, ProjectLockedError
from gui.compress_tab import SearchPlan
from gui.errors import ErrorReporter
from gui.settings import AppSettings
from gui.state import DataChoice, ModelInfo, RunPlan, RunRecord, Session

STATUS_TO_GUI = {
    "done": "finished",
    "failed": "failed",
    "cancelled": "cancelled",
    "pending": "pending",
    "running": "running",
}
# ui keys that record the view only (tab, selection, wizard): not "unsaved changes".
VIEW_KEYS = (
    "tab",
    "selected_run",
    "wizard",
    "wizard_page",
    "compress_run",
    "wizard_search",
    "run_view",
)
DEFAULT_AUTOSAVE_S = 180.0
LOCK_PROGRAM = "Featherweight (desktop app)"
NUMBERED = ("finished", "failed")  # statuses that keep a run number
_NUMBER = re.compile(r"^#(\d+) ")


class ProjectHost(Protocol):
    """What the controller needs from the window it serves (``MainWindow`` is one)."""

    session: Session
    settings: AppSettings
    errors: ErrorReporter

    def set_session(self, session: Session) -> None:
        """Show ``session`` in every tab (as stored; the engine is not asked)."""

    def show_status(self, message: str, timeout_ms: int = 0) -> None:
        """A status-bar message."""

    def view_state(self) -> dict[str, Any]:
        """The view to keep in ``project.ui``: "tab", "selected_run", "wizard",
        "wizard_page", "compress_run"."""

    def restore_view_state(self, ui: dict[str, Any]) -> None:
        """Show the view ``view_state`` recorded."""

    def show_references(self) -> None:
        """Show the session's model and dataset again (after one was located)."""

    def reinspect_model(self, spec: str, allow_unsafe: bool) -> None:
        """Ask the engine for the model's report (and dataset check, baseline)."""

    def reset_views(self) -> None:
        """Put every tab back as at a fresh launch (before another project is shown)."""


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return float(timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def run_number(rec: RunRecord) -> int | None:
    """The number in a run's name ("#3 prune80" -> 3), None when it has none."""
    m = _NUMBER.match(rec.name)
    return int(m.group(1)) if m else None


def next_run_number(runs: list[RunRecord], exclude: RunRecord | None = None) -> int:
    """The number the next finished or failed run gets: one more than the highest number
    of the runs that keep theirs (cancelled and pending runs have none)."""
    numbers = [
        n
        for r in runs
        if r is not exclude and r.status in NUMBERED and (n := run_number(r)) is not None
    ]
    return max(numbers, default=0) + 1


def run_record_from_run(project: Project, run: Run, index: int) -> RunRecord:
    """The tabs' view of an engine run (series rebuilt from the stored metric events).

    A run without a stored name is named ``#<index + 1> <recipe name>`` (``index``: its
    place among the runs that keep a number) when it finished or failed, else by its
    recipe name and status."""
    names = project.ui.get("run_names") or {}
    logs = project.ui.get("run_logs") or {}
    cfg = run.config or {}
    model = (cfg.get("model") or {}).get("path", "")
    data = cfg.get("dataset") or {}
    files = project.files_dir
    status = STATUS_TO_GUI.get(run.status, run.status)
    recipe_name = str(run.recipe.get("name", "recipe"))
    default_name = (
        f"#{index + 1} {recipe_name}" if status in NUMBERED else f"{recipe_name} ({status})"
    )
    subject, label = ep.run_subject(project, run)
    rec = RunRecord(
        id=run.id,
        name=str(names.get(run.id) or default_name),
        recipe=dict(run.recipe),
        model=str(model),
        data=str(data.get("path", "")),
        scale=str(data.get("scale", "auto")),
        out_dir=str(files / "runs" / run.id) if files is not None else "",
        status=status,
        metrics=run.metrics,
        log=[str(x) for x in logs.get(run.id, [])],
        error=run.error or "",
        started=_epoch(run.started) or 0.0,
        ended=_epoch(run.finished),
        subject=subject,
        subject_label=label,
    )
    for ev in run.series:
        values = ev.get("values")
        if isinstance(values, dict):
            rec.add_metric(float(ev.get("epoch", 0.0)), values)
    return rec


def session_from_project(project: Project) -> Session:
    """A Session showing ``project`` as stored (the engine is not asked anything)."""
    ui = project.ui
    model = None
    if project.model is not None:
        report = ui.get("model_report")
        # Trust is never taken from a file: a model the user trusted when the project was
        # saved is opened again through the engine, which asks again.
        trusted_before = project.model.allow_unsafe
        model = ModelInfo(
            project.model.path,
            report if isinstance(report, dict) and not trusted_before else {},
            False,
        )
    data = DataChoice()
    if project.dataset is not None:
        ds = project.dataset
        desc = ui.get("data_description")
        data = DataChoice(
            ds.path,
            ds.scale,
            desc if isinstance(desc, dict) else None,
            split_seed=ds.seed,
            val_fraction=ds.val_fraction,
        )
    baseline = ui.get("baseline")
    runs = []
    numbered = 0
    for run in project.runs:
        runs.append(run_record_from_run(project, run, numbered))
        if STATUS_TO_GUI.get(run.status) in NUMBERED:
            numbered += 1
    subject, label = ep.project_subject(project)
    analysis = stored_analysis(project)
    session = Session(
        model=model,
        data=data,
        baseline=baseline if isinstance(baseline, dict) else None,
        runs=runs,
        project_path=str(project.path) if project.path else None,
        project=project,
        subject=subject,
        subject_label=label,
        accuracy_budget=project.accuracy_budget,
        analysis=analysis,
    )
    distinguish_subjects(session)
    return session


def stored_analysis(project: Project) -> dict[str, Any] | None:
    """The project's latest sensitivity analysis of its current subject (the document,
    read from the project's files; None when there is none or it cannot be read)."""
    if project.model is None:
        return None
    try:
        found = ep.latest_analysis(project)
    except (OSError, ValueError, ProjectError):
        return None
    return found if isinstance(found, dict) else None


def stored_search(project: Project) -> tuple[dict[str, Any], str] | None:
    """The newest search of the project's current model and dataset (same model, same data
    split the same way: ``document.latest_search``) as ``(search.json document, its study
    folder)``, read from the project's files (nothing is recomputed); None when there is none
    or it wrote nothing readable."""
    if project.model is None or project.dataset is None:
        return None
    try:
        entry = ep.latest_search(project)
        if entry is None:
            return None
        doc = ep.load_search(project, entry)
        folder = ep.artifact_path(project, entry["folder"])
    except (OSError, ValueError, ProjectError):
        return None
    if not isinstance(doc, dict):
        return None
    return doc, str(folder)


def distinguish_subjects(session: Session) -> None:
    """Make the labels of different subjects differ: two subjects read the same when a
    file changed under the same name; the second and later get " (2)", " (3)" …"""
    pairs = [(r.subject, r.subject_label) for r in session.runs]
    pairs.append((session.subject, session.subject_label))
    base = {k: re.sub(r" \(\d+\)$", "", lab) for k, lab in pairs}
    seen: dict[str, list[str]] = {}
    for key, _lab in pairs:
        keys = seen.setdefault(base[key], [])
        if key not in keys:
            keys.append(key)
    final = {}
    for label, keys in seen.items():
        for i, key in enumerate(keys):
            final[key] = label if i == 0 else f"{label} ({i + 1})"
    for r in session.runs:
        r.subject_label = final[r.subject]
    session.subject_label = final[session.subject]


def restore_question(recovery: Path) -> str:
    """The text offering a recovery file back (titled ``.NAME.fwproj.recovery`` or untitled)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(recovery.stat().st_mtime))
    if recovery.name.startswith(".") and recovery.name.endswith(ep.RECOVERY_SUFFIX):
        what = recovery.name[1 : -len(ep.RECOVERY_SUFFIX)]
    else:
        what = "an untitled project"
    return (
        f"Featherweight did not close normally. Unsaved changes to {what} were autosaved "
        f"at {when}. Restore them?"
    )


class _Signals(QObject):
    written = Signal(str, str)  # target path, error ('' when fine)


class _WriteJob(QRunnable):
    """Writes one recovery document on a pool thread."""

    def __init__(self, target: Path, doc: dict[str, Any], signals: _Signals, ctl: Any) -> None:
        super().__init__()
        self.target, self.doc, self.signals, self.ctl = target, doc, signals, ctl

    def run(self) -> None:
        self.ctl.last_write_thread = threading.current_thread().name
        error = ""
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            ep.write_json_atomic(self.target, self.doc)
        except Exception as exc:  # reported on the GUI thread
            error = f"{type(exc).__name__}: {exc}"
        self.signals.written.emit(str(self.target), error)


class ProjectController(QObject):
    """Owns the window's engine ``Project``, its lock, autosave, recovery and runs.

    ``host`` is the window (``ProjectHost``); ``parent`` the widget dialogs are shown over.
    It is the Compress tab's ``RunHooks`` (``compress_tab.set_run_hooks(controller)``).
    """

    changed = Signal()  # title / dirty state / read-only state may have changed
    autosaved = Signal(str, str)  # recovery path, error ('' when fine)

    def __init__(
        self,
        host: ProjectHost,
        parent: QWidget | None = None,
        data_dir: Path | None = None,
        autosave_s: float | None = None,
    ) -> None:
        super().__init__(parent)
        self.host = host
        self.parent_widget = parent
        self.data_dir = data_dir
        self.project: Project = ep.new_project(data_dir=data_dir)
        self.lock: ProjectLock | None = None
        self.read_only = False
        self._target: Path | None = None  # file name for the first save (from argv)
        self._clean_fp: str | None = None
        self._runs: dict[int, tuple[RunRecord, Run]] = {}  # id(RunRecord) -> both
        self._running: RunRecord | None = None  # the run between on_started and on_done
        self._searching: str | None = None  # the search between before_search and its end
        self._model_key: tuple[str, bool] | None = None
        self._data_key: tuple[str, str] | None = None
        self.last_write_thread: str | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # writes in order
        self._signals = _Signals()
        self._signals.written.connect(self._on_written)
        seconds = autosave_s if autosave_s is not None else host.settings.autosave_seconds()
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(seconds * 1000)))
        self.timer.timeout.connect(self.autosave)
        # Questions (tests replace them).
        self.ask_unsaved: Callable[[], str | None] = self._ask_unsaved
        self._then: Callable[[], Any] | None = None
        self._unsaved_resolved = False
        self.unsaved_box: QMessageBox | None = None
        self.ask_save_path: Callable[[], str] = self._ask_save_path
        self.ask_open_path: Callable[[], str] = self._ask_open_path
        self.ask_restore: Callable[[Path], bool] = self._ask_restore
        self.ask_locate: Callable[[ep.ReferenceProblem], str | None] = self._ask_locate
        self.ask_new_comparison: Callable[[str, str], str] = self._ask_new_comparison
        self._mark_clean()
        host.session.project = self.project

    # -- state ----------------------------------------------------------------------------
    def _content_fp(self) -> str:
        import hashlib
        import json

        doc = self.project.to_dict()
        for key in ("saved_at", "versions", "created"):
            doc.pop(key, None)
        doc["ui"] = {k: v for k, v in doc["ui"].items() if k not in VIEW_KEYS}
        text = json.dumps(doc, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _mark_clean(self) -> None:
        self.sync_content()
        self._clean_fp = self._content_fp()

    def mark_unchanged(self) -> None:
        """Take what the project holds now as its unsaved-changes baseline (the state the
        app was launched into, e.g. ``featherweight --demo``, is not a change)."""
        self._mark_clean()
        self.changed.emit()

    def is_dirty(self) -> bool:
        """Unsaved changes (what the project holds, not which tab is open)."""
        self.sync_content()
        return self._clean_fp is None or self._content_fp() != self._clean_fp

    @property
    def title(self) -> str:
        return self.project.path.stem if self.project.path else self.project.name

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        """Stop autosaving, wait for a write in flight, release the lock."""
        self.close_questions()
        self.timer.stop()
        self.pool.waitForDone()
        self._release_lock()

    # -- session -> project ---------------------------------------------------------------
    def sync_content(self) -> None:
        """Copy what the tabs changed into the engine Project (references, stored reports)."""
        s, p = self.host.session, self.project
        if s.model is not None:
            key = (s.model.spec, s.model.allow_unsafe)
            if key != self._model_key:
                spec = s.model.spec
                want = spec if spec == "demo" else os.path.abspath(spec)
                try:
                    if p.model is None or p.model.path != want:
                        ep.set_model(p, spec, s.model.allow_unsafe)
                    elif p.model.allow_unsafe != s.model.allow_unsafe:
                        p.model.allow_unsafe = s.model.allow_unsafe
                except ProjectError:
                    pass  # a model that vanished: keep the old reference
                self._model_key = key
            p.ui["model_report"] = s.model.report
        key2 = (s.data.spec, s.data.scale)
        if s.model is not None and key2 != self._data_key and not s.data.spec:
            # No dataset chosen for this model (yet): the project has none either.
            if p.dataset is not None:
                p.dataset = None
                p.touch()
            self._data_key = key2
        elif s.model is not None and key2 != self._data_key:
            try:
                spec = s.data.spec
                want = spec if spec == "demo" else os.path.abspath(spec)
                if p.dataset is not None and p.dataset.path == want:
                    p.dataset.scale = s.data.scale
                else:
                    old = p.dataset
                    ep.set_dataset(
                        p,
                        s.data.spec,
                        old.seed if old else 0,
                        old.val_fraction if old else 0.1,
                        s.data.scale,
                    )
            except ProjectError:
                pass
            self._data_key = key2
        if p.dataset is not None:  # the split belongs to the dataset reference
            s.data.split_seed, s.data.val_fraction = p.dataset.seed, p.dataset.val_fraction
        if s.model is not None:
            p.ui["data_description"] = s.data.description
            p.ui["baseline"] = s.baseline
        s.subject, s.subject_label = ep.project_subject(p)
        s.accuracy_budget = p.accuracy_budget
        distinguish_subjects(s)
        p.ui["run_names"] = {r.id: rec.name for rec, r in self._runs.values()}
        p.ui["run_names"].update(
            {k: v for k, v in (p.ui.get("run_names") or {}).items() if k not in p.ui["run_names"]}
        )
        p.ui["run_logs"] = {r.id: list(rec.log) for rec, r in self._runs.values()} | {
            k: v
            for k, v in (p.ui.get("run_logs") or {}).items()
            if k not in {r.id for _rec, r in self._runs.values()}
        }

    def capture_view(self) -> None:
        """Record the view (tab, selected run, wizard) in ``project.ui``."""
        view = self.host.view_state()
        self.project.ui.update({k: view.get(k) for k in VIEW_KEYS})

    # -- runs (the Compress tab's RunHooks) -------------------------------------------------
    @property
    def run_in_progress(self) -> bool:
        """A run or a search started and not ended yet (both write into the project)."""
        return self._running is not None or self._searching is not None

    def next_run_dir(self) -> Path:
        """Output folder for the next run: ``NAME_files/runs/<id>`` (or the workspace)."""
        return self._files_dir() / "runs" / ep.new_run_id(self.project)

    def _files_dir(self) -> Path:
        files = self.project.files_dir
        if files is None:  # new_project always gives a workspace; a loaded one has a path
            raise ProjectError("the project has neither a file nor a workspace folder")
        return files

    def may_start(self, out_dir: str | None) -> bool:
        """False (after telling the user) in a read-only project: its folder belongs to
        another program. A caller that names its own ``out_dir`` may run."""
        if self.read_only and out_dir is None:
            self.host.errors.report(
                "This project is read-only",
                "Another program has it open; use File → Save project as… to work on a "
                "copy before running recipes.",
            )
            return False
        return True

    def before_start(self, recipe: dict[str, Any], out_dir: str | None) -> RunPlan:
        """The run's id, folder (``out_dir`` when the caller gave one) and split (the
        project's dataset reference)."""
        self.sync_content()
        p = self.project
        run_id = ep.new_run_id(p)
        out = out_dir if out_dir is not None else str(self._files_dir() / "runs" / run_id)
        data = self.host.session.data
        seed, fraction = (
            (p.dataset.seed, p.dataset.val_fraction)
            if p.dataset is not None
            else (data.split_seed, data.val_fraction)
        )
        return RunPlan(run_id, out, int(seed), float(fraction))

    def on_started(self, rec: RunRecord) -> None:
        """The job was submitted: the project gets a running ``Run`` (id ``rec.id``)."""
        p = self.project
        if any(r.id == rec.id for r in p.runs):
            rec.id = ep.new_run_id(p)
        ep.add_recipe(p, rec.recipe)
        run = Run(id=rec.id, recipe=dict(rec.recipe), status="pending")
        p.runs.append(run)
        # mark_run_started would empty the run's folder: the worker may already write there.
        run.status, run.started = "running", ep.utc_now()
        run.config = ep.run_config(p)
        run.versions = ep.current_versions()
        run.seeds = {"recipe": int(run.recipe.get("seed", 0))}
        if p.dataset is not None:
            run.seeds["split"] = int(p.dataset.seed)
        session = self.host.session
        rec.subject, rec.subject_label = ep.run_subject(p, run)
        if rec.subject == session.subject:
            rec.subject_label = session.subject_label
        # The number it keeps if it finishes or fails (a cancelled run gives it back).
        rec.name = f"#{next_run_number(session.runs, rec)} {rec.recipe.get('name', 'recipe')}"
        self._runs[id(rec)] = (rec, run)
        self._running = rec
        p.touch()
        self.changed.emit()

    def on_event(self, rec: RunRecord, event: dict[str, Any]) -> None:
        """A metric event of a run: kept in the engine run's series."""
        pair = self._runs.get(id(rec))
        if pair is not None:
            ep.record_event(pair[1], event)

    def on_done(self, rec: RunRecord) -> None:
        """The run ended (finished, failed or cancelled): record it and autosave."""
        if self._running is rec:
            self._running = None
        pair = self._runs.get(id(rec))
        if pair is None:
            return
        run = pair[1]
        p = self.project
        if rec.status == "cancelled":
            # Nothing of a cancelled run is kept: no number, no entry, no files.
            del self._runs[id(rec)]
            ep.remove_run(p, run.id)
            session = self.host.session
            if rec in session.runs:
                session.runs.remove(rec)
            rec.name = f"{rec.recipe.get('name', 'recipe')} (cancelled)"
            self.changed.emit()
            return
        if rec.status == "finished":
            metrics = rec.metrics or {}
            if not run.series and isinstance(metrics.get("series"), list):
                run.series = [e for e in metrics["series"] if isinstance(e, dict)]
            ep.record_run_result(p, run, metrics)
        else:
            ep.record_run_failure(
                p, run, rec.error or rec.status, cancelled=rec.status == "cancelled"
            )
        self.changed.emit()
        self.autosave()

    # -- searches (the Compress tab's SearchHooks) ------------------------------------------
    def before_search(self, config: dict[str, Any], out_dir: str | None) -> SearchPlan | None:
        """A new search gets an entry in the project (``document.add_search``: its settings
        and the current model, dataset and split) and its study folder under the project's
        files; ``out_dir`` (a study folder of this project) continues that study. None, after
        telling the user, in a read-only project or when the settings are refused."""
        if self.read_only:
            self.host.errors.report(
                "This project is read-only",
                "Another program has it open; use File → Save project as… to work on a "
                "copy before searching.",
            )
            return None
        self.sync_content()
        p = self.project
        try:
            entry = None
            if out_dir is not None:
                want = os.path.abspath(out_dir)
                for e in p.searches:
                    if os.path.abspath(ep.artifact_path(p, e["folder"])) == want:
                        entry = e
            if entry is None:
                entry = ep.add_search(
                    p,
                    config["budget_pts"],
                    str(config["objective"]),
                    time_s=config.get("time_s"),
                    trials=config.get("trials"),
                    seed=int(config.get("seed") or 0),
                )
            folder = ep.search_dir(p, entry)
        except (OSError, ProjectError) as exc:
            self.host.errors.report("Cannot start the search", str(exc))
            return None
        seed, fraction = (
            (p.dataset.seed, p.dataset.val_fraction)
            if p.dataset is not None
            else (self.host.session.data.split_seed, self.host.session.data.val_fraction)
        )
        self._searching = str(entry["id"])
        self.changed.emit()
        return SearchPlan(str(entry["id"]), str(folder), int(seed), float(fraction), config)

    def on_search_done(self, plan: SearchPlan, doc: dict[str, Any] | None) -> None:
        """The search ended: the project keeps it (its folder holds search.json and the
        study); a search that found nothing (stopped before its first trial) is dropped."""
        self._searching = None
        if (doc is None or not doc.get("trials")) and plan.search_id:
            ep.remove_search(self.project, plan.search_id)
        self.changed.emit()
        self.autosave()

    def record_analysis(self, doc: dict[str, Any]) -> None:
        """Keep a sensitivity analysis (``engine.project.document.add_analysis``: the document
        goes under the project's files) and autosave; it reopens without recomputing."""
        self.sync_content()  # the entry records the current model, dataset and split
        try:
            ep.add_analysis(self.project, doc)
        except (OSError, ProjectError) as exc:
            self.host.errors.report("Cannot keep the analysis in the project", str(exc))
            return
        self.changed.emit()
        self.autosave()

    def remember_recipe(self, recipe: Any) -> None:
        """Keep a recipe (saved by the user) in the project's recipes."""
        ep.add_recipe(self.project, recipe)
        self.changed.emit()

    def engine_run(self, rec: RunRecord) -> Run | None:
        pair = self._runs.get(id(rec))
        return pair[1] if pair else None

    # -- budget and subject -----------------------------------------------------------------
    def set_accuracy_budget(self, points: float) -> float:
        """Store the project-wide accuracy budget (points; an unsaved change when it
        differs). Returns the value stored (clamped to 0-100)."""
        value = ep.set_accuracy_budget(self.project, min(100.0, max(0.0, float(points))))
        self.host.session.accuracy_budget = value
        self.changed.emit()
        return value

    def runs_on_current_subject(self) -> list[RunRecord]:
        """The session's runs compared on the current model + dataset + split (any status
        but cancelled)."""
        self.sync_content()
        s = self.host.session
        return [r for r in s.runs if r.subject == s.subject and r.status != "cancelled"]

    def subject_would_change(
        self, model: str | None = None, data: tuple[str, str] | None = None
    ) -> bool:
        """Would opening ``model`` (a spec) and/or choosing ``data`` (spec, scale) change
        what runs are compared on? Paths are compared as absolute paths."""
        s = self.host.session

        def same(a: str, b: str) -> bool:
            if a == "demo" or b == "demo":
                return a == b
            return os.path.abspath(a) == os.path.abspath(b)

        if model is not None and (s.model is None or not same(model, s.model.spec)):
            return s.model is not None
        if data is not None:
            spec, scale = data
            return not (same(spec, s.data.spec) and scale == s.data.scale)
        return False

    def confirm_subject_change(
        self,
        what: str,
        name: str,
        proceed: Callable[[], Any],
        model: str | None = None,
        data: tuple[str, str] | None = None,
    ) -> bool:
        """Before another model (``what`` "model") or dataset ("dataset") named ``name``
        replaces the current one. True: go ahead now (nothing to ask, or the user chose a
        new comparison in this project). False: do not — the user cancelled, or chose a new
        project, in which case ``proceed`` is called once the new project is shown (after
        the unsaved-changes question, if any)."""
        if not self.subject_would_change(model, data) or not self.runs_on_current_subject():
            return True
        answer = self.ask_new_comparison(what, name)
        if answer == "new_comparison":
            self.host.show_status(
                f"New comparison in {self.title}: runs of the previous {what} stay in the "
                "Results tab under their own model and dataset",
                10000,
            )
            return True
        if answer == "new_project":
            self.new(then=proceed)
        return False

    def _ask_new_comparison(self, what: str, name: str) -> str:
        box = QMessageBox(self.parent_widget)
        box.setWindowTitle(f"Open another {what}?")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(
            f"This project has runs of another {what}. Runs are only compared with runs of "
            f"the same model, dataset and split. How do you want to open {name}?"
        )
        box.setInformativeText(
            "A new project starts empty. A new comparison keeps this project's runs: the "
            "Results tab shows each model and dataset on its own, against its own baseline."
        )
        new_project = box.addButton("New project", QMessageBox.ButtonRole.AcceptRole)
        new_comparison = box.addButton(
            "New comparison in this project", QMessageBox.ButtonRole.ActionRole
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(new_comparison)
        box.exec()
        clicked = box.clickedButton()
        if clicked is new_project:
            return "new_project"
        if clicked is new_comparison:
            return "new_comparison"
        return "cancel"

    # -- opening --------------------------------------------------------------------------
    def _release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _install(self, project: Project, dirty: bool = False) -> None:
        """Show ``project`` in the window."""
        self.project = project
        session = session_from_project(project)
        self.host.set_session(session)
        self._runs = {}
        by_id = {r.id: r for r in project.runs}
        for rec in session.runs:
            if rec.id in by_id:
                self._runs[id(rec)] = (rec, by_id[rec.id])
        self._model_key = (
            (session.model.spec, session.model.allow_unsafe) if session.model else None
        )
        self._data_key = (session.data.spec, session.data.scale) if session.model else None
        self.restore_view()
        self.sync_content()
        if dirty:
            self._clean_fp = None
        else:
            self._mark_clean()
        self.changed.emit()
        model = session.model
        if model is not None and not model.report:
            # Saved without the app (``featherweight run``): no stored model report or
            # baseline, so ask the engine (runs and charts are shown meanwhile).
            if model.spec == "demo" or os.path.exists(model.spec):
                self.host.reinspect_model(model.spec, model.allow_unsafe)

    def restore_view(self) -> None:
        """Show the view recorded in ``project.ui`` (tab, selected run, wizard)."""
        self.host.restore_view_state(dict(self.project.ui))

    def can_switch(self, then: Callable[[], Any] | None = None) -> bool:
        """Ask about unsaved changes before New/Open; False means stay (for now: when the
        question is shown without blocking, ``then`` is called once it is answered)."""
        if self.run_in_progress:
            self.host.errors.report(
                "A run is in progress",
                "Wait for the compression to finish (or cancel it) before switching projects.",
            )
            return False
        return self.resolve_unsaved(then)

    def resolve_unsaved(self, then: Callable[[], Any] | None = None) -> bool:
        """True when there are no unsaved changes left to worry about (none, saved, or
        discarded). ``ask_unsaved`` returns "save" | "discard" | "cancel", or None when it
        opened a non-blocking question: then this returns False and, if the user chooses
        Save (and it succeeds) or Discard, ``then`` is called."""
        if self._unsaved_resolved or not self.is_dirty():
            return True
        answer = self.ask_unsaved()
        if answer is None:
            self._then = then
            return False
        return self._apply_answer(answer)

    def answer_unsaved(self, answer: str) -> None:
        """The non-blocking question was answered."""
        then, self._then = self._then, None
        if self._apply_answer(answer) and then is not None:
            self._unsaved_resolved = True
            try:
                then()
            finally:
                self._unsaved_resolved = False

    def _apply_answer(self, answer: str) -> bool:
        if answer == "save":
            return self.save()
        if answer == "discard":
            self.pool.waitForDone()
            ep.discard_recovery(self.project, delete_workspace=self.project.path is None)
            return True
        return False

    def new(self, then: Callable[[], Any] | None = None) -> bool:
        """A fresh untitled project; every tab goes back to its launch state. ``then`` runs
        once it is shown (also when the unsaved-changes question is answered later)."""
        if not self.can_switch(lambda: self.new(then)):
            return False
        self.pool.waitForDone()
        self._release_lock()
        self.read_only = False
        self.host.reset_views()
        self._install(ep.new_project(data_dir=self.data_dir))
        self.host.show_status("New project", 5000)
        if then is not None:
            then()
        return True

    def set_target_path(self, path: str | Path) -> None:
        """A project file that does not exist yet: the first Save writes it (no dialog)."""
        self._target = Path(path).absolute()
        self.host.session.project_path = str(self._target)
        self.host.show_status(
            f"{self._target.name} does not exist yet: a new project, saved there by Ctrl+S", 10000
        )

    def open_dialog(self) -> None:
        path = self.ask_open_path()
        if path:
            self.open(path)

    def open(self, path: str | Path, ask_first: bool = True) -> bool:
        """Open a project file: lock, recovery offer, reference check. A bad file is
        reported and nothing changes (the file is never written)."""
        p = Path(path).absolute()
        if ask_first and not self.can_switch(lambda: self.open(p)):
            return False
        try:
            project = ep.load_project(p)
        except ProjectError as exc:
            self.host.errors.report("Cannot open the project", str(exc))
            if not p.exists():
                self.host.settings.remove_recent_project(str(p))
            return False
        self.pool.waitForDone()
        self._release_lock()
        lock = ProjectLock(p, program=LOCK_PROGRAM)
        read_only = False
        try:
            lock.acquire()
            self.lock = lock
        except ProjectLockedError as exc:
            read_only = True
            self.host.errors.report(
                "Project opened read-only",
                f"{exc}. It is shown read-only: use Save As to keep changes in another file.",
            )
        dirty = False
        if not read_only:
            rec = ep.find_recovery(p)
            if rec is not None and self.ask_restore(rec):
                try:
                    project = ep.load_recovery(rec)
                    dirty = True
                except ProjectError as exc:
                    self.host.errors.report("Cannot restore the unsaved changes", str(exc))
            elif rec is not None:
                ep.discard_recovery(rec)
            interrupted = ep.mark_interrupted_runs(project)
            if interrupted:
                dirty = True
        self.read_only = read_only
        self.host.reset_views()
        self._install(project, dirty=dirty)
        self.host.settings.add_recent_project(str(p))
        self.host.show_status(
            f"Opened {p.name}: {len(project.runs)} run(s)" + (" — read-only" if read_only else ""),
            10000,
        )
        for warning in project.load_warnings:
            self.host.show_status(warning, 10000)
        self.check_references()
        return True

    def check_references(self) -> list[ep.ReferenceProblem]:
        """Tell the user about a moved/changed model or dataset and let them locate it."""
        problems = ep.check_references(self.project)
        for pr in problems:
            if pr.what not in ("model", "dataset") or pr.problem == "unverified":
                if pr.what == "artifacts":
                    self.host.show_status(pr.message, 10000)
                continue
            new_path = self.ask_locate(pr)
            if not new_path:
                self.host.show_status(f"Continuing without the {pr.what}: {pr.message}", 10000)
                continue
            try:
                if pr.what == "model":
                    ep.relocate_model(self.project, new_path)
                    s = self.host.session
                    if s.model is not None:
                        s.model.spec = self.project.model.path  # type: ignore[union-attr]
                        self._model_key = (s.model.spec, s.model.allow_unsafe)
                else:
                    ep.relocate_dataset(self.project, new_path)
                    s = self.host.session
                    s.data.spec = self.project.dataset.path  # type: ignore[union-attr]
                    self._data_key = (s.data.spec, s.data.scale)
                self.host.show_references()
            except ProjectError as exc:
                self.host.errors.report(f"Cannot use that {pr.what}", str(exc))
        self.changed.emit()
        return problems

    def restore_untitled_on_start(self) -> bool:
        """At start-up: offer the newest untitled recovery left by a crashed session."""
        found = ep.find_untitled_recoveries(self.data_dir)
        if not found:
            return False
        rec = found[0]
        if not self.ask_restore(rec):
            ep.discard_recovery(rec)  # declined: not offered again (its runs' files go too)
            return False
        try:
            project = ep.load_recovery(rec)
        except ProjectError as exc:
            self.host.errors.report("Cannot restore the unsaved project", str(exc))
            return False
        self._install(project, dirty=True)
        return True

    # -- saving ---------------------------------------------------------------------------
    def save(self) -> bool:
        if self.project.path is None and self._target is not None:
            return self.save_as(self._target)
        if self.project.path is None or self.read_only:
            return self.save_as()
        return self._save_to(None)

    def save_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self.ask_save_path()
            if not path:
                return False
        target = Path(path).absolute()
        if target.suffix != ep.EXTENSION:
            target = target.with_name(target.name + ep.EXTENSION)
        return self._save_to(target)

    def _save_to(self, target: Path | None) -> bool:
        p = self.project
        moving = target is not None and target != p.path
        if moving and self.run_in_progress:
            self.host.errors.report(
                "Cannot Save As while a run is going",
                "The running compression writes into the project's folder; save after it ends.",
            )
            return False
        new_lock = None
        if moving:
            new_lock = ProjectLock(target, program=LOCK_PROGRAM)  # type: ignore[arg-type]
            try:
                new_lock.acquire()
            except ProjectLockedError as exc:
                self.host.errors.report("Cannot save the project", str(exc))
                return False
        self.capture_view()
        self.sync_content()
        self.pool.waitForDone()  # no autosave racing the save
        try:
            saved = ep.save_project(p, target)
        except ProjectError as exc:
            if new_lock is not None:
                new_lock.release()
            self.host.errors.report("Cannot save the project", str(exc))
            return False
        self._target = None
        if new_lock is not None:
            self._release_lock()
            self.lock = new_lock
            self.read_only = False
        files = p.files_dir
        for rec, run in self._runs.values():
            rec.out_dir = str(files / "runs" / run.id) if files is not None else ""
        self.host.session.project_path = str(saved)
        self._mark_clean()
        self.host.settings.add_recent_project(str(saved))
        self.host.show_status(f"Saved {saved.name}", 5000)
        self.changed.emit()
        return True

    # -- autosave -------------------------------------------------------------------------
    def autosave(self) -> bool:
        """Write the recovery file on a pool thread if there are unsaved changes.
        Returns True when a write was queued."""
        if self.read_only or not self.is_dirty():
            return False
        if self.project.path is None and self.project.workspace is None:
            return False
        self.capture_view()
        doc = ep.recovery_document(self.project)  # taken on the GUI thread
        target = ep.recovery_path_of(self.project)
        self.pool.start(_WriteJob(target, doc, self._signals, self))
        return True

    def _on_written(self, target: str, error: str) -> None:
        if error:
            self.host.show_status(f"Autosave failed: {error}", 10000)
        self.autosaved.emit(target, error)

    # -- questions ------------------------------------------------------------------------
    def _ask_unsaved(self) -> None:
        """Save / Discard / Cancel, window-modal but not blocking (answer_unsaved)."""
        if self.unsaved_box is not None:
            self.unsaved_box.raise_()
            return None
        box = QMessageBox(self.parent_widget)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"Save the changes to {self.title}?")
        box.setInformativeText("Your changes are lost if you don't save them.")
        box.setStandardButtons(
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def done(_code: int) -> None:
            button = box.standardButton(box.clickedButton()) if box.clickedButton() else None
            self.unsaved_box = None
            answer = {
                QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard",
            }.get(button, "cancel")  # type: ignore[arg-type]
            QTimer.singleShot(0, self, lambda: self.answer_unsaved(answer))

        box.finished.connect(done)
        self.unsaved_box = box
        box.open()
        return None

    def close_questions(self) -> None:
        if self.unsaved_box is not None:
            box, self.unsaved_box = self.unsaved_box, None
            self._then = None
            box.close()

    def _ask_save_path(self) -> str:
        start = str(Path(self.host.settings.last_folder("project")) / f"{self.title}.fwproj")
        path, _ = QFileDialog.getSaveFileName(
            self.parent_widget, "Save project as", start, "Featherweight projects (*.fwproj)"
        )
        if path:
            self.host.settings.set_last_folder("project", path)
        return path

    def _ask_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(
            self.parent_widget,
            "Open project",
            self.host.settings.last_folder("project"),
            "Featherweight projects (*.fwproj);;All files (*)",
        )
        if path:
            self.host.settings.set_last_folder("project", path)
        return path

    def _ask_restore(self, recovery: Path) -> bool:
        answer = QMessageBox.question(
            self.parent_widget,
            "Restore unsaved changes?",
            restore_question(recovery),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _ask_locate(self, problem: ep.ReferenceProblem) -> str | None:
        box = QMessageBox(self.parent_widget)
        box.setWindowTitle(f"The {problem.what} needs attention")
        box.setText(problem.message[0].upper() + problem.message[1:] + ".")
        box.setInformativeText(
            f"Locate the {problem.what}, or continue without it (runs and charts still show)."
        )
        locate = box.addButton("Locate…", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Continue without it", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        if box.clickedButton() is not locate:
            return None
        if problem.what == "model":
            filt = "Keras models (*.keras *.h5 *.hdf5);;All files (*)"
        else:
            filt = "Datasets (*.npz);;All files (*)"
        path, _ = QFileDialog.getOpenFileName(
            self.parent_widget, f"Locate the {problem.what}", str(Path(problem.path).parent), filt
        )
        return path or None
