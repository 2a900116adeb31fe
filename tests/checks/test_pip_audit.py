"""The pip-audit kind: fail-closed reading of its report, and real audits against mirrors.

What pip-audit audited is compared with everything the requirements files name, nested
``-r`` files included: pip-audit 2.10.1 ``--no-deps`` drops those, and requirements whose
marker is false, without a word.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks._requirements import read_requirements
from neuroerp_ci.checks.advisories import AdvisoryMirror
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.checks.pip_audit import (
    LIVE_HINT,
    AdvisoryData,
    AuditedPackage,
    AuditSource,
    PipAuditCheck,
    PipAuditSettings,
    base_argv,
    first_sentence,
    package_findings,
    parse_report,
    read_report,
    report_metrics,
    report_reason,
    require_all_audited,
    require_auditable,
)
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.errors import ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    FindingSeverity,
    Outcome,
    OutcomeStatus,
    Priority,
    Severity,
)
from neuroerp_ci.support.tooling import ToolRun

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
    assert settings.service == "osv" and settings.mirror is None
    with pytest.raises(ValidationError, match="service_url"):
        PipAuditSettings(service="pypi", service_url="http://127.0.0.1:1/v1/query")
    with pytest.raises(ValidationError):
        PipAuditSettings(requirements=[])
    with pytest.raises(ValidationError):
        PipAuditSettings.model_validate({"requirement": ["typo.txt"]})
    with pytest.raises(ValidationError, match=r"settings.ignore is gone: .*\[\[waivers\]\]"):
        PipAuditSettings.model_validate({"ignore": ["PYSEC-2021-108"]})


def test_base_argv_pins_only_json_private_cache(tmp_path: Path) -> None:
    settings = PipAuditSettings()
    reqs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    argv = base_argv("pip-audit", settings, reqs, tmp_path, tmp_path / "out.json")
    assert argv[:5] == ["pip-audit", "-r", str(reqs[0]), "-r", str(reqs[1])]
    for flag in ("--no-deps", "--disable-pip"):
        assert flag in argv
    assert argv[argv.index("-f") + 1] == "json"
    assert argv[argv.index("-o") + 1] == str(tmp_path / "out.json")
    assert argv[argv.index("--cache-dir") + 1] == str(tmp_path / "pip-audit-cache")
    assert "--ignore-vuln" not in argv  # waivers act on findings, never hide them from the tool


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
    python: str = sys.executable,
    env: dict[str, str] | None = None,
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
        python=python,
        env=dict(os.environ) if env is None else env,
        advisories=(advisories,) if advisories is not None else (),
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
    result = run_check(tmp_path, "broken==1.0\n", advisories=assets / "pip_audit" / "broken-mirror")
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
    assert result.reason == (
        "pip-audit --no-deps audits exact pins (name==version) only; 1 requirement(s) are not: "
        "requests>=2 (requirements.txt:1): not pinned to an exact version (==)"
    )


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


# --- what the files name against what pip-audit audited --------------------------------------

OTHER_PYTHON = f'python_version < "{sys.version_info[0]}.{sys.version_info[1]}"'


def files(root: Path, texts: dict[str, str]) -> Path:
    for name, text in texts.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def named(root: Path, texts: dict[str, str]) -> Any:
    files(root, texts)
    return read_requirements([root / next(iter(texts))], root)


def test_everything_pip_audit_would_refuse_is_named_at_once(tmp_path: Path) -> None:
    read = named(
        tmp_path,
        {
            "r.txt": "idna==3.10\n-e .\n-r more.txt\n"
            f"ignored>=1 ; {OTHER_PYTHON}\n",  # its marker excludes it: not refused
            "more.txt": "requests>=2\nwheel @ https://x.example/wheel-0.44.0-py3-none-any.whl\n",
        },
    )
    with pytest.raises(ToolError) as caught:
        require_auditable(read)
    assert str(caught.value) == (
        "pip-audit --no-deps audits exact pins (name==version) only; 3 requirement(s) are not: "
        "-e . (r.txt:2): editable; requests>=2 (more.txt:1): not pinned to an exact version (==); "
        "wheel @ https://x.example/wheel-0.44.0-py3-none-any.whl (more.txt:2): a URL, no version"
    )


def test_one_hash_means_every_requirement_needs_one(tmp_path: Path) -> None:
    read = named(
        tmp_path,
        {"r.txt": "idna==3.10 --hash=sha256:00\n-r more.txt\n", "more.txt": "six==1.16.0\n"},
    )
    with pytest.raises(ToolError, match=r"but 1 requirement\(s\) have none: six==1\.16\.0 \(more"):
        require_auditable(read)


def test_duplicates_same_pin_pass_different_pins_are_named(tmp_path: Path) -> None:
    same = named(tmp_path / "a", {"r.txt": "idna==3.10\n-r b.txt\n", "b.txt": "IDNA==3.10.0\n"})
    require_auditable(same)  # one environment, one version: fine
    clash = named(tmp_path / "b", {"r.txt": "idna==3.10\n-r b.txt\n", "b.txt": "idna==3.7\n"})
    with pytest.raises(ToolError) as caught:
        require_auditable(clash)
    assert str(caught.value) == (
        "1 package(s) pinned to different versions (one audit is one environment: give each "
        "file its own check): idna==3.10 (r.txt:1) vs idna==3.7 (b.txt:1)"
    )


def audited(*pins: str) -> list[AuditedPackage]:
    return [AuditedPackage(p.split("==")[0], p.split("==")[1], ()) for p in pins]


def test_a_requirement_pip_audit_did_not_audit_is_named(tmp_path: Path) -> None:
    read = named(
        tmp_path,
        {
            "r.txt": f"idna==3.10\nPyYAML==6.0.2\n-r more.txt\ngreenlet==3.0.0 ; {OTHER_PYTHON}\n",
            "more.txt": "urllib3==1.26.4\n",
        },
    )
    require_all_audited(read, audited("idna==3.10", "pyyaml==6.0.2", "urllib3==1.26.4"))
    with pytest.raises(ToolError) as missing:
        require_all_audited(read, audited("idna==3.10", "pyyaml==6.0.2"))
    assert str(missing.value) == (
        "pip-audit did not audit 1 of 3 requirements the files name: urllib3==1.26.4 (more.txt:1)"
    )
    with pytest.raises(ToolError, match=r"idna==3\.10 \(r\.txt:1\), audited 3\.9"):
        require_all_audited(read, audited("idna==3.9", "pyyaml==6.0.2", "urllib3==1.26.4"))
    with pytest.raises(ToolError, match=r"audited 1 dependencies the .* do not name .*: six=="):
        require_all_audited(
            read, audited("idna==3.10", "pyyaml==6.0.2", "urllib3==1.26.4", "six==1.16.0")
        )


def test_reason_names_files_and_what_markers_leave_out(tmp_path: Path) -> None:
    read = named(tmp_path, {"r.txt": f"idna==3.10\npywin32==306 ; {OTHER_PYTHON}\n"})
    packages = audited("idna==3.10")

    sources = [AuditSource("requirements", read, "1 requirement files")]
    live = AdvisoryData(None)
    assert report_reason(packages, [], live, sources) == (
        "live OSV service (current data): no known vulnerabilities in 1 dependencies from 1 "
        "requirement files; not audited, their marker excludes this interpreter: pywin32==306 ; "
        f"{OTHER_PYTHON} (r.txt:2)"
    )
    metrics = {m.name: m.value for m in report_metrics(packages, sources, live)}
    assert (metrics["requirement_files"], metrics["excluded_by_marker"]) == (1, 1)
    assert metrics["advisory_age_days"] == 0  # a live service: current data


# --- the real tool: nested files, markers, duplicates, unknown packages ----------------------


def pip_audit_dropping_nested_files(project: Path) -> str:
    """A pip-audit that audits only the first ``-r`` file, as it audits a file's own lines
    only: what this check ran into when it passed the top-level file alone."""
    wrapper = project / "tools" / "pip-audit"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\nseen=''\nskip=''\n"
        'for arg in "$@"; do\n  shift\n'
        "  if [ -n \"$skip\" ]; then skip=''; continue; fi\n"
        '  if [ "$arg" = "-r" ]; then\n'
        '    if [ -n "$seen" ]; then skip=1; continue; fi\n    seen=1\n  fi\n'
        '  set -- "$@" "$arg"\ndone\n'
        f'exec {Path(sys.executable).parent / "pip-audit"} "$@"\n'
    )
    wrapper.chmod(0o755)
    return "tools/pip-audit"


@pytest.mark.integration
def test_nested_requirements_are_audited(tmp_path: Path, advisory_mirror: Path) -> None:
    files(tmp_path / "project", {"requirements/more.txt": "urllib3==1.26.4\n"})

    result = run_check(
        tmp_path, "idna==3.10\n-r requirements/more.txt\n", advisories=advisory_mirror
    )

    assert result.status is CheckStatus.OK, result.reason
    assert "PYSEC-2021-108" in {f.rule for f in result.findings}  # urllib3, nested
    metrics = {name: m.value for name, m in result.metrics.items()}
    assert (metrics["dependencies"], metrics["requirement_files"]) == (2, 2)
    assert "from 2 requirement files" in result.reason


@pytest.mark.integration
def test_a_nested_requirement_pip_audit_did_not_audit_is_an_error(
    tmp_path: Path, advisory_mirror: Path
) -> None:
    project = files(tmp_path / "project", {"requirements/more.txt": "urllib3==1.26.4\n"})

    result = run_check(
        tmp_path,
        "idna==3.10\n-r requirements/more.txt\n",
        advisories=advisory_mirror,
        executable=pip_audit_dropping_nested_files(project),
    )

    assert result.status is CheckStatus.ERROR
    assert result.reason == (
        "pip-audit did not audit 1 of 2 requirements the files name: "
        "urllib3==1.26.4 (requirements/more.txt:1)"
    )


@pytest.mark.integration
def test_the_class_of_requirements_files(tmp_path: Path, advisory_mirror: Path) -> None:
    # Comments, a continuation, extras, a marker false here, a package the mirror does not
    # know, the same pin twice, a constraints file: all accounted for.
    files(
        tmp_path / "project",
        {
            "requirements/base.txt": "# base\nPyYAML[libyaml]==6.0.2  # extras\nidna==3.10\n",
            "constraints.txt": "urllib3==1.26.4\n",
        },
    )
    top = (
        "-r requirements/base.txt\n"
        "-c constraints.txt\n"
        "idna==3.10  # again, the same pin\n"
        "click==8.1.7 \\\n    ; python_version >= '3'\n"
        f"pywin32==306 ; {OTHER_PYTHON}\n"
        "neuroerp-no-such-package==0.0.1\n"
    )

    result = run_check(tmp_path, top, advisories=advisory_mirror)

    assert result.status is CheckStatus.OK, result.reason
    metrics = {name: m.value for name, m in result.metrics.items()}
    assert metrics["dependencies"] == 4  # pyyaml, idna, click, neuroerp-no-such-package
    assert metrics["excluded_by_marker"] == 1
    assert result.findings == []  # urllib3 is only a constraint: nothing installs it
    assert result.reason.endswith(
        f"not audited, their marker excludes this interpreter: pywin32==306 ; {OTHER_PYTHON} "
        "(requirements.txt:6)"
    )
    report_data = json.loads(Path(result.artifacts["pip_audit_json"]).read_text())
    assert "neuroerp-no-such-package" in {d["name"] for d in report_data["dependencies"]}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("top", "nested", "message"),
    [
        ("idna==3.10\n-r more.txt\n", "idna==3.7\n", "pinned to different versions"),
        ("-e .\nidna==3.10\n", "", r"-e \. \(requirements\.txt:1\): editable"),
        ("idna==3.10 --hash=sha256:00\n-r more.txt\n", "six==1.16.0\n", "have none: six"),
        ("idna==3.10\n-r missing.txt\n", "", r"missing\.txt not found \(included by req"),
    ],
    ids=["duplicate", "editable", "hashes", "missing-nested"],
)
def test_requirements_it_cannot_audit_are_errors(
    tmp_path: Path, advisory_mirror: Path, top: str, nested: str, message: str
) -> None:
    files(tmp_path / "project", {"more.txt": nested})
    result = run_check(tmp_path, top, advisories=advisory_mirror)
    assert result.status is CheckStatus.ERROR
    assert re.search(message, result.reason), result.reason


@pytest.mark.integration
def test_concurrent_audits_share_no_state(tmp_path: Path, advisory_mirror: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    project = files(tmp_path / "project", {"a.txt": "urllib3==1.26.4\n", "b.txt": "idna==3.10\n"})

    def audit(name: str) -> CheckResult:
        check = Check(
            id=name, title=name, kind="pip-audit", priority=Priority.HIGH, dependencies=(),
            timeout=120, settings=PipAuditSettings(requirements=[f"{name}.txt"]),
        )  # fmt: skip
        work = tmp_path / "work" / name
        ctx = CheckContext(project, work, sys.executable, env, advisories=(advisory_mirror,))
        return execute_check(PipAuditCheck(), check, ctx)

    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.map(audit, ["a", "b"])

    assert (a.status, b.status) == (CheckStatus.OK, CheckStatus.OK), (a.reason, b.reason)
    assert {f.location for f in a.findings} == {"urllib3==1.26.4"} and b.findings == []
    # No pip or pip-audit cache outside the work dirs (--cache-dir, base_argv above).
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in project.iterdir()) == ["a.txt", "b.txt"]


# --- what is audited: settings, metrics and default conditions -------------------------------


def test_sources_and_their_settings() -> None:
    assert PipAuditSettings(source="both", requirements=["a.txt"]).source == "both"
    assert PipAuditSettings(lock="pylock.toml").lock == "pylock.toml"
    assert PipAuditSettings(mirror=["a", "b"]).mirrors == ["a", "b"]
    assert PipAuditSettings(mirror="a").mirrors == ["a"]
    with pytest.raises(ValidationError, match="either requirements or lock"):
        PipAuditSettings(lock="pylock.toml", requirements=["r.txt"])
    with pytest.raises(ValidationError, match="source 'both' audits the requirements"):
        PipAuditSettings(source="environment", requirements=["r.txt"])
    with pytest.raises(ValidationError):
        PipAuditSettings(source="venv")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PipAuditSettings(max_age_days=0)
    with pytest.raises(ValidationError):
        PipAuditSettings(mirror=[])


@pytest.mark.parametrize(
    ("source", "has", "lacks"),
    [
        ("requirements", {"requirement_files", "advisory_age_days"}, {"installed_packages"}),
        ("environment", {"installed_packages", "advisory_age_days"}, {"requirement_files"}),
        ("both", {"requirements_drift", "installed_packages", "requirement_files"}, set()),
    ],
)
def test_metric_names_follow_the_source(source: str, has: set[str], lacks: set[str]) -> None:
    names = PipAuditCheck().metric_names(PipAuditSettings(source=source))  # type: ignore[arg-type]
    assert all(names.produces(n) for n in has) and not any(names.produces(n) for n in lacks)
    assert names.produces("requirements_drift") is (source == "both")


def test_default_conditions_hold_the_data_age_and_the_drift() -> None:
    check = PipAuditCheck()
    assert check.default_conditions(PipAuditSettings()) == (
        {"findings": "any", "max": 0},
        {"metric": "advisory_age_days", "max": 30, "severity": "warning"},
    )
    strict = PipAuditSettings(source="both", max_age_days=7, max_age_severity=Severity.BLOCKING)
    assert check.default_conditions(strict)[1:] == (
        {"metric": "advisory_age_days", "max": 7, "severity": "blocking"},
        {"metric": "requirements_drift", "max": 0, "severity": "warning"},
    )


def test_data_description_names_each_folder_its_date_and_age(assets: Path, tmp_path: Path) -> None:
    today = date(2026, 12, 1)
    mirror = AdvisoryMirror(assets / "pip_audit" / "mirror", assets / "pip_audit" / "ghsa-export")
    data = AdvisoryData(mirror, project=assets, today=today)
    assert data.describe() == (
        "offline mirror pip_audit/mirror (2024-01-02, 1064 days old) + "
        "offline mirror pip_audit/ghsa-export (2026-11-22, 9 days old)"
    )
    assert data.age_days == 1064  # the oldest folder decides
    assert data.dates().endswith("ghsa-export: 2026-11-22 (newest record modified)")
    assert AdvisoryData(None).describe() == "live OSV service (current data)"
    assert AdvisoryData(None, "pypi").age_days == 0
    # a folder without any date: no age, so the age condition cannot pass
    (tmp_path / "vulns" / "p").mkdir(parents=True)
    (tmp_path / "vulns" / "p" / "X.yaml").write_text("id: X\naffected: []\n")
    undated = AdvisoryData(AdvisoryMirror(tmp_path), today=today)
    assert undated.age_days is None and "(unknown date)" in undated.describe()
    assert "advisory_age_days" not in {m.name for m in report_metrics([], None, undated)}


def defaults_outcomes(result: CheckResult, settings: PipAuditSettings) -> dict[str, Outcome]:
    """The kind's default conditions evaluated on ``result``, by condition text."""
    check = Check("deps", "deps", "pip-audit", Priority.HIGH, (), 120, settings)
    outcomes = [
        evaluate(ConditionSpec.model_validate({"check": "deps", **d}), check, result, default=True)
        for d in PipAuditCheck().default_conditions(settings)
    ]
    return {o.condition: o for o in outcomes}


def days_since(day: date) -> int:
    return (datetime.now(UTC).date() - day).days


@pytest.mark.integration
def test_the_2024_snapshot_warns_with_its_age(tmp_path: Path, advisory_mirror: Path) -> None:
    result = run_check(tmp_path, "idna==3.10\n", advisories=advisory_mirror)
    assert result.status is CheckStatus.OK, result.reason
    age = days_since(date(2024, 10, 10))
    assert result.metrics["advisory_age_days"].value == age
    assert result.reason.startswith(
        f"offline mirror {advisory_mirror} (2024-10-10, {age} days old): no known vulnerabilities"
    )
    assert result.tool_versions["advisory-data"] == f"{advisory_mirror}: 2024-10-10 (SNAPSHOT.txt)"
    outcomes = defaults_outcomes(result, PipAuditSettings())
    aged = outcomes["advisory_age_days <= 30 (default)"]
    assert (aged.status, aged.severity) == (OutcomeStatus.WARN, Severity.WARNING)
    assert f"{age} days old" in aged.reason
    assert outcomes["findings(any) <= 0 (default)"].status is OutcomeStatus.PASS


@pytest.mark.integration
def test_merged_mirrors_find_advisories_only_github_published(
    tmp_path: Path, assets: Path, advisory_mirror: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    ghsa = os.path.relpath(assets / "pip_audit" / "ghsa-export", project)
    # PyYAML 6.0: nothing in the PyPA snapshot; GHSA-TEST-0001 only in the GitHub-style export
    result = run_check(tmp_path, "PyYAML==6.0\n", mirror=[str(advisory_mirror), ghsa])
    assert result.status is CheckStatus.OK, result.reason
    # pip-audit names it by its CVE alias (it prefers PYSEC, then CVE ids); rated by GitHub
    assert [(f.rule, f.aliases, f.severity) for f in result.findings] == [
        ("CVE-TEST-0002", ("GHSA-TEST-0001",), FindingSeverity.HIGH)
    ]
    assert result.reason.startswith(f"offline mirror {advisory_mirror} (2024-10-10, ")
    assert f"+ offline mirror {assets / 'pip_audit' / 'ghsa-export'} (2026-11-22, " in result.reason
    # the older folder decides the age
    assert result.metrics["advisory_age_days"].value == days_since(date(2024, 10, 10))


@pytest.mark.integration
def test_live_service_unreachable_falls_back_to_the_subset(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[2] / "neuroerp_ci" / "demo" / "project"
    url = f"http://127.0.0.1:{closed_port()}/v1/query"
    result = run_check(
        tmp_path,
        "urllib3==1.26.4\nidna==3.10\n",
        service_url=url,
        fallback_mirror=str(demo / "advisories"),
    )
    assert result.status is CheckStatus.OK, result.reason
    assert result.reason.startswith(
        f"advisory subset {demo / 'advisories'} (17 packages, 2024-10-10, "
        f"{days_since(date(2024, 10, 10))} days old; live OSV service unreachable: "
    )
    assert "PYSEC-2021-108" in {f.rule for f in result.findings}
    # a package the subset does not cover is an error, never "no known vulnerabilities"
    other = run_check(
        tmp_path, "requests==2.32.3\n", service_url=url, fallback_mirror=str(demo / "advisories")
    )
    assert other.status is CheckStatus.ERROR
    assert "no advisory data for 'requests'" in other.reason


# --- the target's installed packages -----------------------------------------------------------

APP = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "my-app"
version = "0.1.0"
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real venv with an old urllib3 from the package index and the project, editable."""
    root = tmp_path_factory.mktemp("venv")
    project = files(root / "project", {"pyproject.toml": APP, "my_app/__init__.py": ""})
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "urllib3==1.26.4", "idna==3.7"], check=True, timeout=300)
    subprocess.run([*pip, "-e", str(project)], check=True, timeout=300)
    return python, project


@pytest.mark.integration
def test_environment_audit_finds_what_is_installed(
    venv: tuple[Path, Path], tmp_path: Path, advisory_mirror: Path
) -> None:
    python, project = venv
    check = Check(
        "deps", "deps", "pip-audit", Priority.HIGH, (), 120, PipAuditSettings(source="environment")
    )
    ctx = CheckContext(
        project, tmp_path / "work", str(python), dict(os.environ), advisories=(advisory_mirror,)
    )
    result = execute_check(PipAuditCheck(), check, ctx)
    assert result.status is CheckStatus.OK, result.reason
    assert "urllib3==1.26.4" in {f.location for f in result.findings}
    assert "PYSEC-2021-108" in {f.rule for f in result.findings}
    assert f"installed in {python} (Python " in result.reason
    assert result.reason.endswith("; not audited, the project itself: my-app 0.1.0 (editable)")
    generated = (tmp_path / "work" / "environment-requirements.txt").read_text("utf-8")
    assert "urllib3==1.26.4" in generated and "my-app" not in generated
    audited = json.loads(Path(result.artifacts["pip_audit_environment_json"]).read_text())
    assert {d["name"] for d in audited["dependencies"]} >= {"urllib3", "idna", "pip"}
    assert result.metrics["installed_packages"].value == len(audited["dependencies"])


@pytest.mark.integration
def test_requirements_drift_from_the_environment_warns(
    venv: tuple[Path, Path], tmp_path: Path, advisory_mirror: Path
) -> None:
    python, project = venv
    pins = tmp_path / "pins"
    files(pins, {"requirements.txt": "urllib3==1.26.18\nidna==3.7\nsix==1.16.0\n"})
    settings = PipAuditSettings(source="both", requirements=[str(pins / "requirements.txt")])
    check = Check("deps", "deps", "pip-audit", Priority.HIGH, (), 120, settings)
    ctx = CheckContext(
        project, tmp_path / "work", str(python), dict(os.environ), advisories=(advisory_mirror,)
    )
    result = execute_check(PipAuditCheck(), check, ctx)
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["requirements_drift"].value == 2
    assert result.reason.endswith(
        "; 2 pins differ from what is installed: "
        f"urllib3==1.26.18 ({pins}/requirements.txt:1), installed 1.26.4; "
        f"six==1.16.0 ({pins}/requirements.txt:3), not installed"
    )
    # both audited: the pinned urllib3 1.26.18 and the installed 1.26.4
    assert "urllib3==1.26.4" in {f.location for f in result.findings}
    assert Path(result.artifacts["pip_audit_json"]).is_file()
    drift = defaults_outcomes(result, settings)["requirements_drift <= 0 (default)"]
    assert drift.status is OutcomeStatus.WARN and drift.value == 2


@pytest.mark.integration
def test_a_lock_file_is_audited(tmp_path: Path, advisory_mirror: Path) -> None:
    files(
        tmp_path / "project",
        {
            "pylock.toml": 'lock-version = "1.0"\n[[packages]]\nname = "urllib3"\n'
            'version = "1.26.4"\n[[packages]]\nname = "my-app"\ndirectory = { path = "." }\n'
        },
    )
    result = run_check(tmp_path, None, advisories=advisory_mirror, lock="pylock.toml")
    assert result.status is CheckStatus.OK, result.reason
    assert "PYSEC-2021-108" in {f.rule for f in result.findings}
    assert "from pylock.toml" in result.reason
    assert result.reason.endswith(
        "not audited, the project itself: my-app (pylock.toml: packages[1])"
    )


@pytest.mark.integration
def test_an_interpreter_that_cannot_list_its_packages_is_an_error(
    tmp_path: Path, advisory_mirror: Path
) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'not json'\n")
    fake.chmod(0o755)
    result = run_check(
        tmp_path, None, advisories=advisory_mirror, python=str(fake), source="environment"
    )
    assert result.status is CheckStatus.ERROR
    assert "did not list its installed packages" in result.reason
