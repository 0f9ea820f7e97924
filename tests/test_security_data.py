"""Security around datasets and the trust question: image folders never follow a symbolic link
out of the folder, ``.npz`` files never unpickle, and the worker's refusal of a code-bearing
model names every item and says whether trusting the file would let it load at all."""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import DataError
from engine.data.datasets import load_data

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")


# ----------------------------------------------------------------------------- image folders


def _png(path: Path, value: int) -> None:
    import tensorflow as tf

    img = np.full((6, 6, 3), value, np.uint8)
    path.write_bytes(tf.io.encode_png(img).numpy())


def _classes(root: Path, names=("a", "b"), n: int = 4) -> Path:
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _png(root / name / f"{i}.png", 40 * c + i)
    return root


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder next to the dataset holding a valid image (so following a link would work)."""
    d = tmp_path / "private"
    d.mkdir()
    _png(d / "secret.png", 200)
    return d


@needs_symlinks
def test_linked_image_outside_the_folder_is_refused(tmp_path, outside):
    root = _classes(tmp_path / "data")
    (root / "a" / "innocent.png").symlink_to(outside / "secret.png")
    with pytest.raises(DataError) as err:
        load_data(root, (8, 8, 3), 2)
    msg = str(err.value)
    assert "innocent.png" in msg and "outside the dataset folder" in msg and "\n" not in msg


@needs_symlinks
def test_linked_class_folder_outside_the_folder_is_refused(tmp_path, outside):
    root = _classes(tmp_path / "data")
    (root / "c").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataError, match=r"[/\\]c is a symbolic link to .*private, outside"):
        load_data(root, (8, 8, 3), 3)


@needs_symlinks
def test_linked_split_folder_outside_is_refused(tmp_path):
    root = tmp_path / "data"
    _classes(root / "train")
    _classes(tmp_path / "elsewhere")
    (root / "test").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(DataError, match="test is a symbolic link to .*outside"):
        load_data(root, (8, 8, 3), 2)


@needs_symlinks
def test_links_that_stay_inside_and_a_linked_root_are_used(tmp_path, outside):
    root = _classes(tmp_path / "data")
    (root / "b" / "again.png").symlink_to(root / "a" / "0.png")  # inside: allowed
    (root / "b" / "dangling.png").symlink_to(tmp_path / "missing.png")  # nothing to read
    (root / "b" / "notes.txt").symlink_to(outside / "secret.png")  # not an image: never read
    # A linked folder inside a class folder is not walked (nothing from it is used).
    (root / "a" / "more").symlink_to(outside, target_is_directory=True)
    s = load_data(root, (8, 8, 3), 2)
    every = [p for split in s.files.values() for p, _ in split]
    assert len(every) == 9 and any(p.endswith("again.png") for p in every)
    assert not any("secret" in p or "dangling" in p or "more" in p for p in every)
    # The folder the user picked may itself be a link.
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert load_data(alias, (8, 8, 3), 2).n_test == s.n_test


# ----------------------------------------------------------------------------- .npz


class _Planted:
    """Unpickling this writes a marker file: proof that pickled data was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


def test_npz_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "UNPICKLED"
    obj = np.empty(2, dtype=object)
    obj[0] = obj[1] = _Planted(marker)
    path = tmp_path / "evil.npz"
    np.savez(
        path,
        x_train=np.zeros((4, 8, 8, 1), np.float32),
        y_train=obj,
        x_test=np.zeros((4, 8, 8, 1), np.float32),
        y_test=np.zeros(4, np.int64),
    )
    pickle.loads(pickle.dumps(_Planted(marker)))  # the planted object does write the marker
    assert marker.exists()
    marker.unlink()
    with pytest.raises(DataError, match=r"evil\.npz holds Python objects"):
        load_data(path, (8, 8, 1), 10)
    assert not marker.exists()


# ----------------------------------------------------------------------------- trust verdict


def _marker_lambda(marker: Path):
    path = str(marker)
    return lambda x: (__import__("pathlib").Path(path).write_text("ran"), x)[1]


def _doubled(x):
    return x * 2


@pytest.fixture(scope="module")
def code_models(tmp_path_factory):
    """Models whose stored code writes a marker file if it ever runs. Returns (paths, marker)."""
    from engine.core.tfenv import keras2, keras3

    out = tmp_path_factory.mktemp("code_models")
    marker = out / "CODE_RAN"
    k2, k3 = keras2(), keras3()
    paths = {}

    inp = k2.Input((4,))
    x = k2.layers.Lambda(_marker_lambda(marker), name="sneaky")(inp)
    m = k2.Model(inp, k2.layers.Dense(3, activation="softmax", name="head")(x))
    paths["k2_lambda"] = out / "k2_lambda.h5"
    m.save(paths["k2_lambda"])

    class Twice(k2.layers.Layer):
        def call(self, x):
            return 2 * x

    inp = k2.Input((4,))
    m = k2.Model(inp, k2.layers.Dense(3, activation="softmax")(Twice(name="twice")(inp)))
    paths["k2_custom"] = out / "k2_custom.keras"
    m.save(paths["k2_custom"])

    inp = k3.Input((4,))
    x = k3.layers.Lambda(_marker_lambda(marker), name="sneaky")(inp)
    m = k3.Model(inp, k3.layers.Dense(3, activation="softmax")(x))
    paths["k3_lambda"] = out / "k3_lambda.keras"
    m.save(paths["k3_lambda"])

    inp = k3.Input((4,))
    x = k3.layers.Lambda(_doubled, name="named_fn")(inp)
    y = k3.layers.Lambda(_marker_lambda(marker), name="sneaky")(x)
    m = k3.Model(inp, k3.layers.Dense(3, activation="softmax")(y))
    paths["k3_named"] = out / "k3_named.keras"
    m.save(paths["k3_named"])

    # A clean Keras config, but the graph holds an initializer that writes a file.
    import tensorflow as tf

    class Planted(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self):
            tf.io.write_file(str(marker), "graph ran")

    inp = k2.Input((4,))
    m = k2.Model(inp, k2.layers.Dense(3, activation="softmax")(inp))
    m.planted = Planted()
    paths["k2_graph"] = out / "k2_graph_savedmodel"
    m.save(paths["k2_graph"], save_format="tf")

    marker.unlink(missing_ok=True)  # building the models ran the lambdas
    return paths, marker


def _run_in_worker(job: str, params: dict) -> dict:
    """Run one job through engine.service.worker.Worker (the real event code) and return its last
    event."""
    from engine.service.worker import Worker

    out = io.StringIO()
    w = Worker(out)
    w.warm_up()
    w.submit("job-1", job, params)
    assert w._job_thread is not None
    w._job_thread.join(120)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[-1]["id"] == "job-1"
    return events[-1]


def test_worker_error_for_a_lambda_model_names_items_and_says_it_can_load(code_models):
    paths, marker = code_models
    ev = _run_in_worker("inspect", {"model": str(paths["k2_lambda"])})
    assert ev["type"] == "error" and ev["kind"] == "unsafe_model"
    assert "\n" not in ev["message"]
    assert ev["loadable_if_trusted"] is True and ev["trust_problem"] == ""
    assert ("sneaky", "Lambda") in [(i["layer"], i["class_name"]) for i in ev["items"]]
    assert all(i["layer"] == "sneaky" and i["reason"] for i in ev["items"])
    assert all("sneaky" in i["text"] and "\n" not in i["text"] for i in ev["items"])
    json.dumps(ev)
    assert not marker.exists()


def test_worker_error_for_a_savedmodel_graph_names_its_refused_ops(code_models):
    paths, marker = code_models
    ev = _run_in_worker("inspect", {"model": str(paths["k2_graph"])})
    assert ev["kind"] == "unsafe_model" and ev["loadable_if_trusted"] is True
    assert [i["class_name"] for i in ev["items"]] == ["WriteFile"]
    assert "initializer" in ev["items"][0]["layer"] and "\n" not in ev["items"][0]["text"]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("k3_named", r"'named_fn' \(Lambda\)"),
        ("k2_custom", r"'twice' uses the custom class Twice"),
    ],
)
def test_worker_error_says_when_trusting_would_not_help(code_models, name, why):
    import re

    paths, marker = code_models
    ev = _run_in_worker("inspect", {"model": str(paths[name])})
    assert ev["kind"] == "unsafe_model" and ev["loadable_if_trusted"] is False
    assert re.search(why, ev["trust_problem"]) and "\n" not in ev["trust_problem"]
    assert ev["items"]
    assert not marker.exists()


def test_trusted_keras3_lambda_is_known_loadable_and_does_load(code_models):
    """The verdict is the truth: what it calls loadable loads when trusted."""
    from engine.models.loading import load_model
    from engine.models.trust import trust_verdict

    paths, marker = code_models
    verdict = trust_verdict(paths["k3_lambda"])
    assert verdict.loadable and {i.layer for i in verdict.items} == {"sneaky"}
    assert not marker.exists()  # deciding ran nothing
    assert load_model(paths["k3_lambda"], allow_unsafe=True).num_classes == 3
    assert marker.exists()  # trusted: the code ran, as allowed
    marker.unlink()


def _stored(layers, keras_version="2.21.0", fmt="h5"):
    from engine.models.safety import StoredModel

    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": layers}}
    return StoredModel(path=Path("m"), fmt=fmt, keras_version=keras_version, config=cfg)


def test_trust_verdict_for_hand_built_configs():
    from engine.models.trust import stored_verdict

    def k2(cls, **cfg):
        return {"class_name": cls, "config": {"name": "x", **cfg}}

    assert stored_verdict(_stored([k2("TFOpLambda", function="io.write_file")])).loadable
    bad = stored_verdict(_stored([k2("TFOpLambda", function="no.such_fn")]))
    assert not bad.loadable and "no.such_fn" in bad.reason
    named = k2("Lambda", function="abs", function_type="function", module="builtins")
    assert not stored_verdict(_stored([named])).loadable
    act = stored_verdict(_stored([k2("Dense", units=2, activation="my_act")]))
    assert not act.loadable and "activation 'my_act'" in act.reason
    assert stored_verdict(_stored([k2("Dense", units=2, activation="relu")])).loadable
    custom = k2("Doubler")
    assert "custom class Doubler" in stored_verdict(_stored([custom])).reason
    # A SavedModel carries traced functions: tf_keras revives unknown classes when trusted.
    assert stored_verdict(_stored([custom], fmt="savedmodel")).loadable
    tfsm = {
        "module": "keras.layers",
        "class_name": "TFSMLayer",
        "config": {"name": "ext", "filepath": "/somewhere/else", "trainable": True},
        "registered_name": None,
    }
    verdict = stored_verdict(_stored([tfsm], keras_version="3.15.1", fmt="keras"))
    assert not verdict.loadable and "'ext' (TFSMLayer)" in verdict.reason
    sub = _stored([])
    sub.config = {"class_name": "MyNet", "config": {"name": "n"}}
    assert "subclassed model (MyNet)" in stored_verdict(sub).reason
