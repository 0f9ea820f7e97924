"""The built-in demo: scikit-learn's bundled 8x8 digits and a small CNN trained on them.

The shipped model ``resources/demo/demo_model.keras`` is produced by
``resources/demo/train_demo.py`` (deterministic: fixed seeds, single-threaded ops).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMO_SEED = 0
DEMO_TEST_FRACTION = 0.2


def resources_dir() -> Path:
    """``resources/`` in a source tree, a PyInstaller bundle or a wheel install (where the
    wheel's data files put it under ``<prefix>/share/featherweight/resources``)."""
    import sys

    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    if RESOURCES.is_dir():
        return RESOURCES
    return _installed_resources()


@cache
def _installed_resources() -> Path:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        for f in distribution("featherweight").files or []:
            if f.as_posix().endswith("share/featherweight/resources/tflm_ops.json"):
                return Path(str(f.locate())).resolve().parent
    except PackageNotFoundError:
        pass
    return RESOURCES


def demo_model_path() -> Path:
    return resources_dir() / "demo" / "demo_model.keras"


def digits_arrays(seed: int = DEMO_SEED) -> dict[str, np.ndarray]:
    """Digits as uint8 images (N, 8, 8, 1) in 0..255 and int64 labels, split train/test.

    The split is stratified and fixed by ``seed``; the test split is 20% (360 images).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values are 0..16; store them as 0..255 bytes like ordinary images.
    x = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DEMO_TEST_FRACTION, random_state=seed, stratify=y
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def build_demo_model(width: float = 1.0) -> Any:
    """The demo CNN (Keras 2): ~151k parameters at width 1.0, softmax output."""
    from engine.core.tfenv import keras2

    k = keras2()
    w = lambda n: max(1, int(round(n * width)))  # noqa: E731
    return k.Sequential(
        [
            k.layers.InputLayer(input_shape=(8, 8, 1), name="image"),
            k.layers.Conv2D(w(32), 3, padding="same", activation="relu", name="conv1"),
            k.layers.Conv2D(w(64), 3, padding="same", activation="relu", name="conv2"),
            k.layers.MaxPooling2D(2, name="pool"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(w(128), activation="relu", name="dense"),
            k.layers.Dense(10, activation="softmax", name="classifier"),
        ],
        name="digits_cnn",
    )


def write_demo(out_dir: str | Path) -> dict[str, str]:
    """Write ``demo_model.keras`` and ``digits.npz`` into ``out_dir``; return their paths."""
    import shutil

    from engine.core.errors import BadInputError

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        model_dst = out / "demo_model.keras"
        data_dst = out / "digits.npz"
        shutil.copyfile(demo_model_path(), model_dst)
        tmp = out / ".digits.tmp.npz"
        arrays = digits_arrays()
        np.savez_compressed(
            tmp,
            x_train=arrays["x_train"],
            y_train=arrays["y_train"],
            x_test=arrays["x_test"],
            y_test=arrays["y_test"],
        )
        tmp.replace(data_dst)
    except OSError as exc:
        raise BadInputError(f"cannot write the demo to {out}: {exc.strerror or exc}") from None
    return {"model": str(model_dst), "data": str(data_dst)}
