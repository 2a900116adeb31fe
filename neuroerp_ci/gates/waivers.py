"""Waivers: one list of accepted findings for every scanner, each with a reason, an owner and
an end date (``[[waivers]]`` in the pipeline file, or the waivers file it names).

A waiver covers the findings whose rule (or one of its aliases: a CVE for a PYSEC advisory) is
its ``rule``, optionally only in ``package`` (``name==version`` locations; ``versions`` a
PEP 440 range of that package) or under ``path`` (a glob on ``path:line`` locations). Before
the gates judge a run, :func:`apply_waivers` moves each covered finding into its check's
``waived`` list, where every report shows it with the waiver; findings limits do not count
it. Nothing is dropped.

An expired waiver (its ``expires`` day is past) covers nothing: its findings count again,
carry the waiver as ``expired`` and their limit's reason names it. The waivers themselves get
outcomes under the pseudo-check ``waivers``: an expired one that matched a finding WARNs (the
finding's own limit decides whether the run FAILs), one that ends within
:data:`EXPIRY_WARNING_DAYS` days WARNs before it lapses, and one that matched nothing is
reported (INFO: remove it), where it could have matched (a package waiver where a check
examined that package, any other where a scanner completed).

Example::

    [[waivers]]
    rule = "PYSEC-2021-108"
    package = "idna"
    versions = "<3.7"
    reason = "not reachable: we never decode IDNA from user input"
    owner = "platform-team"
    expires = 2027-01-15
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Annotated

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Finding,
    Outcome,
    OutcomeStatus,
    Severity,
    WaiverRef,
)

MAX_WAIVER_DAYS = 90  # the default of ``max_waiver_days``: no waiver for ever
EXPIRY_WARNING_DAYS = 7  # a waiver ending this soon WARNs
WAIVERS_CHECK = "waivers"  # the pseudo-check of the waivers' own outcomes


class WaiverSpec(BaseModel):
    """One ``[[waivers]]`` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # names the waiver in reports; default: its rule (and package or path)
    id: str | None = Field(default=None, min_length=1, max_length=200)
    rule: str = Field(min_length=1)  # a rule or advisory id (or an alias, e.g. a CVE)
    package: str | None = Field(default=None, min_length=1)  # only this distribution
    versions: str | None = None  # only these versions of the package (PEP 440, e.g. "<3.7")
    path: str | None = Field(default=None, min_length=1)  # only files matching this glob
    reason: Annotated[str, Field(min_length=1)]  # why the finding is accepted
    owner: Annotated[str, Field(min_length=1)]  # who answers for it
    expires: date  # the last day it applies (required: at most max_waiver_days ahead)

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("versions")
    @classmethod
    def _a_range(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                SpecifierSet(value)
            except InvalidSpecifier:
                raise ValueError(f"not a PEP 440 version range: {value!r}") from None
        return value

    @model_validator(mode="after")
    def _versions_need_package(self) -> WaiverSpec:
        if self.versions is not None and self.package is None:
            raise ValueError("'versions' needs 'package' (the versions of which distribution)")
        if self.package is not None and self.path is not None:
            raise ValueError("a waiver covers a package or a path, not both")
        return self

    @property
    def name(self) -> str:
        if self.id:
            return self.id
        scope = self.package or self.path
        return f"{self.rule} ({scope})" if scope else self.rule

    def ref(self, today: date) -> WaiverRef:
        return WaiverRef(
            self.name, self.reason, self.owner, self.expires.isoformat(), self.expires < today
        )

    def covers(self, finding: Finding) -> bool:
        if self.rule != finding.rule and self.rule not in finding.aliases:
            return False
        if self.package is not None:
            name, sep, version = finding.location.partition("==")
            if not sep or canonicalize_name(name) != canonicalize_name(self.package):
                return False
            if self.versions is not None:
                try:
                    return Version(version) in SpecifierSet(self.versions)
                except InvalidVersion:
                    return False
        if self.path is not None:
            path = finding.path
            return path is not None and fnmatch.fnmatch(path, self.path)
        return True


def too_far_ahead(waiver: WaiverSpec, max_days: int, today: date | None = None) -> str | None:
    """Why ``waiver`` ends too late (more than ``max_days`` from today), or None."""
    days = (waiver.expires - (today or utc_today())).days
    if days > max_days:
        return (
            f"expires {waiver.expires.isoformat()}, {days} days ahead: at most "
            f"max_waiver_days = {max_days}"
        )
    return None


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class _Use:
    waiver: WaiverSpec
    findings: int = 0


def apply_waivers(
    results: Mapping[str, CheckResult],
    waivers: Sequence[WaiverSpec],
    audited: Iterable[str],
    today: date | None = None,
) -> list[Outcome]:
    """Move the findings a waiver covers into their check's ``waived`` list (in place) and
    return the waivers' own outcomes (see the module). ``audited``: the ids of the scanner
    checks (code audit kinds), the only ones waivers apply to. The first waiver that covers a
    finding and has not expired waives it; an expired one only marks it.

    A waiver that matched nothing is reported only where it could have matched: one for a
    package where a check examined that package, any other where a scanner completed. The
    licence waiver of a stage without a licence check is no news."""
    if not waivers:
        return []
    today = today or utc_today()
    used = {w.name: _Use(w) for w in waivers}
    scanned = [results[c] for c in audited if c in results]
    completed = [r for r in scanned if r.status is CheckStatus.OK]
    examined: set[str] = {canonicalize_name(c.name) for r in completed for c in r.components}
    for result in completed:
        counted: list[Finding] = []
        for finding in result.findings:
            covering = [w for w in waivers if w.covers(finding)]
            for w in covering:
                used[w.name] = replace(used[w.name], findings=used[w.name].findings + 1)
            valid = [w for w in covering if w.expires >= today]
            if valid:
                result.waived.append(replace(finding, waiver=valid[0].ref(today)))
            elif covering:
                counted.append(replace(finding, waiver=covering[0].ref(today)))
            else:
                counted.append(finding)
        result.findings = counted
    return [
        _outcome(use, today)
        for use in used.values()
        if use.findings or _applicable(use.waiver, completed, examined)
    ]


def _applicable(waiver: WaiverSpec, completed: list[CheckResult], examined: set[str]) -> bool:
    if waiver.package is not None:
        return canonicalize_name(waiver.package) in examined
    return bool(completed)


def _outcome(use: _Use, today: date) -> Outcome:
    waiver, found = use.waiver, use.findings
    ends = waiver.expires.isoformat()
    days = (waiver.expires - today).days
    who = f"owner {waiver.owner}"
    condition = f"waiver {waiver.name} valid"
    target = f"until {ends}"
    if found and days < 0:
        status, severity = OutcomeStatus.WARN, Severity.WARNING
        reason = f"waiver {waiver.name} expired on {ends} ({who}): its {_count(found)} count again"
    elif found and days < EXPIRY_WARNING_DAYS:
        status, severity = OutcomeStatus.WARN, Severity.WARNING
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        reason = (
            f"waiver {waiver.name} expires {when} ({ends}, {who}): renew it or fix its "
            f"{_count(found)}"
        )
    elif found:
        status, severity = OutcomeStatus.PASS, Severity.INFO
        reason = f"waiver {waiver.name} waives {_count(found)} until {ends} ({who})"
    else:
        status, severity = OutcomeStatus.INFO, Severity.INFO
        state = "expired, " if days < 0 else ""
        reason = f"waiver {waiver.name} ({state}{who}) matched no finding in this run: unused"
    return Outcome(
        check=WAIVERS_CHECK,
        condition=condition,
        status=status,
        severity=severity,
        value=float(found),
        target=target,
        reason=reason,
        breached=status is not OutcomeStatus.PASS,
    )


def _count(found: int) -> str:
    return f"{found} finding" + ("" if found == 1 else "s")
