"""Issue 12, the Compress tab's honest signals: the finish line coloured by the accuracy
budget with suggestions, the training alarm with Cancel, no training charts without training,
whole-number epoch ticks, example recipes with descriptions and time estimates, the progress
bar after cancel, on-screen labels in recipe messages, and ``reset``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.pipeline import budget
from engine.pipeline.recipe import validate_recipe
from gui.compress_tab import REVIEW, RUN, SETTINGS, TECHNIQUES
from gui.format import VERDICT_COLORS
from gui.state import RunRecord

RECORDINGS = Path(__file__).parent / "recordings"
TIMING = {"forward_ms_per_sample": 0.5, "convert_s": 1.4, "evaluate_s": 0.1, "load_s": 0.3}
COLLAPSED_ACC = 0.4917


def _rewrite(path: Path, change) -> None:
    lines = []
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        change(ev)
        lines.append(json.dumps(ev))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def collapse_recordings(tmp_path_factory) -> Path:
    """The recorded demo run, except that validation accuracy falls to 20 % then 15.5 % and the
    compressed model ends at 49.17 % (the MobileNetV2 + prune 80 % story of the issue);
    the baseline carries the timing ``prepare`` now records."""
    folder = tmp_path_factory.mktemp("recordings")
    for f in RECORDINGS.iterdir():
        shutil.copy(f, folder / f.name)

    def collapse(ev: dict) -> None:
        if ev["type"] == "metric" and "val_accuracy" in ev.get("values", {}):
            ev["values"]["val_accuracy"] = 0.2 if ev["epoch"] == 1.0 else 0.155
        if ev["type"] == "result":
            r = ev["result"]
            r["compressed"]["accuracy"] = COLLAPSED_ACC
            r["accuracy_drop"] = r["baseline"]["accuracy"] - COLLAPSED_ACC

    def timed(ev: dict) -> None:
        if ev["type"] == "result":
            ev["result"]["timing"] = dict(TIMING)

    _rewrite(folder / "compress.jsonl", collapse)
    _rewrite(folder / "baseline.jsonl", timed)
    return folder


def _open_demo(w, qtbot):
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    w.tabs.setCurrentWidget(w.compress_tab)  # what the user looks at: visibility is real
    return w


@pytest.fixture
def collapse_window(make_window, qtbot, collapse_recordings):
    return _open_demo(make_window("--recordings", str(collapse_recordings)), qtbot)


def test_collapse_raises_the_alarm_once_then_a_red_finish_line_with_suggestions(
    collapse_window, qtbot
):
    w = collapse_window
    tab = w.compress_tab
    seen = []  # (alarm visible, alarm text) after each metric event
    with qtbot.waitSignal(tab.runFinished, timeout=10_000) as blocker:
        run = tab.start_run()
        tab.job.metric.connect(
            lambda _e: seen.append((tab.alarm_bar.isVisible(), tab.alarm_label.text()))
        )
    assert blocker.args[0] is run and run.status == "finished"
    # Item 2: validation accuracy 20 % then 15.5 % against a 97.5 % baseline, the pruning
    # target reached: a visible warning with Cancel, raised once, when it is not recovering.
    assert len(seen) >= 2 and not seen[0][0] and seen[1][0], seen
    assert "15.5 %" in seen[1][1] and "epoch 2" in seen[1][1]
    assert tab.log.toPlainText().count("validation accuracy collapsed") == 1
    # The finish line: red, ✗, the change in words and the verdict; never a green ✓.
    assert VERDICT_COLORS["collapsed"] in tab.stage_label.styleSheet()
    text = tab.stage_label.text()
    assert text.startswith("✗") and "accuracy 49.17 %" in text
    assert "drop 48.33 pts" in text and "accuracy collapsed" in text
    assert "drop:" not in text and "better" not in text
    # What to try: the suggestions of budget.suggestions, cheap ones as buttons.
    expected = budget.suggestions(run.recipe, "collapsed")
    assert tab.suggestions_box.isVisible()
    for s in expected:
        assert s.text in tab.suggestions_label.text()
    assert (
        set(tab.suggestion_buttons)
        == {s.action for s in expected}
        >= {
            "lower_sparsity",
            "int8_only",
        }
    )
    # "Lower sparsity" puts the run's recipe with 60 % into the wizard, on the Review page.
    qtbot.mouseClick(tab.suggestion_buttons["lower_sparsity"], Qt.MouseButton.LeftButton)
    assert tab.current_page() == REVIEW
    assert tab.recipe_dict()["steps"][0]["target_sparsity"] == pytest.approx(0.6)
    assert not tab.running  # nothing ran
    # "int8 alone" loads the int8 example recipe.
    tab.go_to(RUN)
    qtbot.mouseClick(tab.suggestion_buttons["int8_only"], Qt.MouseButton.LeftButton)
    int8 = json.loads((tab.examples_dir / "int8_ptq.json").read_text())
    assert tab.selected_steps() == ["quantize"]
    assert (
        validate_recipe(tab.recipe_dict()).to_dict()["steps"]
        == (validate_recipe(int8).to_dict()["steps"])
    )
    # A generous budget turns the same run green and clears the suggestions.
    tab.set_accuracy_budget(60)
    assert VERDICT_COLORS["within"] in tab.stage_label.styleSheet()
    assert tab.stage_label.text().startswith("✓") and "within the 60-point budget" in (
        tab.stage_label.text()
    )
    assert not tab.suggestions_box.isVisible()


def test_over_budget_is_amber_and_a_gain_is_not_called_a_drop(window, qtbot, tmp_path):
    tab = window.compress_tab
    window.tabs.setCurrentWidget(tab)
    tab.go_to(RUN)
    recorded = json.loads(
        [ln for ln in (RECORDINGS / "compress.jsonl").read_text().splitlines() if '"result"' in ln][
            0
        ]
    )["result"]
    m = json.loads(json.dumps(recorded))
    m["compressed"]["accuracy"] = m["baseline"]["accuracy"] - 0.03  # 3 points: over, amber
    run = RunRecord(
        id="r",
        name="#1 x",
        model="demo",
        data="demo",
        recipe=m["recipe"],
        status="finished",
        metrics=m,
    )
    tab.show_run(run)
    assert VERDICT_COLORS["over"] in tab.stage_label.styleSheet()
    assert tab.stage_label.text().startswith("⚠") and "over the 1-point budget" in (
        tab.stage_label.text()
    )
    assert "drop 3.00 pts" in tab.stage_label.text() and tab.suggestions_box.isVisible()
    m2 = json.loads(json.dumps(recorded))
    m2["compressed"]["accuracy"] = m2["baseline"]["accuracy"] + 0.0083
    tab.show_run(
        RunRecord(
            id="g",
            name="#2 y",
            model="demo",
            data="demo",
            recipe=m2["recipe"],
            status="finished",
            metrics=m2,
        )
    )
    assert "gain 0.83 pts" in tab.stage_label.text()
    assert "better" not in tab.stage_label.text()
    assert not tab.suggestions_box.isVisible()


@pytest.mark.parametrize(
    "accs",
    [
        (0.155, 0.9),  # a dip that recovers
        (0.2, 0.155),  # collapsed, but the pruning schedule has not reached its target
    ],
)
def test_no_alarm_on_a_dip_that_recovers_or_while_pruning_ramps_up(
    make_window, qtbot, collapse_recordings, tmp_path, accs
):
    folder = tmp_path / "rec"
    shutil.copytree(collapse_recordings, folder)

    def change(ev: dict) -> None:
        if ev["type"] == "metric" and "val_accuracy" in ev.get("values", {}):
            ev["values"]["val_accuracy"] = accs[int(ev["epoch"]) - 1]
            if accs == (0.2, 0.155):
                ev["values"]["sparsity"] = 0.5  # target 0.8 not reached yet

    _rewrite(folder / "compress.jsonl", change)
    w = _open_demo(make_window("--recordings", str(folder)), qtbot)
    tab = w.compress_tab
    seen = []
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        tab.start_run()
        tab.job.metric.connect(lambda _e: seen.append(tab.alarm_bar.isVisible()))
    assert seen and not any(seen)
    assert "validation accuracy collapsed" not in tab.log.toPlainText()


def test_alarm_cancel_stops_the_run_and_resets_the_progress_bar(
    make_window, qtbot, collapse_recordings
):
    w = _open_demo(make_window("--recordings", str(collapse_recordings), "--delay", "0.1"), qtbot)
    tab = w.compress_tab
    run = tab.start_run()
    qtbot.waitUntil(lambda: tab.alarm_bar.isVisible(), timeout=10_000)
    assert tab.progress.value() > 0
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        qtbot.mouseClick(tab.alarm_cancel, Qt.MouseButton.LeftButton)
    assert run.status == "cancelled"
    assert tab.progress.value() == 0 and tab.progress.format() == "cancelled"
    assert not tab.alarm_cancel.isEnabled()


def test_no_training_charts_for_a_recipe_without_training(demo_window, qtbot):
    tab = demo_window.compress_tab
    demo_window.tabs.setCurrentWidget(tab)
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        assert tab.start_run() is not None
    assert not tab.charts.isVisible() and tab.no_charts_note.isVisible()
    assert "no training step" in tab.no_charts_note.text()
    tab.technique_boxes["prune"].setChecked(True)
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        assert tab.start_run() is not None
    assert tab.charts.isVisible() and not tab.no_charts_note.isVisible()


def test_epoch_ticks_are_whole_numbers(window, qtbot):
    tab = window.compress_tab
    window.tabs.setCurrentWidget(tab)
    run = RunRecord(
        id="r",
        name="#1 four epochs",
        model="demo",
        data="demo",
        recipe={"steps": [{"type": "prune"}]},
    )
    for epoch in (1.0, 2.0, 3.0, 4.0):
        run.add_metric(epoch, {"val_accuracy": 0.9 + epoch / 100, "loss": 1 / epoch})
    tab.go_to(RUN)
    tab.show_run(run)
    tab.charts.redraw()
    for title, plot in tab.charts.plots.items():
        if title not in ("Accuracy", "Loss"):
            continue
        x0, x1 = plot.getViewBox().viewRange()[0]
        ticks = plot.getAxis("bottom").tickValues(x0, x1, 400)
        values = [v for _spacing, vals in ticks for v in vals]
        assert values and all(float(v).is_integer() for v in values), (title, ticks)
        assert {1.0, 2.0, 3.0, 4.0} <= set(values)


def test_examples_are_listed_with_description_and_estimate(collapse_window):
    tab = collapse_window.compress_tab
    tab.go_to(TECHNIQUES)
    texts = [tab.examples.itemText(i) for i in range(1, tab.examples.count())]
    docs = [json.loads(p.read_text()) for p in sorted(tab.examples_dir.glob("*.json"))]
    assert len(texts) == len(docs) >= 5
    for text, doc in zip(texts, docs, strict=True):
        assert text.startswith(doc["name"] + " — " + doc["description"]), text
        assert "≈" in text, text
    assert "_" not in texts[0].split(" — ")[0] or "-" in texts[0]  # names, not file stems
    tab.examples.setCurrentIndex(1)
    assert docs[0]["description"] in tab.example_note.text()
    assert "Estimated time for the loaded model: ≈" in tab.example_note.text()
    tab.go_to(REVIEW)
    assert "Estimated time on this computer: <b>≈" in tab.summary.text()


def test_examples_without_a_timed_baseline_have_no_made_up_estimate(demo_window):
    tab = demo_window.compress_tab
    # A baseline measured before timing existed (an old project or cache entry).
    demo_window.session.baseline.pop("timing", None)
    tab.refresh_estimates()
    texts = [tab.examples.itemText(i) for i in range(1, tab.examples.count())]
    assert texts and not any("≈" in t for t in texts)


def test_recipe_messages_use_on_screen_labels(window):
    tab = window.compress_tab
    tab.go_to(SETTINGS)
    tab.editors["quantize"]["sparse"].set_value(False)
    text = tab.validation.text()
    assert "“Sparse encoding” (Quantization / export)" in text
    assert "quantize.sparse" not in text
    tab.editors["prune"]["learning_rate"].widget.setText("5")
    # The label first; the recipe file's key only in brackets after it.
    assert tab.validation.text().startswith(
        "✗ step 1 (Pruning): Learning rate ('learning_rate') = 5"
    )
    warnings = validate_recipe(
        {
            "schema_version": 2,
            "steps": [{"type": "prune"}, {"type": "cluster", "preserve_sparsity": False}],
        }
    ).warnings
    assert any("without “Preserve sparsity”" in w for w in warnings), warnings
    assert not any("preserve_sparsity" in w or "quantize.sparse" in w for w in warnings)


def test_reset_returns_to_a_fresh_launch(demo_window, qtbot):
    tab = demo_window.compress_tab
    demo_window.tabs.setCurrentWidget(tab)
    tab.editors["prune"]["target_sparsity"].set_value(0.5)
    tab.technique_boxes["cluster"].setChecked(True)
    tab.recipe_name.setText("old")
    tab.examples.setCurrentIndex(2)
    with qtbot.waitSignal(tab.runFinished, timeout=10_000):
        tab.start_run()
    assert tab.log.toPlainText() and tab.run is not None
    tab.reset()
    assert tab.current_page() == TECHNIQUES and tab.run is None
    assert tab.run_title.text() == "No run yet" and tab.stage_label.text() == ""
    assert tab.log.toPlainText() == "" and tab.progress.value() == 0
    assert tab.charts.run is None and not tab.suggestions_box.isVisible()
    assert tab.selected_steps() == ["prune", "quantize"]
    assert tab.recipe_dict()["name"] == "my-recipe"
    assert tab.recipe_dict()["steps"][0]["target_sparsity"] == 0.8
    assert tab.examples.currentIndex() == 0 and not tab.results_button.isEnabled()
