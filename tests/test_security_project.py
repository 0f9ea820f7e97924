"""A project file never grants trust: a model the user once trusted is refused again when the
project is run headless without --allow-unsafe, and the app asks again on reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.pipeline.run
from engine.core.events import Reporter
from engine.project import document as P


@pytest.fixture(autouse=True)
def _user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(P.DATA_DIR_ENV, str(tmp_path / "userdata"))


def _trusted_project(tmp_path: Path) -> Path:
    model = tmp_path / "m.keras"
    model.write_bytes(b"model-bytes")
    project = P.new_project()
    P.set_model(project, model, allow_unsafe=True)  # the user trusted it in the app
    P.set_dataset(project, "demo", seed=3, val_fraction=0.2, scale="1/255")
    P.add_pending_run(project, {"schema_version": 1, "name": "d", "steps": [{"type": "quantize"}]})
    return P.save_project(project, tmp_path / "p.fwproj")


@pytest.mark.parametrize("flag", [False, True])
def test_run_project_takes_trust_from_the_command_line_only(tmp_path, monkeypatch, flag):
    path = _trusted_project(tmp_path)
    seen = []

    def fake_compress(model, data, recipe, out_dir, *, allow_unsafe, **kwargs):
        seen.append(allow_unsafe)
        Path(out_dir, "model.tflite").write_bytes(b"TFL3")
        return {"compressed": {"accuracy": 0.5}}

    monkeypatch.setattr(engine.pipeline.run, "compress", fake_compress)
    P.run_project(path, Reporter(), allow_unsafe=flag)
    assert seen == [flag]


def test_reopened_project_does_not_restore_trust(tmp_path):
    from gui.project_controller import session_from_project

    project = P.load_project(_trusted_project(tmp_path))
    project.ui = {"model_report": {"layers": []}}
    session = session_from_project(project)
    assert session.model is not None
    assert session.model.allow_unsafe is False
    # No stored report: the controller asks the engine again, which asks the user.
    assert session.model.report == {}
