"""A pytest check fails closed on real projects: what the project's own configuration, conftest
files, plugins or tests do cannot make it pass without its tests having run, and two pytest
checks running at once never share coverage data. Real pytest and pytest-cov, as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neuroerp_ci.checks import Check, CheckContext, execute_check
from neuroerp_ci.checks.pytest import PytestCheck, PytestSettings
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    OutcomeStatus,
    Priority,
    StageReport,
    Verdict,
)
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage

pytestmark = pytest.mark.integration

THREE_TESTS = """\
def test_first():
    assert 1 + 1 == 2


def test_second():
    assert 2 * 2 == 4


def test_third():
    assert 3 - 3 == 0
"""


def clean_env() -> dict[str, str]:
    """This process's environment without the outer pytest's or coverage's settings, and
    writing bytecode (so a test can see that the check keeps it out of the project)."""
    ours = ("PYTEST_", "COVERAGE_", "NEUROERP_CI_", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if not k.startswith(ours)}


def write_project(
    root: Path,
    tests: dict[str, str],
    *,
    ini: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    """A project with its own pytest.ini (``ini`` lines appended) and test files."""
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text(f"[pytest]\n{ini}\n", encoding="utf-8")
    for name, text in tests.items():
        (root / "tests" / name).write_text(text, encoding="utf-8")
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def run_check(
    project: Path, settings: PytestSettings | None = None, env: dict[str, str] | None = None
) -> CheckResult:
    check = Check(
        id="tests",
        title="tests",
        kind="pytest",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=120.0,
        settings=settings or PytestSettings(),
    )
    ctx = CheckContext(
        project_dir=project,
        work_dir=project / "work",
        python=sys.executable,
        env=env if env is not None else clean_env(),
    )
    return execute_check(PytestCheck(), check, ctx)


def assert_error(result: CheckResult, *parts: str) -> None:
    assert result.status is CheckStatus.ERROR, f"{result.status}: {result.reason}"
    for part in parts:
        assert part in result.reason, result.reason


# --- nothing tested is not a pass -----------------------------------------------------------


def run_stage_of(
    project: Path, checks: str, conditions: str, out: Path, env: dict[str, str] | None = None
) -> StageReport:
    """Run a stage of ``checks`` (pipeline-file text) gated by ``conditions`` in threads."""
    ids = re.findall(r'^id = "([^"]+)"', checks, re.MULTILINE)
    config = project / "neuroerp-ci.toml"
    config.write_text(
        f'[target]\nname = "shop"\npython = "{{python}}"\n\n'
        f'{checks}\n[stages.dev]\nchecks = {json.dumps(ids)}\n'
        f"conditions = [\n{conditions}]\n",
        encoding="utf-8",
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcome = run_stage(
            load_pipeline(config),
            RunOptions(stage="dev", output_dir=out, run_id=out.name, env=env or clean_env()),
            ThreadExecutor(pool),
        )
    return outcome.report


SKIPPED = {
    "skip marks": (
        "import pytest\n\n\n@pytest.mark.skip(reason='later')\ndef test_a():\n    pass\n\n\n"
        "@pytest.mark.skipif(True, reason='not here')\ndef test_b():\n    pass\n"
    ),
    "skip calls": (
        "import pytest\n\n\ndef test_a():\n    pytest.skip('no db')\n\n\n"
        "def test_b():\n    pytest.importorskip('no_such_module_here')\n"
    ),
    "xfail everything": (
        "import pytest\n\n\n@pytest.mark.xfail\ndef test_a():\n    assert 0\n\n\n"
        "@pytest.mark.xfail(run=False)\ndef test_b():\n    assert 0\n"
    ),
}


@pytest.mark.parametrize("body", SKIPPED.values(), ids=SKIPPED.keys())
def test_all_tests_skipped_is_an_error_and_fails_the_stage(tmp_path: Path, body: str) -> None:
    project = write_project(tmp_path / "p", {"test_skips.py": body})

    report = run_stage_of(
        project,
        '[[checks]]\nid = "unit"\nkind = "pytest"\n',
        '{ check = "unit", metric = "failed", max = 0 },\n',
        tmp_path / "out",
    )

    (result,) = report.checks
    assert_error(result, "collected 2, ran 2, all skipped: nothing was tested")
    assert report.verdict is Verdict.FAIL


def test_all_tests_skipped_by_a_conftest_is_an_error(tmp_path: Path) -> None:
    conftest = (
        "import pytest\n\n\ndef pytest_collection_modifyitems(items):\n"
        "    for item in items:\n        item.add_marker(pytest.mark.skip(reason='conftest'))\n"
    )
    project = write_project(tmp_path, {"test_x.py": THREE_TESTS, "conftest.py": conftest})

    assert_error(run_check(project), "collected 3, ran 3, all skipped")


# Each makes pytest run fewer tests than it collected; pytest's exit status is in brackets.
STOPPED_EARLY = {
    "-x in addopts, a failing test first [1]": (
        {"test_x.py": "def test_fails():\n    assert 0\n\n\n" + THREE_TESTS},
        "addopts = -x",
        {},
        ("collected 4, ran 1: pytest stopped early (stopping after 1 failures)",),
    ),
    "--maxfail=2 in addopts [1]": (
        {"test_x.py": "def test_f1():\n    assert 0\n\n\ndef test_f2():\n    assert 0\n\n\n"
         + THREE_TESTS},
        "addopts = --maxfail=2",
        {},
        ("collected 5, ran 2: pytest stopped early (stopping after 2 failures)",),
    ),
    "pytest.exit(returncode=0) in a test [0]": (
        {"test_x.py": "import pytest\n\n\ndef test_exits():\n    pytest.exit('done', returncode=0)"
         "\n\n\n" + THREE_TESTS},
        "",
        {},
        ("collected 4, ran 0: pytest stopped early (_pytest.outcomes.Exit: done)",),
    ),
    "pytest.exit() in a test [2]": (
        {"test_a.py": THREE_TESTS, "test_b.py": "import pytest\n\n\ndef test_exits():\n"
         "    pytest.exit('bye')\n\n\ndef test_after():\n    pass\n"},
        "",
        {},
        ("pytest did not complete: exit 2 (interrupted), collected 5, ran 3: _pytest.outcomes"
         ".Exit: bye",),
    ),
    "os._exit(0) in a test [0]": (
        {"test_a.py": THREE_TESTS, "test_b.py": "import os\n\n\ndef test_exits():\n"
         "    os._exit(0)\n\n\ndef test_after():\n    pass\n"},
        "",
        {},
        ("collected 5, ran 3: the pytest session ended without finishing (exit 0;",),
    ),
    "a conftest that drops items after collection [1]": (
        {"test_x.py": THREE_TESTS, "conftest.py": "def pytest_collection_modifyitems(items):\n"
         "    items[:] = items[:1]\n"},
        "",
        {},
        ("collected 3, ran 1: 2 dropped silently by a conftest or plugin after collection",),
    ),
    "a conftest that deselects after collection [0]": (
        {"test_x.py": THREE_TESTS, "conftest.py": "def pytest_collection_modifyitems(config, "
         "items):\n    config.hook.pytest_deselected(items=items[1:])\n    items[:] = items[:1]\n"},
        "",
        {},
        ("collected 3, ran 1: 2 deselected by tests/conftest.py after collection, not by the",),
    ),
    "a conftest that clears every item [5]": (
        {"test_x.py": THREE_TESTS, "conftest.py": "def pytest_collection_modifyitems(items):\n"
         "    items.clear()\n"},
        "",
        {},
        ("collected 3, ran 0: 3 dropped silently by a conftest or plugin after collection",),
    ),
    "a plugin in addopts that stops the session [2]": (
        {"test_x.py": THREE_TESTS},
        "addopts = -p stopper\npythonpath = .",
        {"stopper.py": "def pytest_runtest_teardown(item):\n"
         "    item.session.shouldstop = 'stopper had enough'\n"},
        ("pytest did not complete: exit 2 (interrupted), collected 3, ran 1: Interrupted:"
         " stopper had enough",),
    ),
    "a plugin that replaces the test loop [0]": (
        {"test_x.py": THREE_TESTS},
        "addopts = -p noloop\npythonpath = .",
        {"noloop.py": "def pytest_runtestloop(session):\n    return True\n"},
        ("collected 3, ran 0: the session ended early (exit 0), with no reason given",),
    ),
    "--setup-only in addopts [0]": (
        {"test_x.py": THREE_TESTS},
        "addopts = --setup-only",
        {},
        ("collected 3, ran 0: 3 tests were set up but never called",),
    ),
    "--setup-plan in addopts [0]": (
        {"test_x.py": THREE_TESTS},
        "addopts = --setup-plan",
        {},
        ("collected 3, ran 0: 3 tests were set up but never called",),
    ),
    "--collect-only in addopts [0]": (
        {"test_x.py": THREE_TESTS},
        "addopts = --co",
        {},
        ("pytest only collected the tests (--collect-only", "collected 3, ran 0"),
    ),
}


@pytest.mark.parametrize(
    ("tests", "ini", "files", "expected"), STOPPED_EARLY.values(), ids=STOPPED_EARLY.keys()
)
def test_fewer_tests_ran_than_were_collected_is_an_error(
    tmp_path: Path,
    tests: dict[str, str],
    ini: str,
    files: dict[str, str],
    expected: tuple[str, ...],
) -> None:
    project = write_project(tmp_path, tests, ini=ini, files=files)

    assert_error(run_check(project), *expected)


def test_tests_stopped_early_fail_the_stage(tmp_path: Path) -> None:
    tests = {"test_x.py": "import pytest\n\n\ndef test_exits():\n    pytest.exit('done', 0)\n"}
    project = write_project(tmp_path / "p", {**tests, "test_y.py": THREE_TESTS})

    report = run_stage_of(
        project,
        '[[checks]]\nid = "unit"\nkind = "pytest"\n',
        '{ check = "unit", metric = "failed", max = 0 },\n',
        tmp_path / "out",
    )

    assert_error(report.checks[0], "collected 4, ran 0")
    assert report.verdict is Verdict.FAIL


# The project's configuration selects tests the check did not select.
FOREIGN_SELECTION = {
    "-k in addopts": ("addopts = -k first", None, [], "pytest selected tests with -k 'first'"),
    "--deselect in addopts": (
        "addopts = --deselect tests/test_x.py::test_second",
        None,
        [],
        "with --deselect tests/test_x.py::test_second,",
    ),
    "-m in addopts, none in the check": (
        "addopts = -m slow\nmarkers =\n    slow: slow",
        None,
        [],
        "pytest selected tests with -m 'slow'",
    ),
    "--cov of another package in addopts": (
        "addopts = --cov=tests",
        ["shop"],
        [],
        "pytest selected tests with --cov=tests",
    ),
}


@pytest.mark.parametrize(
    ("ini", "cov", "args", "expected"), FOREIGN_SELECTION.values(), ids=FOREIGN_SELECTION.keys()
)
def test_selection_from_the_project_configuration_is_an_error(
    tmp_path: Path, ini: str, cov: list[str] | None, args: list[str], expected: str
) -> None:
    files = {"shop/__init__.py": "def net(x):\n    return x\n"}
    tests = {"test_x.py": "import shop\n\n\n" + THREE_TESTS}
    project = write_project(tmp_path, tests, ini=ini + "\npythonpath = .", files=files)

    result = run_check(project, PytestSettings(cov=cov or [], args=args))

    assert_error(result, expected, "put the selection in the check's settings")


def test_selection_in_the_check_settings_is_the_checks_own(tmp_path: Path) -> None:
    ini = "markers =\n    slow: slow"
    tests = {"test_x.py": "import pytest\n\n\n@pytest.mark.slow\ndef test_slow():\n    pass\n\n\n"
             + THREE_TESTS}  # fmt: skip
    project = write_project(tmp_path, tests, ini=ini)
    args = ["-k", "not third", "--deselect", "tests/test_x.py::test_second"]

    result = run_check(project, PytestSettings(markers="not slow", args=args))

    assert result.status is CheckStatus.OK, result.reason
    assert result.reason == "1 passed"


FORGED_JUNIT = """\
import pathlib

CASE = '<testcase classname="tests.test_x" name="test_{}"/>'


def pytest_unconfigure(config):
    cases = "".join(CASE.format(n) for n in range(4))
    pathlib.Path(config.option.xmlpath).write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
"""


@pytest.mark.parametrize(
    ("ini", "files", "expected"),
    [
        ("addopts = -p no:junitxml", {}, "pytest wrote no JUnit report (junit.xml missing)"),
        (
            "",
            {"tests/conftest.py": "def pytest_configure(config):\n"
             "    config.option.xmlpath = None\n"},
            "pytest wrote no JUnit report (junit.xml missing)",
        ),
        (
            # a conftest rewrites our report after pytest wrote it: everything "passed"
            "",
            {"tests/conftest.py": FORGED_JUNIT},
            "the JUnit report does not match the session: it lists 4 tests (0 failed, 0 errors,"
            " 0 skipped), pytest reported 3 tests (1 failed, 0 errors, 0 skipped)",
        ),
    ],
    ids=["junitxml disabled", "JUnit report not written", "JUnit forged"],
)
def test_reports_the_check_cannot_trust_are_an_error(
    tmp_path: Path, ini: str, files: dict[str, str], expected: str
) -> None:
    tests = {"test_x.py": THREE_TESTS.replace("3 - 3 == 0", "3 - 3 == 1")}
    project = write_project(tmp_path, tests, ini=ini, files=files)

    assert_error(run_check(project), expected)


def test_a_probe_that_did_not_load_is_an_error(tmp_path: Path) -> None:
    ini = "addopts = -p no:neuroerp_ci_pytest_probe"  # our own -p comes later and wins
    project = write_project(tmp_path, {"test_x.py": THREE_TESTS}, ini=ini)

    kept = run_check(project)
    blocked = run_check(project, PytestSettings(args=["-p", "no:neuroerp_ci_pytest_probe"]))

    assert kept.status is CheckStatus.OK, kept.reason
    assert_error(blocked, "pytest left no record of its session: the probe plugin")


def test_a_stale_junit_report_is_not_read(tmp_path: Path) -> None:
    tests = {"test_x.py": "import os\n\n\ndef test_exits():\n    os._exit(0)\n"}
    project = write_project(tmp_path, tests)
    first = run_check(project)
    junit = project / "work" / "junit.xml"
    junit.write_text('<testsuites><testsuite><testcase classname="t" name="a"/></testsuite>'
                     "</testsuites>")  # fmt: skip

    second = run_check(project)

    assert_error(first, "ended without finishing")
    assert_error(second, "ended without finishing")
    assert not junit.exists()


HONEST = {
    "markers deselect": ("", {"test_x.py": "import pytest\n\n\n@pytest.mark.slow\ndef test_s():\n"
                              "    pass\n"}, "3 passed"),
    "--junitxml elsewhere in addopts": ("addopts = --junitxml=theirs.xml", {}, "3 passed"),
    "a skipped module and a skip": (
        "",
        {"test_skip.py": "import pytest\n\npytest.importorskip('no_such_module_here')\n",
         "test_one.py": "import pytest\n\n\ndef test_s():\n    pytest.skip('later')\n"},
        "3 passed, 2 skipped",
    ),
    "--continue-on-collection-errors": (
        "addopts = --continue-on-collection-errors",
        {"test_bad.py": "def test_x(:\n"},
        "3 passed, 1 failed (tests.test_bad)",
    ),
    "a teardown error and an xfail": (
        "",
        {"test_td.py": "import pytest\n\n\n@pytest.fixture\ndef broken():\n    yield\n"
         "    raise RuntimeError('teardown')\n\n\ndef test_td(broken):\n    pass\n\n\n"
         "@pytest.mark.xfail\ndef test_xf():\n    assert 0\n"},
        "3 passed, 1 failed (test_td), 1 skipped",
    ),
    "subtests": (
        "",
        {"test_sub.py": "def test_sub(subtests):\n    for i in range(3):\n"
         "        with subtests.test(i=i):\n            assert i != 1\n"},
        "3 passed, 1 failed (test_sub)",
    ),
}


@pytest.mark.parametrize(("ini", "tests", "reason"), HONEST.values(), ids=HONEST.keys())
def test_sessions_that_ran_their_tests_stay_ok(
    tmp_path: Path, ini: str, tests: dict[str, str], reason: str
) -> None:
    markers = "not slow" if "slow" in str(tests) else None
    project = write_project(
        tmp_path, {"test_base.py": THREE_TESTS, **tests}, ini=ini + "\nmarkers =\n    slow: s"
    )

    result = run_check(project, PytestSettings(markers=markers))

    assert result.status is CheckStatus.OK, result.reason
    assert result.reason == reason
    assert not (project / ".pytest_cache").exists()
    assert not list(project.rglob("__pycache__"))


# --- concurrent checks never share tool state -----------------------------------------------

SHOP = "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(4))  # 8 statements
COVERS_HALF = "import shop\n\n\ndef test_{0}():\n    assert shop.f{0}() == {0}\n    assert shop.f{1}() == {1}\n"  # noqa: E501
# Each test file calls two of the four functions: 6 of 8 statements, 75 %; both 100 %.
PARALLEL_CHECKS = """\
[[checks]]
id = "cov-a"
kind = "pytest"
settings = {{ paths = ["tests/test_a.py"], cov = ["shop"]{args} }}

[[checks]]
id = "cov-b"
kind = "pytest"
settings = {{ paths = ["tests/test_b.py"], cov = ["shop"]{args} }}
"""
MIN_90 = (
    '{ check = "cov-a", metric = "coverage_pct", min = 90 },\n'
    '{ check = "cov-b", metric = "coverage_pct", min = 90 },\n'
)


def coverage_project(root: Path, files: dict[str, str] | None = None) -> Path:
    tests = {"test_a.py": COVERS_HALF.format(0, 1), "test_b.py": COVERS_HALF.format(2, 3)}
    return write_project(
        root, tests, ini="pythonpath = .", files={"shop/__init__.py": SHOP, **(files or {})}
    )


def coverage_data(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.split(".")[:2] == ["", "coverage"]]


def assert_both_fail_at_75(report: StageReport) -> None:
    coverage = {r.check_id: r.metrics["coverage_pct"].value for r in report.checks}
    assert coverage == {"cov-a": 75.0, "cov-b": 75.0}, [r.reason for r in report.checks]
    assert [o.status for o in report.outcomes] == [OutcomeStatus.FAIL, OutcomeStatus.FAIL]
    assert report.verdict is Verdict.FAIL


def test_parallel_coverage_checks_of_one_package_keep_their_own_data(tmp_path: Path) -> None:
    project = coverage_project(tmp_path / "p")

    for attempt in range(10):
        report = run_stage_of(
            project, PARALLEL_CHECKS.format(args=""), MIN_90, tmp_path / f"out-{attempt}"
        )
        assert_both_fail_at_75(report)
    assert coverage_data(tmp_path / "out-0" / "checks" / "cov-a")  # the run's own
    assert not coverage_data(project)


@pytest.mark.parametrize(
    ("files", "args"),
    [
        ({".coveragerc": "[run]\ndata_file = {shared}/.coverage\n"}, ""),
        ({".coveragerc": "[run]\nparallel = true\n"}, ""),
        ({}, ', args = ["--cov-append"]'),
    ],
    ids=["shared data_file", "parallel = true", "--cov-append"],
)
def test_project_coverage_settings_do_not_make_parallel_checks_share_data(
    tmp_path: Path, files: dict[str, str], args: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    files = {name: text.replace("{shared}", str(shared)) for name, text in files.items()}
    project = coverage_project(tmp_path / "p", files)
    env = {**clean_env(), "COVERAGE_FILE": str(shared / ".coverage")}  # the caller's own

    for attempt in range(3):
        report = run_stage_of(
            project,
            PARALLEL_CHECKS.format(args=args),
            MIN_90,
            tmp_path / f"out-{attempt}",
            env,
        )
        assert_both_fail_at_75(report)
    assert not list(shared.iterdir())
    assert not coverage_data(project)
