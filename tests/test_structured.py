"""Structured (filter) pruning: channel groups, the smaller rebuilt model, the step."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import BadInputError, RecipeError


def _k():
    from engine.core.tfenv import keras2

    return keras2()


def _randomize(model, seed: int = 0) -> None:
    """Random weights everywhere, BatchNorm statistics too (so BN is not an identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":
            n = ws[0].shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n).astype("float32"),
                    rng.normal(0, 0.2, n).astype("float32"),
                    rng.normal(0, 0.2, n).astype("float32"),
                    rng.uniform(0.5, 1.5, n).astype("float32"),
                ]
            )
        else:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in ws])


def _out(model, x):
    return np.asarray(model(x, training=False))


def _set(layer, **values) -> None:
    """Set some channels of named weights: ``kernel=(axis, idx, value)``."""
    weights = {w.name.split(":")[0].split("/")[-1]: w for w in layer.weights}
    for name, (axis, idx, value) in values.items():
        a = weights[name].numpy()
        index = [slice(None)] * a.ndim
        index[axis] = idx
        a[tuple(index)] = value
        weights[name].assign(a)


def _cnn():
    """Demo-like Sequential CNN: Conv -> Conv -> pool -> Flatten -> Dense -> classifier."""
    k = _k()
    model = k.Sequential(
        [
            k.layers.InputLayer(input_shape=(8, 8, 1)),
            k.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            k.layers.Conv2D(12, 3, padding="same", activation="relu", name="conv2"),
            k.layers.MaxPooling2D(2, name="pool"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(16, activation="relu", name="dense"),
            k.layers.Dense(10, activation="softmax", name="classifier"),
        ]
    )
    _randomize(model)
    return model


def _residual(depth_multiplier: int = 2):
    """Stem Conv/BN/ReLU, two residual blocks (Depthwise + BN + 1x1 Conv + BN, Add), GAP,
    Dense head."""
    k = _k()
    L = k.layers
    inp = k.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    for b in (1, 2):
        y = L.DepthwiseConv2D(
            3, padding="same", depth_multiplier=depth_multiplier, name=f"b{b}_dw"
        )(x)
        y = L.BatchNormalization(name=f"b{b}_dw_bn")(y)
        y = L.ReLU(6.0, name=f"b{b}_relu")(y)
        y = L.Conv2D(8, 1, name=f"b{b}_project")(y)
        y = L.BatchNormalization(name=f"b{b}_project_bn")(y)
        x = L.Add(name=f"b{b}_add")([x, y])
    x = L.ZeroPadding2D(1, name="pad")(x)
    x = L.Conv2D(12, 3, strides=2, name="head_conv")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="drop")(x)
    out = L.Dense(5, name="logits")(x)
    model = k.Model(inp, out)
    _randomize(model)
    return model


@pytest.fixture(scope="module")
def cnn():
    return _cnn()


@pytest.fixture(scope="module")
def residual():
    return _residual()


X8 = np.random.default_rng(1).random((6, 8, 8, 1)).astype("float32")
X8C3 = np.random.default_rng(2).random((6, 8, 8, 3)).astype("float32")


# ------------------------------------------------------------------ Sequential + Flatten


def test_sequential_cnn_groups_and_halving(cnn):
    from engine.techniques.structured import prunable_groups, shrink

    groups = {g.names: g for g in prunable_groups(cnn)}
    assert set(groups) == {("conv1",), ("conv2",), ("dense",), ("classifier",)}
    assert groups[("classifier",)].reason == "model output"
    assert all(groups[(n,)].prunable for n in ("conv1", "conv2", "dense"))

    result = shrink(cnn, {"conv1": 0.5, "conv2": 0.5, "dense": 0.5, "classifier": 0.5})
    small = result.model
    assert result.kept == {"conv1": 4, "conv2": 6, "dense": 8}
    assert result.removed == {"conv1": 4, "conv2": 6, "dense": 8}
    assert result.skipped == {"classifier": "model output"}
    widths = {layer.name: layer.output_shape[-1] for layer in small.layers}
    assert widths["conv1"] == 4 and widths["conv2"] == 6 and widths["dense"] == 8
    assert widths["classifier"] == 10 and widths["flatten"] == 4 * 4 * 6
    assert result.params_after == small.count_params() < result.params_before
    assert cnn.get_layer("conv2").filters == 12  # the input model is untouched
    assert _out(small, X8).shape == (6, 10)


def test_ratio_zero_gives_the_same_outputs(cnn, residual):
    from engine.techniques.structured import shrink

    for model, x in ((cnn, X8), (residual, X8C3)):
        names = [layer.name for layer in model.layers if layer.weights]
        result = shrink(model, {n: 0.0 for n in names if "bn" not in n and "dw" not in n})
        assert result.params_after == result.params_before
        np.testing.assert_allclose(_out(result.model, x), _out(model, x), atol=1e-5)


def test_removing_zero_filters_before_flatten_keeps_the_outputs():
    """Zero filters of conv2 (non-contiguous) feed Flatten -> Dense: removing them and the
    matching Dense rows (channels-last order) must not change anything; a wrong row
    mapping would."""
    from engine.techniques.structured import shrink

    model = _cnn()
    dead = [0, 3, 4, 7, 10, 11]
    _set(model.get_layer("conv2"), kernel=(3, dead, 0.0), bias=(0, dead, 0.0))
    result = shrink(model, {"conv2": 0.5})
    assert result.kept == {"conv1": 8, "conv2": 6, "dense": 16}  # every prunable layer
    assert result.removed == {"conv1": 0, "conv2": 6, "dense": 0}
    assert result.model.get_layer("dense").get_weights()[0].shape == (4 * 4 * 6, 16)
    np.testing.assert_allclose(_out(result.model, X8), _out(model, X8), atol=1e-5)
    alive = [c for c in range(12) if c not in dead]
    rows = [p * 12 + c for p in range(16) for c in alive]  # channels-last Flatten order
    np.testing.assert_array_equal(
        result.model.get_layer("dense").get_weights()[0],
        model.get_layer("dense").get_weights()[0][rows],
    )
    # Removing live filters too does change the outputs: the check above can fail.
    other = shrink(model, {"conv2": 0.75})
    assert other.kept["conv2"] == 3
    assert not np.allclose(_out(other.model, X8), _out(model, X8), atol=1e-3)


# ------------------------------------------------------------------ residual Add groups


def test_residual_add_joins_a_group_with_bn_and_depthwise_following(residual):
    from engine.techniques.structured import prunable_groups, shrink

    groups = {g.names: g for g in prunable_groups(residual)}
    group = groups[("stem", "b1_project", "b2_project")]
    assert group.prunable and group.channels == 8
    assert {"stem_bn", "b1_dw", "b1_dw_bn", "b1_project_bn", "b2_dw", "b2_project_bn"} <= set(
        group.followers
    )
    assert groups[("logits",)].reason == "model output"
    assert groups[("head_conv",)].prunable

    result = shrink(residual, {"stem": 0.5, "b1_project": 0.5, "b2_project": 0.5})
    small = result.model
    assert result.kept["stem"] == result.kept["b1_project"] == 4
    assert small.get_layer("b1_dw").get_weights()[0].shape == (3, 3, 4, 2)
    assert small.get_layer("b1_dw_bn").get_weights()[0].shape == (8,)  # 4 channels x 2
    assert small.get_layer("head_conv").get_weights()[0].shape == (3, 3, 4, 12)
    assert _out(small, X8C3).shape == (6, 5)
    # the group takes the smallest ratio given to its members
    assert shrink(residual, {"stem": 0.5, "b1_project": 0.25}).kept["b2_project"] == 6


def test_removing_zero_channels_of_a_residual_group_keeps_the_outputs():
    """Channels 1, 4, 6 are exactly zero all along the Add group (producers, their BNs, the
    depthwise followers and their BNs): removing them must not change the outputs."""
    from engine.techniques.structured import shrink

    model = _residual(depth_multiplier=2)
    dead = [1, 4, 6]
    expanded = [c * 2 + m for c in dead for m in range(2)]
    for name in ("stem", "b1_project", "b2_project"):
        _set(model.get_layer(name), kernel=(3, dead, 0.0), bias=(0, dead, 0.0))
    for name in ("stem_bn", "b1_project_bn", "b2_project_bn"):
        _set(model.get_layer(name), gamma=(0, dead, 0.0), beta=(0, dead, 0.0))
    for b in (1, 2):
        _set(model.get_layer(f"b{b}_dw"), bias=(0, expanded, 0.0))
        _set(model.get_layer(f"b{b}_dw_bn"), gamma=(0, expanded, 0.0), beta=(0, expanded, 0.0))
    before = _out(model, X8C3)
    result = shrink(model, {"stem": 3 / 8, "b1_project": 3 / 8, "b2_project": 3 / 8})
    assert result.kept["stem"] == 5
    np.testing.assert_allclose(_out(result.model, X8C3), before, atol=1e-5)
    # a channel that is not dead changes them
    other = shrink(model, {"stem": 0.5, "b1_project": 0.5, "b2_project": 0.5})
    assert not np.allclose(_out(other.model, X8C3), before, atol=1e-3)


# ------------------------------------------------------------------ SE, Concatenate, nesting


def test_squeeze_excite_multiply_is_skipped_and_listed():
    from engine.techniques.structured import prunable_groups, shrink, skipped_warning

    k = _k()
    L = k.layers
    inp = k.Input((8, 8, 3))
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv")(inp)
    s = L.GlobalAveragePooling2D(name="se_pool")(x)
    s = L.Reshape((1, 1, 16), name="se_reshape")(s)
    s = L.Conv2D(4, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(16, 1, activation="sigmoid", name="se_expand")(s)
    x = L.Multiply(name="se_excite")([x, s])
    x = L.Conv2D(8, 3, activation="relu", name="after")(x)
    x = L.GlobalMaxPooling2D(name="gmp")(x)
    out = L.Dense(3, activation="softmax", name="out")(x)
    model = k.Model(inp, out)
    _randomize(model)
    groups = {g.names[0]: g for g in prunable_groups(model)}
    assert "Multiply 'se_excite'" in groups["conv"].reason
    assert "Reshape 'se_reshape'" in groups["conv"].reason
    assert "Multiply 'se_excite'" in groups["se_expand"].reason
    assert groups["se_reduce"].prunable and groups["after"].prunable

    ratios = {n: 0.5 for n in groups}
    result = shrink(model, ratios)
    assert set(result.skipped) == {"conv", "se_expand", "out"}
    assert result.kept == {"se_reduce": 2, "after": 4}
    assert _out(result.model, X8C3).shape == (6, 3)
    warning = skipped_warning(result.skipped)
    assert "se_expand" in warning and "Multiply" in warning and "model output" in warning
    np.testing.assert_allclose(_out(shrink(model, {}).model, X8C3), _out(model, X8C3), atol=1e-5)


def test_concatenate_conv1d_in_a_nested_model_keeps_zero_channel_identity():
    """Conv1D branches joined by Concatenate (channel offsets), inside a nested model."""
    from engine.techniques.structured import prunable_groups, shrink

    k = _k()
    L = k.layers
    inp = k.Input((12, 2))
    a = L.Conv1D(6, 3, padding="same", activation="relu", name="a")(inp)
    b = L.Conv1D(4, 3, padding="causal", activation="relu", name="b")(inp)
    x = L.Concatenate(name="cat")([a, b, inp])
    x = L.Conv1D(5, 3, activation="relu", name="c")(x)
    inner = k.Model(inp, L.GlobalAveragePooling1D(name="gap")(x), name="features")
    model = k.Sequential([k.Input((12, 2)), inner, L.Dense(3, name="head")])
    _randomize(inner)
    _randomize(model)
    assert [g.names for g in prunable_groups(model) if g.prunable] == [("a",), ("b",), ("c",)]
    _set(model.layers[0].get_layer("a"), kernel=(2, [0, 5], 0.0), bias=(0, [0, 5], 0.0))
    _set(model.layers[0].get_layer("b"), kernel=(2, [2], 0.0), bias=(0, [2], 0.0))
    x = np.random.default_rng(3).random((4, 12, 2)).astype("float32")
    result = shrink(model, {"a": 2 / 6, "b": 1 / 4})
    assert result.kept == {"a": 4, "b": 3, "c": 5} and result.removed["c"] == 0
    assert result.model.get_layer("c").get_weights()[0].shape == (3, 4 + 3 + 2, 5)
    np.testing.assert_allclose(_out(result.model, x), _out(model, x), atol=1e-5)


def test_separable_conv_follows_its_input_and_loses_zero_filters():
    from engine.techniques.structured import shrink

    k = _k()
    L = k.layers
    inp = k.Input((8, 8, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inp)
    x = L.SeparableConv2D(8, 3, depth_multiplier=2, activation="relu", name="sep")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = k.Model(inp, L.Dense(3, name="out")(x))
    _randomize(model)
    _set(model.get_layer("conv"), kernel=(3, [1, 4], 0.0), bias=(0, [1, 4], 0.0))
    _set(model.get_layer("sep"), pointwise_kernel=(3, [0, 5], 0.0), bias=(0, [0, 5], 0.0))
    result = shrink(model, {"conv": 2 / 6, "sep": 2 / 8})
    assert result.kept == {"conv": 4, "sep": 6}
    shapes = [w.shape for w in result.model.get_layer("sep").get_weights()]
    assert shapes == [(3, 3, 4, 2), (1, 1, 8, 6), (6,)]
    np.testing.assert_allclose(_out(result.model, X8C3), _out(model, X8C3), atol=1e-5)


def test_mobilenetv2_residual_groups_shrink_and_run():
    from engine.techniques.structured import prunable_groups, shrink

    k = _k()
    model = k.applications.MobileNetV2(
        alpha=0.35, input_shape=(32, 32, 3), weights=None, classes=10
    )
    groups = prunable_groups(model)
    joined = [g for g in groups if len(g.names) > 1]
    assert len(joined) == 5 and all(g.prunable for g in joined)
    assert sum(len(g.names) for g in joined) == 15  # 10 Adds join 15 projections
    result = shrink(model, {n: 0.5 for g in groups for n in g.names})
    assert result.kept["block_3_project"] == result.kept["block_5_project"] == 8
    assert result.skipped == {"predictions": "model output"}
    assert result.params_after < 0.4 * result.params_before
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    out = _out(result.model, x)
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4)


def test_bad_ratios_and_names_are_bad_input(cnn):
    from engine.techniques.structured import shrink

    with pytest.raises(BadInputError, match="nope"):
        shrink(cnn, {"nope": 0.5})
    with pytest.raises(BadInputError, match="must be in"):
        shrink(cnn, {"conv1": 1.0})


# ------------------------------------------------------------------ the recipe step


def test_recipe_order_and_knobs():
    from engine.pipeline.recipe import STEP_SPECS, fill_step, validate_recipe

    spec = STEP_SPECS["prune_filters"]
    assert spec.label == "Filter pruning"
    step = fill_step({"type": "prune_filters"}, 1)
    assert step["ratio"] == 0.5 and step["allocation"] == "uniform"
    assert step["teacher_guided"] is True and step["per_layer"] is None
    ok = validate_recipe(
        {
            "schema_version": 2,
            "steps": [
                {"type": "prune_filters"},
                {"type": "prune"},
                {"type": "quantize", "mode": "int8"},
            ],
        }
    )
    assert ok.step_types()[0] == "prune_filters"
    with pytest.raises(RecipeError, match="before 'prune'"):
        validate_recipe(
            {"schema_version": 2, "steps": [{"type": "prune"}, {"type": "prune_filters"}]}
        )


def _ctx(splits, teacher=None, events=None):
    from engine.core.events import Reporter
    from engine.techniques.registry import TrainContext

    return TrainContext(
        splits=splits,
        reporter=Reporter(events.append if events is not None else None),
        output_kind="softmax",
        batch_size=64,
        teacher=teacher,
    )


def _apply(ctx, model, **knobs):
    from engine.pipeline.recipe import fill_step
    from engine.techniques.registry import TECHNIQUES

    step = fill_step({"type": "prune_filters", **knobs}, 1)
    return TECHNIQUES["prune_filters"].apply(ctx, model, step)


def test_step_shrinks_and_fine_tunes_the_demo_teacher_guided(demo_keras_model, demo_splits):
    from engine.techniques.training import keras_accuracy

    events: list = []
    ctx = _ctx(demo_splits, teacher=demo_keras_model, events=events)
    result = _apply(ctx, demo_keras_model, ratio=0.5, epochs=1)
    info = result.info
    assert info["per_layer"] == {
        "conv1": {"kept": 16, "removed": 16},
        "conv2": {"kept": 32, "removed": 32},
        "dense": {"kept": 64, "removed": 64},
    }
    assert info["skipped"] == {"classifier": "model output"}
    assert info["params_before"] == 151306 and info["params_after"] == 38282
    assert info["teacher_guided"] is True
    assert result.model.count_params() == 38282
    assert any("classifier (model output)" in w for w in result.warnings)
    assert keras_accuracy(result.model, demo_splits, output_kind="softmax") > 0.85
    assert any(e["type"] == "metric" for e in events)
    assert any("teacher-guided" in e.get("message", "") for e in events)


def test_per_layer_ratios_and_the_global_target(demo_keras_model, demo_splits):
    ctx = _ctx(demo_splits)
    with pytest.raises(BadInputError, match="ghost"):
        _apply(ctx, demo_keras_model, per_layer={"ghost": 0.5}, epochs=0)
    fixed = _apply(ctx, demo_keras_model, ratio=0.5, per_layer={"conv1": 0.25}, epochs=0)
    assert fixed.info["per_layer"]["conv1"] == {"kept": 24, "removed": 8}
    assert fixed.info["per_layer"]["dense"]["kept"] == 64  # the rest carries the target
    skipped = _apply(ctx, demo_keras_model, ratio=0.25, per_layer={"classifier": 0.5}, epochs=0)
    assert any("'classifier' ignored: model output" in w for w in skipped.warnings)
    # dense holds 87 % of the kernel weights: at 0.5 a 0.9 on dense overshoots the target
    with pytest.raises(BadInputError, match="cannot be reached"):
        _apply(ctx, demo_keras_model, ratio=0.3, per_layer={"dense": 0.9}, epochs=0)


def test_sensitivity_allocation_from_a_file_and_measured(tmp_path, demo_keras_model, demo_splits):
    import json

    def curve(drops):
        return [
            {"ratio": r, "accuracy": 0.97 - d, "loss": 0.1 + d}
            for r, d in zip((0.25, 0.5, 0.75), drops)
        ]

    doc = {
        "schema_version": 1,
        "kind": "featherweight.sensitivity",
        "layers": [
            {"name": "conv1", "filters": curve((0.05, 0.2, 0.5))},
            {"name": "conv2", "filters": curve((0.1, 0.4, 0.8))},  # fragile
            {"name": "dense", "filters": curve((0.0, 0.0, 0.01))},  # robust
        ],
    }
    path = tmp_path / "sensitivity.json"
    path.write_text(json.dumps(doc))
    ctx = _ctx(demo_splits)
    result = _apply(
        ctx,
        demo_keras_model,
        ratio=0.5,
        allocation="sensitivity",
        sensitivity_file=str(path),
        epochs=0,
    )
    ratios = result.info["ratios"]
    assert ratios["conv2"] < 0.5 < ratios["dense"]
    sizes = {"conv1": 288, "conv2": 18432, "dense": 131072}
    mean = sum(ratios[n] * sizes[n] for n in sizes) / sum(sizes.values())
    assert abs(mean - 0.5) < 2e-3
    measured = _apply(ctx, demo_keras_model, ratio=0.5, allocation="sensitivity", epochs=0)
    assert set(measured.info["ratios"]) == set(sizes)
    mean = sum(measured.info["ratios"][n] * sizes[n] for n in sizes) / sum(sizes.values())
    assert abs(mean - 0.5) < 2e-3
