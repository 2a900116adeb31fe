"""``report.sarif``: every finding of a stage run as SARIF 2.1.0, for code-scanning tools.

One ``run`` per tool (bandit, pip-audit, detect-secrets, the licence check), across all the
report's checks, runs sorted by tool name. Every finding is a result, the ones that do not
count included, so nothing disappears from the record:

- counted findings (``CheckResult.findings``); one whose waiver has expired carries that
  waiver as an ``external`` suppression with status ``rejected`` (it counts again);
- waived findings (``CheckResult.waived``): an ``external`` suppression, status ``accepted``,
  its justification the waiver's reason, owner and last day;
- findings the project hid itself (``CheckResult.suppressed``: bandit's ``# nosec``, a
  detect-secrets allowlist): an ``inSource`` suppression;
- findings of the baseline run gone now (``CheckResult.absent``): ``baselineState`` absent.

Levels: critical, high and unknown (an unrated advisory is not harmless) are ``error``,
medium ``warning``, low ``note``. A ``path:line`` finding has a physical location relative to
``%SRCROOT%``; a ``package==version`` one a logical location (no requirements file is known).
``partialFingerprints["neuroerpFingerprint/v1"]`` is :attr:`Finding.identity`, the same in
every run for the same finding. Each check behind a run is an invocation, successful only
when the check completed. Results and rules are sorted, so the same report gives the same
text. A report without any finding-producing check gives a document with no runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Finding,
    FindingSeverity,
    StageReport,
)
from neuroerp_ci.support.formatting import plain_text

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "neuroerpFingerprint/v1"
SOURCE_ROOT = "%SRCROOT%"

# Check kinds whose results are findings, and the tool that reports them: such a check gets
# its tool's run (with its invocation) even when it found nothing, so "ran, found nothing"
# differs from "did not run". A check of another kind joins the run of any finding it has.
FINDING_KINDS = {
    "bandit": "bandit",
    "pip-audit": "pip-audit",
    "secrets": "detect-secrets",
    "licenses": "licenses",
}

_TOOL_URIS = {
    "bandit": "https://bandit.readthedocs.io/",
    "pip-audit": "https://github.com/pypa/pip-audit",
    "detect-secrets": "https://github.com/Yelp/detect-secrets",
}
_OSV = "https://osv.dev/vulnerability/"

_LEVELS = {
    FindingSeverity.CRITICAL: "error",
    FindingSeverity.HIGH: "error",
    FindingSeverity.UNKNOWN: "error",
    FindingSeverity.MEDIUM: "warning",
    FindingSeverity.LOW: "note",
}
_LEVEL_RANK = {"error": 3, "warning": 2, "note": 1}

# What hid a finding in the project's own files, said in the suppression's justification.
_IN_SOURCE = {
    "bandit": "marked '# nosec' in the source",
    "detect-secrets": "allowed by the project (an allowlist pragma or its secrets baseline)",
}

_SHORT_CHARS = 120
# A secret found in a commit of the scanned history: "path:line (commit abc1234)".
_IN_COMMIT = re.compile(r"^(?P<place>.+) \(commit (?P<commit>[0-9A-Fa-f]+)\)$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

JsonObject = dict[str, Any]


# Which list of its check a finding came from: counted, waived, hidden in source, gone.
_STATES = ("counted", "waived", "suppressed", "absent")


@dataclass(frozen=True)
class _Entry:
    """One finding of one check, with which of the check's lists it came from."""

    finding: Finding
    check_id: str
    state: str  # one of _STATES

    @property
    def order(self) -> tuple[str, int, str, str, str, str]:
        finding = self.finding
        path, line, _ = _place(finding)
        place = finding.location if path is None else path
        return (place, line or 0, finding.rule, finding.identity, self.state, self.check_id)


def render_sarif(report: StageReport) -> str:
    """The full text of ``report.sarif``."""
    text = json.dumps(sarif_document(report), indent=2, ensure_ascii=False) + "\n"
    # A lone surrogate (a file name that is not UTF-8) cannot be written as UTF-8: escaped.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def sarif_document(report: StageReport) -> JsonObject:
    """The SARIF log as plain data: ``{"$schema", "version", "runs"}``."""
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            _run(report, tool, checks, entries)
            for tool, (checks, entries) in sorted(
                _by_tool(report.checks).items(), key=lambda item: item[0]
            )
        ],
    }


def sarif_level(severity: FindingSeverity) -> str:
    """``error``, ``warning`` or ``note``: the SARIF level of a finding's severity."""
    return _LEVELS[severity]


def _by_tool(results: Sequence[CheckResult]) -> dict[str, tuple[list[CheckResult], list[_Entry]]]:
    """Tool -> (the checks behind its run, in report order; every finding it reported)."""
    tools: dict[str, tuple[list[CheckResult], list[_Entry]]] = {}
    for result in results:
        entries = list(_entries(result))
        names = {entry.finding.tool for entry in entries}
        if result.kind in FINDING_KINDS:
            names.add(FINDING_KINDS[result.kind])
        for name in sorted(names):
            checks, found = tools.setdefault(name, ([], []))
            checks.append(result)
            found.extend(entry for entry in entries if entry.finding.tool == name)
    return tools


def _entries(result: CheckResult) -> Iterable[_Entry]:
    lists = (result.findings, result.waived, result.suppressed, result.absent)
    for state, findings in zip(_STATES, lists, strict=True):
        for finding in findings:
            yield _Entry(finding, result.check_id, state)


def _run(
    report: StageReport, tool: str, checks: list[CheckResult], entries: list[_Entry]
) -> JsonObject:
    entries = sorted(entries, key=lambda e: e.order)
    rules = sorted({e.finding.rule for e in entries})
    index = {rule: i for i, rule in enumerate(rules)}
    return {
        "tool": {"driver": _driver(tool, checks, rules, entries)},
        "automationDetails": {"id": f"{plain_text(report.stage)}/{plain_text(report.run_id)}"},
        "invocations": [_invocation(result) for result in checks],
        "results": [_result(entry, index[entry.finding.rule]) for entry in entries],
        "properties": _run_properties(report),
    }


def _driver(
    tool: str, checks: list[CheckResult], rules: list[str], entries: list[_Entry]
) -> JsonObject:
    driver: JsonObject = {"name": plain_text(tool)}
    version = next((c.tool_versions[tool] for c in checks if c.tool_versions.get(tool)), "")
    if version:
        driver["version"] = plain_text(version)
    if tool in _TOOL_URIS:
        driver["informationUri"] = _TOOL_URIS[tool]
    driver["rules"] = [
        _rule(rule, [e.finding for e in entries if e.finding.rule == rule]) for rule in rules
    ]
    return driver


def _rule(rule: str, findings: list[Finding]) -> JsonObject:
    """A rule described by its most severe finding (they share a message for one advisory)."""
    first = max(findings, key=lambda f: f.severity.rank)  # max() keeps the first of a tie
    message = plain_text(first.message).strip() or plain_text(rule)
    described: JsonObject = {
        "id": plain_text(rule),
        "shortDescription": {"text": _short(message)},
        "fullDescription": {"text": message},
    }
    url = _help_url(first)
    if url:
        described["helpUri"] = url
    help_text = _help_text(first, url)
    if help_text:
        described["help"] = {"text": f"{message} {help_text}"}
    level = max((sarif_level(f.severity) for f in findings), key=_LEVEL_RANK.__getitem__)
    described["defaultConfiguration"] = {"level": level}
    return described


def _help_url(finding: Finding) -> str:
    """The finding's documentation if it is an absolute URL; OSV's page for an advisory."""
    url = finding.help_url.strip()
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc and not re.search(r"\s", url):
        return url
    if finding.tool == "pip-audit" and finding.rule:
        return _OSV + quote(finding.rule, safe="")
    return ""


def _help_text(finding: Finding, url: str) -> str:
    """What a rule's help adds to its description: aliases, fixed versions, where to read on."""
    parts = []
    if finding.aliases:
        parts.append("Also known as " + ", ".join(plain_text(a) for a in finding.aliases) + ".")
    if finding.fix_versions:
        fixes = ", ".join(plain_text(v) for v in finding.fix_versions)
        parts.append(f"Fixed in {fixes}.")
    if url:
        parts.append(f"See {url}")
    return " ".join(parts)


def _short(message: str) -> str:
    line = message.splitlines()[0] if message else message
    return line if len(line) <= _SHORT_CHARS else line[: _SHORT_CHARS - 1].rstrip() + "…"


def _invocation(result: CheckResult) -> JsonObject:
    invocation: JsonObject = {
        "executionSuccessful": result.status is CheckStatus.OK,
        "properties": {
            "check": plain_text(result.check_id),
            "kind": plain_text(result.kind),
            "status": result.status.value,
        },
    }
    reason = plain_text(result.reason).strip()
    if reason:
        level = {CheckStatus.OK: "note", CheckStatus.SKIPPED: "warning"}.get(result.status, "error")
        invocation["toolExecutionNotifications"] = [{"level": level, "message": {"text": reason}}]
    return invocation


def _result(entry: _Entry, rule_index: int) -> JsonObject:
    finding = entry.finding
    result: JsonObject = {
        "ruleId": plain_text(finding.rule),
        "ruleIndex": rule_index,
        "level": sarif_level(finding.severity),
        "message": {"text": plain_text(finding.message).strip() or plain_text(finding.rule)},
    }
    location = _location(finding)
    if location:
        result["locations"] = [location]
    result["partialFingerprints"] = {FINGERPRINT_KEY: plain_text(finding.identity)}
    if entry.state == "absent":
        result["baselineState"] = "absent"
    elif finding.baseline_state is not None:
        result["baselineState"] = finding.baseline_state.value
    suppression = _suppression(entry)
    if suppression:
        result["suppressions"] = [suppression]
    result["properties"] = _result_properties(entry)
    return result


def _place(finding: Finding) -> tuple[str | None, int | None, str | None]:
    """(path, line, commit) of a file finding; a package's path is None."""
    history = _IN_COMMIT.match(finding.location)
    if history is None:
        return finding.path, finding.line, None
    in_tree = replace(finding, location=history["place"])
    return in_tree.path, in_tree.line, history["commit"]


# Tools whose findings are elements of served pages (the a11y kind's axe-core), not files.
PAGE_TOOLS = frozenset({"axe-core"})


def _location(finding: Finding) -> JsonObject | None:
    if "==" in finding.location:  # a package: no file of it is known
        name = plain_text(finding.location)
        return {"logicalLocations": [{"name": name, "kind": "module"}]}
    if finding.tool in PAGE_TOOLS:  # "page: selector": an element of a served page, no file
        name = plain_text(finding.location)
        return {"logicalLocations": [{"name": name, "kind": "element"}]}
    path, line, _ = _place(finding)
    if path is None:
        return None
    physical: JsonObject = {"artifactLocation": _artifact(path)}
    if line is not None and line >= 1:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _artifact(path: str) -> JsonObject:
    """A relative path under ``%SRCROOT%``, an absolute one as a ``file:`` URI.

    surrogateescape: an undecodable byte of a file name goes into the URI as that byte.
    """
    uri = quote(path.replace("\\", "/"), safe="/", errors="surrogateescape")
    if path.startswith("/"):
        return {"uri": "file://" + uri}
    return {"uri": uri, "uriBaseId": SOURCE_ROOT}


def _suppression(entry: _Entry) -> JsonObject | None:
    finding, waiver = entry.finding, entry.finding.waiver
    if entry.state == "suppressed":
        why = _IN_SOURCE.get(finding.tool, f"hidden by the project's {finding.tool} settings")
        return {"kind": "inSource", "status": "accepted", "justification": plain_text(why)}
    if waiver is not None and (entry.state == "waived" or waiver.expired):
        said = f"{waiver.reason} (owner {waiver.owner}, until {waiver.expires})"
        if waiver.expired:
            text = f"waiver {waiver.id} expired on {waiver.expires}, the finding counts: {said}"
        else:
            text = f"waiver {waiver.id}: {said}"
        status = "rejected" if waiver.expired else "accepted"
        return {"kind": "external", "status": status, "justification": plain_text(text)}
    if entry.state == "waived":  # a waived finding names its waiver; still say it is waived
        return {"kind": "external", "status": "accepted", "justification": "waived"}
    return None


def _result_properties(entry: _Entry) -> JsonObject:
    finding = entry.finding
    properties: JsonObject = {
        "check": plain_text(entry.check_id),
        "severity": finding.severity.value,
        "counted": entry.state == "counted" and not _waived(finding),
    }
    if finding.confidence:
        properties["confidence"] = plain_text(finding.confidence)
    commit = _place(finding)[2]
    if commit:  # the file at that line is the commit's, maybe not the tree's
        properties["commit"] = commit
    if finding.aliases:
        properties["aliases"] = [plain_text(a) for a in finding.aliases]
    if finding.fix_versions:
        properties["fixVersions"] = [plain_text(v) for v in finding.fix_versions]
    if finding.waiver is not None:
        properties["waiver"] = plain_text(finding.waiver.id)
    return properties


def _waived(finding: Finding) -> bool:
    return finding.waiver is not None and not finding.waiver.expired


def _run_properties(report: StageReport) -> JsonObject:
    properties: JsonObject = {"stage": plain_text(report.stage)}
    if report.version:
        properties["version"] = plain_text(report.version)
    for key, name in (("sha", "commit"), ("tree", "tree")):
        if report.tested.get(key):
            properties[name] = plain_text(report.tested[key])
    return properties
