"""Loading and inspecting models.

Public API (stable; other modules rely on it):

- ``load_model(spec, allow_unsafe=False) -> LoadedModel``  (spec: "demo" or a path)
  Loads Keras 2 ``.keras`` / ``.h5`` / SavedModel, imports Keras 3 ``.keras`` / ``.h5``
  (translated to tf_keras, weights copied, outputs compared), flattens nested models,
  and refuses (``UnsupportedModelError``) what the engine cannot compress.
- ``inspect_path(spec, allow_unsafe=False) -> dict``       (JSON-able per-layer report)
- ``inspect_model(model, ...) -> dict``                     (same, for an in-memory model)
- ``format_report(report) -> str``                          (text table for the CLI)

Every file is checked by ``engine.models.safety`` before any Keras loader sees it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import BadInputError, UnsupportedModelError
from engine.models.safety import MODEL_CLASSES, StoredModel, check_safe, read_stored_model
from engine.models.support import output_chain

IMPORT_TOLERANCE = 1e-4  # max abs output difference accepted for an import / flatten
# Layers that pass values through unchanged (looked through to find the final activation).
PASS_THROUGH = (
    "Dropout",
    "Flatten",
    "Reshape",
    "Identity",
    "GaussianNoise",
    "ActivityRegularization",
)


@dataclass
class LoadedModel:
    """A model ready for the engine: always a Keras 2 (tf_keras) functional/sequential model."""

    model: Any  # tf_keras.Model
    path: str
    source_format: str  # keras2-keras | keras2-h5 | keras2-savedmodel | keras3-keras | keras3-h5
    output_kind: str  # "softmax" | "logits" | "binary_sigmoid" | "binary_logit"
    input_shape: tuple[int, ...]  # without batch dimension
    num_classes: int  # 2 for the binary kinds (one output unit, labels 0/1)
    has_rescaling: bool = False
    import_max_abs_diff: float | None = None  # Keras 3 import check
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Raw:
    """A loaded tf_keras model before the scope checks."""

    model: Any
    path: Path
    source_format: str
    import_max_abs_diff: float | None
    warnings: list[str]


# ---------------------------------------------------------------- loading


def resolve_path(spec: str | Path) -> Path:
    """``"demo"`` -> the shipped demo model; anything else is a path."""
    if str(spec) == "demo":
        from engine.core.demo import demo_model_path

        return demo_model_path()
    return Path(spec).expanduser()


def load_model(spec: str | Path, allow_unsafe: bool = False) -> LoadedModel:
    """Load a classification model for compression.

    Raises BadInputError (missing/empty/corrupt file), UnsafeModelError (Lambda or custom
    classes, unless ``allow_unsafe``) or UnsupportedModelError (subclassed, multi-input/
    output, not a class vector, dynamic input shape, untranslatable Keras 3 layer).
    Multi-input / multi-output models are refused from the stored config, before any
    Keras loader runs.
    """
    raw = _load_raw(resolve_path(spec), allow_unsafe, check_io=True)
    problems = scope_problems(raw.model)
    if problems:
        raise UnsupportedModelError(f"{raw.path.name}: {problems[0]}")
    model = raw.model
    return LoadedModel(
        model=model,
        path=str(raw.path),
        source_format=raw.source_format,
        output_kind=output_kind(model),
        input_shape=tuple(int(d) for d in model.inputs[0].shape[1:]),
        num_classes=num_classes(model),
        has_rescaling=has_rescaling(model),
        import_max_abs_diff=raw.import_max_abs_diff,
        warnings=list(raw.warnings),
    )


def _load_raw(
    path: Path, allow_unsafe: bool, keep_nested: bool = False, check_io: bool = False
) -> _Raw:
    """Safety check, then load / import; ``keep_nested`` keeps a nested Keras 2 model that
    cannot be flattened (for inspection) instead of raising; ``check_io`` refuses multi-
    input / multi-output models from the stored config before any loader runs."""
    stored = read_stored_model(path)
    found = check_safe(stored, allow_unsafe)
    if check_io:
        counts = stored_io_counts(stored.config)
        if counts is not None and counts != (1, 1):
            raise UnsupportedModelError(f"{path.name}: {_io_problem(*counts)}")
    warnings = [f"unsafe content loaded on request: {item.describe()}" for item in found]
    if stored.keras_major == 3:
        model, diff, more = _import_keras3(stored, allow_unsafe)
        return _Raw(model, path, f"keras3-{stored.fmt}", diff, warnings + more)
    model = _keras2_load(stored, allow_unsafe)
    if getattr(model, "_is_graph_network", False) and _has_nested(model):
        config = {"class_name": model.__class__.__name__, "config": model.get_config()}
        try:
            flat, paths, names = flatten_model_config(config)
            model, flat_diff = _rebuild(flat, model, paths, allow_unsafe)
        except UnsupportedModelError as exc:
            if not keep_nested:
                raise
            warnings.append(str(exc))
        else:
            warnings.append(
                f"flattened nested model(s) {', '.join(names)} into one model "
                f"(outputs match, max abs diff {flat_diff:.2g})"
            )
    return _Raw(model, path, f"keras2-{stored.fmt}", None, warnings)


def _count_endpoints(value: Any) -> int:
    """Number of ``[layer, node, tensor]`` endpoints in a stored input/output structure
    (Keras 2: a list of them; Keras 3: one flat endpoint, a list, or a dict)."""
    if isinstance(value, dict):
        return sum(_count_endpoints(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
            return 1
        return sum(_count_endpoints(v) for v in value)
    return 0


def stored_io_counts(config: dict[str, Any] | None) -> tuple[int, int] | None:
    """(inputs, outputs) of a stored model config, read without Keras; None if unknown
    (no config, or a Sequential model, which always has one of each)."""
    if not isinstance(config, dict):
        return None
    if config.get("class_name") == "Sequential":
        return (1, 1)
    cfg = config.get("config")
    if not isinstance(cfg, dict) or "input_layers" not in cfg or "output_layers" not in cfg:
        return None
    return _count_endpoints(cfg["input_layers"]), _count_endpoints(cfg["output_layers"])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _io_problem(n_in: int, n_out: int) -> str:
    return (
        f"model has {_plural(n_in, 'input')} and {_plural(n_out, 'output')}; only "
        "single-input, single-output classifiers are supported"
    )


def _loader_error(path: Path, exc: Exception) -> BadInputError:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if len(msg) > 200:
        msg = msg[:200] + "..."
    return BadInputError(f"cannot load {path.name}: {msg}")


def _keras2_load(stored: StoredModel, allow_unsafe: bool) -> Any:
    """tf_keras model of a checked file. A SavedModel folder is never loaded as a graph
    (its initializers could run anything): its ops are scanned, then the model is rebuilt
    from the Keras config + variables checkpoint (``engine.models.savedmodel_graph``)."""
    from engine.core.tfenv import keras2

    k = keras2()
    try:
        if stored.fmt == "savedmodel":
            from engine.models.savedmodel_graph import (
                check_savedmodel_graph,
                load_savedmodel_without_graph,
            )

            if not allow_unsafe:
                check_savedmodel_graph(stored)
            return load_savedmodel_without_graph(stored, allow_unsafe)
        if stored.fmt == "keras":
            return k.models.load_model(stored.path, compile=False, safe_mode=not allow_unsafe)
        return k.models.load_model(stored.path, compile=False)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad file
        _raise_if_subclassed(stored)
        raise _loader_error(stored.path, exc) from None


def _raise_if_subclassed(stored: StoredModel) -> None:
    """A custom model class cannot be rebuilt without its Python code: say so plainly."""
    cls = (stored.config or {}).get("class_name")
    if cls is not None and cls not in MODEL_CLASSES:
        raise UnsupportedModelError(
            f"{stored.path.name}: subclassed model ({cls}) cannot be loaded without its Python "
            "code; Featherweight needs a Sequential or Functional model"
        )


def _import_keras3(stored: StoredModel, allow_unsafe: bool) -> tuple[Any, float, list[str]]:
    """Keras 3 file -> equivalent tf_keras model; checked on sample input."""
    from engine.core.tfenv import keras3
    from engine.models.keras3_import import translate_model_config

    if stored.config is None:
        raise BadInputError(f"{stored.path.name} holds no model architecture")
    _raise_if_subclassed(stored)
    k2_config, warnings = translate_model_config(stored.config)
    flat, paths, names = flatten_model_config(k2_config)
    if names:
        warnings.append(f"flattened nested model(s) {', '.join(names)} into one model")
    try:
        k3_model = keras3().models.load_model(
            stored.path, compile=False, safe_mode=not allow_unsafe
        )
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad file
        if stored.fmt == "h5" and _has_operation_nodes(stored.config):
            raise BadInputError(
                f"cannot load {stored.path.name}: Keras 3 cannot read back .h5 files whose "
                "model has operation nodes (e.g. x + 3.0 on a tensor); save the model as "
                ".keras (model.save('model.keras'))"
            ) from None
        raise _loader_error(stored.path, exc) from None
    model, diff = _rebuild(flat, k3_model, paths, allow_unsafe)
    warnings.append(f"imported from Keras 3: outputs match the original (max abs diff {diff:.2g})")
    return model, diff, warnings


def _has_operation_nodes(config: Any) -> bool:
    """Whether a Keras 3 model config (or a nested model in it) holds operation nodes."""
    from engine.models.keras3_import import _is_operation

    layers = ((config or {}).get("config") or {}).get("layers") or []
    return any(
        _has_operation_nodes(entry)
        if entry.get("class_name") in MODEL_CLASSES
        else _is_operation(entry)
        for entry in layers
        if isinstance(entry, dict)
    )


def _build_from_config(config: dict[str, Any], allow_unsafe: bool = False) -> Any:
    """tf_keras model from a Keras 2 config; Lambda code only runs if ``allow_unsafe``."""
    from engine.core.tfenv import keras2

    keras2()
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    try:
        with SafeModeScope(safe_mode=not allow_unsafe):
            return keras2().models.model_from_config(copy.deepcopy(config))
    except Exception as exc:  # noqa: BLE001 - report which layer could not be rebuilt
        msg = " ".join(str(exc).split())[:300]
        where = _first_unbuildable_layer(config, allow_unsafe)
        raise UnsupportedModelError(f"cannot rebuild {where}in Keras 2: {msg}") from None


def _first_unbuildable_layer(config: dict[str, Any], allow_unsafe: bool) -> str:
    """``"layer 'x' (Class) "`` for the first layer tf_keras cannot construct, else ``""``."""
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    from engine.core.tfenv import keras2

    for entry in config.get("config", {}).get("layers", []):
        if entry.get("class_name") in MODEL_CLASSES:
            continue
        try:
            with SafeModeScope(safe_mode=not allow_unsafe):
                keras2().layers.deserialize(
                    {"class_name": entry["class_name"], "config": copy.deepcopy(entry["config"])}
                )
        except Exception:  # noqa: BLE001 - we only want to know which one fails
            name = entry.get("config", {}).get("name", "?")
            return f"layer '{name}' ({entry['class_name']}) "
    return ""


def _rebuild(
    config: dict[str, Any],
    source: Any,
    paths: dict[str, tuple[str, ...]],
    allow_unsafe: bool = False,
) -> tuple[Any, float]:
    """Build ``config`` with tf_keras, copy weights from ``source``, compare outputs."""
    model = _build_from_config(config, allow_unsafe)
    for layer in model.layers:
        if not layer.weights:
            continue
        path = paths.get(layer.name, (layer.name,))
        try:
            src = _resolve_layer(source, path)
        except ValueError:
            raise UnsupportedModelError(
                f"cannot import layer '{layer.name}' ({layer.__class__.__name__}): no layer "
                f"{'/'.join(path)} in the original model"
            ) from None
        src_weights = [np.asarray(w) for w in src.get_weights()]
        dst_shapes = [tuple(w.shape) for w in layer.weights]
        if (
            layer.__class__.__name__ == "MultiHeadAttention"
            or [w.shape for w in src_weights] != dst_shapes
        ):
            src_weights = _weights_by_name(src, layer) or src_weights
        if [w.shape for w in src_weights] != dst_shapes:
            raise UnsupportedModelError(
                f"cannot import layer '{layer.name}' ({layer.__class__.__name__}): its "
                f"weights {[w.shape for w in src_weights]} do not fit Keras 2's {dst_shapes}"
            )
        layer.set_weights(src_weights)
        if hasattr(layer, "finalize_state"):  # e.g. Normalization caches mean/variance
            layer.finalize_state()
    diff = max_abs_output_diff(source, model)
    if not diff <= IMPORT_TOLERANCE:
        raise UnsupportedModelError(
            f"imported model does not match the original: max abs output difference {diff:.3g}"
            f" > {IMPORT_TOLERANCE:g}"
        )
    return model, diff


def _weight_key(weight: Any) -> str:
    """``"query/kernel"``: the last two parts of a weight's path (Keras 3 ``path``, Keras 2
    ``name`` without ``:0``) - the sub-layer and the variable."""
    name = str(getattr(weight, "path", None) or weight.name).split(":")[0]
    return "/".join(name.split("/")[-2:])


def _weights_by_name(src: Any, dst: Any) -> list[np.ndarray] | None:
    """``src``'s weights in ``dst``'s order, matched by sub-layer and variable name
    (``MultiHeadAttention``'s query/key/value/attention_output); None if any is missing."""
    by_key: dict[str, Any] = {}
    for w in src.weights:
        by_key.setdefault(_weight_key(w), w)
    out = []
    for w in dst.weights:
        match = by_key.get(_weight_key(w))
        if match is None:
            return None
        out.append(np.asarray(match))
    return out


def _resolve_layer(model: Any, path: tuple[str, ...]) -> Any:
    layer = model
    for name in path:
        layer = layer.get_layer(name)
    return layer


def _embedding_vocab(model: Any) -> int | None:
    """Smallest ``input_dim`` of the model's Embedding layers (None without any)."""
    dims = [
        int(layer.input_dim) for layer in model.layers if layer.__class__.__name__ == "Embedding"
    ]
    return min(dims) if dims else None


def sample_inputs(model: Any, batch: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Deterministic sample input per model input: 0..255 if the model rescales, else
    0..1; integer ids below the vocabulary size for integer inputs and token models
    (first layer an ``Embedding``), as int32 if the input is integer."""
    rng = np.random.default_rng(seed)
    out = []
    for tensor in model.inputs:
        shape = tuple(int(d) for d in tensor.shape[1:])
        fixed = tensor.shape[0]
        n = int(fixed) if fixed is not None else batch
        dtype = np.dtype(getattr(tensor.dtype, "name", None) or str(tensor.dtype))
        if np.issubdtype(dtype, np.integer) or first_layer_class(model) == "Embedding":
            high = _embedding_vocab(model) or 10
            ids = rng.integers(0, high, size=(n, *shape))
            out.append(ids.astype(dtype if np.issubdtype(dtype, np.integer) else np.float32))
            continue
        top = 255.0 if has_rescaling(model) else 1.0
        out.append(rng.uniform(0.0, top, size=(n, *shape)).astype(np.float32))
    return out


def sample_input(model: Any, batch: int = 4, seed: int = 0) -> np.ndarray:
    """Deterministic sample input of the (first) model input, see ``sample_inputs``."""
    return sample_inputs(model, batch, seed)[0]


def _as_arrays(outputs: Any) -> list[np.ndarray]:
    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o, dtype=np.float64) for o in outputs]
    return [np.asarray(outputs, dtype=np.float64)]


def max_abs_output_diff(reference: Any, candidate: Any) -> float:
    """Largest absolute difference between two models' outputs on the same sample input
    (every output of a multi-output model; inf if the outputs do not line up)."""
    xs = sample_inputs(candidate)
    x = xs[0] if len(xs) == 1 else xs
    a = _as_arrays(reference(x, training=False))
    b = _as_arrays(candidate(x, training=False))
    if len(a) != len(b) or any(p.shape != q.shape for p, q in zip(a, b)):
        return math.inf
    return max((float(np.max(np.abs(p - q))) if p.size else 0.0) for p, q in zip(a, b))


# ---------------------------------------------------------------- nested models


def _has_nested(model: Any) -> bool:
    return any(getattr(layer, "_is_graph_network", False) for layer in model.layers) or any(
        layer.__class__.__name__ in MODEL_CLASSES for layer in model.layers
    )


def flatten_model_config(
    config: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]], list[str]]:
    """Inline models used as layers (Keras 2 config) so tfmot sees one flat model.

    Returns the new config, a map ``new layer name -> path of layer names in the original
    model`` (for copying weights) and the names of the inlined models. A model without
    nested models comes back unchanged. Raises UnsupportedModelError for shared sub-models.
    """
    layers = config["config"].get("layers", [])
    if not any(entry.get("class_name") in MODEL_CLASSES for entry in layers):
        return config, {}, []
    inlined: list[str] = []
    cfg, paths = _flatten(_as_functional(config), inlined)
    return {"class_name": "Functional", "config": cfg}, paths, inlined


def _as_functional(config: dict[str, Any]) -> dict[str, Any]:
    """A Sequential config as the equivalent Functional config (same layer names)."""
    cfg = config["config"]
    if config["class_name"] != "Sequential":
        return copy.deepcopy(cfg)
    layers = copy.deepcopy(cfg["layers"])
    out: list[dict[str, Any]] = []
    if layers and layers[0]["class_name"] == "InputLayer":
        first = layers.pop(0)
    else:
        shape = None
        if layers:
            shape = layers[0]["config"].get("batch_input_shape")
            if shape is None and layers[0]["class_name"] in MODEL_CLASSES:
                inner = _as_functional(layers[0])
                shape = inner["layers"][0]["config"].get("batch_input_shape")
        if shape is None:
            raise UnsupportedModelError(f"model '{cfg.get('name')}' has no stored input shape")
        first = {
            "class_name": "InputLayer",
            "config": {"batch_input_shape": shape, "dtype": "float32", "name": "input"},
        }
    first_name = first["config"]["name"]
    out.append({**first, "name": first_name, "inbound_nodes": []})
    prev = first_name
    for entry in layers:
        name = entry["config"]["name"]
        out.append({**entry, "name": name, "inbound_nodes": [[[prev, 0, 0, {}]]]})
        prev = name
    return {
        "name": cfg.get("name", "model"),
        "layers": out,
        "input_layers": [[first_name, 0, 0]],
        "output_layers": [[prev, 0, 0]],
    }


def _node_refs(node: list[Any]) -> list[list[Any]]:
    """One Keras 2 node as a list of ``[layer, node, tensor, kwargs]`` references (a node
    with a single input may be stored flat, e.g. TF-op layers)."""
    if node and isinstance(node[0], str):
        return [node]
    return node


def _flatten(cfg: dict[str, Any], inlined: list[str]) -> tuple[dict, dict[str, tuple[str, ...]]]:
    """Inline nested models of a Functional config (recursively)."""
    taken = {entry["name"] for entry in cfg["layers"]}
    new_layers: list[dict[str, Any]] = []
    paths: dict[str, tuple[str, ...]] = {}
    # outer nested-model name -> its output endpoints [[name, node, tensor], ...]
    outputs_of: dict[str, list[list[Any]]] = {}

    def remap(ref: list[Any]) -> list[Any]:
        name, tensor, rest = ref[0], ref[2], ref[3:]
        if name in outputs_of:
            target = outputs_of[name][tensor]
            return [target[0], target[1], target[2], *rest]
        return ref

    for entry in cfg["layers"]:
        entry = copy.deepcopy(entry)
        entry["inbound_nodes"] = [
            [remap(ref) for ref in _node_refs(node)] for node in entry.get("inbound_nodes", [])
        ]
        if entry["class_name"] not in MODEL_CLASSES:
            new_layers.append(entry)
            continue
        outer = entry["name"]
        calls = entry["inbound_nodes"]
        if len(calls) != 1:
            raise UnsupportedModelError(
                f"nested model '{outer}' is used {len(calls)} times; shared sub-models "
                "cannot be flattened for compression"
            )
        inner, inner_paths = _flatten(_as_functional(entry), inlined)
        inlined.append(outer)
        inputs = [ref[0] for ref in inner["input_layers"]]
        call_refs = calls[0]
        if len(call_refs) != len(inputs):
            raise UnsupportedModelError(
                f"nested model '{outer}' is called with {len(call_refs)} inputs but has "
                f"{len(inputs)}"
            )
        feed = {name: ref for name, ref in zip(inputs, call_refs)}
        rename: dict[str, str] = {}
        for layer in inner["layers"]:
            if layer["name"] in feed:
                continue
            new = layer["name"]
            if new in taken:
                new = f"{outer}_{new}"
                while new in taken:
                    new += "_"
            taken.add(new)
            rename[layer["name"]] = new
        for layer in inner["layers"]:
            if layer["name"] in feed:
                continue
            layer = copy.deepcopy(layer)
            old = layer["name"]
            layer["name"] = rename[old]
            layer["config"]["name"] = rename[old]
            nodes = []
            for node in layer.get("inbound_nodes", []):
                refs = []
                for ref in _node_refs(node):
                    kwargs = ref[3] if len(ref) > 3 else {}
                    if ref[0] in feed:
                        src = feed[ref[0]]
                        refs.append([src[0], src[1], src[2], kwargs])
                    else:
                        refs.append([rename[ref[0]], ref[1], ref[2], kwargs])
                nodes.append(refs)
            layer["inbound_nodes"] = nodes
            new_layers.append(layer)
            paths[rename[old]] = (outer, *inner_paths.get(old, (old,)))
        outputs_of[outer] = [
            [feed[r[0]][0], feed[r[0]][1], feed[r[0]][2]]
            if r[0] in feed
            else [rename[r[0]], r[1], r[2]]
            for r in inner["output_layers"]
        ]
    out_refs = [remap(list(ref)) for ref in cfg["output_layers"]]
    flat = {
        "name": cfg.get("name", "model"),
        "layers": new_layers,
        "input_layers": cfg["input_layers"],
        "output_layers": [ref[:3] for ref in out_refs],
    }
    return flat, paths


# ---------------------------------------------------------------- scope


def _final_layer(model: Any) -> Any:
    """The layer whose activation decides softmax vs logits (looks through Dropout etc.)."""
    try:
        layer = model.outputs[0]._keras_history.layer
    except (AttributeError, IndexError, TypeError):
        return model.layers[-1] if model.layers else None
    return output_chain(layer, PASS_THROUGH)[-1]


def _final_activation(model: Any) -> str:
    layer = _final_layer(model)
    if layer is None:
        return "unknown"
    cls = layer.__class__.__name__
    if cls == "Softmax":
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None:
        return "linear"
    name = getattr(act, "__name__", None) or act.__class__.__name__
    return str(name).lower()


def _output_units(model: Any) -> int | None:
    try:
        units = model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError):
        return None
    return None if units is None else int(units)


def output_kind(model: Any) -> str:
    """What the single output holds: ``"softmax"`` (probabilities over classes),
    ``"logits"`` (class scores), ``"binary_sigmoid"`` (one unit, sigmoid: P(class 1)) or
    ``"binary_logit"`` (one unit, linear: the logit of class 1)."""
    act = _final_activation(model)
    if _output_units(model) == 1:
        return "binary_sigmoid" if act == "sigmoid" else "binary_logit"
    return "softmax" if act == "softmax" else "logits"


def num_classes(model: Any) -> int:
    """Classes the model tells apart: its output units, or 2 for a one-unit binary output."""
    units = _output_units(model) or 0
    return 2 if units == 1 else units


def first_layer_class(model: Any) -> str | None:
    """Class name of the first layer after the input (None for an empty model)."""
    for layer in model.layers:
        cls = layer.__class__.__name__
        if cls != "InputLayer":
            return cls
    return None


def has_rescaling(model: Any) -> bool:
    """Whether the first layer after the input is a ``Rescaling`` layer."""
    return first_layer_class(model) == "Rescaling"


def scope_problems(model: Any) -> list[str]:
    """Why this model cannot be compressed (empty list: it can)."""
    if not getattr(model, "_is_graph_network", False):
        return [
            f"subclassed model ({model.__class__.__name__}): tfmot needs a Sequential or "
            "Functional model; rebuild it with the functional API"
        ]
    problems = []
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        problems.append(_io_problem(len(model.inputs), len(model.outputs)))
        return problems
    in_shape = tuple(model.inputs[0].shape)
    if any(d is None for d in in_shape[1:]):
        problems.append(
            f"input shape {_fmt_shape(in_shape)} has unknown dimensions; save the model with "
            "a fixed input size"
        )
    out_shape = tuple(model.outputs[0].shape)
    if len(out_shape) != 2:
        problems.append(
            f"output shape {_fmt_shape(out_shape)} is not a class vector (regression, "
            "detection and segmentation models are not supported yet)"
        )
    elif out_shape[-1] is None or out_shape[-1] < 1:
        problems.append(f"output has {out_shape[-1]} units: not a classifier")
    act = _final_activation(model)
    if len(out_shape) == 2 and out_shape[-1] == 1:
        if act not in ("sigmoid", "linear"):
            problems.append(
                f"output has 1 unit with activation '{act}': a one-unit output must be a "
                "binary classifier (sigmoid or a linear logit); regression is not supported yet"
            )
    elif act not in ("softmax", "linear"):
        problems.append(
            f"the last layer's activation is '{act}': only softmax or logits (linear) "
            "classifiers are supported"
        )
    nested = [layer.name for layer in model.layers if getattr(layer, "_is_graph_network", False)]
    if nested:
        problems.append(f"nested model(s) {', '.join(nested)} could not be flattened")
    return problems


# ---------------------------------------------------------------- inspection


def technique_support(layer: Any, subclassed: bool = False) -> dict[str, dict[str, Any]]:
    """Per technique (prune / cluster / qat): supported and a short reason. The verdicts
    are the ones the techniques act on (``engine.models.support``, the one source)."""
    from engine.models.support import technique_support as support

    return support(layer, subclassed)


def _shape_of(layer: Any, attr: str) -> Any:
    try:
        return getattr(layer, attr)
    except (AttributeError, RuntimeError, ValueError):
        return None


def _prod(values: Any) -> int:
    return int(np.prod([int(v) for v in values])) if len(values) else 1


def layer_macs(layer: Any) -> int | None:
    """Multiply-accumulates per inference (one sample) of Conv / DepthwiseConv /
    SeparableConv / Dense layers; 0 for other layers; None if shapes are unknown."""
    cls = layer.__class__.__name__
    if not any(k in cls for k in ("Conv", "Dense")) or not layer.weights:
        return 0
    out_shape = _shape_of(layer, "output_shape")
    in_shape = _shape_of(layer, "input_shape")
    if not isinstance(out_shape, tuple) or not isinstance(in_shape, tuple):
        return None
    if any(d is None for d in out_shape[1:]) or any(d is None for d in in_shape[1:]):
        return None
    out_spatial = _prod(out_shape[1:-1])
    if cls.startswith("SeparableConv"):
        dw = layer.depthwise_kernel.shape  # (*k, in, dm)
        pw = layer.pointwise_kernel.shape  # (1.., in*dm, out)
        return out_spatial * _prod(dw) + out_spatial * int(pw[-2]) * int(pw[-1])
    if cls.startswith("DepthwiseConv"):
        k = layer.depthwise_kernel.shape  # (*k, in, dm)
        return out_spatial * _prod(k)
    if "Transpose" in cls:
        k = layer.kernel.shape  # (*k, out, in)
        return _prod(in_shape[1:]) * _prod(k[:-2]) * int(k[-2])
    if cls.startswith("Conv") or cls == "Dense" or cls == "EinsumDense":
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            return None
        if cls == "Dense":
            return out_spatial * int(kernel.shape[0]) * int(kernel.shape[1])
        if cls == "EinsumDense":
            return None
        return _prod(out_shape[1:]) * _prod(kernel.shape[:-1])
    return 0


def _fmt_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if len(shape) and isinstance(shape[0], (list, tuple)):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(int(d)) for d in shape) + ")"


def _json_shape(shape: Any) -> Any:
    if shape is None:
        return None
    if isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], tuple):
        shape = shape[0]  # tf_keras InputLayer reports [(None, ...)]
    if isinstance(shape, list):
        return [_json_shape(s) for s in shape]
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:
        return None


def inspect_model(
    model: Any,
    path: str = "",
    source_format: str = "in-memory",
    import_max_abs_diff: float | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """JSON-able report of a tf_keras model: per-layer rows and totals.

    Never raises for unsupported models: ``supported`` is False and ``problems`` says why,
    and each layer row says what pruning / clustering / QAT can do with it.
    """
    subclassed = not getattr(model, "_is_graph_network", False)
    rows = []
    for layer in model.layers:
        try:
            params = int(layer.count_params())
        except (ValueError, RuntimeError):
            params = None
        rows.append(
            {
                "name": layer.name,
                "class": layer.__class__.__name__,
                "output_shape": None
                if subclassed
                else _json_shape(_shape_of(layer, "output_shape")),
                "params": params,
                "macs": None if subclassed else layer_macs(layer),
                **technique_support(layer, subclassed),
            }
        )
    problems = scope_problems(model)
    built = getattr(model, "built", False)
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)) if built else None
    total = int(sum(int(np.prod(w.shape)) for w in model.weights)) if built else None
    macs_known = [r["macs"] for r in rows if r["macs"] is not None]
    report: dict[str, Any] = {
        "path": path,
        "source_format": source_format,
        "model_name": model.name,
        "model_class": model.__class__.__name__,
        "subclassed": subclassed,
        "supported": not problems,
        "problems": problems,
        "input_shape": None,
        "num_classes": None,
        "output_kind": None,
        "has_rescaling": False,
        "input_kind": None,
        "first_layer": None,
        "vocab_size": None,
        "import_check": None
        if import_max_abs_diff is None
        else {"max_abs_diff": float(import_max_abs_diff), "tolerance": IMPORT_TOLERANCE},
        "warnings": list(warnings or []),
        "totals": {
            "layers": len(rows),
            "params": total,
            "trainable_params": trainable,
            "non_trainable_params": None if total is None else total - (trainable or 0),
            "float32_bytes": None if total is None else total * 4,
            "macs": None if subclassed else int(sum(macs_known)),
            "macs_note": "multiply-accumulates of Conv, DepthwiseConv, SeparableConv and "
            "Dense layers for one input",
        },
        "techniques": {
            t: {
                "supported_layers": sum(1 for r in rows if r[t]["supported"]),
                "unsupported_layers": [r["name"] for r in rows if not r[t]["supported"]],
            }
            for t in ("prune", "cluster", "qat")
        },
        "layers": rows,
    }
    if not subclassed and len(model.inputs) == 1:
        from engine.models.inputs import input_kind, model_input_of

        report["input_shape"] = _json_shape(tuple(model.inputs[0].shape[1:]))
        report["has_rescaling"] = has_rescaling(model)
        first = model_input_of(model)
        report["input_kind"] = input_kind(tuple(model.inputs[0].shape[1:]), first)
        report["first_layer"] = first.first_layer or None
        report["vocab_size"] = first.vocab_size
    if not subclassed and len(model.outputs) == 1:
        shape = tuple(model.outputs[0].shape)
        report["num_classes"] = num_classes(model) if len(shape) == 2 and shape[-1] else None
        report["output_kind"] = output_kind(model)
        report["final_activation"] = _final_activation(model)
    return report


def inspect_path(spec: str | Path, allow_unsafe: bool = False) -> dict[str, Any]:
    """Load (safely) and inspect a model file; see ``inspect_model``.

    Raises BadInputError / UnsafeModelError for files that cannot be read safely, and
    UnsupportedModelError only when no Keras model can be built at all (e.g. a Keras 3
    file with untranslatable layers); scope problems are reported, not raised.
    """
    raw = _load_raw(resolve_path(spec), allow_unsafe, keep_nested=True)
    return inspect_model(
        raw.model,
        path=str(raw.path),
        source_format=raw.source_format,
        import_max_abs_diff=raw.import_max_abs_diff,
        warnings=raw.warnings,
    )


def _fmt_int(v: Any) -> str:
    return "?" if v is None else f"{int(v):,}"


def _fmt_bytes(n: Any) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_report(report: dict[str, Any]) -> str:
    """Readable text table of an ``inspect_model`` report (for ``featherweight inspect``)."""
    lines = []
    lines.append(f"Model: {report.get('model_name')} ({report.get('model_class')})")
    lines.append(f"File: {report.get('path') or '-'}  [{report.get('source_format')}]")
    from engine.core.outputs import describe_input, describe_output

    in_shape = report.get("input_shape")
    kind = report.get("input_kind")
    first = report.get("first_layer")
    starts = f", starts with {first}" if first in ("Rescaling", "Normalization") else ""
    what = f" {describe_input(kind, report.get('vocab_size'))}{starts}" if kind else ""
    lines.append(f"Input: {_fmt_shape(in_shape)}{what}")
    lines.append(f"Output: {describe_output(report.get('output_kind'), report.get('num_classes'))}")
    check = report.get("import_check")
    if check:
        lines.append(
            f"Keras 3 import check: max abs diff {check['max_abs_diff']:.2g} "
            f"(tolerance {check['tolerance']:g})"
        )
    lines.append("")
    headers = ["Layer", "Type", "Output shape", "Params", "MACs", "Prune", "Cluster", "QAT"]
    table = []
    for r in report["layers"]:
        shape = r.get("output_shape")
        table.append(
            [
                r["name"],
                r["class"],
                _fmt_shape(shape),
                _fmt_int(r["params"]),
                _fmt_int(r["macs"]) if r["macs"] else ("?" if r["macs"] is None else "-"),
                *("yes" if r[t]["supported"] else "no" for t in ("prune", "cluster", "qat")),
            ]
        )
    widths = [
        max(len(h), *(len(row[i]) for row in table)) if table else len(h)
        for i, h in enumerate(headers)
    ]
    right = {3, 4}

    def fmt_row(row: list[str]) -> str:
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    lines.append(fmt_row(headers))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt_row(row) for row in table)
    lines.append("")
    t = report["totals"]
    lines.append(
        f"Total params: {_fmt_int(t['params'])} (trainable {_fmt_int(t['trainable_params'])})"
        f"   float32 size: {_fmt_bytes(t['float32_bytes'])}   MACs: {_fmt_int(t['macs'])}"
    )
    unsupported = []
    for r in report["layers"]:
        for tech in ("prune", "cluster", "qat"):
            if not r[tech]["supported"]:
                unsupported.append(f"  {r['name']} ({r['class']}) {tech}: {r[tech]['reason']}")
    if unsupported:
        lines.append("Not supported:")
        lines.extend(unsupported)
    if report.get("problems"):
        lines.append("Cannot be compressed:")
        lines.extend(f"  - {p}" for p in report["problems"])
    else:
        lines.append("Can be compressed: yes")
    for w in report.get("warnings", []):
        lines.append(f"Note: {w}")
    return "\n".join(lines)
