"""Export a compressed model back to Keras 3 ("Keras 3 in, Keras 3 out").

A model imported from a Keras 3 file is compressed as a Keras 2 (tf_keras) model. This
module writes the result as a Keras 3 ``.keras`` file: it loads the user's original Keras 3
model again (after the same safety check as at import), copies every weight of the compressed
Keras 2 model into it layer by layer (tfmot wrappers stripped, nested models found by the
import's layer paths), checks both give the same outputs and saves it. The architecture is
the user's own, so augmentation layers that the import dropped are still there (inactive at
inference); pruned zeros and clusters are kept because the weights are copied exactly.

Public API:

- ``KERAS3_FILE``: the file name in a run folder (``model_keras3.keras``).
- ``export_keras3(source_path, model, out_path, sample, *, qat=False, allow_unsafe=False)
  -> Keras3Export``. ``model`` is the compressed Keras 2 model (after QAT: the QAT model;
  with ``qat=True`` its float weights are exported, without fake quantization). Raises
  ``Keras3ExportError`` (one line) when the file cannot be written faithfully.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import FeatherweightError

KERAS3_FILE = "model_keras3.keras"
# Largest output difference accepted between the Keras 3 export and the compressed Keras 2
# model (same weights, same TensorFlow kernels: in practice below 1e-6).
EXPORT_TOLERANCE = 1e-4
# Variable names counted as kernels for the sparsity recorded with the export.
KERNEL_NAMES = frozenset(
    {"kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings"}
)


class Keras3ExportError(FeatherweightError):
    """The compressed model cannot be written as an equivalent Keras 3 file."""


@dataclass
class Keras3Export:
    """What ``export_keras3`` wrote."""

    file: str  # file name inside the run folder
    weights: str  # "compressed" | "qat_float" (the QAT model's float weights)
    max_abs_diff: float  # vs the Keras 2 model given (after QAT: vs the QAT model)
    kernel_sparsity: float  # exact zeros among the exported kernels (KERNEL_NAMES)
    layers_copied: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_keras3(
    source_path: str | Path,
    model: Any,
    out_path: str | Path,
    sample: Any,
    *,
    qat: bool = False,
    allow_unsafe: bool = False,
) -> Keras3Export:
    """Write ``model``'s weights into the Keras 3 architecture of ``source_path``.

    ``sample`` is a batch of model input used for the output check. Raises
    Keras3ExportError when the source is not a Keras 3 file, a weighted layer has no
    counterpart, weights do not fit, or (without ``qat``) the outputs differ by more than
    EXPORT_TOLERANCE.
    """
    from engine.core.tfenv import keras3
    from engine.models.safety import check_safe, read_stored_model

    source = Path(source_path)
    stored = read_stored_model(source)
    if stored.keras_major != 3:
        raise Keras3ExportError(f"{source.name} is not a Keras 3 file")
    check_safe(stored, allow_unsafe)  # the file is read again: check it again
    k = keras3()
    target = _keras3_model(k, stored, allow_unsafe)
    paths = _layer_paths(stored.config)
    sources = _source_layers(model)
    masks = _sparsity_masks(model) if qat else {}

    copied: set[int] = set()
    for name, layer in sources.items():
        inner = _unwrap(layer)
        variables = _source_weights(layer)
        if not variables or type(inner).__name__ == "QuantizeLayer":
            continue
        dst = _find(target, paths.get(name, (name,)))
        if dst is None:
            raise Keras3ExportError(
                f"layer '{name}' ({type(inner).__name__}) has no counterpart in the Keras 3 model"
            )
        _copy_weights(name, variables, dst, masks)
        copied.add(id(dst))
    for dst in _leaf_layers(target, k.Model):
        if dst.weights and id(dst) not in copied:
            raise Keras3ExportError(
                f"Keras 3 layer '{dst.name}' ({type(dst).__name__}) has weights but no "
                "counterpart in the compressed model"
            )

    diff = _max_diff(model, target, sample)
    notes: list[str] = []
    if qat:
        notes.append(
            f"{Path(out_path).name} holds the QAT model's float weights (Keras 3 has no tfmot "
            f"fake quantization); its outputs differ from the QAT model by up to {diff:.2g}"
        )
    elif not diff <= EXPORT_TOLERANCE:
        raise Keras3ExportError(
            f"the Keras 3 model's outputs differ from the compressed model by {diff:.3g} "
            f"> {EXPORT_TOLERANCE:g}"
        )
    try:
        target.save(str(out_path))
    except Exception as exc:  # noqa: BLE001 - report, never crash the run
        Path(out_path).unlink(missing_ok=True)
        raise Keras3ExportError(f"Keras 3 could not save the model: {_line(exc)}") from None
    return Keras3Export(
        file=Path(out_path).name,
        weights="qat_float" if qat else "compressed",
        max_abs_diff=diff,
        kernel_sparsity=kernel_sparsity(target),
        layers_copied=len(copied),
        notes=notes,
    )


def kernel_sparsity(model: Any) -> float:
    """Fraction of exact zeros among the kernel weights (KERNEL_NAMES) of a Keras 2 or 3
    model."""
    total = zeros = 0
    for w in model.weights:
        if _short_name(w) in KERNEL_NAMES:
            a = np.asarray(w)
            total += a.size
            zeros += int(np.count_nonzero(a == 0))
    return zeros / total if total else 0.0


# ---------------------------------------------------------------- helpers


def _keras3_model(k: Any, stored: Any, allow_unsafe: bool) -> Any:
    """The user's Keras 3 model. Every weight is overwritten afterwards, so a ``.keras``
    file's model is built from its config alone (ResNet50: 1.7 s instead of 4.7 s for
    ``load_model``); the loader is the fallback (``.h5``, or a config that does not build)."""
    if stored.fmt == "keras" and isinstance(stored.config, dict):
        config = copy.deepcopy(stored.config)
        config.pop("compile_config", None)
        try:
            model = k.saving.deserialize_keras_object(config, safe_mode=not allow_unsafe)
            if isinstance(model, k.Model) and model.built:
                return model
        except Exception:  # noqa: BLE001 - fall back to the loader
            pass
    try:
        return k.models.load_model(str(stored.path), compile=False, safe_mode=not allow_unsafe)
    except Exception as exc:  # noqa: BLE001 - any loader failure ends the export
        name = stored.path.name
        raise Keras3ExportError(f"cannot load {name} with Keras 3: {_line(exc)}") from None


def _line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _layer_paths(config: dict[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """Keras 2 layer name -> path of layer names in the Keras 3 model, exactly as the import
    flattened nested models (empty when nothing was flattened or on any doubt)."""
    if not config:
        return {}
    from engine.models.keras3_import import translate_model_config
    from engine.models.loading import flatten_model_config

    try:
        result = translate_model_config(config)
        k2_config = result[0] if isinstance(result, tuple) else result
        _, paths, _ = flatten_model_config(k2_config)
    except Exception:  # noqa: BLE001 - names are then looked up directly
        return {}
    return dict(paths)


def _is_tfmot_wrapper(layer: Any) -> bool:
    return type(layer).__module__.startswith("tensorflow_model_optimization") and hasattr(
        layer, "layer"
    )


def _unwrap(layer: Any) -> Any:
    """The layer inside tfmot wrappers (never looks inside Bidirectional/TimeDistributed)."""
    for _ in range(5):
        if not _is_tfmot_wrapper(layer):
            break
        layer = layer.layer
    return layer


def _source_layers(model: Any) -> dict[str, Any]:
    """``{name of the layer inside tfmot wrappers: model layer}`` of the Keras 2 model."""
    out: dict[str, Any] = {}
    for layer in model.layers:
        inner = _unwrap(layer)
        if type(inner).__name__ == "InputLayer":
            continue
        out[inner.name] = layer
    return out


def _source_weights(layer: Any) -> list[Any]:
    """The float weights of a Keras 2 layer, tfmot wrappers stripped. A QAT wrapper takes
    the weights it quantizes (kernels) away from the inner layer and keeps them in
    ``_weight_vars``: those first, then the inner layer's other weights (bias, BN)."""
    out: list[Any] = []
    seen: set[int] = set()
    current = layer
    for _ in range(5):
        for entry in getattr(current, "_weight_vars", None) or []:
            if isinstance(entry, tuple) and entry and id(entry[0]) not in seen:
                out.append(entry[0])
                seen.add(id(entry[0]))
        if not _is_tfmot_wrapper(current):
            break
        current = current.layer
    for w in current.weights:
        if id(w) not in seen:
            out.append(w)
            seen.add(id(w))
    return out


def _sparsity_masks(model: Any) -> dict[int, np.ndarray]:
    """``{id(kernel variable): mask}`` of prune-preserving QAT wrappers (PQAT), so the
    exported float kernels keep the zeros the int8 model has."""
    masks: dict[int, np.ndarray] = {}
    for layer in model.layers:
        for entry in getattr(layer, "_weight_vars", None) or []:
            if len(entry) < 3 or not isinstance(entry[2], dict):
                continue
            mask = entry[2].get("sparsity_mask")
            if mask is not None:
                masks[id(entry[0])] = np.asarray(mask)
    return masks


def _find(model: Any, path: tuple[str, ...]) -> Any | None:
    layer = model
    try:
        for name in path:
            layer = layer.get_layer(name)
    except (ValueError, AttributeError):
        return None
    return layer


def _leaf_layers(model: Any, model_cls: Any) -> list[Any]:
    """Every layer of a Keras 3 model, nested models walked into (each layer once)."""
    out: list[Any] = []
    seen: set[int] = set()
    stack: list[Any] = list(reversed(model.layers))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, model_cls):
            stack.extend(reversed(layer.layers))
        else:
            out.append(layer)
    return out


def _short_name(var: Any) -> str:
    """Last part of a variable's name without ``:0`` ("dense/kernel:0" -> "kernel")."""
    name = str(getattr(var, "path", None) or var.name)
    return name.split(":")[0].split("/")[-1]


def _key(var: Any, layer_name: str) -> str:
    """A variable's name relative to its layer: "mha/query/kernel:0" -> "query/kernel"."""
    name = str(getattr(var, "path", None) or var.name).split(":")[0]
    parts = name.split("/")
    if layer_name in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index(layer_name)
        parts = parts[index + 1 :]
    return "/".join(parts) if parts else name


def _copy_weights(name: str, variables: list[Any], dst: Any, masks: dict[int, np.ndarray]) -> None:
    """Assign the Keras 2 ``variables`` of layer ``name`` to Keras 3 layer ``dst``: by
    variable name relative to the layer when that names every variable on both sides, else
    by the last part of the name, else in order; shapes must fit."""
    values = []
    for w in variables:
        a = np.asarray(w)
        mask = masks.get(id(w))
        if mask is not None and mask.shape == a.shape:
            a = a * mask
        values.append(a)
    dst_vars = list(dst.weights)
    where = f"layer '{dst.name}' ({type(dst).__name__})"
    if len(values) != len(dst_vars):
        raise Keras3ExportError(
            f"{where}: {len(values)} weights in the compressed model, {len(dst_vars)} in Keras 3"
        )
    ordered = values
    for key in (_key, lambda var, _name: _short_name(var)):
        src_keys = [key(w, name) for w in variables]
        dst_keys = [key(v, dst.name) for v in dst_vars]
        if len(set(src_keys)) == len(src_keys) and set(src_keys) == set(dst_keys):
            by_key = dict(zip(src_keys, values))
            ordered = [by_key[k] for k in dst_keys]
            break
    for var, value in zip(dst_vars, ordered):
        if tuple(var.shape) != tuple(value.shape):
            raise Keras3ExportError(
                f"{where}: weight {value.shape} does not fit Keras 3's {tuple(var.shape)}"
            )
    for var, value in zip(dst_vars, ordered):
        var.assign(value.astype(np.dtype(var.dtype), copy=False))
    finalize = getattr(dst, "finalize_state", None)
    if callable(finalize):  # Normalization computes its mean/variance from the variables
        finalize()


def _max_diff(reference: Any, candidate: Any, sample: Any) -> float:
    a = np.asarray(reference(sample, training=False), dtype=np.float64)
    b = np.asarray(candidate(sample, training=False), dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0
