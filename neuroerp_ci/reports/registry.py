"""The report formats: the file name written into a run's folder -> its renderer.

A new format is one new module (a pure ``StageReport -> str`` function) plus one line here.
"""

from __future__ import annotations

from neuroerp_ci.reports.interface import Renderer
from neuroerp_ci.reports.json_report import render_json, render_samples
from neuroerp_ci.reports.junit import render_junit
from neuroerp_ci.reports.markdown import render_markdown
from neuroerp_ci.reports.sarif import render_sarif
from neuroerp_ci.reports.sbom import render_sbom

RENDERERS: dict[str, Renderer] = {
    "report.json": render_json,
    "samples.json": render_samples,
    "report.md": render_markdown,
    "junit.xml": render_junit,
    "report.sarif": render_sarif,
    "bom.cdx.json": render_sbom,
}
