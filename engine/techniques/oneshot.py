"""One-shot (no training) per-layer damage: what each layer's accuracy costs under pruning,
clustering or filter removal, measured on a split with the rest of the model untouched.

- ``evaluate(model, splits, split, output_kind, batch=256) -> (accuracy, mean loss)``: one
  batched forward pass through a compiled ``tf.function`` (traced once per model); the split
  is read once as NumPy arrays and kept for the next calls (``splits.batches``).
- ``prune_curves`` / ``cluster_curves`` / ``filter_curves``: for each layer alone, change its
  weights to each grid value (``variable.assign``), evaluate, then restore the original
  values exactly. The model is never cloned nor trained; the weights are restored even when
  the call is cancelled (``reporter.check_cancel()`` runs between evaluations) or fails.

Which weights: pruning takes the matrices tfmot prunes (``prunable_variables``: the kernel of
Conv/Dense, the pointwise kernel of separable convolutions, the Embedding table, RNN cell
kernels, attention projections), each by its own magnitude threshold like
``prune_low_magnitude``; the layers are those ``engine.models.support.prune_support``
compresses. Clustering takes the kernel of the layers ``cluster_support`` compresses: a 1-D
k-means (linear initialisation between min and max, Lloyd iterations on the sorted values,
NumPy only). Filter removal zeroes the output filters/units with the lowest L1 norm (kernel
slice + bias) of Conv/Dense/DepthwiseConv layers, except the layer that makes the model's
output (removing a class is not a compression): a proxy of structured pruning.

Curve entries: ``{"sparsity"|"clusters"|"ratio": value, "accuracy": a, "loss": l}``.

``read_sensitivity`` reads the file these curves are saved in (``sensitivity.json``, written by
``engine.pipeline.sensitivity``), for both the pipeline and the steps whose allocation reads
its curves (``prune``, ``prune_filters``).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import BadInputError
from engine.core.events import Reporter
from engine.core.outputs import is_binary, predicted_labels
from engine.models.support import (
    PRUNE_TYPES,
    cluster_support,
    output_chain,
    prune_support,
)

SCHEMA_VERSION = 1  # of sensitivity.json
KIND = "featherweight.sensitivity"
FILE_NAME = "sensitivity.json"
DEFAULT_BATCH = 256
KMEANS_ITERATIONS = 12
PRUNED_MATRIX_NAMES = ("kernel", "recurrent_kernel", "embeddings")
SEPARABLE_TYPES = ("SeparableConv1D", "SeparableConv2D")
FILTER_TYPES = ("Conv1D", "Conv2D", "Conv3D", "Dense", "DepthwiseConv2D")
# Layers that pass the previous layer's output on unchanged in shape semantics (the layer
# before them still makes the model's output).
_PASS_THROUGH = ("Activation", "Softmax", "Dropout", "Flatten", "Reshape", "ReLU")

Curves = dict[str, list[dict[str, float | None]]]

# --------------------------------------------------------------------------- evaluation

_DATA: dict[tuple[int, str], tuple[Any, np.ndarray, np.ndarray]] = {}
_FORWARD: dict[int, tuple[Any, Any]] = {}


def split_arrays(splits: Any, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
    """The whole ``split`` as ``(x, y)`` NumPy arrays, read once per ``splits`` object."""
    key = (id(splits), split)
    hit = _DATA.get(key)
    if hit is not None and hit[0]() is splits:
        return hit[1], hit[2]
    xs, ys = [], []
    for xb, yb in splits.batches(split, DEFAULT_BATCH):
        xs.append(np.asarray(xb))
        ys.append(np.asarray(yb).reshape(len(yb), -1)[:, 0])
    if not xs:
        x = np.zeros((0, *splits.input_shape), dtype=getattr(splits, "x_dtype", "float32"))
        y = np.zeros((0,), np.int64)
    else:
        x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
    x = x.astype(getattr(splits, "x_dtype", "float32") or "float32", copy=False)
    # Keep the arrays of one DataSplits object at a time (a worker analyzes many models).
    for k in [k for k, v in _DATA.items() if v[0]() is not splits]:
        del _DATA[k]
    try:
        ref: Any = weakref.ref(splits)
    except TypeError:  # pragma: no cover - DataSplits takes weak references
        ref = lambda: splits  # noqa: E731
    _DATA[key] = (ref, x, y)
    return x, y


def _forward(model: Any) -> Any:
    """A compiled forward pass of ``model`` (inference mode), one per model object."""
    hit = _FORWARD.get(id(model))
    if hit is not None and hit[0]() is model:
        return hit[1]
    from engine.core.tfenv import tf

    t = tf()

    def call(x: Any) -> Any:
        return model(x, training=False)

    fn = t.function(call, reduce_retracing=True)
    # One compiled model at a time: the function holds the model, so a cache of every model
    # seen would keep them all alive in a long-lived worker.
    _FORWARD.clear()
    _FORWARD[id(model)] = (weakref.ref(model), fn)
    return fn


def release() -> None:
    """Forget the cached split arrays and compiled forward passes (frees the model)."""
    _DATA.clear()
    _FORWARD.clear()


def _loss(pred: np.ndarray, y: np.ndarray, output_kind: str) -> np.ndarray:
    """Per-sample cross-entropy of ``pred`` for ``output_kind`` (float64)."""
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    eps = 1e-7
    if is_binary(output_kind):
        z = p[:, 0]
        t = y.astype(np.float64)
        if output_kind == "binary_logit":
            return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        z = np.clip(z, eps, 1 - eps)
        return -(t * np.log(z) + (1 - t) * np.log(1 - z))
    if output_kind == "softmax":
        picked = p[np.arange(len(p)), np.clip(y, 0, p.shape[1] - 1)]
        return -np.log(np.clip(picked, eps, 1.0))
    shifted = p - p.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(shifted).sum(axis=1))
    return logsum - shifted[np.arange(len(p)), np.clip(y, 0, p.shape[1] - 1)]


def evaluate(
    model: Any, splits: Any, split: str, output_kind: str, batch: int = DEFAULT_BATCH
) -> tuple[float, float | None]:
    """``(accuracy, mean loss)`` of the Keras ``model`` on ``split`` (batched, compiled forward
    pass; the split's arrays are cached). ``(0.0, 0.0)`` for an empty split; the loss is None
    when the outputs are not finite (NaN/inf weights)."""
    x, y = split_arrays(splits, split)
    if len(y) == 0:
        return 0.0, 0.0
    fn = _forward(model)
    correct = 0
    loss = 0.0
    for i in range(0, len(y), batch):
        pred = np.asarray(fn(x[i : i + batch]))
        yb = y[i : i + batch]
        correct += int(np.sum(predicted_labels(pred, output_kind) == yb))
        loss += float(np.sum(_loss(pred, yb, output_kind)))
    acc = correct / len(y)
    mean_loss = loss / len(y)
    return float(acc), (float(mean_loss) if np.isfinite(mean_loss) else None)


# --------------------------------------------------------------------------- weights


def _short_name(var: Any) -> str:
    return str(var.name).split(":")[0].split("/")[-1]


def prunable_variables(layer: Any) -> list[Any]:
    """The weight variables of ``layer`` that pruning zeroes (see the module doc)."""
    cls = type(layer).__name__
    if cls in PRUNE_TYPES:
        return [layer.kernel]
    if cls in SEPARABLE_TYPES:
        return [layer.pointwise_kernel]
    return [w for w in layer.weights if _short_name(w) in PRUNED_MATRIX_NAMES]


def cluster_variables(layer: Any) -> list[Any]:
    """The weight variables of ``layer`` that clustering restricts (its kernel)."""
    kernel = getattr(layer, "kernel", None)
    return [kernel] if kernel is not None else []


def prunable_layers(model: Any) -> list[Any]:
    """Layers pruning compresses (``prune_support(layer).compresses``) with weights to prune."""
    return [
        layer
        for layer in model.layers
        if type(layer).__name__ != "InputLayer"
        and prune_support(layer).compresses
        and prunable_variables(layer)
    ]


def clusterable_layers(model: Any) -> list[Any]:
    return [
        layer
        for layer in model.layers
        if type(layer).__name__ != "InputLayer"
        and cluster_support(layer).compresses
        and cluster_variables(layer)
    ]


def _output_layers(model: Any) -> set[str]:
    """Names of the weight layers whose outputs reach a model output through pass-through
    layers only (their filters are classes)."""
    names: set[str] = set()
    for tensor in getattr(model, "outputs", None) or []:
        layer = getattr(getattr(tensor, "_keras_history", None), "layer", None)
        if layer is not None:
            names.update(lay.name for lay in output_chain(layer, _PASS_THROUGH))
    return names


def filter_layers(model: Any) -> list[Any]:
    """Conv/Dense/DepthwiseConv layers whose output filters can be removed (not the output)."""
    outputs = _output_layers(model)
    found = []
    for layer in model.layers:
        if type(layer).__name__ not in FILTER_TYPES or layer.name in outputs:
            continue
        depthwise = type(layer).__name__ == "DepthwiseConv2D"
        kernel = getattr(layer, "depthwise_kernel" if depthwise else "kernel", None)
        if kernel is None:
            continue
        n_out = int(kernel.shape[-1]) * (int(kernel.shape[-2]) if depthwise else 1)
        if n_out > 1:
            found.append(layer)
    return found


def _select(candidates: list[Any], names: list[str] | None) -> list[Any]:
    if names is None:
        return candidates
    by_name = {layer.name: layer for layer in candidates}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BadInputError(f"no such layer for this analysis: {', '.join(unknown)}")
    return [by_name[n] for n in names]


@contextmanager
def _restored(variables: Sequence[Any]) -> Iterator[list[np.ndarray]]:
    """Yield the variables' original values; assign them back on exit (always)."""
    originals = [np.array(v.numpy(), copy=True) for v in variables]
    try:
        yield originals
    finally:
        for v, value in zip(variables, originals, strict=True):
            v.assign(value)


# --------------------------------------------------------------------------- transforms


def magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Boolean mask (True = kept) that zeroes the ``round(sparsity * w.size)`` weights of
    smallest magnitude (exactly that many, ties broken by position)."""
    w = np.asarray(w)
    n = w.size
    k = int(round(float(sparsity) * n))
    k = min(max(k, 0), n)
    mask = np.ones(n, dtype=bool)
    if k > 0:
        flat = np.abs(w.reshape(-1))
        idx = np.argpartition(flat, k - 1)[:k] if k < n else np.arange(n)
        mask[idx] = False
    return mask.reshape(w.shape)


def cluster_values(w: np.ndarray, clusters: int, iterations: int = KMEANS_ITERATIONS) -> np.ndarray:
    """``w`` with every value replaced by the nearest of ``clusters`` shared values (1-D
    k-means, linear initialisation between min and max). Unchanged when ``w`` has no more
    distinct values than ``clusters``."""
    w = np.asarray(w)
    flat = w.reshape(-1).astype(np.float64)
    if flat.size == 0 or clusters < 1:
        return w.copy()
    values = np.sort(flat)
    if clusters >= flat.size or np.unique(values).size <= clusters:
        return w.copy()
    centroids = np.linspace(values[0], values[-1], clusters)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    for _ in range(iterations):
        bounds = (centroids[1:] + centroids[:-1]) / 2.0
        cuts = np.concatenate([[0], np.searchsorted(values, bounds), [values.size]])
        counts = np.diff(cuts)
        sums = csum[cuts[1:]] - csum[cuts[:-1]]
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        new = np.sort(new)
        if np.allclose(new, centroids):
            centroids = new
            break
        centroids = new
    bounds = (centroids[1:] + centroids[:-1]) / 2.0
    idx = np.searchsorted(bounds, flat)
    return centroids[idx].astype(w.dtype).reshape(w.shape)


def _filter_scores(layer: Any) -> tuple[Any, Any, np.ndarray, Callable[[np.ndarray], None]]:
    """(kernel var, bias var or None, L1 score per output filter, zero(filters))."""
    cls = type(layer).__name__
    depthwise = cls == "DepthwiseConv2D"
    kernel = layer.depthwise_kernel if depthwise else layer.kernel
    bias = getattr(layer, "bias", None)
    k = np.asarray(kernel.numpy())
    if depthwise:  # (kh, kw, C, m): output channel c*m + j
        flat = k.reshape(*k.shape[:-2], -1)
    else:
        flat = k
    n_out = flat.shape[-1]
    scores = np.abs(flat.reshape(-1, n_out)).sum(axis=0)
    b = np.asarray(bias.numpy()) if bias is not None else None
    if b is not None and b.shape == (n_out,):
        scores = scores + np.abs(b)

    def zero(filters: np.ndarray) -> None:
        kk = flat.copy()
        kk[..., filters] = 0.0
        kernel.assign(kk.reshape(k.shape))
        if bias is not None and b is not None and b.shape == (n_out,):
            bb = b.copy()
            bb[filters] = 0.0
            bias.assign(bb)

    return kernel, bias, scores, zero


# --------------------------------------------------------------------------- curves


class _Progress:
    def __init__(self, reporter: Reporter | None, total: int) -> None:
        self.reporter, self.total, self.done = reporter, max(1, total), 0

    def check(self) -> None:
        if self.reporter is not None:
            self.reporter.check_cancel()

    def step(self) -> None:
        self.done += 1
        if self.reporter is not None:
            self.reporter.progress(min(self.done, self.total), self.total)


# A sweep: per layer, ``setup(layer) -> (variables, apply)``; ``apply(value, originals)``
# changes the variables for one grid value and says whether anything changed.
Apply = Callable[[Any, list[np.ndarray]], bool]


def _sweep(
    chosen: list[Any],
    grid: Sequence[Any],
    key: str,
    setup: Callable[[Any], tuple[list[Any], Apply]],
    measure: Callable[[bool], tuple[float, float | None]],
    reporter: Reporter | None,
) -> Curves:
    """Each layer of ``chosen`` alone at each value of ``grid``: apply, ``measure(changed)``,
    restore the layer. ``{layer: [{key: value, "accuracy", "loss"}]}`` in grid order; checks
    cancellation before and reports progress after every evaluation."""
    progress = _Progress(reporter, len(chosen) * len(grid))
    out: Curves = {}
    for layer in chosen:
        variables, apply = setup(layer)
        curve = []
        with _restored(variables) as originals:
            for value in grid:
                progress.check()
                acc, loss = measure(apply(value, originals))
                curve.append({key: value, "accuracy": acc, "loss": loss})
                progress.step()
        out[layer.name] = curve
    return out


def prune_curves(
    model: Any,
    splits: Any,
    output_kind: str,
    grid: Sequence[float],
    layers: list[str] | None = None,
    split: str = "val",
    reporter: Reporter | None = None,
) -> Curves:
    """Per prunable layer alone: magnitude-prune its prunable weights to each sparsity of
    ``grid``, evaluate on ``split``, restore. ``{layer: [{"sparsity", "accuracy", "loss"}]}``
    in grid order. Raises Cancelled (reporter), BadInputError for unknown ``layers``."""

    def setup(layer: Any) -> tuple[list[Any], Apply]:
        variables = prunable_variables(layer)

        def apply(sparsity: float, originals: list[np.ndarray]) -> bool:
            for v, w in zip(variables, originals, strict=True):
                v.assign(np.where(magnitude_mask(w, sparsity), w, 0).astype(w.dtype))
            return True

        return variables, apply

    return _sweep(
        _select(prunable_layers(model), layers),
        [float(s) for s in grid],
        "sparsity",
        setup,
        lambda _changed: evaluate(model, splits, split, output_kind),
        reporter,
    )


def cluster_curves(
    model: Any,
    splits: Any,
    output_kind: str,
    grid: Sequence[int],
    layers: list[str] | None = None,
    split: str = "val",
    reporter: Reporter | None = None,
    baseline: tuple[float, float | None] | None = None,
) -> Curves:
    """Per clusterable layer alone: its kernel restricted to each cluster count of ``grid``
    (1-D k-means), evaluated on ``split``, restored. Entries ``{"clusters", "accuracy",
    "loss"}``. A kernel with no more distinct values than the count is unchanged: its entry
    is the ``baseline`` (measured once when not given)."""
    known = [baseline]

    def measure(changed: bool) -> tuple[float, float | None]:
        if changed:
            return evaluate(model, splits, split, output_kind)
        got = known[0]
        if got is None:  # the weights are the originals here: this is the baseline
            got = known[0] = evaluate(model, splits, split, output_kind)
        return got

    def setup(layer: Any) -> tuple[list[Any], Apply]:
        variables = cluster_variables(layer)

        def apply(clusters: int, originals: list[np.ndarray]) -> bool:
            changed = False
            for v, w in zip(variables, originals, strict=True):
                new = cluster_values(w, clusters)
                changed = changed or not np.array_equal(new, w)
                v.assign(new)
            return changed

        return variables, apply

    return _sweep(
        _select(clusterable_layers(model), layers),
        [int(n) for n in grid],
        "clusters",
        setup,
        measure,
        reporter,
    )


def filter_curves(
    model: Any,
    splits: Any,
    output_kind: str,
    grid: Sequence[float],
    layers: list[str] | None = None,
    split: str = "val",
    reporter: Reporter | None = None,
) -> Curves:
    """Per Conv/Dense/DepthwiseConv layer alone (not the output layer): zero the ``ratio``
    fraction of its output filters/units with the lowest L1 norm (kernel slice + bias),
    evaluate on ``split``, restore. Entries ``{"ratio", "accuracy", "loss"}``."""

    def setup(layer: Any) -> tuple[list[Any], Apply]:
        kernel, bias, scores, zero = _filter_scores(layer)
        order = np.argsort(scores, kind="stable")

        def apply(ratio: float, _originals: list[np.ndarray]) -> bool:
            zero(order[: min(int(round(ratio * order.size)), order.size)])
            return True

        return [kernel] + ([bias] if bias is not None else []), apply

    return _sweep(
        _select(filter_layers(model), layers),
        [float(r) for r in grid],
        "ratio",
        setup,
        lambda _changed: evaluate(model, splits, split, output_kind),
        reporter,
    )


def read_sensitivity(path: str | Path) -> dict[str, Any]:
    """Load a ``sensitivity.json`` (or a folder holding one); checks kind and schema version.
    Raises BadInputError."""
    p = Path(path)
    if p.is_dir():
        p = p / FILE_NAME
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"sensitivity file not found: {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{p.name} is not a readable sensitivity file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise BadInputError(f"{p.name} is not a Featherweight sensitivity file")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise BadInputError(
            f"{p.name} has sensitivity schema {version!r}; this version reads up to "
            f"{SCHEMA_VERSION}"
        )
    return doc
