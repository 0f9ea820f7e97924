"""Safe loading: Lambda layers and custom classes are refused before any Keras loader runs,
and broken files give a one-line BadInputError."""

from __future__ import annotations

import json
import zipfile

import pytest

from engine.core.errors import BadInputError, UnsafeModelError


def _marker_lambda(marker):
    # Writes the marker file whenever Keras calls it (building the model calls it).
    # The path travels in the closure (Keras 3 cannot reload lambdas with defaults).
    path = str(marker)
    return lambda x: (__import__("pathlib").Path(path).write_text("ran"), x)[1]


@pytest.fixture(scope="session")
def lambda_files(tmp_path_factory):
    """Keras 2 (.keras, .h5, SavedModel) and Keras 3 (.keras) models whose Lambda writes a
    marker file when its code runs. Returns (paths, marker)."""
    from engine.core.tfenv import keras2, keras3

    out = tmp_path_factory.mktemp("lambda")
    marker = out / "LAMBDA_RAN"
    k = keras2()
    inp = k.Input((4,))
    x = k.layers.Lambda(_marker_lambda(marker), name="sneaky")(inp)
    model = k.Model(inp, k.layers.Dense(3, activation="softmax")(x))
    paths = {"keras2-keras": out / "lam2.keras", "keras2-h5": out / "lam2.h5"}
    model.save(paths["keras2-keras"])
    model.save(paths["keras2-h5"])
    paths["keras2-savedmodel"] = out / "lam2_savedmodel"
    model.save(paths["keras2-savedmodel"], save_format="tf")
    k3 = keras3()
    inp3 = k3.Input((4,))
    y = k3.layers.Lambda(_marker_lambda(marker), name="sneaky")(inp3)
    m3 = k3.Model(inp3, k3.layers.Dense(3, activation="softmax")(y))
    paths["keras3-keras"] = out / "lam3.keras"
    m3.save(paths["keras3-keras"])
    paths["keras3-h5"] = out / "lam3.h5"
    m3.save(paths["keras3-h5"])
    assert marker.exists()  # building them ran the lambda: the marker detects execution
    marker.unlink()
    return paths, marker


@pytest.mark.parametrize(
    "fmt", ["keras2-keras", "keras2-h5", "keras2-savedmodel", "keras3-keras", "keras3-h5"]
)
def test_lambda_model_is_refused_and_its_code_does_not_run(lambda_files, fmt):
    from engine.models.loading import inspect_path, load_model

    paths, marker = lambda_files
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafeModelError) as err:
        load_model(paths[fmt])
    msg = str(err.value)
    # The engine's own wording; the CLI and GUI add their own hint (not Python's parameter).
    assert "sneaky" in msg and "Lambda" in msg and "would run code" in msg
    assert "allow_unsafe" not in msg
    assert any(i.layer == "sneaky" and i.class_name == "Lambda" for i in err.value.items)
    assert "\n" not in msg
    with pytest.raises(UnsafeModelError):
        inspect_path(paths[fmt])
    assert not marker.exists(), "the Lambda's code ran while loading was refused"


@pytest.mark.parametrize(
    "fmt", ["keras2-keras", "keras2-h5", "keras2-savedmodel", "keras3-keras", "keras3-h5"]
)
def test_allow_unsafe_loads_the_lambda_model(lambda_files, fmt):
    from engine.models.loading import load_model

    paths, marker = lambda_files
    marker.unlink(missing_ok=True)
    loaded = load_model(paths[fmt], allow_unsafe=True)
    assert loaded.num_classes == 3
    assert marker.exists()  # the code did run, as the user explicitly allowed
    assert any("sneaky" in w for w in loaded.warnings)
    marker.unlink()


def test_custom_layer_class_is_refused(tmp_path):
    from engine.core.tfenv import keras2
    from engine.models.loading import load_model

    k = keras2()

    class Doubler(k.layers.Layer):
        def call(self, x):
            return 2 * x

    inp = k.Input((4,))
    model = k.Model(inp, k.layers.Dense(2)(Doubler(name="twice")(inp)))
    for name in ("custom.h5", "custom.keras"):
        model.save(tmp_path / name)
        with pytest.raises(UnsafeModelError, match=r"twice.*Doubler"):
            load_model(tmp_path / name)


def test_tf_op_layers_are_checked_by_function_name():
    from engine.models.safety import StoredModel, find_unsafe

    def stored(fn):
        layer = {"class_name": "TFOpLambda", "config": {"name": "op", "function": fn}}
        cfg = {"class_name": "Functional", "config": {"name": "m", "layers": [layer]}}
        return StoredModel(path=None, fmt="h5", keras_version="2.21.0", config=cfg)  # type: ignore[arg-type]

    assert find_unsafe(stored("nn.relu")) == []
    assert find_unsafe(stored("__operators__.add")) == []
    bad = find_unsafe(stored("io.write_file"))
    assert bad and bad[0].layer == "op" and "io.write_file" in bad[0].reason


def test_builtin_models_pass_the_check(tmp_path):
    from engine.models.loading import resolve_path
    from engine.models.safety import find_unsafe, read_stored_model

    assert find_unsafe(read_stored_model(resolve_path("demo"))) == []


# ---------------------------------------------------------------- broken files


def _one_line_bad_input(path, match):
    from engine.models.loading import load_model

    with pytest.raises(BadInputError, match=match) as err:
        load_model(path)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_missing_file(tmp_path):
    _one_line_bad_input(tmp_path / "nope.keras", "not found")


def test_empty_file(tmp_path):
    (tmp_path / "empty.keras").write_bytes(b"")
    _one_line_bad_input(tmp_path / "empty.keras", "empty")
    (tmp_path / "empty.h5").write_bytes(b"")
    _one_line_bad_input(tmp_path / "empty.h5", "empty")


def test_truncated_keras_file(tmp_path, demo_model_path):
    data = demo_model_path.read_bytes()
    path = tmp_path / "cut.keras"
    path.write_bytes(data[: len(data) // 2])
    _one_line_bad_input(path, r"not a valid \.keras file")


def test_truncated_h5_file(tmp_path, demo_keras_model):
    full = tmp_path / "full.h5"
    demo_keras_model.save(full)
    data = full.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    _one_line_bad_input(cut, r"cut\.h5")


def test_text_file_named_h5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("these are not weights\n")
    _one_line_bad_input(path, "not a valid HDF5")


def test_weights_only_h5(tmp_path, demo_keras_model):
    path = tmp_path / "only.weights.h5"
    demo_keras_model.save_weights(path)
    _one_line_bad_input(path, "no model architecture")


def test_keras_zip_without_config(tmp_path):
    path = tmp_path / "odd.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    _one_line_bad_input(path, "config.json is missing")


def test_unknown_file_type(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("hello")
    _one_line_bad_input(path, "unsupported model file")


def test_corrupt_savedmodel_folders(tmp_path, lambda_files):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    _one_line_bad_input(empty, "not a SavedModel")

    no_meta = tmp_path / "no_meta"
    no_meta.mkdir()
    (no_meta / "saved_model.pb").write_bytes(b"\x00garbage")
    _one_line_bad_input(no_meta, "without Keras metadata")

    bad_meta = tmp_path / "bad_meta"
    bad_meta.mkdir()
    (bad_meta / "saved_model.pb").write_bytes(b"\x00garbage")
    (bad_meta / "keras_metadata.pb").write_bytes(b"\x0a\xff\xff\xff\x0f")
    _one_line_bad_input(bad_meta, "keras_metadata.pb cannot be parsed")


def test_savedmodel_with_broken_graph(tmp_path):
    """Valid Keras metadata but a damaged saved_model.pb: the loader's failure is one line."""
    import shutil

    from engine.core.tfenv import keras2

    k = keras2()
    model = k.Sequential([k.Input((3,)), k.layers.Dense(2, activation="softmax")])
    path = tmp_path / "sm"
    model.save(path, save_format="tf")
    shutil.rmtree(path / "variables")
    (path / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    _one_line_bad_input(path, "cannot load")
