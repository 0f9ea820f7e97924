"""Plain fine-tuning of the current model on the training split.

After pruning the zeros are kept (re-applied after every batch by ``zero_keeper``); after
clustering a warning says that fine-tuning breaks the clusters. May appear several times.
"""

from __future__ import annotations

from typing import Any

from engine.techniques.registry import (
    StepResult,
    StepSpec,
    Technique,
    TrainContext,
    epochs_knob,
    guided_of,
    learning_rate_knob,
    register,
    teacher_knobs,
    training_summary,
)
from engine.techniques.training import fit, fresh_copy, zero_keeper


def finetune_model(model: Any, step: dict[str, Any], context: TrainContext) -> Any:
    """Fine-tune a copy of ``model``; keeps zero weights at zero after a prune step."""
    tuned = fresh_copy(model)
    callbacks = [zero_keeper(tuned)] if "prune" in context.done else []
    fit(
        tuned,
        context,
        epochs=step["epochs"],
        learning_rate=step["learning_rate"],
        callbacks=callbacks,
        guided=guided_of(step),
    )
    return tuned


class Finetune(Technique):
    spec = StepSpec(
        "finetune",
        "Fine-tuning",
        "Plain fine-tuning of the current model on the training split.",
        (epochs_knob(2), learning_rate_knob(1e-4), *teacher_knobs()),
        stage_label="Fine-tuning",
        order=40,
        at_most_once=False,
        summary=training_summary,
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        warnings = []
        tuned = finetune_model(model, step, context)
        if "cluster" in context.done:
            warnings.append("plain fine-tuning after clustering breaks the clusters")
        return StepResult(tuned, warnings=warnings)


register(Finetune())
