"""Model tab: open a model (dialog, drop, recent, demo), its per-layer report and totals,
the dataset choice with the engine's verdict, and the baseline accuracy on that dataset.

Per layer and technique the table shows what a run does (``engine.models.support``, the one
source): ✓ compressed, ○ supported but left dense (e.g. DepthwiseConv2D under pruning: tfmot
wraps it and prunes none of its weights), · no weights, ✗ not supported.

The totals say what the model gives and takes in words (gui/model_kinds.py: softmax / logits /
one-unit binary; images, features, sequences or token ids with the vocabulary), and the import
notes are sentences (ℹ for what the import did on purpose, such as dropping augmentation
layers; ⚠ for the rest). Until a dataset is chosen, the picker asks for the model's kind.

The dataset is checked and the baseline measured once per model + dataset + split + scaling
(the engine also caches the baseline on disk). A user's own model is never checked against
the demo digits unless the user picks them: opening a different, non-demo model while the
demo digits are chosen clears the choice and asks for a dataset.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.models.keras3_import import import_summary
from engine.models.support import EFFECT_LEGEND, EFFECT_MARKS, effect_tooltip
from gui.data_picker import DataPicker
from gui.errors import ErrorReporter
from gui.format import first_of, fmt_bytes, fmt_int, fmt_ms, fmt_pct
from gui.model_kinds import (
    import_notes,
    input_kind_of,
    input_text,
    input_tooltip,
    output_text,
    output_tooltip,
)
from gui.runner import EngineClient, Job
from gui.sensitivity_view import (
    NEEDS_DATA_TEXT,
    SensitivityView,
    ask_recipe_options,
    doc_layers,
    per_layer_map,
    per_layer_recipe_dict,
    tolerated,
)
from gui.state import DataChoice, ModelInfo, Session

TECHNIQUES = (("prune", "Prune"), ("cluster", "Cluster"), ("qat", "QAT"))
COLUMNS = (
    "Layer",
    "Type",
    "Output shape",
    "Params",
    "Prune",
    "Cluster",
    "QAT",
    "% of size",
    "Tolerated sparsity",
    "int8 error",
)
SHARE_COL, TOLERATED_COL, INT8_COL = 7, 8, 9
DEFAULT_MAX_LOSS_PTS = 1.0
NO_ANALYSIS_TIP = "Run Analyze (Sensitivity tab) to measure what each layer tolerates."
LEGEND_EFFECTS = ("compressed", "kept_dense", "no_weights", "unsupported")
EFFECT_COLORS = {
    "compressed": "#2e7d32",
    "kept_dense": "#5f6b7a",
    "unsupported": "#b00020",
}
NO_DATA_BASELINE = "Choose a dataset to measure the baseline."


def layer_support(row: dict[str, Any], technique: str) -> tuple[bool | None, str]:
    """(supported?, reason) for one technique, whatever shape the engine's row has."""
    value = row.get(technique)
    support = row.get("support")
    if value is None and isinstance(support, dict):
        value = support.get(technique)
    reason = ""
    if isinstance(value, dict):
        reason = str(value.get("reason", "") or "")
        value = value.get("supported", value.get("ok"))
    if not reason:
        reasons = row.get("reasons")
        if isinstance(reasons, dict):
            reason = str(reasons.get(technique, "") or "")
        else:
            reason = str(row.get(f"{technique}_reason", "") or row.get("reason", "") or "")
    if isinstance(value, str):
        return value.lower() in ("yes", "true", "supported"), reason
    return (bool(value) if value is not None else None), reason


def layer_effect(row: dict[str, Any], technique: str) -> tuple[str | None, str]:
    """(effect, reason): what a run of ``technique`` does to the layer — one of
    ``engine.models.support.EFFECTS``, or None when the report says nothing. Reports
    without ``effects`` (stored by older versions) are read from their reasons."""
    ok, reason = layer_support(row, technique)
    effects = row.get("effects")
    if isinstance(effects, dict) and isinstance(effects.get(technique), str):
        return str(effects[technique]), reason
    if ok is None:
        return None, reason
    if not ok:
        return "unsupported", reason
    if reason == "input" or first_of(row, "type", "class", "class_name") == "InputLayer":
        return "input", reason
    if reason == "no weights" or (row.get("params") == 0 and technique != "qat"):
        return "no_weights", reason
    if reason.startswith("kept"):
        return "kept_dense", reason
    return "compressed", reason


def effect_summary(rows: list[dict[str, Any]]) -> str:
    """Per technique, how many layers a run compresses and which stay dense, by type."""
    parts = []
    for tech, label in TECHNIQUES:
        compressed = 0
        dense: dict[str, int] = {}
        for row in rows:
            effect, _ = layer_effect(row, tech)
            if effect == "compressed":
                compressed += 1
            elif effect == "kept_dense":
                cls = str(first_of(row, "type", "class", "class_name") or "?")
                dense[cls] = dense.get(cls, 0) + 1
        done = {"prune": "pruned", "cluster": "clustered", "qat": "quantized"}[tech]
        text = f"{label}: {compressed} {done}"
        if dense:
            n = sum(dense.values())
            kinds = ", ".join(f"{c} {k}" for c, k in sorted(dense.items(), key=lambda i: -i[1]))
            text += f", {n} left dense ({kinds})"
        parts.append(text)
    return " · ".join(parts)


# Layers with weights whose multiply-accumulates the engine's count leaves out.
_UNCOUNTED_MACS = ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "MultiHeadAttention")


def _macs_gap(layers: list[dict[str, Any]]) -> str:
    """The suffix "(Conv and Dense only; not LSTM)" when the model has layers whose
    multiply-accumulates the engine's count leaves out; "" otherwise."""
    classes = {str(first_of(r, "type", "class", "class_name") or "") for r in layers}
    missing = sorted(c for c in classes if c in _UNCOUNTED_MACS)
    return f" (Conv and Dense only; not {', '.join(missing)})" if missing else ""


def _shape(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)):
            return ", ".join(_shape(v) for v in value)
        return "(" + ", ".join("None" if v is None else str(v) for v in value) + ")"
    return "" if value is None else str(value)


TRUST_TITLE = "This model file contains code"


def app_wording(message: str) -> str:
    """An engine message without the parts meant for the command line or Python callers
    (``--allow-unsafe``, ``allow_unsafe=True``)."""
    parts = [p.strip() for p in str(message).split(";")]
    kept = [p for p in parts if p and "allow-unsafe" not in p and "allow_unsafe" not in p]
    return "; ".join(kept)


def _found(message: str) -> str:
    """The engine's refusal (no item list from it) as the dialog's own sentence."""
    text = app_wording(message)
    if text.startswith("refusing to load ") and ": " in text:
        text = text.split(": ", 1)[1]
    return f"What Featherweight found: {text}" if text else "Featherweight found code in it."


def _place(item: dict[str, Any]) -> str:
    """The layer name; for items outside layers, where they are (``training config``...)."""
    layer, where = str(item.get("layer") or ""), str(item.get("where") or "layer")
    if where == "layer":
        return layer
    return f"{where} '{layer}'" if layer else where


def _item_text(item: dict[str, Any]) -> str:
    text = str(item.get("text") or "")
    if text:
        return text
    layer, cls = item.get("layer", "?"), item.get("class_name", "?")
    return f"layer '{layer}' ({cls}): {item.get('reason', '')}"


class TrustDialog(QDialog):
    """Asks whether to run the code stored in a model file, naming every item found.

    *Cancel* is the default button and has the focus: Enter and Escape both cancel; only a
    click on (or Space / the shortcut of) "Trust and open" trusts the file.
    """

    def __init__(
        self,
        parent: QWidget | None,
        name: str,
        items: list[dict[str, Any]],
        message: str = "",
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Featherweight — {TRUST_TITLE}")
        self.setModal(True)
        lay = self._layout = QVBoxLayout(self)
        lay.setSpacing(10)
        top = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(40, 40)
        )
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        top.addWidget(icon)
        self.heading = QLabel(
            f"<b>{html.escape(name)} contains code that runs when the model is opened.</b>"
        )
        self.heading.setWordWrap(True)
        f = self.heading.font()
        f.setPointSizeF(f.pointSizeF() * 1.1)
        self.heading.setFont(f)
        top.addWidget(self.heading, 1)
        lay.addLayout(top)
        n = len(items)
        self.intro = QLabel(
            (
                f"Featherweight found {n} part{'s' if n != 1 else ''} of this model that "
                f"{'run' if n != 1 else 'runs'} Python code or read{'' if n != 1 else 's'} "
                "other files when it is loaded:"
            )
            if items
            else _found(message)
        )
        self.intro.setWordWrap(True)
        self.intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.intro)
        self.table = QTableWidget(len(items), 3)
        self.table.setHorizontalHeaderLabels(("Layer", "Type", "What it does"))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        self.table.setStyleSheet("QTableWidget::item { padding: 2px 4px; }")
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        hh.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for r, item in enumerate(items):
            cells = (_place(item), item.get("class_name", ""), item.get("reason", ""))
            for c, text in enumerate(cells):
                cell = QTableWidgetItem(str(text))
                cell.setToolTip(_item_text(item))
                self.table.setItem(r, c, cell)
        self.table.setVisible(bool(items))
        lay.addWidget(self.table, 1)
        self.warning = QLabel(
            "Featherweight never runs code from a model file unless you allow it. If you "
            "trust this file, its code runs with your permissions: it can read, change or "
            "delete your files and use the network. Trust it only if you made it yourself or "
            "know where it came from."
        )
        self.warning.setWordWrap(True)
        lay.addWidget(self.warning)
        buttons = QDialogButtonBox()
        self.cancel_button = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.trust_button = buttons.addButton(
            "&Trust and open", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.trust_button.setAutoDefault(False)
        self.trust_button.setDefault(False)
        self.cancel_button.setAutoDefault(True)
        self.cancel_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.setMinimumWidth(600)
        self._fit_table()

    def _fit_table(self) -> None:
        """Show up to 8 rows without scrolling; more scroll."""
        self.table.resizeRowsToContents()
        rows = min(self.table.rowCount(), 8)
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(r) for r in range(rows))
        self.table.setMinimumHeight(height + 2)
        self.table.setMaximumHeight(height + 2 if self.table.rowCount() <= 8 else 16_777_215)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._fit_table()  # row heights depend on the column widths, known once shown
        self._layout.activate()
        self.resize(self.width(), self._layout.totalHeightForWidth(self.width()))
        self.cancel_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        # Enter never trusts, whatever has the focus (QDialog would press a focused
        # auto-default button).
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            self.reject()
            return
        super().keyPressEvent(event)


def ask_trust(
    parent: QWidget | None,
    message: str,
    items: list[dict[str, Any]] | None = None,
    name: str = "this model",
) -> bool:
    """Ask whether to run the file's code; True only if the user chose "Trust and open"."""
    dialog = TrustDialog(parent, name, list(items or []), message)
    try:
        return dialog.exec() == QDialog.DialogCode.Accepted
    finally:
        dialog.deleteLater()


class ModelTab(QWidget):
    """Shows ``session.model``; runs inspect / check_data / baseline jobs on the engine."""

    modelChanged = Signal(object)  # ModelInfo
    dataChanged = Signal(object)  # DataChoice
    baselineChanged = Signal(object)  # dict | None
    analysisChanged = Signal(object)  # the sensitivity document just measured (or None)
    recipeRequested = Signal(object)  # a recipe dict for the wizard (per-layer recipe)
    openRequested = Signal()  # "Open model…" clicked (the window owns the file dialog)
    demoRequested = Signal()

    def __init__(
        self,
        client: EngineClient,
        session: Session,
        errors: ErrorReporter,
        last_folder: Callable[[str], str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.session = session
        self.errors = errors
        # Asked with a one-line summary naming every unsafe item; True runs the file's code.
        # The default shows TrustDialog with the items of the refusal being handled.
        self.confirm_unsafe: Callable[[str], bool] = self._ask_trust
        self._trust_items: list[dict[str, Any]] = []
        self._trust_name = ""
        self._inspect_job: Job | None = None
        self._data_job: Job | None = None
        self._baseline_job: Job | None = None
        self._analyze_job: Job | None = None
        self._analyze_stage = (0, 1, "")
        # Asked for the per-layer recipe's (target, technique, int8) with the document; None
        # cancels. The default shows PerLayerRecipeDialog (tests replace it).
        self.ask_recipe_options: Callable[..., Any] = lambda doc: ask_recipe_options(self, doc)
        # What the dataset check and the baseline were last asked for (model, data, split,
        # scaling) and whether the baseline failed: the same choice is not checked again.
        self._checked_key: tuple[Any, ...] | None = None
        self._baseline_failed = False
        folder = last_folder or (lambda _k: "")

        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        self.open_button = QPushButton("Open model…")
        self.open_button.setToolTip("A .keras or .h5 file (Keras 2 or 3) or a SavedModel folder.")
        self.demo_button = QPushButton("Open demo")
        self.demo_button.setToolTip("The bundled digits CNN and its dataset: try the whole app.")
        self.open_button.clicked.connect(self.openRequested)
        self.demo_button.clicked.connect(self.demoRequested)
        self.title = QLabel("No model yet. Open a model, drop one on the window, or try the demo.")
        self.title.setWordWrap(True)
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.15)
        f.setBold(True)
        self.title.setFont(f)
        self.recent_button = QPushButton("Recent")
        self.recent_button.setToolTip("Models you opened before (the window sets its menu).")
        top.addWidget(self.title, 1)
        top.addWidget(self.open_button)
        top.addWidget(self.recent_button)
        top.addWidget(self.demo_button)
        outer.addLayout(top)
        self.subtitle = QLabel("")
        self.subtitle.setWordWrap(True)
        self.subtitle.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.subtitle)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.layers_stack = QStackedWidget()
        self.empty = QLabel(
            "<div style='font-size:15pt; color:#666'>Drop a .keras or .h5 model or a "
            "SavedModel folder here</div>"
            "<p style='color:#777'>or use <b>Open model…</b> (Ctrl+O), <b>File → Open recent</b>, "
            "or try everything on the bundled digits model with <b>Open demo</b> (Ctrl+D).</p>"
        )
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet(
            "QLabel { border: 2px dashed #bbb; border-radius: 8px; padding: 24px; }"
        )
        self.layers_stack.addWidget(self.empty)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c, (_tech, label) in enumerate(TECHNIQUES, start=4):
            header = QTableWidgetItem(label)
            header.setToolTip(
                f"What a {label.lower()} run does to each layer: "
                + ", ".join(f"{EFFECT_MARKS[e]} {EFFECT_LEGEND[e]}" for e in LEGEND_EFFECTS)
            )
            self.table.setHorizontalHeaderItem(c, header)
        for c, tip in (
            (
                SHARE_COL,
                "The layer's share of the compressed (int8) weight bytes, from the "
                "sensitivity analysis; before it, its share of the parameters.",
            ),
            (
                TOLERATED_COL,
                "The highest sparsity of this layer alone (others untouched) "
                "whose validation accuracy loss stays within the max loss per layer.",
            ),
            (
                INT8_COL,
                "The layer's int8 error (QuantizationDebugger): higher = more "
                "damage when converted to int8.",
            ),
        ):
            header = QTableWidgetItem(COLUMNS[c])
            header.setToolTip(tip)
            self.table.setHorizontalHeaderItem(c, header)
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        layers_page = QWidget()
        page_lay = QVBoxLayout(layers_page)
        page_lay.setContentsMargins(0, 4, 0, 0)
        loss_row = QHBoxLayout()
        loss_label = QLabel("Max loss per layer:")
        self.max_loss = QDoubleSpinBox()
        self.max_loss.setRange(0.1, 50.0)
        self.max_loss.setSingleStep(0.5)
        self.max_loss.setDecimals(1)
        self.max_loss.setValue(DEFAULT_MAX_LOSS_PTS)
        self.max_loss.setSuffix(" points")
        self.max_loss.setToolTip(
            "The validation accuracy a layer may lose, alone, for the Tolerated sparsity column."
        )
        self.max_loss.valueChanged.connect(lambda _v: self._fill_sensitivity_columns())
        loss_label.setBuddy(self.max_loss)
        self.analysis_note = QLabel("")
        self.analysis_note.setStyleSheet("color: #555;")
        loss_row.addWidget(loss_label)
        loss_row.addWidget(self.max_loss)
        loss_row.addWidget(self.analysis_note, 1)
        page_lay.addLayout(loss_row)
        page_lay.addWidget(self.table, 1)
        self.legend = QLabel(
            "   ".join(f"{EFFECT_MARKS[e]} {EFFECT_LEGEND[e]}" for e in LEGEND_EFFECTS)
        )
        self.legend.setStyleSheet("color: #555;")
        self.legend.setToolTip(
            "○ supported but left dense: the technique runs on a model holding this layer, "
            "but its weights stay as they are (tfmot prunes and clusters no weight of "
            "DepthwiseConv2D or BatchNormalization). Hover a cell for the reason."
        )
        page_lay.addWidget(self.legend)
        self.effects_note = QLabel("")
        self.effects_note.setWordWrap(True)
        self.effects_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        page_lay.addWidget(self.effects_note)
        self.views = QTabWidget()
        self.views.addTab(layers_page, "Layers")
        self.sensitivity = SensitivityView()
        self.sensitivity.analyzeRequested.connect(self.analyze)
        self.sensitivity.cancelRequested.connect(self.cancel_analysis)
        self.sensitivity.recipeRequested.connect(self.make_per_layer_recipe)
        self.sensitivity.layerSelected.connect(self._select_row)
        self.views.addTab(self.sensitivity, "Sensitivity")
        self.layers_stack.addWidget(self.views)
        split.addWidget(self.layers_stack)

        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(0, 0, 0, 0)
        box = QGroupBox("Totals")
        form = QFormLayout(box)
        self.totals: dict[str, QLabel] = {}
        for key, label in (
            ("params", "Parameters"),
            ("float32", "Float32 size"),
            ("macs", "MACs per inference"),
            ("output", "Output"),
            ("input_kind", "Input"),
            ("input", "Input shape"),
            ("format", "File format"),
        ):
            self.totals[key] = QLabel("—")
            self.totals[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.totals[key].setWordWrap(key in ("output", "input_kind"))
            form.addRow(label + ":", self.totals[key])
        side_lay.addWidget(box)

        box = QGroupBox("Dataset")
        lay = QVBoxLayout(box)
        self.data_picker = DataPicker(lambda: folder("data"))
        self.data_picker.changed.connect(self.set_data)
        lay.addWidget(self.data_picker)
        side_lay.addWidget(box)

        box = QGroupBox("Baseline (float32 .tflite, test split)")
        form = QFormLayout(box)
        self.baseline_labels: dict[str, QLabel] = {}
        for key, label in (
            ("accuracy", "Accuracy"),
            ("tflite_bytes", ".tflite size"),
            ("tflite_gzip_bytes", "gzip size"),
            ("latency_ms", "Latency (this computer)"),
        ):
            self.baseline_labels[key] = QLabel("—")
            form.addRow(label + ":", self.baseline_labels[key])
        self.baseline_status = QLabel("")
        self.baseline_status.setWordWrap(True)
        form.addRow(self.baseline_status)
        side_lay.addWidget(box)
        side_lay.addStretch(1)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([720, 520])
        outer.addWidget(split, 1)
        self.show_model(session.model)
        self.data_picker.show_choice(session.data)
        self.show_analysis(session.analysis)

    # -- actions --------------------------------------------------------------------------
    def open_model(self, spec: str, allow_unsafe: bool = False) -> Job:
        """Inspect ``spec`` ("demo" or a path) in the engine; shows it when done."""
        if self._inspect_job is not None and not self._inspect_job.done:
            self.client.cancel(self._inspect_job)
        self.title.setText(f"Opening {ModelInfo(spec).display_name}…")
        self.subtitle.setText(
            "Reading the file in the engine (the first model waits for TensorFlow)."
        )
        job = self.client.submit("inspect", {"model": spec, "allow_unsafe": allow_unsafe})
        self._inspect_job = job
        job.succeeded.connect(lambda rep, s=spec, u=allow_unsafe: self._on_inspected(s, u, rep))
        job.failed.connect(lambda err, s=spec: self._on_inspect_failed(s, err))
        return job

    def _on_inspected(self, spec: str, allow_unsafe: bool, report: dict[str, Any]) -> None:
        previous = self.session.model
        if previous is None or previous.spec != spec:
            self._drop_analysis()
        info = ModelInfo(spec=spec, report=report, allow_unsafe=allow_unsafe)
        self.session.model = info
        self.session.baseline = None
        self.show_model(info)
        self.modelChanged.emit(info)
        self.baselineChanged.emit(None)
        data = self.session.data.spec
        if spec != "demo" and data == "demo" and (previous is None or previous.spec != spec):
            # A user's model is never measured on the demo digits it was not given: the
            # user picks its dataset (or the demo digits, explicitly).
            data = ""
        self.set_data(data, self.session.data.scale)

    def _on_inspect_failed(self, spec: str, err: dict[str, Any]) -> None:
        self.show_model(self.session.model)
        if err.get("kind") == "unsafe_model":
            self._on_unsafe(spec, err)
            return
        if err.get("kind") == "crashed":
            return  # the window already reported the crash
        name = ModelInfo(spec).display_name
        self.errors.report(
            f"Cannot open {name}", str(err.get("message")), str(err.get("details", ""))
        )

    def _on_unsafe(self, spec: str, err: dict[str, Any]) -> None:
        """The engine refused a model that would run code: say it cannot be opened (when
        trusting would not help), else ask whether to trust it, naming every item."""
        name = ModelInfo(spec).display_name
        items = [i for i in err.get("items") or [] if isinstance(i, dict)]
        listing = "\n".join(f"- {_item_text(i)}" for i in items)
        if err.get("loadable_if_trusted") is False:
            why = str(err.get("trust_problem") or "") or app_wording(str(err.get("message")))
            details = (
                "Parts of the model that would run code or read files (nothing was run):\n"
                + listing
                if listing
                else ""
            )
            self.errors.report(
                f"Cannot open {name}",
                f"{name} cannot be opened, even if you trust it: {why}",
                details,
            )
            return
        if items:
            summary = f"{name} contains code: " + "; ".join(_item_text(i) for i in items)
        else:
            summary = app_wording(str(err.get("message", ""))) or f"{name} contains code"
        self._trust_items, self._trust_name = items, name
        try:
            trusted = self.confirm_unsafe(summary)
        finally:
            self._trust_items, self._trust_name = [], ""
        if trusted:
            self.open_model(spec, allow_unsafe=True)

    def _ask_trust(self, summary: str) -> bool:
        return ask_trust(self, summary, self._trust_items, self._trust_name or "This model")

    def _data_key(self, spec: str, scale: str) -> tuple[Any, ...]:
        data, model = self.session.data, self.session.model
        return (
            model,  # compared with ``is``: a model opened again is checked again
            model.allow_unsafe if model is not None else None,
            spec,
            scale,
            int(data.split_seed),
            float(data.val_fraction),
        )

    def set_data(self, spec: str, scale: str) -> None:
        """Choose the dataset (``""``: none, the user must pick one); the engine checks it
        against the model, then the baseline runs — once per model + data + split +
        scaling: choosing what is already checked (or being checked) asks nothing again."""
        old_choice = self.session.data
        key = self._data_key(spec, scale)
        if (
            self.session.model is not None
            and spec
            and self._checked_key is not None
            and key[0] is self._checked_key[0]
            and key[1:] == self._checked_key[1:]
            and old_choice.spec == spec
            and old_choice.scale == scale
            and not old_choice.error
            and not self._baseline_failed
        ):
            self.data_picker.show_choice(old_choice, checking=self._checking())
            return
        if (old_choice.spec, old_choice.scale) != (spec, scale):
            self._drop_analysis()  # measured on another dataset
        # The split belongs to the project's dataset reference: a new choice keeps it.
        self.session.data = DataChoice(
            spec=spec,
            scale=scale,
            split_seed=old_choice.split_seed,
            val_fraction=old_choice.val_fraction,
        )
        self.session.baseline = None
        self.show_baseline(None)
        self.baselineChanged.emit(None)
        model = self.session.model
        for old in (self._data_job, self._baseline_job):
            if old is not None and not old.done:
                self.client.cancel(old)
        self._checked_key, self._baseline_failed = None, False
        self._sync_analyze_button()
        if model is None or not spec:
            self.data_picker.show_choice(self.session.data)
            if model is not None:
                self.baseline_status.setStyleSheet("color: #555;")
                self.baseline_status.setText(NO_DATA_BASELINE)
            self.dataChanged.emit(self.session.data)
            return
        self._checked_key = key
        self.data_picker.show_choice(self.session.data, checking=True)
        self.dataChanged.emit(self.session.data)
        params = {
            "model": model.spec,
            "data": spec,
            "scale": scale,
            "allow_unsafe": model.allow_unsafe,
            **self.session.data.split_params(),
        }
        choice = self.session.data
        job = self.client.submit("check_data", params)
        self._data_job = job
        job.succeeded.connect(lambda d, c=choice, p=params: self._on_data_ok(c, d, p))
        job.failed.connect(lambda e, c=choice: self._on_data_failed(c, e))
        job.cancelled.connect(lambda _m, c=choice: self._forget_check(c))

    def _forget_check(self, choice: DataChoice) -> None:
        """A check or baseline of the current choice stopped early: the same choice runs
        again when it is picked again."""
        if choice is self.session.data:
            self._checked_key = None

    def _on_data_ok(self, choice: DataChoice, desc: dict[str, Any], params: dict) -> None:
        if choice is not self.session.data:
            return
        choice.description, choice.error = desc, None
        self.data_picker.show_choice(choice)
        self._sync_analyze_button()
        self.dataChanged.emit(choice)
        self.measure_baseline(params)

    def _on_data_failed(self, choice: DataChoice, err: dict[str, Any]) -> None:
        if choice is not self.session.data:
            return
        choice.description, choice.error = None, str(err.get("message"))
        self.data_picker.show_choice(choice)
        self._sync_analyze_button()
        self.dataChanged.emit(choice)
        if err.get("kind") not in ("bad_data", "bad_input", "unsupported_model"):
            self.errors.report(
                "Dataset check failed", str(err.get("message")), str(err.get("details", ""))
            )

    def measure_baseline(self, params: dict[str, Any]) -> Job:
        self.baseline_status.setStyleSheet("color: #555;")
        self.baseline_status.setText("Measuring the baseline…")
        job = self.client.submit("baseline", params)
        self._baseline_job = job
        choice = self.session.data
        job.succeeded.connect(lambda b, c=choice: self._on_baseline(c, b))
        job.failed.connect(lambda e: self._on_baseline_failed(e))
        job.cancelled.connect(lambda _m: self.baseline_status.setText(""))
        job.cancelled.connect(lambda _m, c=choice: self._forget_check(c))
        return job

    def _on_baseline(self, choice: DataChoice, baseline: dict[str, Any]) -> None:
        if choice is not self.session.data:
            return
        self.session.baseline = baseline
        self.show_baseline(baseline)
        self.baselineChanged.emit(baseline)

    def _checking(self) -> bool:
        """Whether the dataset check is still going."""
        return self._data_job is not None and not self._data_job.done

    def _on_baseline_failed(self, err: dict[str, Any]) -> None:
        self._baseline_failed = True
        self.baseline_status.setStyleSheet("color: #b00020;")
        self.baseline_status.setText(f"✗ {err.get('message')}")

    def reset(self) -> None:
        """Back to a fresh launch: no model, no dataset path, no baseline, no job going.

        Leaves ``session`` alone (the window replaces it); call it with *New project*."""
        for job in (self._inspect_job, self._data_job, self._baseline_job, self._analyze_job):
            if job is not None and not job.done:
                self.client.cancel(job)
        self._inspect_job = self._data_job = self._baseline_job = self._analyze_job = None
        self.show_analysis(None)
        self._checked_key, self._baseline_failed = None, False
        self.show_model(None)
        self.show_baseline(None)
        self.data_picker.reset()

    # -- view -----------------------------------------------------------------------------
    def show_model(self, info: ModelInfo | None) -> None:
        """Fill the header, layer table and totals from ``info`` (None: the empty state)."""
        self.table.setRowCount(0)
        self.layers_stack.setCurrentIndex(0 if info is None else 1)
        if info is None:
            self.effects_note.setText("")
            self.title.setText(
                "No model yet. Open a model, drop one on the window, or try the demo."
            )
            self.subtitle.setText(
                "Featherweight reads Keras 2 and Keras 3 .keras/.h5 files and SavedModels, "
                "then shows what each compression technique can do with every layer."
            )
            for lab in self.totals.values():
                lab.setText("—")
                lab.setToolTip("")
            self.data_picker.set_input_kind(None)
            self._sync_analyze_button()
            return
        rep = info.report
        name = first_of(rep, "model_name", "name") or "model"
        self.title.setText(f"{info.display_name} — {name} ({rep.get('model_class', 'Keras')})")
        notes = []
        diff = first_of(rep, "import_max_abs_diff")
        tol = 1e-4
        if isinstance(rep.get("import_check"), dict):
            diff = first_of(rep["import_check"], "max_abs_diff")
            tol = float(rep["import_check"].get("tolerance") or tol)
        fmt = str(rep.get("source_format", ""))
        for problem in rep.get("problems") or []:
            notes.append(f"✗ {problem}")
        imported = diff is not None or fmt.startswith("keras3")
        if diff is not None:
            notes.append(import_summary(float(diff), tol) + ".")
        elif imported:
            notes.append("Converted from Keras 3 to Keras 2.")
        if info.allow_unsafe:
            notes.append("Loaded with code execution allowed (you trusted this file).")
        # the import line above says "outputs match" once; the rest as ℹ / ⚠ sentences
        notes += [f"{mark} {text}" for mark, text in import_notes(rep, skip_import_line=imported)]
        self.subtitle.setText("\n".join(notes) if notes else f"Path: {info.spec}")
        layers = info.layers
        self.table.setRowCount(len(layers))
        for r, row in enumerate(layers):
            cells = [
                str(row.get("name", "")),
                str(first_of(row, "type", "class", "class_name") or ""),
                _shape(first_of(row, "output_shape", "shape")),
                fmt_int(row.get("params")),
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 3:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
            cls = cells[1]
            for c, (tech, _label) in enumerate(TECHNIQUES, start=4):
                effect, reason = layer_effect(row, tech)
                item = QTableWidgetItem(EFFECT_MARKS.get(effect or "", "—"))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setData(Qt.ItemDataRole.UserRole, effect)
                tip = effect_tooltip(tech, effect or "", reason, cls) if effect else reason
                if tip:
                    item.setToolTip(tip)
                color = EFFECT_COLORS.get(effect or "")
                if color:
                    item.setForeground(QColor(color))
                self.table.setItem(r, c, item)
        self.effects_note.setText(effect_summary(layers))
        self._fill_sensitivity_columns()
        t = info.totals
        self.totals["params"].setText(fmt_int(first_of(t, "params", "total_params")))
        self.totals["float32"].setText(
            fmt_bytes(first_of(t, "float32_bytes", "float32_size_bytes", "size_bytes"))
        )
        self.totals["macs"].setText(fmt_int(first_of(t, "macs", "total_macs")) + _macs_gap(layers))
        self.totals["macs"].setToolTip(str(t.get("macs_note") or ""))
        self.totals["output"].setText(output_text(rep))
        self.totals["output"].setToolTip(output_tooltip(rep))
        self.totals["input_kind"].setText(input_text(rep))
        self.totals["input_kind"].setToolTip(input_tooltip(rep))
        self.totals["input"].setText(_shape(rep.get("input_shape")) or "—")
        self.data_picker.set_input_kind(input_kind_of(rep))
        self.totals["format"].setText(fmt or "—")
        self._sync_analyze_button()

    def show_baseline(self, b: dict[str, Any] | None) -> None:
        b = b or {}
        self.baseline_labels["accuracy"].setText(fmt_pct(b.get("accuracy")))
        self.baseline_labels["tflite_bytes"].setText(fmt_bytes(b.get("tflite_bytes")))
        self.baseline_labels["tflite_gzip_bytes"].setText(fmt_bytes(b.get("tflite_gzip_bytes")))
        self.baseline_labels["latency_ms"].setText(fmt_ms(b.get("latency_ms")))
        if b:
            self.baseline_status.setStyleSheet("color: #555;")
            self.baseline_status.setText("Accuracy measured with LiteRT on the test split.")
        else:
            self.baseline_status.setText("")

    # -- sensitivity analysis -------------------------------------------------------------
    def analysis_params(self) -> dict[str, Any] | None:
        """The "analyze" job's parameters for the current model and dataset (None: no model
        or no usable dataset yet)."""
        model, data = self.session.model, self.session.data
        if model is None or not data.spec or data.error or data.description is None:
            return None
        return {
            "model": model.spec,
            "data": data.spec,
            "scale": data.scale,
            "allow_unsafe": model.allow_unsafe,
            **data.split_params(),
        }

    def _sync_analyze_button(self) -> None:
        if self.session.model is None:
            self.sensitivity.set_can_analyze(False, "Open a model first.")
        elif self.analysis_params() is None:
            data = self.session.data
            checking = bool(data.spec) and not data.error and data.description is None
            self.sensitivity.set_can_analyze(
                False, "Checking the dataset…" if checking else NEEDS_DATA_TEXT
            )
        else:
            self.sensitivity.set_can_analyze(True)

    def analyze(self) -> Job | None:
        """Run the engine's sensitivity analysis ("analyze" job) on the current model and
        dataset; the result is shown and ``analysisChanged`` emitted. None when it cannot
        run (no model / dataset: the view says why)."""
        params = self.analysis_params()
        if params is None:
            self._sync_analyze_button()
            return None
        if self._analyze_job is not None and not self._analyze_job.done:
            return self._analyze_job
        job = self.client.submit("analyze", params)
        self._analyze_job = job
        self._analyze_stage = (0, 1, "")
        self.sensitivity.show_running(True, "waiting for the engine…")
        self.analysis_note.setText("Analysing…")
        model, choice = self.session.model, self.session.data
        job.accepted.connect(lambda: self.sensitivity.show_progress(0.0, "started"))
        job.stage.connect(self._on_analyze_stage)
        job.progress.connect(self._on_analyze_progress)
        job.succeeded.connect(lambda r, m=model, c=choice: self._on_analyzed(m, c, r))
        job.failed.connect(self._on_analyze_failed)
        job.cancelled.connect(lambda _m: self._on_analyze_ended("Analysis cancelled."))
        return job

    def cancel_analysis(self) -> None:
        if self._analyze_job is not None and not self._analyze_job.done:
            self.client.cancel(self._analyze_job)

    @property
    def analyzing(self) -> bool:
        return self._analyze_job is not None and not self._analyze_job.done

    def _on_analyze_stage(self, ev: dict[str, Any]) -> None:
        idx, count = int(ev.get("index", 0)), max(1, int(ev.get("count", 1)))
        label = str(ev.get("label") or ev.get("stage", ""))
        if ev.get("state", "start") == "start":
            self._analyze_stage = (idx, count, label)
            self.sensitivity.show_progress(idx / count, label)
        else:
            self.sensitivity.show_progress((idx + 1) / count, label)

    def _on_analyze_progress(self, ev: dict[str, Any]) -> None:
        idx, count, label = self._analyze_stage
        if isinstance(ev.get("fraction"), (int, float)):
            frac = float(ev["fraction"])
        else:
            total = max(1, int(ev.get("total", 1) or 1))
            frac = min(total, int(ev.get("step", 0) or 0)) / total
        text = str(ev.get("label") or ev.get("layer") or label)
        self.sensitivity.show_progress((idx + frac) / count, text)

    def _on_analyzed(self, model: ModelInfo | None, choice: DataChoice, result: Any) -> None:
        self.sensitivity.show_running(False)
        if model is not self.session.model or choice is not self.session.data:
            self.analysis_note.setText("")
            return  # the model or dataset changed meanwhile: this analysis is not theirs
        doc = analysis_document(result)
        if doc is None:
            self.analysis_note.setText("")
            self.errors.report(
                "The analysis returned nothing to show",
                "The engine's analysis has no per-layer results for this model.",
            )
            return
        self.session.analysis = doc
        self.show_analysis(doc)
        self.views.setCurrentWidget(self.sensitivity)
        self.analysisChanged.emit(doc)

    def _on_analyze_failed(self, err: dict[str, Any]) -> None:
        self._on_analyze_ended("")
        if err.get("kind") == "crashed":
            return  # the window already reported the crash
        self.errors.report(
            "The sensitivity analysis failed",
            str(err.get("message")),
            str(err.get("details", "")),
        )

    def _on_analyze_ended(self, note: str) -> None:
        self.sensitivity.show_running(False)
        self.analysis_note.setText(note)
        self._sync_analyze_button()

    def _drop_analysis(self) -> None:
        """The model or dataset changed: the analysis shown is no longer theirs."""
        self.cancel_analysis()
        if self.session.analysis is not None:
            self.session.analysis = None
            self.analysisChanged.emit(None)
        self.show_analysis(None)

    def show_analysis(self, doc: dict[str, Any] | None) -> None:
        """Show a sensitivity document in the Sensitivity view and the layer table."""
        self.sensitivity.show_document(doc)
        self.analysis_note.setText("")
        self._fill_sensitivity_columns()
        self._sync_analyze_button()

    def _fill_sensitivity_columns(self) -> None:
        """% of size, tolerated sparsity (at the max loss per layer) and int8 error."""
        doc = self.session.analysis if self.sensitivity.doc is not None else None
        entries = {str(e["name"]): e for e in doc_layers(doc)}
        max_loss = self.max_loss.value()
        model = self.session.model
        layers = model.layers if model is not None else []
        total = sum(int(r.get("params") or 0) for r in layers) or 1
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for r, row in enumerate(layers[: self.table.rowCount()]):
            name = str(row.get("name", ""))
            e = entries.get(name)
            share, share_tip = None, ""
            if e is not None and isinstance(e.get("share_bytes"), (int, float)):
                share = float(e["share_bytes"])
                share_tip = "Share of the compressed (int8) weight bytes."
            elif int(row.get("params") or 0) > 0:
                share = int(row.get("params") or 0) / total
                share_tip = "Share of the parameters (the analysis gives the int8 bytes)."
            cells: list[tuple[str, str, float | None]] = [
                (f"{share * 100:.1f} %" if share is not None else "", share_tip, share)
            ]
            tol = tolerated(doc, e, max_loss) if (doc is not None and e is not None) else None
            if tol is None:
                tip = NO_ANALYSIS_TIP if doc is None else "Not analysed (no prunable weights)."
                cells.append(("—" if doc is None and share is not None else "", tip, None))
            else:
                grid = sorted(float(v) for v in ((doc or {}).get("grids") or {}).get("prune") or [])
                if tol <= 0 and grid:
                    text = f"< {grid[0] * 100:g} %"
                else:
                    text = f"{tol * 100:g} %"
                cells.append(
                    (
                        text,
                        f"Pruned alone to {text}, {name} loses at most {max_loss:g} points "
                        "of validation accuracy.",
                        tol,
                    )
                )
            err = e.get("int8_error") if e is not None else None
            if isinstance(err, (int, float)):
                cells.append((f"{err:.3g}", "int8 error (QuantizationDebugger).", float(err)))
            else:
                cells.append(("", "" if doc is not None else NO_ANALYSIS_TIP, None))
            for c, (text, tip, value) in zip((SHARE_COL, TOLERATED_COL, INT8_COL), cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(right)
                item.setData(Qt.ItemDataRole.UserRole, value)
                if tip:
                    item.setToolTip(tip)
                self.table.setItem(r, c, item)
        if doc is not None:
            n = sum(1 for e in entries.values() if e.get("prune"))
            self.analysis_note.setText(
                f"Tolerated sparsity of {n} analysed layers: each loses at most "
                f"{max_loss:g} point{'' if max_loss == 1 else 's'} alone."
            )

    def _on_table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return
        item = self.table.item(rows[0].row(), 0)
        self.sensitivity.select_layer(item.text() if item is not None else None)

    def _select_row(self, name: str) -> None:
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.text() == name:
                self.table.selectRow(r)
                return

    def make_per_layer_recipe(self) -> dict[str, Any] | None:
        """Ask for a global target and technique, turn the analysis into a per-layer recipe
        (``engine.pipeline.sensitivity.per_layer_recipe``) and emit ``recipeRequested``.
        Returns the recipe dict (None when cancelled or impossible; the user is told why)."""
        doc = self.session.analysis
        if doc is None:
            return None
        options = self.ask_recipe_options(doc)
        if options is None:
            return None
        target, technique, int8 = options
        try:
            mapping = per_layer_map(doc, target, technique)
        except Exception as exc:  # noqa: BLE001 - BadInputError or a missing engine part
            self.errors.report("Cannot make the per-layer recipe", str(exc))
            return None
        recipe = per_layer_recipe_dict(doc, target, technique, mapping, int8)
        self.recipeRequested.emit(recipe)
        return recipe


def analysis_document(result: Any) -> dict[str, Any] | None:
    """The sensitivity document in an "analyze" job result (the document itself, or under
    ``"sensitivity"`` / ``"document"``); None when it has no layers."""
    if not isinstance(result, dict):
        return None
    for doc in (result, result.get("sensitivity"), result.get("document")):
        if isinstance(doc, dict) and doc_layers(doc):
            return doc
    return None
