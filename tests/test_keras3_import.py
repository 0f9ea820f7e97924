"""Importing models saved by Keras 3 (what TF >= 2.16 users save) into tf_keras."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import UnsupportedModelError


def _randomize(model, seed: int = 0) -> None:
    """Give every weight a random value (BN variances positive) so outputs vary by input:
    an import that copied weights wrongly cannot match by accident."""
    rng = np.random.default_rng(seed)
    for layer in _leaf_layers(model):
        weights = layer.get_weights()
        if not weights or any(not np.issubdtype(w.dtype, np.floating) for w in weights):
            continue  # no weights, or a seed generator's / a counter's integer state
        if layer.__class__.__name__ == "BatchNormalization":
            new = [rng.uniform(0.5, 1.5, w.shape) for w in weights]
            new[1] = rng.normal(0.0, 0.1, weights[1].shape)  # beta
            new[2] = rng.normal(0.0, 0.1, weights[2].shape)  # moving mean
        else:
            new = []
            for w in weights:
                fan_in = int(np.prod(w.shape[:-1])) if w.ndim > 1 else 1
                new.append(rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), w.shape))
        layer.set_weights([n.astype(np.float32) for n in new])


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _k3_sequential_cnn(k):
    return k.Sequential(
        [
            k.Input((12, 12, 1)),
            k.layers.Rescaling(1.0 / 255),
            k.layers.Conv2D(8, 3, activation="relu", kernel_regularizer="l2"),
            k.layers.MaxPooling2D(2),
            k.layers.Conv2D(8, 3, padding="same", activation="relu"),
            k.layers.Flatten(),
            k.layers.Dropout(0.2),
            k.layers.Dense(16, activation="relu"),
            k.layers.Dense(5, activation="softmax"),
        ],
        name="k3_seq_cnn",
    )


def _k3_residual(k):
    inp = k.Input((10, 10, 3), name="pixels")
    x = k.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inp)
    x = k.layers.BatchNormalization(name="stem_bn")(x)
    x = k.layers.ReLU(6.0, name="stem_relu")(x)
    y = k.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = k.layers.BatchNormalization(name="dw_bn")(y)
    y = k.layers.Activation("relu", name="dw_relu")(y)
    y = k.layers.Conv2D(8, 1, name="pw")(y)
    x = k.layers.Add(name="residual")([x, y])
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    out = k.layers.Dense(4, name="logits")(x)
    return k.Model(inp, out, name="k3_residual")


@pytest.fixture(scope="session")
def keras3_files(tmp_path_factory):
    """Keras 3 models with random weights, saved as .keras and .h5, plus their outputs."""
    from engine.core.tfenv import keras3

    k = keras3()
    out = tmp_path_factory.mktemp("keras3")
    models = {
        "seq": _k3_sequential_cnn(k),
        "residual": _k3_residual(k),
        "mobilenet": k.applications.MobileNetV2(
            input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
        ),
    }
    files = {}
    for name, model in models.items():
        _randomize(model)
        model.save(out / f"{name}.keras")
        model.save(out / f"{name}.h5")
        files[name] = (out / f"{name}.keras", out / f"{name}.h5", model)
    return files


@pytest.mark.parametrize(
    "name", ["seq", "residual", pytest.param("mobilenet", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_keras3_files_import_with_matching_outputs(keras3_files, name, ext):
    from engine.models.loading import load_model, sample_input

    keras_path, h5_path, original = keras3_files[name]
    loaded = load_model(keras_path if ext == "keras" else h5_path)

    assert loaded.source_format == f"keras3-{ext}"
    assert loaded.model.__module__.startswith("tf_keras")
    assert loaded.import_max_abs_diff is not None and loaded.import_max_abs_diff <= 1e-5
    # The check is meaningful: outputs differ between inputs and match the original.
    x = sample_input(loaded.model)
    want = np.asarray(original(x, training=False))
    got = np.asarray(loaded.model(x, training=False))
    assert np.std(want) > 1e-3
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert loaded.input_shape == tuple(original.input_shape[1:])
    assert loaded.num_classes == original.output_shape[-1]


def test_keras3_import_fills_model_facts(keras3_files):
    from engine.models.loading import load_model

    seq = load_model(keras3_files["seq"][0])
    assert (seq.output_kind, seq.has_rescaling, seq.num_classes) == ("softmax", True, 5)
    res = load_model(keras3_files["residual"][0])
    assert (res.output_kind, res.has_rescaling) == ("logits", False)
    assert res.input_shape == (10, 10, 3)
    assert any("Keras 3" in w for w in res.warnings)


def test_imported_model_is_compressible_by_tfmot(keras3_files):
    """The point of importing: tfmot can wrap the result (it refuses Keras 3 models)."""
    from engine.core.tfenv import tfmot
    from engine.models.loading import load_model

    path = keras3_files["residual"][0]
    pruned = tfmot().sparsity.keras.prune_low_magnitude(load_model(path).model)
    assert any("prune_low_magnitude" in layer.name for layer in pruned.layers)
    qat = tfmot().quantization.keras.quantize_model(load_model(path).model)
    assert any(layer.name.startswith("quant_") for layer in qat.layers)


def test_nested_keras3_model_is_flattened(tmp_path):
    """A Sequential wrapping a Functional base (the usual transfer-learning shape)."""
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model, sample_input

    k = keras3()
    base = _k3_residual(k)
    base = k.Model(base.input, base.get_layer("gap").output, name="backbone")
    model = k.Sequential([k.Input((10, 10, 3)), base, k.layers.Dense(3, activation="softmax")])
    _randomize(model)
    path = tmp_path / "nested.keras"
    model.save(path)

    loaded = load_model(path)

    names = [layer.name for layer in loaded.model.layers]
    assert not any(getattr(layer, "_is_graph_network", False) for layer in loaded.model.layers)
    assert "stem" in names and "dw_bn" in names
    assert any("flattened" in w and "backbone" in w for w in loaded.warnings)
    x = sample_input(loaded.model)
    np.testing.assert_allclose(loaded.model(x), model(x), atol=1e-5)


def test_untranslatable_layer_is_named_in_the_error(tmp_path):
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model

    k = keras3()
    model = k.Sequential(
        [
            k.Input((8, 8, 2)),
            k.layers.AdaptiveAveragePooling2D((2, 2), name="adaptive_pool"),
            k.layers.Flatten(),
            k.layers.Dense(3),
        ]
    )
    path = tmp_path / "adaptive.keras"
    model.save(path)
    with pytest.raises(UnsupportedModelError, match=r"adaptive_pool.*AdaptiveAveragePooling2D"):
        load_model(path)


def test_translate_config_maps_keras3_fields():
    from engine.models.keras3_import import translate_model_config

    k3 = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "in",
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"},
                    "inbound_nodes": [],
                },
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "name": "d",
                    "config": {
                        "name": "d",
                        "units": 2,
                        "dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}},
                        "kernel_initializer": {
                            "module": "keras.initializers",
                            "class_name": "GlorotUniform",
                            "config": {"seed": None, "input_axes": None},
                            "registered_name": None,
                        },
                        "quantization_config": None,
                    },
                    "inbound_nodes": [
                        {
                            "args": [
                                {
                                    "class_name": "__keras_tensor__",
                                    "config": {"keras_history": ["in", 0, 0]},
                                }
                            ],
                            "kwargs": {"training": False, "mask": None},
                        }
                    ],
                },
            ],
            "input_layers": ["in", 0, 0],
            "output_layers": ["d", 0, 0],
        },
    }
    k2, _ = translate_model_config(k3)
    layers = k2["config"]["layers"]
    assert layers[0]["config"]["batch_input_shape"] == [None, 4]
    dense = layers[1]["config"]
    assert dense["dtype"] == "float32"
    assert dense["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {"seed": None}}
    assert "quantization_config" not in dense
    assert layers[1]["inbound_nodes"] == [[["in", 0, 0, {"training": False}]]]
    assert k2["config"]["input_layers"] == [["in", 0, 0]]


def test_output_check_detects_a_wrong_weight(keras3_files):
    """max_abs_output_diff is what guards the import: a single changed weight shows."""
    from engine.models.loading import IMPORT_TOLERANCE, load_model, max_abs_output_diff

    _, h5_path, original = keras3_files["residual"]
    model = load_model(h5_path).model
    layer = model.get_layer("pw")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias + 0.01])
    assert max_abs_output_diff(original, model) > IMPORT_TOLERANCE


def test_keras3_subclassed_model_is_refused_then_explained(tmp_path):
    from engine.core.errors import UnsafeModelError
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model

    k = keras3()

    class Net(k.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.head = k.layers.Dense(3)

        def call(self, x):
            return self.head(x)

    model = Net()
    model(np.zeros((1, 4), np.float32))
    path = tmp_path / "sub.keras"
    model.save(path)
    with pytest.raises(UnsafeModelError, match="Net"):
        load_model(path)
    with pytest.raises(UnsupportedModelError, match="subclassed"):
        load_model(path, allow_unsafe=True)


@pytest.mark.slow
def test_sequential_wrapping_a_mobilenet_base_is_flattened(tmp_path):
    """Transfer learning as users write it: Sequential([MobileNetV2 base, pooling, head])."""
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model, sample_input

    k = keras3()
    base = k.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None
    )
    model = k.Sequential(
        [
            k.Input((96, 96, 3)),
            base,
            k.layers.GlobalAveragePooling2D(),
            k.layers.Dense(6, activation="softmax"),
        ]
    )
    _randomize(model)
    path = tmp_path / "transfer.keras"
    model.save(path)

    loaded = load_model(path)

    assert not any(hasattr(layer, "layers") for layer in loaded.model.layers)
    assert len(loaded.model.layers) == len(base.layers) + 2  # base input reused as input
    assert loaded.import_max_abs_diff <= 1e-5
    x = sample_input(loaded.model)
    want = np.asarray(model(x))
    assert np.std(want) > 1e-3
    np.testing.assert_allclose(loaded.model(x), want, atol=1e-5)


def test_layer_that_keras2_cannot_build_is_named(monkeypatch, keras3_files):
    """If tf_keras rejects a translated layer, the error names that layer and its class."""
    import engine.models.keras3_import as k3i
    from engine.models.loading import load_model

    real = k3i._layer_config

    def broken(cls, name, *args, **kwargs):
        out = real(cls, name, *args, **kwargs)
        if name == "dw":
            out["kernel_size"] = "not a size"
        return out

    monkeypatch.setattr(k3i, "_layer_config", broken)
    with pytest.raises(UnsupportedModelError, match=r"layer 'dw' \(DepthwiseConv2D\)"):
        load_model(keras3_files["residual"][0])


# ---------------------------------------------------------------- the zoo's layers (issue 13)


def _k3_from_scratch(k, final_activation=None):
    """keras.io "image classification from scratch", small: augmentation (a nested
    Sequential and one in the graph), Rescaling, SeparableConv2D residual blocks, one unit."""
    augment = k.Sequential(
        [k.layers.RandomFlip("horizontal"), k.layers.RandomRotation(0.1)], name="augment"
    )
    inp = k.Input((32, 32, 3))
    x = augment(inp)
    x = k.layers.RandomZoom(0.1, name="zoom")(x)
    x = k.layers.Rescaling(1.0 / 255)(x)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.Activation("relu")(x)
    previous = x
    for width in (8, 16):
        x = k.layers.Activation("relu")(x)
        x = k.layers.SeparableConv2D(width, 3, padding="same")(x)
        x = k.layers.BatchNormalization()(x)
        x = k.layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = k.layers.Conv2D(width, 1, strides=2, padding="same")(previous)
        x = k.layers.add([x, residual])
        previous = x
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.25)(x)
    out = k.layers.Dense(1, activation=final_activation)(x)
    return k.Model(inp, out, name="from_scratch")


def _k3_sequence(k, kind):
    inp = k.Input((16, 3))
    if kind == "conv1d":
        x = k.layers.Conv1D(8, 3, activation="relu")(inp)
        x = k.layers.MaxPooling1D(2)(x)
        x = k.layers.Conv1D(8, 3, padding="same", activation="relu")(x)
        x = k.layers.GlobalAveragePooling1D()(x)
    elif kind == "lstm":
        x = k.layers.LSTM(8, return_sequences=True)(inp)
        x = k.layers.LSTM(6)(x)
    elif kind == "gru":
        x = k.layers.GRU(8)(inp)
    else:
        x = k.layers.Bidirectional(k.layers.LSTM(6))(inp)
    return k.Model(inp, k.layers.Dense(3, activation="softmax")(x), name=f"seq_{kind}")


def _k3_text_cnn(k, pooling="max"):
    inp = k.Input((20,), dtype="int32")
    x = k.layers.Embedding(50, 8)(inp)
    if pooling == "max":
        x = k.layers.Conv1D(8, 3, activation="relu")(x)
        x = k.layers.GlobalMaxPooling1D()(x)
    else:
        x = k.layers.GlobalAveragePooling1D()(x)
    return k.Model(inp, k.layers.Dense(3)(x), name=f"text_{pooling}")


def _k3_transformer(k):
    """keras.io "text classification with Transformer", written with functional layers:
    token + position embeddings (a Keras 3 constant added by an operation node),
    MultiHeadAttention(x, x), LayerNormalization, a gelu feed-forward block."""
    maxlen, vocab, dim = 12, 40, 8
    inp = k.Input((maxlen,), dtype="int32")
    tokens = k.layers.Embedding(vocab, dim, name="tokens")(inp)
    positions = k.layers.Embedding(maxlen, dim, name="positions")
    x = tokens + positions(k.ops.arange(maxlen))
    attn = k.layers.MultiHeadAttention(num_heads=2, key_dim=dim, name="mha")(x, x)
    attn = k.layers.Dropout(0.1)(attn)
    x = k.layers.LayerNormalization(epsilon=1e-6)(x + attn)
    ffn = k.layers.Dense(16, activation="gelu")(x)
    ffn = k.layers.Dense(dim)(ffn)
    x = k.layers.LayerNormalization(epsilon=1e-6)(k.layers.Add()([x, ffn]))
    x = k.layers.GlobalAveragePooling1D()(x)
    return k.Model(inp, k.layers.Dense(2, activation="softmax")(x), name="transformer")


def _k3_ops_and_activations(k):
    """MobileNetV3's building blocks: ``x + 3.0`` / ``* (1/6)`` operation nodes,
    hard_swish / hard_sigmoid / relu6 / leaky_relu / silu, ZeroPadding, Reshape, Permute."""
    inp = k.Input((12, 12, 3))
    x = k.layers.ZeroPadding2D(((0, 1), (0, 1)))(inp)
    x = k.layers.Conv2D(8, 3, strides=2, activation="hard_swish", name="conv_hswish")(x)
    se = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = k.layers.Conv2D(8, 1, activation="relu6")(se)
    se = k.layers.ReLU(6.0)(se + 3.0) * (1.0 / 6.0)  # Keras 3 applications' hard_sigmoid
    x = k.layers.Multiply()([x, se])
    x = k.layers.Activation("hard_sigmoid")(x - 0.5)
    x = k.layers.LeakyReLU()(x * x)
    x = k.layers.Conv2D(6, 1, activation="silu")(x)
    x = k.layers.Activation("leaky_relu")(x / 2.0)
    x = k.layers.Reshape((36, 6))(x)
    x = k.layers.Permute((2, 1))(x)
    x = k.layers.Flatten()(x)
    return k.Model(inp, k.layers.Dense(4)(x), name="ops_acts")


def _k3_tabular(k, features):
    norm = k.layers.Normalization(name="norm")
    norm.adapt(features)
    inp = k.Input((features.shape[1],))
    x = norm(inp)
    x = k.layers.Dense(8, activation="relu")(x)
    return k.Model(inp, k.layers.Dense(3, activation="softmax")(x), name="tabular")


def _raw_features(n=64, seed=0):
    """Tabular features of very different ranges (0.1 ... 1,700)."""
    rng = np.random.default_rng(seed)
    scales = np.array([0.1, 3.0, 40.0, 1700.0])
    return (rng.uniform(0.5, 1.5, (n, 4)) * scales).astype(np.float32)


def _assert_imports(path, original, x, expect_kind=None):
    from engine.models.loading import load_model

    loaded = load_model(path)
    assert loaded.model.__module__.startswith("tf_keras")
    want = np.asarray(original(x, training=False))
    got = np.asarray(loaded.model(x, training=False))
    assert np.std(want) > 1e-4, "the check would not notice wrong weights"
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert loaded.import_max_abs_diff is not None and loaded.import_max_abs_diff <= 1e-4
    if expect_kind:
        assert loaded.output_kind == expect_kind
    return loaded


@pytest.fixture(scope="session")
def zoo_layers(tmp_path_factory):
    """name -> (.keras path, .h5 path, Keras 3 model, sample input) of small random models."""
    from engine.core.tfenv import keras3

    k = keras3()
    out = tmp_path_factory.mktemp("keras3_zoo")
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    series = rng.normal(0, 1, (4, 16, 3)).astype(np.float32)
    tokens = rng.integers(0, 12, (4, 20)).astype(np.int32)
    models = {
        "from_scratch": (_k3_from_scratch(k), images),
        "from_scratch_sigmoid": (_k3_from_scratch(k, "sigmoid"), images),
        "conv1d": (_k3_sequence(k, "conv1d"), series),
        "lstm": (_k3_sequence(k, "lstm"), series),
        "gru": (_k3_sequence(k, "gru"), series),
        "bilstm": (_k3_sequence(k, "bidirectional"), series),
        "text_cnn": (_k3_text_cnn(k, "max"), tokens),
        "text_gap": (_k3_text_cnn(k, "avg"), tokens),
        "transformer": (_k3_transformer(k), tokens[:, :12]),
        "ops_acts": (_k3_ops_and_activations(k), rng.normal(0, 2, (4, 12, 12, 3))),
        "tabular": (_k3_tabular(k, _raw_features()), _raw_features(8, seed=3)),
    }
    files = {}
    for name, (model, x) in models.items():
        if name not in ("tabular",):
            _randomize(model, seed=len(name))
        model.save(out / f"{name}.keras")
        model.save(out / f"{name}.h5")
        files[name] = (out / f"{name}.keras", out / f"{name}.h5", model, np.asarray(x))
    return files


ZOO_NAMES = ["from_scratch", "conv1d", "lstm", "gru", "bilstm", "text_cnn", "text_gap",
             "transformer", "ops_acts", "tabular"]  # fmt: skip


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_layers_import_with_matching_outputs(zoo_layers, name):
    keras_path, _, original, x = zoo_layers[name]
    _assert_imports(keras_path, original, x)


@pytest.mark.parametrize("name", ["from_scratch", "lstm", "bilstm", "text_cnn", "tabular"])
def test_zoo_layers_import_from_h5(zoo_layers, name):
    _, h5_path, original, x = zoo_layers[name]
    _assert_imports(h5_path, original, x)


@pytest.mark.parametrize("name", ["transformer", "ops_acts"])
def test_keras3_h5_with_operation_nodes_is_refused_with_the_way_out(zoo_layers, name):
    """Keras 3 cannot read back its own .h5 files holding operation nodes (``x + 3.0``):
    say so and point at .keras, on one line."""
    from engine.core.errors import BadInputError
    from engine.models.loading import load_model

    with pytest.raises(BadInputError, match=r"operation nodes.*\.keras") as err:
        load_model(zoo_layers[name][1])
    assert "\n" not in str(err.value)


def test_augmentation_is_dropped_and_named(zoo_layers):
    keras_path, _, original, x = zoo_layers["from_scratch"]
    loaded = _assert_imports(keras_path, original, x, expect_kind="binary_logit")
    classes = {layer.__class__.__name__ for layer in loaded.model.layers}
    assert not any(c.startswith("Random") for c in classes)
    assert {"Rescaling", "SeparableConv2D"} <= classes
    note = next(w for w in loaded.warnings if "augmentation" in w)
    assert "RandomFlip" in note and "RandomRotation" in note and "'zoom' (RandomZoom)" in note
    assert "inactive at inference" in note
    assert loaded.has_rescaling and loaded.num_classes == 2


def test_single_unit_sigmoid_is_binary(zoo_layers):
    from engine.models.loading import inspect_path

    keras_path, _, original, x = zoo_layers["from_scratch_sigmoid"]
    loaded = _assert_imports(keras_path, original, x, expect_kind="binary_sigmoid")
    assert loaded.num_classes == 2
    report = inspect_path(keras_path)
    assert report["supported"] and report["output_kind"] == "binary_sigmoid"
    assert report["num_classes"] == 2


def test_token_model_keeps_int_input_and_checks_with_real_ids(zoo_layers):
    from engine.models.loading import load_model, sample_input

    loaded = load_model(zoo_layers["text_cnn"][0])
    assert loaded.model.inputs[0].dtype.name == "int32"
    ids = sample_input(loaded.model)
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < 50 and ids.max() > 10
    assert loaded.input_shape == (20,) and loaded.output_kind == "logits"


def test_attention_weights_are_copied_by_sublayer(zoo_layers):
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model

    keras_path, _, original, _ = zoo_layers["transformer"]
    mha = load_model(keras_path).model.get_layer("mha")
    src = keras3().models.load_model(keras_path).get_layer("mha")
    got = {w.name.split(":")[0].split("/")[-2] + "/" + w.name.split(":")[0].split("/")[-1]: w
           for w in mha.weights}  # fmt: skip
    assert set(got) == {f"{s}/{v}" for s in ("query", "key", "value", "attention_output")
                        for v in ("kernel", "bias")}  # fmt: skip
    for w in src.weights:
        key = "/".join(w.path.split("/")[-2:])
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(w))


def test_operation_nodes_and_activations_become_keras2_layers(zoo_layers):
    from engine.models.loading import load_model

    keras_path, _, original, x = zoo_layers["ops_acts"]
    model = load_model(keras_path).model
    classes = [layer.__class__.__name__ for layer in model.layers]
    assert "Lambda" not in classes
    assert classes.count("Rescaling") >= 4  # + 3.0, * 1/6, - 0.5, / 2.0 and hard_sigmoids
    assert "Multiply" in classes and "LeakyReLU" in classes
    assert model.get_layer("conv_hswish").activation.__name__ == "linear"
    # hard_swish spelled out: x * relu(x / 6 + 0.5, max 1)
    assert model.get_layer("conv_hswish_hswish").__class__.__name__ == "Multiply"


def test_normalization_keeps_its_adapted_statistics(zoo_layers):
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model

    keras_path, _, original, x = zoo_layers["tabular"]
    norm = load_model(keras_path).model.get_layer("norm")
    src = keras3().models.load_model(keras_path).get_layer("norm")
    np.testing.assert_allclose(np.ravel(norm.mean), np.ravel(src.get_weights()[0]), rtol=1e-6)
    assert float(np.max(np.ravel(norm.mean))) > 1000  # the 1,700-range feature


@pytest.fixture(scope="session")
def multi_io_files(tmp_path_factory):
    from engine.core.tfenv import keras3

    k = keras3()
    out = tmp_path_factory.mktemp("keras3_multi")
    a, b = k.Input((4,), name="a"), k.Input((3,), name="b")
    two_in = k.Model([a, b], k.layers.Dense(3)(k.layers.Concatenate()([a, b])))
    inp = k.Input((6,))
    h = k.layers.Dense(5, activation="relu")(inp)
    two_out = k.Model(inp, [k.layers.Dense(3)(h), k.layers.Dense(2, activation="softmax")(h)])
    named = k.Model(inp, {"cls": k.layers.Dense(3)(h), "box": k.layers.Dense(4)(h)})
    paths = {}
    for name, model in (("two_inputs", two_in), ("two_outputs", two_out), ("dict_out", named)):
        for ext in ("keras", "h5"):
            model.save(out / f"{name}.{ext}")
            paths[f"{name}.{ext}"] = out / f"{name}.{ext}"
    return paths


@pytest.mark.parametrize(
    "name, match",
    [
        ("two_inputs.keras", "2 inputs and 1 output;"),
        ("two_inputs.h5", "2 inputs and 1 output;"),
        ("two_outputs.keras", "1 input and 2 outputs;"),
        ("two_outputs.h5", "1 input and 2 outputs;"),
        ("dict_out.keras", "1 input and 2 outputs;"),
    ],
)
def test_multi_io_is_refused_in_one_line_before_any_loader(
    multi_io_files, name, match, monkeypatch
):
    from engine.core.tfenv import keras2, keras3
    from engine.models.loading import load_model

    def no_loading(*args, **kwargs):
        raise AssertionError("a Keras loader ran before the refusal")

    monkeypatch.setattr(keras3().models, "load_model", no_loading)
    monkeypatch.setattr(keras2().models, "load_model", no_loading)
    with pytest.raises(UnsupportedModelError, match=match) as err:
        load_model(multi_io_files[name])
    assert "\n" not in str(err.value) and "single-input, single-output" in str(err.value)


def test_multi_output_is_still_inspected(multi_io_files):
    from engine.models.loading import inspect_path

    report = inspect_path(multi_io_files["two_outputs.keras"])
    assert report["supported"] is False
    assert any("2 outputs" in p for p in report["problems"])
    assert report["import_check"]["max_abs_diff"] <= 1e-5


def test_multi_output_compress_exits_2_with_one_line(multi_io_files, tmp_path, capsys):
    from engine.cli import main

    recipe = tmp_path / "r.json"
    recipe.write_text('{"schema_version": 1, "steps": [{"type": "quantize"}]}')
    code = main(["compress", str(multi_io_files["two_outputs.keras"]), "--data", "demo",
                 "--recipe", str(recipe), "--out", str(tmp_path / "out"), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "2 outputs" in err and "Traceback" not in err


def test_untranslatable_option_and_operation_are_named(tmp_path):
    from engine.core.tfenv import keras3
    from engine.models.loading import load_model

    k = keras3()
    inp = k.Input((6,))
    x = k.layers.Dense(4, lora_rank=2, name="lora_dense")(inp)
    x = k.ops.cumsum(x, axis=-1)
    model = k.Model(inp, k.layers.Dense(3)(x))
    path = tmp_path / "odd.keras"
    model.save(path)
    with pytest.raises(UnsupportedModelError) as err:
        load_model(path)
    msg = str(err.value)
    assert "'lora_dense' (Dense): option lora_rank=2" in msg
    assert "(Cumsum)" in msg and "\n" not in msg
