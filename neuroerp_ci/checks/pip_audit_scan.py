"""The ``pip-audit`` kind: known vulnerabilities in the target's pinned dependencies.

pip-audit fails open in two ways, both verified with pip-audit 2.10.1: with the PyPI service
unreachable it marks every dependency skipped, prints "No known vulnerabilities found" and
exits 0; with the OSV service unreachable it crashes with a traceback and exits 1, the same
code as "vulnerabilities found", writing no report. Here a skipped dependency, a missing
report, an exit 1 without vulnerabilities and an audit of zero dependencies are all errors.

With an offline mirror (``settings.mirror``, else the run's ``--advisories`` /
``NEUROERP_CI_ADVISORIES`` / ``[advisories] mirror``), pip-audit queries a local OSV endpoint
(:func:`neuroerp_ci.advisories.serve_osv`) and nothing leaves the machine. Without one it
asks the live ``service``. Requirements must pin every package with ``==`` (``--no-deps``):
the audit covers exactly what is written, without resolving anything through pip.

Example pipeline entry::

    [[checks]]
    id = "deps"
    kind = "pip-audit"
    settings = { requirements = ["requirements.txt"], ignore = ["PYSEC-2023-212"] }
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from neuroerp_ci.advisories import AdvisoryMirror, serve_osv, severity_label
from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    typed_settings,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Finding, FindingSeverity, Metric
from neuroerp_ci.tooling import ToolRun, find_tool, run_tool

TOOL = "pip-audit"
LIVE_HINT = (
    "no vulnerability service reachable; point neuroerp-ci at an offline OSV mirror with "
    "--advisories DIR, NEUROERP_CI_ADVISORIES=DIR or [advisories] mirror in the pipeline file"
)
MESSAGE_CHARS = 160
_SKIPS_SHOWN = 5
# What pip-audit's stderr says when it could not reach its service (requests / urllib3 words).
_UNREACHABLE = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|NameResolution|Max retries exceeded|"
    r"Could not connect|Failed to establish"
)
_LOG_PREFIX = re.compile(r"^(ERROR|CRITICAL):[\w.]+:")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class PipAuditSettings(KindSettings):
    """Settings of a ``pip-audit`` check; paths are relative to the project."""

    requirements: list[str] = Field(default_factory=lambda: ["requirements.txt"], min_length=1)
    executable: str | None = None  # pip-audit binary to use instead of the one found
    mirror: str | None = None  # OSV mirror directory; overrides the run's advisories
    service: Literal["osv", "pypi"] = "osv"  # live service, used only without a mirror
    service_url: str | None = None  # live OSV query URL instead of api.osv.dev (tests, proxies)
    # Advisory ids (or aliases) waived on purpose; pip-audit drops them from its report.
    ignore: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _url_needs_osv(self) -> PipAuditSettings:
        if self.service_url is not None and self.service != "osv":
            raise ValueError("service_url applies to service 'osv' only")
        return self


@dataclass(frozen=True)
class AuditedPackage:
    """One dependency pip-audit audited, with the advisories it reported."""

    name: str
    version: str
    vulns: tuple[dict[str, Any], ...]


class PipAuditCheck(CheckKind):
    """Run pip-audit over pinned requirements, offline when a mirror is known; fail closed."""

    name: ClassVar[str] = "pip-audit"
    settings_model = PipAuditSettings

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, PipAuditSettings)
        pip_audit = find_tool(TOOL, _override(settings.executable, ctx.project_dir))
        requirements = requirement_files(settings, ctx.project_dir)
        mirror_dir = mirror_path(settings, ctx)
        mirror = AdvisoryMirror(mirror_dir) if mirror_dir is not None else None
        report_path = ctx.work_dir / "pip-audit.json"
        log = ctx.work_dir / "pip-audit.log"
        remove_stale(report_path, log)
        argv = base_argv(pip_audit, settings, requirements, ctx.work_dir, report_path)
        with ExitStack() as stack:
            if mirror is not None:
                url = stack.enter_context(serve_osv(mirror))
                argv += ["-s", "osv", "--osv-url", f"{url}/v1/query"]
            else:
                argv += ["-s", settings.service]
                if settings.service_url:
                    argv += ["--osv-url", settings.service_url]
            try:
                run = run_tool(
                    argv,
                    cwd=ctx.project_dir,
                    timeout=check.timeout,
                    env=_loopback_direct(ctx.env),
                    ok_codes=None,
                )
            except ToolError as exc:
                raise ToolError(_with_hint(str(exc), live=mirror is None)) from exc
        write_log(log, run)
        packages = read_report(run, report_path, mirror, live=mirror is None)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = {"pip_audit_json": str(report_path), "log": str(log)}
        result.findings = [f for p in packages for f in package_findings(p, mirror)]
        for metric in report_metrics(packages):
            result.add_metric(metric)
        result.reason = report_reason(packages, result.findings, mirror)
        result.tool_versions[TOOL] = tool_version(pip_audit, ctx, check.timeout)
        if mirror is not None:
            result.tool_versions["advisory-mirror"] = mirror.snapshot
        return result


def requirement_files(settings: PipAuditSettings, project: Path) -> list[Path]:
    """The requirements files as absolute paths; a missing one is a ToolError naming it."""
    files = [project / name for name in settings.requirements]
    for name, path in zip(settings.requirements, files, strict=True):
        if not path.is_file():
            raise ToolError(f"pip-audit: requirements file '{name}' not found in {project}")
    return files


def mirror_path(settings: PipAuditSettings, ctx: CheckContext) -> Path | None:
    """The offline mirror: this check's ``mirror`` setting, then the run's; None = live."""
    if settings.mirror:
        return (ctx.project_dir / settings.mirror).resolve()
    return ctx.advisories


def base_argv(
    pip_audit: str, settings: PipAuditSettings, requirements: list[Path], work: Path, report: Path
) -> list[str]:
    """pip-audit's command line without the service: exact pins, JSON report, own cache."""
    argv = [pip_audit]
    for path in requirements:
        argv += ["-r", str(path)]
    argv += [
        "--no-deps",  # audit the pins as written; no resolver, no index
        "--disable-pip",
        "-f", "json",
        "-o", str(report),
        "--progress-spinner", "off",
        "--desc", "on",
        "--aliases", "on",
        # A private HTTP cache: concurrent runs do not share state, and pip is never asked.
        "--cache-dir", str(work / "pip-audit-cache"),
    ]  # fmt: skip
    for advisory in settings.ignore:
        argv += ["--ignore-vuln", advisory]
    return argv


def read_report(
    run: ToolRun, report: Path, mirror: AdvisoryMirror | None, *, live: bool
) -> list[AuditedPackage]:
    """The audited packages from pip-audit's JSON report; raise ToolError unless complete."""
    if run.returncode not in (0, 1):  # 1: vulnerabilities found (and also: crashed)
        raise ToolError(f"pip-audit exited {run.returncode}: {run.tail()}")
    if not report.is_file():
        reason = f"pip-audit exited {run.returncode} without a report: {last_error(run)}"
        if mirror is not None and mirror.errors:
            reason = f"pip-audit could not query the advisory mirror: {mirror.errors[0]}"
        unreachable = live and _UNREACHABLE.search(run.stderr) is not None
        raise ToolError(_with_hint(reason, live=unreachable))
    packages = parse_report(read_json_file(report, TOOL), live=live)
    if run.returncode == 1 and not any(p.vulns for p in packages):
        raise ToolError(f"pip-audit exited 1 but reported no vulnerability: {run.tail()}")
    return packages


def parse_report(data: Any, *, live: bool = False) -> list[AuditedPackage]:
    """Audited packages from pip-audit's JSON; skipped ones or none at all are a ToolError."""
    try:
        entries = data["dependencies"]
        skipped = [(str(e["name"]), str(e["skip_reason"])) for e in entries if "skip_reason" in e]
        packages = [
            AuditedPackage(str(e["name"]), str(e["version"]), tuple(_vulns(e["vulns"])))
            for e in entries
            if "skip_reason" not in e
        ]
    except (TypeError, KeyError) as exc:
        raise ToolError(f"pip-audit JSON report has an unexpected shape: {exc!r}") from exc
    if skipped:
        shown = "; ".join(f"{name}: {why}" for name, why in skipped[:_SKIPS_SHOWN])
        more = len(skipped) - _SKIPS_SHOWN
        suffix = f"; +{more} more" if more > 0 else ""
        reason = f"pip-audit skipped {len(skipped)} of {len(entries)} dependencies: {shown}{suffix}"
        raise ToolError(_with_hint(reason, live=live))
    if not packages:
        raise ToolError("pip-audit audited no dependencies (are the requirements files empty?)")
    return packages


def package_findings(package: AuditedPackage, mirror: AdvisoryMirror | None) -> list[Finding]:
    """One finding per advisory; severity from the mirror's record when there is one."""
    findings = []
    for vuln in package.vulns:
        advisory = str(vuln["id"])
        aliases = tuple(sorted(str(a) for a in vuln.get("aliases") or []))
        record = mirror.find(package.name, advisory) if mirror is not None else None
        label = severity_label(record) if record is not None else None
        findings.append(
            Finding(
                tool=TOOL,
                rule=advisory,
                severity=FindingSeverity(label) if label else FindingSeverity.UNKNOWN,
                message=first_sentence(str(vuln.get("description") or advisory)),
                location=f"{package.name}=={package.version}",
                fix_versions=tuple(str(v) for v in vuln.get("fix_versions") or []),
                aliases=aliases,
            )
        )
    return findings


def report_metrics(packages: list[AuditedPackage]) -> list[Metric]:
    """How much was audited and how much of it is vulnerable."""
    return [
        Metric("dependencies", len(packages), "", Direction.HIGHER),
        Metric("vulnerable_dependencies", sum(1 for p in packages if p.vulns), "", Direction.LOWER),
        Metric("vulnerabilities", sum(len(p.vulns) for p in packages), "", Direction.LOWER),
    ]


def report_reason(
    packages: list[AuditedPackage], findings: list[Finding], mirror: AdvisoryMirror | None
) -> str:
    """One line, e.g. ``3 vulnerabilities in 1 of 15 dependencies (offline mirror)``."""
    source = "offline mirror" if mirror is not None else "live service"
    vulnerable = sum(1 for p in packages if p.vulns)
    if not findings:
        return f"no known vulnerabilities in {len(packages)} dependencies ({source})"
    return (
        f"{len(findings)} vulnerabilities in {vulnerable} of {len(packages)} dependencies "
        f"({source})"
    )


def first_sentence(text: str, limit: int = MESSAGE_CHARS) -> str:
    """The first sentence of an advisory's description, on one line, at most ``limit`` chars."""
    flat = " ".join(text.split())
    sentence = _SENTENCE_END.split(flat, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def last_error(run: ToolRun, chars: int = 300) -> str:
    """The line that says what went wrong: pip-audit's last ERROR, or a traceback's last line.

    pip-audit logs warnings about ``--no-deps`` on every run and prints whole tracebacks when
    a service is unreachable; the plain tail of stderr would mostly show those.
    """
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith("WARNING:")]
    if not meaningful:
        return run.tail()
    line = _LOG_PREFIX.sub("", meaningful[-1])
    return line if len(line) <= chars else line[: chars - 3] + "..."


def tool_version(pip_audit: str, ctx: CheckContext, timeout: float) -> str:
    """pip-audit's version from ``pip-audit --version`` ("pip-audit 2.10.1")."""
    run = run_tool([pip_audit, "--version"], cwd=ctx.project_dir, timeout=timeout, env=ctx.env)
    words = run.stdout.split()
    return words[1] if len(words) == 2 else run.stdout.strip()


def _vulns(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(v, dict) and "id" in v for v in raw):
        raise TypeError(f"vulns is not a list of advisories: {raw!r:.80}")
    return raw


def _with_hint(reason: str, *, live: bool) -> str:
    return f"{reason}; {LIVE_HINT}" if live else reason


def _loopback_direct(env: Mapping[str, str]) -> dict[str, str]:
    # requests sends 127.0.0.1 through HTTP(S)_PROXY unless NO_PROXY names it.
    merged = dict(env)
    for key in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in merged.get(key, "").split(",") if h.strip()]
        merged[key] = ",".join([*hosts, "127.0.0.1", "localhost"])
    return merged


def _override(executable: str | None, project: Path) -> str | None:
    # A relative path such as ".venv/bin/pip-audit" means the project's, not our working dir's.
    if executable and os.sep in executable and not os.path.isabs(executable):
        return str(project / executable)
    return executable
