"""Could a refused model be opened at all if the user trusted it? Decided from the stored
config alone: nothing stored in the file runs, nothing is built from it.

The GUI asks "do you trust this file?" only when the answer would help: a Keras 3 file whose
layers cannot be translated to Keras 2, or a Keras 2 file that names a custom class whose code
is not in the file, fails to load whether or not its code may run, so the user is told that
instead of being asked.

What each format can carry when trusted (the loaders in ``engine.models.loading``):

- Keras 3 ``.keras`` / ``.h5``: the architecture is translated to Keras 2
  (``engine.models.keras3_import``) before Keras 3 loads the file. Lambdas (``__lambda__``
  bytecode) translate; named functions, ``TFSMLayer``, ``TorchModuleWrapper``/``JaxLayer``,
  custom classes and subclassed models do not. The translation itself is run here (it reads
  the config and looks up tf_keras classes, nothing more).
- Keras 2 ``.keras`` / ``.h5``: a Lambda stored as bytecode and a ``TFOpLambda`` naming an
  existing TensorFlow function load; a Lambda stored by function name cannot be rebuilt by
  tf_keras; a custom class (or subclassed model) cannot, as the file holds only its config,
  not its code.
- Keras 2 SavedModel folder: the plain tf_keras loader revives classes it does not know
  from the traced functions stored in the folder, so it loads when trusted.

Public API:

- ``trust_verdict(path, items=None) -> TrustVerdict``
- ``stored_verdict(stored, items=None) -> TrustVerdict`` (for an already read ``StoredModel``)
- ``item_dict(item) -> dict`` (JSON form of an ``UnsafeItem``)
- ``engine.models.savedmodel_graph.graph_items(stored)`` (refused ops of a SavedModel graph)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.errors import UnsupportedModelError
from engine.models.safety import (
    MODEL_CLASSES,
    TF_OP_LAYERS,
    StoredModel,
    builtin_class_names,
    find_unsafe,
    read_stored_model,
)

# Never deserialized by a tf_keras loader: compile options (every loader here passes
# compile=False) and call arguments of functional nodes (only tensor references are read).
SKIPPED_KEYS = frozenset({"compile_config", "inbound_nodes"})


@dataclass
class TrustVerdict:
    """``loadable``: the model would load if code were allowed; ``reason``: one line saying
    why it would not ("" when loadable); ``items``: what runs code / reads files."""

    loadable: bool
    reason: str = ""
    items: list[Any] = field(default_factory=list)


def item_dict(item: Any) -> dict[str, Any]:
    """``{"layer", "class_name", "reason", "text", ...}`` for an UnsafeItem (or alike)."""
    to_dict = getattr(item, "to_dict", None)
    if callable(to_dict):
        out = dict(to_dict())
        if {"layer", "class_name", "reason", "text"} <= out.keys():
            return out
    layer = str(getattr(item, "layer", "") or "")
    cls = str(getattr(item, "class_name", "") or "")
    reason = str(getattr(item, "reason", "") or "")
    describe = getattr(item, "describe", None)
    text = str(describe()) if callable(describe) else f"layer '{layer}' ({cls}): {reason}"
    return {"layer": layer, "class_name": cls, "reason": reason, "text": text}


def trust_verdict(path: str | Path, items: list[Any] | None = None) -> TrustVerdict:
    """Whether the model at ``path`` would load with code allowed, without running any.

    ``items`` are the unsafe items already found (``UnsafeModelError.items``); found again
    when not given. Raises BadInputError only if the file cannot be read at all.
    """
    return stored_verdict(read_stored_model(path), items)


def stored_verdict(stored: StoredModel, items: list[Any] | None = None) -> TrustVerdict:
    """``trust_verdict`` for a model already read with ``read_stored_model``."""
    if items is None:
        items = find_unsafe(stored)
    if not items and stored.fmt == "savedmodel":
        from engine.models.savedmodel_graph import graph_items

        items = graph_items(stored)
    reason = _keras3_problem(stored) if stored.keras_major == 3 else _keras2_problem(stored)
    return TrustVerdict(loadable=not reason, reason=reason, items=list(items))


def _subclassed(stored: StoredModel) -> str:
    cls = (stored.config or {}).get("class_name")
    if cls is not None and cls not in MODEL_CLASSES:
        return (
            f"it is a subclassed model ({cls}) whose Python code is not in the file; "
            "Featherweight needs a Sequential or Functional model"
        )
    return ""


def _keras3_problem(stored: StoredModel) -> str:
    """Run the same translation ``engine.models.loading`` runs before Keras 3 loads the file."""
    from engine.models.keras3_import import translate_model_config
    from engine.models.loading import flatten_model_config

    if stored.config is None:
        return "it holds no model architecture"
    problem = _subclassed(stored)
    if problem:
        return problem
    try:
        k2_config, _ = translate_model_config(stored.config)
        flatten_model_config(k2_config)
    except UnsupportedModelError as exc:
        what = str(exc).removeprefix("cannot import this Keras 3 model: ")
        return (
            f"its Keras 3 layers cannot be translated to Keras 2, which Featherweight uses: {what}"
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A config the translation does not understand fails the real import the same way.
        return f"its Keras 3 configuration cannot be translated to Keras 2 ({exc})"
    return ""


def _keras2_problem(stored: StoredModel) -> str:
    if stored.fmt == "savedmodel":
        return ""  # the trusted loader revives unknown classes from the traced graph
    problem = _subclassed(stored)
    if problem:
        return problem
    builtin = builtin_class_names(2)
    problems: list[str] = []
    for obj, layer in _objects(stored.config, "model"):
        cls = obj.get("class_name")
        if not isinstance(cls, str):
            continue
        raw = obj.get("config")
        cfg: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if cls == "Lambda":
            for key, type_key in (
                ("function", "function_type"),
                ("output_shape", "output_shape_type"),
                ("mask", "mask_type"),
            ):
                if cfg.get(type_key) == "function":
                    problems.append(
                        f"layer '{layer}' (Lambda) names the Python function "
                        f"'{cfg.get(key)}' instead of storing it, and tf_keras cannot rebuild it"
                    )
        elif cls in TF_OP_LAYERS:
            fn = str(cfg.get("function", ""))
            if not _tf_symbol_exists(fn):
                problems.append(f"layer '{layer}' ({cls}) calls '{fn}', which TensorFlow lacks")
        elif not _keras2_can_build(obj, cls, builtin):
            problems.append(
                f"layer '{layer}' uses the custom class {cls}, whose Python code is not in the "
                "file (only the program that saved it can load it)"
            )
    for obj, layer in _objects(stored.config, "model", every_dict=True):
        for option, value in obj.items():
            named = _named_option_kind(option)
            if named is not None and isinstance(value, str) and not _keras2_resolves(named, value):
                problems.append(
                    f"layer '{layer}' names the {named} '{value}', whose Python code is not in "
                    "the file"
                )
    if not problems:
        return ""
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def _keras2_can_build(obj: dict[str, Any], cls: str, builtin: frozenset[str]) -> bool:
    """tf_keras can construct this serialized object without code from outside Keras."""
    module = obj.get("module")
    if isinstance(module, str) and module.split(".")[0] not in ("keras", "tf_keras"):
        return False
    for name in (obj.get("registered_name"), cls):
        if isinstance(name, str) and ">" in name:
            return _registered_in_tf_keras(name)
    return cls in builtin or cls in MODEL_CLASSES


def _registered_in_tf_keras(name: str) -> bool:
    """A ``Package>Name`` that tf_keras' registry knows in this process (Keras' own, or a
    library's that is imported here), so the loader finds its code."""
    from engine.core.tfenv import keras2

    keras2()
    from tf_keras.src.saving.object_registration import get_registered_object

    return get_registered_object(name) is not None


def _named_option_kind(key: Any) -> str | None:
    """``activation`` / ``kernel_initializer`` ... -> the kind of Keras object it names."""
    if not isinstance(key, str):
        return None
    for kind in ("activation", "initializer", "regularizer", "constraint"):
        if key == kind or key.endswith("_" + kind):
            return kind
    return None


def _keras2_resolves(kind: str, name: str) -> bool:
    """tf_keras finds the ``kind`` named ``name`` (as its loader would: a lookup by name in
    its own module, nothing from the file runs)."""
    from engine.core.tfenv import keras2

    mod = getattr(keras2(), kind + "s")
    try:
        mod.get(name)
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
    return True


def _tf_symbol_exists(name: str) -> bool:
    try:
        from tensorflow.python.util.tf_export import get_symbol_from_name

        return bool(name) and get_symbol_from_name(name) is not None
    except Exception:  # noqa: BLE001 - a TensorFlow without this helper: cannot tell
        return True


def _objects(obj: Any, layer: str, every_dict: bool = False) -> list[tuple[dict[str, Any], str]]:
    """Every serialized object (``{"class_name": ...}``; with ``every_dict``, every dict) in
    a config, with the name of the layer it belongs to."""
    out: list[tuple[dict[str, Any], str]] = []
    stack: list[tuple[Any, str, int]] = [(obj, layer, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > 200:
            continue
        if isinstance(node, list):
            stack.extend((v, where, depth + 1) for v in reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("class_name"), str):
            cfg = node.get("config")
            name = node.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
            cls = node["class_name"]
            if isinstance(name, str) and not cls.endswith("Policy") and not cls.startswith("__"):
                where = name
            out.append((node, where))
        elif every_dict:
            out.append((node, where))
        for key, v in reversed(list(node.items())):
            if key not in SKIPPED_KEYS:
                stack.append((v, where, depth + 1))
    return out
