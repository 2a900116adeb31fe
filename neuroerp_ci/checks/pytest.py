"""The ``pytest`` kind: run a test suite in the target's interpreter, read JUnit and coverage.

Failures come from the JUnit XML report and coverage from pytest-cov's JSON report, never
from the exit status alone: ``--cov-fail-under`` exits 1 like a failing test, and exit 0
with an empty report means nothing was checked. Pytest's own statuses 2 (interrupted, e.g.
a test file that does not import), 3 (internal error), 4 (usage error) and 5 (no tests
collected) are errors: the suite did not run.

Neither the exit status nor the JUnit report alone says that the tests ran: a project's
addopts can stop the session after the first failure (``-x``), deselect tests (``-k``), set
them up without calling them (``--setup-only``); a conftest can drop collected items, a test
can ``os._exit(0)``. So the run also loads a small plugin of ours (:mod:`._pytest_probe`)
that records what pytest collected, what it deselected and on whose behalf, and what each test
did. Every collected test must have run or been deselected by the check's own selection
(``markers``, or ``-m``/``-k``/``--deselect`` in ``args``), some test must not be skipped, and
the JUnit report must count the same tests; anything else is an error naming the gap
("collected 12, ran 2: stopping after 1 failures").

Concurrent checks never share pytest's state: each run has its own coverage data file
(``COVERAGE_FILE``, which coverage.py puts above the project's ``data_file``) in its work
directory, its own ``--basetemp``, no cache (``-p no:cacheprovider``) and writes no bytecode.

Example pipeline entry::

    [[checks]]
    id = "unit-tests"
    kind = "pytest"
    settings = { markers = "unit", paths = ["tests"], cov = ["app"] }
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from neuroerp_ci.checks._junit import JUnitSummary, parse_junit
from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks.interface import (
    CacheInputs,
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    TargetUserSettings,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
)
from neuroerp_ci.support.tooling import ToolRun, run_tool

_COULD_NOT_RUN = {2: "interrupted", 3: "internal error", 4: "usage error"}
_VERSION = re.compile(r"\bpytest-(\d[^\s,]*)")
_COVERAGE_WARNING = re.compile(r"CoverageWarning: ([^(\n]+)")
# pytest's banner when it stops early: "!!!!! stopping after 1 failures !!!!!".
_STOP_BANNER = re.compile(r"^!{3,} (.+?) !{3,}$", re.MULTILINE)
_NAMES_SHOWN = 3
PROBE_MODULE = "neuroerp_ci_pytest_probe"  # the name _pytest_probe.py is imported as
PROBE_DIR_ENV = "NEUROERP_CI_PYTEST_PROBE"  # the same constant as in _pytest_probe
_PLUGIN_DIR = "pytest-plugin"  # holds only the probe module, put on the target's PYTHONPATH
_PROBE_DIR = "pytest-probe"  # where the probe writes one record per pytest process


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


@dataclass(frozen=True)
class Selection:
    """The options that decide which tests run, as the check's own command line sets them."""

    markexpr: str = ""
    keyword: str = ""
    deselect: tuple[str, ...] = ()
    cov: frozenset[str] = frozenset()  # ``--cov`` values; "" for a bare ``--cov``


@dataclass(frozen=True)
class Session:
    """What the probe plugin recorded of the pytest session (see :mod:`._pytest_probe`)."""

    options: Mapping[str, Any]  # the "start" record
    workers: tuple[Mapping[str, Any], ...]  # the "start" record of each xdist worker
    collection: Mapping[str, Any] | None  # the "collected" record, once collection finished
    outcomes: Counter[str]  # worst outcome of each test whose body ran
    set_up_only: int  # tests that finished without their body running
    finished: bool
    record: Path

    @property
    def ran(self) -> int:
        return sum(self.outcomes.values())

    @property
    def to_run(self) -> int:
        """Collected tests the check's selection kept (or that a plugin added)."""
        c = self.collection or {}
        return max(_count(c, "collected") - _count(c, "deselected"), _count(c, "selected"))

    def counts(self) -> str:
        return f"collected {self.to_run}, ran {self.ran}"


class PytestCheck(CheckKind):
    """Run pytest with ``ctx.python``; metrics from its JUnit and coverage reports."""

    name: ClassVar[str] = "pytest"
    settings_model = PytestSettings

    def runs_target_python(self, check: Check) -> bool:
        return True

    def metric_names(self, settings: KindSettings) -> MetricNames:
        cov = isinstance(settings, PytestSettings) and bool(settings.cov)
        fixed = {"tests", "passed", "failed", "errors", "skipped", "duration_s"}
        return MetricNames(
            fixed=frozenset(fixed | ({"coverage_pct"} if cov else set())),
            findings=True,  # one per failed or errored test
            needs={} if cov else {"coverage_pct": "settings.cov (the packages to measure)"},
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return ({"metric": "failed", "max": 0}, {"metric": "errors", "max": 0})

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        # A suite may read any file of the project (fixtures, data, configuration): all of
        # them are inputs. One that uses the target never gets here (it measures the target).
        return CacheInputs()

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, PytestSettings)
        work = ctx.work_dir
        junit = work / "junit.xml"
        coverage = work / "coverage.json"
        log = work / "pytest.log"
        remove_stale(junit, coverage, log, *work.glob(".coverage*"))
        plugin_dir, probe_dir = install_probe(work)
        # A short path of its own (sockets in tmp_path), not pytest's shared one in /tmp.
        with tempfile.TemporaryDirectory(
            prefix="neuroerp-ci-pytest-", ignore_cleanup_errors=True
        ) as basetemp:
            argv = pytest_argv(ctx.python, settings, work, Path(basetemp))
            run = run_tool(
                argv,
                cwd=ctx.project_dir,
                timeout=check.timeout,
                env=pytest_env(ctx.env, plugin_dir, probe_dir, work),
                ok_codes=None,
            )
        write_log(log, run)
        session = read_session(probe_dir)
        raise_if_not_run(run, ctx.python, session)
        if session is None:
            raise ToolError(
                f"pytest left no record of its session: the probe plugin {PROBE_MODULE} did"
                " not load (disabled by the project's configuration?)"
            )
        check_session(session, selection(argv[3:]), run)
        summary = parse_junit(junit)
        check_junit(summary, session)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = {"log": str(log), "junit": str(junit), "session": str(session.record)}
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


def pytest_argv(python: str, settings: PytestSettings, work_dir: Path, basetemp: Path) -> list[str]:
    """The pytest command line for ``settings``, writing its reports into ``work_dir``."""
    argv = [python, "-m", "pytest", *settings.paths]
    if settings.markers is not None:
        argv += ["-m", settings.markers]
    argv += [
        "-p",
        "no:cacheprovider",
        "-p",
        PROBE_MODULE,
        f"--basetemp={basetemp}",
        f"--junitxml={work_dir / 'junit.xml'}",
        "-o",
        "junit_family=xunit2",
    ]
    if settings.cov:
        argv += [f"--cov={package}" for package in settings.cov]
        argv.append(f"--cov-report=json:{work_dir / 'coverage.json'}")
    return [*argv, *settings.args]


def install_probe(work_dir: Path) -> tuple[Path, Path]:
    """Write the probe plugin into ``work_dir``; return its directory and an empty record one."""
    plugin_dir, probe_dir = work_dir / _PLUGIN_DIR, work_dir / _PROBE_DIR
    plugin_dir.mkdir(exist_ok=True)
    source = files("neuroerp_ci.checks").joinpath("_pytest_probe.py").read_text("utf-8")
    (plugin_dir / f"{PROBE_MODULE}.py").write_text(source, encoding="utf-8")
    shutil.rmtree(probe_dir, ignore_errors=True)  # an earlier run's records are not this one's
    probe_dir.mkdir()
    return plugin_dir, probe_dir


def pytest_env(
    env: Mapping[str, str], plugin_dir: Path, probe_dir: Path, work_dir: Path
) -> dict[str, str]:
    """The check's environment, plus the probe and state files of this run's own."""
    result = dict(env)
    result["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(plugin_dir), env.get("PYTHONPATH", "")) if p
    )
    result[PROBE_DIR_ENV] = str(probe_dir)
    # coverage.py (and pytest-cov's combine step) would otherwise share the project's
    # .coverage files with any concurrent run: the environment beats the project's data_file.
    result["COVERAGE_FILE"] = str(work_dir / ".coverage")
    result["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ written into the project
    return result


def read_session(probe_dir: Path) -> Session | None:
    """The session the probe recorded, or None when no pytest process loaded it.

    Under pytest-xdist the main process only schedules: its record has the tests (their
    reports reach it) but no collection; each worker collects, and all must agree.
    """
    main: list[tuple[Path, dict[str, Any], list[dict[str, Any]]]] = []
    workers: list[tuple[dict[str, Any], dict[str, Any] | None]] = []  # start, collected
    for path in sorted(probe_dir.glob("session-*.jsonl")):
        records = _records(path)
        start = _first(records, "start")
        if start is None:
            continue  # configured, then stopped before a session began (usage error, --help)
        if start.get("worker"):
            workers.append((start, _first(records, "collected")))
        else:
            main.append((path, start, records))
    if not main:
        return None
    if len(main) > 1:
        raise ToolError(f"{len(main)} pytest sessions loaded the probe plugin; expected one")
    path, start, records = main[0]
    collection = _first(records, "collected")
    if workers:
        # A worker that replaces a crashed one collects again; xdist checks the ids agree.
        collections = {json.dumps(c, sort_keys=True) for _, c in workers if c is not None}
        if len(collections) > 1:
            raise ToolError(f"pytest-xdist workers disagree on the collection: {collections}")
        collection = json.loads(collections.pop()) if collections else None
    outcomes: Counter[str] = Counter()
    set_up_only = 0
    seen: set[str] = set()
    for record in records:
        nodeid = str(record.get("nodeid"))
        if record.get("event") != "test" or nodeid in seen:
            continue
        seen.add(nodeid)
        if record.get("ran"):
            outcomes[str(record.get("outcome"))] += 1
        else:
            set_up_only += 1
    return Session(
        options=start,
        workers=tuple(w for w, _ in workers),
        collection=collection,
        outcomes=outcomes,
        set_up_only=set_up_only,
        finished=_first(records, "finish") is not None,
        record=path,
    )


def _first(records: list[dict[str, Any]], event: str) -> dict[str, Any] | None:
    return next((r for r in records if r.get("event") == event), None)


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ToolError(
                f"pytest probe record {path.name}:{number} is unreadable: {exc}"
            ) from exc
        if not isinstance(record, dict):
            raise ToolError(f"pytest probe record {path.name}:{number} is not an object")
        records.append(record)
    return records


def selection(args: Sequence[str]) -> Selection:
    """The selection options in pytest arguments, as pytest's own argparse reads them."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("-m", dest="markexpr", default="")
    parser.add_argument("-k", dest="keyword", default="")
    parser.add_argument("--deselect", action="append", default=[])
    parser.add_argument("--cov", action="append", nargs="?", const="", default=[])
    try:
        known, _ = parser.parse_known_args(list(args))
    except argparse.ArgumentError as exc:
        raise ToolError(f"pytest arguments of the check are malformed: {exc}") from exc
    return Selection(known.markexpr, known.keyword, tuple(known.deselect), frozenset(known.cov))


def raise_if_not_run(run: ToolRun, python: str, session: Session | None = None) -> None:
    """Raise ToolError when pytest's exit status says the suite did not run (exit 5, no
    tests collected, is left to :func:`check_session`, which knows why)."""
    code = run.returncode
    if code == 1 and "No module named pytest" in run.stderr:
        raise ToolError(f"pytest is not installed for {python} (No module named pytest)")
    counts = ""
    if session is not None and session.collection is not None:
        counts = f", {session.counts()}"
    if code in _COULD_NOT_RUN:
        meaning, why = _COULD_NOT_RUN[code], _stop_reason(run)
        if session is not None and session.ran and why:
            # Stopped half way (pytest.exit(), Ctrl-C): the banner says why, not the tail.
            raise ToolError(f"pytest did not complete: exit {code} ({meaning}){counts}: {why}")
        raise ToolError(f"pytest could not run: exit {code} ({meaning}){counts}: {run.tail()}")
    if code not in (0, 1, 5):
        raise ToolError(f"pytest exited {code}{counts}: {run.tail()}")


def check_session(session: Session, expected: Selection, run: ToolRun) -> None:
    """Raise ToolError unless every test pytest collected either ran or was deselected by
    the check's own selection, and not every test that ran was skipped."""
    if session.options.get("collectonly"):
        raise ToolError(
            "pytest only collected the tests (--collect-only from the project's configuration"
            f" or PYTEST_ADDOPTS): {session.counts()}"
        )
    for options in (session.options, *session.workers):
        foreign = selection_changes(options, expected)
        if foreign:
            raise ToolError(
                f"pytest selected tests with {foreign}, which the check did not ask for (from"
                " the project's addopts or PYTEST_ADDOPTS?): put the selection in the check's"
                " settings"
            )
    collection = session.collection
    if collection is None and session.options.get("numprocesses"):
        raise ToolError(
            f"pytest-xdist ran {session.options['numprocesses']} workers, but none of them"
            " recorded a collection (remote workers without the probe plugin?)"
        )
    if collection is None:
        raise ToolError(f"pytest's session ended before its collection finished: {run.tail()}")
    removed = _removed(collection)
    if removed:
        raise ToolError(
            f"{session.counts()}: {removed} after collection, not by the check's own selection"
        )
    if session.to_run == 0:
        markexpr = f" for -m '{expected.markexpr}'" if expected.markexpr else ""
        raise ToolError(f"pytest: no tests collected{markexpr}")
    if not session.finished:
        raise ToolError(
            f"{session.counts()}: the pytest session ended without finishing (exit"
            f" {run.returncode}; a test called os._exit, or pytest crashed)"
        )
    if session.ran < session.to_run:
        raise ToolError(f"{session.counts()}: {_why_stopped(session, run)}")
    if session.outcomes["skipped"] == session.ran:
        raise ToolError(f"{session.counts()}, all skipped: nothing was tested")


def selection_changes(options: Mapping[str, Any], expected: Selection) -> str:
    """The selection options pytest ran with that the check's command line did not set."""
    changes = []
    if options.get("markexpr", "") != expected.markexpr:
        changes.append(f"-m '{options.get('markexpr')}'")
    if options.get("keyword", "") != expected.keyword:
        changes.append(f"-k '{options.get('keyword')}'")
    deselect = tuple(options.get("deselect") or ())
    if sorted(deselect) != sorted(expected.deselect):
        extra = [d for d in deselect if d not in expected.deselect]
        changes.append(" ".join(f"--deselect {d}" for d in extra) or "--deselect")
    cov = options.get("cov_source") or []
    measured = frozenset("" if c is True else str(c) for c in cov)
    if expected.cov and measured != expected.cov:
        extra = sorted(measured - expected.cov)
        changes.append(" ".join(f"--cov={c}" if c else "--cov" for c in extra) or "--cov")
    return ", ".join(changes)


def _removed(collection: Mapping[str, Any]) -> str:
    """Tests dropped from the collection by anyone but pytest's own selection options."""
    parts = []
    removed_by = collection.get("removed_by")
    by_file = removed_by if isinstance(removed_by, dict) else {}
    reported = 0
    for name, count in sorted(by_file.items()):
        parts.append(f"{count} deselected by {name}")
        reported += int(count)
    silent = (
        _count(collection, "collected")
        - _count(collection, "deselected")
        - reported
        - _count(collection, "selected")
    )
    if silent > 0:
        parts.append(f"{silent} dropped silently by a conftest or plugin")
    return ", ".join(parts)


def _why_stopped(session: Session, run: ToolRun) -> str:
    if session.set_up_only:
        return f"{session.set_up_only} tests were set up but never called (--setup-only?)"
    why = _stop_reason(run)
    if why:
        return f"pytest stopped early ({why})"
    return f"the session ended early (exit {run.returncode}), with no reason given"


def _stop_reason(run: ToolRun) -> str | None:
    """The last banner pytest printed when it stopped early, e.g. "stopping after 1 failures"."""
    banners = _STOP_BANNER.findall(run.stdout)
    return banners[-1].strip() if banners else None


def check_junit(summary: JUnitSummary, session: Session) -> None:
    """Raise ToolError unless the JUnit report counts the tests the probe saw run (plus one
    entry for each collector that failed or skipped)."""
    c = session.collection or {}
    errors, skipped = _count(c, "errors"), _count(c, "skipped")
    o = session.outcomes
    expected = (
        session.ran + errors + skipped,
        o["failure"],
        o["error"] + errors,
        o["skipped"] + skipped,
    )
    reported = (summary.tests, summary.failures, summary.errors, summary.skipped)
    if reported != expected:
        raise ToolError(
            f"the JUnit report does not match the session: it lists {_tally(*reported)},"
            f" pytest reported {_tally(*expected)}"
        )


def _tally(tests: int, failures: int, errors: int, skipped: int) -> str:
    return f"{tests} tests ({failures} failed, {errors} errors, {skipped} skipped)"


def _count(record: Mapping[str, Any], key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) else 0


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
