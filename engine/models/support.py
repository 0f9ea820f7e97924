"""What each technique does with each layer: the one source of truth.

The techniques pick the layers they wrap with these functions (``prune_support(layer)
.compresses`` …), and ``inspect`` shows the same verdicts per layer (the Model tab's
Prune / Cluster / QAT columns), so what the table says is what a run does.

- ``supported``: the technique runs on a model holding this layer (the layer is wrapped, or
  left as it is); False when tfmot has no rule for it (the reason says so).
- ``compresses``: the technique wraps this layer. Step knobs narrow it further at run time
  (prune's skip_first/skip_last and 2:4, cluster's kernels smaller than the cluster count);
  the technique logs the layers it leaves out.
- ``effect`` (``Support.effect``, and ``technique_support(...)["effects"]`` for ``inspect``):
  one of ``EFFECTS`` — ``compressed`` (its weights change), ``kept_dense`` (supported: a run
  on a model holding it works, but the layer's weights stay as they are — e.g. tfmot's
  ``prune_low_magnitude`` wraps ``DepthwiseConv2D`` and ``BatchNormalization`` and prunes
  none of their weights; verified on tfmot 0.8.1: 0 % zeros after an 80 % schedule),
  ``no_weights`` (nothing to compress), ``unsupported``, ``input``. ``EFFECT_MARKS`` are the
  marks the Model tab and the command line show for them.

tfmot's own registries (PruneRegistry, ClusteringRegistry, Default8BitQuantizeRegistry)
explain the layers Featherweight leaves alone. Light at import (tfmot loads on first use).
Lives in ``engine.models`` because inspection (this layer) and the techniques (above it)
both need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from engine.models.safety import MODEL_CLASSES

# Layers whose kernel counts for sparsity (metrics definition: Conv/Dense/DepthwiseConv
# kernels) and the attributes that hold it, in lookup order.
KERNEL_LAYER_TYPES = ("Conv1D", "Conv2D", "Conv3D", "Dense", "DepthwiseConv2D", "SeparableConv2D")
KERNEL_ATTRS = ("kernel", "depthwise_kernel", "pointwise_kernel")
# Pruned: tfmot prunes their ``kernel``. tfmot 0.8.1 registers no prunable weight for
# DepthwiseConv2D and only the pointwise kernel of separable convolutions (not the kernel
# sparsity is measured on), so those stay dense and are reported as such.
PRUNE_TYPES = ("Conv1D", "Conv2D", "Conv3D", "Dense")
# Layers whose other weight matrices are pruned through tfmot's registry: the pointwise kernel
# of separable convolutions, an Embedding's table, an RNN cell's kernels (also inside
# Bidirectional), MultiHeadAttention's projections. The file's sparsity counts them all
# (engine.tflite.metrics).
PRUNE_REGISTRY_TYPES = (
    "SeparableConv1D",
    "SeparableConv2D",
    "Embedding",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "MultiHeadAttention",
)
# Layers whose weights the measurement names (a tensor of the file is attributed to one of
# them): the kernel layers plus the registry ones and Bidirectional.
WEIGHT_LAYER_TYPES = KERNEL_LAYER_TYPES + PRUNE_REGISTRY_TYPES + ("Bidirectional",)
PRUNE_M_BY_N_TYPES = ("Conv2D", "Dense")  # tfmot's 2:4 pruning supports these only
# Clustered: tfmot registers no clusterable weight for DepthwiseConv2D either.
CLUSTER_TYPES = ("Conv1D", "Conv2D", "Conv3D", "Dense")
# 8-bit QAT folds a BatchNormalization only into a preceding linear one of these.
BN_FOLD_PARENTS = ("Conv2D", "DepthwiseConv2D", "Dense")
TECHNIQUES = ("prune", "cluster", "qat")
TECHNIQUE_NAMES = {"prune": "Pruning", "cluster": "Clustering", "qat": "8-bit QAT"}
EFFECTS = ("compressed", "kept_dense", "no_weights", "unsupported", "input")
# One mark per effect (Model tab cells, ``featherweight inspect``).
EFFECT_MARKS = {
    "compressed": "✓",
    "kept_dense": "○",
    "no_weights": "·",
    "unsupported": "✗",
    "input": "—",
}
EFFECT_LEGEND = {
    "compressed": "compressed",
    "kept_dense": "supported but left dense",
    "no_weights": "no weights to compress",
    "unsupported": "not supported",
    "input": "input",
}


@dataclass(frozen=True)
class Support:
    """One technique's verdict on one layer."""

    supported: bool
    reason: str
    compresses: bool = False
    # Supported, holds weights, and the technique leaves them as they are.
    dense: bool = False
    input: bool = False

    @property
    def effect(self) -> str:
        """What a run does to this layer: one of ``EFFECTS``."""
        if self.input:
            return "input"
        if not self.supported:
            return "unsupported"
        if self.compresses:
            return "compressed"
        return "kept_dense" if self.dense else "no_weights"

    def as_dict(self) -> dict[str, Any]:
        return {"supported": bool(self.supported), "reason": self.reason}


@cache
def _registries() -> tuple[Any, Any, Any]:
    from engine.core.tfenv import tfmot

    tfmot()
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (
        ClusteringRegistry,
    )
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as q8,
    )
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import (
        PruneRegistry,
    )

    return PruneRegistry, ClusteringRegistry, q8.Default8BitQuantizeRegistry()


def _supports(registry: Any, layer: Any) -> bool:
    try:
        return bool(registry.supports(layer))
    except Exception:  # noqa: BLE001 - the registries inspect layer internals
        return False


def _cls(layer: Any) -> str:
    return type(layer).__name__


def not_compressed(model: Any, technique: str) -> str | None:
    """The model's weight layers ``technique`` ("prune", "cluster") cannot compress, grouped by
    class with the reason ("3 DepthwiseConv2D (kept dense (tfmot prunes none of its
    weights)): dw1, dw2, dw3"), or None when it takes them all."""
    check = SUPPORT[technique]
    groups: dict[tuple[str, str], list[str]] = {}
    for layer in getattr(model, "layers", []) or []:
        if is_weight_layer(layer) and not check(layer).compresses:
            groups.setdefault((_cls(layer), check(layer).reason), []).append(layer.name)
    if not groups:
        return None
    parts = []
    for (cls, reason), names in groups.items():
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"{len(names)} {cls} ({reason}): {shown}")
    return "; ".join(parts)


def unwrap(layer: Any, stop_at: tuple[str, ...] = ()) -> Any:
    """The layer inside any wrappers (tfmot's pruning/cluster/QAT wrappers, Keras'
    ``Wrapper``s): follows ``.layer`` at most 5 times, and stops at a class in ``stop_at``
    (``("Bidirectional",)`` keeps a bidirectional RNN whole)."""
    for _ in range(5):
        if not hasattr(layer, "layer") or _cls(layer) in stop_at:
            break
        layer = layer.layer
    return layer


def output_chain(layer: Any, pass_through: tuple[str, ...], limit: int = 10) -> list[Any]:
    """``layer`` and the layers feeding it, followed back while the current one's class is
    in ``pass_through`` and it has a single parent (at most ``limit`` steps). The last one
    is where the walk stopped: e.g. the Dense whose output a Dropout/Flatten passes on."""
    chain = [layer]
    for _ in range(limit):
        if type(layer).__name__ not in pass_through:
            break
        try:
            parents = layer._inbound_nodes[0].inbound_layers
        except (AttributeError, IndexError):
            break
        if isinstance(parents, list):
            if len(parents) != 1:
                break
            parents = parents[0]
        layer = parents
        chain.append(layer)
    return chain


def is_weight_layer(layer: Any) -> bool:
    """Whether the layer inside any tfmot wrappers holds weight matrices the measurement
    names (kernels, Embedding tables, RNN and attention weights): ``WEIGHT_LAYER_TYPES``."""
    return _cls(unwrap(layer, stop_at=("Bidirectional",))) in WEIGHT_LAYER_TYPES


def is_kernel_layer(layer: Any) -> bool:
    """Whether the layer inside any tfmot wrappers holds a kernel that sparsity counts."""
    return _cls(unwrap(layer)) in KERNEL_LAYER_TYPES


def prune_support(layer: Any) -> Support:
    cls = _cls(layer)
    if cls in PRUNE_TYPES:
        return Support(True, "prunes kernel", compresses=True)
    prune_reg = _registries()[0]
    if not _supports(prune_reg, layer):
        return Support(False, f"tfmot has no pruning rule for {cls}")
    names = prune_reg._LAYERS_WEIGHTS_MAP.get(layer.__class__)
    if names is None and prune_reg._is_rnn_layer(layer):
        names = ["cell kernels"]
    if names and cls in PRUNE_REGISTRY_TYPES:
        what = ", ".join(n.split(".")[-1] if "." in n else n for n in names)
        return Support(True, f"prunes {what}", compresses=True)
    if names:
        return Support(True, f"kept dense (Featherweight does not prune {cls} weights)", dense=True)
    if layer.weights:
        # tfmot wraps it (PruneRegistry lists it with no prunable weight): the run keeps it
        # dense — DepthwiseConv2D, BatchNormalization, LayerNormalization...
        return Support(True, "kept dense (tfmot prunes none of its weights)", dense=True)
    return Support(True, "no weights")


def cluster_support(layer: Any) -> Support:
    cls = _cls(layer)
    if cls in CLUSTER_TYPES:
        return Support(True, "clusters kernel", compresses=True)
    cluster_reg = _registries()[1]
    if not _supports(cluster_reg, layer):
        return Support(False, f"tfmot has no clustering rule for {cls}")
    if not layer.trainable_weights:
        return Support(True, "no weights")
    if cluster_reg._LAYERS_WEIGHTS_MAP.get(layer.__class__) == []:
        return Support(True, "kept as is (tfmot clusters none of its weights)", dense=True)
    return Support(
        True, f"kept as is (Featherweight clusters {', '.join(CLUSTER_TYPES)} only)", dense=True
    )


def qat_support(layer: Any) -> Support:
    cls = _cls(layer)
    if cls == "BatchNormalization":
        parent = _single_parent(layer)
        pcls = _cls(parent) if parent is not None else ""
        act = getattr(getattr(parent, "activation", None), "__name__", "")
        if pcls in BN_FOLD_PARENTS and act == "linear":
            return Support(True, f"folded into the preceding {pcls}", compresses=True)
        return Support(False, "8-bit QAT only folds BatchNorm after a linear Conv/Dense")
    if cls in ("SeparableConv1D", "SeparableConv2D"):
        return Support(True, "split into depthwise + pointwise conv by tfmot", compresses=True)
    if _supports(_registries()[2], layer):
        has_w = bool(layer.weights)
        return Support(True, "weights + activations" if has_w else "activations", compresses=True)
    return Support(False, f"not in tfmot's default 8-bit scheme ({cls})")


SUPPORT = {"prune": prune_support, "cluster": cluster_support, "qat": qat_support}


def compressed_layers(model: Any, technique: str) -> list[str]:
    """Names of the layers of ``model`` the technique wraps (before step knobs narrow it)."""
    check = SUPPORT[technique]
    return [
        layer.name
        for layer in model.layers
        if _cls(layer) != "InputLayer" and check(layer).compresses
    ]


def layer_support(layer: Any, subclassed: bool = False) -> dict[str, Support]:
    """Each technique's ``Support`` for one layer of a model (``subclassed``: the model is)."""
    cls = _cls(layer)
    if subclassed:
        why = "inside a subclassed model: tfmot needs Sequential/Functional"
        return {t: Support(False, why) for t in TECHNIQUES}
    if cls == "InputLayer":
        return {t: Support(True, "input", input=True) for t in TECHNIQUES}
    if getattr(layer, "_is_graph_network", False) or cls in MODEL_CLASSES:
        why = "nested model: tfmot cannot wrap a model inside a model"
        return {t: Support(False, why) for t in TECHNIQUES}
    return {t: SUPPORT[t](layer) for t in TECHNIQUES}


def technique_support(layer: Any, subclassed: bool = False) -> dict[str, dict[str, Any]]:
    """The ``inspect`` row entries: per technique (prune / cluster / qat) ``{"supported",
    "reason"}``, and ``"effects"``: ``{technique: effect}`` (one of ``EFFECTS``)."""
    support = layer_support(layer, subclassed)
    out: dict[str, dict[str, Any]] = {t: s.as_dict() for t, s in support.items()}
    out["effects"] = {t: s.effect for t, s in support.items()}
    return out


def effect_tooltip(technique: str, effect: str, reason: str, class_name: str = "") -> str:
    """One sentence saying what a run of ``technique`` does to a layer (Model tab tooltip)."""
    name = TECHNIQUE_NAMES.get(technique, technique)
    what = f"this {class_name}" if class_name else "this layer"
    why = f" ({reason})" if reason else ""
    if effect == "compressed":
        return reason or f"{name} compresses {what}."
    if effect == "kept_dense":
        # The reason reads "kept dense (…)": say it once, with what is inside the brackets.
        inner = reason.partition("(")[2].rstrip(")") if "(" in reason else reason
        because = f": {inner}" if inner else ""
        return (
            f"Supported by {name.lower()} but left dense: a run works on a model holding "
            f"{what}, yet its weights stay as they are{because}. It does not get smaller."
        )
    if effect == "no_weights":
        return f"Nothing to compress: {what} has no weights."
    if effect == "unsupported":
        return f"Not supported by {name.lower()}{why}."
    return reason


def _single_parent(layer: Any) -> Any:
    try:
        parents = layer._inbound_nodes[0].inbound_layers
    except (AttributeError, IndexError):
        return None
    if isinstance(parents, list):
        return parents[0] if len(parents) == 1 else None
    return parents
