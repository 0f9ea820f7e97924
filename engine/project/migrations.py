"""Step-by-step migrations of project files: format N -> N+1, one function per step.

``migrate(data, project_path)`` brings a parsed project document of any known format up to
``CURRENT_FORMAT``; files from a newer format are refused with ProjectTooNewError. Each step is
a pure function of the document (plus where the file sits now) and never touches the disk;
the file on disk is only rewritten when the user saves (and then the original is kept as
``NAME.fwproj.v<N>.bak``). See docs/project-format.md for both formats.

Adding a format: bump FORMAT_VERSION (engine.project.common), write ``_vN_to_vN1``, register it
in MIGRATIONS, commit a sample file of format N under tests/data/ and a test for the step.
"""

from __future__ import annotations

import copy
import ntpath
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.project.common import FORMAT_VERSION, ProjectError

CURRENT_FORMAT = FORMAT_VERSION

# Format 1 always split the validation set off with this fraction (it was not recorded).
V1_VAL_FRACTION = 0.1
# Format 4 adds the project's accuracy budget (points); older files get this default, the same
# as engine.pipeline.budget.DEFAULT_BUDGET_PTS (not imported: this module needs only common).
V3_ACCURACY_BUDGET = 1.0


class ProjectTooNewError(ProjectError):
    """The file was written by a newer Featherweight whose format this app cannot read."""

    kind = "project_too_new"


@dataclass
class MigrationContext:
    project_path: Path  # where the file is now (absolute)
    warnings: list[str] = field(default_factory=list)


Migration = Callable[[dict[str, Any], MigrationContext], dict[str, Any]]


def _is_abs_any(p: str) -> bool:
    return posixpath.isabs(p) or ntpath.isabs(p) and bool(ntpath.splitdrive(p)[0])


def _relative_to(path: str, base: str) -> str | None:
    """``path`` relative to directory ``base`` in POSIX form, or None if impossible here."""
    if not (os.path.isabs(path) and os.path.isabs(base)):
        return None
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # different drives on Windows
        return None
    return rel.replace(os.sep, "/")


def _v1_to_v2(data: dict[str, Any], ctx: MigrationContext) -> dict[str, Any]:
    """Format 1 -> 2.

    Format 1 stored absolute paths (model, data, each run's ``tflite``) and the project's own
    absolute path in ``saved_as``, kept only each run's final metrics (no metric series, so
    charts could not be redrawn), had no content hashes and one top-level ``seed``/``scale``.
    Format 2 stores model/data paths relative to the project file (so a folder handed to a
    colleague still works), artifact paths relative to the project's files folder, hashes,
    per-run config, series, versions and a ``ui`` dict.

    Paths are made relative to where the file was *saved* (``saved_as``), which keeps them
    right when the whole project folder was moved since. Hashes are unknown (null: the
    references are reported as unverified until the user confirms them).
    """
    saved_as = data.get("saved_as")
    if isinstance(saved_as, str) and os.path.isabs(saved_as):
        old_file = saved_as
    else:
        old_file = str(ctx.project_path)
    old_dir = os.path.dirname(old_file)
    old_stem = os.path.splitext(os.path.basename(old_file))[0]
    old_files_dir = os.path.join(old_dir, old_stem + "_files")

    def ref_path(value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise ProjectError(f"format 1 project has no valid '{what}'")
        if value == "demo" or not _is_abs_any(value):
            return value.replace("\\", "/") if value != "demo" else value
        rel = _relative_to(value, old_dir)
        if rel is None:
            ctx.warnings.append(f"{what} {value} could not be made relative; kept as is")
            return value
        return rel

    model_path = ref_path(data.get("model_path"), "model_path")
    data_path = ref_path(data.get("data_path"), "data_path")
    seed = data.get("seed", 0)
    scale = data.get("scale", "auto")
    model = {"path": model_path, "sha256": None, "allow_unsafe": False}
    dataset = {
        "path": data_path,
        "sha256": None,
        "seed": seed,
        "val_fraction": V1_VAL_FRACTION,
        "scale": scale,
    }
    app_version = data.get("app_version")

    runs = []
    no_series = 0
    for raw in data.get("runs") or []:
        if not isinstance(raw, dict):
            raise ProjectError("format 1 project: every run must be an object")
        run_id = raw.get("id")
        artifacts = []
        tflite = raw.get("tflite")
        if isinstance(tflite, str) and tflite:
            rel = _relative_to(tflite, old_files_dir) if _is_abs_any(tflite) else tflite
            if rel is None or rel.startswith("../") or rel == "..":
                ctx.warnings.append(
                    f"run {run_id}: its .tflite {tflite} was outside the project's files "
                    "folder and is no longer referenced"
                )
            else:
                artifacts.append(rel)
        status = raw.get("status", "done")
        if status == "done":
            no_series += 1
        runs.append(
            {
                "id": run_id,
                "recipe": copy.deepcopy(raw.get("recipe")),
                "config": {
                    "model": dict(model),
                    "dataset": dict(dataset),
                    "allow_unsafe": False,
                },
                "status": status,
                "started": raw.get("started"),
                "finished": raw.get("finished"),
                "error": raw.get("error"),
                "series": [],
                "metrics": copy.deepcopy(raw.get("metrics")),
                "artifacts": artifacts,
                "versions": {"app": app_version} if app_version else {},
                "seeds": {"split": seed},
            }
        )
    if no_series:
        ctx.warnings.append(
            f"format 1 kept no metric series: the charts of {no_series} earlier run(s) are empty"
        )
    return {
        "format_version": 2,
        "name": data.get("name") or Path(old_file).stem,
        "created": data.get("created"),
        "saved_at": data.get("saved_at"),
        "versions": {"app": app_version} if app_version else {},
        "model": model,
        "dataset": dataset,
        "recipes": copy.deepcopy(data.get("recipes") or []),
        "runs": runs,
        "ui": {},
    }


def _split_of_run(run: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any] | None:
    """The split a format-2 run used, as far as the file says: the pipeline's own report
    (``metrics.data``), else ``config.split_used``, else ``seeds.split``; None if unknown."""
    metrics = run.get("metrics")
    config: dict[str, Any] = run["config"] if isinstance(run.get("config"), dict) else {}
    seeds: dict[str, Any] = run["seeds"] if isinstance(run.get("seeds"), dict) else {}
    for source in (
        metrics.get("data") if isinstance(metrics, dict) else None,
        config.get("split_used"),
    ):
        if isinstance(source, dict) and _is_seed(source.get("seed")):
            vf = source.get("val_fraction")
            if not _is_fraction(vf):
                vf = dataset.get("val_fraction", V1_VAL_FRACTION)
            return {"seed": source["seed"], "val_fraction": vf}
    if _is_seed(seeds.get("split")):
        return {"seed": seeds["split"], "val_fraction": dataset.get("val_fraction", 0.1)}
    return None


def _is_seed(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1


def _v2_to_v3(data: dict[str, Any], ctx: MigrationContext) -> dict[str, Any]:
    """Format 2 -> 3: the split belongs to the dataset reference.

    In format 2 a run started in the app split the data with its *recipe's* seed while
    ``featherweight run`` used ``dataset.seed``, so one project's runs could be measured on
    different test sets (image folders). Format 3 records each finished run's split in
    ``config.split`` and every run of the project uses ``dataset.seed`` /
    ``dataset.val_fraction``. To keep old projects on the split their runs used, the dataset's
    split becomes the one of the most recently finished run that recorded it (a warning says
    so when it changes, and lists runs that used another split).
    """
    doc = copy.deepcopy(data)
    doc["format_version"] = 3
    dataset = doc.get("dataset") if isinstance(doc.get("dataset"), dict) else None
    runs: list[Any] = doc["runs"] if isinstance(doc.get("runs"), list) else []
    used: list[tuple[str, str, dict[str, Any]]] = []  # (finished, id, split)
    for run in runs:
        if not isinstance(run, dict):
            continue
        split = _split_of_run(run, dataset or {})
        if split is None:
            continue
        if isinstance(run.get("config"), dict):
            run["config"]["split"] = dict(split)
        elif "config" not in run:
            run["config"] = {"split": dict(split)}
        if run.get("status") == "done":
            used.append((str(run.get("finished") or ""), str(run.get("id")), split))
    if dataset is None or not used:
        return doc
    used.sort(key=lambda u: u[0])  # ISO timestamps sort in time order
    latest = used[-1][2]
    current = {"seed": dataset.get("seed", 0), "val_fraction": dataset.get("val_fraction", 0.1)}
    if latest != current:
        dataset["seed"], dataset["val_fraction"] = latest["seed"], latest["val_fraction"]
        ctx.warnings.append(
            f"the dataset's split is now seed {latest['seed']}, validation fraction "
            f"{latest['val_fraction']:g} (was seed {current['seed']}, "
            f"{current['val_fraction']:g}): the split the latest run used; every run now "
            "uses the dataset's split"
        )
    others = [rid for _, rid, split in used if split != latest]
    if others:
        ctx.warnings.append(
            f"run(s) {', '.join(others)} used another split than the dataset's (their "
            "config.split says which); rerun them to compare on the same test set"
        )
    return doc


def _v3_to_v4(data: dict[str, Any], ctx: MigrationContext) -> dict[str, Any]:
    """Format 3 -> 4: an accuracy budget and one subject per run.

    Format 4 stores the project-wide ``accuracy_budget`` (percentage points a compressed model
    may lose; format 3 had none: it gets ``V3_ACCURACY_BUDGET``). A format-4 project may hold
    runs of several models or datasets (each compared with its own baseline), so every run
    that has run says in its ``config`` which model, dataset and split it ran on (its
    *subject*). Format 3 kept one model and dataset per project, and runs started in the app
    already recorded theirs; a run that did not (e.g. written by an older
    ``featherweight run``) gets the project's references, with the split it recorded
    (``config.split``) kept as it is. Pending runs are left alone: they get their config when
    they start.
    """
    doc = copy.deepcopy(data)
    doc["format_version"] = 4
    doc["accuracy_budget"] = V3_ACCURACY_BUDGET
    runs: list[Any] = doc["runs"] if isinstance(doc.get("runs"), list) else []
    for run in runs:
        if not isinstance(run, dict) or run.get("status") == "pending":
            continue
        config = run.get("config")
        if not isinstance(config, dict):
            continue  # Project.from_dict names the bad field
        for key in ("model", "dataset"):
            if not isinstance(config.get(key), dict) and isinstance(doc.get(key), dict):
                config[key] = copy.deepcopy(doc[key])
    return doc


def _v4_to_v5(data: dict[str, Any], ctx: MigrationContext) -> dict[str, Any]:
    """Format 4 -> 5: sensitivity analyses.

    Format 5 adds ``analyses``: one entry per sensitivity analysis kept in the project
    (``{"id", "created", "config": {"model", "dataset", "split"}, "artifact"}``, the artifact
    being its ``sensitivity.json`` under the files folder). Format 4 had none: an empty list.
    The saved recipes (recipe schema 2) are rewritten as schema 3 with the same meaning (the
    recipe's own migration: per-layer knobs at their defaults, teacher guidance off), so that
    adding the same recipe from the app does not store it twice; one that does not validate
    is left as it is (the app names it when it is used).
    """
    from engine.core.errors import RecipeError
    from engine.pipeline.recipe import validate_recipe

    doc = copy.deepcopy(data)
    doc["format_version"] = 5
    if not isinstance(doc.get("analyses"), list):
        doc["analyses"] = []
    recipes = doc.get("recipes")
    if isinstance(recipes, list):
        for i, recipe in enumerate(recipes):
            try:
                recipes[i] = validate_recipe(recipe).to_dict()
            except RecipeError:
                pass
    return doc


def _v5_to_v6(data: dict[str, Any], ctx: MigrationContext) -> dict[str, Any]:
    """Format 5 -> 6: searches.

    Format 6 adds ``searches``: one entry per accuracy-budget search kept in the project
    (``{"id", "created", "config": {"model", "dataset", "split", "budget_pts", "objective",
    "time_s", "trials", "seed"}, "folder"}``, the folder being its study folder under the
    files folder: ``search.json``, ``study.journal``, ``trials/``, ``checkpoints/``,
    ``best/``). Format 5 had none: an empty list. Nothing else changes.
    """
    doc = copy.deepcopy(data)
    doc["format_version"] = 6
    if not isinstance(doc.get("searches"), list):
        doc["searches"] = []
    return doc


MIGRATIONS: dict[int, Migration] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
}


def migrate(
    data: dict[str, Any], project_path: str | Path
) -> tuple[dict[str, Any], int, list[str]]:
    """Bring ``data`` up to CURRENT_FORMAT.

    Returns ``(document, original_format, warnings)``. Raises ProjectTooNewError for files
    from a newer format and ProjectError for an invalid ``format_version``.
    """
    name = Path(project_path).name
    version = data.get("format_version")
    if version is None:
        raise ProjectError(f"{name} is not a Featherweight project (no 'format_version')")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{name} has an invalid format_version {version!r}")
    if version > CURRENT_FORMAT:
        raise ProjectTooNewError(
            f"{name} was made by a newer Featherweight (format {version}, this app reads up "
            f"to {CURRENT_FORMAT}); update Featherweight to open it"
        )
    ctx = MigrationContext(Path(project_path).absolute())
    original = version
    doc = data
    while version < CURRENT_FORMAT:
        doc = MIGRATIONS[version](doc, ctx)
        version += 1
        if doc.get("format_version") != version:
            raise AssertionError(f"migration to format {version} did not set format_version")
    return doc, original, ctx.warnings
