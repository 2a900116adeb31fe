"""``report.sarif``: valid against the official SARIF 2.1.0 schema, and every field it promises."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

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
from neuroerp_ci.reports.sarif import FINGERPRINT_KEY, render_sarif, sarif_level

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"
SARIF_SCHEMA = SCHEMAS / "sarif-schema-2.1.0.json"

WAIVER = WaiverRef("W-7", "subprocess input is a constant", "platform-team", "2027-03-31")
EXPIRED = WaiverRef("W-2", "legacy loader", "data-team", "2026-01-31", expired=True)


def _bandit() -> CheckResult:
    return CheckResult(
        check_id="bandit",
        kind="bandit",
        status=CheckStatus.OK,
        findings=[
            Finding(
                "bandit",
                "B602",
                FindingSeverity.HIGH,
                "subprocess call with shell=True",
                "app/run.py:12",
                confidence="high",
                fingerprint="b602-run",
                help_url="https://bandit.readthedocs.io/en/latest/plugins/b602.html",
                baseline_state=BaselineState.NEW,
            ),
            Finding(
                "bandit",
                "B101",
                FindingSeverity.LOW,
                "Use of assert detected",
                "app/my file ü.py:3",
                baseline_state=BaselineState.UNCHANGED,
            ),
            Finding(
                "bandit",
                "B301",
                FindingSeverity.MEDIUM,
                "Pickle is unsafe",
                "app/load.py:20",
                waiver=EXPIRED,
                baseline_state=BaselineState.UPDATED,
            ),
        ],
        waived=[
            Finding(
                "bandit",
                "B603",
                FindingSeverity.LOW,
                "subprocess without shell",
                "app/run.py:30",
                waiver=WAIVER,
                baseline_state=BaselineState.UNCHANGED,
            )
        ],
        suppressed=[
            Finding("bandit", "B105", FindingSeverity.LOW, "Possible password", "app/cfg.py:7")
        ],
        absent=[
            Finding(
                "bandit",
                "B608",
                FindingSeverity.MEDIUM,
                "SQL built from strings",
                "app/old.py:40",
                baseline_state=BaselineState.ABSENT,
            )
        ],
        tool_versions={"bandit": "1.9.4"},
    )


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
                fix_versions=("2.11.3",),
                aliases=("CVE-2020-28493",),
            )
        ],
        waived=[
            Finding(
                "pip-audit",
                "GHSA-j8r2-6x86-q33q",
                FindingSeverity.CRITICAL,
                "Proxy leak",
                "requests==2.19.0",
                fix_versions=("2.31.0",),
                waiver=WAIVER,
            )
        ],
        tool_versions={"pip-audit": "2.9.0", "advisory-data": "2026-11-20"},
        components=[Component("Jinja2", "2.11.2", "pkg:pypi/jinja2@2.11.2", "BSD-3-Clause")],
    )


def _secrets() -> CheckResult:
    return CheckResult(
        check_id="secrets",
        kind="secrets",
        status=CheckStatus.ERROR,
        reason="detect-secrets exited 2: \x1b[31mcannot read\x1b[0m docs/x.bin",
        findings=[
            Finding(
                "detect-secrets",
                "secret-keyword",
                FindingSeverity.HIGH,
                "Secret Keyword",
                "config/settings.py:8",
            ),
            Finding(  # found in the scanned history: the file at that line is the commit's
                "detect-secrets",
                "private-key",
                FindingSeverity.HIGH,
                "Private Key",
                "deploy/key.pem:1 (commit abc1234)",
            ),
        ],
        suppressed=[
            Finding(
                "detect-secrets",
                "aws-access-key",
                FindingSeverity.HIGH,
                "AWS Access Key",
                "tests/fixtures.py:2",
            )
        ],
    )


def _licenses() -> CheckResult:
    return CheckResult(
        check_id="licences",
        kind="licenses",
        status=CheckStatus.OK,
        components=[Component("Jinja2", "2.11.2", "pkg:pypi/jinja2@2.11.2", "BSD-3-Clause")],
    )


def _report(checks: list[CheckResult]) -> StageReport:
    return StageReport(
        run_id="20261128T104501Z-3f9a2c",
        stage="development",
        version="1.4.2",
        target="valeo-neuroerp",
        verdict=Verdict.FAIL,
        started_at="2026-11-28T10:45:01Z",
        finished_at="2026-11-28T10:47:13Z",
        duration_s=132.0,
        checks=checks,
        outcomes=[],
        tested={"sha": "3f9a2c1e4b5d" * 3, "source": "git HEAD"},
    )


def _unit_tests() -> CheckResult:
    return CheckResult("unit-tests", "pytest", CheckStatus.OK, tool_versions={"pytest": "9.0"})


@pytest.fixture
def report() -> StageReport:
    return _report([_unit_tests(), _bandit(), _audit(), _secrets(), _licenses()])


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"the SARIF schema is not at {SARIF_SCHEMA} (../shared/schemas)")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)  # the draft its "$schema" names: 4
    assert cls is jsonschema.Draft4Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _sarif(report: StageReport) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render_sarif(report))
    return document


def _run(document: dict[str, Any], tool: str) -> dict[str, Any]:
    (run,) = [r for r in document["runs"] if r["tool"]["driver"]["name"] == tool]
    return run


def _result(run: dict[str, Any], rule: str) -> dict[str, Any]:
    (result,) = [r for r in run["results"] if r["ruleId"] == rule]
    return result


def _assert_valid(validator: jsonschema.protocols.Validator, text: str) -> None:
    errors = sorted(validator.iter_errors(json.loads(text)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_full_report_is_valid_sarif(
    validator: jsonschema.protocols.Validator, report: StageReport
) -> None:
    text = render_sarif(report)
    _assert_valid(validator, text)
    assert text.endswith("\n")
    document = json.loads(text)
    assert document["version"] == "2.1.0"
    assert "sarif-schema-2.1.0.json" in document["$schema"]


def test_every_sample_report_is_valid_sarif(
    validator: jsonschema.protocols.Validator, any_report: StageReport
) -> None:
    _assert_valid(validator, render_sarif(any_report))


def test_one_run_per_tool_across_checks(report: StageReport) -> None:
    document = _sarif(report)
    names = [run["tool"]["driver"]["name"] for run in document["runs"]]
    assert names == ["bandit", "detect-secrets", "licenses", "pip-audit"]  # no pytest run
    bandit, audit = _run(document, "bandit"), _run(document, "pip-audit")
    assert bandit["tool"]["driver"]["version"] == "1.9.4"
    assert bandit["tool"]["driver"]["informationUri"].startswith("https://bandit")
    assert audit["tool"]["driver"]["version"] == "2.9.0"
    assert "version" not in _run(document, "detect-secrets")["tool"]["driver"]
    for run in document["runs"]:
        assert run["automationDetails"]["id"] == "development/20261128T104501Z-3f9a2c"
        assert run["properties"]["commit"] == "3f9a2c1e4b5d" * 3


def test_a_tool_found_in_two_checks_is_one_run(report: StageReport) -> None:
    second = replace(
        _bandit(),
        check_id="bandit-tests",
        findings=[Finding("bandit", "B101", FindingSeverity.LOW, "Use of assert", "tests/t.py:9")],
        waived=[],
        suppressed=[],
        absent=[],
        status=CheckStatus.SKIPPED,
        reason="not asked",
    )
    run = _run(_sarif(_report([_bandit(), second])), "bandit")
    assert [i["properties"]["check"] for i in run["invocations"]] == ["bandit", "bandit-tests"]
    assert [i["executionSuccessful"] for i in run["invocations"]] == [True, False]
    assert {r["properties"]["check"] for r in run["results"]} == {"bandit", "bandit-tests"}


def test_invocations_say_whether_the_check_completed(report: StageReport) -> None:
    document = _sarif(report)
    (secrets,) = _run(document, "detect-secrets")["invocations"]
    assert secrets["executionSuccessful"] is False
    (note,) = secrets["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["message"]["text"] == "detect-secrets exited 2: cannot read docs/x.bin"  # no ANSI
    (bandit,) = _run(document, "bandit")["invocations"]
    assert bandit["executionSuccessful"] is True
    assert "toolExecutionNotifications" not in bandit


@pytest.mark.parametrize("severity", list(FindingSeverity))
def test_every_severity_has_a_level(severity: FindingSeverity) -> None:
    expected = {"critical": "error", "high": "error", "unknown": "error", "medium": "warning"}
    assert sarif_level(severity) == expected.get(severity.value, "note")


def test_rules_are_sorted_and_results_point_at_theirs(report: StageReport) -> None:
    for run in _sarif(report)["runs"]:
        rules = run["tool"]["driver"]["rules"]
        assert [r["id"] for r in rules] == sorted(r["id"] for r in rules)
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_rule_metadata(report: StageReport) -> None:
    document = _sarif(report)
    bandit_rules = {r["id"]: r for r in _run(document, "bandit")["tool"]["driver"]["rules"]}
    b602 = bandit_rules["B602"]
    assert b602["shortDescription"]["text"] == "subprocess call with shell=True"
    assert b602["fullDescription"]["text"] == "subprocess call with shell=True"
    assert b602["helpUri"] == "https://bandit.readthedocs.io/en/latest/plugins/b602.html"
    assert b602["defaultConfiguration"]["level"] == "error"
    assert "helpUri" not in bandit_rules["B101"]  # no documentation named: none invented
    (advisory, _) = sorted(
        _run(document, "pip-audit")["tool"]["driver"]["rules"],
        key=lambda r: r["id"] != "PYSEC-2021-108",
    )
    assert advisory["helpUri"] == "https://osv.dev/vulnerability/PYSEC-2021-108"
    assert "CVE-2020-28493" in advisory["help"]["text"]
    assert "Fixed in 2.11.3" in advisory["help"]["text"]
    assert advisory["defaultConfiguration"]["level"] == "error"  # unknown counts as high


def test_path_findings_have_a_physical_location(report: StageReport) -> None:
    bandit = _run(_sarif(report), "bandit")
    (location,) = _result(bandit, "B602")["locations"]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "app/run.py", "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 12}
    odd = _result(bandit, "B101")["locations"][0]["physicalLocation"]["artifactLocation"]
    assert odd["uri"] == "app/my%20file%20%C3%BC.py"  # a URI reference, not a raw path


def test_an_undecodable_file_name_keeps_its_bytes(
    validator: jsonschema.protocols.Validator,
) -> None:
    check = CheckResult(
        "bandit",
        "bandit",
        CheckStatus.OK,
        findings=[
            # A fingerprint given: Finding.identity cannot hash a lone surrogate (checks hand over
            # printable text, so only a hand-made finding has one).
            Finding(
                "bandit",
                "B101",
                FindingSeverity.LOW,
                "assert in \udcff.py",
                "app/\udcff.py:1",
                fingerprint="f1",
            ),
            Finding("bandit", "B102", FindingSeverity.LOW, "exec", "/abs/tool.py:4"),
        ],
    )
    text = render_sarif(_report([check]))
    _assert_valid(validator, text)
    text.encode("utf-8")  # writable
    run = _run(json.loads(text), "bandit")
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert uris == [{"uri": "file:///abs/tool.py"}, {"uri": "app/%FF.py", "uriBaseId": "%SRCROOT%"}]


def test_a_history_finding_is_located_in_its_file_and_names_its_commit(
    report: StageReport,
) -> None:
    result = _result(_run(_sarif(report), "detect-secrets"), "private-key")
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "deploy/key.pem", "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 1}
    assert result["properties"]["commit"] == "abc1234"


def test_package_findings_have_a_logical_location_only(report: StageReport) -> None:
    result = _result(_run(_sarif(report), "pip-audit"), "PYSEC-2021-108")
    (location,) = result["locations"]
    assert location == {"logicalLocations": [{"name": "jinja2==2.11.2", "kind": "module"}]}
    assert result["level"] == "error"
    assert result["properties"]["aliases"] == ["CVE-2020-28493"]
    assert result["properties"]["fixVersions"] == ["2.11.3"]


def test_fingerprints_are_the_findings_identity_and_stable(report: StageReport) -> None:
    first, second = _sarif(report), _sarif(report)
    assert first == second
    bandit = _run(first, "bandit")
    assert _result(bandit, "B602")["partialFingerprints"] == {FINGERPRINT_KEY: "b602-run"}
    identity = _bandit().findings[1].identity
    assert _result(bandit, "B101")["partialFingerprints"][FINGERPRINT_KEY] == identity
    # The same finding a few lines further down is the same finding.
    moved = _bandit()
    moved.findings[1] = replace(moved.findings[1], location="app/my file ü.py:9")
    again = _result(_run(_sarif(_report([moved])), "bandit"), "B101")
    assert again["partialFingerprints"][FINGERPRINT_KEY] == identity


def test_baseline_states(report: StageReport) -> None:
    bandit = _run(_sarif(report), "bandit")
    states = {r["ruleId"]: r.get("baselineState") for r in bandit["results"]}
    assert states == {
        "B602": "new",
        "B101": "unchanged",
        "B301": "updated",
        "B603": "unchanged",
        "B105": None,  # no baseline run compared it: no state claimed
        "B608": "absent",
    }
    absent = _result(bandit, "B608")
    assert absent["properties"]["counted"] is False
    only_absent = replace(
        _bandit(),
        findings=[],
        waived=[],
        suppressed=[],
        absent=[Finding("bandit", "B608", FindingSeverity.MEDIUM, "SQL", "app/old.py:40")],
    )
    gone = _result(_run(_sarif(_report([only_absent])), "bandit"), "B608")
    assert gone["baselineState"] == "absent"  # whatever the finding's own field says


def test_waived_findings_are_accepted_external_suppressions(report: StageReport) -> None:
    document = _sarif(report)
    (suppression,) = _result(_run(document, "bandit"), "B603")["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression["status"] == "accepted"
    for said in ("W-7", "subprocess input is a constant", "platform-team", "2027-03-31"):
        assert said in suppression["justification"]
    waived_advisory = _result(_run(document, "pip-audit"), "GHSA-j8r2-6x86-q33q")
    assert waived_advisory["suppressions"][0]["status"] == "accepted"
    assert waived_advisory["properties"]["counted"] is False


def test_an_expired_waiver_is_a_rejected_suppression(report: StageReport) -> None:
    result = _result(_run(_sarif(report), "bandit"), "B301")
    (suppression,) = result["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression["status"] == "rejected"  # SARIF: a rejected suppression hides nothing
    assert "expired on 2026-01-31" in suppression["justification"]
    assert result["properties"]["counted"] is True


def test_findings_hidden_in_source_are_in_source_suppressions(report: StageReport) -> None:
    document = _sarif(report)
    nosec = _result(_run(document, "bandit"), "B105")["suppressions"]
    assert nosec == [
        {
            "kind": "inSource",
            "status": "accepted",
            "justification": "marked '# nosec' in the source",
        }
    ]
    allowed = _result(_run(document, "detect-secrets"), "aws-access-key")["suppressions"]
    assert allowed[0]["kind"] == "inSource"
    counted = _result(_run(document, "bandit"), "B602")
    assert "suppressions" not in counted
    assert counted["properties"]["counted"] is True


def test_a_finding_producing_check_without_findings_is_an_empty_run(
    validator: jsonschema.protocols.Validator,
) -> None:
    text = render_sarif(_report([_unit_tests(), _licenses()]))
    _assert_valid(validator, text)
    (run,) = json.loads(text)["runs"]
    assert run["tool"]["driver"] == {"name": "licenses", "rules": []}
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is True


def test_no_finding_producing_check_means_no_runs(
    validator: jsonschema.protocols.Validator,
) -> None:
    text = render_sarif(_report([_unit_tests()]))
    _assert_valid(validator, text)
    assert json.loads(text)["runs"] == []


def test_the_text_does_not_depend_on_the_order_findings_came_in(report: StageReport) -> None:
    shuffled = _bandit()
    random.Random(4).shuffle(shuffled.findings)
    shuffled.findings.reverse()
    assert render_sarif(_report([shuffled])) == render_sarif(_report([_bandit()]))
    bandit = _run(_sarif(report), "bandit")
    places = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in bandit["results"]
    ]
    assert places == sorted(places)


def test_rendering_does_not_change_the_report(report: StageReport) -> None:
    before = report.to_dict()
    render_sarif(report)
    assert report.to_dict() == before


def test_a_page_element_is_a_logical_location_not_a_file(
    validator: jsonschema.protocols.Validator, report: StageReport
) -> None:
    element = Finding(
        "axe-core",
        "image-alt",
        FindingSeverity.CRITICAL,
        "Images must have alternative text",
        "login: img",
        help_url="https://dequeuniversity.com/rules/axe/4.12/image-alt",
    )
    a11y = CheckResult("a11y", "a11y", CheckStatus.OK, findings=[element])
    page_report = replace(report, checks=[*report.checks, a11y])
    text = render_sarif(page_report)
    _assert_valid(validator, text)
    (location,) = _result(_run(json.loads(text), "axe-core"), "image-alt")["locations"]
    assert location == {"logicalLocations": [{"name": "login: img", "kind": "element"}]}
