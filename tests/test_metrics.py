"""Measurements on .tflite files: sizes, accuracy through LiteRT, sparsity, latency."""

from __future__ import annotations

import gzip

import numpy as np
import pytest


@pytest.fixture(scope="module")
def float_tflite(demo_keras_model, demo_splits) -> bytes:
    from engine.techniques.quantize import convert

    return convert(demo_keras_model, demo_splits, {"mode": "float32"})


@pytest.fixture(scope="module")
def int8_io_tflite(demo_keras_model, demo_splits) -> bytes:
    from engine.techniques.quantize import convert

    step = {"mode": "int8", "io": "int8", "calibration_samples": 100}
    return convert(demo_keras_model, demo_splits, step)


def test_file_sizes_are_raw_and_gzip9(float_tflite):
    from engine.tflite.metrics import file_sizes

    sizes = file_sizes(float_tflite)
    assert sizes["tflite_bytes"] == len(float_tflite)
    assert sizes["tflite_gzip_bytes"] == len(gzip.compress(float_tflite, 9))


def _per_sample_accuracy(data: bytes, splits) -> float:
    """Independent reference: one sample at a time, no batching or resizing."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x, y = splits.arrays("test")
    hits = 0
    for i in range(len(y)):
        xi = x[i : i + 1]
        if inp["dtype"] == np.int8:
            s, z = inp["quantization"]
            xi = np.clip(np.round(xi / s + z), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], xi)
        interp.invoke()
        hits += int(np.argmax(interp.get_tensor(out["index"])[0]) == y[i])
    return hits / len(y)


def test_tflite_accuracy_matches_per_sample_run_and_keras(
    float_tflite, demo_splits, demo_keras_model
):
    from engine.techniques.training import keras_accuracy
    from engine.tflite.metrics import tflite_accuracy

    acc = tflite_accuracy(float_tflite, demo_splits)
    assert acc == pytest.approx(_per_sample_accuracy(float_tflite, demo_splits))
    assert acc == pytest.approx(keras_accuracy(demo_keras_model, demo_splits), abs=1 / 360)
    assert acc >= 0.97


def test_int8_io_model_is_quantized_and_scored_correctly(int8_io_tflite, demo_splits):
    from engine.tflite.metrics import io_details, tflite_accuracy

    io = io_details(int8_io_tflite)
    assert io["input"]["dtype"] == "int8" and io["output"]["dtype"] == "int8"
    assert io["input"]["scale"] > 0
    acc = tflite_accuracy(int8_io_tflite, demo_splits)
    assert acc == pytest.approx(_per_sample_accuracy(int8_io_tflite, demo_splits))
    assert acc >= 0.96


def test_sparsity_counts_exact_zeros_per_layer(demo_keras_model, demo_splits):
    from engine.techniques.quantize import convert
    from engine.techniques.training import fresh_copy
    from engine.tflite.metrics import sparsity_report

    model = fresh_copy(demo_keras_model)
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    kernel[: kernel.shape[0] // 4] = 0.0  # exactly 25% of the dense kernel
    dense.set_weights([kernel, bias])
    names = [layer.name for layer in model.layers]
    for mode in ("float32", "int8"):
        step = {"mode": mode, "io": "float", "calibration_samples": 50}
        report = sparsity_report(convert(model, demo_splits, step), names)
        assert set(report["per_layer_sparsity"]) == {"conv1", "conv2", "dense", "classifier"}
        if mode == "float32":
            assert report["per_layer_sparsity"]["dense"] == pytest.approx(0.25)
            assert report["per_layer_sparsity"]["conv2"] == 0.0
        else:  # int8 rounding can only add zeros
            assert 0.25 <= report["per_layer_sparsity"]["dense"] < 0.27
    assert report["max_distinct_per_channel"]["dense"] > 16


def test_latency_is_a_positive_median(float_tflite, demo_splits):
    from engine.tflite.metrics import latency_ms

    sample = demo_splits.arrays("test")[0][:1]
    ms = latency_ms(float_tflite, sample, threads=1, runs=10, warmup=2)
    assert 0 < ms < 1000


def test_size_estimate_is_close_to_the_real_int8_file(demo_keras_model, demo_splits, float_tflite):
    from engine.techniques.quantize import convert
    from engine.techniques.training import SizeEstimator
    from engine.tflite.metrics import file_sizes

    base = file_sizes(float_tflite)
    est = SizeEstimator.calibrated(
        "int8", demo_keras_model, base["tflite_bytes"], base["tflite_gzip_bytes"]
    )
    raw, gz = est.estimate(demo_keras_model)
    real = file_sizes(
        convert(
            demo_keras_model,
            demo_splits,
            {"mode": "int8", "io": "float", "calibration_samples": 50},
        )
    )
    assert raw == pytest.approx(real["tflite_bytes"], rel=0.25)
    assert gz == pytest.approx(real["tflite_gzip_bytes"], rel=0.25)
