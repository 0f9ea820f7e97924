"""Import Keras 3 models into Keras 2 (tf_keras), which is what tfmot works with.

tf_keras cannot read files written by Keras 3 (``InputLayer(batch_shape=...)``, dtype
policy objects, ``module``/``registered_name`` fields, a new functional node format). This
module translates a Keras 3 architecture config into a Keras 2 one; ``engine.models.loading`` builds
it with tf_keras, copies the weights layer by layer and checks both models agree.

Public API:

- ``translate_model_config(config) -> dict``: Keras 3 model config (``{"class_name",
  "config", ...}`` as in ``config.json``) -> Keras 2 model config for
  ``tf_keras.models.model_from_config``. Raises ``UnsupportedModelError`` naming every
  layer (name + class) it cannot translate.
- ``import_summary(max_abs_diff, tolerance) -> str``: the one line saying what the import
  did and how well the outputs agree ("Converted from Keras 3 to Keras 2; outputs match,
  max difference 4e-7 ≤ 1e-4"), for the Model tab and the command line.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from engine.core.errors import UnsupportedModelError
from engine.models.safety import MODEL_CLASSES

# Base-layer keyword arguments tf_keras accepts through ``**kwargs``.
BASE_LAYER_KWARGS = frozenset(
    {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
     "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}
)  # fmt: skip
# Keras 3 options without a Keras 2 equivalent that are harmless at these values.
DROPPABLE = {
    "optional": (False, None),
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "gradient_checkpointing": (False, None),
}
OBJECT_MODULES = {
    "keras.initializers": "initializers",
    "keras.regularizers": "regularizers",
    "keras.constraints": "constraints",
}


class _Problems:
    """Collects every untranslatable item so the error names all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(self, layer: str, cls: str, why: str) -> None:
        self.items.append(f"'{layer}' ({cls}): {why}")


def sci(x: float) -> str:
    """A small number in short scientific form: 4.2e-07 -> "4.2e-7", 0.0001 -> "1e-4"."""
    x = float(x)
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def import_summary(max_abs_diff: float, tolerance: float) -> str:
    """One line: the model was converted from Keras 3 and whether the outputs match."""
    diff, tol = float(max_abs_diff), float(tolerance)
    if diff <= tol:
        return (
            "Converted from Keras 3 to Keras 2; outputs match, "
            f"max difference {sci(diff)} ≤ {sci(tol)}"
        )
    return (
        "Converted from Keras 3 to Keras 2; outputs DIFFER, "
        f"max difference {sci(diff)} > {sci(tol)}"
    )


def translate_model_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Translate a Keras 3 model config to Keras 2; return it and translation warnings.

    Raises UnsupportedModelError listing every layer it cannot translate.
    """
    problems = _Problems()
    out = _model(config, problems)
    if problems.items:
        shown = "; ".join(problems.items[:5])
        more = f" (and {len(problems.items) - 5} more)" if len(problems.items) > 5 else ""
        raise UnsupportedModelError(f"cannot import this Keras 3 model: {shown}{more}")
    return out, problems.warnings


def _model(entry: dict[str, Any], problems: _Problems) -> dict[str, Any]:
    cls = entry.get("class_name")
    cfg = entry.get("config") or {}
    name = str(cfg.get("name") or entry.get("name") or "model")
    if cls not in MODEL_CLASSES:
        problems.add(name, str(cls), "not a Sequential or Functional model (subclassed?)")
        return {"class_name": "Functional", "config": {"name": name, "layers": []}}
    layers = [_layer(layer, problems, functional=cls != "Sequential") for layer in cfg["layers"]]
    if cls == "Sequential":
        if layers and layers[0]["class_name"] != "InputLayer":
            shape = cfg.get("build_input_shape")
            if shape is None:
                problems.add(name, "Sequential", "its input shape is not stored (never built)")
            else:
                layers.insert(0, _input_layer({"batch_shape": shape, "name": f"{name}_input"}))
        return {"class_name": "Sequential", "config": {"name": name, "layers": layers}}
    return {
        "class_name": "Functional",
        "config": {
            "name": name,
            "layers": layers,
            "input_layers": _endpoints(cfg.get("input_layers", [])),
            "output_layers": _endpoints(cfg.get("output_layers", [])),
        },
    }


def _endpoints(value: Any) -> list[list[Any]]:
    """Keras 3 stores a single endpoint flat (``["in", 0, 0]``); Keras 2 wants a list."""
    if len(value) == 3 and isinstance(value[0], str):
        return [list(value)]
    return [list(v) for v in value]


def _input_layer(cfg: dict[str, Any]) -> dict[str, Any]:
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    dtype = cfg.get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name", "float32")
    new = {
        "batch_input_shape": list(shape) if shape is not None else None,
        "dtype": dtype,
        "sparse": bool(cfg.get("sparse", False)),
        "ragged": bool(cfg.get("ragged", False)),
        "name": cfg.get("name"),
    }
    return {"class_name": "InputLayer", "config": new}


def _layer(entry: dict[str, Any], problems: _Problems, functional: bool) -> dict[str, Any]:
    cls = str(entry.get("class_name"))
    cfg = entry.get("config") or {}
    name = str(entry.get("name") or cfg.get("name") or "?")
    if cls in MODEL_CLASSES:
        out = _model(entry, problems)
    elif cls == "InputLayer":
        out = _input_layer(cfg)
    else:
        out = {"class_name": cls, "config": _layer_config(cls, name, cfg, problems)}
    if functional:
        out["name"] = name
        out["inbound_nodes"] = _inbound_nodes(entry.get("inbound_nodes", []), name, cls, problems)
    return out


@cache
def _init_params(cls: type) -> tuple[frozenset[str], bool]:
    """Constructor parameter names of a tf_keras class (through its base classes, which
    receive ``**kwargs``) and whether it accepts arbitrary keyword arguments."""
    names: set[str] = set()
    var_kw = False
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        names |= {p for p, v in params.items() if p != "self" and v.kind is not v.VAR_POSITIONAL}
        if not any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values()):
            break  # this constructor swallows nothing further
        var_kw = True
    names.discard("kwargs")
    return frozenset(names), var_kw


def _layer_config(cls: str, name: str, cfg: dict[str, Any], problems: _Problems) -> dict:
    from engine.core.tfenv import keras2

    k2cls = getattr(keras2().layers, cls, None)
    if not isinstance(k2cls, type):
        problems.add(name, cls, "no such layer in Keras 2 (tf_keras)")
        return {}
    params, var_kw = _init_params(k2cls)
    allowed = params | (BASE_LAYER_KWARGS if var_kw else frozenset())
    out: dict[str, Any] = {}
    skip = {"function", "arguments", "output_shape", "mask"} if cls == "Lambda" else set()
    for key, value in cfg.items():
        if key in skip:
            continue
        if key not in allowed:
            if key in DROPPABLE and value in DROPPABLE[key]:
                continue
            if value is None or value is False:
                continue
            problems.add(name, cls, f"option {key}={value!r} has no Keras 2 equivalent")
            continue
        out[key] = _value(key, value, name, cls, problems)
    if cls == "Lambda":
        out.update(_lambda_function(cfg, name, problems))
    return out


def _value(key: str, value: Any, layer: str, cls: str, problems: _Problems) -> Any:
    from engine.core.tfenv import keras2

    if key == "dtype":
        if isinstance(value, dict):
            return (value.get("config") or {}).get("name", "float32")
        return value
    if key in ("activation", "recurrent_activation") and value is not None:
        fn = value
        if isinstance(value, dict):  # Keras 3 function serialization
            fn = value.get("config")
        try:
            keras2().activations.get(fn)
        except (ValueError, TypeError):
            problems.add(layer, cls, f"activation {fn!r} does not exist in Keras 2")
        return fn
    if isinstance(value, dict) and "class_name" in value:
        return _object(value, layer, cls, problems)
    if isinstance(value, dict):
        return {k: _value(k, v, layer, cls, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(key, v, layer, cls, problems) for v in value]
    return value


def _object(value: dict[str, Any], layer: str, cls: str, problems: _Problems) -> Any:
    """An initializer / regularizer / constraint (or nested layer) in Keras 2 form."""
    from engine.core.tfenv import keras2

    obj_cls = value["class_name"]
    module = str(value.get("module") or "")
    cfg = value.get("config") or {}
    if obj_cls == "__tuple__":
        return list(cfg.get("value", []))
    kind = OBJECT_MODULES.get(module)
    if kind is None:
        # e.g. a wrapped layer (Bidirectional/TimeDistributed) or an RNN cell
        if obj_cls in MODEL_CLASSES:
            problems.add(layer, cls, "a model stored inside a layer option cannot be imported")
            return None
        return {
            "class_name": obj_cls,
            "config": _layer_config(obj_cls, str(cfg.get("name", layer)), cfg, problems),
        }
    k2cls = getattr(getattr(keras2(), kind), obj_cls, None)
    if not isinstance(k2cls, type):
        if kind == "initializers":
            problems.warnings.append(
                f"layer '{layer}': initializer {obj_cls} has no Keras 2 equivalent; "
                "using the layer default (affects only training from scratch)"
            )
            return None
        problems.add(layer, cls, f"{kind[:-1]} {obj_cls} does not exist in Keras 2")
        return None
    params, _ = _init_params(k2cls)
    kept = {k: v for k, v in cfg.items() if k in params}
    return {"class_name": obj_cls, "config": kept}


def _lambda_function(cfg: dict[str, Any], layer: str, problems: _Problems) -> dict[str, Any]:
    """Keras 3 stores a lambda as ``{"class_name": "__lambda__", "config": {code, ...}}``."""
    fn = cfg.get("function")
    if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":
        c = fn.get("config") or {}
        return {
            "function": [c.get("code"), c.get("defaults"), c.get("closure")],
            "function_type": "lambda",
            "module": "builtins",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": cfg.get("arguments") or {},
        }
    problems.add(layer, "Lambda", "only lambdas (not named functions) can be imported")
    return {}


def _inbound_nodes(
    nodes: list[Any], layer: str, cls: str, problems: _Problems
) -> list[list[list[Any]]]:
    """Keras 3 ``{"args": [...], "kwargs": {...}}`` nodes -> Keras 2 nested lists."""
    out = []
    for node in nodes:
        if isinstance(node, list):  # already Keras 2 format
            out.append(node)
            continue
        args = node.get("args", [])
        kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None}
        if _has_tensor(kwargs):
            problems.add(layer, cls, "is called with tensors as keyword arguments")
            continue
        if len(args) != 1:
            problems.add(layer, cls, f"is called with {len(args)} positional inputs")
            continue
        tensors = _tensor_refs(args[0])
        if tensors is None:
            problems.add(layer, cls, "is called on a constant, not a tensor")
            continue
        out.append([[*t, kwargs] for t in tensors])
    return out


def _has_tensor(obj: Any) -> bool:
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            return True
        return any(_has_tensor(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_tensor(v) for v in obj)
    return False


def _tensor_refs(arg: Any) -> list[list[Any]] | None:
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return [list(arg["config"]["keras_history"])]
    if isinstance(arg, list) and arg:
        refs: list[list[Any]] = []
        for a in arg:
            r = _tensor_refs(a)
            if r is None:
                return None
            refs.extend(r)
        return refs
    return None
