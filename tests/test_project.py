"""Project files: round trip, migrations, atomic saves, corrupt files, recovery, locks, runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.core.errors import BadInputError
from engine.core.events import Reporter
from engine.project import document as P
from engine.project.lock import ProjectLock, ProjectLockedError, lock_path, read_lock
from engine.project.migrations import CURRENT_FORMAT, ProjectTooNewError

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TINY = {"schema_version": 1, "name": "dyn", "steps": [{"type": "quantize", "mode": "dynamic"}]}
INT8 = {"schema_version": 1, "name": "int8", "steps": [{"type": "quantize", "mode": "int8"}]}


@pytest.fixture(autouse=True)
def _user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(P.DATA_DIR_ENV, str(tmp_path / "userdata"))
    monkeypatch.delenv(P.TEST_SAVE_PAUSE_ENV, raising=False)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _finished_run(project: P.Project, recipe: dict, accuracy: float) -> P.Run:
    """A run recorded the way the GUI records one: events in, files written, metrics."""
    run = P.add_pending_run(project, recipe)
    P.mark_run_started(project, run)
    out = P.run_dir(project, run.id)
    for epoch in (1.0, 2.0):
        P.record_event(
            run,
            {
                "v": 1,
                "id": "job-1",
                "type": "metric",
                "stage": "finetune",
                "epoch": epoch,
                "values": {"loss": 1.0 / epoch, "accuracy": accuracy - 0.1 / epoch},
            },
        )
    P.record_event(run, {"type": "progress", "stage": "finetune", "step": 1, "total": 2})
    (out / "model.tflite").write_bytes(b"TFL3" + bytes(100))
    metrics = {"compressed": {"accuracy": accuracy}, "data": {"seed": 3, "val_fraction": 0.1}}
    (out / "metrics.json").write_text(json.dumps(metrics))
    P.record_run_result(project, run, metrics)
    return run


def _two_run_project(tmp_path: Path) -> tuple[P.Project, Path]:
    models = tmp_path / "models"
    models.mkdir()
    model = models / "m.keras"
    model.write_bytes(b"model-bytes")
    project = P.new_project()
    P.set_model(project, model)
    P.set_dataset(project, "demo", seed=3, val_fraction=0.2, scale="1/255")
    _finished_run(project, TINY, 0.9)
    _finished_run(project, INT8, 0.8)
    project.ui = {"tab": "results", "selected_runs": ["run-001", "run-002"]}
    work = tmp_path / "work"
    work.mkdir()
    path = P.save_project(project, work / "digits.fwproj")
    return project, path


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_runs_series_artifacts_and_ui(tmp_path):
    project, path = _two_run_project(tmp_path)
    again = P.load_project(path)
    assert again.to_dict() == project.to_dict()
    assert again.name == "digits"
    assert [r.id for r in again.runs] == ["run-001", "run-002"]
    assert [r.status for r in again.runs] == ["done", "done"]
    # Chart points are the emitted events, minus the worker protocol's keys.
    assert again.runs[0].series == [
        {
            "type": "metric",
            "stage": "finetune",
            "epoch": 1.0,
            "values": {"loss": 1.0, "accuracy": pytest.approx(0.8)},
        },
        {
            "type": "metric",
            "stage": "finetune",
            "epoch": 2.0,
            "values": {"loss": 0.5, "accuracy": pytest.approx(0.85)},
        },
    ]
    assert again.runs[1].metrics["compressed"]["accuracy"] == 0.8
    assert again.runs[0].seeds == {"recipe": 0, "split": 3}
    assert again.runs[0].artifacts == ["runs/run-001/metrics.json", "runs/run-001/model.tflite"]
    tfl = P.artifact_path(again, again.runs[0].artifacts[1])
    assert tfl.read_bytes().startswith(b"TFL3")
    assert again.ui == {"tab": "results", "selected_runs": ["run-001", "run-002"]}
    assert again.versions["tfmot"] == "0.8.1"
    assert again.runs[0].versions["tensorflow"]
    # Untitled workspace artifacts moved beside the file; the workspace is gone.
    assert not any((tmp_path / "userdata").rglob("model.tflite"))
    raw = json.loads(path.read_text())
    assert raw["format_version"] == CURRENT_FORMAT
    assert raw["model"]["path"] == "../models/m.keras"
    assert raw["dataset"] == {
        "path": "demo",
        "sha256": None,
        "seed": 3,
        "val_fraction": 0.2,
        "scale": "1/255",
    }


def test_dirty_tracking(tmp_path):
    project, path = _two_run_project(tmp_path)
    assert not project.is_dirty()
    rev = project.revision
    P.add_pending_run(project, TINY)
    assert project.is_dirty() and project.revision > rev
    P.save_project(project)
    assert not project.is_dirty()
    project.ui["tab"] = "model"
    assert project.is_dirty()
    assert not P.load_project(path).is_dirty()


def test_moving_the_whole_folder_keeps_references(tmp_path):
    _, path = _two_run_project(tmp_path)
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.move(tmp_path, moved)
    project = P.load_project(moved / "work" / "digits.fwproj")
    assert P.check_references(project) == []
    assert project.model.path == str(moved / "models" / "m.keras")


def test_save_as_copies_artifacts_and_leaves_the_original(tmp_path):
    project, path = _two_run_project(tmp_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    new = P.save_project(project, other / "copy.fwproj")
    assert project.path == new
    assert (other / "copy_files" / "runs" / "run-002" / "model.tflite").is_file()
    assert (path.parent / "digits_files" / "runs" / "run-002" / "model.tflite").is_file()
    reopened = P.load_project(new)
    assert P.check_references(reopened) == []
    assert reopened.model.path == str(tmp_path / "models" / "m.keras")
    assert json.loads(new.read_text())["model"]["path"] == "../models/m.keras"


def test_save_refuses_wrong_extension_and_untitled_without_name(tmp_path):
    project = P.new_project()
    with pytest.raises(P.ProjectError, match="no file name"):
        P.save_project(project)
    with pytest.raises(P.ProjectError, match=r"must end in \.fwproj"):
        P.save_project(project, tmp_path / "x.json")


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"x\.fwproj is empty \(0 bytes\)"),
        (b"  \n", r"is empty"),
        (
            b'{"format_version": 2, "name": "a", "runs": [',
            r"x\.fwproj is truncated: not valid JSON",
        ),
        (b"hello world", r"x\.fwproj is corrupt: not valid JSON \(line 1, column 1"),
        (b"\xff\xfe\x00\x01garbage", r"not UTF-8"),
        (b"[1, 2]", r"not a JSON object"),
        (b'{"name": "a"}', r"not a Featherweight project \(no 'format_version'\)"),
        (b'{"format_version": "2"}', r"invalid format_version '2'"),
        (
            b'{"format_version": 2, "runs": [{"id": "../x", "status": "done", "recipe": {}}]}',
            r"run 1: id '\.\./x'",
        ),
        (
            b'{"format_version": 2, "runs": [{"id": "a", "status": "weird", "recipe": {}}]}',
            r"run a: status 'weird'",
        ),
    ],
)
def test_bad_files_give_clear_errors_and_are_not_touched(tmp_path, content, message):
    path = tmp_path / "x.fwproj"
    path.write_bytes(content)
    before = path.stat().st_mtime_ns
    with pytest.raises(P.ProjectError, match=message) as info:
        P.load_project(path)
    assert isinstance(info.value, BadInputError)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == content and path.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.fwproj"]


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(P.ProjectError, match="project file not found"):
        P.load_project(tmp_path / "nope.fwproj")
    (tmp_path / "dir.fwproj").mkdir()
    with pytest.raises(P.ProjectError, match="is a folder"):
        P.load_project(tmp_path / "dir.fwproj")


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "future.fwproj"
    path.write_text(json.dumps({"format_version": CURRENT_FORMAT + 1, "wormholes": []}))
    with pytest.raises(ProjectTooNewError) as info:
        P.load_project(path)
    assert str(info.value) == (
        f"future.fwproj was made by a newer Featherweight (format {CURRENT_FORMAT + 1}, "
        f"this app reads up to {CURRENT_FORMAT}); update Featherweight to open it"
    )
    assert isinstance(info.value, P.ProjectError)


@pytest.mark.parametrize(
    "bad",
    [
        "../outside.tflite",
        "runs/../../x",
        "/etc/passwd",
        "C:/x.tflite",
        "runs\\..\\x",
        "runs//x",
        "./x",
        "",
    ],
)
def test_artifact_paths_cannot_escape_the_project(tmp_path, bad):
    _, path = _two_run_project(tmp_path)
    doc = json.loads(path.read_text())
    doc["runs"][0]["artifacts"] = [bad]
    path.write_text(json.dumps(doc))
    with pytest.raises(P.ProjectError, match="run run-001: artifact"):
        P.load_project(path)


def test_artifact_symlink_out_of_the_folder_is_refused(tmp_path):
    project, _ = _two_run_project(tmp_path)
    (project.files_dir / "runs" / "evil").symlink_to(tmp_path / "models")
    with pytest.raises(P.ProjectError, match="leads outside"):
        P.artifact_path(project, "runs/evil/m.keras")


# --------------------------------------------------------------------------- migrations


def test_migration_1_to_2_sample_file(tmp_path):
    """Format 1 stored absolute paths and no series; format 2 stores them relative to the
    project file (resolved against where it was saved) and keeps the final metrics."""
    where = tmp_path / "colleague"
    where.mkdir()
    path = where / "digits.fwproj"
    shutil.copy(DATA / "project_v1.fwproj", path)
    original = path.read_bytes()
    project = P.load_project(path)
    assert project.migrated_from == 1
    # Paths are relative to where ana saved it, now resolved beside the copy.
    assert project.model.path == str(where / "models" / "digits.keras")
    assert project.model.sha256 is None
    assert project.dataset.path == str(where / "data" / "digits.npz")
    assert (project.dataset.seed, project.dataset.val_fraction, project.dataset.scale) == (
        7,
        0.1,
        "1/255",
    )
    r1, r2, r3 = project.runs
    assert r1.status == "done" and r1.series == []
    assert r1.metrics["compressed"]["tflite_bytes"] == 158848
    assert r1.artifacts == ["runs/r1/model.tflite"]
    assert r1.versions == {"app": "0.0.9"}
    assert r2.status == "failed" and r2.error.startswith("pruning reached sparsity 0.00")
    assert r3.artifacts == []  # its .tflite was outside the project's folder
    assert any("r3" in w and "/tmp/export/model.tflite" in w for w in project.load_warnings)
    assert any("no metric series" in w for w in project.load_warnings)
    assert [r["name"] for r in project.recipes] == ["int8", "prune-int8"]
    assert path.read_bytes() == original  # loading never writes

    problems = {(p.what, p.problem) for p in P.check_references(project)}
    assert problems == {("model", "missing"), ("dataset", "missing"), ("artifacts", "missing")}

    P.save_project(project)
    assert (where / "digits.fwproj.v1.bak").read_bytes() == original
    doc = json.loads(path.read_text())
    assert doc["format_version"] == CURRENT_FORMAT
    assert doc["model"]["path"] == "models/digits.keras"
    again = P.load_project(path)
    assert again.migrated_from is None
    assert again.to_dict() == project.to_dict()


def test_migration_1_to_2_demo_sample_without_saved_as(tmp_path):
    path = tmp_path / "demo.fwproj"
    shutil.copy(DATA / "project_v1_demo.fwproj", path)
    project = P.load_project(path)
    assert project.model.path == "demo" and project.dataset.path == "demo"
    assert project.runs[0].status == "pending"
    assert P.check_references(project) == []


def test_migration_2_to_3_keeps_the_split_the_runs_used(tmp_path):
    """Format 2: a run started in the app split the data with its recipe's seed (run-001:
    seed 5), `featherweight run` with dataset.seed (0). Format 3: the split belongs to the
    dataset; it becomes the latest finished run's, each finished run records its own."""
    path = tmp_path / "shapes.fwproj"
    shutil.copy(DATA / "project_v2.fwproj", path)
    original = path.read_bytes()
    project = P.load_project(path)
    assert project.migrated_from == 2
    assert (project.dataset.seed, project.dataset.val_fraction) == (5, 0.1)
    assert P.split_params(project) == {"split_seed": 5, "val_fraction": 0.1}
    r1, r2, r3 = project.runs
    assert r1.config["split"] == {"seed": 5, "val_fraction": 0.1}  # from metrics.data
    assert r2.config["split"] == {"seed": 0, "val_fraction": 0.1}
    assert "split" not in r3.config and r3.status == "pending"
    assert r1.metrics["data"]["seed"] == 5 and r1.seeds == {"recipe": 5}  # history unchanged
    assert any("seed 5" in w and "was seed 0" in w for w in project.load_warnings)
    assert any("run-002" in w and "another split" in w for w in project.load_warnings)
    assert path.read_bytes() == original  # loading never writes

    P.mark_run_started(project, r3)  # the pending run gets the dataset's split
    assert r3.config["split"] == {"seed": 5, "val_fraction": 0.1}
    assert r3.seeds == {"recipe": 0, "split": 5}
    P.save_project(project)
    assert (tmp_path / "shapes.fwproj.v2.bak").read_bytes() == original
    doc = json.loads(path.read_text())
    assert doc["format_version"] == CURRENT_FORMAT == 6
    assert doc["dataset"]["seed"] == 5
    again = P.load_project(path)
    assert again.migrated_from is None and again.load_warnings == []
    assert again.to_dict() == project.to_dict()


def test_migration_2_to_3_changes_nothing_when_the_runs_used_the_dataset_split(tmp_path):
    doc = json.loads((DATA / "project_v2.fwproj").read_text())
    doc["runs"][0]["metrics"]["data"]["seed"] = 0
    path = tmp_path / "same.fwproj"
    path.write_text(json.dumps(doc))
    project = P.load_project(path)
    assert project.migrated_from == 2 and project.load_warnings == []
    assert (project.dataset.seed, project.dataset.val_fraction) == (0, 0.1)
    assert [r.config.get("split") for r in project.runs] == [
        {"seed": 0, "val_fraction": 0.1},
        {"seed": 0, "val_fraction": 0.1},
        None,
    ]


def test_project_modules_have_no_import_cycle():
    """lock and migrations need only engine.project.common, never the document module."""
    import ast

    for name in ("lock", "migrations", "common"):
        tree = ast.parse((ROOT / "engine" / "project" / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "engine.project.document" not in imported, name


def test_every_old_format_has_a_sample_and_a_migration():
    from engine.project.migrations import MIGRATIONS

    assert sorted(MIGRATIONS) == list(range(1, CURRENT_FORMAT))
    versions = {json.loads(f.read_text())["format_version"] for f in DATA.glob("*.fwproj")}
    assert versions >= set(range(1, CURRENT_FORMAT))


# --------------------------------------------------------------------------- atomic save


_SAVER = """
import sys
from engine.project import document as P
project = P.load_project(sys.argv[1])
project.name = "second version"
P.save_project(project)
print("saved")
"""


def test_kill_during_save_leaves_previous_file_intact(tmp_path):
    project, path = _two_run_project(tmp_path)
    before = path.read_bytes()
    flag = tmp_path / "paused.flag"
    env = _env()
    env[P.TEST_SAVE_PAUSE_ENV] = str(flag)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "saver never reached the pause point"
            time.sleep(0.02)
        tmp = Path(flag.read_text())
        assert tmp.parent == path.parent and tmp.is_file()
        assert json.loads(tmp.read_text())["name"] == "second version"  # new content written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert P.load_project(path).name == "digits"
    # Without the hook the same save goes through.
    env.pop(P.TEST_SAVE_PAUSE_ENV)
    done = subprocess.run(
        [sys.executable, "-c", _SAVER, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert P.load_project(path).name == "second version"


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    project, path = _two_run_project(tmp_path)
    before = path.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(P.os, "replace", no_space)
    project.name = "changed"
    with pytest.raises(P.ProjectError, match="No space left on device"):
        P.save_project(project)
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".digits.fwproj.*.tmp"))
    assert project.is_dirty()


# --------------------------------------------------------------------------- recovery


def test_recovery_after_crash_is_offered_and_restores_unsaved_work(tmp_path):
    project, path = _two_run_project(tmp_path)
    assert P.find_recovery(path) is None
    _finished_run(project, TINY, 0.95)  # unsaved third run
    rec = P.write_recovery(project)
    assert rec == P.autosave_path(path) and rec.parent == path.parent
    assert P.load_project(path).runs[-1].id == "run-002"  # project file untouched
    # "next start": the recovery is newer than the project and differs from it.
    assert P.find_recovery(path) == rec
    restored = P.load_recovery(rec)
    assert restored.path == path.absolute()
    assert restored.is_dirty()
    assert [r.id for r in restored.runs] == ["run-001", "run-002", "run-003"]
    assert restored.runs[2].series == project.runs[2].series
    assert P.check_references(restored) == []
    P.save_project(restored)
    assert not rec.exists()  # saving removes the recovery file
    assert len(P.load_project(path).runs) == 3


def test_stale_or_identical_recovery_is_not_offered(tmp_path):
    project, path = _two_run_project(tmp_path)
    rec = P.write_recovery(project)
    assert P.find_recovery(path) is None  # same content as the saved file
    project.name = "changed"
    P.write_recovery(project)
    old = time.time() - 100
    os.utime(rec, (old, old))
    assert P.find_recovery(path) is None  # older than the project file
    P.discard_recovery(path)
    assert not rec.exists()


def test_untitled_recovery(tmp_path):
    project = P.new_project()
    P.set_model(project, "demo")
    _finished_run(project, TINY, 0.9)
    rec = P.write_recovery(project)
    assert rec.parent == project.workspace
    assert P.find_untitled_recoveries() == [rec]
    restored = P.load_recovery(rec)
    assert restored.path is None and restored.workspace == rec.parent
    assert P.artifact_path(restored, restored.runs[0].artifacts[1]).is_file()
    new = P.save_project(restored, tmp_path / "named.fwproj")
    assert (tmp_path / "named_files" / "runs" / "run-001" / "model.tflite").is_file()
    assert P.find_untitled_recoveries() == []
    assert P.load_project(new).name == "named"


# --------------------------------------------------------------------------- references


def test_moved_and_changed_model_are_reported_and_relocated(tmp_path):
    project, path = _two_run_project(tmp_path)
    model = tmp_path / "models" / "m.keras"
    moved = tmp_path / "moved.keras"
    shutil.move(model, moved)
    project = P.load_project(path)
    [problem] = P.check_references(project)
    assert (problem.what, problem.problem) == ("model", "missing")
    assert "the model ../models/m.keras is missing" in problem.message
    assert P.relocate_model(project, moved) is True  # same content
    assert P.check_references(project) == []
    P.save_project(project)
    assert json.loads(path.read_text())["model"]["path"] == "../moved.keras"

    moved.write_bytes(b"retrained")
    [problem] = P.check_references(P.load_project(path))
    assert problem.problem == "changed" and "has changed" in problem.message
    assert P.relocate_model(project, moved) is False
    assert P.check_references(project) == []


def test_dataset_folder_hash_and_missing_artifacts(tmp_path):
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    (images / "cat" / "1.png").write_bytes(b"x" * 10)
    project, path = _two_run_project(tmp_path)
    P.set_dataset(project, images)
    assert P.check_references(project) == []
    (images / "cat" / "2.png").write_bytes(b"y")
    (project.files_dir / "runs" / "run-001" / "model.tflite").unlink()
    found = {(p.what, p.problem) for p in P.check_references(project)}
    assert found == {("dataset", "changed"), ("artifacts", "missing")}


# --------------------------------------------------------------------------- locks


_HOLDER = """
import sys
from engine.project.lock import ProjectLock
lock = ProjectLock(sys.argv[1], program="holder-test")
lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""


def _start_holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process_is_refused_naming_the_holder(tmp_path):
    project, path = _two_run_project(tmp_path)
    holder = _start_holder(path)
    try:
        info = read_lock(path)
        assert info["pid"] == holder.pid and info["program"] == "holder-test"
        assert info["hostname"] == socket.gethostname()
        with pytest.raises(ProjectLockedError) as exc:
            ProjectLock(path).acquire()
        msg = str(exc.value)
        assert f"digits.fwproj is in use by 'holder-test' (pid {holder.pid} on " in msg
        assert exc.value.holder["pid"] == holder.pid
        # A save from this process (which does not hold the lock) is refused too.
        project.name = "clobber"
        with pytest.raises(ProjectLockedError, match="cannot be saved from here"):
            P.save_project(project)
        # So is the headless run, as the CLI reports it (exit code 2, one line).
        cli = subprocess.run(
            [sys.executable, "-m", "engine.cli", "run", str(path)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 2
        assert f"'holder-test' (pid {holder.pid}" in cli.stderr
        assert len(cli.stderr.strip().splitlines()) == 1
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
    finally:
        holder.kill()
        holder.wait(10)
    assert not lock_path(path).exists()
    with ProjectLock(path) as lock:
        assert lock.took_over is None
        P.save_project(project)
    assert P.load_project(path).name == "clobber"


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    _, path = _two_run_project(tmp_path)
    holder = _start_holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert lock_path(path).exists()  # left behind
    with ProjectLock(path, program="test") as lock:
        assert lock.took_over["pid"] == holder.pid
        assert read_lock(path)["pid"] == os.getpid()
    assert not lock_path(path).exists()


def test_lock_on_another_host_is_not_taken_over(tmp_path):
    _, path = _two_run_project(tmp_path)
    info = {
        "pid": 1,
        "hostname": "build-server-7",
        "program": "featherweight run",
        "since": "2026-11-24 22:00:00 UTC",
    }
    lock_path(path).write_text(json.dumps(info))
    with pytest.raises(ProjectLockedError, match="'featherweight run' \\(pid 1 on build-server-7"):
        ProjectLock(path).acquire()
    assert lock_path(path).exists()


def test_same_process_cannot_open_twice(tmp_path):
    _, path = _two_run_project(tmp_path)
    with ProjectLock(path):
        with pytest.raises(ProjectLockedError, match="already open in this process"):
            ProjectLock(path).acquire()


# --------------------------------------------------------------------------- headless run


def test_run_project_records_failures_and_saves_after_each_run(tmp_path, monkeypatch):
    import engine.pipeline.run
    from engine.core.errors import DataError

    project, path = _two_run_project(tmp_path)
    bad = P.add_pending_run(project, TINY)
    good = P.add_pending_run(project, INT8)
    P.save_project(project)
    seen_on_disk: list[list[str]] = []

    def fake_compress(model, data, recipe, out_dir, *, scale, allow_unsafe, reporter, **split):
        seen_on_disk.append([r.status for r in P.load_project(path).runs])
        assert scale == "1/255" and model == str(tmp_path / "models" / "m.keras")
        if recipe.name == "dyn":
            reporter.metric(1, loss=0.5)
            raise DataError("labels out of range")
        reporter.metric(1, loss=0.25)
        Path(out_dir, "model.tflite").write_bytes(b"TFL3")
        return {"compressed": {"accuracy": 0.5}}

    monkeypatch.setattr(engine.pipeline.run, "compress", fake_compress)
    events = []
    summary = P.run_project(path, Reporter(events.append))
    assert summary["done"] == [good.id]
    assert summary["failed"] == [{"id": bad.id, "error": "labels out of range"}]
    # While each run ran, the file already said "running" (saved before the run).
    assert seen_on_disk == [
        ["done", "done", "running", "pending"],
        ["done", "done", "failed", "running"],
    ]
    after = P.load_project(path)
    failed, done = after.run(bad.id), after.run(good.id)
    assert failed.status == "failed" and failed.error == "labels out of range"
    assert failed.series[0]["values"] == {"loss": 0.5}
    assert done.status == "done" and done.metrics == {"compressed": {"accuracy": 0.5}}
    assert done.artifacts == [f"runs/{good.id}/model.tflite"]
    assert [e for e in events if e["type"] == "metric"] == failed.series + done.series
    assert not lock_path(path).exists()


def test_run_project_marks_interrupted_runs_and_refuses_changed_model(tmp_path):
    project, path = _two_run_project(tmp_path)
    run = P.add_pending_run(project, TINY)
    P.mark_run_started(project, run)  # a process died while running it
    P.add_pending_run(project, TINY)
    P.save_project(project)
    (tmp_path / "models" / "m.keras").write_bytes(b"retrained")
    with pytest.raises(P.ProjectError, match="has changed since .*open digits.fwproj in"):
        P.run_project(path)
    assert not lock_path(path).exists()
    assert P.load_project(path).run(run.id).status == "running"  # nothing saved


@pytest.mark.slow
def test_run_project_headless_real_pipeline(tmp_path):
    """`featherweight run` on a migrated format-1 project: a real tiny recipe runs, the
    series equals the pipeline's own record, metrics equal metrics.json."""
    path = tmp_path / "demo.fwproj"
    shutil.copy(DATA / "project_v1_demo.fwproj", path)
    project = P.load_project(path)
    project.runs[0].recipe = {
        "schema_version": 1,
        "name": "ft-dyn",
        "steps": [{"type": "finetune", "epochs": 1}, {"type": "quantize", "mode": "dynamic"}],
    }
    P.save_project(project)
    cli = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", str(path), "--quiet"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    summary = json.loads(cli.stdout)
    assert summary["done"] == ["r1"] and summary["failed"] == []
    run = P.load_project(path).run("r1")
    assert run.status == "done" and run.error is None
    on_disk = json.loads((tmp_path / "demo_files" / "runs" / "r1" / "metrics.json").read_text())
    assert run.metrics == on_disk
    assert run.series and all(e["type"] == "metric" for e in run.series)
    assert [{k: v for k, v in e.items() if k != "type"} for e in run.series] == on_disk["series"]
    assert "runs/r1/model.tflite" in run.artifacts
    assert run.seeds == {"recipe": 0, "split": on_disk["data"]["seed"]}
    assert (tmp_path / "demo.fwproj.v1.bak").is_file()


def test_project_modules_are_light():
    """The GUI opens projects before TensorFlow is loaded: no TF, no Qt here."""
    code = (
        "import sys, engine.project.document, engine.project.lock, engine.project.migrations; "
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True
    )
    mods = set(out.stdout.split())
    assert "tensorflow" not in mods
    assert not any(m.startswith("PySide6") for m in mods)


_RACER = """
import sys
from engine.project.lock import ProjectLock, ProjectLockedError
lock = ProjectLock(sys.argv[1], program="racer")
try:
    lock.acquire()
    print("won", flush=True)
except ProjectLockedError as exc:
    print("lost", exc, flush=True)
sys.stdin.readline()
"""


def test_racing_takeover_of_a_stale_lock_has_one_winner(tmp_path):
    _, path = _two_run_project(tmp_path)
    holder = _start_holder(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(path)],
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        answers = [r.stdout.readline().strip() for r in racers]
    finally:
        for r in racers:
            r.stdin.close()
            r.wait(10)
    assert sum(a == "won" for a in answers) == 1, answers
    assert all(a == "won" or "in use by 'racer'" in a for a in answers), answers


def test_cancel_during_run_project_saves_and_keeps_later_runs_pending(tmp_path, monkeypatch):
    import engine.pipeline.run
    from engine.core.errors import Cancelled

    project, path = _two_run_project(tmp_path)
    first = P.add_pending_run(project, TINY)
    second = P.add_pending_run(project, INT8)
    P.save_project(project)

    def cancelled_compress(model, data, recipe, out_dir, *, scale, allow_unsafe, reporter, **split):
        reporter.metric(0.5, loss=0.7)
        raise Cancelled("cancelled by the user")

    monkeypatch.setattr(engine.pipeline.run, "compress", cancelled_compress)
    with pytest.raises(Cancelled):
        P.run_project(path)
    after = P.load_project(path)
    assert after.run(first.id).status == "cancelled"
    assert after.run(first.id).series[0]["values"] == {"loss": 0.7}
    assert after.run(second.id).status == "pending"
    assert not lock_path(path).exists()


# --------------------------------------------------------------------------- format 4


def test_migration_3_to_4_adds_the_budget_and_keeps_each_runs_split_and_subject(tmp_path):
    """Format 3 had no budget and one model per project; format 4 stores the budget and each
    run's subject (model, dataset, split) in its config, so the two models' runs of this
    sample are compared each with its own baseline."""
    (tmp_path / "models").mkdir()
    path = tmp_path / "two.fwproj"
    shutil.copy(DATA / "project_v3.fwproj", path)
    original = path.read_bytes()
    project = P.load_project(path)
    assert project.migrated_from == 3 and project.load_warnings == []
    assert project.accuracy_budget == 1.0
    r1, r2, r3 = project.runs
    assert r1.config["split"] == {"seed": 4, "val_fraction": 0.2}  # kept as run
    assert r2.config["split"] == {"seed": 0, "val_fraction": 0.1}
    assert r1.config["model"]["path"] == "demo"  # recorded at the time: kept
    assert r2.config["model"]["path"] == "models/second.keras"  # the project's, filled in
    assert r3.config == {} and r3.status == "pending"  # gets its config when it starts
    k1, label1 = P.run_subject(project, r1)
    k2, label2 = P.run_subject(project, r2)
    assert k1 != k2
    assert label1 == "demo model · demo digits (split seed 4, 20 % val)"
    assert label2 == "second.keras · demo digits (split seed 0, 10 % val)"
    assert P.run_subject(project, r3) == P.project_subject(project) == (k2, label2)
    assert path.read_bytes() == original  # loading never writes
    P.save_project(project)
    assert (tmp_path / "two.fwproj.v3.bak").read_bytes() == original
    doc = json.loads(path.read_text())
    assert doc["format_version"] == CURRENT_FORMAT and doc["accuracy_budget"] == 1.0
    again = P.load_project(path)
    assert again.to_dict() == project.to_dict() and again.migrated_from is None


def test_accuracy_budget_is_saved_and_checked(tmp_path):
    project, path = _two_run_project(tmp_path)
    assert project.accuracy_budget == 1.0
    assert P.set_accuracy_budget(project, 2.5) == 2.5
    P.save_project(project)
    assert json.loads(path.read_text())["accuracy_budget"] == 2.5
    assert P.load_project(path).accuracy_budget == 2.5
    with pytest.raises(P.ProjectError, match="between 0 and 100"):
        P.set_accuracy_budget(project, 101)
    for bad in (-1, "1", True, None):
        doc = json.loads(path.read_text())
        doc["accuracy_budget"] = bad
        path.write_text(json.dumps(doc))
        with pytest.raises(P.ProjectError, match="accuracy budget"):
            P.load_project(path)


def test_subject_key_follows_content_and_split_not_the_path(tmp_path):
    a = tmp_path / "a.keras"
    a.write_bytes(b"same bytes")
    copy_of_a = tmp_path / "elsewhere" / "a-copy.keras"
    copy_of_a.parent.mkdir()
    copy_of_a.write_bytes(b"same bytes")
    b = tmp_path / "b.keras"
    b.write_bytes(b"other bytes")
    project = P.new_project()

    def key(model, seed=0, vf=0.1, scale="auto", data="demo"):
        P.set_model(project, model)
        P.set_dataset(project, data, seed=seed, val_fraction=vf, scale=scale)
        return P.project_subject(project)[0]

    base = key(a)
    assert len(base) == 16 and base == key(copy_of_a)  # same content: same subject
    assert len({base, key(b), key(a, seed=1), key(a, vf=0.2), key(a, scale="1/255")}) == 5
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    (images / "cat" / "1.png").write_bytes(b"png")
    assert key(a, data=images) != base
    assert P.project_subject(project)[1] == "a.keras · images/ (split seed 0, 10 % val)"
    # A run's stored split wins over its dataset's seed; relative paths resolve.
    cfg_model = {"path": "a.keras", "sha256": None}
    rel = P.subject_key(cfg_model, {"path": "demo"}, {"seed": 3}, base_dir=tmp_path)
    absolute = P.subject_key({"path": str(a), "sha256": None}, {"path": "demo", "seed": 3})
    assert rel == absolute


def test_remove_run_drops_it_and_its_folder(tmp_path):
    project = P.new_project()
    P.set_model(project, "demo")
    P.set_dataset(project, "demo")
    run = P.add_pending_run(project, TINY)
    P.mark_run_started(project, run)
    folder = P.run_dir(project, run.id)
    (folder / "model.tflite").write_bytes(b"partial")
    P.remove_run(project, run.id)
    assert project.runs == [] and not folder.exists()
    P.remove_run(project, "run-404")  # unknown: nothing happens
    assert P.new_run_id(project) == run.id  # the id is free again
