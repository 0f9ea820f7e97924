"""The training steps of a recipe (everything before the final conversion), in order.

``run_train_steps`` looks every step up in the technique registry and calls its
``apply(context, model, step)`` inside the caller's ``stage`` context (labelled with the
spec's ``stage_label``). Called by ``engine.pipeline.run``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from engine.core.errors import RecipeError
from engine.core.events import Reporter
from engine.pipeline.recipe import Recipe
from engine.techniques.registry import TECHNIQUES, TrainContext


def run_train_steps(
    loaded: Any,
    splits: Any,
    recipe: Recipe,
    train_steps: list[dict[str, Any]],
    stage: Callable[[str, str], AbstractContextManager[None]],
    reporter: Reporter,
    estimator: Any,
    warnings: list[str],
    allow_unsafe: bool,
) -> tuple[Any, Any, set[str], list[dict[str, Any]]]:
    """Run the steps; returns (model, export_model, done step types, per-step info).

    ``export_model`` is the model to convert (the QAT model after ``qat``); warnings are
    appended to ``warnings``. Each step's info is ``{"type", **its info,
    "test_keras_accuracy"}``.
    """
    from engine.techniques.training import keras_accuracy

    context = TrainContext(
        splits=splits,
        reporter=reporter,
        output_kind=loaded.output_kind,
        batch_size=recipe.batch_size,
        seed=recipe.seed,
        estimator=estimator,
        allow_unsafe=allow_unsafe,
        teacher=loaded.model,  # the original: teacher-guided steps match it
    )
    steps_info: list[dict[str, Any]] = []
    model = export_model = loaded.model
    for step in train_steps:
        stype = step["type"]
        technique = TECHNIQUES.get(stype)
        if technique is None or technique.spec.final:
            raise RecipeError(f"'{stype}' is not a training step")
        spec = technique.spec
        with stage(stype, spec.stage_label or spec.label):
            result = technique.apply(context, model, step)
            model = result.model
            export_model = model if result.export_model is None else result.export_model
            warnings.extend(result.warnings)
            info: dict[str, Any] = {"type": stype, **result.info}
            info["test_keras_accuracy"] = keras_accuracy(
                export_model, splits, output_kind=loaded.output_kind
            )
            steps_info.append(info)
            context.done.add(stype)
    return model, export_model, context.done, steps_info
