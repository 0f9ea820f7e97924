"""Draw the accuracy-vs-compressed-size chart of a benchmark run (QPainter, no matplotlib).

    python benchmarks/chart.py benchmarks/results.json benchmarks/accuracy_vs_size.png

One point per run (rows "engine" and "plain, tfmot guide defaults"): x = gzip size of the
compressed ``.tflite`` (KiB, log scale), y = test
accuracy of the ``.tflite`` (%). Filled circles: Featherweight engine; hollow squares: the
hand-written tfmot script; one colour per recipe; black cross: the float32 baseline.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
W, H = 1000, 640
LEFT, RIGHT, TOP, BOTTOM = 80, 250, 50, 70


def draw(results: dict, path: str | Path) -> None:
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QImage, QPainter, QPen

    _app = QGuiApplication.instance() or QGuiApplication(["chart"])
    section = results.get("compare", results)  # results.json schema 2 keeps runs in "compare"
    # The two main rows: engine (empty baseline cache) and plain (tfmot guide defaults).
    runs = [r for r in section["runs"] if r["side"] in ("engine", "plain")]
    recipes = section["recipes"]
    kib = [r["tflite_gzip_bytes"] / 1024 for r in runs] + [
        r["baseline_gzip_bytes"] / 1024 for r in runs
    ]
    acc = [r["accuracy"] * 100 for r in runs] + [r["baseline_accuracy"] * 100 for r in runs]
    x0, x1 = math.log10(min(kib) * 0.8), math.log10(max(kib) * 1.25)
    y0 = math.floor((min(acc) - 0.25) * 2) / 2
    y1 = math.ceil((max(acc) + 0.25) * 2) / 2
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def pt(k: float, a: float) -> QPointF:
        return QPointF(
            LEFT + (math.log10(k) - x0) / (x1 - x0) * pw, TOP + (y1 - a) / (y1 - y0) * ph
        )

    img = QImage(W, H, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    font.setPixelSize(13)
    p.setFont(font)
    grid = QPen(QColor("#dddddd"))
    axis = QPen(QColor("#333333"))
    # y grid and labels
    step = 0.5 if y1 - y0 <= 4 else 1.0 if y1 - y0 <= 10 else 2.0
    y = y0
    while y <= y1 + 1e-9:
        a, b = pt(10**x0, y), pt(10**x1, y)
        p.setPen(grid)
        p.drawLine(a, b)
        p.setPen(axis)
        p.drawText(QRectF(0, a.y() - 9, LEFT - 8, 18), Qt.AlignmentFlag.AlignRight, f"{y:g}")
        y += step
    # x grid: 1-2-5 ticks
    for dec in range(int(math.floor(x0)), int(math.ceil(x1)) + 1):
        for m in (1, 2, 3, 5):
            v = m * 10**dec
            if not (x0 <= math.log10(v) <= x1):
                continue
            a, b = pt(v, y0), pt(v, y1)
            p.setPen(grid)
            p.drawLine(a, b)
            p.setPen(axis)
            p.drawText(
                QRectF(a.x() - 30, a.y() + 4, 60, 18), Qt.AlignmentFlag.AlignHCenter, f"{v:g}"
            )
    p.setPen(axis)
    p.drawRect(QRectF(LEFT, TOP, pw, ph))
    p.drawText(
        QRectF(LEFT, H - 35, pw, 20),
        Qt.AlignmentFlag.AlignHCenter,
        "compressed .tflite, gzip -9 (KiB, log scale)",
    )
    p.save()
    p.translate(18, TOP + ph / 2)
    p.rotate(-90)
    p.drawText(QRectF(-150, -10, 300, 20), Qt.AlignmentFlag.AlignHCenter, "test accuracy (%)")
    p.restore()
    title = QFont(font)
    title.setPixelSize(15)
    title.setBold(True)
    p.setFont(title)
    p.drawText(
        QRectF(LEFT, 12, pw, 24),
        Qt.AlignmentFlag.AlignHCenter,
        f"Accuracy vs size: Featherweight vs hand-written tfmot ({len(section['seeds'])} seed(s))",
    )
    p.setFont(font)
    # baseline
    seen = set()
    for r in runs:
        key = (r["baseline_gzip_bytes"], r["baseline_accuracy"])
        if key in seen:
            continue
        seen.add(key)
        c = pt(r["baseline_gzip_bytes"] / 1024, r["baseline_accuracy"] * 100)
        p.setPen(QPen(QColor("black"), 2))
        p.drawLine(c + QPointF(-6, -6), c + QPointF(6, 6))
        p.drawLine(c + QPointF(-6, 6), c + QPointF(6, -6))
    # Engine points first, then the hollow plain squares on top (both stay visible).
    for side in ("engine", "plain"):
        for i, name in enumerate(recipes):
            color = QColor(COLORS[i % len(COLORS)])
            for r in runs:
                if r["recipe"] != name or r["side"] != side:
                    continue
                c = pt(r["tflite_gzip_bytes"] / 1024, r["accuracy"] * 100)
                if side == "engine":
                    p.setPen(QPen(color.darker(130), 1))
                    p.setBrush(QBrush(color))
                    p.drawEllipse(c, 5, 5)
                else:
                    p.setPen(QPen(color, 2))
                    p.setBrush(Qt.BrushStyle.NoBrush)
                    p.drawRect(QRectF(c.x() - 8, c.y() - 8, 16, 16))
    # legend
    lx, ly = W - RIGHT + 20, TOP + 10
    p.setPen(axis)
    for i, name in enumerate(recipes):
        color = QColor(COLORS[i % len(COLORS)])
        p.setPen(QPen(color, 1))
        p.setBrush(QBrush(color))
        p.drawEllipse(QPointF(lx + 6, ly + 8), 5, 5)
        p.setPen(axis)
        p.drawText(QRectF(lx + 18, ly, RIGHT - 40, 18), Qt.AlignmentFlag.AlignLeft, name)
        ly += 22
    ly += 10
    p.setPen(QPen(QColor("#555555"), 1))
    p.setBrush(QBrush(QColor("#555555")))
    p.drawEllipse(QPointF(lx + 6, ly + 8), 5, 5)
    p.setPen(axis)
    p.drawText(QRectF(lx + 18, ly, RIGHT - 40, 18), Qt.AlignmentFlag.AlignLeft, "Featherweight")
    ly += 22
    p.setPen(QPen(QColor("#555555"), 2))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(QRectF(lx + 1, ly + 3, 10, 10))
    p.setPen(axis)
    p.drawText(
        QRectF(lx + 18, ly, RIGHT - 40, 18), Qt.AlignmentFlag.AlignLeft, "plain tfmot script"
    )
    ly += 22
    p.setPen(QPen(QColor("black"), 2))
    p.drawLine(QPointF(lx + 1, ly + 3), QPointF(lx + 11, ly + 13))
    p.drawLine(QPointF(lx + 1, ly + 13), QPointF(lx + 11, ly + 3))
    p.setPen(axis)
    p.drawText(QRectF(lx + 18, ly, RIGHT - 40, 18), Qt.AlignmentFlag.AlignLeft, "float32 baseline")
    p.end()
    if not img.save(str(path)):
        raise OSError(f"could not write {path}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: chart.py RESULTS.json OUT.png", file=sys.stderr)
        return 2
    draw(json.loads(Path(args[0]).read_text()), args[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
