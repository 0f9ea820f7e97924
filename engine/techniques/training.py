"""The fit loop every technique shares, plus the Keras callback that reports and cancels.

``fit`` compiles and trains a (possibly tfmot-wrapped) Keras 2 model on the train split,
validates on the val split, and through ``ReportingCallback``:

- checks the cancel token after every batch (raises ``engine.core.errors.Cancelled``, which
  propagates out of ``model.fit``),
- emits a progress event per batch (throttled by the Reporter),
- emits one metric point per epoch: loss, accuracy, val_loss, val_accuracy, the current
  kernel sparsity and a labelled *estimate* of the final file size (``SizeEstimator``).

Several devices: ``distribution_strategy()`` is a ``tf.distribute.MirroredStrategy`` when more
than one GPU is visible (or on the devices named by ``FEATHERWEIGHT_MIRRORED_DEVICES``, e.g.
``"/cpu:0,/cpu:1"`` with logical CPU devices: how the tests run it without GPUs). ``fit`` then
trains a copy of the model built in the strategy's scope (same weights), splitting each global
batch of ``batch_size`` between the devices (per-device batch = batch_size / devices, so the
optimisation is the single-device one, also for an unevenly split last batch: see
``replica_share``), and copies the weights back. QAT models (tfmot's quantize wrappers cannot
be rebuilt from their config in the scope), sparsity-preserving clustering (tfmot resets the
zero centroid inside each replica), models compiled by the caller and models that cannot be
cloned train on one device, with one log line saying so.

``effective_kernels`` reads the kernels a model currently computes with, looking through
pruning (weight × mask) and clustering (centroids[indices]) wrappers.

Output kinds (``OUTPUT_KINDS``, from ``engine.models.loading.output_kind``): ``softmax`` and
``logits`` (one unit per class, integer labels, top-1 by argmax) and the binary single unit
``binary_sigmoid`` / ``binary_logit`` (labels 0 / 1, class 1 when the output is over 0.5 /
0.0). ``loss_for``, ``accuracy_metric`` and ``predicted_labels`` are the one place that maps a
kind to its loss, Keras metric and predicted classes.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core.events import Reporter
from engine.core.outputs import (  # noqa: F401 (re-exported: the techniques' callers use them)
    BINARY_KINDS,
    OUTPUT_KINDS,
    binary_threshold,
    is_binary,
    predicted_labels,
)
from engine.core.outputs import check_kind as _check_kind
from engine.models.support import KERNEL_ATTRS as _KERNEL_ATTRS
from engine.models.support import KERNEL_LAYER_TYPES, is_kernel_layer, is_weight_layer, unwrap

if TYPE_CHECKING:
    from engine.techniques.registry import TrainContext


def output_is_probability(output_kind: str) -> bool:
    """Whether the output is already a probability (softmax / sigmoid), not a logit."""
    return output_kind in ("softmax", "binary_sigmoid")


def loss_for(output_kind: str) -> Any:
    """The Keras 2 training loss for ``output_kind`` (integer labels; 0 / 1 for binary)."""
    from engine.core.tfenv import keras2

    _check_kind(output_kind)
    losses = keras2().losses
    from_logits = not output_is_probability(output_kind)
    if is_binary(output_kind):
        return losses.BinaryCrossentropy(from_logits=from_logits)
    return losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def accuracy_metric(output_kind: str) -> Any:
    """The Keras 2 accuracy metric (named ``accuracy``) for ``output_kind``."""
    from engine.core.tfenv import keras2

    _check_kind(output_kind)
    metrics = keras2().metrics
    if is_binary(output_kind):
        return metrics.BinaryAccuracy(name="accuracy", threshold=binary_threshold(output_kind))
    return metrics.SparseCategoricalAccuracy(name="accuracy")


def _activation_name(layer: Any) -> str:
    if type(layer).__name__ == "Softmax":
        return "softmax"
    act = getattr(layer, "activation", None)
    for _ in range(3):  # QAT's QuantizeAwareActivation holds the original in .activation
        if act is None or not hasattr(act, "activation"):
            break
        act = act.activation
    if act is None:
        return "linear"
    return str(getattr(act, "__name__", None) or type(act).__name__).lower()


def infer_output_kind(model: Any) -> str:
    """The output kind read off ``model`` itself (tfmot wrappers looked through): for callers
    that were not given the loaded model's ``output_kind``."""
    layer = None
    try:
        layer = model.outputs[0]._keras_history.layer
    except (AttributeError, IndexError, TypeError):
        layer = model.layers[-1] if getattr(model, "layers", None) else None
    act = _activation_name(inner_layer(layer)) if layer is not None else "linear"
    units = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if units == 1:
        return "binary_sigmoid" if act == "sigmoid" else "binary_logit"
    return "softmax" if act == "softmax" else "logits"


def inner_layer(layer: Any) -> Any:
    """The layer inside tfmot wrappers (pruning, clustering, quantization)."""
    return unwrap(layer)


def fresh_copy(model: Any) -> Any:
    """An independent copy (new layers, same weights) so wrapping never touches ``model``."""
    from engine.core.tfenv import keras2

    copy = keras2().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _value(v: Any) -> np.ndarray:
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v)


def effective_kernels(model: Any) -> dict[str, np.ndarray]:
    """``{layer name: kernel}`` of Conv/Dense/DepthwiseConv layers as the model uses them."""
    out: dict[str, np.ndarray] = {}
    for layer in model.layers:
        if not is_kernel_layer(layer):
            continue
        inner = inner_layer(layer)
        kernel = _wrapped_kernel(layer)
        if kernel is None:
            for attr in _KERNEL_ATTRS:
                var = getattr(inner, attr, None)
                if var is not None and hasattr(var, "numpy"):
                    kernel = _value(var)
                    break
        if kernel is not None:
            out[inner.name] = kernel
    for layer in model.layers:
        if is_weight_layer(layer) and not is_kernel_layer(layer):
            name, matrices = weight_matrices(layer)
            if matrices:
                out[name] = np.concatenate([m.reshape(-1) for m in matrices])
    return out


MATRIX_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings")


def weight_matrices(layer: Any) -> tuple[str, list[np.ndarray]]:
    """(layer name, weight matrices as the model computes with them) of a layer whose
    matrices are not a single kernel: an Embedding's table, RNN cell kernels (also in
    ``Bidirectional``), attention projections; masked through a pruning wrapper."""
    current = layer
    for _ in range(5):
        pruning_vars = getattr(current, "pruning_vars", None)
        if pruning_vars:
            return current.layer.name, [_value(w) * _value(m) for w, m, _t in pruning_vars]
        if type(current).__name__ == "Bidirectional" or not hasattr(current, "layer"):
            break
        current = current.layer
    return current.name, [_value(w) for w in current.weights if _short_name(w) in MATRIX_NAMES]


def _short_name(var: Any) -> str:
    return str(var.name).split(":")[0].split("/")[-1]


def _wrapped_kernel(layer: Any) -> np.ndarray | None:
    """Kernel through a pruning or clustering wrapper, None for a plain layer."""
    current = layer
    for _ in range(5):
        pruning_vars = getattr(current, "pruning_vars", None)
        if pruning_vars:
            weight, mask, _threshold = pruning_vars[0]
            return _value(weight) * _value(mask)
        centroids = getattr(current, "cluster_centroids", None)
        indices = getattr(current, "pulling_indices", None)
        if isinstance(centroids, dict) and centroids and isinstance(indices, dict):
            name = next(iter(centroids))
            c = _value(centroids[name])
            idx = _value(indices[name]).astype(np.int64)
            if c.ndim == 1:
                return c[idx]
            return None
        if not hasattr(current, "layer"):
            return None
        current = current.layer
    return None


def other_weight_count(model: Any) -> int:
    """Number of non-kernel weights (biases, BN) of the layers themselves, ignoring the
    wrappers' bookkeeping variables (masks, centroids, quantizer ranges)."""
    n = 0
    for layer in model.layers:
        inner = inner_layer(layer)
        if type(inner).__name__ in ("QuantizeLayer", "InputLayer"):
            continue
        for w in inner.weights:
            name = w.name.split("/")[-1]
            if (
                "kernel" in name
                or "embeddings" in name
                or any(
                    t in w.name
                    for t in (
                        "mask",
                        "threshold",
                        "pruning_step",
                        "centroids",
                        "pulling",
                        "quantize",
                        "_min",
                        "_max",
                        "optimizer_step",
                    )
                )
            ):
                continue
            n += int(np.prod(w.shape))
    return n


def kernel_sparsity(kernels: dict[str, np.ndarray]) -> float:
    total = sum(k.size for k in kernels.values())
    zeros = sum(int(np.count_nonzero(k == 0)) for k in kernels.values())
    return zeros / total if total else 0.0


@dataclass
class SizeEstimator:
    """Cheap, labelled estimate of the final ``.tflite`` size from the current weights.

    Kernels are encoded as the final conversion would store them (int8 per output channel
    for int8/dynamic, float16 or float32 otherwise), other weights as float32; the graph
    overhead (raw and gzip) is taken from the measured float32 baseline file.
    """

    mode: str = "float32"
    overhead_bytes: int = 0
    overhead_gzip_bytes: int = 0

    def encode(self, model: Any) -> bytes:
        kernels = effective_kernels(model)
        parts: list[bytes] = []
        for k in kernels.values():
            if self.mode in ("int8", "dynamic"):
                flat = k.reshape(-1, k.shape[-1])
                scale = np.abs(flat).max(axis=0)
                scale[scale == 0] = 1.0
                parts.append(np.round(flat / scale * 127).astype(np.int8).tobytes())
            elif self.mode == "float16":
                parts.append(k.astype(np.float16).tobytes())
            else:
                parts.append(k.astype(np.float32).tobytes())
        n_other = other_weight_count(model)
        # Other weights (biases, BN) are few: stand-ins of the same size that, like trained
        # values, do not compress.
        rng = np.random.default_rng(0)
        parts.append(rng.standard_normal(n_other).astype(np.float32).tobytes())
        return b"".join(parts)

    def estimate(self, model: Any) -> tuple[int, int]:
        """(estimated raw bytes, estimated gzip bytes)."""
        data = self.encode(model)
        return (
            len(data) + self.overhead_bytes,
            len(gzip.compress(data, 6)) + self.overhead_gzip_bytes,
        )

    @classmethod
    def calibrated(
        cls, mode: str, baseline_model: Any, baseline_bytes: int, baseline_gzip: int
    ) -> SizeEstimator:
        """Overheads = measured float32 baseline file minus the float32 estimate."""
        plain = cls("float32")
        data = plain.encode(baseline_model)
        return cls(
            mode=mode,
            overhead_bytes=max(0, baseline_bytes - len(data)),
            overhead_gzip_bytes=max(0, baseline_gzip - len(gzip.compress(data, 6))),
        )


class ReportingCallback:
    """Factory for the Keras 2 callback (tf_keras is imported lazily)."""

    def __new__(  # type: ignore[misc]
        cls,
        reporter: Reporter,
        total_steps: int,
        estimator: SizeEstimator | None = None,
        extra: Callable[[Any], dict[str, float]] | None = None,
        measured_model: Any = None,
    ) -> Any:
        from engine.core.tfenv import keras2

        base = keras2().callbacks.Callback

        class _Reporting(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__()
                self.epoch = 0
                self.steps_per_epoch = max(1, total_steps)
                # The batch hooks never read their logs: without this, Keras copies every
                # batch's logs to NumPy (a device sync per batch) just for this callback.
                self._supports_tf_logs = True

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.epoch = epoch
                reporter.check_cancel()

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                reporter.check_cancel()
                reporter.progress(
                    self.epoch * self.steps_per_epoch + batch + 1,
                    self.params.get("epochs", 1) * self.steps_per_epoch,
                )

            def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
                reporter.check_cancel()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs = dict(logs or {})
                values: dict[str, float] = {
                    k: float(logs[k])
                    for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                    if k in logs
                }
                measured = measured_model if measured_model is not None else self.model
                values["sparsity"] = kernel_sparsity(effective_kernels(measured))
                if estimator is not None:
                    raw, gz = estimator.estimate(measured)
                    values["est_tflite_bytes"] = float(raw)
                    values["est_gzip_bytes"] = float(gz)
                if extra is not None:
                    values.update(extra(measured))
                reporter.metric(epoch + 1, **values)
                reporter.check_cancel()

        return _Reporting()


def distill_losses(binary: bool, temperature: float, alpha: float) -> Any:
    """``loss(y, teacher_logits, student_logits) -> (total, hard)``: ``alpha`` ×
    cross-entropy with the labels + (1 − ``alpha``) × T² × KL(softmax(teacher/T) ‖
    softmax(student/T)) for classes; for one binary unit, binary cross-entropy with the 0 / 1
    labels and the KL of the Bernoulli distributions sigmoid(teacher/T) ‖ sigmoid(student/T).
    Shared by ``distill`` and teacher-guided ``fit``."""
    from engine.core.tfenv import keras2, tf

    k, t = keras2(), tf()
    # Per-example losses averaged here (the same as Keras' default reduction): Keras refuses
    # its own reductions inside a tf.distribute replica (fit's MirroredStrategy).
    none = k.losses.Reduction.NONE
    kl = k.losses.KLDivergence(reduction=none)
    ce = (
        k.losses.BinaryCrossentropy(from_logits=True, reduction=none)
        if binary
        else k.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=none)
    )

    def loss(y: Any, t_logits: Any, s_logits: Any) -> tuple[Any, Any]:
        if binary:
            y = t.reshape(t.cast(y, s_logits.dtype), t.shape(s_logits))
            hard = t.reduce_mean(ce(y, s_logits))
            ts, ss = t_logits / temperature, s_logits / temperature
            p = t.sigmoid(ts)
            soft = t.reduce_mean(
                p * (t.math.log_sigmoid(ts) - t.math.log_sigmoid(ss))
                + (1.0 - p) * (t.math.log_sigmoid(-ts) - t.math.log_sigmoid(-ss))
            )
        else:
            hard = t.reduce_mean(ce(y, s_logits))
            soft = t.reduce_mean(
                kl(t.nn.softmax(t_logits / temperature), t.nn.softmax(s_logits / temperature))
            )
        return alpha * hard + (1.0 - alpha) * soft * (temperature**2), hard

    return loss


MIRRORED_ENV = "FEATHERWEIGHT_MIRRORED_DEVICES"
_STRATEGIES: dict[tuple[str, ...], Any] = {}
QUANTIZE_WRAPPERS = frozenset({"QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer"})


def distribution_strategy() -> Any:
    """The ``tf.distribute.MirroredStrategy`` that ``fit`` trains under, or None (one device).

    ``FEATHERWEIGHT_MIRRORED_DEVICES="/cpu:0,/cpu:1"`` (comma-separated, at least two) forces
    it on those devices; otherwise it mirrors all GPUs when more than one is visible. One
    strategy per device list, made once per process."""
    from engine.core.errors import BadInputError
    from engine.core.tfenv import tf

    t = tf()
    raw = os.environ.get(MIRRORED_ENV, "").strip()
    if raw:
        devices = tuple(d.strip() for d in raw.split(",") if d.strip())
        known = {d.name.lower() for d in t.config.list_logical_devices()}
        missing = [d for d in devices if _device_name(d) not in known]
        if missing:
            raise BadInputError(
                f"{MIRRORED_ENV}: no device {', '.join(missing)} here "
                f"(devices: {', '.join(sorted(known))})"
            )
        if len(devices) < 2:
            return None
    else:
        gpus = t.config.list_logical_devices("GPU")
        if len(gpus) < 2:
            return None
        devices = tuple(d.name for d in gpus)
    if devices not in _STRATEGIES:
        _STRATEGIES[devices] = t.distribute.MirroredStrategy(devices=list(devices))
    return _STRATEGIES[devices]


def _device_name(device: str) -> str:
    """``/cpu:0`` or ``CPU:0`` -> ``/device:cpu:0`` (how TF names logical devices, lower-cased)."""
    d = device.strip().lower()
    d = d.removeprefix("/").removeprefix("device:")
    if "/device:" in d:  # a full name, e.g. /job:localhost/replica:0/task:0/device:CPU:0
        return "/" + d
    return "/device:" + d


def _one_device_reason(model: Any, compile_model: bool) -> str | None:
    """Why ``model`` cannot be trained under a MirroredStrategy (None when it can)."""
    if any(type(layer).__name__ in QUANTIZE_WRAPPERS for layer in getattr(model, "layers", [])):
        return "QAT trains on one device (tfmot's quantize wrappers cannot be mirrored)"
    if any(getattr(layer, "preserve_sparsity", False) is True for layer in model.layers):
        # tfmot re-assigns the zero centroid inside every replica's forward pass: the
        # devices' updates then disagree (measured: 0.07 off after one epoch).
        return "clustering that keeps the zeros trains on one device (tfmot cannot mirror it)"
    if not compile_model:
        return "a model compiled by its caller trains on one device"
    if not getattr(model, "_is_graph_network", False):
        return "a subclassed model trains on one device (it cannot be copied to the devices)"
    return None


def _mirrored_copy(model: Any, strategy: Any) -> Any:
    """A copy of ``model`` built in ``strategy``'s scope with the same weights, or None."""
    from engine.core.tfenv import keras2, tfmot

    k = keras2()
    wrapped = any(
        type(layer).__module__.startswith("tensorflow_model_optimization") for layer in model.layers
    )
    try:
        with strategy.scope(), contextlib.ExitStack() as scopes:
            if wrapped:  # clone_model needs tfmot's wrapper classes
                scopes.enter_context(tfmot().sparsity.keras.prune_scope())
                scopes.enter_context(tfmot().clustering.keras.cluster_scope())
            copy = k.models.clone_model(model)
            weights = model.get_weights()
            if len(copy.get_weights()) != len(weights):
                return None
            copy.set_weights(weights)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return copy


def compile_for_training(
    model: Any, learning_rate: float, output_kind: str | bool, loss: Any = None
) -> None:
    """Compile with Adam, the loss and accuracy of ``output_kind`` (one of ``OUTPUT_KINDS``;
    a bool is the older ``from_logits`` spelling for one-unit-per-class outputs)."""
    from engine.core.tfenv import keras2

    if isinstance(output_kind, bool):
        output_kind = "logits" if output_kind else "softmax"
    k = keras2()
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate=learning_rate),
        loss=loss or loss_for(output_kind),
        metrics=[accuracy_metric(output_kind)],
    )


def fit(
    model: Any,
    context: TrainContext,
    *,
    epochs: int,
    learning_rate: float,
    callbacks: Sequence[Any] = (),
    compile_model: bool = True,
    guided: tuple[float, float] | None = None,
) -> Any:
    """Fine-tune ``model`` on the context's train split (validating on val) with its batch
    size, seed, loss and accuracy (``context.output_kind``), reporter and size estimator;
    returns the Keras History. Raises ``Cancelled`` when the reporter's token is cancelled.

    ``guided = (temperature, alpha)`` trains teacher-guided: against ``context.teacher``'s
    soft outputs as well as the labels (``distill_losses``; ``model`` itself is trained, tfmot
    wrappers and their callbacks work as usual). Without a teacher it trains on the labels.
    """
    from engine.core.tfenv import set_seed

    splits, batch_size, seed = context.splits, context.batch_size, context.seed
    reporter = context.reporter
    set_seed(seed)
    if guided is not None and context.teacher is None:
        reporter.log("no original model to learn from: trained on the labels alone")
        guided = None
    strategy = distribution_strategy()
    replica = None
    if strategy is not None:
        reason = _one_device_reason(model, compile_model)
        replica = _mirrored_copy(model, strategy) if reason is None else None
        if replica is None:
            reporter.log(reason or "this model cannot be copied to the devices: one device")
            strategy = None
        else:
            n = strategy.num_replicas_in_sync
            reporter.log(
                f"training on {n} devices (MirroredStrategy): each batch of {batch_size} is "
                f"split between them, about {-(-batch_size // n)} per device"
            )
    learner = replica if replica is not None else model
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if compile_model:
            loss = _global_mean_loss(context.output_kind) if strategy is not None else None
            compile_for_training(learner, learning_rate, context.output_kind, loss=loss)
        trained = learner
        if guided is not None:
            from engine.core.tfenv import keras2

            temperature, alpha = guided
            trained = _guided_model(learner, context, float(temperature), float(alpha))
            trained.compile(optimizer=keras2().optimizers.Adam(learning_rate=learning_rate))
            reporter.log(
                f"teacher-guided: temperature {temperature:g}, alpha {alpha:g} "
                "(weight of the labels; the rest matches the original model)"
            )
    if replica is not None:
        for callback in callbacks:
            retarget = getattr(callback, "retarget", None)
            if retarget is not None:
                retarget(replica)
    steps = splits.steps_per_epoch(batch_size)
    cb = ReportingCallback(reporter, steps, context.estimator, measured_model=learner)
    try:
        history = trained.fit(
            splits.dataset("train", batch_size, shuffle_seed=seed),
            validation_data=splits.dataset("val", batch_size),
            epochs=epochs,
            verbose=0,
            callbacks=[*callbacks, cb],
        )
    finally:
        if replica is not None:  # also when cancelled: the caller sees what was trained
            model.set_weights(replica.get_weights())
    reporter.advance_epochs(epochs)
    return history


def replica_share(batch: Any) -> Any:
    """This replica's share of the global batch (its examples / all replicas' examples; 1.0
    on one device). A replica's mean loss times its share, summed over the replicas (which is
    what their gradients are), is the mean over the whole global batch even when it was split
    unevenly (a last batch of 5 on 2 devices: 3 + 2)."""
    from engine.core.tfenv import tf

    t = tf()
    ctx = t.distribute.get_replica_context()
    local = t.cast(t.shape(batch)[0], t.float32)
    if ctx is None or ctx.num_replicas_in_sync < 2:
        return t.ones_like(local)
    total = ctx.all_reduce(t.distribute.ReduceOp.SUM, local)
    return t.math.divide_no_nan(local, total)


def _global_mean_loss(output_kind: str) -> Any:
    """``loss_for(output_kind)`` for training under a strategy: each replica returns its
    examples' loss sum / the global batch size (Keras sums ``SUM`` losses over the replicas'
    gradients), so the update equals the single-device one. Keras' default instead averages
    per replica and divides by the number of replicas, which weighs the examples of an
    unevenly split batch differently."""
    from engine.core.tfenv import keras2, tf

    k, t = keras2(), tf()
    per_example = loss_for(output_kind)
    per_example.reduction = k.losses.Reduction.NONE

    class _GlobalMean(k.losses.Loss):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(reduction=k.losses.Reduction.SUM, name="loss")

        def call(self, y_true: Any, y_pred: Any) -> Any:
            values = per_example(y_true, y_pred)
            local = t.cast(t.shape(values)[0], values.dtype)
            share = t.cast(replica_share(values), values.dtype)
            return values * t.math.divide_no_nan(share, local)

    return _GlobalMean()


def as_logits(output: Any, output_kind: str) -> Any:
    """The logits behind a model's output tensor: itself for logits; for a softmax (sigmoid)
    output the pre-activation when the graph shows it (inside ``fit``'s train step), else the
    log-probabilities (log-odds), clipped like Keras' own cross-entropy (softmax of
    log-probabilities is the same distribution, so temperature and KL mean the same).
    Teacher and student outputs both go through it."""
    from engine.core.tfenv import tf

    t = tf()
    if not output_is_probability(output_kind):
        return output
    op_type = "Sigmoid" if is_binary(output_kind) else "Softmax"
    op = getattr(output, "op", None)
    if op is not None and not t.executing_eagerly():
        try:
            if op.type == op_type:
                return op.inputs[0]
        except AttributeError:
            pass
    eps = 1e-7
    p = t.clip_by_value(output, eps, 1.0 - eps)
    if is_binary(output_kind):
        return t.math.log(p) - t.math.log(1.0 - p)
    return t.math.log(p)


def _guided_model(model: Any, context: TrainContext, temperature: float, alpha: float) -> Any:
    """A Keras model whose ``fit`` trains ``model`` (its only layer: tfmot's callbacks find
    its wrappers) with the distillation loss against the context's teacher."""
    from engine.core.tfenv import keras2, tf

    k, t = keras2(), tf()
    kind = context.output_kind
    teacher = context.teacher
    loss_fn = distill_losses(is_binary(kind), temperature, alpha)
    hard_loss = loss_for(kind)
    hard_loss.reduction = k.losses.Reduction.NONE  # averaged in test_step (see distill_losses)
    replicated = t.distribute.has_strategy()

    class _Guided(k.Model):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.student = model
            self.loss_tracker = k.metrics.Mean(name="loss")
            self.acc = accuracy_metric(kind)

        @property
        def metrics(self) -> list[Any]:
            return [self.loss_tracker, self.acc]

        def call(self, x: Any, training: bool = False) -> Any:
            return self.student(x, training=training)

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            t_logits = t.stop_gradient(as_logits(teacher(x, training=False), kind))
            with t.GradientTape() as tape:
                out = self.student(x, training=True)
                loss, _hard = loss_fn(y, t_logits, as_logits(out, kind))
                if self.student.losses:
                    loss += t.add_n(self.student.losses)
                # The replicas' gradients are summed: weigh each by its share of the global
                # batch, so the update is the single-device one (see replica_share).
                scaled = loss * replica_share(x) if replicated else loss
            variables = self.student.trainable_variables
            grads = tape.gradient(scaled, variables)
            self.optimizer.apply_gradients(
                (g, v) for g, v in zip(grads, variables, strict=True) if g is not None
            )
            self.loss_tracker.update_state(loss)
            self.acc.update_state(y, out)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            out = self.student(x, training=False)
            # comparable to label-only
            self.loss_tracker.update_state(t.reduce_mean(hard_loss(y, out)))
            self.acc.update_state(y, out)
            return {m.name: m.result() for m in self.metrics}

    return _Guided()


def keras_accuracy(
    model: Any,
    splits: Any,
    split: str = "test",
    batch: int = 256,
    output_kind: str | None = None,
) -> float:
    """Accuracy of a Keras model on ``split``: top-1, or for a binary output the threshold of
    ``output_kind`` (read off the model when None)."""
    kind = output_kind or infer_output_kind(model)
    correct = total = 0
    for xb, yb in splits.batches(split, batch):
        pred = np.asarray(model(xb, training=False))
        if pred.shape[-1] == 1 and not is_binary(kind):
            kind = infer_output_kind(model)  # a one-unit output is binary whatever was said
        correct += int(np.sum(predicted_labels(pred, kind) == np.asarray(yb).reshape(-1)))
        total += len(yb)
    return correct / total if total else 0.0


def recalibrate_batchnorm(model: Any, splits: Any, samples: int = 2048, batch: int = 128) -> int:
    """Re-estimate every BatchNormalization's moving mean and variance from ``samples``
    training samples with the model's current weights (a plain average over the batches,
    weights untouched); returns how many layers were updated.

    Fine-tuning that changes weights abruptly (pruning ramps, clustering) leaves the moving
    statistics behind: they average batch statistics of weights that no longer exist, so
    inference (which uses them) falls apart while training accuracy looks fine.
    """
    layers = [
        inner_layer(layer)
        for layer in model.layers
        if type(inner_layer(layer)).__name__ == "BatchNormalization"
    ]
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    try:
        seen = 0
        # batches(), not arrays(): an image folder is streamed from disk.
        for i, (xb, _yb) in enumerate(splits.batches("train", batch), start=1):
            for layer in layers:
                layer.momentum = (i - 1) / i  # running mean over the batches seen
            model(np.asarray(xb), training=True)
            seen += len(xb)
            if seen >= samples:
                break
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
    return len(layers)


def zero_keeper(model: Any) -> Any:
    """Keras callback that keeps today's zero kernel weights at zero while training
    (plain fine-tuning after pruning would otherwise fill them back in)."""
    from engine.core.tfenv import keras2

    variables = _matrix_variables(model)
    masks = [(var, (_value(var) != 0).astype(np.float32)) for var in variables]

    class _KeepZeros(keras2().callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            for var, mask in masks:
                var.assign(var * mask)

        def retarget(self, copy: Any) -> None:
            """Keep the zeros of ``copy`` (same architecture; ``fit``'s mirrored copy)."""
            others = _matrix_variables(copy)
            if len(others) != len(masks):
                raise ValueError("zero_keeper: the copy has other weights than the model")
            masks[:] = [(var, mask) for var, (_old, mask) in zip(others, masks, strict=True)]

    return _KeepZeros()


def _matrix_variables(model: Any) -> list[Any]:
    """The kernel / matrix variables of ``model``'s layers that fine-tuning keeps zeros in."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ in KERNEL_LAYER_TYPES:
            for attr in _KERNEL_ATTRS:
                var = getattr(layer, attr, None)
                if var is not None and hasattr(var, "assign"):
                    found.append(var)
        elif is_weight_layer(layer):  # Embedding tables, RNN and attention matrices
            for var in layer.weights:
                if _short_name(var) in MATRIX_NAMES and hasattr(var, "assign"):
                    found.append(var)
    return found
