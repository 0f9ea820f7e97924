"""Per-layer recipes (issue 14, deliver 3): the "map" knob, recipe schema 3 and the migration of
v1/v2 documents, the allocation rules, per-layer pruning targets and per-layer clustering."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.core.errors import BadInputError, RecipeError
from engine.pipeline.recipe import fill_step, load_recipe, save_recipe, validate_recipe
from engine.techniques.allocation import allocate, mean_of
from tests.helpers import train_context

# ------------------------------------------------------------------ the "map" knob


def _prune(**knobs):
    return fill_step({"type": "prune", **knobs}, 1)


def test_map_knob_takes_a_dict_or_a_string_and_empty_is_none():
    assert _prune(per_layer={"conv1": 0.5, "dense": 0})["per_layer"] == {
        "conv1": 0.5,
        "dense": 0.0,
    }
    assert _prune(per_layer=" conv1=0.5, dense = 0.9 ")["per_layer"] == {
        "conv1": 0.5,
        "dense": 0.9,
    }
    assert _prune(per_layer="")["per_layer"] is None
    assert _prune(per_layer={})["per_layer"] is None
    assert _prune()["per_layer"] is None
    clusters = fill_step({"type": "cluster", "per_layer": "conv1=32, dense=8.0"}, 1)
    assert clusters["per_layer"] == {"conv1": 32, "dense": 8}
    assert all(type(v) is int for v in clusters["per_layer"].values())


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"type": "prune", "per_layer": {"conv1": 1.5}},
            r"Per-layer sparsity .*conv1 = 1.5 is above",
        ),
        ({"type": "prune", "per_layer": {"conv1": -0.1}}, r"Per-layer sparsity .*is below"),
        (
            {"type": "prune", "per_layer": {"conv1": "half"}},
            r"Per-layer sparsity .*conv1 must be a number",
        ),
        ({"type": "prune", "per_layer": {"conv1": True}}, r"Per-layer sparsity .*must be a number"),
        (
            {"type": "prune", "per_layer": "conv1=0.5, dense"},
            r"Per-layer sparsity .*'dense' is not",
        ),
        ({"type": "prune", "per_layer": "conv1=lots"}, r"Per-layer sparsity .*'conv1=lots' is not"),
        ({"type": "prune", "per_layer": [0.5]}, r"Per-layer sparsity .*must map layer names"),
        ({"type": "cluster", "per_layer": {"d": 8.5}}, r"Per-layer clusters .*whole number"),
        ({"type": "cluster", "per_layer": {"d": 1}}, r"Per-layer clusters .*below the minimum 2"),
        ({"type": "prune", "allocation": "random"}, r"Allocation .*not one of uniform"),
    ],
)
def test_bad_map_values_are_one_line_errors_naming_the_label(step, message):
    with pytest.raises(RecipeError, match=message) as info:
        validate_recipe({"schema_version": 3, "steps": [step]})
    assert "\n" not in str(info.value)
    assert f"('{next(k for k in step if k != 'type')}')" in str(info.value)  # the file's key


# ------------------------------------------------------- schema 3 and old documents

V1_TEXT = """{"schema_version": 1, "name": "old", "seed": 2,
 "steps": [{"type": "prune", "target_sparsity": 0.7, "epochs": 3},
           {"type": "cluster", "clusters": 8},
           {"type": "finetune"},
           {"type": "qat"},
           {"type": "quantize", "mode": "int8"}]}"""
V2_TEXT = """{"schema_version": 2, "name": "v2", "seed": 1, "batch_size": 16,
 "steps": [{"type": "prune", "target_sparsity": 0.8, "schedule": "constant",
            "skip_first": true},
           {"type": "quantize", "mode": "dynamic", "keep_float": ["dense"]}]}"""
# The steps as schema 2 filled them in (every knob of that time, literally).
OLD_PRUNE = {
    "type": "prune",
    "target_sparsity": 0.7,
    "schedule": "polynomial",
    "initial_sparsity": 0.0,
    "epochs": 3,
    "learning_rate": 1e-4,
    "structured_2_4": False,
    "skip_first": False,
    "skip_last": False,
}
OLD_CLUSTER = {
    "type": "cluster",
    "clusters": 8,
    "init": "kmeans_plus_plus",
    "preserve_sparsity": True,
    "epochs": 2,
    "learning_rate": 1e-5,
}
OLD_FINETUNE = {"type": "finetune", "epochs": 2, "learning_rate": 1e-4}
OLD_QAT = {"type": "qat", "epochs": 2, "learning_rate": 1e-5}
LABEL_ONLY = {"teacher_guided": False, "temperature": 1.0, "alpha": 0.5}


def test_v1_and_v2_recipes_load_with_the_old_steps_plus_defaults(tmp_path):
    (tmp_path / "v1.json").write_text(V1_TEXT)
    (tmp_path / "v2.json").write_text(V2_TEXT)
    v1 = load_recipe(tmp_path / "v1.json")
    assert v1.name == "old" and v1.seed == 2 and v1.batch_size == 32
    prune, cluster, finetune, qat, final = v1.steps
    # the old knobs keep their values; the new ones reproduce the old behaviour
    assert prune == {
        **OLD_PRUNE,
        "allocation": "uniform",
        "per_layer": None,
        "sensitivity_file": None,
        **LABEL_ONLY,
    }
    assert cluster == {**OLD_CLUSTER, "per_layer": None, "skip": None, **LABEL_ONLY}
    assert finetune == {**OLD_FINETUNE, **LABEL_ONLY}
    assert qat == {**OLD_QAT, **LABEL_ONLY}
    assert final["mode"] == "int8" and final["keep_float"] is None
    v2 = load_recipe(tmp_path / "v2.json")
    assert v2.batch_size == 16 and v2.seed == 1
    assert v2.steps[0] == {
        **OLD_PRUNE,
        "target_sparsity": 0.8,
        "schedule": "constant",
        "epochs": 4,
        "skip_first": True,
        "allocation": "uniform",
        "per_layer": None,
        "sensitivity_file": None,
        **LABEL_ONLY,
    }
    assert v2.steps[1]["keep_float"] == ["dense"]
    # written back as schema 3, which reads back to the same recipe
    save_recipe(v1, tmp_path / "saved.json")
    saved = json.loads((tmp_path / "saved.json").read_text())
    assert saved["schema_version"] == 3
    assert load_recipe(tmp_path / "saved.json").steps == v1.steps


def test_a_v2_document_stays_label_only_when_it_says_nothing():
    """The migration pins ``teacher_guided`` to False for old documents only; a v3 one that
    sets nothing gets today's default, and an explicit value always wins."""
    from engine.techniques.registry import TEACHER_GUIDED_DEFAULT

    old = validate_recipe({"schema_version": 2, "steps": [{"type": "finetune"}]})
    new = validate_recipe({"schema_version": 3, "steps": [{"type": "finetune"}]})
    said = validate_recipe(
        {"schema_version": 2, "steps": [{"type": "finetune", "teacher_guided": True}]}
    )
    assert old.steps[0]["teacher_guided"] is False
    assert new.steps[0]["teacher_guided"] is TEACHER_GUIDED_DEFAULT
    assert said.steps[0]["teacher_guided"] is True


# ------------------------------------------------------------------ allocation rules

SHAPES = {
    "first": (3, 3, 1, 32),
    "middle": (3, 3, 32, 64),
    "big": (3, 3, 64, 176),
    "last": (128, 10),
}
SIZES = {k: int(np.prod(s)) for k, s in SHAPES.items()}


def _curve(drop_at: dict[float, float], base: float = 0.97, key: str = "sparsity"):
    return [{key: s, "accuracy": base - d, "loss": 0.0} for s, d in drop_at.items()]


ROBUST = {0.0: 0.0, 0.5: 0.0, 0.7: 0.0, 0.8: 0.005, 0.9: 0.01, 0.95: 0.03}
FRAGILE = {0.0: 0.0, 0.5: 0.05, 0.7: 0.2, 0.8: 0.4, 0.9: 0.6, 0.95: 0.8}


def test_uniform_gives_every_layer_the_target():
    assert allocate("uniform", 0.8, SIZES) == {k: 0.8 for k in SIZES}


def test_erk_keeps_small_layers_denser_and_hits_the_global_target():
    out = allocate("erk", 0.85, SIZES, shapes=SHAPES)
    assert mean_of(out, SIZES) == pytest.approx(0.85, abs=1e-3)
    # (sum of dims) / (product): first 0.13 > last 0.11 > middle 0.0055 > big 0.0024
    assert 0.0 <= out["first"] <= out["last"] < out["middle"] < out["big"] <= 0.95
    # densities follow (sum of dims) / (product of dims) for layers that are not clipped
    score = {k: sum(s) / np.prod(s) for k, s in SHAPES.items()}
    free = [k for k in SIZES if 0.0 < out[k] < 0.95]
    for a in free:
        for b in free:
            assert (1 - out[a]) / (1 - out[b]) == pytest.approx(score[a] / score[b], rel=1e-3)
    high = allocate("erk", 0.93, SIZES, shapes=SHAPES)
    assert high["big"] == pytest.approx(0.95) and mean_of(high, SIZES) == pytest.approx(
        0.93, abs=1e-3
    )


def test_sensitivity_spends_sparsity_where_accuracy_falls_least():
    curves = {"first": _curve(ROBUST), "middle": _curve(FRAGILE), "big": _curve(ROBUST)}
    curves["last"] = _curve(ROBUST)
    out = allocate("sensitivity", 0.8, SIZES, curves=curves)
    assert mean_of(out, SIZES) == pytest.approx(0.8, abs=1e-3)
    assert out["middle"] < 0.5 < out["big"]  # the fragile layer gets less
    assert max(out.values()) <= 0.95 + 1e-9
    # the same from the fragile layer's side: it becomes robust, the big one fragile
    swapped = dict(curves, middle=_curve(ROBUST), big=_curve(FRAGILE))
    other = allocate("sensitivity", 0.8, SIZES, curves=swapped)
    assert other["middle"] > out["middle"] and other["big"] < out["big"]
    assert mean_of(other, SIZES) == pytest.approx(0.8, abs=1e-3)


def test_sensitivity_baseline_key_and_fixed_layers():
    """Without a point at 0 the curve's best accuracy is the baseline; ``key`` names the
    fraction field (filter ratios); fixed layers keep their value and the rest still meets
    the global target."""
    ratio = {k: _curve(ROBUST, key="ratio") for k in SIZES}
    ratio["middle"] = _curve(FRAGILE, key="ratio")
    out = allocate("sensitivity", 0.6, SIZES, curves=ratio, key="ratio", fixed={"first": 0.1})
    assert out["first"] == 0.1 and out["middle"] < out["big"]
    assert mean_of(out, SIZES) == pytest.approx(0.6, abs=1e-3)
    # a curve with its own 0 point: the loss is measured from there (not from the max)
    noisy = [{"sparsity": 0.0, "accuracy": 0.9}, {"sparsity": 0.5, "accuracy": 0.95}]
    flat = allocate("sensitivity", 0.3, {"a": 100, "b": 100}, curves={"a": noisy, "b": noisy})
    assert mean_of(flat, {"a": 100, "b": 100}) == pytest.approx(0.3, abs=1e-3)


def test_impossible_targets_and_missing_inputs_raise_bad_input():
    with pytest.raises(BadInputError, match="cannot be reached"):
        allocate("uniform", 0.97, SIZES)
    with pytest.raises(BadInputError, match="cannot be reached with the per-layer values"):
        allocate("uniform", 0.9, SIZES, fixed={"big": 0.1})
    with pytest.raises(BadInputError, match="needs curves for"):
        allocate("sensitivity", 0.5, SIZES, curves={"first": _curve(ROBUST)})
    with pytest.raises(BadInputError, match="needs shapes"):
        allocate("erk", 0.5, SIZES)
    with pytest.raises(BadInputError, match="unknown layer"):
        allocate("uniform", 0.5, SIZES, fixed={"nope": 0.5})
    with pytest.raises(BadInputError, match="unknown allocation rule"):
        allocate("greedy", 0.5, SIZES)


# ----------------------------------------------------- per-layer pruning and clustering


@pytest.fixture(scope="module")
def tiny():
    """A tiny digits CNN (trained a little) and 400 training / 200 test samples."""
    from engine.core.demo import digits_arrays
    from engine.core.tfenv import keras2, set_seed
    from engine.data.datasets import arrays_splits

    d = digits_arrays()
    arrays = {
        "x_train": d["x_train"][:400],
        "y_train": d["y_train"][:400],
        "x_test": d["x_test"][:200],
        "y_test": d["y_test"][:200],
    }
    splits = arrays_splits(arrays, "tiny", (8, 8, 1), 10)
    set_seed(0)
    k = keras2()
    model = k.Sequential(
        [
            k.Input((8, 8, 1)),
            k.layers.Conv2D(8, 3, activation="relu", name="conv"),
            k.layers.Flatten(name="flat"),
            k.layers.Dense(32, activation="relu", name="hidden"),
            k.layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = splits.arrays("train")
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model, splits


def test_prune_reaches_each_layers_own_target(tiny):
    from engine.techniques import prune

    model, splits = tiny
    step = _prune(
        target_sparsity=0.8, allocation="erk", per_layer="out=0.3", epochs=1, learning_rate=1e-3
    )
    info = prune.Prune().apply(train_context(splits), model, step).info  # metrics.json's step entry
    targets = info["per_layer_target"]
    assert targets["out"] == 0.3 and info["allocation"] == "erk"
    sizes = {"conv": 72, "hidden": 288 * 32, "out": 320}
    assert mean_of(targets, sizes) == pytest.approx(0.8, abs=1e-3)  # the global target
    assert info["target_sparsity"] == 0.8
    assert targets["conv"] < targets["hidden"]  # ERK: the small conv stays denser
    for name, target in targets.items():
        assert info["per_layer_sparsity"][name] == pytest.approx(target, abs=0.02), name
    with pytest.raises(BadInputError, match="not pruned: nope"):
        prune.prune_model(model, _prune(per_layer={"nope": 0.5}, epochs=1), train_context(splits))


def test_prune_check_uses_each_layers_own_target(tiny, monkeypatch):
    """A layer that reaches the global target but not its own (higher) one is reported."""
    from engine.core.errors import FeatherweightError
    from engine.techniques import prune

    model, splits = tiny
    real = prune.masked_sparsity

    def short_of_hidden(wrapped):
        out = real(wrapped)
        zeros, size = out["hidden"]
        out["hidden"] = (int(size * 0.8), size)  # 80 %: the global target, not its own
        return out

    monkeypatch.setattr(prune, "masked_sparsity", short_of_hidden)
    step = _prune(target_sparsity=0.8, per_layer="conv=0.2, out=0.2", epochs=1)
    with pytest.raises(FeatherweightError, match=r"hidden 80.0% of 8\d%"):
        prune.prune_model(model, step, train_context(splits))


def test_sensitivity_allocation_from_a_file_and_measured(tiny, tmp_path):
    from engine.techniques import prune

    model, splits = tiny
    fragile = [{"sparsity": s, "accuracy": 0.9 - s, "loss": 1.0} for s in (0.0, 0.5, 0.9)]
    robust = [{"sparsity": s, "accuracy": 0.9, "loss": 1.0} for s in (0.5, 0.9)]
    doc = {
        "schema_version": 1,
        "kind": "featherweight.sensitivity",
        "layers": [
            {"name": "conv", "prune": robust},
            {"name": "hidden", "prune": fragile},
            {"name": "out", "prune": robust},
        ],
    }
    path = tmp_path / "sensitivity.json"
    path.write_text(json.dumps(doc))
    step = _prune(
        target_sparsity=0.5, allocation="sensitivity", sensitivity_file=str(path), epochs=1
    )
    events: list = []
    targets = prune.layer_targets(
        model, ["conv", "hidden", "out"], step, train_context(splits, events=events)
    )
    assert targets["conv"] == pytest.approx(0.95) and targets["out"] == pytest.approx(0.95)
    assert targets["hidden"] < 0.5
    # without a file the curves are measured (one-shot, validation split)
    measured = prune.layer_targets(
        model,
        ["conv", "hidden", "out"],
        _prune(target_sparsity=0.5, allocation="sensitivity"),
        train_context(splits, events=events),
    )
    assert mean_of(measured, {"conv": 72, "hidden": 9216, "out": 320}) == pytest.approx(
        0.5, abs=1e-3
    )
    assert any("one-shot pruning curves" in str(e.get("message")) for e in events)
    missing = tmp_path / "other.json"
    missing.write_text(json.dumps({**doc, "layers": doc["layers"][:1]}))
    with pytest.raises(BadInputError, match="no pruning curve for: hidden, out"):
        prune.layer_targets(
            model,
            ["conv", "hidden", "out"],
            _prune(allocation="sensitivity", sensitivity_file=str(missing)),
            train_context(splits),
        )


def test_cluster_per_layer_counts_and_skip(tiny):
    from engine.techniques.cluster import cluster_model
    from engine.techniques.training import effective_kernels

    model, splits = tiny
    step = fill_step(
        {
            "type": "cluster",
            "clusters": 16,
            "per_layer": {"hidden": 4},
            "skip": ["conv"],
            "epochs": 1,
            "init": "linear",
        },
        1,
    )
    result = cluster_model(model, step, train_context(splits))
    assert result.clusters == {"hidden": 4, "out": 16}
    kernels = effective_kernels(result.model)
    assert len(np.unique(kernels["hidden"])) <= 4
    assert 4 < len(np.unique(kernels["out"])) <= 16
    assert len(np.unique(kernels["conv"])) == kernels["conv"].size  # skipped: not clustered
    with pytest.raises(BadInputError, match="flat cannot be clustered"):
        cluster_model(
            model, fill_step({"type": "cluster", "skip": "flat"}, 1), train_context(splits)
        )


def test_cluster_leaves_out_a_layer_with_fewer_nonzero_weights_than_clusters(tiny):
    """A very sparse small layer (fewer non-zero weights than clusters) kept tfmot's k-means++
    from sampling its centroids ("num_to_sample <= points.rows()"): keeping zeros, it is left
    out (it already holds no more distinct values); the others are clustered as asked."""
    from engine.techniques.cluster import cluster_counts, cluster_model
    from engine.techniques.training import fresh_copy

    model, splits = tiny
    sparse = fresh_copy(model)
    out = sparse.get_layer("out")
    kernel, bias = out.get_weights()
    kept = np.zeros_like(kernel)
    kept.flat[:5] = kernel.flat[:5]  # 5 non-zero weights, 8 clusters asked
    out.set_weights([kept, bias])
    step = fill_step({"type": "cluster", "clusters": 8, "epochs": 1}, 1)
    assert step["preserve_sparsity"]
    counts, _ = cluster_counts(sparse, step)
    assert "out" not in counts and counts["hidden"] == 8
    no_zeros = cluster_counts(sparse, {**step, "preserve_sparsity": False})[0]
    assert no_zeros["out"] == 8  # without keeping zeros every weight is a point
    result = cluster_model(sparse, step, train_context(splits))
    assert "out" not in result.clusters
