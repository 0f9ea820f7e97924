"""Magnitude pruning (tfmot ``prune_low_magnitude``), fine-tuned, then stripped.

The schedule is derived from the real number of training steps (steps per epoch × epochs):
tfmot only prunes every ``frequency`` steps between ``begin_step`` and ``end_step``, and its
default frequency of 100 can prune nothing on a small dataset. Pruning reaches the target
at ``end_step`` (a multiple of the frequency, about 70% into training) and the remaining
steps let the model recover with the mask fixed. After ``strip_pruning`` the reached
sparsity of every pruned layer is measured and checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import BadInputError, FeatherweightError
from engine.models.support import PRUNE_M_BY_N_TYPES as M_BY_N_TYPES
from engine.models.support import PRUNE_TYPES, is_weight_layer, not_compressed, prune_support
from engine.techniques.allocation import mean_of
from engine.techniques.registry import (
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    guided_of,
    guided_summary,
    learning_rate_knob,
    register,
    sensitivity_file_knob,
    teacher_knobs,
)
from engine.techniques.training import (
    MATRIX_NAMES,
    effective_kernels,
    fit,
    fresh_copy,
    recalibrate_batchnorm,
)

TOLERANCE = 0.005


@dataclass
class PruneSchedule:
    begin_step: int
    end_step: int
    frequency: int
    total_steps: int


@dataclass
class PruneResult:
    model: Any
    per_layer_sparsity: dict[str, float]
    schedule: PruneSchedule
    target: float  # the global (size-weighted) target over the pruned layers
    warnings: list[str] = field(default_factory=list)
    per_layer_target: dict[str, float] = field(default_factory=dict)
    allocation: str = "uniform"


def derive_schedule(steps_per_epoch: int, epochs: int) -> PruneSchedule:
    """Begin at step 0; end at a multiple of the frequency ~70% into training.

    tfmot counts training steps from 1 (the wrapper increments its step before updating
    the mask), so ``end_step`` must lie in 1..total for the target to be reached.
    """
    total = max(1, steps_per_epoch * epochs)
    frequency = max(1, min(100, total // 10))
    end = (int(total * 0.7) // frequency) * frequency
    if end < 1:  # too few steps for a ramp: prune at every step, end by the last one
        frequency = 1
        end = max(1, int(total * 0.7))
    return PruneSchedule(begin_step=0, end_step=end, frequency=frequency, total_steps=total)


def prunable_layer_names(
    model: Any, skip_first: bool, skip_last: bool, structured: bool
) -> list[str]:
    """Layers that will be wrapped: the ones ``prune_support`` prunes, minus the skipped
    ones (first/last of them) and, for 2:4, those tfmot's M-by-N pruning does not take."""
    candidates = [layer.name for layer in model.layers if prune_support(layer).compresses]
    if skip_first and candidates:
        candidates = candidates[1:]
    if skip_last and candidates:
        candidates = candidates[:-1]
    if not structured:
        return candidates
    by_name = {layer.name: layer for layer in model.layers}
    return [n for n in candidates if type(by_name[n]).__name__ in M_BY_N_TYPES]


def prunable_shapes(layer: Any) -> list[tuple[int, ...]]:
    """Shapes of the weights tfmot prunes in ``layer`` (kernel; a separable convolution's
    pointwise kernel; an Embedding table, RNN cell kernels, attention projections)."""
    if type(layer).__name__ in PRUNE_TYPES:
        return [tuple(int(d) for d in layer.kernel.shape)]
    pointwise = getattr(layer, "pointwise_kernel", None)
    if pointwise is not None:
        return [tuple(int(d) for d in pointwise.shape)]
    return [
        tuple(int(d) for d in w.shape)
        for w in layer.weights
        if str(w.name).split(":")[0].split("/")[-1] in MATRIX_NAMES
        and "depthwise" not in str(w.name)
    ]


def read_sensitivity_curves(path: str, key: str = "prune") -> dict[str, list[dict[str, Any]]]:
    """``{layer: curve}`` of a ``sensitivity.json`` (``featherweight analyze``) for ``key``
    ("prune", "cluster", "filters"). Raises BadInputError for a missing or invalid file."""
    from engine.techniques.oneshot import read_sensitivity

    layers = read_sensitivity(path).get("layers")
    if not isinstance(layers, list):
        raise BadInputError(f"{Path(path).name} has no per-layer results")
    return {
        str(e["name"]): list(e[key])
        for e in layers
        if isinstance(e, dict) and e.get("name") and isinstance(e.get(key), list) and e[key]
    }


SENSITIVITY_GRID = (0.5, 0.7, 0.8, 0.9, 0.95)


def layer_targets(
    model: Any, names: list[str], step: dict[str, Any], context: TrainContext
) -> dict[str, float]:
    """The sparsity each of ``names`` is pruned to: ``per_layer`` values as given, the rest
    from the ``allocation`` rule so that the size-weighted mean over ``names`` is
    ``target_sparsity``. Raises BadInputError for unknown layers or impossible targets."""
    from engine.techniques import allocation

    target = float(step["target_sparsity"])
    fixed = dict(step.get("per_layer") or {})
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise BadInputError(
            f"per-layer sparsity for layer(s) that are not pruned: {', '.join(unknown)} "
            f"(pruned: {', '.join(names)})"
        )
    shapes = _shapes(model, names)
    sizes = _sizes(shapes)
    rule = step.get("allocation", "uniform")
    curves = None
    free = [n for n in names if n not in fixed]
    if rule == "sensitivity" and free:
        curves = _curves(model, free, step, context)
    # ERK scores a layer by its main matrix (the largest one of an RNN/attention layer).
    main = {n: max(shapes[n], key=lambda sh: int(np.prod(sh))) for n in names if shapes[n]}
    max_value = min(0.99, max(0.95, target))  # a free layer's limit
    return allocation.allocate(
        rule,
        target,
        sizes,
        curves=curves,
        shapes=main,
        max_value=max_value,
        fixed=fixed,
    )


def _shapes(model: Any, names: list[str]) -> dict[str, list[tuple[int, ...]]]:
    by_name = {layer.name: layer for layer in model.layers}
    return {n: prunable_shapes(by_name[n]) for n in names}


def _sizes(shapes: dict[str, list[tuple[int, ...]]]) -> dict[str, int]:
    return {n: max(1, sum(int(np.prod(sh)) for sh in s)) for n, s in shapes.items()}


def _curves(
    model: Any, names: list[str], step: dict[str, Any], context: TrainContext
) -> dict[str, list[dict[str, Any]]]:
    reporter = context.reporter
    if step.get("sensitivity_file"):
        curves = read_sensitivity_curves(step["sensitivity_file"], "prune")
        missing = [n for n in names if n not in curves]
        if missing:
            raise BadInputError(
                f"the sensitivity file has no pruning curve for: {', '.join(missing)} "
                "(analyze this model again)"
            )
        reporter.log(f"sensitivity allocation from {Path(step['sensitivity_file']).name}")
        return curves
    from engine.techniques import oneshot

    reporter.log(
        f"sensitivity allocation: one-shot pruning curves of {len(names)} layer(s) on the "
        f"validation split at {', '.join(f'{s:g}' for s in SENSITIVITY_GRID)}"
    )
    return oneshot.prune_curves(
        model,
        context.splits,
        context.output_kind,
        grid=SENSITIVITY_GRID,
        layers=names,
        split="val",
        reporter=reporter,
    )


def _schedule(sp: Any, step: dict[str, Any], sched: PruneSchedule, target: float) -> Any:
    if step["schedule"] == "constant" or sched.end_step == sched.begin_step:
        # (a one-step run cannot ramp: prune to the target at once)
        return sp.ConstantSparsity(
            target, begin_step=sched.begin_step, end_step=sched.end_step, frequency=sched.frequency
        )
    return sp.PolynomialDecay(
        initial_sparsity=min(float(step["initial_sparsity"]), target),
        final_sparsity=target,
        begin_step=sched.begin_step,
        end_step=sched.end_step,
        frequency=sched.frequency,
    )


def prune_model(model: Any, step: dict[str, Any], context: TrainContext) -> PruneResult:
    """Prune ``model`` as ``step`` (a prune step) says; returns the stripped model.

    Each pruned layer gets its own schedule to its own target (``layer_targets``); a layer
    whose target is 0 is left unwrapped. Raises FeatherweightError if a layer did not reach
    its target, BadInputError for bad per-layer values.
    """
    from engine.core.tfenv import keras2, tfmot

    k, mot = keras2(), tfmot()
    sp = mot.sparsity.keras
    splits, reporter = context.splits, context.reporter
    structured = bool(step["structured_2_4"])
    names = prunable_layer_names(model, step["skip_first"], step["skip_last"], structured)
    warnings: list[str] = []
    if not names:
        raise FeatherweightError("no layer of this model can be pruned (needs Conv or Dense)")
    dense = [
        layer.name for layer in model.layers if is_weight_layer(layer) and layer.name not in names
    ]
    if dense:
        reporter.log(f"not pruned (skipped or unsupported by tfmot): {', '.join(dense)}")
    cannot = not_compressed(model, "prune")
    if cannot:
        warnings.append(f"left dense (pruning cannot take them): {cannot}")
    sched = derive_schedule(splits.steps_per_epoch(context.batch_size), step["epochs"])
    target = float(step["target_sparsity"])
    rule = step.get("allocation", "uniform")
    if structured:
        if abs(target - 0.5) > 1e-9:
            warnings.append(f"2:4 structured pruning gives 50% sparsity; target {target:g} ignored")
        if step.get("per_layer") or rule != "uniform":
            warnings.append("2:4 structured pruning: per-layer sparsity and allocation ignored")
        target, rule = 0.5, "uniform"
        targets = {n: 0.5 for n in names}
    else:
        targets = layer_targets(model, names, step, context)
        overall = mean_of(targets, _sizes(_shapes(model, names)))
        if abs(overall - target) > 0.005:  # every layer set by hand
            warnings.append(
                f"every pruned layer has its own sparsity: {overall:.1%} overall "
                f"(the target sparsity {target:.0%} is not used)"
            )
            target = overall
        if rule != "uniform" or step.get("per_layer"):
            shown = ", ".join(f"{n} {t:.0%}" for n, t in targets.items())
            reporter.log(f"per-layer sparsity ({rule}): {shown}")
    schedules = {n: _schedule(sp, step, sched, t) for n, t in targets.items() if t > 0}
    extra: dict[str, Any] = {"sparsity_m_by_n": (2, 4)} if structured else {}

    def wrap(layer: Any) -> Any:
        if layer.name in schedules:
            return sp.prune_low_magnitude(layer, pruning_schedule=schedules[layer.name], **extra)
        return layer

    wrapped = k.models.clone_model(fresh_copy(model), clone_function=wrap)
    reporter.log(
        f"pruning {len(schedules)} layer(s) to {target:.0%} overall: steps {sched.begin_step}-"
        f"{sched.end_step} of {sched.total_steps}, every {sched.frequency}"
    )
    fit(
        wrapped,
        context,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        callbacks=[sp.UpdatePruningStep()],
        guided=guided_of(step),
    )
    pruned = masked_sparsity(wrapped)  # every weight tfmot pruned, per layer
    stripped = sp.strip_pruning(wrapped)
    if recalibrate_batchnorm(stripped, splits):
        reporter.log("BatchNorm statistics re-estimated for the pruned weights")
    kernels = effective_kernels(stripped)
    per_layer = {n: float((kernels[n] == 0).mean()) for n in kernels}
    per_layer.update({n: zeros / size for n, (zeros, size) in pruned.items()})
    sizes = {n: size for n, (_zeros, size) in pruned.items()}
    sizes.update({n: kernel.size for n, kernel in kernels.items()})
    short = {
        n: (s, targets[n])
        for n, s in per_layer.items()
        if n in targets and s < targets[n] - TOLERANCE - 1.0 / max(1, sizes.get(n, 1))
    }
    if short:
        detail = ", ".join(f"{n} {s:.1%} of {t:.0%}" for n, (s, t) in short.items())
        what = f"{target:.0%}" if rule == "uniform" and not step.get("per_layer") else "per-layer"
        raise FeatherweightError(
            f"pruning did not reach the target sparsity {what} ({detail}); train for more epochs"
        )
    return PruneResult(stripped, per_layer, sched, target, warnings, targets, rule)


def masked_sparsity(wrapped: Any) -> dict[str, tuple[int, int]]:
    """``{layer: (zeros, size)}`` over all the weights each pruning wrapper of ``wrapped``
    prunes (a kernel, an Embedding's table, an RNN cell's kernels, attention projections)."""
    import numpy as np

    out: dict[str, tuple[int, int]] = {}
    for layer in wrapped.layers:
        zeros = size = 0
        for weight, mask, _threshold in getattr(layer, "pruning_vars", None) or []:
            values = np.asarray(weight.numpy()) * np.asarray(mask.numpy())
            zeros += int(np.count_nonzero(values == 0))
            size += int(values.size)
        if size:
            out[layer.layer.name] = (zeros, size)
    return out


def _advice(steps: list[dict[str, Any]], index: int) -> list[str]:
    """Warnings for a recipe that prunes: clustering that breaks or drops the zeros, and
    zeros that shrink only the download size without sparse encoding."""
    types = [s["type"] for s in steps]
    warnings: list[str] = []
    if "cluster" in types:
        c = types.index("cluster")
        if c < index:
            warnings.append("clustering before pruning: pruning will break the clusters")
        elif not steps[c].get("preserve_sparsity", True):
            warnings.append(
                "clustering after pruning without preserve_sparsity loses the pruned zeros"
            )
    if steps[-1]["type"] == "quantize" and not steps[-1].get("sparse", False):
        warnings.append(
            "pruned zeros shrink only the gzip (download) size; quantize.sparse also "
            "shrinks the raw file, but pays off only at high (~80%) sparsity and sparse "
            "int8 files run only on LiteRT's built-in kernels (not XNNPACK)"
        )
    return warnings


def _summary(step: dict[str, Any]) -> str:
    extra = ", 2:4 structured" if step.get("structured_2_4") else ""
    rule = step.get("allocation", "uniform")
    if rule != "uniform":
        extra += f", {rule} allocation"
    if step.get("per_layer"):
        extra += f", {len(step['per_layer'])} layer(s) set by hand"
    return (
        f"{step['target_sparsity'] * 100:.0f} % of weights to zero ({step['schedule']} "
        f"schedule{extra}), fine-tuned {step['epochs']} epoch(s){guided_summary(step)}"
    )


class Prune(Technique):
    spec = StepSpec(
        "prune",
        "Pruning",
        "Set the smallest weights to zero while fine-tuning, then strip the wrappers.",
        (
            Knob(
                "target_sparsity",
                "float",
                0.8,
                "Fraction of the pruned layers' weights set to zero by the end of the step "
                "(overall, size-weighted; every layer gets it with the uniform allocation).",
                minimum=0.0,
                maximum=0.99,
            ),
            Knob(
                "allocation",
                "choice",
                "uniform",
                "How the target is spread over the layers: uniform (the same everywhere), "
                "sensitivity (more where one-shot pruning hurts accuracy least) or erk "
                "(Erdős–Rényi-Kernel: big layers sparser, small ones denser).",
                choices=("uniform", "sensitivity", "erk"),
            ),
            Knob(
                "per_layer",
                "map",
                None,
                "Sparsity of named layers (e.g. conv1=0.5, dense=0.9); the allocation spreads "
                "the rest of the target over the other layers.",
                label="Per-layer sparsity",
                minimum=0.0,
                maximum=0.99,
                optional=True,
            ),
            sensitivity_file_knob(),
            Knob(
                "schedule",
                "choice",
                "polynomial",
                "Polynomial ramps sparsity up gradually; constant prunes to the target at once.",
                choices=("polynomial", "constant"),
            ),
            Knob(
                "initial_sparsity",
                "float",
                0.0,
                "Sparsity at the start of a polynomial schedule.",
                minimum=0.0,
                maximum=0.99,
            ),
            epochs_knob(4),
            learning_rate_knob(1e-4),
            Knob(
                "structured_2_4",
                "bool",
                False,
                "2:4 structured sparsity (two zeros in "
                "every block of four), which some accelerators run faster.",
                label="2:4 structured",
            ),
            Knob(
                "skip_first",
                "bool",
                False,
                "Leave the first Conv/Dense layer dense; it is small and sensitive.",
            ),
            Knob("skip_last", "bool", False, "Leave the last (classifier) layer dense."),
            *teacher_knobs(),
        ),
        stage_label="Pruning",
        order=20,
        advice=_advice,
        summary=_summary,
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        result = prune_model(model, step, context)
        info = {
            "target_sparsity": result.target,
            "per_layer_sparsity": result.per_layer_sparsity,
            "allocation": result.allocation,
            "per_layer_target": result.per_layer_target,
            "schedule": vars(result.schedule),
        }
        return StepResult(result.model, info=info, warnings=list(result.warnings))


register(Prune())
