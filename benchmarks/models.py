"""Benchmark models and data, built from code (no download: the digits ship with
scikit-learn, the weights start random), saved by Keras 3 (what most users have today):

- the large-model case of ``run.py --large``: ``keras.applications.ResNet50(weights=None,
  input_shape=(32, 32, 3), classes=10)`` trained briefly;
- **the shared benchmark MobileNetV2** of the per-layer work and later (sensitivity,
  allocation, teacher-guided and structured pruning, search):
  ``keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None,
  classes=10)``, BatchNormalization momentum lowered to 0.9 while it trains so the moving
  statistics settle on the small dataset (0.99 in the saved file).

Both train on scikit-learn's digits upscaled from 8×8×1 to 32×32×3.

    python benchmarks/models.py [--epochs 1] [--mobilenet-epochs 20]   # build (or reuse)

Files are cached in ``benchmarks/.cache/`` (or ``$FEATHERWEIGHT_BENCH_CACHE``):
``resnet50_digits32.keras``, ``mobilenet_v2_035_digits32.keras`` and ``digits32.npz``
(``x_train, y_train, x_test, y_test``, uint8 images 0..255, the engine's ``.npz`` format). A
file is rebuilt only when it is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL_FILE = "resnet50_digits32.keras"
MOBILENET_FILE = "mobilenet_v2_035_digits32.keras"
MOBILENET_EPOCHS = 20
DATA_FILE = "digits32.npz"
SIDE = 32
DATA_SEED = 0


def cache_dir() -> Path:
    """Folder of the benchmark's generated files (created on demand)."""
    path = Path(os.environ.get("FEATHERWEIGHT_BENCH_CACHE") or Path(__file__).parent / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def upscale(x: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(N, 8, 8, 1) uint8 -> (N, side, side, 3) uint8 by pixel repetition (nearest neighbour)."""
    factor = side // x.shape[1]
    big = np.repeat(np.repeat(x, factor, axis=1), factor, axis=2)
    return np.repeat(big, 3, axis=3)


def digits32(path: Path | None = None) -> Path:
    """Write (if missing) the digits at 32×32×3 as an ``.npz`` the engine reads; return it."""
    from engine.core.demo import digits_arrays

    path = path or cache_dir() / DATA_FILE
    if not path.exists():
        d = digits_arrays(DATA_SEED)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            x_train=upscale(d["x_train"]),
            y_train=d["y_train"],
            x_test=upscale(d["x_test"]),
            y_test=d["y_test"],
        )
        os.replace(tmp, path)
    return path


def build_resnet50() -> object:
    """The untrained Keras 3 ResNet50 (random weights, 10 classes, 32×32×3 input)."""
    from engine.core.tfenv import keras3

    keras = keras3()
    return keras.applications.ResNet50(weights=None, input_shape=(SIDE, SIDE, 3), classes=10)


def resnet50_digits32(epochs: int = 1, path: Path | None = None) -> Path:
    """Train (if missing) the ResNet50 on the 32×32 digits for ``epochs`` and save it with
    Keras 3; return the file. Inputs are scaled 1/255, as the engine's 'auto' does for uint8."""
    return _trained(build_resnet50, "ResNet50", epochs, path or cache_dir() / MODEL_FILE)


def build_benchmark_mobilenet() -> object:
    """The untrained Keras 3 MobileNetV2 α 0.35 (random weights, 10 classes, 32×32×3)."""
    from engine.core.tfenv import keras3

    keras = keras3()
    return keras.applications.MobileNetV2(
        alpha=0.35, input_shape=(SIDE, SIDE, 3), weights=None, classes=10
    )


def mobilenet_digits32_heldout(epochs: int = MOBILENET_EPOCHS) -> Path:
    """The benchmark MobileNetV2 trained without the engine's default validation split (seed
    0, fraction 0.1 of x_train), for the search benchmark: the search judges candidates on
    that split, and ``mobilenet_digits32`` trained on all of x_train, so its validation
    accuracy (98.6 %, test 90.8 %) is memorisation that any compression loses."""
    path = cache_dir() / MOBILENET_FILE.replace(".keras", "_heldout.keras")
    return _trained(
        build_benchmark_mobilenet, "MobileNetV2 α0.35 (held-out validation)", epochs, path,
        (0.9, 0.99), heldout=True,
    )  # fmt: skip


def mobilenet_digits32(epochs: int = MOBILENET_EPOCHS, path: Path | None = None) -> Path:
    """Train (if missing) the benchmark MobileNetV2 on the 32×32 digits and save it with
    Keras 3; return the file. Inputs are scaled 1/255 (the engine's 'auto' for uint8).
    BatchNormalization momentum is 0.9 while it trains (the application's 0.999 leaves the
    statistics near their start after a few epochs) and 0.99 in the saved file."""
    path = path or cache_dir() / MOBILENET_FILE
    return _trained(build_benchmark_mobilenet, "MobileNetV2 α0.35", epochs, path, (0.9, 0.99))


def _trained(
    build: Any,
    label: str,
    epochs: int,
    path: Path,
    bn_momentum: tuple[float, float] | None = None,
    heldout: bool = False,
) -> Path:
    """``path`` when it exists; else ``build()`` trained on the 32×32 digits (Adam 1e-3,
    batch 32), its test accuracy printed, saved with Keras 3 (atomically). ``bn_momentum``:
    the BatchNormalization momentum while training and in the saved file."""
    if path.exists():
        return path
    from engine.core.tfenv import keras3

    keras = keras3()
    keras.utils.set_random_seed(DATA_SEED)
    with np.load(digits32()) as f:
        x = f["x_train"].astype(np.float32) / 255.0
        y = f["y_train"]
        x_test = f["x_test"].astype(np.float32) / 255.0
        y_test = f["y_test"]
    if heldout:  # train on the engine's train split only: its validation split stays unseen
        from engine.data.splits import stratified_split

        train_idx, _ = stratified_split(y, 0.1, np.random.default_rng(0))
        x, y = x[train_idx], y[train_idx]
    model: Any = build()
    norms = [lay for lay in model.layers if lay.__class__.__name__ == "BatchNormalization"]
    if bn_momentum is not None:
        for lay in norms:
            lay.momentum = bn_momentum[0]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=2)
    if bn_momentum is not None:
        for lay in norms:
            lay.momentum = bn_momentum[1]
    acc = model.evaluate(x_test, y_test, verbose=0)[1]
    print(
        f"{label}: {epochs} epoch(s) in {time.perf_counter() - t0:.0f} s, test accuracy {acc:.3f}",
        flush=True,
    )
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="ResNet50 epochs")
    parser.add_argument("--mobilenet-epochs", type=int, default=MOBILENET_EPOCHS)
    parser.add_argument("--only", choices=("resnet50", "mobilenet"), default=None)
    args = parser.parse_args(argv)
    print(digits32())
    if args.only != "mobilenet":
        print(resnet50_digits32(args.epochs))
    if args.only != "resnet50":
        print(mobilenet_digits32(args.mobilenet_epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
