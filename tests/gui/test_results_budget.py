"""Results tab of issue 12: one comparison (model + data + split) per table, the accuracy
budget colouring every run and badge, a per-layer chart readable for 100+ layers, export
confirmed in the status bar with *Show in folder*, and ``reset()``.

Runs are plain ``RunRecord``s with real run folders (model.tflite + the recorded
report_int8.json, a real deployment report); the metrics are the recorded demo compress
result (tests/gui/recordings/compress.jsonl) with the accuracies and sizes set per test.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import pytest

from gui.state import ModelInfo, RunRecord, Session

RECORDINGS = Path(__file__).resolve().parent / "recordings"


def recorded_metrics() -> dict:
    for line in (RECORDINGS / "compress.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["type"] == "result":
            return ev["result"]
    raise AssertionError("no result in the compress recording")


def make_run(
    tmp_path: Path,
    name: str,
    subject: str,
    base_acc: float,
    acc: float,
    base_gzip: int = 600_000,
    gzip: int = 100_000,
    model: str = "demo",
    report: str | None = "report_int8.json",
) -> RunRecord:
    """A finished run of ``subject`` whose metrics say ``base_acc`` -> ``acc``."""
    out = tmp_path / "runs" / name.replace(" ", "_").replace("#", "")
    out.mkdir(parents=True)
    (out / "model.tflite").write_bytes(b"TFL3" + bytes(64))
    (out / "model.keras").write_bytes(b"PK-data")
    if report:
        shutil.copyfile(RECORDINGS / report, out / "report.json")
    m = copy.deepcopy(recorded_metrics())
    m["baseline"].update(accuracy=base_acc, tflite_gzip_bytes=base_gzip)
    m["compressed"].update(accuracy=acc, tflite_gzip_bytes=gzip)
    m["accuracy_drop"] = base_acc - acc
    m["ratio_gzip"] = base_gzip / gzip
    run = RunRecord(
        id=name,
        name=name,
        recipe=dict(m["recipe"]),
        model=model,
        data="demo",
        out_dir=str(out),
        status="finished",
        metrics=m,
    )
    run.subject = subject  # set explicitly: works before and after RunRecord gains the field
    run.subject_label = f"{Path(model).name} · data ({subject})"
    return run


def make_tab(qtbot, session: Session, **kwargs):
    from gui.errors import ErrorReporter
    from gui.results_tab import ResultsTab

    tab = ResultsTab(session, ErrorReporter(), **kwargs)
    qtbot.addWidget(tab)
    tab.resize(1280, 760)
    tab.show()
    return tab


def session_on(subject: str, label: str, runs: list[RunRecord], baseline: dict | None) -> Session:
    s = Session(model=ModelInfo("/models/other.keras"), baseline=baseline, runs=runs)
    s.subject = subject
    s.subject_label = label
    return s


def cell(tab, run, col) -> str:
    return tab.table.item(tab.rows.index(run), col).text()


def kb(text: str) -> float:
    return float(text.split()[0])


def assert_ratios_against_the_baseline_row(tab) -> None:
    """Every gzip ratio on screen is the baseline row's gzip size over the run's."""
    assert tab.rows[0] is None
    base_gzip = kb(tab.table.item(0, 6).text())
    for r in range(1, tab.table.rowCount()):
        ratio = float(tab.table.item(r, 8).text().rstrip("×"))
        assert ratio == pytest.approx(base_gzip / kb(tab.table.item(r, 6).text()), rel=0.01)


# -- 1: runs of different models are never in one table ---------------------------------
def test_the_table_shows_one_comparison_and_its_own_baseline(qtbot, tmp_path):
    demo = make_run(tmp_path, "#1 prune80-int8", "demo", 0.97, 0.965, 608_256, 161_792)
    mine = make_run(
        tmp_path, "#2 int8", "mine", 0.872, 0.869, 482_918, 140_000, model="/m/mine.keras"
    )
    new_baseline = dict(mine.metrics["baseline"])
    session = session_on("mine", "mine.keras · images/", [demo, mine], new_baseline)
    tab = make_tab(qtbot, session)

    assert tab.rows == [None, mine]  # the demo run is not beside the new model's baseline
    assert tab.subject_combo.isVisibleTo(tab) and tab.subject_combo.count() == 2
    assert tab.subject_combo.currentText() == "mine.keras · images/ — 1 run"
    assert tab.subject_combo.itemData(0) == "demo"
    assert_ratios_against_the_baseline_row(tab)
    assert len(tab.runs_scatter.data) == 1

    tab.subject_combo.setCurrentIndex(0)  # the user picks the demo comparison
    assert tab.rows == [None, demo]
    assert tab.table.item(0, 6).text() == "594.0 KB"  # the demo's own baseline
    assert "data (demo)" in tab.header.text()
    assert_ratios_against_the_baseline_row(tab)
    assert len(tab.runs_scatter.data) == 1

    # a finished run of another comparison is selected: the tab switches to it
    tab.select_run(mine)
    assert tab.rows == [None, mine] and tab.selected_run() is mine
    tab.show_subject("demo")
    # the session moves on (a new comparison of a third model): the tab follows it
    session.subject, session.subject_label, session.baseline = "third", "third.keras · x", None
    tab.refresh()
    assert tab.rows == [] and tab.subject_combo.count() == 3
    assert tab.subject_combo.currentText() == "third.keras · x — 0 runs"

    # one comparison only: no combo
    single = session_on("demo", "demo", [demo], dict(demo.metrics["baseline"]))
    tab2 = make_tab(qtbot, single)
    assert tab2.rows == [None, demo] and not tab2.subject_combo.isVisibleTo(tab2)


# -- 2: the accuracy budget colours every run and badge ---------------------------------
@pytest.fixture
def judged(qtbot, tmp_path):
    within = make_run(tmp_path, "#1 int8", "s", 0.8723, 0.8697)  # drop 0.26
    over = make_run(tmp_path, "#2 prune50", "s", 0.8723, 0.8400)  # drop 3.23
    collapsed = make_run(tmp_path, "#3 prune80", "s", 0.8723, 0.4917)  # drop 38.06 (issue)
    gain = make_run(tmp_path, "#4 cluster", "s", 0.8723, 0.8806)  # gain 0.83
    runs = [within, over, collapsed, gain]
    tab = make_tab(qtbot, session_on("s", "m · d", runs, dict(within.metrics["baseline"])))
    return tab, runs


def test_every_run_is_judged_by_the_budget_and_no_badge_is_green_over_it(judged, qtbot):
    from gui.format import VERDICT_COLORS
    from gui.results_tab import ACC_COL, CHANGE_COL, DEPLOY_COL, RUN_COL

    tab, (within, over, collapsed, gain) = judged
    assert tab.budget == 1.0 and tab.budget_spin.value() == 1.0
    expect = [
        (within, "✓ drop 0.26 pts", "within", "✓ LiteRT + TFLM"),
        (over, "⚠ drop 3.23 pts", "over", "⚠ over budget"),
        (collapsed, "✗ drop 38.06 pts", "collapsed", "✗ accuracy collapsed"),
        (gain, "✓ gain 0.83 pts", "within", "✓ LiteRT + TFLM"),
    ]
    for run, change, verdict, badge in expect:
        r = tab.rows.index(run)
        assert tab.table.item(r, CHANGE_COL).text() == change
        for col in (RUN_COL, ACC_COL, CHANGE_COL):
            assert tab.table.item(r, col).foreground().color().name() == VERDICT_COLORS[verdict]
        badge_item = tab.table.item(r, DEPLOY_COL)
        assert badge_item.text() == badge
        assert badge_item.foreground().color().name() == VERDICT_COLORS[verdict]
    tip = tab.table.item(tab.rows.index(collapsed), CHANGE_COL).toolTip()
    assert tip == "Accuracy collapsed · drop 38.06 pts"
    assert tab.table.item(2, RUN_COL).toolTip() == "Over the 1-point budget · drop 3.23 pts"
    assert "better" not in " ".join(cell(tab, e[0], CHANGE_COL) for e in expect)
    assert "over the 1-point budget" in tab.table.item(2, DEPLOY_COL).toolTip()

    # the selected run's deployment panel says it too
    tab.select_run(collapsed)
    assert "✗ accuracy collapsed" in tab.deploy.summary.text()
    assert "49.17 %" in tab.deploy.summary.text()
    assert tab.lower_tabs.tabText(1) == "Deployment ⚠"

    # the user widens the budget: the over-budget run turns green, the signal says so
    with qtbot.waitSignal(tab.budgetChanged, timeout=1000) as blocker:
        tab.budget_spin.setValue(5.0)
    assert blocker.args == [5.0]
    assert cell(tab, over, CHANGE_COL).startswith("✓")
    assert cell(tab, over, DEPLOY_COL) == "✓ LiteRT + TFLM"
    assert cell(tab, collapsed, DEPLOY_COL) == "✗ accuracy collapsed"  # 38 pts ≥ 25
    assert tab.deploy.budget == 5.0

    # set from outside (project load): no signal, forwarded to the deployment panel
    emitted = []
    tab.budgetChanged.connect(emitted.append)
    tab.set_accuracy_budget(0.25)
    assert emitted == [] and tab.budget_spin.value() == 0.25 and tab.deploy.budget == 0.25
    assert cell(tab, within, CHANGE_COL).startswith("⚠")  # 0.26 > 0.25
    with pytest.raises(ValueError):
        tab.set_accuracy_budget(150)

    # the CSV carries each verdict
    path = tab.deploy.run.out_dir + "/t.csv"
    assert tab.export_csv_file(path)
    rows = list(csv.reader(open(path, encoding="utf-8")))
    assert rows[0][-1] == "verdict_budget_0.25_pts"
    assert [r[-1] for r in rows[1:]] == ["", "over", "over", "collapsed", "within"]


def test_scatter_points_take_their_verdict_colour(judged):
    from gui.format import VERDICT_COLORS

    tab, runs = judged
    brushes = [b.color().name() for b in tab.runs_scatter.data["brush"]]
    assert brushes == [VERDICT_COLORS[v] for v in ("within", "over", "collapsed", "within")]


# -- 6: the per-layer chart stays readable for 100+ layers -------------------------------
def label_rects(tab):
    """Where the per-layer chart's left axis draws its labels (pyqtgraph's own layout)."""
    from PySide6.QtGui import QPainter, QPicture

    ax = tab.bars_plot.getAxis("left")
    picture = QPicture()
    painter = QPainter(picture)
    try:
        _axis, _ticks, texts = ax.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _flags, text in texts]


def test_per_layer_chart_is_readable_for_120_layers(qtbot, tmp_path):
    run = make_run(tmp_path, "#1 prune80-int8", "s", 0.87, 0.86)
    names = [f"block_{i // 6}_{kind}" for i, kind in enumerate(["depthwise", "project"] * 60)]
    names = [f"{n}_{i}" for i, n in enumerate(names)]
    names[5] = "a_very_long_layer_name_from_some_exporter_with_scopes/kernel"
    run.metrics["compressed"]["per_layer_sparsity"] = {
        n: (i % 10) / 10 for i, n in enumerate(names)
    }
    tab = make_tab(qtbot, session_on("s", "", [run], None))
    tab.lower_tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: tab.bars_plot.isVisible())
    tab.select_run(run)
    qtbot.wait(50)

    rects = label_rects(tab)
    assert len(rects) == 120  # every layer has its label ...
    ordered = sorted(rects, key=lambda rt: rt[0].top())
    for (a, _ta), (b, _tb) in zip(ordered, ordered[1:], strict=False):
        assert a.bottom() <= b.top(), "labels overlap"  # ... and no two overlap
    assert max(len(t) for _r, t in rects) <= 30
    assert any("…" in t for _r, t in rects)
    # the chart scrolls rather than squeezing 120 rows into the visible height
    assert tab.bars_plot.height() >= 120 * 18
    assert tab.bars_scroll.verticalScrollBar().maximum() > 0
    assert "120 layers" in tab.bars_title.text()
    assert list(tab.bars.opts["height"]) == pytest.approx([(i % 10) * 10 for i in range(120)])
    # horizontal bars: layer i is drawn at y = i, its length is its sparsity
    bounds = tab.bars.mapRectToParent(tab.bars.boundingRect())
    assert bounds.height() == pytest.approx(120, abs=1)
    assert bounds.width() == pytest.approx(90, abs=1)


# -- 7: export names, confirmation and Show in folder -----------------------------------
def test_export_is_named_after_model_and_recipe_and_confirmed(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QUrl
    from PySide6.QtWidgets import QFileDialog, QMainWindow

    from gui.errors import ErrorReporter
    from gui.results_tab import ResultsTab

    model = tmp_path / "models" / "mobilenet.keras"
    model.parent.mkdir()
    model.write_bytes(b"PK")
    saved_model = tmp_path / "models" / "my_saved_model"
    saved_model.mkdir()
    exports = tmp_path / "exports"
    exports.mkdir()
    run = make_run(tmp_path, "#3 prune80-int8", "s", 0.87, 0.86, model=str(model))
    demo = make_run(tmp_path, "#4 demo", "s", 0.87, 0.86)
    sm = make_run(tmp_path, "#5 sm", "s", 0.87, 0.86, model=str(saved_model))
    session = session_on("s", "", [run, demo, sm], None)
    win = QMainWindow()
    qtbot.addWidget(win)
    remembered = []
    tab = ResultsTab(
        session,
        ErrorReporter(),
        lambda kind: str(exports),
        lambda kind, p: remembered.append((kind, p)),
    )
    win.setCentralWidget(tab)
    bar = win.statusBar()
    win.resize(1280, 800)
    win.show()
    name = run.recipe["name"]
    assert tab.default_export_path(run, ".tflite") == model.parent / f"mobilenet-{name}.tflite"
    assert tab.default_export_path(demo, ".tflite") == exports / f"demo-{name}.tflite"
    assert tab.default_export_path(sm, ".keras") == model.parent / f"my_saved_model-{name}.keras"

    asked = []

    def answer(parent, title, start, filt):
        asked.append(start)
        return start, filt

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    tab.select_run(run)
    tab.export_tflite.click()
    dest = model.parent / f"mobilenet-{name}.tflite"
    assert asked == [str(dest)] and dest.read_bytes() == b"TFL3" + bytes(64)
    assert remembered == [("export", str(dest))]
    assert bar.currentMessage() == f"Exported {dest.name} to {dest.parent}"
    assert tab.show_folder_button.isVisible()
    opened = []
    tab.open_url = opened.append
    tab.show_folder_button.click()
    assert opened == [QUrl.fromLocalFile(str(model.parent))]
    bar.showMessage("something else")
    assert not tab.show_folder_button.isVisible()

    # the deployment panel's C export is confirmed the same way
    tab.lower_tabs.setCurrentWidget(tab.deploy)
    assert tab.deploy.export_c_array(exports) is not None
    assert bar.currentMessage() == f"Exported model.c to {exports}"
    assert tab.show_folder_button.isVisible()
    tab.show_folder_button.click()
    assert opened[-1] == QUrl.fromLocalFile(str(exports))

    # a failed export says so and confirms nothing
    problems = []
    tab.errors.report = lambda title, message, details="": problems.append(title)
    bar.clearMessage()
    assert not tab.export_artifact("model.tflite", tmp_path / "missing" / "x.tflite")
    assert problems == ["Export failed"] and bar.currentMessage() == ""


# -- reset (new project) ------------------------------------------------------------------
def test_reset_empties_the_tab(judged, qtbot):
    tab, runs = judged
    tab.set_accuracy_budget(3.0)
    tab.select_run(runs[2])
    emitted = []
    tab.budgetChanged.connect(emitted.append)
    tab.reset()
    assert tab.rows == [] and tab.table.rowCount() == 0
    assert tab.budget == 1.0 and tab.budget_spin.value() == 1.0 and tab.deploy.budget == 1.0
    assert emitted == []
    assert tab.deploy.run is None and "Select a run" in tab.deploy.summary.text()
    assert len(tab.runs_scatter.data) == 0 and len(tab.bars.opts["height"]) == 0
    assert not tab.subject_combo.isVisibleTo(tab) and tab.subject_combo.count() == 0
    assert "No finished runs" in tab.header.text()
    assert not tab.export_tflite.isEnabled() and not tab.export_csv.isEnabled()
    # a fresh session is shown as such
    tab.session = Session()
    tab.refresh()
    assert tab.rows == [] and tab.selected_run() is None
