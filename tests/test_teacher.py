"""Teacher-guided fine-tuning (issue 14, deliver 4): ``fit(..., guided=(T, alpha))`` trains the
model itself (through tfmot's wrappers and callbacks) against the original model's soft
outputs; the pipeline hands every step the loaded model as the teacher."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.pipeline.recipe import fill_step
from tests.helpers import train_context


@pytest.fixture(scope="module")
def digits(demo_keras_model):
    """The demo model (the teacher) and a small digits split: 320 training, 200 test."""
    from engine.core.demo import digits_arrays
    from engine.data.datasets import arrays_splits

    d = digits_arrays()
    arrays = {
        "x_train": d["x_train"][:320],
        "y_train": d["y_train"][:320],
        "x_test": d["x_test"][:200],
        "y_test": d["y_test"][:200],
    }
    return demo_keras_model, arrays, arrays_splits(arrays, "digits", (8, 8, 1), 10)


def test_guided_training_learns_from_the_teacher_not_the_labels(digits):
    """alpha = 0 and garbage training labels: the guided student keeps the teacher's accuracy
    (it only sees the teacher), the label-only one learns the garbage. Fails if guided
    training ignored the teacher (or fell back to the labels)."""
    from engine.data.datasets import arrays_splits
    from engine.techniques.finetune import finetune_model
    from engine.techniques.training import keras_accuracy

    teacher, arrays, splits = digits
    rng = np.random.default_rng(0)
    garbage = dict(arrays, y_train=rng.integers(0, 10, len(arrays["y_train"])))
    bad = arrays_splits(garbage, "garbage", (8, 8, 1), 10)
    before = keras_accuracy(teacher, splits)
    raw = {"type": "finetune", "epochs": 3, "learning_rate": 2e-3}
    label_only = finetune_model(teacher, fill_step(raw, 1), train_context(bad, teacher=teacher))
    guided_step = fill_step({**raw, "teacher_guided": True, "alpha": 0.0}, 1)
    guided = finetune_model(teacher, guided_step, train_context(bad, teacher=teacher))
    lost = keras_accuracy(label_only, splits)
    kept = keras_accuracy(guided, splits)
    assert before > 0.9
    assert lost < before - 0.2, lost  # the labels were garbage
    assert kept > before - 0.03, kept  # the teacher was not


def test_guided_prune_reaches_its_targets_reports_live_and_finetune_keeps_zeros(digits):
    from engine.techniques.finetune import finetune_model
    from engine.techniques.prune import prune_model
    from engine.techniques.training import effective_kernels, keras_accuracy

    teacher, _arrays, splits = digits
    events: list[dict[str, Any]] = []
    step = fill_step(
        {
            "type": "prune",
            "target_sparsity": 0.8,
            "epochs": 2,
            "learning_rate": 5e-4,
            "teacher_guided": True,
            "temperature": 2.0,
            "alpha": 0.5,
        },
        1,
    )
    ctx = train_context(splits, teacher=teacher, events=events)
    result = prune_model(teacher, step, ctx)
    assert min(result.per_layer_sparsity[n] for n in result.per_layer_target) >= 0.79
    assert keras_accuracy(result.model, splits) > 0.8  # the wrapped model itself was trained
    metrics = [e for e in events if e["type"] == "metric"]
    assert len(metrics) == 2
    # live size/sparsity measured on the pruned model inside the guiding wrapper
    assert 0.1 < metrics[0]["values"]["sparsity"] < metrics[1]["values"]["sparsity"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(metrics[1]["values"])
    assert any("teacher-guided: temperature 2" in str(e.get("message")) for e in events)
    ctx.done.add("prune")
    tuned = finetune_model(
        result.model,
        fill_step({"type": "finetune", "epochs": 1, "teacher_guided": True}, 1),
        ctx,
    )
    assert (effective_kernels(tuned)["dense"] == 0).mean() >= 0.79  # zero_keeper still works


def test_guided_cluster_and_qat_train_through_their_wrappers(digits):
    from engine.techniques.cluster import cluster_model
    from engine.techniques.quantize import qat_model
    from engine.techniques.training import effective_kernels, keras_accuracy

    teacher, _arrays, splits = digits
    guided = {"teacher_guided": True, "epochs": 1}
    clustered = cluster_model(
        teacher,
        fill_step({"type": "cluster", "clusters": 8, "init": "linear", **guided}, 1),
        train_context(splits, teacher=teacher),
    )
    assert len(np.unique(effective_kernels(clustered.model)["dense"])) <= 8
    assert keras_accuracy(clustered.model, splits) > 0.5
    qat = qat_model(
        teacher, fill_step({"type": "qat", **guided}, 1), train_context(splits, teacher=teacher)
    )
    assert keras_accuracy(qat, splits) > 0.8


def test_without_a_teacher_guided_training_falls_back_to_labels(digits):
    from engine.data.datasets import arrays_splits
    from engine.techniques.training import fit, fresh_copy

    teacher, arrays, _splits = digits
    few = {k: v[:40] for k, v in arrays.items()}  # one training step
    events: list[dict[str, Any]] = []
    model = fresh_copy(teacher)
    splits = arrays_splits(few, "few", (8, 8, 1), 10)
    fit(
        model, train_context(splits, events=events), epochs=1, learning_rate=1e-4, guided=(4.0, 0.1)
    )
    assert any("trained on the labels alone" in str(e.get("message")) for e in events)


def test_as_logits_recovers_the_pre_activation():
    from engine.core.tfenv import tf
    from engine.techniques.training import as_logits

    t = tf()
    z = t.constant([[2.0, -1.0, 0.5]])
    # eager: log-probabilities, the same distribution as the logits
    p = t.nn.softmax(z)
    np.testing.assert_allclose(t.nn.softmax(as_logits(p, "softmax")), p, rtol=1e-5)
    b = t.constant([[1.5], [-0.7]])
    np.testing.assert_allclose(as_logits(t.sigmoid(b), "binary_sigmoid"), b, rtol=1e-4)
    assert as_logits(z, "logits") is z

    @t.function
    def graph(x):
        return as_logits(t.nn.softmax(x), "softmax")

    np.testing.assert_allclose(graph(t.constant([[30.0, -30.0, 0.0]])), [[30.0, -30.0, 0.0]])


def test_the_pipeline_gives_every_step_the_loaded_model_as_teacher(digits):
    from contextlib import nullcontext

    from engine.core.events import Reporter
    from engine.pipeline.recipe import validate_recipe
    from engine.pipeline.steps import run_train_steps
    from engine.techniques.registry import (
        StepResult,
        StepSpec,
        Technique,
        register,
        unregister,
    )

    teacher, _arrays, splits = digits
    seen: list[Any] = []

    class Spy(Technique):
        spec = StepSpec("spy", "Spy (test)", "Records its teacher.", at_most_once=False)

        def apply(self, context, model, step):
            seen.append(context.teacher)
            return StepResult(model)

    register(Spy())
    try:
        recipe = validate_recipe({"schema_version": 3, "steps": [{"type": "spy"}] * 2})

        class Loaded:
            model = teacher
            output_kind = "softmax"

        run_train_steps(
            Loaded(),
            splits,
            recipe,
            recipe.train_steps,
            lambda *_: nullcontext(),
            Reporter(None),
            None,
            [],
            False,
        )
    finally:
        unregister("spy")
    assert seen == [teacher, teacher]
