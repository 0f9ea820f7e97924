"""Is the frozen app's report the same as the source tree's?  (packaging/check-bundle)

    python same_report.py FROZEN.html PROJECT.fwproj

Renders the report of PROJECT with the engine of this Python (the build venv: the source
tree) and compares it with FROZEN.html: the embedded source documents (``<script
id="featherweight-data">``, the ``sources`` of the report document) and every number shown
(each element with ``data-field``: its source, field, formatter and text) must be equal.
Dates and the generator's versions may differ, and so may the path of the built-in demo
model (each installation has its own resources/ folder). Exit 0 when equal, 1 with the
first differences.
"""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser
from pathlib import Path


class _Numbers(HTMLParser):
    """Collects (data-src, data-field, data-fmt, text) of every shown number and the data."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.numbers: list[tuple[str, str, str, str]] = []
        self.data_text = ""
        self._open: list[list[str]] = []  # [src, field, fmt, text, tag] of open numbers
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("id") == "featherweight-data":
            self._in_data = True
        if a.get("data-field") is not None:
            self._open.append(
                [a.get("data-src") or "", a["data-field"] or "", a.get("data-fmt") or "", "", tag]
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False
        if self._open and self._open[-1][4] == tag:
            src, field, fmt, text, _ = self._open.pop()
            self.numbers.append((src, field, fmt, " ".join(text.split())))

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data_text += data
        for entry in self._open:
            entry[3] += data


def _parse(html: str) -> _Numbers:
    p = _Numbers()
    p.feed(html)
    p.close()
    return p


def main(frozen_html: str, project: str) -> int:
    from engine.report import collect, render_html

    frozen = _parse(Path(frozen_html).read_text(encoding="utf-8"))
    here = _parse(render_html(collect(project)))
    problems = []
    frozen_data, here_data = json.loads(frozen.data_text), json.loads(here.data_text)
    for data in (frozen_data, here_data):  # "demo" is resources/demo/... of each installation
        if isinstance(data.get("model"), dict):
            data["model"].pop("path", None)
    if frozen_data != here_data:
        problems.append("the embedded source documents differ")
    if not here.numbers:
        problems.append("the source tree's report shows no numbers")
    if frozen.numbers != here.numbers:
        diff = [(a, b) for a, b in zip(frozen.numbers, here.numbers) if a != b]
        problems.append(
            f"{len(frozen.numbers)} numbers shown by the frozen app, {len(here.numbers)} by the "
            f"source tree; first differences: {diff[:3]}"
        )
    for p in problems:
        print(f"same_report: {p}", file=sys.stderr)
    if not problems:
        print(f"same_report: {len(here.numbers)} numbers and the embedded data are equal")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
