"""Reading the JUnit XML report pytest writes (``-o junit_family=xunit2``).

Counts are made per test, not copied from the ``<testsuite>`` attributes: pytest writes a
second ``<testcase>`` for a test that fails and then errors in teardown, and counts a test
that passed but errored in teardown as both passed and error. Here every test counts once,
by its worst entry (failure, then error, then skipped), so ``passed + failed + skipped ==
tests``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # nosec B405 - parses our own pytest run's output only
from dataclasses import dataclass
from pathlib import Path

from neuroerp_ci.errors import ToolError

# A traceback entry's place as pytest prints it: "tests/test_x.py:17: AssertionError"
# (long format) or "tests/test_x.py:17: in test_x" (short format).
_CRASH_LINE = re.compile(r"^(?P<file>[^\s:][^:\n]*\.py):(?P<line>\d+): ", re.MULTILINE)
_RANK = {"failure": 3, "error": 2, "skipped": 1, "passed": 0}


@dataclass(frozen=True)
class FailedTest:
    """One test that failed or errored."""

    test_id: str  # "classname::name", or the name alone for a collection error
    name: str
    outcome: str  # "failure" or "error"
    message: str  # the first line of pytest's message
    location: str  # "file:line" of the test's traceback entry when printed, else the classname


@dataclass(frozen=True)
class JUnitSummary:
    """What one pytest run reported, one count per test."""

    tests: int
    passed: int
    failed: int  # failures + errors
    errors: int
    skipped: int  # includes xfail
    duration_s: float
    problems: tuple[FailedTest, ...]

    @property
    def failures(self) -> int:
        return self.failed - self.errors


def parse_junit(path: Path) -> JUnitSummary:
    """Parse a JUnit XML file; a missing or unparseable one is a ToolError."""
    try:
        root = ET.parse(path).getroot()  # nosec B314 - see the import
    except FileNotFoundError:
        raise ToolError(f"pytest wrote no JUnit report ({path.name} missing)") from None
    except (ET.ParseError, OSError) as exc:
        raise ToolError(f"pytest JUnit report {path.name} is unreadable: {exc}") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise ToolError(f"pytest JUnit report {path.name} has root <{root.tag}>, not <testsuites>")
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    outcomes: dict[str, tuple[str, ET.Element, ET.Element | None]] = {}
    duration = 0.0
    for suite in suites:
        duration += _float(suite.get("time"))
        for case in suite.iter("testcase"):
            test_id = _test_id(case)
            outcome, detail = _outcome(case)
            seen = outcomes.get(test_id)
            if seen is None or _RANK[outcome] > _RANK[seen[0]]:
                outcomes[test_id] = (outcome, case, detail)
    counts = dict.fromkeys(_RANK, 0)
    problems = []
    for test_id, (outcome, case, detail) in outcomes.items():
        counts[outcome] += 1
        if outcome in ("failure", "error") and detail is not None:
            problems.append(_failed_test(test_id, outcome, case, detail))
    return JUnitSummary(
        tests=len(outcomes),
        passed=counts["passed"],
        failed=counts["failure"] + counts["error"],
        errors=counts["error"],
        skipped=counts["skipped"],
        duration_s=round(duration, 3),
        problems=tuple(problems),
    )


def _test_id(case: ET.Element) -> str:
    classname, name = case.get("classname", ""), case.get("name", "")
    return f"{classname}::{name}" if classname else name


def _outcome(case: ET.Element) -> tuple[str, ET.Element | None]:
    for tag in ("failure", "error", "skipped"):
        found = case.find(tag)
        if found is not None:
            return tag, found
    return "passed", None


def _failed_test(test_id: str, outcome: str, case: ET.Element, detail: ET.Element) -> FailedTest:
    text = detail.text or ""
    message = (detail.get("message") or text).strip().splitlines()
    # The first traceback entry is the test (or its fixture); deeper ones may be library code.
    # A collection error (no classname) starts inside pytest itself, so it keeps its name.
    crash = _CRASH_LINE.search(text) if case.get("classname") else None
    location = (
        f"{crash['file']}:{crash['line']}"
        if crash
        else case.get("classname") or case.get("name") or test_id
    )
    return FailedTest(
        test_id=test_id,
        name=case.get("name", ""),
        outcome=outcome,
        message=message[0] if message else outcome,
        location=location,
    )


def _float(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0
