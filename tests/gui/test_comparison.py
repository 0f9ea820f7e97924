"""One comparison is about one model + dataset + split (issue 12, item 1), and the project's
accuracy budget. Fake worker (recorded engine events): the point is which runs belong to
which subject, what is asked when the model or dataset changes, and what the project keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine.project.document as ep
from gui.main_window import MODEL_TAB
from tests.gui.conftest import spy_submit


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Untitled workspaces go to a temporary folder, never the user's."""
    d = tmp_path / "userdata"
    monkeypatch.setenv(ep.DATA_DIR_ENV, str(d))
    return d


def open_demo(w, qtbot):
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        assert w.open_demo()


def run_recipe(w, qtbot, name: str):
    w.compress_tab.recipe_name.setText(name)
    with qtbot.waitSignal(w.compress_tab.runFinished, timeout=10_000) as blocker:
        assert w.compress_tab.start_run() is not None, w.compress_tab.message.text()
    return blocker.args[0]


def asked_answers(w, answer: str) -> list[tuple[str, str]]:
    """Answer the new-comparison question with ``answer``; returns what was asked."""
    asked: list[tuple[str, str]] = []
    w.project.ask_new_comparison = lambda what, name: asked.append((what, name)) or answer
    return asked


def user_files(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "mobilenet.keras"
    model.write_bytes(b"a user's Keras 3 model")
    data = tmp_path / "flowers.npz"
    data.write_bytes(b"an npz")
    return model, data


def open_user_model(w, qtbot, model: Path, data: Path) -> None:
    """Open ``model`` and choose ``data`` for it (as a user does), up to its baseline."""
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        assert w.open_model(str(model))
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        assert w.choose_data(str(data), "auto")


def test_another_model_asks_and_a_new_comparison_keeps_each_run_with_its_own_subject(
    make_window, qtbot, tmp_path
):
    w = make_window()
    open_demo(w, qtbot)
    asked = asked_answers(w, "new_comparison")
    demo_run = run_recipe(w, qtbot, "int8")
    demo_subject = w.session.subject
    assert demo_run.subject == demo_subject != ""
    assert demo_run.subject_label == "demo model · demo digits (split seed 0, 10 % val)"
    assert asked == []  # nothing was asked while nothing changed

    model, data = user_files(tmp_path)
    open_user_model(w, qtbot, model, data)
    assert asked == [("model", "mobilenet.keras")]  # once: the data then joined the new one
    assert w.session.subject not in ("", demo_subject)
    assert w.session.subject_label == "mobilenet.keras · flowers.npz (split seed 0, 10 % val)"
    user_run = run_recipe(w, qtbot, "prune")
    assert user_run.subject == w.session.subject
    assert [(s, n) for s, _label, n in w.session.subjects()] == [
        (demo_subject, 1),
        (w.session.subject, 1),
    ]
    # Each subject is compared with its own baseline: the demo's is its run's.
    assert w.session.baseline_of(demo_subject) == demo_run.baseline
    assert w.session.runs_of(w.session.subject) == [user_run]

    path = tmp_path / "two.fwproj"
    assert w.project.save_as(path)
    doc = json.loads(path.read_text())
    assert [r["config"]["model"]["path"] for r in doc["runs"]] == ["demo", "mobilenet.keras"]
    w.close()
    w2 = make_window()
    assert w2.project.open(path)
    assert [(r.name, r.subject_label) for r in w2.session.runs] == [
        (demo_run.name, demo_run.subject_label),
        (user_run.name, user_run.subject_label),
    ]
    assert [r.subject for r in w2.session.runs] == [demo_subject, w2.session.subject]
    assert w2.results_tab.rows == [None, w2.session.runs[1]]  # never the demo's run


def test_cancel_keeps_the_model_and_the_dataset(make_window, qtbot, tmp_path):
    w = make_window()
    open_demo(w, qtbot)
    run_recipe(w, qtbot, "int8")
    asked = asked_answers(w, "cancel")
    sent = spy_submit(w)
    model, data = user_files(tmp_path)
    assert not w.open_model(str(model))
    assert not w.choose_data(str(data), "auto")
    # The Model tab's own picker goes through the same question.
    w.model_tab.data_picker.changed.emit(str(data), "auto")
    assert [what for what, _ in asked] == ["model", "dataset", "dataset"]
    assert sent == []  # the engine was asked nothing
    assert w.session.model.spec == "demo" and w.session.data.spec == "demo"
    assert w.model_tab.data_picker.demo.isChecked()  # the picker shows the data in use
    assert len(w.session.runs) == 1


def test_new_project_answer_starts_empty_then_opens_the_model(make_window, qtbot, tmp_path):
    w = make_window()
    open_demo(w, qtbot)
    run_recipe(w, qtbot, "int8")
    asked_answers(w, "new_project")
    w.project.ask_unsaved = lambda: "discard"
    model, _data = user_files(tmp_path)
    sent = spy_submit(w)
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        assert not w.open_model(str(model))  # not in this project: in a new one
    assert [p["model"] for name, p in sent if name == "inspect"] == [str(model)]
    assert w.session.runs == [] and w.project.project.runs == []
    assert w.session.model.spec == str(model)
    assert w.tabs.currentIndex() == MODEL_TAB


def test_no_question_without_runs_or_for_the_same_model(make_window, qtbot, tmp_path):
    w = make_window()
    asked = asked_answers(w, "cancel")
    open_demo(w, qtbot)
    model, data = user_files(tmp_path)
    open_user_model(w, qtbot, model, data)  # no runs yet: nothing to keep apart
    run_recipe(w, qtbot, "r")
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        assert w.open_model(str(model))  # the same model again
    assert asked == []


def test_the_budget_is_the_projects_and_reaches_every_tab(make_window, qtbot, tmp_path):
    w = make_window()
    open_demo(w, qtbot)
    assert w.project.save_as(tmp_path / "b.fwproj")
    assert w.session.accuracy_budget == 1.0
    got = {"compress": [], "results": []}
    for key, tab in (("compress", w.compress_tab), ("results", w.results_tab)):
        own = getattr(tab, "set_accuracy_budget", None)

        def record(pts, key=key, own=own):
            got[key].append(pts)
            if own is not None:
                own(pts)

        tab.set_accuracy_budget = record
    w.results_tab.budgetChanged.emit(2.5)
    assert w.project.project.accuracy_budget == 2.5 == w.session.accuracy_budget
    assert got == {"compress": [2.5], "results": [2.5]}
    assert w.isWindowModified()
    assert w.project.save()
    assert json.loads((tmp_path / "b.fwproj").read_text())["accuracy_budget"] == 2.5
    w.close()
    w2 = make_window()
    seen = []
    w2.results_tab.set_accuracy_budget = seen.append
    assert w2.project.open(tmp_path / "b.fwproj")
    assert w2.session.accuracy_budget == 2.5 and seen[-1] == 2.5
