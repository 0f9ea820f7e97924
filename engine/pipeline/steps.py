"""The training steps of a recipe (everything before the final conversion), in order.

``run_train_steps`` looks every step up in the technique registry and calls its
``apply(context, model, step)`` inside the caller's ``stage`` context (labelled with the
spec's ``stage_label``). Called by ``engine.pipeline.run`` and ``engine.pipeline.search``.

With a ``cache`` (``engine.pipeline.checkpoints.PrefixCache``) the longest cached prefix of
the steps is restored instead of trained (its stages still open and close, with a log line)
and every newly trained cacheable step is stored. ``measure_test=False`` (the search)
skips the per-step Keras accuracy on the test split: candidates are judged on validation.
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
    *,
    cache: Any = None,
    measure_test: bool = True,
    teacher: Any = None,
) -> tuple[Any, Any, set[str], list[dict[str, Any]]]:
    """Run the steps; returns (model, export_model, done step types, per-step info).

    ``export_model`` is the model to convert (the QAT model after ``qat``); warnings are
    appended to ``warnings``. Each step's info is ``{"type", **its info,
    "test_keras_accuracy"}`` (the last key only with ``measure_test``; a step restored from
    the cache has ``"cached": True`` and keeps the accuracy measured when it was trained,
    when there was one). ``teacher`` is the original model teacher-guided steps match
    (default ``loaded.model``).
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
        teacher=loaded.model if teacher is None else teacher,  # the original
    )
    steps_info: list[dict[str, Any]] = []
    model = export_model = loaded.model
    start = 0
    if cache is not None and train_steps:
        found = cache.longest(recipe.seed, recipe.batch_size, train_steps)
        if found is not None:
            start, model, entry = found
            export_model = model
            context.done.update(entry.get("done", []))
            cached_info = list(entry.get("steps_info", []))[:start]
            for i, step in enumerate(train_steps[:start]):
                spec = TECHNIQUES[step["type"]].spec
                with stage(step["type"], spec.stage_label or spec.label):
                    if i == start - 1:
                        reporter.log(
                            f"reused the checkpoint of the first {start} step(s) "
                            f"({', '.join(s['type'] for s in train_steps[:start])})"
                        )
                restored = dict(cached_info[i]) if i < len(cached_info) else {"type": step["type"]}
                restored["cached"] = True
                if measure_test and "test_keras_accuracy" not in restored and i == start - 1:
                    restored["test_keras_accuracy"] = keras_accuracy(
                        model, splits, output_kind=loaded.output_kind
                    )
                steps_info.append(restored)
    for index in range(start, len(train_steps)):
        step = train_steps[index]
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
            if measure_test:
                info["test_keras_accuracy"] = keras_accuracy(
                    export_model, splits, output_kind=loaded.output_kind
                )
            steps_info.append(info)
            context.done.add(stype)
            if cache is not None and export_model is model:
                cache.put(
                    recipe.seed,
                    recipe.batch_size,
                    train_steps[: index + 1],
                    model,
                    sorted(context.done),
                    steps_info,
                )
    return model, export_model, context.done, steps_info
