"""The search view: "find the smallest model for me" while it runs and once it has finished.

State is ``SearchState`` (no Qt): the trials and the search's summary, fed either by the
worker's events of a ``search`` job (``apply``; event shapes in engine/pipeline/search.py:
``{"type": "trial", "state": "running" | "complete" | "pruned" | "fail", ...}`` and
``{"type": "search", "trials_done", "best", "frontier", "elapsed_s", "eta_s", ...}``) or by a
stored ``search.json`` document (``SearchState.from_document``: a reopened project shows its
study without recomputing anything).

``SearchView`` draws it:

- a scatter of every measured trial (pyqtgraph, imported on first use like gui/charts.py):
  x = the objective (download / flash size or RAM in KB, or latency in ms, log scale),
  y = validation accuracy; the budget line at the original model's validation accuracy minus
  the budget; the frontier joined and ringed; the best point a star; trials over budget
  hollow; pruned / failed trials grey (most have no size: the table lists them); hovering a
  point names the trial and its recipe, clicking selects it;
- a table of every trial (number, state, recipe, validation accuracy and drop, sizes,
  latency, RAM, time, cache hits, and, once finished, the test accuracy of the frontier
  points, measured once);
- best so far, elapsed / ETA and *Stop* (the search then ends normally and keeps
  everything it found);
- for the selected trial: *Open as run* (``openRequested``: the Compress tab runs the
  ``open_trial`` job, which measures it on the test split as a normal run), *Export .tflite…*
  and *Save recipe…* (done here; ``recipeSaved`` tells the project).

The view never runs anything itself: ``stopRequested`` / ``openRequested`` /
``continueRequested`` go to the Compress tab.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.format import fmt_bytes, fmt_duration, fmt_ms, fmt_pct, fmt_ratio

# objective -> (trial/baseline key, short name, plain words, unit of the x axis)
OBJECTIVES: dict[str, tuple[str, str, str, str]] = {
    "gzip": (
        "tflite_gzip_bytes",
        "download size",
        "Download size: the .tflite compressed with gzip, what an app update sends",
        "KB",
    ),
    "flash": (
        "tflite_bytes",
        "flash size",
        "Flash size: the .tflite as stored on the device",
        "KB",
    ),
    "latency": (
        "latency_ms",
        "latency",
        "Speed: the time of one inference on this computer's CPU",
        "ms",
    ),
    "ram": (
        "arena_bytes",
        "RAM",
        "RAM: the working memory of the model's tensors (tensor arena estimate)",
        "KB",
    ),
}
STOPPED_TEXT = {
    "time": "the time budget was reached",
    "trials": "the trial budget was reached",
    "user": "you stopped it",
    "exhausted": "every combination was tried",
}
COLUMNS = (
    "#",
    "State",
    "Recipe",
    "Val. accuracy",
    "Change (pts)",
    "Download (gzip)",
    "Flash",
    "Latency",
    "RAM",
    "Time",
    "Cache hits",
    "Test (measured once)",
)
OBJECTIVE_COLUMN = {"gzip": 5, "flash": 6, "latency": 7, "ram": 8}
TEST_COL = 11
WITHIN, OVER, GREY, FRONTIER, BEST = "#1f77b4", "#b26a00", "#9e9e9e", "#d62728", "#2e7d32"
BELOW_PTS = 10.0  # points below the budget line drawn at the chart's bottom edge
DONE_STATES = ("complete", "pruned", "fail")


def objective_key(objective: str) -> str:
    """The trial/baseline field an objective minimises ("gzip" -> "tflite_gzip_bytes")."""
    return OBJECTIVES.get(objective, OBJECTIVES["gzip"])[0]


def fmt_objective(objective: str, value: Any) -> str:
    """A value of the objective as the app writes it ('12.1 KB', '0.022 ms')."""
    return fmt_ms(value) if objective == "latency" else fmt_bytes(value)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def recipe_summary(recipe: dict[str, Any] | None) -> str:
    """One short line for a trial's recipe: 'distil 50 % → prune 80 % (erk) → cluster 8 →
    int8 sparse'."""
    parts = []
    for step in (recipe or {}).get("steps", []):
        if not isinstance(step, dict):
            continue
        t = step.get("type")
        if t == "distill":
            parts.append(f"distil {float(step.get('width') or 0.5) * 100:.0f} %")
        elif t == "prune_filters":
            parts.append(f"filters −{float(step.get('ratio') or 0) * 100:.0f} %")
        elif t == "prune":
            alloc = step.get("allocation")
            text = f"prune {float(step.get('target_sparsity') or 0) * 100:.0f} %"
            parts.append(text + (f" ({alloc})" if alloc and alloc != "uniform" else ""))
        elif t == "cluster":
            parts.append(f"cluster {step.get('clusters')}")
        elif t == "qat":
            parts.append("QAT")
        elif t == "finetune":
            parts.append(f"fine-tune {step.get('epochs')} ep")
        elif t == "quantize":
            mode = str(step.get("mode") or "int8")
            parts.append(mode + (" sparse" if step.get("sparse") else ""))
        elif t:
            parts.append(str(t))
    return " → ".join(parts) or "—"


def log_ticks(lo: float, hi: float) -> list[list[tuple[float, str]]]:
    """Ticks for an axis holding log10 values: 1, 2, 5 × powers of ten inside [lo, hi]
    (only 1 and 5, or 1, when that would be too many), labelled with the plain value."""
    out: list[tuple[float, str]] = []
    for mantissas in ((1, 2, 5), (1, 5), (1,)):
        out = []
        for k in range(math.floor(lo) - 1, math.ceil(hi) + 1):
            for m in mantissas:
                v = m * 10.0**k
                if lo <= math.log10(v) <= hi:
                    out.append((math.log10(v), f"{v:g}"))
        if len(out) <= 9:
            break
    return [out]


def drop_text(drop: float | None) -> str:
    """A change in points as shown: a drop of 0.7 -> '−0.70', no change -> '0.00'."""
    if drop is None:
        return "—"
    if abs(drop) < 0.005:
        return "0.00"
    return f"{-drop:+.2f}".replace("-", "−")


class SearchState:
    """What a search has found so far: trials by number and the latest summary.

    ``info`` holds the search-level fields (objective, budget_pts, baseline, best, frontier,
    elapsed_s, eta_s, time_budget_s, trial_budget, trials_done; after the search also stopped,
    frontier_test, best as a dict). ``doc`` is the final search.json document when known;
    ``search_dir`` the folder the trials' files are in (None: no files, e.g. in a test)."""

    def __init__(self, config: dict[str, Any] | None = None, search_dir: str | None = None):
        cfg = config or {}
        self.trials: dict[int, dict[str, Any]] = {}
        self.info: dict[str, Any] = {
            "objective": cfg.get("objective", "gzip"),
            "budget_pts": cfg.get("budget_pts", cfg.get("budget", 1.0)),
            "time_budget_s": cfg.get("time_s"),
            "trial_budget": cfg.get("trials"),
        }
        self.doc: dict[str, Any] | None = None
        self.search_dir = search_dir
        self.finished = False
        self.config = dict(cfg)

    @classmethod
    def from_document(cls, doc: dict[str, Any], search_dir: str | None = None) -> SearchState:
        """The state a stored search.json shows (finished, or interrupted when ``stopped`` is
        missing)."""
        st = cls(search_dir=search_dir)
        st.doc = doc
        for key in (
            "objective",
            "budget_pts",
            "baseline",
            "frontier",
            "frontier_test",
            "elapsed_s",
            "time_budget_s",
            "trial_budget",
            "stopped",
            "cache",
            "noise",
            "study_name",
            "seed",
        ):
            if key in doc:
                st.info[key] = doc[key]
        best = doc.get("best")
        st.info["best"] = best.get("trial") if isinstance(best, dict) else None
        st.info["best_doc"] = best if isinstance(best, dict) else None
        for t in doc.get("trials") or []:
            if isinstance(t, dict) and isinstance(t.get("number"), int):
                st.trials[t["number"]] = dict(t)
        st.info["trials_done"] = sum(1 for t in st.trials.values() if t.get("state") in DONE_STATES)
        st.finished = bool(doc.get("stopped"))
        st.config = {
            "objective": st.objective,
            "budget_pts": st.budget_pts,
            "time_s": doc.get("time_budget_s"),
            "trials": doc.get("trial_budget"),
            "seed": doc.get("seed", 0),
        }
        return st

    def apply(self, ev: dict[str, Any]) -> bool:
        """Take one worker event; True when it changed what is shown."""
        t = ev.get("type")
        if t == "trial" and isinstance(ev.get("number"), int):
            n = int(ev["number"])
            row = self.trials.setdefault(n, {"number": n})
            for key in ("state", "params", "recipe", "objective_value", "feasible"):
                if key in ev:
                    row[key] = ev[key]
            for key in ("duration_s", "cache_hits", "error"):
                if ev.get(key) is not None:
                    row[key] = ev[key]
            values = ev.get("values")
            if isinstance(values, dict):
                row.update(values)
            if row.get("state") == "running":
                row["started"] = time.monotonic()
            return True
        if t == "search":
            for key, value in ev.items():
                if key not in ("type", "id", "v"):
                    self.info[key] = value
            return True
        return False

    def finish(self, doc: dict[str, Any] | None) -> None:
        """The search ended: take the final document (frontier, test accuracy, best)."""
        if isinstance(doc, dict) and doc.get("trials") is not None:
            search_dir = self.search_dir
            fresh = SearchState.from_document(doc, search_dir)
            self.trials, self.info, self.doc = fresh.trials, fresh.info, doc
        self.finished = True
        for row in self.trials.values():  # a trial still "running" never ended
            if row.get("state") == "running":
                row["state"] = "interrupted"

    # -- reading -----------------------------------------------------------------------
    @property
    def objective(self) -> str:
        return str(self.info.get("objective") or "gzip")

    @property
    def budget_pts(self) -> float:
        return float(_num(self.info.get("budget_pts")) or 0.0)

    @property
    def baseline(self) -> dict[str, Any]:
        b = self.info.get("baseline")
        return b if isinstance(b, dict) else {}

    @property
    def best(self) -> int | None:
        b = self.info.get("best")
        return int(b) if isinstance(b, int) else None

    @property
    def frontier(self) -> list[int]:
        return [int(n) for n in self.info.get("frontier") or [] if isinstance(n, int)]

    @property
    def stopped(self) -> str | None:
        s = self.info.get("stopped")
        return str(s) if s else None

    def budget_accuracy(self) -> float | None:
        """Validation accuracy (0-1) a trial must keep: the original's minus the budget."""
        base = _num(self.baseline.get("val_accuracy"))
        return None if base is None else base - self.budget_pts / 100

    def x_of(self, row: dict[str, Any]) -> float | None:
        """The objective of a trial (or the baseline) in the chart's unit (KB or ms)."""
        v = _num(row.get(objective_key(self.objective)))
        if v is None or v <= 0:
            return None
        return v if self.objective == "latency" else v / 1024

    def point(self, number: int) -> tuple[float, float] | None:
        """(objective in KB or ms, validation accuracy in %) of a measured trial."""
        row = self.trials.get(number) or {}
        x, y = self.x_of(row), _num(row.get("val_accuracy"))
        return None if x is None or y is None else (x, y * 100)

    def test_of(self, number: int) -> dict[str, Any] | None:
        """The test measurement of a frontier trial or the best one, measured once after the
        search: ``{"trial", "accuracy" (0-1), "drop" (points, against the original's test
        accuracy)}``; None when it was not measured."""
        acc = None
        for entry in self.info.get("frontier_test") or []:
            if isinstance(entry, dict) and entry.get("trial") == number:
                acc = _num(entry.get("accuracy"))
        best = self.info.get("best_doc")
        if acc is None and isinstance(best, dict) and best.get("trial") == number:
            acc = _num(best.get("accuracy"))
        if acc is None:
            return None
        base = _num(self.baseline.get("accuracy"))
        return {
            "trial": number,
            "accuracy": acc,
            "drop": None if base is None else (base - acc) * 100,
        }

    def best_within(self) -> bool:
        """True when the best trial keeps the budget (else it is only the closest one)."""
        n = self.best
        if n is None:
            return False
        best = self.info.get("best_doc")
        if isinstance(best, dict) and best.get("trial") == n and "within_budget" in best:
            return bool(best["within_budget"])
        drop = _num((self.trials.get(n) or {}).get("val_drop"))
        return drop is not None and drop <= self.budget_pts + 1e-9

    def ratio(self, number: int) -> float | None:
        """How many times smaller (or faster) than the original, on the objective."""
        key = objective_key(self.objective)
        base = _num(self.baseline.get(key))
        mine = _num((self.trials.get(number) or {}).get(key))
        return base / mine if base and mine else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.trials.values():
            s = str(row.get("state") or "running")
            out[s] = out.get(s, 0) + 1
        return out

    def trial_dir(self, number: int) -> Path | None:
        """The trial's folder (model.tflite, recipe.json) when it exists on disk."""
        if not self.search_dir:
            return None
        row = self.trials.get(number) or {}
        folder = Path(self.search_dir) / str(row.get("folder") or f"trials/{number:04d}")
        return folder if folder.is_dir() else None

    def hover_text(self, number: int) -> str:
        """What hovering a trial's point says: number, state, recipe, measurements."""
        row = self.trials.get(number) or {}
        lines = [f"Trial {number} ({row.get('state', '?')})"]
        marks = []
        if number == self.best:
            marks.append("best within budget" if self.best_within() else "closest to budget")
        if number in self.frontier:
            marks.append("on the frontier")
        if marks:
            lines[0] += " — " + ", ".join(marks)
        lines.append(recipe_summary(row.get("recipe")))
        va, drop = _num(row.get("val_accuracy")), _num(row.get("val_drop"))
        if va is not None:
            d = f" ({drop_text(drop)} pts)" if drop is not None else ""
            lines.append(f"validation {fmt_pct(va)}{d}")
        x = _num(row.get(objective_key(self.objective)))
        if x is not None:
            r = self.ratio(number)
            lines.append(
                f"{OBJECTIVES[self.objective][1]} {fmt_objective(self.objective, x)}"
                + (f" ({fmt_ratio(r)} smaller)" if r else "")
            )
        test = self.test_of(number)
        if test is not None:
            lines.append(f"test, measured once: {fmt_pct(test.get('accuracy'))}")
        return "\n".join(lines)


class SearchView(QWidget):
    """The running / finished search (see the module docstring)."""

    stopRequested = Signal()
    openRequested = Signal(int)  # trial number
    continueRequested = Signal()
    recipeSaved = Signal(object)  # the recipe dict just written
    showRunRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = SearchState()
        self.running = False
        self.selected: int | None = None
        self.plot: Any = None
        self._items: dict[str, Any] = {}
        self._activity = ""
        self._clock: tuple[float, float] = (0.0, time.monotonic())  # elapsed_s at monotonic
        # Questions (tests answer them): (title, start path, filter) -> chosen path or "".
        self.ask_save_path: Callable[[str, str, str], str] = self._ask_save_path
        self.last_folder: Callable[[], str] = lambda: ""

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.title = QLabel("No search yet")
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.25)
        f.setBold(True)
        self.title.setFont(f)
        head.addWidget(self.title, 1)
        self.run_button = QPushButton("Show the run")
        self.run_button.setToolTip("Back to the run opened from this search")
        self.run_button.clicked.connect(self.showRunRequested)
        self.run_button.setVisible(False)
        head.addWidget(self.run_button)
        self.continue_button = QPushButton("Continue the search")
        self.continue_button.setToolTip(
            "Run more trials of this study (the same settings; everything found is kept)"
        )
        self.continue_button.clicked.connect(self.continueRequested)
        self.continue_button.setVisible(False)
        head.addWidget(self.continue_button)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            "End the search now: the trials found so far are kept, the frontier is measured "
            "on the test split and the best point is written."
        )
        self.stop_button.clicked.connect(self._stop)
        self.stop_button.setEnabled(False)
        head.addWidget(self.stop_button)
        outer.addLayout(head)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        row.addWidget(self.progress, 1)
        self.eta_label = QLabel("")
        self.eta_label.setMinimumWidth(260)
        row.addWidget(self.eta_label)
        outer.addLayout(row)
        self.best_label = QLabel("")
        self.best_label.setWordWrap(True)
        self.best_label.setTextFormat(Qt.TextFormat.RichText)
        self.best_label.setObjectName("searchBest")
        outer.addWidget(self.best_label)
        self.activity_label = QLabel("")
        self.activity_label.setStyleSheet("color: #555;")
        outer.addWidget(self.activity_label)

        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_row = QHBoxLayout(top)
        top_row.setContentsMargins(0, 0, 0, 0)
        self.plot_box = QVBoxLayout()
        self.plot_note = QLabel("")
        self.plot_note.setStyleSheet("color: #555;")
        self.plot_note.setWordWrap(True)
        plot_holder = QWidget()
        plot_holder.setLayout(self.plot_box)
        self.plot_box.setContentsMargins(0, 0, 0, 0)
        top_row.addWidget(plot_holder, 2)
        top_row.addWidget(self._build_detail(), 1)
        split.addWidget(top)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        for c in range(len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([430, 260])
        outer.addWidget(split, 1)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._show_clock)
        self.refresh()

    def _build_detail(self) -> QWidget:
        box = QGroupBox("Selected trial")
        lay = QVBoxLayout(box)
        self.detail = QLabel("Click a point or a row to select a trial.")
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.RichText)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.detail, 1)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open as run")
        self.open_button.setToolTip(
            "Measure this trial on the test split and add it to Results as a normal run"
        )
        self.open_button.clicked.connect(self._open)
        self.export_button = QPushButton("Export .tflite…")
        self.export_button.clicked.connect(lambda: self.export_tflite())
        self.save_button = QPushButton("Save recipe…")
        self.save_button.clicked.connect(lambda: self.save_recipe())
        for b in (self.open_button, self.export_button, self.save_button):
            b.setEnabled(False)
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        return box

    # -- feeding ----------------------------------------------------------------------
    def start(
        self,
        config: dict[str, Any],
        search_dir: str | None,
        previous: dict[str, Any] | None = None,
    ) -> None:
        """A search starts: an empty view, or, continuing a study, its ``previous``
        search.json (the trials found so far stay drawn); *Stop* on."""
        if previous is not None:
            self.state = SearchState.from_document(previous, search_dir)
            self.state.finished = False
            self.state.config = dict(config)
            self.state.info.update(
                stopped=None,
                frontier_test=[],
                best_doc=None,
                time_budget_s=config.get("time_s"),
                trial_budget=config.get("trials"),
            )
        else:
            self.state = SearchState(config, search_dir)
        self.running = True
        self.selected = None
        self._activity = "Starting: the original model is measured once…"
        self._clock = (0.0, time.monotonic())
        self._tick.start()
        self.refresh()

    def apply_event(self, ev: dict[str, Any]) -> None:
        """A ``trial`` or ``search`` event of the running search."""
        if ev.get("type") == "search" and _num(ev.get("elapsed_s")) is not None:
            self._clock = (float(ev["elapsed_s"]), time.monotonic())
        if ev.get("type") == "trial" and ev.get("state") == "running":
            self._activity = f"Trial {ev.get('number')}: {recipe_summary(ev.get('recipe'))}"
        elif ev.get("type") == "trial":
            self._activity = f"Trial {ev.get('number')} {ev.get('state')}; choosing the next…"
        if self.state.apply(ev):
            self.refresh()

    def show_activity(self, text: str) -> None:
        """What the running trial does now (its stage), under the best line."""
        row = [r for r in self.state.trials.values() if r.get("state") == "running"]
        prefix = f"Trial {row[-1]['number']}: " if row else ""
        self._activity = prefix + text
        self.activity_label.setText(self._activity)

    def finish(
        self, doc: dict[str, Any] | None, outcome: str = "finished", error: str = ""
    ) -> None:
        """The search job ended (``outcome`` "finished" | "failed" | "cancelled")."""
        self.running = False
        self._tick.stop()
        self.state.finish(doc)
        if outcome != "finished":
            self.state.info.setdefault("stopped", None)
        self._activity = f"✗ {error}" if error else ""
        self.refresh()
        if outcome == "cancelled" and not self.state.trials:
            self._activity = "Stopped before the first trial ended: nothing to keep."
            self.activity_label.setText(self._activity)
            self.activity_label.setVisible(True)
        if self.selected is None and self.state.best is not None:
            self.select_trial(self.state.best)

    def show_document(self, doc: dict[str, Any] | None, search_dir: str | None = None) -> None:
        """Show a stored search (None: the empty view). Not while one runs."""
        if self.running:
            raise RuntimeError("a search is running: its view cannot show another one")
        self.selected = None
        self._activity = ""
        if doc is None:
            self.state = SearchState()
        else:
            self.state = SearchState.from_document(doc, search_dir)
        self.refresh()
        if doc is not None and self.state.best is not None:
            self.select_trial(self.state.best)

    def stop_clock(self) -> None:
        """Stop the elapsed-time clock (the window is closing)."""
        self._tick.stop()

    @property
    def has_search(self) -> bool:
        return self.running or bool(self.state.trials) or self.state.doc is not None

    # -- drawing --------------------------------------------------------------------------
    def refresh(self) -> None:
        self._show_header()
        self._show_clock()
        self._fill_table()
        self._draw()
        self._show_detail()

    def _show_header(self) -> None:
        st = self.state
        counts = st.counts()
        done = sum(counts.get(s, 0) for s in DONE_STATES)
        if self.running:
            self.title.setText(f"Searching… {done} trial{'s' if done != 1 else ''} done")
        elif st.doc is None and not st.trials:
            self.title.setText("No search yet")
        elif st.stopped:
            why = STOPPED_TEXT.get(st.stopped, st.stopped)
            self.title.setText(f"Search finished: {done} trials ({why})")
        else:
            self.title.setText(f"Search interrupted after {done} trials")
        self.stop_button.setEnabled(self.running)
        self.stop_button.setText("Stop")
        self.continue_button.setVisible(
            not self.running and st.doc is not None and bool(st.search_dir)
        )
        self.best_label.setText(self._best_text())
        self.activity_label.setText(self._activity)
        self.activity_label.setVisible(bool(self._activity))

    def _best_text(self) -> str:
        st = self.state
        if not st.trials and st.doc is None:
            return ""
        name = OBJECTIVES.get(st.objective, OBJECTIVES["gzip"])[1]
        budget = f"{st.budget_pts:g}-point budget"
        n = st.best if st.best_within() else None
        if n is None:
            closest = st.best if st.best is not None else self._closest()
            what = "Best so far" if self.running else "Best"
            text = (
                f"<b>{what}:</b> no trial within the {budget} yet"
                if self.running
                else (
                    f"<b>{what}:</b> <span style='color:{OVER}'>no trial stayed within the "
                    f"{budget}</span>"
                )
            )
            if closest is not None:
                row = st.trials[closest]
                text += (
                    f"; closest: trial {closest} (validation drop "
                    f"{_num(row.get('val_drop')) or 0:.2f} pts)"
                )
            return text
        row = st.trials.get(n) or {}
        key = objective_key(st.objective)
        ratio = st.ratio(n)
        base_x = st.baseline.get(key)
        parts = [
            f"<b>{'Best so far' if self.running else 'Best'} within the {budget}:</b> "
            f"trial {n} — {name} <b>{fmt_objective(st.objective, row.get(key))}</b>"
            + (
                f" ({fmt_ratio(ratio)} smaller than {fmt_objective(st.objective, base_x)})"
                if ratio
                else ""
            ),
            f"validation {fmt_pct(row.get('val_accuracy'))} "
            f"({drop_text(_num(row.get('val_drop')))} pts)",
        ]
        test = st.test_of(n)
        if test is not None:
            parts.append(
                f"<span style='color:{BEST}'>test, measured once: "
                f"{fmt_pct(test.get('accuracy'))} ({drop_text(_num(test.get('drop')))} pts)</span>"
            )
        noise = st.info.get("noise") or {}
        one = _num(noise.get("one_sample_pts"))
        if one:
            parts.append(f"<span style='color:#666'>one validation sample = {one:.2f} pts</span>")
        return " · ".join(parts)

    def _closest(self) -> int | None:
        rows = [
            r
            for r in self.state.trials.values()
            if r.get("state") == "complete" and _num(r.get("val_drop")) is not None
        ]
        return min(rows, key=lambda r: float(r["val_drop"]))["number"] if rows else None

    def elapsed_s(self) -> float:
        """Seconds the search has run (ticking between events while it runs)."""
        base, at = self._clock
        if self.running:
            return base + (time.monotonic() - at)
        return float(_num(self.state.info.get("elapsed_s")) or base)

    def _show_clock(self) -> None:
        st = self.state
        info = st.info
        elapsed = self.elapsed_s()
        budget_s = _num(info.get("time_budget_s"))
        trial_budget = _num(info.get("trial_budget"))
        done = int(_num(info.get("trials_done")) or 0)
        frac = None
        if budget_s:
            frac = elapsed / budget_s
        if trial_budget:
            frac = max(frac or 0.0, done / trial_budget)
        if frac is None:
            self.progress.setRange(0, 0 if self.running else 1000)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(min(1.0, frac) * 1000) if self.running else 1000)
        if not st.trials and st.doc is None and not self.running:
            self.progress.setValue(0)
            self.progress.setFormat("")
            self.eta_label.setText("")
            return
        of = f" of {fmt_duration(budget_s)}" if budget_s else ""
        trials = f" · {done}/{int(trial_budget)} trials" if trial_budget else ""
        self.progress.setFormat(f"elapsed {fmt_duration(elapsed)}{of}{trials}")
        if not self.running:
            self.progress.setValue(self.progress.maximum())
            self.eta_label.setText(f"took {fmt_duration(elapsed)}" if elapsed else "")
            return
        eta = _num(info.get("eta_s"))
        if eta is not None:
            base, at = self._clock
            left = max(0.0, eta - (time.monotonic() - at))
            self.eta_label.setText(f"about {fmt_duration(left)} left")
        else:
            self.eta_label.setText("estimating the time left…")

    def _fill_table(self) -> None:
        st = self.state
        self.table.blockSignals(True)
        rows = sorted(st.trials.values(), key=lambda r: int(r["number"]))
        self.table.setRowCount(len(rows))
        bold = QFont(self.table.font())
        bold.setBold(True)
        obj_col = OBJECTIVE_COLUMN.get(st.objective, 5)
        headers = list(COLUMNS)
        headers[obj_col] += " ▼"
        self.table.setHorizontalHeaderLabels(headers)
        for i, row in enumerate(rows):
            n = int(row["number"])
            state = str(row.get("state") or "running")
            drop = _num(row.get("val_drop"))
            test = st.test_of(n)
            best = n == st.best and st.best_within()
            mark = "★ " if best else ("◆ " if n in st.frontier else "")
            cells = [
                f"{mark}{n}",
                state
                + ("" if state != "complete" or row.get("feasible", True) else ", over")
                + (
                    f" (= trial {row['duplicate_of']})"
                    if row.get("duplicate_of") is not None
                    else ""
                ),
                recipe_summary(row.get("recipe")),
                fmt_pct(row.get("val_accuracy")),
                drop_text(drop),
                fmt_bytes(row.get("tflite_gzip_bytes")),
                fmt_bytes(row.get("tflite_bytes")),
                fmt_ms(row.get("latency_ms")),
                fmt_bytes(row.get("arena_bytes")),
                fmt_duration(float(row["duration_s"])) if _num(row.get("duration_s")) else "—",
                str(row.get("cache_hits", "—")),
                (
                    f"{fmt_pct(test.get('accuracy'))} ({drop_text(_num(test.get('drop')))})"
                    if test
                    else ""
                ),
            ]
            tip = st.hover_text(n) + (f"\n✗ {row['error']}" if row.get("error") else "")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, n)
                item.setToolTip(tip)
                if c >= 3 and c != 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if state in ("pruned", "fail", "interrupted", "waiting"):
                    item.setForeground(QBrush(QColor(GREY)))
                elif c == 4 and drop is not None and drop > st.budget_pts + 1e-9:
                    item.setForeground(QBrush(QColor(OVER)))
                elif best and c in (0, obj_col):
                    item.setForeground(QBrush(QColor(BEST)))
                if n in st.frontier or c == obj_col:
                    item.setFont(bold)
                self.table.setItem(i, c, item)
        self.table.setColumnHidden(TEST_COL, not st.info.get("frontier_test"))
        self.table.blockSignals(False)
        self._select_row(self.selected)

    def _select_row(self, number: int | None) -> None:
        self.table.blockSignals(True)
        self.table.clearSelection()
        if number is not None:
            for r in range(self.table.rowCount()):
                item = self.table.item(r, 0)
                if item is not None and item.data(Qt.ItemDataRole.UserRole) == number:
                    self.table.selectRow(r)
                    break
        self.table.blockSignals(False)

    # -- the scatter ----------------------------------------------------------------------
    def ensure_plot(self) -> Any:
        """Build the scatter (imports pyqtgraph) the first time it is needed."""
        if self.plot is not None:
            return self.plot
        from gui.charts import make_plot, pg

        plot = make_plot("", "size")
        plot.setMinimumSize(360, 260)
        plot.setLabel("left", "validation accuracy (%)")
        mk, brush = pg().mkPen, pg().mkBrush
        frontier_line = pg().PlotCurveItem(pen=mk(FRONTIER, width=2))
        plot.addItem(frontier_line)
        budget = pg().InfiniteLine(angle=0, pen=mk(FRONTIER, width=1, style=Qt.PenStyle.DashLine))
        budget.setVisible(False)
        plot.addItem(budget)
        # the line's words, at the chart's left edge (placed when the x range is known)
        budget_label = pg().TextItem("", color=FRONTIER, anchor=(0, 1))
        budget_label.setVisible(False)
        plot.addItem(budget_label, ignoreBounds=True)
        base = pg().ScatterPlotItem(
            symbol="d", size=14, brush=brush("#555"), pen=mk("#222"), tip=None
        )
        plot.addItem(base)
        base_label = pg().TextItem("original", color="#333", anchor=(1.1, 0.5))
        plot.addItem(base_label)
        scatter = pg().ScatterPlotItem(
            hoverable=True,
            tip=lambda x, y, data: self.state.hover_text(int(data)),
            hoverSize=14,
        )
        scatter.sigClicked.connect(self._on_point_clicked)
        plot.addItem(scatter)
        ring = pg().ScatterPlotItem(symbol="o", size=28, brush=None, pen=mk("#111", width=1.5))
        plot.addItem(ring)
        self._items = {
            "frontier": frontier_line,
            "budget": budget,
            "budget_label": budget_label,
            "baseline": base,
            "baseline_label": base_label,
            "scatter": scatter,
            "ring": ring,
        }
        self.plot = plot
        self.plot_box.addWidget(plot, 1)
        self.plot_box.addWidget(self.plot_note)
        return plot

    def _draw(self) -> None:
        st = self.state
        if self.plot is None and not st.trials and st.doc is None and not self.running:
            return
        plot = self.ensure_plot()
        from gui.charts import pg

        mk, brush = pg().mkPen, pg().mkBrush
        name, unit = OBJECTIVES[st.objective][1], OBJECTIVES[st.objective][3]
        key = (
            f"<span style='color:{WITHIN}'>● within budget</span>&nbsp; "
            f"<span style='color:{OVER}'>○ over budget</span>&nbsp; "
            f"<span style='color:{BEST}'>★ best</span>&nbsp; "
            f"<span style='color:{FRONTIER}'>━ frontier</span>&nbsp; "
            f"<span style='color:{GREY}'>● pruned / failed</span>&nbsp; "
            "<span style='color:#555'>◆ original</span>"
        )
        plot.setTitle(f"<b>Validation accuracy vs {name}</b>&nbsp;&nbsp;{key}", size="9pt")
        plot.setLabel("bottom", f"{name} ({unit}, log scale; smaller is better →)")
        plot.getPlotItem().invertX(True)
        budget_acc = st.budget_accuracy()
        pts: list[tuple[int, float, float]] = []
        for n in sorted(st.trials):
            p = st.point(n)
            if p is not None:
                pts.append((n, p[0], p[1]))
        ys = [y for _n, _x, y in pts]
        base_x = st.x_of(st.baseline)
        base_y = _num(st.baseline.get("val_accuracy"))
        ref = [*ys] + ([base_y * 100] if base_y is not None else [])
        floor = None
        if budget_acc is not None:
            floor = budget_acc * 100 - BELOW_PTS
        spots = []
        for n, x, y in pts:
            row = st.trials[n]
            state = row.get("state")
            symbol, size = "o", 10
            if state in ("pruned", "fail"):
                pen, fill = mk(GREY), brush(GREY)
            elif row.get("feasible", budget_acc is None or y >= budget_acc * 100 - 1e-6):
                pen, fill = mk(WITHIN, width=1.5), brush(WITHIN)
            else:
                pen, fill = mk(OVER, width=2), brush(255, 255, 255, 255)
            if n in st.frontier:
                size = 13
                pen = mk(FRONTIER, width=2)
            if n == st.best and st.best_within():
                symbol, size, fill, pen = "star", 20, brush(BEST), mk("#1b5e20", width=1)
            shown_y = y
            if floor is not None and y < floor:
                shown_y, symbol = floor, "t"  # below the chart: on its bottom edge
            spots.append(
                {
                    "pos": (math.log10(x), shown_y),
                    "data": n,
                    "symbol": symbol,
                    "size": size,
                    "pen": pen,
                    "brush": fill,
                }
            )
        scatter = self._items["scatter"]
        scatter.setData(spots=spots)
        front = [(x, y) for n, x, y in sorted(pts, key=lambda p: p[1]) if n in st.frontier]
        if len(front) >= 2:
            self._items["frontier"].setData(
                [math.log10(x) for x, _y in front], [y for _x, y in front]
            )
            self._items["frontier"].setVisible(True)
        else:
            self._items["frontier"].setVisible(False)
        line, words = self._items["budget"], self._items["budget_label"]
        if budget_acc is not None:
            line.setPos(budget_acc * 100)
            words.setText(
                f"budget: {st.budget_pts:g} pt{'s' if st.budget_pts != 1 else ''} below the "
                f"original ({budget_acc * 100:.2f} %)"
            )
            line.setVisible(True)
            ref.append(budget_acc * 100)
        else:
            line.setVisible(False)
        words.setVisible(budget_acc is not None)
        if base_x is not None and base_y is not None:
            self._items["baseline"].setData([math.log10(base_x)], [base_y * 100])
            self._items["baseline_label"].setPos(math.log10(base_x), base_y * 100)
            self._items["baseline_label"].setVisible(True)
        else:
            self._items["baseline"].setData([], [])
            self._items["baseline_label"].setVisible(False)
        self._draw_ring()
        xs = [math.log10(x) for _n, x, _y in pts] + (
            [math.log10(base_x)] if base_x is not None else []
        )
        if xs:
            pad = max(0.08, (max(xs) - min(xs)) * 0.08)
            plot.setXRange(min(xs) - pad, max(xs) + pad * 2.5, padding=0)
            plot.getAxis("bottom").setTicks(log_ticks(min(xs) - pad, max(xs) + pad * 2.5))
            if budget_acc is not None:  # x is inverted: the left edge is the largest value
                words.setPos(max(xs) + pad * 2.5, budget_acc * 100)
        if ref:
            low = min(ref)
            if floor is not None:
                low = max(low, floor)
            high = max(ref)
            span = max(1.0, high - low)
            plot.setYRange(low - span * 0.1, high + span * 0.12, padding=0)
            step = next((t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if span / t <= 8), 50)
            plot.getAxis("left").setTickSpacing(major=step, minor=step)
        counts = st.counts()
        unplotted = sum(
            1
            for n, r in st.trials.items()
            if r.get("state") in ("pruned", "fail") and st.point(n) is None
        )
        notes = []
        if unplotted:
            what = " and ".join(
                f"{counts[k]} {word}"
                for k, word in (("pruned", "pruned"), ("fail", "failed"))
                if counts.get(k)
            )
            notes.append(
                f"{what} trial{'s' if unplotted != 1 else ''} stopped before the size was "
                "measured: listed (grey) in the table, not drawn."
            )
        if floor is not None and any(y < floor for _n, _x, y in pts):
            notes.append(f"▼ on the bottom edge: more than {BELOW_PTS:g} points below the budget.")
        self.plot_note.setText(" ".join(notes))
        self.plot_note.setVisible(bool(notes))

    def _draw_ring(self) -> None:
        ring = self._items.get("ring")
        if ring is None:
            return
        p = self.state.point(self.selected) if self.selected is not None else None
        if p is None:
            ring.setData([], [])
        else:
            ring.setData([math.log10(p[0])], [p[1]])

    def _on_point_clicked(self, _item: Any, points: Any, _ev: Any = None) -> None:
        if len(points):
            self.select_trial(int(points[0].data()))

    def scatter_points(self) -> dict[int, tuple[float, float]]:
        """What the scatter draws now: trial -> (objective in KB or ms, accuracy in %)."""
        scatter = self._items.get("scatter")
        if scatter is None:
            return {}
        out = {}
        for spot in scatter.points():
            out[int(spot.data())] = (10 ** spot.pos().x(), spot.pos().y())
        return out

    # -- selection and actions ------------------------------------------------------------
    def _on_table_selection(self) -> None:
        items = self.table.selectedItems()
        if items:
            self.select_trial(int(items[0].data(Qt.ItemDataRole.UserRole)))

    def select_trial(self, number: int | None) -> None:
        """Select a trial (table row, ring on the chart, details and buttons)."""
        self.selected = number if number in self.state.trials else None
        self._select_row(self.selected)
        self._draw_ring()
        self._show_detail()

    def _show_detail(self) -> None:
        st = self.state
        n = self.selected
        if n is None or n not in st.trials:
            self.detail.setText("Click a point or a row to select a trial.")
            for b in (self.open_button, self.export_button, self.save_button):
                b.setEnabled(False)
            return
        row = st.trials[n]
        marks = []
        if n == st.best and st.best_within():
            marks.append(f"<span style='color:{BEST}'>★ best within budget</span>")
        elif n == st.best:
            marks.append(f"<span style='color:{OVER}'>closest to the budget</span>")
        if n in st.frontier:
            marks.append(f"<span style='color:{FRONTIER}'>on the frontier</span>")
        lines = [
            f"<b>Trial {n}</b> — {row.get('state', '?')}"
            + (" · " + ", ".join(marks) if marks else ""),
            f"<b>Recipe:</b> {recipe_summary(row.get('recipe'))}",
        ]
        drop = _num(row.get("val_drop"))
        if _num(row.get("val_accuracy")) is not None:
            over = drop is not None and drop > st.budget_pts + 1e-9
            color = OVER if over else WITHIN
            lines.append(
                f"<b>Validation:</b> {fmt_pct(row.get('val_accuracy'))} "
                f"<span style='color:{color}'>({drop_text(drop)} pts"
                f"{', over the budget' if over else ''})</span>"
            )
        sizes = []
        for obj in ("gzip", "flash", "latency", "ram"):
            v = row.get(objective_key(obj))
            if _num(v) is not None:
                sizes.append(f"{OBJECTIVES[obj][1]} {fmt_objective(obj, v)}".replace(" ", "\u00a0"))
        if sizes:
            lines.append(" · ".join(sizes))
        ratio = st.ratio(n)
        if ratio:
            lines.append(
                f"{fmt_ratio(ratio)} smaller {OBJECTIVES[st.objective][1]} than the original"
            )
        test = st.test_of(n)
        if test is not None:
            lines.append(
                f"<b>Test, measured once:</b> {fmt_pct(test.get('accuracy'))} "
                f"({drop_text(_num(test.get('drop')))} pts)"
            )
        elif st.finished:
            lines.append("<span style='color:#666'>Test accuracy: open it as a run.</span>")
        if row.get("error"):
            lines.append(f"<span style='color:#b00020'>✗ {row['error']}</span>")
        self.detail.setText("<br>".join(lines))
        complete = row.get("state") == "complete"
        folder = st.trial_dir(n)
        has_model = folder is not None and (folder / "model.tflite").is_file()
        self.open_button.setEnabled(complete and not self.running and bool(st.search_dir))
        self.open_button.setToolTip(
            "Measure this trial on the test split and add it to Results as a normal run"
            if not self.running
            else "Possible once the search has ended (the engine runs one job at a time)"
        )
        self.export_button.setEnabled(complete and has_model)
        self.save_button.setEnabled(isinstance(row.get("recipe"), dict))

    def _stop(self) -> None:
        if self.running:
            self.stop_button.setEnabled(False)
            self.stop_button.setText("Stopping…")
            self._activity = "Stopping after the current trial; everything found is kept…"
            self.activity_label.setText(self._activity)
            self.activity_label.setVisible(True)
            self.stopRequested.emit()

    def _open(self) -> None:
        if self.selected is not None:
            self.openRequested.emit(self.selected)

    def _ask_save_path(self, title: str, start: str, filt: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, start, filt)
        return path

    def export_tflite(self, path: str | None = None) -> Path | None:
        """Copy the selected trial's model.tflite to ``path`` (asked when None)."""
        n = self.selected
        folder = self.state.trial_dir(n) if n is not None else None
        if folder is None or not (folder / "model.tflite").is_file():
            return None
        if path is None:
            start = str(Path(self.last_folder() or ".") / f"search-trial-{n:04d}.tflite")
            path = self.ask_save_path("Export .tflite", start, "TensorFlow Lite (*.tflite)")
            if not path:
                return None
        target = Path(path)
        try:
            shutil.copyfile(folder / "model.tflite", target)
        except OSError as exc:
            self.detail.setText(
                self.detail.text() + f"<br><span style='color:#b00020'>✗ {exc}</span>"
            )
            return None
        self.activity_label.setText(f"Exported trial {n} to {target}")
        self.activity_label.setVisible(True)
        return target

    def save_recipe(self, path: str | None = None) -> Path | None:
        """Write the selected trial's recipe as JSON to ``path`` (asked when None)."""
        n = self.selected
        row = self.state.trials.get(n) if n is not None else None
        recipe = row.get("recipe") if row else None
        if not isinstance(recipe, dict):
            return None
        if path is None:
            start = str(Path(self.last_folder() or ".") / f"{recipe.get('name', 'trial')}.json")
            path = self.ask_save_path("Save recipe", start, "Recipes (*.json)")
            if not path:
                return None
        target = Path(path)
        try:
            target.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            self.detail.setText(
                self.detail.text() + f"<br><span style='color:#b00020'>✗ {exc}</span>"
            )
            return None
        self.activity_label.setText(f"Saved the recipe of trial {n} to {target}")
        self.activity_label.setVisible(True)
        self.recipeSaved.emit(recipe)
        return target
