"""The report document: everything a shareable report shows, read from saved files.

``collect(path)`` reads a project file (``.fwproj``), a run folder (has ``metrics.json``), a
search folder (has ``search.json``) or a ``.tflite``; ``collect_project(project)`` reads the
app's in-memory project. Nothing is measured again: numbers come from ``metrics.json``,
``report.json``, ``sensitivity.json`` and ``search.json`` as saved; the model's architecture
comes from ``engine.models.loading.inspect_path`` (what ``featherweight inspect`` shows).

The document (JSON-able)::

    {"kind": REPORT_KIND, "schema_version": REPORT_SCHEMA_VERSION, "created" (UTC ISO),
     "generator": {"app", "version", "versions"},
     "source": {"type": "project"|"run"|"search"|"tflite", "path", "title"},
     "budget_pts", "budget_from": "project"|"search"|"default",
     "subject": label | None, "notes": [str],
     "baseline": ROWREF | None,           # where the baseline's figures are read
     "rows": [ROW],                        # the Results table: runs, then the search's best
     "chosen": ROW + {"rule": str, "met_budget": bool} | None,
     "model": {"src": "model" | None, "path": str | None, "error": str | None},
     "sensitivity": {"src", "id", "created"} | None,
     "search": {"src", "id", "created"} | None,
     "deployment": {"src": key of the chosen model's report.json | None, "note"},
     "sources": {key: document}}

``ROW = {"id", "label", "kind": "run"|"search-best"|"tflite", "status", "error", "src",
"prefix", "report_src", "recipe", "started", "finished", "verdict"}``: the row's figures are
``sources[src]`` at the dotted path ``prefix + "compressed.accuracy"`` and so on (``prefix``
is ``""`` for a metrics.json file, ``"runs.3.metrics."`` for metrics held only in the
project document). ``sources`` keys are paths relative to the project's files folder (or
to the run / search folder) for files read from disk, and plain names for documents made
while collecting: ``"project"`` (the project document), ``"model"`` (the inspection),
``"tflite_report"`` (a ``.tflite``'s deployment report) and ``"derived"`` (counts made
here: runs left out, trials per state, frontier ratios).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.cache import read_json
from engine.core.errors import BadInputError, Cancelled, UnsafeModelError
from engine.core.events import Reporter
from engine.pipeline.budget import DEFAULT_BUDGET_PTS, verdict
from engine.project.document import utc_now

REPORT_KIND = "featherweight-report"
REPORT_SCHEMA_VERSION = 1
METRICS = "metrics.json"
DEPLOY = "report.json"
SEARCH = "search.json"

Doc = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def lookup(doc: Any, field: str) -> Any:
    """The value at a dotted path (``"layers.3.params"``: list indexes as numbers) of
    ``doc``; None when a step is missing."""
    value = doc
    for part in field.split(".") if field else []:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _versions() -> dict[str, str]:
    from engine.project.document import current_versions

    found = current_versions()
    for key, dist in (("jinja2", "jinja2"), ("weasyprint", "weasyprint")):
        try:
            from importlib import metadata

            found[key] = metadata.version(dist)
        except Exception:  # noqa: BLE001 - a missing optional library is simply not listed
            pass
    return found


def _new_doc(kind: str, path: Path | None, title: str) -> Doc:
    import engine

    return {
        "kind": REPORT_KIND,
        "schema_version": REPORT_SCHEMA_VERSION,
        "created": utc_now(),
        "generator": {
            "app": "Featherweight",
            "version": engine.__version__,
            "versions": _versions(),
        },
        "source": {"type": kind, "path": str(path) if path is not None else None, "title": title},
        "budget_pts": DEFAULT_BUDGET_PTS,
        "budget_from": "default",
        "subject": None,
        "notes": [],
        "baseline": None,
        "rows": [],
        "chosen": None,
        "model": {"src": None, "path": None, "error": None},
        "sensitivity": None,
        "search": None,
        "deployment": {"src": None, "note": None},
        "sources": {"derived": {}},
    }


def _row(
    *,
    row_id: str,
    label: str,
    kind: str,
    status: str,
    src: str | None,
    prefix: str = "",
    report_src: str | None = None,
    recipe: Any = None,
    error: str | None = None,
    started: str | None = None,
    finished: str | None = None,
) -> Doc:
    return {
        "id": row_id,
        "label": label,
        "kind": kind,
        "status": status,
        "error": error,
        "src": src,
        "prefix": prefix,
        "report_src": report_src,
        "recipe": recipe,
        "started": started,
        "finished": finished,
        "verdict": None,
    }


def _metrics_of(doc: Doc, row: Doc) -> Doc | None:
    if row.get("src") is None:
        return None
    m = lookup(doc["sources"].get(row["src"]), row["prefix"].rstrip("."))
    return m if isinstance(m, dict) else None


def _accuracies(metrics: Doc | None) -> tuple[float, float] | None:
    m = metrics or {}
    base = (m.get("baseline") or {}).get("accuracy")
    comp = (m.get("compressed") or {}).get("accuracy")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (base, comp)):
        return None
    return float(base), float(comp)  # type: ignore[arg-type]


def _judge(doc: Doc) -> None:
    """Each row's verdict against the budget (engine.pipeline.budget.verdict)."""
    for row in doc["rows"]:
        acc = _accuracies(_metrics_of(doc, row))
        row["verdict"] = verdict(acc[0], acc[1], doc["budget_pts"]) if acc else None


def _gzip(metrics: Doc | None) -> float:
    v = ((metrics or {}).get("compressed") or {}).get("tflite_gzip_bytes")
    return float(v) if isinstance(v, (int, float)) else float("inf")


def _choose(doc: Doc, wanted: str | None, rule: str = "chosen by the user") -> None:
    """Set ``doc["chosen"]``: the row ``wanted`` (its id; ``rule`` says why), else the
    smallest gzip size within the budget, else (no row within) the most accurate one."""
    rows = [r for r in doc["rows"] if _metrics_of(doc, r) is not None]
    if wanted is not None:
        row = next((r for r in doc["rows"] if r["id"] == wanted), None)
        if row is None:
            raise BadInputError(f"no run {wanted!r} among the results of this report")
        if row not in rows:
            why = f" ({row['status']}: {row['error']})" if row.get("error") else ""
            raise BadInputError(f"run {wanted!r} has no results to report{why}")
        doc["chosen"] = {**row, "rule": rule, "met_budget": row["verdict"] == "within"}
        return
    if not rows:
        return
    within = [r for r in rows if r["verdict"] == "within"]
    budget = f"{doc['budget_pts']:g}-point"
    if within:
        best = min(within, key=lambda r: _gzip(_metrics_of(doc, r)))
        rule = f"the smallest download (gzip) size within the {budget} accuracy budget"
        doc["chosen"] = {**best, "rule": rule, "met_budget": True}
        return
    best = max(rows, key=lambda r: (_accuracies(_metrics_of(doc, r)) or (0.0, 0.0))[1])
    rule = f"no run met the {budget} accuracy budget; the most accurate one is shown"
    doc["chosen"] = {**best, "rule": rule, "met_budget": False}
    doc["notes"].append(rule[0].upper() + rule[1:] + ".")


def _inspect(doc: Doc, spec: str | None, allow_unsafe: bool, reporter: Reporter) -> None:
    """The model's inspection in ``sources["model"]``, or one line saying why not."""
    doc["model"]["path"] = spec
    if not spec:
        doc["model"]["error"] = "no model file is recorded, so its architecture is not shown"
        return
    from engine.models.loading import inspect_path, resolve_path

    if spec != "demo" and not resolve_path(spec).exists():
        doc["model"]["error"] = (
            f"the model file {spec} is missing, so its architecture is not shown"
        )
        return
    reporter.check_cancel()
    try:
        doc["sources"]["model"] = inspect_path(spec, allow_unsafe=allow_unsafe)
    except Cancelled:
        raise
    except UnsafeModelError as exc:
        doc["model"]["error"] = (
            f"{_one_line(exc)}; give --allow-unsafe (or trust the model in the app) to show "
            "its architecture"
        )
        return
    except Exception as exc:  # noqa: BLE001 - the report goes on without the architecture
        doc["model"]["error"] = f"the model could not be inspected: {_one_line(exc)}"
        return
    doc["model"]["src"] = "model"


def _add_search(doc: Doc, folder: Path, key_prefix: str, entry: Doc | None) -> None:
    """Read a search folder's search.json (and its best/), add the best as a row."""
    from engine.pipeline.search import read_search

    path = folder / SEARCH
    try:
        read_search(path)  # checks kind and schema
    except BadInputError as exc:
        doc["notes"].append(f"The search could not be read: {exc}")
        return
    search = read_json(path)
    if search is None:
        return
    key = key_prefix + SEARCH
    doc["sources"][key] = search
    sid = (entry or {}).get("id") or folder.name
    doc["search"] = {"src": key, "id": sid, "created": search.get("created")}
    counts: dict[str, int] = {}
    for t in search.get("trials") or []:
        counts[str(t.get("state"))] = counts.get(str(t.get("state")), 0) + 1
    base = search.get("baseline") or {}
    by_number = {t.get("number"): t for t in search.get("trials") or []}
    ratios = []
    for number in search.get("frontier") or []:
        t = by_number.get(number) or {}
        gz, raw = t.get("tflite_gzip_bytes"), t.get("tflite_bytes")
        ratios.append(
            {
                "trial": number,
                "ratio_gzip": base["tflite_gzip_bytes"] / gz
                if gz and base.get("tflite_gzip_bytes")
                else None,
                "ratio_raw": base["tflite_bytes"] / raw
                if raw and base.get("tflite_bytes")
                else None,
            }
        )
    doc["sources"]["derived"]["search"] = {
        "trials": len(search.get("trials") or []),
        "states": counts,
        "frontier": ratios,
    }
    best = search.get("best") or {}
    best_dir = folder / str(best.get("folder") or "best")
    metrics = read_json(best_dir / METRICS) if best.get("folder") else None
    if metrics is None:
        return
    mkey = f"{key_prefix}{best_dir.name}/{METRICS}"
    doc["sources"][mkey] = metrics
    report = read_json(best_dir / DEPLOY)
    rkey = f"{key_prefix}{best_dir.name}/{DEPLOY}" if report is not None else None
    if rkey is not None:
        doc["sources"][rkey] = report
    doc["rows"].append(
        _row(
            row_id="search",
            label=f"{sid} best (trial {best.get('trial')})",
            kind="search-best",
            status="done",
            src=mkey,
            report_src=rkey,
            recipe=metrics.get("recipe") or best.get("recipe"),
            finished=search.get("created"),
        )
    )


def _baseline(doc: Doc) -> None:
    """The baseline row: the first row with metrics (all rows of one subject share it)."""
    for row in doc["rows"]:
        if _metrics_of(doc, row) is not None:
            doc["baseline"] = {"src": row["src"], "prefix": row["prefix"]}
            return


def _deployment(doc: Doc) -> None:
    chosen = doc["chosen"]
    if chosen is None:
        doc["deployment"]["note"] = "No model with results: nothing to judge for deployment."
    elif chosen.get("report_src") is None:
        doc["deployment"]["note"] = (
            f"{chosen['label']} has no report.json (deployment report) saved beside it."
        )
    else:
        doc["deployment"]["src"] = chosen["report_src"]


def _finish(doc: Doc, wanted: str | None, rule: str = "chosen by the user") -> Doc:
    _judge(doc)
    _baseline(doc)
    _choose(doc, wanted, rule)
    _deployment(doc)
    return doc


# --------------------------------------------------------------------------- project


def collect_project(
    project: Any,
    *,
    run: str | None = None,
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
) -> Doc:
    """The report document of ``project`` (an engine.project.document.Project, maybe untitled
    or unsaved): its current subject's runs, latest analysis and latest search.

    ``run``: the chosen model's run id, or ``"search"`` for the latest search's best point;
    None picks it (see the module doc). Raises BadInputError (one line) when ``run`` names
    no run of the report, or one without results.
    """
    from engine.project import document as pd

    rep = reporter or Reporter()
    files = project.files_dir
    title = project.title
    doc = _new_doc("project", project.path, title)
    doc["budget_pts"] = float(project.accuracy_budget)
    doc["budget_from"] = "project"
    project_doc = project.to_dict()
    doc["sources"]["project"] = project_doc
    key, label = pd.project_subject(project)
    doc["subject"] = label
    derived = doc["sources"]["derived"]

    if run is not None and run != "search" and all(r.id != run for r in project.runs):
        raise BadInputError(f"no run {run!r} in the project {title}")
    left_out = 0
    for index, r in enumerate(project.runs):
        if pd.run_subject(project, r)[0] != key:
            left_out += 1
            if r.id == run:
                raise BadInputError(
                    f"run {run!r} is of another model, dataset or split than the project's "
                    "current one"
                )
            continue
        rep.check_cancel()
        src: str | None = None
        prefix = ""
        report_src = None
        if files is not None:
            rel = f"runs/{r.id}"
            metrics = read_json(files / rel / METRICS) if r.status == "done" else None
            if metrics is not None:
                src = f"{rel}/{METRICS}"
                doc["sources"][src] = metrics
            report = read_json(files / rel / DEPLOY) if r.status == "done" else None
            if report is not None:
                report_src = f"{rel}/{DEPLOY}"
                doc["sources"][report_src] = report
        if src is None and r.status == "done" and isinstance(r.metrics, dict):
            src, prefix = "project", f"runs.{index}.metrics."
        error = r.error
        if r.status == "done" and src is None:
            error = "its metrics.json is missing"
        doc["rows"].append(
            _row(
                row_id=r.id,
                label=r.id,
                kind="run",
                status=r.status,
                src=src,
                prefix=prefix,
                report_src=report_src,
                recipe=r.recipe,
                error=error,
                started=r.started,
                finished=r.finished,
            )
        )
    derived["left_out_runs"] = left_out
    if left_out:
        doc["notes"].append(
            f"{left_out} run(s) of another model, dataset or split are not shown "
            f"(this report covers {label})."
        )

    analysis = next(
        (
            a
            for a in reversed(project.analyses)
            if pd.analysis_subject(project, a)[0] == key and pd.load_analysis(project, a)
        ),
        None,
    )
    if analysis is not None and files is not None:
        rel = str(analysis["artifact"])
        sens = read_json(pd.artifact_path(project, rel))
        if sens is not None:
            doc["sources"][rel] = sens
            doc["sensitivity"] = {"src": rel, "id": analysis["id"], "created": sens.get("created")}

    entry = pd.latest_search(project)
    if entry is not None and files is not None:
        try:
            folder = pd.artifact_path(project, entry["folder"])
        except BadInputError as exc:
            doc["notes"].append(f"The search could not be read: {exc}")
        else:
            if (folder / SEARCH).is_file():
                _add_search(doc, folder, f"{entry['folder']}/", entry)
    if run == "search" and not any(r["id"] == "search" for r in doc["rows"]):
        raise BadInputError("the project has no search with a best model (best/) to report")

    spec = project.model.path if project.model is not None else None
    _inspect(doc, spec, allow_unsafe, rep)
    return _finish(doc, run)


# --------------------------------------------------------------------------- other sources


def _collect_run_folder(folder: Path, run: str | None, allow_unsafe: bool, rep: Reporter) -> Doc:
    metrics = read_json(folder / METRICS)
    if metrics is None or not isinstance(metrics.get("compressed"), dict):
        raise BadInputError(f"{folder / METRICS} is not a readable metrics.json")
    if run not in (None, folder.name):
        raise BadInputError(f"--run {run!r} applies to a project file, not to a run folder")
    doc = _new_doc("run", folder, folder.name)
    doc["sources"][METRICS] = metrics
    report = read_json(folder / DEPLOY)
    if report is not None:
        doc["sources"][DEPLOY] = report
    doc["notes"].append(
        f"A run folder records no accuracy budget: the default {DEFAULT_BUDGET_PTS:g}-point "
        "budget is used."
    )
    doc["rows"].append(
        _row(
            row_id=folder.name,
            label=folder.name,
            kind="run",
            status="done",
            src=METRICS,
            report_src=DEPLOY if report is not None else None,
            recipe=metrics.get("recipe"),
        )
    )
    _inspect(doc, (metrics.get("model") or {}).get("path"), allow_unsafe, rep)
    return _finish(doc, folder.name, "the run in this folder")


def _collect_search_folder(folder: Path, run: str | None, allow_unsafe: bool, rep: Reporter) -> Doc:
    if run not in (None, "search"):
        raise BadInputError(f"--run {run!r} applies to a project file, not to a search folder")
    doc = _new_doc("search", folder, folder.name)
    _add_search(doc, folder, "", None)
    if doc["search"] is None:
        raise BadInputError(f"{folder / SEARCH} is not a readable search file")
    search = doc["sources"][SEARCH]
    if isinstance(search.get("budget_pts"), (int, float)):
        doc["budget_pts"] = float(search["budget_pts"])
        doc["budget_from"] = "search"
    if run == "search" and not doc["rows"]:
        raise BadInputError("the search has no best model (best/) to report")
    _inspect(doc, (search.get("model") or {}).get("path"), allow_unsafe, rep)
    if doc["rows"]:
        return _finish(doc, "search", "the search's best point (best/)")
    doc["notes"].append("The search wrote no best model (best/): no test figures to show.")
    return _finish(doc, None)


def _collect_tflite(path: Path, run: str | None) -> Doc:
    from engine.tflite.report import report_tflite

    if run is not None:
        raise BadInputError(f"--run {run!r} applies to a project file, not to a .tflite")
    doc = _new_doc("tflite", path, path.name)
    report = report_tflite(path)
    doc["sources"]["tflite_report"] = report
    doc["model"]["path"] = str(path)
    doc["model"]["error"] = (
        "a .tflite holds no Keras architecture; its ops, memory and input/output contract "
        "are in the deployment section"
    )
    row = _row(row_id="", label=path.name, kind="tflite", status="done", src=None)
    row["id"] = None  # not a run
    row["report_src"] = "tflite_report"
    doc["chosen"] = {**row, "rule": "the file given", "met_budget": None}
    doc["deployment"]["src"] = "tflite_report"
    doc["notes"].append(
        "A .tflite alone carries no accuracy or baseline: only its deployment report is shown."
    )
    return doc


def collect(
    path: str | Path,
    *,
    run: str | None = None,
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
) -> Doc:
    """The report document of ``path``: a project file (``.fwproj``), a run folder (has
    metrics.json), a search folder (has search.json) or a ``.tflite``.

    Raises BadInputError (one line) when ``path`` is none of these or cannot be read, or
    ``run`` names no run of the report.
    """
    from engine.project.common import EXTENSION

    p = Path(path).expanduser()
    rep = reporter or Reporter()
    if not p.exists():
        raise BadInputError(f"no such file or folder: {p}")
    if p.is_dir():
        if (p / METRICS).is_file():
            return _collect_run_folder(p, run, allow_unsafe, rep)
        if (p / SEARCH).is_file():
            return _collect_search_folder(p, run, allow_unsafe, rep)
        raise BadInputError(
            f"{p} is neither a run folder (metrics.json) nor a search folder (search.json)"
        )
    if p.suffix.lower() == EXTENSION:
        from engine.project.document import load_project

        return collect_project(load_project(p), run=run, allow_unsafe=allow_unsafe, reporter=rep)
    if p.suffix.lower() == ".tflite":
        return _collect_tflite(p, run)
    raise BadInputError(
        f"{p} is not a project file ({EXTENSION}), a run folder, a search folder or a .tflite"
    )
