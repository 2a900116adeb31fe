"""Report formats: one pure renderer per file (report -> text) and the one writer.

``RENDERERS`` maps the file name written into a run's directory to its renderer; a new format
is one new module plus one line in :mod:`.registry`.
"""

from __future__ import annotations

from neuroerp_ci.reports.interface import Renderer
from neuroerp_ci.reports.json_report import (
    SCHEMA_VERSION,
    render_json,
    render_samples,
    report_from_dict,
    report_to_dict,
    samples_to_dict,
)
from neuroerp_ci.reports.junit import render_junit
from neuroerp_ci.reports.markdown import markdown_summary, outcome_rows, render_markdown
from neuroerp_ci.reports.registry import RENDERERS
from neuroerp_ci.reports.writer import default_output_dir, new_run_id, write_reports

__all__ = [
    "RENDERERS",
    "SCHEMA_VERSION",
    "Renderer",
    "default_output_dir",
    "markdown_summary",
    "new_run_id",
    "outcome_rows",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_samples",
    "report_from_dict",
    "report_to_dict",
    "samples_to_dict",
    "write_reports",
]
