"""Editor of a recipe knob of kind "map" (``prune.per_layer``, ``cluster.per_layer``,
``prune_filters.per_layer``): one value per layer, in a two-column table (layer, value).

- The rows are the open model's layers (``set_layer_names``; the Compress tab passes the layers
  that have weights) plus any name the value holds that the model does not have (marked red;
  the recipe may be for another model; the engine names them when the run starts).
- An empty cell means "the allocation rule applies" (uniform / sensitivity / ERK); a table
  with no value at all is ``None`` (the knob is unset).
- Values are numbers within the knob's range; whole numbers when the knob's ``value_kind`` is
  "int" (cluster counts). A cell that is not a number is shown red and handed to the recipe
  validator as typed, so the wizard's message names the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

BAD = QColor("#b00020")
ROW_HEIGHT = 22
MAX_TABLE_HEIGHT = 200  # more rows scroll
UNKNOWN_TIP = "Not a layer of the model open now (kept: the recipe may be for another model)."


def parse_map_text(text: str) -> dict[str, str]:
    """ "conv1=0.5, dense: 0.9" -> {"conv1": "0.5", "dense": "0.9"} (values as typed)."""
    out: dict[str, str] = {}
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        sep = "=" if "=" in part else ":"
        name, _s, value = part.partition(sep)
        if name.strip():
            out[name.strip()] = value.strip()
    return out


class PerLayerEdit(QWidget):
    """The "map" knob editor (see the module docstring). ``changed`` follows every edit."""

    changed = Signal()

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        integer: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.minimum, self.maximum, self.integer = minimum, maximum, integer
        self._names: list[str] = []
        self._values: dict[str, str] = {}  # name -> text as typed (what the table shows)
        self._filling = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(("Layer", "Value"))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(1, 80)
        self.table.setMinimumHeight(80)
        self.table.setMaximumHeight(MAX_TABLE_HEIGHT)
        self.table.itemChanged.connect(self._on_item)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.state = QLabel("")
        self.state.setStyleSheet("color: #666;")
        self.state.setWordWrap(True)
        row.addWidget(self.state, 1)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Empty every cell: the allocation rule applies to all layers.")
        self.clear_button.clicked.connect(lambda: self.set_value(None))
        row.addWidget(self.clear_button)
        lay.addLayout(row)
        self._fill()

    # -- value ----------------------------------------------------------------------------
    def value(self) -> dict[str, Any] | None:
        """{layer: number} of the filled cells (a cell that is not a number keeps its text,
        for the validator to name); None when no cell is filled."""
        out: dict[str, Any] = {}
        for name, text in self._values.items():
            if not text.strip():
                continue
            number = self._number(text)
            out[name] = text.strip() if number is None else number
        return out or None

    def set_value(self, value: Any) -> None:
        """Show ``value``: None, a {layer: number} dict or a "name=value, …" string."""
        if isinstance(value, str):
            values = parse_map_text(value)
        elif isinstance(value, dict):
            values = {str(k): _text(v) for k, v in value.items()}
        else:
            values = {}
        self._values = values
        self._fill()
        self.changed.emit()

    def set_layer_names(self, names: Sequence[str]) -> None:
        """The open model's layers that the knob can set (the table's rows)."""
        self._names = [str(n) for n in names]
        self._fill()

    def layer_names(self) -> list[str]:
        return list(self._names)

    def unknown_names(self) -> list[str]:
        """Names with a value that the open model does not have ([] without a model)."""
        if not self._names:
            return []
        return [n for n, t in self._values.items() if t.strip() and n not in self._names]

    def rows(self) -> list[str]:
        """The layer names in table order."""
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def set_cell(self, name: str, text: str) -> None:
        """Type ``text`` into the value cell of ``name`` (as a user would)."""
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).text() == name:
                self.table.item(r, 1).setText(text)
                return
        raise KeyError(name)

    # -- internals ------------------------------------------------------------------------
    def _number(self, text: str) -> float | int | None:
        try:
            v = float(text)
        except ValueError:
            return None
        if v != v:
            return None
        if self.integer and v == int(v):
            return int(v)
        return v

    def _bad(self, text: str) -> str:
        """Why ``text`` is not an acceptable value ("" when it is)."""
        if not text.strip():
            return ""
        v = self._number(text)
        if v is None:
            return "not a number"
        if self.integer and not isinstance(v, int):
            return "must be a whole number"
        if self.minimum is not None and v < self.minimum:
            return f"below the minimum {self.minimum:g}"
        if self.maximum is not None and v > self.maximum:
            return f"above the maximum {self.maximum:g}"
        return ""

    def _fill(self) -> None:
        names = list(self._names) + [n for n in self._values if n not in self._names]
        self._filling = True
        try:
            self.table.setRowCount(len(names))
            for r, name in enumerate(names):
                item = QTableWidgetItem(name)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if self._names and name not in self._names:
                    item.setForeground(QBrush(BAD))
                    item.setToolTip(UNKNOWN_TIP)
                self.table.setItem(r, 0, item)
                cell = QTableWidgetItem(self._values.get(name, ""))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, 1, cell)
                self._mark(cell)
        finally:
            self._filling = False
        self._fit_height()
        self._sync()

    def _fit_height(self) -> None:
        """As tall as the rows (no empty space below them), at most MAX_TABLE_HEIGHT."""
        header = self.table.horizontalHeader().sizeHint().height()
        rows = max(2, self.table.rowCount()) * ROW_HEIGHT
        height = min(MAX_TABLE_HEIGHT, header + rows + 2 * self.table.frameWidth() + 2)
        self.table.setFixedHeight(max(80, height))

    def _mark(self, cell: QTableWidgetItem) -> None:
        why = self._bad(cell.text())
        cell.setForeground(QBrush(BAD) if why else QBrush())
        cell.setToolTip(
            why or ("Empty: the allocation rule applies." if not cell.text().strip() else "")
        )

    def _on_item(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != 1:
            return
        name = self.table.item(item.row(), 0).text()
        text = item.text().strip()
        if text:
            self._values[name] = text
        else:
            self._values.pop(name, None)
        self._filling = True
        try:
            self._mark(item)
        finally:
            self._filling = False
        self._sync()
        self.changed.emit()

    def _sync(self) -> None:
        filled = [n for n, t in self._values.items() if t.strip()]
        if not filled:
            text = "Empty: the allocation rule sets every layer."
        else:
            n = len(filled)
            text = f"{n} layer{'s' if n != 1 else ''} set; the rest follow the allocation rule."
        unknown = self.unknown_names()
        if unknown:
            text += f" Not in the open model: {', '.join(unknown)}."
        self.state.setText(text)
        self.clear_button.setEnabled(bool(filled))


def _text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "" if v is None else str(v)
