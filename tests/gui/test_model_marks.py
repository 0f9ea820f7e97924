"""Issue 12, item 6 (Model tab): truthful marks and one import line.

A layer the technique supports but leaves dense (tfmot's prune registry lists
DepthwiseConv2D and BatchNormalization with no prunable weight) gets its own mark and
tooltip, not the green ✓ of a compressed layer — checked against what tfmot really does to a
real Keras 3 model; the Keras 3 import is said once.
"""

from __future__ import annotations

import numpy as np
import pytest

from gui.model_tab import COLUMNS
from gui.state import ModelInfo

PRUNE, CLUSTER, QAT = (COLUMNS.index(c) for c in ("Prune", "Cluster", "QAT"))


@pytest.fixture(scope="module")
def keras3_model(tmp_path_factory):
    """A small Keras 3 CNN in the MobileNet pattern, saved as .keras, and its inspect report."""
    from engine.core.tfenv import keras3
    from engine.models.loading import inspect_path

    k = keras3()
    inp = k.Input((12, 12, 3))
    x = k.layers.Conv2D(8, 3, use_bias=False, name="conv")(inp)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.ReLU(name="relu")(x)
    x = k.layers.DepthwiseConv2D(3, name="dw")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    out = k.layers.Dense(4, activation="softmax", name="head")(x)
    model = k.Model(inp, out)
    path = tmp_path_factory.mktemp("k3") / "mobile_like.keras"
    model.save(path)
    return path, inspect_path(str(path))


def test_engine_says_which_layers_tfmot_leaves_dense(keras3_model):
    """``engine.models.support`` is the one source: its effects match what tfmot's
    prune_low_magnitude really does (zeros only in the layers marked compressed)."""
    from engine.core.tfenv import keras2, tfmot
    from engine.models.loading import load_model

    path, report = keras3_model
    effects = {r["name"]: r["effects"] for r in report["layers"]}
    assert effects["dw"]["prune"] == effects["bn"]["prune"] == "kept_dense"
    assert effects["dw"]["cluster"] == effects["bn"]["cluster"] == "kept_dense"
    assert effects["conv"]["prune"] == effects["head"]["prune"] == "compressed"
    assert effects["relu"]["prune"] == "no_weights" and effects["dw"]["qat"] == "compressed"

    t, k = tfmot(), keras2()
    model = load_model(str(path)).model
    schedule = t.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    pruned = t.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile("sgd", k.losses.SparseCategoricalCrossentropy())
    x = np.random.default_rng(0).random((8, 12, 12, 3), dtype=np.float32)
    pruned.fit(
        x,
        np.arange(8) % 4,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[t.sparsity.keras.UpdatePruningStep()],
    )
    stripped = t.sparsity.keras.strip_pruning(pruned)
    # kernels (weights of 2+ dimensions) and BatchNorm's gamma: zeros only where pruned
    zeros = {
        layer.name: max(
            float(np.mean(w.numpy() == 0))
            for w in layer.weights
            if w.shape.rank > 1 or "gamma" in w.name
        )
        for layer in stripped.layers
        if any(w.shape.rank > 1 or "gamma" in w.name for w in layer.weights)
    }
    assert set(zeros) == {"conv", "bn", "dw", "head"}
    has_zeros = {name for name, z in zeros.items() if z >= 0.4}
    assert has_zeros == {n for n, e in effects.items() if e["prune"] == "compressed"}
    assert zeros["dw"] == zeros["bn"] == 0.0  # wrapped by tfmot, yet left dense


def test_model_tab_marks_left_dense_layers_distinctly(window, keras3_model):
    path, report = keras3_model
    tab = window.model_tab
    tab.show_model(ModelInfo(str(path), report))
    rows = {tab.table.item(r, 0).text(): r for r in range(tab.table.rowCount())}

    def cell(name: str, col: int):
        return tab.table.item(rows[name], col)

    assert cell("conv", PRUNE).text() == "✓" and cell("head", PRUNE).text() == "✓"
    for name in ("dw", "bn"):
        for col in (PRUNE, CLUSTER):
            item = cell(name, col)
            assert item.text() == "○", (name, col)
            assert "left dense" in item.toolTip()
            assert (
                item.foreground().color().name() != cell("conv", PRUNE).foreground().color().name()
            )
    assert "DepthwiseConv2D" in cell("dw", PRUNE).toolTip()
    assert cell("dw", QAT).text() == "✓"
    assert cell("relu", PRUNE).text() == "·"
    assert "○ supported but left dense" in tab.legend.text()
    note = tab.effects_note.text()
    assert "Prune: 2 pruned, 2 left dense" in note
    assert "BatchNormalization 1" in note and "DepthwiseConv2D 1" in note


def test_keras3_import_is_said_once(window, keras3_model):
    path, report = keras3_model
    tab = window.model_tab
    tab.show_model(ModelInfo(str(path), report))
    text = tab.subtitle.text()
    assert text.count("Keras 3") == 1, text
    assert "⚠" not in text
    line = [s for s in text.splitlines() if "Keras 3" in s][0]
    assert line.startswith("Converted from Keras 3 to Keras 2; outputs match, max difference ")
    assert "≤ 1e-4" in line


def test_reports_stored_before_effects_still_mark_dense_layers():
    """Projects saved by older versions hold reports without ``effects``."""
    from gui.model_tab import layer_effect

    row = {
        "name": "dw",
        "class": "DepthwiseConv2D",
        "params": 80,
        "prune": {"supported": True, "reason": "kept dense (tfmot prunes none of its weights)"},
        "cluster": {"supported": True, "reason": "kept as is (Featherweight clusters Dense)"},
        "qat": {"supported": True, "reason": "weights + activations"},
    }
    assert layer_effect(row, "prune")[0] == "kept_dense"
    assert layer_effect(row, "cluster")[0] == "kept_dense"
    assert layer_effect(row, "qat")[0] == "compressed"
    assert (
        layer_effect(
            {**row, "params": 0, "prune": {"supported": True, "reason": "no weights"}}, "prune"
        )[0]
        == "no_weights"
    )


def test_import_summary_numbers():
    from engine.models.keras3_import import import_summary

    assert import_summary(4e-7, 1e-5) == (
        "Converted from Keras 3 to Keras 2; outputs match, max difference 4e-7 ≤ 1e-5"
    )
    assert "DIFFER" in import_summary(2e-3, 1e-4) and "> 1e-4" in import_summary(2e-3, 1e-4)
    assert import_summary(0.0, 1e-4).endswith("max difference 0 ≤ 1e-4")
