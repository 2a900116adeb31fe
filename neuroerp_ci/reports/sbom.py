"""``bom.cdx.json``: the CycloneDX 1.6 SBOM of what a stage run examined, and its advisories.

The BOM describes the target (``metadata.component``: its name and the version tested) and
lists as components every installed distribution a check examined (``CheckResult.components``,
one per purl). Every pip-audit finding, counted or waived, is a vulnerability whose
``affects`` names its component; a package no check listed gets a component of its own, so
every reference resolves. Which package pulls in which is not known: the target depends on
every component, flat, and a property says so. Findings of the baseline run gone now are not
vulnerabilities of this one and are left out.

A waiver accepts a risk for a while; it does not show that the target is not affected. A
waived advisory's analysis is therefore ``in_triage``, its detail the waiver's reason, owner
and last day; other advisories carry no analysis.

Built with cyclonedx-python-lib and validated against the specification's own schema
(:class:`~cyclonedx.validation.json.JsonStrictValidator`) before it is returned: a BOM that
does not validate raises :class:`ValueError` and never reaches a file. The same report gives
the same text: the serial number is a UUID 5 of the run id, the timestamp the report's
``finished_at``, and every ``bom-ref`` is named here (the library would invent random ones).
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import quote

from cyclonedx.model import AttachedText, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType
from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus, ImpactAnalysisState
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityAnalysis,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import is_expression
from packageurl import PackageURL

from neuroerp_ci import __version__
from neuroerp_ci.model import Component, Finding, FindingSeverity, StageReport
from neuroerp_ci.support.formatting import plain_text

if TYPE_CHECKING:
    from cyclonedx.validation.json import JsonStrictValidator

SPEC_VERSION = SchemaVersion.V1_6
NOTE = "neuroerp-ci:note"
AUDIT_TOOL = "pip-audit"
NO_COMPONENTS_NOTE = "no check listed the environment's components"
FLAT_GRAPH_NOTE = (
    "flat: the target depends on every component listed; which package requires which is not known"
)
# A fixed namespace for the serial number: the same run always gets the same one.
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://neuroerp-ci/bom")
_ALIAS_SOURCES = (  # where an alias of an advisory is published, by its prefix
    ("CVE-", "NVD", "https://nvd.nist.gov/vuln/detail/"),
    ("GHSA-", "GitHub Advisory Database", "https://github.com/advisories/"),
)
_SEVERITIES = {
    FindingSeverity.CRITICAL: VulnerabilitySeverity.CRITICAL,
    FindingSeverity.HIGH: VulnerabilitySeverity.HIGH,
    FindingSeverity.MEDIUM: VulnerabilitySeverity.MEDIUM,
    FindingSeverity.LOW: VulnerabilitySeverity.LOW,
    FindingSeverity.UNKNOWN: VulnerabilitySeverity.UNKNOWN,
}
_NAME_CHARS = 100  # a declared licence can be its whole text: the name is its first line


def render_sbom(report: StageReport) -> str:
    """The full text of ``bom.cdx.json``; raises :class:`ValueError` if it does not validate."""
    text = JsonV1Dot6(build_bom(report)).output_as_string(indent=2) + "\n"
    error = _validator().validate_str(text)
    if error is not None:
        problem = plain_text(str(error)).splitlines()[0]
        raise ValueError(
            f"bom.cdx.json is not valid CycloneDX {SPEC_VERSION.to_version()}: {problem}"
        )
    return text


def build_bom(report: StageReport) -> Bom:
    """The BOM as cyclonedx-python-lib objects (:func:`render_sbom` serialises it)."""
    listed = _listed_components(report)
    components = dict(listed)
    by_package = {_key(str(c.name), c.version or ""): c for c in reversed(listed.values())}
    advisories = _advisories(report)
    for advisory in advisories.values():
        if advisory.package not in by_package:
            added = _unlisted(advisory.name, advisory.version)
            components[str(added.bom_ref.value)] = by_package[advisory.package] = added
    target = _target(report)
    bom = Bom(
        serial_number=uuid.uuid5(_SERIAL_NAMESPACE, report.run_id),
        metadata=BomMetaData(
            timestamp=_timestamp(report),
            tools=ToolRepository(components=[_self()]),
            component=target,
            properties=_metadata_properties(report, listed=bool(listed), any_=bool(components)),
        ),
        components=components.values(),
        vulnerabilities=[a.vulnerability(by_package[a.package]) for a in advisories.values()],
    )
    if components:
        bom.register_dependency(target, components.values())
    return bom


@cache
def _validator() -> JsonStrictValidator:
    # Imported here: loading the schemas takes a second, which a CLI that writes no report
    # (or the import of neuroerp_ci.reports) should not pay.
    with _without(_IRI_GRAMMARS):
        from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SPEC_VERSION)


# jsonschema checks the "iri"/"iri-reference" formats with rfc3987-syntax when it is installed,
# which builds 38 grammars on import: 1-2 s of every run. The BOM's IRIs are the advisory and
# package URLs we write; every other part of the schema is still enforced.
_IRI_GRAMMARS = "rfc3987_syntax"


@contextmanager
def _without(module: str) -> Iterator[None]:
    """``import module`` fails meanwhile (an optional dependency is then left unused)."""
    if module in sys.modules or "jsonschema" in sys.modules:
        yield  # already imported (or jsonschema already decided): nothing to save
        return
    sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules[module]


# -- components -------------------------------------------------------------------------------

_Key = tuple[str, str]  # (normalised name, version): a finding's "name==version" finds its package


def _key(name: str, version: str) -> _Key:
    return (re.sub(r"[-_.]+", "-", name).lower(), version)


def _listed_components(report: StageReport) -> dict[str, CdxComponent]:
    """Every distribution the checks listed, once per purl (sorted), naming the checks."""
    chosen: dict[str, Component] = {}
    listed_by: dict[str, list[str]] = {}
    for result in report.checks:
        for component in result.components:
            purl = _purl(component).to_string()
            kept = chosen.get(purl)
            if kept is None or (not _knows_license(kept) and _knows_license(component)):
                chosen[purl] = component  # of two copies, the one that knows its licence
            checks = listed_by.setdefault(purl, [])
            if result.check_id not in checks:
                checks.append(result.check_id)
    return {purl: _component(chosen[purl], purl, listed_by[purl]) for purl in sorted(chosen)}


def _knows_license(component: Component) -> bool:
    return bool(component.license or component.license_declared)


def _purl(component: Component) -> PackageURL:
    if component.purl:
        try:
            return PackageURL.from_string(component.purl)
        except ValueError:
            pass  # a purl that does not parse: the distribution's own name and version do
    return PackageURL(type="pypi", name=component.name, version=component.version or None)


def _component(component: Component, purl: str, checks: list[str]) -> CdxComponent:
    properties = [Property(name="neuroerp-ci:listed-by", value=", ".join(sorted(checks)))]
    declared = plain_text(component.license_declared).strip()
    if component.license and declared and declared != component.license:
        properties.append(Property(name="neuroerp-ci:license-declared", value=declared))
    return CdxComponent(
        name=plain_text(component.name),
        version=plain_text(component.version) or None,
        purl=PackageURL.from_string(purl),
        bom_ref=purl,
        licenses=_licenses(component),
        properties=properties,
    )


def _licenses(component: Component) -> list[License]:
    """The SPDX expression if there is one, else the declared text as a named licence."""
    expression = component.license.strip()
    if expression and is_expression(expression):
        return [LicenseExpression(expression)]
    declared = plain_text(component.license_declared or component.license).strip()
    if not declared:
        return []
    name = declared.splitlines()[0].strip()
    if len(name) > _NAME_CHARS:
        name = name[: _NAME_CHARS - 1].rstrip() + "…"
    text = AttachedText(content=declared) if name != declared else None
    return [DisjunctiveLicense(name=name, text=text)]


def _unlisted(name: str, version: str) -> CdxComponent:
    purl = PackageURL(type="pypi", name=name, version=version or None)
    return CdxComponent(
        name=name,
        version=version or None,
        purl=purl,
        bom_ref=purl.to_string(),
        properties=[
            Property(name=NOTE, value=f"named by a {AUDIT_TOOL} finding; no check listed it")
        ],
    )


def _target(report: StageReport) -> CdxComponent:
    properties = [
        Property(name=f"neuroerp-ci:{name}", value=plain_text(report.tested[key]))
        for key, name in (("sha", "commit"), ("tree", "tree"))
        if report.tested.get(key)
    ]
    return CdxComponent(
        type=ComponentType.APPLICATION,
        name=plain_text(report.target) or "unnamed target",
        version=plain_text(report.version) or None,
        bom_ref="target",
        properties=properties,
    )


def _self() -> CdxComponent:
    return CdxComponent(
        type=ComponentType.APPLICATION,
        name="neuroerp-ci",
        version=__version__,
        bom_ref="tool:neuroerp-ci",
    )


def _metadata_properties(report: StageReport, *, listed: bool, any_: bool) -> list[Property]:
    properties = [
        Property(name="neuroerp-ci:stage", value=plain_text(report.stage)),
        Property(name="neuroerp-ci:run-id", value=plain_text(report.run_id)),
    ]
    if not listed:
        only = "; the components are the packages findings named" if any_ else ""
        properties.append(Property(name=NOTE, value=NO_COMPONENTS_NOTE + only))
    if any_:
        properties.append(Property(name="neuroerp-ci:dependency-graph", value=FLAT_GRAPH_NOTE))
    return properties


def _timestamp(report: StageReport) -> datetime:
    """When the run finished (its start if that is all the report says), in UTC."""
    for moment in (report.finished_at, report.started_at):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(f"bom.cdx.json: the report's times are not ISO 8601: {report.finished_at!r}")


# -- vulnerabilities --------------------------------------------------------------------------


@dataclass
class _Advisory:
    """One advisory on one package version, from every check that reported it."""

    finding: Finding
    package: _Key
    name: str
    version: str
    checks: list[str] = field(default_factory=list)
    waived: bool = True  # every check that reported it had it waived

    @property
    def bom_ref(self) -> str:
        name, version = self.package
        return plain_text(f"vulnerability:{self.finding.rule}:{name}@{version}")

    def vulnerability(self, affected: CdxComponent) -> Vulnerability:
        finding = self.finding
        rule = plain_text(finding.rule)
        versions = (
            [
                BomTargetVersionRange(
                    version=self.version, status=ImpactAnalysisAffectedStatus.AFFECTED
                )
            ]
            if self.version
            else []
        )
        return Vulnerability(
            bom_ref=self.bom_ref,
            id=rule,
            source=_osv(rule),
            references=[_reference(plain_text(alias)) for alias in sorted(finding.aliases)],
            ratings=[VulnerabilityRating(severity=_SEVERITIES[finding.severity])],
            description=plain_text(finding.message) or rule,
            recommendation=_recommendation(self.name, finding.fix_versions),
            affects=[BomTarget(ref=str(affected.bom_ref.value), versions=versions)],
            analysis=self._analysis(),
            properties=self._properties(),
        )

    def _analysis(self) -> VulnerabilityAnalysis | None:
        waiver = self.finding.waiver
        if not self.waived:
            return None
        detail = "waived by the pipeline"
        if waiver is not None:
            detail = (
                f"waived by {waiver.id} until {waiver.expires} (owner {waiver.owner}):"
                f" {waiver.reason}"
            )
        return VulnerabilityAnalysis(state=ImpactAnalysisState.IN_TRIAGE, detail=plain_text(detail))

    def _properties(self) -> list[Property]:
        finding = self.finding
        properties = [
            Property(name="neuroerp-ci:checks", value=", ".join(sorted(self.checks))),
            Property(name="neuroerp-ci:fingerprint", value=plain_text(finding.identity)),
        ]
        if finding.baseline_state is not None:
            properties.append(
                Property(name="neuroerp-ci:baseline-state", value=finding.baseline_state.value)
            )
        waiver = finding.waiver
        if waiver is not None and waiver.expired and not self.waived:
            expired = f"waiver {waiver.id} expired on {waiver.expires}: the finding counts"
            properties.append(Property(name="neuroerp-ci:waiver", value=plain_text(expired)))
        return properties


def _advisories(report: StageReport) -> dict[tuple[str, _Key], _Advisory]:
    """Every pip-audit finding of the run (counted or waived), once per advisory and package."""
    found: dict[tuple[str, _Key], _Advisory] = {}
    for result in report.checks:
        for finding, waived in _audit_findings(result.findings, result.waived):
            name, _, version = finding.location.partition("==")
            name, version = plain_text(name).strip(), plain_text(version).strip()
            package = _key(name, version)
            advisory = found.setdefault(
                (finding.rule, package), _Advisory(finding, package, name, version)
            )
            if not waived and advisory.waived:  # a copy that counts tells the truth
                advisory.finding, advisory.waived = finding, False
            if result.check_id not in advisory.checks:
                advisory.checks.append(result.check_id)
    return dict(sorted(found.items()))


def _audit_findings(
    counted: Iterable[Finding], waived: Iterable[Finding]
) -> Iterable[tuple[Finding, bool]]:
    for finding in counted:
        if finding.tool == AUDIT_TOOL:
            yield finding, False
    for finding in waived:
        if finding.tool == AUDIT_TOOL:
            yield finding, True


def _osv(advisory: str) -> VulnerabilitySource:
    return VulnerabilitySource(
        name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{quote(advisory, safe='')}")
    )


def _reference(alias: str) -> VulnerabilityReference:
    for prefix, name, base in _ALIAS_SOURCES:
        if alias.startswith(prefix):
            return VulnerabilityReference(
                id=alias, source=VulnerabilitySource(name=name, url=XsUri(base + quote(alias)))
            )
    return VulnerabilityReference(id=alias, source=_osv(alias))


def _recommendation(name: str, fix_versions: tuple[str, ...]) -> str | None:
    if not fix_versions:
        return None
    fixes = ", ".join(plain_text(v) for v in fix_versions)
    return f"Upgrade {name} to a fixed version: {fixes}."
