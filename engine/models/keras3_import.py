"""Import Keras 3 models into Keras 2 (tf_keras), which is what tfmot works with.

tf_keras cannot read files written by Keras 3 (``InputLayer(batch_shape=...)``, dtype
policy objects, ``module``/``registered_name`` fields, a new functional node format). This
module translates a Keras 3 architecture config into a Keras 2 one; ``engine.models.loading`` builds
it with tf_keras, copies the weights layer by layer and checks both models agree.

What the translation does beyond renaming fields:

- Augmentation layers (``RandomFlip``, ``RandomRotation``, ... , ``GaussianNoise``) are
  identities at inference: they are dropped from the graph (their consumers read their
  input) and a warning names them. ``Rescaling`` / ``Normalization`` are kept.
- Keras 3 operation nodes (``x + 3.0``, ``x * y``, ``ops.relu(x)``) become Keras 2 layers:
  ``Rescaling`` for arithmetic with a number, ``Add`` / ``Subtract`` / ``Multiply`` for two
  tensors, ``TFOpLambda`` (a public TensorFlow function) otherwise.
- Activations whose Keras 2 version differs or is missing (``hard_sigmoid``,
  ``hard_swish``/``hard_silu``, ``relu6``, ``leaky_relu``, ``log_softmax``) are spelled out
  with Keras 2 layers after the layer that used them; ``silu`` becomes ``swish``.
- Layers called with several tensors (``MultiHeadAttention(query, value)``) keep the extra
  tensors as keyword arguments, the Keras 2 node format.

Public API:

- ``translate_model_config(config) -> (dict, list[str])``: Keras 3 model config
  (``{"class_name", "config", ...}`` as in ``config.json``) -> Keras 2 model config for
  ``tf_keras.models.model_from_config`` and the translation warnings. Raises
  ``UnsupportedModelError`` naming every layer (name + class + option) it cannot translate.
- ``import_summary(max_abs_diff, tolerance) -> str``: the one line saying what the import
  did and how well the outputs agree ("Converted from Keras 3 to Keras 2; outputs match,
  max difference 4e-7 ≤ 1e-4"), for the Model tab and the command line.
- ``INFERENCE_IDENTITY``: the layer classes dropped because they do nothing at inference.
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
     "batch_size", "weights", "activity_regularizer", "autocast", "implementation",
     "zero_output_for_mask"}
)  # fmt: skip
_ANY = object()
# Keras 3 options without a Keras 2 equivalent that are harmless at these values
# (``_ANY``: at any value, e.g. the seed of a training-only dropout).
DROPPABLE: dict[str, Any] = {
    "optional": (False, None),
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "gradient_checkpointing": (False, None),
    "seed": _ANY,  # only drives dropout / noise during training
    "use_cudnn": _ANY,  # a speed choice; same maths
    "data_format": ("channels_last",),  # Keras 2's default where it has no option
    "use_gate": (False, None),
    "sliding_window": (None,),
    "flash_attention": (None, False),
}
# Keras 3 option names that Keras 2 spells differently, per layer class.
RENAMED = {"LeakyReLU": {"negative_slope": "alpha"}, "ELU": {}, "PReLU": {}}
OBJECT_MODULES = {
    "keras.initializers": "initializers",
    "keras.regularizers": "regularizers",
    "keras.constraints": "constraints",
}
# Identity at inference: augmentation and noise layers (dropped from the imported graph).
INFERENCE_IDENTITY = frozenset(
    {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
     "RandomBrightness", "RandomGrayscale", "RandomHue", "RandomSaturation", "RandomSharpness",
     "RandomShear", "RandomColorDegeneration", "RandomColorJitter", "RandomPosterization",
     "RandomErasing", "RandomGaussianBlur", "RandomInvert", "RandomPerspective",
     "RandomElasticTransform", "RandAugment", "AugMix", "CutMix", "MixUp", "Solarization",
     "RandomHeight", "RandomWidth", "GaussianNoise", "GaussianDropout", "AlphaDropout"}
)  # fmt: skip
# Keras 3 operations (``keras.src.ops``) that have a Keras 2 form.
BINARY_OPS = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply", "Divide": "truediv",
              "TrueDivide": "truediv"}  # fmt: skip
UNARY_OPS = {
    "Relu": "nn.relu", "Relu6": "nn.relu6", "Sigmoid": "math.sigmoid", "Tanh": "math.tanh",
    "Exp": "math.exp", "Sqrt": "math.sqrt", "Negative": "math.negative", "Abs": "math.abs",
    "Square": "math.square", "Silu": "nn.silu", "Swish": "nn.silu", "Log": "math.log",
}  # fmt: skip
# Activation names Keras 2 lacks or computes differently: spelled out with layers.
EXPANDED_ACTIVATIONS = frozenset(
    {"hard_sigmoid", "hard_swish", "hard_silu", "relu6", "leaky_relu", "log_softmax"}
)
RENAMED_ACTIVATIONS = {"silu": "swish"}


class _Problems:
    """Collects every untranslatable item so the error names all of them at once, plus
    the warnings and the per-model rewiring of dropped / expanded layers."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []
        self.dropped: list[str] = []
        # (layer name, node index) -> [layer, node, tensor] that replaces its output
        self.redirect: dict[tuple[str, int], list[Any]] = {}

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
    warnings = list(problems.warnings)
    if problems.dropped:
        warnings.insert(
            0,
            f"dropped {len(problems.dropped)} augmentation/noise layer(s), inactive at "
            f"inference: {', '.join(problems.dropped)}",
        )
    return out, warnings


def _model(entry: dict[str, Any], problems: _Problems) -> dict[str, Any]:
    cls = entry.get("class_name")
    cfg = entry.get("config") or {}
    name = str(cfg.get("name") or entry.get("name") or "model")
    if cls not in MODEL_CLASSES:
        problems.add(name, str(cls), "not a Sequential or Functional model (subclassed?)")
        return {"class_name": "Functional", "config": {"name": name, "layers": []}}
    outer_redirect, problems.redirect = problems.redirect, {}
    try:
        sequential = cls == "Sequential"
        layers: list[dict[str, Any]] = []
        for layer in cfg["layers"]:
            layers.extend(_layer(layer, problems, functional=not sequential))
        if sequential:
            if layers and layers[0]["class_name"] != "InputLayer":
                shape = cfg.get("build_input_shape")
                if shape is None:
                    problems.add(name, "Sequential", "its input shape is not stored (never built)")
                else:
                    layers.insert(0, _input_layer({"batch_shape": shape, "name": f"{name}_input"}))
            elif not layers:
                shape = cfg.get("build_input_shape")
                if shape is not None:
                    layers.append(_input_layer({"batch_shape": shape, "name": f"{name}_input"}))
            return {"class_name": "Sequential", "config": {"name": name, "layers": layers}}
        return {
            "class_name": "Functional",
            "config": {
                "name": name,
                "layers": layers,
                "input_layers": _endpoints(cfg.get("input_layers", []), problems),
                "output_layers": _endpoints(cfg.get("output_layers", []), problems),
            },
        }
    finally:
        problems.redirect = outer_redirect


def _endpoints(value: Any, problems: _Problems | None = None) -> list[list[Any]]:
    """Keras 3 stores a single endpoint flat (``["in", 0, 0]``) and named ones as a dict;
    Keras 2 wants a list. Endpoints of dropped layers point at what replaced them."""
    if isinstance(value, dict):
        value = list(value.values())
    if len(value) == 3 and isinstance(value[0], str):
        value = [value]
    out = [list(v) for v in value]
    if problems is not None:
        out = [_redirected(v, problems)[:3] for v in out]
    return out


def _redirected(ref: list[Any], problems: _Problems) -> list[Any]:
    """``[layer, node, tensor, ...]`` after dropped / expanded layers are rewired."""
    seen = 0
    while (ref[0], ref[1]) in problems.redirect and ref[2] == 0 and seen < 1000:
        ref = [*problems.redirect[(ref[0], ref[1])], *ref[3:]]
        seen += 1
    return ref


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


def _is_operation(entry: dict[str, Any]) -> bool:
    """A Keras 3 operation node (``keras.src.ops.*``), not a layer. Legacy (``.h5``)
    configs have no module: an op's config holds only its name (a layer's holds dtype)."""
    module = entry.get("module")
    if isinstance(module, str):
        return module.startswith("keras.src.ops") or module.startswith("keras.ops")
    cfg = entry.get("config") or {}
    cls = entry.get("class_name")
    return (cls in BINARY_OPS or cls in UNARY_OPS) and "dtype" not in cfg and "trainable" not in cfg


def _layer(entry: dict[str, Any], problems: _Problems, functional: bool) -> list[dict[str, Any]]:
    """One Keras 3 layer entry -> zero (dropped), one or several Keras 2 entries."""
    cls = str(entry.get("class_name"))
    cfg = entry.get("config") or {}
    name = str(entry.get("name") or cfg.get("name") or "?")
    if cls in INFERENCE_IDENTITY:
        return _drop(entry, name, cls, problems, functional)
    if functional and _is_operation(entry):
        return _operation(entry, name, cls, problems)
    if cls in MODEL_CLASSES:
        out = _model(entry, problems)
    elif cls == "InputLayer":
        out = _input_layer(cfg)
    else:
        out = {"class_name": cls, "config": _layer_config(cls, name, cfg, problems, entry)}
    act = _activation_name(cfg.get("activation"))
    expand = act in EXPANDED_ACTIVATIONS and cls not in MODEL_CLASSES
    if expand:
        out["config"]["activation"] = "linear"  # the activation follows as layers
    if not functional:
        if expand:
            steps = _activation_steps(str(act), name)
            if any(len(inputs) > 1 for *_, inputs in steps):
                problems.add(name, cls, f"activation '{act}' in a Sequential model (save it as a "
                             "Functional model)")  # fmt: skip
                return [out]
            return [out] + [{"class_name": c, "config": {**k, "name": n}} for n, c, k, _ in steps]
        return [out]
    out["name"] = name
    nodes = entry.get("inbound_nodes", [])
    out["inbound_nodes"] = _inbound_nodes(nodes, name, cls, problems)
    if not expand:
        return [out]
    if len(nodes) != 1:
        problems.add(name, cls, f"activation '{act}' on a layer used {len(nodes)} times")
        return [out]
    return [out, *_expanded(str(act), name, [name, 0, 0], problems)]


def _drop(
    entry: dict[str, Any], name: str, cls: str, problems: _Problems, functional: bool
) -> list[dict[str, Any]]:
    """Leave an inference-time identity out; its consumers read its input instead."""
    problems.dropped.append(f"'{name}' ({cls})")
    if not functional:
        return []
    for index, node in enumerate(entry.get("inbound_nodes", [])):
        args = node.get("args", []) if isinstance(node, dict) else []
        refs = _tensor_refs(args[0]) if len(args) == 1 else None
        if isinstance(node, list):  # Keras 2 format
            refs = [list(r[:3]) for r in node]
        if not refs or len(refs) != 1:
            problems.add(name, cls, "is called on several tensors; cannot leave it out")
            continue
        problems.redirect[(name, index)] = _redirected(refs[0], problems)[:3]
    return []


def _activation_name(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("config")
    return value if isinstance(value, str) else None


def _activation_steps(act: str, base: str) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """Keras 2 layers computing a Keras 3 activation: ``(name, class, config, inputs)``
    where an input is ``"<in>"`` (the activation's input) or an earlier step's name."""
    if act == "relu6":
        return [(f"{base}_relu6", "ReLU", {"max_value": 6.0}, ["<in>"])]
    if act == "leaky_relu":
        return [(f"{base}_leaky_relu", "LeakyReLU", {"alpha": 0.2}, ["<in>"])]
    if act == "log_softmax":
        return [(f"{base}_log_softmax", "TFOpLambda", {"function": "nn.log_softmax"}, ["<in>"])]
    # hard_sigmoid(x) = relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)
    steps = [
        (f"{base}_hsig_affine", "Rescaling", {"scale": 1.0 / 6.0, "offset": 0.5}, ["<in>"]),
        (f"{base}_hsig_clip", "ReLU", {"max_value": 1.0}, [f"{base}_hsig_affine"]),
    ]
    if act in ("hard_swish", "hard_silu"):
        steps.append((f"{base}_hswish", "Multiply", {}, ["<in>", f"{base}_hsig_clip"]))
    return steps


def _expanded(act: str, base: str, source: list[Any], problems: _Problems) -> list[dict[str, Any]]:
    """Functional entries computing ``act`` on ``source``; the layer's consumers are
    redirected to the last one."""
    out = []
    for name, cls, cfg, inputs in _activation_steps(act, base):
        refs = [source if i == "<in>" else [i, 0, 0] for i in inputs]
        node: list[Any] = [[*r[:3], {}] for r in refs]
        if cls == "TFOpLambda":  # stored flat by tf_keras (see ``_operation``)
            node = node[0]
        layer_cfg: dict[str, Any] = {**cfg, "name": name}
        out.append({"class_name": cls, "name": name, "config": layer_cfg,
                    "inbound_nodes": [node]})  # fmt: skip
    problems.redirect[(base, 0)] = [out[-1]["name"], 0, 0]
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


@cache
def _call_arg_names(cls: type) -> tuple[str, ...]:
    """Names of a tf_keras layer's ``call`` arguments after the first (the inputs)."""
    try:
        params = inspect.signature(cls.call).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return ()
    names = [p for p, v in params.items() if p != "self" and v.kind is v.POSITIONAL_OR_KEYWORD]
    return tuple(names[1:])


def _droppable(key: str, value: Any) -> bool:
    allowed = DROPPABLE.get(key)
    if allowed is None:
        return False
    return allowed is _ANY or value in allowed


def _layer_config(
    cls: str,
    name: str,
    cfg: dict[str, Any],
    problems: _Problems,
    entry: dict[str, Any] | None = None,
) -> dict:
    from engine.core.tfenv import keras2

    k2cls = getattr(keras2().layers, cls, None)
    if not isinstance(k2cls, type):
        problems.add(name, cls, "no such layer in Keras 2 (tf_keras)")
        return {}
    params, var_kw = _init_params(k2cls)
    allowed = params | (BASE_LAYER_KWARGS if var_kw else frozenset())
    renamed = RENAMED.get(cls, {})
    out: dict[str, Any] = {}
    skip = {"function", "arguments", "output_shape", "mask"} if cls == "Lambda" else set()
    for key, value in cfg.items():
        if key in skip:
            continue
        key = renamed.get(key, key)
        if key not in allowed:
            if _droppable(key, value):
                continue
            if value is None or value is False:
                continue
            problems.add(name, cls, f"option {key}={value!r} has no Keras 2 equivalent")
            continue
        out[key] = _value(key, value, name, cls, problems)
    if cls == "Lambda":
        out.update(_lambda_function(cfg, name, problems))
    if cls == "MultiHeadAttention":
        # tf_keras builds the attention weights from these shapes in from_config.
        shapes = ((entry or {}).get("build_config") or {}).get("shapes_dict") or {}
        for key in ("query_shape", "key_shape", "value_shape"):
            shape = shapes.get(key)
            if key == "key_shape" and shape is None:
                shape = shapes.get("value_shape")
            out[key] = _value(key, shape, name, cls, problems) if shape is not None else None
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
        if fn in EXPANDED_ACTIVATIONS:
            if key == "activation":
                return fn  # spelled out with layers by the caller
            problems.add(layer, cls, f"recurrent activation {fn!r} has no Keras 2 equivalent")
            return fn
        fn = RENAMED_ACTIVATIONS.get(fn, fn) if isinstance(fn, str) else fn
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
        return [_value("", v, layer, cls, problems) for v in cfg.get("value", [])]
    if obj_cls in ("__numpy__", "__tensor__"):
        return cfg.get("value")
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


# ---------------------------------------------------------------- operation nodes


def _constant(value: Any) -> Any:
    """A number, or the nested list of a stored tensor / array constant, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict) and value.get("class_name") in ("__tensor__", "__numpy__"):
        return (value.get("config") or {}).get("value")
    return None


def _operation(entry: dict[str, Any], name: str, cls: str, problems: _Problems) -> list[dict]:
    """A Keras 3 operation node -> one Keras 2 layer (see the module docstring)."""
    op = f"operation '{cls}'"
    cfg = {k: v for k, v in (entry.get("config") or {}).items() if k != "name"}
    if cfg:
        options = ", ".join(f"{k}={v!r}" for k, v in list(cfg.items())[:3])
        problems.add(name, cls, f"Keras 3 {op} with options {options} has no Keras 2 form")
        return []
    nodes = entry.get("inbound_nodes", [])
    if len(nodes) != 1 or not isinstance(nodes[0], dict):
        problems.add(name, cls, f"Keras 3 {op} used {len(nodes)} times")
        return []
    args = list(nodes[0].get("args", []))
    kwargs = nodes[0].get("kwargs") or {}
    args += [kwargs[k] for k in ("x1", "x2", "x") if k in kwargs]
    refs = [_tensor_refs(a) for a in args]
    tensors = [_redirected(r[0], problems)[:3] if r and len(r) == 1 else None for r in refs]

    def layer(k2cls: str, config: dict[str, Any], node: list[Any]) -> list[dict]:
        if k2cls == "TFOpLambda":  # tf_keras stores a TF-op node flat: one tensor, no list
            node = node[0]
        return [{"class_name": k2cls, "name": name, "config": {**config, "name": name},
                 "inbound_nodes": [node]}]  # fmt: skip

    if cls in UNARY_OPS and len(args) == 1 and tensors[0] is not None:
        return layer("TFOpLambda", {"function": UNARY_OPS[cls]}, [[*tensors[0], {}]])
    if cls not in BINARY_OPS or len(args) != 2:
        problems.add(name, cls, f"Keras 3 {op} has no Keras 2 equivalent")
        return []
    kind = BINARY_OPS[cls]
    a, b = tensors
    if a is not None and b is not None:
        if kind in ("add", "subtract", "multiply"):
            return layer(kind.capitalize(), {}, [[*a, {}], [*b, {}]])
        return layer("TFOpLambda", {"function": "math.truediv"}, [[*a, {"y": b}]])
    consts = [_constant(v) for v in args]
    if a is None and b is not None and kind in ("add", "multiply"):
        a, consts = b, consts[::-1]  # commutative: the tensor goes first
    c = consts[1]
    if a is None or c is None:
        problems.add(name, cls, f"Keras 3 {op} on a constant first is not supported")
        return []
    if isinstance(c, float):
        scale, offset = {
            "add": (1.0, c),
            "subtract": (1.0, -c),
            "multiply": (c, 0.0),
            "truediv": (1.0 / c if c else float("inf"), 0.0),
        }[kind]
        return layer("Rescaling", {"scale": scale, "offset": offset}, [[*a, {}]])
    fn = {"add": "math.add", "subtract": "math.subtract", "multiply": "math.multiply",
          "truediv": "math.truediv"}[kind]  # fmt: skip
    return layer("TFOpLambda", {"function": fn}, [[*a, {"y": c}]])


# ---------------------------------------------------------------- nodes


def _inbound_nodes(
    nodes: list[Any], layer: str, cls: str, problems: _Problems
) -> list[list[list[Any]]]:
    """Keras 3 ``{"args": [...], "kwargs": {...}}`` nodes -> Keras 2 nested lists. Extra
    positional tensors become keyword arguments named after tf_keras' ``call``."""
    from engine.core.tfenv import keras2

    out = []
    for node in nodes:
        if isinstance(node, list):  # already Keras 2 format
            out.append([_redirected(list(r), problems) for r in node])
            continue
        args = list(node.get("args", []))
        given = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None}
        if not args:
            problems.add(layer, cls, "is called with no positional input")
            continue
        if len(args) > 1:
            k2cls = getattr(keras2().layers, cls, None)
            names = _call_arg_names(k2cls) if isinstance(k2cls, type) else ()
            if len(args) - 1 > len(names):
                problems.add(layer, cls, f"is called with {len(args)} positional inputs")
                continue
            given.update(dict(zip(names, args[1:])))
        kwargs = _kwarg_tensors(given, problems)
        if kwargs is None:
            problems.add(layer, cls, "is called with nested tensors as keyword arguments")
            continue
        tensors = _tensor_refs(args[0])
        if tensors is None:
            problems.add(layer, cls, "is called on a constant, not a tensor")
            continue
        out.append([[*_redirected(t, problems)[:3], kwargs] for t in tensors])
    return out


def _kwarg_tensors(kwargs: dict[str, Any], problems: _Problems) -> dict[str, Any] | None:
    """Keyword arguments with each tensor as a Keras 2 ``[layer, node, tensor]`` reference;
    None if a tensor is nested deeper than one level."""
    out = {}
    for key, value in kwargs.items():
        refs = _tensor_refs(value) if _has_tensor(value) else None
        if refs is not None and len(refs) == 1 and isinstance(value, dict):
            out[key] = _redirected(refs[0], problems)[:3]
        elif _has_tensor(value):
            return None
        else:
            out[key] = value
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
