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

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.core.errors import FeatherweightError, UnsupportedModelError
from engine.models.support import compressed_layers
from engine.techniques.registry import (
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    learning_rate_knob,
    register,
    training_summary,
)
from engine.techniques.training import fit, fresh_copy


def qat_model(model: Any, step: dict[str, Any], context: TrainContext) -> Any:
    """Quantization-aware fine-tuning; returns the QAT model (convert it with ``convert``).

    Annotates the layers ``qat_support`` accepts (the others stay float until the int8
    conversion). ``context.done`` names earlier steps ("prune", "cluster") whose structure
    must be preserved.
    """
    from engine.core.tfenv import keras2, tfmot

    k, mot = keras2(), tfmot()
    q = mot.quantization.keras
    after, reporter = context.done, context.reporter
    names = set(compressed_layers(model, "qat"))

    def annotate(layer: Any) -> Any:
        if layer.name in names:
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
    fit(qmodel, context, epochs=step["epochs"], learning_rate=step["learning_rate"])
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
    from engine.core.tfenv import tf

    t = tf()
    mode = step["mode"]
    use_sparse = step.get("sparse", False) if sparse is None else sparse
    try:
        with _converter(model, lean=True) as conv:
            if conv is not None:
                return bytes(_configured(t, conv, splits, step, mode, use_sparse).convert())
    except Exception:  # noqa: S110 - the usual path below reports the converter's error
        pass
    try:
        with _converter(model, lean=False) as conv:
            return bytes(_configured(t, conv, splits, step, mode, use_sparse).convert())
    except Exception as exc:  # the converter raises many types; name it for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FeatherweightError(f"TFLite conversion ({mode}) failed: {first}") from exc


def _configured(
    t: Any, conv: Any, splits: Any, step: dict[str, Any], mode: str, use_sparse: bool
) -> Any:
    """``conv`` set up for ``mode`` (optimizations, representative data, I/O types)."""
    import numpy as np

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
    return conv


@contextmanager
def _converter(model: Any, *, lean: bool) -> Iterator[Any]:
    """A ``TFLiteConverter`` for ``model``; with ``lean``, from a lean SavedModel (or None).

    ``from_keras_model`` saves the whole Keras model first, tracing every layer's call
    functions; on a 50-layer model that is half the conversion time. The lean SavedModel
    tracks only the variables and one ``serving_default`` function with the same input and
    output names, which converts to the same kernels. ``convert`` falls back to
    ``from_keras_model`` when the lean path yields None (several inputs, a failing save)
    or its conversion fails.
    """
    from engine.core.tfenv import tf

    t = tf()
    if not lean:
        yield t.lite.TFLiteConverter.from_keras_model(model)
        return
    folder = tempfile.mkdtemp(prefix="fw-convert-")
    try:
        yield _lean_converter(t, model, Path(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _lean_converter(t: Any, model: Any, folder: Path) -> Any | None:
    """The lean-SavedModel converter, or None when ``model`` cannot be written that way."""
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        return None
    spec = inputs[0]
    name = spec.name.split(":")[0]
    names = list(model.output_names)
    signature = t.TensorSpec([None, *spec.shape[1:]], spec.dtype, name=name)

    def serve(x: Any) -> dict[str, Any]:
        out = model(x, training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(names, outs, strict=True))

    module = t.Module()
    module.variables_ = list(model.variables)
    module.serve = t.function(serve, input_signature=[signature])
    t.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return t.lite.TFLiteConverter.from_saved_model(str(folder))


class QAT(Technique):
    spec = StepSpec(
        "qat",
        "Quantization-aware training",
        "Fine-tune with simulated int8 so the final int8 model loses less accuracy; keeps "
        "earlier sparsity and clusters.",
        (epochs_knob(2), learning_rate_knob(1e-5)),
        stage_label="Quantization-aware training",
        order=50,
        requires_final={"mode": "int8"},
        last_before_final=True,
        summary=training_summary,
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        return StepResult(model, export_model=qat_model(model, step, context))


def _summary(step: dict[str, Any]) -> str:
    io = f", {step['io']} input/output" if step["mode"] == "int8" else ""
    sparse = ", sparse encoding" if step.get("sparse") else ""
    return f"{step['mode']} .tflite{io}{sparse}"


class Quantize(Technique):
    """The final conversion: a spec only (``final=True``); the pipeline's convert stage
    calls ``convert`` with it."""

    spec = StepSpec(
        "quantize",
        "Quantization / export",
        "Convert to .tflite: float32, float16, dynamic-range or full-integer int8.",
        (
            Knob(
                "mode",
                "choice",
                "int8",
                "int8: weights and activations 8-bit (needs "
                "calibration data); dynamic: 8-bit weights only; float16: half-size weights.",
                choices=("int8", "dynamic", "float16", "float32"),
            ),
            Knob(
                "io",
                "choice",
                "float",
                "Input/output type of an int8 model: float keeps "
                "your pre-processing; int8 is what microcontrollers want.",
                choices=("float", "int8"),
                label="Input/output type",
            ),
            Knob(
                "calibration_samples",
                "int",
                300,
                "Training samples used to calibrate int8 activation ranges.",
                minimum=1,
                maximum=100000,
            ),
            Knob(
                "sparse",
                "bool",
                False,
                "Sparse encoding of weights, so pruning also "
                "shrinks the raw file (experimental in LiteRT).",
                label="Sparse encoding",
            ),
        ),
        stage_label="Converting to .tflite",
        order=100,
        final=True,
        summary=_summary,
    )


register(QAT())
register(Quantize())
