"""Quantization: quantization-aware training (QAT) and the final ``.tflite`` conversion.

- ``qat_model``: wraps the supported layers with tfmot's QAT; after pruning and/or
  clustering it uses tfmot's collaborative schemes so the zeros and clusters survive
  (``Default8BitPrunePreserveQuantizeScheme``; ``Default8BitClusterPreserveQuantizeScheme
  (preserve_sparsity=True)`` = PCQAT), then fine-tunes.
- ``convert``: float32 (no optimization), float16, dynamic-range, or full-integer int8 with a
  representative dataset (``calibration_samples`` training samples), float or int8 input/
  output, and optional sparse encoding (``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``).
"""

from __future__ import annotations

from typing import Any

from engine.core.errors import FeatherweightError, UnsupportedModelError
from engine.core.events import Reporter
from engine.techniques.training import SizeEstimator, fit, fresh_copy

QAT_LAYER_TYPES = (
    "Conv2D",
    "DepthwiseConv2D",
    "Dense",
    "Conv1D",
    "SeparableConv2D",
    "BatchNormalization",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "Add",
    "Concatenate",
    "Activation",
    "ReLU",
    "Dropout",
    "ZeroPadding2D",
    "Softmax",
    "UpSampling2D",
)


def qat_model(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    *,
    after: set[str],
    batch_size: int,
    seed: int,
    reporter: Reporter,
    from_logits: bool,
    estimator: SizeEstimator | None = None,
) -> Any:
    """Quantization-aware fine-tuning; returns the QAT model (convert it with ``convert``).

    ``after`` names earlier steps ("prune", "cluster") whose structure must be preserved.
    """
    from engine.core.tfenv import keras2, tfmot

    k, mot = keras2(), tfmot()
    q = mot.quantization.keras

    def annotate(layer: Any) -> Any:
        if type(layer).__name__ in QAT_LAYER_TYPES:
            return q.quantize_annotate_layer(layer)
        return layer

    try:
        annotated = k.models.clone_model(fresh_copy(model), clone_function=annotate)
    except ValueError as exc:
        raise UnsupportedModelError(f"cannot prepare the model for QAT: {exc}") from None

    if "cluster" in after:
        scheme = mot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity="prune" in after
        )
        reporter.log("QAT keeps the clusters" + (" and zeros (PCQAT)" if "prune" in after else ""))
    elif "prune" in after:
        scheme = mot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        reporter.log("QAT keeps the pruned zeros (PQAT)")
    else:
        scheme = None
    with q.quantize_scope():
        qmodel = q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)
    fit(
        qmodel,
        splits,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        batch_size=batch_size,
        seed=seed,
        reporter=reporter,
        from_logits=from_logits,
        estimator=estimator,
    )
    return qmodel


def convert(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    *,
    sparse: bool | None = None,
) -> bytes:
    """Convert a Keras 2 model to ``.tflite`` bytes as ``step`` (a quantize step) says.

    ``sparse`` overrides ``step["sparse"]`` (used to build the non-sparse twin that
    sparsity is measured on). Raises FeatherweightError when the converter fails.
    """
    import numpy as np

    from engine.core.tfenv import tf

    t = tf()
    mode = step["mode"]
    use_sparse = step.get("sparse", False) if sparse is None else sparse
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    opts = []
    if mode != "float32":
        opts.append(t.lite.Optimize.DEFAULT)
    if use_sparse:
        opts.append(t.lite.Optimize.EXPERIMENTAL_SPARSITY)
    conv.optimizations = opts
    if mode == "float16":
        conv.target_spec.supported_types = [t.float16]
    elif mode == "int8":
        n = int(step.get("calibration_samples", 300))

        def representative() -> Any:
            for x in splits.calibration(n):
                yield [np.asarray(x, dtype=np.float32)]

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if step.get("io", "float") == "int8":
            conv.inference_input_type = t.int8
            conv.inference_output_type = t.int8
    try:
        return bytes(conv.convert())
    except Exception as exc:  # the converter raises many types; name it for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FeatherweightError(f"TFLite conversion ({mode}) failed: {first}") from exc
