"""The report formats: the file name written into a run's folder -> its renderer.

A new format is one new module (a pure ``StageReport -> str`` function) plus one line here.
``report.html`` is drawn best with a :class:`~neuroerp_ci.reports.context.ReportContext`
(trends, timelines, links), which the run layer reads and binds in (``run.runner``).
"""

from __future__ import annotations

from neuroerp_ci.reports.html import render_html
from neuroerp_ci.reports.interface import Renderer
from neuroerp_ci.reports.json_report import render_json, render_samples
from neuroerp_ci.reports.junit import render_junit
from neuroerp_ci.reports.markdown import render_markdown
from neuroerp_ci.reports.sarif import render_sarif
from neuroerp_ci.reports.sbom import render_sbom

HTML_PAGE = "report.html"

RENDERERS: dict[str, Renderer] = {
    "report.json": render_json,
    "samples.json": render_samples,
    "report.md": render_markdown,
    "junit.xml": render_junit,
    "report.sarif": render_sarif,
    "bom.cdx.json": render_sbom,
    HTML_PAGE: render_html,
}

# Every format but the page: what is written while the run is not recorded yet.
WITHOUT_PAGE: dict[str, Renderer] = {k: v for k, v in RENDERERS.items() if k != HTML_PAGE}
