"""Train the demo model shipped as resources/demo/demo_model.keras (deterministic).

Run from the repository root:  python resources/demo/train_demo.py
Same seed, same TensorFlow version, same CPU -> same weights (ops are made deterministic).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.core.demo import DEMO_SEED, build_demo_model  # noqa: E402
from engine.core.tfenv import set_seed, tf  # noqa: E402
from engine.data.datasets import load_data  # noqa: E402


def main() -> None:
    set_seed(DEMO_SEED)
    tf().config.experimental.enable_op_determinism()
    # Train on the train split only (seed 0): the validation split the app carves with the
    # default seed stays unseen, so validation curves during fine-tuning are honest.
    splits = load_data("demo", input_shape=(8, 8, 1), num_classes=10, seed=DEMO_SEED)
    x_train, y_train = splits.arrays("train")
    x_val, y_val = splits.arrays("val")
    x_test, y_test = splits.arrays("test")
    model = build_demo_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x_train,
        y_train,
        epochs=30,
        batch_size=32,
        shuffle=True,
        verbose=2,
        validation_data=(x_val, y_val),
    )
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"params={model.count_params()} test_accuracy={acc:.4f}")
    if acc < 0.97:
        raise SystemExit(f"demo model below 97% test accuracy: {acc:.4f}")
    out = Path(__file__).resolve().parent / "demo_model.keras"
    model.optimizer = None  # ship weights only: no optimizer slots in the file
    model.save(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
