"""How long will a recipe take on the loaded model? A labelled estimate, not a promise.

``estimate_seconds(recipe, baseline, n_train, *, n_val, n_test) -> float | None`` works from
the ``timing`` that ``prepare`` records in the baseline block while it measures the baseline
(``engine.pipeline.prepare.TIMING_KEYS``): the Keras forward time per sample, the time of one
float32 conversion and of one LiteRT evaluation of the test split. The model:

- each training step (a step with ``epochs``): a fixed cost (wrapping, compiling and tracing
  the training graph, the end-of-step test accuracy), the technique's
  ``STEP_OVERHEAD_CONVERTS`` conversions' worth; then per epoch ``TRAIN_FACTOR``
  forward passes per training sample (forward + backward ≈ 3 forwards) plus one per
  validation sample, times the technique's ``TECHNIQUE_FACTOR``;
- the final conversion: one conversion (a sparse-encoded one converts twice), int8 adds its
  calibration samples' forward passes;
- the evaluation of the result (LiteRT accuracy + latency) and the run's own preparation
  (loading the model and data again; the baseline comes from the cache).

The constants were fitted to demo runs on this machine (2 cores); benchmarks/estimate.py
measures the estimate against real runs of every technique (benchmarks/ESTIMATE.md; the bar
is a factor of 3 either way: estimate / real was 1.32-2.00 on the demo and 0.56-1.04 on a
156-layer MobileNetV2). Returns None when the baseline holds no timing (e.g. measured by an
older version that did not record it). Pure Python, no TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any

TRAIN_FACTOR = 3.0
# Fixed cost of a training step in float32 conversions (both trace the whole model graph);
# measured on the demo (uncontended): prune ≈ 6.9 s, cluster ≈ 8.4 s, QAT ≈ 4.7 s,
# fine-tuning ≈ 3.3 s, distillation ≈ 2 s with a 1.46 s conversion.
STEP_OVERHEAD_CONVERTS = {"prune": 4.7, "cluster": 5.5, "qat": 3.0, "finetune": 2.2, "distill": 1.5}
DEFAULT_OVERHEAD_CONVERTS = 4.0  # a technique registered later
STEP_OVERHEAD_MIN_S = 1.0
# Per-sample training cost relative to plain fine-tuning: QAT's fake quantization and
# clustering's look-ups cost more; distillation trains a narrower student (the teacher only
# runs forward).
# Filter pruning trains the narrower network it made: measured on the benchmark MobileNetV2
# (benchmarks/PER_LAYER.json, half the filters) ~4.5 s per epoch against ~13 s for magnitude
# pruning of the full network.
TECHNIQUE_FACTOR = {"qat": 2.0, "cluster": 1.5, "distill": 0.6, "prune_filters": 0.35}
# Teacher-guided training adds the original model's forward pass per batch: +10-16 % per run
# on the benchmark MobileNetV2 (74 vs 64 s pruning with ERK, 74.5 vs 64 s filter pruning).
TEACHER_FACTOR = 1.15
LOAD_CONVERTS = 0.3  # reloading model + data in the run's own prepare, in conversions
DEFAULT_CONVERT_S = 2.0  # an old cached baseline without timing: only the forward is known
DEFAULT_VAL_SHARE = 0.1


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _teacher_guided(step: dict[str, Any]) -> bool:
    """The step's ``teacher_guided``, or its technique's default when the dict omits it."""
    value = step.get("teacher_guided")
    if value is None:
        from engine.pipeline.recipe import STEP_SPECS

        spec = STEP_SPECS.get(str(step.get("type")))
        knobs = {k.name: k.default for k in spec.knobs} if spec is not None else {}
        value = knobs.get("teacher_guided", False)
    return value is True


def estimate_seconds(
    recipe: dict[str, Any],
    baseline: dict[str, Any] | None,
    n_train: int | None,
    *,
    n_val: int | None = None,
    n_test: int | None = None,
) -> float | None:
    """Seconds a run of ``recipe`` (a recipe dict) should take on this computer, or None
    when ``baseline`` has no ``timing`` or ``n_train`` is unknown."""
    timing = (baseline or {}).get("timing")
    if not isinstance(timing, dict) or not n_train or n_train < 1:
        return None
    fwd_ms = _num(timing.get("forward_ms_per_sample"))
    if fwd_ms is None:
        return None
    fwd = fwd_ms / 1000.0
    convert_s = _num(timing.get("convert_s"))
    if convert_s is None:
        convert_s = DEFAULT_CONVERT_S
    n_val = n_val if n_val is not None else max(1, round(n_train * DEFAULT_VAL_SHARE))
    n_test = n_test if n_test is not None else max(1, round(n_train * 0.25))
    evaluate_s = _num(timing.get("evaluate_s"))
    if evaluate_s is None:
        evaluate_s = n_test * fwd
    total = LOAD_CONVERTS * convert_s + 1.0
    steps = [s for s in recipe.get("steps", []) if isinstance(s, dict)]
    final: dict[str, Any] = {"mode": "float32"}
    for step in steps:
        epochs = step.get("epochs")
        if step.get("type") == "quantize":
            final = step
            continue
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            continue
        factor = TECHNIQUE_FACTOR.get(str(step.get("type")), 1.0)
        if _teacher_guided(step):
            factor *= TEACHER_FACTOR
        per_epoch = (TRAIN_FACTOR * n_train + n_val) * fwd * factor
        converts = STEP_OVERHEAD_CONVERTS.get(str(step.get("type")), DEFAULT_OVERHEAD_CONVERTS)
        overhead = max(STEP_OVERHEAD_MIN_S, converts * convert_s)
        total += overhead + epochs * per_epoch + n_test * fwd
    conversions = 2 if final.get("sparse") else 1
    total += conversions * convert_s
    if final.get("mode") == "int8":
        calib = final.get("calibration_samples", 300)
        total += min(int(calib) if isinstance(calib, int) else 300, n_train) * fwd
    total += evaluate_s
    return total


def fmt_estimate(seconds: float | None) -> str:
    """ "≈ 40 s", "≈ 3 min", "≈ 1.5 h" (rounded as an estimate deserves); "" for None."""
    if seconds is None:
        return ""
    s = max(1.0, float(seconds))
    if s < 60:
        return f"≈ {max(5, int(round(s / 5.0)) * 5) if s >= 10 else int(round(s))} s"
    if s < 3600:
        return f"≈ {int(round(s / 60.0))} min"
    return f"≈ {s / 3600.0:.1f} h"
