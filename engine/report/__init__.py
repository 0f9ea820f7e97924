"""Shareable reports: one self-contained HTML file (and a PDF of it) per project, run folder,
search folder or ``.tflite``.

``collect(path)`` / ``collect_project(project)`` build the report document from saved files
(engine.report.collect); ``render_html(doc)`` / ``write_html(doc, path)`` turn it into HTML
(engine.report.html, Jinja2 templates in ``templates/``, inline SVG charts from
engine.report.svg). No Qt; TensorFlow only when a Keras model is inspected.
"""

from __future__ import annotations

from engine.report.collect import REPORT_KIND, REPORT_SCHEMA_VERSION, collect, collect_project
from engine.report.html import render_html, write_html

__all__ = [
    "REPORT_KIND",
    "REPORT_SCHEMA_VERSION",
    "collect",
    "collect_project",
    "render_html",
    "write_html",
]
