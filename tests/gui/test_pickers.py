"""Issue 12, item 3: dataset pickers that work.

Each dataset kind opens its own picker (a folder picker for image folders), switching kind
never snaps back nor reuses another kind's path, the same model + data + split is checked
once, a user's model is never checked against the demo digits it was not given, and the
GUI's baseline job reuses the engine's on-disk baseline cache.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog


@pytest.fixture
def dialogs(monkeypatch):
    """Records which Qt file dialog opens (and what the picker showed meanwhile); each
    answer is popped from ``answers`` ("" = cancelled)."""
    calls: list[tuple[str, str]] = []
    answers: list[str] = []
    state = {"picker": None}

    def seen() -> str:
        picker = state["picker"]
        return picker.path.text() if picker is not None else ""

    def folder(_parent, _title, start="", *_a, **_k):
        calls.append(("folder", seen()))
        return answers.pop(0)

    def file(_parent, _title, start="", *_a, **_k):
        calls.append(("file", seen()))
        return answers.pop(0), ""

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(folder))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(file))
    return calls, answers, state


@pytest.fixture
def files(tmp_path):
    npz = tmp_path / "digits.npz"
    x = np.zeros((4, 8, 8, 1), np.uint8)
    np.savez(npz, x_train=x, y_train=np.arange(4), x_test=x, y_test=np.arange(4))
    images = tmp_path / "images"
    for cls in ("a", "b"):
        (images / cls).mkdir(parents=True)
    return str(npz), str(images)


def sent_jobs(window) -> list[tuple[str, dict]]:
    """Record every job the window submits from now on."""
    sent: list[tuple[str, dict]] = []
    submit = window.client.submit

    def record(name, params=None):
        sent.append((name, dict(params or {})))
        return submit(name, params)

    window.client.submit = record
    return sent


def settle(window, qtbot) -> None:
    """Wait until the dataset check and baseline of the current choice have answered."""
    tab = window.model_tab
    qtbot.waitUntil(
        lambda: all(j is None or j.done for j in (tab._data_job, tab._baseline_job)),
        timeout=10_000,
    )


def test_each_kind_opens_its_own_picker_and_never_snaps_back(demo_window, qtbot, dialogs, files):
    calls, answers, state = dialogs
    npz, images = files
    picker = demo_window.model_tab.data_picker
    state["picker"] = picker
    # .npz file: a file picker
    answers.append(npz)
    picker.npz.click()
    assert calls[-1][0] == "file"
    settle(demo_window, qtbot)
    assert demo_window.session.data.spec == npz and picker.npz.isChecked()
    # Image folder while the field holds the .npz path: a folder picker, and the field
    # never offers the .npz path as the folder
    answers.append(images)
    picker.folder.click()
    assert calls[-1] == ("folder", "")
    assert demo_window.session.data.spec == images
    settle(demo_window, qtbot)  # the engine's verdict arrives: no snap back to .npz
    assert picker.folder.isChecked() and not picker.npz.isChecked()
    assert picker.path.text() == images
    # Browse… on an image folder is a folder picker too
    answers.append(images)
    picker.browse.click()
    assert calls[-1][0] == "folder"
    # .npz again, cancelled: the buttons go back to the dataset in use
    answers.append("")
    picker.npz.click()
    assert calls[-1] == ("file", "")
    assert picker.folder.isChecked() and picker.path.text() == images
    assert demo_window.session.data.spec == images
    # Demo digits: no path left in the field, and the next .npz pick starts empty
    picker.demo.click()
    assert demo_window.session.data.spec == "demo" and picker.path.text() == ""
    answers.append(npz)
    picker.npz.click()
    assert calls[-1] == ("file", "")
    assert demo_window.session.data.spec == npz


def test_a_path_of_the_wrong_kind_is_refused_inline(demo_window, qtbot, files, dialogs):
    calls, answers, _ = dialogs
    npz, images = files
    picker = demo_window.model_tab.data_picker
    answers.append(images)
    picker.folder.click()
    settle(demo_window, qtbot)
    sent = sent_jobs(demo_window)
    picker.path.setText(npz)  # a file typed where a folder is expected
    picker.path.editingFinished.emit()
    assert picker.status.text().startswith("✗") and "not a folder" in picker.status.text()
    assert sent == [] and demo_window.session.data.spec == images


def test_the_same_model_data_and_split_are_checked_once(demo_window, qtbot, dialogs, files):
    """Clicks that do not change model, data, split or scaling ask the engine nothing; a new
    dataset is checked once and measured once, with the dataset's split."""
    calls, answers, _ = dialogs
    npz, _images = files
    w, tab = demo_window, demo_window.model_tab
    picker = tab.data_picker
    sent = sent_jobs(w)
    picker.demo.click()  # already the dataset in use
    picker.scale.activated.emit(picker.scale.currentIndex())  # the same scaling again
    tab.set_data("demo", w.session.data.scale)  # e.g. the Compress tab's picker
    w.compress_tab.data_picker.demo.click()
    qtbot.wait(50)
    assert sent == []
    assert w.session.baseline is not None  # the measured baseline stays
    answers.append(npz)
    picker.npz.click()
    settle(w, qtbot)
    picker.path.editingFinished.emit()  # focus leaves the unchanged field
    tab.set_data(npz, w.session.data.scale)
    picker.npz.click()  # the kind in use: no second picker either
    qtbot.wait(50)
    assert [name for name, _ in sent] == ["check_data", "baseline"]
    assert len(calls) == 1
    for _name, params in sent:
        assert params["data"] == npz
        assert (params["split_seed"], params["val_fraction"]) == (0, 0.1)
    # a different scaling is a different input: checked again, once
    i = picker.scale.findData("1/255")
    picker.scale.setCurrentIndex(i)
    picker.scale.activated.emit(i)
    settle(w, qtbot)
    assert [name for name, _ in sent] == ["check_data", "baseline"] * 2
    assert sent[-1][1]["scale"] == "1/255"


def test_a_failed_check_can_be_retried(demo_window, qtbot, tmp_path):
    tab = demo_window.model_tab
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"not a zip")
    with qtbot.waitSignal(tab.dataChanged, check_params_cb=lambda d: d.error is not None):
        tab.set_data(str(bad), "auto")
    sent = sent_jobs(demo_window)
    with qtbot.waitSignal(tab.dataChanged, check_params_cb=lambda d: d.error is not None):
        tab.set_data(str(bad), "auto")  # the user fixed the file and picks it again
    assert [n for n, _ in sent] == ["check_data"]


def test_a_users_model_is_never_checked_on_the_demo_digits(demo_window, qtbot, tmp_path):
    w, tab = demo_window, demo_window.model_tab
    model = tmp_path / "mine.keras"
    model.write_bytes(b"x")
    sent = sent_jobs(w)
    with qtbot.waitSignal(tab.dataChanged, timeout=5000):
        w.open_model(str(model))
    assert w.session.model.spec == str(model)
    assert [n for n, _ in sent] == ["inspect"]  # no check_data, no baseline on the digits
    assert w.session.data.spec == "" and w.session.baseline is None
    picker = tab.data_picker
    assert not any(b.isChecked() for b in picker.buttons.values())
    assert "Choose this model's dataset" in picker.status.text()
    assert "Choose a dataset" in tab.baseline_status.text()
    # the user may still pick the demo digits explicitly
    with qtbot.waitSignal(tab.baselineChanged, check_params_cb=lambda b: b is not None):
        picker.demo.click()
    assert [(n, p.get("data")) for n, p in sent[1:]] == [
        ("check_data", "demo"),
        ("baseline", "demo"),
    ]
    # ...and opening the same model again keeps that explicit choice
    with qtbot.waitSignal(tab.baselineChanged, check_params_cb=lambda b: b is not None):
        tab.open_model(str(model))
    assert w.session.data.spec == "demo"


def test_a_fresh_window_asks_for_data_for_a_users_model(window, qtbot, tmp_path, files):
    npz, _ = files
    model = tmp_path / "mine.keras"
    model.write_bytes(b"x")
    sent = sent_jobs(window)
    with qtbot.waitSignal(window.model_tab.dataChanged, timeout=5000):
        window.open_model(str(model))
    assert [n for n, _ in sent] == ["inspect"] and window.session.data.spec == ""
    # a dataset dropped before or after: checked as usual
    with qtbot.waitSignal(
        window.model_tab.baselineChanged, timeout=5000, check_params_cb=lambda b: b is not None
    ):
        window.model_tab.set_data(npz, "auto")
    assert [n for n, _ in sent] == ["inspect", "check_data", "baseline"]


def test_reset_is_a_fresh_launch(demo_window, qtbot, dialogs, files):
    calls, answers, state = dialogs
    npz, images = files
    tab = demo_window.model_tab
    state["picker"] = tab.data_picker
    answers.append(images)
    tab.data_picker.folder.click()
    settle(demo_window, qtbot)
    tab.reset()
    assert tab.table.rowCount() == 0 and "No model yet" in tab.title.text()
    assert tab.layers_stack.currentIndex() == 0
    assert tab.baseline_labels["accuracy"].text() == "—"
    assert tab.data_picker.demo.isChecked() and tab.data_picker.path.text() == ""
    assert tab.effects_note.text() == ""
    assert all(j is None for j in (tab._inspect_job, tab._data_job, tab._baseline_job))
    # the old folder is not offered again as anything
    answers.append("")
    tab.data_picker.npz.click()
    assert calls[-1] == ("file", "")
    assert tab.data_picker.demo.isChecked()


def test_the_gui_baseline_job_reuses_the_engine_cache(demo_window, qtbot, monkeypatch, tmp_path):
    """The params the Model tab sends for the baseline go through ``prepare`` and its
    on-disk cache: the baseline is measured once, then reused (the engine logs which)."""
    import engine.pipeline.prepare as prepare_module
    from engine.core.events import Reporter
    from engine.service.jobs import JOBS

    w = demo_window
    sent = sent_jobs(w)
    tab = w.model_tab
    with qtbot.waitSignal(tab.baselineChanged, check_params_cb=lambda b: b is not None):
        tab.set_data("demo", "1/255")
    params = [p for n, p in sent if n == "baseline"][0]
    monkeypatch.setenv("FEATHERWEIGHT_CACHE_DIR", str(tmp_path / "cache"))  # empty cache
    measured = []
    real_measure = prepare_module.measure_baseline
    monkeypatch.setattr(
        prepare_module,
        "measure_baseline",
        lambda *a, **k: measured.append(1) or real_measure(*a, **k),
    )
    logs: list[str] = []

    def on_event(ev):
        if ev.get("type") == "log":
            logs.append(str(ev.get("message", "")))

    first = JOBS["baseline"](params, Reporter(on_event))
    second = JOBS["baseline"](params, Reporter(on_event))
    assert len(measured) == 1
    assert any("reused the measurement cached" in m for m in logs)
    assert second["accuracy"] == first["accuracy"]
    assert second["tflite_bytes"] == first["tflite_bytes"]


def test_picker_alone_uses_the_kind_dialog(qtbot, files):
    """The injectable chooser gets the kind; Enter in an unchanged field emits nothing."""
    from gui.data_picker import DataPicker
    from gui.state import DataChoice

    npz, images = files
    picker = DataPicker()
    qtbot.addWidget(picker)
    asked: list[str] = []
    picker.choose_path = lambda kind, start: (
        asked.append(kind) or (images if kind == "folder" else npz)
    )
    emitted: list[tuple[str, str]] = []
    picker.changed.connect(lambda s, sc: emitted.append((s, sc)))
    picker.show_choice(DataChoice(spec=npz))
    assert picker.npz.isChecked() and picker.path.text() == npz
    picker.folder.click()
    assert asked == ["folder"] and emitted == [(images, "auto")]
    picker.show_choice(DataChoice(spec=images))
    picker.path.setFocus()
    qtbot.keyClick(picker.path, Qt.Key.Key_Return)
    assert emitted == [(images, "auto")]
