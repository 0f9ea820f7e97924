"""Run a recipe on a model and measure the result: the engine's main entry point.

Public API (the worker, the CLI, the project runner and the GUI call exactly these):

- ``compress(model_spec, data_spec, recipe, out_dir, *, scale, allow_unsafe, reporter,
  split_seed, val_fraction) -> dict``: the one-shot call = ``prepare`` + ``run_recipe``.
  The data is split by ``split_seed`` / ``val_fraction`` — the dataset's split (a project's
  ``dataset.seed`` / ``dataset.val_fraction``); None means ``DEFAULT_SPLIT_SEED`` (0) and
  ``DEFAULT_VAL_FRACTION`` (0.1), never the recipe's seed.
- ``prepare(model_spec, data_spec, split, ...) -> Prepared`` (engine.pipeline.prepare): load
  and check model and data, measure the float baseline once (cached on disk by content).
- ``run_recipe(prepared, recipe, out_dir, *, reporter) -> dict``: run one recipe on a
  ``Prepared`` (never changing it): the recipe's steps in order, convert, measure the artifact
  and write into ``out_dir``: ``model.tflite``, ``model.keras`` (the compressed Keras 2
  model, wrappers stripped; after QAT it is ``model.h5`` instead, the QAT model as trained,
  which loads inside ``tfmot.quantization.keras.quantize_scope()``), for a model imported
  from Keras 3 also ``model_keras3.keras`` (the same weights in the user's Keras 3
  architecture, engine.models.keras3_export; after QAT the QAT model's float weights, with
  a warning saying so), ``baseline.tflite``, ``recipe.json``, ``report.json`` and, last,
  ``metrics.json`` (returned). Everything is built
  in a hidden temporary sub-folder and moved into place at the end, so a cancelled or failed
  run leaves nothing that looks finished. An output folder that cannot be written is a
  BadInputError before any work.
- ``train_recipe(prepared, recipe, reporter, stage, warnings, *, cache, measure_test)`` and
  ``convert_recipe(trained, splits, final, reporter, warnings)``: the training and the final
  conversion of ``run_recipe``, shared with the search (engine.pipeline.search), which judges
  its trials on the validation split; ``run_recipe(..., cache=PrefixCache)`` restores trained
  prefixes (the search's ``materialize``).
- ``evaluate_baseline(model_spec, data_spec, *, scale, allow_unsafe, reporter, split_seed,
  val_fraction) -> dict`` (the baseline block; uses the cache)
- ``check_data(model_spec, data_spec, *, scale, allow_unsafe, split_seed, val_fraction) -> dict``
- ``format_metrics(metrics) -> str``

``metrics.json`` has ``schema_version`` (METRICS_SCHEMA_VERSION) and ``baseline_source``
(``"measured"`` or ``"cache"``: whether this run measured the baseline or reused the cached
measurement of the same model, data, split, libraries and machine). Every number in it is
measured on the written files (engine.tflite.metrics). Version 2 added, in ``compressed``:
``int8_check`` (engine.tflite.int8_debug.Int8Check.to_dict(), None unless int8),
``full_integer`` (None unless int8) and ``conversion_notes``; at the top level
``keras3_export`` and ``files.keras3``. Readers take a missing key as None.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError
from engine.core.events import Event, Reporter
from engine.core.fmt import fmt_bytes, fmt_drop, fmt_ms, fmt_pct, fmt_pct1, fmt_ratio
from engine.pipeline.recipe import Recipe
from engine.pipeline.steps import run_train_steps

ARTIFACTS = (
    "baseline.tflite",
    "model.tflite",
    "model.keras",
    "model.h5",
    "model_keras3.keras",
    "recipe.json",
    "report.json",
)
# Input normalization stored in the .tflite metadata: x_model = (x_pixels - mean) / std.
NORMALIZATION = {"1/255": (0.0, 255.0), "-1..1": (127.5, 127.5)}
METRICS_FILE = "metrics.json"
# metrics.json layout version: 1 = the keys documented in DESIGN.md plus those added since
# (baseline_source, steps, timings, ...); bump when a key changes meaning or goes away.
METRICS_SCHEMA_VERSION = 2  # 2: int8_check, full_integer, conversion_notes, keras3 export


def check_data(
    model_spec: Any,
    data_spec: Any,
    *,
    scale: str | None = "auto",
    allow_unsafe: bool = False,
    split_seed: int | None = None,
    val_fraction: float | None = None,
) -> dict[str, Any]:
    """Load the model and the dataset, check they fit; return ``DataSplits.describe()``."""
    from engine.pipeline.prepare import load_inputs

    _, splits = load_inputs(model_spec, data_spec, scale, allow_unsafe, (split_seed, val_fraction))
    return splits.describe()


def evaluate_baseline(
    model_spec: Any,
    data_spec: Any,
    *,
    scale: str | None = "auto",
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
    split_seed: int | None = None,
    val_fraction: float | None = None,
) -> dict[str, Any]:
    """The baseline block: the model as float32 ``.tflite``, measured on the test split
    (or reused from the baseline cache)."""
    from engine.pipeline.prepare import prepare

    prepared = prepare(
        model_spec,
        data_spec,
        (split_seed, val_fraction),
        scale=scale,
        allow_unsafe=allow_unsafe,
        reporter=reporter,
    )
    return dict(prepared.baseline)


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


class _Stages:
    """Numbered stage contexts (index/count in the stage events) that record timings."""

    def __init__(self, reporter: Reporter, count: int, timings: dict[str, float]) -> None:
        self.reporter, self.count, self.timings, self.index = reporter, count, timings, 0

    @contextmanager
    def __call__(self, name: str, label: str) -> Iterator[None]:
        t0 = time.monotonic()
        with self.reporter.stage(name, label, self.index, self.count):
            yield
        self.timings[name] = round(time.monotonic() - t0, 3)
        self.index += 1


def _in_out_dir(
    out_dir: str | Path, reporter: Reporter, body: Callable[[Path, list[Event]], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``body(work, series)`` in a hidden work folder of ``out_dir``; publish on success."""
    out, work, created = _prepare_out_dir(out_dir)
    series: list[Event] = []
    original_sink = _add_series_recorder(reporter, series)
    ok = False
    try:
        metrics = body(work, series)
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


def _train_steps(recipe: Recipe) -> list[dict[str, Any]]:
    return [s for s in recipe.steps if s["type"] != "quantize"]


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

    ``prepare`` + ``run_recipe`` in one call, with the same stage events as always
    (``baseline``, the training steps, ``convert``, ``evaluate``). The dataset is split with
    ``split_seed`` (default ``DEFAULT_SPLIT_SEED`` = 0, the dataset's default; not the
    recipe's seed) and ``val_fraction`` (default ``DEFAULT_VAL_FRACTION``).

    Raises BadInputError (model, data, output folder), Cancelled (token), or
    FeatherweightError (a technique failed, e.g. the target sparsity was not reached).
    """
    from engine.core import tfenv
    from engine.pipeline.prepare import prepare_in_stage

    reporter = reporter or Reporter()

    def body(work: Path, series: list[Event]) -> dict[str, Any]:
        timings: dict[str, float] = {}
        stages = _Stages(reporter, len(_train_steps(recipe)) + 3, timings)
        tfenv.set_seed(recipe.seed)
        prepared = prepare_in_stage(
            model_spec,
            data_spec,
            (split_seed, val_fraction),
            scale=scale,
            allow_unsafe=allow_unsafe,
            reporter=reporter,
            stage=stages,
        )
        return _run(prepared, recipe, work, reporter, series, stages)

    return _in_out_dir(out_dir, reporter, body)


def run_recipe(
    prepared: Any,
    recipe: Recipe,
    out_dir: str | Path,
    *,
    reporter: Reporter | None = None,
    cache: Any = None,
    extra: dict[str, Any] | None = None,
    judged: bytes | None = None,
) -> dict[str, Any]:
    """Run ``recipe`` on a ``Prepared`` (engine.pipeline.prepare), write ``out_dir`` like
    ``compress`` and return the metrics. ``prepared`` is not changed: training steps work
    on a copy of its model. Stage events: the training steps, ``convert``, ``evaluate``.

    ``cache`` (engine.pipeline.checkpoints.PrefixCache) restores trained prefixes instead of
    training them again (the search's ``materialize``); ``extra`` adds top-level keys to
    ``metrics.json`` (e.g. ``"search"``), never replacing the standard ones. ``judged``: the
    ``.tflite`` a search judged for this recipe; when the re-made file differs (QAT is not
    checkpointed and not bit-reproducible), ``model.tflite`` is the judged file, measured
    as usual, and a warning says the Keras files were re-made."""
    reporter = reporter or Reporter()

    def body(work: Path, series: list[Event]) -> dict[str, Any]:
        timings: dict[str, float] = {}
        stages = _Stages(reporter, len(_train_steps(recipe)) + 2, timings)
        return _run(
            prepared,
            recipe,
            work,
            reporter,
            series,
            stages,
            cache=cache,
            extra=extra,
            judged=judged,
        )

    return _in_out_dir(out_dir, reporter, body)


@dataclasses.dataclass
class Trained:
    """The result of a recipe's training steps (``train_recipe``)."""

    loaded: Any  # the LoadedModel the steps ran on (a copy when there were steps)
    model: Any  # the trained model (float)
    export_model: Any  # the model to convert (the QAT model after ``qat``)
    done: set[str]
    steps_info: list[dict[str, Any]]


def train_recipe(
    prepared: Any,
    recipe: Recipe,
    reporter: Reporter,
    stage: Any,
    warnings: list[str],
    *,
    cache: Any = None,
    measure_test: bool = True,
) -> Trained:
    """Run the recipe's training steps on a copy of the prepared model (the same seed before
    the steps for every recipe run on one Prepared); see ``steps.run_train_steps``."""
    from engine.core import tfenv
    from engine.techniques.training import fresh_copy

    train_steps = _train_steps(recipe)
    loaded = prepared.loaded
    estimator = None
    if train_steps:
        # Training steps must never touch the prepared model: they get a copy.
        loaded = dataclasses.replace(loaded, model=fresh_copy(loaded.model))
        estimator = prepared.estimator(recipe.final_quantize["mode"])
    # The same seed before the steps whether or not the baseline came from the cache, and
    # for every recipe run on one Prepared.
    tfenv.set_seed(recipe.seed)
    model, export_model, done, steps_info = run_train_steps(
        loaded,
        prepared.splits,
        recipe,
        train_steps,
        stage,
        reporter,
        estimator,
        warnings,
        prepared.allow_unsafe,
        cache=cache,
        measure_test=measure_test,
    )
    return Trained(loaded, model, export_model, done, steps_info)


def convert_recipe(
    trained: Trained,
    splits: Any,
    final: dict[str, Any],
    reporter: Reporter,
    warnings: list[str],
) -> tuple[bytes, dict[str, Any], Any, list[str]]:
    """The final conversion of a trained recipe: ``(bytes, final step as applied (int8:
    with the layers kept float), Int8Check or None, conversion notes)``; logs the notes and
    adds the int8 check's warnings to ``warnings``."""
    from engine.techniques.quantize import conversion_notes

    notes = conversion_notes(trained.export_model, final["mode"])
    for note in notes:
        reporter.log(f"convert: {note}")
    data, int8_check = _convert_final(
        trained.export_model, splits, final, trained.loaded.output_kind, reporter, trained.done
    )
    if int8_check is not None:
        warnings.extend(int8_check.warnings)
        final = {**final, "keep_float": list(int8_check.keep_float)}
    return data, final, int8_check, notes


def _run(
    prepared: Any,
    recipe: Recipe,
    work: Path,
    reporter: Reporter,
    series: list[Event],
    stage: _Stages,
    *,
    cache: Any = None,
    extra: dict[str, Any] | None = None,
    judged: bytes | None = None,
) -> dict[str, Any]:
    from engine.core import tfenv
    from engine.models.support import is_weight_layer
    from engine.techniques.quantize import convert
    from engine.techniques.training import keras_accuracy
    from engine.tflite.metrics import LATENCY_THREADS, io_details, measure_tflite

    warnings: list[str] = list(recipe.warnings) + prepared.warnings
    splits = prepared.splits
    baseline = dict(prepared.baseline)
    (work / "baseline.tflite").write_bytes(prepared.baseline_tflite)
    final = recipe.final_quantize
    trained = train_recipe(prepared, recipe, reporter, stage, warnings, cache=cache)
    loaded, model, export_model = trained.loaded, trained.model, trained.export_model
    done, steps_info = trained.done, trained.steps_info
    kind = loaded.output_kind

    with stage("convert", "Converting to .tflite"):
        data, final, int8_check, notes = convert_recipe(trained, splits, final, reporter, warnings)
        twin = convert(export_model, splits, final, sparse=False) if final["sparse"] else None
        (work / "model.tflite").write_bytes(data)
        _write_metadata(work / "model.tflite", splits)
        if judged is not None and judged != (work / "model.tflite").read_bytes():
            (work / "model.tflite").write_bytes(judged)
            # A sparse-encoded file's sparsity is read from a non-sparse twin: the re-made
            # model's (the same pruned prefix, restored from its checkpoint).
            warnings.append(
                "model.tflite is the file the search judged; the Keras files were re-made "
                "from its recipe and are not bit-identical to its source (QAT training is not "
                "reproducible bit for bit)"
            )
        if twin is not None and len(data) >= len(twin):
            warnings.append(
                f"sparse encoding did not shrink the file ({len(data)} bytes vs {len(twin)} "
                "without it); it pays off only at high sparsity"
            )
        keras_file = _save_keras(
            export_model,
            work,
            splits,
            quantized="qat" in done,
            warnings=warnings,
            verify=export_model is not prepared.loaded.model,
        )
        if keras_file is None and "qat" in done:
            keras_file = _save_keras(model, work, splits, quantized=False, warnings=warnings)
            if keras_file:
                warnings.append(
                    "model.keras holds the float model before QAT (tfmot cannot save this "
                    "QAT model); model.tflite is the QAT result"
                )
        keras3_info = _save_keras3(
            loaded,
            export_model,
            work,
            splits,
            qat="qat" in done,
            warnings=warnings,
            allow_unsafe=prepared.allow_unsafe,
        )

    with stage("evaluate", "Measuring the compressed model"):
        written = (work / "model.tflite").read_bytes()
        layer_names = [layer.name for layer in model.layers if is_weight_layer(layer)]
        measured = measure_tflite(
            written, splits, layer_names, sparsity_source=twin, output_kind=kind
        )
        if export_model is prepared.loaded.model:
            keras_acc = baseline["keras_accuracy"]  # the very model the baseline measured
        elif steps_info and "test_keras_accuracy" in steps_info[-1]:
            keras_acc = steps_info[-1]["test_keras_accuracy"]  # measured on export_model
        else:
            keras_acc = keras_accuracy(export_model, splits, output_kind=kind)
        compressed = {
            "accuracy": measured["accuracy"],
            "keras_accuracy": keras_acc,
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
            "int8_check": int8_check.to_dict() if int8_check is not None else None,
            "full_integer": int8_check.full_integer if int8_check is not None else None,
            "conversion_notes": notes,
        }
    metrics: dict[str, Any] = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "baseline": baseline,
        "baseline_source": prepared.baseline_source,
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
        "timings": stage.timings,
        "series": series,
        "warnings": warnings,
        "files": {
            "model": "model.tflite",
            "baseline": "baseline.tflite",
            "keras": keras_file,
            "keras3": keras3_info["file"] if keras3_info else None,
            "recipe": "recipe.json",
        },
        "keras3_export": keras3_info,
    }
    for key, value in (extra or {}).items():
        metrics.setdefault(key, value)
    from engine.tflite.report import write_report

    write_report(work / "model.tflite", work, file_name="model.tflite")
    metrics["files"]["report"] = "report.json"
    (work / "recipe.json").write_text(
        json.dumps(recipe.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    (work / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def _convert_final(
    model: Any,
    splits: Any,
    final: dict[str, Any],
    output_kind: str,
    reporter: Reporter,
    done: set[str],
) -> tuple[bytes, Any]:
    """The final conversion: an int8 one checked against float on the validation split
    (engine.tflite.int8_debug; layers kept float when int8 loses more than the step's
    ``max_int8_drop``), anything else converted as is. Returns (bytes, Int8Check or None).

    After QAT the model learnt its own int8 ranges: it is measured and warned about, never
    reconverted with layers kept float (unless the recipe names them)."""
    from engine.techniques.quantize import convert

    if final["mode"] != "int8":
        return convert(model, splits, final), None
    from engine.tflite.int8_debug import checked_int8

    step = final
    if "qat" in done and final.get("keep_float") is None:
        step = {**final, "keep_float": []}
    check = checked_int8(
        model,
        splits,
        step,
        sparse=bool(final["sparse"]),
        output_kind=output_kind,
        log=lambda msg: reporter.log(f"convert: {msg}"),
    )
    return check.data, check


def _write_metadata(tflite: Path, splits: Any) -> None:
    """Store class labels and the input normalization in the exported ``.tflite``."""
    from engine.tflite.metadata import write_metadata

    mean, std = NORMALIZATION.get(splits.scale, (None, None))
    write_metadata(tflite, labels=list(splits.class_names), mean=mean, std=std)


def _save_keras(
    model: Any,
    work: Path,
    splits: Any,
    *,
    quantized: bool,
    warnings: list[str],
    verify: bool = True,
) -> str | None:
    """Save the compressed Keras 2 model and, with ``verify``, check it loads back the same.

    ``verify`` is off for the very model ``prepare`` loaded (a recipe without training):
    loading it already checked it, and reloading a large model costs seconds. A QAT model
    is written as ``model.h5`` (load it inside
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
            again = keras2().models.load_model(path, compile=False) if verify else None
        if again is not None:
            diff = float(np.max(np.abs(np.asarray(again(x)) - np.asarray(model(x)))))
            if diff > 1e-4:
                raise ValueError(f"reloaded model differs from the trained one (max {diff:.2g})")
    except Exception as exc:  # saving is a convenience; the .tflite is the product
        path.unlink(missing_ok=True)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.append(f"{name} not written: {first}")
        return None
    return name


def _save_keras3(
    loaded: Any,
    model: Any,
    work: Path,
    splits: Any,
    *,
    qat: bool,
    warnings: list[str],
    allow_unsafe: bool,
) -> dict[str, Any] | None:
    """Write ``model_keras3.keras`` for a model imported from Keras 3; return its description
    (engine.models.keras3_export.Keras3Export as a dict) or None: not a Keras 3 model, or it
    could not be written faithfully (then with a warning; the ``.tflite`` is the product)."""
    if not str(loaded.source_format).startswith("keras3-"):
        return None
    from engine.models.keras3_export import KERAS3_FILE, export_keras3

    x = next(iter(splits.batches("test", 16)))[0]
    try:
        written = export_keras3(
            loaded.path, model, work / KERAS3_FILE, x, qat=qat, allow_unsafe=allow_unsafe
        )
    except Exception as exc:  # noqa: BLE001 - saving is a convenience, never fails the run
        (work / KERAS3_FILE).unlink(missing_ok=True)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.append(f"{KERAS3_FILE} not written: {first}")
        return None
    warnings.extend(written.notes)
    return written.to_dict()


def format_metrics(metrics: dict[str, Any]) -> str:
    """A short human summary of ``metrics.json`` for the command line (numbers written by
    ``engine.core.fmt``, like the app's Results table and the report)."""
    b, c = metrics["baseline"], metrics["compressed"]
    rows = (
        ("accuracy (test)", fmt_pct, "accuracy"),
        (".tflite size", fmt_bytes, "tflite_bytes"),
        (".tflite gzip", fmt_bytes, "tflite_gzip_bytes"),
        ("kernel sparsity", fmt_pct1, "sparsity"),
        ("latency (this CPU)", fmt_ms, "latency_ms"),
    )
    lines = [
        f"recipe: {metrics['recipe'].get('name', '')}  ({c['format']}"
        + (", sparse encoding" if c.get("sparse_encoding") else "")
        + ")",
        f"{'':22}{'baseline':>14}{'compressed':>14}",
        *(f"{label:22}{fmt(b.get(key)):>14}{fmt(c.get(key)):>14}" for label, fmt, key in rows),
        f"ratio gzip {fmt_ratio(metrics['ratio_gzip'])}   ratio raw "
        f"{fmt_ratio(metrics['ratio_raw'])}   accuracy {fmt_drop(metrics['accuracy_drop'])}",
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
