"""Project files in the window (issue 4): save and reopen, dirty title, unsaved-changes
question, bad/newer/locked files, moved model, recovery after a crash, autosave off the GUI
thread. Fake worker (recorded engine events); the lock holder is a real second process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import engine.project.document as ep
from engine.project.lock import lock_path
from gui.compress_tab import RUN
from gui.main_window import RESULTS_TAB
from tests.gui.conftest import spy_submit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Untitled workspaces go to a temporary folder, never the user's."""
    d = tmp_path / "userdata"
    monkeypatch.setenv(ep.DATA_DIR_ENV, str(d))
    return d


def wait_messages(w, qtbot, n=1):
    qtbot.waitUntil(lambda: len(w.errors.problems) >= n, timeout=5000)
    return w.errors.problems


def run_recipe(w, qtbot, name: str):
    w.compress_tab.recipe_name.setText(name)
    with qtbot.waitSignal(w.compress_tab.runFinished, timeout=10_000) as blocker:
        assert w.compress_tab.start_run() is not None, w.compress_tab.message.text()
    return blocker.args[0]


def open_demo(w, qtbot):
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()


def snapshot(w):
    """What the user sees of the runs: table rows, chart points, artifact bytes."""
    rows = [
        (r.name, r.status, r.metrics, r.recipe) if r is not None else None
        for r in w.results_tab.rows
    ]
    series = {r.name: r.series for r in w.session.runs}
    artifacts = {}
    for r in w.session.runs:
        for f in sorted(Path(r.out_dir).iterdir()):
            artifacts[(r.name, f.name)] = f.read_bytes()
    return rows, series, artifacts


def test_two_runs_saved_and_reopened_in_a_fresh_window_look_the_same(make_window, qtbot, tmp_path):
    w = make_window()
    open_demo(w, qtbot)
    first = run_recipe(w, qtbot, "first")
    second = run_recipe(w, qtbot, "second")
    assert first.status == second.status == "finished"
    # New runs write into the project's folder (untitled: the per-user workspace).
    assert Path(first.out_dir).parent.parent == w.project.project.workspace
    w.results_tab.select_run(first)
    w.tabs.setCurrentIndex(RESULTS_TAB)
    path = tmp_path / "proj" / "digits.fwproj"
    path.parent.mkdir()
    assert w.project.save_as(path)
    assert Path(first.out_dir) == path.parent / "digits_files" / "runs" / first.id
    before = snapshot(w)
    qtbot.waitUntil(lambda: not w.compress_tab.charts.drawing)  # final refit, tick by tick
    points = w.compress_tab.charts.points_drawn
    assert points > 0
    w.close()
    assert not lock_path(path).exists()

    w2 = make_window()
    assert w2.project.open(path)
    assert snapshot(w2) == before
    assert len(w2.results_tab.rows) == 3  # baseline + two runs
    assert w2.tabs.currentIndex() == RESULTS_TAB
    assert w2.results_tab.selected_run().name == first.name
    assert w2.compress_tab.charts.points_drawn == points
    assert w2.compress_tab.charts.run.name == second.name
    assert w2.model_tab.table.rowCount() == 6
    assert w2.session.baseline == w.session.baseline
    saved = json.loads(path.read_text())
    assert [r["status"] for r in saved["runs"]] == ["done", "done"]
    assert saved["runs"][0]["series"] and saved["runs"][0]["versions"]["app"]
    assert not w2.isWindowModified()


def test_title_shows_name_and_unsaved_mark(make_window, qtbot, tmp_path):
    w = make_window()
    assert w.windowTitle() == "Untitled[*] — Featherweight" and not w.isWindowModified()
    open_demo(w, qtbot)
    assert w.isWindowModified()
    assert w.project.save_as(tmp_path / "mine.fwproj")
    assert w.windowTitle() == "mine[*] — Featherweight" and not w.isWindowModified()
    w.tabs.setCurrentIndex(2)  # looking around is not a change
    assert not w.isWindowModified()
    run_recipe(w, qtbot, "r")
    assert w.isWindowModified()
    assert w.settings.recent_projects()[0] == str(tmp_path / "mine.fwproj")


def test_closing_with_unsaved_changes_asks(make_window, qtbot, tmp_path):
    w = make_window()
    open_demo(w, qtbot)
    asked = []
    w.project.ask_unsaved = lambda: asked.append(1) or "cancel"
    assert not w.close() and w.isVisible() and asked
    target = tmp_path / "saved.fwproj"
    w.project.ask_unsaved = lambda: "save"
    w.project.ask_save_path = lambda: str(target)
    assert w.close()
    assert json.loads(target.read_text())["model"]["path"] == "demo"


def test_new_with_unsaved_changes_can_discard(make_window, qtbot):
    w = make_window()
    open_demo(w, qtbot)
    run_recipe(w, qtbot, "r")
    workspace = w.project.project.workspace
    assert workspace.is_dir()
    w.project.ask_unsaved = lambda: "discard"
    assert w.project.new()
    assert w.session.runs == [] and not any(w.results_tab.rows)
    assert not workspace.exists()  # never-saved runs' files go with the discard
    assert not w.isWindowModified()


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"format_version": 2, "name": "x", "runs": [', "truncated"),
        ('{"format_version": 9, "name": "x"}', "newer Featherweight (format 9"),
    ],
    ids=["truncated", "newer"],
)
def test_bad_or_newer_file_gives_a_clear_message_and_is_untouched(
    make_window, qtbot, tmp_path, content, expected
):
    path = tmp_path / "bad.fwproj"
    path.write_text(content)
    stat = path.stat()
    w = make_window()
    assert not w.project.open(path)
    problem = wait_messages(w, qtbot)[-1]
    assert expected in problem.message and "bad.fwproj" in problem.message
    assert path.read_text() == content and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.glob("*bad*")) == ["bad.fwproj"]  # no lock/recovery
    assert w.windowTitle().startswith("Untitled")


@pytest.fixture
def lock_holder(tmp_path):
    """A second real process holding a project's lock, killed at the end."""
    procs = []

    def hold(path: Path) -> subprocess.Popen:
        code = (
            "import sys, time; sys.path.insert(0, sys.argv[2])\n"
            "from engine.project.lock import ProjectLock\n"
            "ProjectLock(sys.argv[1], program='featherweight run').acquire()\n"
            "print('locked', flush=True); time.sleep(60)\n"
        )
        p = subprocess.Popen(
            [sys.executable, "-c", code, str(path), str(ROOT)], stdout=subprocess.PIPE, text=True
        )
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p

    yield hold
    for p in procs:
        p.kill()
        p.wait()


def test_locked_project_opens_read_only_naming_the_holder(
    make_window, qtbot, tmp_path, lock_holder
):
    path = tmp_path / "shared.fwproj"
    ep.save_project(ep.new_project("shared", data_dir=tmp_path / "ws"), path)
    holder = lock_holder(path)
    w = make_window()
    assert w.project.open(path)
    message = wait_messages(w, qtbot)[-1].message
    assert "featherweight run" in message and f"pid {holder.pid}" in message
    assert w.project.read_only and "(read-only)" in w.windowTitle()
    assert not w.act_save_project.isEnabled()
    assert w.compress_tab.start_run() is None  # runs would write into its folder
    assert "read-only" in wait_messages(w, qtbot, 2)[-1].title
    before = path.read_bytes()
    w.project.ask_save_path = lambda: ""  # Save in read-only mode asks for another file
    assert not w.project.save()
    assert path.read_bytes() == before


def test_moved_model_is_reported_and_can_be_located(make_window, qtbot, tmp_path):
    model = tmp_path / "models" / "net.keras"
    model.parent.mkdir()
    model.write_bytes(b"PK model bytes")
    project = ep.new_project("moved", data_dir=tmp_path / "ws")
    ep.set_model(project, model)
    ep.set_dataset(project, "demo")
    path = ep.save_project(project, tmp_path / "moved.fwproj")
    elsewhere = tmp_path / "elsewhere" / "net.keras"
    elsewhere.parent.mkdir()
    model.rename(elsewhere)

    asked = []
    w = make_window()
    w.project.ask_locate = lambda problem: asked.append(problem) or str(elsewhere)
    assert w.project.open(path)
    assert [(p.what, p.problem) for p in asked] == [("model", "missing")]
    assert "models/net.keras" in asked[0].message
    assert w.project.project.model.path == str(elsewhere)
    assert w.session.model.spec == str(elsewhere)
    assert w.isWindowModified()  # the new location is a change to save

    w.project.ask_unsaved = lambda: "discard"
    w2 = make_window()
    w.close()
    w2.project.ask_locate = lambda problem: None  # continue without it
    assert w2.project.open(path)
    assert "Continuing without the model" in w2.statusBar().currentMessage()


def test_recovery_is_offered_after_a_crash(make_window, qtbot, tmp_path):
    path = tmp_path / "work.fwproj"
    w = make_window()
    open_demo(w, qtbot)
    assert w.project.save_as(path)
    run_recipe(w, qtbot, "after-save")  # a finished run autosaves at once
    rec = ep.autosave_path(path)
    qtbot.waitUntil(rec.exists, timeout=5000)
    w.shutdown()  # the "crash": no save, no question; the recovery file stays
    assert rec.exists() and len(json.loads(path.read_text())["runs"]) == 0

    offered = []
    w2 = make_window()
    w2.project.ask_restore = lambda p: offered.append(p) or True
    assert w2.project.open(path)
    assert offered == [rec]
    from gui.project_controller import restore_question

    assert "Unsaved changes to work.fwproj were autosaved" in restore_question(rec)
    assert [r.name for r in w2.session.runs] == ["#1 after-save"]
    assert w2.session.runs[0].status == "finished"
    assert w2.isWindowModified()


def test_untitled_recovery_is_offered_at_start(make_window, qtbot, qsettings, tmp_path):
    from gui.app import create_window
    from tests.gui.conftest import fake_worker_command

    w = make_window(runs_dir=tmp_path / "untitled")
    open_demo(w, qtbot)
    with qtbot.waitSignal(w.project.autosaved, timeout=5000):
        assert w.project.autosave()
    w.shutdown()
    offered = []
    w2 = create_window(
        [],
        settings=qsettings,
        worker_command=fake_worker_command(),
        runs_dir=tmp_path / "untitled",
        ask_restore=lambda p: offered.append(p) or True,
    )
    qtbot.addWidget(w2)
    try:
        assert len(offered) == 1 and offered[0].name == "recovery.fwproj"
        from gui.project_controller import restore_question

        assert "an untitled project" in restore_question(offered[0])
        assert w2.session.model.spec == "demo" and w2.isWindowModified()
    finally:
        w2.shutdown()


def test_autosave_writes_off_the_gui_thread_without_blocking(make_window, qtbot, monkeypatch):
    real = ep.write_json_atomic
    started = threading.Event()

    def slow_write(target, doc, **kw):
        started.set()
        time.sleep(0.8)  # a slow disk
        real(target, doc, **kw)

    monkeypatch.setattr(ep, "write_json_atomic", slow_write)
    w = make_window()
    open_demo(w, qtbot)
    t0 = time.perf_counter()
    assert w.project.autosave()
    took = time.perf_counter() - t0
    assert took < 0.3, f"autosave blocked the window for {took:.2f} s"
    assert started.wait(2)
    with qtbot.waitSignal(w.project.autosaved, timeout=5000) as blocker:
        pass
    assert blocker.args[1] == ""
    assert w.project.last_write_thread != threading.main_thread().name
    assert Path(blocker.args[0]).exists()


def test_autosave_timer_interval_comes_from_settings(make_window, qsettings):
    qsettings.setValue("autosave/seconds", 42)
    w = make_window()
    assert w.project.timer.interval() == 42_000 and w.project.timer.isActive()


def test_project_argument_opens_it_and_recent_list_prunes_missing(qtbot, qsettings, tmp_path):
    from gui.app import create_window
    from tests.gui.conftest import fake_worker_command

    path = tmp_path / "arg.fwproj"
    ep.save_project(ep.new_project("arg", data_dir=tmp_path / "ws"), path)
    gone = str(tmp_path / "gone.fwproj")
    qsettings.setValue("recent/projects", [gone])
    w = create_window(
        [str(path)], settings=qsettings, worker_command=fake_worker_command(), runs_dir=tmp_path
    )
    qtbot.addWidget(w)
    try:
        assert w.project.project.path == path
        assert lock_path(path).exists()
        assert w.windowTitle() == "arg[*] — Featherweight"
        w._fill_recent_projects()
        assert w.settings.recent_projects() == [str(path)]
        assert "gone.fwproj" in w.statusBar().currentMessage()
    finally:
        w.shutdown()
    assert not lock_path(path).exists()


def test_wizard_page_and_recipe_come_back(make_window, qtbot, tmp_path):
    w = make_window()
    open_demo(w, qtbot)
    run_recipe(w, qtbot, "wizard-state")
    assert w.compress_tab.stack.currentIndex() == RUN
    w.compress_tab.recipe_name.setText("edited afterwards")
    assert w.compress_tab.save_recipe_file(tmp_path / "kept.json")
    path = tmp_path / "wiz.fwproj"
    assert w.project.save_as(path)
    w.close()
    w2 = make_window()
    assert w2.project.open(path)
    assert w2.compress_tab.recipe_name.text() == "edited afterwards"
    assert [r["name"] for r in w2.project.project.recipes] == ["wizard-state", "edited afterwards"]
    assert w2.compress_tab.stack.currentIndex() == RUN
    assert os.path.isdir(w2.session.runs[0].out_dir)


def test_a_project_saved_headless_gets_its_model_report_from_the_engine(
    make_window, qtbot, tmp_path
):
    """``featherweight run`` stores no model report: the window asks the engine for it."""
    project = ep.new_project("headless", data_dir=tmp_path / "ws")
    ep.set_model(project, "demo")
    ep.set_dataset(project, "demo")
    path = ep.save_project(project, tmp_path / "headless.fwproj")
    w = make_window()
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        assert w.project.open(path)
    assert w.model_tab.table.rowCount() == 6
    assert w.project.project.ui["baseline"]["accuracy"] == w.session.baseline["accuracy"]


def test_the_project_owns_runs_through_hooks_not_patches(make_window):
    w = make_window()
    tab = w.compress_tab
    assert "start_run" not in vars(tab) and "save_recipe_file" not in vars(tab)
    assert tab.run_hooks is w.project  # the tab's one run owner


def test_a_run_sends_the_dataset_split_of_the_project_not_the_recipe_seed(
    make_window, qtbot, tmp_path
):
    w = make_window()
    open_demo(w, qtbot)
    sent = spy_submit(w)
    w.project.sync_content()
    dataset = w.project.project.dataset
    dataset.seed, dataset.val_fraction = 7, 0.2  # as a project file may hold them
    w.compress_tab.seed.setValue(3)  # the recipe's seed: training only
    run = run_recipe(w, qtbot, "split")
    params = [p for name, p in sent if name == "compress"][-1]
    # What ``featherweight run`` passes for this project (engine run_project).
    assert (params["split_seed"], params["val_fraction"]) == (7, 0.2)
    assert params["recipe"]["seed"] == 3
    assert params["out"] == run.out_dir and Path(run.out_dir).name == run.id
    assert w.session.data.split_seed == 7 and w.session.data.val_fraction == 0.2
    engine_run = w.project.engine_run(run)
    assert engine_run.config["dataset"]["seed"] == 7
    assert engine_run.config["dataset"]["val_fraction"] == 0.2
    # Reopened, the project keeps its split and a new run uses it.
    path = tmp_path / "split.fwproj"
    assert w.project.save_as(path)
    w.close()
    w2 = make_window()
    assert w2.project.open(path)
    assert (w2.session.data.split_seed, w2.session.data.val_fraction) == (7, 0.2)
    sent2 = spy_submit(w2)
    w2.compress_tab.seed.setValue(11)
    run_recipe(w2, qtbot, "again")
    params2 = [p for name, p in sent2 if name == "compress"][-1]
    assert (params2["split_seed"], params2["val_fraction"]) == (7, 0.2)


def test_without_a_project_the_tab_uses_its_own_folder_and_the_data_split(make_window, qtbot):
    w = make_window()
    open_demo(w, qtbot)
    tab = w.compress_tab
    tab.set_run_hooks(None)
    w.session.data.split_seed, w.session.data.val_fraction = 5, 0.15
    sent = spy_submit(w)
    with qtbot.waitSignal(tab.runFinished, timeout=10_000) as blocker:
        assert tab.start_run() is not None, tab.message.text()
    params = [p for name, p in sent if name == "compress"][-1]
    assert (params["split_seed"], params["val_fraction"]) == (5, 0.15)
    assert Path(params["out"]).parent == tab.runs_dir
    assert blocker.args[0].status == "finished"
    assert w.project.project.runs == []  # no owner: the project recorded nothing


def test_data_choice_split_defaults_are_those_of_a_new_dataset_reference():
    from gui.state import DataChoice

    ref = ep.DatasetRef("demo", None)
    assert (DataChoice().split_seed, DataChoice().val_fraction) == (ref.seed, ref.val_fraction)


# --------------------------------------------------------------------------- issue 12


def test_new_project_resets_every_tab(make_window, qtbot, tmp_path):
    """Item 4: New project kept the old dataset path and the Compress tab's finished run."""
    w = make_window()
    open_demo(w, qtbot)
    data = tmp_path / "digits.npz"
    data.write_bytes(b"npz")
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.choose_data(str(data), "auto")
    run_recipe(w, qtbot, "old")
    assert w.compress_tab.log.toPlainText()
    w.project.ask_unsaved = lambda: "discard"
    assert w.project.new()
    assert w.session.runs == [] and w.session.model is None
    assert w.compress_tab.run is None and w.compress_tab.log.toPlainText() == ""
    assert w.results_tab.rows in ([], [None])
    assert w.model_tab.data_picker.path.text() == ""
    assert w.compress_tab.current_page() == 0


def test_a_cancelled_run_keeps_no_number_and_no_files(make_window, qtbot):
    """Item 7: a cancelled run consumed a run number."""
    w = make_window("--delay", "0.02")
    open_demo(w, qtbot)
    first = run_recipe(w, qtbot, "first")
    tab = w.compress_tab
    tab.recipe_name.setText("stopped")
    stopped = tab.start_run()
    with qtbot.waitSignal(tab.job.metric, timeout=10_000):
        pass
    folder = Path(stopped.out_dir)
    folder.mkdir(parents=True, exist_ok=True)  # what the engine wrote so far
    (folder / "model.keras").write_bytes(b"half a model")
    with qtbot.waitSignal(tab.runFinished, timeout=5000):
        tab.cancel_run()
    assert stopped.status == "cancelled" and not stopped.name.startswith("#")
    assert stopped not in w.session.runs and not folder.exists()
    assert [r.id for r in w.project.project.runs] == [first.id]
    third = run_recipe(w, qtbot, "third")
    assert (first.name, third.name) == ("#1 first", "#2 third")


def test_launching_with_the_demo_gives_a_clean_title(qtbot, qsettings, tmp_path):
    """Item 7: the title was "Untitled*" right after ``featherweight --demo``."""
    from gui.app import create_window
    from tests.gui.conftest import fake_worker_command

    w = create_window(
        ["--demo"], settings=qsettings, worker_command=fake_worker_command(), runs_dir=tmp_path
    )
    qtbot.addWidget(w)
    try:
        w.show()
        qtbot.waitUntil(lambda: w.session.baseline is not None, timeout=10_000)
        assert w.windowTitle() == "Untitled[*] — Featherweight"
        assert not w.isWindowModified()
        run_recipe(w, qtbot, "r")  # a run is a change
        assert w.isWindowModified()
    finally:
        w.shutdown()


def test_open_model_accepts_a_savedmodel(make_window, qtbot, tmp_path):
    """Item 5: Open model… listed .keras/.h5 only and refused saved_model.pb."""
    from gui.main_window import MODEL_FILTER

    assert "saved_model.pb" in MODEL_FILTER
    saved = tmp_path / "exported"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"pb")
    w = make_window()
    sent = spy_submit(w)
    w.ask_model_path = lambda: str(saved / "saved_model.pb")
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.act_open.trigger()
    assert w.session.model.spec == str(saved)
    w.ask_savedmodel_folder = lambda: str(saved)
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.act_open_savedmodel.trigger()
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.open_dropped(saved)  # drag and drop keeps working
    assert [p["model"] for name, p in sent if name == "inspect"] == [str(saved)] * 3
    w.ask_savedmodel_folder = lambda: str(tmp_path)
    w.act_open_savedmodel.trigger()
    assert "no saved_model.pb" in wait_messages(w, qtbot)[-1].message


def test_help_menu_guide_shortcuts_and_problem_report(make_window, qtbot):
    """Item 7: Help had only About."""
    from PySide6.QtGui import QGuiApplication

    w = make_window()
    texts = [a.text() for a in w.help_menu.actions() if not a.isSeparator()]
    assert texts == [
        "&User guide",
        "&Keyboard shortcuts",
        "&Report a problem",
        "&About Featherweight",
    ]
    opened = []
    w.open_url = lambda url: opened.append(url.toLocalFile()) or True
    w.act_user_guide.trigger()
    assert opened == [str(ROOT / "docs" / "user-guide.md")]
    assert "# " in (ROOT / "docs" / "user-guide.md").read_text()
    rows = dict(w.shortcut_rows())
    assert rows["File → Open model…"] == w.act_open.shortcut().toString(
        w.act_open.shortcut().SequenceFormat.NativeText
    )
    assert rows["Run → Run recipe"] == "Ctrl+R" and "Help → Keyboard shortcuts" in rows
    dialog = w.show_shortcuts()
    assert dialog.findChild(type(w.results_tab.table)).rowCount() == len(rows)
    dialog.close()
    open_demo(w, qtbot)
    run = run_recipe(w, qtbot, "logged")
    text = w.report_problem()
    assert QGuiApplication.clipboard().text() == text
    assert "Featherweight" in text and "tf_keras" in text and "PySide6" in text
    assert run.name in text and run.log[-1] in text
    assert "Copied the versions" in w.statusBar().currentMessage()
