"""Sensitivity analysis: per layer, what pruning, clustering, filter removal and int8 cost.

``analyze(model_spec, data_spec, ...) -> dict`` loads the model and data like ``compress``
(``engine.pipeline.prepare.load_inputs``: same refusals, same split), measures the Keras
model on the **validation** split once (the baseline), then for every layer alone the
one-shot curves of ``engine.techniques.oneshot`` (no training, weights restored after each
point) and, unless ``quantization=False``, the per-layer int8 error of TensorFlow Lite's
QuantizationDebugger (``engine.tflite.int8_debug.layer_errors``) with, for the worst
``KEEP_FLOAT_TRIES`` layers, the validation accuracy of the int8 file with that one layer
kept float. Stages (events): ``analyze_baseline``, ``analyze_prune``, ``analyze_cluster``,
``analyze_filters``, ``analyze_int8`` (those with an empty grid are left out); progress per
evaluation; cancellable between evaluations (Cancelled; the model is never changed).

The document (``sensitivity.json``, ``SCHEMA_VERSION`` 1; docs/project-format.md)::

    {"schema_version": 1, "kind": "featherweight.sensitivity", "created", "seconds",
     "versions", "model": {"path", "sha256"}, "dataset": {"path"|"name", "sha256"},
     "split": DataSplits.describe() + {"train", "val", "test"}, "output_kind",
     "baseline": {"split": "val", "samples", "accuracy", "loss"},
     "grids": {"prune": [...], "cluster": [...], "filters": [...]},
     "layers": [{"name", "class", "params", "prunable_params", "share_params",
                 "bytes_float32", "bytes_int8", "share_bytes", "baseline_accuracy",
                 "prune"|null, "cluster"|null, "filters"|null,
                 "int8_error"|null, "int8_kept_float_accuracy"|null}],
     "quantization": {"float_accuracy", "int8_accuracy", "ranking": [worst first],
                      "kept_float": [{"layer", "int8_error", "accuracy"}],
                      "error": str|null} | null}

``layers`` lists every layer holding parameters (``share_params`` sums to 1);
``bytes_int8`` estimates the layer in a full-int8 file (matrices 1 byte per weight, vectors
such as biases 4 bytes) and ``share_bytes`` is its share of the estimated int8 total.

Helpers: ``tolerated(entry, max_loss_pts, key)`` and ``per_layer_recipe(doc, target,
technique)`` (per-layer values from ``engine.techniques.allocation.allocate``);
``write_sensitivity(doc, out_dir)`` writes ``out_dir/sensitivity.json`` atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import BadInputError, Cancelled
from engine.core.events import Reporter
from engine.techniques.oneshot import (  # read_sensitivity: re-exported, part of this API
    FILE_NAME,
    KIND,
    SCHEMA_VERSION,
    read_sensitivity,  # noqa: F401
)

PRUNE_GRID = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
CLUSTER_GRID = (64, 32, 16, 8, 4)
FILTER_GRID = (0.25, 0.5, 0.75)
KEEP_FLOAT_TRIES = 5  # worst int8 layers measured with that one layer kept float
MIN_KEEP_FLOAT_ERROR = 0.05  # int8 error (x the quantization step) worth a keep-float try
CURVE_KEYS = {"prune": "sparsity", "cluster": "clusters", "filters": "ratio"}
TECHNIQUE_CURVES = {"prune": "prune", "prune_filters": "filters", "cluster": "cluster"}


def check_grid(values: Any, kind: str) -> tuple[Any, ...]:
    """A grid as a sorted tuple: fractions in (0, 1) for prune/filters, integer cluster counts
    >= 2 for cluster (largest first). Raises BadInputError."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [v for v in values.replace(";", ",").split(",") if v.strip()]
    try:
        items = list(values)
    except TypeError:
        raise BadInputError(f"{kind} grid must be a list of numbers, got {values!r}") from None
    out: list[Any] = []
    for v in items:
        try:
            if kind == "cluster":
                f = float(v)
                if f != int(f):
                    raise ValueError
                n: Any = int(f)
                ok = n >= 2
            else:
                n = float(v)
                ok = 0.0 < n < 1.0
        except (TypeError, ValueError):
            ok = False
            n = v
        if isinstance(v, bool) or not ok:
            what = "integers >= 2" if kind == "cluster" else "fractions between 0 and 1"
            raise BadInputError(f"{kind} grid values must be {what}, got {v!r}")
        out.append(n)
    return tuple(sorted(set(out), reverse=(kind == "cluster")))


def _sha256_of(spec: Any) -> str | None:
    from engine.core.cache import sha256_file, sha256_tree
    from engine.models.loading import resolve_path

    try:
        path = Path(resolve_path(spec))
        return sha256_tree(path) if path.is_dir() else sha256_file(path)
    except OSError:
        return None


def _dataset_ref(data_spec: Any) -> dict[str, Any]:
    if str(data_spec) == "demo":
        from engine.pipeline.prepare import DEMO_DATA_ID

        return {"name": "demo", "sha256": hashlib.sha256(DEMO_DATA_ID.encode()).hexdigest()}
    path = Path(str(data_spec))
    from engine.core.cache import sha256_file, sha256_tree

    try:
        sha = sha256_tree(path) if path.is_dir() else sha256_file(path)
    except OSError:
        sha = None
    return {"path": str(path), "sha256": sha}


def _layer_sizes(layer: Any) -> tuple[int, int, int]:
    """(params, float32 bytes, int8 bytes estimate) of one layer."""
    params = matrix = 0
    for w in layer.weights:
        n = int(np.prod(w.shape)) if len(w.shape) else 1
        params += n
        if len(w.shape) >= 2:
            matrix += n
    return params, params * 4, matrix + (params - matrix) * 4


def _layer_table(model: Any) -> list[dict[str, Any]]:
    from engine.techniques.oneshot import prunable_layers, prunable_variables

    prunable = {layer.name: layer for layer in prunable_layers(model)}
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        params, b32, b8 = _layer_sizes(layer)
        if params == 0:
            continue
        pp = 0
        if layer.name in prunable:
            pp = sum(int(np.prod(v.shape)) for v in prunable_variables(layer))
        rows.append(
            {
                "name": layer.name,
                "class": type(layer).__name__,
                "params": params,
                "prunable_params": pp,
                "share_params": 0.0,
                "bytes_float32": b32,
                "bytes_int8": b8,
                "share_bytes": 0.0,
                "baseline_accuracy": None,
                "prune": None,
                "cluster": None,
                "filters": None,
                "int8_error": None,
                "int8_kept_float_accuracy": None,
            }
        )
    total_p = sum(r["params"] for r in rows) or 1
    total_b = sum(r["bytes_int8"] for r in rows) or 1
    for r in rows:
        r["share_params"] = r["params"] / total_p
        r["share_bytes"] = r["bytes_int8"] / total_b
    return rows


def analyze(
    model_spec: Any,
    data_spec: Any,
    *,
    scale: str | None = "auto",
    allow_unsafe: bool = False,
    split_seed: int | None = None,
    val_fraction: float | None = None,
    prune_grid: Sequence[float] | None = PRUNE_GRID,
    cluster_grid: Sequence[int] | None = CLUSTER_GRID,
    filter_grid: Sequence[float] | None = FILTER_GRID,
    quantization: bool = True,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """The sensitivity document of the model on the validation split (module doc).

    An empty or None grid skips that technique (its curves are null). Raises BadInputError
    (model, data, grids; a dataset without a validation split), UnsafeModelError, Cancelled.
    """
    from engine.core import tfenv
    from engine.pipeline.prepare import load_inputs
    from engine.techniques import oneshot

    reporter = reporter or Reporter()
    grids = {
        "prune": check_grid(prune_grid, "prune"),
        "cluster": check_grid(cluster_grid, "cluster"),
        "filters": check_grid(filter_grid, "filters"),
    }
    t0 = time.monotonic()
    loaded, splits = load_inputs(
        model_spec, data_spec, scale, allow_unsafe, (split_seed, val_fraction)
    )
    if splits.n_val == 0:
        raise BadInputError("the dataset has no validation samples to analyze on")
    model, kind = loaded.model, loaded.output_kind
    stages = [("analyze_baseline", "Measuring the model on the validation split")]
    labels = {
        "prune": ("analyze_prune", "Pruning each layer alone"),
        "cluster": ("analyze_cluster", "Clustering each layer alone"),
        "filters": ("analyze_filters", "Removing filters of each layer alone"),
    }
    stages += [labels[k] for k in ("prune", "cluster", "filters") if grids[k]]
    if quantization:
        stages.append(("analyze_int8", "Measuring each layer's int8 error"))
    count = len(stages)
    index = {name: i for i, (name, _) in enumerate(stages)}

    def stage(name: str) -> Any:
        return reporter.stage(name, dict(stages)[name], index[name], count)

    try:
        rows = _layer_table(model)
        by_name = {r["name"]: r for r in rows}
        with stage("analyze_baseline"):
            acc, loss = oneshot.evaluate(model, splits, "val", kind)
            reporter.progress(1, 1)
        for r in rows:
            r["baseline_accuracy"] = acc
        curve_fns: dict[str, Any] = {
            "prune": oneshot.prune_curves,
            "cluster": oneshot.cluster_curves,
            "filters": oneshot.filter_curves,
        }
        for key in ("prune", "cluster", "filters"):
            if not grids[key]:
                continue
            with stage(labels[key][0]):
                kwargs: dict[str, Any] = {"reporter": reporter}
                if key == "cluster":
                    kwargs["baseline"] = (acc, loss)
                curves = curve_fns[key](model, splits, kind, grids[key], **kwargs)
            for name, curve in curves.items():
                if name in by_name:
                    by_name[name][key] = curve
        quant = None
        if quantization:
            with stage("analyze_int8"):
                quant = _quantization(model, splits, kind, acc, rows, reporter)
    finally:
        oneshot.release()
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - t0, 3),
        "versions": tfenv.versions(),
        "model": {"path": str(model_spec), "sha256": _sha256_of(model_spec)},
        "dataset": _dataset_ref(data_spec),
        "split": {
            **splits.describe(),
            "train": splits.n_train,
            "val": splits.n_val,
            "test": splits.n_test,
        },
        "output_kind": kind,
        "baseline": {"split": "val", "samples": int(splits.n_val), "accuracy": acc, "loss": loss},
        "grids": {k: list(v) for k, v in grids.items()},
        "layers": rows,
        "quantization": quant,
        "warnings": list(loaded.warnings),
    }


def _quantization(
    model: Any,
    splits: Any,
    kind: str,
    float_acc: float,
    rows: list[dict[str, Any]],
    reporter: Reporter,
) -> dict[str, Any]:
    """The quantization block; a converter failure is reported in ``error``, never raised."""
    from engine.pipeline.recipe import fill_step
    from engine.techniques.quantize import convert_plain
    from engine.tflite.int8_debug import layer_errors
    from engine.tflite.metrics import tflite_accuracy

    step = fill_step({"type": "quantize", "mode": "int8"}, 1)
    block: dict[str, Any] = {
        "float_accuracy": float_acc,
        "int8_accuracy": None,
        "ranking": [],
        "kept_float": [],
        "error": None,
    }
    by_name = {r["name"]: r for r in rows}
    total = 2 + KEEP_FLOAT_TRIES
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        reporter.progress(min(done, total), total)
        reporter.check_cancel()

    try:
        reporter.check_cancel()
        data = convert_plain(model, splits, step, sparse=False)
        block["int8_accuracy"] = tflite_accuracy(data, splits, "val", output_kind=kind)
        tick()
        ranked = layer_errors(model, splits, step)
        tick()
    except Cancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - the curves stand; int8 says why it is missing
        block["error"] = " ".join(str(exc).split()) or type(exc).__name__
        reporter.log(f"analyze: int8 could not be measured: {block['error']}", "warning")
        return block
    block["ranking"] = [e["layer"] for e in ranked]
    for e in ranked:
        if e["layer"] in by_name:
            by_name[e["layer"]]["int8_error"] = float(e["rmse_over_scale"])
    # Ops that add no error (pooling, reshapes: ~0) are not worth a conversion each.
    worst = [e for e in ranked if e["rmse_over_scale"] >= MIN_KEEP_FLOAT_ERROR]
    for e in worst[:KEEP_FLOAT_TRIES]:
        try:
            data = convert_plain(model, splits, step, sparse=False, keep_float=[e["layer"]])
            acc: float | None = tflite_accuracy(data, splits, "val", output_kind=kind)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - one failed conversion is one missing number
            reporter.log(f"analyze: keeping {e['layer']} float failed: {exc}", "warning")
            acc = None
        block["kept_float"].append(
            {"layer": e["layer"], "int8_error": float(e["rmse_over_scale"]), "accuracy": acc}
        )
        if e["layer"] in by_name:
            by_name[e["layer"]]["int8_kept_float_accuracy"] = acc
        tick()
    reporter.progress(total, total)
    return block


# --------------------------------------------------------------------------- helpers


def tolerated(
    layer_entry: dict[str, Any],
    max_loss_pts: float,
    key: str = "prune",
    baseline: float | None = None,
) -> float | None:
    """The most aggressive grid value of the layer's ``key`` curve ("prune", "filters":
    largest fraction; "cluster": fewest clusters) such that it and every milder grid value
    lose at most ``max_loss_pts`` accuracy points against ``baseline`` (default the entry's
    ``baseline_accuracy``). 0.0 (prune/filters) or None (cluster) when even the mildest
    loses more; None when the layer has no such curve."""
    curve = layer_entry.get(key)
    if not curve:
        return None
    base = baseline if baseline is not None else layer_entry.get("baseline_accuracy")
    if base is None:
        raise ValueError("tolerated() needs the baseline accuracy")
    field = CURVE_KEYS[key]
    points = sorted(curve, key=lambda e: e[field], reverse=(key == "cluster"))
    best: float | None = 0.0 if key != "cluster" else None
    for e in points:
        if (base - e["accuracy"]) * 100.0 > max_loss_pts + 1e-9:
            break
        best = e[field]
    return best


def per_layer_recipe(
    doc: dict[str, Any], target: float, technique: str = "prune"
) -> dict[str, float]:
    """Per-layer values for a global ``target`` from the analysis ``doc``, from
    ``engine.techniques.allocation.allocate("sensitivity", ...)`` weighted by the layers'
    prunable parameters: "prune" -> sparsity per layer (``target`` the global sparsity),
    "prune_filters" -> filter ratio per layer (``target`` the global ratio), "cluster" ->
    cluster count per layer (``target`` a cluster count: the size-weighted mean of the index
    bits, log2(count), equals log2(target); counts are rounded to integers >= 2). Raises
    BadInputError (no curves for that technique, impossible target)."""
    from engine.techniques.allocation import allocate

    if technique not in TECHNIQUE_CURVES:
        raise BadInputError(
            f"unknown technique {technique!r}; use one of {', '.join(TECHNIQUE_CURVES)}"
        )
    key = TECHNIQUE_CURVES[technique]
    field = CURVE_KEYS[key]
    base = doc.get("baseline") or {}
    curves: dict[str, list[dict[str, Any]]] = {}
    sizes: dict[str, int] = {}
    for layer in doc.get("layers") or []:
        curve = layer.get(key)
        if not curve:
            continue
        sizes[layer["name"]] = int(layer.get("prunable_params") or layer.get("params") or 0)
        curves[layer["name"]] = [dict(e) for e in curve]
    if not curves:
        raise BadInputError(f"the analysis has no {key} curves (rerun it with a {key} grid)")
    if key == "cluster":
        return _cluster_recipe(curves, sizes, float(target), allocate, base.get("accuracy"))
    if base.get("accuracy") is not None:
        zero = {field: 0.0, "accuracy": base["accuracy"], "loss": base.get("loss")}
        for curve in curves.values():
            if all(e[field] != 0 for e in curve):
                curve.insert(0, dict(zero))
    return allocate("sensitivity", float(target), sizes, curves=curves, key=field)


_INDEX_BITS = 32.0  # a float32 weight; clustered: log2(count) bits of index


def _cluster_recipe(
    curves: dict[str, list[dict[str, Any]]],
    sizes: dict[str, int],
    target: float,
    allocate: Any,
    base_accuracy: float | None,
) -> dict[str, float]:
    """Cluster counts through the allocation of "saved bits" fractions 1 - log2(n) / 32."""
    if target < 2:
        raise BadInputError(f"a cluster count must be at least 2, got {target:g}")

    def frac(n: float) -> float:
        return 1.0 - float(np.log2(n)) / _INDEX_BITS

    converted = {
        name: sorted(
            ({"saved": frac(e["clusters"]), "accuracy": e["accuracy"]} for e in curve),
            key=lambda e: e["saved"],
        )
        for name, curve in curves.items()
    }
    if base_accuracy is not None:
        for curve in converted.values():
            curve.insert(0, {"saved": 0.0, "accuracy": base_accuracy})
    fractions = allocate(
        "sensitivity",
        frac(target),
        sizes,
        curves=converted,
        key="saved",
        max_value=frac(2),
    )
    return {
        name: float(max(2, int(round(2.0 ** ((1.0 - f) * _INDEX_BITS)))))
        for name, f in fractions.items()
    }


def write_sensitivity(doc: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/sensitivity.json`` atomically (temp file in the folder, fsync,
    ``os.replace``); creates ``out_dir``. Returns the path. Raises BadInputError when the
    folder cannot be written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output folder {out} is a file, not a folder")
    target = out / FILE_NAME
    tmp = out / f".{FILE_NAME}.{secrets.token_hex(4)}.tmp"
    try:
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
        with open(tmp, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def format_sensitivity(doc: dict[str, Any], max_loss_pts: float = 1.0) -> str:
    """A compact per-layer table for the command line."""
    b = doc["baseline"]
    lines = [
        f"baseline (validation, {b['samples']} samples): accuracy {b['accuracy']:.2%}, "
        f"loss {b['loss']:.4f}",
        f"{'layer':28}{'class':18}{'params':>10}{'% size':>8}{'tol. sparsity':>15}{'int8 err':>10}",
    ]
    shown = [
        r
        for r in doc["layers"]
        if any(r.get(k) is not None for k in ("prune", "cluster", "filters", "int8_error"))
    ]
    for r in shown:
        tol = tolerated(r, max_loss_pts, "prune") if r.get("prune") else None
        err = r.get("int8_error")
        lines.append(
            f"{r['name'][:27]:28}{r['class'][:17]:18}{r['params']:>10,}"
            f"{r['share_bytes'] * 100:>7.1f}%"
            f"{'-' if tol is None else f'{tol:.0%}':>15}"
            f"{'-' if err is None else f'{err:.2f}':>10}"
        )
    hidden = len(doc["layers"]) - len(shown)
    if hidden:
        lines.append(f"({hidden} other layer(s) with parameters and nothing measured: --json)")
    lines.append(
        f"tol. sparsity: largest pruning sparsity of the layer alone losing at most "
        f"{max_loss_pts:g} point(s) on the validation split; % size: share of the int8 file "
        "(estimate)"
    )
    q = doc.get("quantization")
    if q:
        if q.get("error"):
            lines.append(f"int8: not measured ({q['error']})")
        elif q.get("int8_accuracy") is not None:
            lines.append(
                f"int8 (validation): {q['int8_accuracy']:.2%} vs float {q['float_accuracy']:.2%}"
            )
            for k in q.get("kept_float") or []:
                kept = k.get("accuracy")
                what = "failed" if kept is None else f"{kept:.2%}"
                lines.append(
                    f"  keeping {k['layer']} float: {what} (int8 error {k['int8_error']:.2f})"
                )
    for w in doc.get("warnings") or []:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
