"""Structured (filter) pruning: remove whole filters / units, rebuild a smaller model.

Unlike magnitude pruning, the result needs no sparse kernels: the layers themselves get
narrower, so the raw ``.tflite`` shrinks and runs faster.

- **Channel spaces.** Every Conv1D/2D/3D, SeparableConv and Dense output starts a channel
  space. BatchNormalization, DepthwiseConv (its depth multiplier ``m`` turns channel ``c``
  into outputs ``c*m … c*m+m-1``), activations, Dropout, pooling, ZeroPadding, Cropping and
  UpSampling pass channels through; ``Concatenate`` on the last axis places the spaces side
  by side; ``Flatten`` repeats them once per spatial position (channels-last order:
  ``row = position * channels + channel``). Layers whose outputs meet in an ``Add`` (also
  ``Subtract``, ``Average``, ``Maximum``, ``Minimum``) share one space: a *group*, pruned
  with the same channel indices.
- **What is not pruned.** A space is left whole when it reaches the model output (the
  final classifier is never shrunk), a layer whose channel layout cannot follow
  (``Multiply`` as in squeeze-and-excitation blocks, ``Reshape``, ``Permute``, RNN,
  attention, ``Softmax``, ``LayerNormalization``, unknown layers …), a grouped or
  channels-first convolution, or a shared layer. ``prunable_groups`` lists every group with
  the reason it is skipped.
- **Ranking.** A filter's score is the L1 norm of its kernel slice plus ``|bias|``; when
  the layer feeds a BatchNormalization directly, through the BN's affine map
  (``|gamma| / sqrt(var + eps)`` × L1 + ``|shifted beta|``). A group sums its members'
  scores and keeps the top ``(1 - ratio)`` channels (at least one).
- **Rebuild.** The model's config gets the new ``filters``/``units``; the kept weight
  slices are copied (output slices of the producers, input rows/slices of every layer that
  reads a pruned space). Nested models are flattened first (as loading does).

The ``prune_filters`` step: ``ratio`` is the global target (kernel-size-weighted mean over
the prunable groups; one group = one unit); ``per_layer`` ratios are kept as given and the
``allocation`` (uniform, or sensitivity: ``allocation.allocate`` on one-shot
``oneshot.filter_curves`` or a ``sensitivity_file``) spreads the rest. Then it shrinks,
re-estimates BatchNorm statistics and fine-tunes (teacher-guided by default:
``training.fit(..., guided=(temperature, alpha))``, BatchNorm momentum at most 0.9 meanwhile).
Order: before ``prune``/``cluster``/``qat`` (they work on the narrower layers).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.errors import BadInputError, FeatherweightError, UnsupportedModelError
from engine.techniques.registry import (
    EPOCHS_HELP,
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    guided_of,
    guided_summary,
    learning_rate_knob,
    register,
    sensitivity_file_knob,
    teacher_knobs,
)

# Layers that start a channel space, with the config key of their width.
PRODUCERS = {
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Conv3D": "filters",
    "SeparableConv1D": "filters",
    "SeparableConv2D": "filters",
    "Dense": "units",
}
_CONV_PRODUCERS = tuple(n for n in PRODUCERS if n != "Dense")
DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
MERGES = ("Add", "Subtract", "Average", "Maximum", "Minimum")
# Weightless, per-channel layers: output channel j is a function of input channel j only.
PASS_THROUGH = (
    "ReLU",
    "LeakyReLU",
    "ELU",
    "ThresholdedReLU",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianDropout",
    "GaussianNoise",
    "AlphaDropout",
    "ActivityRegularization",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
)
_CHANNEL_ACTIVATIONS = ("softmax", "log_softmax")  # mix channels: not pass-through


# ----------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Seg:
    """A run of channels of a tensor: ``size`` channels of space ``space`` (None: a fixed
    run that is never pruned), each repeated ``factor`` times (depth multipliers)."""

    space: int | None
    size: int | None
    factor: int = 1

    @property
    def width(self) -> int | None:
        return None if self.size is None else self.size * self.factor


@dataclass(frozen=True)
class _Desc:
    """The channel layout of a tensor's last axis; ``spatial``: positions after Flatten."""

    segs: tuple[_Seg, ...]
    spatial: int | None = None

    @property
    def width(self) -> int | None:
        widths = [s.width for s in self.segs]
        return sum(w for w in widths if w is not None) if None not in widths else None


def _fixed(n: int | None) -> _Desc:
    return _Desc((_Seg(None, n),))


@dataclass(frozen=True)
class Group:
    """Producers whose outputs share one channel space (joined by ``Add``), the layers whose
    channels follow them (BatchNorm, depthwise) and, when it is not pruned, why."""

    names: tuple[str, ...]
    channels: int
    followers: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def prunable(self) -> bool:
        return self.reason is None


@dataclass
class _Analysis:
    model: Any
    producers: dict[int, list[str]] = field(default_factory=dict)  # space -> producer names
    sizes: dict[int, int] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)
    reasons: dict[int, list[str]] = field(default_factory=dict)
    followers: dict[int, list[str]] = field(default_factory=dict)
    space_of: dict[str, int] = field(default_factory=dict)  # producer -> its space
    inputs: dict[str, _Desc] = field(default_factory=dict)  # reading layer -> input layout
    bn_after: dict[str, str] = field(default_factory=dict)  # producer -> the BN it feeds only

    def new_space(self, name: str, size: int) -> int:
        s = len(self.parent)
        self.parent[s] = s
        self.producers[s] = [name]
        self.sizes[s] = size
        self.reasons[s] = []
        self.followers[s] = []
        self.space_of[name] = s
        return s

    def root(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[rb] = ra

    def freeze(self, desc: _Desc, reason: str) -> None:
        for seg in desc.segs:
            if seg.space is not None:
                self.reasons[seg.space].append(reason)

    def follow(self, desc: _Desc, name: str) -> None:
        for seg in desc.segs:
            if seg.space is not None:
                self.followers[seg.space].append(name)

    def groups(self) -> list[Group]:
        members: dict[int, list[int]] = {}
        for s in self.parent:
            members.setdefault(self.root(s), []).append(s)
        out = []
        for spaces in members.values():
            names = tuple(n for s in spaces for n in self.producers[s])
            followers = tuple(dict.fromkeys(f for s in spaces for f in self.followers[s]))
            reasons = list(dict.fromkeys(r for s in spaces for r in self.reasons[s]))
            reason = "; ".join(reasons[:3]) + (" …" if len(reasons) > 3 else "") or None
            out.append(Group(names, self.sizes[spaces[0]], followers, reason))
        order = {name: i for i, name in enumerate(self.space_of)}
        return sorted(out, key=lambda g: order[g.names[0]])


def _is_ref(value: Any, names: set[str]) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) >= 3
        and isinstance(value[0], str)
        and value[0] in names
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    )


def _all_refs(value: Any, names: set[str]) -> list[tuple[str, int, int]]:
    """Every ``[layer, node, tensor]`` reference inside a stored node (kwargs too)."""
    if _is_ref(value, names):
        found = [(value[0], value[1], value[2])]
        if len(value) > 3:
            found += _all_refs(value[3:], names)
        return found
    if isinstance(value, dict):
        return [r for v in value.values() for r in _all_refs(v, names)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _all_refs(v, names)]
    return []


def _positional(node: Any, names: set[str]) -> list[tuple[str, int, int]]:
    if _is_ref(node, names):
        return [(node[0], node[1], node[2])]
    return [(r[0], r[1], r[2]) for r in node if _is_ref(r, names)]


def _graph(model: Any) -> tuple[list[tuple[str, list[Any]]], list[tuple[str, int, int]]]:
    """``[(layer name, stored inbound nodes)]`` in a topological order, and the output
    references, for a Sequential or Functional Keras 2 model."""
    config = model.get_config()
    if type(model).__name__ == "Sequential":
        entries = config["layers"]
        out: list[tuple[str, list[Any]]] = []
        prev: str | None = None
        if entries and entries[0]["class_name"] != "InputLayer":
            prev = "__input__"
            out.append((prev, []))
        for entry in entries:
            name = entry["config"]["name"]
            out.append((name, [] if prev is None else [[[prev, 0, 0, {}]]]))
            prev = name
        return out, [(prev or "", 0, 0)]
    nodes = {e["name"]: e.get("inbound_nodes", []) for e in config["layers"]}
    names = set(nodes)
    order: list[tuple[str, list[Any]]] = []
    done: set[str] = set()
    pending = [e["name"] for e in config["layers"]]
    while pending:
        rest = []
        for name in pending:
            deps = {r[0] for r in _all_refs(nodes[name], names)}
            if deps <= done:
                order.append((name, nodes[name]))
                done.add(name)
            else:
                rest.append(name)
        if len(rest) == len(pending):
            raise UnsupportedModelError("cannot order the layers of this model (a cycle?)")
        pending = rest
    outputs = [(r[0], r[1], r[2]) for r in config["output_layers"] if _is_ref(r, names)]
    return order, outputs


def _out_shape(layer: Any, node: int = 0) -> tuple[Any, ...] | None:
    try:
        shape = layer.get_output_shape_at(node)
    except Exception:  # noqa: BLE001 - multi-output or unbuilt layers
        return None
    if isinstance(shape, list):
        return None
    return tuple(shape)


def _in_shape(layer: Any) -> tuple[Any, ...] | None:
    try:
        shape = layer.get_input_shape_at(0)
    except Exception:  # noqa: BLE001
        return None
    return tuple(shape) if isinstance(shape, tuple) else None


def _channels_last(layer: Any) -> bool:
    fmt = getattr(layer, "data_format", None)
    return fmt in (None, "channels_last")


def _last_axis(axis: Any, rank: int | None) -> bool:
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis == -1 or (rank is not None and axis == rank - 1)


def _merge_compatible(descs: list[_Desc]) -> bool:
    first = descs[0]
    for d in descs[1:]:
        if d.spatial != first.spatial or len(d.segs) != len(first.segs):
            return False
        for a, b in zip(first.segs, d.segs, strict=True):
            if (a.space is None) != (b.space is None) or a.width != b.width:
                return False
            if a.space is not None and (a.factor != b.factor or a.size != b.size):
                return False
    return True


def _analyze(model: Any) -> _Analysis:
    """Follow every channel space through ``model`` (a flat Keras 2 model)."""
    an = _Analysis(model)
    order, outputs = _graph(model)
    names = {name for name, _ in order}
    by_name = {layer.name: layer for layer in model.layers}
    tensors: dict[tuple[str, int, int], _Desc] = {}
    consumers: dict[tuple[str, int, int], list[str]] = {}
    for name, nodes in order:
        layer = by_name.get(name)
        if layer is None:  # the implicit input of a Sequential model without InputLayer
            shape = model.inputs[0].shape
            tensors[(name, 0, 0)] = _fixed(shape[-1])
            continue
        cls = type(layer).__name__
        if cls == "InputLayer" or not nodes:
            shape = _out_shape(layer)
            tensors[(name, 0, 0)] = _fixed(shape[-1] if shape else None)
            continue
        what = f"feeds {cls} '{name}'"
        refs_per_node = [_all_refs(node, names) for node in nodes]
        for refs in refs_per_node:
            for ref in refs:
                consumers.setdefault(ref, []).append(name)
        if len(nodes) > 1:
            for refs in refs_per_node:
                for ref in refs:
                    an.freeze(tensors[ref], f"feeds shared layer '{name}'")
            for i in range(len(nodes)):
                shape = _out_shape(layer, i)
                tensors[(name, i, 0)] = _fixed(shape[-1] if shape else None)
            continue
        positional = _positional(nodes[0], names)
        ins = [tensors[r] for r in positional]
        extra = [r for r in refs_per_node[0] if r not in positional]
        out_shape = _out_shape(layer)
        out_width = out_shape[-1] if out_shape else None
        if extra or not ins:
            for ref in refs_per_node[0]:
                an.freeze(tensors[ref], what)
            tensors[(name, 0, 0)] = _fixed(out_width)
            continue
        tensors[(name, 0, 0)] = _layer_out(an, layer, cls, ins, what, out_width)
    for ref in outputs:
        if ref in tensors:
            an.freeze(tensors[ref], "model output")
    # A producer whose output only feeds one BatchNormalization: rank through the BN.
    for producer in an.space_of:
        readers = consumers.get((producer, 0, 0), [])
        if len(readers) == 1 and type(by_name[readers[0]]).__name__ == "BatchNormalization":
            an.bn_after[producer] = readers[0]
    return an


def _layer_out(
    an: _Analysis, layer: Any, cls: str, ins: list[_Desc], what: str, out_width: Any
) -> _Desc:
    """The output layout of one (single-call) layer; freezes what it cannot follow."""
    name = layer.name
    desc = ins[0]
    one_input = len(ins) == 1
    if cls in PRODUCERS and one_input:
        width = int(getattr(layer, PRODUCERS[cls]))
        space = an.new_space(name, width)
        problem = None
        if cls != "Dense" and not _channels_last(layer):
            problem = "channels-first convolution"
        elif int(getattr(layer, "groups", 1) or 1) != 1:
            problem = "grouped convolution"
        elif cls != "Dense" and desc.spatial is not None:
            problem = "convolution over a flattened tensor"
        if problem is not None:
            an.freeze(desc, f"{what} ({problem})")
            an.reasons[space].append(problem)
        else:
            an.inputs[name] = desc
        return _Desc((_Seg(space, width),))
    if cls in DEPTHWISE and one_input:
        if not _channels_last(layer) or desc.spatial is not None or desc.width is None:
            an.freeze(desc, what)
            return _fixed(out_width)
        m = int(layer.depth_multiplier)
        an.inputs[name] = desc
        an.follow(desc, name)
        return _Desc(tuple(_Seg(s.space, s.size, s.factor * m) for s in desc.segs))
    if cls == "BatchNormalization" and one_input:
        shape = _in_shape(layer)
        if not _last_axis(layer.axis, len(shape) if shape else None) or desc.spatial is not None:
            an.freeze(desc, f"{what} (not on the channel axis)")
            return _fixed(out_width)
        an.inputs[name] = desc
        an.follow(desc, name)
        return desc
    if one_input and (
        cls in PASS_THROUGH
        or (
            cls == "Activation"
            and str(getattr(layer.activation, "__name__", "")) not in _CHANNEL_ACTIVATIONS
        )
    ):
        if not _channels_last(layer):
            an.freeze(desc, f"{what} (channels first)")
            return _fixed(out_width)
        return desc  # (a flattened tensor has rank 2: only the elementwise ones take it)
    if cls == "Flatten" and one_input:
        shape = _in_shape(layer)
        spatial = shape[1:-1] if shape else None
        if (
            not _channels_last(layer)
            or desc.spatial is not None
            or spatial is None
            or any(d is None for d in spatial)
            or desc.width is None
        ):
            an.freeze(desc, what)
            return _fixed(out_width)
        return _Desc(desc.segs, int(np.prod(spatial)) if spatial else 1)
    if cls in MERGES and len(ins) > 1:
        if not _merge_compatible(ins):
            for d in ins:
                an.freeze(d, f"{what} (its inputs' channels cannot be matched)")
            return _fixed(out_width)
        for d in ins[1:]:
            for a, b in zip(ins[0].segs, d.segs, strict=True):
                if a.space is not None and b.space is not None:
                    an.union(a.space, b.space)
        return ins[0]
    if cls == "Concatenate":
        shape = _in_shape_any(layer)
        rank = len(shape) if shape else None
        if not _last_axis(layer.axis, rank) or any(
            d.spatial is not None or d.width is None for d in ins
        ):
            for d in ins:
                an.freeze(d, f"{what} (not on the channel axis)")
            return _fixed(out_width)
        return _Desc(tuple(s for d in ins for s in d.segs))
    for d in ins:
        an.freeze(d, what)
    return _fixed(out_width)


def _in_shape_any(layer: Any) -> tuple[Any, ...] | None:
    try:
        shape = layer.get_input_shape_at(0)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(shape, list) and shape:
        shape = shape[0]
    return tuple(shape) if isinstance(shape, tuple) else None


def prunable_groups(model: Any) -> list[Group]:
    """Every channel group of ``model`` (producers joined by Add; BN/depthwise followers)
    in layer order, with the reason when it is left whole (``Group.prunable``)."""
    return _analyze(_flat(model)[0]).groups()


# ----------------------------------------------------------------------------- shrink


@dataclass
class ShrinkResult:
    """The smaller model; per producer the filters/units kept and removed (every layer of a
    pruned group, also those that lost none); skipped producers with the reason."""

    model: Any
    kept: dict[str, int]
    removed: dict[str, int]
    skipped: dict[str, str]
    groups: list[Group] = field(default_factory=list)
    params_before: int = 0
    params_after: int = 0


def _value(w: Any) -> np.ndarray:
    return np.asarray(w.numpy() if hasattr(w, "numpy") else w)


def _named_weights(layer: Any) -> dict[str, np.ndarray]:
    out = {}
    for w in layer.weights:
        short = str(w.name).split(":")[0].split("/")[-1]
        out[short] = _value(w)
    return out


def filter_scores(layer: Any, bn: Any = None) -> np.ndarray:
    """L1 norm of each output filter/unit of a producer (its kernel slice + ``|bias|``),
    through the affine map of the BatchNormalization ``bn`` it feeds, if given."""
    w = _named_weights(layer)
    kernel = w.get("pointwise_kernel", w.get("kernel"))
    if kernel is None:
        raise UnsupportedModelError(f"layer '{layer.name}' has no kernel to rank")
    l1 = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0).astype(np.float64)
    bias = w.get("bias", np.zeros(kernel.shape[-1]))
    if bn is None:
        return l1 + np.abs(bias)
    b = _named_weights(bn)
    n = kernel.shape[-1]
    gamma = b.get("gamma", np.ones(n))
    beta = b.get("beta", np.zeros(n))
    scale = gamma / np.sqrt(b.get("moving_variance", np.ones(n)) + float(bn.epsilon))
    shift = beta + scale * (bias - b.get("moving_mean", np.zeros(n)))
    return np.abs(scale) * l1 + np.abs(shift)


def _indices(desc: _Desc | None, kept: dict[int, np.ndarray], an: _Analysis) -> Any:
    """Kept positions along a tensor's last axis (None: all of them)."""
    if desc is None or not any(s.space is not None and an.root(s.space) in kept for s in desc.segs):
        return None
    parts, offset = [], 0
    for seg in desc.segs:
        width = int(seg.width)  # type: ignore[arg-type]
        root = None if seg.space is None else an.root(seg.space)
        if root is None or root not in kept:
            parts.append(offset + np.arange(width))
        else:
            k = kept[root]
            parts.append(
                offset + (k[:, None] * seg.factor + np.arange(seg.factor)[None, :]).reshape(-1)
            )
        offset += width
    idx = np.concatenate(parts)
    if desc.spatial:
        idx = (np.arange(desc.spatial)[:, None] * offset + idx[None, :]).reshape(-1)
    return idx


def _expand(idx: Any, factor: int) -> Any:
    if idx is None:
        return None
    return (np.asarray(idx)[:, None] * factor + np.arange(factor)[None, :]).reshape(-1)


def _take(a: np.ndarray, idx: Any, axis: int) -> np.ndarray:
    return a if idx is None else np.take(a, idx, axis=axis)


def _sliced_weights(layer: Any, new_layer: Any, in_idx: Any, out_idx: Any) -> list[np.ndarray]:
    cls = type(layer).__name__
    out = []
    for w, target in zip(layer.weights, new_layer.weights, strict=True):
        a = _value(w)
        short = str(w.name).split(":")[0].split("/")[-1]
        if cls in PRODUCERS:
            if short == "kernel":
                a = _take(_take(a, in_idx, a.ndim - 2), out_idx, a.ndim - 1)
            elif short == "depthwise_kernel":
                a = _take(a, in_idx, a.ndim - 2)
            elif short == "pointwise_kernel":
                m = int(layer.depth_multiplier)
                a = _take(_take(a, _expand(in_idx, m), a.ndim - 2), out_idx, a.ndim - 1)
            elif short == "bias":
                a = _take(a, out_idx, 0)
        elif cls in DEPTHWISE:
            if short == "depthwise_kernel":
                a = _take(a, in_idx, a.ndim - 2)
            elif short == "bias":
                a = _take(a, _expand(in_idx, int(layer.depth_multiplier)), 0)
        elif cls == "BatchNormalization":
            a = _take(a, in_idx, 0)
        if tuple(a.shape) != tuple(target.shape):
            raise FeatherweightError(
                f"filter pruning: weight {w.name} of '{layer.name}' sliced to {a.shape}, "
                f"the smaller layer expects {tuple(target.shape)}"
            )
        out.append(a)
    return out


def _flat(model: Any) -> tuple[Any, list[str]]:
    """``model`` without nested models (inlined as loading does); the inlined names."""
    from engine.core.tfenv import keras2
    from engine.models.loading import flatten_model_config

    if type(model).__name__ not in ("Sequential", "Functional", "Model"):
        raise UnsupportedModelError(
            f"filter pruning needs a Sequential or Functional model, not {type(model).__name__}"
        )
    config = {"class_name": type(model).__name__, "config": model.get_config()}
    flat, paths, inlined = flatten_model_config(config)
    if not inlined:
        return model, []
    new = keras2().Model.from_config(flat["config"])
    for layer in new.layers:
        if not layer.weights:
            continue
        src: Any = model
        for part in paths.get(layer.name, (layer.name,)):
            src = src.get_layer(part)
        layer.set_weights(src.get_weights())
    return new, inlined


def _ratio_of(group: Group, ratios: dict[str, float]) -> float:
    given = [float(ratios[n]) for n in group.names if n in ratios]
    return min(given) if given else 0.0


def shrink(model: Any, ratios: dict[str, float]) -> ShrinkResult:
    """A smaller copy of ``model`` without the lowest-L1 filters/units.

    ``ratios``: fraction of filters/units to remove per producer layer name (a group of
    layers joined by Add takes the smallest ratio given to its members; layers not named
    lose nothing). ``model`` is not modified. Raises BadInputError for unknown names or
    ratios outside [0, 1).
    """
    from engine.core.tfenv import keras2

    for name, r in ratios.items():
        if not 0.0 <= float(r) < 1.0:
            raise BadInputError(f"filter pruning ratio of '{name}' must be in [0, 1), got {r}")
    flat, _inlined = _flat(model)
    an = _analyze(flat)
    known = {layer.name for layer in flat.layers}
    unknown = sorted(set(ratios) - known)
    if unknown:
        raise BadInputError(f"filter pruning: no layer named {', '.join(unknown)}")
    groups = an.groups()
    by_name = {layer.name: layer for layer in flat.layers}
    kept_idx: dict[int, np.ndarray] = {}
    kept: dict[str, int] = {}
    removed: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for group in groups:
        if not group.prunable:
            for n in group.names:
                skipped[n] = str(group.reason)
            continue
        root = an.root(an.space_of[group.names[0]])
        ratio = _ratio_of(group, ratios)
        n_keep = max(1, int(round(group.channels * (1.0 - ratio))))
        for n in group.names:
            kept[n], removed[n] = n_keep, group.channels - n_keep
        if n_keep >= group.channels:
            continue
        score = np.zeros(group.channels)
        for n in group.names:
            bn = an.bn_after.get(n)
            score += filter_scores(by_name[n], by_name[bn] if bn else None)
        order = np.argsort(-score, kind="stable")
        kept_idx[root] = np.sort(order[:n_keep])
    config = copy.deepcopy(flat.get_config())
    for entry in config["layers"]:
        entry.pop("build_config", None)
        cfg = entry["config"]
        space = an.space_of.get(cfg.get("name"))
        if space is not None and an.root(space) in kept_idx:
            cfg[PRODUCERS[entry["class_name"]]] = len(kept_idx[an.root(space)])
    k = keras2()
    if type(flat).__name__ == "Sequential":
        config.pop("build_input_shape", None)
        new = k.Sequential.from_config(config)
    else:
        new = k.Model.from_config(config)
    for layer in new.layers:
        if not layer.weights:
            continue
        old = by_name[layer.name]
        in_idx = _indices(an.inputs.get(layer.name), kept_idx, an)
        out_idx = None
        space = an.space_of.get(layer.name)
        if space is not None:
            out_idx = kept_idx.get(an.root(space))
        layer.set_weights(_sliced_weights(old, layer, in_idx, out_idx))
    return ShrinkResult(
        model=new,
        kept=kept,
        removed=removed,
        skipped=skipped,
        groups=groups,
        params_before=int(flat.count_params()),
        params_after=int(new.count_params()),
    )


# ----------------------------------------------------------------------------- the step


def kernel_sizes(model: Any, names: list[str]) -> dict[str, int]:
    """Number of kernel weights of each named producer (the allocation's layer sizes)."""
    by_name = {layer.name: layer for layer in model.layers}
    out = {}
    for n in names:
        w = _named_weights(by_name[n])
        out[n] = int(sum(a.size for k, a in w.items() if k.endswith("kernel")))
    return out


SENSITIVITY_GRID = (0.25, 0.5, 0.75, 0.9)


def _group_curve(curves: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One curve for a group from its members' curves: at each ratio the worst member
    (lowest accuracy, highest loss) - removing a group's channel hits all of them."""
    first = curves[0]
    out = []
    for i, entry in enumerate(first):
        same = [c[i] for c in curves if len(c) > i and c[i].get("ratio") == entry.get("ratio")]
        out.append(
            {
                "ratio": entry["ratio"],
                "accuracy": min(float(e["accuracy"]) for e in same),
                "loss": max(float(e["loss"]) for e in same),
            }
        )
    return out


def _sensitivity_curves(
    model: Any, names: list[str], step: dict[str, Any], context: TrainContext
) -> dict[str, list[dict[str, Any]]]:
    """Per-layer filter curves: from ``sensitivity_file`` or measured one-shot (val)."""
    reporter = context.reporter
    if step.get("sensitivity_file"):
        from pathlib import Path

        from engine.techniques.prune import read_sensitivity_curves

        curves = read_sensitivity_curves(step["sensitivity_file"], "filters")
        reporter.log(f"sensitivity allocation from {Path(step['sensitivity_file']).name}")
        return curves
    from engine.techniques.oneshot import filter_curves, filter_layers

    measurable = {layer.name for layer in filter_layers(model)}
    chosen = [n for n in names if n in measurable]
    reporter.log(
        f"sensitivity allocation: one-shot filter-removal curves of {len(chosen)} layer(s) on "
        f"the validation split at {', '.join(f'{r:g}' for r in SENSITIVITY_GRID)}"
    )
    return filter_curves(
        model,
        context.splits,
        context.output_kind,
        grid=SENSITIVITY_GRID,
        layers=chosen,
        split="val",
        reporter=reporter,
    )


def step_ratios(
    model: Any, step: dict[str, Any], context: TrainContext, groups: list[Group]
) -> tuple[dict[str, float], list[str]]:
    """Per-producer ratios and warnings. The step's ``ratio`` is the global target: the
    kernel-size-weighted mean over the prunable groups (a group of layers joined by Add is
    one unit with one ratio); ``per_layer`` values are kept as given (the smallest one
    when several members of a group are named) and the ``allocation`` rule spreads the rest.
    Raises BadInputError for unknown layers or an impossible target."""
    from engine.techniques.allocation import allocate

    units = {g.names[0]: list(g.names) for g in groups if g.prunable}
    skipped = {n: str(g.reason) for g in groups if not g.prunable for n in g.names}
    unit_of = {n: u for u, members in units.items() for n in members}
    warnings: list[str] = []
    target = float(step["ratio"])
    per_layer = {str(k): float(v) for k, v in (step.get("per_layer") or {}).items()}
    known = {layer.name for layer in model.layers}
    unknown = sorted(set(per_layer) - known)
    if unknown:
        raise BadInputError(
            f"per-layer filter ratios for unknown layer(s): {', '.join(unknown)} "
            f"(prunable: {', '.join(unit_of)})"
        )
    fixed: dict[str, float] = {}
    for name, value in per_layer.items():
        if name in skipped:
            warnings.append(f"per-layer ratio of '{name}' ignored: {skipped[name]}")
        elif name not in unit_of:
            warnings.append(f"per-layer ratio of '{name}' ignored: it has no filters/units")
        else:
            unit = unit_of[name]
            fixed[unit] = min(value, fixed.get(unit, value))
    sizes_by_layer = kernel_sizes(model, list(unit_of))
    sizes = {u: max(1, sum(sizes_by_layer[n] for n in m)) for u, m in units.items()}
    rule = str(step.get("allocation", "uniform"))
    curves = None
    if rule == "sensitivity":
        free = [u for u in units if u not in fixed]
        layer_curves = _sensitivity_curves(
            model, [n for u in free for n in units[u]], step, context
        )
        curves = {}
        for u in free:
            found = [layer_curves[n] for n in units[u] if layer_curves.get(n)]
            if found:
                curves[u] = _group_curve(found)
            else:  # e.g. a layer the one-shot measure does not take: the plain target
                fixed[u] = target
                warnings.append(f"no sensitivity curve for '{u}': removed {target:.0%}")
    max_value = min(0.95, max(0.9, target))
    allocated = allocate(
        rule, target, sizes, curves=curves, key="ratio", max_value=max_value, fixed=fixed
    )
    ratios = {n: float(allocated[u]) for u, members in units.items() for n in members}
    return ratios, warnings


def skipped_warning(skipped: dict[str, str]) -> str | None:
    """One warning naming the layers left whole, with their reasons."""
    if not skipped:
        return None
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        by_reason.setdefault(reason, []).append(name)
    parts = [f"{', '.join(names)} ({reason})" for reason, names in by_reason.items()]
    return "filter pruning left these layers whole: " + "; ".join(parts)


FINETUNE_BN_MOMENTUM = 0.9


@contextmanager
def _bn_momentum(model: Any, momentum: float) -> Iterator[None]:
    """BatchNorm moving statistics follow the narrower layers within a few epochs (Keras'
    MobileNetV2 uses 0.999: the validation curve would show stale statistics)."""
    layers = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = min(layer.momentum, momentum)
    try:
        yield
    finally:
        for layer, value in zip(layers, saved, strict=True):
            layer.momentum = value


def prune_filters(model: Any, step: dict[str, Any], context: TrainContext) -> StepResult:
    """The ``prune_filters`` step: allocate ratios, shrink, fine-tune; info and warnings."""
    from engine.techniques.training import fit, recalibrate_batchnorm

    reporter = context.reporter
    flat, inlined = _flat(model)
    groups = _analyze(flat).groups()
    if not any(g.prunable for g in groups):
        reasons = skipped_warning({n: str(g.reason) for g in groups for n in g.names})
        raise FeatherweightError(
            "no layer of this model can lose filters" + (f" ({reasons})" if reasons else "")
        )
    ratios, warnings = step_ratios(flat, step, context, groups)
    result = shrink(flat, ratios)
    if inlined:
        warnings.append(f"flattened nested model(s) {', '.join(inlined)} to prune filters")
    note = skipped_warning(result.skipped)
    if note:
        warnings.append(note)
    reporter.log(
        f"filter pruning: {result.params_before:,} -> {result.params_after:,} parameters "
        f"({sum(result.removed.values())} filters/units removed)"
    )
    pruned = result.model
    if recalibrate_batchnorm(pruned, context.splits):
        reporter.log("BatchNorm statistics re-estimated for the narrower layers")
    guided = guided_of(step)  # (fit trains on the labels alone when there is no teacher)
    if int(step["epochs"]) > 0:
        with _bn_momentum(pruned, FINETUNE_BN_MOMENTUM):
            fit(
                pruned,
                context,
                epochs=int(step["epochs"]),
                learning_rate=float(step["learning_rate"]),
                guided=guided,
            )
        recalibrate_batchnorm(pruned, context.splits)
    info = {
        "ratio": float(step["ratio"]),
        "allocation": step["allocation"],
        "ratios": {n: round(r, 4) for n, r in ratios.items()},
        "params_before": result.params_before,
        "params_after": result.params_after,
        "per_layer": {
            n: {"kept": result.kept[n], "removed": result.removed[n]} for n in result.kept
        },
        "skipped": result.skipped,
        "groups": [list(g.names) for g in result.groups if g.prunable and len(g.names) > 1],
        "teacher_guided": bool(
            guided is not None and context.teacher is not None and int(step["epochs"]) > 0
        ),
    }
    return StepResult(pruned, info=info, warnings=warnings)


def _summary(step: dict[str, Any]) -> str:
    extra = f", {len(step['per_layer'])} layer(s) set by hand" if step.get("per_layer") else ""
    return (
        f"{step['ratio'] * 100:.0f} % of filters/units removed ({step['allocation']}{extra}), "
        f"fine-tuned {step['epochs']} epoch(s)" + guided_summary(step)
    )


class PruneFilters(Technique):
    spec = StepSpec(
        "prune_filters",
        "Filter pruning",
        "Remove whole filters/units with the smallest L1 norm and rebuild a smaller model "
        "(smaller and faster file, no sparse kernels needed), then fine-tune.",
        (
            Knob(
                "ratio",
                "float",
                0.5,
                "Fraction of the filters/units of the prunable Conv/Dense layers removed "
                "(weighted by their size when the allocation or per-layer ratios vary it).",
                minimum=0.0,
                maximum=0.95,
            ),
            Knob(
                "allocation",
                "choice",
                "uniform",
                "Uniform removes the same fraction everywhere; sensitivity measures each "
                "layer on the validation split and removes more where it hurts least.",
                choices=("uniform", "sensitivity"),
            ),
            Knob(
                "per_layer",
                "map",
                None,
                "Ratios of named layers (e.g. conv1=0.25); the allocation spreads the rest of "
                "the target over the other layers.",
                label="Per-layer ratios",
                minimum=0.0,
                maximum=0.95,
                optional=True,
            ),
            sensitivity_file_knob(),
            Knob("epochs", "int", 10, EPOCHS_HELP, minimum=0, maximum=1000),
            learning_rate_knob(1e-3),
            *teacher_knobs(guided=True),
        ),
        stage_label="Pruning filters",
        order=15,
        must_precede=("prune", "cluster", "qat"),
        precede_reason="changes the layers' shapes",
        summary=_summary,
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        return prune_filters(model, step, context)


register(PruneFilters())
