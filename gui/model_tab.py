"""Model tab: open a model (dialog, drop, recent, demo), its per-layer report and totals,
the dataset choice with the engine's verdict, and the baseline accuracy on that dataset."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
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
    QVBoxLayout,
    QWidget,
)

from gui.data_picker import DataPicker
from gui.errors import ErrorReporter
from gui.format import first_of, fmt_bytes, fmt_int, fmt_ms, fmt_pct
from gui.runner import EngineClient, Job
from gui.state import DataChoice, ModelInfo, Session

TECHNIQUES = (("prune", "Prune"), ("cluster", "Cluster"), ("qat", "QAT"))
COLUMNS = ("Layer", "Type", "Output shape", "Params", "Prune", "Cluster", "QAT")


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
            "<div style='font-size:15pt; color:#666'>Drop a .keras or .h5 model here</div>"
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
        self.layers_stack.addWidget(self.table)
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
            ("input", "Input shape"),
            ("format", "File format"),
        ):
            self.totals[key] = QLabel("—")
            self.totals[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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
        info = ModelInfo(spec=spec, report=report, allow_unsafe=allow_unsafe)
        self.session.model = info
        self.session.baseline = None
        self.show_model(info)
        self.modelChanged.emit(info)
        self.baselineChanged.emit(None)
        self.set_data(self.session.data.spec, self.session.data.scale)

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

    def set_data(self, spec: str, scale: str) -> None:
        """Choose the dataset; the engine checks it against the model, then the baseline runs."""
        old_choice = self.session.data
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
        if model is None:
            self.data_picker.show_choice(self.session.data)
            self.dataChanged.emit(self.session.data)
            return
        for old in (self._data_job, self._baseline_job):
            if old is not None and not old.done:
                self.client.cancel(old)
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

    def _on_data_ok(self, choice: DataChoice, desc: dict[str, Any], params: dict) -> None:
        if choice is not self.session.data:
            return
        choice.description, choice.error = desc, None
        self.data_picker.show_choice(choice)
        self.dataChanged.emit(choice)
        self.measure_baseline(params)

    def _on_data_failed(self, choice: DataChoice, err: dict[str, Any]) -> None:
        if choice is not self.session.data:
            return
        choice.description, choice.error = None, str(err.get("message"))
        self.data_picker.show_choice(choice)
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
        return job

    def _on_baseline(self, choice: DataChoice, baseline: dict[str, Any]) -> None:
        if choice is not self.session.data:
            return
        self.session.baseline = baseline
        self.show_baseline(baseline)
        self.baselineChanged.emit(baseline)

    def _on_baseline_failed(self, err: dict[str, Any]) -> None:
        self.baseline_status.setStyleSheet("color: #b00020;")
        self.baseline_status.setText(f"✗ {err.get('message')}")

    # -- view -----------------------------------------------------------------------------
    def show_model(self, info: ModelInfo | None) -> None:
        """Fill the header, layer table and totals from ``info`` (None: the empty state)."""
        self.table.setRowCount(0)
        self.layers_stack.setCurrentIndex(0 if info is None else 1)
        if info is None:
            self.title.setText(
                "No model yet. Open a model, drop one on the window, or try the demo."
            )
            self.subtitle.setText(
                "Featherweight reads Keras 2 and Keras 3 .keras/.h5 files and SavedModels, "
                "then shows what each compression technique can do with every layer."
            )
            for lab in self.totals.values():
                lab.setText("—")
            return
        rep = info.report
        name = first_of(rep, "model_name", "name") or "model"
        self.title.setText(f"{info.display_name} — {name} ({rep.get('model_class', 'Keras')})")
        notes = []
        diff = first_of(rep, "import_max_abs_diff")
        tol = 1e-5
        if isinstance(rep.get("import_check"), dict):
            diff = first_of(rep["import_check"], "max_abs_diff")
            tol = float(rep["import_check"].get("tolerance") or tol)
        fmt = str(rep.get("source_format", ""))
        for problem in rep.get("problems") or []:
            notes.append(f"✗ {problem}")
        if diff is not None:
            ok = float(diff) <= tol
            notes.append(
                f"Imported from Keras 3: outputs {'match' if ok else 'DIFFER'} "
                f"(max abs difference {float(diff):.2g} on sample input)."
            )
        elif fmt.startswith("keras3"):
            notes.append("Imported from Keras 3.")
        if info.allow_unsafe:
            notes.append("Loaded with code execution allowed (you trusted this file).")
        for w in rep.get("warnings") or []:
            notes.append(f"⚠ {w}")
        self.subtitle.setText("  ".join(notes) if notes else f"Path: {info.spec}")
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
            for c, (tech, _label) in enumerate(TECHNIQUES, start=4):
                ok, reason = layer_support(row, tech)
                text = "—" if ok is None else ("✓" if ok else "✗")
                if ok and (reason == "no weights" or (row.get("params") == 0 and tech != "qat")):
                    ok, text = None, "·"  # nothing to compress in this layer
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if reason:
                    item.setToolTip(reason)
                if ok is False:
                    item.setForeground(Qt.GlobalColor.darkRed)
                elif ok:
                    item.setForeground(Qt.GlobalColor.darkGreen)
                self.table.setItem(r, c, item)
        t = info.totals
        self.totals["params"].setText(fmt_int(first_of(t, "params", "total_params")))
        self.totals["float32"].setText(
            fmt_bytes(first_of(t, "float32_bytes", "float32_size_bytes", "size_bytes"))
        )
        self.totals["macs"].setText(fmt_int(first_of(t, "macs", "total_macs")))
        kind = rep.get("output_kind", "")
        ncls = rep.get("num_classes")
        self.totals["output"].setText(f"{kind}, {ncls} classes" if ncls else str(kind or "—"))
        self.totals["input"].setText(_shape(rep.get("input_shape")) or "—")
        self.totals["format"].setText(fmt or "—")

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
