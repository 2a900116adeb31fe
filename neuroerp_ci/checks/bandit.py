"""The ``bandit`` kind: static security findings in the target's Python code.

Fail-closed rules, each verified with bandit 1.9.4:

- bandit exits 0 when a target path is missing or a file does not parse: it only lists them
  under ``errors`` in its JSON report. Both, and a scan that counted no line of code, are
  errors here, never a clean result.
- What bandit scanned is compared with what is there. The check lists every Python file under
  its ``paths`` itself (``*.py``, ``*.pyw``, and files whose first line is a Python shebang:
  bandit's ``-r`` leaves those out, so they are passed to it by name), minus its own
  ``exclude``. A file bandit did not scan (its ``metrics`` has one entry per scanned file), a
  symlinked directory of Python files (bandit does not follow links) or a directory that
  cannot be listed is an error naming them; so is a file bandit scanned unasked.
- The check's settings are its only configuration. bandit applies a ``.bandit`` file it finds
  anywhere under its targets: its ``skips``, ``tests``, ``exclude``, ``level``, a ``baseline``
  that hides known findings, a ``configfile`` with ``exclude_dirs`` (matched as substrings).
  The check passes ``--ini`` with an empty file of its own and never ``-c``; a project
  ``.bandit``, ``[tool.bandit]`` in ``pyproject.toml`` or ``bandit.yaml`` is named in the
  reason as not applied. ``-x`` is always passed, so bandit's own default excludes never apply.
- ``# nosec`` is honoured by default (``honour_nosec``) but never silent: when bandit counts
  suppressed findings (``_totals.nosec``, ``_totals.skipped_tests``), the check runs it again
  with ``--ignore-nosec`` and keeps what was hidden in ``CheckResult.suppressed`` (reported,
  not counted by findings limits), with the metrics ``suppressed`` and ``suppressed_high``.

``exclude`` entries without ``*?[`` are paths relative to the project, excluded with everything
under them; entries with them are matched (fnmatch) against absolute paths, as bandit does.
Everything is passed to bandit as an absolute path: bandit 1.9 turns an existing excluded
directory ``tests`` into the glob ``tests/*``, which never matches the ``./tests/...`` names it
walks from ``.``, so relative exclusions silently exclude nothing. bandit writes nothing but
its report and its plugin cache, both into the check's own work directory.

Example pipeline entry::

    [[checks]]
    id = "bandit"
    kind = "bandit"
    settings = { paths = ["app"], exclude = ["app/vendored"] }
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import stat
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field

from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks._tool_versions import version_run
from neuroerp_ci.checks.interface import (
    WAIVER_POINTER,
    CacheInputs,
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    executable_identity,
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
    fingerprint_of,
)
from neuroerp_ci.support.text import printable_name
from neuroerp_ci.support.tooling import ToolRun, find_tool, run_tool

_GLOB_CHARS = frozenset("*?[")
_PYTHON_SUFFIXES = (".py", ".pyw")  # bandit's default "include"
_SHEBANG_BYTES = 256
_SHOWN = 3
_PROJECT_YAML = ("bandit.yaml", "bandit.yml", ".bandit.yaml", ".bandit.yml")
# An ini with an empty [bandit] section: given with --ini, bandit looks for no other .bandit.
OWN_INI = "# neuroerp-ci: no project .bandit may narrow this scan\n[bandit]\n"
_NoComma = Annotated[str, Field(min_length=1, pattern=r"^[^,]+$")]  # bandit joins them with ","


class BanditSettings(KindSettings):
    """Settings of a ``bandit`` check; paths are relative to the project."""

    moved_keys: ClassVar[Mapping[str, str]] = {"skips": WAIVER_POINTER}

    paths: list[str] = Field(default_factory=lambda: ["."], min_length=1)  # scanned recursively
    # The only exclusions: bandit's defaults and the project's .bandit never apply.
    exclude: list[_NoComma] = Field(
        default_factory=lambda: [".venv", "tests", ".neuroerp-ci", "node_modules"]
    )
    executable: str | None = None  # bandit binary to use instead of the one found
    # false: "# nosec" hides nothing; true: what it hides is listed as suppressed.
    honour_nosec: bool = True


@dataclass(frozen=True)
class ScanPlan:
    """What the check asks bandit to scan, listed by the check itself (absolute paths)."""

    project: Path
    targets: tuple[str, ...]  # the paths, then scripts without a .py name
    expected: frozenset[str]  # every Python file bandit must scan
    excluded: int  # Python files under the paths left out by the check's exclude
    scripts: tuple[str, ...]  # Python files found by their shebang
    exclude: tuple[str, ...]  # what -x gets: existing excluded paths (dirs as is) and globs
    unreadable: tuple[str, ...]  # "dir (why)": directories that could not be listed
    symlinked: tuple[str, ...]  # symlinked directories holding Python files
    project_configs: tuple[str, ...]  # project bandit settings not applied, e.g. ".bandit (skips)"


@dataclass(frozen=True)
class BanditReport:
    """The parts of bandit's JSON report a check needs."""

    loc: int
    files: int
    findings: tuple[Finding, ...]
    errors: tuple[tuple[str, str], ...]  # (file, reason)
    scanned: frozenset[str] = frozenset()  # absolute paths of the files in ``metrics``
    nosec: int = 0  # findings hidden by a bare "# nosec" (_totals.nosec)
    nosec_rules: int = 0  # findings hidden by "# nosec B602" (_totals.skipped_tests)

    def count(self, severity: FindingSeverity) -> int:
        """Findings of this rank (an unrated finding counts as high)."""
        return sum(1 for f in self.findings if f.severity.rank == severity.rank)


class BanditCheck(CheckKind):
    """Run bandit over the project's code; fail closed on anything it could not audit."""

    name: ClassVar[str] = "bandit"
    settings_model = BanditSettings

    def metric_names(self, settings: KindSettings) -> MetricNames:
        fixed = {
            "loc", "files", "findings_high", "findings_medium", "findings_low",
            "excluded_files", "suppressed", "suppressed_high",
        }  # fmt: skip
        return MetricNames(fixed=frozenset(fixed), findings=True, audit=True)

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return ({"findings": "high", "max": 0},)  # high, critical and unrated

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        settings = typed_settings(check, BanditSettings)
        bandit = find_tool("bandit", _override(settings.executable, ctx.project_dir))
        # What it scans, and the project configuration it reads or reports on.
        configs = (".bandit", "pyproject.toml", "setup.cfg", "tox.ini", "bandit.yaml", "bandit.yml")
        files = CacheInputs.under(settings.paths, *configs)
        return CacheInputs(files, {"bandit": executable_identity(bandit, ctx.env)})

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, BanditSettings)
        bandit = find_tool("bandit", _override(settings.executable, ctx.project_dir))
        plan = plan_scan(settings, ctx.project_dir)
        ini = ctx.work_dir / "bandit.ini"
        report_path, log = ctx.work_dir / "bandit.json", ctx.work_dir / "bandit.log"
        unsuppressed_path = ctx.work_dir / "bandit-ignore-nosec.json"
        unsuppressed_log = ctx.work_dir / "bandit-ignore-nosec.log"
        remove_stale(report_path, log, unsuppressed_path, unsuppressed_log)
        ini.write_text(OWN_INI, encoding="utf-8")
        ignore_nosec = not settings.honour_nosec
        argv = bandit_argv(bandit, settings, plan, report_path, ini, ignore_nosec=ignore_nosec)
        report = _scan(argv, check, ctx, report_path, log, plan)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = {"bandit_json": str(report_path), "log": str(log)}
        if report.nosec + report.nosec_rules:
            # Once more without "# nosec", to list what it hid; only when it hid something.
            again = bandit_argv(bandit, settings, plan, unsuppressed_path, ini, ignore_nosec=True)
            everything = _scan(again, check, ctx, unsuppressed_path, unsuppressed_log, plan)
            result.suppressed = hidden_by_nosec(report, everything)
            result.artifacts["bandit_ignore_nosec_json"] = str(unsuppressed_path)
        result.findings = list(report.findings)
        for metric in report_metrics(report, plan, result.suppressed):
            result.add_metric(metric)
        result.reason = report_reason(report, plan, result.suppressed, ignore_nosec=ignore_nosec)
        version = version_run(
            bandit, lambda out: len(out.strip().split("\n", 1)[0].split()) == 2,
            cwd=ctx.project_dir, timeout=check.timeout, env=private_env(ctx),
        )  # fmt: skip
        # "bandit 1.9.4\n  python version = 3.11.7 ..."
        first = version.stdout.strip().splitlines()[:1]
        if first and len(first[0].split()) == 2:
            result.tool_versions["bandit"] = first[0].split()[1]
        return result


def _scan(
    argv: list[str], check: Check, ctx: CheckContext, report: Path, log: Path, plan: ScanPlan
) -> BanditReport:
    run: ToolRun = run_tool(
        argv, cwd=ctx.project_dir, timeout=check.timeout, env=private_env(ctx), ok_codes=None
    )
    write_log(log, run)
    if run.returncode not in (0, 1):  # 1: findings reported
        raise ToolError(f"bandit exited {run.returncode}: {run.tail()}")
    parsed = parse_bandit_report(read_json_file(report, "bandit"), ctx.project_dir)
    require_complete(parsed, plan)
    return parsed


def private_env(ctx: CheckContext) -> dict[str, str]:
    """The check's environment with a cache of its own: bandit's plugin loader (stevedore)
    keeps an entry-point cache in ``$XDG_CACHE_HOME`` (default ``~/.cache``), shared by
    every bandit on the machine otherwise."""
    return {**ctx.env, "XDG_CACHE_HOME": str(ctx.work_dir / "cache")}


def plan_scan(settings: BanditSettings, project: Path) -> ScanPlan:
    """List every Python file under the paths, as the check (not bandit) sees them.

    A missing path is left to bandit, which reports it as an error.
    """
    excludes = _Excludes(project, settings.exclude)
    targets: list[str] = []
    expected: set[str] = set()
    scripts: list[str] = []
    unreadable: list[str] = []
    symlinked: list[str] = []
    dot_bandit: set[str] = set()
    excluded = 0

    def refused(exc: OSError) -> None:
        unreadable.append(f"{_shown(project, str(exc.filename))} ({exc.strerror})")

    for path in settings.paths:
        target = _absolute(project, path)
        targets.append(target)
        if not os.path.isdir(target):
            if os.path.lexists(target):  # a file named on purpose: scanned whatever its name
                if excludes.match(target):
                    excluded += 1
                else:
                    expected.add(target)
            continue
        for root, dirs, files in os.walk(target, onerror=refused):
            dirs.sort()
            for name in dirs:
                folder = os.path.join(root, name)
                if os.path.islink(folder) and not excludes.match(folder) and _holds_python(folder):
                    symlinked.append(folder)
            for name in sorted(files):
                file = os.path.join(root, name)
                python = name.endswith(_PYTHON_SUFFIXES)
                if excludes.match(file):
                    excluded += 1 if python else 0
                elif name == ".bandit":  # bandit would apply it; one in .venv/ is no news
                    dot_bandit.add(file)
                elif python:
                    expected.add(file)
                elif _python_shebang(file):
                    scripts.append(file)
                    expected.add(file)
    return ScanPlan(
        project=project,
        targets=(*targets, *scripts),
        expected=frozenset(expected),
        excluded=excluded,
        scripts=tuple(scripts),
        exclude=excludes.for_bandit(),
        unreadable=tuple(unreadable),
        symlinked=tuple(symlinked),
        project_configs=tuple(project_configs(project, dot_bandit)),
    )


def bandit_argv(
    bandit: str,
    settings: BanditSettings,
    plan: ScanPlan,
    report: Path,
    ini: Path,
    *,
    ignore_nosec: bool = False,
) -> list[str]:
    """Bandit's command line: recursive, JSON report to ``report``, our ini, absolute paths."""
    argv = [bandit, "-r", "-f", "json", "-o", str(report), "-q", "--ini", str(ini)]
    argv += ["-x", ",".join(plan.exclude)]  # "" = none; omitted, bandit's defaults would apply
    if ignore_nosec:
        argv.append("--ignore-nosec")
    return [*argv, *plan.targets]


def parse_bandit_report(data: Any, project: Path) -> BanditReport:
    """Turn bandit's JSON report into findings, counts and errors (file names relative)."""
    try:
        metrics = data["metrics"]
        totals = metrics["_totals"]
        loc = int(totals["loc"])
        scanned = frozenset(os.path.normpath(name) for name in metrics if name != "_totals")
        errors = tuple((_shown(project, e["filename"]), str(e["reason"])) for e in data["errors"])
        findings = tuple(_finding(issue, project) for issue in data["results"])
        nosec, nosec_rules = int(totals.get("nosec", 0)), int(totals.get("skipped_tests", 0))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise ToolError(f"bandit JSON report has an unexpected shape: {exc!r}") from exc
    return BanditReport(loc, len(scanned), findings, errors, scanned, nosec, nosec_rules)


def require_complete(report: BanditReport, plan: ScanPlan | None = None) -> None:
    """Raise ToolError unless bandit audited some code and exactly the files it was given."""
    if report.errors:
        shown = [f"{name} ({reason})" for name, reason in report.errors]
        raise ToolError(f"bandit could not audit {len(report.errors)} path(s): {_listed(shown)}")
    if plan is not None:
        _require_planned(report, plan)
    if report.loc == 0:
        raise ToolError(f"bandit audited no code (0 lines in {report.files} files)")


def _require_planned(report: BanditReport, plan: ScanPlan) -> None:
    if plan.unreadable:
        raise ToolError(
            f"{len(plan.unreadable)} directories under the paths cannot be listed: "
            f"{_listed(list(plan.unreadable))}"
        )
    if plan.symlinked:
        shown = [_shown(plan.project, p) for p in plan.symlinked]
        raise ToolError(
            f"bandit does not follow symlinked directories; {len(shown)} hold Python files "
            f"(add their real path to paths, or exclude them): {_listed(shown)}"
        )
    left_out = sorted(plan.expected - report.scanned)
    if left_out:
        shown = [_shown(plan.project, p) for p in left_out]
        raise ToolError(
            f"bandit left out {len(left_out)} of {len(plan.expected)} Python files under the "
            f"paths: {_listed(shown)}"
        )
    unasked = sorted(report.scanned - plan.expected)
    if unasked:
        shown = [_shown(plan.project, p) for p in unasked]
        raise ToolError(
            f"bandit scanned {len(unasked)} files the check did not list (excluded, or not "
            f"Python): {_listed(shown)}"
        )


def hidden_by_nosec(honoured: BanditReport, ignored: BanditReport) -> list[Finding]:
    """The findings ``# nosec`` hid: in the ``--ignore-nosec`` run, not in the normal one.

    Raises ToolError when their number is not what bandit counted (``nosec + skipped_tests``),
    so a suppressed finding is never lost between the two runs.
    """
    hidden = Counter(ignored.findings) - Counter(honoured.findings)
    suppressed = []
    for finding in ignored.findings:  # in bandit's order: by file, then line
        if hidden[finding] > 0:
            hidden[finding] -= 1
            suppressed.append(finding)
    counted = honoured.nosec + honoured.nosec_rules
    if len(suppressed) != counted:
        raise ToolError(
            f"bandit counted {counted} findings hidden by # nosec, but a run with --ignore-nosec "
            f"shows {len(suppressed)} more"
        )
    return suppressed


def project_configs(project: Path, dot_bandit: set[str]) -> list[str]:
    """The project's own bandit settings, which this check does not apply, with their keys."""
    root_ini = os.path.join(project, ".bandit")
    inis = dot_bandit | ({root_ini} if os.path.isfile(root_ini) else set())
    found = [_with_keys(_shown(project, path), _ini_keys(path)) for path in sorted(inis)]
    try:
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pyproject = {}
    tool = pyproject.get("tool")
    if isinstance(tool, dict) and "bandit" in tool:
        table = tool["bandit"]
        found.append(
            _with_keys("pyproject.toml [tool.bandit]", table if isinstance(table, dict) else {})
        )
    found += [name for name in _PROJECT_YAML if (project / name).is_file()]
    return found


def report_metrics(
    report: BanditReport, plan: ScanPlan | None = None, suppressed: list[Finding] | None = None
) -> list[Metric]:
    """Size of what was audited, findings per severity, and what was left out on purpose."""
    metrics = [
        Metric("loc", report.loc, "", Direction.LOWER),
        Metric("files", report.files, "", Direction.LOWER),
        Metric("findings_high", report.count(FindingSeverity.HIGH), "", Direction.LOWER),
        Metric("findings_medium", report.count(FindingSeverity.MEDIUM), "", Direction.LOWER),
        Metric("findings_low", report.count(FindingSeverity.LOW), "", Direction.LOWER),
    ]
    if plan is not None:
        hidden = suppressed or []
        high = sum(1 for f in hidden if f.severity.rank >= FindingSeverity.HIGH.rank)
        metrics += [
            Metric("excluded_files", plan.excluded, "", Direction.LOWER),
            Metric("suppressed", len(hidden), "", Direction.LOWER),
            Metric("suppressed_high", high, "", Direction.LOWER),
        ]
    return metrics


def report_reason(
    report: BanditReport,
    plan: ScanPlan | None = None,
    suppressed: list[Finding] | None = None,
    *,
    ignore_nosec: bool = False,
) -> str:
    """One line, e.g. ``3 findings (1 high, 0 medium, 2 low) in 12 files, 840 lines``, then
    whatever was left out or hidden: suppressed, excluded, project settings not applied."""
    where = f"in {report.files} files, {report.loc} lines"
    if not report.findings:
        reason = f"no findings {where}"
    else:
        by_rank = Counter(f.severity.rank for f in report.findings)
        counts = ", ".join(
            f"{by_rank[s.rank]} {s.value}"
            for s in (FindingSeverity.HIGH, FindingSeverity.MEDIUM, FindingSeverity.LOW)
        )
        reason = f"{len(report.findings)} findings ({counts}) {where}"
    if suppressed:
        high = sum(1 for f in suppressed if f.severity.rank >= FindingSeverity.HIGH.rank)
        reason += f"; {len(suppressed)} suppressed by # nosec ({high} high)"
    if ignore_nosec:
        reason += "; # nosec not honoured"
    if plan is None:
        return reason
    if plan.scripts:
        shown = [_shown(plan.project, p) for p in plan.scripts]
        reason += f"; {len(shown)} scripts without .py scanned: {_listed(shown)}"
    if plan.excluded:
        reason += f"; {plan.excluded} Python files excluded by the check's exclude"
    if plan.project_configs:
        reason += f"; project bandit settings not applied: {_listed(list(plan.project_configs))}"
    return reason


class _Excludes:
    """The check's exclusions: project-relative paths (and all below them) or globs."""

    def __init__(self, project: Path, entries: list[str]) -> None:
        self.globs = [e for e in entries if _GLOB_CHARS & set(e)]
        self.paths = [_absolute(project, e) for e in entries if not _GLOB_CHARS & set(e)]

    def match(self, path: str) -> bool:
        return any(path == p or path.startswith(p + os.sep) for p in self.paths) or any(
            fnmatch.fnmatch(path, g) for g in self.globs
        )

    def for_bandit(self) -> tuple[str, ...]:
        # A path that does not exist excludes nothing here, but bandit would still drop every
        # file whose name merely contains it ("tests" drops "tests_util.py"): not passed.
        return (*(p for p in self.paths if os.path.lexists(p)), *self.globs)


def _finding(issue: dict[str, Any], project: Path) -> Finding:
    try:
        severity = FindingSeverity(str(issue["issue_severity"]).lower())
    except ValueError:
        severity = FindingSeverity.UNKNOWN  # bandit's "UNDEFINED"
    rule, path, line = (
        str(issue["test_id"]),
        _shown(project, issue["filename"]),
        int(issue["line_number"]),
    )
    more_info = issue.get("more_info")
    return Finding(
        tool="bandit",
        rule=rule,
        severity=severity,
        message=f"{issue['issue_text']} ({issue['test_name']})",
        location=f"{path}:{line}",
        confidence=str(issue.get("issue_confidence", "")).lower() or None,
        # The flagged code, not its line number: the finding stays itself when lines above
        # it are added or removed.
        fingerprint=fingerprint_of("bandit", rule, path, _flagged_code(issue, line)),
        help_url=more_info if isinstance(more_info, str) else "",
    )


def _flagged_code(issue: dict[str, Any], line: int) -> str:
    """The source text of the flagged line in bandit's ``code`` excerpt (``"12 text"``
    lines), whitespace removed; "" when the excerpt does not hold it."""
    code = issue.get("code")
    if not isinstance(code, str):
        return ""
    for text in code.splitlines():
        number, _, rest = text.strip().partition(" ")
        if number == str(line):
            return "".join(rest.split())
    return ""


def _python_shebang(path: str) -> bool:
    """Whether a file without a .py name starts with ``#!...python``; never opens a FIFO."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            first = handle.readline(_SHEBANG_BYTES)
    except OSError:
        return False  # unreadable: not known to be Python (a .py one would be scanned anyway)
    return first.startswith(b"#!") and b"python" in first


def _holds_python(folder: str) -> bool:
    return any(name.endswith(_PYTHON_SUFFIXES) for _, _, files in os.walk(folder) for name in files)


def _ini_keys(path: str) -> list[str]:
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
        return sorted(parser["bandit"]) if parser.has_section("bandit") else []
    except (configparser.Error, UnicodeDecodeError):
        return []


def _with_keys(name: str, keys: Any) -> str:
    listed = ", ".join(sorted(str(k) for k in keys))
    return f"{name} ({listed})" if listed else name


def _listed(items: list[str], shown: int = _SHOWN) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f", +{more} more" if more > 0 else "")


def _override(executable: str | None, project: Path) -> str | None:
    # A relative path such as ".venv/bin/bandit" means the project's, not our working dir's.
    if executable and os.sep in executable and not os.path.isabs(executable):
        return str(project / executable)
    return executable


def _absolute(project: Path, path: str) -> str:
    return os.path.normpath(project / path)


def _relative(project: Path, filename: str) -> str:
    root = os.path.normpath(project)
    path = os.path.normpath(os.path.join(root, filename))
    inside = path == root or path.startswith(root.rstrip(os.sep) + os.sep)
    return os.path.relpath(path, root) if inside else path


def _shown(project: Path, filename: str) -> str:
    """A file name fit for a report line: relative, and printable one to one."""
    return printable_name(_relative(project, filename))
