"""Prepare once, run many: load and check a model and its dataset, measure the float baseline.

``prepare(model_spec, data_spec, split, *, scale, allow_unsafe, reporter) -> Prepared``
loads the model (safety scan, Keras 3 import), loads and splits the data (``split`` is the
dataset's: ``engine.data.splits.SplitSpec``, default seed 0 and validation fraction 0.1 —
never the recipe's seed) and measures the baseline: the model as float32 ``.tflite`` (no
optimizations) on the test split, exactly as DESIGN.md defines it. ``run_recipe``
(``engine.pipeline.run``) then runs any number of recipes on the ``Prepared``.

Baseline cache. The measured baseline block and the baseline ``.tflite`` are kept on disk in
``engine.core.cache.cache_dir("baselines")`` (``$XDG_CACHE_HOME/featherweight/baselines``;
``$FEATHERWEIGHT_CACHE_DIR`` overrides), one ``<key>.json`` + ``<key>.tflite`` per entry,
written atomically (the ``.tflite`` first, the ``.json`` that names its sha256 last). The key
is the sha256 of a JSON document holding everything the numbers depend on:

- the model's content: sha256 of the file; of a SavedModel folder, of every file's relative
  path, size and bytes; the demo model: its shipped file;
- the data's content: the demo: a constant plus scikit-learn's version (it ships the digits);
  an ``.npz``: sha256 of the file; an image folder: every file's relative path, size and
  bytes (contents, not modification times: a copied folder hits, an edited image misses);
- the split (seed, validation fraction), the scaling rule asked for and the one applied, the
  model's input shape;
- the library versions (featherweight, TensorFlow, tf_keras, tfmot, LiteRT, Keras 3, NumPy),
  the latency thread count and a cache format number;
- this machine (host name, CPU architecture, CPU count): the block holds the latency, which
  is measured on this computer and only means something here.

An entry that is missing, unreadable, for another key or whose ``.tflite`` does not match its
recorded sha256 is ignored (and rewritten). A cache that cannot be written only costs time.

Timing. The baseline block also holds ``timing`` (``TIMING_KEYS``), measured while the
baseline is measured anyway and used by ``engine.pipeline.estimate`` to guess how long a
recipe takes: ``forward_ms_per_sample`` (the Keras forward pass of the baseline's own
evaluation, per sample),
``convert_s`` (the float32 conversion), ``evaluate_s`` (LiteRT accuracy + latency on the test
split) and ``load_s`` (loading model and data). It is not part of the key nor required of a
cache entry: an entry written before timing existed is still used, and gets a
``forward_ms_per_sample`` measured on the spot (the other numbers stay unknown, None).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.cache import cache_dir, read_json, sha256_bytes, sha256_file, sha256_tree
from engine.core.events import Reporter
from engine.data.splits import SplitSpec

BASELINE_CACHE_FORMAT = 2
BASELINE_KEYS = (
    "accuracy",
    "keras_accuracy",
    "params",
    "tflite_bytes",
    "tflite_gzip_bytes",
    "latency_ms",
    "latency_threads",
    "runtime",
    "sparsity",
    "output_kind",
)
TIMING_KEYS = ("forward_ms_per_sample", "convert_s", "evaluate_s", "load_s")
DEMO_DATA_ID = "sklearn-digits-uint8-8x8-v1"

Stage = Callable[[str, str], AbstractContextManager[None]]


@dataclass
class Prepared:
    """A loaded model and dataset with its measured float baseline (see ``prepare``).

    ``run_recipe`` never changes it: recipes with training steps work on a copy of
    ``loaded.model``; a conversion-only recipe reads it.
    """

    loaded: Any  # engine.models.loading.LoadedModel
    splits: Any  # engine.data.splits.DataSplits
    split: SplitSpec
    baseline: dict[str, Any]
    baseline_tflite: bytes
    baseline_source: str  # "measured" | "cache"
    scale: str | None = "auto"
    allow_unsafe: bool = False
    cache_key: str | None = None  # None when the inputs could not be fingerprinted
    timings: dict[str, float] = field(default_factory=dict)
    _estimator_overheads: tuple[int, int] | None = field(default=None, repr=False)

    @property
    def warnings(self) -> list[str]:
        return list(self.loaded.warnings)

    def estimator(self, mode: str) -> Any:
        """``SizeEstimator`` for the final ``mode``, calibrated on the baseline once."""
        from engine.techniques.training import SizeEstimator

        if self._estimator_overheads is None:
            est = SizeEstimator.calibrated(
                mode,
                self.loaded.model,
                self.baseline["tflite_bytes"],
                self.baseline["tflite_gzip_bytes"],
            )
            self._estimator_overheads = (est.overhead_bytes, est.overhead_gzip_bytes)
        b, g = self._estimator_overheads
        return SizeEstimator(mode=mode, overhead_bytes=b, overhead_gzip_bytes=g)


def prepare(
    model_spec: Any,
    data_spec: Any,
    split: Any = None,
    *,
    scale: str | None = "auto",
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
) -> Prepared:
    """Load and check the model and the dataset, measure (or reuse) the float baseline.

    ``split``: a SplitSpec, ``(seed, val_fraction)`` or ``{"seed", "val_fraction"}``; None
    means seed 0, fraction 0.1. Emits one ``baseline`` stage. Raises BadInputError (model,
    data, split) and UnsafeModelError like ``load_model`` / ``load_data``.
    """
    reporter = reporter or Reporter()
    return prepare_in_stage(
        model_spec,
        data_spec,
        split,
        scale=scale,
        allow_unsafe=allow_unsafe,
        reporter=reporter,
        stage=lambda name, label: reporter.stage(name, label),
    )


def prepare_in_stage(
    model_spec: Any,
    data_spec: Any,
    split: Any,
    *,
    scale: str | None,
    allow_unsafe: bool,
    reporter: Reporter,
    stage: Stage,
) -> Prepared:
    """``prepare`` inside the caller's ``stage`` factory (``compress`` numbers its stages)."""
    spec = SplitSpec.of(split)
    timings: dict[str, float] = {}
    # Loading comes before the first stage: a model or dataset that is refused ends the
    # command with its one line before any stage line or work.
    t0 = time.monotonic()
    loaded, splits = load_inputs(model_spec, data_spec, scale, allow_unsafe, spec)
    timings["load"] = round(time.monotonic() - t0, 3)
    with stage("baseline", "Measuring the original model"):
        model_fp = _fingerprint_model(model_spec)
        data_fp = _fingerprint_data(data_spec)
        t1 = time.monotonic()
        key = None
        if model_fp is not None and data_fp is not None:
            key = _cache_key(model_fp, data_fp, spec, scale, splits, loaded)
        cached = _read_cache(key) if key else None
        if cached is not None:
            block, data = cached
            source = "cache"
            reporter.log("baseline: reused the measurement cached for this model and data")
            if not isinstance(block.get("timing"), dict):  # an entry older than timing
                block["timing"] = {
                    **dict.fromkeys(TIMING_KEYS),
                    "forward_ms_per_sample": forward_ms_per_sample(loaded.model, splits),
                }
        else:
            block, data = measure_baseline(loaded, splits)
            block["timing"]["load_s"] = timings["load"]
            source = "measured"
            if key:
                _write_cache(key, block, data)
        timings["measure"] = round(time.monotonic() - t1, 3)
    return Prepared(
        loaded=loaded,
        splits=splits,
        split=spec,
        baseline=block,
        baseline_tflite=data,
        baseline_source=source,
        scale=scale,
        allow_unsafe=allow_unsafe,
        cache_key=key,
        timings=timings,
    )


def load_inputs(
    model_spec: Any, data_spec: Any, scale: str | None, allow_unsafe: bool, split: Any = None
) -> tuple[Any, Any]:
    """Load the model, then the data shaped for it and split by ``split``."""
    from engine.data.datasets import load_data
    from engine.data.splits import model_input_of
    from engine.models.loading import load_model

    spec = SplitSpec.of(split)
    loaded = load_model(model_spec, allow_unsafe=allow_unsafe)
    splits = load_data(
        data_spec,
        loaded.input_shape,
        loaded.num_classes,
        scale=scale,
        seed=spec.seed,
        val_fraction=spec.val_fraction,
        model_has_rescaling=loaded.has_rescaling,
        model_input=model_input_of(loaded.model),
        output_kind=loaded.output_kind,
    )
    return loaded, splits


def measure_baseline(loaded: Any, splits: Any) -> tuple[dict[str, Any], bytes]:
    """The baseline block and the float32 ``.tflite`` bytes, measured now."""
    from engine.models.support import is_weight_layer
    from engine.techniques.quantize import convert
    from engine.techniques.training import keras_accuracy
    from engine.tflite.metrics import LATENCY_THREADS, measure_tflite

    t0 = time.monotonic()
    kind = loaded.output_kind
    data = convert(loaded.model, splits, {"mode": "float32"})
    t1 = time.monotonic()
    names = [layer.name for layer in loaded.model.layers if is_weight_layer(layer)]
    measured = measure_tflite(data, splits, names, output_kind=kind)
    t2 = time.monotonic()
    keras_acc = keras_accuracy(loaded.model, splits, output_kind=kind)
    t3 = time.monotonic()
    n_test = max(1, int(getattr(splits, "n_test", 0) or 0))
    timing = {
        # The Keras evaluation above is the forward pass the estimate needs: timed, not redone.
        "forward_ms_per_sample": round((t3 - t2) * 1000.0 / n_test, 4),
        "convert_s": round(t1 - t0, 3),
        "evaluate_s": round(t2 - t1, 3),
        "load_s": None,
    }
    block = {
        "accuracy": measured["accuracy"],
        "keras_accuracy": keras_acc,
        "params": int(loaded.model.count_params()),
        "tflite_bytes": measured["tflite_bytes"],
        "tflite_gzip_bytes": measured["tflite_gzip_bytes"],
        "latency_ms": measured["latency_ms"],
        "latency_threads": LATENCY_THREADS,
        "runtime": measured["runtime"],
        "sparsity": measured["sparsity"],
        "output_kind": loaded.output_kind,
        "timing": timing,
    }
    return block, data


def forward_ms_per_sample(model: Any, splits: Any, batch_size: int = 256) -> float | None:
    """Milliseconds per sample of a Keras forward pass (eager, as ``keras_accuracy`` runs it)
    on one batch of the test split, after one warm call; None when it cannot be timed."""
    import numpy as np

    try:
        xb = next(iter(splits.batches("test", batch_size)))[0].astype(np.float32)
        np.asarray(model(xb, training=False))
        t0 = time.perf_counter()
        np.asarray(model(xb, training=False))
        return round((time.perf_counter() - t0) * 1000.0 / max(1, len(xb)), 4)
    except Exception:  # noqa: BLE001 - timing is a hint for the estimate, never an error
        return None


# --------------------------------------------------------------------------- fingerprints


def _fingerprint_model(model_spec: Any) -> dict[str, Any] | None:
    """Content fingerprint of the model file/folder; None when it cannot be read (the loader
    then reports the problem)."""
    from engine.models.loading import resolve_path

    try:
        path = Path(resolve_path(model_spec))
        if path.is_dir():
            return {"kind": "folder", "sha256": sha256_tree(path)}
        return {"kind": "file", "suffix": path.suffix.lower(), "sha256": sha256_file(path)}
    except Exception:  # noqa: BLE001 - a missing/odd model is the loader's message to give
        return None


def _fingerprint_data(data_spec: Any) -> dict[str, Any] | None:
    if str(data_spec) == "demo":
        from importlib import metadata

        try:
            sk = metadata.version("scikit-learn")
        except metadata.PackageNotFoundError:  # pragma: no cover
            sk = "?"
        return {"kind": "demo", "id": DEMO_DATA_ID, "scikit_learn": sk}
    path = Path(data_spec)
    try:
        if path.is_dir():
            return {"kind": "images", "sha256": sha256_tree(path)}
        return {"kind": "file", "sha256": sha256_file(path)}
    except OSError:
        return None


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    from engine.core import tfenv

    found = dict(tfenv.versions())
    for key, dist in (("keras", "keras"), ("numpy", "numpy")):
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover
            pass
    return found


def _cache_key(
    model_fp: dict[str, Any],
    data_fp: dict[str, Any],
    split: SplitSpec,
    scale: str | None,
    splits: Any,
    loaded: Any,
) -> str:
    from engine.tflite.metrics import LATENCY_THREADS

    doc = {
        "format": BASELINE_CACHE_FORMAT,
        "model": model_fp,
        "data": data_fp,
        "split": split.to_dict(),
        "scale": scale or "auto",
        "scale_applied": splits.scale,
        "output_kind": loaded.output_kind,
        "input_shape": [None if d is None else int(d) for d in loaded.input_shape],
        "versions": _library_versions(),
        "latency_threads": LATENCY_THREADS,
        "machine": {
            "node": platform.node(),
            "arch": platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the cache


def baseline_cache_dir() -> Path:
    return cache_dir("baselines")


def _read_cache(key: str) -> tuple[dict[str, Any], bytes] | None:
    folder = baseline_cache_dir()
    entry = read_json(folder / f"{key}.json")
    if entry is None or entry.get("key") != key or entry.get("format") != BASELINE_CACHE_FORMAT:
        return None
    block = entry.get("baseline")
    if not isinstance(block, dict) or any(k not in block for k in BASELINE_KEYS):
        return None
    try:
        data = (folder / f"{key}.tflite").read_bytes()
    except OSError:
        return None
    if sha256_bytes(data) != entry.get("tflite_sha256") or len(data) != block["tflite_bytes"]:
        return None
    return block, data


def _write_cache(key: str, block: dict[str, Any], data: bytes) -> None:
    from engine.core.cache import write_atomic

    folder = baseline_cache_dir()
    entry = {
        "format": BASELINE_CACHE_FORMAT,
        "key": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tflite_sha256": sha256_bytes(data),
        "baseline": block,
    }
    try:
        write_atomic(folder / f"{key}.tflite", data)
        write_atomic(folder / f"{key}.json", (json.dumps(entry, indent=1) + "\n").encode())
    except OSError:
        pass  # a read-only or full cache folder only costs time next run
