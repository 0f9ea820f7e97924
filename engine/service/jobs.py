"""Jobs the worker runs: ``JOBS[name](params, reporter) -> JSON-able dict``.

Each job maps plain JSON parameters onto engine calls; the CLI calls the same engine calls.

- ``inspect``:  {"model": path|"demo", "allow_unsafe": bool} -> model report (engine.models.loading)
- ``baseline``: {"model", "data", "scale", "allow_unsafe", "split_seed", "val_fraction"}
                -> {"accuracy", "tflite_bytes", ...} (reused from the baseline cache if measured)
- ``check_data``: {"model", "data", "scale", "allow_unsafe", "split_seed", "val_fraction"}
                -> dataset description (``DataSplits.describe()``)
- ``compress``: {"model", "data", "recipe": dict, "out": dir, "scale", "allow_unsafe",
                "split_seed", "val_fraction"}
                -> metrics (the content of metrics.json)

- ``analyze``: {"model", "data", "scale", "allow_unsafe", "split_seed", "val_fraction",
                "prune_grid", "cluster_grid", "filter_grid" (lists; absent = the defaults,
                [] skips), "quantization": bool (default true), "out": dir (optional)}
                -> the sensitivity document (engine.pipeline.sensitivity); with ``out`` it is
                also written to ``out/sensitivity.json`` (atomically)
- ``search``:  {"model", "data", "scale", "allow_unsafe", "split_seed", "val_fraction",
                "budget": points, "objective": "gzip"|"flash"|"latency"|"ram",
                "time_s": seconds or null, "trials": int or null, "seed": int (default 0),
                "out": the study folder (a project's ``document.search_dir``),
                "storage": URL or null (the journal file in ``out``), "study": name or null,
                "sampler": "tpe" (default) | "random"}
                -> the search.json document (engine.pipeline.search), also in
                ``out/search.json`` after every trial. Running it again on the same ``out``
                resumes the study. Events: the usual stage/progress/metric/log ones plus
                ``{"type": "trial", ...}`` and ``{"type": "search", ...}``. Cancel = Stop:
                the search ends normally and the job's result is the document
                (``"stopped": "user"``), not a ``cancelled`` event (that comes only when the
                cancel lands before the search started, e.g. while the baseline is measured)
- ``open_trial``: {"model", "data", "scale", "allow_unsafe", "split_seed", "val_fraction",
                "search_dir": the study folder, "trial": number, "out": dir}
                -> metrics (like ``compress``: the content of ``out/metrics.json``, measured on
                the test split, plus ``"search"``), so the app adds it as a normal run

``split_seed`` / ``val_fraction`` are the dataset's split (a project's ``dataset.seed`` and
``dataset.val_fraction``); absent or null means the defaults (seed 0, fraction 0.1), the
same as ``featherweight compress``. The recipe's ``seed`` never chooses the split.
- ``report``:   {"tflite": path} -> deployment report (engine.tflite.report)
- ``export_report``: {"path": a .fwproj | run folder | search folder | .tflite} or
                {"project": Project.to_dict() (the app's project, maybe untitled and unsaved),
                "project_path": its file or null, "workspace": its files folder when untitled},
                plus "html": OUT.html and/or "pdf": OUT.pdf, "run": run id | "search" | null,
                "allow_unsafe": bool
                -> {"html", "pdf", "chosen", "title", "bytes"} (engine.report.export); stages
                ``report_collect``, ``report_html``, ``report_pdf``; a cancel leaves no file
- ``export_c``: {"tflite": path, "out_dir": dir, "name": str} -> {"c": path, "h": path}
- ``demo``:     {"out": dir} -> {"model": path, "data": path}
- ``sleep``:    {"seconds": float} -> {} (test helper: a cancellable job without TensorFlow)

``error_fields(params, exc)`` adds what the worker's ``error`` event says beyond kind and
message: for an ``UnsafeModelError``, every unsafe item and whether the model would load at
all if the user trusted it (``engine.models.trust``; decided without running the file's code).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError, Cancelled, UnsafeModelError
from engine.core.events import Reporter

Job = Callable[[dict[str, Any], Reporter], dict[str, Any]]


def _inspect(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.models.loading import inspect_path

    return inspect_path(params["model"], allow_unsafe=bool(params.get("allow_unsafe")))


def _baseline(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.pipeline.run import evaluate_baseline

    return evaluate_baseline(
        params["model"],
        params.get("data", "demo"),
        scale=params.get("scale", "auto"),
        allow_unsafe=bool(params.get("allow_unsafe")),
        reporter=reporter,
        split_seed=params.get("split_seed"),
        val_fraction=params.get("val_fraction"),
    )


def _check_data(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.pipeline.run import check_data

    return check_data(
        params["model"],
        params.get("data", "demo"),
        scale=params.get("scale", "auto"),
        allow_unsafe=bool(params.get("allow_unsafe")),
        split_seed=params.get("split_seed"),
        val_fraction=params.get("val_fraction"),
    )


def _compress(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.pipeline.recipe import validate_recipe
    from engine.pipeline.run import compress

    return compress(
        params["model"],
        params.get("data", "demo"),
        validate_recipe(params["recipe"]),
        params["out"],
        scale=params.get("scale", "auto"),
        allow_unsafe=bool(params.get("allow_unsafe")),
        reporter=reporter,
        split_seed=params.get("split_seed"),
        val_fraction=params.get("val_fraction"),
    )


def _analyze(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.pipeline import sensitivity as S

    grids: dict[str, Any] = {
        name: params[name] if params.get(name) is not None else default
        for name, default in (
            ("prune_grid", S.PRUNE_GRID),
            ("cluster_grid", S.CLUSTER_GRID),
            ("filter_grid", S.FILTER_GRID),
        )
    }
    doc = S.analyze(
        params["model"],
        params.get("data", "demo"),
        scale=params.get("scale", "auto"),
        allow_unsafe=bool(params.get("allow_unsafe")),
        split_seed=params.get("split_seed"),
        val_fraction=params.get("val_fraction"),
        quantization=bool(params.get("quantization", True)),
        reporter=reporter,
        **grids,
    )
    if params.get("out"):
        reporter.check_cancel()
        S.write_sensitivity(doc, params["out"])
    return doc


def _required(params: dict[str, Any], name: str, job: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise BadInputError(f"{job}: missing parameter {name!r}")
    return value


def _number(params: dict[str, Any], name: str, job: str, kind: type = float) -> Any:
    """``params[name]`` as ``kind`` (None stays None); BadInputError for anything else."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{job}: {name} must be a number, got {value!r}")
    if kind is int and value != int(value):
        raise BadInputError(f"{job}: {name} must be a whole number, got {value!r}")
    return kind(value)


def _prepare(params: dict[str, Any], reporter: Reporter, job: str) -> Any:
    from engine.pipeline.prepare import prepare

    return prepare(
        _required(params, "model", job),
        params.get("data", "demo"),
        (params.get("split_seed"), params.get("val_fraction")),
        scale=params.get("scale", "auto"),
        allow_unsafe=bool(params.get("allow_unsafe")),
        reporter=reporter,
    )


def _search(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.pipeline.search import OBJECTIVES, SEARCH_FILE, read_search, search

    out = Path(_required(params, "out", "search"))
    budget = _number({"budget": _required(params, "budget", "search")}, "budget", "search")
    objective = _required(params, "objective", "search")
    if objective not in OBJECTIVES:  # before loading anything
        raise BadInputError(
            f"search: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    time_s = _number(params, "time_s", "search")
    trials = _number(params, "trials", "search", int)
    seed = _number(params, "seed", "search", int)
    prepared = _prepare(params, reporter, "search")
    try:
        return search(
            prepared,
            budget,
            str(objective),
            out,
            time_s=time_s,
            trials=trials,
            seed=seed if seed is not None else 0,
            storage=params.get("storage") or None,
            study_name=params.get("study") or None,
            sampler=params.get("sampler") or "tpe",
            reporter=reporter,
        )
    except Cancelled:
        # Stop is never an error once the study exists: what the folder holds is the result.
        if (out / SEARCH_FILE).is_file():
            doc = read_search(out / SEARCH_FILE)
            doc["stopped"] = doc.get("stopped") or "user"
            return doc
        raise


def _open_trial(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.pipeline.search import materialize

    search_dir = Path(_required(params, "search_dir", "open_trial"))
    trial = _number({"trial": _required(params, "trial", "open_trial")}, "trial", "open_trial", int)
    out = _required(params, "out", "open_trial")
    if not search_dir.is_dir():
        raise BadInputError(f"open_trial: search folder not found: {search_dir}")
    prepared = _prepare(params, reporter, "open_trial")
    return materialize(prepared, search_dir, trial, out, reporter=reporter)


def _report(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.tflite.report import report_tflite

    return report_tflite(params["tflite"])


def _export_report(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.report.export import export_report

    target: Any
    if params.get("project") is not None:
        target = _project_from_params(params)
    else:
        target = _required(params, "path", "export_report")
    if not params.get("html") and not params.get("pdf"):
        raise BadInputError("export_report: give 'html' and/or 'pdf' (output paths)")
    return export_report(
        target,
        html=params.get("html") or None,
        pdf=params.get("pdf") or None,
        run=params.get("run") or None,
        allow_unsafe=bool(params.get("allow_unsafe")),
        reporter=reporter,
    )


def _project_from_params(params: dict[str, Any]) -> Any:
    """The app's project from ``project`` (a current-format document) and where it lives:
    ``project_path`` (its file; relative references resolve beside it) or, untitled,
    ``workspace`` (its files folder). Raises BadInputError (ProjectError) naming the field."""
    from engine.project.document import Project

    doc = params["project"]
    if not isinstance(doc, dict):
        raise BadInputError("export_report: 'project' must be a project document")
    path = Path(params["project_path"]).absolute() if params.get("project_path") else None
    project = Project.from_dict(doc, path=path)
    if path is None:
        workspace = params.get("workspace")
        if not workspace:
            raise BadInputError(
                "export_report: an untitled project needs 'workspace' (its files folder)"
            )
        project.workspace = Path(workspace)
    return project


def _export_c(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.tflite.export_c import write_c_array

    c_path, h_path = write_c_array(
        params["tflite"], params["out_dir"], name=params.get("name", "model")
    )
    return {"c": str(c_path), "h": str(h_path)}


def _demo(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.core.demo import write_demo

    return write_demo(params["out"])


def _sleep(params: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    total = int(float(params.get("seconds", 1.0)) * 20)
    with reporter.stage("sleep", "Sleeping"):
        for i in range(total):
            reporter.check_cancel()
            reporter.progress(i + 1, total)
            time.sleep(0.05)
    return {}


def error_fields(params: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """Extra fields of the error event for ``exc`` raised by a job run with ``params``.

    For an UnsafeModelError about ``params["model"]``: ``items`` (a list of ``{"layer",
    "class_name", "reason", "text"}``), ``loadable_if_trusted`` (bool) and ``trust_problem``
    (why it would not load even when trusted; "" when it would). Nothing for other errors.
    """
    if not isinstance(exc, UnsafeModelError) or "model" not in params:
        return {}
    from engine.models.loading import resolve_path
    from engine.models.trust import item_dict, trust_verdict

    items = getattr(exc, "items", None) or None
    try:
        verdict = trust_verdict(resolve_path(params["model"]), items)
    except Exception as err:  # noqa: BLE001 - the refusal stands; only the verdict is unknown
        return {
            "items": [item_dict(i) for i in items or []],
            "loadable_if_trusted": True,
            "trust_problem": "",
            "trust_check_error": f"{type(err).__name__}: {err}",
        }
    return {
        "items": [item_dict(i) for i in verdict.items],
        "loadable_if_trusted": verdict.loadable,
        "trust_problem": verdict.reason,
    }


JOBS: dict[str, Job] = {
    "inspect": _inspect,
    "baseline": _baseline,
    "check_data": _check_data,
    "compress": _compress,
    "analyze": _analyze,
    "search": _search,
    "open_trial": _open_trial,
    "report": _report,
    "export_report": _export_report,
    "export_c": _export_c,
    "demo": _demo,
    "sleep": _sleep,
}
