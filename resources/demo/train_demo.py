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

from engine.demo import DEMO_SEED, build_demo_model, digits_arrays  # noqa: E402
from engine.tfenv import set_seed, tf  # noqa: E402


def main() -> None:
    set_seed(DEMO_SEED)
    tf().config.experimental.enable_op_determinism()
    data = digits_arrays()
    x_train = data["x_train"].astype("float32") / 255.0
    x_test = data["x_test"].astype("float32") / 255.0
    model = build_demo_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, data["y_train"], epochs=30, batch_size=32, shuffle=True, verbose=2)
    _, acc = model.evaluate(x_test, data["y_test"], verbose=0)
    print(f"params={model.count_params()} test_accuracy={acc:.4f}")
    if acc < 0.97:
        raise SystemExit(f"demo model below 97% test accuracy: {acc:.4f}")
    out = Path(__file__).resolve().parent / "demo_model.keras"
    model.optimizer = None  # ship weights only: no optimizer slots in the file
    model.save(out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
