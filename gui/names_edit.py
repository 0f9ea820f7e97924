"""Editor of a recipe knob of kind "names" (``quantize.keep_float``): a list of layer names.

Three meanings, one widget (``LayerNamesEdit``):

- **automatic** (value ``None``): the field is empty and *Pure int8* unchecked; the engine
  finds the layers to keep in float when int8 loses more than the allowed drop;
- **pure int8** (value ``[]``): *Pure int8* checked (the field is disabled): nothing stays float;
- **these layers** (value ``["norm", "dense_1"]``): the names, comma-separated in the field,
  completed from the loaded model's layer names (``set_layer_names``) as you type after each
  comma, or ticked in the list that *Choose…* opens.

Names the model does not have are kept (the recipe may be for another model) and marked in
the tooltip; the engine names them when the run starts.

Other "names" knobs (``cluster.skip``: layers left unclustered) use the same widget with
``NamesWording`` of their own and no *Pure int8* box: empty is None (no layer listed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

AUTOMATIC_PLACEHOLDER = "automatic"
PURE_TEXT = "Pure int8 (keep nothing float)"


@dataclass(frozen=True)
class NamesWording:
    """What a "names" editor says: field placeholder, state lines, chooser title and note,
    and the *Pure* box text ("" = no such box)."""

    placeholder: str = AUTOMATIC_PLACEHOLDER
    empty: str = "Automatic: the layers responsible for an int8 drop are kept float."
    listed: str = "These layers stay float: "
    pure: str = PURE_TEXT
    pure_state: str = "Pure int8: every layer is converted to int8."
    chooser_title: str = "Layers kept in float"
    chooser_note: str = (
        "Tick the layers that stay float in the int8 model. Nothing ticked: automatic "
        "(Featherweight finds them when int8 loses too much accuracy)."
    )


KEEP_FLOAT = NamesWording()


def skip_wording(what: str) -> NamesWording:
    """Wording of a skip list (``what``: "clustered", "pruned"…): empty = none skipped."""
    return NamesWording(
        placeholder="none",
        empty=f"No layer skipped: every supported layer is {what}.",
        listed=f"These layers are not {what}: ",
        pure="",
        pure_state="",
        chooser_title=f"Layers not {what}",
        chooser_note=f"Tick the layers to leave as they are (not {what}).",
    )


def split_names(text: str) -> list[str]:
    """ "a, b,,c " -> ["a", "b", "c"] (order kept, duplicates dropped)."""
    out: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if name and name not in out:
            out.append(name)
    return out


class ListCompleter(QCompleter):
    """Completes the name after the last comma of a comma-separated list."""

    def splitPath(self, path: str) -> list[str]:  # noqa: N802 - Qt override
        return [path.rsplit(",", 1)[-1].strip()]

    def pathFromIndex(self, index: Any) -> str:  # noqa: N802 - Qt override
        name = str(super().pathFromIndex(index))
        widget = self.widget()
        text = widget.text() if isinstance(widget, QLineEdit) else ""
        head = [n.strip() for n in text.split(",")[:-1] if n.strip()]
        return ", ".join([*head, name])


class LayerChooser(QDialog):
    """A checkable list of the model's layers; ``chosen()`` gives the ticked names in the
    model's order."""

    def __init__(
        self,
        parent: QWidget | None,
        names: Sequence[str],
        checked: Sequence[str],
        wording: NamesWording = KEEP_FLOAT,
    ):
        super().__init__(parent)
        self.setWindowTitle(wording.chooser_title)
        lay = QVBoxLayout(self)
        note = QLabel(wording.chooser_note)
        note.setWordWrap(True)
        lay.addWidget(note)
        self.list = QListWidget()
        for name in list(names) + [n for n in checked if n not in names]:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked
            )
            if name not in names:
                item.setToolTip("Not a layer of the model open now.")
            self.list.addItem(item)
        lay.addWidget(self.list, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(340, 380)

    def chosen(self) -> list[str]:
        return [
            self.list.item(i).text()
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        ]


class LayerNamesEdit(QWidget):
    """The "names" knob editor (see the module docstring). ``changed`` follows every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None, wording: NamesWording = KEEP_FLOAT) -> None:
        super().__init__(parent)
        self.wording = wording
        self._names: list[str] = []
        # Opens the layer list and returns the ticked names, None when cancelled (tests
        # replace it).
        self.choose: Callable[[list[str], list[str]], list[str] | None] = self._choose_dialog
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.line = QLineEdit()
        self.line.setPlaceholderText(wording.placeholder)
        self.line.setClearButtonEnabled(True)
        self._model = QStringListModel([])
        self.completer = ListCompleter(self._model, self.line)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.line.setCompleter(self.completer)
        self.line.textChanged.connect(self._on_text)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setToolTip("Tick layers of the open model in a list.")
        self.choose_button.clicked.connect(self._on_choose)
        row.addWidget(self.line, 1)
        row.addWidget(self.choose_button)
        lay.addLayout(row)
        self.pure = QCheckBox(wording.pure or PURE_TEXT)
        self.pure.setToolTip(
            "Convert every layer to int8, whatever the accuracy check finds (it still "
            "measures the drop and warns)."
        )
        self.pure.toggled.connect(self._on_pure)
        lay.addWidget(self.pure)
        self.pure.setVisible(bool(wording.pure))
        self._sync()

    # -- value ----------------------------------------------------------------------------
    def value(self) -> list[str] | None:
        """None (automatic), ``[]`` (pure int8) or the names in the field."""
        if self.pure.isChecked():
            return []
        names = split_names(self.line.text())
        return names or None

    def set_value(self, value: Any) -> None:
        """Show ``value``: None, ``[]``, a list of names or a comma-separated string."""
        if isinstance(value, str):
            value = split_names(value)
        names = [str(n) for n in value] if isinstance(value, (list, tuple)) else None
        self.blockSignals(True)
        try:
            self.pure.setChecked(names == [])
            self.line.setText(", ".join(names or []))
        finally:
            self.blockSignals(False)
        self._sync()
        self.changed.emit()

    def set_layer_names(self, names: Sequence[str]) -> None:
        """The open model's layer names (completion and the *Choose…* list)."""
        self._names = [str(n) for n in names]
        self._model.setStringList(self._names)
        self._sync()

    def layer_names(self) -> list[str]:
        return list(self._names)

    def unknown_names(self) -> list[str]:
        """Names in the field that the open model does not have ([] without a model)."""
        if not self._names:
            return []
        return [n for n in split_names(self.line.text()) if n not in self._names]

    # -- internals ------------------------------------------------------------------------
    def _on_text(self, _text: str) -> None:
        self._sync()
        self.changed.emit()

    def _on_pure(self, _on: bool) -> None:
        self._sync()
        self.changed.emit()

    def _on_choose(self) -> None:
        chosen = self.choose(self._names, split_names(self.line.text()))
        if chosen is None:
            return
        self.pure.setChecked(False)
        self.line.setText(", ".join(chosen))

    def _choose_dialog(self, names: list[str], checked: list[str]) -> list[str] | None:
        dialog = LayerChooser(self, names, checked, self.wording)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
            return dialog.chosen()
        finally:
            dialog.deleteLater()

    def _sync(self) -> None:
        pure = self.pure.isChecked()
        self.line.setEnabled(not pure)
        self.choose_button.setEnabled(not pure and bool(self._names))
        unknown = self.unknown_names()
        w = self.wording
        if pure:
            state = w.pure_state
        elif not split_names(self.line.text()):
            state = w.empty
        else:
            state = w.listed + ", ".join(split_names(self.line.text()))
        if unknown:
            state += f"\nNot in the open model: {', '.join(unknown)}."
            self.line.setStyleSheet("QLineEdit { color: #b00020; }")
        else:
            self.line.setStyleSheet("")
        self.line.setToolTip(state)
