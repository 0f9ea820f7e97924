"""Project format 5 (issue 14): sensitivity analyses kept in the project, the 4 -> 5 migration,
analyses reopened from disk without recomputing. No TensorFlow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.project import document as P
from engine.project.common import ProjectError
from engine.project.migrations import CURRENT_FORMAT, migrate

DATA = Path(__file__).resolve().parent / "data"


def _doc(acc: float = 0.97) -> dict[str, Any]:
    """A small sensitivity document (the shape engine.pipeline.sensitivity writes)."""
    return {
        "schema_version": 1,
        "kind": "featherweight.sensitivity",
        "created": "2027-02-01T10:00:00Z",
        "seconds": 12.5,
        "model": {"path": "demo", "sha256": None},
        "dataset": {"name": "demo", "sha256": None},
        "baseline": {"split": "val", "samples": 142, "accuracy": acc, "loss": 0.16},
        "grids": {"prune": [0.5, 0.9], "cluster": [], "filters": []},
        "layers": [
            {"name": "dense", "class": "Dense", "params": 10, "prune": [
                {"sparsity": 0.5, "accuracy": acc, "loss": 0.2},
                {"sparsity": 0.9, "accuracy": 0.5, "loss": 1.5}]},
        ],
        "quantization": None,
    }  # fmt: skip


def test_format_5_migration_and_a_sample_of_4() -> None:
    assert CURRENT_FORMAT >= 5
    sample = json.loads((DATA / "project_v4.fwproj").read_text())
    assert sample["format_version"] == 4 and "analyses" not in sample
    doc, original, warnings = migrate(sample, DATA / "project_v4.fwproj")
    assert (original, doc["format_version"], doc["analyses"]) == (4, CURRENT_FORMAT, [])
    assert warnings == []
    changed = ("format_version", "analyses", "recipes", "searches")  # searches: format 6
    assert {k: v for k, v in doc.items() if k not in changed} == {
        k: v for k, v in sample.items() if k not in changed
    }  # nothing else changes
    # The saved recipes become recipe schema 3 with the same steps (+ the new knobs' defaults).
    assert sample["recipes"] and all(r["schema_version"] == 2 for r in sample["recipes"])
    assert [r["schema_version"] for r in doc["recipes"]] == [3] * len(sample["recipes"])
    for old, new in zip(sample["recipes"], doc["recipes"], strict=True):
        for old_step, new_step in zip(old["steps"], new["steps"], strict=True):
            assert new_step.items() >= old_step.items()
    doc3, original3, _ = migrate(json.loads((DATA / "project_v3.fwproj").read_text()), "x")
    assert original3 == 3 and doc3["format_version"] == CURRENT_FORMAT and doc3["analyses"] == []


def test_v4_file_opens_saves_as_v5_and_keeps_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "budgeted.fwproj"
    shutil.copy(DATA / "project_v4.fwproj", path)
    original = path.read_bytes()
    project = P.load_project(path)
    assert project.migrated_from == 4 and project.analyses == []
    recipes = len(project.recipes)
    v2_recipe = json.loads(original)["recipes"][0]
    P.add_recipe(project, v2_recipe)  # the same recipe, as the app would add it (schema 3)
    assert len(project.recipes) == recipes  # not stored twice after the recipe migration
    assert project.accuracy_budget == 2.0 and len(project.runs) == 3
    assert path.read_bytes() == original  # loading never writes
    P.save_project(project)
    assert (tmp_path / "budgeted.fwproj.v4.bak").read_bytes() == original
    saved = json.loads(path.read_text())
    assert saved["format_version"] == CURRENT_FORMAT and saved["analyses"] == []
    again = P.load_project(path)
    assert again.migrated_from is None and again.to_dict() == project.to_dict()


def test_analysis_is_kept_and_reopens_without_recomputing(tmp_path: Path) -> None:
    project = P.new_project(data_dir=tmp_path / "ws")
    P.set_model(project, "demo")
    P.set_dataset(project, "demo", seed=0)
    assert P.latest_analysis(project) is None
    entry = P.add_analysis(project, _doc(0.97))
    assert entry["id"] == "analysis-001"
    assert entry["artifact"] == "analyses/analysis-001/sensitivity.json"
    assert entry["config"]["split"] == {"seed": 0, "val_fraction": 0.1}
    assert entry["created"] == "2027-02-01T10:00:00Z"
    assert project.is_dirty()
    second = P.add_analysis(project, _doc(0.95))
    assert second["id"] == "analysis-002"
    assert P.latest_analysis(project)["baseline"]["accuracy"] == 0.95  # the latest one

    # First save moves the analyses beside the file; the workspace goes away.
    (tmp_path / "proj").mkdir()
    path = P.save_project(project, tmp_path / "proj" / "p.fwproj")
    files = tmp_path / "proj" / "p_files"
    stored = files / "analyses" / "analysis-002" / "sensitivity.json"
    assert json.loads(stored.read_text()) == _doc(0.95)
    assert not list(files.rglob("*.tmp"))
    assert P.check_references(project) == []

    reopened = P.load_project(path)
    assert [a["id"] for a in reopened.analyses] == ["analysis-001", "analysis-002"]
    assert P.latest_analysis(reopened) == _doc(0.95)

    # Another subject (the dataset's split changed): no analysis of it yet.
    P.set_dataset(reopened, "demo", seed=3)
    assert P.latest_analysis(reopened) is None
    key, _ = P.analysis_subject(reopened, reopened.analyses[0])
    assert P.latest_analysis(reopened, key) == _doc(0.95)

    # Save As copies the analyses; a missing artifact is reported, never a crash.
    other = P.save_project(reopened, tmp_path / "proj" / "other.fwproj")
    copied = tmp_path / "proj" / "other_files" / "analyses" / "analysis-001" / "sensitivity.json"
    assert copied.is_file()
    copied.unlink()
    moved = P.load_project(other)
    problems = P.check_references(moved)
    assert [(p.what, p.problem) for p in problems] == [("artifacts", "missing")]
    assert P.load_analysis(moved, moved.analyses[0]) is None
    assert P.latest_analysis(moved, key) == _doc(0.95)  # analysis-002 is still there

    P.remove_analysis(moved, "analysis-002")
    assert [a["id"] for a in moved.analyses] == ["analysis-001"]
    assert not (tmp_path / "proj" / "other_files" / "analyses" / "analysis-002").exists()


def test_bad_analyses_are_refused(tmp_path: Path) -> None:
    project = P.new_project(data_dir=tmp_path)
    with pytest.raises(ProjectError, match="not a sensitivity"):
        P.add_analysis(project, {"kind": "something else"})
    doc = project.to_dict()
    for analyses, message in (
        ({"id": "a"}, "'analyses' must be a list"),
        ([{"id": "../x", "artifact": "analyses/x/sensitivity.json"}], "id"),
        ([{"id": "a", "artifact": "../../etc/passwd"}], "artifact"),
        ([{"id": "a", "artifact": "a.json"}, {"id": "a", "artifact": "b.json"}], "twice"),
    ):
        with pytest.raises(ProjectError, match=message):
            P.Project.from_dict({**doc, "analyses": analyses})
