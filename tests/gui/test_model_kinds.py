"""Issue 13 in the Model tab and the wizard: the output kind and the input kind in words, the
import notes, a text model with its token .npz end to end (recorded by the real engine:
recordings_zoo/text_cnn/, ``python tests/gui/record_events.py --zoo text_cnn``), and the
quantize step's "names" knob (keep_float) editor: None / [] / [names] through the recipe,
recipe files and the project file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine.project.document as ep
from gui.state import DataChoice, ModelInfo, Session

RECORDINGS = Path(__file__).resolve().parent / "recordings_zoo"


def _row(name: str, cls: str, shape: list, params: int = 0) -> dict:
    support = {t: {"supported": True, "reason": ""} for t in ("prune", "cluster", "qat")}
    return {"name": name, "class": cls, "output_shape": shape, "params": params, **support}


# Reports as engine.models.loading.inspect_model writes them (trimmed), one per zoo family
# the issue names; "old" ones lack input_kind / first_layer / vocab_size (projects saved by
# earlier versions): the GUI reads those from the first layer row.
BINARY_IMAGE = {
    "source_format": "keras3-keras",
    "input_shape": [32, 32, 3],
    "num_classes": 2,
    "output_kind": "binary_logit",
    "has_rescaling": True,
    "import_check": {"max_abs_diff": 9.5e-07, "tolerance": 1e-4},
    "warnings": [
        "dropped 2 augmentation/noise layer(s), inactive at inference: 'random_flip' "
        "(RandomFlip), 'random_rotation' (RandomRotation)",
        "imported from Keras 3: outputs match the original (max abs diff 9.5e-07)",
    ],
    "layers": [
        _row("input_layer", "InputLayer", [None, 32, 32, 3]),
        _row("rescaling", "Rescaling", [None, 32, 32, 3]),
        _row("conv2d", "Conv2D", [None, 16, 16, 16], 448),
        _row("separable_conv2d", "SeparableConv2D", [None, 16, 16, 32], 688),
        _row("dense", "Dense", [None, 1], 65),
    ],
}
OLD_TEXT = {
    "source_format": "keras3-keras",
    "input_shape": [40],
    "num_classes": 2,
    "output_kind": "softmax",
    "layers": [
        _row("input_layer_1", "InputLayer", [None, 40]),
        _row("embedding", "Embedding", [None, 40, 16], 8000),
        _row("conv1d", "Conv1D", [None, 36, 32], 2592),
        _row("dense_2", "Dense", [None, 2], 34),
    ],
}
LSTM = {
    "source_format": "keras3-keras",
    "input_shape": [32, 1],
    "num_classes": 3,
    "output_kind": "softmax",
    "input_kind": "sequences",
    "first_layer": "LSTM",
    "vocab_size": None,
    "layers": [_row("lstm", "LSTM", [None, 16], 1152), _row("dense_3", "Dense", [None, 3], 51)],
}
TABULAR_SIGMOID = {
    "source_format": "keras2-keras",
    "input_shape": [8],
    "num_classes": 2,
    "output_kind": "binary_sigmoid",
    "layers": [
        _row("normalization", "Normalization", [None, 8], 17),
        _row("dense_4", "Dense", [None, 1], 9),
    ],
}
LOGITS = {"input_shape": [8, 8, 1], "num_classes": 10, "output_kind": "logits", "layers": []}


@pytest.mark.parametrize(
    ("report", "output", "input_words", "picker_asks"),
    [
        (
            BINARY_IMAGE,
            "binary, one unit: logit, label 1 above 0 (labels 0 / 1)",
            "images 32×32×3, rescaled by the model (Rescaling)",
            "an .npz file or an image folder",
        ),
        (
            OLD_TEXT,
            "softmax over 2 classes",
            "token ids: 40 per sample, vocabulary 500",
            "token ids",
        ),
        (LSTM, "softmax over 3 classes", "sequences: 32 steps × 1 value", "sequences"),
        (
            TABULAR_SIGMOID,
            "binary, one unit: sigmoid, label 1 above 0.5 (labels 0 / 1)",
            "8 features (tabular), normalized by the model (Normalization)",
            "feature vectors",
        ),
        (LOGITS, "logits over 10 classes (no softmax)", "images 8×8×1", "image folder"),
    ],
    ids=["binary-image", "text-old-report", "lstm", "tabular-sigmoid", "logits"],
)
def test_model_tab_says_output_and_input_kind_in_words(
    window, report, output, input_words, picker_asks
):
    tab = window.model_tab
    tab.show_model(ModelInfo("/models/m.keras", report))
    assert tab.totals["output"].text() == output
    assert tab.totals["input_kind"].text() == input_words
    assert tab.totals["output"].toolTip() and tab.totals["input_kind"].toolTip()
    # no dataset chosen yet: the picker asks for what this model takes
    tab.data_picker.show_choice(DataChoice(spec=""))
    assert picker_asks in tab.data_picker.status.text()


def test_import_notes_are_sentences_and_augmentation_is_not_a_warning(window):
    tab = window.model_tab
    tab.show_model(ModelInfo("/models/scratch.keras", BINARY_IMAGE))
    lines = tab.subtitle.text().splitlines()
    assert lines[0].startswith("Converted from Keras 3 to Keras 2; outputs match")
    assert lines[1] == (
        "ℹ Augmentation dropped: random_flip (RandomFlip) and random_rotation "
        "(RandomRotation) only act while training, so the converted model leaves them out."
    )
    assert "⚠" not in tab.subtitle.text() and len(lines) == 2
    other = dict(BINARY_IMAGE, warnings=["layer 'c': initializer Foo has no Keras 2 equivalent"])
    tab.show_model(ModelInfo("/models/scratch.keras", other))
    assert "⚠ Layer 'c': initializer Foo has no Keras 2 equivalent" in tab.subtitle.text()
    tab.show_model(None)
    assert tab.totals["input_kind"].text() == "—" and tab.totals["output"].text() == "—"


def test_text_model_and_its_token_npz_end_to_end(make_window, qtbot):
    """The real engine's answers for the zoo's text CNN (Embedding on int token ids) and its
    .npz: the Model tab, the data verdict, the baseline, and the wizard's layer names."""
    w = make_window("--recordings", str(RECORDINGS / "text_cnn"))
    report = json.loads((RECORDINGS / "text_cnn" / "inspect.jsonl").read_text())["result"]
    model = report["path"]
    with qtbot.waitSignal(w.model_tab.modelChanged, timeout=10_000):
        w.open_model(model)
    tab = w.model_tab
    assert tab.totals["input_kind"].text() == "token ids: 40 per sample, vocabulary 500"
    assert tab.totals["output"].text() == "softmax over 2 classes"
    assert "token ids" in tab.data_picker.status.text()  # no dataset yet: asks for ids
    data = str(Path(model).parent / "data.npz")
    with qtbot.waitSignal(
        tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        assert w.choose_data(data, "auto")
    verdict = tab.data_picker.status.text()
    assert verdict.startswith("✓ 630 train / 70 validation / 200 test samples (token ids, int32)")
    assert "Embedding" in verdict and "pixel" not in verdict.lower()
    assert tab.baseline_labels["accuracy"].text() == "100.00 %"
    names = w.compress_tab.editors["quantize"]["keep_float"].widget
    assert names.layer_names() == ["embedding", "conv1d", "global_max_pooling1d"] + [
        r["name"] for r in report["layers"][4:]
    ]


# -- the keep_float editor ------------------------------------------------------------------
def _tab(qtbot, tmp_path, report=OLD_TEXT):
    from gui.compress_tab import CompressTab
    from gui.errors import ErrorReporter

    session = Session(model=ModelInfo("/models/text.keras", report))
    tab = CompressTab(None, session, ErrorReporter(), tmp_path / "runs")
    qtbot.addWidget(tab)
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    tab.refresh_data()
    return tab


def test_keep_float_editor_gives_none_pure_or_names(qtbot, tmp_path):
    tab = _tab(qtbot, tmp_path)
    ed = tab.editors["quantize"]["keep_float"]
    names = ed.widget
    step = lambda: tab.validated_recipe().to_dict()["steps"][-1]  # noqa: E731
    assert step()["keep_float"] is None and names.line.placeholderText() == "automatic"
    assert names.layer_names() == ["embedding", "conv1d", "dense_2"]  # no InputLayer
    names.line.setText("embedding, dense_2,")
    assert step()["keep_float"] == ["embedding", "dense_2"]
    assert "✓" in tab.validation.text()
    names.pure.setChecked(True)
    assert step()["keep_float"] == [] and not names.line.isEnabled()
    names.pure.setChecked(False)
    names.line.clear()
    assert step()["keep_float"] is None
    # a name the model lacks is kept (the recipe may be for another model) and marked
    names.line.setText("embedding, nope")
    assert names.unknown_names() == ["nope"] and "nope" in names.line.toolTip()
    # Choose… ticks layers in a list (the dialog answered by the test)
    names.choose = lambda all_names, checked: [all_names[0], all_names[2]]
    names.choose_button.click()
    assert step()["keep_float"] == ["embedding", "dense_2"]
    # int8-only knobs are disabled in other modes
    tab.editors["quantize"]["mode"].set_value("float16")
    assert not names.isEnabled() and not tab.editors["quantize"]["max_int8_drop"].widget.isEnabled()
    tab.editors["quantize"]["mode"].set_value("int8")
    assert names.isEnabled()


def test_completer_completes_the_name_after_the_last_comma(qtbot, tmp_path):
    names = _tab(qtbot, tmp_path).editors["quantize"]["keep_float"].widget
    c = names.completer
    names.line.setText("embedding, con")
    assert c.splitPath(names.line.text()) == ["con"]
    c.setCompletionPrefix("con")
    assert c.completionCount() == 1  # only conv1d contains "con"
    assert c.currentCompletion() == "embedding, conv1d"  # the names before are kept


@pytest.mark.parametrize("value", [None, [], ["embedding", "dense_2"]])
def test_keep_float_round_trips_through_a_recipe_file(qtbot, tmp_path, value):
    tab = _tab(qtbot, tmp_path)
    max_drop = tab.editors["quantize"]["max_int8_drop"]
    max_drop.set_value(3.5)
    tab.editors["quantize"]["keep_float"].set_value(value)
    path = tmp_path / "r.json"
    assert tab.save_recipe_file(path)
    saved = json.loads(path.read_text())["steps"][-1]
    assert saved["keep_float"] == value and saved["max_int8_drop"] == 3.5
    other = _tab(qtbot, tmp_path)
    assert other.load_recipe_file(path)
    assert other.editors["quantize"]["keep_float"].value() == value
    assert other.editors["quantize"]["max_int8_drop"].value() == 3.5
    assert other.recipe_dict()["steps"][-1]["keep_float"] == value


def test_keep_float_is_saved_in_the_project(make_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(ep.DATA_DIR_ENV, str(tmp_path / "userdata"))
    w = make_window()
    with qtbot.waitSignal(
        w.model_tab.baselineChanged, timeout=10_000, check_params_cb=lambda b: b is not None
    ):
        w.open_demo()
    tab = w.compress_tab
    for t, box in tab.technique_boxes.items():
        box.setChecked(t == "quantize")
    tab.editors["quantize"]["keep_float"].widget.line.setText("conv1, dense")
    tab.editors["quantize"]["max_int8_drop"].set_value(1.5)
    path = tmp_path / "kf.fwproj"
    assert w.project.save_as(path)
    w.close()
    w2 = make_window()
    assert w2.project.open(path)
    eds = w2.compress_tab.editors["quantize"]
    assert eds["keep_float"].value() == ["conv1", "dense"]
    assert eds["max_int8_drop"].value() == 1.5
    wizard = w2.project.project.ui["wizard"]["steps"][-1]
    assert wizard["keep_float"] == ["conv1", "dense"]


def test_lstm_macs_say_what_they_leave_out_and_data_notes_are_amber(window):
    from gui.data_picker import DataPicker

    tab = window.model_tab
    lstm = dict(LSTM, totals={"macs": 48, "macs_note": "multiply-accumulates of Conv … Dense"})
    tab.show_model(ModelInfo("/models/lstm.keras", lstm))
    assert tab.totals["macs"].text() == "48 (Conv and Dense only; not LSTM)"
    assert tab.totals["macs"].toolTip().startswith("multiply-accumulates")
    tab.show_model(ModelInfo("/models/t.keras", TABULAR_SIGMOID))
    assert "(Conv and Dense only" not in tab.totals["macs"].text()

    picker = DataPicker()
    desc = {"n_train": 630, "n_val": 70, "n_test": 200, "num_classes": 3, "scale": "none"}
    desc.update(input_kind="sequences", notes=["x_train is floating point with values up to 2"])
    picker.show_choice(DataChoice(spec="/d/series.npz", description=desc))
    assert picker.status.text().startswith("✓ 630 train") and "⚠" not in picker.status.text()
    assert picker.notes.text() == "⚠ x_train is floating point with values up to 2"
    assert not picker.notes.isHidden() and "b26a00" in picker.notes.styleSheet()
    picker.show_choice(DataChoice(spec=""))
    assert picker.notes.isHidden()
