"""Project files (``NAME.fwproj``): state, load/save, recovery, references and headless runs.

Light module (no TensorFlow, no Qt). The format is documented in docs/project-format.md:
a JSON document with an integer ``format_version`` beside a folder the project owns,
``NAME_files/``, that holds every run's artifacts (``runs/<run_id>/model.tflite``,
``metrics.json``), every kept sensitivity analysis (``analyses/<id>/sensitivity.json``) and
every search's study folder (``searches/<id>/``: ``search.json``, ``study.journal``,
``trials/``, ``checkpoints/``, ``best/``; format 6). Saving rewrites only the JSON, atomically;
artifacts are written once (atomically), by the run, ``add_analysis`` or the search that
makes them.

The GUI's calls, in order of a session::

    project = new_project()                      # or load_project(path) / load_recovery(rec)
    lock = ProjectLock(path); lock.acquire()     # engine.project.lock, while the file is open
    set_model(project, "demo"); set_dataset(project, "demo", seed=0)
    run = add_pending_run(project, recipe)       # then, to run it in the GUI's worker:
    mark_run_started(project, run); out = run_dir(project, run.id)
    ... for each worker event: record_event(run, event) ...
    record_run_result(project, run, metrics)     # or record_run_failure(project, run, msg)
    add_analysis(project, sensitivity_doc)       # keep an analysis (format 5)
    latest_analysis(project)                     # the latest one of the current subject
    entry = add_search(project, 1.0, "gzip", time_s=1200)   # a search (format 6), then run
    search_dir(project, entry)                   # the worker's "search" job with out= this
    latest_search(project); load_search(project, entry)     # reopened: its search.json
    write_recovery(project)                      # autosave: JSON only, beside the project
    save_project(project, path)                  # Save / Save As (copies artifacts over)
    project.is_dirty()                           # unsaved changes?

Errors are ProjectError (a BadInputError: one-line message, exit code 2).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.core.errors import Cancelled, FeatherweightError
from engine.core.events import Event, Reporter
from engine.pipeline.budget import DEFAULT_BUDGET_PTS, check_budget
from engine.project.common import (  # noqa: F401 - re-exported: the project API
    DATA_DIR_ENV,
    EXTENSION,
    FILES_SUFFIX,
    FORMAT_VERSION,
    RECOVERY_SUFFIX,
    RUN_ID,
    RUN_STATUSES,
    SCALE_RULES,
    SHA256,
    TEST_SAVE_PAUSE_ENV,
    UNTITLED_RECOVERY_NAME,
    ProjectError,
    write_json_atomic,
)
from engine.project.lock import check_not_locked_by_other
from engine.project.migrations import migrate

_RUN_ID = RUN_ID  # the GUI's project controller uses this name
_SHA256 = SHA256

# --------------------------------------------------------------------------- time, versions


def utc_now() -> str:
    """ISO 8601 UTC timestamp with seconds, e.g. ``2026-11-24T23:40:12Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_VERSIONS: dict[str, str] | None = None


def current_versions() -> dict[str, str]:
    """Versions of the app and of the libraries that shape results (no TensorFlow import)."""
    global _VERSIONS
    if _VERSIONS is None:
        from importlib import metadata

        import engine

        found = {"app": engine.__version__, "python": sys.version.split()[0]}
        for key, dist in (
            ("tensorflow", "tensorflow"),
            ("tf_keras", "tf-keras"),
            ("tfmot", "tensorflow-model-optimization"),
            ("keras", "keras"),
            ("litert", "ai-edge-litert"),
            ("numpy", "numpy"),
        ):
            try:
                found[key] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        _VERSIONS = found
    return dict(_VERSIONS)


# --------------------------------------------------------------------------- paths


def files_dir_for(project_path: str | Path) -> Path:
    """The folder the project owns: ``NAME_files`` beside ``NAME.fwproj``."""
    p = Path(project_path)
    return p.with_name(p.stem + FILES_SUFFIX)


def user_data_dir() -> Path:
    """Per-user folder for untitled projects' work (``$FEATHERWEIGHT_DATA_DIR`` overrides)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    if sys.platform == "win32":  # pragma: no cover
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":  # pragma: no cover
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "featherweight"


def untitled_root(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir) if data_dir is not None else user_data_dir() / "untitled"


def validate_artifact_path(rel: Any, where: str = "artifact") -> str:
    """Check a path stored relative to the project's files folder; returns it (POSIX form).

    Raises ProjectError for anything that could leave the folder: absolute paths (``/x``,
    ``C:x``, ``\\\\server``), ``..`` components, backslashes, empty components.
    """
    if not isinstance(rel, str) or not rel:
        raise ProjectError(f"{where}: path must be a non-empty string, got {rel!r}")
    if "\\" in rel or "\x00" in rel:
        raise ProjectError(f"{where}: path {rel!r} must use '/' separators")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        raise ProjectError(f"{where}: path {rel!r} is absolute; it must stay inside the project")
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ProjectError(f"{where}: path {rel!r} may not contain '..', '.' or empty parts")
    return rel


def _relative_ref(path: str, base_dir: Path | None) -> str:
    """A model/data path as stored: relative to the project file's folder when possible."""
    if path == "demo" or base_dir is None:
        return path
    try:
        rel = os.path.relpath(path, base_dir)
    except ValueError:  # another drive (Windows): only an absolute path can say where
        return path
    return rel.replace(os.sep, "/")


def _absolute_ref(stored: str, base_dir: Path | None, where: str) -> str:
    if stored == "demo":
        return stored
    p = Path(stored)
    if p.is_absolute():
        return os.path.normpath(p)
    if base_dir is None:
        raise ProjectError(f"{where}: relative path {stored!r} but the project has no folder")
    return os.path.normpath(base_dir / p)


# --------------------------------------------------------------------------- hashing


def content_hash(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes; for a folder (SavedModel, image folder), of its
    manifest: every file's relative path and size, in sorted order (reading a large image
    folder on every open would be too slow). Raises ProjectError if missing."""
    p = Path(path)
    h = hashlib.sha256()
    try:
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                rel = f.relative_to(p).as_posix()
                h.update(f"{rel}\0{f.stat().st_size}\n".encode())
            return h.hexdigest()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise ProjectError(f"not found: {p}") from None
    except OSError as exc:
        raise ProjectError(f"cannot read {p}: {exc.strerror}") from None
    return h.hexdigest()


# --------------------------------------------------------------------------- state


@dataclass
class ModelRef:
    """The model: ``path`` is ``"demo"`` or an absolute path (stored relative to the file)."""

    path: str
    sha256: str | None = None
    allow_unsafe: bool = False

    def to_dict(self, base_dir: Path | None) -> dict[str, Any]:
        return {
            "path": _relative_ref(self.path, base_dir),
            "sha256": self.sha256,
            "allow_unsafe": self.allow_unsafe,
        }

    @classmethod
    def from_dict(cls, d: Any, base_dir: Path | None) -> ModelRef:
        d = _obj(d, "model")
        return cls(
            path=_absolute_ref(_str(d, "path", "model"), base_dir, "model"),
            sha256=_hash(d.get("sha256"), "model"),
            allow_unsafe=_bool(d, "allow_unsafe", "model", False),
        )


@dataclass
class DatasetRef:
    """The dataset and how it is split and scaled (split seed, validation fraction)."""

    path: str
    sha256: str | None = None
    seed: int = 0
    val_fraction: float = 0.1
    scale: str = "auto"

    def to_dict(self, base_dir: Path | None) -> dict[str, Any]:
        return {
            "path": _relative_ref(self.path, base_dir),
            "sha256": self.sha256,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "scale": self.scale,
        }

    @classmethod
    def from_dict(cls, d: Any, base_dir: Path | None) -> DatasetRef:
        d = _obj(d, "dataset")
        seed = d.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ProjectError(f"dataset: 'seed' must be a non-negative integer, got {seed!r}")
        vf = d.get("val_fraction", 0.1)
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 <= vf < 1:
            raise ProjectError(f"dataset: 'val_fraction' must be in [0, 1), got {vf!r}")
        scale = d.get("scale", "auto")
        if scale not in SCALE_RULES:
            raise ProjectError(
                f"dataset: 'scale' must be one of {', '.join(SCALE_RULES)}, got {scale!r}"
            )
        return cls(
            path=_absolute_ref(_str(d, "path", "dataset"), base_dir, "dataset"),
            sha256=_hash(d.get("sha256"), "dataset"),
            seed=seed,
            val_fraction=float(vf),
            scale=scale,
        )


@dataclass
class Run:
    """One run of one recipe. ``series`` holds the metric events exactly as emitted;
    ``artifacts`` are paths relative to the project's files folder."""

    id: str
    recipe: dict[str, Any]
    status: str = "pending"
    config: dict[str, Any] = field(default_factory=dict)
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    series: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    artifacts: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipe": copy.deepcopy(self.recipe),
            "config": copy.deepcopy(self.config),
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "series": copy.deepcopy(self.series),
            "metrics": copy.deepcopy(self.metrics),
            "artifacts": list(self.artifacts),
            "versions": dict(self.versions),
            "seeds": dict(self.seeds),
        }

    @classmethod
    def from_dict(cls, d: Any, index: int) -> Run:
        d = _obj(d, f"run {index + 1}")
        run_id = d.get("id")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise ProjectError(
                f"run {index + 1}: id {run_id!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        where = f"run {run_id}"
        status = d.get("status")
        if status not in RUN_STATUSES:
            raise ProjectError(
                f"{where}: status {status!r} is not one of {', '.join(RUN_STATUSES)}"
            )
        recipe = _obj(d.get("recipe"), f"{where}: recipe")
        series = d.get("series", [])
        if not isinstance(series, list) or not all(isinstance(e, dict) for e in series):
            raise ProjectError(f"{where}: 'series' must be a list of metric events")
        metrics = d.get("metrics")
        if metrics is not None and not isinstance(metrics, dict):
            raise ProjectError(f"{where}: 'metrics' must be an object or null")
        artifacts = d.get("artifacts", [])
        if not isinstance(artifacts, list):
            raise ProjectError(f"{where}: 'artifacts' must be a list of paths")
        artifacts = [validate_artifact_path(a, f"{where}: artifact") for a in artifacts]
        for key in ("started", "finished", "error"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise ProjectError(f"{where}: '{key}' must be a string or null")
        return cls(
            id=run_id,
            recipe=recipe,
            status=status,
            config=_obj(d.get("config", {}), f"{where}: config"),
            started=d.get("started"),
            finished=d.get("finished"),
            error=d.get("error"),
            series=series,
            metrics=metrics,
            artifacts=artifacts,
            versions=_obj(d.get("versions", {}), f"{where}: versions"),
            seeds=_obj(d.get("seeds", {}), f"{where}: seeds"),
        )


@dataclass
class Project:
    """Everything a project file holds, plus where it lives (not saved).

    ``path`` is None for an untitled project; its artifacts then live in ``workspace``
    (a per-user folder) until the first Save As copies them beside the new file.
    """

    name: str = "Untitled"
    model: ModelRef | None = None
    dataset: DatasetRef | None = None
    recipes: list[dict[str, Any]] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    # Sensitivity analyses (format 5): {"id", "created", "config", "artifact"}.
    analyses: list[dict[str, Any]] = field(default_factory=list)
    # Searches (format 6): {"id", "created", "config", "folder"}.
    searches: list[dict[str, Any]] = field(default_factory=list)
    ui: dict[str, Any] = field(default_factory=dict)
    accuracy_budget: float = DEFAULT_BUDGET_PTS  # points; format 4
    created: str | None = None
    saved_at: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    # Not saved:
    path: Path | None = None
    workspace: Path | None = None
    migrated_from: int | None = None  # format of the file it was loaded from, if older
    load_warnings: list[str] = field(default_factory=list)
    revision: int = 0  # bumped by every engine.project.document helper that changes the project
    _saved_fingerprint: str | None = field(default=None, repr=False)

    # ----- serialisation
    def base_dir(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (current format). Model/data paths are relative to the project
        file's folder (absolute while the project is untitled)."""
        base = self.base_dir()
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "saved_at": self.saved_at,
            "versions": dict(self.versions),
            "model": self.model.to_dict(base) if self.model else None,
            "dataset": self.dataset.to_dict(base) if self.dataset else None,
            "accuracy_budget": self.accuracy_budget,
            "recipes": copy.deepcopy(self.recipes),
            "runs": [r.to_dict() for r in self.runs],
            "analyses": copy.deepcopy(self.analyses),
            "searches": copy.deepcopy(self.searches),
            "ui": _redact_passwords(self.ui),
        }

    @classmethod
    def from_dict(
        cls, data: Any, path: Path | None = None, base_dir: Path | None = None
    ) -> Project:
        """Build from a current-format document. ``base_dir`` resolves relative model/data
        paths (default: the folder of ``path``). Raises ProjectError naming the bad field."""
        d = _obj(data, "project")
        if d.get("format_version") != FORMAT_VERSION:
            raise ProjectError(
                f"project format_version must be {FORMAT_VERSION} here (use load_project, "
                "which migrates older files)"
            )
        if base_dir is None and path is not None:
            base_dir = path.parent
        recipes = d.get("recipes", [])
        if not isinstance(recipes, list):
            raise ProjectError("project: 'recipes' must be a list")
        recipes = [_obj(r, f"recipe {i + 1}") for i, r in enumerate(recipes)]
        raw_runs = d.get("runs", [])
        if not isinstance(raw_runs, list):
            raise ProjectError("project: 'runs' must be a list")
        runs = [Run.from_dict(r, i) for i, r in enumerate(raw_runs)]
        ids = [r.id for r in runs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ProjectError(f"project: run id(s) used twice: {', '.join(dupes)}")
        analyses = _entries(d.get("analyses", []), "analysis", "artifact")
        searches = _entries(d.get("searches", []), "search", "folder")
        for entry in searches:
            entry["config"] = _search_config(entry["config"])
        name = d.get("name") or (path.stem if path else "Untitled")
        if not isinstance(name, str):
            raise ProjectError("project: 'name' must be a string")
        try:
            budget = check_budget(d.get("accuracy_budget", DEFAULT_BUDGET_PTS))
        except ValueError as exc:
            raise ProjectError(f"project: {exc}") from None
        return cls(
            name=name,
            model=ModelRef.from_dict(d["model"], base_dir) if d.get("model") else None,
            dataset=DatasetRef.from_dict(d["dataset"], base_dir) if d.get("dataset") else None,
            recipes=recipes,
            runs=runs,
            analyses=analyses,
            searches=searches,
            ui=_obj(d.get("ui", {}), "project: ui"),
            accuracy_budget=budget,
            created=d.get("created") if isinstance(d.get("created"), str) else None,
            saved_at=d.get("saved_at") if isinstance(d.get("saved_at"), str) else None,
            versions=_obj(d.get("versions", {}), "project: versions"),
            path=path,
        )

    # ----- where things are
    @property
    def files_dir(self) -> Path | None:
        """Folder holding the artifacts: ``NAME_files`` (titled) or the workspace (untitled)."""
        if self.path is not None:
            return files_dir_for(self.path)
        return self.workspace

    @property
    def title(self) -> str:
        return self.path.name if self.path is not None else self.name

    def fingerprint(self) -> str:
        """sha256 of the canonical document; equal fingerprints mean equal content."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def is_dirty(self) -> bool:
        """True when the content differs from what was last loaded or saved."""
        return self._saved_fingerprint is None or self.fingerprint() != self._saved_fingerprint

    def mark_clean(self) -> None:
        self._saved_fingerprint = self.fingerprint()

    def touch(self) -> None:
        """Call after changing fields directly (e.g. ``ui``): bumps ``revision``."""
        self.revision += 1

    def run(self, run_id: str) -> Run:
        for r in self.runs:
            if r.id == run_id:
                return r
        raise KeyError(run_id)


def _entries(raw: Any, what: str, path_key: str) -> list[dict[str, Any]]:
    """Validate the ``analyses`` (format 5) or ``searches`` (format 6) list of a document:
    unique ids with run-id rules, ``created``, ``config`` an object, ``path_key`` (the
    analysis' ``artifact``, the search's ``folder``) a path inside the files folder."""
    plural = "analyses" if what == "analysis" else f"{what}es"
    if not isinstance(raw, list):
        raise ProjectError(f"project: '{plural}' must be a list")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, a in enumerate(raw):
        a = _obj(a, f"{what} {i + 1}")
        aid = a.get("id")
        if not isinstance(aid, str) or not _RUN_ID.match(aid):
            raise ProjectError(
                f"{what} {i + 1}: id {aid!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        if aid in seen:
            raise ProjectError(f"project: {what} id used twice: {aid}")
        seen.add(aid)
        where = f"{what} {aid}"
        if a.get("created") is not None and not isinstance(a["created"], str):
            raise ProjectError(f"{where}: 'created' must be a string or null")
        entry = dict(copy.deepcopy(a))
        entry["config"] = _obj(a.get("config", {}), f"{where}: config")
        entry[path_key] = validate_artifact_path(a.get(path_key), f"{where}: {path_key}")
        out.append(entry)
    return out


def _redact_passwords(value: Any) -> Any:
    """A deep copy of ``value`` with the password of every URL in a string replaced by
    ``***`` (``engine.pipeline.search_storage.redact``): the project file never holds one,
    e.g. a database URL the GUI kept in ``ui``."""
    from engine.pipeline.search_storage import redact

    if isinstance(value, str):
        return redact(value) if "://" in value or "password" in value.lower() else value
    if isinstance(value, dict):
        return {k: _redact_passwords(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_passwords(v) for v in value]
    return copy.deepcopy(value)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProjectError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _str(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v:
        raise ProjectError(f"{where}: '{key}' must be a non-empty string, got {v!r}")
    return v


def _bool(d: dict[str, Any], key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ProjectError(f"{where}: '{key}' must be true or false, got {v!r}")
    return v


def _hash(v: Any, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not _SHA256.match(v):
        raise ProjectError(f"{where}: 'sha256' must be 64 lowercase hex digits or null")
    return v


# --------------------------------------------------------------------------- new / load


def new_project(name: str = "Untitled", data_dir: str | Path | None = None) -> Project:
    """A fresh untitled project. Its runs' artifacts go to a new per-user workspace folder
    under ``data_dir`` (default ``user_data_dir()/untitled``), created on first use."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    workspace = untitled_root(data_dir) / f"{stamp}-{secrets.token_hex(3)}"
    project = Project(name=name, created=utc_now(), workspace=workspace)
    project.versions = current_versions()
    return project


def _read_document(path: Path) -> dict[str, Any]:
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProjectError(f"project file not found: {path}") from None
    except IsADirectoryError:
        raise ProjectError(f"{path} is a folder, not a project file") from None
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror}") from None
    if not raw.strip():
        raise ProjectError(f"{name} is empty ({len(raw)} bytes): it is not a complete project file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProjectError(f"{name} is not a Featherweight project (not UTF-8 JSON text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(text.rstrip()) - 1
        what = "truncated" if truncated else "corrupt"
        raise ProjectError(
            f"{name} is {what}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); the file was left untouched"
        ) from None
    if not isinstance(data, dict):
        raise ProjectError(f"{name} is not a Featherweight project (not a JSON object)")
    return data


def _document_to_project(
    data: dict[str, Any], file_path: Path, project_path: Path | None
) -> Project:
    doc, original, warnings = migrate(data, file_path)
    project = Project.from_dict(doc, path=project_path, base_dir=file_path.parent)
    project.migrated_from = original if original < FORMAT_VERSION else None
    project.load_warnings = warnings
    return project


def load_project(path: str | Path) -> Project:
    """Read a project file of any known format (older ones are migrated in memory).

    Never writes anything. Raises ProjectError (a BadInputError) with a one-line message for
    missing, empty, truncated, non-JSON, invalid or too-new files.
    """
    p = Path(path).absolute()
    project = _document_to_project(_read_document(p), p, p)
    project.mark_clean()
    return project


# --------------------------------------------------------------------------- saving


def _copy_run_artifacts(project: Project, src: Path, dst: Path) -> None:
    """Copy each run's, analysis' and search's folder from ``src`` to ``dst`` (Save As / first
    save)."""
    folders = [f"runs/{run.id}" for run in project.runs]
    folders += [f"{ANALYSES_DIR}/{a['id']}" for a in project.analyses]
    folders += [entry["folder"] for entry in project.searches]
    for rel in folders:
        s = src / rel
        if s.is_dir():
            shutil.copytree(s, dst / rel, dirs_exist_ok=True)


def _remove_stale_temps(path: Path) -> None:
    for tmp in path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > 60:
                tmp.unlink()
        except OSError:
            pass


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _configs(project: Project) -> list[dict[str, Any]]:
    """The ``config`` of every run, analysis and search (their subjects), in a fixed order."""
    return (
        [run.config for run in project.runs]
        + [a["config"] for a in project.analyses]
        + [entry["config"] for entry in project.searches]
    )


def _rebase_run_configs(project: Project, old_base: Path | None, new_base: Path) -> None:
    """Runs' model/dataset paths follow the file to its new folder (stored relative to it,
    like the project's own references; an untitled project's runs recorded absolute ones)."""
    if old_base is not None and os.path.normpath(old_base) == os.path.normpath(new_base):
        return
    for config in _configs(project):
        for key in ("model", "dataset"):
            ref = config.get(key) if isinstance(config, dict) else None
            if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
                continue
            if ref["path"] == "demo":
                continue
            try:
                absolute = _absolute_ref(ref["path"], old_base, key)
            except ProjectError:
                continue  # relative with no folder to resolve it against: leave it
            ref["path"] = _relative_ref(absolute, new_base)


def save_project(project: Project, path: str | Path | None = None) -> Path:
    """Save (``path`` None or the current path) or Save As (another path); returns the path.

    Writes the JSON atomically (see write_json_atomic); on Save As / first save it first copies
    the runs' artifact folders into the new ``NAME_files``. The first save over a file of an
    older format keeps the original as ``NAME.fwproj.v<N>.bak``. Removes the recovery file.
    Raises ProjectError (no file name, wrong extension, locked by another process, I/O error).
    """
    if path is None and project.path is None:
        raise ProjectError("the project has no file name yet: choose where to save it")
    target = Path(path if path is not None else project.path).absolute()  # type: ignore[arg-type]
    if target.suffix != EXTENSION:
        raise ProjectError(f"project files must end in {EXTENSION}: {target.name}")
    if not target.parent.is_dir():
        raise ProjectError(f"cannot save {target.name}: folder {target.parent} does not exist")
    check_not_locked_by_other(target)

    old_path, old_files = project.path, project.files_dir
    new_files = files_dir_for(target)
    untitled_workspace = project.workspace if old_path is None else None
    try:
        if (
            old_files is not None
            and old_files.is_dir()
            and (not new_files.exists() or not os.path.samefile(old_files, new_files))
        ):
            _copy_run_artifacts(project, old_files, new_files)
    except OSError as exc:
        raise ProjectError(f"cannot copy the project's files to {new_files}: {exc}") from None

    if (
        project.migrated_from is not None
        and old_path is not None
        and target == old_path
        and target.exists()
    ):
        backup = target.with_name(f"{target.name}.v{project.migrated_from}.bak")
        if not backup.exists():
            shutil.copy2(target, backup)

    previous = (project.path, project.saved_at, project.versions, project.name)
    configs = copy.deepcopy(_configs(project))
    _rebase_run_configs(project, project.base_dir(), target.parent)
    if old_path is None and project.name == "Untitled":
        project.name = target.stem
    project.path = target
    project.saved_at = utc_now()
    project.versions = current_versions()
    try:
        write_json_atomic(target, project.to_dict(), pause_hook=True)
    except BaseException:
        project.path, project.saved_at, project.versions, project.name = previous
        for current, config in zip(_configs(project), configs):
            current.clear()
            current.update(config)
        raise
    _remove_stale_temps(target)
    project.migrated_from = None
    project.workspace = None
    project.mark_clean()
    discard_recovery(target)
    if old_path is not None and old_path != target:
        discard_recovery(old_path)
    if untitled_workspace is not None and untitled_workspace.is_dir():
        shutil.rmtree(untitled_workspace, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- recovery


def autosave_path(project_path: str | Path) -> Path:
    """Recovery file of a saved project: ``.NAME.fwproj.recovery`` beside it."""
    p = Path(project_path)
    return p.with_name(f".{p.name}{RECOVERY_SUFFIX}")


def recovery_path_of(project: Project) -> Path:
    """Where ``write_recovery`` writes for this project (titled or untitled)."""
    if project.path is not None:
        return autosave_path(project.path)
    if project.workspace is None:
        raise ProjectError("untitled project has no workspace folder for its recovery file")
    return project.workspace / UNTITLED_RECOVERY_NAME


def write_recovery(project: Project) -> Path:
    """Autosave: write the JSON (never artifacts) to the recovery file, atomically.

    Does not change the project file or the dirty state. Cheap (one JSON dump): call it from
    a timer and after each finished run; to keep the window responsive, take
    ``recovery_document(project)`` on the GUI thread and pass it to ``write_json_atomic`` on
    a worker thread.
    """
    target = recovery_path_of(project)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(target, recovery_document(project))
    return target


def recovery_document(project: Project) -> dict[str, Any]:
    """Snapshot for the recovery file: the project document plus ``recovery_of``."""
    doc = project.to_dict()
    doc["recovery_of"] = str(project.path) if project.path is not None else None
    doc["recovery_saved_at"] = utc_now()
    return doc


def find_recovery(project_path: str | Path) -> Path | None:
    """The recovery file to offer when opening ``project_path``: one that exists, is at least
    as new as the project file and differs from it. None otherwise."""
    p = Path(project_path)
    rec = autosave_path(p)
    try:
        rec_mtime = rec.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        if rec_mtime < p.stat().st_mtime:
            return None
        saved = load_project(p).to_dict()
        recovered = load_recovery(rec).to_dict()
        if _same_content(saved, recovered):
            return None
    except FileNotFoundError:
        return rec
    except ProjectError:
        return rec  # the project is unreadable, the recovery may be all there is
    return rec


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    drop = ("saved_at", "versions")
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


def find_untitled_recoveries(data_dir: str | Path | None = None) -> list[Path]:
    """Recovery files of untitled projects left by crashed sessions, newest first."""
    root = untitled_root(data_dir)
    if not root.is_dir():
        return []
    found = [d / UNTITLED_RECOVERY_NAME for d in root.iterdir() if d.is_dir()]
    found = [f for f in found if f.is_file()]
    return sorted(found, key=lambda f: f.stat().st_mtime, reverse=True)


def load_recovery(recovery_path: str | Path) -> Project:
    """Load a recovery file as the project it recovers: ``path`` is the original project
    file (None for an untitled one, whose workspace is the recovery file's folder). The
    result is dirty, so the GUI asks to save it. Raises ProjectError."""
    rec = Path(recovery_path).absolute()
    data = _read_document(rec)
    original = data.get("recovery_of")
    project_path = Path(original) if isinstance(original, str) and original else None
    project = _document_to_project(data, rec, project_path)
    if project_path is None:
        project.workspace = rec.parent
    project._saved_fingerprint = None
    return project


def discard_recovery(target: Project | str | Path, *, delete_workspace: bool = True) -> None:
    """Delete a recovery file. ``target``: a Project, a project file path, or a recovery file
    path from find_recovery / find_untitled_recoveries. For an untitled recovery the
    workspace folder (artifacts of never-saved runs) goes too unless ``delete_workspace``
    is False."""
    if isinstance(target, Project):
        if target.path is None:
            if target.workspace is not None:
                if delete_workspace:
                    shutil.rmtree(target.workspace, ignore_errors=True)
                else:
                    (target.workspace / UNTITLED_RECOVERY_NAME).unlink(missing_ok=True)
            return
        rec = autosave_path(target.path)
    else:
        p = Path(target)
        if p.name == UNTITLED_RECOVERY_NAME:
            if delete_workspace:
                shutil.rmtree(p.parent, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            return
        rec = p if p.name.endswith(RECOVERY_SUFFIX) else autosave_path(p)
    rec.unlink(missing_ok=True)


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class ReferenceProblem:
    """A model/dataset/artifact reference that needs the user's attention.

    ``what``: "model" | "dataset" | "artifacts"; ``problem``: "missing" | "changed" |
    "unverified" (no hash recorded, e.g. migrated from format 1); ``message``: one line.
    """

    what: str
    problem: str
    path: str
    message: str


def set_model(project: Project, spec: str | Path, allow_unsafe: bool = False) -> None:
    """Point the project at a model (``"demo"`` or a path) and record its content hash."""
    s = str(spec)
    if s == "demo":
        project.model = ModelRef("demo", None, allow_unsafe)
    else:
        p = os.path.abspath(s)
        if not os.path.exists(p):
            raise ProjectError(f"model not found: {p}")
        project.model = ModelRef(p, content_hash(p), allow_unsafe)
    project.touch()


def set_dataset(
    project: Project,
    spec: str | Path,
    seed: int = 0,
    val_fraction: float = 0.1,
    scale: str = "auto",
) -> None:
    """Point the project at a dataset (``"demo"``, ``.npz`` or image folder) with its split
    seed, validation fraction and scaling rule; records its content hash."""
    if scale not in SCALE_RULES:
        raise ProjectError(f"scale must be one of {', '.join(SCALE_RULES)}, got {scale!r}")
    s = str(spec)
    if s == "demo":
        project.dataset = DatasetRef("demo", None, seed, float(val_fraction), scale)
    else:
        p = os.path.abspath(s)
        if not os.path.exists(p):
            raise ProjectError(f"dataset not found: {p}")
        project.dataset = DatasetRef(p, content_hash(p), seed, float(val_fraction), scale)
    project.touch()


def _check_ref(what: str, path: str, sha: str | None, shown: str) -> ReferenceProblem | None:
    if path == "demo":
        return None
    if not os.path.exists(path):
        return ReferenceProblem(
            what, "missing", path, f"the {what} {shown} is missing (was it moved or renamed?)"
        )
    if sha is None:
        return ReferenceProblem(
            what, "unverified", path, f"the {what} {shown} has no recorded hash to verify it"
        )
    if content_hash(path) != sha:
        return ReferenceProblem(
            what,
            "changed",
            path,
            f"the {what} {shown} has changed since it was added to the project (different sha256)",
        )
    return None


def check_references(project: Project) -> list[ReferenceProblem]:
    """Check the model and dataset (exists, same content hash), the runs' and analyses'
    artifacts and the searches' folders (present in the files folder). Returns the problems
    found, empty when all is well."""
    problems: list[ReferenceProblem] = []
    base = project.base_dir()
    if project.model is not None:
        shown = _relative_ref(project.model.path, base)
        pr = _check_ref("model", project.model.path, project.model.sha256, shown)
        if pr:
            problems.append(pr)
    if project.dataset is not None:
        shown = _relative_ref(project.dataset.path, base)
        pr = _check_ref("dataset", project.dataset.path, project.dataset.sha256, shown)
        if pr:
            problems.append(pr)
    files = project.files_dir
    missing = []
    for rel in [rel for run in project.runs for rel in run.artifacts] + [
        a["artifact"] for a in project.analyses
    ]:
        if files is None or not (files / rel).is_file():
            missing.append(rel)
    for entry in project.searches:  # a study folder (its search.json comes with the 1st trial)
        if files is None or not (files / entry["folder"]).is_dir():
            missing.append(entry["folder"])
    if missing:
        where = files.name if files is not None else "the project's files folder"
        problems.append(
            ReferenceProblem(
                "artifacts",
                "missing",
                str(files),
                f"{len(missing)} run artifact(s) missing from {where}, e.g. {missing[0]}",
            )
        )
    return problems


def relocate_model(project: Project, new_path: str | Path) -> bool:
    """Point the model reference at ``new_path`` (the user located a moved model) and record
    its hash. Returns True when its content equals the recorded hash (the same model), False
    when it differs or no hash was recorded. Raises ProjectError if it does not exist."""
    if project.model is None:
        raise ProjectError("the project has no model to relocate")
    p = os.path.abspath(str(new_path))
    digest = content_hash(p)
    same = project.model.sha256 == digest
    project.model = ModelRef(p, digest, project.model.allow_unsafe)
    project.touch()
    return same


def relocate_dataset(project: Project, new_path: str | Path) -> bool:
    """Like relocate_model, for the dataset (keeps its seed, fraction and scaling)."""
    if project.dataset is None:
        raise ProjectError("the project has no dataset to relocate")
    p = os.path.abspath(str(new_path))
    digest = content_hash(p)
    same = project.dataset.sha256 == digest
    ds = project.dataset
    project.dataset = DatasetRef(p, digest, ds.seed, ds.val_fraction, ds.scale)
    project.touch()
    return same


# --------------------------------------------------------------------------- subjects


def _ref_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ref_path(ref: dict[str, Any], base_dir: Path | None) -> str:
    """A stored reference's path, absolute when it can be (``base_dir`` resolves relative)."""
    path = ref.get("path")
    if not isinstance(path, str) or not path:
        return ""
    if path == "demo" or base_dir is None or os.path.isabs(path):
        return path
    return os.path.normpath(base_dir / path)


def _split_of(dataset: dict[str, Any], split: dict[str, Any] | None) -> tuple[int, float]:
    src = split if isinstance(split, dict) else {}
    seed = src.get("seed", dataset.get("seed", 0))
    vf = src.get("val_fraction", dataset.get("val_fraction", 0.1))
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    vf = float(vf) if isinstance(vf, (int, float)) and not isinstance(vf, bool) else 0.1
    return seed, vf


def subject_key(
    model: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
    split: dict[str, Any] | None = None,
    base_dir: Path | None = None,
) -> str:
    """A stable key for what a run is compared on: the model, the dataset and its split.

    ``model`` / ``dataset`` are reference dicts as a project stores them (``ModelRef`` /
    ``DatasetRef.to_dict``, or a run's ``config``); ``split`` (``{"seed", "val_fraction"}``,
    a run's ``config.split``) overrides the dataset's own seed and fraction; ``base_dir``
    resolves relative paths. Content hashes identify files (the same bytes under another
    path are the same subject); a reference without a hash (the demo, files from format 1)
    is identified by its path. Returns 16 hex digits; runs with equal keys share a baseline.
    """
    m, d = _ref_dict(model), _ref_dict(dataset)
    return _short_hash({"model": _ref_identity(m, base_dir), **_dataset_parts(d, split, base_dir)})


def _ref_identity(ref: dict[str, Any], base_dir: Path | None) -> str:
    """A reference's content hash, or ``path:`` + its absolute path when it has none."""
    return ref.get("sha256") or f"path:{_ref_path(ref, base_dir)}"


def _dataset_parts(
    d: dict[str, Any], split: dict[str, Any] | None, base_dir: Path | None
) -> dict[str, Any]:
    seed, vf = _split_of(d, split)
    return {
        "dataset": _ref_identity(d, base_dir),
        "seed": seed,
        "val_fraction": round(vf, 6),
        "scale": d.get("scale", "auto") if d else "",
    }


def _short_hash(parts: dict[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _shown_name(ref: dict[str, Any], base_dir: Path | None, what: str) -> str:
    path = _ref_path(ref, base_dir)
    if not path:
        return f"no {what}"
    if path == "demo":
        return "demo model" if what == "model" else "demo digits"
    p = Path(path)
    folder = p.is_dir() or (not p.exists() and not p.suffix)
    return p.name + ("/" if folder else "")


def subject_label(
    model: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
    split: dict[str, Any] | None = None,
    base_dir: Path | None = None,
) -> str:
    """What people read for a subject, e.g. ``mobilenet.keras · images/ (split seed 0,
    10 % val)``; the scaling rule is named when it is not ``auto``."""
    m, d = _ref_dict(model), _ref_dict(dataset)
    text = f"{_shown_name(m, base_dir, 'model')} · {_shown_name(d, base_dir, 'dataset')}"
    if d:
        seed, vf = _split_of(d, split)
        scale = d.get("scale", "auto")
        extra = f", scale {scale}" if scale not in ("auto", None) else ""
        text += f" (split seed {seed}, {vf * 100:g} % val{extra})"
    return text


def project_subject(project: Project) -> tuple[str, str]:
    """``(key, label)`` of what the project's next run is compared on (its current model,
    dataset and split)."""
    base = project.base_dir()
    model = project.model.to_dict(base) if project.model else None
    dataset = project.dataset.to_dict(base) if project.dataset else None
    return subject_key(model, dataset, None, base), subject_label(model, dataset, None, base)


def run_subject(project: Project, run: Run) -> tuple[str, str]:
    """``(key, label)`` of what ``run`` ran on: its ``config`` (model, dataset, split), or
    the project's current subject for a run that has not started (no model in its config)."""
    return config_subject(project, run.config)


def config_subject(project: Project, config: dict[str, Any] | None) -> tuple[str, str]:
    """``(key, label)`` of a run's, analysis' or search's ``config`` (model, dataset, split);
    the project's current subject when it names no model."""
    cfg = config or {}
    if not isinstance(cfg.get("model"), dict):
        return project_subject(project)
    base = project.base_dir()
    split = cfg.get("split") if isinstance(cfg.get("split"), dict) else None
    return (
        subject_key(cfg.get("model"), cfg.get("dataset"), split, base),
        subject_label(cfg.get("model"), cfg.get("dataset"), split, base),
    )


def _new_id(entries: list[Any], prefix: str, taken: set[str]) -> str:
    n = len(entries) + 1
    while f"{prefix}-{n:03d}" in taken:
        n += 1
    return f"{prefix}-{n:03d}"


def _entry_folder(project: Project, kind: str, entry_id: str) -> Path:
    """``<files>/<kind>/<entry_id>``, created. Raises ProjectError."""
    files = project.files_dir
    if files is None:
        raise ProjectError("the project has neither a file nor a workspace folder")
    folder = files / kind / entry_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


def _remove_entry(project: Project, attr: str, entry_id: str, folder: str) -> None:
    """Drop the entry ``entry_id`` of ``project.<attr>`` and delete ``folder`` (relative to
    the files folder). Unknown ids are ignored."""
    entries = getattr(project, attr)
    kept = [e for e in entries if e["id"] != entry_id]
    if len(kept) == len(entries):
        return
    setattr(project, attr, kept)
    files = project.files_dir
    if files is not None and _RUN_ID.match(entry_id):
        shutil.rmtree(files / validate_artifact_path(folder), ignore_errors=True)
    project.touch()


# --------------------------------------------------------------------------- analyses

ANALYSES_DIR = "analyses"
SENSITIVITY_FILE = "sensitivity.json"
SENSITIVITY_KIND = "featherweight.sensitivity"  # engine.pipeline.sensitivity.KIND


def new_analysis_id(project: Project) -> str:
    return _new_id(project.analyses, "analysis", {a["id"] for a in project.analyses})


def add_analysis(
    project: Project, doc: dict[str, Any], config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Keep a sensitivity analysis (the ``sensitivity.json`` document ``doc``) in the project:
    writes it atomically to ``<files>/analyses/<id>/sensitivity.json`` and records
    ``{"id", "created", "config", "artifact"}`` (``config``: what it analyzed, default the
    project's current model, dataset and split, like a run's). Returns the entry. Raises
    ProjectError (not a sensitivity document, no files folder, I/O error)."""
    if not isinstance(doc, dict) or doc.get("kind") != SENSITIVITY_KIND:
        raise ProjectError("not a sensitivity analysis document")
    aid = new_analysis_id(project)
    rel = f"{ANALYSES_DIR}/{aid}/{SENSITIVITY_FILE}"
    folder = _entry_folder(project, ANALYSES_DIR, aid)
    write_json_atomic(folder / SENSITIVITY_FILE, doc)
    created = doc.get("created") if isinstance(doc.get("created"), str) else utc_now()
    entry = {
        "id": aid,
        "created": created,
        "config": copy.deepcopy(config) if config is not None else run_config(project),
        "artifact": rel,
    }
    project.analyses.append(entry)
    project.touch()
    return copy.deepcopy(entry)


def remove_analysis(project: Project, analysis_id: str) -> None:
    """Drop an analysis and delete its folder. Unknown ids are ignored."""
    _remove_entry(project, "analyses", analysis_id, f"{ANALYSES_DIR}/{analysis_id}")


def analysis_subject(project: Project, analysis: dict[str, Any]) -> tuple[str, str]:
    """``(key, label)`` of what ``analysis`` analyzed (its config), like ``run_subject``."""
    return config_subject(project, analysis.get("config"))


def load_analysis(project: Project, analysis: dict[str, Any]) -> dict[str, Any] | None:
    """The stored ``sensitivity.json`` of ``analysis``; None when it is missing or unreadable
    (``check_references`` reports a missing one)."""
    try:
        path = artifact_path(project, analysis["artifact"])
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ProjectError, OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError):
        return None
    if not isinstance(doc, dict) or doc.get("kind") != SENSITIVITY_KIND:
        return None
    return doc


def latest_analysis(project: Project, subject: str | None = None) -> dict[str, Any] | None:
    """The most recent readable analysis document of ``subject`` (a key from
    ``project_subject`` / ``subject_key``; None = the project's current subject), loaded
    from disk (nothing is recomputed); None when there is none."""
    key = subject if subject is not None else project_subject(project)[0]
    for analysis in reversed(project.analyses):
        if analysis_subject(project, analysis)[0] != key:
            continue
        doc = load_analysis(project, analysis)
        if doc is not None:
            return doc
    return None


# --------------------------------------------------------------------------- searches

SEARCHES_DIR = "searches"
# What a search entry's config keeps: its subject (like a run's config) and the search's
# settings. Nothing else -- in particular never a storage URL (it may hold a password).
SEARCH_SETTINGS = ("budget_pts", "objective", "time_s", "trials", "seed")
_SEARCH_CONFIG_KEYS = ("model", "dataset", "split") + SEARCH_SETTINGS


def _search_config(config: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(config[k]) for k in _SEARCH_CONFIG_KEYS if k in config}


def new_search_id(project: Project) -> str:
    return _new_id(project.searches, "search", {e["id"] for e in project.searches})


def _positive(value: Any, what: str, kind: type) -> Any:
    if value is None:
        return None
    ok = isinstance(value, (int, float) if kind is float else int)
    if not ok or isinstance(value, bool) or value <= 0:
        raise ProjectError(f"search: {what} must be a positive number or none, got {value!r}")
    return kind(value)


def add_search(
    project: Project,
    budget_pts: Any,
    objective: str,
    *,
    time_s: float | None = None,
    trials: int | None = None,
    seed: int = 0,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a new search in the project and create its empty study folder
    ``<files>/searches/<id>/`` (the search writes ``search.json``, ``study.journal``,
    ``trials/``, ``checkpoints/`` and ``best/`` there: pass ``search_dir(project, entry)`` as
    the worker job's ``out``). The entry is ``{"id", "created", "config", "folder"}``;
    ``config`` holds the subject (``config`` argument, default the project's current model,
    dataset and split, like a run's) and the settings ``budget_pts``, ``objective``,
    ``time_s``, ``trials``, ``seed`` -- never a storage URL. Returns a copy of the entry.
    Raises ProjectError (bad setting, no files folder, I/O error)."""
    try:
        budget = check_budget(budget_pts)
    except ValueError as exc:
        raise ProjectError(f"search: {exc}") from None
    from engine.pipeline.search import OBJECTIVES  # Optuna is imported only by search()

    if objective not in OBJECTIVES:
        raise ProjectError(
            f"search: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ProjectError(f"search: seed must be a non-negative integer, got {seed!r}")
    settings = {
        "budget_pts": budget,
        "objective": objective,
        "time_s": _positive(time_s, "time_s", float),
        "trials": _positive(trials, "trials", int),
        "seed": seed,
    }
    subject = copy.deepcopy(config) if config is not None else run_config(project)
    sid = new_search_id(project)
    _entry_folder(project, SEARCHES_DIR, sid)
    entry = {
        "id": sid,
        "created": utc_now(),
        "config": _search_config({**subject, **settings}),
        "folder": f"{SEARCHES_DIR}/{sid}",
    }
    project.searches.append(entry)
    project.touch()
    return copy.deepcopy(entry)


def _search_entry(project: Project, search: dict[str, Any] | str) -> dict[str, Any]:
    sid = search if isinstance(search, str) else search.get("id")
    for entry in project.searches:
        if entry["id"] == sid:
            return entry
    raise ProjectError(f"no search {sid!r} in the project")


def search_dir(project: Project, search: dict[str, Any] | str) -> Path:
    """The absolute study folder of a search (an entry or its id), created if needed (the
    ``out`` of the worker's ``search`` job, the ``search_dir`` of ``open_trial``). Raises
    ProjectError (unknown id, a folder leaving the files folder)."""
    entry = _search_entry(project, search)
    folder = artifact_path(project, entry["folder"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


def load_search(project: Project, search: dict[str, Any] | str) -> dict[str, Any] | None:
    """The ``search.json`` document of a search (an entry or its id), read from its folder
    with ``engine.pipeline.search.read_search`` -- whatever the search wrote last, also for
    one still running or stopped (nothing is recomputed). None when it has written none yet
    (or its folder is missing: ``check_references`` reports that). Raises ProjectError (one
    line) for an unreadable or newer-schema file."""
    from engine.core.errors import BadInputError
    from engine.pipeline.search import SEARCH_FILE, read_search

    entry = _search_entry(project, search)
    path = artifact_path(project, entry["folder"]) / SEARCH_FILE
    if not path.is_file():
        return None
    try:
        return read_search(path)
    except ProjectError:
        raise
    except BadInputError as exc:
        raise ProjectError(str(exc)) from None


def search_subject(project: Project, search: dict[str, Any]) -> tuple[str, str]:
    """``(key, label)`` of what ``search`` searched on (its config), like ``run_subject``."""
    return config_subject(project, search.get("config"))


def search_ids(project: Project, search: dict[str, Any] | None = None) -> tuple[str, str]:
    """``(model_id, dataset_id)`` of a search entry's config, or of the project's current
    model and dataset when ``search`` is None: 16 hex digits each, from the content hash (or
    absolute path when there is none, e.g. the demo); the dataset's includes its split and
    scaling rule. Equal ids = the same model / the same data split the same way, wherever
    the files or the project have moved."""
    cfg = search.get("config") if search is not None else run_config(project)
    cfg = cfg if isinstance(cfg, dict) else {}
    base = project.base_dir()
    split = cfg.get("split") if isinstance(cfg.get("split"), dict) else None
    model = _short_hash({"model": _ref_identity(_ref_dict(cfg.get("model")), base)})
    data = _short_hash(_dataset_parts(_ref_dict(cfg.get("dataset")), split, base))
    return model, data


def latest_search(
    project: Project, model_id: str | None = None, dataset_id: str | None = None
) -> dict[str, Any] | None:
    """The newest search entry (a copy) on ``model_id`` / ``dataset_id`` (``search_ids``;
    None = the project's current model / dataset), whether or not it has written its
    ``search.json`` yet (``load_search`` reads it); None when there is none."""
    current = search_ids(project)
    want = (model_id or current[0], dataset_id or current[1])
    for entry in reversed(project.searches):
        if search_ids(project, entry) == want:
            return copy.deepcopy(entry)
    return None


def remove_search(project: Project, search_id: str) -> None:
    """Drop a search and delete its study folder. Unknown ids are ignored. (Stop a search
    that is running first.)"""
    for entry in project.searches:
        if entry["id"] == search_id:
            _remove_entry(project, "searches", search_id, entry["folder"])
            return


# --------------------------------------------------------------------------- runs


def _recipe_document(recipe: Any) -> dict[str, Any]:
    from engine.pipeline.recipe import Recipe, validate_recipe

    if isinstance(recipe, Recipe):
        return recipe.to_dict()
    return validate_recipe(recipe).to_dict()


def add_recipe(project: Project, recipe: Any) -> dict[str, Any]:
    """Add a recipe (Recipe or dict; validated, defaults filled) unless an equal one is
    there; returns the stored document. Raises RecipeError."""
    doc = _recipe_document(recipe)
    if doc not in project.recipes:
        project.recipes.append(doc)
        project.touch()
    return doc


def set_accuracy_budget(project: Project, points: Any) -> float:
    """Set the project-wide accuracy budget (percentage points a compressed model may lose
    against its own baseline, 0-100); returns it. Raises ProjectError for a bad value."""
    try:
        value = check_budget(points)
    except ValueError as exc:
        raise ProjectError(str(exc)) from None
    if value != project.accuracy_budget:
        project.accuracy_budget = value
        project.touch()
    return value


def remove_run(project: Project, run_id: str) -> None:
    """Drop a run from the project and delete its artifact folder (a cancelled run: it
    keeps no result, no number and no files). Unknown ids are ignored."""
    before = len(project.runs)
    project.runs = [r for r in project.runs if r.id != run_id]
    if len(project.runs) == before:
        return
    files = project.files_dir
    if files is not None and _RUN_ID.match(run_id):
        shutil.rmtree(files / "runs" / run_id, ignore_errors=True)
    project.touch()


def new_run_id(project: Project) -> str:
    taken = {r.id for r in project.runs}
    n = len(project.runs) + 1
    while f"run-{n:03d}" in taken:
        n += 1
    return f"run-{n:03d}"


def add_pending_run(project: Project, recipe: Any) -> Run:
    """Queue a run of ``recipe`` (also added to the project's recipes). Raises RecipeError."""
    doc = add_recipe(project, recipe)
    run = Run(id=new_run_id(project), recipe=copy.deepcopy(doc), status="pending")
    run.config = run_config(project)
    project.runs.append(run)
    project.touch()
    return run


def run_config(project: Project) -> dict[str, Any]:
    """What a run uses besides its recipe: model and dataset references (as stored) and the
    split (the dataset's seed and validation fraction; format 3)."""
    base = project.base_dir()
    config: dict[str, Any] = {
        "model": project.model.to_dict(base) if project.model else None,
        "dataset": project.dataset.to_dict(base) if project.dataset else None,
    }
    if project.dataset is not None:
        config["split"] = {
            "seed": project.dataset.seed,
            "val_fraction": project.dataset.val_fraction,
        }
    return config


def split_params(project: Project) -> dict[str, Any]:
    """The split arguments every run of the project passes to the engine — the ``compress``,
    ``baseline`` and ``check_data`` jobs' ``split_seed`` / ``val_fraction`` params and
    ``compress(..., split_seed=, val_fraction=)`` — so a run in the app, ``featherweight run``
    and ``featherweight compress --split-seed`` see the same files. Defaults without a
    dataset."""
    if project.dataset is None:
        return {"split_seed": 0, "val_fraction": 0.1}
    return {"split_seed": project.dataset.seed, "val_fraction": project.dataset.val_fraction}


def run_dir(project: Project, run_id: str) -> Path:
    """The run's artifact folder (``NAME_files/runs/<run_id>``), created empty if needed."""
    if not _RUN_ID.match(run_id):
        raise ProjectError(f"invalid run id {run_id!r}")
    files = project.files_dir
    if files is None:
        raise ProjectError("the project has neither a file nor a workspace folder")
    d = files / "runs" / run_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def artifact_path(project: Project, rel: str) -> Path:
    """Absolute path of an artifact stored as ``rel``; refuses paths that leave the files
    folder (also through symlinks). Raises ProjectError."""
    validate_artifact_path(rel)
    files = project.files_dir
    if files is None:
        raise ProjectError("the project has no files folder")
    full = (files / rel).resolve()
    if not full.is_relative_to(files.resolve()):
        raise ProjectError(f"artifact {rel!r} leads outside the project's files folder")
    return full


def mark_run_started(project: Project, run: Run) -> None:
    """Status running; records start time, config, versions and seeds; clears old results
    (also the run's artifact folder, which the run will fill again)."""
    run.status = "running"
    run.started = utc_now()
    run.finished = None
    run.error = None
    run.series = []
    run.metrics = None
    run.artifacts = []
    run.config = run_config(project)
    run.versions = current_versions()
    run.seeds = {"recipe": int(run.recipe.get("seed", 0))}
    if project.dataset is not None:
        run.seeds["split"] = project.dataset.seed
    files = project.files_dir
    if files is not None:
        d = files / "runs" / run.id
        if d.is_dir():
            shutil.rmtree(d)
    project.touch()


def record_event(run: Run, event: Event) -> None:
    """Keep a metric event in the run's series (other event types are ignored). Keys added
    by the worker protocol (``v``, ``id``) are dropped so the series equals the engine's."""
    if event.get("type") != "metric":
        return
    run.series.append({k: copy.deepcopy(v) for k, v in event.items() if k not in ("v", "id")})


def _scan_artifacts(project: Project, run: Run) -> list[str]:
    files = project.files_dir
    if files is None:
        return []
    d = files / "runs" / run.id
    if not d.is_dir():
        return []
    return sorted(p.relative_to(files).as_posix() for p in d.rglob("*") if p.is_file())


def record_run_result(project: Project, run: Run, metrics: dict[str, Any]) -> None:
    """Status done with the final metrics (the metrics.json dict); artifacts are the files
    found in the run's folder."""
    run.status = "done"
    run.finished = utc_now()
    run.metrics = copy.deepcopy(metrics)
    # The split actually used, as the pipeline reports it (metrics["data"]), not as asked.
    data = metrics.get("data") if isinstance(metrics, dict) else None
    if isinstance(data, dict):
        if isinstance(data.get("seed"), int):
            run.seeds["split"] = data["seed"]
        run.config["split_used"] = {
            k: data[k] for k in ("seed", "val_fraction", "test_fraction", "scale") if k in data
        }
        if isinstance(data.get("seed"), int) and isinstance(data.get("val_fraction"), float):
            run.config["split"] = {"seed": data["seed"], "val_fraction": data["val_fraction"]}
    run.error = None
    run.artifacts = _scan_artifacts(project, run)
    project.touch()


def record_run_failure(project: Project, run: Run, message: str, cancelled: bool = False) -> None:
    """Status failed (or cancelled) with a one-line message; keeps the series so far."""
    run.status = "cancelled" if cancelled else "failed"
    run.finished = utc_now()
    run.error = " ".join(str(message).split()) or ("cancelled" if cancelled else "failed")
    run.artifacts = _scan_artifacts(project, run)
    project.touch()


def mark_interrupted_runs(project: Project) -> list[str]:
    """Runs left ``running`` by a process that died become failed. Call only while holding
    the lock (then nobody else can be running them). Returns their ids."""
    ids = []
    for run in project.runs:
        if run.status == "running":
            record_run_failure(
                project, run, "interrupted: the process running it stopped before it finished"
            )
            ids.append(run.id)
    return ids


def run_project(
    path: str | Path, reporter: Reporter | None = None, *, allow_unsafe: bool = False
) -> dict[str, Any]:
    """``featherweight run``: run every pending run of the project headless.

    Trust is never taken from the file: a project whose model holds code (saved after the
    user trusted it in the app) runs only with ``allow_unsafe`` (``--allow-unsafe``), else
    each run fails with the loader's one-line refusal.

    Takes the project's lock (ProjectLockedError if a window or another run holds it),
    refuses missing or changed model/dataset references (ProjectError), runs each pending
    run with ``engine.pipeline.run.compress`` into ``NAME_files/runs/<id>/``, records its metric
    series, metrics and artifacts, and saves the project after each run. A failed run is
    recorded with its message and the next one runs. Cancelled (Ctrl-C) marks the current
    run cancelled, saves, and re-raises. Returns a summary dict.
    """
    from engine.pipeline.recipe import validate_recipe
    from engine.pipeline.run import compress
    from engine.project.lock import ProjectLock

    reporter = reporter or Reporter()
    p = Path(path).absolute()
    with ProjectLock(p, program="featherweight run"):
        project = load_project(p)
        interrupted = mark_interrupted_runs(project)
        pending = [r for r in project.runs if r.status == "pending"]
        summary: dict[str, Any] = {
            "project": str(p),
            "pending": len(pending),
            "done": [],
            "failed": [],
            "cancelled": [],
            "interrupted": interrupted,
        }
        if not pending:
            if interrupted:
                save_project(project)
            reporter.log("no pending runs in the project")
            return summary
        if project.model is None or project.dataset is None:
            raise ProjectError(f"{p.name} has no model or no dataset; set them in the app first")
        for problem in check_references(project):
            if problem.what in ("model", "dataset") and problem.problem != "unverified":
                raise ProjectError(
                    f"{problem.message}; open {p.name} in Featherweight to locate or accept it"
                )
            reporter.log(problem.message, level="warning")

        for index, run in enumerate(pending):
            mark_run_started(project, run)
            save_project(project)
            reporter.log(f"run {run.id} ({index + 1}/{len(pending)}): {run.recipe.get('name')}")

            def on_event(event: Event, run: Run = run) -> None:
                record_event(run, event)
                reporter.on_event(event)

            run_reporter = Reporter(on_event, reporter.cancel)
            try:
                recipe = validate_recipe(run.recipe)
                metrics = compress(
                    project.model.path,
                    project.dataset.path,
                    recipe,
                    run_dir(project, run.id),
                    scale=project.dataset.scale,
                    allow_unsafe=allow_unsafe,
                    reporter=run_reporter,
                    **split_params(project),
                )
            except (Cancelled, KeyboardInterrupt) as exc:
                record_run_failure(project, run, str(exc) or "cancelled", cancelled=True)
                save_project(project)
                summary["cancelled"].append(run.id)
                raise
            except FeatherweightError as exc:
                record_run_failure(project, run, str(exc))
                summary["failed"].append({"id": run.id, "error": run.error})
            except Exception as exc:  # a bug: record it and go on with the next run
                record_run_failure(project, run, f"internal error: {type(exc).__name__}: {exc}")
                summary["failed"].append({"id": run.id, "error": run.error})
                import traceback

                reporter.log(traceback.format_exc(), level="error")
            else:
                record_run_result(project, run, metrics)
                summary["done"].append(run.id)
            save_project(project)
        return summary
