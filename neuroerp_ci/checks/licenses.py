"""The ``licenses`` kind: the licence of every distribution installed in the target's interpreter.

The distributions are listed in that interpreter, as for pip-audit's ``environment`` source
(:mod:`~neuroerp_ci.checks._environment`: the project's own install is set apart, it is the
code under test). Each one's licence is read from its metadata and normalised to an SPDX
expression, then judged against the ``allow`` and ``deny`` lists
(:mod:`~neuroerp_ci.checks._spdx`: which metadata is read, what ``BSD License`` becomes, how
``OR`` / ``AND`` / ``WITH`` are judged). Each distribution gives at most one finding, at
``name==version`` (a pipeline waiver names it so):

- ``license-denied`` (high): the expression cannot do without a denied licence;
- ``license-not-allowed`` (high): it cannot do without a licence off a non-empty allow list;
- ``license-unknown``: the metadata says nothing usable. Low by default (a warning condition),
  high with ``unknown = "error"``, no finding with ``unknown = "ignore"`` (still counted).

Every examined distribution is also a :class:`~neuroerp_ci.model.Component` of the result (the
SBOM's components), with the normalised licence and what the metadata said. An interpreter
that cannot be run or cannot list its distributions, or lists none but the project, is an
error: a licence check that examined nothing has not passed.

Example pipeline entry::

    [[checks]]
    id = "licences"
    kind = "licenses"
    settings = { deny = ["GPL-3.0-only", "GPL-3.0-or-later", "AGPL-3.0-only"] }
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import AfterValidator, Field, model_validator

from neuroerp_ci.checks._environment import Environment, InstalledPackage, installed_packages
from neuroerp_ci.checks._spdx import (
    Judgement,
    LicenseReading,
    judge,
    library_version,
    read_license,
    spdx_id,
    spdx_url,
)
from neuroerp_ci.checks.interface import (
    CacheInputs,
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
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
)

TOOL = "licenses"
MESSAGE_CHARS = 200
_SHOWN = 5
# Where a distribution's maintainers learn how to declare a licence that can be read.
DECLARE_URL = (
    "https://packaging.python.org/en/latest/specifications/core-metadata/#license-expression"
)

Verdict = Literal["ok", "denied", "not-allowed", "unknown"]
RULES: dict[Verdict, str] = {
    "denied": "license-denied",
    "not-allowed": "license-not-allowed",
    "unknown": "license-unknown",
}

SpdxId = Annotated[str, AfterValidator(spdx_id)]


class LicensesSettings(KindSettings):
    """Settings of a ``licenses`` check. Licence ids are SPDX ids (``MIT``, ``Apache-2.0``,
    ``GPL-3.0-or-later``) or ``LicenseRef-`` ids (``LicenseRef-BSD``: the ``BSD License``
    classifier), checked against the SPDX licence list when the file is loaded. Exceptions
    for one package are pipeline waivers of its finding, not settings."""

    # The licences a distribution may have; [] (default): any licence that is not denied.
    allow: list[SpdxId] = Field(default_factory=list)
    # The licences no distribution may have (``X OR Y`` still passes on its other side).
    deny: list[SpdxId] = Field(default_factory=list)
    # A licence the metadata does not say: a low finding and a warning ("warning"), a high
    # finding that blocks ("error"), or no finding ("ignore"; counted in ``unknown``).
    unknown: Literal["warning", "error", "ignore"] = "warning"

    @model_validator(mode="after")
    def _disjoint(self) -> LicensesSettings:
        denied = {d.lower() for d in self.deny}
        both = [a for a in self.allow if a.lower() in denied]
        if both:
            raise ValueError(f"{both[0]!r} is both allowed and denied")
        return self


@dataclass(frozen=True)
class ExaminedPackage:
    """One distribution, its licence and how it fares against the lists."""

    package: InstalledPackage
    reading: LicenseReading
    judgement: Judgement | None  # None when the licence is unknown

    @property
    def verdict(self) -> Verdict:
        if self.judgement is None:
            return "unknown"
        if self.judgement.denied:
            return "denied"
        return "not-allowed" if self.judgement.not_allowed else "ok"

    @property
    def location(self) -> str:
        return f"{self.package.name}=={self.package.version}"

    def component(self) -> Component:
        """The distribution as an SBOM component."""
        return Component(
            self.package.display,
            self.package.version,
            purl=purl(self.package),
            license=self.reading.expression,
            license_declared=self.reading.declared,
        )


class LicensesCheck(CheckKind):
    """Read the licence of every distribution installed in the target's interpreter and
    judge it against the allow and deny lists; a licence that cannot be read is a finding."""

    name: ClassVar[str] = "licenses"
    settings_model = LicensesSettings

    def runs_target_python(self, check: Check) -> bool:
        return True

    def metric_names(self, settings: KindSettings) -> MetricNames:
        fixed = frozenset({"packages", "denied", "not_allowed", "unknown"})
        return MetricNames(fixed=fixed, findings=True, audit=True)

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        own = settings if isinstance(settings, LicensesSettings) else LicensesSettings()
        # Denied and not allowed are high (so is unknown with unknown = "error").
        conditions: list[dict[str, Any]] = [{"findings": "high", "max": 0}]
        if own.unknown == "warning":
            # Findings are counted from a severity up: this one also lists the high ones,
            # which the first condition already blocks on; the unknown ones only warn.
            conditions.append({"findings": "low", "max": 0, "severity": "warning"})
        return tuple(conditions)

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        # The interpreter's installed packages (in every key) are all it reads.
        return CacheInputs(files=())

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, LicensesSettings)
        environment = installed_packages(ctx.python, ctx.project_dir, ctx.env, check.timeout)
        require_readable(environment)
        examined = [examine(p, settings) for p in environment.packages]
        if not examined:
            raise ToolError(f"{ctx.python}: examined nothing: no distribution but the project")
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.findings = [f for e in examined if (f := package_finding(e, settings)) is not None]
        result.components = [e.component() for e in examined]
        for metric in report_metrics(examined):
            result.add_metric(metric)
        result.reason = report_reason(examined, environment, settings)
        result.artifacts["licenses_json"] = str(
            write_table(examined, ctx.work_dir / "licenses.json")
        )
        result.tool_versions["license-expression"] = library_version()
        result.tool_versions["python"] = environment.python_version
        return result


def require_readable(environment: Environment) -> None:
    """Raise ToolError naming the distributions whose licence metadata the interpreter
    could not read: an unread licence is no unknown licence."""
    broken = [
        f"{p.display} {p.version}: {p.license_error}"
        for p in environment.packages
        if p.license_error
    ]
    if broken:
        more = f"; +{len(broken) - _SHOWN} more" if len(broken) > _SHOWN else ""
        raise ToolError(
            f"{environment.python}: could not read the licence metadata of {len(broken)} "
            f"distribution(s): {'; '.join(broken[:_SHOWN])}{more}"
        )


def examine(package: InstalledPackage, settings: LicensesSettings) -> ExaminedPackage:
    """The licence of one distribution, judged (None when it is unknown)."""
    reading = read_license(package.license_expression, package.license, package.license_classifiers)
    judgement = judge(reading.expression, settings.allow, settings.deny) if reading.known else None
    return ExaminedPackage(package, reading, judgement)


def package_finding(examined: ExaminedPackage, settings: LicensesSettings) -> Finding | None:
    """The distribution's finding: its licence denied, not allowed, or unknown; None if it
    passes (or is unknown and ``unknown = "ignore"``)."""
    verdict, package = examined.verdict, examined.package
    if verdict == "ok" or (verdict == "unknown" and settings.unknown == "ignore"):
        return None
    who, judgement = f"{package.display} {package.version}", examined.judgement
    licence = f"licence {examined.reading.expression}"
    severity, help_url = FindingSeverity.HIGH, DECLARE_URL
    if judgement is None:
        message = f"{who}: licence unknown ({examined.reading.problem})"
        if settings.unknown == "warning":
            severity = FindingSeverity.LOW
    elif judgement.denied:
        message = f"{who}: {licence} is denied ({', '.join(judgement.denied)})"
        help_url = spdx_url(judgement.denied[0])
    else:
        ids = ", ".join(judgement.not_allowed)
        message = f"{who}: {licence} is not allowed ({ids} not on the allow list)"
        help_url = spdx_url(judgement.not_allowed[0])
    return Finding(
        tool=TOOL,
        rule=RULES[verdict],
        severity=severity,
        message=one_line(message),
        location=examined.location,
        help_url=help_url,
    )


def report_metrics(examined: list[ExaminedPackage]) -> list[Metric]:
    """How many distributions were examined, and how many of them fail each way."""
    verdicts = [e.verdict for e in examined]
    return [
        Metric("packages", len(examined), "", Direction.HIGHER),
        Metric("denied", verdicts.count("denied"), "", Direction.LOWER),
        Metric("not_allowed", verdicts.count("not-allowed"), "", Direction.LOWER),
        Metric("unknown", verdicts.count("unknown"), "", Direction.LOWER),
    ]


def report_reason(
    examined: list[ExaminedPackage], environment: Environment, settings: LicensesSettings
) -> str:
    """One line: what was examined and how it fared (``licences of 14 distributions installed
    in .venv/bin/python (Python 3.11.7): 1 denied, 0 not allowed, 2 unknown``), what the
    lists are, and what was left out (the project itself)."""
    verdicts = [e.verdict for e in examined]
    reason = (
        f"licences of {len(examined)} distributions {environment.describe()}: "
        f"{verdicts.count('denied')} denied, {verdicts.count('not-allowed')} not allowed, "
        f"{verdicts.count('unknown')} unknown"
    )
    if not settings.allow and not settings.deny:
        reason += " (no allow or deny list: only unknown licences can be findings)"
    own = [p.shown() for p in environment.project]
    if own:
        reason += f"; not examined, the project itself: {'; '.join(own)}"
    return reason


def write_table(examined: list[ExaminedPackage], path: Path) -> Path:
    """Every examined distribution, its licence and verdict, as JSON (the raw output)."""
    rows = [
        {
            "name": e.package.display,
            "version": e.package.version,
            "license": e.reading.expression,
            "declared": e.reading.declared,
            "source": e.reading.source,
            "verdict": e.verdict,
            "problem": e.reading.problem,
        }
        for e in examined
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def purl(package: InstalledPackage) -> str:
    """``pkg:pypi/<normalised name>@<version>``, the version percent-encoded (``+`` of a
    local version is ``%2B``)."""
    return f"pkg:pypi/{package.name}@{quote(package.version, safe='')}"


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."
