"""Zoo builders: the model families of issue 13, built from code, trained briefly, saved.

No downloads: ``weights=None`` everywhere; data is scikit-learn's bundled digits (upscaled to
32×32×3 for the image families) or generated with a fixed seed (time series, token ids,
tabular features). Every family is saved the way its users save it (Keras 3
``.keras``/``.h5``; tf_keras ``.keras``, ``.h5`` or a SavedModel folder), next to an ``.npz``
in the engine's format (``x_train, y_train, x_test, y_test``; engine.data.datasets).

Two profiles (``build_family(name, profile=...)``), cached apart:

- ``"test"`` (tests/test_zoo.py; must be fast on a clean machine): small families train a few
  epochs. The ``keras.applications`` networks (``big``) are not trained by gradient descent
  (minutes each on 2 cores): their last layer becomes a linear read-out fitted in closed form
  (ridge regression) on the features of the randomly initialized network (BatchNormalization
  at its initial statistics). That lands EfficientNetB0 at 85 % on the 200 test digits in
  seconds (``info.json`` has the number), so its int8 drop still means something. Families
  whose ``test_tier`` is ``"inspect"`` are only built and saved (random weights) for the
  import check; their int8 runs in the benchmark.
- ``"bench"`` (benchmarks/zoo.py): every family trained by gradient descent: big ones from
  scratch for ``bench_epochs`` on the whole digits training split (Adam 1e-3,
  BatchNormalization momentum lowered to 0.9 while training so the moving statistics follow);
  image families are measured on the whole digits test split (360 images).

Public API:

- ``FAMILIES``: name -> ``Family`` (saver, format, builder, data, flags).
- ``build_family(name, root=None, profile="test") -> ZooEntry``: build (or reuse from the
  on-disk cache) one family; returns the model path, the data path and ``info`` (saver,
  format, Keras test accuracy after training, build seconds).
- ``build_zoo(names=None, root=None, profile="test") -> dict[str, ZooEntry]``: the same for
  many families in this process.
- ``cache_root() -> Path``: ``$FEATHERWEIGHT_ZOO_CACHE`` or ``<tempdir>/featherweight-zoo``;
  entries live under a key made of this file's text and the library versions, so a changed
  builder or library never reuses a stale model.

Flags: ``big`` (a ``keras.applications`` network: read-out fitted in the test profile, its
prune + int8 run lives in the benchmark), ``test_tier`` (see above), ``refusal``
(multi-output / custom-layer models the engine must refuse with one line, exit 2),
``output`` (the output kind the engine should detect).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SIDE = 32  # image families: 32×32×3
STEPS = 32  # time-series length
TOKENS = 40  # token sequence length
VOCAB = 500
SEED = 0


@dataclass(frozen=True)
class Family:
    """One zoo family: how it is built, trained and saved."""

    name: str
    saver: str  # "keras3" | "keras2" (tf_keras)
    fmt: str  # "keras" | "h5" | "savedmodel"
    build: Callable[[Any, dict[str, np.ndarray]], Any]
    data: Callable[[], dict[str, np.ndarray]]
    output: str = "softmax"  # softmax | binary_logit | binary_sigmoid | multi
    epochs: int = 1  # test profile (big families: 0, read-out fitted instead)
    train_samples: int | None = None  # None: all of x_train
    bench_epochs: int | None = None  # bench profile; None: as ``epochs``
    bench_data: Callable[[], dict[str, np.ndarray]] | None = None  # None: as ``data``
    big: bool = False
    refusal: bool = False
    # What tests/test_zoo.py runs: "int8" (inspect + float/int8 compress) or "inspect" (the
    # import check only: too slow or not meaningful at test size; int8 in the benchmark).
    test_tier: str = "int8"
    rescales: bool = False  # the model scales 0..255 pixels itself (fed raw pixels)


@dataclass
class ZooEntry:
    family: Family
    model_path: Path
    data_path: Path
    info: dict[str, Any]


# ----------------------------------------------------------------------------- data


def _digits() -> dict[str, np.ndarray]:
    from engine.core.demo import digits_arrays

    return digits_arrays(SEED)


def _upscale(x: np.ndarray) -> np.ndarray:
    f = SIDE // x.shape[1]
    big = np.repeat(np.repeat(x, f, axis=1), f, axis=2)
    return np.repeat(big, 3, axis=3)


def digits32(test: int | None = 200) -> dict[str, np.ndarray]:
    """Digits as uint8 (N, 32, 32, 3) images, 10 classes: the 1,437 training images and the
    first ``test`` of the 360 test images (None: all)."""
    d = _digits()
    return {
        "x_train": _upscale(d["x_train"]),
        "y_train": d["y_train"],
        "x_test": _upscale(d["x_test"][:test]),
        "y_test": d["y_test"][:test],
    }


def digits32_full() -> dict[str, np.ndarray]:
    """``digits32`` with the whole test split (360 images): the benchmark's image data."""
    return digits32(None)


def digits32_binary(test: int | None = 200) -> dict[str, np.ndarray]:
    """Digits at 32×32×3, label 1 for digits 5..9 and 0 for 0..4 (binary, labels 0/1)."""
    d = digits32(test)
    return {**d, "y_train": (d["y_train"] >= 5).astype(np.int64),
            "y_test": (d["y_test"] >= 5).astype(np.int64)}  # fmt: skip


def digits32_binary_full() -> dict[str, np.ndarray]:
    """``digits32_binary`` with the whole test split (360 images)."""
    return digits32_binary(None)


def series() -> dict[str, np.ndarray]:
    """float32 (N, STEPS, 1) noisy sines; the class is the frequency (3 classes)."""
    rng = np.random.default_rng(SEED)
    n = 900
    y = np.arange(n) % 3
    rng.shuffle(y)
    t = np.arange(STEPS, dtype=np.float32)
    freq = np.array([1.0, 2.5, 4.0])[y] * (2 * np.pi / STEPS)
    phase = rng.uniform(0, 2 * np.pi, n)
    x = np.sin(freq[:, None] * t[None, :] + phase[:, None]) + rng.normal(0, 0.3, (n, STEPS))
    x = x.astype(np.float32)[..., None]
    return {"x_train": x[:700], "y_train": y[:700], "x_test": x[700:], "y_test": y[700:]}


def tokens() -> dict[str, np.ndarray]:
    """int32 token ids (N, TOKENS) in 1..VOCAB-1 (0 = padding); label 1 when "positive"
    words (ids 1..49) outnumber "negative" ones (ids 50..99); the rest is filler."""
    rng = np.random.default_rng(SEED)
    n = 900
    y = (np.arange(n) % 2).astype(np.int64)
    rng.shuffle(y)
    x = rng.integers(100, VOCAB, (n, TOKENS))
    for i in range(n):
        k = rng.integers(4, 9)
        pos = rng.choice(TOKENS, k, replace=False)
        x[i, pos] = rng.integers(1, 50, k) if y[i] else rng.integers(50, 100, k)
        x[i, TOKENS - rng.integers(0, 10) :] = 0  # trailing padding
    x = x.astype(np.int32)
    return {"x_train": x[:700], "y_train": y[:700], "x_test": x[700:], "y_test": y[700:]}


TABULAR_SCALES = np.array([0.1, 1.0, 7.0, 30.0, 120.0, 400.0, 900.0, 1700.0], np.float32)


def tabular() -> dict[str, np.ndarray]:
    """float32 (N, 8) raw features of scales 0.1 … 1,700; 3 classes from a linear score."""
    rng = np.random.default_rng(SEED)
    n = 1200
    z = rng.normal(0, 1, (n, TABULAR_SCALES.size)).astype(np.float32)
    # The small-range features matter most: one int8 input scale wipes them out.
    w = np.array([1.5, -1.2, 1.0, -0.8, 0.5, -0.4, 0.3, -0.2])
    score = z @ w
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3])).astype(np.int64)
    # Positive raw features around their scale (0 … 2× scale): wildly different ranges.
    x = (np.clip(z * 0.25 + 1.0, 0.0, None) * TABULAR_SCALES).astype(np.float32)
    return {"x_train": x[:1000], "y_train": y[:1000], "x_test": x[1000:], "y_test": y[1000:]}


# ----------------------------------------------------------------------------- models


def _image_scratch(k: Any, data: dict[str, np.ndarray]) -> Any:
    """keras.io "image classification from scratch" (make_model), narrow widths: augmentation
    layers, Rescaling, SeparableConv2D residual blocks, one logit."""
    layers = k.layers
    inputs = k.Input(shape=(SIDE, SIDE, 3))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.1)(x)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous = x
    for size in (32, 64, 96):
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
        x = layers.add([x, residual])
        previous = x
    x = layers.SeparableConv2D(128, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(1, activation=None)(x)
    return k.Model(inputs, outputs, name="image_scratch")


def _app(fn: str, **kw: Any) -> Callable[[Any, dict[str, np.ndarray]], Any]:
    def build(k: Any, data: dict[str, np.ndarray]) -> Any:
        return getattr(k.applications, fn)(
            weights=None, input_shape=(SIDE, SIDE, 3), classes=10, **kw
        )

    build.__doc__ = f"keras.applications.{fn}(weights=None, 32×32×3, 10 classes, {kw})"
    return build


def _conv1d(k: Any, data: dict[str, np.ndarray]) -> Any:
    layers = k.layers
    return k.Sequential(
        [
            k.Input((STEPS, 1)),
            layers.Conv1D(16, 5, activation="relu", padding="same"),
            layers.MaxPooling1D(2),
            layers.Conv1D(16, 3, activation="relu"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(3, activation="softmax"),
        ],
        name="conv1d_series",
    )


def _recurrent(kind: str) -> Callable[[Any, dict[str, np.ndarray]], Any]:
    def build(k: Any, data: dict[str, np.ndarray]) -> Any:
        layers = k.layers
        if kind == "lstm":
            rnn = layers.LSTM(16)
        elif kind == "gru":
            rnn = layers.GRU(16)
        else:
            rnn = layers.Bidirectional(layers.LSTM(8))
        return k.Sequential(
            [k.Input((STEPS, 1)), rnn, layers.Dense(3, activation="softmax")], name=kind
        )

    return build


def _text_cnn(k: Any, data: dict[str, np.ndarray]) -> Any:
    """Embedding -> Conv1D -> GlobalMaxPooling1D on int token ids (2-class softmax)."""
    layers = k.layers
    inputs = k.Input((TOKENS,), dtype="int32")
    x = layers.Embedding(VOCAB, 16)(inputs)
    x = layers.Conv1D(32, 5, activation="relu", padding="valid")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return k.Model(inputs, outputs, name="text_cnn")


def _embed_gap(k: Any, data: dict[str, np.ndarray]) -> Any:
    """Embedding + GlobalAveragePooling1D, one sigmoid unit (binary)."""
    layers = k.layers
    return k.Sequential(
        [
            k.Input((TOKENS,), dtype="int32"),
            layers.Embedding(VOCAB, 16),
            layers.GlobalAveragePooling1D(),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="embed_gap",
    )


def _tabular(k: Any, data: dict[str, np.ndarray]) -> Any:
    """An adapted Normalization first layer on raw features (0.1 … 1,700), then an MLP."""
    layers = k.layers
    norm = layers.Normalization()
    norm.adapt(data["x_train"])
    return k.Sequential(
        [
            k.Input((TABULAR_SCALES.size,)),
            norm,
            layers.Dense(32, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ],
        name="tabular_mlp",
    )


def _transformer(k: Any, data: dict[str, np.ndarray]) -> Any:
    """keras.io "text classification with Transformer", functional and narrow: token
    embedding, one Transformer block (MultiHeadAttention, Dropout, residual adds,
    LayerNormalization, feed-forward), GlobalAveragePooling1D, 2-class softmax. The keras.io
    position embedding is a custom layer (a separate zoo case), so it is left out here."""
    layers = k.layers
    embed, heads, ff = 16, 2, 16
    inputs = k.Input((TOKENS,), dtype="int32")
    x = layers.Embedding(VOCAB, embed)(inputs)
    attn = layers.MultiHeadAttention(num_heads=heads, key_dim=embed)(x, x)
    attn = layers.Dropout(0.1)(attn)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, attn]))
    f = layers.Dense(ff, activation="relu")(x)
    f = layers.Dense(embed)(f)
    f = layers.Dropout(0.1)(f)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([x, f]))
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return k.Model(inputs, outputs, name="transformer_text")


def _multi_output(k: Any, data: dict[str, np.ndarray]) -> Any:
    """Two heads on the tabular features: a 3-class softmax and a second (auxiliary) head."""
    layers = k.layers
    inputs = k.Input((TABULAR_SCALES.size,))
    x = layers.Dense(16, activation="relu")(inputs)
    a = layers.Dense(3, activation="softmax", name="cls")(x)
    b = layers.Dense(3, activation="softmax", name="aux")(x)
    return k.Model(inputs, [a, b], name="multi_output")


def _custom_layer(k: Any, data: dict[str, np.ndarray]) -> Any:
    """A Keras 3 model with a user-registered custom layer (the engine must refuse it)."""

    @k.saving.register_keras_serializable(package="zoo")
    class ZooScale(k.layers.Layer):
        def __init__(self, factor: float = 0.5, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x: Any) -> Any:
            return x * self.factor

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "factor": self.factor}

    layers = k.layers
    return k.Sequential(
        [
            k.Input((TABULAR_SCALES.size,)),
            ZooScale(1.0 / 1000.0),
            layers.Dense(16, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ],
        name="custom_layer",
    )


def _f(name: str, saver: str, fmt: str, build: Any, data: Any, **kw: Any) -> Family:
    return Family(name=name, saver=saver, fmt=fmt, build=build, data=data, **kw)


# Test profile: small families train a few epochs; big ones (keras.applications) get the
# closed-form read-out (epochs=0) or, with test_tier "inspect", nothing. Bench profile: big
# ones train from scratch ``bench_epochs`` on the whole digits training split (measured on 2
# CPUs: MobileNetV2 82 % after 8 epochs, ~3 s each; EfficientNetB0 87 % after 4, ~12 s each;
# ResNet50 91 % after 2, ~2 min each); every image family is measured on the whole test split.
_BIG = {"big": True, "epochs": 0, "bench_epochs": 4, "bench_data": digits32_full}
# Import check only in the tests (tests/test_zoo.py says why for each; the benchmark runs
# their int8 and prune + int8): ResNet50, DenseNet121 and NASNetMobile cost 50-80 s each
# through compress on 2 cores (the budget is 6 minutes for all its tests); the
# random-feature read-outs of MobileNetV2 (float 35 %) and MobileNetV3Small (69 %) lose to
# chance in int8 (the checked int8 then spends ~50 s in the debugger): no honest int8 subject.
_BIG_INSPECT = {**_BIG, "test_tier": "inspect"}
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        _f("image_scratch", "keras3", "keras", _image_scratch, digits32_binary,
           output="binary_logit", epochs=2, train_samples=768, bench_epochs=4,
           bench_data=digits32_binary_full, rescales=True),
        _f("mobilenet_v2", "keras3", "keras", _app("MobileNetV2", alpha=0.35), digits32,
           **{**_BIG_INSPECT, "bench_epochs": 8}),
        _f("mobilenet_v3_small", "keras3", "keras",
           _app("MobileNetV3Small", alpha=0.75, minimalistic=False), digits32, rescales=True,
           **{**_BIG_INSPECT, "bench_epochs": 8}),
        _f("efficientnet_b0", "keras3", "h5", _app("EfficientNetB0"), digits32, rescales=True,
           **_BIG),
        _f("resnet50", "keras2", "h5", _app("ResNet50"), digits32,
           **{**_BIG_INSPECT, "bench_epochs": 2}),
        _f("densenet121", "keras3", "keras", _app("DenseNet121"), digits32,
           **{**_BIG_INSPECT, "bench_epochs": 2}),
        _f("nasnet_mobile", "keras3", "keras", _app("NASNetMobile"), digits32,
           **{**_BIG_INSPECT, "bench_epochs": 2}),
        _f("conv1d_series", "keras2", "keras", _conv1d, series, epochs=8),
        _f("lstm", "keras3", "keras", _recurrent("lstm"), series, epochs=5,
           bench_epochs=8),
        _f("gru", "keras3", "h5", _recurrent("gru"), series, epochs=5,
           bench_epochs=8),
        _f("bilstm", "keras2", "h5", _recurrent("bilstm"), series, epochs=8),
        _f("text_cnn", "keras3", "keras", _text_cnn, tokens, epochs=4),
        _f("embed_gap", "keras2", "savedmodel", _embed_gap, tokens,
           output="binary_sigmoid", epochs=8),
        _f("tabular_mlp", "keras3", "keras", _tabular, tabular, epochs=10),
        _f("transformer_text", "keras3", "keras", _transformer, tokens, epochs=4),
        _f("multi_output", "keras3", "keras", _multi_output, tabular, output="multi",
           refusal=True),
        _f("custom_layer", "keras3", "keras", _custom_layer, tabular, refusal=True),
    ]
}  # fmt: skip
PROFILES = ("test", "bench")


# ----------------------------------------------------------------------------- cache + build


def _keras(saver: str) -> Any:
    from engine.core.tfenv import keras2, keras3

    return keras3() if saver == "keras3" else keras2()


@functools.cache
def cache_key() -> str:
    """This file's text + the library versions: a changed builder never reuses a model."""
    import importlib.metadata as md

    h = hashlib.sha256(Path(__file__).read_bytes())
    for pkg in ("tensorflow", "keras", "tf_keras", "numpy", "scikit-learn"):
        try:
            h.update(f"{pkg}={md.version(pkg)}".encode())
        except md.PackageNotFoundError:
            pass
    return h.hexdigest()[:16]


def cache_root() -> Path:
    env = os.environ.get("FEATHERWEIGHT_ZOO_CACHE")
    base = Path(env) if env else Path(tempfile.gettempdir()) / "featherweight-zoo"
    return base / cache_key()


def _model_name(fam: Family) -> str:
    return f"{fam.name}_{fam.saver}" + ("" if fam.fmt == "savedmodel" else f".{fam.fmt}")


def _inputs(fam: Family, x: np.ndarray) -> np.ndarray:
    """What users feed: 0..1 floats for uint8 images unless the model rescales itself."""
    if x.dtype != np.uint8:
        return x
    return x.astype(np.float32) / (1.0 if fam.rescales else 255.0)


def _batch_norms(model: Any) -> list[Any]:
    return [lay for lay in model.layers if lay.__class__.__name__ == "BatchNormalization"]


def _fit_readout(k: Any, model: Any, x: np.ndarray, y: np.ndarray, classes: int) -> None:
    """Replace the last kernel layer (Dense, or MobileNetV3's 1×1 Conv2D) by a ridge-regression
    read-out of the features it receives: seconds, where training the network takes minutes."""
    last = [lay for lay in model.layers if getattr(lay, "kernel", None) is not None][-1]
    feats = k.Model(model.inputs, last.input).predict(x, batch_size=64, verbose=0)
    f = np.asarray(feats, np.float64).reshape(len(x), -1)
    # One scale for all features (not one per feature: a near-constant feature would get a
    # huge weight and carry float noise to the output), strong ridge: generalizes.
    mu, sd = f.mean(axis=0), float(f.std()) + 1e-6
    z = (f - mu) / sd
    target = np.eye(classes)[y] - 1.0 / classes
    a = np.linalg.solve(z.T @ z + RIDGE * len(x) * np.eye(z.shape[1]), z.T @ target)
    temp = 4.0 / max(float(np.std(z @ a)), 1e-6)  # logits of a few units: a peaked softmax
    kernel = a / sd * temp
    bias = -(mu / sd) @ a * temp
    weights = last.get_weights()
    last.set_weights([kernel.reshape(weights[0].shape).astype(np.float32), bias.astype(np.float32)])


READOUT_SAMPLES = 768  # training images the read-out is fitted on
RIDGE = 1.0  # × samples: strong enough that the read-out generalizes


def _compile_and_fit(
    k: Any, model: Any, fam: Family, data: dict[str, np.ndarray], profile: str
) -> float:
    x, y = data["x_train"], data["y_train"]
    epochs = fam.epochs if profile == "test" else (fam.bench_epochs or fam.epochs)
    if fam.train_samples and profile == "test":
        x, y = x[: fam.train_samples], y[: fam.train_samples]
    if profile == "test" and fam.test_tier == "inspect":
        return float("nan")  # random weights: only the import check runs on it
    x, x_test = _inputs(fam, x), _inputs(fam, data["x_test"])
    if fam.big and profile == "test":
        # The network's random features and a closed-form read-out: far above chance at once.
        _fit_readout(k, model, x[:READOUT_SAMPLES], y[:READOUT_SAMPLES], int(y.max()) + 1)
    if fam.output == "binary_logit":
        loss: Any = k.losses.BinaryCrossentropy(from_logits=True)
        metric: Any = k.metrics.BinaryAccuracy(threshold=0.0)
    elif fam.output == "binary_sigmoid":
        loss, metric = "binary_crossentropy", "accuracy"
    elif fam.output == "multi":
        loss, metric = ["sparse_categorical_crossentropy"] * 2, None
        y = [y, y]
    else:
        loss, metric = "sparse_categorical_crossentropy", "accuracy"
    if epochs:
        old = [(lay, lay.momentum) for lay in _batch_norms(model)]
        for lay, _ in old:
            # Default 0.99 leaves the moving statistics near their initial values after the
            # few dozen steps the zoo trains: inference would be at chance.
            lay.momentum = 0.8 if profile == "test" else 0.9
        model.compile(
            optimizer=k.optimizers.Adam(1e-3 if fam.big else 3e-3),
            loss=loss,
            metrics=None if metric is None else [metric],
            jit_compile=False,  # Keras 3's "auto" compiles with XLA: minutes on CPU, no gain
        )
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
        for lay, m in old:
            lay.momentum = m
    if fam.output == "multi":
        return float("nan")
    pred = np.asarray(model.predict(x_test, batch_size=64, verbose=0))
    if fam.output == "binary_logit":
        guess = (pred[:, 0] > 0.0).astype(np.int64)
    elif fam.output == "binary_sigmoid":
        guess = (pred[:, 0] > 0.5).astype(np.int64)
    else:
        guess = pred.argmax(axis=-1)
    return float(np.mean(guess == data["y_test"]))


def _save(k: Any, model: Any, fam: Family, path: Path) -> None:
    if fam.fmt == "savedmodel":
        model.save(str(path), save_format="tf")
    else:
        model.save(str(path))


def build_family(name: str, root: Path | None = None, profile: str = "test") -> ZooEntry:
    """Build, train and save one family (or reuse its cached files); see module docstring."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    fam = FAMILIES[name]
    root = root or cache_root()
    folder = root / (name if profile == "test" else f"{name}@{profile}")
    info_file = folder / "info.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        return ZooEntry(fam, folder / info["model_file"], folder / "data.npz", info)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        t0 = time.monotonic()
        k = _keras(fam.saver)
        k.utils.set_random_seed(SEED)
        data = (fam.bench_data or fam.data)() if profile == "bench" else fam.data()
        np.savez(work / "data.npz", **data)
        model = fam.build(k, data)
        acc = _compile_and_fit(k, model, fam, data, profile)
        model_file = _model_name(fam)
        _save(k, model, fam, work / model_file)
        info = {
            "family": name,
            "profile": profile,
            "saver": fam.saver,
            "format": fam.fmt,
            "model_file": model_file,
            "output": fam.output,
            "params": int(model.count_params()),
            "keras_test_accuracy": acc,
            "chance": _chance(data["y_test"]),
            "build_seconds": round(time.monotonic() - t0, 1),
            "big": fam.big,
            "refusal": fam.refusal,
        }
        (work / "info.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ZooEntry(fam, folder / info["model_file"], folder / "data.npz", info)


def _chance(y: np.ndarray) -> float:
    """Accuracy of always answering the most frequent test label."""
    return float(np.bincount(y).max() / len(y))


def build_zoo(
    names: list[str] | None = None, root: Path | None = None, profile: str = "test"
) -> dict[str, ZooEntry]:
    """Build (or reuse) the given families (default: all) in this process."""
    return {n: build_family(n, root, profile) for n in (names or list(FAMILIES))}


if __name__ == "__main__":  # python -m tests.zoo.builders [NAME ...]: build and print
    import sys

    for n, entry in build_zoo(sys.argv[1:] or None).items():
        print(n, entry.model_path, json.dumps(entry.info))
