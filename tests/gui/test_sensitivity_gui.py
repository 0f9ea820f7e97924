"""The Sensitivity view, the layer table's sensitivity columns, *Analyze* through the job
runner, the per-layer recipe and its wizard editor, and the analysis reopening with a project.

The document is the one the real engine gave for the demo (tests/gui/recordings/analyze.jsonl,
recorded by ``python tests/gui/record_events.py --analyze``); the fake worker replays it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.pipeline.recipe import validate_recipe
from engine.project import document as ep
from gui.compress_tab import SETTINGS
from gui.model_tab import COLUMNS, INT8_COL, SHARE_COL, TOLERATED_COL
from gui.per_layer_edit import PerLayerEdit
from gui.sensitivity_view import SensitivityView
from tests.gui.conftest import spy_submit

RECORDINGS = Path(__file__).parent / "recordings"
PRUNABLE = ["conv1", "conv2", "dense", "classifier"]


def analysis_doc() -> dict:
    for line in (RECORDINGS / "analyze.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["type"] == "result":
            return ev["result"]
    raise AssertionError("no result in the analyze recording")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Untitled workspaces go to a temporary folder, never the user's."""
    d = tmp_path / "userdata"
    monkeypatch.setenv(ep.DATA_DIR_ENV, str(d))
    return d


def test_the_view_draws_one_curve_per_pruned_layer_and_the_heat_map(qtbot):
    doc = analysis_doc()
    view = SensitivityView()
    qtbot.addWidget(view)
    assert view.stack.currentIndex() == 0 and "No sensitivity analysis" in view.empty.text()
    assert view.analyze_button.text() == "Analyze" and not view.recipe_button.isEnabled()
    view.show_document(doc)
    assert view.stack.currentIndex() == 1
    tabs = [view.tabs.tabText(i) for i in range(view.tabs.count())]
    assert tabs == [
        "Pruning curves",
        "Heat map",
        "Size per layer",
        "int8 error",
        "Clustering",
        "Filter pruning",
    ]
    assert list(view.curves["prune"]) == PRUNABLE
    assert list(view.curves["filters"]) == ["conv1", "conv2", "dense"]  # no curve: no line
    xs, ys = view.curves["prune"]["conv1"].getData()
    assert list(xs) == [0.0, 30.0, 50.0, 70.0, 80.0, 90.0, 95.0]  # 0 = the baseline
    assert ys[0] == pytest.approx(doc["baseline"]["accuracy"] * 100)
    # heat map: layers × sparsity grid, loss in points against the baseline (≥ 0)
    assert view.heat_names == PRUNABLE
    assert view.heat_values.shape == (4, 6)
    assert view.heat_image.image.shape == (6, 4)
    base = doc["baseline"]["accuracy"]
    at80 = doc["layers"][0]["prune"][3]
    assert at80["sparsity"] == 0.8
    assert view.heat_values[0, 3] == pytest.approx((base - at80["accuracy"]) * 100)
    assert view.heat_values.min() >= 0
    # selecting a layer draws it thick and fades the others
    view.select_layer("dense")
    assert view.curves["prune"]["dense"].opts["pen"].width() == 4
    assert view.curves["prune"]["conv1"].opts["pen"].color().alpha() < 255
    assert view._heat_frame.isVisible()


def test_table_columns_per_layer_recipe_and_editor(demo_window, qtbot):
    """One demo window (the expensive part) for the table, the recipe and the editor."""
    check_the_layer_table(demo_window)
    check_make_per_layer_recipe(demo_window)
    check_the_per_layer_editor_round_trip(demo_window)
    check_allocation_and_teacher_guided_knobs(demo_window)


def check_the_layer_table(w):
    tab = w.model_tab
    assert tab.table.item(0, TOLERATED_COL).text() == "—"  # not analysed yet
    doc = analysis_doc()
    w.session.analysis = doc
    tab.show_analysis(doc)
    assert COLUMNS[SHARE_COL] == "% of size" and COLUMNS[INT8_COL] == "int8 error"
    rows = {tab.table.item(r, 0).text(): r for r in range(tab.table.rowCount())}

    def col(c):
        return {n: tab.table.item(r, c).text() for n, r in rows.items()}

    # tolerated at 1 point: every milder grid value loses ≤ 1 point too (0.7 = one sample of 142)
    tab.max_loss.setValue(1.0)
    tolerated = col(TOLERATED_COL)
    assert [tolerated[n] for n in PRUNABLE] == ["70 %", "80 %", "50 %", "50 %"]
    assert tolerated["pool"] == "" and tolerated["flatten"] == ""
    tab.max_loss.setValue(5.0)
    assert [col(TOLERATED_COL)[n] for n in PRUNABLE] == ["80 %", "90 %", "95 %", "50 %"]
    share = col(SHARE_COL)
    assert share["dense"] == f"{doc['layers'][2]['share_bytes'] * 100:.1f} %" == "86.6 %"
    assert col(INT8_COL)["conv1"] == f"{doc['layers'][0]['int8_error']:.3g}"
    # a row selected in the table is highlighted in the charts
    tab.table.selectRow(rows["conv2"])
    assert tab.sensitivity.selected == "conv2"


def test_analyze_progress_cancel_and_reopen_with_the_project(make_window, qtbot, tmp_path):
    """Analyze waits for a dataset, runs the "analyze" job with progress and Cancel, is kept
    in the project and reopens with it without recomputing."""
    w = make_window("--delay", "0.02")
    tab, view = w.model_tab, w.model_tab.sensitivity
    assert not view.analyze_button.isEnabled() and tab.analyze() is None  # no model yet
    with qtbot.waitSignal(
        tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    sent = spy_submit(w)
    assert view.analyze_button.isEnabled()
    view.analyze_button.click()
    assert sent[-1] == (
        "analyze",
        {
            "model": "demo",
            "data": "demo",
            "scale": "auto",
            "allow_unsafe": False,
            "split_seed": 0,
            "val_fraction": 0.1,
        },
    )
    assert view.progress_row.isVisibleTo(view) and not view.analyze_button.isEnabled()
    qtbot.waitUntil(lambda: view.progress.value() > 0, timeout=5000)
    job = tab._analyze_job
    with qtbot.waitSignal(job.finished, timeout=5000):
        view.cancel_button.click()
    assert job.state == "cancelled"
    assert not view.progress_row.isVisibleTo(view) and w.session.analysis is None
    assert view.stack.currentIndex() == 0 and view.analyze_button.isEnabled()

    with qtbot.waitSignal(tab.analysisChanged, timeout=10_000) as blocker:
        view.analyze_button.click()
    assert blocker.args[0] == analysis_doc() == w.session.analysis
    assert view.stack.currentIndex() == 1 and tab.views.currentWidget() is view
    assert view.recipe_button.isEnabled() and view.analyze_button.text() == "Analyze again"
    assert w.isWindowModified()  # kept in the project: unsaved until saved

    path = tmp_path / "proj" / "digits.fwproj"
    path.parent.mkdir()
    assert w.project.save_as(path)
    saved = json.loads(path.read_text())
    assert len(saved["analyses"]) == 1
    stored = path.parent / "digits_files" / saved["analyses"][0]["artifact"]
    assert json.loads(stored.read_text()) == analysis_doc()
    w.close()

    w2 = make_window()
    sent = spy_submit(w2)
    assert w2.project.open(path)
    assert w2.session.analysis == analysis_doc()
    view = w2.model_tab.sensitivity
    assert view.stack.currentIndex() == 1 and list(view.curves["prune"]) == PRUNABLE
    assert w2.model_tab.table.item(4, TOLERATED_COL).text() == "50 %"  # dense at 1 point
    assert not [name for name, _p in sent if name == "analyze"]
    # no dataset any more: the analysis is not shown, and Analyze says what it needs
    w2.project.ask_new_comparison = lambda _what, _name: "new_comparison"
    w2.model_tab.set_data("", "auto")
    assert w2.session.analysis is None and view.stack.currentIndex() == 0
    assert not view.analyze_button.isEnabled()
    assert "Choose a dataset" in view.analyze_button.toolTip()
    # back to the analysed model + dataset: the kept analysis is shown again, not recomputed
    with qtbot.waitSignal(
        w2.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w2.choose_data("demo", "auto")
    assert w2.session.analysis == analysis_doc() and view.stack.currentIndex() == 1
    assert not [name for name, _p in sent if name == "analyze"]


def check_make_per_layer_recipe(w):
    doc = analysis_doc()
    w.session.analysis = doc
    w.model_tab.show_analysis(doc)
    w.model_tab.ask_recipe_options = lambda _doc: (0.8, "prune", True)
    recipe = w.model_tab.make_per_layer_recipe()
    assert recipe is not None, w.errors.problems
    ctab = w.compress_tab
    assert w.tabs.currentWidget() is ctab and ctab.current_page() == SETTINGS
    assert ctab.selected_steps() == ["prune", "quantize"]
    got = ctab.recipe_dict()
    prune = got["steps"][0]
    assert prune["target_sparsity"] == pytest.approx(0.8)
    per_layer = prune["per_layer"]
    assert sorted(per_layer) == sorted(PRUNABLE)
    # the size-weighted mean of the map is the global target (the engine's allocation)
    sizes = {e["name"]: e["prunable_params"] for e in doc["layers"]}
    mean = sum(per_layer[n] * sizes[n] for n in per_layer) / sum(sizes[n] for n in per_layer)
    assert mean == pytest.approx(0.8, abs=2e-3)
    # robust dense takes more than the fragile classifier
    assert per_layer["dense"] > per_layer["classifier"]
    assert got["steps"][1]["mode"] == "int8"
    validate_recipe(got)
    editor = ctab.editors["prune"]["per_layer"].widget
    assert isinstance(editor, PerLayerEdit) and editor.rows() == PRUNABLE


def check_the_per_layer_editor_round_trip(w):
    ctab = w.compress_tab
    ed = ctab.editors["prune"]["per_layer"].widget
    assert isinstance(ed, PerLayerEdit)
    assert ed.rows() == PRUNABLE  # the layers the prune step compresses
    ed.set_value(None)  # (filled by the per-layer recipe before)
    assert ed.value() is None and ctab.recipe_dict()["steps"][0]["per_layer"] is None
    ed.set_cell("conv1", "0.3")
    ed.set_cell("dense", "0.9")
    assert ctab.recipe_dict()["steps"][0]["per_layer"] == {"conv1": 0.3, "dense": 0.9}
    recipe = validate_recipe(ctab.recipe_dict())
    assert recipe.steps[0]["per_layer"] == {"conv1": 0.3, "dense": 0.9}
    assert not ctab.validation.text().startswith("✗"), ctab.validation.text()
    # a value out of range: red cell and the engine's message in the wizard
    ed.set_cell("conv2", "1.5")
    conv2 = ed.table.item(ed.rows().index("conv2"), 1)
    assert conv2.foreground().color().name() == "#b00020"
    assert ctab.validation.text().startswith("✗") and "conv2" in ctab.validation.text()
    ed.set_cell("conv2", "")
    # a loaded recipe fills the table, names the model lacks are kept and marked
    ctab.set_recipe(
        validate_recipe(
            {
                "schema_version": 3,
                "name": "x",
                "steps": [{"type": "prune", "per_layer": {"dense": 0.95, "gone": 0.5}}],
            }
        )
    )
    assert ed.value() == {"dense": 0.95, "gone": 0.5}
    assert ed.rows() == [*PRUNABLE, "gone"] and ed.unknown_names() == ["gone"]
    ctab.go_to(3)  # review: the JSON shows the same map
    shown = json.loads(ctab.recipe_json.toPlainText())
    assert shown["steps"][0]["per_layer"] == {"dense": 0.95, "gone": 0.5}
    ed.clear_button.click()
    assert ed.value() is None
    # cluster counts are whole numbers, and the skip list speaks of clustering, not int8
    cl = ctab.editors["cluster"]["per_layer"].widget
    cl.set_cell("dense", "8")
    assert cl.value() == {"dense": 8} and isinstance(cl.value()["dense"], int)
    skip = ctab.editors["cluster"]["skip"].widget
    assert not skip.pure.isVisibleTo(skip) and "clustered" in skip.line.toolTip()


def check_allocation_and_teacher_guided_knobs(window):
    from PySide6.QtWidgets import QCheckBox, QComboBox

    eds = window.compress_tab.editors["prune"]
    assert isinstance(eds["allocation"].widget, QComboBox)
    items = [eds["allocation"].widget.itemData(i) for i in range(eds["allocation"].widget.count())]
    assert items == ["uniform", "sensitivity", "erk"]
    assert isinstance(eds["teacher_guided"].widget, QCheckBox)
    eds["allocation"].set_value("erk")
    eds["teacher_guided"].set_value(True)
    step = window.compress_tab.recipe_dict()["steps"][0]
    assert step["allocation"] == "erk" and step["teacher_guided"] is True
