"""Image-folder datasets: one sub-folder per class, streamed with ``tf.data``.

Layout (class names sorted alphabetically give labels ``0..N-1``)::

    DATA/cat/*.png, DATA/dog/*.jpg, ...            -> split into train / val / test here
    DATA/train/<class>/..., DATA/test/<class>/...   -> the given splits are used as they are
      (+ optional DATA/val/ or DATA/validation/)    (val is carved from train if absent)

Images (``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.gif``; sub-folders of a class folder are
searched too; other files are ignored and counted) are listed once; pixels are decoded per
batch by ``tf.data`` and never all held in memory. Each image is

- converted to the model's channel count: grayscale is repeated to RGB, RGB goes to
  grayscale with ``tf.image.rgb_to_grayscale`` (ITU-R 601 weights), an alpha channel is
  dropped (not composited); GIFs give their first frame;
- resized to the model's input H×W (bilinear, antialiased; aspect ratio not kept);
- scaled by the rule in ``DataSplits.scale``: ``auto`` means ``1/255`` (0..1) unless the
  model starts with a ``Rescaling`` layer (then ``none``: raw 0..255); or ``1/255``,
  ``-1..1`` (``x / 127.5 - 1``) or ``none`` when asked.

Split rule without train/ and test/ folders: per class (stratified), in sorted file order
shuffled by ``seed``, ``TEST_FRACTION`` (0.2) of the files go to test and ``val_fraction`` of
the rest to validation; classes with at least 3 images get at least one test and one
validation image. The fractions and the seed are recorded in ``DataSplits.describe()``.

Symbolic links are followed only while they stay inside the dataset folder: a linked class
folder or image file that resolves outside it is refused (DataError), so a dataset never reads
files from elsewhere; links to folders inside a class folder are not walked.

Every file is decoded once when the dataset is loaded (streamed, in parallel) so that a
corrupt or unreadable image is reported by name before any training starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import DataError
from engine.data.pixels import check_input_shape, decode
from engine.data.pixels import image_dataset as image_dataset  # re-exported
from engine.data.splits import (
    DEFAULT_VAL_FRACTION,
    DataSplits,
    ModelInput,
    is_binary_model,
    resolve_scale,
    scale_reason,
    stratified_split,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TEST_FRACTION = 0.2
SPLIT_FOLDERS = ("train", "val", "validation", "test")
MAX_NAMED_BAD_FILES = 3


def _check_inside(p: Path, root: Path) -> None:
    """DataError unless ``p`` (after following every symbolic link) lies inside ``root``
    (the dataset folder, resolved): a dataset never reads files from elsewhere."""
    target = p.resolve()
    if not target.is_relative_to(root):
        raise DataError(
            f"{p} is a symbolic link to {target}, outside the dataset folder {root}: "
            "image folders never follow links out of the folder (copy the images in)"
        )


def _list_images(folder: Path, root: Path) -> tuple[list[Path], int]:
    """Image files under ``folder`` (recursive, sorted, hidden files skipped) and the number
    of other files ignored.

    Symbolic links: a linked image file is used only if it resolves inside ``root`` (else
    DataError); links to folders inside a class folder are not walked; dangling links and
    other files (never read) are skipped."""
    images: list[Path] = []
    ignored = 0
    for p in sorted(folder.rglob("*")):  # does not descend into linked folders
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            if p.is_symlink():  # its folders are real or checked links (_class_dirs)
                _check_inside(p, root)
            images.append(p)
        else:
            ignored += 1
    return images, ignored


def _class_dirs(folder: Path, root: Path | None = None) -> list[Path]:
    """Sub-folders of ``folder`` (hidden ones skipped); each must stay inside ``root``."""
    dirs = []
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.is_dir():
            continue
        if root is not None and p.is_symlink():
            _check_inside(p, root)
        dirs.append(p)
    return sorted(dirs, key=lambda p: p.name)


def _scan_classes(
    folder: Path,
    num_classes: int | None,
    class_names: list[str] | None = None,
    root: Path | None = None,
) -> tuple[list[str], list[list[Path]], int]:
    """Class names, image files per class and ignored-file count for one class-folder root
    (inside the dataset folder ``root``, the resolved folder the user chose)."""
    root = root if root is not None else folder.resolve()
    dirs = _class_dirs(folder, root)
    if not dirs:
        raise DataError(
            f"{folder} has no class sub-folders: put the images of each class in their own "
            f"folder (e.g. {folder.name}/cat/, {folder.name}/dog/)"
        )
    names = [d.name for d in dirs]
    if class_names is not None and names != class_names:
        missing = sorted(set(class_names) - set(names))
        extra = sorted(set(names) - set(class_names))
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"extra {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise DataError(f"{folder} must have the same class folders as train/ ({detail})")
    if num_classes is not None and len(names) != num_classes:
        raise DataError(
            f"{folder} has {len(names)} class folders ({_short_list(names)}) but the model "
            f"has {num_classes} classes"
        )
    files: list[list[Path]] = []
    ignored = 0
    for d in dirs:
        imgs, n_ignored = _list_images(d, root)
        ignored += n_ignored
        files.append(imgs)
    kinds = ", ".join(s[1:] for s in IMAGE_SUFFIXES)
    empty = [d for d, imgs in zip(dirs, files) if not imgs]
    if len(empty) == len(dirs):
        raise DataError(f"no images found in {folder} (looked for {kinds} in its class folders)")
    if empty:
        raise DataError(
            f"class folder {empty[0]} has no images ({kinds})"
            + (f"; {len(empty) - 1} other class folder(s) are empty too" if len(empty) > 1 else "")
        )
    return names, files, ignored


def _short_list(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _labelled(files: list[list[Path]]) -> tuple[list[str], np.ndarray]:
    paths = [str(p) for per_class in files for p in per_class]
    labels = np.array([c for c, per_class in enumerate(files) for _ in per_class], np.int64)
    return paths, labels


def image_folder_splits(
    path: Path,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    scale: str | None = "auto",
    seed: int = 0,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    model_has_rescaling: bool = False,
    test_fraction: float = TEST_FRACTION,
    verify: bool = True,
    model_input: ModelInput | None = None,
    output_kind: str | None = None,
) -> DataSplits:
    """List, label and split an image folder for a model with input ``(H, W, C)``.

    ``num_classes=1`` or a binary ``output_kind`` is a one-unit binary model: two class
    folders, labels 0 / 1.

    Raises DataError when the folder does not fit the model (class count, channels, input
    rank), a class folder is empty, no images are found or (with ``verify``) an image
    cannot be decoded — naming the folder or file.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"image folder not found: {path}")
    check_input_shape(tuple(input_shape))
    if not 0.0 < val_fraction < 0.9:
        raise DataError(f"validation fraction must be between 0 and 0.9, got {val_fraction}")
    if not 0.0 < test_fraction < 0.9:
        raise DataError(f"test fraction must be between 0 and 0.9, got {test_fraction}")
    scale_args: dict[str, Any] = {
        "model_has_rescaling": model_has_rescaling,
        "model_input": model_input,
    }
    rule = resolve_scale(scale, np.dtype(np.uint8), **scale_args)
    binary = is_binary_model(num_classes, output_kind)  # two class folders, labels 0 / 1
    if binary:
        num_classes = 2
    rng = np.random.default_rng(seed)
    root = path.resolve()  # the folder the user chose; nothing outside it is read
    subdirs = {d.name.lower(): d for d in _class_dirs(path, root)}
    notes: list[str] = []

    if "train" in subdirs and "test" in subdirs:
        others = sorted(set(subdirs) - set(SPLIT_FOLDERS))
        if others:
            raise DataError(
                f"{path} has train/ and test/ but also {', '.join(others)}/: put class "
                "folders inside train/ and test/ only"
            )
        names, train_files, ignored = _scan_classes(subdirs["train"], num_classes, root=root)
        _, test_files, n_ign = _scan_classes(subdirs["test"], num_classes, names, root)
        ignored += n_ign
        x_test, y_test = _labelled(test_files)
        val_dir = subdirs.get("val") or subdirs.get("validation")
        x_all, y_all = _labelled(train_files)
        if val_dir is not None:
            _, val_files, n_ign = _scan_classes(val_dir, num_classes, names, root)
            ignored += n_ign
            x_val, y_val = _labelled(val_files)
            order = rng.permutation(len(y_all))
            x_train, y_train = [x_all[i] for i in order], y_all[order]
            split_rule = f"folders: train/, {val_dir.name}/, test/ as given"
            val_fraction = round(len(y_val) / (len(y_val) + len(y_train)), 4)
            test_fraction_used: float | None = None
        else:
            train_idx, val_idx = stratified_split(y_all, val_fraction, rng)
            x_train, y_train = [x_all[i] for i in train_idx], y_all[train_idx]
            x_val, y_val = [x_all[i] for i in val_idx], y_all[val_idx]
            split_rule = (
                f"folders: train/ and test/ as given; validation = {val_fraction:g} of "
                f"train per class, seed {seed}"
            )
            test_fraction_used = None
    else:
        names, class_files, ignored = _scan_classes(path, num_classes, root=root)
        x_all, y_all = _labelled(class_files)
        rest_idx, test_idx = stratified_split(y_all, test_fraction, rng, keep_order=True)
        x_rest, y_rest = [x_all[i] for i in rest_idx], y_all[rest_idx]
        x_test, y_test = [x_all[i] for i in test_idx], y_all[test_idx]
        train_idx, val_idx = stratified_split(y_rest, val_fraction, rng)
        x_train, y_train = [x_rest[i] for i in train_idx], y_rest[train_idx]
        x_val, y_val = [x_rest[i] for i in val_idx], y_rest[val_idx]
        split_rule = (
            f"random per class, seed {seed}: test = {test_fraction:g} of each class, "
            f"validation = {val_fraction:g} of the rest"
        )
        test_fraction_used = test_fraction

    for split, ys in (("training", y_train), ("validation", y_val), ("test", y_test)):
        if len(ys) == 0:
            raise DataError(
                f"{path} has too few images to make a {split} split "
                f"({len(y_train) + len(y_val) + len(y_test)} images in {len(names)} classes)"
            )
    if ignored:
        notes.append(f"{ignored} non-image file(s) ignored")
    files = {
        "train": list(zip(x_train, y_train.tolist(), strict=True)),
        "val": list(zip(x_val, y_val.tolist(), strict=True)),
        "test": list(zip(x_test, y_test.tolist(), strict=True)),
    }
    if verify:
        _verify_decodable([p for split in files.values() for p, _ in split])
    return DataSplits(
        source=str(path),
        kind="images",
        num_classes=num_classes if num_classes is not None else len(names),
        input_shape=tuple(input_shape),
        scale=rule,
        seed=seed,
        val_fraction=val_fraction,
        files=files,
        class_names=names,
        test_fraction=test_fraction_used,
        split_rule=split_rule,
        notes=notes,
        scale_reason=scale_reason(scale, np.dtype(np.uint8), **scale_args),
        input_kind="images",
        binary=binary,
    )


def _verify_decodable(paths: list[str]) -> None:
    """Decode every file once (streamed, parallel); DataError naming the files that fail."""
    from engine.core.tfenv import tf

    t = tf()
    ds = t.data.Dataset.from_tensor_slices((np.arange(len(paths), dtype=np.int64), paths))
    ds = ds.map(
        lambda i, p: (i, t.reduce_prod(t.shape(decode(p))[:2])),
        num_parallel_calls=t.data.AUTOTUNE,
        deterministic=False,
    ).ignore_errors()
    ok = np.zeros(len(paths), bool)
    for idx, n_pixels in ds.as_numpy_iterator():
        ok[idx] = n_pixels > 0
    bad = sorted(paths[i] for i in np.flatnonzero(~ok))
    if bad:
        more = (
            f" and {len(bad) - MAX_NAMED_BAD_FILES} more" if len(bad) > MAX_NAMED_BAD_FILES else ""
        )
        raise DataError(
            f"cannot read image {', '.join(bad[:MAX_NAMED_BAD_FILES])}{more} "
            "(corrupt, empty or not an image)"
        )
