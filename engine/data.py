"""Datasets: the built-in demo, ``.npz`` files and folders of images (one sub-folder per class).

Every dataset is split once, with a recorded seed, into train / validation / test. Fine-tuning
trains on train and watches validation; every accuracy the user sees is measured on test.

``load_data`` returns a ``DataSplits``. Array datasets (demo, npz) are held in memory as
float32 arrays already shaped and scaled for the model; image folders are streamed with
``tf.data`` (files are decoded batch by batch, never all loaded at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError

DEFAULT_VAL_FRACTION = 0.1
DEFAULT_CALIBRATION_SAMPLES = 300
SCALE_RULES = ("auto", "1/255", "-1..1", "none")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class DataSplits:
    """Train / validation / test splits shaped and scaled for one model."""

    source: str
    kind: str  # "arrays" | "images"
    num_classes: int
    input_shape: tuple[int, ...]  # without the batch dimension
    scale: str  # the rule actually applied, e.g. "1/255"
    seed: int
    val_fraction: float
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    files: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # image folders
    class_names: list[str] = field(default_factory=list)

    @property
    def n_train(self) -> int:
        return len(self.y_train) if self.y_train is not None else len(self.files["train"])

    @property
    def n_val(self) -> int:
        return len(self.y_val) if self.y_val is not None else len(self.files["val"])

    @property
    def n_test(self) -> int:
        return len(self.y_test) if self.y_test is not None else len(self.files["test"])

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, -(-self.n_train // batch_size))

    def dataset(self, split: str, batch_size: int, shuffle_seed: int | None = None) -> Any:
        """A batched ``tf.data.Dataset`` of (x float32, y int64) for ``split``."""
        from engine.tfenv import tf

        t = tf()
        if self.kind == "arrays":
            x, y = self.arrays(split)
            ds = t.data.Dataset.from_tensor_slices((x, y))
            if shuffle_seed is not None:
                ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(2)
        from engine import data_images

        return data_images.image_dataset(self, split, batch_size, shuffle_seed)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """In-memory arrays for array datasets (raises for streamed image folders)."""
        if self.kind != "arrays":
            raise ValueError("arrays() is only available for in-memory datasets")
        x = getattr(self, f"x_{split}")
        y = getattr(self, f"y_{split}")
        return x, y

    def batches(self, split: str, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate (x, y) NumPy batches of a split (for LiteRT evaluation)."""
        if self.kind == "arrays":
            x, y = self.arrays(split)
            for i in range(0, len(y), batch_size):
                yield x[i : i + batch_size], y[i : i + batch_size]
            return
        for xb, yb in self.dataset(split, batch_size).as_numpy_iterator():
            yield xb, yb

    def calibration(self, n: int = DEFAULT_CALIBRATION_SAMPLES) -> Iterator[np.ndarray]:
        """Up to ``n`` training samples, one at a time with a batch dimension (for int8)."""
        seen = 0
        for xb, _ in self.batches("train", batch_size=64):
            for i in range(len(xb)):
                if seen >= n:
                    return
                yield xb[i : i + 1].astype(np.float32)
                seen += 1

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "scale": self.scale,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "class_names": self.class_names,
        }


def resolve_scale(scale: str | None, dtype: np.dtype, model_has_rescaling: bool) -> str:
    """The scaling rule to apply: explicit, or ``auto`` (1/255 for integer pixels unless
    the model starts with a Rescaling layer; floats are taken as already scaled)."""
    rule = scale or "auto"
    if rule not in SCALE_RULES:
        raise DataError(f"unknown scaling rule {rule!r}; use one of {', '.join(SCALE_RULES)}")
    if rule != "auto":
        return rule
    if model_has_rescaling:
        return "none"
    return "1/255" if np.issubdtype(dtype, np.integer) else "none"


def apply_scale(x: np.ndarray, rule: str) -> np.ndarray:
    x = x.astype(np.float32)
    if rule == "1/255":
        return x / 255.0
    if rule == "-1..1":
        return x / 127.5 - 1.0
    return x


def _fit_arrays(x: np.ndarray, input_shape: tuple[int, ...], name: str) -> np.ndarray:
    """Shape check with a message that says what is wrong; adds a missing channel axis."""
    want = tuple(input_shape)
    if x.ndim == len(want) and want[-1] == 1 and x.shape[1:] == want[:-1]:
        x = x[..., np.newaxis]  # (N, H, W) given for a (H, W, 1) model
    if tuple(x.shape[1:]) != want:
        raise DataError(
            f"{name} has samples of shape {tuple(x.shape[1:])} but the model expects "
            f"{want}" + (
                f" (channels: data {x.shape[-1]}, model {want[-1]})"
                if x.ndim == len(want) + 1 and x.shape[1:-1] == want[:-1]
                else ""
            )
        )
    return x


def _check_labels(y: np.ndarray, num_classes: int | None, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(
            f"{name} looks one-hot encoded (shape {y.shape}); give integer class labels"
        )
    y = y.reshape(-1)
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise DataError(f"{name} has negative labels (min {y.min()})")
    if num_classes is not None and y.size and y.max() >= num_classes:
        raise DataError(
            f"{name} has label {int(y.max())} but the model has only {num_classes} classes "
            f"(labels must be 0..{num_classes - 1})"
        )
    return y.astype(np.int64)


def _split_val(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(len(y) * fraction)))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def arrays_splits(
    arrays: dict[str, np.ndarray],
    source: str,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    scale: str | None = "auto",
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    model_has_rescaling: bool = False,
) -> DataSplits:
    """Build splits from in-memory ``x_train, y_train, x_test, y_test`` arrays."""
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"{source} is missing {', '.join(missing)} (needs {', '.join(NPZ_KEYS)})"
        )
    x_train = np.asarray(arrays["x_train"])
    x_test = np.asarray(arrays["x_test"])
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.dtype == object or not (
            np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
        ):
            raise DataError(f"{source}: {name} must be numeric, got dtype {x.dtype}")
        if len(x) == 0:
            raise DataError(f"{source}: {name} is empty")
    y_train = _check_labels(arrays["y_train"], num_classes, f"{source}: y_train")
    y_test = _check_labels(arrays["y_test"], num_classes, f"{source}: y_test")
    if len(x_train) != len(y_train):
        raise DataError(f"{source}: x_train has {len(x_train)} samples but y_train {len(y_train)}")
    if len(x_test) != len(y_test):
        raise DataError(f"{source}: x_test has {len(x_test)} samples but y_test {len(y_test)}")
    if not 0.0 < val_fraction < 0.9:
        raise DataError(f"validation fraction must be between 0 and 0.9, got {val_fraction}")
    if len(y_train) < 2:
        raise DataError(f"{source}: need at least 2 training samples")
    rule = resolve_scale(scale, x_train.dtype, model_has_rescaling)
    x_train = apply_scale(_fit_arrays(x_train, input_shape, f"{source}: x_train"), rule)
    x_test = apply_scale(_fit_arrays(x_test, input_shape, f"{source}: x_test"), rule)
    n_classes = num_classes if num_classes is not None else int(max(y_train.max(), y_test.max()) + 1)
    xt, yt, xv, yv = _split_val(x_train, y_train, val_fraction, seed)
    return DataSplits(
        source=source,
        kind="arrays",
        num_classes=n_classes,
        input_shape=tuple(input_shape),
        scale=rule,
        seed=seed,
        val_fraction=val_fraction,
        x_train=xt,
        y_train=yt,
        x_val=xv,
        y_val=yv,
        x_test=x_test,
        y_test=y_test,
        class_names=[str(i) for i in range(n_classes)],
    )


def load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataError(f"dataset not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"dataset file is empty: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as exc:
        raise DataError(f"{path.name} holds Python objects, which are not loaded: {exc}") from None
    except (OSError, EOFError, Exception) as exc:  # zipfile.BadZipFile and friends
        raise DataError(f"{path.name} is not a readable .npz file ({exc})") from None


def load_data(
    spec: str | Path,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    scale: str | None = "auto",
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    model_has_rescaling: bool = False,
) -> DataSplits:
    """Load ``demo``, an ``.npz`` file or an image folder, split and check it against the model.

    ``input_shape`` excludes the batch dimension. Raises DataError with a message that says
    what does not fit.
    """
    kwargs = dict(
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        scale=scale,
        seed=seed,
        val_fraction=val_fraction,
        model_has_rescaling=model_has_rescaling,
    )
    if str(spec) == "demo":
        from engine.demo import digits_arrays

        return arrays_splits(digits_arrays(), "demo", **kwargs)  # type: ignore[arg-type]
    path = Path(spec)
    if path.is_dir():
        from engine import data_images

        return data_images.image_folder_splits(path, **kwargs)  # type: ignore[arg-type]
    if path.suffix.lower() == ".npz" or path.is_file():
        return arrays_splits(load_npz(path), path.name, **kwargs)  # type: ignore[arg-type]
    raise DataError(f"dataset not found: {path} (give 'demo', an .npz file or an image folder)")
