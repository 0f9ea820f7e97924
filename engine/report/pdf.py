"""The report as PDF: WeasyPrint renders the same self-contained HTML the browser opens.

WeasyPrint is imported lazily (it takes ~1 s and loads Pango through cffi). When it or its
Pango/GObject libraries are missing -- a frozen bundle built without them, a system without
Pango -- ``pdf_unavailable()`` says so in one line and ``render_pdf`` / ``write_pdf`` raise a
``BadInputError`` with that line (CLI exit 2), instead of WeasyPrint's own multi-line notice.

WeasyPrint's loggers (``weasyprint``, ``weasyprint.progress``, ``fontTools``) are silenced while
it renders, so the command line prints nothing else; its progress steps ("Step 1" … "Step 7")
become ``progress`` events of the current stage, and a cancel is honoured between them (and
between pages). No URL is ever fetched: the HTML is self-contained, and WeasyPrint's fetcher
is limited to ``data:`` URLs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.core.errors import BadInputError
from engine.core.events import Reporter

PDF_STEPS = 7  # WeasyPrint 70 logs "Step 1 - Fetching and parsing HTML" … "Step 7 - …metadata"
SILENCED_LOGGERS = ("weasyprint", "weasyprint.progress", "fontTools")
_STEP = re.compile(r"^Step (\d+)\b")
_LIBRARY = re.compile(r"cannot load library '([^']+)'")

_unavailable: list[str | None] = []  # cached answer of pdf_unavailable()


def _import_weasyprint() -> Any:
    """``import weasyprint`` with its loud failure notice (printed to stdout) swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), _silenced():
        import weasyprint

    return weasyprint


def _reason(exc: BaseException) -> str:
    """One line for a failed WeasyPrint import."""
    if isinstance(exc, ImportError) and getattr(exc, "name", "") in ("weasyprint", None):
        return "PDF needs WeasyPrint, which is not installed here (write --html instead)"
    text = " ".join(str(exc).split())
    m = _LIBRARY.search(text)
    lib = m.group(1) if m else None
    if lib is not None:
        return (
            f"PDF needs WeasyPrint's Pango libraries ({lib}), which were not found "
            "(write --html instead)"
        )
    return f"PDF is not available: WeasyPrint cannot start ({text or type(exc).__name__})"


def pdf_unavailable() -> str | None:
    """None when PDFs can be written here, else one line saying why not (WeasyPrint or its
    Pango libraries missing). Tries the import once per process."""
    if not _unavailable:
        try:
            _import_weasyprint()
        except (ImportError, OSError) as exc:
            _unavailable.append(_reason(exc))
        else:
            _unavailable.append(None)
    return _unavailable[0]


def _reset_cache() -> None:
    """Forget the cached answer (tests that simulate a missing library)."""
    _unavailable.clear()


class _StepHandler(logging.Handler):
    """Turns WeasyPrint's progress log lines into progress events; raises ``Cancelled``
    (from inside WeasyPrint's logging call, which aborts the rendering) once cancelled."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.INFO)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        self.reporter.check_cancel()
        m = _STEP.match(str(record.msg))
        if m:
            self.reporter.progress(min(int(m.group(1)), PDF_STEPS), PDF_STEPS)


@contextlib.contextmanager
def _silenced(reporter: Reporter | None = None) -> Iterator[None]:
    """WeasyPrint's and fontTools' loggers print nothing for the block (and do not reach
    the root logger); with ``reporter``, WeasyPrint's progress steps reach it."""
    saved = {}
    for name in SILENCED_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.propagate, list(logger.handlers))
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
        logger.handlers = []
    handler = None
    if reporter is not None:
        handler = _StepHandler(reporter)
        progress = logging.getLogger("weasyprint.progress")
        progress.setLevel(logging.INFO)
        progress.addHandler(handler)
    try:
        yield
    finally:
        for name, (level, propagate, handlers) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.propagate = propagate
            logger.handlers = handlers


def render_pdf(html: str, reporter: Reporter | None = None) -> bytes:
    """The PDF bytes of ``html`` (a self-contained document). Raises BadInputError (one
    line) when PDFs cannot be made here, ``Cancelled`` when ``reporter`` is cancelled."""
    reason = pdf_unavailable()
    if reason is not None:
        raise BadInputError(reason)
    weasyprint = _import_weasyprint()
    with _silenced(reporter):
        # The report is self-contained: nothing is fetched (a data: URL reaches no network).
        fetcher = weasyprint.URLFetcher(allowed_protocols=("data",))
        document = weasyprint.HTML(string=html, url_fetcher=fetcher)
        data = document.write_pdf()
    if reporter is not None:
        reporter.check_cancel()
    return bytes(data)


def write_pdf(html: str, path: str | Path, reporter: Reporter | None = None) -> Path:
    """Render ``html`` and write the PDF to ``path`` atomically (temp file in the same
    folder, fsync, ``os.replace``; the folder is created). Returns the path. Raises
    BadInputError: no PDF support here ("PDF needs …"), or "cannot write PATH: reason"."""
    from engine.report.html import write_bytes

    return write_bytes(path, render_pdf(html, reporter))
