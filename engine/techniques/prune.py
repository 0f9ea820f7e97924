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
from typing import Any

from engine.core.errors import FeatherweightError
from engine.models.support import PRUNE_M_BY_N_TYPES as M_BY_N_TYPES
from engine.models.support import is_weight_layer, not_compressed, prune_support
from engine.techniques.registry import (
    Knob,
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    learning_rate_knob,
    register,
)
from engine.techniques.training import (
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
    target: float
    warnings: list[str] = field(default_factory=list)


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


def prune_model(model: Any, step: dict[str, Any], context: TrainContext) -> PruneResult:
    """Prune ``model`` as ``step`` (a prune step) says; returns the stripped model.

    Raises FeatherweightError if the target sparsity was not reached.
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
    if structured:
        if abs(target - 0.5) > 1e-9:
            warnings.append(f"2:4 structured pruning gives 50% sparsity; target {target:g} ignored")
        target = 0.5
    if step["schedule"] == "constant" or sched.end_step == sched.begin_step:
        # (a one-step run cannot ramp: prune to the target at once)
        schedule = sp.ConstantSparsity(
            target, begin_step=sched.begin_step, end_step=sched.end_step, frequency=sched.frequency
        )
    else:
        schedule = sp.PolynomialDecay(
            initial_sparsity=min(float(step["initial_sparsity"]), target),
            final_sparsity=target,
            begin_step=sched.begin_step,
            end_step=sched.end_step,
            frequency=sched.frequency,
        )
    kwargs: dict[str, Any] = {"pruning_schedule": schedule}
    if structured:
        kwargs["sparsity_m_by_n"] = (2, 4)

    def wrap(layer: Any) -> Any:
        if layer.name in names:
            return sp.prune_low_magnitude(layer, **kwargs)
        return layer

    wrapped = k.models.clone_model(fresh_copy(model), clone_function=wrap)
    reporter.log(
        f"pruning {len(names)} layer(s) to {target:.0%}: steps {sched.begin_step}-"
        f"{sched.end_step} of {sched.total_steps}, every {sched.frequency}"
    )
    fit(
        wrapped,
        context,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        callbacks=[sp.UpdatePruningStep()],
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
        n: s
        for n, s in per_layer.items()
        if n in names and s < target - TOLERANCE - 1.0 / max(1, sizes.get(n, 1))
    }
    if short:
        detail = ", ".join(f"{n} {s:.1%}" for n, s in short.items())
        raise FeatherweightError(
            f"pruning did not reach the target sparsity {target:.0%} ({detail}); "
            "train for more epochs"
        )
    return PruneResult(stripped, per_layer, sched, target, warnings)


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
    return (
        f"{step['target_sparsity'] * 100:.0f} % of weights to zero ({step['schedule']} "
        f"schedule{extra}), fine-tuned {step['epochs']} epoch(s)"
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
                "Fraction of weights set to zero in every pruned layer by the end of the step.",
                minimum=0.0,
                maximum=0.99,
            ),
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
            "schedule": vars(result.schedule),
        }
        return StepResult(result.model, info=info, warnings=list(result.warnings))


register(Prune())
