"""The ``pip-audit`` kind: known vulnerabilities in the target's pinned or installed packages.

pip-audit fails open in two ways, both verified with pip-audit 2.10.1: with the PyPI service
unreachable it marks every dependency skipped, prints "No known vulnerabilities found" and
exits 0; with the OSV service unreachable it crashes with a traceback and exits 1, the same
code as "vulnerabilities found", writing no report. Here a skipped dependency, a missing
report, an exit 1 without vulnerabilities and an audit of zero dependencies are all errors.

What is audited (``source``): the pinned ``requirements`` files (or a PEP 751 ``lock``), the
packages installed in the target's interpreter (``environment``, see
:mod:`~neuroerp_ci.checks._environment`), or ``both``, which also reports the pins that
differ from what is installed (``requirements_drift``). Every pin must be exact (``==``,
``--no-deps``): the audit covers exactly what is written or installed, nothing is resolved.

Where the advisories come from: offline mirror folders (``settings.mirror``, else the run's
``--advisories`` / ``NEUROERP_CI_ADVISORIES`` / ``[advisories] mirror``), merged and served
on loopback (:func:`~neuroerp_ci.checks.advisories.serve_osv`),
so nothing leaves the machine; without
one, the live ``service``; and when that is unreachable, ``fallback_mirror`` if set (the demo
ships a small subset). The data's date and age are in the reason and in
``advisory_age_days`` (0 for a live service), which a default condition holds to
``max_age_days``.

Example pipeline entry::

    [[checks]]
    id = "deps"
    kind = "pip-audit"
    settings = { source = "both", requirements = ["requirements.txt"], max_age_days = 14 }
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import Field, model_validator

from neuroerp_ci.checks._environment import Environment, drift, installed_packages
from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks._requirements import (
    NamedRequirement,
    RequirementFiles,
    read_lock,
    read_requirements,
)
from neuroerp_ci.checks._tool_versions import version_run
from neuroerp_ci.checks.advisories import (
    AdvisoryMirror,
    MirrorFolder,
    mirror_content_key,
    serve_osv,
    severity_label,
)
from neuroerp_ci.checks.advisories import _today as advisories_today
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
    Component,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    Severity,
)
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS
from neuroerp_ci.support.tooling import ToolRun, find_tool, run_tool

TOOL = "pip-audit"
LIVE_HINT = (
    "no vulnerability service reachable; point neuroerp-ci at an offline OSV mirror with "
    "--advisories DIR, NEUROERP_CI_ADVISORIES=DIR or [advisories] mirror in the pipeline file"
)
MESSAGE_CHARS = 160
DEFAULT_MAX_AGE_DAYS = 30.0
_SKIPS_SHOWN = 5
# What pip-audit's stderr says when it could not reach its service (requests / urllib3 words).
_UNREACHABLE = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|NameResolution|Max retries exceeded|"
    r"Could not connect|Failed to establish|ProxyError|ServiceError"
)
_LOG_PREFIX = re.compile(r"^(ERROR|CRITICAL):[\w.]+:")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")

Source = Literal["requirements", "environment", "both"]


class PipAuditSettings(KindSettings):
    """Settings of a ``pip-audit`` check; paths are relative to the project."""

    moved_keys: ClassVar[Mapping[str, str]] = {"ignore": WAIVER_POINTER}

    # What to audit: the pinned requirements (or lock), the target interpreter's packages, both.
    source: Source = "requirements"
    # pinned requirements files (nested -r files are read too)
    requirements: list[str] = Field(default_factory=lambda: ["requirements.txt"], min_length=1)
    lock: str | None = None  # a pylock.toml (PEP 751): its packages instead of requirements
    executable: str | None = None  # pip-audit binary to use instead of the one found
    # OSV mirror folder(s), merged; overrides the run's advisories.
    mirror: str | Annotated[list[str], Field(min_length=1)] | None = None
    # Used only when no mirror is configured and the live service cannot be reached.
    fallback_mirror: str | None = None
    service: Literal["osv", "pypi"] = "osv"  # live service, used only without a mirror
    service_url: str | None = None  # live OSV query URL instead of api.osv.dev (tests, proxies)
    # The default condition advisory_age_days <= max_age_days, and its severity.
    max_age_days: float = Field(default=DEFAULT_MAX_AGE_DAYS, gt=0)
    max_age_severity: Severity = Severity.WARNING  # "blocking": old data fails the stage

    @model_validator(mode="after")
    def _consistent(self) -> PipAuditSettings:
        if self.service_url is not None and self.service != "osv":
            raise ValueError("service_url applies to service 'osv' only")
        if self.lock is not None and "requirements" in self.model_fields_set:
            raise ValueError("give either requirements or lock, not both")
        if self.source == "environment" and (
            self.lock is not None or "requirements" in self.model_fields_set
        ):
            raise ValueError(
                "source 'environment' audits the installed packages only; "
                "source 'both' audits the requirements (or lock) too"
            )
        return self

    @property
    def mirrors(self) -> list[str]:
        return [self.mirror] if isinstance(self.mirror, str) else list(self.mirror or [])


@dataclass(frozen=True)
class AuditedPackage:
    """One dependency pip-audit audited, with the advisories it reported."""

    name: str
    version: str
    vulns: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class AuditSource:
    """One pip-audit run: the pins it is given and how the reason names them."""

    name: str  # "requirements" | "environment": the run's report file name
    named: RequirementFiles
    described: str  # "2 requirement files", "pylock.toml", "installed in .venv/bin/python ..."
    environment: Environment | None = None


@dataclass
class AdvisoryData:
    """Where the advisories come from: a mirror (one or more folders) or a live service."""

    mirror: AdvisoryMirror | None
    service: str = "osv"
    project: Path | None = None  # folders inside it are named relative to it
    fell_back: str = ""  # why the live service was not used
    today: date | None = None  # for ages; None: today (UTC)
    folder_ages: list[int | None] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        folders = self.mirror.folders if self.mirror is not None else []
        dates = [f.snapshot_date(self.today) for f in folders]
        self.folder_ages = [None if d is None else d.age_days(self.today) for d in dates]

    @property
    def live(self) -> bool:
        return self.mirror is None

    @property
    def age_days(self) -> int | None:
        """The oldest folder's age in days (0 for a live service); None if a date is unknown."""
        if self.mirror is None:
            return 0
        if any(age is None for age in self.folder_ages):
            return None
        return max(age for age in self.folder_ages if age is not None)

    def describe(self) -> str:
        """Where the data came from and how old it is, first in the check's reason so that
        every clipped quote of it still names them: ``offline mirror /srv/advisory-database
        (2024-10-10, 782 days old)``, ``live OSV service (current data)``."""
        if self.mirror is None:
            return f"live {_service_name(self.service)} service (current data)"
        parts = [
            self._folder(folder, age)
            for folder, age in zip(self.mirror.folders, self.folder_ages, strict=True)
        ]
        if self.fell_back:  # one folder: say why it, not the live service, was used
            parts[-1] = parts[-1][:-1] + f"; {self.fell_back})"
        return " + ".join(parts)

    def dates(self) -> str:
        """Each folder's date and what said so, for ``tool_versions``."""
        if self.mirror is None:
            return f"live {self.service} service"
        entries = []
        for folder in self.mirror.folders:
            snapshot = folder.snapshot_date(self.today)
            when = f"{snapshot.day.isoformat()} ({snapshot.source})" if snapshot else "unknown date"
            entries.append(f"{folder.root}: {when}")
        return "; ".join(entries)

    def _folder(self, folder: MirrorFolder, age: int | None) -> str:
        snapshot = folder.snapshot_date(self.today)
        when = "unknown date"
        if snapshot is not None:
            when = f"{snapshot.day.isoformat()}, {age} day{'s' if age != 1 else ''} old"
        name = _shown_path(folder.root, self.project)
        if folder.subset:
            return f"advisory subset {name} ({len(folder.packages or ())} packages, {when})"
        return f"offline mirror {name} ({when})"


class ServiceUnreachable(ToolError):
    """pip-audit could not reach its live vulnerability service (the fallback may apply)."""


class PipAuditCheck(CheckKind):
    """Run pip-audit over pinned or installed packages, offline when a mirror is known."""

    name: ClassVar[str] = "pip-audit"
    settings_model = PipAuditSettings

    def runs_target_python(self, check: Check) -> bool:
        return typed_settings(check, PipAuditSettings).source != "requirements"

    def metric_names(self, settings: KindSettings) -> MetricNames:
        fixed = {"dependencies", "vulnerable_dependencies", "vulnerabilities", "advisory_age_days"}
        source = settings.source if isinstance(settings, PipAuditSettings) else "requirements"
        if source != "environment":
            fixed |= {"requirement_files", "excluded_by_marker"}
        if source != "requirements":
            fixed.add("installed_packages")
        if source == "both":
            fixed.add("requirements_drift")
        return MetricNames(fixed=frozenset(fixed), findings=True, audit=True)

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        own = settings if isinstance(settings, PipAuditSettings) else PipAuditSettings()
        conditions: list[dict[str, Any]] = [
            {"findings": "any", "max": 0},  # waive one with a [[waivers]] entry
            # Old advisory data cannot say "no known vulnerabilities": it warns (by default).
            {
                "metric": "advisory_age_days",
                "max": own.max_age_days,
                "severity": own.max_age_severity.value,
            },
        ]
        if own.source == "both":
            conditions.append({"metric": "requirements_drift", "max": 0, "severity": "warning"})
        return tuple(conditions)

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        settings = typed_settings(check, PipAuditSettings)
        mirrors = mirror_paths(settings, ctx)
        if not mirrors:
            return None  # a live service: its advisories change by the hour
        pip_audit = find_tool(TOOL, _override(settings.executable, ctx.project_dir))
        values = {TOOL: executable_identity(pip_audit, ctx.env)}
        for mirror in mirrors:
            content = mirror_content_key(mirror)
            if content is None:
                return None  # a folder just written or unreadable: no evidence of its content
            values[f"mirror:{mirror}"] = content
        # The data's age is a metric (on the advisories' clock): a reused result is at most a
        # day old.
        values["day"] = advisories_today().isoformat()
        # Requirements files and whatever they include with -r/-c, and lock files.
        files = ("*.txt", "*.in", "*.lock", "*.toml", "*.cfg")
        return CacheInputs(files, values)

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, PipAuditSettings)
        pip_audit = find_tool(TOOL, _override(settings.executable, ctx.project_dir))
        sources = audit_sources(settings, ctx, check.timeout)
        for source in sources:
            require_auditable(source.named)
        data = configured_data(settings, ctx)
        packages: list[AuditedPackage] = []
        for source in sources:
            try:
                packages += run_audit(pip_audit, settings, source, data, ctx, check.timeout)
            except ServiceUnreachable as exc:
                if settings.fallback_mirror is None or packages:
                    raise
                data = fallback_data(settings, ctx, exc)
                packages += run_audit(pip_audit, settings, source, data, ctx, check.timeout)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = raw_outputs(sources, ctx.work_dir)
        result.findings = unique_findings(
            [f for p in packages for f in package_findings(p, data.mirror)]
        )
        # What was audited, for the SBOM (the licence check adds the licences).
        result.components = [
            Component(p.name, p.version, purl=f"pkg:pypi/{canonicalize_name(p.name)}@{p.version}")
            for p in {(p.name, p.version): p for p in packages}.values()
        ]
        drifted = source_drift(sources)
        for metric in report_metrics(packages, sources, data, drifted):
            result.add_metric(metric)
        result.reason = report_reason(packages, result.findings, data, sources, drifted)
        result.tool_versions[TOOL] = tool_version(pip_audit, ctx, check.timeout)
        result.tool_versions["advisory-data"] = data.dates()
        if data.mirror is not None:
            result.tool_versions["advisory-mirror"] = data.mirror.snapshot
        return result


def audit_sources(
    settings: PipAuditSettings, ctx: CheckContext, timeout: float
) -> list[AuditSource]:
    """What this check audits, one pip-audit run each: the pins, then the environment."""
    sources = []
    if settings.source != "environment":
        if settings.lock is not None:
            lock = ctx.project_dir / settings.lock
            generated = ctx.work_dir / "lock-requirements.txt"
            named = read_lock(lock, ctx.project_dir, generated)
            sources.append(AuditSource("requirements", named, settings.lock))
        else:
            named = read_requirements(requirement_files(settings, ctx.project_dir), ctx.project_dir)
            sources.append(
                AuditSource("requirements", named, f"{len(named.files)} requirement files")
            )
    if settings.source != "requirements":
        environment = installed_packages(ctx.python, ctx.project_dir, ctx.env, timeout)
        named = environment.as_requirements(ctx.work_dir / "environment-requirements.txt")
        sources.append(AuditSource("environment", named, environment.describe(), environment))
    return sources


def raw_outputs(sources: list[AuditSource], work: Path) -> dict[str, str]:
    """pip-audit's JSON report and log of each run (``pip_audit_json``, ``log``; the
    environment's: ``pip_audit_environment_json``, ``log_environment``), and the generated
    requirements files it read."""
    files: dict[str, str] = {}
    for source in sources:
        key = "" if source.environment is None else "_environment"
        stem = work / _report_stem(source)
        files[f"pip_audit{key}_json"], files[f"log{key}"] = f"{stem}.json", f"{stem}.log"
        generated = [f for f in source.named.files if f.is_relative_to(work)]
        if generated:
            files[f"{source.name}_requirements"] = str(generated[0])
    return files


def configured_data(settings: PipAuditSettings, ctx: CheckContext) -> AdvisoryData:
    """The configured mirror folders (merged), or the live service when there are none."""
    folders = mirror_paths(settings, ctx)
    mirror = AdvisoryMirror(*folders) if folders else None
    return AdvisoryData(mirror, settings.service, ctx.project_dir)


def fallback_data(
    settings: PipAuditSettings, ctx: CheckContext, why: ServiceUnreachable
) -> AdvisoryData:
    """``fallback_mirror`` instead of the live service that could not be reached."""
    assert settings.fallback_mirror is not None
    folder = (ctx.project_dir / settings.fallback_mirror).resolve()
    service, cause = _service_name(settings.service), _unreachable_cause(str(why))
    reason = f"live {service} service unreachable: {cause}"
    return AdvisoryData(AdvisoryMirror(folder), settings.service, ctx.project_dir, reason)


def run_audit(
    pip_audit: str,
    settings: PipAuditSettings,
    source: AuditSource,
    data: AdvisoryData,
    ctx: CheckContext,
    timeout: float,
) -> list[AuditedPackage]:
    """One pip-audit run over ``source``; the packages it audited, all of them checked."""
    stem = _report_stem(source)
    report_path, log = ctx.work_dir / f"{stem}.json", ctx.work_dir / f"{stem}.log"
    remove_stale(report_path, log)
    # Every file, nested ones too: pip-audit --no-deps ignores "-r" lines inside a file.
    argv = base_argv(pip_audit, settings, list(source.named.files), ctx.work_dir, report_path)
    with ExitStack() as stack:
        if data.mirror is not None:
            url = stack.enter_context(serve_osv(data.mirror))
            argv += ["-s", "osv", "--osv-url", f"{url}/v1/query"]
        else:
            argv += ["-s", settings.service]
            if settings.service_url:
                argv += ["--osv-url", settings.service_url]
        try:
            run = run_tool(
                argv,
                cwd=ctx.project_dir,
                timeout=timeout,
                env=_loopback_direct(ctx.env),
                ok_codes=None,
            )
        except ToolError as exc:
            raise ToolError(_with_hint(str(exc), live=data.live)) from exc
    write_log(log, run)
    packages = read_report(run, report_path, data.mirror, live=data.live)
    what = "installed packages" if source.environment else "requirements the files name"
    require_all_audited(source.named, packages, what)
    return packages


def requirement_files(settings: PipAuditSettings, project: Path) -> list[Path]:
    """The requirements files as absolute paths; a missing one is a ToolError naming it."""
    files = [project / name for name in settings.requirements]
    for name, path in zip(settings.requirements, files, strict=True):
        if not path.is_file():
            raise ToolError(f"pip-audit: requirements file '{name}' not found in {project}")
    return files


def require_auditable(named: RequirementFiles) -> None:
    """Raise ToolError naming every requirement pip-audit ``--no-deps`` would refuse or skip.

    pip-audit stops at the first unpinned or unhashed one and reports URL and editable ones as
    skipped; here all of them are named at once, with their ``file:line``, before it runs.
    """
    applying = [r for r in named.requirements if r.applies()]
    refused = [f"{r.shown()}: {why}" for r in applying if (why := r.why_not_auditable())]
    if refused:
        raise ToolError(
            f"pip-audit --no-deps audits exact pins (name==version) only; {len(refused)} "
            f"requirement(s) are not: {_listed(refused)}"
        )
    if named.require_hashes or any(r.hashed for r in named.requirements):
        # pip's rule, applied by pip-audit to every file of the run: one hash means all.
        bare = [r.shown() for r in named.requirements if not r.hashed]
        if bare:
            raise ToolError(
                f"hashes are required (a requirement has --hash or a file --require-hashes), "
                f"but {len(bare)} requirement(s) have none: {_listed(bare)}"
            )
    pins: dict[str, list[NamedRequirement]] = {}
    for req in applying:
        assert req.name is not None  # an unnamed one was refused above
        same = pins.setdefault(req.name, [])
        if all(other.pinned != req.pinned for other in same):
            same.append(req)
    clashes = [" vs ".join(r.shown() for r in reqs) for reqs in pins.values() if len(reqs) > 1]
    if clashes:
        raise ToolError(
            f"{len(clashes)} package(s) pinned to different versions (one audit is one "
            f"environment: give each file its own check): {_listed(clashes)}"
        )


def require_all_audited(
    named: RequirementFiles,
    packages: list[AuditedPackage],
    what: str = "requirements the files name",
) -> None:
    """Raise ToolError unless pip-audit audited exactly the pins the files name for this
    interpreter: a requirement it dropped, or a version it audited instead, is named."""
    expected: dict[str, NamedRequirement] = {}
    for req in named.requirements:
        if req.applies() and req.name is not None:
            expected.setdefault(req.name, req)
    audited: dict[str, AuditedPackage] = {canonicalize_name(p.name): p for p in packages}
    missing = [
        req.shown() if name not in audited else f"{req.shown()}, audited {audited[name].version}"
        for name, req in expected.items()
        if name not in audited or not _same_version(audited[name].version, req.pinned)
    ]
    if missing:
        raise ToolError(
            f"pip-audit did not audit {len(missing)} of {len(expected)} {what}: {_listed(missing)}"
        )
    extra = [f"{p.name}=={p.version}" for name, p in audited.items() if name not in expected]
    if extra:
        raise ToolError(
            f"pip-audit audited {len(extra)} dependencies the requirements files do not name "
            f"(they were read differently): {_listed(extra)}"
        )


def excluded_by_marker(named: RequirementFiles) -> list[NamedRequirement]:
    """Requirements whose marker is false here: pip-audit skips them, the reason says so."""
    return [r for r in named.requirements if not r.applies()]


def mirror_paths(settings: PipAuditSettings, ctx: CheckContext) -> list[Path]:
    """The offline mirror folders: this check's ``mirror`` setting, else the run's; [] = live."""
    if settings.mirrors:
        return [(ctx.project_dir / m).resolve() for m in settings.mirrors]
    return list(ctx.advisories)


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
    return argv


def read_report(
    run: ToolRun, report: Path, mirror: AdvisoryMirror | None, *, live: bool
) -> list[AuditedPackage]:
    """The audited packages from pip-audit's JSON report; raise ToolError unless complete
    (:class:`ServiceUnreachable` when a live service could not be reached)."""
    if run.returncode not in (0, 1):  # 1: vulnerabilities found (and also: crashed)
        raise ToolError(f"pip-audit exited {run.returncode}: {run.tail()}")
    if not report.is_file():
        reason = f"pip-audit exited {run.returncode} without a report: {last_error(run)}"
        if mirror is not None and mirror.errors:
            reason = f"pip-audit could not query the advisory mirror: {mirror.errors[0]}"
        if live and _UNREACHABLE.search(run.stderr) is not None:
            raise ServiceUnreachable(_with_hint(reason, live=True))
        raise ToolError(reason)
    packages = parse_report(read_json_file(report, TOOL), live=live)
    if run.returncode == 1 and not any(p.vulns for p in packages):
        raise ToolError(f"pip-audit exited 1 but reported no vulnerability: {run.tail()}")
    return packages


def parse_report(data: Any, *, live: bool = False) -> list[AuditedPackage]:
    """Audited packages from pip-audit's JSON; skipped ones or none at all are a ToolError
    (every one skipped by a live service: :class:`ServiceUnreachable`)."""
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
        shown = _listed([f"{name}: {why}" for name, why in skipped])
        reason = f"pip-audit skipped {len(skipped)} of {len(entries)} dependencies: {shown}"
        if live and not packages:  # PyPI unreachable: every dependency "not found"
            raise ServiceUnreachable(_with_hint(reason, live=True))
        raise ToolError(_with_hint(reason, live=live))
    if not packages:
        raise ToolError("pip-audit audited no dependencies (are the requirements files empty?)")
    return packages


def package_findings(package: AuditedPackage, mirror: AdvisoryMirror | None) -> list[Finding]:
    """One finding per advisory; severity from the mirror's records of it (the highest of
    the advisory and its aliases: a PYSEC record may be unrated where its GHSA is not)."""
    findings = []
    for vuln in package.vulns:
        advisory = str(vuln["id"])
        aliases = tuple(sorted(str(a) for a in vuln.get("aliases") or []))
        records = mirror.related(package.name, {advisory, *aliases}) if mirror else []
        severities = [FindingSeverity(label) for r in records if (label := severity_label(r))]
        findings.append(
            Finding(
                tool=TOOL,
                rule=advisory,
                severity=max(severities, key=lambda s: s.rank, default=FindingSeverity.UNKNOWN),
                message=first_sentence(str(vuln.get("description") or advisory)),
                location=f"{package.name}=={package.version}",
                fix_versions=tuple(str(v) for v in vuln.get("fix_versions") or []),
                aliases=aliases,
                help_url=f"https://osv.dev/vulnerability/{advisory}",
            )
        )
    return findings


def unique_findings(findings: list[Finding]) -> list[Finding]:
    """One finding per advisory and package version (a pin that is also installed is
    audited twice with ``source = "both"``)."""
    seen: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        seen.setdefault((finding.location, finding.rule), finding)
    return list(seen.values())


def source_drift(sources: list[AuditSource]) -> list[str] | None:
    """The pins that differ from what is installed; None unless both were read."""
    pins = [s for s in sources if s.environment is None]
    installed = [s.environment for s in sources if s.environment is not None]
    if not pins or not installed:
        return None
    return drift(pins[0].named, installed[0])


def report_metrics(
    packages: list[AuditedPackage],
    sources: list[AuditSource] | None = None,
    data: AdvisoryData | None = None,
    drifted: list[str] | None = None,
) -> list[Metric]:
    """How much was audited, how much of it is vulnerable, what was read to know it, how old
    the advisory data is and how far the pins drifted from what is installed."""
    distinct = {(canonicalize_name(p.name), p.version): p for p in packages}
    metrics = [
        Metric("dependencies", len(distinct), "", Direction.HIGHER),
        Metric(
            "vulnerable_dependencies",
            sum(1 for p in distinct.values() if p.vulns),
            "",
            Direction.LOWER,
        ),
        Metric(
            "vulnerabilities", sum(len(p.vulns) for p in distinct.values()), "", Direction.LOWER
        ),
    ]
    for source in sources or []:
        if source.environment is not None:
            metrics.append(
                Metric("installed_packages", len(source.named.requirements), "", Direction.HIGHER)
            )
        else:
            metrics += [
                Metric("requirement_files", len(source.named.files), "", Direction.HIGHER),
                Metric(
                    "excluded_by_marker", len(excluded_by_marker(source.named)), "", Direction.LOWER
                ),
            ]
    if data is not None and data.age_days is not None:  # unknown: missing, so it fails
        metrics.append(Metric("advisory_age_days", data.age_days, "d", Direction.LOWER))
    if drifted is not None:
        metrics.append(Metric("requirements_drift", len(drifted), "", Direction.LOWER))
    return metrics


def report_reason(
    packages: list[AuditedPackage],
    findings: list[Finding],
    data: AdvisoryData | None,
    sources: list[AuditSource] | None = None,
    drifted: list[str] | None = None,
) -> str:
    """One line: where the advisories came from and how old they are, what was found in
    what (``offline mirror /srv/db (2024-10-10, 782 days old): 3 vulnerabilities in 1 of 15
    dependencies from 1 requirement files``), then what was not audited (markers, the
    project itself) and the drift from what is installed."""
    where = data.describe() if data is not None else "live service (current data)"
    distinct = {(canonicalize_name(p.name), p.version): p for p in packages}
    vulnerable = sum(1 for p in distinct.values() if p.vulns)
    if not findings:
        reason = f"no known vulnerabilities in {len(distinct)} dependencies"
    else:
        reason = f"{len(findings)} vulnerabilities in {vulnerable} of {len(distinct)} dependencies"
    if not sources:
        return f"{where}: {reason}"
    described = " and ".join(
        s.described if s.environment is not None else f"from {s.described}" for s in sources
    )
    reason = f"{where}: {reason} {described}"
    for source in sources:
        excluded = excluded_by_marker(source.named)
        if excluded:
            reason += (
                f"; not audited, their marker excludes this interpreter: "
                f"{_listed([r.shown() for r in excluded])}"
            )
        own = [p.shown() for p in source.environment.project] if source.environment else []
        own += list(source.named.project)
        if own:
            reason += f"; not audited, the project itself: {_listed(own)}"
    if drifted:
        reason += f"; {len(drifted)} pins differ from what is installed: {_listed(drifted)}"
    return reason


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
    run = version_run(
        pip_audit, lambda out: len(out.split()) == 2,
        cwd=ctx.project_dir, timeout=timeout, env=ctx.env,
    )  # fmt: skip
    words = run.stdout.split()
    return words[1] if len(words) == 2 else run.stdout.strip()


def _vulns(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(v, dict) and "id" in v for v in raw):
        raise TypeError(f"vulns is not a list of advisories: {raw!r:.80}")
    return raw


def _listed(items: list[str], shown: int = _SKIPS_SHOWN) -> str:
    """``a; b; c; +2 more``: the first few of a list that may be long."""
    more = len(items) - shown
    return "; ".join(items[:shown]) + (f"; +{more} more" if more > 0 else "")


def _same_version(audited: str, pinned: Version | None) -> bool:
    try:
        return pinned is not None and Version(audited) == pinned
    except InvalidVersion:
        return False


def _with_hint(reason: str, *, live: bool) -> str:
    return f"{reason}; {LIVE_HINT}" if live else reason


def _loopback_direct(env: Mapping[str, str]) -> dict[str, str]:
    # requests sends 127.0.0.1 through HTTP(S)_PROXY unless NO_PROXY names it.
    merged = dict(env)
    for key in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in merged.get(key, "").split(",") if h.strip()]
        merged[key] = ",".join([*hosts, *LOOPBACK_HOSTS])
    return merged


def _service_name(service: str) -> str:
    return {"osv": "OSV", "pypi": "PyPI"}.get(service, service)


def _report_stem(source: AuditSource) -> str:
    return "pip-audit" if source.environment is None else "pip-audit-environment"


def _shown_path(path: Path, project: Path | None) -> str:
    # The demo's subset is "advisories", not /home/.../neuroerp-demo/advisories.
    if project is not None and path.is_relative_to(project.resolve()):
        return path.relative_to(project.resolve()).as_posix() or "."
    return str(path)


def _unreachable_cause(reason: str) -> str:
    """``ConnectionError``: what kept the live service away, without the traceback."""
    match = _UNREACHABLE.search(reason)
    return match.group(0) if match else "no answer"


def _override(executable: str | None, project: Path) -> str | None:
    # A relative path such as ".venv/bin/pip-audit" means the project's, not our working dir's.
    if executable and os.sep in executable and not os.path.isabs(executable):
        return str(project / executable)
    return executable
