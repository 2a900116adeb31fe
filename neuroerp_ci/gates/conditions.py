"""Gate conditions: each turns one check's result into an :class:`Outcome`.

Fail closed: a condition on a check that errored, was skipped, or lacks the metric resolves by
its ``on_error`` / ``on_missing`` policy, whose default is ``fail`` whatever the severity. A
check without conditions still gets one outcome, ``completed``, so an error is never silent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from neuroerp_ci.checks import Check
from neuroerp_ci.config import ConditionSpec, Policy, Stage
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Finding,
    FindingSeverity,
    Outcome,
    OutcomeStatus,
    Severity,
)
from neuroerp_ci.reports.format import format_value

_BREACH_STATUS = {
    Severity.BLOCKING: OutcomeStatus.FAIL,
    Severity.WARNING: OutcomeStatus.WARN,
    Severity.INFO: OutcomeStatus.INFO,
}
_POLICY_STATUS: dict[Policy, OutcomeStatus] = {
    "fail": OutcomeStatus.FAIL,
    "warn": OutcomeStatus.WARN,
    "ignore": OutcomeStatus.INFO,
}


def evaluate_stage(
    stage: Stage, checks: Mapping[str, Check], results: Mapping[str, CheckResult]
) -> list[Outcome]:
    """Every outcome of a stage, in the order of its checks."""
    outcomes: list[Outcome] = []
    for check_id in stage.checks:
        check, result = checks[check_id], results[check_id]
        conditions = [c for c in stage.conditions if c.check == check_id]
        if not conditions:
            outcomes.append(completed(check, result))
        outcomes.extend(evaluate(cond, check, result) for cond in conditions)
    return outcomes


def completed(check: Check, result: CheckResult) -> Outcome:
    """The implicit condition of a check with none of its own: it must have run."""
    severity = Severity.for_priority(check.priority)
    if result.status is CheckStatus.OK:
        status, reason = OutcomeStatus.PASS, f"completed in {result.duration_s:.1f} s"
    elif result.status is CheckStatus.ERROR:
        status, reason = OutcomeStatus.FAIL, f"{check.id} error: {result.reason}"
    else:
        status, reason = OutcomeStatus.INFO, f"{check.id} skipped: {result.reason}"
    return Outcome(check.id, "completed", status, severity, None, "ok", reason)


def evaluate(cond: ConditionSpec, check: Check, result: CheckResult) -> Outcome:
    severity = cond.severity or Severity.for_priority(check.priority)
    text, target = describe(cond)

    def outcome(status: OutcomeStatus, value: float | None, reason: str) -> Outcome:
        return Outcome(check.id, text, status, severity, value, target, reason)

    if result.status is not CheckStatus.OK:
        policy = cond.on_error if result.status is CheckStatus.ERROR else cond.on_missing
        return outcome(
            _POLICY_STATUS[policy], None, f"{check.id} {result.status.value}: {result.reason}"
        )
    if cond.findings is not None:
        return outcome(*_findings_status(cond, result, severity))
    assert cond.metric is not None  # one of the two forms, validated with the config
    metric = result.metrics.get(cond.metric)
    if metric is None or math.isnan(metric.value):
        known = ", ".join(sorted(result.metrics)) or "none"
        reason = f"{check.id}: metric {cond.metric!r} was not measured (measured: {known})"
        return outcome(_POLICY_STATUS[cond.on_missing], None, reason)
    value = metric.value
    breach = (cond.max is not None and value > cond.max) or (
        cond.min is not None and value < cond.min
    )
    status = _BREACH_STATUS[severity] if breach else OutcomeStatus.PASS
    shown = f"{cond.metric} {format_value(value)}"
    if breach:
        limit = (
            f"> {format_value(cond.max)}"
            if cond.max is not None and value > cond.max
            else (f"< {format_value(cond.min)}")
        )
        reason = f"{check.id}: {shown} {limit}"
    else:
        reason = f"{check.id}: {shown} within {target}"
    return outcome(status, value, reason)


def describe(cond: ConditionSpec) -> tuple[str, str]:
    """The condition as text (``p95_ms <= 250``) and its target (``<= 250``)."""
    if cond.findings is not None:
        level = "any" if cond.findings == "any" else f"{cond.findings}+"
        target = f"<= {int(cond.max or 0)}"
        return f"findings({level}) {target}", target
    bounds = []
    if cond.min is not None:
        bounds.append(f">= {format_value(cond.min)}")
    if cond.max is not None:
        bounds.append(f"<= {format_value(cond.max)}")
    target = " and ".join(bounds)
    return f"{cond.metric} {target}", target


def counted_findings(findings: list[Finding], level: FindingSeverity | str) -> list[Finding]:
    if level == "any":
        return list(findings)
    floor = FindingSeverity(level).rank
    return [f for f in findings if f.severity.rank >= floor]


def _findings_status(
    cond: ConditionSpec, result: CheckResult, severity: Severity
) -> tuple[OutcomeStatus, float, str]:
    assert cond.findings is not None and cond.max is not None
    counted = counted_findings(result.findings, cond.findings)
    count = len(counted)
    level = "" if cond.findings == "any" else f" of severity {cond.findings} or above"
    if count > cond.max:
        named = "; ".join(f"{f.rule} {f.severity.value} at {f.location}" for f in counted[:3])
        more = f" and {count - 3} more" if count > 3 else ""
        reason = f"{result.check_id}: {count} findings{level} > {int(cond.max)}: {named}{more}"
        status = _BREACH_STATUS[severity]
    else:
        reason = f"{result.check_id}: {count} findings{level} (limit {int(cond.max)})"
        status = OutcomeStatus.PASS
    return status, float(count), reason
