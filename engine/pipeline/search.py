"""Search under an accuracy budget: the smallest model that loses at most ``budget`` points.

``search(prepared, budget, objective, out_dir, ...)`` runs one single-objective Optuna study
(Optuna's pruners only work in single-objective studies): it **minimises the objective**
(``gzip``: compressed ``.tflite`` bytes, ``flash``: raw ``.tflite`` bytes, ``latency``: median
LiteRT latency on this computer, ``ram``: the tensor-arena estimate of
``engine.tflite.report``) under the **constraint** validation drop − budget ≤ 0
(``Trial.set_constraint``, read by the TPE sampler; Optuna 5.0 deprecates
``constraints_func`` in its favour). A ``ThresholdPruner`` stops a trial whose validation
accuracy, reported after every epoch of its *last* training step, is more than
``budget + PRUNE_MARGIN_PTS`` points below the baseline's (a deficit that fine-tuning's last
epochs do not win back). The size/accuracy frontier is computed afterwards from every
complete trial.

Every trial is an ordinary recipe (``trial_recipe``) run by the same pipeline pieces as
``compress`` (``engine.pipeline.run.train_recipe`` / ``convert_recipe``); its files go to
``out_dir/trials/<number>/`` (``model.tflite``, ``recipe.json``, ``trial.json``: validation
figures only). Trained prefixes (distilled student, pruned model, ...) are kept in
``out_dir/checkpoints`` (``engine.pipeline.checkpoints.PrefixCache``) and reused by every
later trial (in any process) that starts with the same steps; the search space is
discretised so that prefixes repeat. A trial whose recipe equals that of a complete trial is
answered from it without training (``duplicate_of``).

**Validation only, and its noise.** Candidates are judged on the validation split only; the
test split is measured once at the end, for the frontier points (``frontier_test``) and the
best point (``best/``, an ordinary compress output folder measured on test). The demo's
validation split holds ~140 images, so one image is 0.7 points. The search deals with it by
(1) a *paired* comparison: the baseline's LiteRT predictions on the same validation images are
computed once, and each candidate's drop is the mean of the per-image differences
(baseline right − candidate right), whose standard error ``val_drop_se`` (sd of the
differences / √n, much smaller than that of two independent accuracies because both models
get most images right together) is reported with every trial; (2) ``noise`` in search.json
states the sample count and the points one image is worth; (3) among the points within
budget, the best is the one with the smallest validation drop among those at most
``SIZE_TOLERANCE`` (3 %) larger than the smallest (selecting the very smallest favours the
point whose validation drop is most flattered by the noise: the winner's curse); (4) the
best point's test drop is reported next to its validation drop, labelled, never used to
choose. A point is within budget when its validation drop ≤ budget (the study's
constraint); (5) the best is chosen among the points within budget by one standard error
(``confident``: drop + ``val_drop_se`` ≤ budget) when there are any — out of dozens of trials
the smallest point just under the line is the one whose validation figure flattered it most
(demo, 10 min, seed 0: 128× at 0.70 validation points lost 1.94 on test) — and
``best.confident`` says which rule picked it. A larger validation split (``--val-fraction``)
narrows the noise.

Persistence: the study lives in ``open_storage(out_dir, storage)``
(engine.pipeline.search_storage: ``out_dir/study.journal`` or a database URL) under a
deterministic name (model + data fingerprint, split, objective, budget, search space), so
running the same command again resumes it; ``search.json`` is rewritten atomically after
every trial, so a kill keeps everything. ``time_s`` bounds this invocation's wall time (no
trial starts when less than half a typical trial is left; a trial still running
``TIME_GRACE`` after the deadline is stopped and queued again), ``trials`` the study's total
of finished trials (Optuna's ``MaxTrialsCallback``). A user cancel ends the search normally
(``stopped: "user"``; the interrupted trial is queued again for the next run).

Units: ``budget_pts``, ``val_drop`` and ``val_drop_se`` are accuracy points; accuracies are
fractions; the test ``drop`` of ``best`` and ``frontier_test`` is a fraction like
metrics.json's ``accuracy_drop``, with ``drop_pts`` the same in points.

Events (through the reporter): ``{"type": "trial", ...}`` at the start and end of each trial,
``{"type": "search", ...}`` at the start and after every trial (fields: ``trial_event`` and
``search_event``); within a trial the usual stage/progress/metric/log events flow.

This module and ``search_storage`` are the only engine modules that import Optuna.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError, Cancelled
from engine.core.events import CancelToken, Event, Reporter
from engine.core.fmt import fmt_bytes, fmt_ms
from engine.pipeline.recipe import Recipe, validate_recipe

SEARCH_SCHEMA_VERSION = 1
SEARCH_FILE = "search.json"
SEARCH_KIND = "featherweight-search"
OBJECTIVES = ("gzip", "flash", "latency", "ram")
OBJECTIVE_KEYS = {
    "gzip": "tflite_gzip_bytes",
    "flash": "tflite_bytes",
    "latency": "latency_ms",
    "ram": "arena_bytes",
}
OBJECTIVE_LABELS = {
    "gzip": "download size (gzip bytes)",
    "flash": "flash size (.tflite bytes)",
    "latency": "latency on this computer (ms)",
    "ram": "RAM (tensor arena estimate, bytes)",
}
SAMPLERS = ("tpe", "random")
SPACE_VERSION = 1
# A JSON object restricting the search space (each key's list must be a subset of what the
# model supports), for tests and benchmarks: FEATHERWEIGHT_SEARCH_SPACE='{"sparsity": [0.5]}'.
SPACE_ENV = "FEATHERWEIGHT_SEARCH_SPACE"
PRUNE_MARGIN_PTS = 15.0
# The best point: the smallest validation drop among the feasible trials at most this much
# larger than the smallest feasible one (measured on the demo, 20 min, seed 2: the smallest,
# 164.6x at 0.70 validation points, lost 1.39 on test; 0.8 % larger, 163.3x at 0.00, 0.83).
SIZE_TOLERANCE = 0.03
TIME_GRACE = 0.25  # a running trial is stopped this fraction of the time budget after it
STARTUP_TRIALS = 8
TRIALS_DIR = "trials"
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
VALUE_KEYS = (
    "val_accuracy",
    "val_drop",
    "val_drop_se",
    "tflite_bytes",
    "tflite_gzip_bytes",
    "latency_ms",
    "arena_bytes",
)

# Training knobs of the steps a trial may use (the example recipes' values, measured on the
# demo: benchmarks/RESULTS.md).
DISTILL = {"temperature": 4.0, "alpha": 0.1, "epochs": 30, "learning_rate": 0.002}
FILTERS = {"epochs": 10, "learning_rate": 0.001}
# Pruning at 1e-3 (the example recipes use 5e-4): the benchmark MobileNetV2 pruned 80 % (ERK,
# 4 epochs) lost 8.5 validation points at 5e-4 in a search, and nothing on test at 1e-3
# (benchmarks/PER_LAYER.md, which used 1e-3 on the demo too).
PRUNE = {"schedule": "polynomial", "learning_rate": 0.001}
CLUSTER = {"init": "kmeans_plus_plus", "preserve_sparsity": True, "epochs": 3}
CLUSTER_LR = 0.0001
QAT = {"epochs": 2, "learning_rate": 0.00005}

# Everything a trial can choose (space_for keeps what the model supports), in sampling order.
FULL_SPACE: dict[str, list[Any]] = {
    "width": [None, 0.75, 0.5],
    "filters": [0.0, 0.25, 0.5],
    "sparsity": [0.0, 0.5, 0.7, 0.8, 0.9, 0.95],
    "allocation": ["uniform", "erk", "sensitivity"],
    "clusters": [0, 8, 16, 32],
    "qat": [False, True],
    "teacher_guided": [False, True],
    "epochs": [4, 8, 16],
    "format": ["int8", "float16", "dynamic"],
    "sparse": [False, True],
}
DEFAULTS: dict[str, Any] = {
    "width": None,
    "filters": 0.0,
    "sparsity": 0.0,
    "allocation": "uniform",
    "clusters": 0,
    "qat": False,
    "teacher_guided": False,
    "epochs": 4,
    "format": "int8",
    "sparse": False,
}
# First trials of a new study (expert starting points: int8 alone, ERK-allocated pruning, the
# issue's hand recipes): they give the sampler a feasible point and small ones at once.
# ERK, not uniform: uniform 80 % cost the benchmark MobileNetV2 30 points, ERK none
# (benchmarks/PER_LAYER.md). Skipped when outside the space.
ANCHORS: list[dict[str, Any]] = [
    {"format": "int8"},
    {"sparsity": 0.8, "allocation": "erk", "epochs": 4, "format": "int8"},
    {"sparsity": 0.9, "allocation": "erk", "clusters": 8, "epochs": 8, "format": "int8"},
    {"width": 0.5, "sparsity": 0.8, "allocation": "erk", "clusters": 16, "epochs": 8},
]

_STATE_NAMES = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "fail",
    "RUNNING": "running",
    "WAITING": "waiting",
}


# --------------------------------------------------------------------------- small helpers


def parse_duration(text: str) -> float:
    """Seconds in ``"20m"``, ``"90s"``, ``"1h"``, ``"1h30m"``, ``"300"`` (seconds); > 0.
    Raises BadInputError otherwise."""
    raw = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        value = float(raw)
    else:
        m = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?", raw)
        if not raw or m is None or not any(m.groups()):
            raise BadInputError(
                f"time {text!r} is not a duration (e.g. 20m, 90s, 1h, 1h30m or seconds)"
            )
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        value = h * 3600 + mi * 60 + s
    if value <= 0:
        raise BadInputError(f"time {text!r} must be more than zero")
    return value


def _atomic_json(path: Path, doc: dict[str, Any]) -> None:
    from engine.core.cache import write_atomic

    write_atomic(path, (json.dumps(doc, indent=2, default=_plain) + "\n").encode("utf-8"))


def _plain(value: Any) -> Any:
    try:
        return value.item()
    except AttributeError:
        return str(value)


def _check_args(budget: float, objective: str, time_s: Any, trials: Any, sampler: str) -> None:
    if objective not in OBJECTIVES:
        raise BadInputError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
    if sampler not in SAMPLERS:
        raise BadInputError(f"sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    if not isinstance(budget, (int, float)) or math.isnan(budget) or not 0 <= budget <= 100:
        raise BadInputError(f"budget {budget!r} must be 0-100 accuracy points")
    if time_s is not None and not time_s > 0:
        raise BadInputError(f"time budget {time_s!r} must be more than zero seconds")
    if trials is not None and (isinstance(trials, bool) or int(trials) < 1):
        raise BadInputError(f"trials {trials!r} must be a whole number >= 1")
    if time_s is None and trials is None:
        raise BadInputError("give a time budget (--time) or a number of trials (--trials)")


# --------------------------------------------------------------------------- the space


def space_for(prepared: Any) -> dict[str, list[Any]]:
    """The choices this model supports (``FULL_SPACE`` minus what it cannot do), restricted
    by ``$FEATHERWEIGHT_SEARCH_SPACE`` when set (tests, benchmarks)."""
    from engine.models.support import cluster_support, prune_support
    from engine.techniques.structured import prunable_groups

    model = prepared.loaded.model
    space = {k: list(v) for k, v in FULL_SPACE.items()}
    if not _can_distill(model):
        space["width"] = [None]
    try:
        if not any(g.prunable for g in prunable_groups(model)):
            space["filters"] = [0.0]
    except Exception:  # noqa: BLE001 - an unanalysable graph: no filter pruning
        space["filters"] = [0.0]
    if not any(prune_support(layer).compresses for layer in model.layers):
        space["sparsity"], space["allocation"], space["sparse"] = [0.0], ["uniform"], [False]
    if not any(cluster_support(layer).compresses for layer in model.layers):
        space["clusters"] = [0]
    return _restricted(space)


def _can_distill(model: Any) -> bool:
    """Whether a width-scaled student can be rebuilt from the model's config."""
    try:
        from engine.techniques.distill import rebuild, scaled_config

        rebuild(model, scaled_config(model.get_config(), 0.5), copy_weights=False)
        return True
    except Exception:  # noqa: BLE001 - subclassed / unusual models cannot be distilled so
        return False


def _restricted(space: dict[str, list[Any]]) -> dict[str, list[Any]]:
    raw = os.environ.get(SPACE_ENV, "").strip()
    if not raw:
        return space
    try:
        wanted = json.loads(raw)
        if not isinstance(wanted, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise BadInputError(f"{SPACE_ENV} is not a JSON object ({exc})") from None
    for key, values in wanted.items():
        if key not in space:
            raise BadInputError(f"{SPACE_ENV}: unknown choice {key!r} ({', '.join(space)})")
        if not isinstance(values, list) or not values or any(v not in space[key] for v in values):
            raise BadInputError(
                f"{SPACE_ENV}: {key} must be a non-empty list out of {space[key]!r}"
            )
        space[key] = list(values)
    return space


def effective_params(params: dict[str, Any], space: dict[str, list[Any]]) -> dict[str, Any]:
    """The choices that matter for this combination (e.g. no allocation without pruning)."""
    p = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    out: dict[str, Any] = {"format": p["format"]}
    if p["width"] is not None:
        out["width"] = p["width"]
    if p["filters"]:
        out["filters"] = p["filters"]
    if p["sparsity"]:
        out["sparsity"] = p["sparsity"]
        out["allocation"] = p["allocation"]
        out["epochs"] = p["epochs"]
        out["sparse"] = bool(p["sparse"])
    if p["clusters"]:
        out["clusters"] = p["clusters"]
    if p["format"] == "int8" and p["qat"]:
        out["qat"] = True
    if p["sparsity"] or p["clusters"] or out.get("qat"):
        out["teacher_guided"] = bool(p["teacher_guided"])
    return out


def trial_recipe(params: dict[str, Any], space: dict[str, list[Any]] | None = None) -> Recipe:
    """The ordinary recipe (engine.pipeline.recipe) a trial's choices stand for."""
    p = effective_params(params, space or FULL_SPACE)
    guided = bool(p.get("teacher_guided", False))
    steps: list[dict[str, Any]] = []
    if "width" in p:
        steps.append({"type": "distill", "width": float(p["width"]), **DISTILL})
    if "filters" in p:
        steps.append({"type": "prune_filters", "ratio": float(p["filters"]), **FILTERS})
    if "sparsity" in p:
        steps.append(
            {
                "type": "prune",
                "target_sparsity": float(p["sparsity"]),
                "allocation": p["allocation"],
                "epochs": int(p["epochs"]),
                "teacher_guided": guided,
                **PRUNE,
            }
        )
    if "clusters" in p:
        steps.append(
            {
                "type": "cluster",
                "clusters": int(p["clusters"]),
                "learning_rate": CLUSTER_LR,
                "teacher_guided": guided,
                **CLUSTER,
            }
        )
    if p.get("qat"):
        steps.append({"type": "qat", "teacher_guided": guided, **QAT})
    steps.append({"type": "quantize", "mode": p["format"], "sparse": bool(p.get("sparse", False))})
    return validate_recipe(
        {
            "schema_version": 3,
            "name": "search: " + _short(p),
            "seed": 0,
            "batch_size": 32,
            "steps": steps,
        }
    )


def _short(p: dict[str, Any]) -> str:
    """``distill 0.5 → prune 80% erk → cluster 16 → int8`` for effective params."""
    parts = []
    if "width" in p:
        parts.append(f"distill {p['width']:g}")
    if "filters" in p:
        parts.append(f"filters {p['filters']:.0%}")
    if "sparsity" in p:
        parts.append(f"prune {p['sparsity']:.0%} {p['allocation']} {p['epochs']}ep")
    if "clusters" in p:
        parts.append(f"cluster {p['clusters']}")
    if p.get("qat"):
        parts.append("qat")
    fmt = p["format"] + (" sparse" if p.get("sparse") else "")
    if p.get("teacher_guided"):
        fmt += " (guided)"
    parts.append(fmt)
    return " → ".join(parts)


def describe_params(params: dict[str, Any]) -> str:
    """One line for a trial's (effective) choices."""
    return _short(effective_params(params, FULL_SPACE))


# --------------------------------------------------------------------------- the study name


def study_identity(prepared: Any) -> str:
    """A fingerprint of the model and the data that is the same on every machine (so
    ``--storage URL`` on several machines joins one study): the model's config and weights,
    the split's description without file paths, and the validation and test arrays."""
    h = hashlib.sha256()
    model = prepared.loaded.model
    h.update(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    for w in model.get_weights():
        h.update(w.tobytes())
    described = {k: v for k, v in prepared.splits.describe().items() if k != "source"}
    h.update(json.dumps(described, sort_keys=True, default=str).encode())
    for split in ("val", "test"):
        x, y = prepared.splits.arrays(split)
        h.update(x.tobytes())
        h.update(y.tobytes())
    return h.hexdigest()


def study_name_for(
    prepared: Any, budget: float, objective: str, space: dict[str, list[Any]]
) -> str:
    """Deterministic: the same model, data, split, objective, budget and space → the same
    study (so the same command resumes it)."""
    doc = {
        "identity": study_identity(prepared),
        "objective": objective,
        "budget": round(float(budget), 6),
        "space": space,
        "space_version": SPACE_VERSION,
    }
    text = json.dumps(doc, sort_keys=True, default=str)
    return f"featherweight-{objective}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


# --------------------------------------------------------------------------- measuring


class _Noise:
    """Paired validation comparison against the baseline's LiteRT predictions."""

    def __init__(self, prepared: Any) -> None:
        from engine.tflite.metrics import tflite_predictions

        kind = prepared.loaded.output_kind
        self.kind = kind
        self.splits = prepared.splits
        pred, labels = tflite_predictions(prepared.baseline_tflite, prepared.splits, "val")
        self.labels = labels.reshape(len(labels), -1)[:, 0]
        self.base_right = self._right(pred)
        self.n = int(len(self.labels))
        self.val_accuracy = float(self.base_right.mean()) if self.n else 0.0

    def _right(self, pred: Any) -> Any:
        from engine.core.outputs import predicted_labels

        return (predicted_labels(pred, self.kind) == self.labels).astype(float)

    def compare(self, data: bytes) -> dict[str, float]:
        """``val_accuracy``, ``val_drop`` (points) and its paired standard error."""
        import numpy as np

        from engine.tflite.metrics import tflite_predictions

        pred, _ = tflite_predictions(data, self.splits, "val")
        right = self._right(pred)
        diff = self.base_right - right
        se = float(np.std(diff, ddof=1) / math.sqrt(self.n)) if self.n > 1 else 0.0
        return {
            "val_accuracy": float(right.mean()) if self.n else 0.0,
            "val_drop": float(diff.mean()) * 100.0 if self.n else 0.0,
            "val_drop_se": se * 100.0,
        }


def _arena_bytes(data: bytes) -> int | None:
    from engine.tflite.report import report_tflite

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        try:
            return int(report_tflite(path)["memory"]["arena_estimate_bytes"])
        except Exception:  # noqa: BLE001 - the estimate is a report figure, not a must
            return None


def _with_metadata(data: bytes, splits: Any) -> bytes:
    """The file as ``compress`` writes it (labels and input normalization in its metadata),
    so a trial's sizes are those of the file ``best/`` ships."""
    from engine.pipeline.run import _write_metadata

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        _write_metadata(path, splits)
        return path.read_bytes()


def _sizes_latency(data: bytes, splits: Any) -> dict[str, Any]:
    from engine.tflite.metrics import file_sizes, latency_ms

    sample = next(iter(splits.batches("val", 1)))[0]
    return {
        **file_sizes(data),
        "latency_ms": latency_ms(data, sample),
        "arena_bytes": _arena_bytes(data),
    }


# --------------------------------------------------------------------------- cancel tokens


class _TrialToken(CancelToken):
    """Cancelled when the user cancels, when the pruner decides, or well past the deadline."""

    def __init__(self, user: CancelToken, deadline: float | None) -> None:
        super().__init__()
        self.user = user
        self.deadline = deadline
        self.why: str | None = None

    def stop(self, why: str) -> None:
        if self.why is None:
            self.why = why
        self.cancel()

    @property
    def cancelled(self) -> bool:
        if self.user.cancelled:
            self.stop("user")
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.stop("time")
        return self._flag.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled("cancelled by the user" if self.why == "user" else str(self.why))


def _has_batchnorm(model: Any) -> bool:
    return any("BatchNormalization" in type(m).__name__ for m in model.submodules)


def _warmup_epochs(step: dict[str, Any]) -> int:
    """Epochs of a last training step whose validation accuracy is not yet telling: pruning
    reaches its target ~70 % into training (accuracy dips, then recovers), a distilled
    student starts from scratch, filter pruning's first epoch repairs the cut."""
    epochs = int(step.get("epochs", 0) or 0)
    if step["type"] == "prune":
        return max(0, math.ceil(0.75 * epochs))
    if step["type"] == "distill":
        return epochs // 2
    if step["type"] == "prune_filters":
        return 1
    return 0


class _TrialFailed(Exception):
    """A trial that failed (technique error, or interrupted); recorded, the search goes on."""


# --------------------------------------------------------------------------- the search


class _Search:
    """State of one ``search`` invocation (shared by the objective and the callbacks)."""

    def __init__(
        self,
        *,
        prepared: Any,
        budget: float,
        objective: str,
        out: Path,
        time_s: float | None,
        trials: int | None,
        seed: int,
        sampler: str,
        reporter: Reporter,
        space: dict[str, list[Any]],
        study: Any,
        study_name: str,
        storage_label: str,
        noise: _Noise,
        baseline: dict[str, Any],
        cache: Any,
        versions: dict[str, str],
        created: str,
    ) -> None:
        self.prepared, self.budget, self.objective, self.out = prepared, budget, objective, out
        self.batchnorm = _has_batchnorm(prepared.loaded.model)
        self.time_s, self.trials, self.seed, self.sampler = time_s, trials, seed, sampler
        self.reporter, self.space, self.study, self.study_name = reporter, space, study, study_name
        self.storage_label, self.noise, self.baseline = storage_label, noise, baseline
        self.cache, self.versions, self.created = cache, versions, created
        self._all_recipes: set[str] | None = None
        self.durations: list[float] = []
        self.stopped: str | None = None
        self.started = time.monotonic()

    # ---------------------------------------------------------------- helpers
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def deadline(self) -> float | None:
        if self.time_s is None:
            return None
        return self.started + self.time_s * (1.0 + TIME_GRACE)

    def emit(self, event: Event) -> None:
        self.reporter.emit(event)

    # ---------------------------------------------------------------- one trial
    def evaluate(self, trial: Any) -> float:
        import optuna

        params = {
            key: trial.suggest_categorical(key, choices) for key, choices in self.space.items()
        }
        eff = effective_params(params, self.space)
        recipe = trial_recipe(params, self.space)
        recipe_doc = recipe.to_dict()
        rkey = json.dumps(recipe_doc["steps"], sort_keys=True)
        trial.set_user_attr("params", eff)
        trial.set_user_attr("recipe", recipe_doc)
        trial.set_user_attr("recipe_key", rkey)
        self.emit(
            {
                "type": "trial",
                "number": trial.number,
                "state": "running",
                "params": eff,
                "recipe": recipe_doc,
            }
        )
        t0 = time.monotonic()
        twin = self._duplicate(trial, rkey)
        if twin is not None:
            for key in (*VALUE_KEYS, "folder", "objective_value"):
                trial.set_user_attr(key, twin.user_attrs.get(key))
            trial.set_user_attr("duplicate_of", twin.number)
            trial.set_user_attr("cache_hits", 0)
            trial.set_user_attr("duration_s", round(time.monotonic() - t0, 3))
            trial.set_constraint("val_drop_over_budget", twin.user_attrs["val_drop"] - self.budget)
            self.reporter.log(f"trial {trial.number}: same recipe as trial {twin.number}")
            return float(twin.value)
        hits_before = self.cache.hits
        token = _TrialToken(self.reporter.cancel, self.deadline())
        try:
            values = self._run_trial(trial, recipe, token)
        except optuna.TrialPruned:
            self._finish_attrs(trial, t0, hits_before)
            # Known to miss the budget: infeasible for the sampler too.
            deficit = (trial.user_attrs.get("pruned_at") or {}).get("deficit_pts")
            if deficit is not None:
                trial.set_constraint("val_drop_over_budget", float(deficit) - self.budget)
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - recorded as a failure
            self._finish_attrs(trial, t0, hits_before)
            why = token.why if isinstance(exc, Cancelled) else None
            if isinstance(exc, KeyboardInterrupt):
                why = "user"
            if why in ("user", "time"):
                trial.set_user_attr("interrupted", why)
                trial.set_user_attr(
                    "error",
                    ("stopped by the user" if why == "user" else "stopped: time budget over")
                    + "; queued again",
                )
                self.study.enqueue_trial(params)
                self.stopped = why
                self.study.stop()
            else:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
                trial.set_user_attr("error", message[:500])
                self.reporter.log(f"trial {trial.number} failed: {message}", "warning")
            raise _TrialFailed(str(exc)) from None
        self._finish_attrs(trial, t0, hits_before)
        for key, value in values.items():
            trial.set_user_attr(key, value)
        trial.set_constraint("val_drop_over_budget", values["val_drop"] - self.budget)
        objective_value = values[OBJECTIVE_KEYS[self.objective]]
        if objective_value is None:
            raise _TrialFailed(f"{self.objective} could not be measured")
        trial.set_user_attr("objective_value", objective_value)
        return float(objective_value)

    def _finish_attrs(self, trial: Any, t0: float, hits_before: int) -> None:
        duration = round(time.monotonic() - t0, 3)
        self.durations.append(duration)
        trial.set_user_attr("duration_s", duration)
        trial.set_user_attr("cache_hits", self.cache.hits - hits_before)

    def _duplicate(self, trial: Any, rkey: str) -> Any:
        from optuna.trial import TrialState

        for other in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if other.number != trial.number and other.user_attrs.get("recipe_key") == rkey:
                if other.user_attrs.get("val_drop") is not None and other.value is not None:
                    return other
        return None

    def _run_trial(self, trial: Any, recipe: Recipe, token: _TrialToken) -> dict[str, Any]:
        import optuna

        from engine.pipeline.run import _Stages, convert_recipe, train_recipe

        last_step = recipe.train_steps[-1] if recipe.train_steps else None
        last = last_step["type"] if last_step else None
        warmup = _warmup_epochs(last_step) if last_step else 0
        # Stopping at the last epoch saves nothing; and prune/cluster re-estimate BatchNorm
        # statistics after training (engine.techniques.training.recalibrate_batchnorm), so a
        # BatchNorm model's validation accuracy during those steps says little about the
        # result (the benchmark MobileNetV2's prune 80 % ERK was stopped at 30 points down
        # and ends within a point): no pruning there.
        epochs = int(last_step.get("epochs", 0) or 0) if last_step else 0
        if last in ("prune", "cluster") and self.batchnorm:
            warmup = epochs
        epoch = [0]

        def on_event(event: Event) -> None:
            self.reporter.emit(event)
            if (
                event.get("type") == "metric"
                and last is not None
                and event.get("stage") == last
                and "val_accuracy" in (event.get("values") or {})
            ):
                epoch[0] += 1
                if epoch[0] <= warmup or epoch[0] >= epochs:
                    return  # still pruning / distilling: accuracy dips before it recovers
                deficit = (self.noise.val_accuracy - event["values"]["val_accuracy"]) * 100.0
                trial.report(deficit, epoch[0])
                if trial.should_prune():
                    trial.set_user_attr("pruned_at", {"step": last, "deficit_pts": deficit})
                    token.stop("pruned")

        inner = Reporter(on_event, token)
        warnings: list[str] = []
        stages = _Stages(inner, len(recipe.train_steps) + 2, {})
        try:
            trained = train_recipe(
                self.prepared, recipe, inner, stages, warnings, cache=self.cache, measure_test=False
            )
            with stages("convert", "Converting to .tflite"):
                data, _final, _check, _notes = convert_recipe(
                    trained, self.prepared.splits, recipe.final_quantize, inner, warnings
                )
                data = _with_metadata(data, self.prepared.splits)
            with stages("evaluate", "Measuring on the validation split"):
                values = {**self.noise.compare(data), **_sizes_latency(data, self.prepared.splits)}
        except Cancelled:
            if token.why == "pruned":
                raise optuna.TrialPruned("validation deficit over the budget + margin") from None
            raise
        folder = self.out / TRIALS_DIR / f"{trial.number:04d}"
        self._write_trial(folder, trial.number, data, recipe, values, warnings)
        values["folder"] = f"{TRIALS_DIR}/{trial.number:04d}"
        return values

    def _write_trial(
        self,
        folder: Path,
        number: int,
        data: bytes,
        recipe: Recipe,
        values: dict[str, Any],
        warnings: list[str],
    ) -> None:
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "model.tflite").write_bytes(data)
        (tmp / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
        doc = {
            "trial": number,
            "study_name": self.study_name,
            "measured_on": "validation",
            "baseline_val_accuracy": self.noise.val_accuracy,
            **values,
            "warnings": warnings,
        }
        (tmp / "trial.json").write_text(json.dumps(doc, indent=2, default=_plain) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    # ---------------------------------------------------------------- after each trial
    def after_trial(self, study: Any, frozen: Any) -> None:
        doc = self.document()
        entry = next((t for t in doc["trials"] if t["number"] == frozen.number), None)
        if entry is not None:
            values = {k: entry.get(k) for k in VALUE_KEYS}
            self.emit(
                {
                    "type": "trial",
                    "number": entry["number"],
                    "state": entry["state"],
                    "params": entry["params"],
                    "recipe": entry["recipe"],
                    "values": values,
                    "objective_value": entry["objective_value"],
                    "feasible": entry["feasible"],
                    "duration_s": entry["duration_s"],
                    "cache_hits": entry["cache_hits"],
                    "error": entry["error"],
                }
            )
        self.write(doc)
        self.emit(self.search_event(doc))
        if self.reporter.cancel.cancelled:
            self.stopped = self.stopped or "user"
            study.stop()
        elif self.time_s is not None:
            left = self.time_s - self.elapsed()
            typical = statistics.median(self.durations) if self.durations else 0.0
            if left <= 0.5 * typical or left <= 0:
                self.stopped = self.stopped or "time"
                study.stop()
        if self._exhausted(doc):
            self.stopped = self.stopped or "exhausted"
            study.stop()

    def _exhausted(self, doc: dict[str, Any]) -> bool:
        total = math.prod(len(values) for values in self.space.values())
        tried = {
            json.dumps(t["recipe"]["steps"], sort_keys=True)
            for t in doc["trials"]
            if t["state"] in ("complete", "pruned") and t.get("recipe")
        }
        return total <= 64 and len(tried) >= len(self._distinct_recipes())

    def _distinct_recipes(self) -> set[str]:
        if self._all_recipes is None:
            import itertools

            keys = list(self.space)
            found: set[str] = set()
            for combo in itertools.product(*(self.space[k] for k in keys)):
                recipe = trial_recipe(dict(zip(keys, combo)), self.space)
                found.add(json.dumps(recipe.to_dict()["steps"], sort_keys=True))
            self._all_recipes = found
        return self._all_recipes

    # ---------------------------------------------------------------- the document
    def trial_entries(self) -> list[dict[str, Any]]:
        entries = []
        for t in self.study.get_trials(deepcopy=False):
            a = t.user_attrs
            state = _STATE_NAMES.get(t.state.name, t.state.name.lower())
            feasible = None
            if state == "complete" and a.get("val_drop") is not None:
                feasible = bool(a["val_drop"] <= self.budget + 1e-9)
            duration = a.get("duration_s")
            if duration is None and t.datetime_start and t.datetime_complete:
                duration = round((t.datetime_complete - t.datetime_start).total_seconds(), 3)
            raw = t.params or t.system_attrs.get("fixed_params") or {}  # waiting: queued
            params = a.get("params")
            if params is None and raw:
                params = effective_params(raw, self.space)
            recipe = a.get("recipe")
            if recipe is None and raw:
                recipe = trial_recipe(raw, self.space).to_dict()
            entry = {
                "number": t.number,
                "state": state,
                "params": params,
                "recipe": recipe,
                "summary": describe_params(params) if params else None,
                **{k: a.get(k) for k in VALUE_KEYS},
                "objective_value": a.get("objective_value"),
                "feasible": feasible,
                "duration_s": duration,
                "cache_hits": a.get("cache_hits"),
                "folder": a.get("folder"),
                "error": a.get("error")
                or (
                    "its process stopped before the trial finished (killed or crashed)"
                    if state == "fail"
                    else None
                ),
                "duplicate_of": a.get("duplicate_of"),
            }
            if a.get("pruned_at"):
                entry["pruned_at"] = a["pruned_at"]
            entries.append(entry)
        return entries

    def document(self) -> dict[str, Any]:
        trials = self.trial_entries()
        frontier = frontier_of(trials)
        best = pick_best(trials, self.budget)
        return {
            "schema_version": SEARCH_SCHEMA_VERSION,
            "kind": SEARCH_KIND,
            "study_name": self.study_name,
            "storage": self.storage_label,
            "objective": self.objective,
            "objective_key": OBJECTIVE_KEYS[self.objective],
            "budget_pts": self.budget,
            "seed": self.seed,
            "sampler": self.sampler,
            "time_budget_s": self.time_s,
            "trial_budget": self.trials,
            "elapsed_s": round(self.elapsed(), 3),
            "stopped": self.stopped,
            "model": {
                "path": self.prepared.loaded.path,
                "source_format": self.prepared.loaded.source_format,
            },
            "data": self.prepared.splits.describe(),
            "split": "validation",
            "baseline": self.baseline,
            "space": self.space,
            "trials": trials,
            "frontier": frontier,
            "frontier_test": [],
            "best": _best_block(best, self.budget, self.baseline) if best else None,
            "cache": self.cache.counts(),
            "noise": {
                "val_samples": self.noise.n,
                "one_sample_pts": round(100.0 / max(1, self.noise.n), 4),
                "rule": "paired validation drop vs the baseline on the same images; "
                "within budget when val_drop <= budget_pts; best = smallest val_drop among "
                "the points within budget at most size_tolerance larger than the smallest",
                "size_tolerance": SIZE_TOLERANCE,
            },
            "versions": self.versions,
            "created": self.created,
        }

    def search_event(self, doc: dict[str, Any]) -> Event:
        finished = [t for t in doc["trials"] if t["state"] in ("complete", "pruned", "fail")]
        eta = None
        if self.time_s is not None:
            eta = max(0.0, self.time_s - self.elapsed())
        if self.trials is not None and self.durations:
            by_trials = max(0, self.trials - len(finished)) * statistics.median(self.durations)
            eta = by_trials if eta is None else min(eta, by_trials)
        best = doc["best"]
        return {
            "type": "search",
            "trials_done": len(finished),
            "best": best["trial"] if best else None,
            "best_values": {k: best.get(k) for k in VALUE_KEYS} if best else None,
            "frontier": doc["frontier"],
            "elapsed_s": doc["elapsed_s"],
            "time_budget_s": self.time_s,
            "trial_budget": self.trials,
            "eta_s": eta,
            "baseline": self.baseline,
            "objective": self.objective,
            "budget_pts": self.budget,
        }

    def write(self, doc: dict[str, Any]) -> None:
        _atomic_json(self.out / SEARCH_FILE, doc)


def _measured(trials: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The complete trials (not answered as duplicates) with an objective value and ``key``."""
    return [
        t
        for t in trials
        if t["state"] == "complete"
        and t.get("objective_value") is not None
        and t.get(key) is not None
        and t.get("duplicate_of") is None
    ]


def frontier_of(trials: list[dict[str, Any]]) -> list[int]:
    """Pareto frontier of the complete trials (no duplicates): smaller objective value and
    higher validation accuracy; trial numbers by increasing objective value."""
    points = _measured(trials, "val_accuracy")
    points.sort(key=lambda t: (t["objective_value"], -t["val_accuracy"], t["number"]))
    out, best_acc = [], -1.0
    for t in points:
        if t["val_accuracy"] > best_acc + 1e-12:
            out.append(t["number"])
            best_acc = t["val_accuracy"]
    return out


def confident(t: dict[str, Any], budget: float) -> bool:
    """Within budget by one standard error: validation drop + its paired standard error ≤
    budget (a point one image over the line on the demo's 142 images is not)."""
    return bool(t["val_drop"] + (t.get("val_drop_se") or 0.0) <= budget + 1e-9)


def pick_best(trials: list[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """The best complete trial: among the trials within budget — those ``confident`` of it
    when there are any — the smallest validation drop among those at most
    ``SIZE_TOLERANCE`` larger than the smallest one (the smallest point within budget is the
    one whose validation drop most likely flatters it: out of many trials, the winner's
    validation figure is the luckiest); when none is within budget, the closest one
    (smallest validation drop, then smallest size)."""
    done = _measured(trials, "val_drop")
    if not done:
        return None
    feasible = [t for t in done if t["val_drop"] <= budget + 1e-9]
    if feasible:
        pool = [t for t in feasible if confident(t, budget)] or feasible
        smallest = min(t["objective_value"] for t in pool)
        near = [t for t in pool if t["objective_value"] <= smallest * (1.0 + SIZE_TOLERANCE)]
        return min(near, key=lambda t: (t["val_drop"], t["objective_value"], t["number"]))
    return min(done, key=lambda t: (t["val_drop"], t["objective_value"], t["number"]))


def _best_block(t: dict[str, Any], budget: float, baseline: dict[str, Any]) -> dict[str, Any]:
    within = bool(t["val_drop"] <= budget + 1e-9)
    return {
        "trial": t["number"],
        "within_budget": within,
        "confident": within and confident(t, budget),
        "folder": None,
        "accuracy": None,
        "drop": None,  # test, a fraction like metrics.json's accuracy_drop
        "drop_pts": None,  # the same in points (val_drop and budget_pts are in points)
        "measured_on_test": False,
        "val_accuracy": t["val_accuracy"],
        "val_drop": t["val_drop"],
        "val_drop_se": t.get("val_drop_se"),
        "ratio_gzip": baseline["tflite_gzip_bytes"] / t["tflite_gzip_bytes"],
        "ratio_raw": baseline["tflite_bytes"] / t["tflite_bytes"],
        **{k: t.get(k) for k in ("tflite_bytes", "tflite_gzip_bytes", "latency_ms", "arena_bytes")},
        "objective_value": t["objective_value"],
        "params": t["params"],
        "summary": t.get("summary"),
        "recipe": t["recipe"],
        "trial_folder": t.get("folder"),
    }


def _open_study(
    out: Path, storage_url: str | None, name: str, sampler: str, seed: int, budget: float
) -> tuple[Any, str]:
    import optuna

    from engine.pipeline import search_storage

    storage = search_storage.open_storage(out, storage_url)
    label = search_storage.redact(storage_url)
    pruner = optuna.pruners.ThresholdPruner(upper=budget + PRUNE_MARGIN_PTS)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )
    study.sampler = _sampler(sampler, _sampler_seed(seed, len(study.trials), storage_url))
    return study, label


def _sampler_seed(seed: int, existing: int, storage_url: str | None) -> int:
    """The sampler's seed: ``seed`` itself for a new study (a fresh search is repeatable);
    mixed with the number of trials already in the study when resuming, and with this
    process when several share a database, so that a resumed or parallel sampler does not
    replay the suggestions an earlier one already tried."""
    if existing == 0 and storage_url is None:
        return seed
    salt = f"{seed}:{existing}:" + (f"{os.getpid()}:{time.time_ns()}" if storage_url else "")
    return int.from_bytes(hashlib.sha256(salt.encode()).digest()[:4], "big")


def _sampler(kind: str, seed: int) -> Any:
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials still running elsewhere count as bad, so parallel processes
    # do not all sample the same point.
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True, constant_liar=True
    )


def search(
    prepared: Any,
    budget: float,
    objective: str,
    out_dir: str | Path,
    *,
    time_s: float | None = None,
    trials: int | None = None,
    seed: int = 0,
    storage: str | None = None,
    study_name: str | None = None,
    sampler: str = "tpe",
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Search for the smallest ``objective`` within ``budget`` accuracy points (module doc);
    returns the search.json document (also in ``out_dir/search.json``, rewritten after every
    trial) and writes ``out_dir/best/`` for a best point within budget.

    Raises BadInputError for bad arguments or an unusable storage; trial failures are
    recorded (state "fail"), never raised; a user cancel returns the document."""
    import warnings as pywarnings

    import optuna
    from optuna.trial import TrialState

    from engine.core import tfenv
    from engine.pipeline import search_storage
    from engine.pipeline.checkpoints import PrefixCache, identity_of

    _check_args(budget, objective, time_s, trials, sampler)
    reporter = reporter or Reporter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"output folder {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create the output folder {out}: {exc.strerror}") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = space_for(prepared)
    name = study_name or study_name_for(prepared, budget, objective, space)
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore")
        study, label = _open_study(out, storage, name, sampler, seed, float(budget))
    with reporter.stage("search_baseline", "Measuring the original model on validation"):
        noise = _Noise(prepared)
        base_sizes = _sizes_latency(prepared.baseline_tflite, prepared.splits)
    baseline = {
        "val_accuracy": noise.val_accuracy,
        "accuracy": prepared.baseline["accuracy"],
        "tflite_bytes": prepared.baseline["tflite_bytes"],
        "tflite_gzip_bytes": prepared.baseline["tflite_gzip_bytes"],
        "latency_ms": prepared.baseline["latency_ms"],
        "arena_bytes": base_sizes["arena_bytes"],
    }
    state = _Search(
        prepared=prepared,
        budget=float(budget),
        objective=objective,
        out=out,
        time_s=time_s,
        trials=trials,
        seed=seed,
        sampler=sampler,
        reporter=reporter,
        space=space,
        study=study,
        study_name=name,
        storage_label=label,
        noise=noise,
        baseline=baseline,
        cache=PrefixCache(out / CHECKPOINTS_DIR, identity_of(prepared)),
        versions=tfenv.versions(),
        created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    recovered = search_storage.recover(study)
    if recovered:
        reporter.log(f"trial(s) {', '.join(map(str, recovered))} of a stopped run queued again")
    if not study.get_trials(deepcopy=False):
        for anchor in ANCHORS:
            params = {**DEFAULTS, **anchor}
            if all(params[k] in space[k] for k in space):
                study.enqueue_trial({k: params[k] for k in space}, skip_if_exists=True)
    finished_states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    doc = state.document()
    state.write(doc)
    reporter.emit(state.search_event(doc))
    already = len(study.get_trials(deepcopy=False, states=finished_states))
    if trials is not None and already >= trials:
        state.stopped = "trials"
    else:
        callbacks: list[Any] = [state.after_trial]
        if trials is not None:
            callbacks.append(optuna.study.MaxTrialsCallback(trials, states=finished_states))
        try:
            with pywarnings.catch_warnings():
                pywarnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                pywarnings.simplefilter("ignore", FutureWarning)
                study.optimize(
                    state.evaluate,
                    timeout=time_s,
                    catch=(_TrialFailed,),
                    callbacks=callbacks,
                )
        except KeyboardInterrupt:
            state.stopped = "user"
        if state.stopped is None:
            done_now = len(study.get_trials(deepcopy=False, states=finished_states))
            if trials is not None and done_now >= trials:
                state.stopped = "trials"
            elif reporter.cancel.cancelled:
                state.stopped = "user"
            else:
                state.stopped = "time"
    return _finish(state)


def _finish(state: _Search) -> dict[str, Any]:
    """Test-split figures for the frontier, ``best/`` for the best point; the final document."""
    from engine.tflite.metrics import tflite_accuracy

    doc = state.document()
    prepared, reporter = state.prepared, state.reporter
    if reporter.cancel.cancelled:
        # Stopped by the user: the results are kept and finished (test figures, best/) with
        # a fresh token; a second stop is the caller's kill.
        reporter = Reporter(reporter.on_event)
    base_acc = prepared.baseline["accuracy"]
    by_number = {t["number"]: t for t in doc["trials"]}
    frontier_test = []
    try:
        with reporter.stage("search_test", "Measuring the frontier on the test split"):
            for number in doc["frontier"]:
                folder = by_number[number].get("folder")
                path = state.out / folder / "model.tflite" if folder else None
                if path is None or not path.exists():
                    continue  # a trial of another machine
                acc = tflite_accuracy(
                    path.read_bytes(), prepared.splits, output_kind=prepared.loaded.output_kind
                )
                frontier_test.append(
                    {
                        "trial": number,
                        "accuracy": acc,
                        "drop": base_acc - acc,
                        "drop_pts": (base_acc - acc) * 100.0,
                    }
                )
    except Cancelled:
        reporter.log("test measurement of the frontier skipped (cancelled)", "warning")
    doc["frontier_test"] = frontier_test
    best = doc["best"]
    if best is not None and best["within_budget"]:
        try:
            metrics = materialize(
                prepared, state.out, best["trial"], state.out / BEST_DIR, reporter=reporter
            )
            best.update(
                folder=BEST_DIR,
                accuracy=metrics["compressed"]["accuracy"],
                drop=metrics["accuracy_drop"],
                drop_pts=metrics["accuracy_drop"] * 100.0,
                measured_on_test=True,
                ratio_gzip=metrics["ratio_gzip"],
                ratio_raw=metrics["ratio_raw"],
                test_tflite_bytes=metrics["compressed"]["tflite_bytes"],
                test_tflite_gzip_bytes=metrics["compressed"]["tflite_gzip_bytes"],
            )
        except Cancelled:
            reporter.log("best/ not written (cancelled); the trial folder has the model", "warning")
        except Exception as exc:  # noqa: BLE001 - the search's results stand without best/
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            reporter.log(f"best/ not written: {first}", "warning")
    elif best is not None:
        for entry in frontier_test:
            if entry["trial"] == best["trial"]:
                best.update(
                    accuracy=entry["accuracy"],
                    drop=entry["drop"],
                    drop_pts=entry["drop_pts"],
                    measured_on_test=True,
                )
    doc["elapsed_s"] = round(state.elapsed(), 3)
    state.write(doc)
    reporter.emit(state.search_event(doc))
    return doc


def materialize(
    prepared: Any,
    search_dir: str | Path,
    trial_number: int,
    out_dir: str | Path,
    *,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Write trial ``trial_number`` of the search in ``search_dir`` as an ordinary compress
    output folder in ``out_dir`` (``run_recipe`` with the search's checkpoints, so trained
    steps are restored, not retrained), measured on the TEST split; metrics.json gets
    ``"search": {study, trial, val_accuracy, val_drop, ...}``. Returns the metrics.

    Raises BadInputError when the search or the trial cannot be found."""
    from engine.pipeline.checkpoints import PrefixCache, identity_of
    from engine.pipeline.run import run_recipe

    search_dir = Path(search_dir)
    doc = read_search(search_dir / SEARCH_FILE)
    entry = next((t for t in doc["trials"] if t["number"] == int(trial_number)), None)
    if entry is None or entry.get("recipe") is None:
        raise BadInputError(f"trial {trial_number} is not in the search {search_dir}")
    if entry.get("duplicate_of") is not None:
        entry = next(t for t in doc["trials"] if t["number"] == entry["duplicate_of"])
    recipe = validate_recipe(entry["recipe"])
    cache = PrefixCache(search_dir / CHECKPOINTS_DIR, identity_of(prepared))
    extra = {
        "search": {
            "study": doc["study_name"],
            "trial": entry["number"],
            "objective": doc["objective"],
            "budget_pts": doc["budget_pts"],
            "val_accuracy": entry.get("val_accuracy"),
            "val_drop": entry.get("val_drop"),
            "val_drop_se": entry.get("val_drop_se"),
            "baseline_val_accuracy": doc["baseline"]["val_accuracy"],
            "checkpoint_hits": 0,
        }
    }
    trial_file = search_dir / (entry.get("folder") or "") / "model.tflite"
    judged = trial_file.read_bytes() if entry.get("folder") and trial_file.is_file() else None
    metrics = run_recipe(
        prepared, recipe, out_dir, reporter=reporter, cache=cache, extra=extra, judged=judged
    )
    metrics["search"]["checkpoint_hits"] = cache.hits
    # model.tflite is the judged file whenever the trial kept it (run_recipe's ``judged``).
    metrics["search"]["same_file_as_trial"] = (
        None if judged is None else (Path(out_dir) / "model.tflite").read_bytes() == judged
    )
    _atomic_json(Path(out_dir) / "metrics.json", metrics)
    return metrics


def read_search(path: str | Path) -> dict[str, Any]:
    """Read and check a search.json (kind and schema). Raises BadInputError (one line)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"no search found: {p} does not exist") from None
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot read {p}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != SEARCH_KIND:
        raise BadInputError(f"{p} is not a Featherweight search file")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise BadInputError(f"{p} has no valid schema_version")
    if version > SEARCH_SCHEMA_VERSION:
        raise BadInputError(
            f"{p} is search schema {version}, newer than this Featherweight supports "
            f"({SEARCH_SCHEMA_VERSION}); update the app"
        )
    return doc


# --------------------------------------------------------------------------- text output


def _size(key: str, value: Any) -> str:
    return fmt_ms(value) if key == "latency_ms" else fmt_bytes(value)


def format_search(doc: dict[str, Any]) -> str:
    """A human summary of a search.json document (the CLI's text output)."""
    key = doc.get("objective_key") or OBJECTIVE_KEYS.get(doc["objective"], "tflite_gzip_bytes")
    base = doc["baseline"]
    counts: dict[str, int] = {}
    for t in doc["trials"]:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    lines = [
        f"search: smallest {OBJECTIVE_LABELS.get(doc['objective'], doc['objective'])} "
        f"within {doc['budget_pts']:g} point(s) of accuracy",
        f"trials: {len(doc['trials'])} ({shown}); {doc['elapsed_s']:.0f} s; "
        f"stopped: {doc.get('stopped')}; checkpoints reused {doc['cache']['hits']}x",
        f"baseline: validation accuracy {base['val_accuracy']:.2%}, test accuracy "
        f"{base['accuracy']:.2%}, {_size(key, base.get(key))}",
        f"noise: {doc['noise']['val_samples']} validation images, one image = "
        f"{doc['noise']['one_sample_pts']:.2f} points",
    ]
    best = doc.get("best")
    if best is None:
        lines.append("best: no trial finished")
    else:
        head = "best within budget" if best["within_budget"] else "NO trial within budget; closest"
        test = (
            f"; test accuracy {best['accuracy']:.2%} (drop {best['drop'] * 100:+.2f} points, "
            "measured on test)"
            if best.get("accuracy") is not None
            else ""
        )
        lines.append(
            f"{head}: trial {best['trial']} ({best.get('summary') or ''}): "
            f"{_size(key, best.get(key))}, gzip {best['ratio_gzip']:.1f}x, raw "
            f"{best['ratio_raw']:.1f}x; validation drop {best['val_drop']:+.2f} ± "
            f"{(best.get('val_drop_se') or 0):.2f} points{test}"
        )
        if best.get("folder"):
            lines.append(f"  written to {best['folder']}/ (model.tflite, metrics.json)")
    tests = {e["trial"]: e for e in doc.get("frontier_test", [])}
    by_number = {t["number"]: t for t in doc["trials"]}
    if doc["frontier"]:
        lines.append("frontier (validation; test measured once at the end):")
        lines.append(
            f"  {'trial':>5}  {'size':>12}  {'gzip x':>7}  {'val drop':>9}  "
            f"{'test drop':>9}  recipe"
        )
        for number in doc["frontier"]:
            t = by_number[number]
            test_drop = tests.get(number)
            lines.append(
                f"  {number:>5}  {_size(key, t.get(key)):>12}  "
                f"{base['tflite_gzip_bytes'] / t['tflite_gzip_bytes']:>6.1f}x  "
                f"{t['val_drop']:>+9.2f}  "
                + (f"{test_drop['drop'] * 100:>+9.2f}" if test_drop else f"{'-':>9}")
                + f"  {t.get('summary') or ''}"
            )
    return "\n".join(lines)
