"""Datasets: the built-in demo, ``.npz`` files and folders of images (one sub-folder per class).

Every dataset is split once, with a recorded seed, into train / validation / test. Fine-tuning
trains on train and watches validation; every accuracy the user sees is measured on test.

``load_data`` returns a ``DataSplits``. Array datasets (demo, npz) are held in memory as
float32 arrays already shaped and scaled for the model; image folders are streamed with
``tf.data`` (files are decoded batch by batch, never all loaded at once; see
``engine.data.image_folders`` for their layout, channel conversion and split rule).

Sources
- ``demo``: scikit-learn's digits as uint8 0..255 images (N, 8, 8, 1). Its test split is
  fixed (stratified 20%, seed ``engine.core.demo.DEMO_SEED``) whatever ``seed`` is given, because
  the shipped demo model was trained on the rest: a different test split would contain
  images the model has seen.
- ``.npz``: keys ``x_train, y_train, x_test, y_test`` (loaded with ``allow_pickle=False``:
  object arrays are refused). Labels are integer class indices ``0..num_classes-1`` of shape
  (N,) or (N, 1); one-hot labels are refused. ``x`` must already have the model's sample
  shape; the only fix-up made is adding a missing channel axis for a 1-channel model
  ((N, H, W) -> (N, H, W, 1)). Channels are never converted: RGB data for a grayscale model
  is an error.

Validation split: ``val_fraction`` of the training data, per class (stratified), chosen by
``seed``; the remaining training order is shuffled by the same seed (so the first training
samples, used for int8 calibration, mix the classes).

Scaling rule (``scale``), recorded in ``DataSplits.scale`` and ``describe()`` with its reason:
- ``auto`` (default) looks at the model's first layer (``engine.data.splits.model_input_of``),
  then at the data: a model starting with ``Embedding`` takes token ids (kept int32, never
  rescaled); one starting with ``Rescaling`` or ``Normalization`` scales its raw input itself
  (``none``); otherwise integer pixels (0..255) are scaled by ``1/255``, integers above 255
  are not pixels (``none``) and floating-point data is taken as already scaled (``none``).
- ``1/255``: ``x / 255``; ``-1..1``: ``x / 127.5 - 1``; ``none``: unchanged. Token ids take
  only ``auto`` / ``none``.

Token ids (model starting with ``Embedding``): integral values in ``0..input_dim-1``, held as
int32 in every split and in calibration. Binary models (one output unit, ``num_classes=1``):
labels 0 / 1, the splits say ``binary`` and have 2 classes; ``output_kind`` "binary_sigmoid" /
"binary_logit" says the same whatever ``num_classes`` is given.

Calibration for full-integer quantization uses the first ``n`` training samples
(``DataSplits.calibration(n)``, default ``DEFAULT_CALIBRATION_SAMPLES`` = 300).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import DataError
from engine.data.splits import (  # noqa: F401 - re-exported: the data package's public API
    DEFAULT_CALIBRATION_SAMPLES,
    DEFAULT_SPLIT_SEED,
    DEFAULT_VAL_FRACTION,
    SCALE_DESCRIPTIONS,
    SCALE_RULES,
    SPLITS,
    DataSplits,
    ModelInput,
    SplitSpec,
    apply_scale,
    input_kind,
    is_binary_model,
    model_input_of,
    resolve_scale,
    scale_reason,
    stratified_split,
)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _fmt_shape(shape: tuple[Any, ...]) -> str:
    return (
        "("
        + ", ".join("?" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _fit_arrays(x: np.ndarray, input_shape: tuple[int, ...], name: str) -> np.ndarray:
    """Check ``x`` (N, ...) against the model's sample shape (``None`` = any size) with a
    message that says what is wrong; adds a missing channel axis for a 1-channel model."""
    want = tuple(input_shape)

    def fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == len(want) and all(w is None or w == s for s, w in zip(shape, want))

    got = tuple(x.shape[1:])
    if len(want) >= 2 and want[-1] == 1 and fits(got + (1,)):
        x = x[..., np.newaxis]  # (N, H, W) given for a (H, W, 1) model
        got = tuple(x.shape[1:])
    if fits(got):
        return x
    expect = f"the model expects samples of shape {_fmt_shape(want)}"
    if len(want) >= 2 and len(got) == len(want) and fits(got[:-1] + (want[-1],)):
        raise DataError(
            f"{name}: data has {got[-1]} channels, model expects {want[-1]} "
            f"(samples {_fmt_shape(got)}, {expect}); convert the data, it is not done silently"
        )
    if len(want) >= 2 and len(got) == len(want) - 1 and fits(got + (want[-1],)):
        raise DataError(
            f"{name}: data has no channel axis (samples {_fmt_shape(got)}, one channel) but "
            f"{expect} ({want[-1]} channels)"
        )
    if len(got) != len(want):
        raise DataError(
            f"{name} has {len(got)}-D samples of shape {_fmt_shape(got)} but {expect} "
            f"({len(want)}-D)"
        )
    raise DataError(f"{name} has samples of shape {_fmt_shape(got)} but {expect}")


def _check_labels(y: np.ndarray, num_classes: int | None, name: str) -> np.ndarray:
    """Integer class labels of shape (N,); ``num_classes=1`` is a binary (one-unit) model,
    whose labels are 0 / 1."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        raise DataError(
            f"{name} looks one-hot encoded (shape {y.shape}); give integer class labels "
            "(e.g. y.argmax(axis=1))"
        )
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        raise DataError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    y = y.reshape(-1)
    if not np.issubdtype(y.dtype, np.integer):
        if (
            np.issubdtype(y.dtype, np.floating)
            and np.all(np.isfinite(y))
            and np.all(np.mod(y, 1) == 0)
        ):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.size and y.min() < 0:
        raise DataError(f"{name} has negative labels (min {y.min()})")
    if num_classes == 1 and y.size and y.max() > 1:
        raise DataError(
            f"{name} has label {int(y.max())} but the model has one output unit (binary): "
            "labels must be 0 or 1"
        )
    if num_classes is not None and num_classes > 1 and y.size and y.max() >= num_classes:
        raise DataError(
            f"{name} has label {int(y.max())} but the model has only {num_classes} classes "
            f"(labels must be 0..{num_classes - 1})"
        )
    return y.astype(np.int64)


def _check_tokens(x: np.ndarray, vocab_size: int | None, name: str) -> None:
    """Token ids must be integral, non-negative and inside the Embedding's vocabulary."""
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.mod(x, 1) == 0):
        raise DataError(
            f"{name} holds non-integer values but the model starts with an Embedding layer "
            "(it takes integer token ids)"
        )
    if x.size and float(x.min()) < 0:
        raise DataError(f"{name} has a negative token id ({x.min():g})")
    if vocab_size is not None and x.size and float(x.max()) >= vocab_size:
        raise DataError(
            f"{name} has token id {x.max():g} but the model's Embedding has {vocab_size} rows "
            f"(ids must be 0..{vocab_size - 1})"
        )
    if x.size and float(x.max()) > np.iinfo(np.int32).max:
        raise DataError(f"{name} has token ids beyond int32 ({x.max():g})")


def arrays_splits(
    arrays: dict[str, np.ndarray],
    source: str,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    scale: str | None = "auto",
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    model_has_rescaling: bool = False,
    model_input: ModelInput | None = None,
    output_kind: str | None = None,
) -> DataSplits:
    """Build splits from in-memory ``x_train, y_train, x_test, y_test`` arrays.

    ``model_input`` (``engine.data.splits.model_input_of(model)``) is the model's first layer,
    which decides ``auto`` scaling and token ids; ``num_classes=1`` or a binary
    ``output_kind`` is a one-unit binary model (labels 0 / 1).
    Raises DataError naming what does not fit: missing keys, non-numeric or non-finite x,
    label problems, x/y length mismatch, sample shape or channel count vs the model, token
    ids that are not integers of the Embedding's vocabulary.
    """
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"{source} is missing {', '.join(missing)} (needs {', '.join(NPZ_KEYS)}; "
            f"found {', '.join(sorted(arrays)) or 'nothing'})"
        )
    if not 0.0 < val_fraction < 0.9:
        raise DataError(f"validation fraction must be between 0 and 0.9, got {val_fraction}")
    x_train = np.asarray(arrays["x_train"])
    x_test = np.asarray(arrays["x_test"])
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.dtype == object or not (
            np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
        ):
            raise DataError(f"{source}: {name} must be numeric, got dtype {x.dtype}")
        if x.ndim < 2:
            raise DataError(
                f"{source}: {name} must be an array of samples (N, ...), got shape {x.shape}"
            )
        if len(x) == 0:
            raise DataError(f"{source}: {name} is empty")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            raise DataError(f"{source}: {name} contains NaN or infinite values")
    binary = is_binary_model(num_classes, output_kind)
    label_classes = 1 if binary else num_classes
    y_train = _check_labels(arrays["y_train"], label_classes, f"{source}: y_train")
    y_test = _check_labels(arrays["y_test"], label_classes, f"{source}: y_test")
    if len(x_train) != len(y_train):
        raise DataError(f"{source}: x_train has {len(x_train)} samples but y_train {len(y_train)}")
    if len(x_test) != len(y_test):
        raise DataError(f"{source}: x_test has {len(x_test)} samples but y_test {len(y_test)}")
    if len(y_train) < 2:
        raise DataError(f"{source}: need at least 2 training samples, got {len(y_train)}")
    x_train = _fit_arrays(x_train, input_shape, f"{source}: x_train")
    x_test = _fit_arrays(x_test, input_shape, f"{source}: x_test")
    if model_input is None and model_has_rescaling:
        model_input = ModelInput("Rescaling")
    mi = model_input or ModelInput()
    x_dtype = "float32"
    if mi.tokens:
        for name, x in (("x_train", x_train), ("x_test", x_test)):
            _check_tokens(x, mi.vocab_size, f"{source}: {name}")
        x_dtype = "int32"
    top = float(np.max(x_train)) if x_train.size else 0.0
    scale_args = {"model_input": mi, "x_max": top}
    rule = resolve_scale(scale, x_train.dtype, **scale_args)  # type: ignore[arg-type]
    notes: list[str] = []
    if (
        (scale or "auto") == "auto"
        and rule == "none"
        and not mi.rescales
        and not mi.tokens
        and np.issubdtype(x_train.dtype, np.floating)
        and input_kind(tuple(input_shape), mi) == "images"
    ):
        if 1.5 < top <= 255.0 and float(np.min(x_train)) >= 0.0:  # could be raw pixels
            notes.append(
                f"x_train is floating point with values up to {top:g}; 'auto' leaves floats "
                "unscaled. If these are raw 0..255 pixels, choose the scale '1/255'."
            )
    n_classes = (
        2
        if binary
        else num_classes
        if num_classes is not None
        else int(max(y_train.max(), y_test.max()) + 1)
    )
    train_idx, val_idx = stratified_split(y_train, val_fraction, np.random.default_rng(seed))
    return DataSplits(
        source=source,
        kind="arrays",
        num_classes=n_classes,
        input_shape=tuple(input_shape),
        scale=rule,
        seed=seed,
        val_fraction=val_fraction,
        x_train=apply_scale(x_train[train_idx], rule, x_dtype),
        y_train=y_train[train_idx],
        x_val=apply_scale(x_train[val_idx], rule, x_dtype),
        y_val=y_train[val_idx],
        x_test=apply_scale(x_test, rule, x_dtype),
        y_test=y_test,
        class_names=[str(i) for i in range(n_classes)],
        split_rule=(
            f"test: x_test/y_test as given; validation: {val_fraction:g} of each class of "
            f"x_train, seed {seed}"
        ),
        notes=notes,
        scale_reason=scale_reason(scale, x_train.dtype, **scale_args),  # type: ignore[arg-type]
        input_kind=input_kind(tuple(input_shape), mi),
        x_dtype=x_dtype,
        binary=binary,
    )


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (``allow_pickle=False``); DataError if unreadable."""
    if not path.exists():
        raise DataError(f"dataset not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"dataset file is empty: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise DataError(f"{path.name} is not an .npz file (no zip archive inside)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            raise DataError(
                f"{path.name} holds a single array, not an .npz archive with {', '.join(NPZ_KEYS)}"
            )
        with loaded as f:
            return {k: f[k] for k in f.files}
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{path.name} holds Python objects (pickled object arrays), which are not "
                "loaded for safety; save plain numeric arrays"
            ) from None
        raise DataError(f"{path.name} is not a readable .npz file ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError and friends
        raise DataError(f"{path.name} is not a readable .npz file ({exc})") from None


def load_data(
    spec: str | Path,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    scale: str | None = "auto",
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    model_has_rescaling: bool = False,
    model_input: ModelInput | None = None,
    output_kind: str | None = None,
) -> DataSplits:
    """Load ``demo``, an ``.npz`` file or an image folder, split and check it against the model.

    ``input_shape`` excludes the batch dimension; ``num_classes=1`` or a binary
    ``output_kind`` is a one-unit binary model (labels 0 / 1); ``model_input``
    (``model_input_of(loaded.model)``) is the model's first layer, which the ``auto``
    scaling and token ids follow. Raises DataError with a message that says what does not
    fit.
    """
    kwargs = dict(
        input_shape=tuple(input_shape),
        num_classes=num_classes,
        scale=scale,
        seed=seed,
        val_fraction=val_fraction,
        model_has_rescaling=model_has_rescaling,
        model_input=model_input,
        output_kind=output_kind,
    )
    if str(spec) == "demo":
        from engine.core.demo import DEMO_SEED, DEMO_TEST_FRACTION, digits_arrays

        splits = arrays_splits(digits_arrays(), "demo", **kwargs)  # type: ignore[arg-type]
        splits.test_fraction = DEMO_TEST_FRACTION
        splits.split_rule = (
            f"test: fixed {DEMO_TEST_FRACTION:g} of each digit (seed {DEMO_SEED}, the split the "
            f"demo model was trained without); validation: {val_fraction:g} of each class of "
            f"the rest, seed {seed}"
        )
        return splits
    path = Path(spec)
    if path.is_dir():
        from engine.data.image_folders import image_folder_splits

        return image_folder_splits(path, **kwargs)  # type: ignore[arg-type]
    if path.suffix.lower() == ".npz" or path.is_file():
        return arrays_splits(load_npz(path), path.name, **kwargs)  # type: ignore[arg-type]
    raise DataError(f"dataset not found: {path} (give 'demo', an .npz file or an image folder)")
