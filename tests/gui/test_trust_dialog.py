"""The trust question for a model whose file holds code: Cancel is the default (Enter and
Escape never trust), every unsafe item is named in the app's own words, and a model that could
not load even if trusted gets one message and no question; the window stays up."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QPushButton, QWidget

from gui.model_tab import TrustDialog

ITEMS = [
    {
        "layer": "sneaky",
        "class_name": "Lambda",
        "reason": "a Lambda layer runs Python code stored in the file",
        "text": "layer 'sneaky' (Lambda): a Lambda layer runs Python code stored in the file",
    },
    {
        "layer": "vocab",
        "class_name": "StringLookup",
        "reason": "its vocabulary is read from the file /etc/passwd when loaded",
    },
    {"layer": "twice", "class_name": "Doubler", "reason": "custom class from module 'mylib'"},
    {
        "layer": "",
        "class_name": "MyLoss",
        "reason": "custom class from module 'mylib.losses'",
        "where": "training config",
    },
]
ENGINE_HINT = "load it only if you trust the file: --allow-unsafe (CLI) / allow_unsafe=True"
FORBIDDEN = ("allow_unsafe", "allow-unsafe", "--", "(CLI)", "and 1 more", "and 2 more")


def visible_texts(w: QWidget) -> str:
    """Every text the user can see in ``w``: title, labels, buttons, table cells."""
    from PySide6.QtWidgets import QTableWidget

    parts = [w.windowTitle()]
    parts += [lab.text() for lab in w.findChildren(QLabel) if lab.isVisibleTo(w)]
    parts += [b.text() for b in w.findChildren(QPushButton) if b.isVisibleTo(w)]
    for t in w.findChildren(QTableWidget):
        for r in range(t.rowCount()):
            for c in range(t.columnCount()):
                item = t.item(r, c)
                parts.append(item.text() if item else "")
    return "\n".join(parts)


@pytest.fixture
def dialog(qtbot):
    d = TrustDialog(None, "net.h5", ITEMS, f"refusing to load net.h5: x; {ENGINE_HINT}")
    qtbot.addWidget(d)
    d.open()
    qtbot.waitExposed(d)
    return d


def test_cancel_is_the_default_button_and_has_the_focus(dialog):
    assert dialog.cancel_button.isDefault() and dialog.cancel_button.autoDefault()
    assert not dialog.trust_button.isDefault() and not dialog.trust_button.autoDefault()
    assert dialog.focusWidget() is dialog.cancel_button


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape])
def test_enter_and_escape_do_not_trust(dialog, qtbot, key):
    qtbot.keyClick(dialog.focusWidget() or dialog, key)
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Rejected


def test_enter_with_the_trust_button_focused_still_does_not_trust(dialog, qtbot):
    dialog.trust_button.setFocus()
    qtbot.keyClick(dialog.trust_button, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_only_the_trust_button_trusts(dialog, qtbot):
    qtbot.mouseClick(dialog.trust_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_every_item_is_named_in_the_apps_words(dialog):
    text = visible_texts(dialog)
    for item in ITEMS:
        for key in ("layer", "class_name", "reason"):
            assert item[key] in text
    assert "4 parts of this model" in text and "contains code" in text
    assert "training config" in text  # an item outside the layers says where it is
    assert "Trust and open" in text and "Cancel" in text
    for bad in FORBIDDEN:
        assert bad not in text, bad
    assert dialog.table.rowCount() == len(ITEMS)


def test_without_items_the_engine_message_is_shown_without_command_line_hints(qtbot):
    d = TrustDialog(
        None, "x.h5", [], f"refusing to load x.h5: layer 'l' (Lambda): runs; {ENGINE_HINT}"
    )
    qtbot.addWidget(d)
    d.show()
    text = visible_texts(d)
    assert "layer 'l' (Lambda): runs" in text and not d.table.isVisibleTo(d)
    for bad in FORBIDDEN:
        assert bad not in text, bad


# ---------------------------------------------------------------- the window, fake worker


def _recordings(tmp_path, **error):
    """A recordings folder whose ``inspect`` answers with this unsafe-model error."""
    rec = tmp_path / "rec"
    rec.mkdir()
    ev = {
        "type": "error",
        "kind": "unsafe_model",
        "message": f"refusing to load net.keras: layer 'sneaky' (Lambda): runs code; {ENGINE_HINT}",
        "details": "",
        **error,
    }
    (rec / "inspect.jsonl").write_text(json.dumps(ev) + "\n")
    return str(rec)


def _count_submits(window):
    submitted = []
    base = window.client.submit

    def submit(name, params=None):
        submitted.append((name, dict(params or {})))
        return base(name, params)

    window.client.submit = submit
    window.model_tab.client = window.client
    return submitted


def test_window_asks_naming_every_item_and_enter_cancels(make_window, qtbot, tmp_path):
    w = make_window("--recordings", _recordings(tmp_path, items=ITEMS, loadable_if_trusted=True))
    submitted = _count_submits(w)
    seen: dict = {}

    def answer(tries: int = 200):
        box = QApplication.activeModalWidget()
        if box is None and tries:
            QTimer.singleShot(50, lambda: answer(tries - 1))  # the question is not up yet
            return
        try:
            seen["type"] = type(box)
            seen["text"] = visible_texts(box) if box else ""
            seen["default"] = box.cancel_button.isDefault() if box else None
            target = box.focusWidget() or box
            qtbot.keyClick(target, Qt.Key.Key_Return)  # what a hurried user does
            seen["open_after_enter"] = box.isVisible()
        finally:
            if box is not None and box.isVisible():
                box.reject()

    QTimer.singleShot(50, answer)
    model = tmp_path / "net.keras"
    model.write_bytes(b"x")
    job = w.model_tab.open_model(str(model))
    qtbot.waitUntil(lambda: "type" in seen, timeout=10_000)
    assert job.done and job.error["items"] == ITEMS  # forwarded by the runner
    assert seen["type"] is TrustDialog and seen["default"] is True
    assert seen["open_after_enter"] is False
    for item in ITEMS:
        assert item["layer"] in seen["text"] and item["class_name"] in seen["text"]
    for bad in FORBIDDEN:
        assert bad not in seen["text"], bad
    qtbot.wait(200)  # a second inspect (trusted) would be submitted by now
    assert [name for name, _ in submitted] == ["inspect"]
    assert w.session.model is None and w.errors.problems == []


def test_untranslatable_model_gets_one_message_and_no_question(make_window, qtbot, tmp_path):
    why = "cannot import this Keras 3 model: 'lam' (Lambda): only lambdas can be imported"
    w = make_window(
        "--recordings",
        _recordings(tmp_path, items=ITEMS[:1], loadable_if_trusted=False, trust_problem=why),
    )
    asked = []
    w.model_tab.confirm_unsafe = lambda msg: asked.append(msg) or True
    submitted = _count_submits(w)
    model = tmp_path / "net.keras"
    model.write_bytes(b"x")
    w.model_tab.open_model(str(model))
    qtbot.waitUntil(lambda: len(w.errors.problems) == 1, timeout=10_000)
    qtbot.wait(200)
    assert asked == [] and [name for name, _ in submitted] == ["inspect"]
    (problem,) = w.errors.problems
    assert problem.title == "Cannot open net.keras"
    assert why in problem.message and "even if you trust it" in problem.message
    assert "\n" not in problem.message
    assert "sneaky" in problem.details  # the items are listed under "Show Details"
    for bad in ("allow_unsafe", "allow-unsafe"):
        assert bad not in problem.message + problem.details
    # The window stays up and the engine keeps working.
    assert w.isVisible() and w.session.model is None
    job = w.client.submit("sleep", {"seconds": 0.1})
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    assert job.state == "finished"


def test_trusting_reopens_with_code_allowed(make_window, qtbot, tmp_path):
    w = make_window("--recordings", _recordings(tmp_path, items=ITEMS, loadable_if_trusted=True))
    questions = []
    # Trust the first time, refuse the second (the fake worker refuses again).
    w.model_tab.confirm_unsafe = lambda msg: questions.append(msg) or len(questions) == 1
    submitted = _count_submits(w)
    model = tmp_path / "net.keras"
    model.write_bytes(b"x")
    w.model_tab.open_model(str(model))
    qtbot.waitUntil(lambda: len(questions) == 2, timeout=10_000)
    assert [p.get("allow_unsafe") for _, p in submitted] == [False, True]
    assert all(i["layer"] in questions[0] for i in ITEMS)  # the summary names every item
    assert "allow" not in questions[0].lower()
