"""Compress tab: a five-step wizard (techniques → settings → data → review → run).

The settings forms are built from ``engine.pipeline.recipe.STEP_SPECS`` (kind, default, range,
choices; the help text becomes the tooltip), read when the tab is built, so every registered
technique gets a form; the recipe is validated with ``engine.pipeline.recipe.validate_recipe``
on every change and its message shown inline. The run page shows the stage, a progress bar
with the time left, a Cancel button, the log and live charts.

Honest signals (issue 12): the finish line is coloured by the run's accuracy-budget verdict
(``engine.pipeline.budget``: within / over / collapsed, against the run's own baseline) and,
over budget, lists what to try (``budget.suggestions``) with a button for each cheap change
(it edits the wizard's recipe and opens the Review page; "int8 alone" loads the int8
example). While a run trains, a validation accuracy that already trips
``budget.training_alarm`` shows a warning bar with *Cancel* (once per run). A recipe without
a training step shows a short note instead of empty training charts. Example recipes are
listed by name and description with an estimated time for the loaded model
(``engine.pipeline.estimate``).

Who owns a run: by default the tab writes into ``runs_dir`` and splits the data as
``session.data`` says. A window hands the run lifecycle to its project through
``set_run_hooks`` (``gui.state.RunHooks``: ``before_start`` decides the folder, the run id and
the split, or refuses; ``on_started`` / ``on_event`` / ``on_done`` follow the run). The
signals ``runStarted`` / ``runFinished`` / ``recipeSaved`` tell everyone else.

Search (issue 15): page 1 offers *Find the smallest model for me* (accuracy budget in points,
objective, time budget, optional max trials; seed under *Advanced*) beside *Choose techniques
myself* (the flow above, unchanged). A search skips the Settings page; *Search ▶* on the
Review page runs the worker's ``search`` job and the Run page shows ``gui.search_view.
SearchView`` instead of the run view (Stop = the job's cancel: the search ends normally and
keeps everything). A search's owner (``set_search_hooks``, ``SearchHooks``: the window's
project) decides its study folder; *Open as run* on a trial runs the ``open_trial`` job as an
ordinary run through the run hooks, so it lands in Results and in the project like any run.
``searchStarted`` / ``searchFinished`` tell the window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.core.errors import RecipeError
from engine.pipeline import budget
from engine.pipeline import recipe as recipe_module
from engine.pipeline.estimate import estimate_seconds, fmt_estimate
from engine.pipeline.recipe import (
    SCHEMA_VERSION,
    Knob,
    Recipe,
    StepSpec,
    parse_recipe_text,
    validate_recipe,
)
from gui.charts import LiveCharts
from gui.conversion import finish_note
from gui.data_picker import DataPicker
from gui.errors import ErrorReporter
from gui.format import (
    VERDICT_COLORS,
    VERDICT_MARKS,
    fmt_bytes,
    fmt_duration,
    fmt_pct,
    fmt_ratio,
)
from gui.model_kinds import input_kind_of
from gui.names_edit import LayerNamesEdit, skip_wording
from gui.per_layer_edit import PerLayerEdit
from gui.runner import EngineClient, Job
from gui.search_view import OBJECTIVES, SearchView
from gui.state import RunHooks, RunPlan, RunRecord, Session

PAGES = ("Techniques", "Settings", "Data", "Review", "Run")
TECHNIQUES, SETTINGS, DATA, REVIEW, RUN = range(5)
ERROR_STYLE = "color: #b00020;"
WARN_STYLE = "color: #8a6d00;"
OK_STYLE = "color: #1b5e20;"
ALARM_STYLE = (
    "QFrame#trainingAlarm { background: #fdecea; border: 1px solid #c62828; border-radius: 4px; }"
)
# Buttons for the suggestions whose change is cheap (an edit of the wizard's recipe).
SUGGESTION_BUTTONS = {
    "lower_sparsity": "Lower sparsity",
    "skip_edges": "Skip first/last layers",
    "more_clusters": "More clusters",
    "more_epochs": "More epochs",
    "int8_only": "int8 alone",
    "qat": "Add QAT",
}
INT8_EXAMPLE = "int8_ptq.json"
# The on-screen hint of a "names" knob (the engine's help speaks of recipe files).
NAMES_HINT = (
    "Layers kept in float in the int8 model. Empty = automatic: when int8 loses more than "
    "the max drop, the layers responsible are found and kept float. Type names (completed "
    "from the model) or Choose…; Pure int8 keeps nothing float."
)
# What a skip list ("names" knob other than keep_float) leaves out, per step type.
_SKIP_WHAT = {"cluster": "clustered", "prune": "pruned", "prune_filters": "filter-pruned"}
# Quantize knobs that only an int8 conversion reads (disabled in the other modes).
INT8_ONLY_KNOBS = ("io", "calibration_samples", "max_int8_drop", "keep_float")
DEFAULT_TECHNIQUES = ("prune", "quantize")
SEARCH_FILE = "search.json"  # engine.pipeline.search.SEARCH_FILE
SEARCH_KIND = "featherweight-search"
DEFAULT_SEARCH_MINUTES = 20


@dataclass
class SearchPlan:
    """Where a search about to start writes (``out_dir``, its study folder), its id in the
    project ("" outside one), the dataset's split and the search's settings (``config``:
    budget_pts, objective, time_s, trials, seed)."""

    search_id: str
    out_dir: str
    split_seed: int
    val_fraction: float
    config: dict[str, Any]


class SearchHooks(Protocol):
    """The owner of the searches a ``CompressTab`` starts (the window's project controller).

    ``before_search(config, out_dir)`` decides where the search goes (``out_dir``: a study
    folder to continue, None for a new search) or refuses it (None, after saying why);
    ``on_search_done(plan, doc)`` is called when the search job ends, with the final
    search.json document (None when there is none)."""

    def before_search(self, config: dict[str, Any], out_dir: str | None) -> SearchPlan | None: ...

    def on_search_done(self, plan: SearchPlan, doc: dict[str, Any] | None) -> None: ...


def read_search_file(folder: str | Path) -> dict[str, Any] | None:
    """The search.json in ``folder`` (None when missing, unreadable or not a search)."""
    try:
        doc = json.loads((Path(folder) / SEARCH_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") != SEARCH_KIND:
        return None
    return doc


class KnobEditor:
    """One editor widget for one ``Knob`` (spin box, check box, combo box or line edit)."""

    def __init__(self, knob: Knob, on_change: Callable[..., Any], step_type: str = "") -> None:
        self.knob = knob
        k = knob
        w: QWidget
        if k.kind == "bool":
            w = QCheckBox()
            w.setChecked(bool(k.default))
            w.toggled.connect(on_change)
        elif k.kind == "int":
            w = QSpinBox()
            w.setRange(
                int(k.minimum if k.minimum is not None else 0),
                int(k.maximum if k.maximum is not None else 1_000_000),
            )
            w.setValue(int(k.default))
            w.valueChanged.connect(on_change)
        elif k.kind == "float" and not (k.minimum is not None and 0 < k.minimum < 1e-3):
            w = QDoubleSpinBox()
            w.setDecimals(3)
            w.setSingleStep(0.05 if (k.maximum or 10) <= 1 else 0.5)
            w.setRange(
                k.minimum if k.minimum is not None else -1e9,
                k.maximum if k.maximum is not None else 1e9,
            )
            w.setValue(float(k.default))
            w.valueChanged.connect(on_change)
        elif k.kind == "names":
            w = (
                LayerNamesEdit()
                if k.name == "keep_float"
                else LayerNamesEdit(wording=skip_wording(_SKIP_WHAT.get(step_type, "changed")))
            )
            w.set_value(k.default)
            w.changed.connect(on_change)
        elif k.kind == "map":
            w = PerLayerEdit(k.minimum, k.maximum, getattr(k, "value_kind", "float") == "int")
            w.set_value(k.default)
            w.changed.connect(on_change)
        elif k.kind == "choice":
            w = QComboBox()
            for c in k.choices:
                w.addItem(c, c)
            w.setCurrentIndex(max(0, w.findData(k.default)))
            w.currentIndexChanged.connect(on_change)
        else:  # str, path, and tiny floats such as learning rates ("1e-4")
            w = QLineEdit("" if k.default is None else _float_text(k.default))
            if k.optional:
                w.setPlaceholderText("(optional)")
            w.textChanged.connect(on_change)
        tip = k.help
        if k.minimum is not None or k.maximum is not None:
            tip += f"\nRange: {_float_text(k.minimum)} – {_float_text(k.maximum)}."
        if k.kind == "names":
            tip += "\nDefault: automatic." if k.name == "keep_float" else "\nDefault: none."
        elif k.kind == "map":
            tip += "\nEmpty cells: the allocation rule applies."
        else:
            tip += f"\nDefault: {_float_text(k.default)}."
        w.setToolTip(tip)
        self.widget = w

    def value(self) -> Any:
        w, k = self.widget, self.knob
        if isinstance(w, (LayerNamesEdit, PerLayerEdit)):
            return w.value()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentData()
        text = w.text().strip()
        if k.kind == "float":
            try:
                return float(text)
            except ValueError:
                return text  # validate_recipe names the problem
        if k.optional and not text:
            return None
        return text

    def set_value(self, value: Any) -> None:
        w = self.widget
        if isinstance(w, (LayerNamesEdit, PerLayerEdit)):
            w.set_value(value)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(max(0, w.findData(value)))
        else:
            w.setText("" if value is None else _float_text(value))


def registered_steps() -> tuple[list[str], dict[str, StepSpec]]:
    """The techniques registered now, in pipeline order, and their specs.

    Read from ``engine.pipeline.recipe`` at call time (not names bound at import), so a
    technique registered later still gets a form; one missing from ``STEP_ORDER`` goes last.
    """
    specs = dict(recipe_module.STEP_SPECS)
    order = [t for t in recipe_module.STEP_ORDER if t in specs]
    return order + [t for t in specs if t not in order], specs


def _map_layers(edit: PerLayerEdit, weighted: list[str], model: Any) -> list[str]:
    """The rows of a per-layer table: the layers with weights; for a sparsity/ratio map (values
    ≤ 1) only those the model's report marks prunable, when it says."""
    if model is None:
        return weighted
    rows = {str(r.get("name")): r for r in model.layers}
    key = "cluster" if edit.integer else "prune"
    marked = [
        n
        for n in weighted
        if isinstance(rows[n].get("effects"), dict) and rows[n]["effects"].get(key) == "compressed"
    ]
    return marked or weighted


def _float_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "" if v is None else str(v)


class CompressTab(QWidget):
    """The wizard and the run page; ``session.runs`` receives every run started here."""

    runStarted = Signal(object)  # RunRecord
    runFinished = Signal(object)  # RunRecord (any final status)
    recipeSaved = Signal(object)  # the recipe dict just written to a file
    showResultsRequested = Signal()
    searchStarted = Signal(object)  # SearchPlan
    searchFinished = Signal(object, object)  # SearchPlan, the search.json document or None
    dataChosen = Signal(str, str)  # the Data page's picker: spec, scale

    def __init__(
        self,
        client: EngineClient,
        session: Session,
        errors: ErrorReporter,
        runs_dir: Path,
        last_folder: Callable[[str], str] | None = None,
        remember_folder: Callable[[str, str], None] | None = None,
        examples_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.session = session
        self.errors = errors
        self.runs_dir = Path(runs_dir)
        self._folder = last_folder or (lambda _k: "")
        self._remember = remember_folder or (lambda _k, _p: None)
        self.examples_dir = examples_dir
        self.job: Job | None = None
        self.run: RunRecord | None = None
        self._hooks: RunHooks | None = None
        self.step_order, self.step_specs = registered_steps()
        self._stage = (0, 1, "")  # index, count, label
        self._frac = 0.0
        self._t0 = 0.0
        self.budget = budget.DEFAULT_BUDGET_PTS
        self._alarmed = False  # the training alarm was shown for the current run
        self._alarm_prev: tuple[int, float] | None = None  # (step, val accuracy) last epoch
        self._stage_name = ""  # the engine's name of the running stage ("prune", …)
        self.editors: dict[str, dict[str, KnobEditor]] = {}
        self.step_boxes: dict[str, QGroupBox] = {}
        self.search_job: Job | None = None
        self.search_plan: SearchPlan | None = None
        self._search_hooks: SearchHooks | None = None

        outer = QHBoxLayout(self)
        self.steps = QListWidget()
        self.steps.addItems([f"{i + 1}. {p}" for i, p in enumerate(PAGES)])
        self.steps.setFixedWidth(150)
        self.steps.currentRowChanged.connect(self.go_to)
        outer.addWidget(self.steps)
        right = QVBoxLayout()
        self.stack = QStackedWidget()
        right.addWidget(self.stack, 1)
        nav = QHBoxLayout()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        nav.addWidget(self.message, 1)
        self.back_button = QPushButton("← Back")
        self.next_button = QPushButton("Next →")
        self.back_button.clicked.connect(lambda: self.go_to(self.stack.currentIndex() - 1))
        self.next_button.clicked.connect(self._next)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        right.addLayout(nav)
        outer.addLayout(right, 1)

        self.stack.addWidget(self._build_techniques())
        self.stack.addWidget(self._build_settings())
        self.stack.addWidget(self._build_data())
        self.stack.addWidget(self._build_review())
        self.stack.addWidget(self._build_run())
        self._on_techniques_changed()
        self.go_to(TECHNIQUES)

    # -- pages ----------------------------------------------------------------------------
    def _build_techniques(self) -> QWidget:
        """Page 1: *Find the smallest model for me* (a search) beside *Choose techniques
        myself* (the techniques, today's flow)."""
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(_heading("How do you want to compress the model?"))
        row = QHBoxLayout()
        self.mode_search = QRadioButton("Find the smallest model for me")
        self.mode_manual = QRadioButton("Choose techniques myself")
        for button, tip in (
            (
                self.mode_search,
                "Featherweight tries combinations of techniques and keeps the smallest model "
                "within your accuracy budget",
            ),
            (self.mode_manual, "Pick the techniques and their settings yourself"),
        ):
            f = button.font()
            f.setBold(True)
            f.setPointSizeF(f.pointSizeF() * 1.1)
            button.setFont(f)
            button.setToolTip(tip)
            row.addWidget(button)
        row.addStretch(1)
        self.mode_manual.setChecked(True)
        self.mode_search.toggled.connect(self._on_mode)
        lay.addLayout(row)
        self.mode_stack = QStackedWidget()
        self.mode_stack.addWidget(self._build_manual())
        self.mode_stack.addWidget(self._build_search_form())
        lay.addWidget(self.mode_stack, 1)
        return page

    def _build_search_form(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 8, 0, 0)
        lay.addWidget(
            _note(
                "Featherweight tries combinations of what your model supports (distillation, "
                "pruning, clustering, quantization-aware training, int8 / float16 / dynamic "
                "range) and keeps the smallest model that loses at most the budget below. "
                "Each trial is judged on the validation split; the test split is measured "
                "once, at the end, for the best points. Stop at any time: everything found "
                "is kept, and the project keeps the study."
            )
        )
        box = QGroupBox("Find the smallest model for me")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.search_budget = QDoubleSpinBox()
        self.search_budget.setRange(0.1, 50.0)
        self.search_budget.setDecimals(1)
        self.search_budget.setSingleStep(0.5)
        self.search_budget.setSuffix(" points")
        self.search_budget.setValue(self.budget)
        self.search_budget.setToolTip(
            "The most validation accuracy a trial may lose, in percentage points "
            "(1 point: 97.0 % → 96.0 %)."
        )
        self.search_objective = QComboBox()
        for key, (_field, _short, words, _unit) in OBJECTIVES.items():
            self.search_objective.addItem(words, key)
        self.search_objective.setToolTip("What 'smallest' means for your target.")
        self.search_time = QSpinBox()
        self.search_time.setRange(1, 24 * 60)
        self.search_time.setValue(DEFAULT_SEARCH_MINUTES)
        self.search_time.setSuffix(" min")
        self.search_time.setToolTip(
            "Wall time of the search on this computer; it stops after the trial running then."
        )
        self.search_trials = QSpinBox()
        self.search_trials.setRange(0, 10_000)
        self.search_trials.setSpecialValueText("no limit")
        self.search_trials.setToolTip("Stop after this many trials (optional).")
        self.search_seed = QSpinBox()
        self.search_seed.setRange(0, 2**31 - 1)
        self.search_seed.setToolTip("Seed of the sampler: the same seed tries the same trials.")
        self.search_advanced = QCheckBox("Advanced")
        self.search_advanced.toggled.connect(self._show_search_advanced)
        form.addRow("Lose at most:", self.search_budget)
        form.addRow("Make it small in:", self.search_objective)
        form.addRow("Time budget:", self.search_time)
        form.addRow("Max trials:", self.search_trials)
        form.addRow("", self.search_advanced)
        self._seed_label = QLabel("Seed:")
        form.addRow(self._seed_label, self.search_seed)
        self._show_search_advanced(False)
        lay.addWidget(box)
        self.search_note = _note("")
        lay.addWidget(self.search_note)
        lay.addStretch(1)
        return page

    def _show_search_advanced(self, shown: bool) -> None:
        self._seed_label.setVisible(shown)
        self.search_seed.setVisible(shown)

    def _on_mode(self, *_args: Any) -> None:
        search = self.search_mode
        self.mode_stack.setCurrentIndex(1 if search else 0)
        item = self.steps.item(SETTINGS)
        if item is not None:
            flags = item.flags()
            enabled = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            item.setFlags(flags & ~enabled if search else flags | enabled)
        self._show_search_note()

    @property
    def search_mode(self) -> bool:
        """True when page 1 says *Find the smallest model for me*."""
        return self.mode_search.isChecked()

    def set_search_mode(self, on: bool) -> None:
        (self.mode_search if on else self.mode_manual).setChecked(True)

    def search_config(self) -> dict[str, Any]:
        """The search settings of page 1 (budget_pts, objective, time_s, trials, seed)."""
        trials = self.search_trials.value()
        return {
            "budget_pts": round(float(self.search_budget.value()), 3),
            "objective": str(self.search_objective.currentData()),
            "time_s": float(self.search_time.value() * 60),
            "trials": int(trials) if trials else None,
            "seed": int(self.search_seed.value()),
        }

    def _show_search_note(self) -> None:
        desc = self.session.data.description or {}
        n_val = desc.get("n_val")
        if isinstance(n_val, int) and n_val > 0:
            self.search_note.setText(
                f"The validation split has {n_val} samples: one sample is "
                f"{100 / n_val:.2f} points, so differences smaller than that are noise."
            )
        else:
            self.search_note.setText("")

    def _build_manual(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(_heading("Choose the techniques"))
        lay.addWidget(
            _note(
                "They run in this order. Combine them freely: e.g. pruning → clustering → "
                "quantization-aware training → int8 keeps the zeros and the clusters."
            )
        )
        self.technique_boxes: dict[str, QCheckBox] = {}
        for t in self.step_order:
            spec = self.step_specs[t]
            box = QCheckBox(spec.label)
            box.setToolTip(spec.help)
            f = box.font()
            f.setBold(True)
            box.setFont(f)
            box.toggled.connect(self._on_techniques_changed)
            self.technique_boxes[t] = box
            lay.addWidget(box)
            help_label = _note(spec.help)
            help_label.setContentsMargins(24, 0, 0, 4)
            lay.addWidget(help_label)
        for t in DEFAULT_TECHNIQUES:  # the usual start; any registered set works
            if t in self.technique_boxes:
                self.technique_boxes[t].setChecked(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Or start from an example:"))
        self.examples = QComboBox()
        self.examples.addItem("—", None)
        self._example_docs: dict[str, dict[str, Any]] = {}
        for path in self._example_recipes():
            doc = _read_example(path)
            if doc is None:
                continue
            self._example_docs[str(path)] = doc
            self.examples.addItem(_example_text(doc, ""), str(path))
        self.examples.activated.connect(self._on_example)
        self.examples.currentIndexChanged.connect(self._show_example_note)
        self.examples.setMinimumWidth(260)
        self.examples.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.examples.setMinimumContentsLength(40)
        row.addWidget(self.examples, 1)
        load = QPushButton("Load recipe…")
        load.clicked.connect(self.load_recipe_dialog)
        row.addWidget(load)
        lay.addLayout(row)
        self.example_note = _note("")
        self.example_note.setObjectName("exampleNote")
        lay.addWidget(self.example_note)
        lay.addStretch(1)
        self.refresh_estimates()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        return scroll

    def _build_settings(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(_heading("Set the knobs"))
        lay.addWidget(_note("Defaults suit most models; hover a field to see what it does."))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        self._settings_layout = QVBoxLayout(inner)
        general = QGroupBox("Recipe")
        form = QFormLayout(general)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.recipe_name = QLineEdit("my-recipe")
        self.recipe_name.setMinimumWidth(260)
        self.recipe_name.setToolTip("A name for this recipe; runs and exported files use it.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed: the same seed gives the same result on this computer.")
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(32)
        self.batch.setToolTip("Samples per training step while fine-tuning.")
        for w in (self.recipe_name,):
            w.textChanged.connect(self._validate)
        self.seed.valueChanged.connect(self._validate)
        self.batch.valueChanged.connect(self._validate)
        form.addRow("Name:", self.recipe_name)
        form.addRow("Seed:", self.seed)
        form.addRow("Batch size:", self.batch)
        self._settings_layout.addWidget(general)
        for t in self.step_order:
            spec = self.step_specs[t]
            box = QGroupBox(spec.label)
            box.setToolTip(spec.help)
            grid = QGridLayout(box)
            grid.setColumnStretch(2, 1)
            grid.setHorizontalSpacing(12)
            self.editors[t] = {}
            for row, knob in enumerate(spec.knobs):
                ed = KnobEditor(knob, self._validate, t)
                self.editors[t][knob.name] = ed
                label = QLabel(knob.title + ":")
                label.setToolTip(ed.widget.toolTip())
                if isinstance(ed.widget, (LayerNamesEdit, PerLayerEdit)):
                    ed.widget.setFixedWidth(280)
                elif not isinstance(ed.widget, QCheckBox):
                    ed.widget.setFixedWidth(190)
                hint = QLabel(NAMES_HINT if knob.name == "keep_float" else knob.help)
                hint.setWordWrap(True)
                hint.setStyleSheet("color: #666;")
                hint.setToolTip(ed.widget.toolTip())
                grid.addWidget(label, row, 0)
                grid.addWidget(ed.widget, row, 1)
                grid.addWidget(hint, row, 2)
            self.step_boxes[t] = box
            self._settings_layout.addWidget(box)
        mode = self.editors.get("quantize", {}).get("mode")
        if mode is not None and isinstance(mode.widget, QComboBox):
            mode.widget.currentIndexChanged.connect(self._sync_int8_knobs)
        self._sync_int8_knobs()
        self._settings_layout.addStretch(1)
        scroll.setWidget(inner)
        lay.addWidget(scroll, 1)
        self.validation = QLabel("")
        self.validation.setWordWrap(True)
        self.validation.setObjectName("recipeValidation")
        lay.addWidget(self.validation)
        return page

    def _sync_int8_knobs(self, *_args: Any) -> None:
        """The knobs only an int8 conversion reads are enabled only in int8 mode."""
        eds = self.editors.get("quantize", {})
        mode = eds.get("mode")
        int8 = mode is None or mode.value() == "int8"
        for name in INT8_ONLY_KNOBS:
            ed = eds.get(name)
            if ed is not None:
                ed.widget.setEnabled(int8)

    def _build_data(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(_heading("Check the data"))
        lay.addWidget(
            _note(
                "Fine-tuning trains on the training split and watches validation; every accuracy "
                "you see is measured on the test split, which no step trains on."
            )
        )
        self.model_line = QLabel("")
        self.model_line.setWordWrap(True)
        lay.addWidget(self.model_line)
        box = QGroupBox("Dataset")
        bl = QVBoxLayout(box)
        self.data_picker = DataPicker(lambda: self._folder("data"))
        self.data_picker.changed.connect(self.dataChosen)
        bl.addWidget(self.data_picker)
        lay.addWidget(box)
        lay.addStretch(1)
        return page

    def _build_review(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(_heading("Review the recipe"))
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.summary)
        self.recipe_json = QPlainTextEdit()
        self.recipe_json.setReadOnly(True)
        self.recipe_json.setFont(QFont("monospace"))
        lay.addWidget(self.recipe_json, 1)
        row = QHBoxLayout()
        save = QPushButton("Save recipe…")
        save.clicked.connect(self.save_recipe_dialog)
        load = QPushButton("Load recipe…")
        load.clicked.connect(self.load_recipe_dialog)
        row.addWidget(save)
        row.addWidget(load)
        row.addStretch(1)
        lay.addLayout(row)
        self.review_status = QLabel("")
        self.review_status.setWordWrap(True)
        lay.addWidget(self.review_status)
        return page

    def _build_run(self) -> QWidget:
        """Page 5: the run view, or the search view while / after a search."""
        self.run_stack = QStackedWidget()
        self.run_stack.addWidget(self._build_run_view())
        self.search_view = SearchView()
        self.search_view.stopRequested.connect(self.stop_search)
        self.search_view.openRequested.connect(self.open_trial_as_run)
        self.search_view.continueRequested.connect(self.continue_search)
        self.search_view.recipeSaved.connect(self.recipeSaved)
        self.search_view.showRunRequested.connect(self.show_run_view)
        self.search_view.last_folder = lambda: self._folder("recipe")
        self.run_stack.addWidget(self.search_view)
        return self.run_stack

    def show_search_view(self) -> None:
        """The Run page shows the search (running or the last one)."""
        self.run_stack.setCurrentWidget(self.search_view)
        self.search_view.run_button.setVisible(self.run is not None)

    def show_run_view(self) -> None:
        """The Run page shows the run (live or the last one)."""
        self.run_stack.setCurrentIndex(0)
        self.search_button.setVisible(self.search_view.has_search)

    def _build_run_view(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.run_title = _heading("No run yet")
        head.addWidget(self.run_title, 1)
        self.search_button = QPushButton("← The search")
        self.search_button.setToolTip("Back to the search this run was opened from")
        self.search_button.clicked.connect(self.show_search_view)
        self.search_button.setVisible(False)
        head.addWidget(self.search_button)
        self.results_button = QPushButton("See results")
        self.results_button.clicked.connect(self.showResultsRequested)
        self.results_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the run (Esc). Nothing half-finished is kept.")
        self.cancel_button.clicked.connect(self.cancel_run)
        self.cancel_button.setEnabled(False)
        head.addWidget(self.results_button)
        head.addWidget(self.cancel_button)
        lay.addLayout(head)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        row.addWidget(self.progress, 1)
        self.time_left = QLabel("")
        self.time_left.setMinimumWidth(150)
        row.addWidget(self.time_left)
        lay.addLayout(row)
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        lay.addWidget(self.stage_label)
        lay.addWidget(self._build_alarm())
        lay.addWidget(self._build_suggestions())
        split = QSplitter(Qt.Orientation.Vertical)
        chart_box = QWidget()
        cb = QVBoxLayout(chart_box)
        cb.setContentsMargins(0, 0, 0, 0)
        self.no_charts_note = _note(
            "This recipe has no training step, so there are no training charts: the run "
            "converts the model to .tflite and measures it."
        )
        self.no_charts_note.setObjectName("noChartsNote")
        self.no_charts_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_charts_note.setVisible(False)
        cb.addWidget(self.no_charts_note)
        self.charts = LiveCharts()
        cb.addWidget(self.charts, 1)
        split.addWidget(chart_box)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("monospace"))
        self.log.setPlaceholderText("The engine's log appears here while a recipe runs.")
        split.addWidget(self.log)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([420, 110])
        lay.addWidget(split, 1)
        return page

    def _build_alarm(self) -> QWidget:
        """The warning bar a collapsing validation accuracy raises during training."""
        bar = QFrame()
        bar.setObjectName("trainingAlarm")
        bar.setStyleSheet(ALARM_STYLE)
        row = QHBoxLayout(bar)
        row.setContentsMargins(8, 4, 8, 4)
        self.alarm_label = QLabel("")
        self.alarm_label.setWordWrap(True)
        self.alarm_label.setStyleSheet(f"color: {VERDICT_COLORS['collapsed']};")
        row.addWidget(self.alarm_label, 1)
        self.alarm_cancel = QPushButton("Cancel the run")
        self.alarm_cancel.clicked.connect(self.cancel_run)
        row.addWidget(self.alarm_cancel)
        self.alarm_bar = bar
        bar.setVisible(False)
        return bar

    def _build_suggestions(self) -> QWidget:
        """What to try after a run over budget: one line each, a button when cheap."""
        box = QWidget()
        box.setObjectName("suggestions")
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        self.suggestions_label = QLabel("")
        self.suggestions_label.setWordWrap(True)
        self.suggestions_label.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.suggestions_label)
        self._suggestion_row = QHBoxLayout()
        lay.addLayout(self._suggestion_row)
        self.suggestion_buttons: dict[str, QPushButton] = {}
        self.suggestions_box = box
        box.setVisible(False)
        return box

    # -- navigation -----------------------------------------------------------------------
    def go_to(self, index: int) -> None:
        index = max(0, min(RUN, index))
        if index == SETTINGS and self.search_mode:  # a search has no settings page
            index = DATA if self.stack.currentIndex() < SETTINGS else TECHNIQUES
        if self.stack.currentIndex() != index:
            self.stack.setCurrentIndex(index)
        if self.steps.currentRow() != index:
            self.steps.blockSignals(True)
            self.steps.setCurrentRow(index)
            self.steps.blockSignals(False)
        self.back_button.setEnabled(index > 0)
        if index == REVIEW:
            self.next_button.setText("Search ▶" if self.search_mode else "Run ▶")
        elif index == RUN:
            self.next_button.setText("New recipe")
        else:
            self.next_button.setText("Next →")
        if index == TECHNIQUES:
            self.refresh_estimates()
            self._show_search_note()
        if index == DATA:
            self.refresh_data()
        if index == REVIEW:
            self._refresh_review()
        self.message.setText("")

    def show_run(self, run: RunRecord | None) -> None:
        """Show a stored run (or none) on the Run page: title, progress, summary, log, charts.
        Not while a run is going (the live run owns the page)."""
        if self.running:
            raise RuntimeError("a run is going: its page cannot show another run")
        self.run = run
        self.charts.show_run(run)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.time_left.setText("")
        self.alarm_bar.setVisible(False)
        self._show_suggestions(None)
        self._show_charts_for(run.recipe if run is not None else None)
        if run is None:
            self.run_title.setText("No run yet")
            self.progress.setValue(0)
            self.progress.setFormat("")
            self.stage_label.setStyleSheet("")
            self.stage_label.setText("")
            self.results_button.setEnabled(False)
            self.log.clear()
            return
        verb = {"finished": "Finished", "failed": "Failed", "cancelled": "Cancelled"}.get(
            run.status, run.status.capitalize()
        )
        self.run_title.setText(f"{verb} {run.name}")
        if run.status == "finished":
            self.progress.setValue(self.progress.maximum())
            self.progress.setFormat("100 % — done")
            self._show_finish_line(run)
        else:
            self.progress.setValue(0)
            self.progress.setFormat(run.status)
            self.stage_label.setStyleSheet(ERROR_STYLE if run.status == "failed" else "")
            self.stage_label.setText(f"✗ {run.error}" if run.error else run.status)
        self.results_button.setEnabled(run.status == "finished")
        self.log.setPlainText("\n".join(run.log))

    def warm_up_charts(self, delay_ms: int = 300) -> None:
        """Build the live charts (imports pyqtgraph, ~0.3 s) ``delay_ms`` from now, so
        neither the first paint nor the first Run click pays for it."""
        QTimer.singleShot(delay_ms, self.charts, self.charts.ensure_built)

    def stop_live_charts(self) -> None:
        """Stop redrawing the live charts (the window is closing)."""
        self.charts.stop_live()
        self.search_view.stop_clock()

    def view_state(self) -> dict[str, Any]:
        """What a project keeps of this tab's view: the wizard's recipe, its page, the run
        shown, page 1's choice and which of run / search the Run page shows (``wizard``,
        ``wizard_page``, ``compress_run``, ``wizard_search``, ``run_view``)."""
        return {
            "wizard": self.recipe_dict(),
            "wizard_page": self.current_page(),
            "compress_run": self.run.id if self.run is not None else None,
            "wizard_search": self.search_mode,
            "run_view": "search" if self.run_stack.currentWidget() is self.search_view else "run",
        }

    def restore_view_state(self, ui: dict[str, Any], runs: list[RunRecord]) -> None:
        """Show what ``view_state`` recorded; ``runs`` are the runs it may name. Anything
        stale (an invalid recipe, a run no longer there) is skipped."""
        wizard = ui.get("wizard")
        if isinstance(wizard, dict):
            try:
                self.set_recipe(validate_recipe(wizard))
            except RecipeError:
                pass
        by_id = {r.id: r for r in runs}
        shown = by_id.get(ui.get("compress_run") or "") or self.run
        if shown is not None and not self.running:
            self.show_run(shown)
        if isinstance(ui.get("wizard_search"), bool):
            self.set_search_mode(ui["wizard_search"])
        searched = self.search_view.has_search
        if searched and (ui.get("run_view") == "search" or self.run is None):
            self.show_search_view()
        else:
            self.show_run_view()
        page = ui.get("wizard_page")
        if isinstance(page, int) and 0 <= page <= RUN and (page != RUN or self.run or searched):
            self.go_to(page)

    def _next(self) -> None:
        i = self.stack.currentIndex()
        if i == REVIEW and self.search_mode:
            self.start_search()
        elif i == REVIEW:
            self.start_run()
        elif i == RUN:
            self.go_to(TECHNIQUES)
        else:
            self.go_to(i + 1)

    # -- recipe ---------------------------------------------------------------------------
    def current_page(self) -> int:
        """The wizard page shown (TECHNIQUES … RUN)."""
        return self.stack.currentIndex()

    def selected_steps(self) -> list[str]:
        return [t for t in self.step_order if self.technique_boxes[t].isChecked()]

    def _on_techniques_changed(self) -> None:
        chosen = self.selected_steps()
        for t, box in self.step_boxes.items():
            box.setVisible(t in chosen)
        self._validate()

    def recipe_dict(self) -> dict[str, Any]:
        """The recipe as the forms show it (not yet validated)."""
        steps = []
        for t in self.selected_steps():
            step: dict[str, Any] = {"type": t}
            for name, ed in self.editors[t].items():
                step[name] = ed.value()
            steps.append(step)
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.recipe_name.text().strip() or "recipe",
            "seed": self.seed.value(),
            "batch_size": self.batch.value(),
            "steps": steps,
        }

    def validated_recipe(self) -> Recipe:
        """Raises RecipeError with the engine's message."""
        return validate_recipe(self.recipe_dict())

    def _validate(self, *_args: Any) -> Recipe | None:
        if not hasattr(self, "validation"):
            return None
        try:
            recipe = self.validated_recipe()
        except RecipeError as exc:
            self.validation.setStyleSheet(ERROR_STYLE)
            self.validation.setText(f"✗ {exc}")
            return None
        if recipe.warnings:
            self.validation.setStyleSheet(WARN_STYLE)
            self.validation.setText("⚠ " + "\n⚠ ".join(recipe.warnings))
        else:
            self.validation.setStyleSheet(OK_STYLE)
            self.validation.setText("✓ The recipe is valid.")
        return recipe

    def set_recipe(self, recipe: Recipe) -> None:
        """Fill the forms from a validated recipe."""
        types = recipe.step_types()
        for t, box in self.technique_boxes.items():
            box.blockSignals(True)
            box.setChecked(t in types)
            box.blockSignals(False)
        for step in recipe.steps:
            for name, ed in self.editors[step["type"]].items():
                if name in step:
                    ed.set_value(step[name])
        self.recipe_name.setText(recipe.name)
        self.seed.setValue(recipe.seed)
        self.batch.setValue(recipe.batch_size)
        self._on_techniques_changed()
        if self.stack.currentIndex() == REVIEW:
            self._refresh_review()

    def load_recipe_file(self, path: str | Path) -> bool:
        """Load a recipe JSON file into the wizard; a bad file is reported, nothing changes."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            recipe = parse_recipe_text(text, source=f"recipe {p.name}")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.report("Cannot load the recipe", f"cannot read {p.name}: {exc}")
            return False
        except RecipeError as exc:
            self.errors.report("Cannot load the recipe", str(exc))
            return False
        # Steps the wizard's order cannot express (e.g. finetune before prune) stay as loaded
        # in the JSON only if the order matches the pipeline order.
        order = [self.step_order.index(t) for t in recipe.step_types()]
        if order != sorted(order):
            self.errors.report(
                "Recipe loaded partly",
                f"{p.name} orders its steps as {' → '.join(recipe.step_types())}; the wizard "
                f"uses {' → '.join(t for t in self.step_order if t in recipe.step_types())}.",
            )
        self.set_recipe(recipe)
        return True

    def save_recipe_file(self, path: str | Path) -> bool:
        """Write the valid recipe to ``path`` (``recipeSaved`` then carries it); a problem is
        reported and False returned."""
        try:
            recipe = self.validated_recipe()
        except RecipeError as exc:
            self.errors.report("The recipe is not valid", str(exc))
            return False
        try:
            Path(path).write_text(json.dumps(recipe.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.errors.report("Cannot save the recipe", f"{path}: {exc.strerror or exc}")
            return False
        self.review_status.setStyleSheet(OK_STYLE)
        self.review_status.setText(f"Saved to {path}")
        self.recipeSaved.emit(recipe.to_dict())
        return True

    def _example_recipes(self) -> list[Path]:
        if self.examples_dir is None or not self.examples_dir.is_dir():
            return []
        return sorted(self.examples_dir.glob("*.json"))

    def _on_example(self, _index: int) -> None:
        path = self.examples.currentData()
        if path:
            self.load_recipe_file(path)

    def load_recipe_dialog(self) -> None:
        """Ask for a recipe file and load it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Load recipe", self._folder("recipe"), "Recipes (*.json);;All files (*)"
        )
        if path:
            self._remember("recipe", path)
            self.load_recipe_file(path)

    def save_recipe_dialog(self) -> None:
        """Ask for a file name and save the recipe there."""
        start = str(Path(self._folder("recipe")) / f"{self.recipe_name.text() or 'recipe'}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", start, "Recipes (*.json)")
        if path:
            self._remember("recipe", path)
            self.save_recipe_file(path)

    def _refresh_review(self) -> None:
        if self.search_mode:
            self._refresh_search_review()
            return
        recipe = self._validate()
        if recipe is None:
            self.summary.setText(f"<span style='{ERROR_STYLE}'>{self.validation.text()}</span>")
            self.recipe_json.setPlainText(json.dumps(self.recipe_dict(), indent=2))
            return
        model = self.session.model
        data = self.session.data
        lines = []
        for i, step in enumerate(recipe.steps, 1):
            spec = self.step_specs.get(step["type"])
            label = spec.label if spec is not None else step["type"]
            lines.append(f"{i}. <b>{label}</b>: {_describe(step, spec)}")
        last = self.step_specs.get(recipe.steps[-1]["type"])
        if not getattr(last, "final", recipe.steps[-1]["type"] == "quantize"):
            lines.append("Exported as float32 .tflite (no quantization step).")
        where = (
            f"Model: <b>{model.display_name if model else 'none — open one in the Model tab'}"
            f"</b>; data: <b>{'demo digits' if data.spec == 'demo' else data.spec}</b>"
            f" (scaling {data.scale})."
        )
        warn = "".join(f"<br><span style='{WARN_STYLE}'>⚠ {w}</span>" for w in recipe.warnings)
        est = fmt_estimate(self.estimate(recipe.to_dict()))
        when = (
            f"<br>Estimated time on this computer: <b>{est}</b> (an estimate from the "
            "baseline measurement)."
            if est
            else ""
        )
        self.summary.setText(where + "<br>" + "<br>".join(lines) + warn + when)
        self.recipe_json.setPlainText(json.dumps(recipe.to_dict(), indent=2))

    def _refresh_search_review(self) -> None:
        cfg = self.search_config()
        model, data = self.session.model, self.session.data
        short = OBJECTIVES[cfg["objective"]][1]
        trials = f"at most {cfg['trials']} trials" if cfg["trials"] else "no trial limit"
        lines = [
            f"Model: <b>{model.display_name if model else 'none — open one in the Model tab'}"
            f"</b>; data: <b>{'demo digits' if data.spec == 'demo' else data.spec}</b>"
            f" (scaling {data.scale}).",
            f"<b>Find the smallest {short}</b> that loses at most "
            f"<b>{cfg['budget_pts']:g} point{'s' if cfg['budget_pts'] != 1 else ''}</b> of "
            f"validation accuracy; up to <b>{fmt_duration(cfg['time_s'])}</b>, {trials}, "
            f"seed {cfg['seed']}.",
            "Every trial is judged on the validation split; the best points are measured "
            "once on the test split when the search ends. Stop keeps everything found.",
        ]
        self.summary.setText("<br>".join(lines))
        self.recipe_json.setPlainText(json.dumps({"search": cfg}, indent=2))

    def refresh_data(self) -> None:
        """Show the session's model and dataset on the Data page."""
        model = self.session.model
        if model is None:
            self.model_line.setStyleSheet(ERROR_STYLE)
            self.model_line.setText(
                "No model open: open one in the Model tab (or File → Open demo)."
            )
        else:
            self.model_line.setStyleSheet("")
            self.model_line.setText(f"Model: <b>{model.display_name}</b>")
        self.data_picker.show_choice(self.session.data)
        self.data_picker.set_input_kind(input_kind_of(model.report) if model else None)
        names = [
            str(row.get("name"))
            for row in (model.layers if model is not None else [])
            if row.get("name") and row.get("class") != "InputLayer"
        ]
        weighted = [
            str(row.get("name"))
            for row in (model.layers if model is not None else [])
            if row.get("name") and row.get("class") != "InputLayer" and (row.get("params") or 0)
        ]
        for eds in self.editors.values():
            for ed in eds.values():
                if isinstance(ed.widget, LayerNamesEdit):
                    ed.widget.set_layer_names(names)
                elif isinstance(ed.widget, PerLayerEdit):
                    ed.widget.set_layer_names(_map_layers(ed.widget, weighted, model))
        self.refresh_estimates()

    # -- running --------------------------------------------------------------------------
    def set_run_hooks(self, hooks: RunHooks | None) -> None:
        """Hand the lifecycle of the runs started here to ``hooks`` (None: the tab's
        defaults, ``runs_dir`` and the split of ``session.data``)."""
        self._hooks = hooks

    @property
    def run_hooks(self) -> RunHooks | None:
        """The owner of the runs started here (None: the tab's defaults)."""
        return self._hooks

    def _default_plan(self, name: str, out_dir: str | None) -> RunPlan:
        n = len(self.session.runs) + 1
        if out_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            out_dir = str(self.runs_dir / f"{stamp}-{n:02d}-{safe}")
        data = self.session.data
        return RunPlan(f"run-{n}", out_dir, int(data.split_seed), float(data.val_fraction))

    def can_run(self) -> str:
        """Why a run cannot start now ('' if it can)."""
        if self.job is not None and not self.job.done:
            return "A compression is already running. Wait for it to finish or cancel it first."
        if self.search_job is not None and not self.search_job.done:
            return "A search is running. Wait for it to finish or stop it first."
        if self.session.model is None:
            return "Open a model first (Model tab, or File → Open demo)."
        if not self.session.data.spec:
            return "Choose a dataset for this model first (Model tab → Dataset)."
        if self.session.data.error:
            return f"The dataset does not fit the model: {self.session.data.error}"
        return ""

    def start_run(self, out_dir: str | Path | None = None) -> RunRecord | None:
        """Validate and submit the recipe; returns the new run (None if refused).

        ``out_dir`` overrides where the run writes (self-test, probes); otherwise the run
        hooks (or ``runs_dir``) decide. The job carries the dataset's split, not the
        recipe's seed."""
        asked = str(out_dir) if out_dir else None
        hooks = self._hooks
        if hooks is not None and not hooks.may_start(asked):
            return None  # refused by the run's owner, who said why
        why = self.can_run()
        if why:
            self.message.setStyleSheet(WARN_STYLE)
            self.message.setText(why)
            return None
        try:
            recipe = self.validated_recipe()
        except RecipeError as exc:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(f"✗ {exc}")
            self.go_to(SETTINGS)
            return None
        return self._launch_run("compress", recipe.to_dict(), {}, asked)

    def _launch_run(
        self, job_name: str, recipe: dict[str, Any], extra: dict[str, Any], asked: str | None
    ) -> RunRecord:
        """Submit ``job_name`` ("compress", or "open_trial" for a search's trial) as a run of
        ``recipe`` (checks done); the run's owner decides its folder and split."""
        hooks = self._hooks
        model = self.session.model
        assert model is not None
        name = str(recipe.get("name") or "recipe")
        plan = (
            hooks.before_start(recipe, asked)
            if hooks is not None
            else self._default_plan(name, asked)
        )
        data = self.session.data
        n = len(self.session.runs) + 1
        run = RunRecord(
            id=plan.run_id,
            name=f"#{n} {name}",
            recipe=recipe,
            model=model.spec,
            data=data.spec,
            scale=data.scale,
            out_dir=str(plan.out_dir),
        )
        self.session.runs.append(run)
        self.run = run
        params = {
            "model": model.spec,
            "data": data.spec,
            "scale": data.scale,
            "allow_unsafe": model.allow_unsafe,
            "recipe": recipe,
            "out": str(plan.out_dir),
            "split_seed": int(plan.split_seed),
            "val_fraction": float(plan.val_fraction),
            **extra,
        }
        if job_name != "compress":
            params.pop("recipe")
        job = self.client.submit(job_name, params)
        self.job = job
        job.accepted.connect(self._on_accepted)
        job.stage.connect(self._on_stage)
        job.progress.connect(self._on_progress)
        job.metric.connect(self._on_metric)
        job.log.connect(self._on_log)
        job.finished.connect(self._on_finished)
        if hooks is not None:
            hooks.on_started(run)  # the run's owner may number it (run.name) first
        self._reset_run_view(run)
        self.show_run_view()
        self.go_to(RUN)
        self.runStarted.emit(run)
        return run

    # -- searching ------------------------------------------------------------------------
    def set_search_hooks(self, hooks: SearchHooks | None) -> None:
        """Hand the searches started here to ``hooks`` (None: ``runs_dir``, no project)."""
        self._search_hooks = hooks

    @property
    def searching(self) -> bool:
        return self.search_job is not None and not self.search_job.done

    def _default_search_plan(self, config: dict[str, Any], out_dir: str | None) -> SearchPlan:
        if out_dir is None:
            out_dir = str(self.runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-search")
        data = self.session.data
        return SearchPlan("", out_dir, int(data.split_seed), float(data.val_fraction), config)

    def start_search(
        self, out_dir: str | Path | None = None, config: dict[str, Any] | None = None
    ) -> Job | None:
        """Start the "search" job with page 1's settings (or ``config``); ``out_dir`` is a
        study folder to continue (None: the search's owner makes a new one). Returns the
        job (None if refused; the reason is shown)."""
        why = self.can_run()
        if why:
            self.message.setStyleSheet(WARN_STYLE)
            self.message.setText(why)
            return None
        config = dict(config or self.search_config())
        asked = str(out_dir) if out_dir else None
        hooks = self._search_hooks
        plan = (
            hooks.before_search(config, asked)
            if hooks is not None
            else self._default_search_plan(config, asked)
        )
        if plan is None:
            return None
        model, data = self.session.model, self.session.data
        assert model is not None
        params = {
            "model": model.spec,
            "data": data.spec,
            "scale": data.scale,
            "allow_unsafe": model.allow_unsafe,
            "split_seed": int(plan.split_seed),
            "val_fraction": float(plan.val_fraction),
            "budget": float(config["budget_pts"]),
            "objective": str(config["objective"]),
            "time_s": config.get("time_s"),
            "trials": config.get("trials"),
            "seed": int(config.get("seed") or 0),
            "out": str(plan.out_dir),
        }
        previous = read_search_file(plan.out_dir) if asked else None
        job = self.client.submit("search", params)
        self.search_job = job
        self.search_plan = plan
        job.other.connect(self.search_view.apply_event)
        job.stage.connect(self._on_search_stage)
        job.finished.connect(self._on_search_finished)
        self.search_view.start(config, str(plan.out_dir), previous)
        self.search_view.show_activity(
            f"Queued behind the engine's current job ({self.client.running_job.name})."
            if self.client.running_job not in (None, job)
            else "Starting: the original model is measured once…"
        )
        self.show_search_view()
        self.go_to(RUN)
        self.searchStarted.emit(plan)
        return job

    def continue_search(self) -> Job | None:
        """Run more trials of the study shown (its folder and settings)."""
        st = self.search_view.state
        if not st.search_dir:
            return None
        config = dict(st.config)
        if st.stopped == "trials":  # the study has its trials: run on the time budget only
            config["trials"] = None
        return self.start_search(st.search_dir, config)

    def stop_search(self) -> None:
        """Stop the running search: it ends normally and keeps everything found."""
        if self.searching:
            assert self.search_job is not None
            self.client.cancel(self.search_job)

    def _on_search_stage(self, ev: dict[str, Any]) -> None:
        if ev.get("state") == "start":
            self.search_view.show_activity(str(ev.get("label") or ev.get("stage", "")))

    def _on_search_finished(self, state: str) -> None:
        job, plan = self.search_job, self.search_plan
        if job is None or plan is None:
            return
        doc: dict[str, Any] | None = None
        if state == "finished" and isinstance(job.result, dict) and job.result.get("trials"):
            doc = job.result
        else:  # killed or failed: what the engine wrote after its last trial
            doc = read_search_file(plan.out_dir)
        error = ""
        if state == "failed":
            err = job.error or {}
            error = str(err.get("message", "the search failed"))
            if err.get("kind") != "crashed":
                self.errors.report("The search failed", error, str(err.get("details", "")))
        self.search_view.finish(doc, state, error)
        if self._search_hooks is not None:
            self._search_hooks.on_search_done(plan, doc)
        self.searchFinished.emit(plan, doc)

    def show_search(self, doc: dict[str, Any] | None, search_dir: str | None = None) -> None:
        """Show a stored search (None: none) in the search view; not while one runs."""
        if self.searching:
            return
        self.search_view.show_document(doc, search_dir)
        if doc is None and self.run_stack.currentWidget() is self.search_view:
            self.show_run_view()
        self.search_button.setVisible(self.search_view.has_search)

    def open_trial_as_run(self, number: int) -> RunRecord | None:
        """Measure trial ``number`` of the search shown on the test split (job
        "open_trial") as a normal run: it goes to Results and to the project."""
        st = self.search_view.state
        row = st.trials.get(number)
        if row is None or not isinstance(row.get("recipe"), dict) or not st.search_dir:
            return None
        hooks = self._hooks
        if hooks is not None and not hooks.may_start(None):
            return None
        why = self.can_run()
        if why:
            self.search_view.show_activity(why)
            return None
        recipe = dict(row["recipe"])
        try:
            recipe = validate_recipe(recipe).to_dict()
        except RecipeError:
            pass  # the engine wrote it; keep it as it is
        recipe["name"] = str(recipe.get("name") or f"search-trial-{number:04d}")
        extra = {"search_dir": str(st.search_dir), "trial": int(number)}
        return self._launch_run("open_trial", recipe, extra, None)

    def cancel_run(self) -> None:
        if self.searching:
            self.search_view._stop()
            return
        if self.job is not None and not self.job.done:
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            self.stage_label.setText("Cancelling: the engine stops after the current batch…")
            self.client.cancel(self.job)

    @property
    def running(self) -> bool:
        """A run or a search is going."""
        return (self.job is not None and not self.job.done) or self.searching

    def _reset_run_view(self, run: RunRecord) -> None:
        self.run_title.setText(f"Running {run.name}")
        self.stage_label.setStyleSheet("")
        self.progress.setValue(0)
        self.progress.setFormat("waiting for the engine…")
        self.time_left.setText("")
        busy = self.client.running_job
        self.stage_label.setText(
            f"Queued behind the engine's current job ({busy.name})."
            if busy and busy is not self.job
            else "Starting…"
        )
        self.log.clear()
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.results_button.setEnabled(False)
        self.alarm_bar.setVisible(False)
        self._alarmed = False
        self._alarm_prev = None
        self._show_suggestions(None)
        self._show_charts_for(run.recipe)
        self._stage = (0, 1, "")
        self._frac = 0.0
        self._t0 = time.monotonic()
        self.charts.show_run(run)
        self.charts.start_live()

    def _on_accepted(self) -> None:
        self._t0 = time.monotonic()
        self.stage_label.setText("The engine accepted the run.")
        self.progress.setFormat("starting…")

    def _on_stage(self, ev: dict[str, Any]) -> None:
        idx, count = int(ev.get("index", 0)), max(1, int(ev.get("count", 1)))
        label = str(ev.get("label") or ev.get("stage", ""))
        if ev.get("state") == "start":
            self._stage = (idx, count, label)
            self._stage_name = str(ev.get("stage", ""))
            self._set_fraction(idx / count)
            self.stage_label.setText(f"Step {idx + 1} of {count}: {label}")
            self._append_log(f"▶ {label}")
        else:
            self._set_fraction((idx + 1) / count)

    def _on_progress(self, ev: dict[str, Any]) -> None:
        idx, count, label = self._stage
        total = max(1, int(ev.get("total", 1)))
        step = min(total, int(ev.get("step", 0)))
        self._set_fraction((idx + step / total) / count)

    def _set_fraction(self, frac: float) -> None:
        frac = max(self._frac, min(1.0, frac))  # never goes backwards
        self._frac = frac
        self.progress.setValue(int(frac * 1000))
        label = self._stage[2]
        self.progress.setFormat(f"{frac * 100:.0f} % — {label}" if label else f"{frac * 100:.0f} %")
        elapsed = time.monotonic() - self._t0
        if 0.03 < frac < 1.0 and elapsed > 1.0:
            self.time_left.setText(f"about {fmt_duration(elapsed * (1 - frac) / frac)} left")
        elif frac >= 1.0:
            self.time_left.setText("")

    def _on_metric(self, ev: dict[str, Any]) -> None:
        if self.run is None:
            return
        if self._hooks is not None:
            self._hooks.on_event(self.run, ev)
        values = ev.get("values") or {}
        self.run.add_metric(float(ev.get("epoch", 0.0)), values)
        self.charts.mark_dirty()
        if "val_accuracy" in values or "sparsity" in values:
            self._append_log(f"  epoch {float(ev.get('epoch', 0)):g}: " + _metric_text(values))
        self._check_alarm(float(ev.get("epoch", 0.0)), values)

    def _check_alarm(self, epoch: float, values: dict[str, Any]) -> None:
        """Show the warning bar (once per run) when validation accuracy has collapsed and is
        not coming back: at collapse level on two epochs in a row of one step, the second no
        better than the first, and, while pruning, only once the sparsity has reached its
        target (accuracy dips while the schedule removes weights, then recovers)."""
        base = (self.session.baseline or {}).get("accuracy")
        val_accuracy = values.get("val_accuracy")
        if self._alarmed or not self.running:
            return
        if not isinstance(val_accuracy, (int, float)) or not isinstance(base, (int, float)):
            return
        step = self._stage[0]
        previous, self._alarm_prev = self._alarm_prev, (step, float(val_accuracy))
        if not budget.training_alarm(float(base), float(val_accuracy), self.budget):
            return
        if previous is None or previous[0] != step:
            return
        if not budget.training_alarm(float(base), previous[1], self.budget):
            return
        if float(val_accuracy) > previous[1] + 0.005:  # recovering
            return
        target = self._prune_target()
        sparsity = values.get("sparsity")
        if target and isinstance(sparsity, (int, float)) and sparsity < 0.98 * target:
            return
        self._alarmed = True
        drop = budget.drop_pts(float(base), float(val_accuracy))
        self.alarm_label.setText(
            f"⚠ Validation accuracy {val_accuracy * 100:.1f} % at epoch {epoch:g} is "
            f"{drop:.1f} points below the original model's {base * 100:.1f} % (budget "
            f"{self.budget:g} point{'s' if self.budget != 1 else ''}) and not recovering: "
            "cancel and try a gentler recipe?"
        )
        self.alarm_cancel.setEnabled(True)
        self.alarm_bar.setVisible(True)
        self._append_log(f"⚠ validation accuracy collapsed ({drop:.1f} points below the baseline)")

    def _prune_target(self) -> float | None:
        """The running recipe's target sparsity while its pruning step runs, else None."""
        if self.run is None or self._stage_name != "prune":
            return None
        for step in self.run.recipe.get("steps", []):
            if isinstance(step, dict) and step.get("type") == "prune":
                return float(step.get("target_sparsity") or 0.0) or None
        return None

    def _on_log(self, ev: dict[str, Any]) -> None:
        level = ev.get("level", "info")
        prefix = {"warning": "⚠ ", "error": "✗ "}.get(level, "")
        self._append_log(prefix + str(ev.get("message", "")))

    def _append_log(self, text: str) -> None:
        if self.run is not None:
            self.run.log.append(text)
        self.log.appendPlainText(text)

    def _on_finished(self, state: str) -> None:
        job, run = self.job, self.run
        if job is None or run is None:
            return
        run.ended = time.time()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.time_left.setText("")
        if state == "finished":
            run.status = "finished"
            run.metrics = job.result or {}
            if not run.series and isinstance(run.metrics.get("series"), list):
                for point in run.metrics["series"]:  # metric events recorded by the engine
                    if isinstance(point, dict) and isinstance(point.get("values"), dict):
                        run.add_metric(float(point.get("epoch", 0.0)), point["values"])
            self._set_fraction(1.0)
            self.progress.setFormat("100 % — done")
            self.run_title.setText(f"Finished {run.name}")
            self._show_finish_line(run)
            self.results_button.setEnabled(True)
            self._append_log(f"✓ finished; files in {run.out_dir}")
        elif state == "cancelled":
            run.status = "cancelled"
            self.run_title.setText(f"Cancelled {run.name}")
            self._frac = 0.0
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            self.stage_label.setStyleSheet(WARN_STYLE)
            self.stage_label.setText("Cancelled. Nothing from this run was kept.")
            self._append_log("■ cancelled")
        else:
            run.status = "failed"
            err = job.error or {}
            run.error = str(err.get("message", ""))
            self.run_title.setText(f"Failed {run.name}")
            self.progress.setFormat("failed")
            self.stage_label.setStyleSheet(ERROR_STYLE)
            self.stage_label.setText(f"✗ {run.error}")
            self._append_log(f"✗ {run.error}")
            if err.get("kind") != "crashed":  # the crash itself is reported by the window
                self.errors.report("The run failed", run.error, str(err.get("details", "")))
        self.alarm_cancel.setEnabled(False)
        self.alarm_bar.setVisible(False)  # the finish line (or the cancel) now says it
        self.charts.finish_live()
        if self._hooks is not None:
            self._hooks.on_done(run)
        self.runFinished.emit(run)

    # -- honest signals -------------------------------------------------------------------
    def set_accuracy_budget(self, pts: float) -> None:
        """The project's accuracy budget (points); recolours the finished run shown."""
        self.budget = budget.check_budget(pts)
        if hasattr(self, "search_budget") and pts > 0:
            self.search_budget.setValue(self.budget)
        if self.run is not None and self.run.status == "finished" and not self.running:
            self._show_finish_line(self.run)

    def verdict(self, run: RunRecord | None = None) -> str | None:
        """The budget verdict of ``run`` (default: the run shown), None without accuracies."""
        return _run_verdict(run or self.run, self.budget)

    def _show_finish_line(self, run: RunRecord) -> None:
        v = _run_verdict(run, self.budget)
        color = VERDICT_COLORS.get(v or "within", VERDICT_COLORS["within"])
        self.stage_label.setStyleSheet(f"color: {color};")
        self.stage_label.setText(_finished_text(run, self.budget))
        if v is None or v == "within":
            self._show_suggestions(None)
        else:
            self._show_suggestions(run, budget.suggestions(run.recipe or {}, v))

    def _show_suggestions(
        self, run: RunRecord | None, items: list[budget.Suggestion] | None = None
    ) -> None:
        for button in self.suggestion_buttons.values():
            self._suggestion_row.removeWidget(button)
            button.deleteLater()
        self.suggestion_buttons = {}
        while self._suggestion_row.count():
            self._suggestion_row.takeAt(0)
        if run is None or not items:
            self.suggestions_label.setText("")
            self.suggestions_box.setVisible(False)
            return
        lines = "".join(f"<li>{s.text}</li>" for s in items)
        self.suggestions_label.setText(f"<b>What to try next:</b><ul>{lines}</ul>")
        recipe = dict(run.recipe or {})
        for s in items:
            label = SUGGESTION_BUTTONS.get(s.action)
            if label is None:
                continue
            button = QPushButton(label)
            button.setToolTip(s.text + "\nChanges the wizard's recipe; review it, then run.")
            button.clicked.connect(lambda _c=False, a=s.action: self.apply_suggestion(a, recipe))
            self._suggestion_row.addWidget(button)
            self.suggestion_buttons[s.action] = button
        self._suggestion_row.addStretch(1)
        bar = self.log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum()
        self.suggestions_box.setVisible(True)
        # The box takes its height from the log: keep the log's last line (the result) shown.
        page_layout = self.suggestions_box.parentWidget().layout()
        if at_end and page_layout is not None:
            page_layout.activate()
            bar.setValue(bar.maximum())

    def apply_suggestion(self, action: str, recipe: dict[str, Any]) -> bool:
        """Put ``recipe`` changed as ``action`` says (a ``budget.Suggestion.action``) into the
        wizard and open the Review page; nothing runs. False for an unknown action or a
        recipe that is no longer valid."""
        if self.running:
            return False
        if action == "int8_only":
            example = self.examples_dir / INT8_EXAMPLE if self.examples_dir else None
            if example is not None and example.is_file() and self.load_recipe_file(example):
                self.go_to(REVIEW)
                return True
            changed: dict[str, Any] | None = {
                "schema_version": SCHEMA_VERSION,
                "name": "int8",
                "steps": [{"type": "quantize", "mode": "int8"}],
            }
        else:
            changed = _changed_recipe(recipe, action)
        if changed is None:
            return False
        try:
            self.set_recipe(validate_recipe(changed))
        except RecipeError as exc:
            self.errors.report("Cannot apply the suggestion", str(exc))
            return False
        self.go_to(REVIEW)
        return True

    def _show_charts_for(self, recipe: dict[str, Any] | None) -> None:
        """Training charts only for recipes that train; a short note for the others."""
        trains = recipe is None or _has_training(recipe)
        self.charts.setVisible(trains)
        self.no_charts_note.setVisible(not trains)

    # -- estimates ------------------------------------------------------------------------
    def estimate(self, recipe: dict[str, Any]) -> float | None:
        """Estimated seconds of ``recipe`` on the session's model and data (None: unknown)."""
        desc = self.session.data.description or {}
        return estimate_seconds(
            recipe,
            self.session.baseline,
            desc.get("n_train"),
            n_val=desc.get("n_val"),
            n_test=desc.get("n_test"),
        )

    def refresh_estimates(self) -> None:
        """Re-label the example recipes with their estimated time for the loaded model (call
        when the model, the data or the baseline change)."""
        for i in range(1, self.examples.count()):
            doc = self._example_docs.get(self.examples.itemData(i))
            if doc is None:
                continue
            est = fmt_estimate(self.estimate(doc))
            self.examples.setItemText(i, _example_text(doc, est))
            tip = str(doc.get("description", ""))
            if est:
                tip += f"\nEstimated time for the loaded model: {est} (an estimate)."
            self.examples.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        view = self.examples.view()  # the list shows whole lines, wider than the box
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24)
        self._show_example_note()

    def _show_example_note(self, *_args: Any) -> None:
        doc = self._example_docs.get(self.examples.currentData() or "")
        if doc is None:
            self.example_note.setText("")
            return
        est = fmt_estimate(self.estimate(doc))
        when = (
            f" Estimated time for the loaded model: {est} (an estimate)."
            if est
            else " (Open a model and its data to see an estimated time.)"
        )
        self.example_note.setText(f"{doc.get('description', '')}{when}")

    # -- reset ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to a fresh launch: wizard on page 1 with the default recipe, no run shown,
        no log, no charts, no example chosen. Not while a run is going (RuntimeError)."""
        if self.running:
            raise RuntimeError("a run is going: cancel it before resetting the Compress tab")
        self.job = None
        for t, box in self.technique_boxes.items():
            box.blockSignals(True)
            box.setChecked(t in DEFAULT_TECHNIQUES)
            box.blockSignals(False)
        for eds in self.editors.values():
            for ed in eds.values():
                ed.set_value(ed.knob.default)
        self.recipe_name.setText("my-recipe")
        self.seed.setValue(0)
        self.batch.setValue(32)
        self.examples.setCurrentIndex(0)
        self._on_techniques_changed()
        self.set_search_mode(False)
        self.search_view.show_document(None)
        self.show_run(None)
        self.show_run_view()
        self._stage = (0, 1, "")
        self._frac = 0.0
        self.review_status.setText("")
        self.refresh_estimates()
        self.go_to(TECHNIQUES)
        self.message.setText("")


def _run_verdict(run: RunRecord | None, budget_pts: float) -> budget.Verdict | None:
    """The verdict of a finished run against its own baseline (None without accuracies)."""
    if run is None:
        return None
    base, comp = run.baseline.get("accuracy"), run.compressed.get("accuracy")
    if not isinstance(base, (int, float)) or not isinstance(comp, (int, float)):
        return None
    return budget.verdict(float(base), float(comp), budget_pts)


def _finished_text(run: RunRecord, budget_pts: float = budget.DEFAULT_BUDGET_PTS) -> str:
    """The one-line summary of a finished run (sizes, ratios, accuracy, budget verdict)."""
    c, m = run.compressed, run.metrics or {}
    v = _run_verdict(run, budget_pts)
    mark = VERDICT_MARKS.get(v or "within", "✓")
    change = ""
    if v is not None:
        base, comp = float(run.baseline["accuracy"]), float(c["accuracy"])
        change = f" ({budget.change_text(base, comp)}; {budget.verdict_text(v, budget_pts)})"
    note = finish_note(m)
    return (
        f"{mark} gzip {fmt_bytes(c.get('tflite_gzip_bytes'))} "
        f"({fmt_ratio(m.get('ratio_gzip'))} smaller), "
        f"raw {fmt_bytes(c.get('tflite_bytes'))} ({fmt_ratio(m.get('ratio_raw'))}), "
        f"accuracy {fmt_pct(c.get('accuracy'))}{change}." + (f"\n{note}" if note else "")
    )


def _has_training(recipe: dict[str, Any]) -> bool:
    """True when a step of ``recipe`` trains (has ``epochs``)."""
    return any(isinstance(s, dict) and "epochs" in s for s in recipe.get("steps", []))


def _changed_recipe(recipe: dict[str, Any], action: str) -> dict[str, Any] | None:
    """``recipe`` (a dict) with the change a suggestion names; None when it does not apply."""
    out = json.loads(json.dumps(recipe))
    steps = {s.get("type"): s for s in out.get("steps", []) if isinstance(s, dict)}
    name = str(out.get("name") or "recipe")
    if action == "lower_sparsity" and "prune" in steps:
        p = steps["prune"]
        lower = max(0.0, round(float(p.get("target_sparsity", 0.8)) - 0.2, 2))
        p["target_sparsity"] = lower
        p["initial_sparsity"] = min(float(p.get("initial_sparsity", 0.0) or 0.0), lower)
        out["name"] = f"{name}-sp{lower * 100:.0f}"
    elif action == "skip_edges" and "prune" in steps:
        steps["prune"]["skip_first"] = steps["prune"]["skip_last"] = True
        out["name"] = f"{name}-skip-edges"
    elif action == "more_clusters" and "cluster" in steps:
        c = steps["cluster"]
        spec = recipe_module.STEP_SPECS.get("cluster")
        top = int(spec.knob("clusters").maximum or 256) if spec else 256
        c["clusters"] = min(top, int(c.get("clusters", 16)) * 2)
        out["name"] = f"{name}-c{c['clusters']}"
    elif action == "more_epochs":
        trained = [s for s in steps.values() if isinstance(s.get("epochs"), int)]
        if not trained:
            return None
        for s in trained:
            s["epochs"] = min(1000, s["epochs"] * 2)
        out["name"] = f"{name}-more-epochs"
    elif action == "qat" and "qat" not in steps:
        final = out["steps"][-1] if out.get("steps") else None
        if not final or final.get("type") != "quantize" or final.get("mode") != "int8":
            return None
        out["steps"].insert(len(out["steps"]) - 1, {"type": "qat"})
        out["name"] = f"{name}-qat"
    else:
        return None
    return out


def _read_example(path: Path) -> dict[str, Any] | None:
    """An example recipe file as a dict (None when unreadable or not a recipe)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    doc.setdefault("name", path.stem)
    return doc


def _example_text(doc: dict[str, Any], estimate: str) -> str:
    """'prune80-int8 — Prune 80 % of … (≈ 40 s)': how an example is listed."""
    text = str(doc.get("name", ""))
    desc = str(doc.get("description", "")).strip()
    if desc:
        text += f" — {desc}"
    if estimate:
        text += f"  ({estimate})"
    return text


def _metric_text(values: dict[str, Any]) -> str:
    """One log line per epoch: accuracies in %, sizes in KB."""
    parts = []
    for key, label in (("accuracy", "acc"), ("val_accuracy", "val acc"), ("sparsity", "sparsity")):
        if isinstance(values.get(key), (int, float)):
            parts.append(f"{label} {values[key] * 100:.1f} %")
    for key, label in (("loss", "loss"), ("val_loss", "val loss")):
        if isinstance(values.get(key), (int, float)):
            parts.append(f"{label} {values[key]:.4f}")
    for key, label in (("est_tflite_bytes", "≈ .tflite"), ("est_gzip_bytes", "≈ gzip")):
        if isinstance(values.get(key), (int, float)):
            parts.append(f"{label} {fmt_bytes(values[key])}")
    return ", ".join(parts)


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    f = label.font()
    f.setPointSizeF(f.pointSizeF() * 1.25)
    f.setBold(True)
    label.setFont(f)
    return label


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet("color: #555;")
    return label


def _describe(step: dict[str, Any], spec: StepSpec | None = None) -> str:
    """One line about a validated step: the technique's own ``describe`` (the registry's
    single wording), else its knobs and values."""
    describe = getattr(spec, "describe", None)
    if describe is not None:
        try:
            return str(describe(step))
        except (KeyError, TypeError, ValueError):
            pass  # a step missing a knob its summary reads: list what it has
    titles = {k.name: k.title for k in spec.knobs} if spec is not None else {}
    parts = [
        f"{titles.get(name, name)} {_float_text(value)}"
        for name, value in step.items()
        if name != "type" and value is not None
    ]
    return ", ".join(parts) or "no settings"
