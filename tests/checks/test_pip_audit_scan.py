"""The pip-audit kind: fail-closed reading of its report, and real audits against mirrors."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.advisories import AdvisoryMirror
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.checks.pip_audit_scan import (
    LIVE_HINT,
    PipAuditCheck,
    PipAuditSettings,
    base_argv,
    first_sentence,
    package_findings,
    parse_report,
    read_report,
    report_metrics,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, FindingSeverity, Priority
from neuroerp_ci.tooling import ToolRun

# Fifteen pins that have no advisory in the 2024-10-10 PyPA snapshot.
CLEAN_PINS = """\
packaging==24.1
idna==3.10
certifi==2024.8.30
charset-normalizer==3.4.0
requests==2.32.3
attrs==24.2.0
click==8.1.7
six==1.16.0
typing-extensions==4.12.2
pluggy==1.5.0
iniconfig==2.0.0
colorama==0.4.6
PyYAML==6.0.2
markupsafe==3.0.2
urllib3==2.2.3
"""


def report(assets: Path, name: str) -> Any:
    return json.loads((assets / "pip_audit" / name).read_text())


def tool_run(returncode: int, stderr: str = "") -> ToolRun:
    return ToolRun(("pip-audit",), returncode, "", stderr, 0.1)


# --- settings and command line --------------------------------------------------------------


def test_settings_defaults_and_validation() -> None:
    settings = PipAuditSettings()
    assert settings.requirements == ["requirements.txt"]
    assert settings.service == "osv" and settings.mirror is None and settings.ignore == []
    with pytest.raises(ValidationError, match="service_url"):
        PipAuditSettings(service="pypi", service_url="http://127.0.0.1:1/v1/query")
    with pytest.raises(ValidationError):
        PipAuditSettings(requirements=[])
    with pytest.raises(ValidationError):
        PipAuditSettings.model_validate({"requirement": ["typo.txt"]})


def test_base_argv_pins_only_json_private_cache(tmp_path: Path) -> None:
    settings = PipAuditSettings(ignore=["PYSEC-2021-108"])
    reqs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    argv = base_argv("pip-audit", settings, reqs, tmp_path, tmp_path / "out.json")
    assert argv[:5] == ["pip-audit", "-r", str(reqs[0]), "-r", str(reqs[1])]
    for flag in ("--no-deps", "--disable-pip"):
        assert flag in argv
    assert argv[argv.index("-f") + 1] == "json"
    assert argv[argv.index("-o") + 1] == str(tmp_path / "out.json")
    assert argv[argv.index("--cache-dir") + 1] == str(tmp_path / "pip-audit-cache")
    assert argv[-2:] == ["--ignore-vuln", "PYSEC-2021-108"]


# --- reading the report (captured pip-audit 2.10.1 outputs) ---------------------------------


def test_vulnerable_report(assets: Path) -> None:
    packages = parse_report(report(assets, "report-vulnerable.json"))
    assert [(p.name, p.version, len(p.vulns)) for p in packages] == [
        ("urllib3", "1.26.4", 3),
        ("pyyaml", "6.0.2", 0),
    ]
    metrics = {m.name: m.value for m in report_metrics(packages)}
    assert metrics == {"dependencies": 2, "vulnerable_dependencies": 1, "vulnerabilities": 3}


def test_all_skipped_report_is_an_error_not_a_pass(assets: Path) -> None:
    # What pip-audit -s pypi wrote here with PyPI unreachable: exit 0, "No known vulnerabilities".
    data = report(assets, "report-skipped-live.json")
    with pytest.raises(ToolError) as caught:
        parse_report(data, live=True)
    reason = str(caught.value)
    assert "skipped 2 of 2 dependencies" in reason
    assert "urllib3: Dependency not found on PyPI" in reason
    assert "--advisories DIR" in reason
    with pytest.raises(ToolError) as offline:
        parse_report(data, live=False)
    assert "--advisories" not in str(offline.value)


def test_skips_are_listed_up_to_five() -> None:
    data = {"dependencies": [{"name": f"p{i}", "skip_reason": "why"} for i in range(7)]}
    with pytest.raises(ToolError, match=r"p4: why; \+2 more$"):
        parse_report(data)


def test_one_skip_among_audited_is_still_an_error(assets: Path) -> None:
    data = report(assets, "report-vulnerable.json")
    data["dependencies"].append({"name": "foo", "skip_reason": "URL requirements cannot be pinned"})
    with pytest.raises(ToolError, match="skipped 1 of 3"):
        parse_report(data)


def test_empty_report_audited_nothing(assets: Path) -> None:
    with pytest.raises(ToolError, match="audited no dependencies"):
        parse_report(report(assets, "report-empty.json"))


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"deps": []},
        {"dependencies": [{"name": "x"}]},
        {"dependencies": [{"name": "x", "version": "1", "vulns": [{}]}]},
    ],
)
def test_unexpected_shapes_are_errors(data: Any) -> None:
    with pytest.raises(ToolError, match="unexpected shape"):
        parse_report(data)


def test_exit_codes_and_missing_report(assets: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(ToolError, match="exited 2: boom"):
        read_report(tool_run(2, "boom"), missing, None, live=False)
    # Captured: pip-audit 2.10.1 with an unpinned requirement (exit 1, no report).
    unpinned = tool_run(1, (assets / "pip_audit" / "stderr-unpinned.txt").read_text())
    with pytest.raises(ToolError) as caught:
        read_report(unpinned, missing, None, live=True)
    assert str(caught.value).startswith(
        "pip-audit exited 1 without a report: requirement requests is not pinned"
    )
    assert LIVE_HINT not in str(caught.value)  # not a connection problem


def test_unreachable_service_crash_names_the_cause(assets: Path, tmp_path: Path) -> None:
    # Captured: pip-audit -s osv against a closed port crashes with a traceback and exit 1.
    crash = tool_run(1, (assets / "pip_audit" / "stderr-unreachable.txt").read_text())
    with pytest.raises(ToolError) as live:
        read_report(crash, tmp_path / "none.json", None, live=True)
    reason = str(live.value)
    assert "without a report: requests.exceptions.ConnectionError:" in reason
    assert "Traceback" not in reason and "WARNING" not in reason
    assert reason.endswith(LIVE_HINT)
    with pytest.raises(ToolError) as offline:
        read_report(crash, tmp_path / "none.json", None, live=False)
    assert LIVE_HINT not in str(offline.value)


def test_exit_one_without_vulnerabilities_is_inconsistent(tmp_path: Path) -> None:
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps({"dependencies": [{"name": "a", "version": "1", "vulns": []}]}))
    assert len(read_report(tool_run(0), clean, None, live=False)) == 1
    with pytest.raises(ToolError, match="exited 1 but reported no vulnerability"):
        read_report(tool_run(1, "?"), clean, None, live=False)


def test_findings_take_severity_from_the_mirror(assets: Path, advisory_mirror: Path) -> None:
    urllib3 = parse_report(report(assets, "report-vulnerable.json"))[0]
    findings = {f.rule: f for f in package_findings(urllib3, AdvisoryMirror(advisory_mirror))}
    assert {rule: f.severity for rule, f in findings.items()} == {
        "PYSEC-2021-108": FindingSeverity.UNKNOWN,  # the record has no rating
        "PYSEC-2023-192": FindingSeverity.HIGH,  # CVSS 8.1
        "PYSEC-2023-212": FindingSeverity.MEDIUM,  # CVSS 4.2
    }
    first = findings["PYSEC-2021-108"]
    assert first.tool == "pip-audit" and first.location == "urllib3==1.26.4"
    assert first.fix_versions == ("1.26.5",)
    assert first.aliases == ("CVE-2021-33503", "GHSA-q2q7-5pp4-w6pg")
    assert first.message == "An issue was discovered in urllib3 before 1.26.5."


def test_findings_without_mirror_are_unrated(assets: Path) -> None:
    urllib3 = parse_report(report(assets, "report-vulnerable.json"))[0]
    findings = package_findings(urllib3, None)
    assert {f.severity for f in findings} == {FindingSeverity.UNKNOWN}
    assert all(len(f.message) <= 160 for f in findings)


def test_first_sentence() -> None:
    assert first_sentence("One. Two.") == "One."
    assert first_sentence("Version 1.2.3 is bad!\nMore") == "Version 1.2.3 is bad!"
    long = first_sentence("x" * 400)
    assert len(long) == 160 and long.endswith("...")


# --- the real tool --------------------------------------------------------------------------


def run_check(
    tmp_path: Path,
    pins: str | None,
    *,
    advisories: Path | None = None,
    timeout: float = 120,
    **settings: Any,
) -> CheckResult:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    if pins is not None:
        (project / "requirements.txt").write_text(pins)
    check = Check(
        id="deps",
        title="dependency audit",
        kind="pip-audit",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=timeout,
        settings=PipAuditSettings(**settings),
    )
    ctx = CheckContext(
        project_dir=project,
        work_dir=tmp_path / "work",
        python=sys.executable,
        env=dict(os.environ),
        advisories=advisories,
    )
    return execute_check(PipAuditCheck(), check, ctx)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_vulnerable_pin_against_real_mirror(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(tmp_path, "urllib3==1.26.4\npackaging==24.1\n", advisories=advisory_mirror)
    assert result.status is CheckStatus.OK, result.reason
    metrics = {name: m.value for name, m in result.metrics.items()}
    assert metrics["dependencies"] == 2
    assert metrics["vulnerable_dependencies"] == 1
    assert metrics["vulnerabilities"] == len(result.findings) >= 3
    rules = {f.rule for f in result.findings}
    assert "PYSEC-2021-108" in rules
    assert {f.location for f in result.findings} == {"urllib3==1.26.4"}
    assert result.tool_versions["pip-audit"][0].isdigit()
    assert "advisory-database" in result.tool_versions["advisory-mirror"]
    assert Path(result.artifacts["pip_audit_json"]).is_file()
    assert "offline mirror" in result.reason


@pytest.mark.integration
def test_clean_pins_against_real_mirror(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(tmp_path, CLEAN_PINS, advisories=advisory_mirror)
    assert result.status is CheckStatus.OK, result.reason
    assert result.findings == []
    assert result.metrics["dependencies"].value == len(CLEAN_PINS.splitlines())
    assert result.metrics["vulnerabilities"].value == 0


@pytest.mark.integration
def test_waived_advisory_is_dropped(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(
        tmp_path, "urllib3==1.26.4\n", advisories=advisory_mirror, ignore=["PYSEC-2021-108"]
    )
    assert result.status is CheckStatus.OK, result.reason
    rules = {f.rule for f in result.findings}
    assert "PYSEC-2021-108" not in rules and "PYSEC-2023-212" in rules


@pytest.mark.integration
def test_check_mirror_setting_wins_and_pip_audit_reads_served_records(
    tmp_path: Path, assets: Path, advisory_mirror: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    own = os.path.relpath(assets / "pip_audit" / "mirror", project)
    # PyYAML (record says "PyYAML") and oddver (a fix version pip-audit cannot parse).
    result = run_check(
        tmp_path, "PyYAML==5.3\noddver==0.3\n", advisories=advisory_mirror, mirror=own
    )
    assert result.status is CheckStatus.OK, result.reason
    findings = {f.rule: f for f in result.findings}
    assert set(findings) == {"PYSEC-TEST-1", "PYSEC-TEST-5"}  # not the real PyYAML advisories
    assert findings["PYSEC-TEST-1"].fix_versions == ("5.10",)
    assert findings["PYSEC-TEST-1"].severity is FindingSeverity.CRITICAL
    assert findings["PYSEC-TEST-1"].message == "Arbitrary code execution in full_load."
    assert findings["PYSEC-TEST-5"].severity is FindingSeverity.UNKNOWN
    assert result.tool_versions["advisory-mirror"].startswith("Hand-written")


@pytest.mark.integration
def test_broken_mirror_record_is_an_error(tmp_path: Path, assets: Path) -> None:
    result = run_check(
        tmp_path, "broken==1.0\n", advisories=assets / "pip_audit" / "broken-mirror"
    )
    assert result.status is CheckStatus.ERROR
    assert "PYSEC-BAD-1.yaml" in result.reason


@pytest.mark.integration
def test_live_osv_unreachable_is_an_error_with_advice(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/query"
    result = run_check(tmp_path, "urllib3==1.26.4\n", service_url=url)
    assert result.status is CheckStatus.ERROR
    assert "--advisories DIR" in result.reason and "NEUROERP_CI_ADVISORIES" in result.reason


@pytest.mark.integration
@pytest.mark.parametrize("service", ["osv", "pypi"])
def test_true_live_mode_without_network_is_an_error(tmp_path: Path, service: str) -> None:
    # On this machine api.osv.dev and pypi.org do not answer: pypi's way is the exit-0 trap
    # (every dependency skipped), osv's a crash; either, or a timeout, must be an error.
    result = run_check(tmp_path, "urllib3==1.26.4\n", timeout=30, service=service)
    assert result.status is CheckStatus.ERROR
    assert "--advisories DIR" in result.reason


@pytest.mark.integration
def test_missing_executable(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(
        tmp_path, "idna==3.10\n", advisories=advisory_mirror, executable="no-such-pip-audit"
    )
    assert result.status is CheckStatus.ERROR
    assert "not found" in result.reason and "no-such-pip-audit" in result.reason


@pytest.mark.integration
def test_missing_requirements_file(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(
        tmp_path, None, advisories=advisory_mirror, requirements=["requirements/prod.txt"]
    )
    assert result.status is CheckStatus.ERROR
    assert "requirements/prod.txt" in result.reason and "not found" in result.reason


@pytest.mark.integration
def test_unpinned_requirement(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(tmp_path, "requests>=2\n", advisories=advisory_mirror)
    assert result.status is CheckStatus.ERROR
    assert "requests is not pinned to an exact version" in result.reason


@pytest.mark.integration
def test_empty_requirements(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(tmp_path, "# nothing pinned\n", advisories=advisory_mirror)
    assert result.status is CheckStatus.ERROR
    assert "audited no dependencies" in result.reason


@pytest.mark.integration
def test_missing_mirror_directory(tmp_path: Path) -> None:
    result = run_check(tmp_path, "idna==3.10\n", advisories=tmp_path / "nowhere")
    assert result.status is CheckStatus.ERROR
    assert "no vulns/ folder" in result.reason
