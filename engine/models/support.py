"""What each technique does with each layer: the one source of truth.

The techniques pick the layers they wrap with these functions (``prune_support(layer)
.compresses`` …), and ``inspect`` shows the same verdicts per layer (the Model tab's
Prune / Cluster / QAT columns), so what the table says is what a run does.

- ``supported``: the technique runs on a model holding this layer (the layer is wrapped, or
  left as it is); False when tfmot has no rule for it (the reason says so).
- ``compresses``: the technique wraps this layer. Step knobs narrow it further at run time
  (prune's skip_first/skip_last and 2:4, cluster's kernels smaller than the cluster count);
  the technique logs the layers it leaves out.

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
PRUNE_M_BY_N_TYPES = ("Conv2D", "Dense")  # tfmot's 2:4 pruning supports these only
# Clustered: tfmot registers no clusterable weight for DepthwiseConv2D either.
CLUSTER_TYPES = ("Conv1D", "Conv2D", "Conv3D", "Dense")
# 8-bit QAT folds a BatchNormalization only into a preceding linear one of these.
BN_FOLD_PARENTS = ("Conv2D", "DepthwiseConv2D", "Dense")
TECHNIQUES = ("prune", "cluster", "qat")


@dataclass(frozen=True)
class Support:
    """One technique's verdict on one layer."""

    supported: bool
    reason: str
    compresses: bool = False

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


def is_kernel_layer(layer: Any) -> bool:
    """Whether the layer inside any tfmot wrappers holds a kernel that sparsity counts."""
    seen = 0
    while hasattr(layer, "layer") and seen < 5:
        layer = layer.layer
        seen += 1
    return _cls(layer) in KERNEL_LAYER_TYPES


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
    if names:
        return Support(True, f"kept dense (Featherweight prunes {', '.join(PRUNE_TYPES)} only)")
    if layer.weights:
        return Support(True, "kept dense (tfmot prunes none of its weights)")
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
    return Support(True, f"kept as is (Featherweight clusters {', '.join(CLUSTER_TYPES)} only)")


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


def technique_support(layer: Any, subclassed: bool = False) -> dict[str, dict[str, Any]]:
    """Per technique (prune / cluster / qat): ``{"supported", "reason"}`` for ``inspect``."""
    cls = _cls(layer)
    if subclassed:
        why = "inside a subclassed model: tfmot needs Sequential/Functional"
        return {t: Support(False, why).as_dict() for t in TECHNIQUES}
    if cls == "InputLayer":
        return {t: Support(True, "input").as_dict() for t in TECHNIQUES}
    if getattr(layer, "_is_graph_network", False) or cls in MODEL_CLASSES:
        why = "nested model: tfmot cannot wrap a model inside a model"
        return {t: Support(False, why).as_dict() for t in TECHNIQUES}
    return {t: SUPPORT[t](layer).as_dict() for t in TECHNIQUES}


def _single_parent(layer: Any) -> Any:
    try:
        parents = layer._inbound_nodes[0].inbound_layers
    except (AttributeError, IndexError):
        return None
    if isinstance(parents, list):
        return parents[0] if len(parents) == 1 else None
    return parents
