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
        if not weights:
            continue
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

    def broken(cls, name, cfg, problems):
        out = real(cls, name, cfg, problems)
        if name == "dw":
            out["kernel_size"] = "not a size"
        return out

    monkeypatch.setattr(k3i, "_layer_config", broken)
    with pytest.raises(UnsupportedModelError, match=r"layer 'dw' \(DepthwiseConv2D\)"):
        load_model(keras3_files["residual"][0])
