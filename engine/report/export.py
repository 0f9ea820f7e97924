"""Export the shareable report: collect the saved results, render HTML, optionally PDF.

``export_report(target, html=..., pdf=...)`` is the one call the CLI (``featherweight report
PATH --html OUT.html [--pdf OUT.pdf]``), the worker job ``export_report`` and the app's
*File → Export report…* make. ``target`` is a path (a ``.fwproj`` project file, a run folder
holding metrics.json, a search folder holding search.json, or a ``.tflite``) or the app's
in-memory ``Project`` (maybe untitled and unsaved).

Stages (``engine.core.events``): ``report_collect`` (read the saved documents and inspect the
model), ``report_html`` (render the HTML), ``report_pdf`` (render the PDF; progress events
follow WeasyPrint's steps). A cancel is honoured between stages and during the PDF; the files
are written only after everything rendered, each atomically, so a cancelled or failed export
leaves no half-written file. Bad input is a one-line ``BadInputError``: no output named, an
output path that is a folder or cannot be written ("cannot write X: reason"), no PDF support
here, or whatever ``collect`` refuses (not a project/run/search/.tflite, unknown run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError
from engine.core.events import Reporter

STAGES = ("report_collect", "report_html", "report_pdf")


def check_output(path: str | Path, what: str = "report") -> Path:
    """``path`` as an output file, checked before any work: not a folder, and its nearest
    existing folder writable. Raises BadInputError "cannot write PATH: reason"."""
    target = Path(path).expanduser()
    if str(path).strip() == "":
        raise BadInputError(f"no file name given for the {what}")
    if target.is_dir():
        raise BadInputError(f"cannot write {target}: it is a folder")
    parent = target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise BadInputError(f"cannot write {target}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write {target}: permission denied in {parent}")
    return target


def _chosen(doc: dict[str, Any]) -> str | None:
    """The id of the model the report's verdict is about (a run id, "search" or None)."""
    chosen = doc.get("chosen")
    return chosen.get("id") if isinstance(chosen, dict) else None


def _title(doc: dict[str, Any]) -> str:
    source = doc.get("source")
    if isinstance(source, dict) and source.get("title"):
        return str(source["title"])
    return str(doc.get("title") or "Featherweight report")


def export_report(
    target: Any,
    *,
    html: str | Path | None = None,
    pdf: str | Path | None = None,
    run: str | None = None,
    allow_unsafe: bool = False,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Write the report of ``target`` (a path or a ``Project``) to ``html`` and/or ``pdf``.

    Returns ``{"html": path or None, "pdf": path or None, "chosen": run id | "search" |
    None, "title": str, "bytes": {"html": n, "pdf": n}}``. ``run`` picks the model of the
    deployment verdict (a run id, or "search" for the latest search's best model; default:
    the smallest within the project's budget). Raises BadInputError (one line) for bad input
    and ``Cancelled`` when ``reporter`` is cancelled (then nothing is written).
    """
    if html is None and pdf is None:
        raise BadInputError("give an output: --html OUT.html and/or --pdf OUT.pdf")
    html_path = check_output(html, "HTML report") if html is not None else None
    pdf_path = check_output(pdf, "PDF") if pdf is not None else None
    if html_path is not None and pdf_path is not None:
        if html_path.absolute() == pdf_path.absolute():
            raise BadInputError(f"the HTML and the PDF cannot both be written to {html_path}")
    if pdf_path is not None:
        from engine.report.pdf import pdf_unavailable

        reason = pdf_unavailable()  # before any work: one line, at once
        if reason is not None:
            raise BadInputError(reason)
    reporter = reporter or Reporter()
    count = 3 if pdf_path is not None else 2

    with reporter.stage("report_collect", "Reading the saved results", 0, count):
        doc = _collect(target, run=run, allow_unsafe=allow_unsafe, reporter=reporter)
    with reporter.stage("report_html", "Writing the HTML report", 1, count):
        from engine.report.html import render_html

        text = render_html(doc)
    pdf_data: bytes | None = None
    if pdf_path is not None:
        with reporter.stage("report_pdf", "Writing the PDF", 2, count):
            from engine.report.pdf import render_pdf

            pdf_data = render_pdf(text, reporter)
    reporter.check_cancel()  # the last moment a cancel leaves nothing behind

    from engine.report.html import write_bytes

    sizes: dict[str, int] = {}
    if html_path is not None:
        data = text.encode("utf-8")
        write_bytes(html_path, data)
        sizes["html"] = len(data)
    if pdf_path is not None and pdf_data is not None:
        write_bytes(pdf_path, pdf_data)
        sizes["pdf"] = len(pdf_data)
    return {
        "html": str(html_path) if html_path is not None else None,
        "pdf": str(pdf_path) if pdf_path is not None else None,
        "chosen": _chosen(doc),
        "title": _title(doc),
        "bytes": sizes,
    }


def _collect(
    target: Any, *, run: str | None, allow_unsafe: bool, reporter: Reporter
) -> dict[str, Any]:
    from engine.project.document import Project
    from engine.report.collect import collect, collect_project

    if isinstance(target, Project):
        return collect_project(target, run=run, allow_unsafe=allow_unsafe, reporter=reporter)
    if not isinstance(target, (str, Path)) or str(target).strip() == "":
        raise BadInputError("nothing to report on: give a project, run folder or .tflite")
    return collect(target, run=run, allow_unsafe=allow_unsafe, reporter=reporter)
