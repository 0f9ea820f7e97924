"""``DataSplits`` (train / validation / test, shaped and scaled for one model) and the rules
shared by every dataset source: scaling (``resolve_scale``, ``apply_scale``) and the stratified
split (``stratified_split``).

The sources live beside it: ``engine.data.datasets`` (demo, ``.npz``, ``load_data``) and
``engine.data.image_folders`` (folders of images); both import this module, never each other's
internals. Streaming image pixels is ``engine.data.pixels`` (no import back).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.errors import DataError
from engine.core.outputs import BINARY_KINDS
from engine.models.inputs import (  # noqa: F401 (the data layer's callers use them here)
    INPUT_KINDS,
    ModelInput,
    input_kind,
    model_input_of,
)

DEFAULT_VAL_FRACTION = 0.1
DEFAULT_CALIBRATION_SAMPLES = 300
SCALE_RULES = ("auto", "1/255", "-1..1", "none")
SPLITS = ("train", "val", "test")
# Output kinds of a one-unit binary model (``engine.models.loading.output_kind``): labels 0 / 1.
BINARY_OUTPUT_KINDS = BINARY_KINDS
# The split seed when nothing says otherwise (``featherweight compress`` without a project,
# a new project's dataset). Never the recipe's seed: the split belongs to the dataset.
DEFAULT_SPLIT_SEED = 0


@dataclass(frozen=True)
class SplitSpec:
    """How a dataset is split: the seed and the validation fraction (of the training data).

    Part of the dataset reference (a project's ``dataset.seed`` / ``dataset.val_fraction``),
    never of a recipe: every run of one project sees the same train / validation / test files.
    """

    seed: int = DEFAULT_SPLIT_SEED
    val_fraction: float = DEFAULT_VAL_FRACTION

    @classmethod
    def of(cls, value: Any = None) -> SplitSpec:
        """From None (defaults), a SplitSpec, ``(seed, val_fraction)`` (either may be None for
        its default) or ``{"seed", "val_fraction"}``. Raises DataError for bad values."""
        if isinstance(value, SplitSpec):
            return value
        if value is None:
            seed, vf = None, None
        elif isinstance(value, dict):
            seed, vf = value.get("seed"), value.get("val_fraction")
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            seed, vf = value
        else:
            raise DataError(f"a split is (seed, validation fraction), got {value!r}")
        seed = DEFAULT_SPLIT_SEED if seed is None else seed
        vf = DEFAULT_VAL_FRACTION if vf is None else vf
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataError(f"the split seed must be a non-negative integer, got {seed!r}")
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0.0 < vf < 0.9:
            raise DataError(f"validation fraction must be between 0 and 0.9, got {vf!r}")
        return cls(int(seed), float(vf))

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "val_fraction": self.val_fraction}


def _as_model_input(model_input: ModelInput | None, model_has_rescaling: bool) -> ModelInput:
    if model_input is not None:
        return model_input
    return ModelInput("Rescaling") if model_has_rescaling else ModelInput()


def is_binary_model(num_classes: int | None, output_kind: str | None) -> bool:
    """A one-unit binary model: ``output_kind`` binary, or a single output (``num_classes=1``)."""
    return num_classes == 1 or output_kind in BINARY_OUTPUT_KINDS


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
    test_fraction: float | None = None  # None: the test split was given, not carved here
    split_rule: str = ""  # how train / val / test were made, in words
    notes: list[str] = field(default_factory=list)  # things the user should know
    scale_reason: str = ""  # why ``scale`` was chosen (auto rule or the user's choice)
    input_kind: str = "images"  # one of INPUT_KINDS
    x_dtype: str = "float32"  # "int32" for token ids (never rescaled, never made float)
    binary: bool = False  # the model has one output unit (sigmoid or logit), labels 0/1

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
        """A batched ``tf.data.Dataset`` of (x, y int64) for ``split``; x is ``x_dtype``
        (float32, or int32 token ids).

        With ``shuffle_seed`` the whole split is shuffled, differently each epoch but the
        same sequence for the same seed.
        """
        from engine.core.tfenv import tf

        _check_split(split)
        t = tf()
        if self.kind == "arrays":
            x, y = self.arrays(split)
            ds = t.data.Dataset.from_tensor_slices((x, y))
            if shuffle_seed is not None:
                ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
            return ds.batch(batch_size).prefetch(2)
        from engine.data.pixels import image_dataset

        return image_dataset(self, split, batch_size, shuffle_seed)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """In-memory arrays for array datasets (raises for streamed image folders)."""
        _check_split(split)
        if self.kind != "arrays":
            raise ValueError("arrays() is only available for in-memory datasets")
        x = getattr(self, f"x_{split}")
        y = getattr(self, f"y_{split}")
        return x, y

    def batches(self, split: str, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate (x, y) NumPy batches of a split in a fixed order (for LiteRT evaluation)."""
        if self.kind == "arrays":
            x, y = self.arrays(split)
            for i in range(0, len(y), batch_size):
                yield x[i : i + batch_size], y[i : i + batch_size]
            return
        yield from self.dataset(split, batch_size).as_numpy_iterator()

    def calibration(self, n: int = DEFAULT_CALIBRATION_SAMPLES) -> Iterator[np.ndarray]:
        """The first ``min(n, n_train)`` training samples (their order is already shuffled by
        the split seed), one at a time with a batch dimension, in ``x_dtype`` (float32; int32
        token ids stay int32: calibration feeds the real ids)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DataError(f"calibration needs a positive number of samples, got {n!r}")
        seen = 0
        for xb, _ in self.batches("train", batch_size=min(int(n), 256)):
            for i in range(len(xb)):
                if seen >= n:
                    return
                yield xb[i : i + 1].astype(self.x_dtype)
                seen += 1

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: sizes, scaling rule, split rule with its seed and fractions."""
        return {
            "source": self.source,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "scale": self.scale,
            "scale_rule": SCALE_DESCRIPTIONS[self.scale],
            "scale_reason": self.scale_reason,
            "input_kind": self.input_kind,
            "x_dtype": self.x_dtype,
            "binary": self.binary,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "split_rule": self.split_rule,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "class_names": self.class_names,
            "notes": list(self.notes),
        }


SCALE_DESCRIPTIONS = {
    "1/255": "x / 255 (0..255 pixels -> 0..1)",
    "-1..1": "x / 127.5 - 1 (0..255 pixels -> -1..1)",
    "none": "unchanged (data already scaled, or the model rescales)",
}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")


def _auto(dtype: np.dtype, model_input: ModelInput, x_max: float | None) -> tuple[str, str]:
    """(rule, reason) of the ``auto`` scaling: the model's first layer first, then the data."""
    first = model_input.first_layer
    if model_input.tokens:
        return "none", (
            "auto: the model starts with an Embedding layer, so its inputs are token ids: "
            "passed as int32, never rescaled"
        )
    if first == "Rescaling":
        return "none", (
            "auto: the model starts with a Rescaling layer, so pixels are passed unscaled"
        )
    if first == "Normalization":
        return "none", (
            "auto: the model starts with a Normalization layer, which scales its raw inputs "
            "itself, so they are passed unscaled"
        )
    if np.issubdtype(dtype, np.integer):
        if x_max is not None and x_max > 255:
            return "none", (
                f"auto: integer values up to {x_max:g} are not 0..255 pixels, so they are "
                "passed unscaled"
            )
        return "1/255", "auto: integer pixels (0..255) are scaled by 1/255"
    return "none", "auto: floating-point data is taken as already scaled"


def resolve_scale(
    scale: str | None,
    dtype: np.dtype,
    model_has_rescaling: bool = False,
    *,
    model_input: ModelInput | None = None,
    x_max: float | None = None,
) -> str:
    """The scaling rule to apply: explicit, or ``auto``, decided by the model's first layer
    (``Embedding``: token ids, ``Rescaling`` / ``Normalization``: the model scales; all
    unscaled), then by the data (integer 0..255 pixels: 1/255; integers above 255 and
    floats: unscaled). ``model_has_rescaling`` is the older spelling of a Rescaling first
    layer. Raises DataError for an unknown rule or any rescaling of token ids."""
    rule = scale or "auto"
    if rule not in SCALE_RULES:
        raise DataError(f"unknown scaling rule {rule!r}; use one of {', '.join(SCALE_RULES)}")
    mi = _as_model_input(model_input, model_has_rescaling)
    if mi.tokens and rule not in ("auto", "none"):
        raise DataError(
            f"the model starts with an Embedding layer: its inputs are token ids, which are "
            f"never rescaled (scaling {rule!r} given; use 'auto' or 'none')"
        )
    if rule != "auto":
        return rule
    return _auto(np.dtype(dtype), mi, x_max)[0]


def scale_reason(
    scale: str | None,
    dtype: np.dtype,
    model_has_rescaling: bool = False,
    *,
    model_input: ModelInput | None = None,
    x_max: float | None = None,
) -> str:
    """Why ``resolve_scale`` picks its rule, in words (for ``describe()``)."""
    if (scale or "auto") != "auto":
        return "chosen explicitly"
    return _auto(np.dtype(dtype), _as_model_input(model_input, model_has_rescaling), x_max)[1]


def apply_scale(x: np.ndarray, rule: str, dtype: str = "float32") -> np.ndarray:
    """``x`` as ``dtype`` scaled by ``rule`` (one of ``1/255``, ``-1..1``, ``none``).

    ``dtype="int32"`` (token ids) takes only ``none`` and integral values."""
    if dtype == "int32":
        if rule != "none":
            raise DataError(f"token ids are never rescaled (rule {rule!r})")
        return np.asarray(x).astype(np.int32)
    x = x.astype(np.float32)
    if rule == "1/255":
        return x / 255.0
    if rule == "-1..1":
        return x / 127.5 - 1.0
    return x


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator, keep_order: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, taken)``: ``fraction`` of each class taken at random by ``rng``.

    A class with at least 3 samples gives at least one and keeps at least one. ``taken`` is
    in index order; ``rest`` is shuffled by ``rng`` unless ``keep_order``.
    """
    taken: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * fraction))
        if len(idx) >= 3:
            k = min(max(k, 1), len(idx) - 1)
        taken.append(idx[:k])
        rest.append(idx[k:])
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    rest_idx = np.concatenate(rest) if rest else np.zeros(0, np.int64)
    if taken_idx.size == 0 and rest_idx.size >= 2:  # only tiny classes: take one sample
        pick = int(rng.integers(rest_idx.size))
        taken_idx = rest_idx[pick : pick + 1]
        rest_idx = np.delete(rest_idx, pick)
    rest_idx = np.sort(rest_idx) if keep_order else rng.permutation(rest_idx)
    return rest_idx.astype(np.int64), taken_idx.astype(np.int64)
