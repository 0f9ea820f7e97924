"""The search in the app (issue 15): the wizard's *Find the smallest model for me*, the live
search view (scatter, table, best so far, ETA, Stop), a trial opened as a normal run, export
and save-recipe, and the study kept in the project and shown again on reopen.

The fake worker plays a synthetic search of the demo with the event and search.json shapes
of engine/pipeline/search.py (``fake_worker.synthetic_search``: 12 trials, 2 pruned, 1 failed,
frontier 9, 1, 10, 0, best 10 at 45× gzip).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine.project import document as ep
from gui.compress_tab import DATA, REVIEW, RUN, TECHNIQUES
from gui.search_view import COLUMNS, TEST_COL, SearchView, recipe_summary
from tests.gui import fake_worker
from tests.gui.conftest import spy_submit

BASE = fake_worker.DEMO_BASELINE


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Untitled workspaces go to a temporary folder, never the user's."""
    d = tmp_path / "userdata"
    monkeypatch.setenv(ep.DATA_DIR_ENV, str(d))
    return d


def search_events(**params):
    params = {"objective": "gzip", "budget": 1.0, "time_s": 1200.0, **params}
    events, doc = fake_worker.synthetic_search(params)
    return events, fake_worker.finish_document(doc, "time")


def col(view, name):
    return COLUMNS.index(name)


def test_events_drive_the_scatter_table_best_and_eta(qtbot):
    events, final = search_events()
    view = SearchView()
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.start({"objective": "gzip", "budget_pts": 1.0, "time_s": 1200.0}, None)
    assert view.stop_button.isEnabled() and view.title.text().startswith("Searching")
    # the first six trials (0-5): two frontier points, one pruned, one failed
    upto = next(i for i, e in enumerate(events) if e.get("number") == 6)
    for ev in events[:upto]:
        view.apply_event(ev)
    assert view.title.text() == "Searching… 6 trials done"
    assert view.table.rowCount() == 6
    drawn = view.scatter_points()
    assert sorted(drawn) == [0, 1, 3, 4]  # pruned 2 and failed 5 have no size: not drawn
    for n in drawn:
        t = final["trials"][n]
        x, y = drawn[n]
        assert x == pytest.approx(t["tflite_gzip_bytes"] / 1024)
        assert y == pytest.approx(t["val_accuracy"] * 100)
    assert view.plot_note.text().startswith("1 pruned and 1 failed trials stopped")
    # the budget line: the original's validation accuracy minus 1 point
    budget = view._items["budget"]
    assert budget.value() == pytest.approx(BASE["val_accuracy"] * 100 - 1.0)
    assert budget.isVisible()
    # best so far: trial 4 (16.5 KB, -0.70 pts); trial 1 is smaller but over budget
    assert view.state.best == 4
    best = view.best_label.text()
    assert "Best so far" in best and "trial 4" in best and "16.5 KB" in best
    assert f"{BASE['tflite_gzip_bytes'] / 16900:.2f}×" in best
    # frontier joined by a line (by size): 1 → 4 → 0 at this point
    fx, fy = view._items["frontier"].getData()
    assert [round(10**x, 1) for x in fx] == [
        round(final["trials"][n]["tflite_gzip_bytes"] / 1024, 1) for n in (1, 4, 0)
    ]
    # table: state, drop in points, greyed rows
    row1 = [view.table.item(1, c).text() for c in range(len(COLUMNS))]
    assert row1[col(view, "State")] == "complete, over"
    assert row1[col(view, "Change (pts)")] == "−1.41"
    assert row1[col(view, "Recipe")] == "distil 50 % → prune 90 % (erk) → cluster 16 → int8"
    assert view.table.item(2, 1).text() == "pruned"
    assert view.table.item(2, 1).foreground().color().name() == "#9e9e9e"
    assert view.table.isColumnHidden(TEST_COL)  # no test figure while it runs
    # elapsed / ETA
    assert "of 20 min 00 s" in view.progress.format()
    assert "left" in view.eta_label.text()
    # hover names the trial and its recipe
    tip = view.state.hover_text(4)
    assert tip.startswith("Trial 4 (complete)") and "QAT" in tip and "best within budget" in tip
    # while it runs, a trial cannot be opened (one engine job at a time)
    view.select_trial(4)
    assert not view.open_button.isEnabled() and view.save_button.isEnabled()

    for ev in events[upto:]:
        view.apply_event(ev)
    view.finish(final)
    assert not view.stop_button.isEnabled()
    assert view.title.text() == "Search finished: 12 trials (the time budget was reached)"
    assert view.state.frontier == [9, 1, 10, 0] and view.state.best == 10
    assert sorted(view.scatter_points()) == [0, 1, 3, 4, 6, 7, 9, 10, 11]
    assert not view.table.isColumnHidden(TEST_COL)
    assert COLUMNS[TEST_COL] == "Test (measured once)"
    rows = {int(view.table.item(r, 0).data(256)): r for r in range(view.table.rowCount())}
    assert view.table.item(rows[10], 0).text() == "★ 10"
    assert view.table.item(rows[9], 0).text() == "◆ 9"
    assert view.table.item(rows[10], TEST_COL).text() == "96.94 % (−0.56)"
    assert view.table.item(rows[3], TEST_COL).text() == ""  # not on the frontier
    text = view.best_label.text()
    assert "Best within the 1-point budget" in text and "trial 10" in text
    assert "test, measured once: 96.94 %" in text
    assert view.selected == 4  # the user's choice stays selected
    assert "Test accuracy: open it as a run" in view.detail.text()  # 4 is not on the frontier
    view.select_trial(10)
    assert "Test, measured once:</b> 96.94 %" in view.detail.text()
    assert view._items["ring"].getData()[0][0] == pytest.approx(math.log10(12400 / 1024))


def test_other_objectives_and_no_trial_within_budget(qtbot):
    events, final = search_events(objective="latency", budget=0.1)
    view = SearchView()
    qtbot.addWidget(view)
    view.start({"objective": "latency", "budget_pts": 0.1}, None)
    for ev in events:
        view.apply_event(ev)
    # x = latency in ms (not bytes)
    x, _y = view.scatter_points()[9]
    assert x == pytest.approx(final["trials"][9]["latency_ms"])
    assert "Latency ▼" in [view.table.horizontalHeaderItem(c).text() for c in range(12)]
    # 0.1 point: only the lossless trials (0, 7, 11) keep it; the fastest of them is 0
    assert view.state.best == 0 and view.state.best_within()
    view.finish(None, "failed", "the engine process crashed")
    assert view.activity_label.text() == "✗ the engine process crashed"
    assert "interrupted" in view.title.text()
    # a document whose best is only the closest point
    doc = json.loads(json.dumps(final))
    doc["best"]["within_budget"] = False
    view.show_document(doc, None)
    assert "no trial stayed within" in view.best_label.text()
    assert "★" not in view.table.item(10, 0).text()


def test_recipe_summary():
    assert recipe_summary(None) == "—"
    assert (
        recipe_summary(
            {
                "steps": [
                    {"type": "prune", "target_sparsity": 0.8, "allocation": "uniform"},
                    {"type": "qat"},
                    {"type": "quantize", "mode": "float16"},
                ]
            }
        )
        == "prune 80 % → QAT → float16"
    )


def start_search_from_the_wizard(w, qtbot):
    tab = w.compress_tab
    w.tabs.setCurrentWidget(tab)
    tab.go_to(TECHNIQUES)
    assert tab.mode_manual.isChecked() and tab.mode_stack.currentIndex() == 0  # today's flow
    tab.mode_search.click()
    assert tab.search_mode and tab.mode_stack.currentIndex() == 1
    tab.search_budget.setValue(1.0)
    tab.search_objective.setCurrentIndex(tab.search_objective.findData("gzip"))
    tab.search_time.setValue(5)
    tab.search_trials.setValue(0)
    assert tab.search_trials.text() == "no limit"
    assert not tab.search_seed.isVisibleTo(tab)  # advanced
    tab.search_advanced.setChecked(True)
    assert tab.search_seed.isVisibleTo(tab)
    tab.search_seed.setValue(3)
    tab.next_button.click()
    assert tab.current_page() == DATA  # no Settings page for a search
    tab.back_button.click()
    assert tab.current_page() == TECHNIQUES
    tab.go_to(REVIEW)
    assert tab.next_button.text() == "Search ▶"
    assert "Find the smallest download size" in tab.summary.text()
    assert "5 min 00 s" in tab.summary.text()
    sent = spy_submit(w)
    tab.next_button.click()
    assert tab.current_page() == RUN and tab.run_stack.currentWidget() is tab.search_view
    name, params = sent[-1]
    assert name == "search"
    out = params.pop("out")
    assert params == {
        "model": "demo",
        "data": "demo",
        "scale": "auto",
        "allow_unsafe": False,
        "split_seed": 0,
        "val_fraction": 0.1,
        "budget": 1.0,
        "objective": "gzip",
        "time_s": 300.0,
        "trials": None,
        "seed": 3,
    }
    return tab.search_job, out


def test_the_wizard_starts_a_search_and_stop_keeps_everything(make_window, qtbot):
    w = make_window("--delay", "0.04")
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    tab = w.compress_tab
    job, out = start_search_from_the_wizard(w, qtbot)
    entry = w.project.project.searches[-1]
    assert out == str(ep.search_dir(w.project.project, entry))  # inside the project's files
    assert entry["config"]["budget_pts"] == 1.0 and entry["config"]["seed"] == 3
    assert tab.running and w.project.run_in_progress
    assert "A search is running" in tab.can_run()
    view = tab.search_view
    qtbot.waitUntil(lambda: view.state.info.get("trials_done", 0) >= 3, timeout=10_000)
    with qtbot.waitSignal(tab.searchFinished, timeout=10_000) as blocker:
        view.stop_button.click()
        assert view.stop_button.text() == "Stopping…"
    plan, doc = blocker.args
    assert job.state == "finished" and doc["stopped"] == "user"  # Stop is not an error
    assert view.title.text().endswith("(you stopped it)")
    kept = len(doc["trials"])
    assert 3 <= kept < 12 and len(view.state.trials) == kept
    assert plan.out_dir == out
    assert json.loads((Path(out) / "search.json").read_text())["stopped"] == "user"
    assert not tab.running and not w.project.run_in_progress
    assert w.isWindowModified()
    # Continue: the same study folder and project entry, the trials found so far stay drawn
    assert view.continue_button.isVisible()
    sent = spy_submit(w)
    with qtbot.waitSignal(tab.searchFinished, timeout=15_000):
        view.continue_button.click()
        assert len(view.state.trials) == kept and view.stop_button.isEnabled()
    assert sent[-1][0] == "search" and sent[-1][1]["out"] == out
    assert len(w.project.project.searches) == 1
    assert view.state.stopped == "exhausted" and len(view.state.trials) == 12


def test_open_as_run_export_save_recipe_and_reopen(make_window, qtbot, tmp_path):
    w = make_window()
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    tab = w.compress_tab
    with qtbot.waitSignal(tab.searchFinished, timeout=10_000):
        start_search_from_the_wizard(w, qtbot)
    view = tab.search_view
    assert view.state.best == 10 and view.selected == 10
    assert view.open_button.isEnabled() and view.export_button.isEnabled()
    # export and save the recipe of a frontier trial
    view.select_trial(9)
    exported = view.export_tflite(str(tmp_path / "t9.tflite"))
    assert exported is not None
    assert (
        exported.read_bytes()
        == (
            ep.search_dir(w.project.project, w.project.project.searches[-1])
            / "trials/0009/model.tflite"
        ).read_bytes()
    )
    view.ask_save_path = lambda _t, _s, _f: str(tmp_path / "t9.json")
    view.save_button.click()
    saved = json.loads((tmp_path / "t9.json").read_text())
    assert saved["steps"][0] == {"type": "distill", "width": 0.5, "epochs": 12}
    assert any(r.get("name") == "search-trial-0009" for r in w.project.project.recipes)
    # open the best as a run: the open_trial job, then a normal run in Results and project
    view.select_trial(10)
    sent = spy_submit(w)
    with qtbot.waitSignal(tab.runFinished, timeout=10_000) as blocker:
        view.open_button.click()
    run = blocker.args[0]
    name, params = sent[-1]
    assert name == "open_trial" and params["trial"] == 10
    assert params["search_dir"] == view.state.search_dir and "recipe" not in params
    assert run.status == "finished" and run.name == "#1 search-trial-0010"
    assert run.metrics["search"]["trial"] == 10
    assert run.compressed["accuracy"] == pytest.approx(0.9694)
    assert run in w.session.finished_runs() and w.results_tab.selected_run() is run
    assert [r.id for r in w.project.project.runs] == [run.id]
    assert tab.run_stack.currentIndex() == 0 and tab.search_button.isVisible()
    tab.search_button.click()
    assert tab.run_stack.currentWidget() is view

    path = tmp_path / "proj" / "digits.fwproj"
    path.parent.mkdir()
    assert w.project.save_as(path)
    shown = {n: dict(t) for n, t in view.state.trials.items()}
    w.close()

    w2 = make_window()
    sent = spy_submit(w2)
    assert w2.project.open(path)
    tab2, view2 = w2.compress_tab, w2.compress_tab.search_view
    assert {n: t["val_accuracy"] for n, t in view2.state.trials.items()} == {
        n: t.get("val_accuracy") for n, t in shown.items()
    }
    assert view2.state.frontier == [9, 1, 10, 0] and view2.state.best == 10
    assert sorted(view2.scatter_points()) == [0, 1, 3, 4, 6, 7, 9, 10, 11]
    assert view2.state.search_dir.startswith(str(path.parent / "digits_files"))
    assert view2.export_button.isEnabled()  # the trials' files moved with the project
    assert "test, measured once" in view2.best_label.text()
    assert tab2.run_stack.currentWidget() is view2  # the view saved was the search
    assert not [n for n, _p in sent if n == "search"]  # nothing recomputed
    # another dataset: this model's search on the demo data is not shown with it
    w2.project.ask_new_comparison = lambda _what, _name: "new_comparison"
    npz = tmp_path / "other.npz"
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(npz, x=rng.random((40, 8, 8, 1)).astype("float32"), y=rng.integers(0, 10, 40))
    w2.model_tab.set_data(str(npz), "none")
    qtbot.waitUntil(lambda: not view2.has_search, timeout=10_000)
    assert tab2.run_stack.currentIndex() == 0
    # back to the demo data: the study is shown again, still not recomputed
    with qtbot.waitSignal(
        w2.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w2.choose_data("demo", "auto")
    qtbot.waitUntil(lambda: view2.state.best == 10, timeout=10_000)
    assert not [n for n, _p in sent if n == "search"]
    assert math.isclose(view2.state.budget_pts, 1.0)
