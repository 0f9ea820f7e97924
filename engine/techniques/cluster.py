"""Weight clustering (tfmot ``cluster_weights``), fine-tuned, then stripped.

Each supported Conv/Dense/DepthwiseConv kernel is restricted to ``clusters`` shared values.
With ``preserve_sparsity`` (tfmot's sparsity-preserving clustering) the zeros made by an
earlier pruning step stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.errors import FeatherweightError
from engine.models.support import cluster_support, not_compressed
from engine.techniques.registry import (
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    learning_rate_knob,
    register,
)
from engine.techniques.training import (
    effective_kernels,
    fit,
    fresh_copy,
    is_kernel_layer,
    recalibrate_batchnorm,
)

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
    warnings: list[str] = field(default_factory=list)


def cluster_model(model: Any, step: dict[str, Any], context: TrainContext) -> ClusterResult:
    """Cluster ``model`` as ``step`` (a cluster step) says; returns the stripped model.

    Wraps the layers ``cluster_support`` clusters whose kernel has at least ``clusters``
    weights."""
    from engine.core.tfenv import keras2, tfmot

    k, mot = keras2(), tfmot()
    reporter = context.reporter
    cl = mot.clustering.keras
    n = int(step["clusters"])
    init = getattr(cl.CentroidInitialization, INIT_NAMES[step["init"]])
    names = [
        layer.name
        for layer in model.layers
        if cluster_support(layer).compresses
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
    cannot = not_compressed(model, "cluster")
    warnings = [f"left unclustered (clustering cannot take them): {cannot}"] if cannot else []

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
    fit(wrapped, context, epochs=step["epochs"], learning_rate=step["learning_rate"])
    stripped = cl.strip_clustering(wrapped)
    if recalibrate_batchnorm(stripped, context.splits):  # the weights jumped to centroids
        reporter.log("BatchNorm statistics re-estimated for the clustered weights")
    kernels = effective_kernels(stripped)
    distinct = {name: int(len(np.unique(kernels[name]))) for name in names if name in kernels}
    per_layer = {name: float((kv == 0).mean()) for name, kv in kernels.items()}
    return ClusterResult(stripped, names, distinct, per_layer, warnings)


def _summary(step: dict[str, Any]) -> str:
    keep = ", keeping pruned zeros" if step.get("preserve_sparsity") else ""
    return f"{step['clusters']} shared values per layer{keep}, {step['epochs']} epoch(s)"


class Cluster(Technique):
    spec = StepSpec(
        "cluster",
        "Weight clustering",
        "Share weights: each layer's weights take one of a few centroid values.",
        (
            Knob(
                "clusters",
                "int",
                16,
                "Number of distinct values per weight tensor.",
                minimum=2,
                maximum=256,
            ),
            Knob(
                "init",
                "choice",
                "kmeans_plus_plus",
                "How centroids are first placed.",
                choices=("kmeans_plus_plus", "linear", "density_based", "random"),
                label="Centroid init",
            ),
            Knob(
                "preserve_sparsity",
                "bool",
                True,
                "Keep the zeros made by pruning (sparsity-preserving clustering).",
            ),
            epochs_knob(2),
            learning_rate_knob(1e-5),
        ),
        stage_label="Clustering",
        order=30,
        summary=_summary,
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        result = cluster_model(model, step, context)
        info = {
            "clustered_layers": result.clustered_layers,
            "distinct_values": result.distinct_values,
            "per_layer_sparsity": result.per_layer_sparsity,
        }
        return StepResult(result.model, info=info, warnings=result.warnings)


register(Cluster())
