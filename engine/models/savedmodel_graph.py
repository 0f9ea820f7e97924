"""SavedModel folders without running their graph: an op scan and a Keras-only rebuild.

A tf_keras SavedModel folder is a TensorFlow program, not just a config: ``saved_model.pb``
holds graphs and a function library, and ``tf.saved_model.load`` / ``load_partial`` (which
``tf_keras.models.load_model(folder)`` calls) runs every resource initializer stored there.
An initializer can hold ``WriteFile``, so opening such a folder could write any file while
its ``keras_metadata.pb`` looks clean. So untrusted folders are never loaded as a graph:

- ``scan_savedmodel_graph(folder)`` parses ``saved_model.pb`` with the protobuf classes
  (parsing runs nothing) and lists every op outside the allow-list below, with where it is
  (graph node or library function). Defence in depth: the graph is never executed here.
- ``load_savedmodel_without_graph(stored, allow_unsafe)`` rebuilds the model from the
  Keras config in ``keras_metadata.pb`` (already checked by ``engine.models.safety``), reads
  the weights from the ``variables/`` checkpoint (a tensor bundle: reading it runs no graph),
  and verifies that every weight of the rebuilt model came from the checkpoint, that every
  model value of the checkpoint found its weight, and that the model runs on zeros. Only
  when that is impossible and the user allowed unsafe loading does it fall back to
  ``tf_keras.models.load_model(folder)`` (which runs the graph).

The allow-list is derived from TensorFlow's op registry (``allowed_ops()``): every public
op (``tf.raw_ops``) is in it, except

1. **I/O ops** (refused wherever they are): ops whose name belongs to the file, reader,
   ``tf.data`` (datasets and iterators read files and run functions), checkpoint
   (``Save``/``Restore``/``Checkpoint``), summary/debug/print (they write to files or URLs),
   Python (``PyFunc``, ``EagerPyFunc``), network/other-process/device-transfer
   (``Send``/``Recv``/``Collective``/``Nccl``/``RemoteCall``/``TPU``/``Xla``/sessions),
   ``Load*``, vocabulary-file, proto-descriptor (``DecodeProtoV2`` may read a descriptor
   file), ``ImmutableConst`` (maps a file) or ``Copy`` (debug URLs) vocabulary (``_IO_NAME``);
   and every op whose registered inputs or attributes are named after a file, directory,
   URL, address, output stream or checkpoint prefix (``_IO_ARG_WORDS``), e.g.
   ``FixedUnigramCandidateSampler``'s ``vocab_file`` or ``RecordInput``'s ``file_pattern``.
   Only ``IteratorGetNext*`` is let through: it takes the next element of an iterator handed
   to it (tf_keras saves a ``TextVectorization``'s ``adapt`` step with one), while every op
   that could make an iterator or dataset stays refused.
2. **Stateful ops** (``OpDef.is_stateful``) that are not in-memory plumbing
   (``_STATEFUL_PLUMBING``). Kept: variables and resources (``VarHandleOp``,
   ``ReadVariableOp``, ``Assign*VariableOp``, ``Resource*``, ``DisableCopyOnRead``,
   ``DestroyResourceOp``), function calls and control flow (``StatefulPartitionedCall``,
   ``If``, ``While``, ``Case``: the functions they call are scanned too), random numbers,
   assertions, ``TensorArray`` and lookup-table ops, and cuDNN RNN kernels (stateful only
   for their scratch space; ``LSTM``/``GRU`` save one). Everything else stateful (queues,
   stacks, mutexes, barriers, timestamps, candidate samplers, …) is refused: a Keras model
   has no use for it.
3. Any op name that is not a public registered op (custom-op libraries, internal ops).

One exception is made for checkpoint I/O (``SaveV2``, ``RestoreV2``,
``MergeV2Checkpoints``, ``ShardedFilename``): every SavedModel carries them in the traced
save/restore functions that its ``saver_def`` names. They are accepted only inside
functions reachable from the ``saver_def``'s save/restore nodes and from nothing else (no
other graph node, no object-graph function such as a resource initializer, no gradient).

Function references are followed everywhere they can hide: ``func`` and ``list(func)``
attributes (also nested in ``NameAttrList`` attributes) and gradient entries. A reference to
a name that is not a library function is checked as an op as well (TF 2.21's runtime
answers "Failed to find function" for a call to a bare op name, but the scan does not rely
on that).

Public API:

- ``scan_savedmodel_graph(folder) -> list[str]`` (refused ops with where they are)
- ``check_savedmodel_graph(stored, allow_unsafe=False) -> list[str]`` (raises
  ``UnsafeModelError`` unless allowed; returns what was found)
- ``load_savedmodel_without_graph(stored, allow_unsafe=False) -> tf_keras.Model``
- ``allowed_ops() -> frozenset[str]``, ``refused_ops() -> dict[str, str]`` (op -> reason)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError, UnsafeModelError, UnsupportedModelError
from engine.models.safety import MODEL_CLASSES, StoredModel, UnsafeItem

MAX_GRAPH_BYTES = 512 * 1024 * 1024  # saved_model.pb of real tf_keras models: a few MB
MAX_LISTED = 6  # distinct refused ops named in one error message

# Rule 1a: op-name vocabulary of file, data-pipeline, checkpoint, logging, Python, network,
# device-transfer and file-mapping ops.
_IO_NAME = re.compile(
    r"File|Reader|Dataset|Iterator|Save|Restore|Checkpoint|Summary|^Debug|^Print|PyFunc"
    r"|Send|Recv|Collective|Nccl|Remote|Rpc|TPU|Xla|Session|^Load|Vocab|Proto|Sql|LMDB"
    r"|ImmutableConst|^Copy"
)
# ...except ops that only take the next element of an iterator handed to them (a tf_keras
# TextVectorization saves its ``adapt`` step with one); every op that makes one is refused.
_ITERATOR_CONSUMER = re.compile(r"^IteratorGetNext")
# Rule 1b: registered input/attribute names (split at "_") that point outside the process,
# and any name ending in "stream" (PrintV2's ``output_stream`` may be "file://...").
_IO_ARG_WORDS = frozenset(
    {"file", "files", "filename", "filenames", "filepath", "dir", "directory", "logdir",
     "url", "urls", "uri", "address", "prefix", "prefixes", "region"}
)  # fmt: skip
# Checkpoint I/O: accepted only in the saver_def's own save/restore functions.
_CHECKPOINT_IO = re.compile(r"^(Save|Restore|MergeV2Checkpoints|ShardedFile)")
# Rule 2: stateful ops that only touch memory of this process (kept).
_STATEFUL_PLUMBING = re.compile(
    r"Variable|VarHandle|VarIsInitialized|^Resource|^DestroyResourceOp$|CopyOnRead"
    r"|PartitionedCall$|^(If|While|Case)$"
    r"|Random(?!.*Queue)|Rng|TruncatedNormal|Multinomial|SeedGenerator"
    r"|^Stateful(Uniform|Standard|RandomBinomial)|^NonDeterministicInts$"
    r"|^Assert$|^CheckNumerics"
    r"|^TensorArray|HashTable|^LookupTable|^InitializeTableV2$"
    r"|^CudnnRNN|^IteratorGetNext"
)


# ---------------------------------------------------------------- the allow-list


def _io_argument(name: str) -> bool:
    name = name.lower()
    return bool(_IO_ARG_WORDS.intersection(name.split("_"))) or name.endswith("stream")


@cache
def _op_policy() -> tuple[frozenset[str], dict[str, str]]:
    from tensorflow.python.framework import op_def_registry

    from engine.core.tfenv import tf

    names = sorted(n for n in dir(tf().raw_ops) if not n.startswith("_"))
    allowed: set[str] = set()
    refused: dict[str, str] = {}
    for name in names:
        op_def = op_def_registry.get(name)
        if op_def is None:
            continue
        args = [a.name for a in (*op_def.input_arg, *op_def.output_arg, *op_def.attr)]
        if _IO_NAME.search(name) and not _ITERATOR_CONSUMER.match(name):
            refused[name] = "file, data-pipeline, Python, network or logging op"
        elif any(_io_argument(a) for a in args):
            refused[name] = "takes a file, path, URL or stream"
        elif op_def.is_stateful and not _STATEFUL_PLUMBING.search(name):
            refused[name] = "stateful op outside variable/resource plumbing"
        else:
            allowed.add(name)
    return frozenset(allowed), refused


def allowed_ops() -> frozenset[str]:
    """Op types a SavedModel graph may contain (derived from TF's op registry)."""
    return _op_policy()[0]


def refused_ops() -> dict[str, str]:
    """Registered public op types that are refused, with the rule that refuses each."""
    return dict(_op_policy()[1])


# ---------------------------------------------------------------- the scan


def _read_saved_model_proto(folder: Path) -> Any:
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    pb, pbtxt = folder / "saved_model.pb", folder / "saved_model.pbtxt"
    path = pb if pb.is_file() else pbtxt
    if not path.is_file():
        raise BadInputError(f"{folder} is a folder but not a SavedModel (no saved_model.pb)")
    size = path.stat().st_size
    if size > MAX_GRAPH_BYTES:
        raise BadInputError(
            f"cannot load {folder.name}: {path.name} is {size / 2**20:.0f} MiB, more than the "
            f"{MAX_GRAPH_BYTES // 2**20} MiB a Keras SavedModel graph needs"
        )
    try:
        if path is pb:
            proto.ParseFromString(path.read_bytes())
        else:
            text_format.Parse(path.read_text(encoding="utf-8"), proto)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError, RecursionError):
        raise BadInputError(f"cannot load {folder.name}: {path.name} is corrupt") from None
    except OSError as exc:
        raise BadInputError(f"cannot load {folder.name}: {exc}") from None
    if not proto.meta_graphs:
        raise BadInputError(f"cannot load {folder.name}: {path.name} holds no graph")
    return proto


def _func_refs(attrs: Any) -> Iterator[str]:
    """Names of functions referenced by an attr map (``func``, ``list(func)``, nested)."""
    for value in attrs.values():
        kind = value.WhichOneof("value")
        if kind == "func":
            yield value.func.name
            yield from _func_refs(value.func.attr)
        elif kind == "list":
            for fn in value.list.func:
                yield fn.name
                yield from _func_refs(fn.attr)


def _reach(roots: Iterable[str], calls: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in calls]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(c for c in calls[name] if c in calls and c not in seen)
    return seen


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def scan_savedmodel_graph(folder: str | Path) -> list[str]:
    """Every op of ``saved_model.pb`` (graph nodes and library functions) outside the
    allow-list, as ``"OP (where)"`` strings; empty for a clean tf_keras SavedModel.

    Raises BadInputError if the file is missing, too big or not a SavedModel proto.
    """
    folder = Path(folder)
    proto = _read_saved_model_proto(folder)
    allowed = allowed_ops()
    found: list[tuple[str, str]] = []

    def check(op: str, where: str, saver_only: bool = False) -> None:
        if op in allowed:
            return
        if saver_only and _CHECKPOINT_IO.match(op) and op in _op_policy()[1]:
            return
        found.append((op, where))

    for index, meta in enumerate(proto.meta_graphs):
        graph = meta.graph_def
        prefix = f"meta graph {index}: " if len(proto.meta_graphs) > 1 else ""
        library = {f.signature.name: f for f in graph.library.function}
        calls = {
            name: {ref for node in f.node_def for ref in _func_refs(node.attr)}
            | set(_func_refs(f.attr))
            for name, f in library.items()
        }
        saver = meta.saver_def
        saver_nodes = {
            _node_name(t)
            for t in (saver.save_tensor_name, saver.restore_op_name, saver.filename_tensor_name)
            if t
        }
        saver_roots: set[str] = set()
        other_roots: set[str] = set(meta.object_graph_def.concrete_functions.keys())
        other_roots |= {g.gradient_func for g in graph.library.gradient}
        other_roots |= {g.function_name for g in graph.library.gradient}
        for obj in meta.object_graph_def.nodes:
            kind = obj.WhichOneof("kind")
            if kind == "function":
                other_roots |= set(obj.function.concrete_functions)
            elif kind == "bare_concrete_function":
                other_roots.add(obj.bare_concrete_function.concrete_function_name)
        for node in graph.node:
            refs = set(_func_refs(node.attr))
            (saver_roots if node.name in saver_nodes else other_roots).update(refs)
            check(node.op, f"{prefix}graph node '{node.name}'")
            for ref in refs - library.keys():
                check(ref, f"{prefix}function reference in graph node '{node.name}'")
        saver_only = _reach(saver_roots, calls) - _reach(other_roots, calls)
        for name, fn in library.items():
            where = f"{prefix}function '{name}'"
            for node in fn.node_def:
                check(node.op, where, saver_only=name in saver_only)
            for ref in calls[name] - library.keys():
                check(ref, f"{prefix}function reference in '{name}'")
        for grad in graph.library.gradient:
            for ref in (grad.function_name, grad.gradient_func):
                if ref and ref not in library:
                    check(ref, f"{prefix}gradient entry")
    out: list[str] = []
    for op, where in found:
        item = f"{op} ({where})"
        if item not in out:
            out.append(item)
    return out


@dataclass
class GraphOpItem:
    """A refused op of a SavedModel graph, shaped like an UnsafeItem."""

    layer: str  # where it is in saved_model.pb (a function or graph node)
    class_name: str  # the op type, e.g. WriteFile
    reason: str

    def describe(self) -> str:
        return f"TensorFlow op {self.class_name} in {self.layer}: {self.reason}"


def graph_items(stored: StoredModel) -> list[GraphOpItem]:
    """The refused ops of a SavedModel's ``saved_model.pb`` as items (each op type once, at
    its first place), for a refusal that came from the graph scan rather than the config."""
    why = refused_ops()
    first: dict[str, GraphOpItem] = {}
    for found in scan_savedmodel_graph(stored.path):
        op, _, where = found.partition(" ")
        reason = why.get(op, "not a public TensorFlow op")
        first.setdefault(op, GraphOpItem(where.strip("()") or "the graph", op, reason))
    return list(first.values())


def check_savedmodel_graph(stored: StoredModel, allow_unsafe: bool = False) -> list[str]:
    """Raise UnsafeModelError if ``saved_model.pb`` holds refused ops, unless allowed.

    Returns the findings (empty when clean) so callers can warn when allowed.
    """
    found = scan_savedmodel_graph(stored.path)
    if found and not allow_unsafe:
        raise UnsafeModelError(
            f"refusing to load {stored.path.name}: its saved_model.pb holds TensorFlow ops "
            f"that can touch files, run Python or reach other processes: {_summary(found)}",
            items=graph_items(stored),
        )
    return found


def _summary(found: list[str]) -> str:
    """``"WriteFile (function 'f'), ReadFile (…)"``: each refused op once, first place."""
    first: dict[str, str] = {}
    for item in found:
        first.setdefault(item.split(" ", 1)[0], item)
    names = list(first.values())
    text = ", ".join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        rest = ", ".join(list(first)[MAX_LISTED:])
        text += f" and {len(names) - MAX_LISTED} more op types ({rest})"
    return text


# ---------------------------------------------------------------- the rebuild


def _decode(obj: Any) -> Any:
    """The data markers of tf_keras' SavedModel metadata JSON (tuples, shapes) as values;
    nothing is looked up or constructed from the file except plain data."""
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    cls = obj.get("class_name")
    if cls == "__tuple__" and isinstance(obj.get("items"), list):
        return tuple(_decode(v) for v in obj["items"])
    if cls == "TensorShape" and isinstance(obj.get("items"), (list, type(None))):
        from engine.core.tfenv import tf

        return tf().TensorShape(obj["items"])
    if cls == "__ellipsis__":
        return Ellipsis
    if cls == "__bytes__" and isinstance(obj.get("value"), str):
        return obj["value"].encode("utf-8")
    return {k: _decode(v) for k, v in obj.items()}


def _cannot_rebuild(stored: StoredModel, why: str) -> UnsafeModelError:
    """Opening the folder would need TensorFlow to run its graph: the user may allow that
    (the item says so), so this is a trust question, not an unsupported model."""
    why = why.split("Call arguments received by")[0]  # tf_keras' layer-call epilogue
    why = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]( name: \S*)?", " ", why)  # TF op context
    why = " ".join(why.split())
    if len(why) > 240:
        why = why[:240] + "..."
    return UnsafeModelError(
        f"{stored.path.name}: the SavedModel could not be rebuilt from its Keras config "
        f"without running its graph ({why})",
        items=[
            UnsafeItem(
                stored.path.name,
                "SavedModel graph",
                "opening it needs TensorFlow to run the graph stored in saved_model.pb",
                where="model",
            )
        ],
    )


def _sentinel(var: Any) -> Any:
    import numpy as np

    dtype = var.dtype.as_numpy_dtype
    if var.dtype.is_floating or var.dtype.is_complex:
        return np.full(var.shape, np.nan, dtype=dtype)
    if var.dtype.is_integer:
        return np.full(var.shape, np.iinfo(dtype).min, dtype=dtype)
    return None


def _still_sentinel(value: Any, var: Any) -> bool:
    import numpy as np

    if value.size == 0:
        return False
    if var.dtype.is_floating or var.dtype.is_complex:
        return bool(np.isnan(value).all())
    if var.dtype.is_integer:
        return bool((value == np.iinfo(value.dtype).min).all())
    return False


def _model_value_nodes(graph: Any) -> set[int]:
    """Object-graph nodes that hold values and belong to the model itself: reachable from
    the root without passing through an ``optimizer`` or ``keras_api`` (metrics) edge."""
    skip = {"optimizer", "keras_api"}
    seen = {0}
    todo = [0]
    while todo:
        node = graph.nodes[todo.pop()]
        for child in node.children:
            if child.local_name in skip or child.node_id in seen:
                continue
            if 0 <= child.node_id < len(graph.nodes):
                seen.add(child.node_id)
                todo.append(child.node_id)
    return {i for i in seen if graph.nodes[i].attributes}


def _restore_weights(stored: StoredModel, model: Any) -> int:
    """Read ``variables/variables`` into ``model`` (checkpoint reader: no graph runs) and
    verify the match both ways. Returns the number of restored model variables."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    from engine.core.tfenv import tf

    tfm = tf()
    prefix = stored.path / "variables" / "variables"
    if not Path(str(prefix) + ".index").is_file():
        if model.weights:
            raise BadInputError(
                f"cannot load {stored.path.name}: its variables/ checkpoint is missing"
            )
        return 0
    try:
        reader = tfm.train.load_checkpoint(str(prefix))
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt checkpoint
        raise BadInputError(
            f"cannot load {stored.path.name}: its variables/ checkpoint cannot be read "
            f"({' '.join(str(exc).split())[:160]})"
        ) from None
    weights = [w for w in model.weights if isinstance(w, tfm.Variable)]
    for var in weights:
        value = _sentinel(var)
        if value is not None:
            var.assign(value)
    try:
        status = tfm.train.Checkpoint(root=model).read(str(prefix))
        status.assert_existing_objects_matched()
    except AssertionError as exc:
        raise _cannot_rebuild(stored, f"weights missing from the checkpoint: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - shape/dtype mismatch, unreadable values
        raise _cannot_rebuild(stored, f"{type(exc).__name__}: {exc}") from None
    left = [v.name for v in weights if _still_sentinel(v.numpy(), v)]
    if left:
        raise _cannot_rebuild(stored, f"weights not restored: {', '.join(left[:5])}")
    matched = getattr(getattr(status, "_checkpoint", None), "object_by_proto_id", None)
    if matched is not None:
        unused = sorted(_model_value_nodes(graph) - set(matched.keys()))
        if unused:
            keys = [graph.nodes[i].attributes[0].checkpoint_key for i in unused[:3]]
            raise _cannot_rebuild(
                stored,
                f"{len(unused)} checkpoint value(s) have no weight in the Keras config "
                f"(e.g. {', '.join(keys)})",
            )
    return len(weights)


def rebuild_savedmodel(stored: StoredModel, allow_unsafe: bool = False) -> Any:
    """tf_keras model from ``keras_metadata.pb`` + ``variables/``; never runs the graph.

    Raises UnsafeModelError (subclassed model, config that tf_keras cannot build,
    weights that do not match the checkpoint) or BadInputError (missing/corrupt checkpoint).
    """
    from engine.core.tfenv import keras2

    k = keras2()
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    config = stored.config
    if config is None:
        raise _cannot_rebuild(stored, "keras_metadata.pb holds no model config")
    cls = config.get("class_name")
    if cls not in MODEL_CLASSES:
        raise UnsupportedModelError(
            f"{stored.path.name}: subclassed model ({cls}) cannot be loaded without its Python "
            "code; Featherweight needs a Sequential or Functional model"
        )
    try:
        with SafeModeScope(safe_mode=not allow_unsafe):
            model = k.models.model_from_config(_decode(copy.deepcopy(config)))
    except Exception as exc:  # noqa: BLE001 - anything tf_keras cannot build
        raise _cannot_rebuild(stored, f"{type(exc).__name__}: {exc}") from None
    root = stored.savedmodel_nodes[0] if stored.savedmodel_nodes else {}
    if isinstance(root, dict) and root.get("trainable") is False:
        model.trainable = False
    _restore_weights(stored, model)
    _smoke_call(stored, model)
    return model


def _smoke_call(stored: StoredModel, model: Any) -> None:
    """Run the rebuilt model once on zeros: state that lives only in the graph (e.g. an
    adapted lookup table, whose vocabulary tf_keras keeps out of the config) shows up here
    as an uninitialized table instead of later, in the middle of a job."""
    from engine.core.tfenv import tf

    tfm = tf()
    try:
        xs = [
            tfm.zeros([1 if d is None else int(d) for d in t.shape], dtype=t.dtype)
            for t in model.inputs
        ]
    except (TypeError, ValueError, AttributeError):
        return  # sparse / ragged / unknown-rank inputs: nothing simple to feed
    try:
        model(xs[0] if len(xs) == 1 else xs, training=False)
    except Exception as exc:  # noqa: BLE001 - any failure means the rebuild is incomplete
        raise _cannot_rebuild(stored, f"it does not run: {type(exc).__name__}: {exc}") from None


def load_savedmodel_without_graph(stored: StoredModel, allow_unsafe: bool = False) -> Any:
    """The Keras model of a tf_keras SavedModel folder, rebuilt from its checked config and
    its variables checkpoint; ``saved_model.pb`` is never loaded or run.

    If the folder cannot be rebuilt that way: UnsafeModelError / BadInputError, unless
    ``allow_unsafe``, in which case tf_keras' own loader (which runs the graph) is used.
    """
    try:
        return rebuild_savedmodel(stored, allow_unsafe)
    except BadInputError:
        if not allow_unsafe:
            raise
    from engine.core.tfenv import keras2

    return keras2().models.load_model(stored.path, compile=False)
