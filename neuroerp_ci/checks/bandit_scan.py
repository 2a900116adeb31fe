"""The ``bandit`` kind: static security findings in the target's Python code.

Bandit exits 0 when a target path is missing or a file does not parse: it only lists them
under ``errors`` in its JSON report. Both, and a scan that counted no line of code, are
errors here, never a clean result.

Targets and excluded paths are passed to bandit as absolute paths: bandit 1.9 turns an
existing excluded directory ``tests`` into the glob ``tests/*``, which never matches the
``./tests/...`` names it walks from ``.``, so relative exclusions silently exclude nothing.

Example pipeline entry::

    [[checks]]
    id = "bandit"
    kind = "bandit"
    settings = { paths = ["app"], skips = ["B101"] }
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field

from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
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
from neuroerp_ci.tooling import find_tool, run_tool

_GLOB_CHARS = frozenset("*?[")
_ERRORS_SHOWN = 3
_NoComma = Annotated[str, Field(min_length=1, pattern=r"^[^,]+$")]  # bandit joins them with ","


class BanditSettings(KindSettings):
    """Settings of a ``bandit`` check; paths are relative to the project."""

    paths: list[str] = Field(default_factory=lambda: ["."], min_length=1)
    exclude: list[_NoComma] = Field(
        default_factory=lambda: [".venv", "tests", ".neuroerp-ci", "node_modules"]
    )
    executable: str | None = None  # bandit binary to use instead of the one found
    skips: list[Annotated[str, Field(pattern=r"^[A-Z]+[0-9]+$")]] = Field(default_factory=list)


@dataclass(frozen=True)
class BanditReport:
    """The parts of bandit's JSON report a check needs."""

    loc: int
    files: int
    findings: tuple[Finding, ...]
    errors: tuple[tuple[str, str], ...]  # (file, reason)

    def count(self, severity: FindingSeverity) -> int:
        """Findings of this rank (an unrated finding counts as high)."""
        return sum(1 for f in self.findings if f.severity.rank == severity.rank)


class BanditCheck(CheckKind):
    """Run bandit over the project's code; fail closed on anything it could not audit."""

    name: ClassVar[str] = "bandit"
    settings_model = BanditSettings

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, BanditSettings)
        bandit = find_tool("bandit", _override(settings.executable, ctx.project_dir))
        report_path = ctx.work_dir / "bandit.json"
        log = ctx.work_dir / "bandit.log"
        remove_stale(report_path, log)
        run = run_tool(
            bandit_argv(bandit, settings, ctx.project_dir, report_path),
            cwd=ctx.project_dir,
            timeout=check.timeout,
            env=ctx.env,
            ok_codes=None,
        )
        write_log(log, run)
        if run.returncode not in (0, 1):  # 1: findings reported
            raise ToolError(f"bandit exited {run.returncode}: {run.tail()}")
        report = parse_bandit_report(read_json_file(report_path, "bandit"), ctx.project_dir)
        require_complete(report)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = {"bandit_json": str(report_path), "log": str(log)}
        result.findings = list(report.findings)
        for metric in report_metrics(report):
            result.add_metric(metric)
        result.reason = report_reason(report)
        version = run_tool(
            [bandit, "--version"], cwd=ctx.project_dir, timeout=check.timeout, env=ctx.env
        )
        # "bandit 1.9.4\n  python version = 3.11.7 ..."
        first = version.stdout.strip().splitlines()[:1]
        if first and len(first[0].split()) == 2:
            result.tool_versions["bandit"] = first[0].split()[1]
        return result


def bandit_argv(bandit: str, settings: BanditSettings, project: Path, report: Path) -> list[str]:
    """Bandit's command line: recursive, JSON report to ``report``, absolute paths."""
    argv = [bandit, "-r", "-f", "json", "-o", str(report), "-q"]
    if settings.exclude:
        argv += ["-x", ",".join(_absolute(project, p, keep_globs=True) for p in settings.exclude)]
    if settings.skips:
        argv += ["-s", ",".join(settings.skips)]
    return [*argv, *(_absolute(project, p) for p in settings.paths)]


def parse_bandit_report(data: Any, project: Path) -> BanditReport:
    """Turn bandit's JSON report into findings, counts and errors (file names relative)."""
    try:
        metrics = data["metrics"]
        loc = int(metrics["_totals"]["loc"])
        files = sum(1 for name in metrics if name != "_totals")
        errors = tuple(
            (_relative(project, e["filename"]), str(e["reason"])) for e in data["errors"]
        )
        findings = tuple(_finding(issue, project) for issue in data["results"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ToolError(f"bandit JSON report has an unexpected shape: {exc!r}") from exc
    return BanditReport(loc, files, findings, errors)


def require_complete(report: BanditReport) -> None:
    """Raise ToolError unless bandit audited some code and every file it was given."""
    if report.errors:
        shown = ", ".join(f"{name} ({reason})" for name, reason in report.errors[:_ERRORS_SHOWN])
        more = len(report.errors) - _ERRORS_SHOWN
        suffix = f", +{more} more" if more > 0 else ""
        raise ToolError(f"bandit could not audit {len(report.errors)} path(s): {shown}{suffix}")
    if report.loc == 0:
        raise ToolError(f"bandit audited no code (0 lines in {report.files} files)")


def report_metrics(report: BanditReport) -> list[Metric]:
    """Size of what was audited and findings per severity."""
    return [
        Metric("loc", report.loc, "", Direction.LOWER),
        Metric("files", report.files, "", Direction.LOWER),
        Metric("findings_high", report.count(FindingSeverity.HIGH), "", Direction.LOWER),
        Metric("findings_medium", report.count(FindingSeverity.MEDIUM), "", Direction.LOWER),
        Metric("findings_low", report.count(FindingSeverity.LOW), "", Direction.LOWER),
    ]


def report_reason(report: BanditReport) -> str:
    """One line, e.g. ``3 findings (1 high, 0 medium, 2 low) in 12 files, 840 lines``."""
    where = f"in {report.files} files, {report.loc} lines"
    if not report.findings:
        return f"no findings {where}"
    by_rank = Counter(f.severity.rank for f in report.findings)
    counts = ", ".join(
        f"{by_rank[s.rank]} {s.value}"
        for s in (FindingSeverity.HIGH, FindingSeverity.MEDIUM, FindingSeverity.LOW)
    )
    return f"{len(report.findings)} findings ({counts}) {where}"


def _finding(issue: dict[str, Any], project: Path) -> Finding:
    try:
        severity = FindingSeverity(str(issue["issue_severity"]).lower())
    except ValueError:
        severity = FindingSeverity.UNKNOWN  # bandit's "UNDEFINED"
    return Finding(
        tool="bandit",
        rule=str(issue["test_id"]),
        severity=severity,
        message=f"{issue['issue_text']} ({issue['test_name']})",
        location=f"{_relative(project, issue['filename'])}:{int(issue['line_number'])}",
        confidence=str(issue.get("issue_confidence", "")).lower() or None,
    )


def _override(executable: str | None, project: Path) -> str | None:
    # A relative path such as ".venv/bin/bandit" means the project's, not our working dir's.
    if executable and os.sep in executable and not os.path.isabs(executable):
        return str(project / executable)
    return executable


def _absolute(project: Path, path: str, keep_globs: bool = False) -> str:
    if keep_globs and _GLOB_CHARS & set(path):
        return path
    return os.path.normpath(project / path)


def _relative(project: Path, filename: str) -> str:
    root = os.path.normpath(project)
    path = os.path.normpath(os.path.join(root, filename))
    inside = path == root or path.startswith(root.rstrip(os.sep) + os.sep)
    return os.path.relpath(path, root) if inside else path
