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


# --- Issue 13: binary outputs, token inputs, recurrent models, int8 checked against float ---


class ArraySplits:
    """The part of ``DataSplits`` that conversion and LiteRT scoring use, over arrays
    (train / val / test in order; calibration yields float32 like ``DataSplits``)."""

    def __init__(self, x, y, n_val: int, n_test: int) -> None:
        n_train = len(y) - n_val - n_test
        cut = {"train": (0, n_train), "val": (n_train, n_train + n_val)}
        cut["test"] = (n_train + n_val, len(y))
        self.parts = {k: (x[a:b], y[a:b]) for k, (a, b) in cut.items()}
        self.n_val = n_val

    def arrays(self, split):
        return self.parts[split]

    def batches(self, split, batch_size=256):
        x, y = self.parts[split]
        for i in range(0, len(y), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]

    def calibration(self, n=300):
        x = self.parts["train"][0][:n]
        for i in range(len(x)):
            yield x[i : i + 1].astype(np.float32)


def _fit(model, splits, loss, epochs):
    x, y = splits.arrays("train")
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def _keras_labels(model, x, kind):
    from engine.tflite.metrics import predicted_labels

    return predicted_labels(np.asarray(model(x, training=False)), kind)


def test_predicted_labels_argmax_and_binary_thresholds():
    from engine.tflite.metrics import predicted_labels

    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert predicted_labels(probs, "softmax").tolist() == [1, 0]
    sig = np.array([[0.2], [0.5], [0.51], [0.9]])
    assert predicted_labels(sig, "binary_sigmoid").tolist() == [0, 0, 1, 1]
    assert predicted_labels(sig, None).tolist() == [0, 0, 1, 1]  # one unit: a sigmoid
    logit = np.array([[-0.3], [0.0], [0.2]])
    assert predicted_labels(logit, "binary_logit").tolist() == [0, 0, 1]
    assert predicted_labels(logit, "binary_sigmoid").tolist() == [0, 0, 0]


@pytest.fixture(scope="module")
def binary_logit():
    """One logit unit (Keras 3 image-from-scratch style head), known weights: logit =
    x0 - 0.5 x1, label 1 when x0 > 0.3 x1 (so the model is right on most, not all)."""
    from engine.core.tfenv import keras2

    k = keras2()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    y = (x[:, 0] > 0.3 * x[:, 1]).astype(np.int64)
    model = k.Sequential([k.layers.InputLayer(input_shape=(2,)), k.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[1.0], [-0.5]]), np.zeros(1)])
    return model, ArraySplits(x, y, n_val=100, n_test=200)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_binary_logit_scored_at_threshold_zero_in_litert(binary_logit, mode):
    from engine.techniques.quantize import convert
    from engine.tflite.metrics import io_details, tflite_accuracy

    model, splits = binary_logit
    x, y = splits.arrays("test")
    expected = float(np.mean(_keras_labels(model, x, "binary_logit") == y))
    assert 0.8 < expected < 1.0
    data = convert(model, splits, {"mode": mode, "io": "int8", "calibration_samples": 200})
    if mode == "int8":
        assert io_details(data)["output"]["dtype"] == "int8"
    acc = tflite_accuracy(data, splits, output_kind="binary_logit")
    assert acc == pytest.approx(expected, abs=0.02 if mode == "int8" else 1e-9)
    # argmax over one unit always says class 0: the old scoring was wrong
    assert tflite_accuracy(data, splits, output_kind="logits") == pytest.approx(1 - y.mean())


@pytest.fixture(scope="module")
def token_model():
    """Embedding text CNN on int32 token ids: label 1 when token 7 occurs."""
    from engine.core.tfenv import keras2, set_seed

    k = keras2()
    set_seed(0)
    rng = np.random.default_rng(1)
    x = rng.integers(1, 40, size=(900, 16)).astype(np.int32)
    x[x == 7] = 8
    y = rng.integers(0, 2, size=900)
    for i in np.flatnonzero(y):
        x[i, rng.integers(0, 16)] = 7
    inp = k.Input(shape=(16,), dtype="int32")
    h = k.layers.Embedding(40, 8)(inp)
    h = k.layers.Conv1D(16, 3, activation="relu")(h)
    h = k.layers.GlobalMaxPooling1D()(h)
    model = k.Model(inp, k.layers.Dense(2, activation="softmax")(h))
    splits = ArraySplits(x, y, n_val=100, n_test=200)
    return _fit(model, splits, "sparse_categorical_crossentropy", 8), splits


def test_token_ids_stay_int32_through_int8_and_are_scored(token_model):
    from engine.techniques.quantize import convert
    from engine.tflite.metrics import io_details, tflite_accuracy

    model, splits = token_model
    x, y = splits.arrays("test")
    keras_acc = float(np.mean(_keras_labels(model, x, "softmax") == y))
    assert keras_acc > 0.9
    data = convert(model, splits, {"mode": "int8", "io": "int8", "calibration_samples": 200})
    io = io_details(data)
    assert io["input"]["dtype"] == "int32" and io["input"]["scale"] == 0.0
    assert io["output"]["dtype"] == "int8"
    assert tflite_accuracy(data, splits) == pytest.approx(keras_acc, abs=0.02)


def test_embedding_and_lstm_kernels_count_in_the_sparsity(token_model, recurrent_models):
    """Sparsity is measured on every weight matrix in the file, not only Conv/Dense kernels:
    an Embedding's table (GATHER) and an LSTM's gates (the fused sequence op)."""
    from engine.core.tfenv import keras2
    from engine.techniques.quantize import convert
    from engine.tflite.metrics import sparsity_report

    text, splits = token_model
    models, seq = recurrent_models
    k = keras2()
    for model, data_splits, layer_type in (
        (text, splits, "Embedding"),
        (models["lstm"], seq, "LSTM"),
    ):
        copy = k.models.clone_model(model)
        copy.set_weights(model.get_weights())
        layer = next(lay for lay in copy.layers if type(lay).__name__ == layer_type)
        weights = layer.get_weights()
        flat = weights[0].reshape(-1)  # a view: half of the table / the input kernel zeroed
        flat[: flat.size // 2] = 0.0
        layer.set_weights(weights)
        names = [lay.name for lay in copy.layers]
        for mode in ("float32", "int8"):
            step = {"mode": mode, "io": "float", "calibration_samples": 50}
            report = sparsity_report(convert(copy, data_splits, step), names)
            ours = {
                n: v
                for n, v in report["per_layer_sparsity"].items()
                if n.split("#")[0] == layer.name
            }
            assert ours, (layer_type, mode, sorted(report["per_layer_sparsity"]))
            assert max(ours.values()) >= 0.45, (layer_type, mode, ours)
            assert report["sparsity"] > 0.0


def _sequence_data(n: int = 900, steps: int = 12, channels: int = 3):
    """Class = the channel with the largest mean over time (noisy)."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, channels, size=n)
    x = rng.normal(size=(n, steps, channels)).astype(np.float32)
    x[np.arange(n), :, y] += 0.8
    return ArraySplits(x, y, n_val=100, n_test=200)


RECURRENT = {
    # layer -> the ops LiteRT runs it with, float32 / int8 (Bidirectional: two fused LSTMs,
    # one on the reversed sequence; GRU has no fused op: a WHILE loop in float, which the
    # int8 calibrator crashes on, so int8 unrolls it over the 12 steps)
    "lstm": ({"UNIDIRECTIONAL_SEQUENCE_LSTM"}, {"UNIDIRECTIONAL_SEQUENCE_LSTM"}),
    "bilstm": ({"UNIDIRECTIONAL_SEQUENCE_LSTM", "REVERSE_V2"},) * 2,
    "gru": ({"WHILE"}, {"UNPACK", "FULLY_CONNECTED", "TANH"}),
}


@pytest.fixture(scope="module")
def recurrent_models():
    from engine.core.tfenv import keras2, set_seed

    k = keras2()
    splits = _sequence_data()
    models = {}
    for name in RECURRENT:
        set_seed(0)
        cell = {
            "lstm": lambda: k.layers.LSTM(8),
            "bilstm": lambda: k.layers.Bidirectional(k.layers.LSTM(6)),
            "gru": lambda: k.layers.GRU(8),
        }[name]()
        model = k.Sequential(
            [k.layers.InputLayer(input_shape=(12, 3)), cell, k.layers.Dense(3, "softmax")]
        )
        models[name] = _fit(model, splits, "sparse_categorical_crossentropy", 4)
    return models, splits


@pytest.mark.parametrize("name", list(RECURRENT))
def test_recurrent_models_convert_without_flex_at_batch_one(recurrent_models, name, tmp_path):
    from engine.techniques.quantize import convert
    from engine.tflite.metrics import fixed_batch, tflite_accuracy
    from engine.tflite.report import report_tflite

    models, splits = recurrent_models
    model = models[name]
    x, y = splits.arrays("test")
    keras_acc = float(np.mean(_keras_labels(model, x, "softmax") == y))
    assert keras_acc > 0.6
    for mode, ops in zip(("float32", "int8"), RECURRENT[name], strict=True):
        data = convert(model, splits, {"mode": mode, "io": "float", "calibration_samples": 100})
        path = tmp_path / f"{name}-{mode}.tflite"
        path.write_bytes(data)
        report = report_tflite(path)
        assert report["flex_ops"] == [] and report["custom_ops"] == []
        assert report["verdicts"]["litert_builtins"]["ok"]
        assert ops <= {o["name"] for o in report["ops"]}, report["op_sequence"]
        if mode == "int8":
            assert "WHILE" not in report["op_sequence"]
        assert fixed_batch(data) == 1
        acc = tflite_accuracy(data, splits)  # fed one sample at a time
        assert acc == pytest.approx(keras_acc, abs=0.006 if mode == "float32" else 0.05)


@pytest.fixture(scope="module")
def tabular_model():
    """Tabular MLP whose first layer is an adapted Normalization on raw features from
    0.1 to 1,700; the label depends on the two small-range features."""
    from engine.core.tfenv import keras2, set_seed

    k = keras2()
    set_seed(0)
    rng = np.random.default_rng(3)
    ranges = np.array([0.1, 1.0, 10.0, 100.0, 1000.0, 1700.0], dtype=np.float32)
    x = (rng.uniform(-1, 1, size=(1200, 6)) * ranges + ranges).astype(np.float32)
    y = (x[:, 0] > ranges[0]).astype(np.int64) + 2 * (x[:, 1] > ranges[1]).astype(np.int64)
    splits = ArraySplits(x, y, n_val=200, n_test=200)
    norm = k.layers.Normalization()
    norm.adapt(splits.arrays("train")[0])
    model = k.Sequential(
        [
            k.layers.InputLayer(input_shape=(6,)),
            norm,
            k.layers.Dense(32, activation="relu"),
            k.layers.Dense(4, activation="softmax"),
        ]
    )
    return _fit(model, splits, "sparse_categorical_crossentropy", 30), splits


INT8 = {"mode": "int8", "io": "float", "calibration_samples": 300, "max_int8_drop": 2.0}


def test_pure_int8_of_raw_tabular_features_loses_points_and_says_so(tabular_model):
    from engine.tflite.int8_debug import checked_int8

    model, splits = tabular_model
    check = checked_int8(model, splits, {**INT8, "keep_float": []})
    assert check.float_accuracy > 0.9
    assert check.drop_points > 10  # the silent loss of the issue
    assert check.keep_float == [] and check.full_integer
    assert check.debugger_seconds is None  # pure int8 asked: nothing searched
    assert any("pure int8 was asked" in w for w in check.warnings)


def test_first_layer_normalization_on_raw_features_stays_float(tabular_model, tmp_path):
    from engine.tflite.int8_debug import checked_int8
    from engine.tflite.metrics import io_details, tflite_accuracy
    from engine.tflite.report import report_tflite

    model, splits = tabular_model
    check = checked_int8(model, splits, INT8)
    norm = model.layers[0].name  # "normalization" or "normalization_1"... in a long session
    assert check.keep_float == [norm]
    assert check.drop_points <= 2.0
    assert not check.full_integer and check.float_ops
    assert any(f"'{norm}' (Normalization) kept in float" in w for w in check.warnings)
    assert io_details(check.data)["input"]["dtype"] == "float32"
    x, y = splits.arrays("test")
    keras_test = float(np.mean(_keras_labels(model, x, "softmax") == y))
    assert tflite_accuracy(check.data, splits) >= keras_test - 0.02
    path = tmp_path / "tabular.tflite"
    path.write_bytes(check.data)
    report = report_tflite(path)
    assert not report["full_integer"]["ok"] and report["full_integer"]["int8"]
    tflm = report["verdicts"]["tflite_micro"]
    assert not tflm["ok"] and any("not full-integer" in p for p in tflm["problems"])


def test_debugger_finds_the_layer_responsible(tabular_model, monkeypatch):
    """With the up-front rule off, the drop alone sends the engine to QuantizationDebugger,
    which must point at the layers on the raw features."""
    from engine.tflite import int8_debug

    model, splits = tabular_model
    monkeypatch.setattr(int8_debug, "RANGE_RATIO", float("inf"))
    check = int8_debug.checked_int8(model, splits, INT8)
    assert check.debugger_seconds is not None and check.ranked_layers
    assert check.keep_float and check.drop_points <= 2.0, check.to_dict()
    assert len(check.attempts) >= 2
    assert any("kept in float" in w for w in check.warnings)


def test_keep_float_names_are_checked(tabular_model):
    from engine.core.errors import BadInputError
    from engine.techniques.quantize import convert, keep_float_names

    model, splits = tabular_model
    assert keep_float_names(None) is None
    assert keep_float_names([]) == []
    assert keep_float_names("dense, normalization") == ["dense", "normalization"]
    with pytest.raises(BadInputError, match="nope"):
        convert(model, splits, {**INT8, "keep_float": ["nope"]})


def test_a_fused_lstm_can_be_kept_float_and_is_ranked_by_its_layer(recurrent_models):
    """The converter names a fused LSTM's output "tfl.unidirectional_sequence_lstm", not after
    the layer: keep_float and the debugger's ranking still find it by the layer's name."""
    from ai_edge_litert.tools import flatbuffer_utils

    from engine.techniques.quantize import convert, layer_of_tensor, tensor_in_layers
    from engine.tflite.report import full_integer

    models, splits = recurrent_models
    model = models["lstm"]
    name = model.layers[0].name
    assert layer_of_tensor("tfl.unidirectional_sequence_lstm", ["dense"], [name]) == name
    assert tensor_in_layers("tfl.unidirectional_sequence_lstm1", {name}, [name])
    assert not tensor_in_layers("tfl.unidirectional_sequence_lstm", {"dense"}, [name])
    step = {"mode": "int8", "io": "float", "calibration_samples": 50, "keep_float": [name]}
    data = convert(model, splits, step)
    integer = full_integer(flatbuffer_utils.read_model_from_bytearray(bytearray(data)))
    assert not integer["ok"] and "UNIDIRECTIONAL_SEQUENCE_LSTM" in integer["float_ops"]
