"""Project format 6 (issue 15): searches kept in the project (their study folders under the
files folder), the 5 -> 6 migration on a real format-5 project, no storage URL or password in
the project file. No TensorFlow."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.project import document as P
from engine.project.common import ProjectError
from engine.project.migrations import CURRENT_FORMAT, migrate

DATA = Path(__file__).resolve().parent / "data"
SECRET_URL = "postgresql://fw:s3cr3t-pw@db.example:5432/studies"


@pytest.fixture(autouse=True)
def _user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P.DATA_DIR_ENV, str(tmp_path / "userdata"))


def _search_doc(trials: list[dict[str, Any]], stopped: str | None = "time") -> dict[str, Any]:
    """A search.json document with the fields of schema 1 (docs/project-format.md)."""
    return {
        "schema_version": 1,
        "kind": "featherweight-search",
        "study_name": "fw-demo-abc123",
        "storage": "journal",
        "objective": "gzip",
        "budget_pts": 1.0,
        "seed": 0,
        "sampler": "tpe",
        "time_budget_s": 60.0,
        "trial_budget": None,
        "elapsed_s": 12.5,
        "stopped": stopped,
        "model": {"path": "demo", "sha256": None},
        "data": {"source": "demo", "seed": 0, "val_fraction": 0.1},
        "split": {"seed": 0, "val_fraction": 0.1},
        "baseline": {
            "val_accuracy": 0.97, "accuracy": 0.975, "tflite_bytes": 608532,
            "tflite_gzip_bytes": 560000, "latency_ms": 0.05, "arena_bytes": 2048,
        },
        "space": {"sparsity": [0, 0.5, 0.9], "format": ["int8", "float16"]},
        "trials": trials,
        "frontier": [t["number"] for t in trials if t["state"] == "complete"],
        "frontier_test": [],
        "best": None,
        "cache": {"hits": 1, "misses": 2},
        "noise": {"val_samples": 143, "one_sample_pts": 0.7},
    }  # fmt: skip


def _trial(number: int, state: str) -> dict[str, Any]:
    done = state == "complete"
    return {
        "number": number, "state": state, "params": {"sparsity": 0.9, "format": "int8"},
        "recipe": {"schema_version": 3, "name": f"trial {number}", "steps": []},
        "val_accuracy": 0.965 if done else None, "val_drop": 0.5 if done else None,
        "val_drop_se": 0.7 if done else None, "tflite_bytes": 40000 if done else None,
        "tflite_gzip_bytes": 14000 if done else None, "latency_ms": None, "arena_bytes": None,
        "objective_value": 14000 if done else None, "feasible": done, "duration_s": 3.0,
        "cache_hits": 0, "folder": f"trials/{number:04d}" if done else None, "error": None,
    }  # fmt: skip


def _write_study(folder: Path, doc: dict[str, Any]) -> None:
    """What a search leaves in its study folder (search.json written atomically by it)."""
    from engine.project.common import write_json_atomic

    (folder / "trials" / "0000").mkdir(parents=True, exist_ok=True)
    (folder / "trials" / "0000" / "model.tflite").write_bytes(b"TFL3" + bytes(64))
    (folder / "checkpoints").mkdir(exist_ok=True)
    (folder / "study.journal").write_text('{"op_code": 0}\n', encoding="utf-8")
    write_json_atomic(folder / "search.json", doc)


def test_format_is_6_and_a_real_v5_project_migrates(tmp_path: Path) -> None:
    assert CURRENT_FORMAT == 6
    sample = json.loads((DATA / "project_v5.fwproj").read_text())
    # A real format-5 project (made with the format-5 code on the demo): an int8 run that
    # finished with its metrics and artifacts, and a kept sensitivity analysis.
    assert sample["format_version"] == 5 and "searches" not in sample
    assert sample["runs"][0]["status"] == "done" and sample["runs"][0]["metrics"]["compressed"]
    assert sample["analyses"][0]["artifact"] == "analyses/analysis-001/sensitivity.json"
    doc, original, warnings = migrate(copy.deepcopy(sample), DATA / "project_v5.fwproj")
    assert (original, doc["format_version"], doc["searches"], warnings) == (5, 6, [], [])
    changed = ("format_version", "searches")
    assert {k: v for k, v in doc.items() if k not in changed} == {
        k: v for k, v in sample.items() if k not in changed
    }  # nothing else changes
    doc4, original4, _ = migrate(json.loads((DATA / "project_v4.fwproj").read_text()), "x")
    assert (original4, doc4["format_version"], doc4["searches"]) == (4, 6, [])

    path = tmp_path / "sensitive.fwproj"
    shutil.copy(DATA / "project_v5.fwproj", path)
    raw = path.read_bytes()
    project = P.load_project(path)
    assert project.migrated_from == 5 and project.searches == []
    assert path.read_bytes() == raw  # loading never writes
    P.save_project(project)
    assert (tmp_path / "sensitive.fwproj.v5.bak").read_bytes() == raw
    saved = json.loads(path.read_text())
    assert saved["format_version"] == 6 and saved["searches"] == []
    again = P.load_project(path)
    assert again.migrated_from is None and again.to_dict() == project.to_dict()
    assert again.runs[0].metrics == sample["runs"][0]["metrics"]


def test_search_round_trip_moves_with_the_project(tmp_path: Path) -> None:
    project = P.new_project(data_dir=tmp_path / "ws")
    P.set_model(project, "demo")
    P.set_dataset(project, "demo", seed=0)
    assert P.latest_search(project) is None
    entry = P.add_search(project, 1.0, "gzip", time_s=1200, trials=None, seed=2)
    assert entry["id"] == "search-001" and entry["folder"] == "searches/search-001"
    cfg = entry["config"]
    assert {k: cfg[k] for k in P.SEARCH_SETTINGS} == {
        "budget_pts": 1.0, "objective": "gzip", "time_s": 1200.0, "trials": None, "seed": 2,
    }  # fmt: skip
    assert cfg["split"] == {"seed": 0, "val_fraction": 0.1} and cfg["model"]["path"] == "demo"
    folder = P.search_dir(project, entry)
    assert folder == project.workspace / "searches" / "search-001" and folder.is_dir()
    assert P.load_search(project, entry) is None  # nothing written yet: not an error
    assert P.latest_search(project) == entry  # the entry, before its first trial too
    assert P.check_references(project) == []

    # The search runs; the project is saved while it runs (a trial still running).
    running = _search_doc([_trial(0, "complete"), _trial(1, "running")], stopped=None)
    _write_study(folder, running)
    (tmp_path / "proj").mkdir()
    path = P.save_project(project, tmp_path / "proj" / "p.fwproj")
    assert not project.workspace  # the untitled workspace went away, its study came along
    files = tmp_path / "proj" / "p_files" / "searches" / "search-001"
    assert (files / "study.journal").is_file() and (files / "trials/0000/model.tflite").is_file()
    saved = json.loads(path.read_text())
    assert saved["searches"] == [entry]

    reopened = P.load_project(path)
    latest = P.latest_search(reopened)
    assert latest == entry
    assert P.load_search(reopened, latest) == running  # whatever search.json holds
    assert P.search_dir(reopened, "search-001") == files

    # The search goes on (resumed in the project's folder) and finishes; reopening shows it.
    done = _search_doc([_trial(0, "complete"), _trial(1, "pruned"), _trial(2, "complete")])
    _write_study(files, done)
    assert P.load_search(P.load_project(path), "search-001") == done

    # The whole project folder moves (handed to a colleague): still found, relative paths.
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "proj", moved)
    there = P.load_project(moved / "p.fwproj")
    assert P.load_search(there, P.latest_search(there)) == done
    assert P.search_dir(there, "search-001") == moved / "p_files" / "searches" / "search-001"

    # Save As copies the study folder; the other project is independent of this one.
    (tmp_path / "copy").mkdir()
    P.save_project(P.load_project(moved / "p.fwproj"), tmp_path / "copy" / "q.fwproj")
    assert (tmp_path / "copy/q_files/searches/search-001/study.journal").is_file()
    assert P.load_search(P.load_project(tmp_path / "copy" / "q.fwproj"), "search-001") == done

    # Subjects: another split has no search yet; ids pick the old one out.
    model_id, dataset_id = P.search_ids(there, there.searches[0])
    assert (model_id, dataset_id) == P.search_ids(there)
    P.set_dataset(there, "demo", seed=3)
    assert P.latest_search(there) is None
    assert P.search_ids(there)[0] == model_id and P.search_ids(there)[1] != dataset_id
    assert P.latest_search(there, model_id, dataset_id)["id"] == "search-001"
    second = P.add_search(there, 0.5, "flash", trials=20)
    assert second["id"] == "search-002" and P.latest_search(there)["id"] == "search-002"
    assert P.search_subject(there, second)[0] == P.project_subject(there)[0]

    # A missing study folder is reported, never a crash; removal deletes the folder.
    shutil.rmtree(moved / "p_files" / "searches" / "search-002")
    problems = P.check_references(there)
    assert [(p.what, p.problem) for p in problems] == [("artifacts", "missing")]
    assert "searches/search-002" in problems[0].message
    assert P.load_search(there, "search-002") is None
    P.remove_search(there, "search-001")
    assert [e["id"] for e in there.searches] == ["search-002"]
    assert not (moved / "p_files" / "searches" / "search-001").exists()


def test_no_storage_url_or_password_in_the_project_file(tmp_path: Path) -> None:
    project = P.new_project(data_dir=tmp_path / "ws")
    P.set_model(project, "demo")
    P.set_dataset(project, "demo")
    config = {**P.run_config(project), "storage": SECRET_URL, "storage_url": SECRET_URL}
    entry = P.add_search(project, 1.0, "latency", time_s=60, config=config)
    assert set(entry["config"]) == {"model", "dataset", "split", *P.SEARCH_SETTINGS}
    project.ui["search"] = {"storage": SECRET_URL, "note": f"ran on {SECRET_URL} twice"}
    recovery_text = P.write_recovery(project).read_text()  # the autosave, too
    assert SECRET_URL.replace("s3cr3t-pw", "***") in recovery_text
    path = P.save_project(project, tmp_path / "s.fwproj")
    for text in (path.read_text(), recovery_text):
        assert "s3cr3t-pw" not in text
    saved = json.loads(path.read_text())
    assert saved["ui"]["search"]["storage"] == "postgresql://fw:***@db.example:5432/studies"
    assert "s3cr3t-pw" not in json.dumps(P.recovery_document(project))
    # A hand-edited file with a URL in a search's config: dropped on load, gone on save.
    saved["searches"][0]["config"]["storage"] = SECRET_URL
    path.write_text(json.dumps(saved))
    reopened = P.load_project(path)
    assert "storage" not in reopened.searches[0]["config"]
    P.save_project(reopened)
    assert "s3cr3t-pw" not in path.read_text()


def test_bad_searches_are_refused(tmp_path: Path) -> None:
    project = P.new_project(data_dir=tmp_path)
    for args, kwargs, message in (
        ((1.0, "size"), {}, "objective must be one of gzip, flash, latency, ram"),
        ((-1, "gzip"), {}, "search: "),
        ((1.0, "gzip"), {"trials": 0}, "trials must be a positive number"),
        ((1.0, "gzip"), {"time_s": "20m"}, "time_s must be a positive number"),
        ((1.0, "gzip"), {"seed": -1}, "seed must be a non-negative integer"),
    ):
        with pytest.raises(ProjectError, match=message):
            P.add_search(project, *args, **kwargs)
    assert project.searches == []
    with pytest.raises(ProjectError, match="no search 'search-009'"):
        P.search_dir(project, "search-009")
    doc = project.to_dict()
    for searches, message in (
        ({"id": "a"}, "'searches' must be a list"),
        ([{"id": "../x", "folder": "searches/x"}], "id"),
        ([{"id": "a", "folder": "../../etc"}], "folder"),
        ([{"id": "a", "folder": "/tmp/a"}], "absolute"),
        ([{"id": "a", "folder": "s/a"}, {"id": "a", "folder": "s/b"}], "twice"),
    ):
        with pytest.raises(ProjectError, match=message):
            P.Project.from_dict({**doc, "searches": searches})
    # A search.json from a newer Featherweight: one line, not a crash.
    entry = P.add_search(project, 1.0, "ram")
    folder = P.search_dir(project, entry)
    (folder / "search.json").write_text(json.dumps({**_search_doc([]), "schema_version": 99}))
    with pytest.raises(ProjectError) as info:
        P.load_search(project, entry)
    assert "\n" not in str(info.value)
