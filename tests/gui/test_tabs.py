"""The three tabs driven through a fake worker that plays recorded engine events."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from engine.core.errors import RecipeError
from engine.pipeline.recipe import STEP_ORDER, STEP_SPECS, validate_recipe
from gui.compress_tab import REVIEW, RUN, SETTINGS
from gui.results_tab import ResultsTab
from gui.state import RunRecord, Session
from tests.gui.conftest import child_pids

RECORDINGS = Path(__file__).parent / "recordings"


def recorded(job: str) -> dict:
    """The result the real engine gave for ``job`` when the recordings were made."""
    for line in (RECORDINGS / f"{job}.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["type"] == "result":
            return ev["result"]
    raise AssertionError(f"no result in the {job} recording")


def recorded_metrics() -> dict:
    return recorded("compress")


def run_to_end(window, qtbot, timeout=10_000) -> RunRecord:
    tab = window.compress_tab
    with qtbot.waitSignal(tab.runFinished, timeout=timeout) as blocker:
        run = tab.start_run()
        assert run is not None, tab.message.text()
    return blocker.args[0]


# -- start-up -----------------------------------------------------------------------------
def test_window_and_gui_import_do_not_import_tensorflow(tmp_path):
    """The GUI process never imports TensorFlow, even with the real worker starting."""
    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtCore import QSettings\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "import gui.app\n"
        "from gui.main_window import MainWindow\n"
        f"s = QSettings({str(tmp_path / 's.ini')!r}, QSettings.Format.IniFormat)\n"
        "w = MainWindow(settings=s)\n"
        "w.show(); app.processEvents()\n"
        "w.open_demo(); app.processEvents()\n"
        "w.shutdown()\n"
        "print('TF' if any(m == 'tensorflow' or m.startswith('tensorflow.') for m in sys.modules)"
        " else 'NO-TF')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TF")


def test_status_bar_shows_engine_starting_then_ready(make_window, qtbot):
    w = make_window("--ready-delay", "0.3", wait_ready=False)
    assert "starting engine" in w.engine_label.text()
    qtbot.waitUntil(lambda: "engine ready" in w.engine_label.text(), timeout=5000)
    assert "TensorFlow 2.21.0" in w.engine_label.text()


def test_about_box_shows_versions_from_the_worker(window):
    box = window.show_about()
    text = box.text()
    assert "2.21.0" in text and "0.8.1" in text and "Featherweight 0.1.0" in text
    box.close()


# -- Model tab ----------------------------------------------------------------------------
def test_open_demo_fills_layers_totals_data_and_baseline(demo_window):
    tab = demo_window.model_tab
    report, data, base = recorded("inspect"), recorded("check_data"), recorded("baseline")
    assert tab.table.rowCount() == len(report["layers"]) == 6
    assert tab.table.item(0, 0).text() == "conv1" and tab.table.item(0, 1).text() == "Conv2D"
    assert tab.table.item(0, 2).text() == "(None, 8, 8, 32)"
    assert tab.table.item(4, 3).text() == "131,200"
    assert tab.table.item(4, 4).text() == "✓" and tab.table.item(4, 4).toolTip() == "prunes kernel"
    assert tab.table.item(2, 4).text() == "·"  # pooling: nothing to prune
    assert tab.totals["params"].text() == "151,306"
    assert tab.totals["macs"].text() == f"{report['totals']['macs']:,}"
    assert tab.totals["float32"].text() == "591.0 KB"
    assert tab.totals["output"].text() == "softmax over 10 classes"
    assert (
        f"{data['n_train']} train / {data['n_val']} validation / {data['n_test']} test"
        in tab.data_picker.status.text()
    )
    assert tab.baseline_labels["accuracy"].text() == f"{base['accuracy'] * 100:.2f} %"
    assert demo_window.session.baseline == base


def test_corrupt_model_shows_the_engine_message_and_keeps_the_app(window, qtbot, tmp_path):
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"PK\x03\x04garbage")
    with qtbot.waitSignal(window.errors.reported, timeout=5000) as blocker:
        window.open_model(str(bad))
    problem = blocker.args[0]
    assert problem.title == "Cannot open corrupt.keras"
    assert "not a readable Keras model" in problem.message
    assert problem.details  # expandable details
    assert window.session.model is None
    assert "No model yet" in window.model_tab.title.text()


@pytest.mark.parametrize("trust", [True, False])
def test_lambda_model_loads_only_after_explicit_trust(window, qtbot, tmp_path, trust):
    asked = []
    window.model_tab.confirm_unsafe = lambda msg: asked.append(msg) or trust
    path = tmp_path / "with_lambda.h5"
    path.write_bytes(b"x")
    if trust:
        with qtbot.waitSignal(window.model_tab.modelChanged, timeout=5000):
            window.open_model(str(path))
        assert window.session.model.allow_unsafe is True
        assert "trusted this file" in window.model_tab.subtitle.text()
    else:
        job = window.model_tab.open_model(str(path))
        qtbot.waitUntil(lambda: job.done, timeout=5000)
        assert window.session.model is None
    assert len(asked) == 1 and "Lambda" in asked[0]


def test_recent_files_and_last_folder_are_remembered(window, qtbot, tmp_path, qsettings):
    model = tmp_path / "models" / "net.keras"
    model.parent.mkdir()
    model.write_bytes(b"x")
    with qtbot.waitSignal(window.model_tab.modelChanged, timeout=5000):
        window.open_model(str(model))
    assert window.settings.recent_models()[0] == str(model)
    assert window.settings.last_folder("model") == str(model.parent)
    window._fill_recent()
    assert str(model) in [a.text() for a in window.recent_menu.actions()]


def test_dropping_a_model_file_opens_it(window, qtbot, tmp_path):
    model = tmp_path / "dropped.keras"
    model.write_bytes(b"x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(model))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.model_tab.modelChanged, timeout=5000) as blocker:
        window.dropEvent(event)
    assert blocker.args[0].spec == str(model)


def test_dataset_error_is_shown_inline(demo_window, qtbot, tmp_path):
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"not a zip")
    tab = demo_window.model_tab
    with qtbot.waitSignal(
        tab.dataChanged, timeout=5000, check_params_cb=lambda d: d.error is not None
    ):
        tab.set_data(str(bad), "1/255")
    assert tab.data_picker.status.text().startswith("✗")
    assert "not a readable" in tab.data_picker.status.text()
    assert demo_window.compress_tab.can_run().startswith("The dataset does not fit")


# -- Compress tab -------------------------------------------------------------------------
def test_settings_forms_are_built_from_step_specs_with_tooltips(window):
    tab = window.compress_tab
    for stype, spec in STEP_SPECS.items():
        for knob in spec.knobs:
            ed = tab.editors[stype][knob.name]
            assert knob.help in ed.widget.toolTip()
            expected = {"bool": QCheckBox, "choice": QComboBox, "int": QSpinBox}.get(knob.kind)
            if expected:
                assert isinstance(ed.widget, expected)
            elif knob.kind == "float":
                assert isinstance(ed.widget, (QDoubleSpinBox, QLineEdit))
            if knob.default is not None:
                assert ed.value() == knob.default, (stype, knob.name)


def test_invalid_order_shows_the_engine_message_inline(window):
    tab = window.compress_tab
    tab.go_to(SETTINGS)
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "qat")  # QAT without the final int8 conversion
    with pytest.raises(RecipeError) as exc:
        validate_recipe(tab.recipe_dict())
    assert tab.validation.text() == f"✗ {exc.value}"
    tab.technique_boxes["quantize"].setChecked(True)
    assert tab.validation.text().startswith("✓")


def test_out_of_range_learning_rate_is_refused_inline(window):
    tab = window.compress_tab
    tab.editors["prune"]["learning_rate"].widget.setText("5")
    assert "above the maximum" in tab.validation.text()
    tab.editors["prune"]["learning_rate"].widget.setText("abc")
    assert "must be a number" in tab.validation.text()


def test_recipe_save_and_load_round_trip(window, tmp_path):
    tab = window.compress_tab
    tab.technique_boxes["cluster"].setChecked(True)
    tab.editors["cluster"]["clusters"].widget.setValue(8)
    tab.editors["prune"]["target_sparsity"].widget.setValue(0.5)
    tab.recipe_name.setText("half")
    path = tmp_path / "half.json"
    assert tab.save_recipe_file(path)
    saved = json.loads(path.read_text())
    assert validate_recipe(saved).to_dict() == saved
    assert [s["type"] for s in saved["steps"]] == ["prune", "cluster", "quantize"]
    tab.technique_boxes["cluster"].setChecked(False)
    tab.recipe_name.setText("other")
    assert tab.load_recipe_file(path)
    assert tab.recipe_dict()["name"] == "half"
    assert validate_recipe(tab.recipe_dict()).to_dict() == saved


def test_bad_recipe_file_is_reported(window, qtbot, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema_version": 1, "steps": [{"type": "prune", "target_sparsity": 1.5}]}')
    with qtbot.waitSignal(window.errors.reported, timeout=2000) as blocker:
        assert not window.compress_tab.load_recipe_file(path)
    assert "above the maximum" in blocker.args[0].message


def test_wizard_run_updates_progress_charts_log_and_results(demo_window, qtbot):
    w = demo_window
    tab = w.compress_tab
    tab.go_to(REVIEW)
    assert "Demo model" in tab.summary.text()
    fractions = []
    with qtbot.waitSignal(tab.runFinished, timeout=10_000) as blocker:
        qtbot.mouseClick(tab.next_button, Qt.MouseButton.LeftButton)  # "Run ▶"
        assert tab.stack.currentIndex() == RUN
        tab.job.progress.connect(lambda _e: fractions.append(tab.progress.value()))
    run = blocker.args[0]
    assert run.status == "finished"
    assert fractions == sorted(fractions) and tab.progress.value() == 1000
    assert "est_gzip_bytes" in run.series and len(run.series["val_accuracy"]) == 2
    qtbot.waitUntil(lambda: tab.charts.points_drawn == sum(map(len, run.series.values())))
    assert "Pruning" in tab.log.toPlainText() and "pruning 4 layer(s)" in tab.log.toPlainText()
    assert f"{recorded_metrics()['ratio_gzip']:.2f}×" in tab.stage_label.text()
    # Results tab: the row shows the numbers of metrics.json
    m = json.loads((Path(run.out_dir) / "metrics.json").read_text())
    res = w.results_tab
    row = res.rows.index(run)
    cells = [res.table.item(row, c).text() for c in range(res.table.columnCount())]
    assert cells[2] == f"{m['compressed']['accuracy'] * 100:.2f} %"
    assert cells[3] == f"{m['compressed']['keras_accuracy'] * 100:.2f} %"
    assert cells[7] == f"{m['ratio_raw']:.2f}×" and cells[8] == f"{m['ratio_gzip']:.2f}×"
    assert cells[9] == f"{m['compressed']['sparsity'] * 100:.1f} %"
    assert res.table.item(0, 0).text() == "Baseline"
    assert len(res.runs_scatter.data) == 1 and len(res.base_scatter.data) == 1
    assert list(res.bars.opts["height"]) == pytest.approx(
        [v * 100 for v in m["compressed"]["per_layer_sparsity"].values()]
    )


def test_second_run_is_refused_politely_while_one_runs(make_window, qtbot):
    w = make_window("--delay", "0.05")
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.open_demo()
    tab = w.compress_tab
    first = tab.start_run()
    assert first is not None
    assert tab.start_run() is None
    assert "already running" in tab.message.text()
    # meanwhile the user moves around the app
    w.tabs.setCurrentIndex(2)
    w.tabs.setCurrentIndex(0)
    box = w.show_about()
    box.close()
    with qtbot.waitSignal(tab.runFinished, timeout=20_000):
        pass
    assert [r.status for r in w.session.runs] == ["finished"]


def test_cancel_mid_run_keeps_no_result(make_window, qtbot):
    w = make_window("--delay", "0.05")
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    tab = w.compress_tab
    run = tab.start_run()
    with qtbot.waitSignal(tab.job.metric, timeout=10_000):
        pass
    with qtbot.waitSignal(tab.runFinished, timeout=5000):
        qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert run.status == "cancelled"
    assert "Cancelled" in tab.stage_label.text()
    assert tab.progress.value() == 0  # issue 12: the bar does not stay at 40 %
    assert w.results_tab.rows == [None]  # only the baseline
    again = run_to_end(w, qtbot, timeout=20_000)
    assert again.status == "finished"


def test_worker_crash_mid_run_is_reported_and_the_app_recovers(demo_window, qtbot):
    w = demo_window
    first = run_to_end(w, qtbot)
    tab = w.compress_tab
    old_pid = w.client.worker_pid
    run = tab.start_run()
    with qtbot.waitSignal(w.errors.reported, timeout=5000) as blocker:
        w.client.kill_worker()
    assert "engine" in blocker.args[0].message.lower()
    qtbot.waitUntil(lambda: run.status == "failed", timeout=5000)
    qtbot.waitUntil(
        lambda: w.client.worker_pid != old_pid and w.client.state == "ready", timeout=10_000
    )
    assert "engine ready" in w.engine_label.text() and old_pid not in child_pids()
    assert first.status == "finished" and first in w.results_tab.rows  # nothing lost
    assert run_to_end(w, qtbot).status == "finished"


def test_worker_exception_goes_to_the_one_error_path(window, qtbot):
    job = window.client.submit("fail")
    with qtbot.waitSignal(job.failed, timeout=5000) as blocker:
        pass
    window.errors.report("Engine error", blocker.args[0]["message"], blocker.args[0]["details"])
    assert window.errors.problems[-1].details.startswith("Traceback")


def test_excepthooks_route_to_the_error_reporter(window, qtbot):
    errors = window.errors
    errors.install_hooks()
    try:
        try:
            raise ValueError("boom in a slot")
        except ValueError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        t = threading.Thread(target=lambda: 1 / 0)
        with qtbot.waitSignal(errors.reported, timeout=3000) as blocker:
            t.start()
            t.join()
    finally:
        errors.uninstall_hooks()
    assert errors.problems[0].message == "ValueError: boom in a slot"
    assert "ZeroDivisionError" in blocker.args[0].message
    assert "Traceback" in blocker.args[0].details


# -- Results tab on a plain state object -------------------------------------------------
def finished_run(tmp_path, name="#1 prune-int8") -> RunRecord:
    out = tmp_path / "run1"
    out.mkdir()
    (out / "model.tflite").write_bytes(b"TFL3-data")
    (out / "model.keras").write_bytes(b"PK-data")
    return RunRecord(
        id="run-1",
        name=name,
        recipe=recorded_metrics()["recipe"],
        model="demo",
        data="demo",
        out_dir=str(out),
        status="finished",
        metrics=recorded_metrics(),
    )


def test_results_tab_from_a_finished_run_and_exports(qtbot, tmp_path):
    from gui.errors import ErrorReporter

    run = finished_run(tmp_path)
    session = Session(runs=[run])
    tab = ResultsTab(session, ErrorReporter())
    qtbot.addWidget(tab)
    tab.resize(1100, 700)
    tab.show()
    assert tab.table.rowCount() == 2
    m = run.metrics
    assert tab.table.item(1, 6).text() == f"{m['compressed']['tflite_gzip_bytes'] / 1024:.1f} KB"
    assert tab.table.item(0, 6).text() == f"{m['baseline']['tflite_gzip_bytes'] / 1024:.1f} KB"
    assert tab.table.item(1, 10).text().endswith("ms")
    assert tab.selected_run() is run
    dest = tmp_path / "exported.tflite"
    assert tab.export_artifact("model.tflite", dest) and dest.read_bytes() == b"TFL3-data"
    assert tab.export_artifact("model.keras", tmp_path / "m.keras")
    csv_path = tmp_path / "t.csv"
    assert tab.export_csv_file(csv_path)
    rows = list(csv.reader(csv_path.open()))
    assert rows[0][0] == "run" and rows[2][0] == run.name
    assert float(rows[2][8]) == run.metrics["ratio_gzip"]
    assert float(rows[2][5]) == run.metrics["compressed"]["tflite_bytes"]
    png = tmp_path / "c.png"
    assert tab.export_png_file(png) and png.read_bytes()[:4] == b"\x89PNG"


# -- window conventions -------------------------------------------------------------------
def test_close_while_running_asks_then_stops_everything(make_window, qtbot):
    w = make_window("--delay", "0.2")
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.open_demo()
    run = w.compress_tab.start_run()
    qtbot.waitUntil(lambda: w.compress_tab.job.state == "running", timeout=10_000)
    pid = w.client.worker_pid
    w.confirm_close = lambda: False
    assert not w.close()
    assert w.isVisible() and w.compress_tab.running
    w.confirm_close = lambda: True
    w.project.ask_unsaved = lambda: "discard"  # the unsaved-project question (issue 4)
    assert w.close()
    assert not w.client.is_alive()
    assert pid not in child_pids()
    assert run.status == "cancelled"


def test_window_geometry_is_remembered(make_window, qtbot):
    w = make_window()
    w.resize(760, 560)  # inside the offscreen screen (800x600), which restore clamps to
    size = (w.width(), w.height())
    w.close()
    w2 = make_window()
    assert (w2.width(), w2.height()) == size != (1280, 800)


def test_demo_argument_opens_the_demo_and_project_path_is_kept(qtbot, qsettings, tmp_path):
    from gui.app import create_window
    from tests.gui.conftest import fake_worker_command

    w = create_window(
        ["--demo", str(tmp_path / "p.fwproj")],
        settings=qsettings,
        worker_command=fake_worker_command(),
        runs_dir=tmp_path,
    )
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(
            w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
        ):
            pass
        assert w.session.model.spec == "demo"
        assert w.session.project_path == str(tmp_path / "p.fwproj")
    finally:
        w.shutdown()


def test_a_stored_session_restores_all_tabs(window, tmp_path, qtbot):
    """What a reopened project needs: hand the window a session, every tab shows it."""
    run = finished_run(tmp_path)
    run.series = {"val_accuracy": [(1.0, 0.95), (2.0, 0.97)], "sparsity": [(1.0, 0.5), (2.0, 0.8)]}
    restored = RunRecord.from_dict(json.loads(json.dumps(run.to_dict())))
    assert restored.series == run.series
    from gui.state import DataChoice, ModelInfo

    session = Session(
        model=ModelInfo("demo", recorded("inspect")),
        data=DataChoice("demo", "auto", recorded("check_data")),
        baseline=recorded("baseline"),
        runs=[restored],
    )
    window.set_session(session)
    assert window.model_tab.table.rowCount() == 6
    assert window.model_tab.baseline_labels["accuracy"].text().endswith("%")
    assert window.results_tab.rows == [None, restored]
    assert window.compress_tab.charts.points_drawn == 4


# -- technique registry -------------------------------------------------------------------
@pytest.fixture
def identity_technique():
    """A tiny technique registered for one test (the registry is read when a tab is built)."""
    from engine.techniques import registry

    class Identity(registry.Technique):
        spec = registry.StepSpec(
            type="identity",
            label="Identity (test)",
            help="Leaves the model as it is.",
            knobs=(
                registry.Knob(
                    "strength", "float", 0.5, "How much nothing.", minimum=0.0, maximum=1.0
                ),
            ),
            order=45,
        )

        def apply(self, context, model, step):
            return registry.StepResult(model=model)

    registry.register(Identity())
    yield "identity"
    registry.unregister("identity")


def test_a_newly_registered_technique_gets_a_form_review_and_run(
    identity_technique, make_window, qtbot
):
    w = make_window()
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.open_demo()
    tab = w.compress_tab
    assert tab.technique_boxes["identity"].text() == "Identity (test)"
    assert tab.step_order == list(STEP_ORDER) and "identity" in tab.step_order
    editor = tab.editors["identity"]["strength"]
    assert isinstance(editor.widget, QDoubleSpinBox) and editor.value() == 0.5
    assert "How much nothing." in editor.widget.toolTip()
    tab.technique_boxes["identity"].setChecked(True)
    editor.set_value(0.7)
    assert not tab.step_boxes["identity"].isHidden()
    assert not tab.validation.text().startswith("✗"), tab.validation.text()
    tab.go_to(REVIEW)
    assert "Identity (test)</b>: strength 0.7" in tab.summary.text()
    sent = []
    submit = w.client.submit
    w.client.submit = lambda name, params=None: sent.append((name, params)) or submit(name, params)
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        assert tab.start_run() is not None, tab.message.text()
    steps = [p for n, p in sent if n == "compress"][0]["recipe"]["steps"]
    assert [s["type"] for s in steps] == ["prune", "identity", "quantize"]
    assert steps[1]["strength"] == 0.7
    from gui.results_tab import recipe_text

    assert "→ identity →" in recipe_text({"steps": steps})
