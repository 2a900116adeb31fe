"""Gate conditions: each turns one check's result into an :class:`Outcome`.

This module dispatches by the condition's form: a findings limit, an absolute threshold
(``max`` / ``min``), a limit relative to the baseline (:mod:`~neuroerp_ci.gates.relative`)
or a statistical regression test (:mod:`~neuroerp_ci.gates.regression`).

Fail closed: a condition on a check that errored, was skipped, or lacks the metric resolves by
its ``on_error`` / ``on_missing`` policy, whose default is ``fail`` whatever the severity. A
baseline condition without a baseline yet resolves by ``on_no_baseline`` (default ``warn``)
with a reason saying so: never a silent pass. A check without conditions of its own in a stage
gets its kind's default conditions (``failed <= 0 (default)`` ...), and a kind without any, or a
pipeline that opted out (``default_conditions = false``), gets ``completed``: an error is never
silent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from neuroerp_ci.checks import Check
from neuroerp_ci.config import ConditionSpec, Stage
from neuroerp_ci.gates.baselines import NO_BASELINES, BaselineProvider, usable
from neuroerp_ci.gates.judgement import Judgement
from neuroerp_ci.gates.regression import describe_regression, judge_regression
from neuroerp_ci.gates.relative import describe_relative, judge_relative
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Finding,
    FindingSeverity,
    Outcome,
    OutcomeStatus,
    Severity,
)
from neuroerp_ci.support.formatting import format_value

# Ends the condition text of a kind's default condition, in every report.
DEFAULT_MARK = " (default)"


def evaluate_stage(
    stage: Stage,
    checks: Mapping[str, Check],
    results: Mapping[str, CheckResult],
    baselines: BaselineProvider = NO_BASELINES,
) -> list[Outcome]:
    """Every outcome of a stage, in the order of its checks.

    ``baselines`` gives the baseline conditions their baselines (the history store's
    provider); without one, each of them reports "no baseline yet".
    """
    outcomes: list[Outcome] = []
    for check_id, (conditions, default) in stage.conditions_by_check().items():
        check, result = checks[check_id], results[check_id]
        if not conditions:
            outcomes.append(completed(check, result))
        outcomes.extend(
            evaluate(cond, check, result, baselines, stage=stage.name, default=default)
            for cond in conditions
        )
    return outcomes


def completed(check: Check, result: CheckResult) -> Outcome:
    """The implicit condition of a check with no condition of its own and no kind default
    (or ``default_conditions = false``): it must have run."""
    severity = Severity.for_priority(check.priority)
    if result.status is CheckStatus.OK:
        status, reason = OutcomeStatus.PASS, f"completed in {result.duration_s:.1f} s"
    elif result.status is CheckStatus.ERROR:
        status, reason = OutcomeStatus.FAIL, f"{check.id} error: {result.reason}"
    else:
        status, reason = OutcomeStatus.INFO, f"{check.id} skipped: {result.reason}"
    return Outcome(check.id, "completed", status, severity, None, "ok", reason)


def evaluate(
    cond: ConditionSpec,
    check: Check,
    result: CheckResult,
    baselines: BaselineProvider = NO_BASELINES,
    *,
    stage: str | None = None,
    default: bool = False,
) -> Outcome:
    """The outcome of one condition on one check's result.

    ``stage`` only names the stage in a "no baseline yet" reason; ``default`` marks a kind's
    default condition: its text ends in ``(default)``.
    """
    severity = cond.severity or Severity.for_priority(check.priority)
    text, target = describe(cond)
    if default:
        text += DEFAULT_MARK
    judgement = _judge(cond, check.id, result, baselines, stage, target)
    reason = judgement.reason
    if judgement.resolution == "breached" and result.reason:
        # The check's own summary names the evidence (the failing test, the slow endpoint).
        reason = f"{reason} ({_clip(result.reason)})"
    return Outcome(
        check=check.id,
        condition=text,
        status=judgement.status(severity),
        severity=severity,
        value=judgement.value,
        target=judgement.target,
        reason=reason,
        baseline=judgement.baseline,
        change_pct=judgement.change_pct,
        p_value=judgement.p_value,
        effect=judgement.effect,
        effect_ci=judgement.effect_ci,
        baseline_runs=judgement.baseline_runs,
    )


def describe(cond: ConditionSpec) -> tuple[str, str]:
    """The condition as text (``p95_ms <= 250``) and its target (``<= 250``).

    For a baseline condition the target names the baseline (``<= baseline +10 %``); its
    outcome shows the concrete limit once the baseline is known.
    """
    if cond.findings is not None:
        level = "any" if cond.findings == "any" else f"{cond.findings}+"
        target = f"<= {int(cond.max or 0)}"
        return f"findings({level}) {target}", target
    if cond.regression is not None:
        return describe_regression(cond)
    if cond.relative_key is not None:
        return describe_relative(cond)
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


def _judge(
    cond: ConditionSpec,
    check_id: str,
    result: CheckResult,
    baselines: BaselineProvider,
    stage: str | None,
    target: str,
) -> Judgement:
    if result.status is not CheckStatus.OK:
        policy = cond.on_error if result.status is CheckStatus.ERROR else cond.on_missing
        return Judgement(policy, None, target, f"{check_id} {result.status.value}: {result.reason}")
    if cond.findings is not None:
        return _findings(cond, result)
    assert cond.metric is not None  # one of the two forms, validated with the config
    metric = result.metrics.get(cond.metric)
    if metric is None or math.isnan(metric.value):
        known = ", ".join(sorted(result.metrics)) or "none"
        reason = f"{check_id}: metric {cond.metric!r} was not measured (measured: {known})"
        return Judgement(cond.on_missing, None, target, reason)
    if not cond.uses_baseline:
        return _absolute(cond, check_id, metric.value, target)
    base = usable(baselines.baseline(check_id, cond.metric))
    if base is None:
        where = f"stage {stage}" if stage else "this stage"
        reason = (
            f"{check_id}: no baseline yet for {cond.metric} (0 passing runs of {where} measured it)"
        )
        return Judgement(cond.on_no_baseline, metric.value, target, reason)
    if cond.regression is not None:
        return judge_regression(cond, check_id, metric, base)
    return judge_relative(cond, check_id, metric.value, base)


def _absolute(cond: ConditionSpec, check_id: str, value: float, target: str) -> Judgement:
    above = cond.max is not None and value > cond.max
    below = cond.min is not None and value < cond.min
    shown = f"{cond.metric} {format_value(value)}"
    if above:
        reason = f"{check_id}: {shown} > {format_value(cond.max)}"
    elif below:
        reason = f"{check_id}: {shown} < {format_value(cond.min)}"
    else:
        reason = f"{check_id}: {shown} within {target}"
    return Judgement("breached" if above or below else "met", value, target, reason)


def _findings(cond: ConditionSpec, result: CheckResult) -> Judgement:
    assert cond.findings is not None and cond.max is not None
    counted = counted_findings(result.findings, cond.findings)
    count = len(counted)
    limit = int(cond.max)
    level = "" if cond.findings == "any" else f" of severity {cond.findings} or above"
    if count > cond.max:
        named = "; ".join(f"{f.rule} {f.severity.value} at {f.location}" for f in counted[:3])
        more = f" and {count - 3} more" if count > 3 else ""
        reason = f"{result.check_id}: {count} findings{level} > {limit}: {named}{more}"
        return Judgement("breached", float(count), f"<= {limit}", reason)
    reason = f"{result.check_id}: {count} findings{level} (limit {limit})"
    return Judgement("met", float(count), f"<= {limit}", reason)


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
