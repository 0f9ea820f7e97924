"""Keras 3 files (what TF >= 2.16 users save) load, compress and export end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_keras3_import import keras3_files  # noqa: F401  (session fixture)

from engine.pipeline.recipe import validate_recipe
from engine.pipeline.run import compress


def _npz_for(model, path, n_train=48, n_test=24):
    shape = tuple(model.input_shape[1:])
    classes = int(model.output_shape[-1])
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        y_train=np.arange(n_train) % classes,
        x_test=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        y_test=np.arange(n_test) % classes,
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, steps",
    [
        ("seq", [{"type": "quantize", "mode": "int8", "calibration_samples": 16}]),
        (
            "residual",
            [
                {"type": "prune", "target_sparsity": 0.5, "epochs": 2},
                {"type": "quantize", "mode": "int8", "calibration_samples": 16},
            ],
        ),
        ("mobilenet", [{"type": "quantize", "mode": "int8", "calibration_samples": 16}]),
    ],
)
def test_keras3_model_compresses_and_exports(keras3_files, name, steps, tmp_path):  # noqa: F811
    from ai_edge_litert.interpreter import Interpreter

    keras_path, _, k3_model = keras3_files[name]
    data = _npz_for(k3_model, tmp_path / "data.npz")
    recipe = validate_recipe({"schema_version": 1, "batch_size": 16, "steps": steps})
    out = tmp_path / "out"
    metrics = compress(str(keras_path), str(data), recipe, out)

    assert metrics["model"]["source_format"].startswith("keras3")
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    tflite = (out / "model.tflite").read_bytes()
    assert metrics["compressed"]["tflite_bytes"] == len(tflite)
    # int8 kernels. The file shrinks less than 4x: MobileNetV2's many thin layers carry
    # per-channel scales and zero points; the two tiny test models are mostly overhead.
    assert set(metrics["compressed"]["kernel_dtypes"].values()) == {"int8"}
    if name == "mobilenet":
        assert metrics["ratio_raw"] > 2.0
    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    assert tuple(inp["shape"][1:]) == tuple(k3_model.input_shape[1:])
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    interp.invoke()
    assert (
        interp.get_tensor(interp.get_output_details()[0]["index"]).shape[-1]
        == (k3_model.output_shape[-1])
    )
    if name == "residual":
        # pruned layers reach the target; tfmot cannot prune the DepthwiseConv2D kernel
        per_layer = metrics["compressed"]["per_layer_sparsity"]
        assert per_layer["pw"] >= 0.49 and per_layer["dw"] < 0.1, per_layer
