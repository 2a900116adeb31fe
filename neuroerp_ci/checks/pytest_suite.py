"""The ``pytest`` kind: run a test suite in the target's interpreter, read JUnit and coverage.

Failures come from the JUnit XML report and coverage from pytest-cov's JSON report, never
from the exit status alone: ``--cov-fail-under`` exits 1 like a failing test, and exit 0
with an empty report means nothing was checked. Pytest's own statuses 2 (interrupted, e.g.
a test file that does not import), 3 (internal error), 4 (usage error) and 5 (no tests
collected) are errors: the suite did not run.

Example pipeline entry::

    [[checks]]
    id = "unit-tests"
    kind = "pytest"
    settings = { markers = "unit", paths = ["tests"], cov = ["app"] }
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from neuroerp_ci.checks._junit import JUnitSummary, parse_junit
from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    TargetUserSettings,
    typed_settings,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
)
from neuroerp_ci.tooling import ToolRun, run_tool

_COULD_NOT_RUN = {2: "interrupted", 3: "internal error", 4: "usage error"}
_VERSION = re.compile(r"\bpytest-(\d[^\s,]*)")
_COVERAGE_WARNING = re.compile(r"CoverageWarning: ([^(\n]+)")
_NAMES_SHOWN = 3


class PytestSettings(TargetUserSettings):
    """Settings of a ``pytest`` check."""

    markers: str | None = Field(default=None, min_length=1)  # a ``-m`` expression
    paths: list[str] = Field(default_factory=lambda: ["tests"])  # relative to the project
    cov: list[str] = Field(default_factory=list)  # packages to measure coverage of
    args: list[str] = Field(default_factory=list)  # extra pytest arguments, appended last

    @field_validator("paths", "cov", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # ``cov = "app"`` reads naturally in TOML; it means ``cov = ["app"]``.
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class Coverage:
    """The totals of a pytest-cov JSON report."""

    percent: float
    statements: int
    version: str | None


class PytestCheck(CheckKind):
    """Run pytest with ``ctx.python``; metrics from its JUnit and coverage reports."""

    name: ClassVar[str] = "pytest"
    settings_model = PytestSettings

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, PytestSettings)
        junit = ctx.work_dir / "junit.xml"
        coverage = ctx.work_dir / "coverage.json"
        log = ctx.work_dir / "pytest.log"
        remove_stale(junit, coverage, log)
        run = run_tool(
            pytest_argv(ctx.python, settings, ctx.work_dir),
            cwd=ctx.project_dir,
            timeout=check.timeout,
            env=ctx.env,
            ok_codes=None,
        )
        write_log(log, run)
        raise_if_not_run(run, ctx.python, settings.markers)
        summary = parse_junit(junit)
        if summary.tests == 0:
            raise ToolError(f"pytest exited {run.returncode} but its JUnit report lists no test")
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = {"log": str(log), "junit": str(junit)}
        for metric in summary_metrics(summary):
            result.add_metric(metric)
        result.findings = summary_findings(summary)
        covered = None
        if settings.cov:
            covered = parse_coverage(_coverage_report(coverage, run), settings.cov)
            result.add_metric(Metric("coverage_pct", covered.percent, "%", Direction.HIGHER))
            result.artifacts["coverage"] = str(coverage)
            if covered.version:
                result.tool_versions["coverage"] = covered.version
        version = _VERSION.search(run.stdout)
        if version:
            result.tool_versions["pytest"] = version.group(1)
        result.reason = summary_reason(summary, covered)
        if run.returncode == 1 and summary.failed == 0:
            # e.g. --cov-fail-under in the project's addopts: the counts above are still whole.
            result.reason += f" (pytest exited 1 with no failing test: {run.tail(200)})"
        return result


def pytest_argv(python: str, settings: PytestSettings, work_dir: Path) -> list[str]:
    """The pytest command line for ``settings``, writing its reports into ``work_dir``."""
    argv = [python, "-m", "pytest", *settings.paths]
    if settings.markers is not None:
        argv += ["-m", settings.markers]
    argv += [
        "-p",
        "no:cacheprovider",
        f"--junitxml={work_dir / 'junit.xml'}",
        "-o",
        "junit_family=xunit2",
    ]
    if settings.cov:
        argv += [f"--cov={package}" for package in settings.cov]
        argv.append(f"--cov-report=json:{work_dir / 'coverage.json'}")
    return [*argv, *settings.args]


def raise_if_not_run(run: ToolRun, python: str, markers: str | None) -> None:
    """Raise ToolError when pytest's exit status says the suite did not run."""
    code = run.returncode
    if code == 1 and "No module named pytest" in run.stderr:
        raise ToolError(f"pytest is not installed for {python} (No module named pytest)")
    if code in _COULD_NOT_RUN:
        raise ToolError(f"pytest could not run: exit {code} ({_COULD_NOT_RUN[code]}): {run.tail()}")
    if code == 5:
        selection = f" for -m '{markers}'" if markers is not None else ""
        raise ToolError(f"pytest: no tests collected{selection}")
    if code not in (0, 1):
        raise ToolError(f"pytest exited {code}: {run.tail()}")


def parse_coverage(data: Any, packages: list[str]) -> Coverage:
    """Read the totals of a pytest-cov JSON report; measuring no statement is an error."""
    try:
        totals = data["totals"]
        percent = float(totals["percent_covered"])
        statements = int(totals["num_statements"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ToolError(f"pytest-cov JSON report has no totals: {exc!r}") from exc
    if not math.isfinite(percent):
        raise ToolError(f"pytest-cov reported coverage {percent}")
    if statements == 0:
        # coverage.py reports 100 % of nothing; that is not a measurement.
        raise ToolError(f"coverage of {', '.join(packages)} measured no statement")
    meta = data.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return Coverage(round(percent, 2), statements, str(version) if version else None)


def summary_metrics(summary: JUnitSummary) -> list[Metric]:
    """The test-count metrics of one run."""
    return [
        Metric("tests", summary.tests, "", Direction.HIGHER),
        Metric("passed", summary.passed, "", Direction.HIGHER),
        Metric("failed", summary.failed, "", Direction.LOWER),
        Metric("errors", summary.errors, "", Direction.LOWER),
        Metric("skipped", summary.skipped, "", Direction.LOWER),
        Metric("duration_s", summary.duration_s, "s", Direction.LOWER),
    ]


def summary_findings(summary: JUnitSummary) -> list[Finding]:
    """One high-severity finding per failed or errored test."""
    return [
        Finding(
            tool="pytest",
            rule=problem.test_id,
            severity=FindingSeverity.HIGH,
            message=problem.message,
            location=problem.location,
        )
        for problem in summary.problems
    ]


def summary_reason(summary: JUnitSummary, coverage: Coverage | None) -> str:
    """One line, e.g. ``41 passed, 2 failed (test_x, test_y), coverage 91.3 %``."""
    parts = [f"{summary.passed} passed"]
    if summary.failed:
        names = [p.name for p in summary.problems[:_NAMES_SHOWN]]
        more = len(summary.problems) - len(names)
        shown = ", ".join(names) + (f", +{more} more" if more else "")
        parts.append(f"{summary.failed} failed ({shown})")
    if summary.skipped:
        parts.append(f"{summary.skipped} skipped")
    if coverage is not None:
        parts.append(f"coverage {coverage.percent:g} %")
    return ", ".join(parts)


def _coverage_report(path: Path, run: ToolRun) -> Any:
    try:
        return read_json_file(path, "pytest-cov")
    except ToolError as exc:
        # pytest exits 0 when coverage collected nothing; its warnings say why.
        found = _COVERAGE_WARNING.findall(run.stdout + run.stderr)
        why = " ".join(dict.fromkeys(w.strip() for w in found))
        raise ToolError(f"{exc}: {why}" if why else str(exc)) from exc
