"""The HTML report (engine.report.collect / engine.report.html) on the committed demo sample.

Every number shown must be its JSON field under the shared formatter (engine.core.fmt), the
embedded data must be the files on disk, and the page must reference nothing outside itself.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import BadInputError
from engine.core.fmt import FORMATTERS, fmt_bytes, fmt_drop
from engine.pipeline.budget import change_text
from engine.report import REPORT_KIND, collect, render_html, write_html
from engine.report.collect import lookup

SAMPLE = Path(__file__).parent / "data" / "report_sample"
COMPUTED = {"project", "model", "derived", "tflite_report"}  # made while collecting
VOID = {"br", "meta", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}
SVG_NS = "http://www.w3.org/2000/svg"


class _Page(HTMLParser):
    """Elements carrying data-field (with their full text), each <td>'s own text outside
    such elements, every src/href, and the embedded JSON."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[dict[str, Any]] = []
        self.fields: list[dict[str, Any]] = []
        self.cells: list[dict[str, Any]] = []
        self.links: list[tuple[str, str, str]] = []
        self.data_json: str | None = None
        self.section_ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for k in ("src", "href", "xlink:href"):
            if k in a:
                self.links.append((tag, k, a[k]))
        if tag == "section" and "id" in a:
            self.section_ids.append(a["id"])
        if tag in VOID:
            return
        self.stack.append({"tag": tag, "attrs": a, "text": [], "own": []})

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for k in ("src", "href", "xlink:href"):
            if k in a:
                self.links.append((tag, k, a[k]))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        while self.stack:
            entry = self.stack.pop()
            text = "".join(entry["text"])
            if "data-field" in entry["attrs"]:
                self.fields.append({**entry["attrs"], "text": text})
            if entry["tag"] == "td":
                self.cells.append({**entry["attrs"], "own": "".join(entry["own"])})
            if entry["tag"] == "script" and entry["attrs"].get("id") == "featherweight-data":
                self.data_json = text
            if entry["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        inside_field = False
        for entry in self.stack:
            entry["text"].append(data)
        # A cell's own text: not inside a descendant that carries data-field.
        for i, entry in enumerate(self.stack):
            if entry["tag"] == "td":
                inside_field = any("data-field" in e["attrs"] for e in self.stack[i:])
                if not inside_field:
                    entry["own"].append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _check_numbers(html: str, sources: dict[str, Any]) -> _Page:
    """Every data-field element shows FORMATTERS[fmt](field); no bare digit in a <td>."""
    page = _parse(html)
    assert page.fields, "no element carries data-field"
    for el in page.fields:
        src, field, fmt = el["data-src"], el["data-field"], el["data-fmt"]
        assert src in sources, f"data-src {src!r} is not a key of the embedded sources"
        want = FORMATTERS[fmt](lookup(sources[src], field))
        assert el["text"] == want, f"{src} {field}: shows {el['text']!r}, field gives {want!r}"
    for cell in page.cells:
        if "data-field" in cell or "label" in cell.get("class", "").split():
            continue
        assert not re.search(r"\d", cell["own"]), f"digit without data-field: {cell['own']!r}"
    return page


def _shown(page: _Page, src: str, field: str) -> str:
    hits = [el["text"] for el in page.fields if el["data-src"] == src and el["data-field"] == field]
    assert hits, f"{src} {field} is not shown"
    return hits[0]


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("report") / "sample"
    shutil.copytree(SAMPLE, dst)
    return dst


@pytest.fixture(scope="session")
def project_report(sample: Path) -> tuple[dict[str, Any], str]:
    doc = collect(sample / "demo.fwproj")
    return doc, render_html(doc)


# --------------------------------------------------------------------------- formatters


def test_shared_formatters() -> None:
    assert fmt_bytes(605224) == "591.0 KB"
    assert FORMATTERS["pts"](0.0123) == "+1.23 pts"
    assert FORMATTERS["int"](151306) == "151,306"
    assert FORMATTERS["shape"]([None, 8, 8, 1]) == "? × 8 × 8 × 1"
    assert FORMATTERS["pct"](None) == "—"
    for base, comp in ((0.975, 0.9777), (0.975, 0.963), (0.975, 0.975)):
        assert fmt_drop(base - comp) == change_text(base, comp)
    from gui import format as gui_format  # the app shows numbers with the same functions

    assert gui_format.fmt_bytes is fmt_bytes


# --------------------------------------------------------------------------- the project


def test_project_numbers_equal_their_fields(project_report: tuple[dict[str, Any], str]) -> None:
    doc, html = project_report
    assert doc["kind"] == REPORT_KIND and doc["source"]["type"] == "project"
    page = _check_numbers(html, doc["sources"])
    assert len(page.fields) > 150
    # At least one number per section, checked against the file on disk.
    files = json.loads((SAMPLE / "demo_files/runs/run-002/metrics.json").read_text())
    gzip = _shown(page, "runs/run-002/metrics.json", "compressed.tflite_gzip_bytes")
    assert gzip == fmt_bytes(files["compressed"]["tflite_gzip_bytes"])
    _shown(page, "runs/run-001/metrics.json", "ratio_raw")
    _shown(page, "runs/run-001/metrics.json", "compressed.latency_ms")
    assert _shown(page, "model", "totals.params") == "151,306"
    _shown(page, "model", "totals.macs")
    search = "searches/search-001/"
    _shown(page, search + "best/report.json", "memory.arena_estimate_bytes")
    _shown(page, search + "search.json", "best.tflite_gzip_bytes")
    _shown(page, search + "search.json", "frontier_test.0.accuracy")
    sens = [el for el in page.fields if el["data-src"].startswith("analyses/")]
    assert any(el["data-field"].endswith("int8_error") for el in sens)
    assert {"model-section", "results-section", "sensitivity-section", "search-section"} <= set(
        page.section_ids
    )
    assert "Latency" in html and "this computer" in html and "validation" in html


def test_project_chooses_smallest_within_budget(
    project_report: tuple[dict[str, Any], str],
) -> None:
    doc, html = project_report
    chosen = doc["chosen"]
    # Sample: run-001 147 KB, run-002 54 KB, the search's best 10.7 KB, all within 1 point.
    assert chosen["id"] == "search" and chosen["met_budget"] is True
    assert doc["deployment"]["src"] == "searches/search-001/best/report.json"
    assert [r["verdict"] for r in doc["rows"]] == ["within", "within", "within"]
    assert "✓ within budget" in " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_embedded_sources_are_the_files(project_report: tuple[dict[str, Any], str]) -> None:
    doc, html = project_report
    page = _parse(html)
    assert page.data_json is not None
    assert json.loads(page.data_json) == doc["sources"]
    files = [k for k in doc["sources"] if k not in COMPUTED]
    assert len(files) == 8
    for key in files:
        on_disk = json.loads((SAMPLE / "demo_files" / key).read_text(encoding="utf-8"))
        assert doc["sources"][key] == on_disk, key


def test_page_is_self_contained(project_report: tuple[dict[str, Any], str]) -> None:
    _, html = project_report
    page = _parse(html)
    assert page.links, "the table of contents links to its sections"
    for tag, attr, value in page.links:
        assert value.startswith("#"), f"<{tag} {attr}={value!r}> leaves the page"
    assert "url(" not in html.lower()
    assert "@import" not in html.lower()
    assert set(re.findall(r"https?://[^\s\"'<>)]*", html)) == {SVG_NS}
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    assert html.count("<svg") >= 5  # accuracy/size, sparsity, 3 sensitivity, search


HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="alert(1)">&amp;'


def test_hostile_text_in_a_shared_project_stays_text(sample: Path, tmp_path: Path) -> None:
    """A project from someone else: names and errors with markup are shown as text; the page
    runs no script (and its Content-Security-Policy would refuse one)."""
    shutil.copytree(sample, tmp_path / "p")
    path = tmp_path / "p" / "demo.fwproj"
    data = json.loads(path.read_text())
    data["name"] = HOSTILE
    bad = {**data["runs"][0], "id": "run-003", "status": "failed", "metrics": None}
    bad.update(error=HOSTILE, artifacts=[], recipe={"name": HOSTILE, "description": HOSTILE})
    data["runs"].append(bad)
    path.write_text(json.dumps(data))
    run_dir = tmp_path / "p" / "demo_files" / "runs" / "run-001"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["recipe"]["name"] = HOSTILE
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    doc = collect(path)
    html = render_html(doc)
    page = _check_numbers(html, doc["sources"])
    assert lookup(doc["sources"], "project.runs.2.error") == HOSTILE  # kept, as data
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="application/json" id="featherweight-data">'
    ]
    tags: list[tuple[str, list[str]]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append((tag, [name for name, _ in attrs]))

    Tags().feed(html)
    assert [t for t, _ in tags if t in ("script", "img", "iframe", "object")] == ["script"]
    assert not [(t, a) for t, attrs in tags for a in attrs if a.startswith("on")]
    assert "default-src 'none'" in html
    data_text = html.split('id="featherweight-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data_text) == json.loads(json.dumps(doc["sources"]))
    assert page.fields


def test_many_layers_keep_the_sensitivity_charts_readable(sample: Path, tmp_path: Path) -> None:
    """A 20-layer analysis (a MobileNet has 50+): each chart draws the 8 layers that lose the
    most, says so, and every number shown still equals its field."""
    shutil.copytree(sample, tmp_path / "p")
    path = tmp_path / "p" / "demo_files" / "analyses" / "analysis-001" / "sensitivity.json"
    sens = json.loads(path.read_text())
    first = sens["layers"][0]
    layers = []
    for i in range(20):
        layer = json.loads(json.dumps(first))
        layer["name"] = f"block_{i}"
        for point in layer["prune"]:  # block_i loses i points more at every sparsity
            point["accuracy"] = layer["baseline_accuracy"] - (i + 1) / 100
        layers.append(layer)
    sens["layers"] = layers
    path.write_text(json.dumps(sens))
    doc = collect(tmp_path / "p" / "demo.fwproj")
    html = render_html(doc)
    _check_numbers(html, doc["sources"])
    chart = next(
        svg for svg in re.findall(r"<svg\b.*?</svg>", html, re.S) if "Pruning one layer" in svg
    )
    assert "(8 most sensitive of 20 layers)" in chart
    legend = set(re.findall(r">(block_\d+)<", chart))
    assert legend == {f"block_{i}" for i in range(12, 20)}


def test_unknown_run_is_one_line(sample: Path) -> None:
    with pytest.raises(BadInputError) as err:
        collect(sample / "demo.fwproj", run="run-999")
    assert "run-999" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadInputError):
        collect(sample / "demo_files" / "runs")  # a folder that is neither run nor search


def test_project_with_a_failed_run(sample: Path, tmp_path: Path) -> None:
    shutil.copytree(sample, tmp_path / "p")
    path = tmp_path / "p" / "demo.fwproj"
    data = json.loads(path.read_text())
    failed = {**data["runs"][0], "id": "run-003", "status": "failed", "metrics": None}
    failed.update(error="out of memory at epoch 3", artifacts=[], recipe={"name": "qat-int8"})
    data["runs"].append(failed)
    other = {**data["runs"][1], "id": "run-004", "config": {**data["runs"][1]["config"]}}
    other["config"]["model"] = {"path": "other.keras", "sha256": None, "allow_unsafe": False}
    data["runs"].append(other)  # another model: left out, and counted
    path.write_text(json.dumps(data))
    doc = collect(path, run="run-001")
    html = render_html(doc)
    page = _check_numbers(html, doc["sources"])
    assert doc["chosen"]["id"] == "run-001"
    assert _shown(page, "project", "runs.2.error") == "out of memory at epoch 3"
    row = next(r for r in doc["rows"] if r["id"] == "run-003")
    assert row["status"] == "failed" and row["src"] is None
    assert doc["chosen"]["rule"] == "chosen by the user"
    assert "run-004" not in [r["id"] for r in doc["rows"]]
    assert doc["sources"]["derived"]["left_out_runs"] == 1
    assert any("1 run(s) of another model" in note for note in doc["notes"])
    with pytest.raises(BadInputError, match="run-003"):
        collect(path, run="run-003")


def test_no_run_within_budget(sample: Path, tmp_path: Path) -> None:
    shutil.copytree(sample, tmp_path / "p")
    files = tmp_path / "p" / "demo_files"
    for rel, acc in (
        ("runs/run-001", 0.95),  # 2.5 points lost: over the 1-point budget
        ("runs/run-002", 0.96),
        ("searches/search-001/best", 0.50),  # collapsed
    ):
        metrics = json.loads((files / rel / "metrics.json").read_text())
        metrics["compressed"]["accuracy"] = acc
        (files / rel / "metrics.json").write_text(json.dumps(metrics))
    doc = collect(tmp_path / "p" / "demo.fwproj")
    assert [r["verdict"] for r in doc["rows"]] == ["over", "over", "collapsed"]
    assert doc["chosen"]["id"] == "run-002" and doc["chosen"]["met_budget"] is False
    assert any("no run met the 1-point accuracy budget" in n.lower() for n in doc["notes"])
    html = render_html(doc)
    _check_numbers(html, doc["sources"])
    text = " ".join(re.sub(r"<[^>]+>", "", html).split())
    assert "⚠ over budget" in text and "✗ collapsed" in text


# --------------------------------------------------------------------------- other sources


def test_run_folder(sample: Path, tmp_path: Path) -> None:
    doc = collect(sample / "demo_files" / "runs" / "run-002")
    assert doc["source"]["type"] == "run" and doc["chosen"]["id"] == "run-002"
    assert doc["chosen"]["rule"] == "the run in this folder" and doc["budget_from"] == "default"
    page = _check_numbers(render_html(doc), doc["sources"])
    _shown(page, "metrics.json", "compressed.tflite_gzip_bytes")
    _shown(page, "report.json", "memory.arena_estimate_bytes")
    on_disk = json.loads((SAMPLE / "demo_files/runs/run-002/metrics.json").read_text())
    assert doc["sources"]["metrics.json"] == on_disk
    out = write_html(doc, tmp_path / "out" / "run.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_missing_model_still_renders(sample: Path, tmp_path: Path) -> None:
    run = tmp_path / "run-002"
    shutil.copytree(sample / "demo_files" / "runs" / "run-002", run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["model"]["path"] = str(tmp_path / "gone" / "model.keras")
    (run / "metrics.json").write_text(json.dumps(metrics))
    doc = collect(run)
    assert doc["model"]["src"] is None and "missing" in doc["model"]["error"]
    html = render_html(doc)
    _check_numbers(html, doc["sources"])
    assert "gone/model.keras is missing" in html
    assert "Kernel sparsity" in html  # the results are still there

    from engine.core.tfenv import keras2

    k = keras2()
    inp = k.Input((4,))
    out = k.layers.Dense(2)(k.layers.Lambda(lambda x: x * 2.0, name="sneaky")(inp))
    k.Model(inp, out).save(tmp_path / "lambda.h5")
    metrics["model"]["path"] = str(tmp_path / "lambda.h5")
    (run / "metrics.json").write_text(json.dumps(metrics))
    doc = collect(run)  # refused, not loaded: the report says why and goes on
    assert doc["model"]["src"] is None and "--allow-unsafe" in doc["model"]["error"]
    assert "sneaky" in doc["model"]["error"] and "\n" not in doc["model"]["error"]
    _check_numbers(render_html(doc), doc["sources"])


def test_search_folder(sample: Path) -> None:
    doc = collect(sample / "demo_files" / "searches" / "search-001")
    assert doc["source"]["type"] == "search" and doc["budget_from"] == "search"
    assert doc["chosen"]["id"] == "search"
    page = _check_numbers(render_html(doc), doc["sources"])
    _shown(page, "search.json", "best.val_drop")
    _shown(page, "best/metrics.json", "compressed.accuracy")
    _shown(page, "derived", "search.frontier.0.ratio_gzip")


def test_tflite(sample: Path) -> None:
    doc = collect(sample / "demo_files" / "runs" / "run-001" / "model.tflite")
    assert doc["source"]["type"] == "tflite" and doc["deployment"]["src"] == "tflite_report"
    html = render_html(doc)
    page = _check_numbers(html, doc["sources"])
    _shown(page, "tflite_report", "memory.arena_estimate_bytes")
    _shown(page, "tflite_report", "io.inputs.0.shape")
    assert "TFLite Micro" in html


def test_pdf_renders(sample: Path) -> None:
    weasyprint = pytest.importorskip("weasyprint")
    doc = collect(sample / "demo_files" / "runs" / "run-002")
    pdf = weasyprint.HTML(string=render_html(doc)).write_pdf()
    assert pdf[:5] == b"%PDF-" and len(pdf) > 20_000
