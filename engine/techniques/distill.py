"""Knowledge distillation: train a smaller student to mimic the loaded model (the teacher).

- The teacher's logits are used: a softmax (or sigmoid, for a binary single-unit output)
  teacher is rebuilt with its last activation made linear (same layers, same weights), so
  the student matches pre-activation values.
- The student is a width-scaled copy of the teacher (``width`` × filters/units of every
  Conv/Dense layer except the classifier; freshly initialised) or a user-supplied model.
- Loss: ``alpha`` × cross-entropy with the true labels + (1 − ``alpha``) × T² ×
  KL(softmax(teacher/T) ‖ softmax(student/T)); for a binary single unit, binary
  cross-entropy with the 0 / 1 labels and the KL of the two Bernoulli distributions
  sigmoid(teacher/T) ‖ sigmoid(student/T).
- The returned student ends like the teacher (softmax / sigmoid if the teacher does).
"""

from __future__ import annotations

import copy
from typing import Any

from engine.core.errors import BadInputError, UnsupportedModelError
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
from engine.techniques.training import (  # noqa: F401 (distill_losses: re-exported)
    ReportingCallback,
    accuracy_metric,
    distill_losses,
    is_binary,
    output_is_probability,
)

_WIDTH_KEYS = {
    "Conv1D": "filters",
    "Conv2D": "filters",
    "Conv3D": "filters",
    "SeparableConv2D": "filters",
    "Conv2DTranspose": "filters",
    "Dense": "units",
}


def _output_layer_name(config: dict[str, Any]) -> str:
    outputs = config.get("output_layers")
    if outputs:
        first = outputs[0]
        return first[0] if isinstance(first, list) else outputs[0]
    return config["layers"][-1]["config"]["name"]


def _output_layer(config: dict[str, Any]) -> dict[str, Any]:
    name = _output_layer_name(config)
    for layer in config["layers"]:
        if layer["config"].get("name") == name:
            return layer
    raise UnsupportedModelError("cannot find the output layer of the model")


def with_output_activation(config: dict[str, Any], activation: str) -> dict[str, Any]:
    """A copy of a Sequential/Functional config whose last activation is ``activation``
    ("linear", "softmax" or "sigmoid"); the layer structure (and so the weights) stays the
    same."""
    cfg = copy.deepcopy(config)
    last = _output_layer(cfg)
    cls = last["class_name"]
    if cls == "Softmax":
        last["class_name"] = "Activation"
        last["config"] = {
            "name": last["config"]["name"],
            "activation": activation,
            "trainable": True,
            "dtype": last["config"].get("dtype", "float32"),
        }
    elif "activation" in last["config"]:
        last["config"]["activation"] = activation
    else:
        raise UnsupportedModelError(
            f"the last layer ({cls}) has no activation to switch between {activation} and "
            "other outputs"
        )
    return cfg


def rebuild(model: Any, config: dict[str, Any], copy_weights: bool = True) -> Any:
    from engine.core.tfenv import keras2

    new = (
        model.__class__.from_config(config)
        if model.__class__.__name__ in ("Sequential", "Functional", "Model")
        else keras2().Model.from_config(config)
    )
    if copy_weights:
        new.set_weights(model.get_weights())
    return new


def _final_activation(output_kind: str) -> str:
    return {"softmax": "softmax", "binary_sigmoid": "sigmoid"}.get(output_kind, "linear")


def logits_model(model: Any, output_kind: str) -> Any:
    """The same network ending in logits (a copy; shares no layers with ``model``): a
    softmax or sigmoid output is made linear."""
    config = model.get_config()
    if output_is_probability(output_kind):
        config = with_output_activation(config, "linear")
    return rebuild(model, config)


def scaled_config(config: dict[str, Any], width: float) -> dict[str, Any]:
    """Teacher config with filters/units × ``width`` except for the classifier layer."""
    cfg = copy.deepcopy(config)
    classifier = _output_layer_name(cfg)
    # The classifier is the last layer with units/filters feeding the output.
    sized = [layer for layer in cfg["layers"] if layer["class_name"] in _WIDTH_KEYS]
    if sized and _output_layer(cfg)["class_name"] not in _WIDTH_KEYS:
        classifier = sized[-1]["config"]["name"]
    for layer in sized:
        conf = layer["config"]
        if conf["name"] == classifier:
            continue
        key = _WIDTH_KEYS[layer["class_name"]]
        conf[key] = max(1, int(round(conf[key] * width)))
    for layer in cfg["layers"]:
        if "trainable" in layer["config"]:
            layer["config"]["trainable"] = True  # a fresh student trains every layer
    return cfg


def distill_model(
    teacher: Any,
    step: dict[str, Any],
    context: TrainContext,
    *,
    student: Any = None,
    student_kind: str = "logits",
) -> Any:
    """Train a student from ``teacher`` (whose output kind is ``context.output_kind``);
    returns it ending like the teacher.

    ``student`` (a Keras 2 model) replaces the width-scaled copy when given.
    Raises BadInputError when the student does not fit the data.
    """
    from engine.core.tfenv import keras2, set_seed, tf

    k, t = keras2(), tf()
    splits, reporter, teacher_kind = context.splits, context.reporter, context.output_kind
    batch_size, seed = context.batch_size, context.seed
    set_seed(seed)
    teacher_logits = logits_model(teacher, teacher_kind)
    if student is None:
        config = scaled_config(teacher_logits.get_config(), float(step["width"]))
        student_logits = rebuild(teacher_logits, config, copy_weights=False)
    else:
        if tuple(student.input_shape[1:]) != tuple(teacher.input_shape[1:]):
            raise BadInputError(
                f"student input {tuple(student.input_shape[1:])} differs from the model's "
                f"{tuple(teacher.input_shape[1:])}"
            )
        if int(student.output_shape[-1]) != int(teacher.output_shape[-1]):
            what = (
                "one binary output unit"
                if is_binary(teacher_kind)
                else f"{teacher.output_shape[-1]} classes"
            )
            raise BadInputError(
                f"student has {student.output_shape[-1]} outputs but the model {what}"
            )
        if is_binary(student_kind) != is_binary(teacher_kind):
            raise BadInputError(
                f"student output is {student_kind} but the model's is {teacher_kind}"
            )
        student_logits = logits_model(student, student_kind)
    teacher_logits.trainable = False
    student_logits.trainable = True
    binary = is_binary(teacher_kind)
    distill_loss = distill_losses(binary, float(step["temperature"]), float(step["alpha"]))
    # Accuracy on the student's logits: threshold 0.0 for one binary unit, argmax otherwise.
    logit_kind = "binary_logit" if binary else "logits"

    class Distiller(k.Model):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.student = student_logits
            self.loss_tracker = k.metrics.Mean(name="loss")
            self.acc = accuracy_metric(logit_kind)

        @property
        def metrics(self) -> list[Any]:
            return [self.loss_tracker, self.acc]

        def call(self, x: Any, training: bool = False) -> Any:
            return self.student(x, training=training)

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            t_logits = teacher_logits(x, training=False)
            with t.GradientTape() as tape:
                s_logits = self.student(x, training=True)
                loss, _hard = distill_loss(y, t_logits, s_logits)
            grads = tape.gradient(loss, self.student.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
            self.loss_tracker.update_state(loss)
            self.acc.update_state(y, s_logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            s_logits = self.student(x, training=False)
            self.loss_tracker.update_state(distill_loss(y, s_logits, s_logits)[1])
            self.acc.update_state(y, s_logits)
            return {m.name: m.result() for m in self.metrics}

    distiller = Distiller()
    distiller.compile(optimizer=k.optimizers.Adam(learning_rate=float(step["learning_rate"])))
    epochs = int(step["epochs"])
    cb = ReportingCallback(
        reporter,
        splits.steps_per_epoch(batch_size),
        context.estimator,
        measured_model=student_logits,
    )
    distiller.fit(
        splits.dataset("train", batch_size, shuffle_seed=seed),
        validation_data=splits.dataset("val", batch_size),
        epochs=epochs,
        verbose=0,
        callbacks=[cb],
    )
    reporter.advance_epochs(epochs)
    if output_is_probability(teacher_kind):
        final = rebuild(
            student_logits,
            with_output_activation(student_logits.get_config(), _final_activation(teacher_kind)),
        )
    else:
        final = student_logits
    reporter.log(
        f"student: {final.count_params():,} parameters (teacher {teacher.count_params():,})"
    )
    return final


def _summary(step: dict[str, Any]) -> str:
    return (
        f"student at {step['width']:.2g}× width, temperature {step['temperature']:g}, "
        f"{step['epochs']} epoch(s)"
    )


class Distill(Technique):
    spec = StepSpec(
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
                "Optional Keras model file to use as the student instead of a width-scaled copy.",
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
            epochs_knob(30),
            learning_rate_knob(2e-3),
        ),
        stage_label="Distilling",
        order=10,
        must_precede=("prune_filters", "prune", "cluster", "qat"),
        precede_reason="replaces the model",
        summary=_summary,
    )

    def apply(self, context: TrainContext, model: Any, step: dict[str, Any]) -> StepResult:
        student, student_kind = None, "logits"
        if step.get("student"):
            from engine.models.loading import load_model

            loaded = load_model(step["student"], allow_unsafe=context.allow_unsafe)
            student, student_kind = loaded.model, loaded.output_kind
        out = distill_model(model, step, context, student=student, student_kind=student_kind)
        return StepResult(out, info={"student_params": int(out.count_params())})


register(Distill())
