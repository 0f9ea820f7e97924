"""Adversarial corpus for the model scan (issue 10, items 2-4), built at test time: zip bombs
and other hostile archives end in a one-line refusal within seconds and in little memory;
path-valued options and code-bearing objects are refused wherever they sit in a config
(``inbound_nodes`` call arguments, initializer slots, training settings), by module and name;
and a property test plants them at random places in valid Keras 2 and Keras 3 configs, while
real ``keras.applications`` configs pass."""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.errors import BadInputError, UnsafeModelError

MiB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent
SECRET = "/home/user/.ssh/id_rsa"  # a path a hostile vocabulary would point at


# ----------------------------------------------------------------------------- helpers


def _quiet_tf_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}


# ``featherweight inspect PATH`` (the same entry point as ``python -m engine``), reporting
# the process's peak resident memory (VmHWM) into a file when it exits. Not getrusage: a
# child's ru_maxrss includes the parent's memory at fork/exec time (Linux keeps the
# high-water mark of the replaced address space), i.e. this test process with TensorFlow.
_CLI = """
import runpy, sys
report, sys.argv = sys.argv[1], ["featherweight", "inspect", sys.argv[2]]
try:
    runpy.run_module("engine", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
"""


def _cli_inspect(path: Path, tmp_path: Path) -> tuple[int, float, float, str]:
    """``featherweight inspect PATH`` in a child process: (exit code, wall seconds, peak
    resident memory of that process in MB, stderr)."""
    report = tmp_path / f"vmhwm-{path.name}.txt"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _CLI, str(report), str(path)],
        cwd=ROOT,
        env=_quiet_tf_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - start
    return proc.returncode, seconds, int(report.read_text()) / 1024, proc.stderr


class _RepeatedBlocks:
    """A deflate "compressor" for a stream of identical 1 MiB chunks: the chunk is deflated
    once and ends in a full flush (no back-references across it), so the same bytes are a
    valid encoding of every repeat; other data goes to a real raw-deflate compressor. This
    builds a 2 GiB bomb in about a second instead of compressing 2 GiB."""

    def __init__(self, chunk: bytes) -> None:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.chunk = chunk
        self.block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
        self.real = zlib.compressobj(9, zlib.DEFLATED, -15)

    def compress(self, data: Any) -> bytes:
        if data is self.chunk:
            return self.block
        return self.real.compress(data)

    def flush(self) -> bytes:
        return self.real.flush()


def _write_bomb(
    path: Path, members: dict[str, bytes], bomb_name: str, inflated: int, tail: bytes, fill: bytes
) -> None:
    """A zip with ``members`` plus ``bomb_name``: ``inflated`` bytes of ``fill`` then ``tail``,
    deflated, streamed through zipfile (zip64) without holding it in memory."""
    chunk = fill * (MiB // len(fill))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        with zf.open(bomb_name, "w", force_zip64=True) as fh:
            fh._compressor = _RepeatedBlocks(chunk)  # type: ignore[attr-defined]
            for _ in range(inflated // MiB):
                fh.write(chunk)
            fh.write(tail)
    info = zipfile.ZipFile(path).getinfo(bomb_name)
    assert info.file_size == inflated + len(tail)
    assert path.stat().st_size < inflated // 200  # really a bomb (about 1000:1)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rewrite_config(src: Path, dst: Path, edit) -> Path:
    """Copy of the .keras ``src`` whose config.json went through ``edit(config)``."""
    members = _members(src)
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return dst


def _layer(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(lay for lay in config["config"]["layers"] if lay["config"]["name"] == name)


@pytest.fixture
def no_keras_loader(monkeypatch):
    """Every Keras loader replaced by a spy: a refused model must never reach one."""
    from engine.core.tfenv import keras2, keras3

    calls: list[str] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]) if args else "?")
        raise AssertionError(f"a Keras loader was called on {calls[-1]}")

    for k in (keras2(), keras3()):
        monkeypatch.setattr(k.models, "load_model", spy)
        monkeypatch.setattr(k.models, "model_from_config", spy, raising=False)
    return calls


# ----------------------------------------------------------------------------- small models


@pytest.fixture(scope="session")
def small_models(tmp_path_factory) -> dict[str, Path]:
    """Small valid models with the places the scan must see: layer options, initializers,
    regularizers, constraints, call arguments and compile settings.
    Keys: "k3" (.keras), "k2" (.keras), "k2h5" (.h5)."""
    from engine.core.tfenv import keras2, keras3

    out = tmp_path_factory.mktemp("small")
    k3 = keras3()
    inp = k3.Input((8,), name="x")
    a = k3.layers.Dense(8, activation="relu", kernel_regularizer="l2", name="a")(inp)
    b = k3.layers.Dense(8, kernel_constraint="max_norm", use_bias=False, name="b")(inp)
    s = k3.layers.Add(name="sum")([a, b])
    s = k3.layers.BatchNormalization(name="bn")(s)
    s = k3.layers.Dropout(0.1, name="drop")(s)
    s = k3.ops.multiply(s, 0.5)
    y = k3.layers.Dense(3, activation="softmax", name="out")(s)
    m3 = k3.Model(inp, y)
    m3.compile(
        optimizer=k3.optimizers.Adam(1e-3),
        loss=k3.losses.sparse_categorical_crossentropy,
        metrics=["accuracy", k3.metrics.SparseTopKCategoricalAccuracy(2)],
    )
    paths = {"k3": out / "small3.keras"}
    m3.save(paths["k3"])

    k2 = keras2()
    inp = k2.Input((8,), name="x")
    a = k2.layers.Dense(8, activation="relu", kernel_regularizer="l2", name="a")(inp)
    b = k2.layers.Dense(8, kernel_constraint="max_norm", name="b")(inp)
    s = k2.layers.Concatenate(name="cat")([a, b])
    s = s + 1.0  # a TFOpLambda node with call kwargs {"y": 1.0, "name": None}
    s = k2.layers.BatchNormalization(name="bn")(s)
    y = k2.layers.Dense(3, activation="softmax", name="out")(s)
    m2 = k2.Model(inp, y)
    m2.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    paths["k2"] = out / "small2.keras"
    paths["k2h5"] = out / "small2.h5"
    m2.save(paths["k2"])
    m2.save(paths["k2h5"])
    return paths


@pytest.fixture(scope="session")
def clean_stored(small_models):
    """The small models as read by the scan: (Keras 2 list, Keras 3 list) of StoredModel."""
    from engine.models.safety import find_unsafe, read_stored_model

    k2 = [read_stored_model(small_models["k2"]), read_stored_model(small_models["k2h5"])]
    k3 = [read_stored_model(small_models["k3"])]
    for stored in k2 + k3:
        assert find_unsafe(stored) == [], stored.path  # the bases are clean
    assert k2[1].training_config is not None  # the .h5's training settings are scanned too
    assert "compile_config" in k3[0].config
    return k2, k3


# ----------------------------------------------------------------------------- zip bombs


@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory) -> float:
    """Peak memory of ``featherweight inspect`` refusing a 10-byte broken .keras: the app's
    footprint before it reads any model content."""
    folder = tmp_path_factory.mktemp("base")
    path = folder / "broken.keras"
    path.write_bytes(b"PK\x03\x04junk")
    code, _, rss, err = _cli_inspect(path, folder)
    assert code == 2 and "not a valid .keras file" in err
    return rss


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory from /proc")
@pytest.mark.parametrize("inflated_mib", [512, 2048], ids=["512MiB", "2GiB"])
def test_zip_bomb_config_ends_fast_in_one_line(tmp_path, small_models, baseline_rss, inflated_mib):
    """A .keras whose config.json is a few MB inflating to 512 MiB / 2 GiB of JSON whitespace
    (before: 42 s and 4.8 GB, then exit 0): exit 2, one line, in seconds, no extra memory."""
    members = _members(small_models["k3"])
    bomb = tmp_path / "bomb.keras"
    tail = members.pop("config.json")  # valid JSON after the whitespace: Keras would load it
    _write_bomb(bomb, members, "config.json", inflated_mib * MiB, tail, b" ")
    code, seconds, rss, err = _cli_inspect(bomb, tmp_path)
    print(f"\nbomb {inflated_mib} MiB: {seconds:.2f} s, peak RSS {rss:.0f} MB "
          f"(baseline {baseline_rss:.0f} MB)")  # fmt: skip
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("featherweight: error: "), err
    assert "config.json" in lines[0] and "refusing to read it" in lines[0]
    assert seconds < 5
    assert rss < baseline_rss + 500


def test_oversized_config_is_refused_from_the_directory(tmp_path, small_models, monkeypatch):
    """A stored (1:1) config.json over the size limit is refused from its directory entry:
    it is never read."""
    from engine.models import safety as model_safety

    members = _members(small_models["k3"])
    path = tmp_path / "big.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", members["metadata.json"])
        zf.writestr("model.weights.h5", members["model.weights.h5"])
        zf.writestr("config.json", b" " * (model_safety.MAX_CONFIG_BYTES + 1))
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(
        zipfile.ZipFile,
        "open",
        lambda self, name, *a, **kw: (opened.append(str(name)), real_open(self, name, *a, **kw))[1],
    )
    limit = f"{model_safety.MAX_CONFIG_BYTES / MiB:.1f} MiB"
    with pytest.raises(BadInputError, match=rf"config\.json would inflate to {limit}"):
        model_safety.read_stored_model(path)
    assert opened == []


def test_weights_bomb_member_is_refused_before_any_loader(tmp_path, small_models, no_keras_loader):
    """A weights member inflating 1000-fold to 256 MiB (Keras would inflate it into memory)."""
    from engine.models.loading import load_model

    members = _members(small_models["k3"])
    members.pop("model.weights.h5")
    path = tmp_path / "weights_bomb.keras"
    _write_bomb(path, members, "model.weights.h5", 256 * MiB, b"", b"\x00")
    with pytest.raises(BadInputError, match=r"model\.weights\.h5' would inflate [\d,]+-fold"):
        load_model(path)
    assert no_keras_loader == []


def test_zip_with_too_many_members_is_refused_before_parsing(tmp_path, small_models):
    members = _members(small_models["k3"])
    path = tmp_path / "crowded.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for i in range(10_001):
            zf.writestr(f"assets/{i}", b"")
    from engine.models.safety import read_stored_model

    with pytest.raises(BadInputError, match=r"lists 10,004 members"):
        read_stored_model(path)


def test_overlapping_members_are_refused(tmp_path, small_models):
    """The overlapping-entry bomb: several directory entries share one compressed kernel."""
    members = _members(small_models["k3"])
    path = tmp_path / "overlap.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("assets/a", b"x" * 1000)
        zf.writestr("assets/b", b"y" * 1000)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offset_a = zf.getinfo("assets/a").header_offset
    # Point assets/b's central directory entry at assets/a's local header.
    entry = data.rfind(b"PK\x01\x02", 0, data.rfind(b"assets/b"))
    struct.pack_into("<L", data, entry + 42, offset_a)
    path.write_bytes(bytes(data))
    from engine.models.safety import read_stored_model

    with pytest.raises(BadInputError, match="overlaps the next one"):
        read_stored_model(path)


def test_duplicate_member_names_are_refused(tmp_path, small_models):
    """Two config.json: which one is "the" config would depend on the reader."""
    members = _members(small_models["k3"])
    path = tmp_path / "twice.keras"
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
            zf.writestr("config.json", members["config.json"])
    from engine.models.safety import read_stored_model

    with pytest.raises(BadInputError, match="'config.json' appears twice"):
        read_stored_model(path)


def test_deeply_nested_json_is_refused_before_parsing(tmp_path, small_models):
    import h5py

    from engine.models.safety import read_stored_model

    deep = "[" * 100_000 + "]" * 100_000
    members = _members(small_models["k3"])
    members["config.json"] = deep.encode()
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    start = time.monotonic()
    with pytest.raises(BadInputError, match=r"nests 100,000 levels deep") as err:
        read_stored_model(path)
    assert time.monotonic() - start < 2 and "\n" not in str(err.value)

    h5 = tmp_path / "deep.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Functional", "config": ' + deep + "}"
    with pytest.raises(BadInputError, match=r"model_config nests"):
        read_stored_model(h5)
    # Brackets inside strings are not nesting: a valid config with such a name still reads.
    cfg = json.loads(_members(small_models["k3"])["config.json"])
    cfg["config"]["name"] = "[" * 500
    ok = _rewrite_config(small_models["k3"], tmp_path / "brackets.keras", lambda c: c.update(cfg))
    assert read_stored_model(ok).config["config"]["name"] == "[" * 500


def test_json_with_too_many_containers_is_refused_before_parsing(tmp_path, small_models):
    """Parsed JSON costs up to ~28x its text, and scanning it time: a million-odd empty
    lists (3 MB of text) are refused from the text, before json.loads allocates them."""
    import h5py

    from engine.models.safety import MAX_JSON_CONTAINERS, read_stored_model

    wide = "[" + "[]," * MAX_JSON_CONTAINERS + "[]]"
    members = _members(small_models["k3"])
    members["config.json"] = wide.encode()
    path = tmp_path / "wide.keras"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(BadInputError, match=rf"holds {MAX_JSON_CONTAINERS + 2:,} lists and"):
        read_stored_model(path)
    # An .h5's model_config and training_config share one budget.
    half = "[" + "[]," * (MAX_JSON_CONTAINERS // 2) + "[]]"
    h5 = tmp_path / "wide.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["model_config"] = '{"class_name": "Functional", "config": ' + half + "}"
        f.attrs["training_config"] = '{"loss": ' + half + "}"
    with pytest.raises(BadInputError, match=r"training_config holds"):
        read_stored_model(h5)


def test_h5_model_config_size_is_checked_before_it_is_read(tmp_path, small_models, monkeypatch):
    import h5py
    import numpy as np

    from engine.models import safety as model_safety

    path = tmp_path / "huge_attr.h5"
    with h5py.File(path, "w", libver="latest") as f:  # dense attribute storage (> 64 KiB)
        f.attrs.create("model_config", np.bytes_(b" " * (model_safety.MAX_CONFIG_BYTES + 1)))
    read: list[str] = []
    real_getitem = h5py.AttributeManager.__getitem__
    monkeypatch.setattr(
        h5py.AttributeManager,
        "__getitem__",
        lambda self, name: (read.append(name), real_getitem(self, name))[1],
    )
    limit = f"{model_safety.MAX_CONFIG_BYTES / MiB:.1f} MiB"
    with pytest.raises(BadInputError, match=rf"model_config attribute holds {limit}"):
        model_safety.read_stored_model(path)
    assert "model_config" not in read
    # A normal file's attributes are read as before.
    assert model_safety.read_stored_model(small_models["k2h5"]).config is not None


def test_savedmodel_metadata_size_is_checked_before_it_is_read(tmp_path):
    from engine.models.safety import MAX_SAVEDMODEL_METADATA_BYTES, read_stored_model

    folder = tmp_path / "sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    with (folder / "keras_metadata.pb").open("wb") as fh:
        fh.truncate(MAX_SAVEDMODEL_METADATA_BYTES + 1)  # sparse: nothing is written to disk
    limit = f"{MAX_SAVEDMODEL_METADATA_BYTES / MiB:.1f} MiB"
    with pytest.raises(BadInputError, match=rf"keras_metadata\.pb holds {limit}"):
        read_stored_model(folder)


# ----------------------------------------------------------------------------- path-valued options


@pytest.fixture(scope="session")
def vocab_path_h5(tmp_path_factory) -> tuple[Path, Path]:
    """A tf_keras .h5 whose StringLookup ``vocabulary`` is a path to a local file
    (hand-edited from a valid model), and that file. Returns (model, vocabulary file)."""
    import h5py

    from engine.core.tfenv import keras2

    out = tmp_path_factory.mktemp("vocab")
    secret = out / "secret.txt"
    secret.write_text("alpha\nbeta\n")
    k = keras2()
    inp = k.Input((1,), dtype="string")
    x = k.layers.StringLookup(vocabulary=["a", "b"], name="lookup")(inp)
    x = k.layers.CategoryEncoding(num_tokens=3, output_mode="multi_hot")(x)
    model = k.Model(inp, k.layers.Dense(3, activation="softmax")(x))
    path = out / "lookup.h5"
    model.save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        _layer(config, "lookup")["config"]["vocabulary"] = str(secret)
        f.attrs["model_config"] = json.dumps(config)
    return path, secret


def test_tf_keras_really_reads_a_path_vocabulary(vocab_path_h5):
    """The hole is real: tf_keras' own loader reads the file named by the config."""
    from engine.core.tfenv import keras2

    path, _ = vocab_path_h5
    model = keras2().models.load_model(path, compile=False)
    assert "alpha" in model.get_layer("lookup").get_vocabulary()


def test_h5_path_vocabulary_is_refused_before_any_loader(vocab_path_h5, no_keras_loader):
    from engine.models.loading import inspect_path, load_model

    path, secret = vocab_path_h5
    for call in (load_model, inspect_path):
        with pytest.raises(UnsafeModelError) as err:
            call(path)
        msg = str(err.value)
        assert "\n" not in msg and "'lookup' (StringLookup)" in msg and str(secret) in msg
        assert [(i.layer, i.class_name) for i in err.value.items] == [("lookup", "StringLookup")]
    assert no_keras_loader == []


@pytest.mark.parametrize("cls", ["StringLookup", "IntegerLookup", "TextVectorization"])
@pytest.mark.parametrize("major", [2, 3])
def test_path_vocabularies_are_refused_in_every_lookup_layer(cls, major):
    from engine.models.safety import StoredModel, find_unsafe

    layer: dict[str, Any] = {"class_name": cls, "config": {"name": "v", "vocabulary": SECRET}}
    if major == 3:
        layer["module"] = "keras.layers"
    listed = copy.deepcopy(layer)
    listed["config"]["vocabulary"] = ["a", "b"]
    for lay, bad in ((layer, True), (listed, False)):
        cfg = {"class_name": "Functional", "config": {"name": "m", "layers": [lay]}}
        version = "3.15.1" if major == 3 else "2.21.0"
        found = find_unsafe(StoredModel(Path("m.keras"), "keras", version, cfg))
        assert bool(found) is bad
        if bad:
            assert found[0].layer == "v" and SECRET in found[0].reason


# ----------------------------------------------------------------------------- inbound_nodes


K3_PAYLOADS = {
    "Lambda": {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "planted",
            "function": {"class_name": "__lambda__", "config": {"value": "4wEAAAAAAAAA"}},
        },
        "registered_name": None,
    },
    "TFSMLayer": {
        "module": "keras.layers",
        "class_name": "TFSMLayer",
        "config": {"name": "planted", "filepath": "/somewhere/else"},
        "registered_name": None,
    },
    "StringLookup": {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"name": "planted", "vocabulary": SECRET},
        "registered_name": None,
    },
}


@pytest.mark.parametrize("payload", sorted(K3_PAYLOADS))
@pytest.mark.parametrize("slot", ["args", "kwargs"])
def test_keras3_objects_in_call_arguments_are_refused(
    tmp_path, small_models, no_keras_loader, payload, slot
):
    from engine.models.loading import load_model

    def plant(config):
        node = _layer(config, "bn")["inbound_nodes"][0]
        if slot == "args":
            node["args"].append(K3_PAYLOADS[payload])
        else:
            node["kwargs"]["training"] = K3_PAYLOADS[payload]

    path = _rewrite_config(small_models["k3"], tmp_path / "planted.keras", plant)
    with pytest.raises(UnsafeModelError) as err:
        load_model(path)
    assert ("planted", payload) in [(i.layer, i.class_name) for i in err.value.items]
    assert f"'planted' ({payload})" in str(err.value)
    assert no_keras_loader == []


@pytest.mark.parametrize("payload", ["Lambda", "TFSMLayer", "StringLookup"])
def test_keras2_objects_in_call_kwargs_are_refused(
    tmp_path, small_models, no_keras_loader, payload
):
    """Keras 2 nodes are ``[layer, node, tensor, kwargs]``: an object in the kwargs."""
    import h5py

    from engine.models.loading import load_model

    obj = {k: v for k, v in K3_PAYLOADS[payload].items() if k != "module"}  # Keras 2 form

    def plant(config):
        op = next(lay for lay in config["config"]["layers"] if lay["class_name"] == "TFOpLambda")
        op["inbound_nodes"][0][3]["y"] = obj

    path = _rewrite_config(small_models["k2"], tmp_path / "planted.keras", plant)
    h5 = tmp_path / "planted.h5"
    h5.write_bytes(small_models["k2h5"].read_bytes())
    with h5py.File(h5, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        plant(config)
        f.attrs["model_config"] = json.dumps(config)
    for p in (path, h5):
        with pytest.raises(UnsafeModelError) as err:
            load_model(p)
        assert ("planted", payload) in [(i.layer, i.class_name) for i in err.value.items]
    assert no_keras_loader == []


# ----------------------------------------------------------------------------- module and name


def _one(obj: dict[str, Any], major: int = 3, where: str = "activation") -> list[Any]:
    """find_unsafe on a model with one Dense layer whose ``where`` option is ``obj``."""
    from engine.models.safety import StoredModel, find_unsafe

    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "d", "units": 2, where: obj},
    }
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": [dense]}}
    return find_unsafe(StoredModel(Path("m.keras"), "keras", f"{major}.0.0", cfg))


def _fn(module: str | None, name: Any) -> dict[str, Any]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


@pytest.mark.parametrize(
    "obj",
    [
        _fn("builtins", "relu"),
        _fn("builtins", "sparse_categorical_crossentropy"),
        _fn("keras.activations", "gelu"),
        _fn("keras.src.activations.activations", "silu"),
        _fn("keras.ops", "add"),
        _fn("keras.src.ops.numpy", "multiply"),
        _fn("keras.src.losses.losses", "mean_squared_error"),
    ],
    ids=lambda o: f"{o['module']}.{o['config']}",
)
def test_keras_functions_pass(obj):
    assert _one(obj) == []


@pytest.mark.parametrize(
    "obj",
    [
        _fn("builtins", "eval"),
        _fn("builtins", "exec"),
        _fn("builtins", "get"),  # a lookup helper, not an activation
        _fn("os", "system"),
        _fn("keras.src.activations", "not_a_keras_fn"),
        _fn("keras.utils", "get_file"),
        _fn("keras.src.saving.saving_lib", "load_model"),
        _fn("keras.losses", "relu6_is_not_a_loss"),
        _fn(None, "relu"),
        _fn("builtins", ["relu"]),
    ],
    ids=lambda o: f"{o['module']}.{o['config']}",
)
def test_other_functions_are_refused(obj):
    found = _one(obj)
    assert [i.class_name for i in found] == ["function"]
    assert "not a Keras built-in function" in found[0].reason


@pytest.mark.parametrize(
    ("module", "refused"),
    [
        ("keras.layers", False),
        ("keras.src.layers.core.dense", False),
        ("tf_keras.src.layers.core.dense", False),
        ("os", True),
        ("builtins", True),
        ("mylib.layers", True),
        ("keras.src.utils.file_utils", True),  # a Keras module, but not one defining Dense
        ("keras.src.saving.saving_lib", True),
    ],
)
def test_classes_are_checked_by_module_and_name(module, refused):
    from engine.models.safety import StoredModel, find_unsafe

    dense = {"module": module, "class_name": "Dense", "config": {"name": "d", "units": 2}}
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": [dense]}}
    found = find_unsafe(StoredModel(Path("m.keras"), "keras", "3.15.1", cfg))
    assert bool(found) is refused
    if refused:
        assert found[0].class_name == "Dense" and module in found[0].reason


@pytest.mark.parametrize("major", [2, 3])
@pytest.mark.parametrize(
    ("key", "value", "refused"),
    [
        ("activation", "relu", False),
        ("activation", "softmax", False),
        ("activation", "get", True),  # tf_keras would return its lookup helper
        ("activation", "deserialize", True),
        ("activation", "my_custom_activation", True),
        ("recurrent_activation", "sigmoid", False),
        ("kernel_initializer", "glorot_uniform", False),
        ("kernel_initializer", "deserialize", True),
        ("kernel_regularizer", "l2", False),
        ("kernel_constraint", "max_norm", False),
        ("kernel_constraint", "serialize", True),
    ],
)
def test_options_named_by_string_are_checked(major, key, value, refused):
    found = _one(value, major, key)  # type: ignore[arg-type]
    assert bool(found) is refused, found
    if refused:
        assert value in found[0].reason


def test_registered_names_of_keras_itself_pass_and_others_do_not():
    """tf_keras registers its optimizers as ``Custom>Adam`` (.h5 training_config)."""
    from engine.models.safety import StoredModel, find_unsafe

    def stored(optimizer_class):
        training = {
            "loss": "mse",
            "optimizer_config": {"class_name": optimizer_class, "config": {}},
        }
        cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": []}}
        return StoredModel(Path("m.h5"), "h5", "2.21.0", cfg, training_config=training)

    assert find_unsafe(stored("Custom>Adam")) == []
    bad = find_unsafe(stored("Custom>Evil"))
    assert [(i.where, i.class_name) for i in bad] == [("training config", "Custom>Evil")]


# ----------------------------------------------------------------------------- the message


def test_message_names_every_item_on_one_line(small_models):
    from engine.models.safety import StoredModel, UnsafeItem, check_safe

    layers = [
        {"class_name": "Lambda", "config": {"name": "l1"}},
        {"class_name": "Doubler", "config": {"name": "twice"}},
        {"class_name": "Doubler", "config": {"name": "again"}},
        {"class_name": "StringLookup", "config": {"name": "v", "vocabulary": SECRET}},
        {"class_name": "Dense", "config": {"name": "evil\nname\x1b[31m", "activation": "get"}},
    ]
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": layers}}
    with pytest.raises(UnsafeModelError) as err:
        check_safe(StoredModel(Path("net.h5"), "h5", "2.21.0", cfg))
    msg = str(err.value)
    assert "\n" not in msg and "\x1b" not in msg
    for part in ("'l1' (Lambda)", "layers 'twice', 'again' (Doubler)", "'v' (StringLookup)",
                 SECRET, "activation 'get'"):  # fmt: skip
        assert part in msg, part
    for banned in ("more)", "allow_unsafe", "--allow-unsafe", "(CLI)"):
        assert banned not in msg
    items = err.value.items
    assert all(isinstance(i, UnsafeItem) for i in items) and len(items) == 5
    assert {i.layer for i in items} == {"l1", "twice", "again", "v", "evil?name?[31m"}
    assert items[0].to_dict()["text"] == items[0].describe()
    assert check_safe(StoredModel(Path("net.h5"), "h5", "2.21.0", cfg), allow_unsafe=True)


# ----------------------------------------------------------------------------- property test


def _containers(obj: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every dict and list in a JSON tree (the root included)."""
    out = []
    if isinstance(obj, (dict, list)):
        out.append(path)
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for key, value in items:
            out.extend(_containers(value, (*path, key)))
    return out


def _at(obj: Any, path: tuple) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _payloads(major: int) -> list[tuple[str, Any, Any]]:
    """(name, planted value, what must be found): objects planted as a value or list
    element; ("option", key, value) planted as a key of a dict."""
    k3 = major == 3

    def obj(cls, module=None, **cfg):
        o: dict[str, Any] = {"class_name": cls, "config": {"name": "planted", **cfg}}
        if module is not None or k3:
            o["module"] = module or "keras.layers"
            o["registered_name"] = None
        return o

    lam2 = obj("Lambda", function=["4wEAAAAAAAAA", None, None], function_type="lambda")
    return [
        ("Lambda", lam2, "Lambda"),
        ("__lambda__", {"class_name": "__lambda__", "config": {"value": "4wEAAA"}}, "lambda"),
        ("TFSMLayer", obj("TFSMLayer", filepath="/somewhere"), "TFSMLayer"),
        ("custom class", obj("Doubler", "mylib.layers" if k3 else None), "Doubler"),
        ("registered class", {**obj("Doubler"), "registered_name": "mylib>Doubler"}, "Doubler"),
        ("os module", obj("Dense", "os", units=2), "Dense"),
        ("utils module", obj("Dense", "keras.src.utils.file_utils", units=2), "Dense"),
        ("builtins eval", _fn("builtins", "eval"), "function"),
        ("unknown keras fn", _fn("keras.src.activations", "not_a_keras_fn"), "function"),
        ("os function", _fn("os", "system"), "function"),
        ("TFOpLambda io", obj("TFOpLambda", function="io.write_file"), "TFOpLambda"),
        ("lookup path", obj("StringLookup", vocabulary=SECRET), "StringLookup"),
        ("vocabulary option", ("option", "vocabulary", SECRET), SECRET),
        ("activation option", ("option", "activation", "deserialize"), "deserialize"),
        ("bytecode option", ("option", "function_type", "lambda"), "bytecode"),
    ]


@st.composite
def _planted(draw, bases, major):
    """A base StoredModel with one payload planted at a random container of its config or
    training settings. Returns (stored, payload name, expected)."""
    from engine.models.safety import StoredModel

    base = draw(st.sampled_from(bases))
    doc = {"config": copy.deepcopy(base.config)}
    if base.training_config is not None:
        doc["training_config"] = copy.deepcopy(base.training_config)
    name, value, expected = draw(st.sampled_from(_payloads(major)))
    is_option = isinstance(value, tuple)
    places = [p for p in _containers(doc) if len(p) >= 1]
    if is_option:
        places = [p for p in places if isinstance(_at(doc, p), dict)]
    place = draw(st.sampled_from(places))
    target = _at(doc, place)
    if is_option:
        target[value[1]] = value[2]
    elif isinstance(target, dict):
        new_key = st.text(min_size=1, max_size=8)
        key = draw(st.one_of(st.sampled_from(sorted(target)), new_key) if target else new_key)
        target[key] = copy.deepcopy(value)  # replaces a value, or adds a key
    else:
        index = draw(st.integers(0, len(target)))
        if target and draw(st.booleans()):
            target[min(index, len(target) - 1)] = copy.deepcopy(value)
        else:
            target.insert(index, copy.deepcopy(value))
    stored = StoredModel(
        base.path,
        base.fmt,
        base.keras_version,
        doc["config"],
        training_config=doc.get("training_config"),
    )
    return stored, name, expected, place


def _assert_refused(stored, name, expected, place):
    from engine.models.safety import check_safe

    with pytest.raises(UnsafeModelError) as err:
        check_safe(stored)
    found = err.value.items
    hit = [i for i in found if expected == i.class_name or expected in i.reason]
    assert hit, f"{name} planted at {place} was not named: {found}"
    msg = str(err.value)
    assert "\n" not in msg and f"({hit[0].class_name}): {hit[0].reason}" in msg


PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(data=st.data())
def test_property_keras2_planted_code_is_always_refused(clean_stored, data):
    k2, _ = clean_stored
    _assert_refused(*data.draw(_planted(k2, 2)))


@PROPERTY
@given(data=st.data())
def test_property_keras3_planted_code_is_always_refused(clean_stored, data):
    _, k3 = clean_stored
    _assert_refused(*data.draw(_planted(k3, 3)))


# ----------------------------------------------------------------------------- no false positives


@pytest.mark.parametrize("major", [2, 3])
def test_real_application_configs_pass(tmp_path, major):
    """keras.applications models (weights=None) saved by each Keras: nothing is refused."""
    from engine.core.tfenv import keras2, keras3
    from engine.models.safety import find_unsafe, read_stored_model

    k = keras3() if major == 3 else keras2()
    for build in (
        lambda: k.applications.MobileNetV2(
            weights=None, input_shape=(32, 32, 3), alpha=0.35, classes=10
        ),
        lambda: k.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=10),
    ):
        model = build()
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        stored = read_stored_model(path)
        assert stored.keras_major == major
        assert find_unsafe(stored) == [], model.name


@pytest.mark.parametrize("major", [2, 3])
def test_common_layers_and_training_settings_pass(tmp_path, major):
    """Recurrent, wrapped, attention and text layers, activations given as TensorFlow
    functions (tf_keras stores their names: ``leaky_relu``, ``relu6``), regularizer /
    constraint / initializer objects, a schedule, loss and metric classes, mixed precision:
    saved as .keras and .h5 (and a SavedModel), nothing is refused."""
    from engine.core.tfenv import keras2, keras3, tf
    from engine.models.safety import find_unsafe, read_stored_model

    k = keras3() if major == 3 else keras2()
    leaky, relu6 = ("leaky_relu", "relu6") if major == 3 else (tf().nn.leaky_relu, tf().nn.relu6)
    inp = k.Input((16, 8))
    x = k.layers.LSTM(8, return_sequences=True, recurrent_activation="sigmoid")(inp)
    x = k.layers.Bidirectional(k.layers.GRU(4, return_sequences=True))(x)
    x = k.layers.TimeDistributed(k.layers.Dense(4, activation=leaky))(x)
    x = k.layers.Conv1D(4, 3, activation=relu6, kernel_regularizer=k.regularizers.L1L2(0.1))(x)
    x = k.layers.MultiHeadAttention(2, 4)(x, x)
    x = k.layers.GlobalAveragePooling1D()(k.layers.LayerNormalization()(x))
    x = k.layers.LeakyReLU()(k.layers.Rescaling(0.5)(x))
    out = k.layers.Dense(
        5, "softmax", kernel_initializer="he_normal", bias_constraint=k.constraints.NonNeg()
    )(x)
    seq = k.Model(inp, out)
    schedule = k.optimizers.schedules.CosineDecay(0.1, 100)
    seq.compile(
        optimizer=k.optimizers.SGD(learning_rate=schedule, momentum=0.9),
        loss=k.losses.SparseCategoricalCrossentropy(),
        metrics=[k.metrics.SparseCategoricalAccuracy(), "sparse_top_k_categorical_accuracy"],
    )
    text_in = k.Input((1,), dtype="string")
    t = k.layers.TextVectorization(20, output_sequence_length=4, vocabulary=["a", "b", "c"])
    t = k.layers.Flatten()(k.layers.Embedding(20, 4)(t(text_in)))
    text = k.Model(text_in, k.layers.Dense(2, activation="softmax")(t))
    k.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed_in = k.Input((4,))
        mixed = k.Model(mixed_in, k.layers.Dense(2, dtype="float32")(k.layers.Dense(4)(mixed_in)))
    finally:
        k.mixed_precision.set_global_policy("float32")
    for model in (seq, text, mixed):
        paths = [tmp_path / f"{model.name}.keras", tmp_path / f"{model.name}.h5"]
        for path in paths:
            model.save(path)
        if major == 2 and model is mixed:  # (tracing the recurrent one takes ~20 s)
            paths.append(tmp_path / f"{model.name}_savedmodel")
            model.save(paths[-1], save_format="tf")
        for path in paths:
            stored = read_stored_model(path)
            assert stored.keras_major == major
            assert find_unsafe(stored) == [], path.name
