"""Run a recipe on a model and measure the result: the engine's main entry point.

Public API (the worker, the CLI and the GUI call exactly these):

- ``compress(model_spec, data_spec, recipe, out_dir, *, scale, allow_unsafe, reporter) -> dict``
  runs the recipe's steps in order, converts, measures the artifact and writes into
  ``out_dir``: ``model.tflite``, ``model.keras`` (the compressed Keras 2 model, wrappers
  stripped; after QAT it is ``model.h5`` instead, the QAT model as trained, which loads
  inside ``tfmot.quantization.keras.quantize_scope()``), ``baseline.tflite``,
  ``recipe.json`` and,
  last, ``metrics.json`` (returned). Everything is built in a hidden temporary sub-folder
  and moved into place at the end, so a cancelled or failed run leaves nothing that looks
  finished. An output folder that cannot be written is a BadInputError before any training.
- ``evaluate_baseline(model_spec, data_spec, *, scale, allow_unsafe, reporter) -> dict``
- ``check_data(model_spec, data_spec, *, scale, allow_unsafe) -> dict``
- ``format_metrics(metrics) -> str``

Every number in ``metrics.json`` is measured on the written files (engine.tflite.metrics).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError
from engine.core.events import Event, Reporter
from engine.pipeline.recipe import Recipe
from engine.pipeline.steps import run_train_steps

ARTIFACTS = (
    "baseline.tflite",
    "model.tflite",
    "model.keras",
    "model.h5",
    "recipe.json",
    "report.json",
)
# Input normalization stored in the .tflite metadata: x_model = (x_pixels - mean) / std.
NORMALIZATION = {"1/255": (0.0, 255.0), "-1..1": (127.5, 127.5)}
METRICS_FILE = "metrics.json"


def _load(
    model_spec: Any,
    data_spec: Any,
    scale: str | None,
    allow_unsafe: bool,
    seed: int = 0,
    val_fraction: float | None = None,
) -> tuple[Any, Any]:
    from engine.data.datasets import load_data
    from engine.models.loading import load_model

    loaded = load_model(model_spec, allow_unsafe=allow_unsafe)
    splits = load_data(
        data_spec,
        loaded.input_shape,
        loaded.num_classes,
        scale=scale,
        seed=seed,
        model_has_rescaling=loaded.has_rescaling,
        **({} if val_fraction is None else {"val_fraction": val_fraction}),
    )
    return loaded, splits


def check_data(
    model_spec: Any, data_spec: Any, *, scale: str | None = "auto", allow_unsafe: bool = False
) -> dict[str, Any]:
    """Load the model and the dataset, check they fit; return ``DataSplits.describe()``."""
    _, splits = _load(model_spec, data_spec, scale, allow_unsafe)
    return splits.describe()


def _measure_baseline(loaded: Any, splits: Any) -> tuple[dict[str, Any], bytes]:
    from engine.techniques.quantize import convert
    from engine.techniques.training import is_kernel_layer, keras_accuracy
    from engine.tflite.metrics import LATENCY_THREADS, measure_tflite

    data = convert(loaded.model, splits, {"mode": "float32"})
    names = [layer.name for layer in loaded.model.layers if is_kernel_layer(layer)]
    measured = measure_tflite(data, splits, names)
    block = {
        "accuracy": measured["accuracy"],
        "keras_accuracy": keras_accuracy(loaded.model, splits),
        "params": int(loaded.model.count_params()),
        "tflite_bytes": measured["tflite_bytes"],
        "tflite_gzip_bytes": measured["tflite_gzip_bytes"],
        "latency_ms": measured["latency_ms"],
        "latency_threads": LATENCY_THREADS,
        "runtime": measured["runtime"],
        "sparsity": measured["sparsity"],
        "output_kind": loaded.output_kind,
    }
    return block, data


def evaluate_baseline(
    model_spec: Any,
    data_spec: Any,
    *,
    scale: str | None = "auto",
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """The baseline block: the model as float32 ``.tflite``, measured on the test split."""
    reporter = reporter or Reporter()
    with reporter.stage("baseline", "Measuring the original model"):
        loaded, splits = _load(model_spec, data_spec, scale, allow_unsafe)
        block, _ = _measure_baseline(loaded, splits)
    return block


def _prepare_out_dir(out_dir: str | Path) -> tuple[Path, Path, bool]:
    """Create ``out_dir`` (if needed) and a hidden work folder inside it.

    Returns (out, work, created). Raises BadInputError when it cannot be written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output folder {out} is a file, not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".featherweight-partial-", dir=out))
        (work / ".write-test").write_bytes(b"ok")
        (work / ".write-test").unlink()
    except OSError as exc:
        raise BadInputError(
            f"cannot write to the output folder {out}: {exc.strerror or exc}"
        ) from None
    return out, work, created


def _publish(work: Path, out: Path) -> None:
    """Move the finished files into ``out``; ``metrics.json`` last."""
    old = out / METRICS_FILE
    if old.exists():
        old.unlink()  # a half-replaced folder must not look finished
    for name in ARTIFACTS:
        src = work / name
        if src.exists():
            os.replace(src, out / name)
        elif (out / name).exists():
            (out / name).unlink()  # stale file from an earlier run
    os.replace(work / METRICS_FILE, out / METRICS_FILE)


def _add_series_recorder(reporter: Reporter, series: list[Event]) -> Any:
    original = reporter.on_event

    def record(event: Event) -> None:
        if event.get("type") == "metric":
            series.append({k: v for k, v in event.items() if k != "type"})
        original(event)

    reporter.on_event = record
    return original


def compress(
    model_spec: Any,
    data_spec: Any,
    recipe: Recipe,
    out_dir: str | Path,
    *,
    scale: str | None = "auto",
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
    split_seed: int | None = None,
    val_fraction: float | None = None,
) -> dict[str, Any]:
    """Run ``recipe`` on the model, export, measure, write ``out_dir``; return the metrics.

    The dataset is split with ``split_seed`` (default: the recipe's seed) and
    ``val_fraction`` (default: ``engine.data.datasets.DEFAULT_VAL_FRACTION``).

    Raises BadInputError (model, data, output folder), Cancelled (token), or
    FeatherweightError (a technique failed, e.g. the target sparsity was not reached).
    """
    reporter = reporter or Reporter()
    out, work, created = _prepare_out_dir(out_dir)
    series: list[Event] = []
    original_sink = _add_series_recorder(reporter, series)
    ok = False
    try:
        split = (recipe.seed if split_seed is None else split_seed, val_fraction)
        metrics = _run(
            model_spec, data_spec, recipe, work, scale, allow_unsafe, reporter, series, split
        )
        reporter.check_cancel()
        _publish(work, out)
        ok = True
        return metrics
    finally:
        reporter.on_event = original_sink
        shutil.rmtree(work, ignore_errors=True)
        if not ok and created:
            try:
                out.rmdir()  # only if we made it and it is still empty
            except OSError:
                pass


def _run(
    model_spec: Any,
    data_spec: Any,
    recipe: Recipe,
    work: Path,
    scale: str | None,
    allow_unsafe: bool,
    reporter: Reporter,
    series: list[Event],
    split: tuple[int, float | None],
) -> dict[str, Any]:
    from engine.core import tfenv
    from engine.techniques.quantize import convert
    from engine.techniques.training import SizeEstimator, is_kernel_layer, keras_accuracy
    from engine.tflite.metrics import LATENCY_THREADS, io_details, measure_tflite

    timings: dict[str, float] = {}
    warnings: list[str] = list(recipe.warnings)
    train_steps = [s for s in recipe.steps if s["type"] != "quantize"]
    count = len(train_steps) + 3
    index = 0

    @contextmanager
    def stage(name: str, label: str) -> Iterator[None]:
        nonlocal index
        t0 = time.monotonic()
        with reporter.stage(name, label, index, count):
            yield
        timings[name] = round(time.monotonic() - t0, 3)
        index += 1

    tfenv.set_seed(recipe.seed)
    with stage("baseline", "Measuring the original model"):
        loaded, splits = _load(model_spec, data_spec, scale, allow_unsafe, *split)
        warnings.extend(loaded.warnings)
        baseline, baseline_bytes = _measure_baseline(loaded, splits)
        (work / "baseline.tflite").write_bytes(baseline_bytes)
    final = recipe.final_quantize
    estimator = SizeEstimator.calibrated(
        final["mode"], loaded.model, baseline["tflite_bytes"], baseline["tflite_gzip_bytes"]
    )
    model, export_model, done, steps_info = run_train_steps(
        loaded, splits, recipe, train_steps, stage, reporter, estimator, warnings, allow_unsafe
    )
    kind = loaded.output_kind

    with stage("convert", "Converting to .tflite"):
        data = convert(export_model, splits, final)
        twin = convert(export_model, splits, final, sparse=False) if final["sparse"] else None
        (work / "model.tflite").write_bytes(data)
        _write_metadata(work / "model.tflite", splits)
        if twin is not None and len(data) >= len(twin):
            warnings.append(
                f"sparse encoding did not shrink the file ({len(data)} bytes vs {len(twin)} "
                "without it); it pays off only at high sparsity"
            )
        keras_file = _save_keras(
            export_model, work, splits, quantized="qat" in done, warnings=warnings
        )
        if keras_file is None and "qat" in done:
            keras_file = _save_keras(model, work, splits, quantized=False, warnings=warnings)
            if keras_file:
                warnings.append(
                    "model.keras holds the float model before QAT (tfmot cannot save this "
                    "QAT model); model.tflite is the QAT result"
                )

    with stage("evaluate", "Measuring the compressed model"):
        written = (work / "model.tflite").read_bytes()
        layer_names = [layer.name for layer in model.layers if is_kernel_layer(layer)]
        measured = measure_tflite(written, splits, layer_names, sparsity_source=twin)
        compressed = {
            "accuracy": measured["accuracy"],
            "keras_accuracy": keras_accuracy(export_model, splits),
            "sparsity": measured["sparsity"],
            "per_layer_sparsity": measured["per_layer_sparsity"],
            "max_distinct_per_channel": measured["max_distinct_per_channel"],
            "kernel_dtypes": measured["kernel_dtypes"],
            "tflite_bytes": measured["tflite_bytes"],
            "tflite_gzip_bytes": measured["tflite_gzip_bytes"],
            "latency_ms": measured["latency_ms"],
            "latency_threads": LATENCY_THREADS,
            "runtime": measured["runtime"],
            "params": int(model.count_params()),
            "format": final["mode"],
            "sparse_encoding": bool(final["sparse"]),
            "sparsity_measured_on": "non-sparse twin conversion" if twin else "model.tflite",
            "io": io_details(written),
            "output_kind": kind,
        }
    metrics: dict[str, Any] = {
        "baseline": baseline,
        "compressed": compressed,
        "ratio_gzip": baseline["tflite_gzip_bytes"] / compressed["tflite_gzip_bytes"],
        "ratio_raw": baseline["tflite_bytes"] / compressed["tflite_bytes"],
        "accuracy_drop": baseline["accuracy"] - compressed["accuracy"],
        "recipe": recipe.to_dict(),
        "data": splits.describe(),
        "model": {"path": loaded.path, "source_format": loaded.source_format},
        "steps": steps_info,
        "versions": tfenv.versions(),
        "latency_threads": LATENCY_THREADS,
        "timings": timings,
        "series": series,
        "warnings": warnings,
        "files": {
            "model": "model.tflite",
            "baseline": "baseline.tflite",
            "keras": keras_file,
            "recipe": "recipe.json",
        },
    }
    from engine.tflite.report import write_report

    write_report(work / "model.tflite", work, file_name="model.tflite")
    metrics["files"]["report"] = "report.json"
    (work / "recipe.json").write_text(
        json.dumps(recipe.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    (work / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def _write_metadata(tflite: Path, splits: Any) -> None:
    """Store class labels and the input normalization in the exported ``.tflite``."""
    from engine.tflite.metadata import write_metadata

    mean, std = NORMALIZATION.get(splits.scale, (None, None))
    write_metadata(tflite, labels=list(splits.class_names), mean=mean, std=std)


def _save_keras(
    model: Any, work: Path, splits: Any, *, quantized: bool, warnings: list[str]
) -> str | None:
    """Save the compressed Keras 2 model and check it loads back with the same outputs.

    A QAT model is written as ``model.h5`` (load it inside
    ``tfmot.quantization.keras.quantize_scope()``): tfmot's quantize layers do not
    round-trip through ``.keras`` (tf_keras expects 5 variables, finds 3). Returns the file
    name, or None (with a warning) when the model could not be saved faithfully.
    """
    from contextlib import nullcontext

    import numpy as np

    from engine.core.tfenv import keras2, tfmot

    name = "model.h5" if quantized else "model.keras"
    path = work / name
    scope = tfmot().quantization.keras.quantize_scope() if quantized else nullcontext()
    x = next(iter(splits.batches("test", 16)))[0]
    try:
        with scope:
            model.save(path)
            again = keras2().models.load_model(path, compile=False)
        diff = float(np.max(np.abs(np.asarray(again(x)) - np.asarray(model(x)))))
        if diff > 1e-4:
            raise ValueError(f"reloaded model differs from the trained one (max {diff:.2g})")
    except Exception as exc:  # saving is a convenience; the .tflite is the product
        path.unlink(missing_ok=True)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.append(f"{name} not written: {first}")
        return None
    return name


def format_metrics(metrics: dict[str, Any]) -> str:
    """A short human summary of ``metrics.json`` for the command line."""
    b, c = metrics["baseline"], metrics["compressed"]

    def kib(n: float) -> str:
        return f"{n / 1024:,.1f} KiB"

    lines = [
        f"recipe: {metrics['recipe'].get('name', '')}  ({c['format']}"
        + (", sparse encoding" if c.get("sparse_encoding") else "")
        + ")",
        f"{'':22}{'baseline':>14}{'compressed':>14}",
        f"{'accuracy (test)':22}{b['accuracy']:>14.2%}{c['accuracy']:>14.2%}",
        f"{'.tflite size':22}{kib(b['tflite_bytes']):>14}{kib(c['tflite_bytes']):>14}",
        f"{'.tflite gzip':22}{kib(b['tflite_gzip_bytes']):>14}{kib(c['tflite_gzip_bytes']):>14}",
        f"{'kernel sparsity':22}{b.get('sparsity', 0.0):>14.1%}{c['sparsity']:>14.1%}",
        f"{'latency (this CPU)':22}{b['latency_ms']:>11.3f} ms{c['latency_ms']:>11.3f} ms",
        f"ratio gzip {metrics['ratio_gzip']:.2f}x   ratio raw {metrics['ratio_raw']:.2f}x   "
        f"accuracy drop {metrics['accuracy_drop'] * 100:+.2f} points",
        f"latency: median of single-sample runs, {metrics.get('latency_threads', 1)} thread(s)",
    ]
    io_info = c.get("io", {})
    if io_info.get("input", {}).get("dtype", "float32") != "float32":
        i, o = io_info["input"], io_info["output"]
        lines.append(
            f"input {i['dtype']} scale {i['scale']:.6g} zero-point {i['zero_point']}; "
            f"output {o['dtype']} scale {o['scale']:.6g} zero-point {o['zero_point']}"
        )
    for w in metrics.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)
