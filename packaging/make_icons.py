"""Render resources/icons/featherweight.svg into the icon files desktops use.

Writes featherweight-<N>.png for N in SIZES, featherweight.ico (Windows) and
featherweight.icns (macOS) next to the SVG. Needs PySide6 (QtSvg) and Pillow; Pillow is a
build-time tool only, not a runtime dependency. Run: python packaging/make_icons.py
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SVG = ICONS / "featherweight.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def render_png(size: int) -> bytes:
    """The SVG rendered to a square PNG of ``size`` pixels, transparent background."""
    from PySide6.QtCore import QBuffer, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return bytes(buf.data())


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    images = {}
    for size in SIZES:
        data = render_png(size)
        (ICONS / f"featherweight-{size}.png").write_bytes(data)
        images[size] = Image.open(io.BytesIO(data)).convert("RGBA")
    # Pillow resizes from the base image for every requested size; give it the 256 px render.
    images[256].save(
        ICONS / "featherweight.ico", sizes=[(s, s) for s in (16, 32, 48, 64, 128, 256)]
    )
    images[512].save(ICONS / "featherweight.icns")
    for path in sorted(ICONS.iterdir()):
        print(f"{path.stat().st_size:>8}  {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
