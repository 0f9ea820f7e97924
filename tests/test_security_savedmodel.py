"""Issue 10, item 1: a tf_keras SavedModel folder must never run its graph when opened.

Hostile folders are built here at test time, as the issue describes them: a clean
Functional model (Flatten -> Dense, so ``keras_metadata.pb`` passes the safety scan) that also
tracks a ``TrackableResource`` whose ``_initialize()`` writes a file. The tests first show
that plain ``tf_keras.models.load_model(folder)`` does write it (the hole is real), then that
Featherweight refuses the folder in one line, fast, without the file appearing, and that
clean SavedModels load through the Keras-config + checkpoint rebuild with equal outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import BadInputError, UnsafeModelError

ROOT = Path(__file__).resolve().parent.parent
LOADER_BUDGET_S = 5.0


def _tf():
    from engine.core.tfenv import tf

    return tf()


def _k():
    from engine.core.tfenv import keras2

    return keras2()


def _resource_class(initialize):
    """A TrackableResource whose initializer (run by tf.saved_model.load) is ``initialize``."""
    tf = _tf()

    class Payload(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self):
            initialize()

    return Payload


def _hostile(folder: Path, initialize) -> object:
    """The issue's file: clean Functional Flatten -> Dense plus a tracked payload resource."""
    k = _k()
    inp = k.Input((4, 4))
    model = k.Model(inp, k.layers.Dense(3, activation="softmax")(k.layers.Flatten()(inp)))
    model.payload = _resource_class(initialize)()
    model.save(folder, save_format="tf")
    return model


def _conv_bn_dense(kind: str):
    k = _k()
    L = k.layers
    if kind == "sequential":
        model = k.Sequential(
            [
                k.Input((8, 8, 1)),
                L.Conv2D(4, 3, padding="same"),
                L.BatchNormalization(),
                L.ReLU(),
                L.Flatten(),
                L.Dense(5, activation="softmax"),
            ]
        )
    elif kind == "functional":
        inp = k.Input((8, 8, 1))
        x = L.Conv2D(4, 3)(inp)
        x = L.BatchNormalization()(x)
        x = L.Activation("relu")(x)
        x = L.Flatten()(x)
        x = L.Dense(6, activation="relu")(x)
        model = k.Model(inp, L.Dense(5)(x))
    else:  # nested: a Sequential block used as a layer (the engine flattens it)
        block = k.Sequential([L.Conv2D(4, 3), L.BatchNormalization()], name="block")
        inp = k.Input((8, 8, 1))
        x = L.Flatten()(block(inp))
        model = k.Model(inp, L.Dense(5, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    model.fit(rng.random((16, 8, 8, 1)), rng.integers(0, 5, 16), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Hostile and clean tf_keras SavedModel folders, with markers and reference outputs."""
    tf = _tf()
    out = tmp_path_factory.mktemp("savedmodel_security")
    secret = out / "secret.txt"
    secret.write_text("top secret 1234")
    c = {"dir": out, "secret": secret}
    c["write_marker"] = out / "pwned_write.txt"
    c["copy_marker"] = out / "pwned_copy.txt"
    c["print_marker"] = out / "pwned_print.txt"

    c["write"] = out / "write_sm"
    c["write_model"] = _hostile(
        c["write"], lambda: tf.io.write_file(str(c["write_marker"]), "pwned")
    )
    c["copy"] = out / "copy_sm"
    _hostile(
        c["copy"],
        lambda: tf.io.write_file(str(c["copy_marker"]), tf.io.read_file(str(secret))),
    )

    def many():
        files = tf.io.matching_files(str(out / "*"))
        tf.print(files, output_stream=f"file://{c['print_marker']}")
        tf.py_function(lambda: None, [], [])
        tf.numpy_function(lambda: np.int64(0), [], tf.int64)

    c["many"] = out / "many_sm"
    _hostile(c["many"], many)

    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    c["x"] = x
    for kind in ("sequential", "functional", "nested"):
        model = _conv_bn_dense(kind)
        c[kind] = out / f"clean_{kind}_sm"
        model.save(c[kind], save_format="tf")
        c[f"{kind}_out"] = np.asarray(model(x, training=False))
        c[f"{kind}_nweights"] = len(model.weights)
    for key in ("write_marker", "copy_marker", "print_marker"):
        assert not c[key].exists(), "saving must not run the payload"
    return c


def _run(args: list[str], timeout: float = 180) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    return result, time.perf_counter() - start


# ---------------------------------------------------------------- the op allow-list


def test_allow_list_is_derived_from_the_op_registry():
    from engine.models.savedmodel_graph import allowed_ops, refused_ops

    tf = _tf()
    public = {n for n in dir(tf.raw_ops) if not n.startswith("_")}
    allowed, refused = allowed_ops(), refused_ops()
    assert not allowed & refused.keys()
    assert allowed | refused.keys() == public  # every registered public op is classified
    assert len(allowed) > 800 and len(refused) > 300
    must_refuse = {
        "WriteFile", "ReadFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
        "PrintV2", "SaveV2", "RestoreV2", "MergeV2Checkpoints", "DebugIdentityV2",
        "ImmutableConst", "DecodeProtoV2", "TFRecordDataset", "InitializeTableFromTextFileV2",
        "CreateSummaryFileWriter", "CollectiveReduceV2", "RemoteCall",
        "FixedUnigramCandidateSampler", "Timestamp", "FIFOQueueV2",
    }  # fmt: skip
    assert must_refuse <= refused.keys(), must_refuse - refused.keys()
    must_allow = {
        "Conv2D", "MatMul", "BiasAdd", "FusedBatchNormV3", "Softmax", "VarHandleOp",
        "ReadVariableOp", "AssignVariableOp", "StatefulPartitionedCall", "PartitionedCall",
        "StatelessWhile", "While", "RandomUniform", "CudnnRNNV3", "HashTableV2",
        "LookupTableFindV2", "StringJoin", "StaticRegexFullMatch", "Const", "Identity",
    }  # fmt: skip
    assert must_allow <= allowed, must_allow - allowed


def test_scan_lists_every_refused_op_with_its_place(corpus):
    from engine.models.savedmodel_graph import scan_savedmodel_graph

    found = scan_savedmodel_graph(corpus["many"])
    ops = {item.split(" ", 1)[0] for item in found}
    assert ops == {"MatchingFiles", "PrintV2", "EagerPyFunc", "PyFunc"}, found
    assert all("__inference__initializer" in item for item in found), found
    assert [i.split(" ", 1)[0] for i in scan_savedmodel_graph(corpus["write"])] == ["WriteFile"]
    copy_ops = {i.split(" ", 1)[0] for i in scan_savedmodel_graph(corpus["copy"])}
    assert copy_ops == {"ReadFile", "WriteFile"}


@pytest.mark.parametrize("kind", ["sequential", "functional", "nested"])
def test_clean_savedmodels_pass_the_scan(corpus, kind):
    """Clean folders hold SaveV2/RestoreV2/MergeV2Checkpoints in their saver functions."""
    from engine.models.savedmodel_graph import scan_savedmodel_graph

    assert scan_savedmodel_graph(corpus[kind]) == []


def _edit_graph(src: Path, dst: Path, edit) -> Path:
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(src, dst)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((dst / "saved_model.pb").read_bytes())
    edit(proto.meta_graphs[0])
    (dst / "saved_model.pb").write_bytes(proto.SerializeToString())
    return dst


def test_scan_follows_function_references(corpus, tmp_path):
    """A bare op name in a ``func`` attribute is instantiated as that op by TF's function
    runtime; calling the saver's own save function from a model function smuggles SaveV2
    out of the saver exception. Both are found."""
    from engine.models.savedmodel_graph import scan_savedmodel_graph

    def library(meta):
        return {f.signature.name: f for f in meta.graph_def.library.function}

    def bare_op(meta):
        for fn in meta.graph_def.library.function:
            for node in fn.node_def:
                if node.op in ("StatefulPartitionedCall", "PartitionedCall"):
                    node.attr["f"].func.name = "WriteFile"
                    return
        raise AssertionError("no call node")

    found = scan_savedmodel_graph(_edit_graph(corpus["functional"], tmp_path / "a", bare_op))
    assert found and found[0].startswith("WriteFile (function reference in"), found

    def call_saver(meta):
        lib = library(meta)
        save = next(n for n in lib if n.startswith("__inference__traced_save"))
        model_fn = next(n for n in lib if "layer_call_and_return" in n)
        node = lib[model_fn].node_def.add(name="smuggled", op="StatefulPartitionedCall")
        node.attr["f"].func.name = save

    found = scan_savedmodel_graph(_edit_graph(corpus["functional"], tmp_path / "b", call_saver))
    ops = {item.split(" ", 1)[0] for item in found}
    assert {"SaveV2", "MergeV2Checkpoints"} <= ops, found


def test_corrupt_or_oversized_graph_is_one_line_bad_input(corpus, tmp_path, monkeypatch):
    from engine.models import savedmodel_graph
    from engine.models.loading import load_model

    broken = tmp_path / "broken"
    shutil.copytree(corpus["functional"], broken)
    data = (broken / "saved_model.pb").read_bytes()
    (broken / "saved_model.pb").write_bytes(data[: len(data) // 3])
    with pytest.raises(BadInputError, match="saved_model.pb is corrupt") as err:
        load_model(broken)
    assert "\n" not in str(err.value)

    monkeypatch.setattr(savedmodel_graph, "MAX_GRAPH_BYTES", 1000)
    with pytest.raises(BadInputError, match="MiB"):
        load_model(corpus["functional"])


# ---------------------------------------------------------------- the hole, then closed


def test_the_hole_is_real_with_plain_tf_keras(corpus):
    """Without Featherweight's check, tf_keras' own loader runs the payload."""
    for key in ("write_marker", "copy_marker"):
        corpus[key].unlink(missing_ok=True)
    code = (
        "import sys, tf_keras\n"
        "for folder in sys.argv[1:]:\n"
        "    tf_keras.models.load_model(folder, compile=False)\n"
    )
    result, _ = _run(["-c", code, str(corpus["write"]), str(corpus["copy"])])
    assert result.returncode == 0, result.stderr[-2000:]
    try:
        assert corpus["write_marker"].read_text() == "pwned"
        assert corpus["copy_marker"].read_text() == corpus["secret"].read_text()
    finally:
        for key in ("write_marker", "copy_marker"):
            corpus[key].unlink(missing_ok=True)


@pytest.mark.parametrize(
    "name,ops", [("write", ["WriteFile"]), ("copy", ["ReadFile", "WriteFile"])]
)
def test_cli_inspect_refuses_hostile_savedmodel(corpus, name, ops):
    marker = corpus[f"{name}_marker"]
    marker.unlink(missing_ok=True)
    result, seconds = _run(["-m", "engine", "inspect", str(corpus[name])])
    print(f"featherweight inspect {name}: {seconds:.2f} s including the TensorFlow import")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.startswith("featherweight")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert all(op in lines[0] for op in ops) and "saved_model.pb" in lines[0], lines[0]
    assert result.stdout == ""
    assert not marker.exists()


@pytest.mark.parametrize("name", ["write", "copy", "many"])
def test_loader_refuses_hostile_savedmodel_fast(corpus, name):
    from engine.models.loading import inspect_path, load_model

    markers = [corpus[k] for k in ("write_marker", "copy_marker", "print_marker")]
    for m in markers:
        m.unlink(missing_ok=True)
    start = time.perf_counter()
    with pytest.raises(UnsafeModelError) as err:
        load_model(corpus[name])
    seconds = time.perf_counter() - start
    print(f"load_model({name}) refused in {seconds:.3f} s")
    assert seconds < LOADER_BUDGET_S
    msg = str(err.value)
    assert "\n" not in msg and "refusing to load" in msg
    with pytest.raises(UnsafeModelError):
        inspect_path(corpus[name])
    assert not any(m.exists() for m in markers)


def test_allowed_hostile_folder_is_rebuilt_without_running_its_graph(corpus):
    """With unsafe loading allowed, the folder still loads from config + checkpoint: the
    payload initializer never runs (the Keras model itself is clean)."""
    from engine.models.loading import load_model

    corpus["write_marker"].unlink(missing_ok=True)
    loaded = load_model(corpus["write"], allow_unsafe=True)
    assert not corpus["write_marker"].exists()
    x = np.random.default_rng(3).random((2, 4, 4)).astype(np.float32)
    diff = np.max(np.abs(np.asarray(loaded.model(x)) - np.asarray(corpus["write_model"](x))))
    assert diff < 1e-6


# ---------------------------------------------------------------- clean folders


@pytest.fixture
def graph_loaders_forbidden(monkeypatch):
    """Make every graph loader explode: the clean path must not need any of them."""
    tf = _tf()
    k = _k()

    def boom(*args, **kwargs):
        raise AssertionError("a SavedModel graph loader was called")

    monkeypatch.setattr(tf.saved_model, "load", boom)
    monkeypatch.setattr(tf.__internal__.saved_model, "load_partial", boom)
    monkeypatch.setattr(k.models, "load_model", boom)


@pytest.mark.parametrize("kind", ["sequential", "functional", "nested"])
def test_clean_savedmodel_loads_from_config_and_checkpoint(corpus, kind, graph_loaders_forbidden):
    from engine.models.loading import load_model

    loaded = load_model(corpus[kind])
    assert loaded.source_format == "keras2-savedmodel"
    got = np.asarray(loaded.model(corpus["x"], training=False))
    assert np.max(np.abs(got - corpus[f"{kind}_out"])) < 1e-6
    assert len(loaded.model.weights) == corpus[f"{kind}_nweights"]
    if kind == "nested":
        assert any("flattened" in w for w in loaded.warnings)


def _edit_metadata(src: Path, dst: Path, edit) -> Path:
    from tf_keras.protobuf import saved_metadata_pb2

    shutil.copytree(src, dst)
    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString((dst / "keras_metadata.pb").read_bytes())
    root = json.loads(meta.nodes[0].metadata)
    edit(root["config"])
    meta.nodes[0].metadata = json.dumps(root)
    (dst / "keras_metadata.pb").write_bytes(meta.SerializeToString())
    return dst


def _drop_last_dense(cfg):  # every remaining weight restores; the Dense values are left over
    cfg["layers"] = cfg["layers"][:-1]


def _wider_dense(cfg):
    cfg["layers"][-1]["config"]["units"] = 7


@pytest.mark.parametrize(
    "edit,why",
    [
        (_drop_last_dense, "checkpoint value(s) have no weight in the Keras config"),
        (_wider_dense, "incompatible tensor with shape"),
    ],
)
def test_config_that_does_not_fit_the_checkpoint_is_refused(corpus, tmp_path, edit, why):
    """The rebuild is verified both ways: every weight restored, every checkpoint value used."""
    from engine.models.loading import load_model

    folder = _edit_metadata(corpus["sequential"], tmp_path / "edited", edit)
    with pytest.raises(UnsafeModelError, match="could not be rebuilt") as err:
        load_model(folder)
    assert why in str(err.value) and "\n" not in str(err.value)


def test_state_outside_config_and_checkpoint_is_refused(tmp_path, monkeypatch):
    """An adapted TextVectorization keeps its vocabulary in neither the Keras config nor the
    variables checkpoint (tf_keras restores it by running the graph): the rebuilt model cannot
    run, which the check on zeros finds. Refused, or tf_keras' own loader if allowed."""
    from engine.models.loading import load_model
    from engine.models.savedmodel_graph import scan_savedmodel_graph

    k = _k()
    vectorize = k.layers.TextVectorization(max_tokens=8, output_sequence_length=3)
    vectorize.adapt(["a b c", "b c d"])
    inp = k.Input((1,), dtype="string")
    x = k.layers.Flatten()(k.layers.Embedding(8, 2)(vectorize(inp)))
    k.Model(inp, k.layers.Dense(2)(x)).save(tmp_path / "text", save_format="tf")
    assert scan_savedmodel_graph(tmp_path / "text") == []  # its adapt step is harmless

    with pytest.raises(UnsafeModelError, match="it does not run") as err:
        load_model(tmp_path / "text")
    assert "Table not initialized" in str(err.value) and "\n" not in str(err.value)

    calls = []
    monkeypatch.setattr(k.models, "load_model", lambda *a, **kw: calls.append(a) or 1 / 0)
    with pytest.raises(BadInputError, match="cannot load"):
        load_model(tmp_path / "text", allow_unsafe=True)  # allowed: falls back to tf_keras
    assert len(calls) == 1
