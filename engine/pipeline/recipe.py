"""Recipes: the unit of work. JSON with a schema version and an ordered list of steps.

Light module (no TensorFlow): the GUI builds its parameter forms from ``STEP_SPECS``.

Example::

    {"schema_version": 1, "name": "prune-int8", "seed": 0, "batch_size": 32,
     "steps": [{"type": "prune", "target_sparsity": 0.8, "epochs": 4},
               {"type": "quantize", "mode": "int8"}]}

Order rules (checked by ``validate_recipe``):
- ``quantize`` (the conversion) is the last step, at most once. Without it the export is
  float32 ``.tflite``.
- ``qat`` needs a final ``quantize`` with ``mode: int8``; only ``quantize`` may follow it.
- ``distill`` replaces the architecture, so it comes before ``prune``/``cluster``/``qat``.
- ``prune`` and ``cluster`` at most once each. ``cluster`` after ``prune`` should set
  ``preserve_sparsity`` (otherwise sparsity is lost; it is a warning, not an error).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.errors import RecipeError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Knob:
    """One parameter of a step: its type, default, allowed range and a one-line help."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice" | "str" | "path"
    default: Any
    help: str
    label: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None allowed

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class StepSpec:
    type: str
    label: str
    help: str
    knobs: tuple[Knob, ...] = field(default_factory=tuple)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise KeyError(name)


_EPOCHS_HELP = "Passes over the training split while this step fine-tunes the model."
_LR_HELP = "Learning rate of the Adam optimizer while this step fine-tunes."

STEP_SPECS: dict[str, StepSpec] = {
    spec.type: spec
    for spec in (
        StepSpec(
            "distill",
            "Knowledge distillation",
            "Train a smaller student (a narrower copy of your model, or your own) to mimic it.",
            (
                Knob(
                    "width",
                    "float",
                    0.5,
                    "Width of the student: fraction of the teacher's "
                    "filters/units kept in every layer.",
                    minimum=0.05,
                    maximum=1.0,
                ),
                Knob(
                    "student",
                    "path",
                    None,
                    "Optional Keras model file to use as the student "
                    "instead of a width-scaled copy.",
                    optional=True,
                ),
                Knob(
                    "temperature",
                    "float",
                    4.0,
                    "Softening of the teacher's logits; higher "
                    "values pass on more about the wrong classes.",
                    minimum=1.0,
                    maximum=50.0,
                ),
                Knob(
                    "alpha",
                    "float",
                    0.1,
                    "Weight of the true-label loss; the rest goes to matching the teacher.",
                    minimum=0.0,
                    maximum=1.0,
                ),
                Knob("epochs", "int", 30, _EPOCHS_HELP, minimum=1, maximum=1000),
                Knob("learning_rate", "float", 2e-3, _LR_HELP, minimum=1e-7, maximum=1.0),
            ),
        ),
        StepSpec(
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
                    "Polynomial ramps sparsity up "
                    "gradually; constant prunes to the target at once.",
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
                Knob("epochs", "int", 4, _EPOCHS_HELP, minimum=1, maximum=1000),
                Knob("learning_rate", "float", 1e-4, _LR_HELP, minimum=1e-7, maximum=1.0),
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
        ),
        StepSpec(
            "cluster",
            "Weight clustering",
            "Share weights: each layer's weights take one of a few centroid values.",
            (
                Knob(
                    "clusters",
                    "int",
                    16,
                    "Number of distinct values per weight tensor.",
                    minimum=2,
                    maximum=256,
                ),
                Knob(
                    "init",
                    "choice",
                    "kmeans_plus_plus",
                    "How centroids are first placed.",
                    choices=("kmeans_plus_plus", "linear", "density_based", "random"),
                    label="Centroid init",
                ),
                Knob(
                    "preserve_sparsity",
                    "bool",
                    True,
                    "Keep the zeros made by pruning (sparsity-preserving clustering).",
                ),
                Knob("epochs", "int", 2, _EPOCHS_HELP, minimum=1, maximum=1000),
                Knob("learning_rate", "float", 1e-5, _LR_HELP, minimum=1e-7, maximum=1.0),
            ),
        ),
        StepSpec(
            "finetune",
            "Fine-tuning",
            "Plain fine-tuning of the current model on the training split.",
            (
                Knob("epochs", "int", 2, _EPOCHS_HELP, minimum=1, maximum=1000),
                Knob("learning_rate", "float", 1e-4, _LR_HELP, minimum=1e-7, maximum=1.0),
            ),
        ),
        StepSpec(
            "qat",
            "Quantization-aware training",
            "Fine-tune with simulated int8 so the final int8 model loses less accuracy; keeps "
            "earlier sparsity and clusters.",
            (
                Knob("epochs", "int", 2, _EPOCHS_HELP, minimum=1, maximum=1000),
                Knob("learning_rate", "float", 1e-5, _LR_HELP, minimum=1e-7, maximum=1.0),
            ),
        ),
        StepSpec(
            "quantize",
            "Quantization / export",
            "Convert to .tflite: float32, float16, dynamic-range or full-integer int8.",
            (
                Knob(
                    "mode",
                    "choice",
                    "int8",
                    "int8: weights and activations 8-bit (needs "
                    "calibration data); dynamic: 8-bit weights only; float16: half-size weights.",
                    choices=("int8", "dynamic", "float16", "float32"),
                ),
                Knob(
                    "io",
                    "choice",
                    "float",
                    "Input/output type of an int8 model: float keeps "
                    "your pre-processing; int8 is what microcontrollers want.",
                    choices=("float", "int8"),
                    label="Input/output type",
                ),
                Knob(
                    "calibration_samples",
                    "int",
                    300,
                    "Training samples used to calibrate int8 activation ranges.",
                    minimum=1,
                    maximum=100000,
                ),
                Knob(
                    "sparse",
                    "bool",
                    False,
                    "Sparse encoding of weights, so pruning also "
                    "shrinks the raw file (experimental in LiteRT).",
                    label="Sparse encoding",
                ),
            ),
        ),
    )
}

STEP_ORDER = ("distill", "prune", "cluster", "finetune", "qat", "quantize")
_TOP_KEYS = {"schema_version", "name", "seed", "batch_size", "steps", "description"}


@dataclass
class Recipe:
    """A validated recipe. ``steps`` are dicts with every knob filled in."""

    name: str
    steps: list[dict[str, Any]]
    seed: int = 0
    batch_size: int = 32
    description: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "steps": copy.deepcopy(self.steps),
        }
        if self.description:
            d["description"] = self.description
        return d

    def step_types(self) -> list[str]:
        return [s["type"] for s in self.steps]

    @property
    def final_quantize(self) -> dict[str, Any]:
        """The export step; an implicit float32 export when the recipe has none."""
        if self.steps and self.steps[-1]["type"] == "quantize":
            return self.steps[-1]
        return fill_step({"type": "quantize", "mode": "float32"}, 0)


def _check_knob(step_no: int, stype: str, knob: Knob, value: Any) -> Any:
    where = f"step {step_no} ({stype}): '{knob.name}'"
    if value is None:
        if knob.optional:
            return None
        raise RecipeError(f"{where} must not be null")
    if knob.kind == "bool":
        if not isinstance(value, bool):
            raise RecipeError(f"{where} must be true or false, got {value!r}")
        return value
    if knob.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where} must be a number, got {value!r}")
        if knob.kind == "int":
            if float(value) != int(value):
                raise RecipeError(f"{where} must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if knob.minimum is not None and value < knob.minimum:
            raise RecipeError(f"{where} = {value} is below the minimum {knob.minimum:g}")
        if knob.maximum is not None and value > knob.maximum:
            raise RecipeError(f"{where} = {value} is above the maximum {knob.maximum:g}")
        return value
    if knob.kind == "choice":
        if value not in knob.choices:
            raise RecipeError(f"{where} = {value!r} is not one of {', '.join(knob.choices)}")
        return value
    if not isinstance(value, str):
        raise RecipeError(f"{where} must be a string, got {value!r}")
    return value


def fill_step(raw: Any, step_no: int) -> dict[str, Any]:
    """Validate one step's knobs and fill in defaults. Raises RecipeError."""
    if not isinstance(raw, dict):
        raise RecipeError(f"step {step_no} must be an object with a 'type', got {raw!r}")
    stype = raw.get("type")
    if stype not in STEP_SPECS:
        known = ", ".join(STEP_SPECS)
        raise RecipeError(f"step {step_no}: unknown step type {stype!r} (known: {known})")
    spec = STEP_SPECS[stype]
    names = {k.name for k in spec.knobs}
    unknown = sorted(set(raw) - names - {"type"})
    if unknown:
        raise RecipeError(
            f"step {step_no} ({stype}): unknown parameter(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(names))}"
        )
    out: dict[str, Any] = {"type": stype}
    for knob in spec.knobs:
        out[knob.name] = _check_knob(step_no, stype, knob, raw.get(knob.name, knob.default))
    return out


def validate_recipe(data: Any) -> Recipe:
    """Check a parsed recipe document; returns a Recipe with defaults filled in.

    Raises RecipeError with a message naming the step and the problem.
    """
    if not isinstance(data, dict):
        raise RecipeError("a recipe must be a JSON object with 'schema_version' and 'steps'")
    version = data.get("schema_version")
    if version is None:
        raise RecipeError("recipe has no 'schema_version' (expected 1)")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecipeError(f"recipe 'schema_version' must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise RecipeError(
            f"recipe schema_version {version} is newer than this Featherweight supports "
            f"({SCHEMA_VERSION}); update the app"
        )
    if version < 1:
        raise RecipeError(f"recipe schema_version {version} is not valid")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise RecipeError(f"recipe has unknown field(s): {', '.join(unknown)}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RecipeError("recipe 'steps' must be a non-empty list")
    steps = [fill_step(s, i + 1) for i, s in enumerate(raw_steps)]

    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise RecipeError(f"recipe 'seed' must be a non-negative integer, got {seed!r}")
    batch = data.get("batch_size", 32)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 4096:
        raise RecipeError(f"recipe 'batch_size' must be an integer 1-4096, got {batch!r}")
    name = data.get("name") or "recipe"
    if not isinstance(name, str):
        raise RecipeError("recipe 'name' must be a string")

    warnings = check_order(steps)
    return Recipe(
        name=name,
        steps=steps,
        seed=seed,
        batch_size=batch,
        description=str(data.get("description", "")),
        warnings=warnings,
    )


def check_order(steps: list[dict[str, Any]]) -> list[str]:
    """Raise RecipeError for an invalid order; return warnings for dubious ones."""
    types = [s["type"] for s in steps]
    warnings: list[str] = []
    for t in ("quantize", "prune", "cluster", "distill", "qat"):
        if types.count(t) > 1:
            raise RecipeError(f"step '{t}' appears {types.count(t)} times; at most once")
    if "quantize" in types and types[-1] != "quantize":
        after = types[types.index("quantize") + 1]
        raise RecipeError(f"'quantize' must be the last step (found '{after}' after it)")
    if "qat" in types:
        q = steps[-1] if types[-1] == "quantize" else None
        if q is None or q["mode"] != "int8":
            raise RecipeError("'qat' must be followed by a final 'quantize' step with mode int8")
        if types.index("qat") != len(types) - 2:
            after = types[types.index("qat") + 1]
            raise RecipeError(f"only 'quantize' may follow 'qat' (found '{after}')")
    if "distill" in types:
        d = types.index("distill")
        for t in ("prune", "cluster", "qat"):
            if t in types and types.index(t) < d:
                raise RecipeError(f"'distill' replaces the model, so it must come before '{t}'")
    if "prune" in types and "cluster" in types:
        p, c = types.index("prune"), types.index("cluster")
        if c < p:
            warnings.append("clustering before pruning: pruning will break the clusters")
        elif not steps[c]["preserve_sparsity"]:
            warnings.append(
                "clustering after pruning without preserve_sparsity loses the pruned zeros"
            )
    if "prune" in types and steps[-1]["type"] == "quantize":
        q = steps[-1]
        if not q["sparse"]:
            warnings.append(
                "pruned zeros shrink only the gzip (download) size; quantize.sparse also "
                "shrinks the raw file, but pays off only at high (~80%) sparsity and sparse "
                "int8 files run only on LiteRT's built-in kernels (not XNNPACK)"
            )
    return warnings


def parse_recipe_text(text: str, source: str = "recipe") -> Recipe:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecipeError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return validate_recipe(data)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file. Raises RecipeError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"cannot read recipe {p}: {exc}") from None
    return parse_recipe_text(text, source=f"recipe {p.name}")


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(json.dumps(recipe.to_dict(), indent=2) + "\n", encoding="utf-8")
