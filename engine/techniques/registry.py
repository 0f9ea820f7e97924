"""The technique registry: every recipe step type is one registered ``Technique``.

A technique is one module that declares a ``StepSpec`` (label, knobs, order rules as data)
and ``apply(context, model, step) -> StepResult``, and calls ``register`` at import. The
recipe validator (``engine.pipeline.recipe``), the pipeline loop (``engine.pipeline.steps``)
and the GUI forms (built from ``STEP_SPECS``/``STEP_ORDER``) all read this registry, so a
new technique needs no edit anywhere else.

The final conversion (``quantize``) is registered too, as a *final* spec (``final=True``):
it is the recipe's last step, its knobs are validated like any other, but it has no
``apply`` — the pipeline's convert stage runs ``engine.techniques.quantize.convert`` on it.
Exactly one final technique exists.

Light module: no TensorFlow, no numpy at import (technique modules keep TF imports inside
their functions). The built-in techniques register themselves when the package
``engine.techniques`` is imported, which importing this module always does first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.events import Reporter


@dataclass(frozen=True)
class Knob:
    """One parameter of a step: its type, default, allowed range and a one-line help."""

    name: str
    # "int" | "float" | "bool" | "choice" | "str" | "path" | "names" (layer list) |
    # "map" ({layer name: number}; ``value_kind`` says "int" or "float", each value within
    # ``minimum``..``maximum``; also given as a "conv1=0.5, dense=0.9" string)
    kind: str
    default: Any
    help: str
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None allowed
    value_kind: str = "float"  # the values of a "map" knob: "int" or "float"

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


EPOCHS_HELP = "Passes over the training split while this step fine-tunes the model."
LR_HELP = "Learning rate of the Adam optimizer while this step fine-tunes."


def epochs_knob(default: int) -> Knob:
    return Knob("epochs", "int", default, EPOCHS_HELP, minimum=1, maximum=1000)


def learning_rate_knob(default: float) -> Knob:
    return Knob("learning_rate", "float", default, LR_HELP, minimum=1e-7, maximum=1.0)


# Teacher-guided fine-tuning (prune, cluster, qat, finetune, prune_filters): train against the
# original model's soft outputs as well as the labels (the distillation loss). Measured on the
# demo, prune 90 % + int8 at the prune defaults (4 epochs, lr 1e-4), test accuracy over seeds
# 0-2: labels alone 90.37 %; guided T 4 / alpha 0.1 (distill's defaults) 78.06 % (the softened
# loss recovers too slowly at that learning rate); guided T 1 / alpha 0.5 90.46 % (no real
# gain). So it is off by default, and when on it uses T 1 / alpha 0.5. benchmarks/PER_LAYER.md
# (3 seeds, lr 1e-3): demo 90 % ERK 0.28 vs 0.37 points lost (labels vs teacher); MobileNetV2
# 90 % ERK 10.9 vs 8.5 (sd 1.3 / 3.3); uniform 90 % wrecks MobileNetV2 either way (48 vs 59,
# sd 15 / 6). Not a consistent gain: off for prune/cluster/qat/finetune; on for prune_filters,
# whose narrower network the issue asks to fine-tune teacher-guided (there: neutral).
TEACHER_GUIDED_DEFAULT = False
TEACHER_TEMPERATURE = 1.0
TEACHER_ALPHA = 0.5


def sensitivity_file_knob() -> Knob:
    """The optional ``sensitivity_file`` of a step whose ``allocation`` can be "sensitivity"."""
    return Knob(
        "sensitivity_file",
        "path",
        None,
        "sensitivity.json of `featherweight analyze` for the sensitivity allocation; "
        "without it the curves are measured first on the validation split.",
        optional=True,
    )


def teacher_knobs(
    guided: bool = TEACHER_GUIDED_DEFAULT,
    temperature: float = TEACHER_TEMPERATURE,
    alpha: float = TEACHER_ALPHA,
) -> tuple[Knob, Knob, Knob]:
    """The ``teacher_guided``, ``temperature`` and ``alpha`` knobs a training step shares."""
    return (
        Knob(
            "teacher_guided",
            "bool",
            guided,
            "Train against the original model's soft outputs (knowledge distillation) as well "
            "as the labels. Measured gains vary: about 2 points on a MobileNetV2 pruned 90 % "
            "with ERK, none on the small demo (benchmarks/PER_LAYER.md).",
            label="Teacher-guided",
        ),
        Knob(
            "temperature",
            "float",
            temperature,
            "Teacher-guided: softening of the original model's outputs; higher values pass on "
            "more about the wrong classes.",
            minimum=1.0,
            maximum=50.0,
        ),
        Knob(
            "alpha",
            "float",
            alpha,
            "Teacher-guided: weight of the true-label loss; the rest goes to matching the "
            "original model.",
            minimum=0.0,
            maximum=1.0,
        ),
    )


TEACHER_KNOB_NAMES = ("teacher_guided", "temperature", "alpha")


def guided_of(step: dict[str, Any]) -> tuple[float, float] | None:
    """``(temperature, alpha)`` when the step trains teacher-guided, else None."""
    if not step.get("teacher_guided"):
        return None
    return float(step.get("temperature", TEACHER_TEMPERATURE)), float(
        step.get("alpha", TEACHER_ALPHA)
    )


def guided_summary(step: dict[str, Any]) -> str:
    """ ", teacher-guided (T 4, alpha 0.1)" for a guided step, "" otherwise."""
    guided = guided_of(step)
    if guided is None:
        return ""
    return f", teacher-guided (T {guided[0]:g}, alpha {guided[1]:g})"


def training_summary(step: dict[str, Any]) -> str:
    """``describe`` of a step that only trains: epochs and learning rate."""
    return f"{step['epochs']} epoch(s) at learning rate {step['learning_rate']:g}" + guided_summary(
        step
    )


Advice = Callable[[list[dict[str, Any]], int], list[str]]


@dataclass(frozen=True)
class StepSpec:
    """What a step type is and where it may stand in a recipe.

    Order rules (checked by ``engine.pipeline.recipe.check_order``):

    - ``final``: the conversion step; must be the last step (at most one final technique).
    - ``at_most_once``: the step may appear once per recipe.
    - ``must_precede``: step types that may not come before this one; ``precede_reason``
      says why (``'distill' replaces the model, so it must come before 'prune'``).
    - ``requires_final``: knob values the final step must have when this step is present
      (``{"mode": "int8"}`` for QAT); the final step must then exist.
    - ``last_before_final``: only the final step may follow this one.
    - ``advice``: ``advice(steps, index) -> warnings`` for dubious but valid recipes.

    ``order`` places the step in the GUI's list (and so in the wizard's recipe order);
    ``stage_label`` is the pipeline stage's label while it runs.
    """

    type: str
    label: str
    help: str
    knobs: tuple[Knob, ...] = field(default_factory=tuple)
    stage_label: str = ""
    order: float = 50.0
    final: bool = False
    at_most_once: bool = True
    must_precede: tuple[str, ...] = ()
    precede_reason: str = ""
    requires_final: Mapping[str, Any] = field(default_factory=dict)
    last_before_final: bool = False
    advice: Advice | None = field(default=None, compare=False)
    summary: Callable[[dict[str, Any]], str] | None = field(default=None, compare=False)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise KeyError(name)

    def describe(self, step: dict[str, Any]) -> str:
        """One line saying what a (filled-in) step of this type does."""
        if self.summary is not None:
            return self.summary(step)
        parts = [f"{k.title.lower()} {_fmt(step.get(k.name))}" for k in self.knobs]
        return ", ".join(parts) if parts else self.label


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class TrainContext:
    """Everything a training step needs besides the model and its own knobs.

    ``output_kind`` (engine.core.outputs.OUTPUT_KINDS) is that of the model being compressed (a
    distilled student ends like the teacher, so it does not change); ``done`` holds the
    step types already applied (QAT preserves the sparsity/clusters they made);
    ``allow_unsafe`` lets a step load another model file (distill's ``student``);
    ``teacher`` is the loaded original model (Keras 2), the same for every step (a distilled
    student keeps it), which teacher-guided training matches; None = label-only.
    """

    splits: Any
    reporter: Reporter
    output_kind: str
    batch_size: int = 32
    seed: int = 0
    estimator: Any = None  # engine.techniques.training.SizeEstimator
    done: set[str] = field(default_factory=set)
    allow_unsafe: bool = False
    teacher: Any = None

    @property
    def from_logits(self) -> bool:
        return self.output_kind in ("logits", "binary_logit")


@dataclass
class StepResult:
    """What a step gives back: the model for the next step, the model to convert when it
    differs (the QAT model), the step's entries for ``metrics.json['steps']`` and warnings."""

    model: Any
    export_model: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Technique:
    """Base of a technique: a ``spec`` and ``apply``. Subclass, set ``spec``, ``register``."""

    spec: StepSpec

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        """Run the step on ``model`` (never modified: work on a copy); return the result."""
        raise NotImplementedError(f"'{self.spec.type}' has no apply (a final step?)")


TECHNIQUES: dict[str, Technique] = {}
# Live views for recipe.py and the GUI: filled in place, kept sorted by ``StepSpec.order``.
STEP_SPECS: dict[str, StepSpec] = {}
STEP_ORDER: list[str] = []


def _resync() -> None:
    ordered = sorted(TECHNIQUES.values(), key=lambda t: (t.spec.order, t.spec.type))
    STEP_SPECS.clear()
    STEP_SPECS.update((t.spec.type, t.spec) for t in ordered)
    STEP_ORDER[:] = [t.spec.type for t in ordered]


def register(technique: Technique) -> Technique:
    """Add a technique (its ``spec.type`` must be new); returns it. Raises ValueError."""
    spec = technique.spec
    if not spec.type or not spec.type.isidentifier():
        raise ValueError(f"technique type {spec.type!r} must be a short identifier")
    old = TECHNIQUES.get(spec.type)
    if old is not None and type(old) is not type(technique):
        raise ValueError(f"a technique '{spec.type}' is already registered")
    if spec.final and any(t.spec.final for t in TECHNIQUES.values() if t.spec.type != spec.type):
        raise ValueError("only one final (conversion) technique can be registered")
    names = [k.name for k in spec.knobs]
    if "type" in names or len(set(names)) != len(names):
        raise ValueError(f"technique '{spec.type}': knob names must be unique and not 'type'")
    TECHNIQUES[spec.type] = technique
    _resync()
    return technique


def unregister(step_type: str) -> None:
    """Remove a technique (tests, plug-ins); unknown types are ignored."""
    TECHNIQUES.pop(step_type, None)
    _resync()


def final_spec() -> StepSpec:
    """The spec of the final (conversion) step."""
    for t in TECHNIQUES.values():
        if t.spec.final:
            return t.spec
    raise LookupError("no final technique registered")
