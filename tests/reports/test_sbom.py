"""``bom.cdx.json``: valid by CycloneDX's own strict validator, with the promised contents."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

import neuroerp_ci.reports.sbom as sbom
from neuroerp_ci import __version__
from neuroerp_ci.model import (
    BaselineState,
    CheckResult,
    CheckStatus,
    Component,
    Finding,
    FindingSeverity,
    StageReport,
    Verdict,
    WaiverRef,
)
from neuroerp_ci.reports.sbom import NOTE, render_sbom

WAIVER = WaiverRef("W-9", "only used in the build", "platform-team", "2027-03-31")


def _audit() -> CheckResult:
    return CheckResult(
        check_id="deps",
        kind="pip-audit",
        status=CheckStatus.OK,
        findings=[
            Finding(
                "pip-audit",
                "PYSEC-2021-108",
                FindingSeverity.UNKNOWN,
                "Jinja2 sandbox escape",
                "jinja2==2.11.2",
                fix_versions=("2.11.3", "3.0.0"),
                aliases=("GHSA-62gr-4qp9-h98f", "CVE-2020-28493"),
                baseline_state=BaselineState.NEW,
            ),
            # No check listed urllib3: the BOM gets a component for it.
            Finding(
                "pip-audit",
                "PYSEC-2023-192",
                FindingSeverity.MEDIUM,
                "Cookie leak",
                "urllib3==1.26.5",
            ),
        ],
        waived=[
            Finding(
                "pip-audit",
                "GHSA-j8r2-6x86-q33q",
                FindingSeverity.CRITICAL,
                "Proxy leak",
                "Requests==2.19.0",
                fix_versions=("2.31.0",),
                waiver=WAIVER,
            )
        ],
        absent=[  # fixed since the baseline run: not a vulnerability of this one
            Finding("pip-audit", "PYSEC-2020-1", FindingSeverity.HIGH, "Old", "pyyaml==5.3")
        ],
        components=[
            Component("Jinja2", "2.11.2", "pkg:pypi/jinja2@2.11.2", "BSD-3-Clause", "BSD"),
            Component("requests", "2.19.0", "pkg:pypi/requests@2.19.0"),
        ],
    )


def _licenses() -> CheckResult:
    return CheckResult(
        check_id="licences",
        kind="licenses",
        status=CheckStatus.OK,
        findings=[Finding("licenses", "denied", FindingSeverity.HIGH, "GPL-3.0", "gplthing==1.0")],
        components=[
            # The same distribution as the audit's (dedupe by purl); this copy knows more.
            Component("requests", "2.19.0", "pkg:pypi/requests@2.19.0", "Apache-2.0"),
            Component("oddlib", "0.1", "pkg:pypi/oddlib@0.1", "", "Custom Licence v2"),
            Component("nolicence", "1.0", "pkg:pypi/nolicence@1.0"),
            Component("gplthing", "1.0", "", "GPL-3.0-or-later OR MIT"),
        ],
    )


def _report(checks: list[CheckResult], run_id: str = "20261128T104501Z-3f9a2c") -> StageReport:
    return StageReport(
        run_id=run_id,
        stage="staging",
        version="1.4.2",
        target="valeo-neuroerp",
        verdict=Verdict.FAIL,
        started_at="2026-11-28T10:45:01Z",
        finished_at="2026-11-28T10:47:13Z",
        duration_s=132.0,
        checks=checks,
        outcomes=[],
        tested={"sha": "3f9a2c1e4b5d" * 3},
    )


@pytest.fixture
def report() -> StageReport:
    bandit = CheckResult(
        "bandit",
        "bandit",
        CheckStatus.OK,
        findings=[Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "app/run.py:12")],
    )
    return _report([bandit, _audit(), _licenses()])


@pytest.fixture(scope="module")
def strict() -> JsonStrictValidator:
    return JsonStrictValidator(SchemaVersion.V1_6)


def _bom(report: StageReport) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_sbom(report))
    return document


def _components(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in document.get("components", [])}


def _vulnerability(document: dict[str, Any], advisory: str) -> dict[str, Any]:
    (found,) = [v for v in document["vulnerabilities"] if v["id"] == advisory]
    return found


def _properties(item: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in item.get("properties", [])}


def test_the_bom_passes_the_strict_validator(
    strict: JsonStrictValidator, report: StageReport
) -> None:
    text = render_sbom(report)
    assert strict.validate_str(text) is None
    assert text.endswith("\n")
    document = json.loads(text)
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")


def test_every_sample_report_gives_a_valid_bom(
    strict: JsonStrictValidator, any_report: StageReport
) -> None:
    assert strict.validate_str(render_sbom(any_report)) is None


def test_metadata_describes_the_target_and_the_run(report: StageReport) -> None:
    document = _bom(report)
    metadata = document["metadata"]
    assert metadata["timestamp"] == "2026-11-28T10:47:13+00:00"  # finished_at, not the clock
    target = metadata["component"]
    assert (target["type"], target["name"], target["version"]) == (
        "application",
        "valeo-neuroerp",
        "1.4.2",
    )
    assert _properties(target)["neuroerp-ci:commit"] == "3f9a2c1e4b5d" * 3
    (tool,) = metadata["tools"]["components"]
    assert (tool["name"], tool["version"]) == ("neuroerp-ci", __version__)
    assert _properties(metadata)["neuroerp-ci:run-id"] == report.run_id
    assert NOTE not in _properties(metadata)


def test_the_serial_number_comes_from_the_run_id(report: StageReport) -> None:
    serial = _bom(report)["serialNumber"]
    assert uuid.UUID(serial.removeprefix("urn:uuid:")).version == 5
    assert _bom(report)["serialNumber"] == serial
    assert _bom(_report(report.checks, run_id="20261128T110000Z-000000"))["serialNumber"] != serial


def test_components_are_the_union_of_the_checks_once_per_purl(report: StageReport) -> None:
    components = _components(_bom(report))
    assert set(components) == {
        "pkg:pypi/jinja2@2.11.2",
        "pkg:pypi/requests@2.19.0",
        "pkg:pypi/oddlib@0.1",
        "pkg:pypi/nolicence@1.0",
        "pkg:pypi/gplthing@1.0",  # a purl made from name and version
        "pkg:pypi/urllib3@1.26.5",  # named by a finding only
    }
    for ref, component in components.items():
        assert component["purl"] == ref
    requests = components["pkg:pypi/requests@2.19.0"]
    assert requests["licenses"] == [{"expression": "Apache-2.0"}]  # the copy that knew it
    assert _properties(requests)["neuroerp-ci:listed-by"] == "deps, licences"
    assert "no check listed it" in _properties(components["pkg:pypi/urllib3@1.26.5"])[NOTE]


def test_licences_expression_declared_or_none(report: StageReport) -> None:
    components = _components(_bom(report))
    assert components["pkg:pypi/gplthing@1.0"]["licenses"] == [
        {"expression": "GPL-3.0-or-later OR MIT"}
    ]
    assert components["pkg:pypi/oddlib@0.1"]["licenses"] == [
        {"license": {"name": "Custom Licence v2"}}
    ]
    assert "licenses" not in components["pkg:pypi/nolicence@1.0"]  # unknown: nothing claimed
    jinja = components["pkg:pypi/jinja2@2.11.2"]
    assert _properties(jinja)["neuroerp-ci:license-declared"] == "BSD"


def test_every_pip_audit_finding_is_a_vulnerability(report: StageReport) -> None:
    document = _bom(report)
    ids = sorted(v["id"] for v in document["vulnerabilities"])
    # Counted and waived ones; not the absent one, not bandit's or the licence check's.
    assert ids == ["GHSA-j8r2-6x86-q33q", "PYSEC-2021-108", "PYSEC-2023-192"]
    jinja = _vulnerability(document, "PYSEC-2021-108")
    assert jinja["source"] == {
        "name": "OSV",
        "url": "https://osv.dev/vulnerability/PYSEC-2021-108",
    }
    assert jinja["description"] == "Jinja2 sandbox escape"
    assert jinja["ratings"] == [{"severity": "unknown"}]
    assert jinja["recommendation"] == "Upgrade jinja2 to a fixed version: 2.11.3, 3.0.0."
    assert {(r["id"], r["source"]["url"]) for r in jinja["references"]} == {
        ("CVE-2020-28493", "https://nvd.nist.gov/vuln/detail/CVE-2020-28493"),
        ("GHSA-62gr-4qp9-h98f", "https://github.com/advisories/GHSA-62gr-4qp9-h98f"),
    }
    assert "analysis" not in jinja  # counted: no analysis is claimed
    assert _properties(jinja)["neuroerp-ci:baseline-state"] == "new"
    assert _properties(jinja)["neuroerp-ci:fingerprint"] == _audit().findings[0].identity


def test_affects_refer_to_components_of_the_bom(report: StageReport) -> None:
    document = _bom(report)
    refs = set(_components(document)) | {document["metadata"]["component"]["bom-ref"]}
    affected = {
        v["id"]: [(a["ref"], a["versions"]) for a in v["affects"]]
        for v in document["vulnerabilities"]
    }
    assert affected == {
        "PYSEC-2021-108": [
            ("pkg:pypi/jinja2@2.11.2", [{"version": "2.11.2", "status": "affected"}])
        ],
        "PYSEC-2023-192": [
            ("pkg:pypi/urllib3@1.26.5", [{"version": "1.26.5", "status": "affected"}])
        ],
        # "Requests==2.19.0" finds the component "requests": names compare normalised.
        "GHSA-j8r2-6x86-q33q": [
            ("pkg:pypi/requests@2.19.0", [{"version": "2.19.0", "status": "affected"}])
        ],
    }
    for dependency in document["dependencies"]:
        assert dependency["ref"] in refs
        assert set(dependency.get("dependsOn", [])) <= refs
    (root,) = [d for d in document["dependencies"] if d["ref"] == "target"]
    assert set(root["dependsOn"]) == set(_components(document))


def test_a_waived_advisory_is_in_triage_with_the_waiver(report: StageReport) -> None:
    waived = _vulnerability(_bom(report), "GHSA-j8r2-6x86-q33q")
    analysis = waived["analysis"]
    assert analysis["state"] == "in_triage"  # a waiver accepts a risk; it does not disprove it
    assert "justification" not in analysis
    for said in ("W-9", "only used in the build", "platform-team", "2027-03-31"):
        assert said in analysis["detail"]


def test_without_components_the_bom_says_so(strict: JsonStrictValidator) -> None:
    text = render_sbom(_report([CheckResult("unit", "pytest", CheckStatus.OK)]))
    assert strict.validate_str(text) is None
    document = json.loads(text)
    assert "components" not in document
    assert "vulnerabilities" not in document
    assert _properties(document["metadata"])[NOTE] == "no check listed the environment's components"


def test_findings_without_a_listed_environment_still_get_components(
    strict: JsonStrictValidator,
) -> None:
    audit = _audit()
    audit.components = []
    text = render_sbom(_report([audit]))
    assert strict.validate_str(text) is None
    document = json.loads(text)
    assert "findings named" in _properties(document["metadata"])[NOTE]
    assert set(_components(document)) == {
        "pkg:pypi/jinja2@2.11.2",
        "pkg:pypi/urllib3@1.26.5",
        "pkg:pypi/requests@2.19.0",
    }


def test_the_text_is_deterministic(report: StageReport) -> None:
    text = render_sbom(report)
    assert render_sbom(report) == text
    reordered = _report([report.checks[2], report.checks[1], report.checks[0]])
    document, again = json.loads(text), json.loads(render_sbom(reordered))
    assert again["components"] == document["components"]
    assert again["vulnerabilities"] == document["vulnerabilities"]


def test_a_bom_that_does_not_validate_raises(
    monkeypatch: pytest.MonkeyPatch, report: StageReport
) -> None:
    class Broken(JsonV1Dot6):
        def output_as_string(self, *, indent: int | str | None = None, **kwargs: Any) -> str:
            return super().output_as_string(indent=indent).replace('"in_triage"', '"waived"')

    monkeypatch.setattr(sbom, "JsonV1Dot6", Broken)
    with pytest.raises(ValueError, match=r"bom\.cdx\.json is not valid CycloneDX 1\.6"):
        render_sbom(report)


def test_rendering_does_not_change_the_report(report: StageReport) -> None:
    before = report.to_dict()
    render_sbom(report)
    assert report.to_dict() == before
