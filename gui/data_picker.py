"""The dataset chooser: demo / .npz file / image folder, the scaling rule, and the engine's
verdict shown inline (green summary or the red validation message)."""

from __future__ import annotations

from collections.abc import Callable

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
    ("auto", "auto (1/255 for integer pixels, unless the model rescales)"),
    ("1/255", "1/255 (0..255 → 0..1)"),
    ("-1..1", "−1..1 (0..255 → −1..1)"),
    ("none", "none (use values as stored)"),
)


class DataPicker(QWidget):
    """Edits a ``DataChoice``; emits ``changed(spec, scale)`` when the user picks something."""

    changed = Signal(str, str)

    def __init__(self, last_folder: Callable[[], str] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._last_folder = last_folder or (lambda: "")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.demo = QRadioButton("Demo digits")
        self.demo.setToolTip("scikit-learn's bundled 8×8 handwritten digits (1,797 images).")
        self.npz = QRadioButton(".npz file")
        self.npz.setToolTip("A NumPy .npz with x_train, y_train, x_test, y_test (integer labels).")
        self.folder = QRadioButton("Image folder")
        self.folder.setToolTip("A folder with one sub-folder of images per class.")
        self._group = QButtonGroup(self)
        for b in (self.demo, self.npz, self.folder):
            self._group.addButton(b)
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.path = QLineEdit()
        self.path.setPlaceholderText("path to an .npz file or an image folder")
        self.browse = QPushButton("Browse…")
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        lay.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Pixel scaling:"))
        self.scale = QComboBox()
        for value, text in SCALES:
            self.scale.addItem(text, value)
        self.scale.setToolTip(
            "How stored pixel values are turned into model inputs. 'auto' divides integer "
            "images by 255 unless the model starts with a Rescaling layer."
        )
        row.addWidget(self.scale, 1)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("dataStatus")
        lay.addWidget(self.status)
        self.demo.setChecked(True)
        self._sync_enabled()
        self.demo.toggled.connect(self._on_kind)
        self.npz.toggled.connect(self._on_kind)
        self.folder.toggled.connect(self._on_kind)
        self.browse.clicked.connect(self._browse)
        self.path.editingFinished.connect(self._emit)
        self.scale.activated.connect(lambda _i: self._emit())
        self._updating = False

    def _sync_enabled(self) -> None:
        on = not self.demo.isChecked()
        self.path.setEnabled(on)
        self.browse.setEnabled(on)

    def _on_kind(self, checked: bool) -> None:
        if not checked or self._updating:
            return
        self._sync_enabled()
        if self.demo.isChecked():
            self._emit()
        elif self.path.text().strip():
            self._emit()
        else:
            self._browse()

    def _browse(self) -> None:
        if self.folder.isChecked():
            path = QFileDialog.getExistingDirectory(self, "Image folder", self._last_folder())
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, "Dataset", self._last_folder(), "NumPy archives (*.npz);;All files (*)"
            )
        if path:
            self.path.setText(path)
            self._emit()

    def _emit(self) -> None:
        if self._updating:
            return
        spec = "demo" if self.demo.isChecked() else self.path.text().strip()
        if not spec:
            return
        self.changed.emit(spec, str(self.scale.currentData()))

    def show_choice(self, data: DataChoice, checking: bool = False) -> None:
        """Reflect ``data`` (and the engine's verdict on it) without emitting ``changed``."""
        self._updating = True
        try:
            {"demo": self.demo, "npz": self.npz, "folder": self.folder}[data.kind].setChecked(True)
            if data.spec != "demo":
                self.path.setText(data.spec)
            i = self.scale.findData(data.scale)
            self.scale.setCurrentIndex(max(0, i))
            self._sync_enabled()
        finally:
            self._updating = False
        if checking:
            self.status.setStyleSheet("color: #555;")
            self.status.setText("Checking the dataset against the model…")
        elif data.error:
            self.status.setStyleSheet("color: #b00020;")
            self.status.setText(f"✗ {data.error}")
        elif data.description:
            d = data.description
            self.status.setStyleSheet("color: #1b5e20;")
            self.status.setText(
                f"✓ {d.get('n_train', '?')} train / {d.get('n_val', '?')} validation / "
                f"{d.get('n_test', '?')} test samples, {d.get('num_classes', '?')} classes, "
                f"scaling {d.get('scale', data.scale)}"
                + (f" — {d['scale_reason']}" if d.get("scale_reason") else "")
                + "".join(f"\n⚠ {n}" for n in d.get("notes") or [])
            )
        else:
            self.status.setStyleSheet("color: #555;")
            self.status.setText("Open a model to check this dataset against it.")
