"""The report document as one self-contained HTML file (Jinja2, inline CSS and SVG).

``render_html(doc)`` renders a document from engine.report.collect with
``templates/report.html.j2`` (autoescaped); ``report.css`` is inlined in a ``<style>``
element and every chart is inline SVG (engine.report.svg). The file references nothing
outside itself: no stylesheet, font, image or script is loaded, so it opens offline and
prints (or goes through WeasyPrint) the same.

Every number is written by ``engine.core.fmt.FORMATTERS`` and carries where it came from::

    <td class="num" data-src="runs/run-001/metrics.json"
        data-field="compressed.tflite_gzip_bytes" data-fmt="bytes">54.1 KB</td>

``data-src`` is a key of ``doc["sources"]``, embedded as JSON in
``<script type="application/json" id="featherweight-data">`` (``<``, ``>``, ``&`` and ``/``
escaped, so neither ``</script>`` nor a URL appears in the page as text), ``data-field`` a
dotted path into it (``engine.report.collect.lookup``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from engine.core.cache import write_atomic
from engine.core.errors import BadInputError
from engine.core.fmt import FORMATTERS, fmt_bytes, fmt_pct, fmt_pct1
from engine.pipeline.budget import drop_pts
from engine.report.collect import lookup

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"
DATA_ID = "featherweight-data"
VERDICT_MARKS = {"within": "✓", "over": "⚠", "collapsed": "✗"}
VERDICT_WORDS = {"within": "within budget", "over": "over budget", "collapsed": "collapsed"}

Doc = dict[str, Any]


@cache
def _environment() -> Any:
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=ChainableUndefined,  # saved documents of older versions lack keys
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _attrs(src: str | None, field: str, fmt: str) -> str:
    return f'data-src="{escape(src)}" data-field="{escape(field)}" data-fmt="{escape(fmt)}"'


class _Cells:
    """Template helpers that write a number with its provenance (bound to one document)."""

    def __init__(self, doc: Doc) -> None:
        self.sources = doc["sources"]

    def value(self, src: str | None, field: str) -> Any:
        return None if src is None else lookup(self.sources.get(src), field)

    def text(self, src: str | None, field: str, fmt: str) -> str:
        return FORMATTERS[fmt](self.value(src, field))

    def num(self, src: str | None, field: str, fmt: str, cls: str = "num") -> Markup:
        """``<span class=num data-...>formatted</span>``; a dash without a source."""
        if src is None:
            return Markup('<span class="na">—</span>')
        text = self.text(src, field, fmt)
        return Markup(f'<span class="{cls}" {_attrs(src, field, fmt)}>{escape(text)}</span>')

    def td(self, src: str | None, field: str, fmt: str, cls: str = "num") -> Markup:
        """A table cell holding one formatted field (``cls`` "num" right-aligns it)."""
        if src is None:
            return Markup(f'<td class="{cls} na">—</td>')
        text = self.text(src, field, fmt)
        return Markup(f'<td class="{cls}" {_attrs(src, field, fmt)}>{escape(text)}</td>')

    def rtd(self, row: Doc | None, field: str, fmt: str, cls: str = "num") -> Markup:
        """A cell of a Results row: ``field`` under the row's source and prefix."""
        if row is None or row.get("src") is None:
            return Markup(f'<td class="{cls} na">—</td>')
        return self.td(row["src"], row["prefix"] + field, fmt, cls)

    def rnum(self, row: Doc | None, field: str, fmt: str) -> Markup:
        if row is None or row.get("src") is None:
            return Markup('<span class="na">—</span>')
        return self.num(row["src"], row["prefix"] + field, fmt)

    def rval(self, row: Doc | None, field: str) -> Any:
        if row is None or row.get("src") is None:
            return None
        return self.value(row["src"], row["prefix"] + field)


# --------------------------------------------------------------------------- charts


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _row_colors(doc: Doc, cells: _Cells) -> dict[str, str]:
    """One colour per Results row with metrics, the same in every chart."""
    from engine.report.svg import PALETTE

    rows = [r for r in doc["rows"] if cells.rval(r, "compressed") is not None]
    return {r["id"]: PALETTE[i % len(PALETTE)] for i, r in enumerate(rows)}


def _accuracy_size_chart(doc: Doc, cells: _Cells) -> Markup | None:
    from engine.report.svg import Series, xy_chart

    colors = _row_colors(doc, cells)

    base = doc.get("baseline")
    series = []
    if base is not None:
        b_size = cells.rval(base, "baseline.tflite_gzip_bytes")
        b_acc = cells.rval(base, "baseline.accuracy")
        if _finite(b_size) and _finite(b_acc):
            series.append(
                Series(
                    "baseline (float32)",
                    [(float(b_size), float(b_acc))],
                    color="#333333",
                    marker="square",
                    tips=[f"baseline: {fmt_bytes(b_size)}, {fmt_pct(b_acc)}"],
                )
            )
    markers = {"within": "circle", "over": "triangle", "collapsed": "diamond"}
    for row in doc["rows"]:
        size = cells.rval(row, "compressed.tflite_gzip_bytes")
        acc = cells.rval(row, "compressed.accuracy")
        if not (_finite(size) and _finite(acc)):
            continue
        name = row["label"]
        recipe = (row.get("recipe") or {}).get("name")
        label = f"{name} · {recipe}" if recipe and row["kind"] == "run" else name
        series.append(
            Series(
                label,
                [(float(size), float(acc))],
                color=colors.get(row["id"]),
                marker="star"
                if row["kind"] == "search-best"
                else markers.get(row["verdict"], "circle"),
                tips=[f"{label}: {fmt_bytes(size)}, {fmt_pct(acc)}"],
            )
        )
    if len(series) < 2:
        return None
    hlines = []
    if base is not None and _finite(cells.rval(base, "baseline.accuracy")):
        b_acc = float(cells.rval(base, "baseline.accuracy"))
        budget = doc["budget_pts"]
        hlines.append((b_acc - budget / 100.0, f"budget: −{budget:g} pt"))
    return Markup(
        xy_chart(
            series,
            title="Test accuracy vs download size",
            x_label="gzip size of the .tflite (log scale)",
            y_label="test accuracy",
            x_log=True,
            x_fmt=fmt_bytes,
            y_fmt=lambda v: fmt_pct(v, 1),
            hlines=hlines,
            x_tick_unit=1024,
        )
    )


def _sparsity_chart(doc: Doc, cells: _Cells) -> Markup | None:
    from engine.report.svg import bar_chart

    layers: list[str] = []
    groups = []
    for row in doc["rows"]:
        if cells.rval(row, "compressed") is None:
            continue  # the same rows, in the same order (colours), as _row_colors
        per_layer = cells.rval(row, "compressed.per_layer_sparsity")
        per_layer = per_layer if isinstance(per_layer, dict) else {}
        for name in per_layer:
            if name not in layers:
                layers.append(name)
        groups.append((row["label"], per_layer))
    if not layers or not any(
        _finite(v) and v > 0 for _, per_layer in groups for v in per_layer.values()
    ):
        return None
    return Markup(
        bar_chart(
            layers,
            [(label, [per_layer.get(n) for n in layers]) for label, per_layer in groups],
            title="Kernel sparsity per layer (exact zeros in the exported weights)",
            value_label="sparsity",
            value_fmt=fmt_pct1,
            max_value=1.0,
        )
    )


# Curves per sensitivity chart: beyond that, the layers that lose the most (the others are in
# the embedded sensitivity.json and the int8 table).
MAX_CURVES = 8


def _sensitivity_charts(doc: Doc, cells: _Cells) -> list[Markup]:
    from engine.report.svg import Series, xy_chart

    info = doc.get("sensitivity")
    if not info:
        return []
    sens = cells.sources[info["src"]]
    charts: list[Markup] = []
    specs = (
        ("prune", "sparsity", "pruning sparsity of the layer alone", False, fmt_pct1),
        ("cluster", "clusters", "clusters (weights shared per layer, log scale)", True, None),
        ("filters", "ratio", "fraction of filters removed", False, fmt_pct1),
    )
    base_acc = (sens.get("baseline") or {}).get("accuracy")
    budget = doc["budget_pts"]
    for key, x_key, x_label, x_log, x_fmt in specs:
        series = []
        for layer in sens.get("layers") or []:
            curve = layer.get(key)
            ref = layer.get("baseline_accuracy", base_acc)
            if not curve or not _finite(ref):
                continue
            pts = [
                (float(p[x_key]), drop_pts(ref, p["accuracy"]))
                for p in curve
                if _finite(p.get(x_key)) and _finite(p.get("accuracy"))
            ]
            if pts:
                pts.sort()
                series.append(Series(str(layer.get("name")), pts, style="line+points"))
        if not series:
            continue
        shown = ""
        if len(series) > MAX_CURVES:  # a MobileNet has 50+ layers: keep the lines readable
            worst = sorted(series, key=lambda sr: -max(y for _, y in sr.points))[:MAX_CURVES]
            shown = f" ({MAX_CURVES} most sensitive of {len(series)} layers)"
            series = [sr for sr in series if sr in worst]  # in the model's order
        title = {
            "prune": "Pruning one layer at a time",
            "cluster": "Clustering one layer at a time",
            "filters": "Removing filters one layer at a time",
        }[key]
        charts.append(
            Markup(
                xy_chart(
                    series,
                    title=f"{title}: validation accuracy drop{shown}",
                    x_label=x_label,
                    y_label="validation accuracy drop (points)",
                    x_log=x_log,
                    x_fmt=x_fmt,
                    # clusters: label the grid itself (4, 8, 16...), not 1-2-5 decades
                    x_ticks=sorted({p[0] for sr in series for p in sr.points}) if x_log else None,
                    y_fmt=lambda v: f"{v:g}",
                    hlines=[(budget, f"budget {budget:g} pt")],
                    height=340,
                )
            )
        )
    return charts


def _search_chart(doc: Doc, cells: _Cells) -> Markup | None:
    from engine.report.svg import Series, xy_chart

    info = doc.get("search")
    if not info:
        return None
    search = cells.sources[info["src"]]
    key = search.get("objective_key") or "tflite_gzip_bytes"
    trials = [
        t
        for t in search.get("trials") or []
        if t.get("state") == "complete" and _finite(t.get(key)) and _finite(t.get("val_accuracy"))
    ]
    if not trials:
        return None
    by_number = {t["number"]: t for t in trials}
    frontier = [by_number[n] for n in search.get("frontier") or [] if n in by_number]
    is_bytes = key.endswith("bytes")
    x_fmt: Callable[[float], str] = fmt_bytes if is_bytes else (lambda v: f"{v:.3g} ms")

    def tip(t: Doc) -> str:
        return (
            f"trial {t['number']}: {x_fmt(t[key])}, validation {fmt_pct(t['val_accuracy'])}"
            f" · {t.get('summary') or ''}"
        )

    series = [
        Series(
            "trials",
            [(t[key], t["val_accuracy"]) for t in trials],
            color="#9e9e9e",
            hollow=True,
            tips=[tip(t) for t in trials],
        ),
    ]
    if frontier:
        pts = sorted((t[key], t["val_accuracy"]) for t in frontier)
        series.append(Series("frontier", pts, style="line+points", color="#0072B2"))
    best = search.get("best") or {}
    bt = by_number.get(best.get("trial"))
    if bt is not None:
        series.append(
            Series(
                f"best (trial {bt['number']})",
                [(bt[key], bt["val_accuracy"])],
                marker="star",
                color="#D55E00",
                tips=[tip(bt)],
            )
        )
    hlines = []
    base = search.get("baseline") or {}
    if _finite(base.get("val_accuracy")) and _finite(search.get("budget_pts")):
        b = float(search["budget_pts"])
        hlines.append((base["val_accuracy"] - b / 100.0, f"budget: −{b:g} pt"))
    axis = {
        "gzip": "download size: gzip of the .tflite",
        "flash": "flash size: .tflite bytes",
        "latency": "latency on this computer",
        "ram": "RAM: tensor arena estimate",
    }.get(str(search.get("objective")), key)
    return Markup(
        xy_chart(
            series,
            title=f"Search trials: validation accuracy vs {axis.split(':')[0]}",
            x_label=f"{axis} (log scale)",
            y_label="validation accuracy",
            x_log=True,
            x_fmt=x_fmt,
            y_fmt=lambda v: fmt_pct(v, 1),
            hlines=hlines,
            x_tick_unit=1024 if is_bytes else 1.0,
        )
    )


def _data_json(sources: Doc) -> Markup:
    text = json.dumps(sources, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("/", "\\/")):
        text = text.replace(raw, esc)
    return Markup(text)


def _steps_text(step: Any) -> list[tuple[str, str]]:
    """The knobs of a recipe step worth reading: ``[(name, value)]`` (None values left out)."""
    if not isinstance(step, dict):
        return []
    out = []
    for k, v in step.items():
        if k == "type" or v is None or v == [] or v == {}:
            continue
        shown = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        if len(shown) > 80:
            shown = shown[:77] + "…"
        out.append((k, shown))
    return out


def _context(doc: Doc) -> Doc:
    from engine.pipeline.search import OBJECTIVE_LABELS

    cells = _Cells(doc)
    css = (TEMPLATES / STYLESHEET).read_text(encoding="utf-8")
    sens = doc.get("sensitivity")
    sens_doc = doc["sources"][sens["src"]] if sens else None
    search = doc.get("search")
    search_doc = doc["sources"][search["src"]] if search else None
    sens_rows: list[tuple[int, Doc]] = []
    if sens_doc:
        indexed = list(enumerate(sens_doc.get("layers") or []))
        sens_rows = sorted(
            indexed,
            key=lambda p: -(p[1]["int8_error"] if _finite(p[1].get("int8_error")) else -1.0),
        )
    trial_index: dict[Any, int] = {}
    test_index: dict[Any, int] = {}
    if search_doc:
        trial_index = {t.get("number"): i for i, t in enumerate(search_doc.get("trials") or [])}
        test_index = {
            e.get("trial"): i for i, e in enumerate(search_doc.get("frontier_test") or [])
        }
    sections = [("summary", "Summary"), ("model", "Model"), ("dataset", "Dataset and split")]
    if doc["rows"] or doc.get("baseline"):
        sections.append(("results", "Results"))
    if sens:
        sections.append(("sensitivity", "Sensitivity"))
    if search:
        sections.append(("search", "Search"))
    sections.append(("deployment", "Deployment"))
    if any(r.get("recipe") for r in doc["rows"]):
        sections.append(("recipes", "Recipes"))
    sections.append(("versions", "Versions and dates"))
    data_row = doc.get("baseline")
    return {
        "doc": doc,
        "S": doc["sources"],
        "c": cells,
        "css": Markup(css),
        "data_id": DATA_ID,
        "data_json": _data_json(doc["sources"]),
        "sections": sections,
        "number": {key: i + 1 for i, (key, _) in enumerate(sections)},
        "marks": VERDICT_MARKS,
        "words": VERDICT_WORDS,
        "chosen": doc.get("chosen"),
        "deploy": doc["deployment"]["src"],
        "data_row": data_row,
        "charts": {
            "accuracy_size": _accuracy_size_chart(doc, cells),
            "sparsity": _sparsity_chart(doc, cells),
            "sensitivity": _sensitivity_charts(doc, cells),
            "search": _search_chart(doc, cells),
        },
        "sens_doc": sens_doc,
        "sens_rows": sens_rows,
        "search_doc": search_doc,
        "trial_index": trial_index,
        "test_index": test_index,
        "objective_labels": OBJECTIVE_LABELS,
        "steps_text": _steps_text,
        "to_json": lambda v: json.dumps(v, indent=2, ensure_ascii=False),
    }


def render_html(doc: Doc) -> str:
    """The report document ``doc`` (engine.report.collect) as one self-contained HTML page."""
    template = _environment().get_template(TEMPLATE)
    return str(template.render(**_context(doc)))


def write_html(doc: Doc, path: str | Path) -> Path:
    """Render ``doc`` and write it to ``path`` atomically (``write_bytes``). Returns the path.
    Raises BadInputError "cannot write X: reason"."""
    return write_bytes(path, render_html(doc).encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (``engine.core.cache.write_atomic``: temp file in
    the same folder, fsync, replace; the folder is created); an OSError becomes the one-line
    BadInputError "cannot write PATH: reason"."""
    target = Path(path)
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise BadInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
