"""The dataset chooser: demo / .npz file / image folder, the scaling rule, and the engine's
verdict shown inline (green summary or the red validation message).

An ``.npz`` may hold images, token ids (for a model starting with ``Embedding``), sequences
or tabular feature vectors: the verdict says which (the engine's ``input_kind``), with no
image preview for anything but images, and why the scaling rule was chosen.

Each kind has its own picker: *.npz file* opens a file dialog for NumPy archives, *Image
folder* a folder dialog. Choosing a kind opens its picker (starting where that kind's last
path was); cancelling it puts the buttons back on the dataset still in use. A path is only
ever used for the kind it was chosen for, and nothing is emitted unless the choice really
changed (a focus change or the same scaling again re-checks nothing).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from gui.state import DataChoice

SCALES = (
    ("auto", "auto (from the model's first layer, then the data: 1/255 for 0..255 pixels)"),
    ("1/255", "1/255 (0..255 → 0..1)"),
    ("-1..1", "−1..1 (0..255 → −1..1)"),
    ("none", "none (use values as stored)"),
)
KINDS = ("demo", "npz", "folder")
# The engine's ``DataSplits.input_kind`` in the verdict's words.
INPUT_KIND_WORDS = {
    "images": "images",
    "tokens": "token ids, int32",
    "sequences": "sequences",
    "features": "feature vectors",
}
PLACEHOLDERS = {
    "npz": "path to an .npz file (x_train, y_train, x_test, y_test)",
    "folder": "path to an image folder (one sub-folder per class)",
    "": "choose a dataset kind above",
}
NO_DATA_TEXT = (
    "Choose this model's dataset: an .npz file or an image folder (Demo digits only if "
    "the model takes 8×8 grey images)."
)
# What to ask for when the model's input is not images (``set_input_kind``).
NO_DATA_BY_KIND = {
    "tokens": "Choose this model's dataset: an .npz file of integer token ids "
    "(x_train, y_train, x_test, y_test), the ids the model's Embedding was trained on.",
    "features": "Choose this model's dataset: an .npz file of feature vectors "
    "(x_train, y_train, x_test, y_test), raw values as the model was trained on.",
    "sequences": "Choose this model's dataset: an .npz file of sequences "
    "(x_train, y_train, x_test, y_test), one sequence per sample.",
}

# (kind, start folder or file) -> the chosen path, "" when cancelled.
PathChooser = Callable[[str, str], str]


def kind_of(spec: str) -> str:
    """The picker kind of a dataset spec: "demo", "npz" (a file), "folder", or "" (none)."""
    if not spec:
        return ""
    if spec == "demo":
        return "demo"
    p = Path(spec)
    if p.is_dir():
        return "folder"
    if p.is_file() or p.suffix:
        return "npz"
    return "folder"


def verdict_text(d: dict, scale: str = "auto") -> str:
    """The green verdict for an engine ``DataSplits.describe()``: sizes, what a sample is
    (images, token ids, sequences, feature vectors), classes (binary), scaling and why."""
    kind = INPUT_KIND_WORDS.get(str(d.get("input_kind") or ""), "")
    classes = f"{d.get('num_classes', '?')} classes" + (
        " (binary: labels 0 / 1)" if d.get("binary") else ""
    )
    return (
        f"✓ {d.get('n_train', '?')} train / {d.get('n_val', '?')} validation / "
        f"{d.get('n_test', '?')} test samples"
        + (f" ({kind})" if kind else "")
        + f", {classes}, scaling {d.get('scale', scale)}"
        + (f" — {d['scale_reason']}" if d.get("scale_reason") else "")
        + "".join(f"\n⚠ {n}" for n in d.get("notes") or [])
    )


class DataPicker(QWidget):
    """Edits a ``DataChoice``; emits ``changed(spec, scale)`` when the user picks something
    different from what ``show_choice`` last showed.

    ``choose_path(kind, start)`` opens the kind's dialog (tests replace it).
    """

    changed = Signal(str, str)

    def __init__(self, last_folder: Callable[[], str] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._last_folder = last_folder or (lambda: "")
        self.choose_path: PathChooser = self._dialog
        # The last path chosen for each kind (a folder is never offered as an .npz...).
        self._paths: dict[str, str] = {"npz": "", "folder": ""}
        self._shown = DataChoice()  # the choice in use (what show_choice last showed)
        self._input_kind: str | None = None  # the model's (set_input_kind)
        self._updating = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.demo = QRadioButton("Demo digits")
        self.demo.setToolTip("scikit-learn's bundled 8×8 handwritten digits (1,797 images).")
        self.npz = QRadioButton(".npz file")
        self.npz.setToolTip(
            "A NumPy .npz with x_train, y_train, x_test, y_test (integer labels; 0 / 1 for a "
            "one-unit binary model): images, token ids, sequences or tabular features. "
            "Opens a file picker."
        )
        self.folder = QRadioButton("Image folder")
        self.folder.setToolTip(
            "A folder with one sub-folder of images per class. Opens a folder picker."
        )
        self.buttons = {"demo": self.demo, "npz": self.npz, "folder": self.folder}
        self._group = QButtonGroup(self)
        for b in self.buttons.values():
            self._group.addButton(b)
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.path = QLineEdit()
        self.browse = QPushButton("Browse…")
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        lay.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Input scaling:"))
        self.scale = QComboBox()
        for value, text in SCALES:
            self.scale.addItem(text, value)
        self.scale.setToolTip(
            "How stored values are turned into model inputs. 'auto' passes token ids "
            "(Embedding first) and inputs of a model starting with Rescaling or Normalization "
            "unscaled, divides 0..255 integer pixels by 255 and leaves floats as they are."
        )
        row.addWidget(self.scale, 1)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("dataStatus")
        lay.addWidget(self.status)
        # The engine's notes on a dataset that fits (amber: things to check, not a failure).
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setObjectName("dataNotes")
        self.notes.setStyleSheet("color: #b26a00;")
        self.notes.setVisible(False)
        lay.addWidget(self.notes)
        self._set_kind("demo")
        for kind, b in self.buttons.items():
            b.clicked.connect(lambda _c=False, k=kind: self._on_kind_clicked(k))
        self.browse.clicked.connect(self._browse)
        self.path.editingFinished.connect(self._on_path_edited)
        self.scale.activated.connect(lambda _i: self._on_scale())

    # -- state ----------------------------------------------------------------------------
    def kind(self) -> str:
        """The kind the buttons show ("" when none is chosen)."""
        for kind, b in self.buttons.items():
            if b.isChecked():
                return kind
        return ""

    def _set_kind(self, kind: str) -> None:
        """Check ``kind``'s button (none for ""), without emitting."""
        self._group.setExclusive(False)
        for k, b in self.buttons.items():
            b.setChecked(k == kind)
        self._group.setExclusive(True)
        on = kind in ("npz", "folder")
        self.path.setEnabled(on)
        self.browse.setEnabled(on)
        self.browse.setToolTip(
            {"npz": "Choose an .npz file", "folder": "Choose an image folder"}.get(kind, "")
        )
        self.path.setPlaceholderText(PLACEHOLDERS.get(kind, ""))

    def _show_path(self, kind: str) -> None:
        shown = self._shown.spec
        self.path.setText(shown if kind in self._paths and kind_of(shown) == kind else "")

    # -- user actions ---------------------------------------------------------------------
    def _on_kind_clicked(self, kind: str) -> None:
        if self._updating:
            return
        if kind == "demo":
            self._set_kind("demo")
            self.path.setText("")
            self._emit("demo")
            return
        if kind == kind_of(self._shown.spec):
            self._set_kind(kind)  # already in use: nothing to choose again
            self._show_path(kind)
            return
        self._set_kind(kind)
        self.path.setText("")
        if not self._pick(kind):
            self._restore()  # cancelled: back on the dataset still in use

    def _browse(self) -> None:
        kind = self.kind()
        if kind in ("npz", "folder"):
            self._pick(kind)

    def _pick(self, kind: str) -> bool:
        """Open ``kind``'s picker; True when a path was chosen (and emitted)."""
        start = self._paths.get(kind) or self._last_folder()
        path = self.choose_path(kind, start)
        if not path:
            return False
        self.path.setText(path)
        return self._use_path(kind, path)

    def _on_path_edited(self) -> None:
        if self._updating:
            return
        text = self.path.text().strip()
        kind = self.kind()
        if not text or kind not in ("npz", "folder") or text == self._shown.spec:
            return
        self._use_path(kind, text)

    def _use_path(self, kind: str, path: str) -> bool:
        """Emit ``path`` if it fits ``kind`` (a file for .npz, a folder for images)."""
        p = Path(path)
        problem = ""
        if kind == "npz" and p.is_dir():
            problem = f"{p.name} is a folder: choose Image folder for a folder of images."
        elif kind == "folder" and p.is_file():
            problem = f"{p.name} is a file, not a folder: choose .npz file for an .npz archive."
        if problem:
            self._set_status("#b00020", f"✗ {problem}")
            return False
        self._paths[kind] = path
        self._emit(path, force=True)
        return True

    def _on_scale(self) -> None:
        if self._updating or not self._shown.spec:
            return
        if str(self.scale.currentData()) != self._shown.scale:
            self._emit(self._shown.spec)

    def _emit(self, spec: str, force: bool = False) -> None:
        """Emit ``changed`` unless ``spec`` + scaling is the choice in use (``force``: a path
        the user just picked in a dialog, e.g. a file fixed since its check failed)."""
        scale = str(self.scale.currentData())
        if not force and spec == self._shown.spec and scale == self._shown.scale:
            return  # the choice in use: nothing to check again
        self.changed.emit(spec, scale)

    def _restore(self) -> None:
        """Show the choice in use again (after a cancelled picker)."""
        self.show_choice(self._shown)

    def _dialog(self, kind: str, start: str) -> str:
        folder = start if os.path.isdir(start) else os.path.dirname(start)
        if kind == "folder":
            return QFileDialog.getExistingDirectory(self, "Choose an image folder", folder)
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose an .npz dataset",
            start if os.path.isfile(start) else folder,
            "NumPy archives (*.npz);;All files (*)",
        )
        return path

    # -- view -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every chosen path and show a fresh launch's choice (the demo digits)."""
        self._paths = {"npz": "", "folder": ""}
        self.show_choice(DataChoice())

    def set_input_kind(self, kind: str | None) -> None:
        """The open model's input kind (``engine.data.splits.INPUT_KINDS``, None: no model
        or unknown): a model that does not take images is asked for an .npz of its kind."""
        self._input_kind = kind
        not_images = kind in NO_DATA_BY_KIND
        self.folder.setToolTip(
            "A folder with one sub-folder of images per class. Opens a folder picker."
            + (" This model does not take images." if not_images else "")
        )
        if not self._shown.spec and not self._updating:
            self._set_status("#b26a00", self.no_data_text())

    def no_data_text(self) -> str:
        """What the picker asks for when no dataset is chosen (by the model's input kind)."""
        return NO_DATA_BY_KIND.get(self._input_kind or "", NO_DATA_TEXT)

    def _set_status(self, color: str, text: str, notes: list[str] | None = None) -> None:
        self.status.setStyleSheet(f"color: {color};")
        self.status.setText(text)
        self.notes.setText("\n".join(f"⚠ {n}" for n in notes or []))
        self.notes.setVisible(bool(notes))

    def show_choice(self, data: DataChoice, checking: bool = False) -> None:
        """Reflect ``data`` (and the engine's verdict on it) without emitting ``changed``.

        ``data.spec == ""`` means no dataset is chosen (the user must pick one)."""
        self._updating = True
        try:
            self._shown = data
            kind = kind_of(data.spec)
            if kind in self._paths:
                self._paths[kind] = data.spec
            self._set_kind(kind)
            self._show_path(kind)
            i = self.scale.findData(data.scale)
            self.scale.setCurrentIndex(max(0, i))
        finally:
            self._updating = False
        if not data.spec:
            self._set_status("#b26a00", self.no_data_text())
        elif checking:
            self._set_status("#555", "Checking the dataset against the model…")
        elif data.error:
            self._set_status("#b00020", f"✗ {data.error}")
        elif data.description:
            d = data.description
            notes = [str(n) for n in d.get("notes") or []]
            self._set_status("#1b5e20", verdict_text({**d, "notes": []}, data.scale), notes)
        else:
            self._set_status("#555", "Open a model to check this dataset against it.")
