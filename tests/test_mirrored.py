"""Training under tf.distribute.MirroredStrategy (engine.techniques.training): on two logical
CPU devices (made in a fresh process before TensorFlow starts, the way to test without GPUs)
the engine's ``fit`` gives the single-device weights and losses within 1e-3 — also with an
unevenly split last batch (197 samples, batch 32: the last 5 go 3 + 2) — for plain training
and for a teacher-guided pruning step; a QAT step trains on one device and says so in one log
line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import engine.core.tfenv  # TF_USE_LEGACY_KERAS before TensorFlow
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from engine.core.events import Reporter
    from engine.core.tfenv import keras2
    from engine.data.splits import DataSplits
    from engine.pipeline.recipe import fill_step
    from engine.techniques import training
    from engine.techniques.registry import TECHNIQUES, TrainContext

    k = keras2()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(197, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, 197)
    xv = rng.normal(size=(64, 8, 8, 1)).astype("float32")
    yv = rng.integers(0, 4, 64)
    splits = DataSplits(source="t", kind="arrays", num_classes=4, input_shape=(8, 8, 1),
                        scale="none", seed=0, val_fraction=0.2, x_train=x, y_train=y,
                        x_val=xv, y_val=yv, x_test=xv, y_test=yv)

    def build():
        k.utils.set_random_seed(1)
        i = k.Input((8, 8, 1))
        h = k.layers.Conv2D(4, 3, activation="relu")(i)
        h = k.layers.Flatten()(h)
        return k.Model(i, k.layers.Dense(4, activation="softmax")(h))

    teacher = build()
    start = teacher.get_weights()

    def run(mirrored, what):
        if mirrored:
            os.environ["FEATHERWEIGHT_MIRRORED_DEVICES"] = "/cpu:0,/cpu:1"
        else:
            os.environ.pop("FEATHERWEIGHT_MIRRORED_DEVICES", None)
        events = []
        ctx = TrainContext(splits=splits, reporter=Reporter(events.append),
                           output_kind="softmax", batch_size=32, teacher=teacher)
        model = build()
        model.set_weights(start)
        loss = None
        if what == "plain":
            loss = training.fit(model, ctx, epochs=1, learning_rate=1e-2).history["loss"]
        else:
            # Pruning wrappers, UpdatePruningStep and the teacher-guided model at once.
            step = {"prune": {"type": "prune", "target_sparsity": 0.5, "epochs": 1,
                              "learning_rate": 1e-2, "teacher_guided": True,
                              "temperature": 2.0, "alpha": 0.5},
                    "qat": {"type": "qat", "epochs": 1, "learning_rate": 1e-3}}[what]
            model = TECHNIQUES[step["type"]].apply(ctx, model, fill_step(step, 1)).model
        logs = [e["message"] for e in events if e.get("type") == "log"]
        return [np.asarray(w) for w in model.get_weights()], loss, logs

    out = {}
    for what in sys.argv[1:]:
        # QAT trains on one device either way: its mirrored run alone (the log line).
        one, loss_one, logs_one = run(False, what) if what != "qat" else (None, None, [])
        two, loss_two, logs_two = run(True, what)
        one = one or two
        out[what] = {
            "diff": max(float(np.max(np.abs(a - b))) for a, b in zip(one, two, strict=True)),
            "scale": max(float(np.max(np.abs(a))) for a in one),
            "zeros": [float(np.mean(a == 0)) for a in two],
            "loss": [loss_one, loss_two],
            "logs": [logs_one, logs_two],
        }
    from engine.core.errors import BadInputError
    os.environ["FEATHERWEIGHT_MIRRORED_DEVICES"] = "/cpu:0,/cpu:7"
    try:
        training.distribution_strategy()
        out["missing_device"] = None
    except BadInputError as exc:
        out["missing_device"] = str(exc)
    os.environ["FEATHERWEIGHT_MIRRORED_DEVICES"] = "/cpu:0"
    out["one_device"] = repr(training.distribution_strategy())
    os.environ.pop("FEATHERWEIGHT_MIRRORED_DEVICES")
    out["no_gpus"] = repr(training.distribution_strategy())
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def mirrored():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("FEATHERWEIGHT_MIRRORED_DEVICES", None)
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, "plain", "prune", "qat"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


MIRRORED_LINE = "training on 2 devices (MirroredStrategy)"


@pytest.mark.parametrize("what", ["plain", "prune"])
def test_mirrored_fit_matches_one_device(mirrored, what):
    result = mirrored[what]
    assert result["scale"] > 0.05  # real weights were compared
    assert result["diff"] < 1e-3, result
    one, two = result["logs"]
    assert not any(MIRRORED_LINE in line for line in one)
    assert sum(MIRRORED_LINE in line for line in two) == 1, two
    if result["loss"][0] is not None:
        for a, b in zip(*result["loss"], strict=True):
            assert abs(a - b) < 1e-2, result["loss"]  # the reported loss too (see replica_share)


def test_guided_pruning_under_the_strategy_reaches_its_sparsity(mirrored):
    assert max(mirrored["prune"]["zeros"]) >= 0.45
    assert any("teacher-guided" in line for line in mirrored["prune"]["logs"][1])


def test_qat_trains_on_one_device_with_one_log_line(mirrored):
    _one, two = mirrored["qat"]["logs"]
    said = [line for line in two if "QAT trains on one device" in line]
    assert len(said) == 1 and not any(MIRRORED_LINE in line for line in two), two


def test_mirrored_devices_must_exist(mirrored):
    assert "no device /cpu:7" in mirrored["missing_device"]
    assert mirrored["one_device"] == "None"  # one device: nothing to mirror
    assert mirrored["no_gpus"] == "None"  # no GPUs here, no variable: one device
