"""Datasets: demo / .npz / image folders, their splits, scaling and the errors users see."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import BadInputError, DataError
from engine.data.datasets import DEFAULT_CALIBRATION_SAMPLES, load_data

# ----------------------------------------------------------------------------- demo / arrays


def test_demo_split_sizes_and_recorded_split(demo_splits):
    s = demo_splits
    assert s.kind == "arrays"
    assert s.n_test == 360  # fixed 20% of the 1,797 digits
    assert s.n_train + s.n_val == 1797 - 360
    assert 140 <= s.n_val <= 150  # 10% of each class
    assert s.x_train.shape[1:] == (8, 8, 1) and s.x_train.dtype == np.float32
    assert 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0  # uint8 pixels scaled by 1/255
    assert set(np.unique(s.y_val)) == set(range(10))  # stratified: every digit in validation
    d = s.describe()
    assert d["seed"] == 0 and d["val_fraction"] == 0.1 and d["test_fraction"] == 0.2
    assert d["scale"] == "1/255" and "255" in d["scale_rule"]
    assert d["scale_reason"] == "auto: integer pixels (0..255) are scaled by 1/255"
    assert "seed 0" in d["split_rule"]
    assert (d["n_train"], d["n_val"], d["n_test"]) == (s.n_train, s.n_val, s.n_test)


def test_demo_same_seed_same_split_other_seed_other_validation(demo_splits):
    again = load_data("demo", input_shape=(8, 8, 1), num_classes=10, seed=0)
    np.testing.assert_array_equal(again.x_train, demo_splits.x_train)
    np.testing.assert_array_equal(again.y_val, demo_splits.y_val)
    other = load_data("demo", input_shape=(8, 8, 1), num_classes=10, seed=7)
    assert other.describe()["seed"] == 7
    assert not np.array_equal(other.x_val, demo_splits.x_val)
    # The test split is the one the demo model never trained on, whatever the seed.
    np.testing.assert_array_equal(other.x_test, demo_splits.x_test)


def test_calibration_takes_configured_number_of_mixed_training_samples(demo_splits):
    samples = list(demo_splits.calibration())
    assert len(samples) == DEFAULT_CALIBRATION_SAMPLES
    assert samples[0].shape == (1, 8, 8, 1) and samples[0].dtype == np.float32
    assert len(list(demo_splits.calibration(20))) == 20
    # The training order is shuffled by the split seed, so a few samples cover many digits.
    assert len(set(demo_splits.y_train[:30].tolist())) >= 6
    assert len(list(demo_splits.calibration(10_000))) == demo_splits.n_train
    with pytest.raises(DataError, match="positive number"):
        list(demo_splits.calibration(0))


def test_dataset_batches_and_shuffle_is_seeded(demo_splits):
    ds = demo_splits.dataset("train", 64, shuffle_seed=1)
    first = next(iter(ds))[1].numpy()
    again = next(iter(demo_splits.dataset("train", 64, shuffle_seed=1)))[1].numpy()
    np.testing.assert_array_equal(first, again)
    xb, yb = next(demo_splits.batches("test", 100))
    assert xb.shape == (100, 8, 8, 1) and yb.dtype == np.int64
    assert demo_splits.steps_per_epoch(64) == -(-demo_splits.n_train // 64)


def _digits(tmp_path: Path, **override) -> Path:
    from engine.core.demo import digits_arrays

    arrays = digits_arrays()
    arrays.update(override)
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_npz_round_trip_equals_demo(tmp_path, demo_splits):
    s = load_data(_digits(tmp_path), input_shape=(8, 8, 1), num_classes=10, seed=0)
    np.testing.assert_array_equal(s.x_train, demo_splits.x_train)
    np.testing.assert_array_equal(s.y_test, demo_splits.y_test)
    assert s.describe()["source"] == "d.npz" and s.scale == "1/255"


def test_npz_scaling_rules(tmp_path):
    from engine.core.demo import digits_arrays

    a = digits_arrays()
    # (N, 8, 8) gets its channel axis; floats already in 0..1 are left alone by "auto".
    floats = {k: (v[..., 0] / 255.0 if k.startswith("x") else v) for k, v in a.items()}
    np.savez(tmp_path / "f.npz", **floats)
    s = load_data(tmp_path / "f.npz", (8, 8, 1), 10)
    assert s.scale == "none" and s.x_test.shape == (360, 8, 8, 1)
    assert "already scaled" in s.describe()["scale_reason"]
    np.testing.assert_allclose(s.x_test[..., 0], floats["x_test"], rtol=1e-6)
    assert s.describe()["notes"] == []
    # Raw 0..255 floats: still "none" under auto, but the user is told.
    raw = {k: (v.astype(np.float32) if k.startswith("x") else v) for k, v in a.items()}
    np.savez(tmp_path / "r.npz", **raw)
    s = load_data(tmp_path / "r.npz", (8, 8, 1), 10)
    assert s.scale == "none" and "1/255" in s.describe()["notes"][0]
    # The same floats as sequences (8 steps x 8 features) are not pixels: no such note.
    seq = {k: (v[..., 0] if k.startswith("x") else v) for k, v in raw.items()}
    np.savez(tmp_path / "seq.npz", **seq)
    assert load_data(tmp_path / "seq.npz", (8, 8), 10).describe()["notes"] == []
    s = load_data(tmp_path / "r.npz", (8, 8, 1), 10, scale="-1..1")
    assert s.x_train.min() == -1.0 and s.x_train.max() == 1.0
    # A model that rescales itself gets raw pixels.
    s = load_data(tmp_path / "r.npz", (8, 8, 1), 10, model_has_rescaling=True)
    assert s.x_train.max() == 255.0


@pytest.mark.parametrize(
    ("override", "shape", "message"),
    [
        ({"y_train": None}, (8, 8, 1), r"missing y_train"),
        ({"y_train": None, "x_test": None}, (8, 8, 1), r"missing y_train, x_test"),
        ({"y_test": np.full(360, 12)}, (8, 8, 1), r"y_test has label 12 .* only 10 classes"),
        ({"y_test": np.full(360, -1)}, (8, 8, 1), r"y_test has negative labels"),
        ({"y_train": np.eye(10)[np.zeros(1437, int)]}, (8, 8, 1), r"y_train looks one-hot"),
        ({"y_train": np.zeros(100, int)}, (8, 8, 1), r"x_train has 1437 samples but y_train 100"),
        ({"y_train": np.full(1437, 0.5)}, (8, 8, 1), r"y_train must hold integer class labels"),
        (
            {"x_train": np.zeros((1437, 8, 8, 3), np.uint8)},
            (8, 8, 1),
            r"x_train: data has 3 channels, model expects 1",
        ),
        ({}, (8, 8, 3), r"x_train: data has 1 channels, model expects 3"),
        (
            {"x_train": np.zeros((1437, 64), np.uint8)},
            (8, 8, 1),
            r"x_train has 1-D samples of shape \(64,\) but the model expects samples of shape "
            r"\(8, 8, 1\)",
        ),
        ({}, (28, 28, 1), r"x_train has samples of shape \(8, 8, 1\) but .* \(28, 28, 1\)"),
        ({"x_train": np.full((1437, 8, 8, 1), np.nan)}, (8, 8, 1), r"x_train contains NaN"),
        ({"x_train": np.zeros((0, 8, 8, 1))}, (8, 8, 1), r"x_train is empty"),
    ],
)
def test_npz_that_does_not_fit_says_what_is_wrong(tmp_path, override, shape, message):
    from engine.core.demo import digits_arrays

    arrays = digits_arrays()
    for key, value in override.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_data(tmp_path / "bad.npz", input_shape=shape, num_classes=10)
    assert isinstance(info.value, BadInputError) and info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_npz_with_pickled_objects_is_refused_without_unpickling(tmp_path):
    obj = np.empty(2, dtype=object)
    obj[:] = [{"a": 1}, [2]]
    np.savez(tmp_path / "p.npz", x_train=obj, y_train=np.zeros(2), x_test=obj, y_test=np.zeros(2))
    with pytest.raises(DataError, match=r"p.npz holds Python objects"):
        load_data(tmp_path / "p.npz", (8, 8, 1), 10)


def test_unreadable_dataset_files(tmp_path):
    with pytest.raises(DataError, match="dataset not found"):
        load_data(tmp_path / "nope.npz", (8, 8, 1), 10)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DataError, match="dataset file is empty"):
        load_data(tmp_path / "empty.npz", (8, 8, 1), 10)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match="text.npz is not an .npz file"):
        load_data(tmp_path / "text.npz", (8, 8, 1), 10)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="single array"):
        load_data(tmp_path / "one.npy", (8, 8, 1), 10)
    with pytest.raises(DataError, match="unknown scaling rule 'x/2'"):
        load_data("demo", (8, 8, 1), 10, scale="x/2")


# ----------------------------------------------------------------------------- image folders

COLOURS = {"apple": (200, 30, 10), "grape": (90, 20, 160), "lime": (40, 220, 60)}
PER_CLASS = 10
BLACK_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00"
    b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _png(path: Path, rgb: tuple[int, int, int], size=(12, 10), channels=3) -> None:
    import tensorflow as tf

    img = np.empty((*size, 3), np.uint8)
    img[:] = rgb
    if channels == 1:
        img = img[..., :1]
    path.write_bytes(tf.io.encode_png(img).numpy())


def _bmp(path: Path, rgb: tuple[int, int, int], w: int = 6, h: int = 5) -> None:
    """A 24-bit uncompressed BMP (rows bottom-up, BGR, padded to 4 bytes)."""
    row = bytes([rgb[2], rgb[1], rgb[0]]) * w
    row += b"\0" * (-len(row) % 4)
    pixels = row * h
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    path.write_bytes(header + info + pixels)


@pytest.fixture(scope="module")
def fruit_dir(tmp_path_factory) -> Path:
    """3 classes x 10 RGB images, one plain colour per class, mixed formats and sizes."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("fruit")
    for name, rgb in COLOURS.items():
        d = root / name
        d.mkdir()
        for i in range(PER_CLASS - 2):
            _png(d / f"{i:02d}.png", rgb, size=(12 + i, 10))
        _bmp(d / "bitmap.BMP", rgb)
        img = np.empty((9, 9, 3), np.uint8)
        img[:] = rgb
        (d / "photo.jpg").write_bytes(tf.io.encode_jpeg(img, quality=100).numpy())
        (d / "notes.txt").write_text("not an image")
    return root


def _all(splits, split):
    xs, ys = zip(*splits.batches(split, 4), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_image_folder_for_grayscale_8x8_model(fruit_dir):
    s = load_data(fruit_dir, input_shape=(8, 8, 1), num_classes=3, seed=5)
    assert s.kind == "images" and s.class_names == ["apple", "grape", "lime"]
    assert s.x_train is None  # nothing decoded up front: streamed from the files
    assert (s.n_train, s.n_val, s.n_test) == (21, 3, 6)  # per class: 2 test, 1 val, 7 train
    import tensorflow as tf

    assert isinstance(s.dataset("train", 8), tf.data.Dataset)
    x, y = _all(s, "train")
    assert x.shape == (21, 8, 8, 1) and x.dtype == np.float32
    assert sorted(np.bincount(y).tolist()) == [7, 7, 7]
    for label, rgb in enumerate(COLOURS.values()):
        gray = (0.2989 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0
        np.testing.assert_allclose(x[y == label], gray, atol=2.5 / 255)  # jpeg: ±2 levels
    d = s.describe()
    assert d["scale"] == "1/255" and d["seed"] == 5
    assert d["test_fraction"] == 0.2 and d["val_fraction"] == 0.1
    assert "seed 5" in d["split_rule"] and "3 non-image file(s) ignored" in d["notes"]
    assert all(p.endswith(("png", "jpg", "BMP")) for p, _ in s.files["test"])
    assert len(list(s.calibration(4))) == 4


def test_image_folder_for_rgb_model_with_scaling_rules(fruit_dir, tmp_path):
    s = load_data(fruit_dir, input_shape=(16, 16, 3), num_classes=3, scale="-1..1")
    x, y = _all(s, "test")
    assert x.shape == (6, 16, 16, 3)
    for label, rgb in enumerate(COLOURS.values()):
        np.testing.assert_allclose(x[y == label][..., 0], rgb[0] / 127.5 - 1, atol=0.02)
    raw = load_data(fruit_dir, (16, 16, 3), 3, model_has_rescaling=True)
    assert raw.scale == "none" and _all(raw, "val")[0].max() > 150
    assert "Rescaling" in raw.describe()["scale_reason"]
    # A grayscale image is repeated to 3 channels for an RGB model.
    gray_dir = tmp_path / "gray"
    for name in ("a", "b"):
        (gray_dir / name).mkdir(parents=True)
        for i in range(4):
            _png(gray_dir / name / f"{i}.png", (100 + i, 0, 0), channels=1)
    (gray_dir / "a" / "dot.gif").write_bytes(BLACK_GIF)  # a 1x1 GIF is read too
    g = load_data(gray_dir, (8, 8, 3), 2)
    assert g.n_train + g.n_val + g.n_test == 9
    xg = np.concatenate([_all(g, split)[0] for split in ("train", "val", "test")])
    assert np.allclose(xg[..., 0], xg[..., 1]) and np.allclose(xg[..., 0], xg[..., 2])
    assert xg.min() == 0.0  # the black GIF


def test_image_split_is_deterministic_per_seed(fruit_dir):
    a = load_data(fruit_dir, (8, 8, 1), 3, seed=1, scale="none")
    b = load_data(fruit_dir, (8, 8, 1), 3, seed=1, scale="none")
    c = load_data(fruit_dir, (8, 8, 1), 3, seed=2, scale="none")
    assert a.files == b.files
    assert a.files["test"] != c.files["test"]
    every = sorted(p for split in a.files.values() for p, _ in split)
    assert len(every) == len(set(every)) == 3 * PER_CLASS  # no file in two splits


def test_image_folder_with_given_train_and_test(tmp_path):
    for split, n in (("train", 5), ("test", 2)):
        for name, rgb in COLOURS.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(n):
                _png(tmp_path / split / name / f"{i}.png", rgb)
    s = load_data(tmp_path, (8, 8, 3), 3, seed=0)
    assert s.n_test == 6 and s.n_train + s.n_val == 15 and s.n_val == 3
    assert s.describe()["test_fraction"] is None and "as given" in s.split_rule
    (tmp_path / "val" / "apple").mkdir(parents=True)
    with pytest.raises(DataError, match=r"val must have the same class folders .*missing grape"):
        load_data(tmp_path, (8, 8, 3), 3)


def _class_folder(root: Path, classes=("a", "b", "c"), n=3) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _png(root / name / f"{i}.png", (10, 20, 30))
    return root


def test_image_folder_that_does_not_fit_says_what_is_wrong(tmp_path):
    root = _class_folder(tmp_path / "ok")
    with pytest.raises(DataError, match=r"has 3 class folders \(a, b, c\) but the model has 10"):
        load_data(root, (8, 8, 1), 10)
    with pytest.raises(DataError, match=r"image input .* samples of shape \(64,\)"):
        load_data(root, (64,), 3)
    with pytest.raises(DataError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels; .* 4"):
        load_data(root, (8, 8, 4), 3)

    empty = _class_folder(tmp_path / "empty")
    (empty / "d").mkdir()
    (empty / "d" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"class folder .*[/\\]d has no images"):
        load_data(empty, (8, 8, 1), 4)

    nothing = tmp_path / "nothing"
    for name in ("a", "b"):
        (nothing / name).mkdir(parents=True)
    with pytest.raises(DataError, match=r"no images found in .*nothing \(looked for png"):
        load_data(nothing, (8, 8, 1), 2)

    flat = tmp_path / "flat"
    flat.mkdir()
    _png(flat / "x.png", (1, 2, 3))
    with pytest.raises(DataError, match="has no class sub-folders"):
        load_data(flat, (8, 8, 1), 1)


def test_corrupt_image_is_named(tmp_path):
    root = _class_folder(tmp_path / "c")
    good = (root / "b" / "1.png").read_bytes()
    (root / "b" / "broken.png").write_bytes(good[: len(good) // 2])
    (root / "c" / "fake.jpg").write_text("this is text")
    with pytest.raises(DataError, match=r"cannot read image .*b[/\\]broken\.png.*fake\.jpg"):
        load_data(root, (8, 8, 1), 3)


# ------------------------------------------------- input kinds: token ids, tabular features, binary


def _token_arrays(n: int = 120, length: int = 12, vocab: int = 1000, seed: int = 0) -> dict:
    """Integer token ids (int64, up to ``vocab - 1``) with two classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = np.where(
        y[:, None] == 1,
        rng.integers(vocab // 2, vocab, size=(n, length)),
        rng.integers(0, vocab // 2, size=(n, length)),
    ).astype(np.int64)
    x[0, 0] = vocab - 1  # the largest id is used
    return {"x_train": x[:90], "y_train": y[:90], "x_test": x[90:], "y_test": y[90:]}


def test_token_ids_stay_int32_and_are_never_rescaled(tmp_path):
    from engine.data.splits import ModelInput

    arrays = _token_arrays()
    np.savez(tmp_path / "tokens.npz", **arrays)
    mi = ModelInput("Embedding", vocab_size=1000)
    s = load_data(tmp_path / "tokens.npz", (12,), 2, model_input=mi)
    assert s.x_train.dtype == np.int32 and s.x_test.dtype == np.int32
    np.testing.assert_array_equal(s.x_test, arrays["x_test"])  # the real ids, unscaled
    assert max(s.x_train.max(), s.x_val.max()) == 999
    d = s.describe()
    assert (d["scale"], d["input_kind"], d["x_dtype"]) == ("none", "tokens", "int32")
    assert "Embedding" in d["scale_reason"] and "token ids" in d["scale_reason"]
    assert d["notes"] == []
    # Calibration feeds the real ids, as int32.
    cal = list(s.calibration(5))
    assert len(cal) == 5 and all(c.dtype == np.int32 and c.shape == (1, 12) for c in cal)
    np.testing.assert_array_equal(np.concatenate(cal), s.x_train[:5])
    # tf.data gives int32 ids too.
    xb, _ = next(iter(s.dataset("train", 8)))
    assert xb.dtype.name == "int32"
    # "none" is allowed; any rescaling of token ids is refused.
    none = load_data(tmp_path / "tokens.npz", (12,), 2, scale="none", model_input=mi)
    assert none.scale == "none" and none.x_train.dtype == np.int32
    with pytest.raises(DataError, match="token ids, which are never rescaled"):
        load_data(tmp_path / "tokens.npz", (12,), 2, scale="1/255", model_input=mi)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x + 1, "token id 1000 but the model's Embedding has 1000 rows"),
        (lambda x: x - 500, "negative token id"),
        (lambda x: x.astype(np.float32) + 0.5, "non-integer values"),
    ],
)
def test_token_ids_that_do_not_fit_the_embedding_are_named(change, message):
    from engine.data.datasets import arrays_splits
    from engine.data.splits import ModelInput

    arrays = _token_arrays()
    arrays["x_train"] = change(arrays["x_train"])
    with pytest.raises(DataError, match=message):
        arrays_splits(arrays, "t.npz", (12,), 2, model_input=ModelInput("Embedding", 1000))


def test_integral_float_token_ids_become_int32():
    from engine.data.datasets import arrays_splits
    from engine.data.splits import ModelInput

    arrays = _token_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    s = arrays_splits(arrays, "t.npz", (12,), 2, model_input=ModelInput("Embedding", 1000))
    assert s.x_train.dtype == np.int32 and max(s.x_train.max(), s.x_val.max()) == 999


def test_auto_never_divides_integers_above_255_even_without_the_model():
    """The issue's text classifier: 'auto' divided token ids by 255 when only the data's
    dtype was looked at."""
    from engine.data.datasets import arrays_splits

    s = arrays_splits(_token_arrays(), "t.npz", (12,), 2)
    assert s.scale == "none" and max(s.x_train.max(), s.x_val.max()) == 999.0
    assert s.describe()["scale_reason"] == (
        "auto: integer values up to 999 are not 0..255 pixels, so they are passed unscaled"
    )
    assert s.input_kind == "features"


def test_normalization_first_layer_gets_raw_tabular_features():
    from engine.data.datasets import arrays_splits
    from engine.data.splits import ModelInput

    rng = np.random.default_rng(1)
    ranges = np.array([0.1, 3.0, 80.0, 1700.0], np.float32)
    x = rng.uniform(0, 1, size=(100, 4)).astype(np.float32) * ranges
    y = (x[:, 3] > 850).astype(np.int64)
    arrays = {"x_train": x[:80], "y_train": y[:80], "x_test": x[80:], "y_test": y[80:]}
    s = arrays_splits(arrays, "tab.npz", (4,), 2, model_input=ModelInput("Normalization"))
    d = s.describe()
    assert d["scale"] == "none" and "Normalization" in d["scale_reason"]
    assert d["notes"] == []  # no "are these raw pixels?" note: the model normalizes
    assert (d["input_kind"], d["x_dtype"]) == ("features", "float32")
    np.testing.assert_allclose(s.x_test, x[80:])
    # Without the model's first layer: still features, not pixels, so no pixel note either.
    plain = arrays_splits(arrays, "tab.npz", (4,), 2)
    assert plain.scale == "none" and plain.describe()["notes"] == []


def test_model_input_reads_the_first_layers_of_real_models():
    from engine.core.tfenv import keras2
    from engine.data.splits import model_input_of

    k = keras2()
    inp = k.Input((10,), dtype="int32")
    emb = k.Model(inp, k.layers.Dense(1)(k.layers.Flatten()(k.layers.Embedding(500, 4)(inp))))
    mi = model_input_of(emb)
    assert (mi.first_layer, mi.vocab_size, mi.tokens) == ("Embedding", 500, True)
    norm = k.Sequential([k.Input((4,)), k.layers.Normalization(), k.layers.Dense(2)])
    assert model_input_of(norm).first_layer == "Normalization" and model_input_of(norm).rescales
    img = k.Sequential(
        [
            k.Input((8, 8, 3)),
            k.layers.RandomFlip("horizontal"),
            k.layers.Rescaling(1 / 255),
            k.layers.Flatten(),
            k.layers.Dense(2),
        ]
    )
    assert model_input_of(img).first_layer == "Rescaling"  # augmentation looked past
    dense = k.Sequential([k.Input((4,)), k.layers.Dense(2)])
    mi = model_input_of(dense)
    assert (mi.first_layer, mi.tokens, mi.rescales) == ("Dense", False, False)


def test_binary_model_takes_labels_0_and_1(tmp_path):
    from engine.data.datasets import arrays_splits

    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    arrays = {"x_train": x[:50], "y_train": y[:50], "x_test": x[50:], "y_test": y[50:, None]}
    s = arrays_splits(arrays, "b.npz", (5,), 1)  # one output unit
    d = s.describe()
    assert d["binary"] is True and d["num_classes"] == 2 and s.class_names == ["0", "1"]
    assert set(np.unique(s.y_train)) == {0, 1}
    arrays["y_test"] = np.r_[2, y[51:]]
    with pytest.raises(DataError, match="one output unit \\(binary\\): labels must be 0 or 1"):
        arrays_splits(arrays, "b.npz", (5,), 1)
    # The loaded model's output kind says binary whatever num_classes is (2 for one unit).
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        arrays_splits(arrays, "b.npz", (5,), 2, output_kind="binary_sigmoid")
    arrays["y_test"] = y[50:]
    s = arrays_splits(arrays, "b.npz", (5,), 2, output_kind="binary_logit")
    assert s.binary and s.num_classes == 2
    # A two-class softmax model is not binary.
    assert arrays_splits(arrays, "b.npz", (5,), 2, output_kind="softmax").binary is False


def test_binary_model_takes_an_image_folder_with_two_classes(tmp_path):
    root = _class_folder(tmp_path / "two", classes=("cat", "dog"), n=4)
    s = load_data(root, (8, 8, 3), 1)
    assert s.binary and s.num_classes == 2 and s.class_names == ["cat", "dog"]
    assert s.input_kind == "images" and s.describe()["x_dtype"] == "float32"
    assert load_data(root, (8, 8, 3), 2, output_kind="binary_sigmoid").binary
    three = _class_folder(tmp_path / "three", n=4)
    with pytest.raises(DataError, match="3 class folders .* but the model has 2 classes"):
        load_data(three, (8, 8, 3), 1)
