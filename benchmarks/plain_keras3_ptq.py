"""Int8 post-training quantization of a Keras 3 model, written by hand (the large-model case).

What a user would write from the TensorFlow Lite guide "Post-training integer quantization":
load the Keras 3 file, convert it to float32 and to full-integer int8 ``.tflite`` with a
representative dataset (the first ``calibration_samples`` training images), and measure the
top-1 accuracy of both with LiteRT on the test split. The data is the engine's ``.npz``
format (``x_train, y_train, x_test, y_test``, uint8 0..255 images, scaled 1/255 here as the
engine's ``auto`` does for uint8), so the test split is the one the engine uses (the engine
takes ``x_test``/``y_test`` of an ``.npz`` as given).

    python benchmarks/plain_keras3_ptq.py MODEL.keras DATA.npz [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))


def run_ptq(
    model_path: str | Path,
    data_path: str | Path,
    out_dir: str | Path | None = None,
    calibration_samples: int = 300,
) -> dict[str, Any]:
    """Convert float32 and int8, measure both; returns sizes, accuracies and ``wall_s``
    (model file -> both measured ``.tflite``; Python imports excluded)."""
    import keras  # Keras 3 (TF_USE_LEGACY_KERAS only changes what tf.keras is)
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (import not timed)

    sys.path.insert(0, str(HERE))
    try:
        from plain_tfmot import tflite_accuracy
    finally:
        sys.path.remove(str(HERE))

    stage_s: dict[str, float] = {}
    t0 = time.perf_counter()
    model = keras.models.load_model(model_path)
    with np.load(data_path) as f:
        x_train = f["x_train"].astype(np.float32) / 255.0
        x_test = f["x_test"].astype(np.float32) / 255.0
        y_test = f["y_test"]
    stage_s["load"] = time.perf_counter() - t0

    ts = time.perf_counter()
    float_tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    stage_s["convert_float"] = time.perf_counter() - ts

    def representative_data_gen() -> Any:
        for value in tf.data.Dataset.from_tensor_slices(x_train).batch(1).take(calibration_samples):
            yield [value]

    ts = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_data_gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    int8_tflite = converter.convert()
    stage_s["convert_int8"] = time.perf_counter() - ts

    ts = time.perf_counter()
    float_acc = tflite_accuracy(float_tflite, x_test, y_test)
    int8_acc = tflite_accuracy(int8_tflite, x_test, y_test)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "baseline.tflite").write_bytes(float_tflite)
        (out / "model.tflite").write_bytes(int8_tflite)
    stage_s["evaluate"] = time.perf_counter() - ts
    wall = time.perf_counter() - t0
    metrics = {
        "baseline": {"accuracy": float_acc, "tflite_bytes": len(float_tflite)},
        "compressed": {"accuracy": int8_acc, "tflite_bytes": len(int8_tflite)},
        "ratio_raw": len(float_tflite) / len(int8_tflite),
        "accuracy_drop": float_acc - int8_acc,
        "test_samples": int(len(y_test)),
        "wall_s": wall,
        "stage_s": {k: round(v, 3) for k, v in stage_s.items()},
    }
    if out_dir is not None:
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    m = run_ptq(args.model, args.data, args.out)
    print(
        f"float {m['baseline']['accuracy']:.4f} int8 {m['compressed']['accuracy']:.4f} "
        f"raw ratio {m['ratio_raw']:.2f}x, {m['wall_s']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
