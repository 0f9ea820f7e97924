"""Loading Keras 2 models, scope checks, nested models and the inspect report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.core.errors import UnsupportedModelError


def _keras2():
    from engine.core.tfenv import keras2

    return keras2()


@pytest.fixture(scope="session")
def keras2_files(tmp_path_factory, demo_keras_model):
    """The demo model saved by tf_keras as .keras, .h5 and SavedModel."""
    out = tmp_path_factory.mktemp("keras2")
    paths = {
        "keras2-keras": out / "demo.keras",
        "keras2-h5": out / "demo.h5",
        "keras2-savedmodel": out / "demo_savedmodel",
    }
    demo_keras_model.save(paths["keras2-keras"])
    demo_keras_model.save(paths["keras2-h5"])
    demo_keras_model.save(paths["keras2-savedmodel"], save_format="tf")
    return paths


def test_demo_loads_with_its_facts():
    from engine.models.loading import load_model

    loaded = load_model("demo")
    assert loaded.source_format == "keras2-keras"
    assert (loaded.output_kind, loaded.input_shape, loaded.num_classes) == (
        "softmax",
        (8, 8, 1),
        10,
    )
    assert loaded.has_rescaling is False
    assert loaded.import_max_abs_diff is None


@pytest.mark.parametrize("fmt", ["keras2-keras", "keras2-h5", "keras2-savedmodel"])
def test_keras2_formats_load_the_same_model(keras2_files, demo_keras_model, fmt):
    from engine.models.loading import load_model

    loaded = load_model(keras2_files[fmt])
    assert loaded.source_format == fmt
    x = np.random.default_rng(0).uniform(0, 1, (5, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.model(x), demo_keras_model(x), atol=1e-6)
    assert loaded.num_classes == 10


def _functional(last, inputs=None, k=None):
    k = k or _keras2()
    inp = inputs or k.Input((6, 6, 1))
    x = k.layers.Flatten()(inp)
    return k.Model(inp, last(x))


def _save_and_load(tmp_path, model, name="m.keras"):
    from engine.models.loading import load_model

    path = tmp_path / name
    model.save(path)
    return load_model(path)


def test_output_kind_detection(tmp_path):
    k = _keras2()
    logits = _save_and_load(tmp_path, _functional(k.layers.Dense(4)), "logits.keras")
    assert logits.output_kind == "logits"

    def dense_then(layer):
        return lambda x: layer(k.layers.Dense(4)(x))

    act = _save_and_load(tmp_path, _functional(dense_then(k.layers.Activation("softmax"))), "a.h5")
    assert act.output_kind == "softmax"
    soft = _save_and_load(tmp_path, _functional(dense_then(k.layers.Softmax())), "s.keras")
    assert soft.output_kind == "softmax"
    drop = _save_and_load(
        tmp_path,
        _functional(lambda x: k.layers.Dropout(0.1)(k.layers.Dense(4, activation="softmax")(x))),
        "d.keras",
    )
    assert drop.output_kind == "softmax"


@pytest.mark.parametrize(
    "activation, kind", [("sigmoid", "binary_sigmoid"), (None, "binary_logit")]
)
def test_single_unit_binary_output_kinds(tmp_path, activation, kind):
    from engine.models.loading import inspect_path

    k = _keras2()
    head = k.layers.Dense(1, activation=activation)
    loaded = _save_and_load(tmp_path, _functional(head), f"{kind}.h5")
    assert (loaded.output_kind, loaded.num_classes) == (kind, 2)
    report = inspect_path(tmp_path / f"{kind}.h5")
    assert report["supported"] and (report["output_kind"], report["num_classes"]) == (kind, 2)
    # a sigmoid after Dropout is still seen
    drop = _functional(lambda x: k.layers.Dropout(0.1)(k.layers.Dense(1, activation="sigmoid")(x)))
    assert _save_and_load(tmp_path, drop, "drop.keras").output_kind == "binary_sigmoid"


def test_multi_input_keras2_model_is_refused_before_loading(tmp_path, monkeypatch):
    from engine.models.loading import load_model

    k = _keras2()
    a, b = k.Input((3,)), k.Input((2,))
    model = k.Model([a, b], k.layers.Dense(2)(k.layers.Concatenate()([a, b])))
    for name in ("two_in.keras", "two_in.h5"):
        model.save(tmp_path / name)

    def no_loading(*args, **kwargs):
        raise AssertionError("a Keras loader ran before the refusal")

    monkeypatch.setattr(k.models, "load_model", no_loading)
    for name in ("two_in.keras", "two_in.h5"):
        with pytest.raises(UnsupportedModelError, match="2 inputs and 1 output;"):
            load_model(tmp_path / name)


def test_non_image_input_with_static_shape_loads(tmp_path):
    k = _keras2()
    model = k.Sequential([k.Input((12,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(3)])
    loaded = _save_and_load(tmp_path, model, "tabular.h5")
    assert (loaded.input_shape, loaded.num_classes, loaded.output_kind) == ((12,), 3, "logits")


def test_rescaling_is_detected(tmp_path):
    k = _keras2()
    model = k.Sequential(
        [k.Input((6, 6, 1)), k.layers.Rescaling(1 / 255), k.layers.Flatten(), k.layers.Dense(3)]
    )
    assert _save_and_load(tmp_path, model).has_rescaling is True


@pytest.mark.parametrize(
    "case, match",
    [
        ("multi_output", "2 outputs"),
        ("regression", "1 unit with activation 'relu'"),
        ("detection", "not a class vector"),
        ("dynamic_input", "unknown dimensions"),
        ("sigmoid", "activation is 'sigmoid'"),
    ],
)
def test_out_of_scope_models_are_refused_clearly(tmp_path, case, match):
    from engine.models.loading import inspect_path, load_model

    k = _keras2()
    inp = k.Input((6, 6, 1))
    if case == "multi_output":
        x = k.layers.Flatten()(inp)
        model = k.Model(inp, [k.layers.Dense(3)(x), k.layers.Dense(2)(x)])
    elif case == "regression":
        model = _functional(k.layers.Dense(1, activation="relu"))
    elif case == "detection":
        model = k.Model(inp, k.layers.Conv2D(6, 3)(inp))
    elif case == "dynamic_input":
        dyn = k.Input((None, None, 1))
        x = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 3)(dyn))
        model = k.Model(dyn, k.layers.Dense(3)(x))
    else:
        model = _functional(k.layers.Dense(3, activation="sigmoid"))
    path = tmp_path / f"{case}.keras"
    model.save(path)
    with pytest.raises(UnsupportedModelError, match=match) as err:
        load_model(path)
    assert "\n" not in str(err.value)
    report = inspect_path(path)  # inspect still reports what it can
    assert report["supported"] is False
    assert any(match in p for p in report["problems"])
    assert len(report["layers"]) == len(model.layers)


def test_nested_keras2_model_is_flattened(tmp_path):
    from engine.models.loading import load_model

    k = _keras2()
    binp = k.Input((8, 8, 3))
    b = k.layers.Conv2D(4, 3, name="conv")(binp)
    b = k.layers.BatchNormalization(name="bn")(b)
    base = k.Model(binp, k.layers.GlobalAveragePooling2D(name="gap")(b), name="base")
    model = k.Sequential([base, k.layers.Dense(3, activation="softmax", name="conv_head")])
    model.build((None, 8, 8, 3))
    rng = np.random.default_rng(1)
    bn = base.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in bn.get_weights()])
    loaded = _save_and_load(tmp_path, model, "nested.h5")

    flat_names = [layer.name for layer in loaded.model.layers]
    assert "conv" in flat_names and "bn" in flat_names and "base" not in flat_names
    assert any("flattened" in w for w in loaded.warnings)
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.model(x), model(x), atol=1e-5)
    assert load_model(tmp_path / "nested.h5").model.get_layer("bn").get_weights()[0].std() > 0


def test_shared_nested_model_gives_a_clear_error(tmp_path):
    from engine.models.loading import inspect_path

    k = _keras2()
    sinp = k.Input((4,))
    shared = k.Model(sinp, k.layers.Dense(4, name="d")(sinp), name="shared")
    inp = k.Input((4,))
    out = k.layers.Dense(2)(k.layers.Add()([shared(inp), shared(inp * 1.0)]))
    model = k.Model(inp, out)
    with pytest.raises(UnsupportedModelError, match="shared"):
        _save_and_load(tmp_path, model, "shared.h5")
    report = inspect_path(tmp_path / "shared.h5")
    rows = {r["name"]: r for r in report["layers"]}
    assert rows["shared"]["prune"]["supported"] is False
    assert "nested model" in rows["shared"]["prune"]["reason"]
    assert any("shared" in p for p in report["problems"])


def test_subclassed_model_is_explained_per_layer(tmp_path):
    from engine.models.loading import inspect_model, inspect_path, load_model

    k = _keras2()

    class Tiny(k.Model):
        def __init__(self):
            super().__init__()
            self.conv = k.layers.Conv2D(4, 3)
            self.flat = k.layers.Flatten()
            self.out = k.layers.Dense(3)

        def call(self, x):
            return self.out(self.flat(self.conv(x)))

    model = Tiny()
    model(np.zeros((1, 6, 6, 1), np.float32))
    report = inspect_model(model)
    assert report["subclassed"] is True and report["supported"] is False
    assert "subclassed" in report["problems"][0]
    assert [r["class"] for r in report["layers"]] == ["Conv2D", "Flatten", "Dense"]
    assert all("subclassed" in r["prune"]["reason"] for r in report["layers"])
    assert report["totals"]["params"] == 4 * 9 + 4 + 4 * 4 * 4 * 3 + 3
    json.dumps(report)

    path = tmp_path / "tiny_savedmodel"
    model.save(path, save_format="tf")
    with pytest.raises(Exception, match="Tiny"):  # unknown class: refused as unsafe first
        load_model(path)
    with pytest.raises(UnsupportedModelError, match="subclassed"):
        load_model(path, allow_unsafe=True)
    assert inspect_path(path, allow_unsafe=True)["subclassed"] is True


def test_inspect_report_of_demo():
    from engine.models.loading import format_report, inspect_path

    report = inspect_path("demo")
    json.dumps(report)
    totals = report["totals"]
    assert totals["params"] == 151_306 == totals["trainable_params"]
    assert totals["float32_bytes"] == 151_306 * 4
    # conv1 8*8*32*(3*3*1) + conv2 8*8*64*(3*3*32) + dense 1024*128 + classifier 128*10
    assert totals["macs"] == 18_432 + 1_179_648 + 131_072 + 1_280
    assert report["output_kind"] == "softmax" and report["num_classes"] == 10
    assert report["input_shape"] == [8, 8, 1] and report["source_format"] == "keras2-keras"
    rows = {r["name"]: r for r in report["layers"]}
    assert rows["conv2"]["output_shape"] == [None, 8, 8, 64]
    assert rows["conv2"]["params"] == 18_496
    assert rows["conv2"]["prune"] == {"supported": True, "reason": "prunes kernel"}
    assert rows["dense"]["cluster"]["supported"] and rows["dense"]["qat"]["supported"]
    text = format_report(report)
    assert "conv2" in text and "151,306" in text and "1,330,432" in text
    assert "Can be compressed: yes" in text


def test_inspect_explains_unsupported_layers(tmp_path):
    """Rescaling / LayerNormalization are not quantizable by tfmot's 8-bit scheme, PReLU is
    not prunable, a BatchNorm not after a conv is not foldable; separable convolutions
    count MACs for both stages."""
    from engine.models.loading import format_report, inspect_path

    k = _keras2()
    inp = k.Input((8, 8, 2))
    x = k.layers.Rescaling(1 / 255.0, name="scale")(inp)
    x = k.layers.SeparableConv2D(4, 3, padding="same", name="sep")(x)
    x = k.layers.PReLU(name="prelu")(x)
    x = k.layers.LayerNormalization(name="ln")(x)
    x = k.layers.BatchNormalization(name="bn_after_ln")(x)
    x = k.layers.DepthwiseConv2D(3, name="dw")(x)
    out = k.layers.Dense(3, name="head")(k.layers.Flatten()(x))
    path = tmp_path / "mixed.keras"
    k.Model(inp, out).save(path)

    report = inspect_path(path)
    rows = {r["name"]: r for r in report["layers"]}
    assert report["layers"][0]["class"] == "InputLayer"
    assert report["layers"][0]["output_shape"] == [None, 8, 8, 2]
    assert rows["scale"]["qat"]["supported"] is False
    assert rows["bn_after_ln"]["qat"]["supported"] is False
    assert rows["ln"]["qat"]["supported"] is False
    assert rows["prelu"]["prune"]["supported"] is False
    assert "PReLU" in rows["prelu"]["prune"]["reason"]
    assert rows["sep"]["macs"] == 8 * 8 * 2 * 9 + 8 * 8 * 2 * 4
    assert rows["dw"]["macs"] == 6 * 6 * 4 * 9
    assert report["has_rescaling"] is True and report["output_kind"] == "logits"
    assert "prelu" in report["techniques"]["prune"]["unsupported_layers"]
    assert "Not supported:" in format_report(report)


def test_subclassed_keras2_file_is_explained(tmp_path):
    from engine.core.errors import UnsafeModelError
    from engine.models.loading import load_model

    k = _keras2()

    class Head(k.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = k.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

        def get_config(self):
            return {"name": self.name}

    model = Head()
    model(np.zeros((1, 4), np.float32))
    path = tmp_path / "head.keras"
    model.save(path)
    with pytest.raises(UnsafeModelError, match="Head"):
        load_model(path)
    with pytest.raises(UnsupportedModelError, match=r"subclassed model \(Head\)"):
        load_model(path, allow_unsafe=True)
