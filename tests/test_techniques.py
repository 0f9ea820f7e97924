"""Each technique on its own, on the demo model, with few epochs."""

from __future__ import annotations

import numpy as np
import pytest

from engine.pipeline.recipe import fill_step


def _step(raw: dict) -> dict:
    return fill_step(raw, 1)


def _reporter(events: list | None = None):
    from engine.core.events import Reporter

    sink = events.append if events is not None else None
    return Reporter(sink)


def _ctx(splits, reporter=None, *, batch_size: int = 64, output_kind: str = "softmax", **kw):
    from engine.techniques.registry import TrainContext

    return TrainContext(
        splits=splits,
        reporter=reporter or _reporter(),
        output_kind=output_kind,
        batch_size=batch_size,
        seed=0,
        **kw,
    )


@pytest.fixture(scope="module")
def pruned(demo_keras_model, demo_splits):
    """Demo model pruned to 80% (2 epochs), with the events it emitted."""
    from engine.techniques.prune import prune_model

    events: list = []
    step = _step({"type": "prune", "target_sparsity": 0.8, "epochs": 2, "learning_rate": 5e-4})
    result = prune_model(
        demo_keras_model, step, _ctx(demo_splits, _reporter(events), batch_size=32)
    )
    return result, events


def test_schedule_fits_inside_the_training_run():
    from engine.techniques.prune import derive_schedule

    for steps_per_epoch, epochs in [(1, 1), (3, 1), (41, 1), (41, 4), (1000, 10)]:
        s = derive_schedule(steps_per_epoch, epochs)
        total = steps_per_epoch * epochs
        assert s.total_steps == total
        # tfmot counts steps from 1: the last pruning step must be one that runs
        assert 0 <= s.begin_step < s.end_step <= total
        assert (s.end_step - s.begin_step) % s.frequency == 0  # a pruning step at end_step
        assert s.frequency <= max(1, total // 10) or total < 10


def test_prune_reaches_target_per_layer_and_leaves_the_input_model_alone(pruned, demo_keras_model):
    from engine.techniques.training import effective_kernels

    result, events = pruned
    assert set(result.per_layer_sparsity) == {"conv1", "conv2", "dense", "classifier"}
    for name, s in result.per_layer_sparsity.items():
        assert s >= 0.79, name
    # stripped: plain layers, zeros really in the kernels
    assert all(not hasattr(layer, "pruning_vars") for layer in result.model.layers)
    kernels = effective_kernels(result.model)
    assert (kernels["dense"] == 0).mean() >= 0.79
    original = effective_kernels(demo_keras_model)
    assert (original["dense"] == 0).mean() < 0.05
    metrics = [e for e in events if e["type"] == "metric"]
    assert [m["epoch"] for m in metrics] == [1.0, 2.0]
    assert metrics[-1]["values"]["sparsity"] >= 0.79
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(metrics[-1]["values"])


def test_prune_skip_first_and_last_leaves_them_dense(demo_keras_model, demo_splits):
    from engine.techniques.prune import prune_model

    step = _step(
        {
            "type": "prune",
            "target_sparsity": 0.5,
            "schedule": "constant",
            "epochs": 1,
            "skip_first": True,
            "skip_last": True,
        }
    )
    result = prune_model(demo_keras_model, step, _ctx(demo_splits))
    assert result.per_layer_sparsity["conv1"] < 0.05
    assert result.per_layer_sparsity["classifier"] < 0.05
    assert result.per_layer_sparsity["conv2"] >= 0.49
    assert result.per_layer_sparsity["dense"] >= 0.49


def test_prune_2_4_structured_gives_two_zeros_in_every_block(demo_keras_model, demo_splits):
    from engine.techniques.prune import prune_model

    step = _step(
        {
            "type": "prune",
            "target_sparsity": 0.5,
            "epochs": 1,
            "structured_2_4": True,
            "skip_first": True,
        }
    )
    result = prune_model(demo_keras_model, step, _ctx(demo_splits))
    kernel = result.model.get_layer("dense").get_weights()[0]  # (in, out)
    blocks = (kernel.T.reshape(kernel.shape[1], -1, 4) == 0).sum(axis=-1)
    assert blocks.min() >= 2


def test_prune_that_misses_its_target_raises(monkeypatch, demo_keras_model, demo_splits):
    from engine.core.errors import FeatherweightError
    from engine.techniques import prune

    # A schedule that would only finish after training ends: the check must catch it.
    monkeypatch.setattr(
        prune,
        "derive_schedule",
        lambda spe, ep: prune.PruneSchedule(0, spe * ep * 10, spe * ep * 5, spe * ep),
    )
    step = _step({"type": "prune", "target_sparsity": 0.8, "epochs": 1})
    with pytest.raises(FeatherweightError, match="did not reach the target sparsity"):
        prune.prune_model(demo_keras_model, step, _ctx(demo_splits))


def test_cluster_keeps_at_most_n_values_and_the_zeros(pruned, demo_splits):
    from engine.techniques.cluster import cluster_model
    from engine.techniques.training import effective_kernels

    result, _ = pruned
    step = _step({"type": "cluster", "clusters": 8, "epochs": 1, "preserve_sparsity": True})
    clustered = cluster_model(result.model, step, _ctx(demo_splits))
    kernels = effective_kernels(clustered.model)
    for name in clustered.clustered_layers:
        assert len(np.unique(kernels[name])) <= 8, name
        assert (kernels[name] == 0).mean() >= result.per_layer_sparsity[name] - 1e-6, name


def test_logits_model_is_the_pre_softmax_teacher(demo_keras_model, demo_splits):
    from engine.techniques.distill import logits_model

    x = demo_splits.arrays("test")[0][:16]
    logits = np.asarray(logits_model(demo_keras_model, "softmax")(x))
    probs = np.asarray(demo_keras_model(x))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), probs, atol=1e-5)


def test_distill_width_scaled_student_ends_like_the_teacher(demo_keras_model, demo_splits):
    from engine.techniques.distill import distill_model

    events: list = []
    step = _step({"type": "distill", "width": 0.5, "epochs": 2})
    student = distill_model(
        demo_keras_model, step, _ctx(demo_splits, _reporter(events), batch_size=32)
    )
    assert student.get_layer("dense").units == 64
    assert student.get_layer("conv2").filters == 32
    assert student.get_layer("classifier").units == 10
    assert student.layers[-1].activation.__name__ == "softmax"
    assert student.count_params() < demo_keras_model.count_params() / 3
    metrics = [e for e in events if e["type"] == "metric"]
    assert len(metrics) == 2 and metrics[-1]["values"]["val_accuracy"] > 0.5


def test_distill_into_a_user_student_file(tmp_path, demo_keras_model, demo_splits):
    from engine.core.tfenv import keras2
    from engine.techniques.distill import distill_model

    k = keras2()
    student = k.Sequential(
        [
            k.layers.InputLayer(input_shape=(8, 8, 1)),
            k.layers.Flatten(),
            k.layers.Dense(32, activation="relu"),
            k.layers.Dense(10),
        ]
    )
    step = _step({"type": "distill", "epochs": 1})
    out = distill_model(
        demo_keras_model, step, _ctx(demo_splits), student=student, student_kind="logits"
    )
    assert out.count_params() == student.count_params()
    assert out.layers[-1].activation.__name__ == "softmax"  # matches the teacher


def test_distill_rejects_a_student_with_other_classes(demo_keras_model, demo_splits):
    from engine.core.errors import BadInputError
    from engine.core.tfenv import keras2
    from engine.techniques.distill import distill_model

    k = keras2()
    student = k.Sequential(
        [k.layers.InputLayer(input_shape=(8, 8, 1)), k.layers.Flatten(), k.layers.Dense(3)]
    )
    with pytest.raises(BadInputError, match="3 outputs"):
        distill_model(
            demo_keras_model, _step({"type": "distill"}), _ctx(demo_splits), student=student
        )


@pytest.mark.parametrize(
    ("mode", "kernel_dtype"), [("float16", "float16"), ("dynamic", "int8"), ("int8", "int8")]
)
def test_conversion_modes_store_kernels_as_promised(
    mode, kernel_dtype, demo_keras_model, demo_splits
):
    from engine.techniques.quantize import convert
    from engine.tflite.metrics import io_details, sparsity_report, tflite_accuracy

    data = convert(
        demo_keras_model,
        demo_splits,
        _step({"type": "quantize", "mode": mode, "calibration_samples": 50}),
    )
    report = sparsity_report(data, ["conv1", "conv2", "dense", "classifier"])
    assert report["kernel_dtypes"]["dense"] == kernel_dtype
    assert io_details(data)["input"]["dtype"] == "float32"
    assert tflite_accuracy(data, demo_splits) >= 0.96


def test_sparse_encoding_shrinks_the_raw_file_of_a_pruned_model(pruned, demo_splits):
    from engine.techniques.quantize import convert
    from engine.tflite.metrics import sparsity_report, tflite_accuracy

    result, _ = pruned
    step = _step({"type": "quantize", "mode": "int8", "calibration_samples": 50})
    dense = convert(result.model, demo_splits, step)
    sparse = convert(result.model, demo_splits, {**step, "sparse": True})
    assert len(sparse) < 0.75 * len(dense)
    assert tflite_accuracy(sparse, demo_splits) == pytest.approx(
        tflite_accuracy(dense, demo_splits), abs=0.01
    )
    assert sparsity_report(dense)["sparsity"] >= 0.79


def test_qat_alone_and_after_pruning_keeps_zeros(pruned, demo_splits):
    from engine.techniques.quantize import convert, qat_model
    from engine.tflite.metrics import sparsity_report, tflite_accuracy

    result, _ = pruned
    step = _step({"type": "qat", "epochs": 1})
    qmodel = qat_model(result.model, step, _ctx(demo_splits, done={"prune"}))
    data = convert(
        qmodel, demo_splits, _step({"type": "quantize", "mode": "int8", "calibration_samples": 50})
    )
    report = sparsity_report(data)
    assert report["sparsity"] >= 0.79  # PQAT kept the pruned zeros
    assert tflite_accuracy(data, demo_splits) >= 0.9


def test_cancel_during_training_raises_cancelled_quickly(demo_keras_model, demo_splits):
    from engine.core.errors import Cancelled
    from engine.core.events import CancelToken, Reporter
    from engine.techniques.training import fit, fresh_copy

    token = CancelToken()
    seen: list = []

    def on_event(event: dict) -> None:
        seen.append(event)
        if event["type"] == "progress" and event["step"] >= 3:
            token.cancel()

    with pytest.raises(Cancelled):
        fit(
            fresh_copy(demo_keras_model),
            _ctx(demo_splits, Reporter(on_event, token), batch_size=8),
            epochs=50,
            learning_rate=1e-4,
        )
    assert not [e for e in seen if e["type"] == "metric"]  # stopped inside the first epoch


def test_zero_keeper_keeps_pruned_zeros_through_finetuning(pruned, demo_splits):
    from engine.techniques.training import effective_kernels, fit, fresh_copy, zero_keeper

    result, _ = pruned
    model = fresh_copy(result.model)
    fit(model, _ctx(demo_splits), epochs=1, learning_rate=1e-3, callbacks=[zero_keeper(model)])
    assert (effective_kernels(model)["dense"] == 0).mean() >= 0.79


def test_prune_reaches_target_even_with_a_single_training_step(demo_keras_model):
    from engine.core.demo import digits_arrays
    from engine.data.datasets import arrays_splits
    from engine.techniques.prune import prune_model

    d = digits_arrays()
    small = {
        "x_train": d["x_train"][:20],
        "y_train": d["y_train"][:20],
        "x_test": d["x_test"][:20],
        "y_test": d["y_test"][:20],
    }
    splits = arrays_splits(small, "small", (8, 8, 1), 10)
    assert splits.steps_per_epoch(32) == 1
    step = _step({"type": "prune", "target_sparsity": 0.7, "epochs": 1})
    result = prune_model(demo_keras_model, step, _ctx(splits, batch_size=32))
    assert min(result.per_layer_sparsity.values()) >= 0.69


# ------------------------------------------------------------- binary single unit, token ids


def _binary_splits(n: int = 400, seed: int = 0):
    """Two separable classes of 6 float features, for a one-unit model (labels 0 / 1)."""
    from engine.data.datasets import arrays_splits

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * n, 6)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1]
    x, score = x[np.abs(score) > 0.3][:n], score[np.abs(score) > 0.3][:n]  # a clear margin
    y = (score > 0).astype(np.int64)
    cut = int(n * 0.8)
    arrays = {"x_train": x[:cut], "y_train": y[:cut], "x_test": x[cut:], "y_test": y[cut:]}
    return arrays_splits(arrays, "binary", (6,), 1)


def _binary_model(activation: str | None):
    from engine.core.tfenv import keras2, set_seed

    set_seed(0)
    k = keras2()
    return k.Sequential(
        [
            k.Input((6,)),
            k.layers.Dense(16, activation="relu", name="hidden"),
            k.layers.Dense(1, activation=activation, name="out"),
        ]
    )


@pytest.fixture(scope="module")
def binary_splits():
    return _binary_splits()


def test_binary_predictions_use_the_kinds_threshold():
    from engine.techniques.training import binary_threshold, predicted_labels

    pred = np.array([[0.3], [0.7], [-1.0], [0.0]], np.float32)
    assert predicted_labels(pred, "binary_sigmoid").tolist() == [0, 1, 0, 0]
    assert predicted_labels(pred, "binary_logit").tolist() == [1, 1, 0, 0]
    assert predicted_labels(np.eye(3), "softmax").tolist() == [0, 1, 2]
    assert (binary_threshold("binary_sigmoid"), binary_threshold("binary_logit")) == (0.5, 0.0)
    with pytest.raises(ValueError, match="unknown output kind"):
        predicted_labels(pred, "sigmoid")


BINARY_CASES = [("sigmoid", "binary_sigmoid"), (None, "binary_logit")]


@pytest.mark.parametrize(("activation", "kind"), BINARY_CASES)
def test_binary_single_unit_trains_and_is_measured_at_its_threshold(
    binary_splits, activation, kind
):
    from engine.techniques.training import fit, infer_output_kind, keras_accuracy

    model = _binary_model(activation)
    assert infer_output_kind(model) == kind
    events: list = []
    fit(
        model,
        _ctx(binary_splits, _reporter(events), batch_size=32, output_kind=kind),
        epochs=8,
        learning_rate=1e-2,
    )
    loss_name = type(model.loss).__name__
    assert loss_name == "BinaryCrossentropy" and model.loss.get_config()["from_logits"] == (
        kind == "binary_logit"
    )
    values = [e for e in events if e["type"] == "metric"][-1]["values"]
    assert values["val_accuracy"] > 0.9, values
    acc = keras_accuracy(model, binary_splits, output_kind=kind)
    assert acc > 0.9
    assert keras_accuracy(model, binary_splits) == acc  # kind read off the model
    x, y = binary_splits.arrays("test")
    out = np.asarray(model(x))[:, 0]
    assert acc == np.mean((out > (0.5 if kind == "binary_sigmoid" else 0.0)) == y)
    if kind == "binary_sigmoid":  # a logit's threshold on probabilities: all "1"
        assert keras_accuracy(model, binary_splits, output_kind="binary_logit") < acc - 0.2


def test_output_kind_is_read_through_qat_wrappers(binary_splits):
    import tensorflow_model_optimization as tfmot

    from engine.core.tfenv import keras2
    from engine.techniques.training import infer_output_kind

    k = keras2()
    soft = k.Sequential([k.Input((6,)), k.layers.Dense(3, activation="softmax")])
    assert infer_output_kind(soft) == "softmax"
    assert infer_output_kind(k.Sequential([k.Input((6,)), k.layers.Dense(3)])) == "logits"
    qat = tfmot.quantization.keras.quantize_model(_binary_model("sigmoid"))
    assert infer_output_kind(qat) == "binary_sigmoid"
    qat = tfmot.quantization.keras.quantize_model(_binary_model(None))
    assert infer_output_kind(qat) == "binary_logit"


def test_binary_distillation_loss_is_bernoulli_kl():
    from engine.core.tfenv import tf
    from engine.techniques.distill import distill_losses

    t = tf()
    y = t.constant([1, 0, 1], t.int64)
    teacher = t.constant([[2.0], [-1.0], [0.5]])
    student = t.constant([[1.0], [0.0], [-0.5]])
    loss = distill_losses(True, temperature=2.0, alpha=0.0)
    total, hard = loss(y, teacher, student)
    p, q = 1 / (1 + np.exp(-teacher.numpy() / 2)), 1 / (1 + np.exp(-student.numpy() / 2))
    kl = np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    np.testing.assert_allclose(float(total), 4.0 * kl, rtol=1e-5)
    assert float(loss(y, student, student)[0]) == pytest.approx(0.0, abs=1e-6)
    s = 1 / (1 + np.exp(-student.numpy()[:, 0]))
    bce = -np.mean(np.where(y.numpy() == 1, np.log(s), np.log(1 - s)))
    np.testing.assert_allclose(float(hard), bce, rtol=1e-5)
    total, _ = distill_losses(True, temperature=2.0, alpha=1.0)(y, teacher, student)
    np.testing.assert_allclose(float(total), bce, rtol=1e-5)


@pytest.mark.parametrize(("activation", "kind"), BINARY_CASES)
def test_distill_a_binary_teacher(binary_splits, activation, kind):
    from engine.techniques.distill import distill_model, logits_model
    from engine.techniques.training import fit, infer_output_kind, keras_accuracy

    teacher = _binary_model(activation)
    ctx = _ctx(binary_splits, batch_size=32, output_kind=kind)
    fit(teacher, ctx, epochs=8, learning_rate=1e-2)
    x = binary_splits.arrays("test")[0][:8]
    logits = np.asarray(logits_model(teacher, kind)(x))
    if kind == "binary_sigmoid":
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), np.asarray(teacher(x)), atol=1e-5)
    else:
        np.testing.assert_allclose(logits, np.asarray(teacher(x)), atol=1e-6)
    events: list = []
    step = _step({"type": "distill", "width": 0.5, "epochs": 8, "learning_rate": 1e-2})
    student = distill_model(
        teacher, step, _ctx(binary_splits, _reporter(events), batch_size=32, output_kind=kind)
    )
    assert student.get_layer("hidden").units == 8 and student.get_layer("out").units == 1
    assert infer_output_kind(student) == kind  # ends like the teacher
    values = [e for e in events if e["type"] == "metric"][-1]["values"]
    assert values["val_accuracy"] > 0.85, values
    assert keras_accuracy(student, binary_splits, output_kind=kind) > 0.85


def test_distill_rejects_a_softmax_student_for_a_binary_teacher(binary_splits):
    from engine.core.errors import BadInputError
    from engine.core.tfenv import keras2
    from engine.techniques.distill import distill_model

    k = keras2()
    student = k.Sequential([k.Input((6,)), k.layers.Dense(2, activation="softmax")])
    with pytest.raises(BadInputError, match="2 outputs but the model one binary output unit"):
        distill_model(
            _binary_model("sigmoid"),
            _step({"type": "distill"}),
            _ctx(binary_splits, output_kind="binary_sigmoid"),
            student=student,
            student_kind="softmax",
        )


def test_token_id_model_trains_on_int32_ids():
    from engine.core.tfenv import keras2, set_seed
    from engine.data.datasets import arrays_splits
    from engine.data.splits import model_input_of
    from engine.techniques.training import fit, keras_accuracy

    set_seed(0)
    k = keras2()
    inp = k.Input((10,), dtype="int32")
    h = k.layers.GlobalAveragePooling1D()(k.layers.Embedding(300, 8)(inp))
    model = k.Model(inp, k.layers.Dense(1, activation="sigmoid")(h))
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=300)
    x = np.where(
        y[:, None] == 1, rng.integers(150, 300, (300, 10)), rng.integers(0, 150, (300, 10))
    )
    arrays = {"x_train": x[:240], "y_train": y[:240], "x_test": x[240:], "y_test": y[240:]}
    splits = arrays_splits(arrays, "tok", (10,), 1, model_input=model_input_of(model))
    assert splits.x_train.dtype == np.int32 and splits.x_train.max() > 255  # never /255
    fit(
        model,
        _ctx(splits, batch_size=32, output_kind="binary_sigmoid"),
        epochs=6,
        learning_rate=2e-2,
    )
    assert keras_accuracy(model, splits, output_kind="binary_sigmoid") > 0.9


def test_prune_reaches_embedding_lstm_separable_and_attention_weights():
    """tfmot prunes more than Conv/Dense kernels: an Embedding's table, an LSTM's and a
    GRU's cell kernels, a separable convolution's pointwise kernel and attention
    projections all reach the target (measured on the pruning masks)."""
    from engine.core.tfenv import keras2, set_seed
    from engine.data.datasets import arrays_splits
    from engine.data.splits import model_input_of
    from engine.models.support import prune_support
    from engine.techniques.prune import prune_model

    set_seed(0)
    k = keras2()
    inp = k.Input((12,), dtype="int32")
    h = k.layers.Embedding(60, 8, name="emb")(inp)
    h = k.layers.SeparableConv1D(8, 3, padding="same", name="sep")(h)
    h = k.layers.MultiHeadAttention(2, 4, name="mha")(h, h)
    h = k.layers.LSTM(8, return_sequences=True, name="lstm")(h)
    h = k.layers.GRU(6, name="gru")(h)
    model = k.Model(inp, k.layers.Dense(3, activation="softmax", name="out")(h))
    for layer in model.layers[1:]:
        assert prune_support(layer).compresses, (layer.name, prune_support(layer).reason)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 60, size=(96, 12))
    y = rng.integers(0, 3, size=96)
    arrays = {"x_train": x[:80], "y_train": y[:80], "x_test": x[80:], "y_test": y[80:]}
    splits = arrays_splits(arrays, "tok", (12,), 3, model_input=model_input_of(model))
    step = _step({"type": "prune", "target_sparsity": 0.6, "epochs": 1})
    result = prune_model(model, step, _ctx(splits, batch_size=40))
    for name in ("emb", "sep", "mha", "lstm", "gru", "out"):
        assert result.per_layer_sparsity[name] >= 0.59, (name, result.per_layer_sparsity)
    table = result.model.get_layer("emb").get_weights()[0]
    assert np.mean(table == 0) >= 0.59  # the zeros are in the stripped model's weights


def test_batchnorm_statistics_are_re_estimated_from_the_current_weights():
    """After pruning or clustering the moving statistics must describe the new weights: the
    re-estimate is the plain average of the batch statistics over the training samples."""
    from engine.core.tfenv import keras2, set_seed
    from engine.data.datasets import arrays_splits
    from engine.techniques.training import recalibrate_batchnorm

    set_seed(0)
    k = keras2()
    model = k.Sequential(
        [k.Input((6,)), k.layers.Dense(4, name="fc"), k.layers.BatchNormalization(name="bn")]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(256, 6)).astype(np.float32)
    arrays = {"x_train": x, "y_train": np.zeros(256), "x_test": x[:8], "y_test": np.zeros(8)}
    splits = arrays_splits(arrays, "bn", (6,), 4)
    bn = model.get_layer("bn")
    assert recalibrate_batchnorm(model, splits, samples=256, batch=64) == 1
    xt, _ = splits.arrays("train")
    h = np.asarray(model.get_layer("fc")(xt))
    batch_means = [h[i : i + 64].mean(axis=0) for i in range(0, len(h), 64)]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean(batch_means, axis=0), rtol=1e-4)
    assert bn.momentum == 0.99  # restored
