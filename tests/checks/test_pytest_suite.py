"""The pytest kind: JUnit and coverage parsing on captured reports, and real pytest runs.

The assets in tests/assets/pytest/ were written by this kind's own command line on a sample
project (one pass, a failing assert, a fixture error, a skip, an xfail, two teardown errors):
junit-mixed.xml and coverage.json (``cov = ["calc"]``), junit-no-tests.xml (``-m nomatch``,
pytest exit 5) and junit-collection-error.xml (``--continue-on-collection-errors`` with a
test file that does not parse).
"""

from __future__ import annotations

import json
import os
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import Check, CheckContext, execute_check
from neuroerp_ci.checks._junit import parse_junit
from neuroerp_ci.checks.pytest_suite import (
    PytestCheck,
    PytestSettings,
    parse_coverage,
    pytest_argv,
    raise_if_not_run,
    summary_reason,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, FindingSeverity, Priority
from neuroerp_ci.tooling import ToolRun


def make_check(settings: PytestSettings, timeout: float = 120.0) -> Check:
    return Check(
        id="tests",
        title="tests",
        kind="pytest",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=timeout,
        settings=settings,
    )


def run_check(project: Path, settings: PytestSettings, python: str = sys.executable) -> CheckResult:
    ctx = CheckContext(
        project_dir=project, work_dir=project / "work", python=python, env=dict(os.environ)
    )
    return execute_check(PytestCheck(), make_check(settings), ctx)


def sample_project(root: Path, tests: dict[str, str], code: str | None = None) -> Path:
    """A project with its own pytest.ini (so the outer suite's config does not apply)."""
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow tests\n")
    for name, text in tests.items():
        (root / "tests" / name).write_text(text)
    if code is not None:
        (root / "shop").mkdir()
        (root / "shop" / "__init__.py").write_text(code)
    return root


PRICES = """\
def net(gross):
    return gross / 1.19


def discount(price, percent):
    if percent > 50:
        raise ValueError("too much")
    return price * (100 - percent) / 100
"""


def fake_run(code: int, stdout: str = "", stderr: str = "") -> ToolRun:
    return ToolRun(("python", "-m", "pytest"), code, stdout, stderr, 0.1)


# --- JUnit ----------------------------------------------------------------------------------


def test_parse_junit_counts_each_test_once_by_its_worst_entry(assets: Path) -> None:
    summary = parse_junit(assets / "pytest" / "junit-mixed.xml")

    # pytest's own <testsuite> says tests=8 errors=3 (a test that fails and then errors in
    # teardown gets two <testcase> entries); here each of the 7 tests counts once.
    assert (summary.tests, summary.passed, summary.failed) == (7, 1, 4)
    assert (summary.errors, summary.failures, summary.skipped) == (2, 2, 2)
    assert summary.passed + summary.failed + summary.skipped == summary.tests
    assert summary.duration_s == pytest.approx(0.09)


def test_parse_junit_names_failed_tests_with_message_and_place(assets: Path) -> None:
    problems = {p.test_id: p for p in parse_junit(assets / "pytest" / "junit-mixed.xml").problems}

    assert set(problems) == {
        "tests.test_calc::test_sub",
        "tests.test_calc::test_error",
        "tests.test_teardown::test_fails_then_teardown_errors",
        "tests.test_teardown::test_passes_then_teardown_errors",
    }
    sub = problems["tests.test_calc::test_sub"]
    assert (sub.outcome, sub.name) == ("failure", "test_sub")
    assert sub.message == "AssertionError: sub is wrong"
    assert sub.location == "tests/test_calc.py:17"
    fixture = problems["tests.test_calc::test_error"]
    assert fixture.outcome == "error"
    assert fixture.message == 'failed on setup with "RuntimeError: fixture exploded"'
    assert fixture.location == "tests/test_calc.py:8"  # the fixture that raised
    # The assertion failure wins over the teardown error of the same test.
    both = problems["tests.test_teardown::test_fails_then_teardown_errors"]
    assert (both.outcome, both.message) == ("failure", "assert (1 + 1) == 3")


def test_parse_junit_collection_error_is_named_by_module(assets: Path) -> None:
    summary = parse_junit(assets / "pytest" / "junit-collection-error.xml")

    broken = [p for p in summary.problems if p.test_id == "tests.test_broken"]
    assert len(broken) == 1
    assert broken[0].outcome == "error"
    assert broken[0].message == "collection failure"
    assert broken[0].location == "tests.test_broken"  # not a frame inside pytest


def test_parse_junit_of_an_empty_selection_has_no_tests(assets: Path) -> None:
    summary = parse_junit(assets / "pytest" / "junit-no-tests.xml")

    assert (summary.tests, summary.failed, summary.problems) == (0, 0, ())


def test_parse_junit_missing_or_garbage_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="missing"):
        parse_junit(tmp_path / "junit.xml")
    (tmp_path / "junit.xml").write_text("<testsuites><testsuite")
    with pytest.raises(ToolError, match="unreadable"):
        parse_junit(tmp_path / "junit.xml")
    (tmp_path / "junit.xml").write_text("<html><body>no</body></html>")
    with pytest.raises(ToolError, match="root <html>"):
        parse_junit(tmp_path / "junit.xml")


# --- coverage -------------------------------------------------------------------------------


def coverage_asset(assets: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((assets / "pytest" / "coverage.json").read_text())
    return data


def test_parse_coverage_reads_totals_and_version(assets: Path) -> None:
    covered = parse_coverage(coverage_asset(assets), ["calc"])

    assert (covered.percent, covered.statements, covered.version) == (62.5, 8, "7.17.5")


def test_parse_coverage_of_no_statement_is_an_error(assets: Path) -> None:
    data = coverage_asset(assets)
    data["totals"].update(num_statements=0, covered_lines=0, percent_covered=100.0)

    with pytest.raises(ToolError, match="coverage of calc measured no statement"):
        parse_coverage(data, ["calc"])


def test_parse_coverage_without_totals_is_an_error(assets: Path) -> None:
    data = coverage_asset(assets)
    del data["totals"]

    with pytest.raises(ToolError, match="no totals"):
        parse_coverage(data, ["calc"])


# --- command line, exit status, reason, settings ---------------------------------------------


def test_pytest_argv_passes_markers_coverage_and_args_in_order(tmp_path: Path) -> None:
    settings = PytestSettings(markers="unit and not slow", cov=["a", "b"], args=["-x"])

    argv = pytest_argv("/py", settings, tmp_path)

    assert argv == [
        "/py", "-m", "pytest", "tests", "-m", "unit and not slow",
        "-p", "no:cacheprovider", f"--junitxml={tmp_path / 'junit.xml'}",
        "-o", "junit_family=xunit2", "--cov=a", "--cov=b",
        f"--cov-report=json:{tmp_path / 'coverage.json'}", "-x",
    ]  # fmt: skip
    assert not any("fail-under" in a for a in argv)


def test_pytest_argv_without_cov_or_markers_has_neither(tmp_path: Path) -> None:
    argv = pytest_argv("/py", PytestSettings(paths=["a", "b"]), tmp_path)

    assert argv[:5] == ["/py", "-m", "pytest", "a", "b"]
    assert "-m" not in argv[3:]
    assert not any(a.startswith("--cov") for a in argv)


@pytest.mark.parametrize(
    ("code", "stderr", "message"),
    [
        (1, "/usr/bin/python3: No module named pytest\n", "pytest is not installed for /py"),
        (2, "Interrupted: 1 error during collection", r"exit 2 \(interrupted\).*collection"),
        (3, "INTERNALERROR> RuntimeError: hook bug", r"exit 3 \(internal error\).*hook bug"),
        (4, "ERROR: file or directory not found: nothere", r"exit 4 \(usage error\).*nothere"),
        (5, "", "no tests collected for -m 'slow'"),
        (-9, "", "pytest exited -9"),
    ],
)
def test_exit_status_that_means_no_run_is_an_error(code: int, stderr: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        raise_if_not_run(fake_run(code, stderr=stderr), "/py", "slow")


@pytest.mark.parametrize("code", [0, 1])
def test_exit_status_0_and_1_leave_the_verdict_to_junit(code: int) -> None:
    raise_if_not_run(fake_run(code, stdout="1 failed"), "/py", None)


def test_reason_names_failed_tests_and_coverage(assets: Path) -> None:
    summary = parse_junit(assets / "pytest" / "junit-mixed.xml")
    covered = parse_coverage(coverage_asset(assets), ["calc"])

    assert summary_reason(summary, covered) == (
        "1 passed, 4 failed (test_sub, test_error, test_fails_then_teardown_errors, +1 more), "
        "2 skipped, coverage 62.5 %"
    )


def test_settings_take_a_single_package_and_reject_unknown_keys() -> None:
    assert PytestSettings.model_validate({"cov": "app"}).cov == ["app"]
    assert PytestSettings().paths == ["tests"]
    with pytest.raises(ValidationError):
        PytestSettings.model_validate({"marker": "unit"})


# --- real pytest runs -----------------------------------------------------------------------


@pytest.mark.integration
def test_passing_suite(tmp_path: Path) -> None:
    tests = {"test_ok.py": "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"}
    project = sample_project(tmp_path, tests)

    result = run_check(project, PytestSettings())

    assert result.status is CheckStatus.OK, result.reason
    assert result.reason == "2 passed"
    values = {name: m.value for name, m in result.metrics.items()}
    assert values == {
        "tests": 2, "passed": 2, "failed": 0, "errors": 0, "skipped": 0,
        "duration_s": result.metrics["duration_s"].value,
    }  # fmt: skip
    assert result.metrics["passed"].direction is Direction.HIGHER
    assert result.findings == []
    assert result.tool_versions["pytest"] == pytest.__version__
    assert "2 passed" in Path(result.artifacts["log"]).read_text()
    assert Path(result.artifacts["junit"]).is_file()


@pytest.mark.integration
def test_failing_test_is_counted_and_named(tmp_path: Path) -> None:
    tests = {
        "test_orders.py": (
            "def test_total():\n    assert 2 + 2 == 4\n\n\n"
            "def test_vat():\n    assert round(100 * 1.19) == 120, 'VAT is off'\n"
        )
    }
    project = sample_project(tmp_path, tests)

    result = run_check(project, PytestSettings())

    assert result.status is CheckStatus.OK, result.reason  # a failing test is a measurement
    assert (result.metrics["passed"].value, result.metrics["failed"].value) == (1, 1)
    assert result.reason == "1 passed, 1 failed (test_vat)"
    [finding] = result.findings
    assert finding.tool == "pytest"
    assert finding.rule == "tests.test_orders::test_vat"
    assert finding.severity is FindingSeverity.HIGH
    assert finding.message.startswith("AssertionError: VAT is off")
    assert finding.location == "tests/test_orders.py:6"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("test_body", "expected_pct"),
    [
        ("assert net(119) == 100.0", 50.0),  # 3 of 6 statements: discount() never runs
        (
            "assert net(119) == 100.0\n    assert discount(10, 10) == 9\n"
            "    try:\n        discount(1, 60)\n    except ValueError:\n        pass",
            100.0,
        ),
    ],
)
def test_coverage_is_read_from_the_json_report(
    tmp_path: Path, test_body: str, expected_pct: float
) -> None:
    source = f"from shop import discount, net\n\n\ndef test_shop():\n    {test_body}\n"
    tests = {"test_shop.py": source}
    project = sample_project(tmp_path, tests, code=PRICES)

    result = run_check(project, PytestSettings(cov=["shop"]))

    assert result.status is CheckStatus.OK, result.reason
    coverage = result.metrics["coverage_pct"]
    assert (coverage.value, coverage.unit, coverage.direction) == (expected_pct, "%", "higher")
    assert result.reason.endswith(f"coverage {expected_pct:g} %")
    assert json.loads(Path(result.artifacts["coverage"]).read_text())["totals"]
    assert "coverage" in result.tool_versions


@pytest.mark.integration
def test_cov_fail_under_in_args_does_not_count_as_a_failed_test(tmp_path: Path) -> None:
    source = "from shop import net\n\n\ndef test_net():\n    assert net(119) == 100.0\n"
    project = sample_project(tmp_path, {"test_shop.py": source}, code=PRICES)

    result = run_check(project, PytestSettings(cov=["shop"], args=["--cov-fail-under=90"]))

    # pytest-cov makes pytest exit 1 like a failed test; JUnit and the JSON report tell.
    assert result.status is CheckStatus.OK, result.reason
    assert (result.metrics["failed"].value, result.metrics["coverage_pct"].value) == (0, 50.0)
    assert result.reason.startswith("1 passed, coverage 50 % (pytest exited 1 with no failing")


@pytest.mark.integration
def test_coverage_of_a_package_no_test_imports_is_zero(tmp_path: Path) -> None:
    project = sample_project(tmp_path, {"test_ok.py": "def test_one():\n    pass\n"}, code=PRICES)

    result = run_check(project, PytestSettings(cov=["shop"]))

    # shop/ is a directory of the project, so coverage reports its unexecuted statements.
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["coverage_pct"].value == 0.0


@pytest.mark.integration
def test_coverage_of_a_package_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    project = sample_project(tmp_path, {"test_ok.py": "def test_one():\n    pass\n"})

    result = run_check(project, PytestSettings(cov=["nosuchpkg"]))

    # pytest exits 0; pytest-cov warns "Module nosuchpkg was never imported" and writes no JSON.
    assert result.status is CheckStatus.ERROR
    assert result.reason == (
        "pytest-cov wrote no report (coverage.json missing): "
        "Module nosuchpkg was never imported. No data was collected."
    )


@pytest.mark.integration
def test_no_tests_collected_for_markers_is_an_error(tmp_path: Path) -> None:
    project = sample_project(tmp_path, {"test_ok.py": "def test_one():\n    pass\n"})

    result = run_check(project, PytestSettings(markers="slow"))

    assert result.status is CheckStatus.ERROR
    assert result.reason == "pytest: no tests collected for -m 'slow'"


@pytest.mark.integration
def test_syntax_error_in_a_test_file_is_an_error(tmp_path: Path) -> None:
    tests = {"test_ok.py": "def test_one():\n    pass\n", "test_bad.py": "def test_x(:\n    pass\n"}
    project = sample_project(tmp_path, tests)

    result = run_check(project, PytestSettings())

    # A collection error interrupts the session (exit 2) before any test runs.
    assert result.status is CheckStatus.ERROR
    assert "pytest could not run: exit 2 (interrupted)" in result.reason
    assert "1 error during collection" in result.reason


@pytest.mark.integration
def test_interpreter_without_pytest_is_an_error(tmp_path: Path) -> None:
    bare = tmp_path / "bare-venv"
    venv.create(bare, with_pip=False, symlinks=True)
    project = sample_project(tmp_path / "project", {"test_ok.py": "def test_one():\n    pass\n"})

    result = run_check(project, PytestSettings(), python=str(bare / "bin" / "python"))

    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("pytest is not installed for ")
    assert "bare-venv" in result.reason


@pytest.mark.integration
def test_missing_test_path_is_an_error(tmp_path: Path) -> None:
    project = sample_project(tmp_path, {"test_ok.py": "def test_one():\n    pass\n"})

    result = run_check(project, PytestSettings(paths=["tests/nothere"]))

    assert result.status is CheckStatus.ERROR
    assert "exit 4 (usage error)" in result.reason
    assert "nothere" in result.reason
