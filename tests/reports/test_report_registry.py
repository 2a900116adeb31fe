from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import neuroerp_ci.reports as reports
from neuroerp_ci.model import StageReport
from neuroerp_ci.reports import RENDERERS


def test_registry_names_the_files_a_run_writes() -> None:
    assert set(RENDERERS) == {
        "report.json",
        "samples.json",
        "report.md",
        "junit.xml",
        "report.sarif",
        "bom.cdx.json",
        "report.html",
    }


def test_every_renderer_renders_every_sample_report(any_report: StageReport) -> None:
    for name, render in RENDERERS.items():
        text = render(any_report)
        assert isinstance(text, str)
        assert text.endswith("\n"), name
        assert text == render(any_report), f"{name} is not deterministic"
        if name.endswith((".json", ".sarif")):
            json.loads(text)
        elif name.endswith(".xml"):
            ET.fromstring(text)
        else:
            assert any_report.verdict.value in text


def test_renderers_do_not_change_the_report(fail_report: StageReport) -> None:
    before = fail_report.to_dict()
    for render in RENDERERS.values():
        render(fail_report)
    assert fail_report.to_dict() == before


def test_public_names_exist() -> None:
    assert all(hasattr(reports, name) for name in reports.__all__)
