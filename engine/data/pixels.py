"""Image pixels for ``tf.data``: decode, convert channels, resize, scale; the streamed dataset
of an image-folder split (``image_dataset``).

Imports nothing from the rest of ``engine.data`` (it takes the splits object as it is), so
``engine.data.splits`` and ``engine.data.image_folders`` can both use it without a cycle.
Channel and resize rules are documented in ``engine.data.image_folders``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.errors import DataError


def check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise DataError(
            f"an image folder needs a model with image input (height, width, channels); "
            f"this model takes samples of shape {tuple(input_shape)}"
        )
    h, w, c = input_shape
    if h is None or w is None:
        raise DataError(
            f"the model's input size is not fixed ({tuple(input_shape)}); an image folder "
            "needs a fixed height and width to resize to"
        )
    if c not in (1, 3):
        raise DataError(
            f"image folders can feed models with 1 (grayscale) or 3 (RGB) channels; "
            f"this model expects {c}"
        )
    return int(h), int(w), int(c)


def decode(path: Any) -> Any:
    from engine.core.tfenv import tf

    t = tf()
    return t.io.decode_image(
        t.io.read_file(path), channels=0, dtype=t.uint8, expand_animations=False
    )


def prepare(image: Any, height: int, width: int, channels: int, rule: str) -> Any:
    """uint8 image of any channel count -> float32 (height, width, channels), scaled."""
    from engine.core.tfenv import tf

    t = tf()
    n = t.shape(image)[-1]
    rgb = t.cond(n >= 3, lambda: image[..., :3], lambda: t.tile(image[..., :1], [1, 1, 3]))
    if channels == 1:
        x = t.cond(
            n >= 3,
            lambda: t.image.rgb_to_grayscale(t.cast(rgb, t.float32)),
            lambda: t.cast(image[..., :1], t.float32),
        )
    else:
        x = t.cast(rgb, t.float32)
    x = t.image.resize(x, (height, width), method="bilinear", antialias=True)
    x = t.clip_by_value(x, 0.0, 255.0)
    if rule == "1/255":
        x = x / 255.0
    elif rule == "-1..1":
        x = x / 127.5 - 1.0
    return t.ensure_shape(x, (height, width, channels))


def image_dataset(splits: Any, split: str, batch_size: int, shuffle_seed: int | None = None) -> Any:
    """A batched ``tf.data.Dataset`` of (x float32 (B, H, W, C), y int64 (B,)) for ``split``
    of ``splits`` (an image-folder ``engine.data.splits.DataSplits``).

    Only file names are shuffled (whole split, reshuffled each epoch); pixels are decoded in
    parallel per batch.
    """
    from engine.core.tfenv import tf

    t = tf()
    if split not in splits.files:
        raise ValueError(f"unknown split {split!r}; use train, val or test")
    h, w, c = check_input_shape(splits.input_shape)
    items = splits.files[split]
    paths = [p for p, _ in items]
    labels = np.array([label for _, label in items], np.int64)
    ds = t.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(items), seed=shuffle_seed, reshuffle_each_iteration=True)
    rule = splits.scale
    ds = ds.map(
        lambda p, y: (prepare(decode(p), h, w, c, rule), y),
        num_parallel_calls=t.data.AUTOTUNE,
    )
    return ds.batch(batch_size).prefetch(2)
