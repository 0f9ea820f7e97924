"""Measurements on the real artifact: a ``.tflite`` file, run with LiteRT.

Definitions (DESIGN.md, the same everywhere):

- sizes: bytes of the ``.tflite``; gzip = ``len(gzip.compress(data, 9))``;
- accuracy: top-1 on the test split, running the ``.tflite`` with
  ``ai_edge_litert.interpreter.Interpreter`` (int8 inputs are quantized with the model's
  input scale/zero-point, int8 outputs de-quantized; integer inputs without a scale, such
  as token ids, are fed as they are). A single-unit binary output is scored at a threshold:
  0.5 for ``"binary_sigmoid"``, 0.0 for ``"binary_logit"`` (labels 0/1). A file with a
  fixed batch size (recurrent models are converted with batch 1) is fed that many samples
  at a time;
- sparsity: exact zeros among the kernels of Conv/Dense/DepthwiseConv ops of the exported
  model, read from the ``.tflite`` weight tensors (for quantized weights a weight is zero
  when it equals its channel's zero-point; symmetric int8 weights have zero-point 0).
  Sparse-encoded files (``EXPERIMENTAL_SPARSITY``) are measured on the equivalent
  non-sparse conversion (the pipeline passes it in), because LiteRT hands back the
  compressed value arrays of sparse tensors;
- latency: median wall time of one single-sample inference, LiteRT on this computer's CPU
  with a stated thread count (default 1).
"""

from __future__ import annotations

import gzip
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.outputs import predicted_labels

KERNEL_OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "CONV_3D": 4}
LATENCY_THREADS = 1


def file_sizes(data: bytes) -> dict[str, int]:
    return {"tflite_bytes": len(data), "tflite_gzip_bytes": len(gzip.compress(data, 9))}


def _interpreter(
    model: bytes | str | Path, threads: int = LATENCY_THREADS, delegates: bool = True
) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs: dict[str, Any] = {"num_threads": threads}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(model, bytes):
        return Interpreter(model_content=model, **kwargs)
    return Interpreter(model_path=str(model), **kwargs)


def runtime_for(model: bytes | str | Path) -> str:
    """ "xnnpack" when LiteRT's default CPU delegate runs the model, else "builtin".

    XNNPACK cannot run some graphs (e.g. int8 sparse-encoded FULLY_CONNECTED); LiteRT's
    built-in kernels can, so those files are measured without the delegate.
    """
    try:
        _interpreter(model).allocate_tensors()
        return "xnnpack"
    except RuntimeError:
        return "builtin"


def _ready(model: bytes | str | Path, threads: int, runtime: str | None = None) -> Any:
    """An allocated interpreter on ``runtime`` ("xnnpack"/"builtin"; found out when None)."""
    runtime = runtime or runtime_for(model)
    interp = _interpreter(model, threads, delegates=runtime == "xnnpack")
    interp.allocate_tensors()
    return interp


def io_details(model: bytes | str | Path) -> dict[str, Any]:
    """Input/output dtype, shape, scale and zero-point of a ``.tflite``."""
    interp = _interpreter(model)
    out: dict[str, Any] = {}
    for key, det in (
        ("input", interp.get_input_details()[0]),
        ("output", interp.get_output_details()[0]),
    ):
        scale, zero = det["quantization"]
        out[key] = {
            "dtype": np.dtype(det["dtype"]).name,
            "shape": [int(d) for d in det["shape"]],
            "scale": float(scale),
            "zero_point": int(zero),
        }
    return out


def _quantize_input(x: np.ndarray, det: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(det["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero = det["quantization"]
    if scale == 0:
        if np.issubdtype(dtype, np.integer):
            return np.rint(x).astype(dtype)  # integer ids (Embedding input): fed as they are
        raise ValueError(f"model input of type {dtype.name} without a scale")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize_output(y: np.ndarray, det: dict[str, Any]) -> np.ndarray:
    if np.dtype(det["dtype"]) == np.float32:
        return y
    scale, zero = det["quantization"]
    return (y.astype(np.float32) - zero) * scale


def fixed_batch(model: bytes | str | Path) -> int | None:
    """The batch size a ``.tflite`` is fixed to (its input's shape signature), or None."""
    det = _interpreter(model, delegates=False).get_input_details()[0]
    sig = det.get("shape_signature")
    if sig is None or len(sig) == 0 or int(sig[0]) < 0:
        return None
    return int(sig[0])


def tflite_predictions(
    model: bytes | str | Path,
    splits: Any,
    split: str = "test",
    batch: int = 128,
    runtime: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, labels)`` of a ``.tflite`` over ``split`` (LiteRT, de-quantized outputs).

    A file with a dynamic batch is resized to each batch; a file with a fixed batch size
    (batch 1 for recurrent models) is fed that many samples at a time, the last chunk padded,
    its variable tensors reset before each invoke (LiteRT's fused LSTM ops keep the last
    state in them: without the reset each sequence would start where the previous ended).
    """
    fixed = fixed_batch(model)
    interp = _ready(model, threads=2, runtime=runtime)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    preds: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    current = -1
    for xb, yb in splits.batches(split, batch):
        xb = np.asarray(xb)
        labels.append(np.asarray(yb))
        if fixed is not None:
            for i in range(0, len(xb), fixed):
                chunk = xb[i : i + fixed]
                n = len(chunk)
                if n < fixed:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, axis=0)])
                interp.reset_all_variables()  # a fused LSTM keeps its state between invokes
                interp.set_tensor(inp["index"], _quantize_input(chunk, inp))
                interp.invoke()
                preds.append(_dequantize_output(interp.get_tensor(out["index"]), out)[:n])
            continue
        if len(xb) != current:
            interp.resize_tensor_input(inp["index"], [len(xb), *inp["shape"][1:]])
            interp.allocate_tensors()
            inp = interp.get_input_details()[0]
            out = interp.get_output_details()[0]
            current = len(xb)
        interp.set_tensor(inp["index"], _quantize_input(xb, inp))
        interp.invoke()
        preds.append(_dequantize_output(interp.get_tensor(out["index"]), out))
    if not preds:
        return np.zeros((0,)), np.zeros((0,), dtype=np.int64)
    return np.concatenate(preds), np.concatenate(labels)


def tflite_accuracy(
    model: bytes | str | Path,
    splits: Any,
    split: str = "test",
    batch: int = 128,
    runtime: str | None = None,
    output_kind: str | None = None,
) -> float:
    """Accuracy of a ``.tflite`` on ``split`` (LiteRT): top-1, or thresholded for a binary
    single-unit output (see ``predicted_labels``)."""
    pred, y = tflite_predictions(model, splits, split, batch, runtime)
    if len(y) == 0:
        return 0.0
    return float(np.mean(predicted_labels(pred, output_kind) == y.reshape(len(y), -1)[:, 0]))


def latency_ms(
    model: bytes | str | Path,
    sample: np.ndarray,
    threads: int = LATENCY_THREADS,
    runs: int = 50,
    warmup: int = 5,
    runtime: str | None = None,
) -> float:
    """Median wall time (ms) of one single-sample inference with ``threads`` threads."""
    interp = _ready(model, threads, runtime)
    inp = interp.get_input_details()[0]
    x = _quantize_input(np.asarray(sample)[:1], inp)
    times = []
    for i in range(warmup + runs):
        interp.set_tensor(inp["index"], x)
        t0 = time.perf_counter()
        interp.invoke()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def _layer_name(tensor_name: str, layer_names: list[str]) -> str:
    """Map a TFLite tensor name ("model/conv1/Conv2D", "model/quant_conv1/...") back to a
    Keras layer name; the tensor name itself when nothing matches."""
    parts = tensor_name.replace(";", "/").split("/")
    for part in parts:
        for candidate in (part, part.removeprefix("quant_")):
            if candidate in layer_names:
                return candidate
    matching = [name for name in layer_names if name in tensor_name]
    return max(matching, key=len) if matching else tensor_name


def kernel_weights(
    model: bytes | str | Path, layer_names: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Kernels of Conv/Dense/DepthwiseConv ops as stored in the file, then every other
    weight matrix (LSTM gates, Embedding tables, attention weights: ``_other_weights``).

    Returns ``{layer: {"values": array, "zero_point": per-channel array, "axis": channel
    axis, "dtype": str}}``; float16 weights are followed through their DEQUANTIZE op.
    Read with LiteRT's built-in kernels: no delegate needs to prepare a model that is
    only read.
    """
    interp = _interpreter(model, LATENCY_THREADS, delegates=False)
    interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    producer = {o: op for op in ops for o in op["outputs"]}
    names = layer_names or []
    found: dict[str, dict[str, Any]] = {}
    seen: set[int] = set()
    for op in ops:
        if op["op_name"] not in KERNEL_OPS or len(op["inputs"]) < 2:
            continue
        idx = int(op["inputs"][1])
        src = producer.get(idx)
        if src is not None and src["op_name"] in ("DEQUANTIZE", "DENSIFY"):
            idx = int(src["inputs"][0])
        det = tensors[idx]
        values = interp.get_tensor(idx)
        qp = det.get("quantization_parameters", {})
        zero = np.asarray(qp.get("zero_points", np.zeros(0)), dtype=np.int64)
        axis = int(qp.get("quantized_dimension", 0)) if zero.size > 1 else KERNEL_OPS[op["op_name"]]
        name = _layer_name(det["name"], names)
        if name in found:
            name = f"{name}#{len(found)}"
        found[name] = {
            "values": np.asarray(values),
            "zero_point": zero,
            "axis": axis,
            "dtype": np.dtype(det["dtype"]).name,
        }
        seen.add(idx)
    _other_weights(model, interp, ops, tensors, producer, names, seen, found)
    return found


def _other_weights(
    model: bytes | str | Path,
    interp: Any,
    ops: list[dict[str, Any]],
    tensors: dict[int, dict[str, Any]],
    producer: dict[int, dict[str, Any]],
    names: list[str],
    seen: set[int],
    found: dict[str, dict[str, Any]],
) -> None:
    """Add the weight matrices of ops other than Conv/Dense to ``found``: LSTM gates
    (``UNIDIRECTIONAL_SEQUENCE_LSTM``), an Embedding's table (``GATHER``), attention and
    einsum weights (``BATCH_MATMUL``)... -- every constant float or int8 input of rank ≥ 2.
    Integer index constants (paddings, shapes) and variable state are not weights."""
    from engine.tflite.flatbuffer import constant_tensors

    data = model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes()
    constants = constant_tensors(bytes(data))
    for op in ops:
        if op["op_name"] in KERNEL_OPS or op["op_name"] in ("DEQUANTIZE", "DENSIFY"):
            continue
        for raw in op["inputs"]:
            idx = int(raw)
            src = producer.get(idx)
            if src is not None and src["op_name"] in ("DEQUANTIZE", "DENSIFY"):
                idx = int(src["inputs"][0])
            if idx < 0 or idx in seen or idx not in constants:
                continue
            det = tensors[idx]
            dtype = np.dtype(det["dtype"])
            if len(det["shape"]) < 2 or dtype.name not in ("float32", "float16", "int8"):
                continue
            seen.add(idx)
            qp = det.get("quantization_parameters", {})
            zero = np.asarray(qp.get("zero_points", np.zeros(0)), dtype=np.int64)
            axis = int(qp.get("quantized_dimension", 0)) if zero.size > 1 else 0
            name = _layer_name(det["name"], names)
            if name not in names and op["outputs"].size:  # unnamed constant: the op's layer
                name = _layer_name(tensors[int(op["outputs"][0])]["name"], names)
            if name in found:
                name = f"{name}#{len(found)}"
            found[name] = {
                "values": np.asarray(interp.get_tensor(idx)),
                "zero_point": zero,
                "axis": axis,
                "dtype": dtype.name,
            }


def _zeros(entry: dict[str, Any]) -> np.ndarray:
    values, zero, axis = entry["values"], entry["zero_point"], entry["axis"]
    if zero.size == 0 or not np.issubdtype(values.dtype, np.integer):
        return values == 0
    if zero.size == 1:
        return values == zero[0]
    shape = [1] * values.ndim
    shape[axis] = -1
    return values == zero.reshape(shape)


def _max_distinct(rows: np.ndarray) -> int:
    """The largest number of distinct values in one row of ``rows`` (0 when empty)."""
    if rows.size == 0:
        return 0
    ordered = np.sort(rows, axis=1)
    return int((np.diff(ordered, axis=1) != 0).sum(axis=1).max()) + 1


def sparsity_report(
    model: bytes | str | Path, layer_names: list[str] | None = None
) -> dict[str, Any]:
    """Exact zeros among exported kernels: overall, per layer, and the largest number of
    distinct values in any output channel (per layer), measured on the file."""
    kernels = kernel_weights(model, layer_names)
    per_layer: dict[str, float] = {}
    distinct: dict[str, int] = {}
    zeros_total = size_total = 0
    for name, entry in kernels.items():
        z = _zeros(entry)
        per_layer[name] = float(z.mean()) if z.size else 0.0
        zeros_total += int(z.sum())
        size_total += int(z.size)
        values = np.moveaxis(entry["values"], entry["axis"], 0).reshape(
            entry["values"].shape[entry["axis"]], -1
        )
        distinct[name] = _max_distinct(values)
    return {
        "sparsity": zeros_total / size_total if size_total else 0.0,
        "per_layer_sparsity": per_layer,
        "max_distinct_per_channel": distinct,
        "kernel_dtypes": {n: e["dtype"] for n, e in kernels.items()},
    }


def measure_tflite(
    model: bytes,
    splits: Any,
    layer_names: list[str] | None = None,
    sparsity_source: bytes | None = None,
    threads: int = LATENCY_THREADS,
    output_kind: str | None = None,
) -> dict[str, Any]:
    """Everything DESIGN.md asks of one artifact, measured on it (``output_kind``: see
    ``predicted_labels``)."""
    sample = next(iter(splits.batches("test", 1)))[0]
    runtime = runtime_for(model)
    out: dict[str, Any] = {
        **file_sizes(model),
        "accuracy": tflite_accuracy(model, splits, runtime=runtime, output_kind=output_kind),
        "latency_ms": latency_ms(model, sample, threads=threads, runtime=runtime),
        "runtime": runtime,
    }
    out.update(sparsity_report(sparsity_source or model, layer_names))
    return out
