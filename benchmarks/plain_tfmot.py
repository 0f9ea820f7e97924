"""The example recipes written by hand, the way the TensorFlow Model Optimization guides do it.

This is the alternative a Featherweight user has: a script. It is written from the public
guides (tensorflow.org/model_optimization: "Pruning in Keras", "Weight clustering in Keras",
"Sparsity and cluster preserving quantization aware training (PCQAT)"; tensorflow.org/lite
"Post-training integer quantization"; keras.io "Knowledge Distillation"), not from the
engine's code. What it shares with the engine, so the comparison is fair:

- the demo model file, loaded with ``tf_keras.models.load_model``;
- the data split: ``engine.data.datasets.load_data("demo", (8, 8, 1), 10, seed=seed)``
  is used ONLY to
  get the identical train / val / test arrays (already scaled to 0..1);
- the hyperparameters, read from the recipe file
  (``engine.pipeline.recipe.load_recipe`` only fills in
  the documented defaults of knobs a file leaves out, e.g. ``initial_sparsity`` 0.0):
  epochs, batch size, learning rate (Adam, as the engine uses), schedule, sparsity,
  clusters and their init, temperature, alpha, student width, calibration samples, seed;
- the metric definitions of DESIGN.md: ``.tflite`` bytes, ``gzip.compress(data, 9)`` bytes,
  top-1 accuracy on the test split run with LiteRT, accuracy drop against the original model
  converted to float32 ``.tflite`` with no optimization.

Pruning schedule: the guide computes ``end_step = ceil(n_train / batch_size) * epochs`` and
keeps ``PolynomialDecay``'s default ``frequency=100``. With the demo (41 steps per epoch, 6
epochs = 246 steps) that prunes at steps 100 and 200 (tfmot counts steps from 1), so it does
prune: about 79.5% at the last update instead of 80%, because the polynomial would reach 80%
only at step 246, which is not a pruning turn (measured: 79.5% on the exported kernels).
That is what a careful user following the guide gets, so we keep it as the default
(``prune_schedule="guide"``). ``prune_schedule="engine"`` uses the engine's own schedule
(``engine.techniques.prune.derive_schedule``: frequency and end step from the real number of
training steps) so that the benchmark can show which gains come from the schedule alone.

The script implements the step types of today's recipes and nothing else: a step type it
does not know (e.g. a technique added to the engine's registry later), or a knob value it
does not implement (2:4 structured pruning, skipped layers, a student file, sparse
encoding), raises ``NotImplementedInPlainScript`` before any work, instead of being skipped.

Sparsity is measured the way the engine measures it: on the exported ``.tflite``, with
``engine.tflite.metrics.sparsity_report`` (after the timed work; a user's script would not
measure it).

Usage::

    python benchmarks/plain_tfmot.py resources/recipes/prune80_int8.json --seed 0 --out DIR

writes ``DIR/model.tflite``, ``DIR/baseline.tflite`` and ``DIR/metrics.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEMO_MODEL = ROOT / "resources" / "demo" / "demo_model.keras"
KERNEL_LAYERS = ("Conv2D", "Dense", "DepthwiseConv2D")
PRUNE_SCHEDULES = ("guide", "engine")
QUANTIZE_MODES = ("int8", "dynamic", "float16", "float32")


class NotImplementedInPlainScript(NotImplementedError):
    """The recipe asks for something this hand-written script does not do."""


def recipe_step_types() -> tuple[str, ...]:
    """The step types the engine's recipe format knows (``engine.pipeline.recipe``)."""
    from engine.pipeline.recipe import STEP_SPECS

    return tuple(STEP_SPECS)


def check_supported(recipe: dict[str, Any], model_path: str | Path = DEMO_MODEL) -> None:
    """Raise NotImplementedInPlainScript if any step (type or knob value) is not implemented
    here. Runs before any work, so nothing is silently skipped."""
    for no, step in enumerate(recipe["steps"], 1):
        kind = step.get("type")
        if kind not in STEP_HANDLERS:
            known = "a step type of the engine" if kind in recipe_step_types() else "unknown"
            raise NotImplementedInPlainScript(
                f"step {no}: the plain script does not implement step type {kind!r} ({known}); "
                f"it implements {', '.join(STEP_HANDLERS)}"
            )
        for knob, value in UNSUPPORTED_KNOBS.get(kind, {}).items():
            if step.get(knob, value[0]) not in value:
                raise NotImplementedInPlainScript(
                    f"step {no} ({kind}): the plain script does not implement {knob}={step[knob]!r}"
                )
        if kind == "distill" and Path(model_path).resolve() != DEMO_MODEL.resolve():
            raise NotImplementedInPlainScript(
                f"step {no} (distill): the plain script builds the demo architecture only"
            )


def load_split(seed: int) -> dict[str, np.ndarray]:
    """The engine's demo split for ``seed`` (arrays only; scaled float32, int labels)."""
    from engine.data.datasets import load_data

    s = load_data("demo", (8, 8, 1), 10, seed=seed)
    return {
        "x_train": s.x_train,
        "y_train": s.y_train,
        "x_val": s.x_val,
        "y_val": s.y_val,
        "x_test": s.x_test,
        "y_test": s.y_test,
    }


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe's numbers (every knob filled in with its documented default)."""
    from engine.pipeline.recipe import load_recipe

    return load_recipe(path).to_dict()


# -- evaluation, as in the guides' ``evaluate_model`` (batched) ---------------------------
def tflite_accuracy(tflite_model: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a ``.tflite`` with LiteRT (int8 input quantized, as the guide does)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite_model, num_threads=2)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    images = x.astype(np.float32)
    if inp["dtype"] != np.float32:
        scale, zero_point = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        images = np.clip(np.round(images / scale + zero_point), info.min, info.max)
    interpreter.set_tensor(inp["index"], images.astype(inp["dtype"]))
    interpreter.invoke()
    output = interpreter.get_tensor(out["index"])
    return float(np.mean(np.argmax(output, axis=-1) == y))


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def kernel_sparsity(model: Any) -> float:
    """Fraction of zeros in the Conv/Dense kernels (looking inside QAT wrappers)."""
    zeros = total = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ not in KERNEL_LAYERS:
            continue
        for w in layer.weights:
            if w.name.split("/")[-1].startswith("kernel"):
                k = w.numpy()
                zeros += int(np.sum(k == 0))
                total += k.size
    return zeros / total if total else 0.0


def to_tflite(model: Any, quantize: dict[str, Any] | None, x_train: np.ndarray) -> bytes:
    """TFLiteConverter: float32 (no optimization) or full-integer int8 with a
    representative dataset of the first ``calibration_samples`` training images."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize is None or quantize["mode"] == "float32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize["mode"] == "dynamic":  # "Post-training dynamic range quantization"
        return converter.convert()
    if quantize["mode"] == "float16":  # "Post-training float16 quantization"
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    if quantize["mode"] != "int8":
        raise NotImplementedInPlainScript(f"quantize mode {quantize['mode']!r}")
    n = int(quantize["calibration_samples"])

    def representative_data_gen():
        for input_value in tf.data.Dataset.from_tensor_slices(x_train).batch(1).take(n):
            yield [input_value]

    converter.representative_dataset = representative_data_gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if quantize["io"] == "int8":
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


# -- the techniques, as in the guides ------------------------------------------------------
def compile_for_finetune(model: Any, learning_rate: float, from_logits: bool = False) -> None:
    import tf_keras

    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )


def prune_schedule_args(
    n_train: int, batch_size: int, epochs: int, which: str = "guide"
) -> dict[str, int]:
    """``begin_step``, ``end_step`` and ``frequency`` of the pruning schedule.

    ``guide``: the tfmot guide's ``end_step = ceil(n_train / batch) * epochs`` and tfmot's
    default frequency 100. ``engine``: ``engine.techniques.prune.derive_schedule``."""
    steps_per_epoch = int(np.ceil(n_train / batch_size))
    if which == "guide":
        return {"begin_step": 0, "end_step": steps_per_epoch * epochs, "frequency": 100}
    if which != "engine":
        raise ValueError(f"prune schedule must be one of {PRUNE_SCHEDULES}, not {which!r}")
    from engine.techniques.prune import derive_schedule

    sched = derive_schedule(steps_per_epoch, epochs)
    return {
        "begin_step": sched.begin_step,
        "end_step": sched.end_step,
        "frequency": sched.frequency,
    }


def prune(
    model: Any,
    step: dict[str, Any],
    d: dict[str, np.ndarray],
    batch_size: int,
    schedule_kind: str = "guide",
) -> Any:
    """ "Pruning in Keras": prune_low_magnitude + UpdatePruningStep, then strip_pruning."""
    import tensorflow_model_optimization as tfmot

    args = prune_schedule_args(len(d["x_train"]), batch_size, step["epochs"], schedule_kind)
    if step["schedule"] == "constant" or args["end_step"] == args["begin_step"]:
        schedule = tfmot.sparsity.keras.ConstantSparsity(step["target_sparsity"], **args)
    else:
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=step["initial_sparsity"],
            final_sparsity=step["target_sparsity"],
            **args,
        )
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    _finetune(model_for_pruning, step, d, batch_size, [tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(model_for_pruning)


def cluster(model: Any, step: dict[str, Any], d: dict[str, np.ndarray], batch_size: int) -> Any:
    """ "Weight clustering" / sparsity-preserving clustering: cluster_weights, strip_clustering."""
    import tensorflow_model_optimization as tfmot

    init = getattr(tfmot.clustering.keras.CentroidInitialization, step["init"].upper())
    clustering_params = {
        "number_of_clusters": step["clusters"],
        "cluster_centroids_init": init,
        "preserve_sparsity": step["preserve_sparsity"],
    }
    clustered_model = tfmot.clustering.keras.cluster_weights(model, **clustering_params)
    _finetune(clustered_model, step, d, batch_size)
    return tfmot.clustering.keras.strip_clustering(clustered_model)


def qat(
    model: Any,
    step: dict[str, Any],
    d: dict[str, np.ndarray],
    batch_size: int,
    pruned: bool,
    clustered: bool,
) -> Any:
    """QAT with the collaborative scheme (PCQAT guide): quantize_annotate_model + quantize_apply."""
    import tensorflow_model_optimization as tfmot

    annotated = tfmot.quantization.keras.quantize_annotate_model(model)
    if clustered:
        scheme = tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(
            preserve_sparsity=pruned
        )
        qat_model = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    elif pruned:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
        qat_model = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    else:
        qat_model = tfmot.quantization.keras.quantize_apply(annotated)
    return _finetune(qat_model, step, d, batch_size)


def distill(teacher: Any, step: dict[str, Any], d: dict[str, np.ndarray], batch_size: int) -> Any:
    """keras.io "Knowledge Distillation": a Distiller model, student half as wide.

    The demo teacher ends in softmax; as the example wants logits, its last activation is
    switched to linear. The student is the demo architecture at ``width`` with a logits
    layer, trained on logits; the exported model adds the softmax back.
    """
    import tensorflow as tf
    import tf_keras

    teacher.layers[-1].activation = tf_keras.activations.linear
    teacher.trainable = False
    w = float(step["width"])

    def n(units: int) -> int:
        return max(1, int(round(units * w)))

    inputs = tf_keras.Input(shape=(8, 8, 1))
    x = tf_keras.layers.Conv2D(n(32), 3, padding="same", activation="relu")(inputs)
    x = tf_keras.layers.Conv2D(n(64), 3, padding="same", activation="relu")(x)
    x = tf_keras.layers.MaxPooling2D(2)(x)
    x = tf_keras.layers.Flatten()(x)
    x = tf_keras.layers.Dense(n(128), activation="relu")(x)
    logits = tf_keras.layers.Dense(10)(x)
    student = tf_keras.Model(inputs, logits, name="student")
    deployable = tf_keras.Model(inputs, tf_keras.layers.Softmax()(logits), name="student_softmax")

    class Distiller(tf_keras.Model):
        def __init__(self, student: Any, teacher: Any) -> None:
            super().__init__()
            self.teacher = teacher
            self.student = student

        def compile(  # noqa: A003
            self,
            optimizer: Any,
            metrics: Any,
            student_loss_fn: Any,
            distillation_loss_fn: Any,
            alpha: float = 0.1,
            temperature: float = 3,
        ) -> None:
            super().compile(optimizer=optimizer, metrics=metrics)
            self.student_loss_fn = student_loss_fn
            self.distillation_loss_fn = distillation_loss_fn
            self.alpha = alpha
            self.temperature = temperature

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            teacher_predictions = self.teacher(x, training=False)
            with tf.GradientTape() as tape:
                student_predictions = self.student(x, training=True)
                student_loss = self.student_loss_fn(y, student_predictions)
                distillation_loss = self.distillation_loss_fn(
                    tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
                    tf.nn.softmax(student_predictions / self.temperature, axis=1),
                ) * (self.temperature**2)
                loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
            trainable_vars = self.student.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))
            self.compiled_metrics.update_state(y, student_predictions)
            results = {m.name: m.result() for m in self.metrics}
            results.update({"student_loss": student_loss, "distillation_loss": distillation_loss})
            return results

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            y_prediction = self.student(x, training=False)
            student_loss = self.student_loss_fn(y, y_prediction)
            self.compiled_metrics.update_state(y, y_prediction)
            results = {m.name: m.result() for m in self.metrics}
            results.update({"student_loss": student_loss})
            return results

    distiller = Distiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=step["learning_rate"]),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy()],
        student_loss_fn=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        distillation_loss_fn=tf_keras.losses.KLDivergence(),
        alpha=step["alpha"],
        temperature=step["temperature"],
    )
    distiller.fit(
        d["x_train"],
        d["y_train"],
        batch_size=batch_size,
        epochs=step["epochs"],
        validation_data=(d["x_val"], d["y_val"]),
        verbose=0,
    )
    return deployable


def _finetune(
    model: Any,
    step: dict[str, Any],
    d: dict[str, np.ndarray],
    batch_size: int,
    callbacks: list[Any] | None = None,
) -> Any:
    """Compile and fit on the train split, watching validation (the tfmot guides' loop)."""
    compile_for_finetune(model, step["learning_rate"])
    model.fit(
        d["x_train"],
        d["y_train"],
        batch_size=batch_size,
        epochs=step["epochs"],
        validation_data=(d["x_val"], d["y_val"]),
        callbacks=callbacks or [],
        verbose=0,
    )
    return model


# step type -> how this script applies it: (model, step, data, batch, done, schedule) -> model.
# "quantize" is the export (handled at the end).
STEP_HANDLERS: dict[str, Any] = {
    "distill": lambda m, s, d, b, done, sch: distill(m, s, d, b),
    "prune": lambda m, s, d, b, done, sch: prune(m, s, d, b, sch),
    "cluster": lambda m, s, d, b, done, sch: cluster(m, s, d, b),
    "finetune": lambda m, s, d, b, done, sch: _finetune(m, s, d, b),
    "qat": lambda m, s, d, b, done, sch: qat(m, s, d, b, "prune" in done, "cluster" in done),
    "quantize": None,
}
# knob -> the values this script implements (first = the documented default)
UNSUPPORTED_KNOBS: dict[str, dict[str, tuple[Any, ...]]] = {
    "prune": {"structured_2_4": (False,), "skip_first": (False,), "skip_last": (False,)},
    "distill": {"student": (None,)},
    "quantize": {"sparse": (False,), "mode": QUANTIZE_MODES},
}


def run_recipe(
    recipe: dict[str, Any],
    seed: int,
    out_dir: str | Path | None = None,
    model_path: str | Path = DEMO_MODEL,
    prune_schedule: str = "guide",
) -> dict[str, Any]:
    """Run ``recipe`` (a filled-in recipe dict) by hand on the demo model for ``seed``.

    Timed from loading the model to the measured ``.tflite`` (baseline included, as the
    engine's ``compress`` does; Python imports excluded). Returns the metrics (DESIGN.md
    names) plus ``wall_s`` and ``stage_s``; writes ``model.tflite``, ``baseline.tflite`` and
    ``metrics.json`` into ``out_dir``. ``prune_schedule``: ``"guide"`` (tfmot guide defaults)
    or ``"engine"`` (the engine's derived schedule). Raises NotImplementedInPlainScript,
    before any work, for a step type or knob value the script does not implement.
    """
    check_supported(recipe, model_path)
    if prune_schedule not in PRUNE_SCHEDULES:
        raise ValueError(f"prune_schedule must be one of {PRUNE_SCHEDULES}")
    import ai_edge_litert.interpreter  # noqa: F401  (imports are not part of the timed work)
    import tensorflow_model_optimization  # noqa: F401
    import tf_keras

    stage_s: dict[str, float] = {}
    t0 = time.perf_counter()
    tf_keras.utils.set_random_seed(seed)
    batch_size = int(recipe["batch_size"])
    d = load_split(seed)
    model = tf_keras.models.load_model(model_path)

    baseline_tflite = to_tflite(model, None, d["x_train"])
    baseline = {
        "accuracy": tflite_accuracy(baseline_tflite, d["x_test"], d["y_test"]),
        "tflite_bytes": len(baseline_tflite),
        "tflite_gzip_bytes": gzipped_size(baseline_tflite),
        "params": int(model.count_params()),
    }
    stage_s["baseline"] = time.perf_counter() - t0

    done: set[str] = set()
    quantize: dict[str, Any] | None = None
    for step in recipe["steps"]:
        kind = step["type"]
        ts = time.perf_counter()
        handler = STEP_HANDLERS[kind]
        if handler is None:
            quantize = step
        else:
            model = handler(model, step, d, batch_size, done, prune_schedule)
            stage_s[kind] = stage_s.get(kind, 0.0) + time.perf_counter() - ts
        done.add(kind)

    ts = time.perf_counter()
    tflite_model = to_tflite(model, quantize, d["x_train"])
    stage_s["convert"] = time.perf_counter() - ts
    ts = time.perf_counter()
    compressed = {
        "accuracy": tflite_accuracy(tflite_model, d["x_test"], d["y_test"]),
        "tflite_bytes": len(tflite_model),
        "tflite_gzip_bytes": gzipped_size(tflite_model),
        "params": int(model.count_params()),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "baseline.tflite").write_bytes(baseline_tflite)
        (out / "model.tflite").write_bytes(tflite_model)
    stage_s["evaluate"] = time.perf_counter() - ts
    wall = time.perf_counter() - t0
    # Not timed (a user's script would not do it): sparsity as the engine measures it.
    from engine.tflite.metrics import sparsity_report

    compressed["sparsity"] = sparsity_report(tflite_model)["sparsity"]
    compressed["keras_sparsity"] = kernel_sparsity(model)
    metrics = {
        "baseline": baseline,
        "compressed": compressed,
        "ratio_gzip": baseline["tflite_gzip_bytes"] / compressed["tflite_gzip_bytes"],
        "ratio_raw": baseline["tflite_bytes"] / compressed["tflite_bytes"],
        "accuracy_drop": baseline["accuracy"] - compressed["accuracy"],
        "recipe": recipe,
        "seed": seed,
        "prune_schedule": prune_schedule,
        "wall_s": wall,
        "stage_s": {k: round(v, 3) for k, v in stage_s.items()},
    }
    if out_dir is not None:
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="recipe JSON file (e.g. resources/recipes/int8_ptq.json)")
    parser.add_argument("--seed", type=int, default=None, help="default: the recipe's seed")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--prune-schedule",
        choices=PRUNE_SCHEDULES,
        default="guide",
        help="guide: tfmot guide defaults (frequency 100); engine: the engine's derived schedule",
    )
    args = parser.parse_args(argv)
    recipe = read_recipe(args.recipe)
    seed = recipe["seed"] if args.seed is None else args.seed
    try:
        m = run_recipe(recipe, seed, args.out, prune_schedule=args.prune_schedule)
    except NotImplementedInPlainScript as exc:
        print(f"plain_tfmot: not implemented: {exc}", file=sys.stderr)
        return 2
    print(
        f"{recipe['name']} seed {seed}: ratio gzip {m['ratio_gzip']:.2f}x raw "
        f"{m['ratio_raw']:.2f}x, accuracy drop {m['accuracy_drop'] * 100:+.2f} points, "
        f"{m['wall_s']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
