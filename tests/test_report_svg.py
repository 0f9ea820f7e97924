"""The report's SVG charts: well-formed, self-contained, honest about the points they draw."""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET

import pytest

from engine.report.svg import Series, bar_chart, text_width, xy_chart

NS = "{http://www.w3.org/2000/svg}"


def kb(v: float) -> str:  # the shape of engine.core.fmt.fmt_bytes
    if v < 1024:
        return f"{v:.0f} B"
    if v < 1024 * 1024:
        return f"{v / 1024:.1f} KB"
    return f"{v / (1024 * 1024):.2f} MB"


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    for attr in ("viewBox", "width", "height"):
        assert root.get(attr), attr
    assert root.get("role") == "img"
    assert root[0].tag == NS + "title" and root[0].text
    assert "system-ui" in root.get("font-family", "")
    return root


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter() if el.get("class") == cls]


def group_texts(root: ET.Element, cls: str) -> list[str]:
    (group,) = by_class(root, cls)
    return [el.text or "" for el in group.iter(NS + "text")]


def accuracy_vs_size() -> str:
    sizes = [2100, 5200, 41000, 160000, 605224]
    accs = [0.91, 0.95, 0.9756, 0.9811, 0.9833]
    return xy_chart(
        [
            Series("within budget", [(s, a) for s, a in zip(sizes, accs) if a >= 0.9733]),
            Series("over budget", [(s, a) for s, a in zip(sizes, accs) if a < 0.9733], hollow=True),
            Series("best", [(41000, 0.9756)], marker="star", tips=["prune80_int8"]),
        ],
        title="Accuracy vs size",
        x_label="gzip size",
        y_label="Test accuracy",
        x_log=True,
        x_fmt=kb,
        y_fmt=pct,
        hlines=[(0.9733, "budget −1 pt")],
    )


def test_markers_equal_finite_points_and_tooltips():
    nan, inf = float("nan"), float("inf")
    pts = [(1, 2), (2, nan), (3, 4), (inf, 1), (5, 6), (6, -1)]
    svg = xy_chart(
        [
            Series("a", pts, style="line+points"),
            Series("b", [(1, 1), (2, None), (4, 3)], marker="square", hollow=True),  # type: ignore[list-item]
            Series("line only", [(1, 0), (6, 6)], style="line"),
        ],
        title="t",
        x_label="x",
        y_label="y",
    )
    root = parse(svg)
    marks = by_class(root, "pt")
    assert len(marks) == 4 + 2  # finite points of the two marker series
    tips = [m.find(NS + "title").text for m in marks]  # type: ignore[union-attr]
    assert tips[0] == "a\nx: 1\ny: 2"
    assert [m.tag for m in marks[4:]] == [NS + "rect", NS + "rect"]
    assert all(m.get("fill") == "#ffffff" for m in marks[4:])  # hollow
    # a NaN breaks the line: (1, 2) and (3, 4) stand alone, (5, 6)-(6, -1) is one piece;
    # the line-only series is one polyline
    assert len(list(root.iter(NS + "polyline"))) == 2


def test_log_axis_ticks_and_skipped_points():
    root = parse(accuracy_vs_size())
    labels = group_texts(root, "ticks")
    for want in ("2 KB", "5 KB", "10 KB", "20 KB", "50 KB", "100 KB", "200 KB", "500 KB"):
        assert want in labels
    assert "98 %" in labels and "92 %" in labels
    assert len(by_class(root, "pt")) == 6
    star = by_class(root, "pt")[-1]
    assert star.tag == NS + "polygon" and len(star.get("points", "").split()) == 10
    assert star.find(NS + "title").text == "prune80_int8"  # type: ignore[union-attr]

    # ticks are round numbers of KB because the formatter writes bytes (or when told so)
    forced = parse(
        xy_chart(
            [Series("s", [(2100, 1), (605224, 2)])],
            title="t",
            x_label="",
            y_label="",
            x_log=True,
            x_fmt=kb,
            x_tick_unit=1,
        )
    )
    assert "9.8 KB" in group_texts(forced, "ticks")
    plain = parse(
        xy_chart(
            [Series("s", [(2100, 1), (605224, 2)])],
            title="t",
            x_label="",
            y_label="",
            x_log=True,
            x_fmt=lambda v: f"{v:.0f}",
        )
    )
    assert {"10000", "100000"} <= set(group_texts(plain, "ticks"))

    # zeros and negatives cannot sit on a log axis: skipped, not a crash
    svg = xy_chart(
        [Series("s", [(0, 1), (-5, 2), (1, 3), (10, 4), (1000, 5)])],
        title="t",
        x_label="x",
        y_label="y",
        x_log=True,
    )
    root = parse(svg)
    assert len(by_class(root, "pt")) == 3
    labels = group_texts(root, "ticks")
    assert {"1", "10", "100", "1,000"} <= set(labels)
    # a wide span gets decades only, a narrow one more than two ticks
    wide = parse(
        xy_chart(
            [Series("s", [(1e-3, 1), (1e9, 2)])], title="t", x_label="", y_label="", x_log=True
        )
    )
    wide_labels = [t for t in group_texts(wide, "ticks") if "e" in t or t.isdigit()]
    assert "1e6" in wide_labels and "2e6" not in wide_labels
    narrow = parse(
        xy_chart(
            [Series("s", [(500e3, 1), (600e3, 2)])],
            title="t",
            x_label="",
            y_label="",
            x_log=True,
            x_fmt=kb,
            x_tick_unit=1024,
        )
    )
    assert len([t for t in group_texts(narrow, "ticks") if "KB" in t]) >= 3


def test_a_log_bytes_axis_is_not_stretched_to_a_less_round_label():
    # 84 KB .. 1.42 MB: ticks on 1024-multiples; stretching past 1000 KB would end on 1.95 MB
    svg = xy_chart(
        [Series("runs", [(86_400, 0.95), (1_490_000, 0.86)])],
        title="t",
        x_label="",
        y_label="",
        x_log=True,
        x_fmt=kb,
    )
    labels = group_texts(parse(svg), "ticks")
    assert "1000 KB" in labels and "1.95 MB" not in labels


def test_explicit_x_ticks_label_the_grid_on_a_short_log_axis():
    # clusters 4..16 span 0.6 decades: 1-2-5 ticks would stop at 10 and leave 16 unlabelled
    series = [Series("conv1", [(4, 1.4), (16, 0.0)], style="line+points")]
    auto = group_texts(
        parse(xy_chart(series, title="t", x_label="", y_label="", x_log=True)), "ticks"
    )
    assert "16" not in auto
    fixed = parse(
        xy_chart(series, title="t", x_label="", y_label="", x_log=True, x_ticks=[4, 8, 16, 0])
    )
    labels = group_texts(fixed, "ticks")
    assert "4" in labels and "8" in labels and "16" in labels


def test_budget_line_and_label():
    root = parse(accuracy_vs_size())
    (refs,) = by_class(root, "refs")
    dashed = [el for el in refs.iter(NS + "line") if el.get("stroke-dasharray")]
    assert len(dashed) == 1 and dashed[0].get("y1") == dashed[0].get("y2")
    assert [t.text for t in refs.iter(NS + "text")] == ["budget −1 pt"]
    # the label is right of the plot, the line spans it
    label = next(refs.iter(NS + "text"))
    assert float(label.get("x", 0)) > float(dashed[0].get("x2", 0))


def test_text_is_escaped():
    svg = xy_chart(
        [Series("a<b & c", [(1, 1), (2, 2)], tips=["<&>", '"q"'])],
        title="Title <&> here",
        x_label="x <",
        y_label="y &",
        hlines=[(1.5, "<budget>")],
    )
    assert "<&>" not in svg and "&lt;&amp;&gt;" in svg
    root = parse(svg)
    assert root[0].text == "Title <&> here" and root.get("aria-label") == "Title <&> here"
    texts = [el.text for el in root.iter(NS + "text")]
    assert "a<b & c" in texts and "<budget>" in texts and "x <" in texts


def forbidden(svg: str) -> list[str]:
    found = re.findall(r"url\(|href|<image|<script|<style|@import|<foreignObject", svg, re.I)
    found += [m for m in re.findall(r"https?:[^\s\"']*", svg) if m != "http://www.w3.org/2000/svg"]
    return found


def all_charts() -> list[str]:
    layers = ["conv2d", "dense", "a_very_long_layer_name_" * 4]
    return [
        accuracy_vs_size(),
        xy_chart([], title="empty", x_label="x", y_label="y"),
        bar_chart(layers, [("run", [0.5, None, 0.9])], title="bars", value_label="sparsity"),
        bar_chart([], [], title="no bars", value_label="v"),
    ]


def test_no_external_references_and_one_http_string():
    for svg in all_charts():
        assert forbidden(svg) == []
        assert svg.count("http") == 1
        assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and svg.endswith("</svg>")
    assert forbidden('<a href="x"/> url(#a) http://evil') == ["href", "url(", "http://evil"]


@pytest.mark.parametrize(
    "series",
    [
        [],
        [Series("empty", [])],
        [Series("nan", [(float("nan"), 1.0), (1.0, float("inf"))])],
        [Series("one", [(3.0, 0.5)])],
        [Series("flat", [(1.0, 0.7), (2.0, 0.7), (3.0, 0.7)], style="step")],
        [Series("same x", [(2.0, 0.1), (2.0, 0.9)], marker="no-such", style="no-such")],
        [Series("zero", [(0.0, 0.0), (0.0, 0.0)])],
        [Series("huge", [(1e300, -1e300), (-1e300, 1e300)])],
        [Series("tiny", [(1e-12, 1e-12), (2e-12, 3e-12)])],
    ],
)
@pytest.mark.parametrize("log", [False, True])
def test_degenerate_xy_inputs_do_not_crash(series, log):
    svg = xy_chart(
        series,
        title="t",
        x_label="x",
        y_label="y",
        x_log=log,
        y_log=log,
        hlines=[(float("nan"), "nan"), (0.5, "ref")],
        vlines=[(-1, "neg")],
        width=10,
        height=10,
    )
    root = parse(svg)
    finite = [
        (s.style, p)
        for s in series
        for p in s.points
        if all(math.isfinite(v) and (not log or v > 0) for v in p)
    ]
    marked = [p for style, p in finite if style not in ("line", "step")]  # lines have no markers
    assert len(by_class(root, "pt")) == len(marked)
    assert ("no data" in svg) == (not finite)


def test_y_range_clips_lines_and_points():
    svg = xy_chart(
        [Series("s", [(0, -10), (1, 0.5), (2, 10), (3, 0.2)], style="line+points")],
        title="t",
        x_label="x",
        y_label="y",
        y_range=(0, 1),
    )
    root = parse(svg)
    assert len(by_class(root, "pt")) == 2  # the two points inside the range
    axis = next(el for el in root.iter(NS + "path"))
    top, bottom = (float(v) for v in re.findall(r"M[\d.]+,([\d.]+) V([\d.]+)", axis.get("d"))[0])
    for line in root.iter(NS + "polyline"):
        for xy in line.get("points", "").split():
            assert top - 0.01 <= float(xy.split(",")[1]) <= bottom + 0.01


def test_bar_chart_gaps_truncation_and_height():
    names = [f"layer_{i}" for i in range(7)] + ["dense_with_an_extremely_long_name_" * 3]
    groups = [
        ("int8", [0.0] * 8),
        ("prune80", [0.8, 0.81, None, 0.8, float("nan"), 0.78, 0.8, 0.5]),
        ("best", [0.9, 0.6, 0.95]),  # short: the rest is missing
    ]
    svg = bar_chart(
        names,
        groups,
        title="Sparsity",
        value_label="zero weights",
        value_fmt=lambda v: f"{100 * v:.0f} %",
        max_value=1.0,
    )
    root = parse(svg)
    bars = by_class(root, "bar")
    assert len(bars) == 8 + 6 + 3
    bar_tips = [b.find(NS + "title").text for b in bars]  # type: ignore[union-attr]
    assert bar_tips[:4] == [
        "layer_0 — int8: 0 %",
        "layer_0 — prune80: 80 %",
        "layer_0 — best: 90 %",
        "layer_1 — int8: 0 %",
    ]
    assert svg.count(">n/a<") == 2 + 5
    texts = [el.text or "" for el in root.iter(NS + "text")]
    assert names[-1] not in texts and any(t.endswith("…") for t in texts)
    titles = [el.text for el in root.iter(NS + "title")]
    assert names[-1] in titles
    assert "100 %" in texts  # the axis ends at max_value
    h8 = float(root.get("height", 0))
    h2 = float(parse(bar_chart(names[:2], groups, title="t", value_label="v")).get("height", 0))
    assert h8 > h2 + 100
    # all values None: no data, no crash
    assert "no data" in bar_chart(names, [("r", [None] * 8)], title="t", value_label="v")
    assert "no data" in bar_chart(names, [], title="t", value_label="v")
    neg = parse(
        bar_chart(
            ["layer_a", "b"],
            [("r", [-0.2, 0.4])],
            title="t",
            value_label="v",
            value_fmt=lambda v: f"{v:+.3f} units",
        )
    )
    assert len(by_class(neg, "bar")) == 2
    (name,) = [t for t in neg.iter(NS + "text") if t.text == "layer_a"]
    (value,) = [t for t in neg.iter(NS + "text") if t.text == "-0.200 units"]
    value_left = float(value.get("x", 0)) - text_width("-0.200 units", 9.5)
    assert value.get("text-anchor") == "end" and value_left > float(name.get("x", 0))


def test_text_stays_inside_the_picture():
    long = "an extremely long label that will never fit in the space it is given " * 3
    charts = [
        xy_chart(
            [Series(long, [(1, 1), (2, 2)])],
            title=long,
            x_label=long,
            y_label=long,
            hlines=[(1.5, long)],
            vlines=[(1.2, long)],
            width=400,
            height=260,
        ),
        bar_chart(
            [long, "b"],
            [(long, [1.0, 2.0]), ("r2", [3.0, None])],
            title=long,
            value_label=long,
            width=400,
        ),
        bar_chart([long, "b"], [("r", [-12345.6, 3.0])], title="t", value_label="v", width=300),
        accuracy_vs_size(),
    ]
    for svg in charts:
        root = parse(svg)
        width = float(root.get("width", 0))
        height = float(root.get("height", 0))
        shift = {}  # the legend group is translated
        for g in root.iter(NS + "g"):
            m = re.match(r"translate\(([\d.]+) ([\d.]+)\)", g.get("transform", ""))
            for t in g.iter(NS + "text"):
                shift[id(t)] = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
        for t in root.iter(NS + "text"):
            dx, dy = shift.get(id(t), (0.0, 0.0))
            x, y = float(t.get("x", 0)) + dx, float(t.get("y", 0)) + dy
            w = text_width(
                t.text or "", float(t.get("font-size", 11)), t.get("font-weight") == "bold"
            )
            if "rotate" in t.get("transform", ""):
                x, y, w = y, x, w  # rotated: the extent runs along y
                lo, hi, limit = x - w / 2, x + w / 2, height
            else:
                anchor = t.get("text-anchor", "start")
                lo = x - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
                hi, limit = lo + w, width
                assert 0 <= y <= height, t.text
            assert -0.5 <= lo and hi <= limit + 0.5, (t.text, lo, hi, limit)


def test_output_is_deterministic():
    assert all_charts() == all_charts()
    a = xy_chart(
        [Series("s", [(0.1 * i, math.sin(i)) for i in range(50)], style="line")],
        title="t",
        x_label="x",
        y_label="y",
    )
    b = xy_chart(
        [Series("s", [(0.1 * i, math.sin(i)) for i in range(50)], style="line")],
        title="t",
        x_label="x",
        y_label="y",
    )
    assert a == b


def test_weasyprint_renders_the_charts(caplog):
    weasyprint = pytest.importorskip("weasyprint")
    caplog.set_level(logging.WARNING, logger="weasyprint")
    html = "<html><body>" + "".join(all_charts()) + "</body></html>"
    pdf = weasyprint.HTML(string=html).write_pdf()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
