"""Weight clustering (tfmot ``cluster_weights``), fine-tuned, then stripped.

Each supported Conv/Dense/DepthwiseConv kernel is restricted to ``clusters`` shared values.
With ``preserve_sparsity`` (tfmot's sparsity-preserving clustering) the zeros made by an
earlier pruning step stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.errors import BadInputError, FeatherweightError
from engine.models.support import cluster_support, not_compressed
from engine.techniques.registry import (
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    guided_of,
    guided_summary,
    learning_rate_knob,
    register,
    teacher_knobs,
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
    clusters: dict[str, int] = field(default_factory=dict)  # per clustered layer


def cluster_counts(model: Any, step: dict[str, Any]) -> tuple[dict[str, int], list[str]]:
    """``({layer: cluster count}, skipped)``: the layers ``cluster_support`` clusters, minus
    ``skip``, each with its ``per_layer`` count or ``clusters``; a layer whose kernel has
    fewer weights than its count is left out, and so, when the step keeps zeros, is one with
    fewer non-zero weights than its count (a small, very sparse layer: it already holds no
    more distinct values than that, and tfmot's k-means++ cannot sample more centroids than
    points). Raises BadInputError for unknown names."""
    n = int(step["clusters"])
    per_layer = dict(step.get("per_layer") or {})
    skip = list(step.get("skip") or [])
    candidates = [layer for layer in model.layers if cluster_support(layer).compresses]
    known = {layer.name for layer in candidates}
    unknown = sorted((set(per_layer) | set(skip)) - known)
    if unknown:
        raise BadInputError(
            f"clustering: layer(s) {', '.join(unknown)} cannot be clustered "
            f"(clustered: {', '.join(sorted(known))})"
        )
    both = sorted(set(per_layer) & set(skip))
    if both:
        raise BadInputError(f"clustering: {', '.join(both)} both skipped and given a count")
    counts = {}
    for layer in candidates:
        if layer.name in skip:
            continue
        count = int(per_layer.get(layer.name, n))
        kernel = layer.weights[:1]
        if not all(int(np.prod(w.shape)) >= count for w in kernel):
            continue
        if step.get("preserve_sparsity") and any(
            int(np.count_nonzero(w.numpy())) < count for w in kernel
        ):
            continue
        counts[layer.name] = count
    return counts, [name for name in skip if name in known]


def cluster_model(model: Any, step: dict[str, Any], context: TrainContext) -> ClusterResult:
    """Cluster ``model`` as ``step`` (a cluster step) says; returns the stripped model.

    Wraps the layers ``cluster_counts`` gives, each into its own number of clusters."""
    from engine.core.tfenv import keras2, tfmot

    k, mot = keras2(), tfmot()
    reporter = context.reporter
    cl = mot.clustering.keras
    n = int(step["clusters"])
    init = getattr(cl.CentroidInitialization, INIT_NAMES[step["init"]])
    counts, skipped = cluster_counts(model, step)
    names = list(counts)
    if skipped:
        reporter.log(f"not clustered (skipped): {', '.join(skipped)}")
    if not names:
        raise FeatherweightError(
            f"no layer of this model can be clustered into {n} clusters (needs Conv or Dense)"
        )
    preserve = bool(step["preserve_sparsity"])
    left = [
        layer.name
        for layer in model.layers
        if is_kernel_layer(layer) and layer.name not in names and layer.name not in skipped
    ]
    if left:
        reporter.log(
            "not clustered (too small, too sparse or unsupported by tfmot): " + ", ".join(left)
        )
    cannot = not_compressed(model, "cluster")
    warnings = [f"left unclustered (clustering cannot take them): {cannot}"] if cannot else []

    def wrap(layer: Any) -> Any:
        if layer.name in names:
            return cl.cluster_weights(
                layer,
                number_of_clusters=counts[layer.name],
                cluster_centroids_init=init,
                preserve_sparsity=preserve,
            )
        return layer

    wrapped = k.models.clone_model(fresh_copy(model), clone_function=wrap)
    sizes = sorted(set(counts.values()))
    into = f"{n}" if sizes == [n] else "/".join(str(c) for c in sizes)
    reporter.log(
        f"clustering {len(names)} layer(s) into {into} clusters"
        + (" keeping zeros" if preserve else "")
    )
    fit(
        wrapped,
        context,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        guided=guided_of(step),
    )
    stripped = cl.strip_clustering(wrapped)
    if recalibrate_batchnorm(stripped, context.splits):  # the weights jumped to centroids
        reporter.log("BatchNorm statistics re-estimated for the clustered weights")
    kernels = effective_kernels(stripped)
    distinct = {name: int(len(np.unique(kernels[name]))) for name in names if name in kernels}
    per_layer = {name: float((kv == 0).mean()) for name, kv in kernels.items()}
    return ClusterResult(stripped, names, distinct, per_layer, warnings, counts)


def _summary(step: dict[str, Any]) -> str:
    keep = ", keeping pruned zeros" if step.get("preserve_sparsity") else ""
    if step.get("per_layer"):
        keep += f", {len(step['per_layer'])} layer(s) set by hand"
    if step.get("skip"):
        keep += f", {len(step['skip'])} skipped"
    return (
        f"{step['clusters']} shared values per layer{keep}, {step['epochs']} epoch(s)"
        + guided_summary(step)
    )


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
            Knob(
                "per_layer",
                "map",
                None,
                "Number of clusters of named layers (e.g. conv1=32, dense=8); the others take "
                "the number of clusters above.",
                label="Per-layer clusters",
                minimum=2,
                maximum=256,
                optional=True,
                value_kind="int",
            ),
            Knob(
                "skip",
                "names",
                None,
                "Layers left unclustered (e.g. the first convolution or the classifier).",
                label="Skip layers",
                optional=True,
            ),
            *teacher_knobs(),
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
            "clusters_per_layer": result.clusters,
            "per_layer_sparsity": result.per_layer_sparsity,
        }
        return StepResult(result.model, info=info, warnings=result.warnings)


register(Cluster())
