"""int8 that never fails silently: compare with float, find the ops responsible, keep them float.

``checked_int8(model, splits, step, ...)`` converts ``model`` to full-integer int8 (the quantize
step ``step``), scores it with LiteRT on the **validation** split and compares with the float
Keras model on the same samples. When the drop is over ``step["max_int8_drop"]`` accuracy
points (default 2) and ``step["keep_float"]`` is None (automatic), it runs TensorFlow Lite's
``QuantizationDebugger`` (only then: it costs a calibration, an instrumented model and a run
on TensorFlow's deprecated interpreter), ranks the layers by their int8 error (RMSE of the
NumericVerify difference over the tensor's quantization scale, the debugger's own
recommendation; the TFLite tensor names are mapped back to Keras layers) and reconverts with
the worst layers kept in float (1, 2, 4, 8 of them) until the drop is within the threshold.
``keep_float: []`` forces pure int8 (measured and warned about, never changed); a list of
layer names keeps exactly those float.

A first-layer ``Normalization`` on raw features whose ranges differ by more than
``RANGE_RATIO`` (one int8 input scale would leave the small ones a handful of levels) is kept
in float up front, so the file keeps a float input; a warning says so.

The result says whether the file is full-integer (read from the file, engine.tflite.report).
"""

from __future__ import annotations

import csv
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.techniques.quantize import (
    all_layers,
    convert_plain,
    first_layer_normalization,
    input_dtype,
    keep_float_names,
    layer_of_tensor,
    recurrent_names,
    with_int8_converter,
)

DEFAULT_MAX_DROP = 2.0  # accuracy points
RANGE_RATIO = 16.0  # features whose ranges differ more than this share one int8 scale badly
DEBUG_SAMPLES = 64  # samples the QuantizationDebugger runs (its cost counts)
TRIES = (1, 2, 4, 8)  # how many of the worst layers are kept float, in turn


@dataclass
class Int8Check:
    """The int8 file and what the check found (``to_dict`` is JSON-ready, without ``data``)."""

    data: bytes
    split: str = "val"
    float_accuracy: float | None = None
    pure_int8_accuracy: float | None = None
    int8_accuracy: float | None = None
    max_drop_points: float = DEFAULT_MAX_DROP
    keep_float: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    ranked_layers: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    full_integer: bool = True
    float_ops: list[str] = field(default_factory=list)
    debugger_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def drop_points(self) -> float | None:
        if self.float_accuracy is None or self.int8_accuracy is None:
            return None
        return (self.float_accuracy - self.int8_accuracy) * 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "float_accuracy": self.float_accuracy,
            "pure_int8_accuracy": self.pure_int8_accuracy,
            "int8_accuracy": self.int8_accuracy,
            "drop_points": self.drop_points,
            "max_drop_points": self.max_drop_points,
            "keep_float": list(self.keep_float),
            "reasons": dict(self.reasons),
            "ranked_layers": list(self.ranked_layers),
            "attempts": list(self.attempts),
            "full_integer": self.full_integer,
            "float_ops": list(self.float_ops),
            "debugger_seconds": self.debugger_seconds,
            "warnings": list(self.warnings),
        }


def feature_range_ratio(splits: Any, n: int = 300) -> float:
    """Largest / smallest per-feature range (last axis) over ``n`` calibration samples."""
    xs = [np.asarray(x, dtype=np.float64) for x in splits.calibration(n)]
    if not xs:
        return 1.0
    x = np.concatenate(xs).reshape(-1, xs[0].shape[-1])
    ranges = x.max(axis=0) - x.min(axis=0)
    ranges = ranges[ranges > 0]
    if ranges.size < 2:
        return 1.0
    return float(ranges.max() / ranges.min())


def layer_errors(
    model: Any, splits: Any, step: dict[str, Any], samples: int = DEBUG_SAMPLES
) -> list[dict[str, Any]]:
    """Keras layers ranked by int8 error, worst first, measured by ``QuantizationDebugger``.

    Each entry: ``{"layer", "rmse_over_scale", "tensors"}``; the error of a layer is the
    largest RMSE / scale of its tensors (quantization noise alone is about 0.29).
    """
    from engine.core.tfenv import tf

    t = tf()
    dtype = np.dtype(input_dtype(model))

    def dataset() -> Any:
        for x in splits.calibration(samples):
            yield [np.asarray(x).astype(dtype)]

    def run(conv: Any) -> list[dict[str, str]]:
        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": known, ours
            warnings.simplefilter("ignore")
            debugger = t.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=dataset
            )
            debugger.run()
        buf = io.StringIO()
        debugger.layer_statistics_dump(buf)
        return list(csv.DictReader(io.StringIO(buf.getvalue())))

    rows = with_int8_converter(model, splits, step, run)
    names = _layer_names(model)
    recurrent = recurrent_names(model)
    per_layer: dict[str, dict[str, Any]] = {}
    for row in rows:
        try:
            err = float(np.sqrt(float(row["mean_squared_error"])) / float(row["scale"]))
        except (KeyError, ValueError, ZeroDivisionError):
            continue
        layer = layer_of_tensor(row.get("tensor_name", ""), names, recurrent)
        if layer is None or not np.isfinite(err):
            continue
        entry = per_layer.setdefault(layer, {"layer": layer, "rmse_over_scale": 0.0, "tensors": 0})
        entry["rmse_over_scale"] = max(entry["rmse_over_scale"], err)
        entry["tensors"] += 1
    return sorted(per_layer.values(), key=lambda e: -e["rmse_over_scale"])


def _layer_names(model: Any) -> list[str]:
    return [layer.name for layer in all_layers(model)]


def _file_integer(data: bytes) -> dict[str, Any]:
    from ai_edge_litert.tools import flatbuffer_utils

    from engine.tflite.report import full_integer

    return full_integer(flatbuffer_utils.read_model_from_bytearray(bytearray(data)))


def checked_int8(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    *,
    sparse: bool = False,
    output_kind: str | None = None,
    log: Callable[[str], None] | None = None,
) -> Int8Check:
    """Convert ``model`` to int8 as ``step`` says and check it against float (module doc).

    Raises FeatherweightError when the converter fails, BadInputError for a ``keep_float``
    name the model does not have.
    """
    from engine.techniques.training import keras_accuracy
    from engine.tflite.metrics import tflite_accuracy

    say = log or (lambda _msg: None)
    threshold = float(step.get("max_int8_drop", DEFAULT_MAX_DROP))
    explicit = keep_float_names(step.get("keep_float"))
    check = Int8Check(data=b"", max_drop_points=threshold)
    keep = list(explicit or [])
    norm = first_layer_normalization(model)
    keep_input = bool(norm and norm in keep)
    if explicit is None and norm and input_dtype(model).startswith("float"):
        ratio = feature_range_ratio(splits, int(step.get("calibration_samples", 300)))
        if ratio > RANGE_RATIO:
            keep, keep_input = [norm], True
            check.reasons[norm] = (
                f"first-layer Normalization on raw features whose ranges differ {ratio:,.0f}x: "
                "one int8 input scale cannot carry them"
            )
            check.warnings.append(
                f"'{norm}' (Normalization) kept in float and the input stays float32: the "
                f"features' ranges differ {ratio:,.0f}x and one int8 input scale cannot carry "
                "them"
            )
            if step.get("io") == "int8":
                check.warnings.append("io int8 asked, but the input stays float32 (see above)")

    def conv(layers: list[str]) -> bytes:
        return convert_plain(
            model, splits, step, sparse=sparse, keep_float=layers, keep_input_float=keep_input
        )

    check.data = conv(keep)
    check.keep_float = keep
    if splits.n_val == 0:
        check.split = ""
        check.warnings.append("no validation split: int8 was not compared with float")
        return _finish(check)
    check.float_accuracy = keras_accuracy(model, splits, "val", output_kind=output_kind)
    check.int8_accuracy = tflite_accuracy(check.data, splits, "val", output_kind=output_kind)
    check.pure_int8_accuracy = check.int8_accuracy if not keep else None
    check.attempts.append({"keep_float": list(keep), "accuracy": check.int8_accuracy})
    first_drop = check.drop_points or 0.0
    if first_drop <= threshold:
        return _finish(check)
    if explicit is not None:
        what = "pure int8" if not explicit else f"keep_float {explicit}"
        check.warnings.append(
            f"int8 lost {first_drop:.1f} points on the validation split (over "
            f"{threshold:g}); {what} was asked, so nothing else was kept in float"
        )
        return _finish(check)
    say(f"int8 lost {first_drop:.1f} points; looking for the layers responsible")
    t0 = time.monotonic()
    ranked = [e for e in layer_errors(model, splits, step) if e["layer"] not in keep]
    check.debugger_seconds = round(time.monotonic() - t0, 3)
    check.ranked_layers = ranked[:10]
    best = (check.int8_accuracy, check.data, keep)
    for k in TRIES:
        if k > len(ranked) and k != TRIES[0]:
            break
        layers = keep + [e["layer"] for e in ranked[:k]]
        if layers == best[2]:
            continue
        data = conv(layers)
        acc = tflite_accuracy(data, splits, "val", output_kind=output_kind)
        check.attempts.append({"keep_float": layers, "accuracy": acc})
        say(f"kept {layers} in float: validation accuracy {acc:.2%}")
        if acc > best[0]:
            best = (acc, data, layers)
        if (check.float_accuracy - acc) * 100.0 <= threshold:
            break
    check.int8_accuracy, check.data, check.keep_float = best
    for e in ranked:
        if e["layer"] in check.keep_float:
            check.reasons[e["layer"]] = (
                f"int8 error {e['rmse_over_scale']:.2f} x its quantization step "
                "(QuantizationDebugger)"
            )
    drop = check.drop_points or 0.0
    if check.keep_float:
        check.warnings.append(
            f"int8 lost {first_drop:.1f} points on the validation split (over {threshold:g}); "
            f"kept in float: "
            + "; ".join(f"'{n}' ({check.reasons.get(n, 'asked')})" for n in check.keep_float)
            + f"; now {drop:.1f} points"
        )
    if drop > threshold:
        check.warnings.append(
            f"int8 still loses {drop:.1f} points on the validation split after keeping "
            f"{len(check.keep_float)} layer(s) in float; consider QAT or float16"
        )
    return _finish(check)


def _finish(check: Int8Check) -> Int8Check:
    integer = _file_integer(check.data)
    check.full_integer = bool(integer["ok"])
    check.float_ops = list(integer["float_ops"])
    if not check.full_integer and check.keep_float:
        check.warnings.append(
            "the model is not full-integer (float ops "
            f"{check.float_ops}); TFLite Micro and int8-only accelerators need full-integer"
        )
    return check
