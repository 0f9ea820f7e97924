"""Issue 13 in the Results tab: a run's int8 check (layers kept float and why, float vs int8
validation accuracy, full-integer or not), its conversion notes, an honest deploy verdict for
a model that is not full-integer, and the Keras 3 export (button, copy, confirmation,
notes).

``report_kept_float.json`` is the real report.json of ``featherweight compress`` on the
zoo's tabular MLP (tests/zoo/builders.py ``tabular_mlp``) with resources/recipes/
int8_ptq.json: its first-layer Normalization is kept in float, so the file is int8 with float
MUL/SUB ops. ``KEPT_FLOAT_CHECK`` is that run's ``metrics["compressed"]["int8_check"]``.
``report_int8.json`` is a full-integer report written before reports had ``full_integer``.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from gui.state import RunRecord, Session

RECORDINGS = Path(__file__).resolve().parent / "recordings"
NORM_REASON = (
    "first-layer Normalization on raw features whose ranges differ 15,116x: one int8 input "
    "scale cannot carry them"
)
KEPT_FLOAT_CHECK = {
    "split": "val",
    "float_accuracy": 1.0,
    "pure_int8_accuracy": None,
    "int8_accuracy": 1.0,
    "drop_points": 0.0,
    "max_drop_points": 2.0,
    "keep_float": ["normalization"],
    "reasons": {"normalization": NORM_REASON},
    "ranked_layers": [],
    "attempts": [{"keep_float": ["normalization"], "accuracy": 1.0}],
    "full_integer": False,
    "float_ops": ["MUL", "SUB"],
    "debugger_seconds": None,
    "warnings": [
        "'normalization' (Normalization) kept in float and the input stays float32: the "
        "features' ranges differ 15,116x and one int8 input scale cannot carry them",
        "the model is not full-integer (float ops ['MUL', 'SUB']); TFLite Micro and "
        "int8-only accelerators need full-integer",
    ],
}
# What the QuantizationDebugger path writes: pure int8 lost 31.5 points, two layers kept.
DEBUGGER_CHECK = {
    **KEPT_FLOAT_CHECK,
    "float_accuracy": 0.93,
    "pure_int8_accuracy": 0.615,
    "int8_accuracy": 0.925,
    "drop_points": 0.5,
    "keep_float": ["dense_1", "dense_2"],
    "reasons": {
        "dense_1": "int8 error 41.20 x its quantization step (QuantizationDebugger)",
        "dense_2": "int8 error 12.03 x its quantization step (QuantizationDebugger)",
    },
    "float_ops": ["FULLY_CONNECTED"],
    "debugger_seconds": 1.2,
    "warnings": [
        "int8 lost 31.5 points on the validation split (over 2); kept in float: 'dense_1' "
        "(...); 'dense_2' (...); now 0.5 points",
        "the model is not full-integer (float ops ['FULLY_CONNECTED']); TFLite Micro and "
        "int8-only accelerators need full-integer",
    ],
}


def make_run(
    tmp_path: Path,
    name: str,
    report: str | None,
    check: dict | None,
    full_integer: bool | None,
    notes: list[str] | None = None,
    keras3: dict | None = None,
) -> RunRecord:
    out = tmp_path / name
    out.mkdir()
    (out / "model.tflite").write_bytes(b"TFL3" + bytes(64))
    if report:
        shutil.copyfile(RECORDINGS / report, out / "report.json")
    files = {"model": "model.tflite", "keras": None, "keras3": None}
    if keras3 is not None:
        (out / "model_keras3.keras").write_bytes(b"PK-keras3")
        files["keras3"] = "model_keras3.keras"
    metrics = {
        "baseline": {"accuracy": 0.925, "tflite_gzip_bytes": 4500, "tflite_bytes": 6276},
        "compressed": {
            "accuracy": 0.925,
            "tflite_gzip_bytes": 2800,
            "tflite_bytes": 5792,
            "format": "int8" if full_integer is not None else "float32",
            "int8_check": copy.deepcopy(check),
            "full_integer": full_integer,
            "conversion_notes": list(notes or []),
        },
        "accuracy_drop": 0.0,
        "ratio_gzip": 1.6,
        "ratio_raw": 1.08,
        "files": files,
        "keras3_export": keras3,
        "recipe": {"name": "int8-ptq", "steps": [{"type": "quantize", "mode": "int8"}]},
    }
    return RunRecord(
        id=name,
        name=name,
        recipe=dict(metrics["recipe"]),
        model="/models/tabular_mlp.keras",
        data="/data/tabular.npz",
        out_dir=str(out),
        status="finished",
        metrics=metrics,
    )


@pytest.fixture
def panel(qtbot):
    from gui.deploy_panel import DeployPanel
    from gui.errors import ErrorReporter

    p = DeployPanel(ErrorReporter())
    qtbot.addWidget(p)
    p.resize(1250, 520)
    p.show()
    return p


def test_kept_float_run_says_why_and_is_not_tflm_ready(panel, tmp_path):
    from gui.deploy_panel import deploy_badge, load_report

    run = make_run(tmp_path, "tab", "report_kept_float.json", KEPT_FLOAT_CHECK, False)
    panel.set_run(run)
    assert panel.conversion_box.isVisible()
    text = panel.conversion_label.text()
    assert "⚠ Not full-integer: normalization kept in float (float ops MUL, SUB)" in text
    assert "TFLite Micro needs a full-integer model" in text
    assert (
        "int8 checked against float on the validation split: float 100.00 %, int8 with 1 "
        "layer in float 100.00 % (±0 pts; allowed 2.0 pts)" in text
    )
    assert f"<b>normalization</b> kept in float: {NORM_REASON}" in text
    assert "input stays float32" in text
    assert text.count("15,116x") == 1  # the engine's warning is not repeated
    tflm = panel.verdict_labels["tflite_micro"]
    assert "✗" in tflm.text() and "mixed int8/float" not in tflm.text()  # one short sentence
    assert "Not full-integer (float MUL, SUB): TFLite Micro needs a full-integer model" in (
        tflm.text()
    )
    assert "mixed int8/float" in tflm.toolTip()  # the engine's own words
    badge = deploy_badge(load_report(run), run.metrics)
    assert badge[0] == "⚠ not full-integer" and "normalization" in badge[2]
    assert "not full-integer" in panel.summary.text()
    panel.grab().save(str(tmp_path / "deploy-kept-float.png"))


def test_debugger_result_shows_pure_int8_and_each_layer(panel, tmp_path):
    run = make_run(tmp_path, "dbg", "report_kept_float.json", DEBUGGER_CHECK, False)
    panel.set_run(run)
    text = panel.conversion_label.text()
    assert (
        "float 93.00 %, pure int8 61.50 % (−31.5 pts), int8 with 2 layers in float 92.50 % "
        "(−0.5 pts; allowed 2.0 pts)" in text
    )
    assert "<b>dense_1</b> kept in float: int8 error 41.20 x" in text
    assert "<b>dense_2</b> kept in float" in text
    assert "int8 lost 31.5" not in text  # the lines above say it


def test_old_report_is_overruled_by_the_metrics(panel, tmp_path):
    """A report without ``full_integer`` says TFLite Micro is fine; the run's metrics say
    the file is not full-integer: the verdict follows the metrics."""
    from gui.deploy_panel import deploy_badge, load_report

    fine = make_run(tmp_path, "fine", "report_int8.json", None, None)
    assert deploy_badge(load_report(fine), fine.metrics)[0] == "✓ LiteRT + TFLM"
    run = make_run(tmp_path, "old", "report_int8.json", KEPT_FLOAT_CHECK, False)
    panel.set_run(run)
    assert deploy_badge(load_report(run), run.metrics)[0] == "⚠ not full-integer"
    tflm = panel.verdict_labels["tflite_micro"].text()
    assert "✗" in tflm and "Not full-integer" in tflm


def test_full_integer_and_float_runs(panel, tmp_path):
    check = dict(KEPT_FLOAT_CHECK, keep_float=[], reasons={}, full_integer=True, warnings=[])
    full = make_run(tmp_path, "full", "report_int8.json", check, True)
    panel.set_run(full)
    text = panel.conversion_label.text()
    assert "✓ Full-integer int8" in text and "int8 100.00 % (±0 pts; allowed 2.0 pts)" in text
    assert "✓" in panel.verdict_labels["tflite_micro"].text()
    flt = make_run(tmp_path, "float", "report_int8.json", None, None)
    panel.set_run(flt)
    assert not panel.conversion_box.isVisible() and panel.conversion_label.text() == ""
    assert not panel.export_keras3_button.isVisible()


def test_conversion_notes_and_keras3_notes_are_shown(panel, tmp_path):
    notes = ["LSTM 'lstm' converted with a fixed batch of 1 (LiteRT's fused sequence op)"]
    k3 = {
        "file": "model_keras3.keras",
        "weights": "qat_float",
        "max_abs_diff": 2e-7,
        "kernel_sparsity": 0.5,
        "layers_copied": 4,
        "notes": [],
    }
    run = make_run(tmp_path, "lstm", "report_int8.json", None, None, notes=notes, keras3=k3)
    panel.set_run(run)
    text = panel.conversion_label.text()
    assert f"ℹ {notes[0]}" in text
    assert "ℹ Keras 3 model written (model_keras3.keras; kernel sparsity 50.0 %" in text
    assert "QAT result exported as its float weights" in text
    assert panel.export_keras3_button.isVisible()


def test_export_keras3_model_is_copied_and_confirmed(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QUrl
    from PySide6.QtWidgets import QFileDialog, QMainWindow

    from gui.errors import ErrorReporter
    from gui.results_tab import ResultsTab

    k3 = {"file": "model_keras3.keras", "weights": "compressed", "notes": []}
    with_k3 = make_run(tmp_path, "k3", "report_int8.json", None, None, keras3=k3)
    plain = make_run(tmp_path, "plain", "report_int8.json", None, None)
    session = Session(runs=[plain, with_k3])
    exports = tmp_path / "exports"
    exports.mkdir()
    win = QMainWindow()
    qtbot.addWidget(win)
    tab = ResultsTab(session, ErrorReporter(), lambda _k: str(exports))
    win.setCentralWidget(tab)
    win.resize(1280, 800)
    win.show()
    tab.select_run(plain)
    assert not tab.export_keras3.isVisible() and not tab.deploy.export_keras3_button.isVisible()
    problems = []
    tab.errors.report = lambda title, message, details="": problems.append(message)
    assert not tab.export_keras3_file(exports / "x.keras")
    assert "no Keras 3 model" in problems[0] and not (exports / "x.keras").exists()

    tab.select_run(with_k3)
    assert tab.export_keras3.isVisible() and tab.export_keras3.isEnabled()
    asked = []

    def answer(parent, title, start, filt):
        asked.append((title, start))
        return start, filt

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    tab.lower_tabs.setCurrentWidget(tab.deploy)
    tab.deploy.export_keras3_button.click()  # the panel's button asks the tab
    dest = exports / "tabular_mlp-int8-ptq-keras3.keras"
    assert asked == [("Export Keras 3 model", str(dest))]
    assert dest.read_bytes() == b"PK-keras3"
    assert win.statusBar().currentMessage() == f"Exported {dest.name} to {exports}"
    opened = []
    tab.open_url = opened.append
    tab.show_folder_button.click()
    assert opened == [QUrl.fromLocalFile(str(exports))]
    tab.export_keras3.click()  # the bottom row's button does the same
    assert len(asked) == 2


def test_finish_line_says_not_full_integer(qtbot, tmp_path):
    from gui.compress_tab import _finished_text

    run = make_run(tmp_path, "fin", None, KEPT_FLOAT_CHECK, False)
    lines = _finished_text(run, 1.0).splitlines()
    assert lines[0].startswith("✓ gzip")
    assert lines[1] == (
        "⚠ Not full-integer (normalization kept in float): TFLite Micro needs full-integer."
    )
    plain = make_run(tmp_path, "plain", None, None, None)
    assert len(_finished_text(plain, 1.0).splitlines()) == 1
