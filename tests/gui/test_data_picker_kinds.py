"""The data picker's verdict for token, tabular and binary .npz datasets (issue 13, item 4):
accepted, said for what they are, no image wording for them."""

from __future__ import annotations

import numpy as np


def _describe(x: np.ndarray, y: np.ndarray, shape, classes, model_input=None) -> dict:
    from engine.data.datasets import arrays_splits

    arrays = {"x_train": x[:40], "y_train": y[:40], "x_test": x[40:], "y_test": y[40:]}
    return arrays_splits(arrays, "d.npz", shape, classes, model_input=model_input).describe()


def test_token_and_tabular_npz_are_accepted_and_named(qtbot, tmp_path):
    from engine.data.splits import ModelInput
    from gui.data_picker import DataPicker
    from gui.state import DataChoice

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    tokens = _describe(rng.integers(0, 5000, (50, 16)), y, (16,), 1, ModelInput("Embedding", 5000))
    tabular = _describe(
        rng.uniform(0.1, 1700, (50, 4)).astype(np.float32), y, (4,), 2, ModelInput("Normalization")
    )
    picker = DataPicker()
    qtbot.addWidget(picker)
    path = str(tmp_path / "d.npz")
    picker.show_choice(DataChoice(spec=path, description=tokens))
    text = picker.status.text()
    assert picker.npz.isChecked() and text.startswith("✓")
    assert "(token ids, int32), 2 classes (binary: labels 0 / 1), scaling none" in text
    assert "Embedding" in text and "pixel" not in text.lower()
    picker.show_choice(DataChoice(spec=path, description=tabular))
    text = picker.status.text()
    assert "(feature vectors), 2 classes, scaling none" in text and "binary" not in text
    assert "Normalization" in text and "⚠" not in text
    picker.grab().save(str(tmp_path / "picker.png"))


def test_image_verdict_keeps_its_wording():
    from gui.data_picker import verdict_text

    d = {"n_train": 1, "n_val": 2, "n_test": 3, "num_classes": 10, "scale": "1/255"}
    assert verdict_text(d) == "✓ 1 train / 2 validation / 3 test samples, 10 classes, scaling 1/255"
    d["input_kind"] = "images"
    assert verdict_text(d).startswith("✓ 1 train / 2 validation / 3 test samples (images), 10")
