"""The pytest kind: JUnit and coverage parsing on captured reports, the probe plugin's session
records (written here as the plugin writes them), and real pytest runs. What a project can do
to make a pytest check pass without running its tests is in
tests/integration/test_pytest_fail_closed.py.

The assets in tests/assets/pytest/ were written by this kind's own command line on a sample
project (one pass, a failing assert, a fixture error, a skip, an xfail, two teardown errors):
junit-mixed.xml and coverage.json (``cov = ["calc"]``), junit-no-tests.xml (``-m nomatch``,
pytest exit 5) and junit-collection-error.xml (``--continue-on-collection-errors`` with a
test file that does not parse).
"""

from __future__ import annotations

import ast
import json
import os
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import Check, CheckContext, _pytest_probe, execute_check
from neuroerp_ci.checks._junit import parse_junit
from neuroerp_ci.checks.pytest import (
    PROBE_DIR_ENV,
    PROBE_MODULE,
    PytestCheck,
    PytestSettings,
    Selection,
    Session,
    check_junit,
    check_session,
    install_probe,
    parse_coverage,
    pytest_argv,
    pytest_env,
    raise_if_not_run,
    read_session,
    selection,
    summary_reason,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, FindingSeverity, Priority
from neuroerp_ci.support.tooling import ToolRun


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

    argv = pytest_argv("/py", settings, tmp_path, Path("/t/base"))

    assert argv == [
        "/py", "-m", "pytest", "tests", "-m", "unit and not slow",
        "-p", "no:cacheprovider", "-p", "neuroerp_ci_pytest_probe", "--basetemp=/t/base",
        f"--junitxml={tmp_path / 'junit.xml'}", "-o", "junit_family=xunit2",
        "--cov=a", "--cov=b", f"--cov-report=json:{tmp_path / 'coverage.json'}", "-x",
    ]  # fmt: skip
    assert not any("fail-under" in a for a in argv)


def test_pytest_argv_without_cov_or_markers_has_neither(tmp_path: Path) -> None:
    argv = pytest_argv("/py", PytestSettings(paths=["a", "b"]), tmp_path, tmp_path)

    assert argv[:5] == ["/py", "-m", "pytest", "a", "b"]
    assert "-m" not in argv[3:]
    assert not any(a.startswith("--cov") for a in argv)


def test_pytest_env_puts_the_probe_first_and_coverage_data_in_the_work_dir(
    tmp_path: Path,
) -> None:
    env = pytest_env(
        {"PYTHONPATH": "/theirs", "COVERAGE_FILE": "/shared/.coverage", "HOME": "/h"},
        tmp_path / "plugin",
        tmp_path / "probe",
        tmp_path,
    )

    assert env["PYTHONPATH"] == f"{tmp_path / 'plugin'}{os.pathsep}/theirs"
    assert env["NEUROERP_CI_PYTEST_PROBE"] == str(tmp_path / "probe")
    assert env["COVERAGE_FILE"] == str(tmp_path / ".coverage")
    assert (env["PYTHONDONTWRITEBYTECODE"], env["HOME"]) == ("1", "/h")
    assert pytest_env({}, tmp_path, tmp_path, tmp_path)["PYTHONPATH"] == str(tmp_path)


def test_install_probe_writes_the_plugin_under_its_import_name(tmp_path: Path) -> None:
    (tmp_path / "pytest-probe").mkdir()
    (tmp_path / "pytest-probe" / "session-1.jsonl").write_text("{}\n")  # an earlier run's

    plugin_dir, probe_dir = install_probe(tmp_path)

    source = (plugin_dir / f"{PROBE_MODULE}.py").read_text()
    assert source == Path(_pytest_probe.__file__).read_text()
    assert list(plugin_dir.iterdir()) == [plugin_dir / f"{PROBE_MODULE}.py"]
    assert list(probe_dir.iterdir()) == []
    assert _pytest_probe.PROBE_DIR_ENV == PROBE_DIR_ENV
    # The target's interpreter has pytest, not neuroerp_ci or its dependencies.
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name) or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    assert imported <= {"__future__", "json", "os", "sys", "types", "typing", "_pytest",
                        "pluggy", "pytest"}, imported  # fmt: skip


@pytest.mark.parametrize(
    ("code", "stderr", "message"),
    [
        (1, "/usr/bin/python3: No module named pytest\n", "pytest is not installed for /py"),
        (2, "Interrupted: 1 error during collection", r"exit 2 \(interrupted\).*collection"),
        (3, "INTERNALERROR> RuntimeError: hook bug", r"exit 3 \(internal error\).*hook bug"),
        (4, "ERROR: file or directory not found: nothere", r"exit 4 \(usage error\).*nothere"),
        (-9, "", "pytest exited -9"),
    ],
)
def test_exit_status_that_means_no_run_is_an_error(code: int, stderr: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        raise_if_not_run(fake_run(code, stderr=stderr), "/py")


@pytest.mark.parametrize("code", [0, 1, 5])
def test_exit_status_0_1_and_5_leave_the_verdict_to_the_session_and_junit(code: int) -> None:
    raise_if_not_run(fake_run(code, stdout="1 failed"), "/py")


def test_exit_status_2_after_some_tests_names_the_gap(tmp_path: Path) -> None:
    session = make_session(tmp_path, collected=5, tests=[("t1", "passed", True)], finish=None)

    with pytest.raises(ToolError) as raised:
        raise_if_not_run(fake_run(2, stdout="!!! _pytest.outcomes.Exit: bye !!!"), "/py", session)

    assert str(raised.value) == (
        "pytest did not complete: exit 2 (interrupted), collected 5, ran 1:"
        " _pytest.outcomes.Exit: bye"
    )


# --- the probe's session record --------------------------------------------------------------


def write_records(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def start(**options: Any) -> dict[str, Any]:
    base = {"markexpr": "", "keyword": "", "deselect": [], "collectonly": False, "cov_source": []}
    return {"event": "start", "worker": None, "numprocesses": 0, **base, **options}


def make_session(
    tmp_path: Path,
    *,
    collected: int = 2,
    deselected: int = 0,
    selected: int | None = None,
    removed_by: dict[str, int] | None = None,
    errors: int = 0,
    skipped: int = 0,
    tests: list[tuple[str, str, bool]] | None = None,
    finish: int | None = 0,
    **options: Any,
) -> Session:
    """A session record as the probe writes it; by default two tests that passed."""
    tests = [("t1", "passed", True), ("t2", "passed", True)] if tests is None else tests
    records = [start(**options)]
    records.append(
        {
            "event": "collected", "collected": collected, "errors": errors, "skipped": skipped,
            "deselected": deselected, "removed_by": removed_by or {},
            "selected": collected - deselected if selected is None else selected,
        }
    )  # fmt: skip
    records += [{"event": "test", "nodeid": n, "outcome": o, "ran": r} for n, o, r in tests]
    if finish is not None:
        records.append({"event": "finish", "exitstatus": finish})
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_records(tmp_path / "session-1.jsonl", *records)
    session = read_session(tmp_path)
    assert session is not None
    return session


def session_error(session: Session, expected: Selection | None = None, stdout: str = "") -> str:
    with pytest.raises(ToolError) as raised:
        check_session(session, expected or Selection(), fake_run(0, stdout=stdout))
    return str(raised.value)


def test_read_session_counts_each_test_once_and_keeps_its_record(tmp_path: Path) -> None:
    tests = [("a", "passed", True), ("a", "failure", True), ("b", "skipped", True)]
    session = make_session(tmp_path, tests=[*tests, ("c", "passed", False)], collected=3)

    assert (session.ran, session.outcomes["passed"], session.set_up_only) == (2, 1, 1)
    assert session.finished and session.counts() == "collected 3, ran 2"
    assert session.record == tmp_path / "session-1.jsonl"


def test_read_session_without_a_started_session_is_none(tmp_path: Path) -> None:
    assert read_session(tmp_path) is None
    (tmp_path / "session-7.jsonl").write_text("")  # configured, then a usage error

    assert read_session(tmp_path) is None


def test_read_session_of_garbage_or_of_two_sessions_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "session-1.jsonl").write_text('{"event": "start"}\n{"event": "te')
    with pytest.raises(ToolError, match=r"session-1.jsonl:2 is unreadable"):
        read_session(tmp_path)
    (tmp_path / "session-1.jsonl").write_text("[1]\n")
    with pytest.raises(ToolError, match=r"session-1.jsonl:1 is not an object"):
        read_session(tmp_path)
    write_records(tmp_path / "session-1.jsonl", start())
    write_records(tmp_path / "session-2.jsonl", start())
    with pytest.raises(ToolError, match="2 pytest sessions loaded the probe plugin"):
        read_session(tmp_path)


def test_a_session_whose_every_test_ran_passes_the_check(tmp_path: Path) -> None:
    session = make_session(tmp_path, collected=5, deselected=3, markexpr="unit")

    check_session(session, Selection(markexpr="unit"), fake_run(0))


@pytest.mark.parametrize(
    ("changes", "options", "expected"),
    [
        ({"collectonly": True}, {}, "pytest only collected the tests (--collect-only"),
        ({"keyword": "smoke"}, {}, "pytest selected tests with -k 'smoke', which the check"),
        ({"markexpr": "fast"}, {"markexpr": "unit"}, "with -m 'fast'"),
        ({"markexpr": ""}, {"markexpr": "unit"}, "with -m ''"),
        ({"deselect": ["a", "b"]}, {"deselect": ("a",)}, "with --deselect b,"),
        ({"cov_source": ["app", True]}, {"cov": frozenset({"app"})}, "with --cov,"),
        ({"cov_source": ["app", "x"]}, {"cov": frozenset({"app"})}, "with --cov=x,"),
    ],
)
def test_options_the_check_did_not_set_are_an_error(
    tmp_path: Path, changes: dict[str, Any], options: dict[str, Any], expected: str
) -> None:
    session = make_session(tmp_path, **changes)

    assert expected in session_error(session, Selection(**options))


def xdist_session(tmp_path: Path, *worker_collections: dict[str, Any] | None) -> Session:
    """A main process that ran 2 tests on workers, and one record per worker."""
    tests = [{"event": "test", "nodeid": n, "outcome": "passed", "ran": True} for n in "ab"]
    finish = {"event": "finish", "exitstatus": 0}
    tmp_path.mkdir(exist_ok=True)
    write_records(tmp_path / "session-1.jsonl", start(numprocesses=2), *tests, finish)
    for n, collected in enumerate(worker_collections, 2):
        own = [collected] if collected is not None else []
        write_records(tmp_path / f"session-{n}.jsonl", start(worker=f"gw{n}"), *own)
    session = read_session(tmp_path)
    assert session is not None
    return session


def test_xdist_workers_collect_and_the_main_process_counts_the_tests(tmp_path: Path) -> None:
    collected = {"event": "collected", "collected": 3, "deselected": 1, "selected": 2}
    session = xdist_session(tmp_path, collected, collected, None)  # gw4 crashed at start

    check_session(session, Selection(), fake_run(0))
    assert (session.counts(), len(session.workers)) == ("collected 2, ran 2", 3)


def test_xdist_workers_that_disagree_or_did_not_collect_are_an_error(tmp_path: Path) -> None:
    dropped = {"event": "collected", "collected": 3, "selected": 2}
    with pytest.raises(ToolError, match="pytest-xdist workers disagree on the collection"):
        xdist_session(tmp_path / "a", {**dropped, "selected": 3}, dropped)
    assert "collected 3, ran 2: 1 dropped silently" in session_error(
        xdist_session(tmp_path / "b", dropped)
    )
    assert session_error(xdist_session(tmp_path / "c", None)) == (
        "pytest-xdist ran 2 workers, but none of them recorded a collection (remote workers"
        " without the probe plugin?)"
    )
    worker_k = tmp_path / "d"
    xdist_session(worker_k, {**dropped, "selected": 3})
    write_records(worker_k / "session-2.jsonl", start(worker="gw2", keyword="x"), dropped)
    with pytest.raises(ToolError, match="with -k 'x'"):
        read_session_checked(worker_k)


def read_session_checked(directory: Path) -> None:
    session = read_session(directory)
    assert session is not None
    check_session(session, Selection(), fake_run(0))


@pytest.mark.parametrize(
    ("counts", "stdout", "expected"),
    [
        (
            {"collected": 4, "selected": 2, "removed_by": {"tests/conftest.py": 1}},
            "",
            "collected 4, ran 2: 1 deselected by tests/conftest.py, 1 dropped silently by a"
            " conftest or plugin after collection, not by the check's own selection",
        ),
        ({"collected": 0}, "", "pytest: no tests collected for -m 'unit'"),
        (
            {"finish": None},
            "",
            "collected 2, ran 2: the pytest session ended without finishing (exit 0; a test"
            " called os._exit, or pytest crashed)",
        ),
        (
            {"collected": 3},
            "x\n!!!!!!! stopping after 1 failures !!!!!!!\n== 1 failed ==",
            "collected 3, ran 2: pytest stopped early (stopping after 1 failures)",
        ),
        (
            {"collected": 3},
            "",
            "collected 3, ran 2: the session ended early (exit 0), with no reason given",
        ),
        (
            {"tests": [("t1", "passed", False), ("t2", "passed", False)]},
            "",
            "collected 2, ran 0: 2 tests were set up but never called (--setup-only?)",
        ),
        (
            {"tests": [("t1", "skipped", True), ("t2", "skipped", True)]},
            "",
            "collected 2, ran 2, all skipped: nothing was tested",
        ),
    ],
)
def test_a_session_that_did_not_run_its_tests_is_an_error(
    tmp_path: Path, counts: dict[str, Any], stdout: str, expected: str
) -> None:
    session = make_session(tmp_path, markexpr="unit", **counts)

    assert session_error(session, Selection(markexpr="unit"), stdout) == expected


def test_selection_reads_the_options_as_pytest_does() -> None:
    args = ["tests", "-munit", "-p", "no:x", "--deselect=a::b", "--deselect", "c", "-k", "x"]

    assert selection([*args, "--cov", "--cov=app", "-o", "k=v"]) == Selection(
        "unit", "x", ("a::b", "c"), frozenset({"", "app"})
    )
    assert selection(["-m", "a", "-m", "b", "--co", "--cov-report=json:x"]) == Selection("b")
    with pytest.raises(ToolError, match="malformed"):
        selection(["-k"])


def test_check_junit_counts_collection_errors_and_skipped_modules(
    assets: Path, tmp_path: Path
) -> None:
    summary = parse_junit(assets / "pytest" / "junit-mixed.xml")
    # junit-mixed.xml: 1 passed, 2 failures, 2 errors, 2 skipped
    tests = [("p", "passed", True), ("f1", "failure", True), ("f2", "failure", True),
             ("e1", "error", True), ("s1", "skipped", True)]  # fmt: skip
    check_junit(summary, make_session(tmp_path / "a", collected=5, tests=tests, errors=1,
                                      skipped=1))  # fmt: skip

    with pytest.raises(ToolError) as raised:
        check_junit(summary, make_session(tmp_path / "b", collected=5, tests=tests))
    assert str(raised.value) == (
        "the JUnit report does not match the session: it lists 7 tests (2 failed, 2 errors,"
        " 2 skipped), pytest reported 5 tests (2 failed, 1 errors, 1 skipped)"
    )


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
