"""Plain state objects the views are built on (no Qt): a loaded model, the dataset choice,
runs and the session holding them. Tests hand a tab one of these.

What is saved is the engine's ``Project`` (``Session.project``, engine/project/document.py): the
tabs' objects are its view, kept in step by gui/project_controller.py, which also rebuilds
a Session from a reopened Project (``session_from_project``). ``to_dict`` / ``from_dict``
remain for copying a run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.pipeline.budget import DEFAULT_BUDGET_PTS

SERIES = (
    "loss",
    "val_loss",
    "accuracy",
    "val_accuracy",
    "sparsity",
    "est_tflite_bytes",
    "est_gzip_bytes",
)


@dataclass
class ModelInfo:
    """A model the engine inspected: ``spec`` is what jobs receive ("demo" or a path)."""

    spec: str
    report: dict[str, Any] = field(default_factory=dict)
    allow_unsafe: bool = False

    @property
    def display_name(self) -> str:
        if self.spec == "demo":
            return "Demo model (digits CNN)"
        return Path(self.spec).name

    @property
    def layers(self) -> list[dict[str, Any]]:
        rows = self.report.get("layers") or []
        return [r for r in rows if isinstance(r, dict)]

    @property
    def totals(self) -> dict[str, Any]:
        t = self.report.get("totals")
        return t if isinstance(t, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DataChoice:
    """The dataset: ``spec`` is "demo", an ``.npz`` path or an image folder; ``scale`` a rule.

    ``description`` is the engine's ``check_data`` answer, ``error`` its message when the
    data does not fit the model; both are None until checked. ``split_seed`` and
    ``val_fraction`` are the dataset's split (it belongs to the dataset, not to a recipe);
    in a project they follow the project's dataset reference (defaults: the same as
    ``engine.project.document.DatasetRef``).
    """

    spec: str = "demo"
    scale: str = "auto"
    description: dict[str, Any] | None = None
    error: str | None = None
    split_seed: int = 0
    val_fraction: float = 0.1

    def split_params(self) -> dict[str, Any]:
        """The split as engine job parameters (``split_seed``, ``val_fraction``)."""
        return {"split_seed": int(self.split_seed), "val_fraction": float(self.val_fraction)}

    @property
    def kind(self) -> str:
        if self.spec == "demo":
            return "demo"
        return "npz" if self.spec.lower().endswith(".npz") else "folder"

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "scale": self.scale,
            "split_seed": self.split_seed,
            "val_fraction": self.val_fraction,
        }


@dataclass
class RunRecord:
    """One compression run: its recipe, live series, final metrics and artifacts.

    ``subject`` is the key of what it ran on (model + dataset + split,
    ``engine.project.document.subject_key``; "" outside a project) and ``subject_label``
    its readable form; a run is only ever compared with runs of the same subject and with
    that subject's baseline."""

    id: str
    name: str
    recipe: dict[str, Any]
    model: str
    data: str
    scale: str = "auto"
    out_dir: str = ""
    status: str = "running"  # running | finished | failed | cancelled | pending
    metrics: dict[str, Any] | None = None
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    error: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    subject: str = ""
    subject_label: str = ""

    def add_metric(self, epoch: float, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self.series.setdefault(key, []).append((float(epoch), float(value)))

    @property
    def compressed(self) -> dict[str, Any]:
        c = (self.metrics or {}).get("compressed")
        return c if isinstance(c, dict) else {}

    @property
    def baseline(self) -> dict[str, Any]:
        b = (self.metrics or {}).get("baseline")
        return b if isinstance(b, dict) else {}

    def artifact(self, name: str) -> Path | None:
        """Path of ``model.tflite`` / ``model.keras`` / ``metrics.json`` if it exists."""
        if not self.out_dir:
            return None
        p = Path(self.out_dir) / name
        return p if p.exists() else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["series"] = {k: [list(p) for p in v] for k, v in self.series.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        d = dict(d)
        d["series"] = {k: [tuple(p) for p in v] for k, v in (d.get("series") or {}).items()}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Session:
    """Everything the window shows: model, dataset, baseline, runs. ``project`` is the
    engine ``Project`` this session is a view of (None for a bare session in tests).

    ``subject`` / ``subject_label`` name the current model + dataset + split (the window's
    project controller keeps them up to date; "" in a bare session, where every run has
    the subject ""). ``baseline`` is the current subject's. ``accuracy_budget`` is the
    project's budget in percentage points. ``analysis`` is the sensitivity.json document of
    the current model + dataset (engine.pipeline.sensitivity; None until analysed)."""

    model: ModelInfo | None = None
    data: DataChoice = field(default_factory=DataChoice)
    baseline: dict[str, Any] | None = None
    runs: list[RunRecord] = field(default_factory=list)
    project_path: str | None = None
    project: Any = None  # engine.project.document.Project (not imported: keeps this module light)
    subject: str = ""
    subject_label: str = ""
    accuracy_budget: float = DEFAULT_BUDGET_PTS
    analysis: dict[str, Any] | None = None

    def finished_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status == "finished"]

    def subjects(self) -> list[tuple[str, str, int]]:
        """``(subject, label, number of runs)`` for each subject with runs, in the order of
        their first run; the current subject is included (first if it has no runs yet)."""
        found: dict[str, list[Any]] = {}
        for r in self.runs:
            entry = found.setdefault(r.subject, [r.subject_label, 0])
            entry[0] = entry[0] or r.subject_label
            entry[1] += 1
        out = [(k, str(v[0]), int(v[1])) for k, v in found.items()]
        if self.subject not in found:
            out.insert(0, (self.subject, self.subject_label, 0))
        return out

    def runs_of(self, subject: str) -> list[RunRecord]:
        """The runs compared on ``subject`` (in run order)."""
        return [r for r in self.runs if r.subject == subject]

    def baseline_of(self, subject: str) -> dict[str, Any]:
        """The baseline every run of ``subject`` is compared with: the session's baseline
        for the current subject (when measured), else the ``metrics["baseline"]`` of the
        subject's newest finished run ({} when there is none)."""
        if subject == self.subject and self.baseline:
            return self.baseline
        for r in reversed(self.runs_of(subject)):
            if r.status == "finished" and r.baseline:
                return r.baseline
        return {}


@dataclass
class RunPlan:
    """Where a run about to start writes and how its data is split (the run's owner decides:
    ``RunHooks.before_start``). ``run_id`` names the run; ``out_dir`` is its folder."""

    run_id: str
    out_dir: str
    split_seed: int
    val_fraction: float


class RunHooks(Protocol):
    """The owner of the runs a ``CompressTab`` starts (the window's project controller).

    Set with ``CompressTab.set_run_hooks``; the tab calls, in this order: ``may_start``
    first (False refuses the run: the hook has told the user why), then, once the tab's own
    checks and the recipe passed, ``before_start`` (where and how the run goes),
    ``on_started`` once the job is submitted, ``on_event`` for every metric event, and
    ``on_done`` when the run ends with any status (finished, failed, cancelled), before the
    tab's ``runFinished`` signal. ``out_dir`` is the folder the caller asked for (None: the
    owner chooses).
    """

    def may_start(self, out_dir: str | None) -> bool: ...

    def before_start(self, recipe: dict[str, Any], out_dir: str | None) -> RunPlan: ...

    def on_started(self, run: RunRecord) -> None: ...

    def on_event(self, run: RunRecord, event: dict[str, Any]) -> None: ...

    def on_done(self, run: RunRecord) -> None: ...
