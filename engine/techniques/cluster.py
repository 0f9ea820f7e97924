"""Weight clustering (tfmot ``cluster_weights``), fine-tuned, then stripped.

Each supported Conv/Dense/DepthwiseConv kernel is restricted to ``clusters`` shared values.
With ``preserve_sparsity`` (tfmot's sparsity-preserving clustering) the zeros made by an
earlier pruning step stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.errors import FeatherweightError
from engine.core.events import Reporter
from engine.techniques.training import (
    SizeEstimator,
    effective_kernels,
    fit,
    fresh_copy,
    is_kernel_layer,
)

# tfmot 0.8.1 registers no clusterable weight for DepthwiseConv2D: it stays as it is.
CLUSTERABLE_TYPES = ("Conv1D", "Conv2D", "Conv3D", "Dense")
INIT_NAMES = {
    "kmeans_plus_plus": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density_based": "DENSITY_BASED",
    "random": "RANDOM",
}


@dataclass
class ClusterResult:
    model: Any
    clustered_layers: list[str]
    distinct_values: dict[str, int]  # per layer, after stripping
    per_layer_sparsity: dict[str, float]


def cluster_model(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    *,
    batch_size: int,
    seed: int,
    reporter: Reporter,
    from_logits: bool,
    estimator: SizeEstimator | None = None,
) -> ClusterResult:
    """Cluster ``model`` as ``step`` (a cluster step) says; returns the stripped model."""
    from engine.core.tfenv import keras2, tfmot

    k, mot = keras2(), tfmot()
    cl = mot.clustering.keras
    n = int(step["clusters"])
    init = getattr(cl.CentroidInitialization, INIT_NAMES[step["init"]])
    names = [
        layer.name
        for layer in model.layers
        if type(layer).__name__ in CLUSTERABLE_TYPES
        and all(int(np.prod(w.shape)) >= n for w in layer.weights[:1])
    ]
    if not names:
        raise FeatherweightError(
            f"no layer of this model can be clustered into {n} clusters (needs Conv or Dense)"
        )
    preserve = bool(step["preserve_sparsity"])
    left = [
        layer.name for layer in model.layers if is_kernel_layer(layer) and layer.name not in names
    ]
    if left:
        reporter.log(f"not clustered (too small or unsupported by tfmot): {', '.join(left)}")

    def wrap(layer: Any) -> Any:
        if layer.name in names:
            return cl.cluster_weights(
                layer,
                number_of_clusters=n,
                cluster_centroids_init=init,
                preserve_sparsity=preserve,
            )
        return layer

    wrapped = k.models.clone_model(fresh_copy(model), clone_function=wrap)
    reporter.log(
        f"clustering {len(names)} layer(s) into {n} clusters"
        + (" keeping zeros" if preserve else "")
    )
    fit(
        wrapped,
        splits,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        batch_size=batch_size,
        seed=seed,
        reporter=reporter,
        from_logits=from_logits,
        estimator=estimator,
    )
    stripped = cl.strip_clustering(wrapped)
    kernels = effective_kernels(stripped)
    distinct = {name: int(len(np.unique(kernels[name]))) for name in names if name in kernels}
    per_layer = {name: float((kv == 0).mean()) for name, kv in kernels.items()}
    return ClusterResult(stripped, names, distinct, per_layer)
