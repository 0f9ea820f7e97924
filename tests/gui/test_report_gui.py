"""File → Export report… (issue 16): the menu entry's rules (fake worker) and one export of
the demo project through the real engine worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl

from gui.report_export import HTML_FILTER, PDF_FILTER, report_target
from gui.runner import default_worker_command

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "report_sample"
READY_MS = 120_000  # TensorFlow import on a busy 2-core machine


def test_report_target_follows_the_name_or_the_chosen_filter() -> None:
    assert report_target("/x/r.pdf", HTML_FILTER) == ("pdf", "/x/r.pdf")
    assert report_target("/x/r.HTML", PDF_FILTER) == ("html", "/x/r.HTML")
    assert report_target("/x/r", PDF_FILTER) == ("pdf", "/x/r.pdf")
    assert report_target("/x/r", HTML_FILTER) == ("html", "/x/r.html")


def test_menu_entry_is_disabled_without_a_model_and_while_a_run_goes(window, qtbot) -> None:
    w = window
    act = w.act_export_report
    assert act in w.file_menu.actions()
    assert act.text() == "&Export report…"
    assert not act.isEnabled()
    assert "Open a model first" in act.toolTip()
    button = w.export_report_button  # the Results tab's twin of the menu entry
    assert not button.isEnabled() and button.toolTip() == act.toolTip()
    asked: list[str] = []
    w.report_export.ask_path = lambda start: asked.append(start) or ("", "")
    w.export_report_dialog()  # even if triggered (shortcut), nothing is asked
    assert asked == []

    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    qtbot.waitUntil(lambda: not w.client.busy, timeout=10_000)
    w.update_export_action()
    assert act.isEnabled()

    w.compress_tab.start_run()
    qtbot.waitUntil(lambda: w.compress_tab.running, timeout=5_000)
    assert not act.isEnabled() and "run" in act.toolTip()
    assert not button.isEnabled()
    with qtbot.waitSignal(w.compress_tab.runFinished, timeout=30_000):
        pass
    qtbot.waitUntil(act.isEnabled, timeout=5_000)
    assert button.isEnabled()

    # The dialog cancelled: no job. (The Results tab's button asks the same question.)
    button.click()
    assert len(asked) == 1 and asked[0].endswith("-report.html")
    assert w.report_export.job is None


@pytest.mark.slow
def test_export_the_demo_project_through_the_real_engine(make_window, qtbot, tmp_path) -> None:
    dst = tmp_path / "sample"
    shutil.copytree(SAMPLE, dst)
    w = make_window(worker=default_worker_command(), ready_timeout=READY_MS)
    assert w.project.open(dst / "demo.fwproj", ask_first=False)
    qtbot.waitUntil(lambda: w.session.model is not None, timeout=10_000)
    qtbot.waitUntil(lambda: not w.client.busy, timeout=60_000)
    w.update_export_action()
    assert w.act_export_report.isEnabled(), w.act_export_report.toolTip()

    # The run selected in Results is the report's chosen model.
    chosen = next(r for r in w.session.runs if r.id == "run-002")
    w.results_tab.select_run(chosen)
    assert w.results_tab.selected_run() is chosen

    out = tmp_path / "out" / "demo report"
    w.report_export.ask_path = lambda start: (str(out), HTML_FILTER)
    opened: list[QUrl] = []
    w.report_export.open_url = lambda url: opened.append(url) or True
    with qtbot.waitSignal(w.report_export.finished, timeout=120_000) as blocker:
        job = w.export_report_dialog()
        assert job is not None and job.name == "export_report"
        assert job.params["run"] == "run-002"
        assert job.params["project_path"] == str(dst / "demo.fwproj")
        assert not w.act_export_report.isEnabled()  # one export at a time
        assert w.report_export.widget.cancel_button.isVisible()
    state, result = blocker.args
    assert state == "finished", result
    html = Path(str(out) + ".html")
    assert result["html"] == str(html) and result["chosen"] == "run-002"
    assert html.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert str(html) in w.statusBar().currentMessage()
    assert w.report_export.widget.open_button.isVisible()
    assert not w.report_export.widget.cancel_button.isVisible()
    w.report_export.widget.open_button.click()
    assert opened == [QUrl.fromLocalFile(str(html))]
    assert w.act_export_report.isEnabled()
    assert w.errors.problems == []


def test_cancel_and_errors_show_in_the_status_bar_and_the_error_path(demo_window, qtbot, tmp_path):
    """The export's Cancel button and a failed export, on the fake worker (its ``sleep`` job
    stands in for a long export, its ``fail`` job for an engine error)."""
    w = demo_window
    qtbot.waitUntil(lambda: not w.client.busy, timeout=10_000)
    w.errors.show_dialogs = False
    submit = w.client.submit
    stand_in = {"job": "sleep"}
    sent: list[dict] = []

    def redirect(name, params=None):
        assert name == "export_report"
        sent.append(params)
        return submit(stand_in["job"], {**params, "seconds": 5})

    w.client.submit = redirect
    w.report_export.ask_path = lambda start: (str(tmp_path / "r.pdf"), HTML_FILTER)
    with qtbot.waitSignal(w.report_export.finished, timeout=10_000) as blocker:
        w.export_report_dialog()
        qtbot.waitUntil(lambda: w.report_export.widget.bar.value() > 0, timeout=5_000)
        assert not w.act_export_report.isEnabled()
        w.report_export.widget.cancel_button.click()
    assert blocker.args[0] == "cancelled"
    assert sent[0]["pdf"] == str(tmp_path / "r.pdf") and "html" not in sent[0]
    assert sent[0]["project_path"] is None and sent[0]["workspace"]  # untitled: its workspace
    assert sent[0]["project"]["model"]["path"] == "demo"
    assert "no file was written" in w.statusBar().currentMessage()
    assert not w.report_export.widget.isVisible()
    assert w.act_export_report.isEnabled()

    stand_in["job"] = "fail"
    with qtbot.waitSignal(w.report_export.finished, timeout=10_000) as blocker:
        w.export_report_dialog()
    assert blocker.args[0] == "failed"
    assert [p.title for p in w.errors.problems] == ["Cannot export the report"]
    assert "\n" not in w.errors.problems[0].message
    assert "could not be exported" in w.statusBar().currentMessage()
