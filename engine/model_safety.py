"""Read a model file's stored architecture ourselves and refuse code-running content.

Loading a Keras model can run code: a ``Lambda`` layer stores Python bytecode that Keras
calls while rebuilding the model, and unknown classes mean custom code. tf_keras'
``safe_mode`` only covers ``.keras`` files (an ``.h5`` Lambda still runs), so before any
Keras loader sees a file we read its config with plain ``zipfile`` / ``h5py`` / a protobuf
wire reader and check every serialized object against Keras' own built-in classes.

Public API:

- ``read_stored_model(path) -> StoredModel`` (raises ``BadInputError`` for missing,
  empty, truncated or foreign files)
- ``find_unsafe(stored) -> list[UnsafeItem]``
- ``check_safe(stored, allow_unsafe=False)`` (raises ``UnsafeModelError``)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import BadInputError, UnsafeModelError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
# Layers that are built in but run stored or external code.
CODE_LAYERS = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
# Keras 2 wraps TF ops used on symbolic tensors in these; they call a TF function looked up
# by name, so only pure math namespaces are accepted.
TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})
SAFE_TF_OP_PREFIXES = ("math.", "nn.", "__operators__.", "image.", "linalg.", "signal.")
SAFE_TF_OPS = frozenset(
    {
        "reshape", "concat", "transpose", "expand_dims", "squeeze", "identity", "cast",
        "clip_by_value", "stack", "unstack", "split", "tile", "pad", "where", "gather",
        "reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "matmul", "shape",
        "zeros_like", "ones_like", "broadcast_to", "einsum", "__operators__.getitem",
    }
)  # fmt: skip
# Serialization markers that describe plain data, not code.
DATA_MARKERS = frozenset(
    {"__keras_tensor__", "__tuple__", "__numpy__", "__tensor__", "__bytes__", "__typespec__",
     "__slice__", "__ellipsis__", "__complex__", "__tensor_shape__", "TensorShape"}
)  # fmt: skip
SAFE_MODULE_ROOTS = ("keras", "tf_keras")
ALLOW_HINT = "load it only if you trust the file: --allow-unsafe (CLI) / allow_unsafe=True"


@dataclass
class StoredModel:
    """What a model file says about itself, read without any Keras loader."""

    path: Path
    fmt: str  # "keras" (zip) | "h5" | "savedmodel"
    keras_version: str | None
    config: dict[str, Any] | None  # top-level {"class_name", "config", ...}; None if absent
    savedmodel_nodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def keras_major(self) -> int:
        """3 for files written by Keras 3, else 2 (tf_keras / older Keras)."""
        if self.keras_version:
            return 3 if self.keras_version.strip().startswith("3") else 2
        return 3 if _looks_like_keras3(self.config) else 2


@dataclass
class UnsafeItem:
    layer: str
    class_name: str
    reason: str

    def describe(self) -> str:
        return f"layer '{self.layer}' ({self.class_name}): {self.reason}"


# ---------------------------------------------------------------- reading files


def read_stored_model(path: str | Path) -> StoredModel:
    """Read format, Keras version and architecture config of a model file or folder.

    Raises BadInputError when the path is missing, empty, truncated or not a model.
    """
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"model not found: {p}")
    if p.is_dir():
        return _read_savedmodel(p)
    size = p.stat().st_size
    if size == 0:
        raise BadInputError(f"model file is empty: {p}")
    with p.open("rb") as fh:
        head = fh.read(8)
    suffix = p.suffix.lower()
    if suffix == ".keras" or (suffix not in (".h5", ".hdf5") and head.startswith(ZIP_MAGIC)):
        return _read_keras_zip(p)
    if suffix in (".h5", ".hdf5") or head == HDF5_MAGIC:
        return _read_h5(p)
    raise BadInputError(
        f"unsupported model file {p.name}: expected a .keras or .h5 file or a SavedModel folder"
    )


def _read_keras_zip(p: Path) -> StoredModel:
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise BadInputError(f"{p} is not a Keras model file: config.json is missing")
            config = json.loads(zf.read("config.json"))
            meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
            if "model.weights.h5" not in names and "model.weights.npz" not in names:
                raise BadInputError(f"{p} has no weights (model.weights.h5 is missing)")
            bad = zf.testzip()
            if bad is not None:
                raise BadInputError(f"{p} is corrupt: member {bad} fails its checksum")
    except zipfile.BadZipFile:
        raise BadInputError(f"{p} is not a valid .keras file (truncated or not a zip)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInputError(f"{p} is corrupt: its config.json is not valid JSON") from None
    except (OSError, EOFError) as exc:
        raise BadInputError(f"cannot read {p}: {exc}") from None
    if not isinstance(config, dict):
        raise BadInputError(f"{p} is corrupt: config.json is not a model config")
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return StoredModel(p, "keras", version, config)


def _read_h5(p: Path) -> StoredModel:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            attrs = dict(f.attrs)
    except OSError:
        raise BadInputError(f"{p} is not a valid HDF5 (.h5) file (truncated or corrupt)") from None
    raw = attrs.get("model_config")
    if raw is None:
        raise BadInputError(
            f"{p} holds no model architecture (weights only?): save the whole model with "
            "model.save(...)"
        )
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInputError(f"{p} is corrupt: its model_config is not valid JSON") from None
    version = attrs.get("keras_version")
    if isinstance(version, bytes):
        version = version.decode()
    return StoredModel(p, "h5", str(version) if version is not None else None, config)


def _read_savedmodel(p: Path) -> StoredModel:
    if not (p / "saved_model.pb").is_file() and not (p / "saved_model.pbtxt").is_file():
        raise BadInputError(f"{p} is a folder but not a SavedModel (no saved_model.pb)")
    meta_path = p / "keras_metadata.pb"
    if not meta_path.is_file():
        raise BadInputError(
            f"{p} is a SavedModel without Keras metadata (exported with tf.saved_model.save "
            "or model.export?): save the Keras model with model.save(...) instead"
        )
    try:
        nodes = [json.loads(m) if m else {} for m in _saved_metadata_strings(meta_path)]
    except (ValueError, UnicodeDecodeError):
        raise BadInputError(f"{p} is corrupt: keras_metadata.pb cannot be parsed") from None
    if not nodes:
        raise BadInputError(f"{p} is corrupt: keras_metadata.pb is empty")
    root = nodes[0]
    config = None
    if isinstance(root.get("config"), dict):
        config = {"class_name": root.get("class_name"), "config": root["config"]}
    version = root.get("keras_version")
    return StoredModel(p, "savedmodel", version, config, savedmodel_nodes=nodes)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Decode one protobuf message level: (field number, wire type, value)."""
    out = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        val: Any
        if wire == 0:
            val, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            val, i = buf[i : i + n], i + n
        elif wire == 1:
            val, i = buf[i : i + 8], i + 8
        elif wire == 5:
            val, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if i > len(buf):
            raise ValueError("truncated field")
        out.append((num, wire, val))
    return out


def _saved_metadata_strings(meta_path: Path) -> list[str]:
    """The ``metadata`` JSON of each node in keras_metadata.pb (SavedMetadata proto).

    ``SavedMetadata { repeated SavedObject nodes = 1; }`` and
    ``SavedObject { int32 node_id = 2; string node_path = 3; string identifier = 4;
    string metadata = 5; ... }`` (tf_keras/protobuf/saved_metadata.proto). Read by hand so
    that nothing of TensorFlow runs before the check.
    """
    data = meta_path.read_bytes()
    out = []
    for num, wire, val in _fields(data):
        if num != 1 or wire != 2:
            continue
        meta = ""
        for n2, w2, v2 in _fields(val):
            if n2 == 5 and w2 == 2:
                meta = v2.decode("utf-8")
        out.append(meta)
    return out


def _looks_like_keras3(config: Any) -> bool:
    """Keras 3 InputLayers store ``batch_shape``; Keras 2 stores ``batch_input_shape``."""
    text = json.dumps(config) if config is not None else ""
    return '"batch_shape"' in text and '"batch_input_shape"' not in text


# ---------------------------------------------------------------- the check


@cache
def builtin_class_names(keras_major: int = 2) -> frozenset[str]:
    """Names of the built-in classes a model config written by that Keras may mention
    (layers, initializers, regularizers, constraints, metrics, losses, dtype policies)."""
    from engine.tfenv import keras2, keras3

    k = keras3() if keras_major == 3 else keras2()
    names: set[str] = set(MODEL_CLASSES) | set(TF_OP_LAYERS) | set(DATA_MARKERS)
    names |= {"Policy", "DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy"}
    names |= {"function"}  # Keras 3: a built-in function, checked by its module below
    for mod in (k.layers, k.initializers, k.regularizers, k.constraints, k.metrics, k.losses):
        for name in dir(mod):
            obj = getattr(mod, name, None)
            if isinstance(obj, type) and not name.startswith("_"):
                names.add(name)
    for name in dir(getattr(k, "dtype_policies", object())):
        if name.endswith("Policy"):
            names.add(name)
    return frozenset(names - CODE_LAYERS - {"Layer", "Wrapper", "InputSpec"})


def find_unsafe(stored: StoredModel) -> list[UnsafeItem]:
    """Every serialized object in the stored config that would run code or is unknown."""
    found: list[UnsafeItem] = []
    builtin = builtin_class_names(stored.keras_major)
    if stored.config is not None:
        _walk(stored.config, "model", builtin, found)
    for node in stored.savedmodel_nodes:
        if not isinstance(node, dict) or "class_name" not in node:
            continue
        layer = str(node.get("name") or "?")
        _check_object(node, layer, builtin, found)
        if isinstance(node.get("config"), dict):
            _walk(node["config"], layer, builtin, found)
    unique: dict[tuple[str, str, str], UnsafeItem] = {}
    for item in found:
        unique.setdefault((item.layer, item.class_name, item.reason), item)
    return list(unique.values())


def _walk(obj: Any, layer: str, builtin: frozenset[str], found: list[UnsafeItem]) -> None:
    if isinstance(obj, list):
        for v in obj:
            _walk(v, layer, builtin, found)
        return
    if not isinstance(obj, dict):
        return
    if "class_name" in obj:
        cfg = obj.get("config")
        name = obj.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
        cls = str(obj.get("class_name"))
        if isinstance(name, str) and cls not in DATA_MARKERS and not cls.endswith("Policy"):
            layer = name
        _check_object(obj, layer, builtin, found)
    for key, v in obj.items():
        if key in ("inbound_nodes", "input_layers", "output_layers"):
            continue  # references to layers, checked where the layers are defined
        if key == "compile_config":
            continue  # never deserialized: every loader here uses compile=False
        _walk(v, layer, builtin, found)


def _check_object(
    obj: dict[str, Any], layer: str, builtin: frozenset[str], found: list[UnsafeItem]
) -> None:
    cls = obj.get("class_name")
    if not isinstance(cls, str):
        return
    raw_cfg = obj.get("config")
    cfg: dict[str, Any] = raw_cfg if isinstance(raw_cfg, dict) else {}
    if cls == "Lambda":
        found.append(UnsafeItem(layer, cls, "a Lambda layer runs Python code stored in the file"))
        return
    if cls == "__lambda__":
        found.append(UnsafeItem(layer, "lambda", "stores Python bytecode that runs on load"))
        return
    if cls in CODE_LAYERS:
        found.append(UnsafeItem(layer, cls, "loads or runs code from outside Keras"))
        return
    if cls in TF_OP_LAYERS:
        fn = str(cfg.get("function", ""))
        if not (fn.startswith(SAFE_TF_OP_PREFIXES) or fn in SAFE_TF_OPS):
            found.append(UnsafeItem(layer, cls, f"calls TensorFlow function '{fn}'"))
        return
    module = obj.get("module")
    if isinstance(module, str) and module.split(".")[0] not in SAFE_MODULE_ROOTS:
        found.append(UnsafeItem(layer, cls, f"custom class from module '{module}'"))
        return
    registered = obj.get("registered_name")
    if isinstance(registered, str) and ">" in registered:
        found.append(UnsafeItem(layer, cls, f"custom registered class '{registered}'"))
        return
    if cls not in builtin:
        found.append(UnsafeItem(layer, cls, "not a built-in Keras class (custom code)"))


def check_safe(stored: StoredModel, allow_unsafe: bool = False) -> list[UnsafeItem]:
    """Raise UnsafeModelError if the stored model would run code, unless allowed.

    Returns what was found (empty when safe) so callers can warn when allowed.
    """
    found = find_unsafe(stored)
    if found and not allow_unsafe:
        first = found[0].describe()
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsafeModelError(f"refusing to load {stored.path.name}: {first}{more}; {ALLOW_HINT}")
    return found
