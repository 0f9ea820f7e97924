"""Read a model file's stored architecture ourselves and refuse code-running content.

Loading a Keras model can run code: a ``Lambda`` layer stores Python bytecode that Keras
calls while rebuilding the model, unknown classes mean custom code, and some built-in
options read other files. tf_keras' ``safe_mode`` only covers ``.keras`` files (an ``.h5``
Lambda still runs), so before any Keras loader sees a file we read its config with plain
``zipfile`` / ``h5py`` / a protobuf wire reader and check every serialized object.

**Bounded reading** (a hostile file is refused in well under a second, in a few MB of
memory, with a one-line ``BadInputError``; these limits are never lifted by
``allow_unsafe``):

- ``.keras`` zip: the end-of-central-directory record is read first (at most
  ``MAX_ZIP_MEMBERS`` members, a directory of at most ``MAX_ZIP_DIRECTORY_BYTES``); then,
  from the directory alone, before anything is inflated: only stored/deflated members
  (zipfile inflates bzip2/lzma without an output bound), none encrypted, no duplicate or
  overlapping members (the overlapping-entry zip bomb), a total uncompressed size of at most
  ``MAX_ZIP_TOTAL_BYTES``, and no member above ``RATIO_FLOOR_BYTES`` that inflates more
  than ``MAX_ZIP_RATIO``:1. Keras stores members uncompressed (1:1); a deflated config of
  real models measured 31-39:1 (MobileNetV2 / EfficientNetB0, Keras 2 and 3, level 9), a
  pretty-printed one 52:1, 5,000 identical Dense layers 136-151:1; float32 weights 1.1:1,
  90% / 99% sparse 7:1 / 59:1. ``config.json`` (``MAX_CONFIG_BYTES``) and
  ``metadata.json`` (``MAX_METADATA_BYTES``) are size-checked from the directory and read
  with a bounded read (their CRC is checked by ``zipfile`` at the end of the read);
  the weights are never inflated here (no ``testzip()``).
- ``.h5``: only the ``model_config``, ``training_config`` and ``keras_version`` root
  attributes are read, each after checking its shape and stored size. (A variable-length
  string attribute's size is only known once read; HDF5 never compresses attributes, so
  it is bounded by the file's own size.)
- SavedModel: ``keras_metadata.pb`` at most ``MAX_SAVEDMODEL_METADATA_BYTES``.
- Every JSON text: nesting depth at most ``MAX_JSON_DEPTH`` and at most
  ``MAX_JSON_CONTAINERS`` lists and dicts (per file), counted on the text (brackets outside
  string literals) before ``json.loads``: parsed JSON takes up to ~28 times its text size.
- The scan recurses at most ``MAX_JSON_DEPTH`` levels; it visits at most
  ``MAX_JSON_CONTAINERS`` dicts and lists (~1 s).

**What the scan refuses** (``find_unsafe``), wherever it sits: layer configs, nested models,
``inbound_nodes`` call arguments (Keras 3 ``args``/``kwargs``, Keras 2 kwargs dicts),
initializers, regularizers, constraints, activations, dtype policies, and the training
settings (``compile_config`` / the ``.h5`` ``training_config`` / SavedModel metadata:
optimizer, losses, metrics) even though every loader here uses ``compile=False``:

- ``Lambda`` layers, ``__lambda__`` objects and any ``function_type: "lambda"`` (bytecode);
  ``TFSMLayer`` / ``TorchModuleWrapper`` / ``JaxLayer`` / ``FlaxLayer`` (outside code);
  ``TFOpLambda`` calling a TensorFlow function outside the math namespaces.
- Classes checked by module **and** name: the name must be a class Keras itself defines
  (or registers, e.g. tf_keras' ``Custom>Adam``), and a stated module must be a Keras
  (``keras`` / ``tf_keras``) module of the kind that defines that class (a ``Dense`` from
  ``os`` or from ``keras.src.utils`` is refused).
- ``"function"`` objects (Keras 3: ``{"module", "class_name": "function", "config": name}``)
  by module and name: only Keras' own activation / loss / metric / op functions.
- Activation, initializer, regularizer and constraint given by name (a string): only Keras'
  own names (tf_keras looks such names up among a module's globals, where ``get`` or
  ``deserialize`` would be found too).
- Path-valued options, i.e. config values that make a built-in layer read a file when it is
  built. Found by reading the tf_keras 2.21 and Keras 3.15 sources (``layers/``,
  ``initializers``, ``regularizers``, ``constraints``, ``activations``, ``losses``,
  ``metrics``, ``optimizers``, ``ops``): ``vocabulary`` given as a string (a path or URL)
  in ``StringLookup``, ``IntegerLookup`` and ``TextVectorization`` (tf_keras reads it with
  ``tf.lookup.TextFileInitializer``; Keras 3 does so when not in safe mode). Any
  ``vocabulary`` string anywhere is refused. ``idf_weights`` is never read as a file; there
  is no ``stop_words`` option in either version; ``TFSMLayer.filepath`` is refused with the
  class. Classes outside Keras' public layer namespaces (tf_keras' experimental
  ``DynamicLookup`` / ``DynamicEmbedding``, ``FeatureSpace``) are refused as unknown.

Public API:

- ``read_stored_model(path) -> StoredModel`` (raises ``BadInputError`` for missing,
  empty, truncated, foreign or over-limit files)
- ``find_unsafe(stored) -> list[UnsafeItem]``
- ``check_safe(stored, allow_unsafe=False)`` (raises ``UnsafeModelError`` whose ``items``
  lists every ``UnsafeItem``; its one-line message names them all)
- ``unsafe_message(name, items) -> str`` (that message)
- ``builtin_class_names(keras_major) -> frozenset[str]``
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from engine.core.errors import BadInputError, UnsafeModelError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"

MiB = 1024 * 1024
GiB = 1024 * MiB
# Real configs: EfficientNetB0 232 KB (Keras 3) / 162 KB (Keras 2), 4,384 containers (one per
# ~53 bytes), parsed into 0.9 MiB. A hostile JSON text costs up to ~28x its size once parsed
# (nested empty dicts), so the limits keep the worst case well under 500 MB.
MAX_CONFIG_BYTES = 16 * MiB  # config.json, an .h5's model_config / training_config
MAX_SAVEDMODEL_METADATA_BYTES = 24 * MiB  # keras_metadata.pb: ~3.2x the config (measured)
MAX_METADATA_BYTES = 1 * MiB  # metadata.json; real: ~64 bytes
MAX_VERSION_BYTES = 4096  # the h5 keras_version attribute
MAX_JSON_DEPTH = 200  # real configs: 8-11 levels, ~5 more per nested model
MAX_JSON_CONTAINERS = 250_000  # lists + dicts in one file (a ~13 MB real config)
MAX_ZIP_MEMBERS = 10_000  # a .keras holds 3 members plus assets
MAX_ZIP_DIRECTORY_BYTES = 16 * MiB
MAX_ZIP_TOTAL_BYTES = 64 * GiB
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for members above RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 16 * MiB

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
     "__slice__", "__ellipsis__", "__complex__", "__tensor_shape__", "TensorShape", "TypeSpec"}
)  # fmt: skip
# A stated module must start with one of these; its kind (``layers`` in ``keras.layers`` or
# ``keras.src.layers.core.dense``) must be one that defines the class (``_Rules``).
SAFE_MODULE_ROOTS = ("keras", "tf_keras")
POLICY_CLASSES = frozenset({"Policy", "DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy"})
NOT_OBJECTS = frozenset({"get", "serialize", "deserialize"})  # callables, not functions to use
# Config keys whose string value is looked up by name in a Keras module (the key's kind).
NAMED_OPTION_KINDS = ("activation", "initializer", "regularizer", "constraint")
# Config keys whose string value makes a built-in layer read a file (see the docstring).
PATH_OPTIONS = frozenset({"vocabulary"})
TRAINING_KEYS = frozenset({"compile_config", "training_config"})
# Old wording of the hint; kept for modules that still append it. Featherweight's own hints
# are added by the CLI ("rerun with --allow-unsafe ...") and the GUI (its trust question).
ALLOW_HINT = "open it only if you trust the file"
BYTECODE_REASON = "stores Python bytecode that runs on load"


@dataclass
class StoredModel:
    """What a model file says about itself, read without any Keras loader."""

    path: Path
    fmt: str  # "keras" (zip) | "h5" | "savedmodel"
    keras_version: str | None
    config: dict[str, Any] | None  # top-level {"class_name", "config", ...}; None if absent
    savedmodel_nodes: list[dict[str, Any]] = field(default_factory=list)
    training_config: Any = None  # an .h5's training_config attribute (parsed), if any

    @property
    def keras_major(self) -> int:
        """3 for files written by Keras 3, else 2 (tf_keras / older Keras)."""
        if self.keras_version:
            return 3 if self.keras_version.strip().startswith("3") else 2
        return 3 if _looks_like_keras3(self.config) else 2


@dataclass
class UnsafeItem:
    """One thing in a model file that would run code or read a file when loaded.

    ``layer``: the layer (or, outside layers, the object) it belongs to, "" if none;
    ``where``: "layer", "model" (the model object itself) or "training config".
    """

    layer: str
    class_name: str
    reason: str
    where: str = "layer"

    def place(self) -> str:
        """``layer 'x'`` / ``model 'm'`` / ``training config`` (+ ``'name'``)."""
        return f"{self.where} '{self.layer}'" if self.layer else self.where

    def describe(self) -> str:
        return f"{self.place()} ({self.class_name}): {self.reason}"

    def to_dict(self) -> dict[str, str]:
        """JSON form (for the worker's events), with the one-line ``text``."""
        return {**asdict(self), "text": self.describe()}


# ---------------------------------------------------------------- reading files


def read_stored_model(path: str | Path) -> StoredModel:
    """Read format, Keras version and architecture config of a model file or folder.

    Raises BadInputError when the path is missing, empty, truncated, not a model, or over
    one of the size limits above (checked before the content is inflated or parsed).
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
        return _read_keras_zip(p, size)
    if suffix in (".h5", ".hdf5") or head == HDF5_MAGIC:
        return _read_h5(p)
    raise BadInputError(
        f"unsupported model file {p.name}: expected a .keras or .h5 file or a SavedModel folder"
    )


def _size(n: int) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    return f"{n:,} bytes"


def _not_a_zip(p: Path) -> BadInputError:
    return BadInputError(f"{p} is not a valid .keras file (truncated or not a zip)")


def _zip_directory_extent(fh: BinaryIO, size: int) -> tuple[int, int]:
    """``(members, directory bytes)`` from the end-of-central-directory record (and its
    zip64 form), read before ``zipfile`` loads the whole directory into memory.
    Raises ValueError when there is no such record."""
    tail_len = min(size, 22 + 0xFFFF)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    i = tail.rfind(b"PK\x05\x06")
    if i < 0 or len(tail) - i < 22:
        raise ValueError("no end of central directory")
    _, _, _, _, members, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[i : i + 22])
    if members == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        locator = tail[i - 20 : i] if i >= 20 else b""
        if locator[:4] == b"PK\x06\x07":
            _, _, z64_offset, _ = struct.unpack("<4sLQL", locator)
            fh.seek(z64_offset)
            rec = fh.read(56)
            if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
                fields = struct.unpack("<4sQ2H2L4Q", rec)
                members, cd_size = fields[7], fields[8]
    return members, cd_size


def _check_zip_directory(p: Path, zf: zipfile.ZipFile, size: int) -> None:
    """Refuse bombs and oddities from the central directory alone (nothing is inflated)."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise BadInputError(f"{p.name} is not a valid .keras file: member {dup!r} appears twice")
    total = 0
    spans = []
    for info in infos:
        shown = _clean(info.filename)
        if info.flag_bits & 0x1:
            raise BadInputError(f"{p.name}: member '{shown}' is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BadInputError(
                f"{p.name}: member '{shown}' uses compression method {info.compress_type}; "
                "a .keras file stores or deflates its members"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_ZIP_RATIO:
            raise BadInputError(
                f"{p.name}: member '{shown}' would inflate {ratio:,.0f}-fold to "
                f"{_size(info.file_size)} (more than {MAX_ZIP_RATIO}-fold: a zip bomb, not a "
                "model); refusing to read it"
            )
        total += info.file_size
        # Lower bound of the member's extent: local header (30 bytes) + compressed data.
        spans.append((info.header_offset, info.header_offset + 30 + info.compress_size, shown))
    if total > MAX_ZIP_TOTAL_BYTES:
        raise BadInputError(
            f"{p.name}: its members would inflate to {_size(total)} in all (more than "
            f"{_size(MAX_ZIP_TOTAL_BYTES)}); refusing to read it"
        )
    spans.sort()
    for (_, end, name), (start, _, _) in zip(spans, spans[1:] + [(size, 0, "")]):
        if end > start:
            raise BadInputError(
                f"{p.name} is not a valid .keras file: member '{name}' overlaps the next one "
                "or runs past the end of the file"
            )


def _read_member(p: Path, zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A small member, size-checked from the directory, then read with a bounded read
    (``zipfile`` checks its CRC once the read reaches its end)."""
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise BadInputError(
            f"{p.name}: its {name} would inflate to {_size(info.file_size)}, more than the "
            f"{_size(limit)} a model needs; refusing to read it"
        )
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # zipfile stops at the stated size; this is the second guard
        raise BadInputError(f"{p.name}: its {name} is larger than {_size(limit)}")
    return data


def _read_keras_zip(p: Path, size: int) -> StoredModel:
    try:
        with p.open("rb") as fh:
            members, cd_bytes = _zip_directory_extent(fh, size)
    except (ValueError, struct.error, OSError):
        raise _not_a_zip(p) from None
    if members > MAX_ZIP_MEMBERS or cd_bytes > MAX_ZIP_DIRECTORY_BYTES:
        raise BadInputError(
            f"{p.name}: its zip directory lists {members:,} members in {_size(cd_bytes)} "
            f"(a .keras file has a handful); refusing to read it"
        )
    try:
        with zipfile.ZipFile(p) as zf:
            _check_zip_directory(p, zf, size)
            names = set(zf.namelist())
            if "config.json" not in names:
                raise BadInputError(f"{p} is not a Keras model file: config.json is missing")
            if "model.weights.h5" not in names and "model.weights.npz" not in names:
                raise BadInputError(f"{p} has no weights (model.weights.h5 is missing)")
            config_raw = _read_member(p, zf, "config.json", MAX_CONFIG_BYTES)
            meta_raw = (
                _read_member(p, zf, "metadata.json", MAX_METADATA_BYTES)
                if "metadata.json" in names
                else b"{}"
            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, struct.error):
        raise _not_a_zip(p) from None
    except OSError as exc:
        raise BadInputError(f"cannot read {p}: {exc}") from None
    config = _parse_json(config_raw, p, "config.json")
    meta = _parse_json(meta_raw, p, "metadata.json")
    if not isinstance(config, dict):
        raise BadInputError(f"{p} is corrupt: config.json is not a model config")
    version = meta.get("keras_version") if isinstance(meta, dict) else None
    return StoredModel(p, "keras", str(version) if version is not None else None, config)


def _h5_text_attr(p: Path, attrs: Any, name: str, limit: int) -> str | None:
    """A scalar text attribute of the file's root, its stored size checked before reading."""
    if name not in attrs:
        return None
    aid = attrs.get_id(name)
    shape = tuple(aid.shape or ())
    if shape not in ((), (1,)):
        raise BadInputError(f"{p.name} is corrupt: its {name} attribute is not one text")
    if aid.get_storage_size() > limit:
        raise BadInputError(
            f"{p.name}: its {name} attribute holds {_size(aid.get_storage_size())}, more than "
            f"the {_size(limit)} a model needs; refusing to read it"
        )
    value = attrs[name]
    if shape == (1,) and hasattr(value, "reshape"):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):  # includes numpy.bytes_
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInputError(f"{p.name} is corrupt: its {name} is not UTF-8 text") from None
    if not isinstance(value, str):
        raise BadInputError(f"{p.name} is corrupt: its {name} attribute is not text")
    if len(value) > limit:  # variable-length strings: known only once read
        raise BadInputError(f"{p.name}: its {name} attribute is larger than {_size(limit)}")
    return value


def _read_h5(p: Path) -> StoredModel:
    import h5py

    try:
        with h5py.File(p, "r") as f:
            raw = _h5_text_attr(p, f.attrs, "model_config", MAX_CONFIG_BYTES)
            training = _h5_text_attr(p, f.attrs, "training_config", MAX_CONFIG_BYTES)
            version = _h5_text_attr(p, f.attrs, "keras_version", MAX_VERSION_BYTES)
    except OSError:
        raise BadInputError(f"{p} is not a valid HDF5 (.h5) file (truncated or corrupt)") from None
    if raw is None:
        raise BadInputError(
            f"{p} holds no model architecture (weights only?): save the whole model with "
            "model.save(...)"
        )
    budget = [MAX_JSON_CONTAINERS]  # shared by both texts
    config = _parse_json(raw, p, "model_config", budget)
    training_config = _parse_json(training, p, "training_config", budget) if training else None
    return StoredModel(p, "h5", version, config, training_config=training_config)


def _read_savedmodel(p: Path) -> StoredModel:
    if not (p / "saved_model.pb").is_file() and not (p / "saved_model.pbtxt").is_file():
        raise BadInputError(f"{p} is a folder but not a SavedModel (no saved_model.pb)")
    meta_path = p / "keras_metadata.pb"
    if not meta_path.is_file():
        raise BadInputError(
            f"{p} is a SavedModel without Keras metadata (exported with tf.saved_model.save "
            "or model.export?): save the Keras model with model.save(...) instead"
        )
    meta_size = meta_path.stat().st_size
    if meta_size > MAX_SAVEDMODEL_METADATA_BYTES:
        raise BadInputError(
            f"{p.name}: its keras_metadata.pb holds {_size(meta_size)}, more than the "
            f"{_size(MAX_SAVEDMODEL_METADATA_BYTES)} a model needs; refusing to read it"
        )
    try:
        texts = _saved_metadata_strings(meta_path)
    except (ValueError, UnicodeDecodeError):
        raise BadInputError(f"{p} is corrupt: keras_metadata.pb cannot be parsed") from None
    budget = [MAX_JSON_CONTAINERS]  # shared by all nodes
    nodes = [_parse_json(m, p, "keras_metadata.pb", budget) if m else {} for m in texts]
    if not nodes:
        raise BadInputError(f"{p} is corrupt: keras_metadata.pb is empty")
    root = nodes[0]
    if not isinstance(root, dict):
        raise BadInputError(f"{p} is corrupt: keras_metadata.pb cannot be parsed")
    config = None
    if isinstance(root.get("config"), dict):
        config = {"class_name": root.get("class_name"), "config": root["config"]}
    version = root.get("keras_version")
    return StoredModel(
        p, "savedmodel", str(version) if version is not None else None, config, nodes
    )


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


# JSON string literals (they may hold brackets) and everything that is not a bracket.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_nesting(text: str) -> tuple[int, int]:
    """``(deepest nesting, number of lists and dicts)`` of a JSON text, counted on its
    brackets outside string literals, without parsing it (``json.loads`` recurses once per
    level and allocates every container)."""
    import numpy as np

    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    deepest = level = opened = 0
    chunk = 1 << 20
    for start in range(0, len(brackets), chunk):
        a = np.frombuffer(brackets, np.uint8, min(chunk, len(brackets) - start), start)
        opens = (a == ord("[")) | (a == ord("{"))
        opened += int(opens.sum())
        run = np.cumsum(np.where(opens, 1, -1).astype(np.int64)) + level
        deepest = max(deepest, int(run.max()))
        level = int(run[-1])
    return deepest, opened


def _parse_json(raw: bytes | str, p: Path, what: str, budget: list[int] | None = None) -> Any:
    """JSON of a model file, its nesting and size checked before parsing; BadInputError when
    invalid or over a limit. ``budget``: containers still allowed for this file (updated)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadInputError(f"{p} is corrupt: its {what} is not valid JSON") from None
    depth, containers = json_nesting(text)
    if depth > MAX_JSON_DEPTH:
        raise BadInputError(
            f"{p.name}: its {what} nests {depth:,} levels deep (a model config needs a few "
            f"dozen; the limit is {MAX_JSON_DEPTH}); refusing to read it"
        )
    budget = budget if budget is not None else [MAX_JSON_CONTAINERS]
    budget[0] -= containers
    if budget[0] < 0:
        raise BadInputError(
            f"{p.name}: its {what} holds {containers:,} lists and objects (more than the "
            f"{MAX_JSON_CONTAINERS:,} a model config can need); refusing to read it"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise BadInputError(f"{p} is corrupt: its {what} is not valid JSON") from None


def _looks_like_keras3(config: Any) -> bool:
    """Keras 3 InputLayers store ``batch_shape``; Keras 2 stores ``batch_input_shape``."""
    text = json.dumps(config) if config is not None else ""
    return '"batch_shape"' in text and '"batch_input_shape"' not in text


# ---------------------------------------------------------------- what Keras defines


def _subpackage(module: str) -> str | None:
    """``keras.src.layers.core.dense`` -> ``layers``; ``keras`` -> None (package root)."""
    parts = module.split(".")[1:]
    if parts[:1] == ["src"]:
        parts = parts[1:]
    return parts[0] if parts else None


@dataclass(frozen=True)
class _Rules:
    """What one Keras major version defines, for checking names found in a file."""

    classes: frozenset[str]
    class_subpackages: dict[str, frozenset[str]]
    registered: frozenset[str]  # "Package>Name" registered by Keras itself
    functions: dict[str, frozenset[str]]  # subpackage -> function names
    builtin_functions: frozenset[str]  # what {"module": "builtins", "config": name} may name
    named_options: dict[str, frozenset[str]]  # "activation" etc. -> names accepted as strings


def _public_callables(mod: Any) -> dict[str, Any]:
    out = {}
    for name in dir(mod):
        obj = getattr(mod, name, None)
        if name.startswith("_") or name in NOT_OBJECTS or isinstance(obj, type):
            continue
        if callable(obj):
            out[name] = obj
    return out


@cache
def _rules(keras_major: int) -> _Rules:
    from engine.core.tfenv import keras2, keras3

    k = keras3() if keras_major == 3 else keras2()
    subs: dict[str, set[str]] = {}

    def add(name: str, *where: str | None) -> None:
        subs.setdefault(name, set()).update(w for w in where if w)

    public = (
        "layers", "initializers", "regularizers", "constraints", "metrics", "losses",
        "optimizers", "optimizers.schedules", "dtype_policies", "mixed_precision",
    )  # fmt: skip
    for path in public:
        mod: Any = k
        for part in path.split("."):
            mod = getattr(mod, part, None)
        if mod is None:
            continue
        for name in dir(mod):
            obj = getattr(mod, name, None)
            if isinstance(obj, type) and not name.startswith("_"):
                add(name, path.split(".")[0], _subpackage(obj.__module__))
    for name in MODEL_CLASSES:
        add(name, "engine", "models")
    for name in POLICY_CLASSES:
        add(name, "mixed_precision", "dtype_policies")
    for name in TF_OP_LAYERS:
        add(name, "layers")
    if keras_major == 3:
        for name, sub in _keras3_op_classes():
            add(name, sub)
    for name in CODE_LAYERS | {"Layer", "Wrapper"}:  # (InputSpec: data, SavedModel metadata)
        subs.pop(name, None)
    classes = frozenset(subs) | DATA_MARKERS

    registry = _registry(keras_major)
    registered = frozenset(
        name
        for name, obj in registry.items()
        if ">" in name and str(getattr(obj, "__module__", "")).split(".")[0] in SAFE_MODULE_ROOTS
    )

    functions: dict[str, frozenset[str]] = {}
    for sub in ("activations", "losses", "metrics", "initializers", "regularizers",
                "constraints", "optimizers", "ops"):  # fmt: skip
        mod = getattr(k, sub, None)
        if mod is not None:
            functions[sub] = frozenset(_public_callables(mod))
    builtin_functions = frozenset().union(*(functions.get(s, frozenset()) for s in (
        "activations", "losses", "metrics", "initializers", "regularizers", "constraints",
        "optimizers")))  # fmt: skip

    activations = set(functions.get("activations", frozenset()))
    if keras_major == 2:
        # tf_keras resolves activation names among its activations module's functions,
        # some of which are not exported (leaky_relu, relu6, log_softmax, silu).
        import types

        from tf_keras.src import activations as k2_activations

        activations |= {
            n
            for n, o in vars(k2_activations).items()
            if isinstance(o, types.FunctionType) and n not in NOT_OBJECTS and not n.startswith("_")
        }
    named = {"activation": frozenset(activations)}
    for kind in ("initializer", "regularizer", "constraint"):
        mod = getattr(k, kind + "s")
        named[kind] = frozenset(
            n for n in dir(mod) if not n.startswith("_") and n not in NOT_OBJECTS
        )
    return _Rules(
        classes=classes,
        class_subpackages={n: frozenset(s) for n, s in subs.items()},
        registered=registered,
        functions=functions,
        builtin_functions=builtin_functions,
        named_options=named,
    )


def _registry(keras_major: int) -> dict[str, Any]:
    try:
        if keras_major == 3:
            from keras.src.saving import object_registration as reg3

            return dict(reg3.GLOBAL_CUSTOM_OBJECTS)
        from tf_keras.src.saving import object_registration as reg2

        return dict(reg2._GLOBAL_CUSTOM_OBJECTS)
    except (ImportError, AttributeError):  # another layout: only unregistered names pass
        return {}


def _keras3_op_classes() -> list[tuple[str, str]]:
    """Keras 3 operations stored as functional nodes (``keras.src.ops.numpy.Add``...)."""
    import importlib
    import pkgutil

    from keras.src import ops
    from keras.src.ops.operation import Operation

    out = []
    for info in pkgutil.iter_modules(ops.__path__):
        if info.name.endswith("_test") or info.name in ("operation", "function", "node"):
            continue
        mod = importlib.import_module(f"keras.src.ops.{info.name}")
        for name, obj in vars(mod).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, Operation)
                and obj.__module__ == mod.__name__
            ):
                out.append((name, "ops"))
    return out


@cache
def builtin_class_names(keras_major: int = 2) -> frozenset[str]:
    """Names of the built-in classes a model config written by that Keras may mention
    (layers, initializers, regularizers, constraints, metrics, losses, optimizers, dtype
    policies, Keras 3 operations, data markers); code-running layers excluded."""
    return _rules(keras_major).classes


# ---------------------------------------------------------------- the check


def find_unsafe(stored: StoredModel) -> list[UnsafeItem]:
    """Every serialized object or option in the stored model that would run code, read a
    file, or is unknown to Keras (custom code), in order of appearance, each once."""
    found: list[UnsafeItem] = []
    rules = _rules(stored.keras_major)
    if isinstance(stored.config, (dict, list)):
        _walk(stored.config, rules, found, "", "model")
    if isinstance(stored.training_config, (dict, list)):
        _walk(stored.training_config, rules, found, "", "training config")
    for node in stored.savedmodel_nodes:
        if isinstance(node, dict):
            _walk(node, rules, found, "", "layer")
    unique: dict[tuple[str, str, str, str], UnsafeItem] = {}
    for item in found:
        unique.setdefault((item.where, item.layer, item.class_name, item.reason), item)
    # A Lambda layer is named once: its own bytecode option is part of the same item.
    lambdas = {(i.where, i.layer) for i in unique.values() if i.class_name in CODE_LAYERS}
    return [
        i
        for i in unique.values()
        if not (i.reason == BYTECODE_REASON and (i.where, i.layer) in lambdas)
    ]


def _clean(text: Any, limit: int = 120) -> str:
    """Text from the file as part of a one-line message: no control characters, bounded."""
    s = str(text)[: limit + 1]
    if not s.isprintable():
        s = "".join(c if c.isprintable() else "?" for c in s)
    return s if len(s) <= limit else s[:limit] + "..."


def _walk(
    obj: Any,
    rules: _Rules,
    found: list[UnsafeItem],
    layer: str,
    where: str,
    owner: str = "config",
    depth: int = 0,
) -> None:
    """Visit every dict and list under ``obj`` with the layer and the class of the nearest
    enclosing serialized object. Recursion depth is bounded by ``MAX_JSON_DEPTH`` (checked on
    every file's text before parsing; hand-built configs are cut off here)."""
    if depth > MAX_JSON_DEPTH + 10:
        found.append(UnsafeItem(layer, owner, "config nested too deep to check", where))
        return
    if obj.__class__ is list:
        for v in obj:
            if v.__class__ is dict or v.__class__ is list:
                _walk(v, rules, found, layer, where, owner, depth + 1)
        return
    if "class_name" in obj:
        cls = obj.get("class_name")
        cfg = obj.get("config")
        name = obj.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
        is_data = isinstance(cls, str) and (cls in DATA_MARKERS or cls in POLICY_CLASSES)
        if where == "model" and depth > 0 and not is_data:
            where = "layer"  # below the model object: its layers
        if isinstance(name, str) and not is_data:
            layer = _clean(name, 80)
        owner = _clean(cls, 80) if isinstance(cls, str) else "?"
        _check_object(obj, layer, where, rules, found)
    _check_options(obj, layer, where, owner, rules, found)
    for key, v in obj.items():
        if v.__class__ is dict or v.__class__ is list:
            if key in TRAINING_KEYS:
                _walk(v, rules, found, "", "training config", "config", depth + 1)
            else:
                _walk(v, rules, found, layer, where, owner, depth + 1)


def _check_options(
    obj: dict[str, Any],
    layer: str,
    where: str,
    owner: str,
    rules: _Rules,
    found: list[UnsafeItem],
) -> None:
    """Options of a config dict: file paths, bytecode markers, functions named by string.
    ``owner``: the class of the serialized object the dict belongs to."""
    for key, value in obj.items():
        if not isinstance(value, str):
            continue
        if key in PATH_OPTIONS:
            found.append(
                UnsafeItem(
                    layer,
                    owner,
                    f"reads the file '{_clean(value)}' when loaded ({key} given as a path)",
                    where,
                )
            )
        elif key in ("function_type", "output_shape_type", "mask_type") and value == "lambda":
            if owner != "Lambda":  # a Lambda is refused as such
                found.append(UnsafeItem(layer, owner, BYTECODE_REASON, where))
        elif isinstance(key, str):
            kind = _named_option_kind(key)
            if kind is not None and value not in rules.named_options.get(kind, frozenset()):
                found.append(
                    UnsafeItem(
                        layer,
                        owner,
                        f"{key} '{_clean(value, 60)}' is not a Keras built-in {kind} (custom code)",
                        where,
                    )
                )


def _named_option_kind(key: str) -> str | None:
    """ "activation" for ``activation`` / ``recurrent_activation``..., else the kind whose
    name ends the key (``kernel_initializer``); None for other keys."""
    kind = key.rpartition("_")[2]
    return kind if kind in NAMED_OPTION_KINDS else None


def _check_object(
    obj: dict[str, Any], layer: str, where: str, rules: _Rules, found: list[UnsafeItem]
) -> None:
    def refuse(cls: str, reason: str) -> None:
        found.append(UnsafeItem(layer, _clean(cls, 80), reason, where))

    cls = obj.get("class_name")
    if not isinstance(cls, str):
        refuse("?", "malformed object: its class name is not text")
        return
    raw_cfg = obj.get("config")
    cfg: dict[str, Any] = raw_cfg if isinstance(raw_cfg, dict) else {}
    module = obj.get("module")
    if cls == "Lambda":
        refuse(cls, "a Lambda layer runs Python code stored in the file")
        return
    if cls == "__lambda__":
        refuse("lambda", BYTECODE_REASON)
        return
    if cls in CODE_LAYERS:
        refuse(cls, "loads or runs code from outside Keras")
        return
    if cls in TF_OP_LAYERS:
        fn = str(cfg.get("function", ""))
        if not (fn.startswith(SAFE_TF_OP_PREFIXES) or fn in SAFE_TF_OPS):
            refuse(cls, f"calls TensorFlow function '{_clean(fn, 80)}'")
            return
    if cls == "function":
        _check_function(obj, rules, refuse)
        return
    if cls == "__typespec__":
        spec = obj.get("spec_name")
        root = module.split(".")[0] if isinstance(module, str) else ""
        if root not in ("tensorflow", *SAFE_MODULE_ROOTS) or not (
            isinstance(spec, str) and re.fullmatch(r"[A-Za-z]*Spec", spec)
        ):
            refuse(cls, f"names type spec '{_clean(spec, 60)}' from module '{_clean(module)}'")
        return
    if cls == "TypeSpec":  # tf_keras SavedModel metadata: looked up in TF's spec registry
        spec = obj.get("type_spec")
        if not (isinstance(spec, str) and re.fullmatch(r"tf\.[\w.]*Spec", spec)):
            refuse(cls, f"names type spec '{_clean(spec, 60)}'")
        return
    if cls in DATA_MARKERS:
        return
    if module is not None:
        if not isinstance(module, str) or module.split(".")[0] not in SAFE_MODULE_ROOTS:
            refuse(cls, f"custom class from module '{_clean(module)}'")
            return
        sub = _subpackage(module)
        if (
            sub is not None
            and cls in rules.class_subpackages
            and sub not in rules.class_subpackages[cls]
        ):
            refuse(cls, f"claims module '{_clean(module)}', where Keras defines no {cls}")
            return
    registered = obj.get("registered_name")
    if isinstance(registered, str) and ">" in registered and registered not in rules.registered:
        refuse(cls, f"custom registered class '{_clean(registered, 80)}'")
        return
    if ">" in cls:
        if cls not in rules.registered:
            refuse(cls, "custom registered class (custom code)")
        return
    if cls not in rules.classes:
        refuse(cls, "not a built-in Keras class (custom code)")


def _check_function(obj: dict[str, Any], rules: _Rules, refuse: Any) -> None:
    """Keras 3 function objects: ``builtins`` + a built-in name, or a Keras module of the
    right kind (activations, losses, metrics, ops...) + a function it defines."""
    name, module = obj.get("config"), obj.get("module")
    registered = obj.get("registered_name")
    shown = f"'{_clean(name, 60)}' from module '{_clean(module)}'"
    if not isinstance(name, str) or not isinstance(module, str):
        refuse("function", f"function {shown} is not a Keras built-in function")
        return
    if isinstance(registered, str) and ">" in registered and registered not in rules.registered:
        refuse("function", f"custom registered function '{_clean(registered, 80)}'")
        return
    if module == "builtins":
        ok = name in rules.builtin_functions
    elif module.split(".")[0] in SAFE_MODULE_ROOTS:
        sub = _subpackage(module)
        if sub is None:
            ok = any(name in names for names in rules.functions.values())
        else:
            ok = name in rules.functions.get(sub, frozenset())
    else:
        ok = False
    if not ok:
        refuse("function", f"function {shown} is not a Keras built-in function")


def unsafe_message(name: str, items: list[UnsafeItem]) -> str:
    """One line naming every item; items of one class and reason share one entry
    (``layers 'a', 'b' (Doubler): ...``). Past 50 items (a hostile file can hold thousands)
    each entry names 5 and 20 entries are shown, with counts of the rest."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for item in items:
        groups.setdefault((item.where, item.class_name, item.reason), []).append(item.layer)
    many = len(items) > 50
    parts = []
    for (where, cls, reason), layers in groups.items():
        named = [n for n in layers if n]
        shown = named[:5] if many else named
        plural = f"{where}s" if where in ("layer", "model") else where
        place = f"{plural if len(named) > 1 else where} " + ", ".join(f"'{n}'" for n in shown)
        if not named:
            place = where
        elif len(named) > len(shown):
            place += f" and {len(named) - len(shown):,} more of this kind"
        parts.append(f"{place} ({cls}): {reason}")
    if many and len(parts) > 20:
        rest = sum(len(v) for v in list(groups.values())[20:])
        parts = parts[:20] + [f"and {rest:,} items of {len(groups) - 20:,} other kinds"]
    return (
        f"refusing to load {_clean(name)} because loading it would run code or read other "
        f"files: {'; '.join(parts)}"
    )


def check_safe(stored: StoredModel, allow_unsafe: bool = False) -> list[UnsafeItem]:
    """Raise UnsafeModelError (``.items``: every UnsafeItem) if the stored model would run
    code or read other files, unless allowed.

    Returns what was found (empty when safe) so callers can warn when allowed.
    """
    found = find_unsafe(stored)
    if found and not allow_unsafe:
        raise UnsafeModelError(unsafe_message(stored.path.name, found), items=found)
    return found
