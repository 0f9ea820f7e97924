"""Pictures of the shareable report (issue 16) into docs/screenshots, to look at:

- ``report-html-N.png``: the HTML report in headless Chromium (Debian's ``chromium``), one
  full-width screenshot cut into screen-high pieces;
- ``report-pdf-N.png``: the PDF's pages (``pdftoppm``).

It writes the report of a project with the real command line, offline (Chromium is started
with every background-network feature off)::

    python tests/make_report_screenshots.py [PROJECT.fwproj]   # default: the test sample

The default project is tests/data/report_sample (two runs, a sensitivity analysis and a
search on the demo; ``benchmarks/report_sample.py`` makes it). Not run in CI: Chromium and
poppler-utils are not CI packages. Look at every picture after running it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
SAMPLE = ROOT / "tests" / "data" / "report_sample" / "demo.fwproj"
WIDTH, PIECE = 1280, 1500
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def html_pieces(html: Path, work: Path, max_pieces: int) -> list[Path]:
    """Screenshot ``html`` at WIDTH x a tall window, trim the empty bottom, cut in pieces."""
    from PIL import Image, ImageChops

    tall = work / "tall.png"
    subprocess.run(
        [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={work / 'profile'}",
            f"--window-size={WIDTH},{PIECE * max_pieces}",
            f"--screenshot={tall}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    img = Image.open(tall).convert("RGB")
    bg = Image.new("RGB", img.size, img.getpixel((img.width - 1, img.height - 1)))
    box = ImageChops.difference(img, bg).getbbox()
    if box:
        img = img.crop((0, 0, img.width, min(img.height, box[3] + 40)))
    out = []
    for i, top in enumerate(range(0, img.height, PIECE)):
        piece = img.crop((0, top, img.width, min(img.height, top + PIECE)))
        path = OUT / f"report-html-{i + 1}.png"
        piece.save(path, optimize=True)
        out.append(path)
    return out


def pdf_pages(pdf: Path, work: Path) -> list[Path]:
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", str(pdf), str(work / "page")],
        check=True,
        capture_output=True,
    )
    out = []
    for i, page in enumerate(sorted(work.glob("page-*.png"))):
        path = OUT / f"report-pdf-{i + 1}.png"
        shutil.copyfile(page, path)
        out.append(path)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("project", nargs="?", default=str(SAMPLE))
    ap.add_argument("--max-html-pieces", type=int, default=8)
    args = ap.parse_args()
    for old in OUT.glob("report-html-*.png"):
        old.unlink()
    for old in OUT.glob("report-pdf-*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        project = work / "project"
        shutil.copytree(Path(args.project).parent, project)
        html, pdf = work / "report.html", work / "report.pdf"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "engine",
                "report",
                str(project / Path(args.project).name),
                "--html",
                str(html),
                "--pdf",
                str(pdf),
            ],
            check=True,
            cwd=ROOT,
        )
        pieces = html_pieces(html, work, args.max_html_pieces)
        pages = pdf_pages(pdf, work)
    for p in pieces + pages:
        print(p.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
