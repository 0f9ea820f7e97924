"""Recipes: the unit of work. JSON with a schema version and an ordered list of steps.

Light module (no TensorFlow): the GUI builds its parameter forms from ``STEP_SPECS``.
Step types, knobs and order rules come from the technique registry
(``engine.techniques.registry``): ``STEP_SPECS`` and ``STEP_ORDER`` are its live views.

Example::

    {"schema_version": 3, "name": "prune-int8", "seed": 0, "batch_size": 32,
     "steps": [{"type": "prune", "target_sparsity": 0.8, "epochs": 4},
               {"type": "quantize", "mode": "int8"}]}

Order rules of the built-in techniques (declared in their specs, checked by
``validate_recipe``):
- ``quantize`` (the conversion) is the last step, at most once. Without it the export is
  float32 ``.tflite``.
- ``qat`` needs a final ``quantize`` with ``mode: int8``; only ``quantize`` may follow it.
- ``distill`` replaces the architecture, so it comes before ``prune``/``cluster``/``qat``.
- ``prune`` and ``cluster`` at most once each. ``cluster`` after ``prune`` should set
  ``preserve_sparsity`` (otherwise sparsity is lost; it is a warning, not an error).

Messages speak the app's language: a knob is named by its on-screen label (``Knob.title``,
e.g. "Sparse encoding"), not by its dotted JSON path (``quantize.sparse``). Errors about a
knob's value give the label and then the file's key in brackets; warnings use the label
(``on_screen`` rewrites the keys a technique's advice names). The GUI and the CLI say the
same. Only messages about the JSON itself (unknown step types or parameters) name keys,
since those have no label.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.errors import RecipeError
from engine.techniques import registry
from engine.techniques.registry import Knob, StepSpec

__all__ = [
    "SCHEMA_VERSION",
    "STEP_ORDER",
    "STEP_SPECS",
    "Knob",
    "Recipe",
    "StepSpec",
    "check_order",
    "fill_step",
    "knob_label",
    "load_recipe",
    "on_screen",
    "parse_recipe_text",
    "save_recipe",
    "validate_recipe",
]

# 2: ``seed`` seeds training only; the data split belongs to the dataset reference (a v1
# recipe's seed also chose the split in the app). v1 documents load unchanged as v2.
# 3: per-layer knobs (kind "map": prune's ``per_layer``/``allocation``/``sensitivity_file``,
# cluster's ``per_layer``/``skip``) and teacher-guided training (``teacher_guided``,
# ``temperature``, ``alpha`` on prune, cluster, qat, finetune). v1/v2 documents load
# unchanged: their missing knobs take values that reproduce the old behaviour
# (``OLD_BEHAVIOUR``: label-only training), the others their defaults (uniform allocation,
# no per-layer map), which are the old behaviour.
SCHEMA_VERSION = 3

# Knob values a pre-3 document gets when it does not set the knob (where today's default
# would change what the old recipe did).
OLD_BEHAVIOUR: dict[str, Any] = {"teacher_guided": False}


# Live views of the technique registry (filled in place when a technique registers).
STEP_SPECS: dict[str, StepSpec] = registry.STEP_SPECS
STEP_ORDER: list[str] = registry.STEP_ORDER
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
        final = registry.final_spec().type
        if self.steps and self.steps[-1]["type"] == final:
            return self.steps[-1]
        return fill_step({"type": final, "mode": "float32"}, 0)

    @property
    def train_steps(self) -> list[dict[str, Any]]:
        """The steps before the final conversion (the ones the pipeline loop applies)."""
        final = registry.final_spec().type
        return [s for s in self.steps if s["type"] != final]


def knob_label(step_type: str, knob_name: str) -> str:
    """The on-screen name of a knob ("Sparse encoding"); the key itself when unknown."""
    spec = STEP_SPECS.get(step_type)
    if spec is None:
        return knob_name
    try:
        return spec.knob(knob_name).title
    except KeyError:
        return knob_name


def _step_label(step_type: str) -> str:
    spec = STEP_SPECS.get(step_type)
    return spec.label if spec is not None else step_type


_DOTTED = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\b")


def on_screen(text: str) -> str:
    """``text`` with JSON knob keys replaced by their on-screen labels.

    ``quantize.sparse`` becomes "“Sparse encoding” (Quantization / export)"; a bare key
    that only a knob uses (one with an underscore, e.g. ``preserve_sparsity``) becomes
    "“Preserve sparsity”". Other words are left alone."""

    def dotted(m: re.Match[str]) -> str:
        stype, name = m.group(1), m.group(2)
        spec = STEP_SPECS.get(stype)
        if spec is None or name not in {k.name for k in spec.knobs}:
            return m.group(0)
        return f"“{knob_label(stype, name)}” ({spec.label})"

    text = _DOTTED.sub(dotted, text)
    bare: dict[str, str] = {}
    for spec in STEP_SPECS.values():
        for k in spec.knobs:
            if "_" in k.name:
                bare.setdefault(k.name, k.title)
    for name, title in bare.items():
        text = re.sub(rf"(?<![\w.“'\"]){re.escape(name)}(?![\w”'\"])", f"“{title}”", text)
    return text


def _check_knob(step_no: int, stype: str, knob: Knob, value: Any) -> Any:
    # The on-screen label, then the recipe file's key for those who write JSON.
    where = f"step {step_no} ({_step_label(stype)}): {knob.title} ('{knob.name}')"
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
    if knob.kind == "names":
        if isinstance(value, str):
            value = [n.strip() for n in value.split(",") if n.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(n, str) for n in value):
            raise RecipeError(f"{where} must be a list of layer names, got {value!r}")
        return [n.strip() for n in value if n.strip()]
    if knob.kind == "map":
        return _check_map(where, knob, value)
    if knob.kind == "choice":
        if value not in knob.choices:
            raise RecipeError(f"{where} = {value!r} is not one of {', '.join(knob.choices)}")
        return value
    if not isinstance(value, str):
        raise RecipeError(f"{where} must be a string, got {value!r}")
    return value


_MAP_EXAMPLE = "e.g. {\"conv1\": 0.5} or 'conv1=0.5, dense=0.9'"


def _check_map(where: str, knob: Knob, value: Any) -> dict[str, Any] | None:
    """A "map" knob: ``{layer name: number}`` (or "name=value, ..."); empty = None."""
    if isinstance(value, str):
        parsed: dict[str, Any] = {}
        for part in value.replace(";", ",").split(","):
            if not part.strip():
                continue
            name, sep, number = part.partition("=") if "=" in part else part.partition(":")
            try:
                if not sep or not name.strip():
                    raise ValueError(part)
                parsed[name.strip()] = float(number)
            except ValueError:
                raise RecipeError(
                    f"{where}: {part.strip()!r} is not 'layer=number' ({_MAP_EXAMPLE})"
                ) from None
        value = parsed
    if not isinstance(value, dict):
        raise RecipeError(
            f"{where} must map layer names to numbers ({_MAP_EXAMPLE}), got {value!r}"
        )
    out: dict[str, Any] = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name.strip():
            raise RecipeError(f"{where}: layer names must be non-empty strings, got {name!r}")
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise RecipeError(f"{where}: {name} must be a number, got {number!r}")
        if number != number:  # NaN
            raise RecipeError(f"{where}: {name} must be a number, got {number!r}")
        checked: int | float
        if knob.value_kind == "int":
            if float(number) != int(number):
                raise RecipeError(f"{where}: {name} must be a whole number, got {number!r}")
            checked = int(number)
        else:
            checked = float(number)
        if knob.minimum is not None and checked < knob.minimum:
            raise RecipeError(f"{where}: {name} = {checked} is below the minimum {knob.minimum:g}")
        if knob.maximum is not None and checked > knob.maximum:
            raise RecipeError(f"{where}: {name} = {checked} is above the maximum {knob.maximum:g}")
        out[name.strip()] = checked
    if not out:
        if knob.optional:
            return None
        raise RecipeError(f"{where} must name at least one layer ({_MAP_EXAMPLE})")
    return out


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
        raise RecipeError(f"recipe has no 'schema_version' (expected {SCHEMA_VERSION})")
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
    if version < 3:
        raw_steps = [_migrated_step(s) for s in raw_steps]
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


def _migrated_step(raw: Any) -> Any:
    """A pre-3 step with the knobs whose default changed set to the old behaviour."""
    if not isinstance(raw, dict) or raw.get("type") not in STEP_SPECS:
        return raw  # fill_step reports it
    names = {k.name for k in STEP_SPECS[raw["type"]].knobs}
    missing = {k: v for k, v in OLD_BEHAVIOUR.items() if k in names and k not in raw}
    return {**raw, **missing} if missing else raw


def check_order(steps: list[dict[str, Any]]) -> list[str]:
    """Raise RecipeError for an invalid order; return warnings for dubious ones.

    The rules are the specs' (``StepSpec.final``, ``at_most_once``, ``requires_final``,
    ``last_before_final``, ``must_precede``, ``advice``)."""
    types = [s["type"] for s in steps]
    specs = [STEP_SPECS[t] for t in types]
    final = registry.final_spec()
    checked = [final] + [s for s in STEP_SPECS.values() if not s.final]
    for spec in checked:
        if spec.at_most_once and types.count(spec.type) > 1:
            raise RecipeError(
                f"step '{spec.type}' appears {types.count(spec.type)} times; at most once"
            )
    if final.type in types and types[-1] != final.type:
        after = types[types.index(final.type) + 1]
        raise RecipeError(f"'{final.type}' must be the last step (found '{after}' after it)")
    last = steps[-1] if types[-1] == final.type else None
    for i, spec in enumerate(specs):
        if spec.requires_final:
            wanted = spec.requires_final
            if last is None or any(last.get(k) != v for k, v in wanted.items()):
                what = " ".join(f"{k} {v}" for k, v in wanted.items())
                raise RecipeError(
                    f"'{spec.type}' must be followed by a final '{final.type}' step with {what}"
                )
        if spec.last_before_final and i < len(types) - 1 and types[i + 1] != final.type:
            raise RecipeError(
                f"only '{final.type}' may follow '{spec.type}' (found '{types[i + 1]}')"
            )
    for i, spec in enumerate(specs):
        for later in spec.must_precede:
            if later in types[:i]:
                why = f" {spec.precede_reason}," if spec.precede_reason else ""
                raise RecipeError(f"'{spec.type}'{why} so it must come before '{later}'")
    warnings: list[str] = []
    for i, spec in enumerate(specs):
        if spec.advice is not None and types.index(spec.type) == i:
            warnings.extend(on_screen(w) for w in spec.advice(steps, i))
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
