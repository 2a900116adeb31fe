"""The bandit kind: report parsing on captured bandit 1.9.4 reports, and real bandit runs.

The assets in tests/assets/bandit/ were written by this kind's own command line
(``bandit_argv``) on a sample project in /tmp/neuroerp-bandit with app/shell.py
(subprocess shell=True, hashlib.md5), a vendored .venv file and a tests/ file (both
excluded): bandit-findings.json; bandit-syntax-error.json (plus app/broken.py, which does not
parse: bandit exit 1 for the findings, the file only in ``errors``);
bandit-missing-path.json (``paths = ["nothere"]``: exit 0) and bandit-empty-dir.json
(``paths = ["empty"]``: exit 0, loc 0).
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import Check, CheckContext, execute_check
from neuroerp_ci.checks.bandit_scan import (
    BanditCheck,
    BanditSettings,
    bandit_argv,
    parse_bandit_report,
    report_reason,
    require_complete,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, FindingSeverity, Priority

CAPTURED_IN = Path("/tmp/neuroerp-bandit")  # the project the assets were captured in

SHELL = """\
import subprocess


def run(command):
    return subprocess.call(command, shell=True)
"""


def load(assets: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((assets / "bandit" / name).read_text())
    return data


def run_check(project: Path, settings: BanditSettings) -> CheckResult:
    check = Check(
        id="bandit",
        title="bandit",
        kind="bandit",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=120,
        settings=settings,
    )
    ctx = CheckContext(
        project_dir=project,
        work_dir=project / ".neuroerp-ci" / "work",
        python=sys.executable,
        env=dict(os.environ),
    )
    return execute_check(BanditCheck(), check, ctx)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# --- parsing captured reports ---------------------------------------------------------------


def test_parse_report_gives_findings_with_relative_locations(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-findings.json"), CAPTURED_IN)

    assert (report.loc, report.files, report.errors) == (6, 1, ())
    rules = [(f.rule, f.severity, f.location) for f in report.findings]
    assert rules == [
        ("B404", FindingSeverity.LOW, "app/shell.py:1"),
        ("B602", FindingSeverity.HIGH, "app/shell.py:5"),
        ("B324", FindingSeverity.HIGH, "app/shell.py:11"),
    ]
    b602 = report.findings[1]
    assert b602.tool == "bandit"
    assert b602.confidence == "high"
    assert b602.message == (
        "subprocess call with shell=True identified, security issue. "
        "(subprocess_popen_with_shell_equals_true)"
    )
    require_complete(report)  # does not raise


def test_reason_counts_findings_by_severity(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-findings.json"), CAPTURED_IN)

    assert report_reason(report) == "3 findings (2 high, 0 medium, 1 low) in 1 files, 6 lines"


def test_undefined_severity_counts_as_high(assets: Path) -> None:
    data = load(assets, "bandit-findings.json")
    data["results"][0]["issue_severity"] = "UNDEFINED"

    report = parse_bandit_report(data, CAPTURED_IN)

    assert report.findings[0].severity is FindingSeverity.UNKNOWN
    assert report.count(FindingSeverity.HIGH) == 3


def test_file_that_does_not_parse_is_an_error(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-syntax-error.json"), CAPTURED_IN)

    assert report.files == 2 and len(report.findings) == 3  # the rest was still scanned
    with pytest.raises(ToolError) as caught:
        require_complete(report)
    assert str(caught.value) == (
        "bandit could not audit 1 path(s): app/broken.py (syntax error while parsing AST from file)"
    )


def test_missing_path_is_an_error(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-missing-path.json"), CAPTURED_IN)

    with pytest.raises(ToolError, match=r"nothere \(No such file or directory\)"):
        require_complete(report)


def test_empty_directory_audited_no_code(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-empty-dir.json"), CAPTURED_IN)

    assert (report.loc, report.files, report.errors) == (0, 0, ())
    with pytest.raises(ToolError, match="bandit audited no code"):
        require_complete(report)


@pytest.mark.parametrize(
    "broken", [[], {"results": []}, {"metrics": {}, "errors": [], "results": []}]
)
def test_report_of_another_shape_is_an_error(broken: Any) -> None:
    with pytest.raises(ToolError, match="unexpected shape"):
        parse_bandit_report(broken, CAPTURED_IN)


# --- command line and settings --------------------------------------------------------------


def test_argv_uses_absolute_targets_and_exclusions(tmp_path: Path) -> None:
    settings = BanditSettings(
        paths=["app", "."], exclude=["tests", "*/migrations/*"], skips=["B101"]
    )

    argv = bandit_argv("bandit", settings, tmp_path, tmp_path / "out.json")

    assert argv == [
        "bandit", "-r", "-f", "json", "-o", str(tmp_path / "out.json"), "-q",
        "-x", f"{tmp_path / 'tests'},*/migrations/*", "-s", "B101",
        str(tmp_path / "app"), str(tmp_path),
    ]  # fmt: skip


def test_settings_reject_values_bandit_would_split() -> None:
    with pytest.raises(ValidationError):
        BanditSettings(exclude=["a,b"])
    with pytest.raises(ValidationError):
        BanditSettings(skips=["B101,B102"])
    with pytest.raises(ValidationError):
        BanditSettings(paths=[])


# --- real bandit runs -----------------------------------------------------------------------


@pytest.mark.integration
def test_shell_true_is_a_high_finding(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings())

    assert result.status is CheckStatus.OK, result.reason
    b602 = [f for f in result.findings if f.rule == "B602"]
    assert len(b602) == 1
    assert (b602[0].severity, b602[0].location) == (FindingSeverity.HIGH, "app/shell.py:5")
    values = {name: m.value for name, m in result.metrics.items()}
    assert values == {
        "loc": 3, "files": 1, "findings_high": 1, "findings_medium": 0, "findings_low": 1,
    }  # fmt: skip
    assert result.tool_versions == {"bandit": version("bandit")}
    assert json.loads(Path(result.artifacts["bandit_json"]).read_text())["results"]


@pytest.mark.integration
def test_default_exclusions_really_exclude(tmp_path: Path) -> None:
    # bandit itself would keep scanning .venv/ and tests/ given "-x .venv,tests" (relative).
    project = write(
        tmp_path,
        {
            "app/ok.py": "def add(a, b):\n    return a + b\n",
            ".venv/lib/vendored.py": "eval('1')\n",
            "tests/test_app.py": "def test_add():\n    assert True\n",
            "node_modules/x/build.py": SHELL,
        },
    )

    result = run_check(project, BanditSettings())

    assert result.status is CheckStatus.OK, result.reason
    assert result.findings == []
    assert result.metrics["files"].value == 1
    assert result.reason == "no findings in 1 files, 2 lines"


@pytest.mark.integration
def test_skipped_rules_are_not_reported(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings(skips=["B602", "B404"]))

    assert result.status is CheckStatus.OK, result.reason
    assert result.findings == []


@pytest.mark.integration
def test_file_that_does_not_parse_is_an_error_in_a_real_run(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL, "app/broken.py": "def broken(:\n    pass\n"})

    result = run_check(project, BanditSettings())

    assert result.status is CheckStatus.ERROR
    assert result.reason == (
        "bandit could not audit 1 path(s): app/broken.py (syntax error while parsing AST from file)"
    )


@pytest.mark.integration
def test_missing_path_is_an_error_in_a_real_run(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings(paths=["app", "nothere"]))

    assert result.status is CheckStatus.ERROR
    assert result.reason == "bandit could not audit 1 path(s): nothere (No such file or directory)"


@pytest.mark.integration
def test_empty_directory_is_an_error_in_a_real_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    result = run_check(tmp_path, BanditSettings(paths=["empty"]))

    assert result.status is CheckStatus.ERROR
    assert result.reason == "bandit audited no code (0 lines in 0 files)"


@pytest.mark.integration
def test_executable_override_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings(executable="tools/no-such-bandit"))

    assert result.status is CheckStatus.ERROR
    assert "not found" in result.reason
    assert "no-such-bandit" in result.reason


@pytest.mark.integration
def test_executable_override_relative_to_the_project(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})
    wrapper = project / "tools" / "bandit"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / "bandit"} "$@"\n')
    wrapper.chmod(0o755)

    result = run_check(project, BanditSettings(executable="tools/bandit"))

    assert result.status is CheckStatus.OK, result.reason
    assert [f.rule for f in result.findings] == ["B404", "B602"]
