"""The training steps of a recipe (everything before the final conversion), in order.

``run_train_steps`` applies each ``distill`` / ``prune`` / ``cluster`` / ``finetune`` /
``qat`` step to the model and returns what the conversion needs. Called by
``engine.pipeline.run``; each step runs inside the caller's ``stage`` context.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from engine.core.events import Reporter
from engine.pipeline.recipe import Recipe

STEP_LABELS = {
    "distill": "Distilling",
    "prune": "Pruning",
    "cluster": "Clustering",
    "finetune": "Fine-tuning",
    "qat": "Quantization-aware training",
}


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
    appended to ``warnings``.
    """
    from engine.techniques.quantize import qat_model
    from engine.techniques.training import keras_accuracy

    steps_info: list[dict[str, Any]] = []
    model = loaded.model
    kind = loaded.output_kind
    done: set[str] = set()
    export_model = model  # the model converted (QAT model after qat)
    common: dict[str, Any] = dict(
        batch_size=recipe.batch_size, seed=recipe.seed, reporter=reporter, estimator=estimator
    )

    for step in train_steps:
        stype = step["type"]
        with stage(stype, STEP_LABELS[stype]):
            info: dict[str, Any] = {"type": stype}
            if stype == "distill":
                from engine.techniques.distill import distill_model

                student, student_kind = None, "logits"
                if step.get("student"):
                    from engine.models.loading import load_model

                    s_loaded = load_model(step["student"], allow_unsafe=allow_unsafe)
                    student, student_kind = s_loaded.model, s_loaded.output_kind
                model = distill_model(
                    model, kind, splits, step, student=student, student_kind=student_kind, **common
                )
                info["student_params"] = int(model.count_params())
            elif stype == "prune":
                from engine.techniques.prune import prune_model

                result = prune_model(model, splits, step, from_logits=kind == "logits", **common)
                model = result.model
                warnings.extend(result.warnings)
                info.update(
                    target_sparsity=result.target,
                    per_layer_sparsity=result.per_layer_sparsity,
                    schedule=vars(result.schedule),
                )
            elif stype == "cluster":
                from engine.techniques.cluster import cluster_model

                cres = cluster_model(model, splits, step, from_logits=kind == "logits", **common)
                model = cres.model
                info.update(
                    clustered_layers=cres.clustered_layers,
                    distinct_values=cres.distinct_values,
                    per_layer_sparsity=cres.per_layer_sparsity,
                )
            elif stype == "finetune":
                model = _finetune(model, splits, step, kind, keep_zeros="prune" in done, **common)
                if "cluster" in done:
                    warnings.append("plain fine-tuning after clustering breaks the clusters")
            elif stype == "qat":
                export_model = qat_model(
                    model, splits, step, after=done, from_logits=kind == "logits", **common
                )
            if stype != "qat":
                export_model = model
            info["test_keras_accuracy"] = keras_accuracy(export_model, splits)
            steps_info.append(info)
            done.add(stype)
    return model, export_model, done, steps_info


def _finetune(
    model: Any,
    splits: Any,
    step: dict[str, Any],
    kind: str,
    *,
    keep_zeros: bool,
    batch_size: int,
    seed: int,
    reporter: Reporter,
    estimator: Any,
) -> Any:
    """Plain fine-tuning of a copy; after pruning the zeros are kept (re-applied per batch)."""
    from engine.techniques.training import fit, fresh_copy, zero_keeper

    tuned = fresh_copy(model)
    callbacks = [zero_keeper(tuned)] if keep_zeros else []
    fit(
        tuned,
        splits,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        batch_size=batch_size,
        seed=seed,
        reporter=reporter,
        from_logits=kind == "logits",
        estimator=estimator,
        callbacks=callbacks,
    )
    return tuned
