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

from engine.core.errors import BadInputError, FeatherweightError, UnsupportedModelError
from engine.models.support import compressed_layers
from engine.techniques.registry import (
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    guided_of,
    learning_rate_knob,
    register,
    teacher_knobs,
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
    fit(
        qmodel,
        context,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        guided=guided_of(step),
    )
    return qmodel


RECURRENT_LAYERS = frozenset(
    {
        "LSTM",
        "GRU",
        "SimpleRNN",
        "RNN",
        "Bidirectional",
        "ConvLSTM1D",
        "ConvLSTM2D",
        "ConvLSTM3D",
    }
)


def recurrent_layers(model: Any) -> list[str]:
    """Names of the recurrent layers in ``model`` (nested ones included), in order."""
    found = []
    for layer in all_layers(model):
        if type(layer).__name__ in RECURRENT_LAYERS and layer.name not in found:
            found.append(layer.name)
    return found


def all_layers(model: Any) -> list[Any]:
    """The layers of ``model`` and, recursively, of its nested models and wrappers."""
    layers = []
    for layer in getattr(model, "layers", []) or []:
        layers.append(layer)
        layers.extend(all_layers(layer))
        for attr in ("layer", "forward_layer", "backward_layer"):  # wrappers, Bidirectional
            inner = getattr(layer, attr, None)
            if inner is not None and hasattr(inner, "name"):
                layers.append(inner)
    return layers


UNROLLED_FOR_INT8 = ("GRU", "SimpleRNN")  # no fused LiteRT op: a WHILE loop, which the
# int8 calibrator cannot run (it crashed the process here, TF 2.21): unrolled for int8


def _unrollable(layer: Any) -> bool:
    inner = getattr(layer, "layer", None) if type(layer).__name__ == "Bidirectional" else layer
    if inner is None or type(inner).__name__ not in UNROLLED_FOR_INT8:
        return False
    return not inner.get_config().get("unroll")


def loop_layers(model: Any) -> list[str]:
    """Top-level recurrent layers with no fused LiteRT op (GRU, SimpleRNN, also inside
    ``Bidirectional``): a float conversion runs them in a ``WHILE`` loop; int8 unrolls them."""
    return [layer.name for layer in getattr(model, "layers", []) or [] if _unrollable(layer)]


def unrolled(model: Any) -> Any:
    """A copy of ``model`` with its ``loop_layers`` unrolled over the time steps (same
    weights, same outputs), or ``model`` itself when there is none."""
    if not loop_layers(model):
        return model
    from engine.core.tfenv import keras2

    k = keras2()

    def clone(layer: Any) -> Any:
        if not _unrollable(layer):
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        if type(layer).__name__ == "Bidirectional":
            config["layer"]["config"]["unroll"] = True
            if config.get("backward_layer"):
                config["backward_layer"]["config"]["unroll"] = True
            return layer.__class__.from_config(config)
        return layer.__class__.from_config({**config, "unroll": True})

    copy = k.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def conversion_notes(model: Any, mode: str) -> list[str]:
    """What the conversion does to the model's layers that the user should know."""
    notes = []
    if recurrent_layers(model):
        notes.append("recurrent layers: converted with a fixed batch of 1 (LiteRT's sequence ops)")
    loops = loop_layers(model)
    if loops and mode == "int8":
        notes.append(
            f"{loops} (GRU/SimpleRNN) have no fused LiteRT op: unrolled over the time steps "
            "for int8 (plain FULLY_CONNECTED/LOGISTIC/TANH ops)"
        )
    elif loops:
        notes.append(f"{loops} (GRU/SimpleRNN) have no fused LiteRT op: they run as a WHILE loop")
    return notes


def first_layer_normalization(model: Any) -> str | None:
    """The name of a ``Normalization`` layer right after the model's input, or None."""
    for layer in getattr(model, "layers", []) or []:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        return str(layer.name) if kind == "Normalization" else None
    return None


def keep_float_names(value: Any) -> list[str] | None:
    """The ``keep_float`` knob as a list of layer names: None = automatic (find the layers
    responsible for an int8 drop), ``[]`` = pure int8. Accepts a list or a comma-separated
    string (how a text field gives it). Raises BadInputError for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
        return [n.strip() for n in value if n.strip()]
    raise BadInputError(f"keep_float must be a list of layer names, got {value!r}")


def convert(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    *,
    sparse: bool | None = None,
) -> bytes:
    """Convert a Keras 2 model to ``.tflite`` bytes as ``step`` (a quantize step) says.

    ``sparse`` overrides ``step["sparse"]`` (used to build the non-sparse twin that
    sparsity is measured on). Recurrent models are converted with a fixed batch of 1 (the
    fused LSTM op needs static shapes). In int8 mode the layers named by
    ``step["keep_float"]`` stay float. No accuracy check here: the pipeline calls
    ``engine.tflite.int8_debug.checked_int8`` for that. Raises FeatherweightError when the
    converter fails, BadInputError for a ``keep_float`` name the model does not have.
    """
    use_sparse = step.get("sparse", False) if sparse is None else sparse
    keep = keep_float_names(step.get("keep_float")) if step["mode"] == "int8" else None
    return convert_plain(model, splits, step, sparse=use_sparse, keep_float=keep or [])


def convert_plain(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    *,
    sparse: bool,
    keep_float: list[str] | tuple[str, ...] = (),
    keep_input_float: bool = False,
) -> bytes:
    """One conversion, no checking: ``step``'s mode; in int8 the layers ``keep_float`` stay
    float (their ops are left out of quantization); ``keep_input_float`` keeps a float
    input even with ``io: int8`` (always so when a first-layer ``Normalization`` is kept
    float). Raises FeatherweightError when the converter fails."""
    mode = step["mode"]
    keep = list(keep_float) if mode == "int8" else []
    if mode == "int8":
        model = unrolled(model)
    norm = first_layer_normalization(model)
    keep_input_float = keep_input_float or bool(norm and norm in keep)

    def run(conv: Any) -> bytes:
        # With layers kept float, the file is sparsified after quantizing (not before).
        use_sparse = sparse and not keep
        configured = _configured(conv, model, splits, step, mode, use_sparse, keep_input_float)
        if not keep:
            return bytes(configured.convert())
        return _quantize_keeping_float(
            configured,
            model,
            keep,
            sparse=sparse,
            int8_input=_int8_io(step, model) and not keep_input_float,
            int8_output=step.get("io", "float") == "int8",
        )

    return with_converter(model, run, label=mode)


def with_converter(model: Any, run: Any, *, label: str) -> Any:
    """``run(converter)`` on the first converter of ``model`` that works: the lean SavedModel
    with a dynamic batch (batch 1 first for recurrent models), the lean SavedModel with
    batch 1, then ``from_keras_model``. Raises FeatherweightError with the first error."""
    attempts: list[tuple[bool, int | None]] = (
        [(True, 1), (False, None)] if recurrent_layers(model) else [(True, None), (True, 1)]
    )
    attempts.append((False, None))
    first_error: Exception | None = None
    for lean, batch in dict.fromkeys(attempts):
        try:
            with _converter(model, lean=lean, batch=batch) as conv:
                if conv is None:
                    continue
                return run(conv)
        except FeatherweightError:
            raise
        except Exception as exc:  # the converter raises many types; the next path may work
            first_error = first_error or exc
    error = first_error or RuntimeError("no converter could be built")
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    raise FeatherweightError(f"TFLite conversion ({label}) failed: {first}") from error


# The converter names a fused sequence op's output after the op, not the layer
# ("tfl.unidirectional_sequence_lstm"): such tensors belong to the model's recurrent layers.
FUSED_RNN_TENSORS = (
    "tfl.unidirectional_sequence_lstm",
    "tfl.bidirectional_sequence_lstm",
    "tfl.unidirectional_sequence_rnn",
)


def recurrent_names(model: Any) -> list[str]:
    """Top-level recurrent and ``Bidirectional`` layers of ``model``: the layers a fused
    sequence op of its ``.tflite`` is attributed to."""
    return [
        layer.name
        for layer in getattr(model, "layers", []) or []
        if type(layer).__name__ in (*RECURRENT_LAYERS, "Bidirectional")
    ]


def layer_of_tensor(
    tensor_name: str, layer_names: list[str], recurrent: list[str] | tuple[str, ...] = ()
) -> str | None:
    """The Keras layer a TFLite tensor name ("model/conv1/Conv2D;model/conv1/BiasAdd")
    comes from (the innermost one named in ``layer_names``), or None. A fused sequence op's
    tensor goes to the first of ``recurrent`` (``recurrent_names``)."""
    parts = tensor_name.replace(";", "/").replace(":", "/").split("/")
    for part in reversed(parts):
        for candidate in (part, part.removeprefix("quant_")):
            if candidate in layer_names:
                return candidate
    if recurrent and tensor_name.startswith(FUSED_RNN_TENSORS):
        return recurrent[0]
    return None


def tensor_in_layers(
    tensor_name: str,
    names: list[str] | set[str],
    recurrent: list[str] | tuple[str, ...] = (),
) -> bool:
    """True when a TFLite tensor name has one of ``names`` as a path component (a kept
    layer covers the ops of its nested layers: "bidirectional/forward_lstm/..."), or is a
    fused sequence op's and ``names`` holds one of the ``recurrent`` layers (the file does
    not say which: all fused sequence ops are kept float then)."""
    parts = tensor_name.replace(";", "/").replace(":", "/").split("/")
    if any(p in names or p.removeprefix("quant_") in names for p in parts):
        return True
    return tensor_name.startswith(FUSED_RNN_TENSORS) and any(n in names for n in recurrent)


def op_output_names(data: bytes) -> list[str]:
    """Names of the tensors written by the ops of a ``.tflite`` (all subgraphs), read from
    the flatbuffer."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    out: dict[str, None] = {}
    for sg in model.subgraphs or []:
        tensors = sg.tensors or []
        for op in sg.operators or []:
            for i in op.outputs if op.outputs is not None else []:
                if i >= 0:
                    name = tensors[i].name
                    out[name.decode() if isinstance(name, bytes) else str(name)] = None
    return list(out)


def _quantize_keeping_float(
    conv: Any,
    model: Any,
    keep: list[str],
    *,
    sparse: bool,
    int8_input: bool,
    int8_output: bool,
) -> bytes:
    """Full-int8 conversion with the ops of the layers ``keep`` left in float.

    Calibrates once (``_experimental_calibrate_only``), then quantizes with TFLite's MLIR
    quantizer, the ops whose output tensors belong to those layers denylisted (what
    ``tf.lite.experimental.QuantizationDebugger`` does with ``denylisted_nodes``).
    """
    from tensorflow.lite.python import convert as tfl_convert

    layer_names = [layer.name for layer in all_layers(model)]
    unknown = [name for name in keep if name not in layer_names]
    if unknown:
        raise BadInputError(
            f"keep_float names {unknown}, which the model does not have "
            f"(layers: {', '.join(layer_names[:30])})"
        )
    from engine.core.tfenv import tf

    t = tf()
    conv.inference_input_type = conv.inference_output_type = t.float32  # set further down
    conv._experimental_calibrate_only = True
    calibrated = conv.convert()
    recurrent = recurrent_names(model)
    nodes = [n for n in op_output_names(calibrated) if tensor_in_layers(n, set(keep), recurrent)]
    if not nodes:
        raise FeatherweightError(f"keep_float: no converted op belongs to {keep}")
    data = tfl_convert.mlir_quantize(
        calibrated,
        disable_per_channel=conv._experimental_disable_per_channel,
        input_data_type=t.int8 if int8_input else t.float32,
        output_data_type=t.int8 if int8_output else t.float32,
        denylisted_nodes=nodes,
    )
    if sparse:
        data = tfl_convert.mlir_sparsify(data)
    return bytes(data)


def with_int8_converter(model: Any, splits: Any, step: dict[str, Any], run: Any) -> Any:
    """``run(converter)`` with a converter set up for full-int8 as ``step`` says (float I/O,
    no sparse encoding): what ``QuantizationDebugger`` is given."""
    plain = {**step, "io": "float"}
    return with_converter(
        model,
        lambda conv: run(_configured(conv, model, splits, plain, "int8", False)),
        label="int8 debug",
    )


def input_dtype(model: Any) -> str:
    """The numpy dtype name of the model's (first) input, "float32" when unknown."""
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        return "float32"
    dtype = inputs[0].dtype
    return str(getattr(dtype, "name", dtype))


def _int8_io(step: dict[str, Any], model: Any) -> bool:
    """True when the int8 file gets int8 input and output (``io: int8``, float input)."""
    return step.get("io", "float") == "int8" and input_dtype(model).startswith("float")


def _configured(
    conv: Any,
    model: Any,
    splits: Any,
    step: dict[str, Any],
    mode: str,
    use_sparse: bool,
    keep_input_float: bool = False,
) -> Any:
    """``conv`` set up for ``mode`` (optimizations, representative data, I/O types).

    The representative data has the model's input dtype: integer token ids are fed as
    int32 and the input stays int32 (no scale); ``io: int8`` then quantizes the output only.
    """
    import numpy as np

    from engine.core.tfenv import tf

    t = tf()
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
        dtype = np.dtype(input_dtype(model))

        def representative() -> Any:
            for x in splits.calibration(n):
                yield [np.asarray(x).astype(dtype)]

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if step.get("io", "float") == "int8":
            if _int8_io(step, model) and not keep_input_float:
                conv.inference_input_type = t.int8
            conv.inference_output_type = t.int8
    return conv


@contextmanager
def _converter(model: Any, *, lean: bool, batch: int | None = None) -> Iterator[Any]:
    """A ``TFLiteConverter`` for ``model``; with ``lean``, from a lean SavedModel (or None).

    ``from_keras_model`` saves the whole Keras model first, tracing every layer's call
    functions; on a 50-layer model that is half the conversion time. The lean SavedModel
    tracks only the variables and one ``serving_default`` function with the same input and
    output names, which converts to the same kernels. ``batch`` fixes the batch size of its
    signature (1 for recurrent layers: LiteRT's fused LSTM needs a static shape, and
    ``from_keras_model`` fails with "'tf.TensorListReserve' op requires element_shape to be
    static"). The lean path yields None when it cannot be written (several inputs).
    """
    from engine.core.tfenv import tf

    t = tf()
    if not lean:
        yield t.lite.TFLiteConverter.from_keras_model(model)
        return
    folder = tempfile.mkdtemp(prefix="fw-convert-")
    try:
        yield _lean_converter(t, model, Path(folder), batch)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _lean_converter(t: Any, model: Any, folder: Path, batch: int | None = None) -> Any | None:
    """The lean-SavedModel converter, or None when ``model`` cannot be written that way."""
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) != 1:
        return None
    spec = inputs[0]
    name = spec.name.split(":")[0]
    names = list(model.output_names)
    signature = t.TensorSpec([batch, *spec.shape[1:]], spec.dtype, name=name)

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
        (epochs_knob(2), learning_rate_knob(1e-5), *teacher_knobs()),
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
    keep = ""
    if step["mode"] == "int8" and step.get("keep_float") is not None:
        names = keep_float_names(step.get("keep_float"))
        keep = f", float layers {', '.join(names)}" if names else ", pure int8"
    drop = step.get("max_int8_drop", 2.0)
    if step["mode"] == "int8" and drop != 2.0:
        keep += f", int8 may lose {drop:g} points"
    return f"{step['mode']} .tflite{io}{sparse}{keep}"


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
            Knob(
                "max_int8_drop",
                "float",
                2.0,
                "int8 is compared with the float model on the validation split; over this "
                "many accuracy points the layers responsible are found and kept in float.",
                label="Max int8 drop (points)",
                minimum=0.0,
                maximum=100.0,
            ),
            Knob(
                "keep_float",
                "names",
                None,
                "Layers kept in float in an int8 model. None (empty) = automatic: found when "
                "int8 loses more than the max drop; an empty list = pure int8; names = "
                "exactly those layers.",
                label="Keep float",
                optional=True,
            ),
        ),
        stage_label="Converting to .tflite",
        order=100,
        final=True,
        summary=_summary,
    )


register(QAT())
register(Quantize())
