"""The shareable report from the command line and the worker job (issue 16): ``featherweight
report PATH --html OUT.html [--pdf OUT.pdf]``, PDF support, cancel, bad input in one line.

Two subprocesses (the real command line: exit code, stdout lines, nothing else on stderr);
the rest in-process through ``engine.cli.main`` and ``engine.service.jobs``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import zlib
from functools import partial
from pathlib import Path

import pytest

from engine.core.errors import BadInputError, Cancelled
from engine.core.events import CancelToken, Reporter
from engine.core.fmt import fmt_bytes
from tests import helpers

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "report_sample"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the demo project (two runs, an analysis, a search): loading may write."""
    dst = tmp_path / "sample"
    shutil.copytree(SAMPLE, dst)
    return dst / "demo.fwproj"


fw = partial(helpers.fw, timeout=300)


def pdf_pages(data: bytes) -> int:
    """Page objects of a PDF, also those inside compressed object streams."""
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    return sum(len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", c)) for c in chunks)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("featherweight: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from engine.cli import main

    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


# -- the real command line ---------------------------------------------------------------------
def test_cli_writes_html_and_pdf_of_a_project_and_prints_only_that(sample: Path) -> None:
    out = sample.parent / "out"
    html, pdf = out / "report.html", out / "report.pdf"
    r = fw("report", str(sample), "--html", str(html), "--pdf", str(pdf))
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no progress, no TensorFlow / WeasyPrint noise when piped
    assert r.stdout.splitlines() == [
        f"wrote {html} ({fmt_bytes(html.stat().st_size)})",
        f"wrote {pdf} ({fmt_bytes(pdf.stat().st_size)})",
    ]
    text = html.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html")
    assert 'id="featherweight-data"' in text
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert pdf_pages(data) >= 3
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf"]  # no temps


def test_cli_bad_path_is_exit_2_and_one_stderr_line(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    r = fw("report", str(notes), "--html", str(tmp_path / "r.html"))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1, r.stderr
    line = one_error_line(r.stderr)
    assert "notes.txt" in line and "is not a project file" in line
    assert not (tmp_path / "r.html").exists()


# -- in-process: the other bad inputs ------------------------------------------------------
def test_project_without_an_output_says_to_give_html_or_pdf(sample, capsys) -> None:
    code, out, err = run_main(capsys, str(sample))
    assert code == 2 and out == ""
    assert "give --html OUT.html and/or --pdf OUT.pdf" in one_error_line(err)
    code, out, err = run_main(capsys, str(sample.parent / "demo_files" / "runs" / "run-001"))
    assert code == 2 and "give --html" in one_error_line(err)


def test_unwritable_output_is_refused_before_any_work(sample, tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _out, err = run_main(capsys, str(sample), "--html", str(blocker / "r.html"))
    assert code == 2
    line = one_error_line(err)
    assert f"cannot write {blocker / 'r.html'}" in line and "is not a folder" in line
    code, _out, err = run_main(capsys, str(sample), "--pdf", str(tmp_path))
    assert code == 2 and "it is a folder" in one_error_line(err)


def test_unknown_run_is_one_line(sample, tmp_path, capsys) -> None:
    code, _out, err = run_main(
        capsys, str(sample), "--html", str(tmp_path / "r.html"), "--run", "run-999"
    )
    assert code == 2
    assert "run-999" in one_error_line(err)
    assert not (tmp_path / "r.html").exists()


def test_tflite_report_keeps_its_text_without_html(sample, capsys) -> None:
    tflite = sample.parent / "demo_files" / "runs" / "run-001" / "model.tflite"
    code, out, err = run_main(capsys, str(tflite), "--json")
    assert code == 0, err
    assert json.loads(out)["op_sequence"]


# -- PDF support ---------------------------------------------------------------------------
@pytest.fixture
def no_pango(monkeypatch):
    """WeasyPrint's cffi cannot dlopen Pango (as in a bundle built without it)."""
    import cffi

    from engine.report import pdf

    def dlopen(self, name, *args, **kwargs):
        raise OSError(
            f"cannot load library '{name}': {name}: cannot open shared object file: "
            "No such file or directory"
        )

    for mod in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(cffi.FFI, "dlopen", dlopen)
    pdf._reset_cache()
    yield
    pdf._reset_cache()
    # Drop what the failed import left behind; monkeypatch then puts the real modules back.
    for mod in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        del sys.modules[mod]


def test_missing_pango_is_one_line_and_no_pdf(no_pango, sample, tmp_path, capsys) -> None:
    from engine.report.pdf import pdf_unavailable, write_pdf

    reason = pdf_unavailable()
    assert reason is not None and "\n" not in reason
    assert "Pango" in reason and "libgobject-2.0-0" in reason
    assert capsys.readouterr().out == ""  # WeasyPrint's own notice is swallowed
    with pytest.raises(BadInputError, match="Pango"):
        write_pdf("<html><body>x</body></html>", tmp_path / "x.pdf")
    out = tmp_path / "out"
    code, stdout, err = run_main(
        capsys, str(sample), "--html", str(out / "r.html"), "--pdf", str(out / "r.pdf")
    )
    assert code == 2 and stdout == ""
    assert "Pango" in one_error_line(err)
    assert not out.exists()  # refused before any work


def test_weasyprint_not_installed_is_one_line(monkeypatch) -> None:
    from engine.report import pdf

    for mod in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "weasyprint", None)
    pdf._reset_cache()
    try:
        assert pdf.pdf_unavailable() == (
            "PDF needs WeasyPrint, which is not installed here (write --html instead)"
        )
    finally:
        pdf._reset_cache()


# -- the worker job, cancel ----------------------------------------------------------------
def test_job_exports_an_untitled_project_and_cancel_leaves_nothing(
    sample, tmp_path, monkeypatch
) -> None:
    """The app's job: a project document with its workspace (untitled, never saved).

    The model's inspection (TensorFlow, seconds) is replaced by a refusal here -- the report
    says why in one line and goes on; the subprocess test above inspects the real model."""
    from engine.models import loading
    from engine.project.document import load_project
    from engine.service.jobs import JOBS

    def no_inspection(*args, **kwargs):
        raise BadInputError("inspection skipped in this test")

    monkeypatch.setattr(loading, "inspect_path", no_inspection)

    project = load_project(sample)
    doc = project.to_dict()
    params = {
        "project": doc,
        "project_path": None,
        "workspace": str(sample.parent / "demo_files"),
        "run": "run-001",
    }
    events: list[dict] = []
    out = tmp_path / "out"
    result = JOBS["export_report"]({**params, "html": str(out / "r.html")}, Reporter(events.append))
    assert result["html"] == str(out / "r.html") and result["pdf"] is None
    assert result["chosen"] == "run-001"
    assert result["bytes"]["html"] == (out / "r.html").stat().st_size
    assert "inspection skipped in this test" in (out / "r.html").read_text(encoding="utf-8")
    stages = [(e["stage"], e["state"]) for e in events if e["type"] == "stage"]
    assert stages == [
        ("report_collect", "start"),
        ("report_collect", "end"),
        ("report_html", "start"),
        ("report_html", "end"),
    ]
    assert all(e["count"] == 2 for e in events if e["type"] == "stage")

    # Cancelled while the PDF renders: neither file is written.
    token = CancelToken()

    def cancel_in_pdf(ev: dict) -> None:
        if ev.get("type") == "progress" and ev.get("stage") == "report_pdf":
            token.cancel()

    out2 = tmp_path / "out2"
    with pytest.raises(Cancelled):
        JOBS["export_report"](
            {**params, "html": str(out2 / "r.html"), "pdf": str(out2 / "r.pdf")},
            Reporter(cancel_in_pdf, token),
        )
    assert not out2.exists()

    with pytest.raises(BadInputError, match="workspace"):
        JOBS["export_report"](
            {**params, "workspace": None, "html": str(out / "x.html")}, Reporter()
        )
    with pytest.raises(BadInputError, match="html"):
        JOBS["export_report"]({"path": str(sample)}, Reporter())
