"""The Results tab's deployment panel and the runs table's Deploy badge.

The reports under recordings/ are real ``engine.tflite.report.report_tflite`` outputs:
``report_int8.json`` is the report.json of ``python -m engine compress demo --data demo``
with resources/recipes/int8_ptq.json and ``"io": "int8"``; ``report_flex.json`` is a model
using ``tf.linalg.det`` (a Select-TF op) and ``report_topk.json`` one using ``tf.math.top_k``
(a LiteRT built-in TFLite Micro lacks), both converted as in tests/test_report.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gui.state import RunRecord, Session

RECORDINGS = Path(__file__).resolve().parent / "recordings"
# Stands in for a .tflite: every byte value, so a wrong hex digit or a lost byte shows.
TFLITE_BYTES = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 7 + b"\x00\xff\x10"


def make_run(tmp_path: Path, report: str | None, name: str = "Run 1") -> RunRecord:
    """A finished run whose folder holds model.tflite and (if given) a recorded report.json."""
    out = tmp_path / name.replace(" ", "_")
    out.mkdir()
    (out / "model.tflite").write_bytes(TFLITE_BYTES)
    if report:
        shutil.copyfile(RECORDINGS / report, out / "report.json")
    return RunRecord(
        id=name,
        name=name,
        recipe={"steps": [{"type": "quantize", "mode": "int8"}]},
        model="demo",
        data="demo",
        out_dir=str(out),
        status="finished",
        metrics={"compressed": {"tflite_bytes": len(TFLITE_BYTES)}, "baseline": {}},
    )


def recorded(name: str) -> dict:
    return json.loads((RECORDINGS / name).read_text())


@pytest.fixture
def panel(qtbot):
    from gui.deploy_panel import DeployPanel
    from gui.errors import ErrorReporter

    p = DeployPanel(ErrorReporter())
    qtbot.addWidget(p)
    p.resize(1250, 450)
    p.show()
    return p


def cells(table) -> list[list[str]]:
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def test_panel_shows_the_run_report(panel, tmp_path):
    run = make_run(tmp_path, "report_int8.json")
    report = recorded("report_int8.json")
    panel.set_run(run)

    ops = cells(panel.ops_table)
    assert [(r[0], int(r[1])) for r in ops] == [(o["name"], o["count"]) for o in report["ops"]]
    assert [r[3] for r in ops] == [", ".join(o["input_dtypes"]) for o in report["ops"]]
    assert [r[4] for r in ops] == [", ".join(o["output_dtypes"]) for o in report["ops"]]
    assert {r[2] for r in ops} == {"built-in"}

    for key in ("litert_builtins", "tflite_micro"):
        text = panel.verdict_labels[key].text()
        assert report["verdicts"][key]["summary"].replace("'", "&#x27;") in text
        assert "✓" in text
    assert report["tflm_ops_source"]["commit"][:7] in panel.tflm_source.text()
    assert report["tflm_ops_source"]["retrieved"] in panel.tflm_source.text()

    mem = report["memory"]
    assert f"({mem['weights_bytes']:,} B)" in panel.memory_labels["weights_bytes"].text()
    assert (
        f"({mem['arena_estimate_bytes']:,} B)" in panel.memory_labels["arena_estimate_bytes"].text()
    )
    assert "Estimate" in panel.memory_note.text()

    io_rows = cells(panel.io_table)
    expected = report["io"]["inputs"] + report["io"]["outputs"]
    assert [r[0] for r in io_rows] == ["in", "out"]
    for row, t in zip(io_rows, expected, strict=True):
        assert row[1] == t["dtype"] == "int8"
        assert row[2] == "×".join(map(str, t["shape"]))
        assert float(row[3]) == pytest.approx(t["scale"], rel=1e-8)
        assert int(row[4]) == t["zero_point"]
    assert panel.snippet_edits["python"].toPlainText() == report["snippets"]["python"]
    assert panel.snippet_edits["c"].toPlainText() == report["snippets"]["c"]
    assert not panel.snippet_tabs.isHidden()
    assert "10 class labels" in panel.metadata_label.text()


def test_copy_buttons_put_the_snippets_on_the_clipboard(panel, tmp_path, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    panel.set_run(make_run(tmp_path, "report_int8.json"))
    snippets = recorded("report_int8.json")["snippets"]
    for key in ("python", "c"):
        QGuiApplication.clipboard().setText("")
        qtbot.mouseClick(panel.copy_buttons[key], Qt.MouseButton.LeftButton)
        assert QGuiApplication.clipboard().text() == snippets[key]
    assert "quantize_input" in snippets["python"] and "dequantize_output" in snippets["c"]


def test_flex_ops_are_highlighted_and_both_verdicts_fail(panel, tmp_path):
    from gui.deploy_panel import FLEX_BG

    panel.set_run(make_run(tmp_path, "report_flex.json"))
    ops = cells(panel.ops_table)
    row = next(i for i, r in enumerate(ops) if r[0] == "FlexMatrixDeterminant")
    assert ops[row][2] == "Flex (TF)"
    assert panel.ops_table.item(row, 0).background().color().name() == FLEX_BG
    other = next(i for i, r in enumerate(ops) if r[0] != "FlexMatrixDeterminant")
    assert panel.ops_table.item(other, 0).background().style().name == "NoBrush"
    for key in ("litert_builtins", "tflite_micro"):
        text = panel.verdict_labels[key].text()
        assert "✗" in text and "Missing: <b>FlexMatrixDeterminant</b>" in text
    # float model: no snippet to copy
    assert panel.snippet_tabs.isHidden() and not panel.copy_buttons["python"].isEnabled()


def test_deploy_badge_flags_flex_and_tflm_gaps_not_the_demo_int8(qtbot, tmp_path):
    from gui.errors import ErrorReporter
    from gui.results_tab import DEPLOY_COL, ResultsTab

    runs = [
        make_run(tmp_path, "report_int8.json", "Run 1"),
        make_run(tmp_path, "report_flex.json", "Run 2"),
        make_run(tmp_path, "report_topk.json", "Run 3"),
        make_run(tmp_path, None, "Run 4"),  # no report.json and an unreadable model.tflite
    ]
    tab = ResultsTab(Session(runs=runs), ErrorReporter())
    qtbot.addWidget(tab)
    tab.resize(1280, 760)
    tab.show()
    badges = {
        tab.rows[r].name: tab.table.item(r, DEPLOY_COL)
        for r in range(tab.table.rowCount())
        if tab.rows[r] is not None
    }
    assert not badges["Run 1"].text().startswith("⚠")
    assert "✓" in badges["Run 1"].text()
    assert badges["Run 2"].text() == "⚠ Flex ops"
    assert "FlexMatrixDeterminant" in badges["Run 2"].toolTip()
    assert "TensorFlow runtime" in badges["Run 2"].toolTip()
    assert badges["Run 3"].text() == "⚠ not TFLM"
    assert "TOPK_V2" in badges["Run 3"].toolTip()
    assert badges["Run 4"].text() == "—"

    tab.select_run(runs[1])
    assert tab.lower_tabs.tabText(1) == "Deployment ⚠"
    assert tab.deploy.run is runs[1]
    tab.lower_tabs.setCurrentIndex(0)
    tab._on_cell_clicked(tab.rows.index(runs[1]), DEPLOY_COL)
    assert tab.lower_tabs.currentWidget() is tab.deploy
    tab.select_run(runs[0])
    assert tab.lower_tabs.tabText(1) == "Deployment"
    assert cells(tab.deploy.ops_table)[0][0] == "CONV_2D"
    tab.select_run(runs[3])
    assert "could not be read" in tab.deploy.summary.text()
    assert tab.deploy.ops_table.rowCount() == 0


def parse_c_array(source: str, name: str) -> bytes:
    body = re.search(rf"const unsigned char {name}\[\] = \{{(.*?)\}};", source, re.S)
    assert body is not None
    data = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body.group(1)))
    length = re.search(rf"const unsigned int {name}_len = (\d+);", source)
    assert length is not None and int(length.group(1)) == len(data)
    return data


def test_export_c_array_writes_the_model_bytes(panel, tmp_path):
    run = make_run(tmp_path, "report_int8.json")
    panel.set_run(run)
    assert panel.export_c_button.isEnabled()
    out = tmp_path / "firmware"
    c_path, h_path = panel.export_c_array(out)
    assert (c_path, h_path) == (out / "model.c", out / "model.h")
    assert (
        parse_c_array(c_path.read_text(), "model")
        == (Path(run.out_dir) / "model.tflite").read_bytes()
    )
    assert "aligned(16)" in c_path.read_text()
    assert "extern const unsigned char model[];" in h_path.read_text()

    asked = []
    panel.confirm_overwrite = lambda paths: asked.append(paths) or False
    c_path.write_text("mine")
    assert panel.export_c_array(out) is None
    assert asked and c_path.read_text() == "mine"  # declined: the user's file is kept
    panel.confirm_overwrite = lambda paths: True
    assert panel.export_c_array(out) == (c_path, h_path)
    assert parse_c_array(c_path.read_text(), "model") == TFLITE_BYTES


def test_export_c_array_reports_an_unwritable_folder(panel, tmp_path):
    problems = []
    panel.errors.report = lambda title, message, details="": problems.append((title, message))
    panel.set_run(make_run(tmp_path, "report_int8.json"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert panel.export_c_array(blocker / "sub") is None
    assert problems and problems[0][0] == "Export failed" and str(blocker) in problems[0][1]
    panel.set_run(None)
    assert not panel.export_c_button.isEnabled() and "Select a run" in panel.summary.text()


def test_the_badge_is_never_green_for_a_run_over_the_accuracy_budget():
    """Issue 12, item 2: a collapsed run (87.2 % -> 49.2 %) got "✓ LiteRT + TFLM" in green."""
    from gui.deploy_panel import OK_COLOR, deploy_badge
    from gui.format import VERDICT_COLORS

    int8, flex, topk = (recorded(f"report_{n}.json") for n in ("int8", "flex", "topk"))

    def metrics(base: float, acc: float) -> dict:
        return {"baseline": {"accuracy": base}, "compressed": {"accuracy": acc}}

    within, over, collapsed = metrics(0.872, 0.866), metrics(0.872, 0.85), metrics(0.872, 0.492)
    # the ops alone (no metrics: as before) and a run within budget: green
    assert deploy_badge(int8)[:2] == ("✓ LiteRT + TFLM", OK_COLOR)
    assert deploy_badge(int8, within, 1.0)[:2] == ("✓ LiteRT + TFLM", OK_COLOR)
    text, color, tip = deploy_badge(int8, over, 1.0)
    assert (text, color) == ("⚠ over budget", VERDICT_COLORS["over"])
    assert "over the 1-point budget · drop 2.20 pts" in tip
    text, color, tip = deploy_badge(int8, collapsed, 1.0)
    assert (text, color) == ("✗ accuracy collapsed", VERDICT_COLORS["collapsed"])
    assert "drop 38.00 pts" in tip and "not ready to ship" in tip
    assert deploy_badge(int8, over, 3.0)[1] == OK_COLOR  # a wider budget accepts it
    # an ops warning keeps its text, gains the reason, and turns red when collapsed
    text, color, tip = deploy_badge(topk, collapsed, 1.0)
    assert text == "⚠ not TFLM" and color == VERDICT_COLORS["collapsed"]
    assert "TOPK_V2" in tip and "Accuracy: accuracy collapsed" in tip
    assert deploy_badge(flex, over, 1.0)[0] == "⚠ Flex ops"
    # never green over budget, whatever the report
    for report in (int8, flex, topk):
        for m in (over, collapsed):
            assert deploy_badge(report, m, 1.0)[1] != OK_COLOR
    assert deploy_badge(None, collapsed, 1.0) is None


def test_panel_judges_the_run_by_its_budget(panel, tmp_path):
    run = make_run(tmp_path, "report_int8.json")
    run.metrics = {"baseline": {"accuracy": 0.872}, "compressed": {"accuracy": 0.85}}
    panel.set_run(run)
    assert "⚠ over budget" in panel.summary.text()
    assert "85.00 % (baseline 87.20 %)" in panel.summary.text()
    panel.set_accuracy_budget(2.5)
    assert "✓ LiteRT + TFLM" in panel.summary.text() and "within the 2.5-point budget" in (
        panel.summary.text()
    )
    with pytest.raises(ValueError):
        panel.set_accuracy_budget(-1)
