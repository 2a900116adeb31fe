"""Gate conditions: each turns one check's result into an :class:`Outcome`.

This module does what every condition form shares and leaves the rest to the condition's
form (:mod:`~neuroerp_ci.gates.conditions.interface`): it never names one.

Fail closed: a condition on a check that errored, was skipped, or lacks the metric resolves by
its ``on_error`` / ``on_missing`` policy, whose default is ``fail`` whatever the severity. A
baseline condition without a baseline yet resolves by ``on_no_baseline`` (default ``warn``)
with a reason saying so: never a silent pass. A check without conditions of its own in a stage
gets its kind's default conditions (``failed <= 0 (default)`` ...), and a kind without any, or a
pipeline that opted out (``default_conditions = false``), gets ``completed``: an error is never
silent.

Noise: a measurement check records how busy the machine was while it measured
(:class:`~neuroerp_ci.model.NoiseReading`). A breached condition on a timing metric of such a
check, measured on a machine too busy to tell, is INCONCLUSIVE when the breach lies within
what the busy machine alone can explain (the reading's ``allowance_pct``); a breach beyond it
(a +1000 % slowdown) stays a breach. An INCONCLUSIVE outcome counts as the condition's
``on_inconclusive`` (``warn`` by default), never as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from neuroerp_ci.checks import Check
from neuroerp_ci.gates.baselines import NO_BASELINES, BaselineProvider, usable
from neuroerp_ci.gates.conditions.interface import Evidence
from neuroerp_ci.gates.conditions.judgement import POLICY_STATUS, Judgement
from neuroerp_ci.gates.conditions.spec import ConditionSpec
from neuroerp_ci.model import (
    Baseline,
    CheckResult,
    CheckStatus,
    Metric,
    Outcome,
    OutcomeStatus,
    Severity,
)
from neuroerp_ci.support.formatting import format_value
from neuroerp_ci.support.text import clip_words

# Ends the condition text of a kind's default condition, in every report.
DEFAULT_MARK = " (default)"

# Each check of a stage, in stage order: its conditions and whether they are its kind's
# defaults (the pipeline's ``Stage.conditions_by_check()``); none at all: ``completed``.
StageConditions = Mapping[str, tuple[Sequence[ConditionSpec], bool]]


def evaluate_stage(
    stage: str,
    conditions: StageConditions,
    checks: Mapping[str, Check],
    results: Mapping[str, CheckResult],
    baselines: BaselineProvider = NO_BASELINES,
) -> list[Outcome]:
    """Every outcome of the stage named ``stage``, in the order of its checks.

    ``baselines`` gives the baseline conditions their baselines (the history store's
    provider); without one, each of them reports "no baseline yet".
    """
    outcomes: list[Outcome] = []
    for check_id, (own, default) in conditions.items():
        check, result = checks[check_id], results[check_id]
        if not own:
            outcomes.append(completed(check, result))
        outcomes.extend(
            evaluate(cond, check, result, baselines, stage=stage, default=default) for cond in own
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
    breached = judgement.resolution == "breached"
    judgement = _weigh_noise(cond, result, judgement)
    reason = judgement.reason
    if breached and result.reason:
        # The check's own summary names the evidence (the failing test, the slow endpoint).
        reason = f"{reason} ({clip_words(result.reason, 160)})"
    status = judgement.status(severity)
    inconclusive = status is OutcomeStatus.INCONCLUSIVE
    return Outcome(
        check=check.id,
        condition=text,
        status=status,
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
        metric=cond.metric,
        no_baseline=judgement.no_baseline,
        breached=breached,
        counts_as=POLICY_STATUS[cond.on_inconclusive] if inconclusive else None,
        mde_pct=judgement.mde_pct,
        needed_n=judgement.needed_n,
    )


def _weigh_noise(cond: ConditionSpec, result: CheckResult, judgement: Judgement) -> Judgement:
    """A breach of a timing metric measured on a busy machine: INCONCLUSIVE while the busy
    machine alone can explain it, a breach beyond that."""
    noise = result.noise
    if judgement.resolution != "breached" or noise is None or not noise.noisy:
        return judgement
    metric = result.metrics.get(cond.metric or "")
    if metric is None or not metric.timing:
        return judgement
    moved = next(
        (
            abs(m)
            for m in (judgement.effect, judgement.change_pct, judgement.moved_pct)
            if m is not None
        ),
        None,
    )
    allowance = format_value(noise.allowance_pct)
    if moved is not None and moved > noise.allowance_pct:
        reason = (
            f"{judgement.reason}; beyond what the busy machine explains"
            f" ({moved:.0f} % > {allowance} %: {noise.reason})"
        )
        return replace(judgement, reason=reason)
    reason = (
        f"{judgement.reason}; inconclusive: {noise.reason}, which alone can move timings"
        f" by up to {allowance} %: a slow target cannot be told from a busy machine"
    )
    return replace(judgement, resolution="inconclusive", reason=reason)


def describe(cond: ConditionSpec) -> tuple[str, str]:
    """The condition as text (``p95_ms <= 250``) and its target (``<= 250``).

    For a baseline condition the target names the baseline (``<= baseline +10 %``); its
    outcome shows the concrete limit once the baseline is known.
    """
    return cond.form.describe(cond.params, cond.metric)


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
    form = cond.form
    metric: Metric | None = None
    base: Baseline | None = None
    if form.subject == "metric":
        assert cond.metric is not None  # the spec requires it for this subject
        metric = result.metrics.get(cond.metric)
        if metric is None or math.isnan(metric.value):
            known = ", ".join(sorted(result.metrics)) or "none"
            reason = f"{check_id}: metric {cond.metric!r} was not measured (measured: {known})"
            return Judgement(cond.on_missing, None, target, reason)
        if form.needs_baseline:
            base = usable(baselines.baseline(check_id, cond.metric))
            if base is None:
                where = f"stage {stage}" if stage else "this stage"
                reason = (
                    f"{check_id}: no baseline yet for {cond.metric}"
                    f" (0 passing runs of {where} measured it)"
                )
                return Judgement(
                    cond.on_no_baseline, metric.value, target, reason, no_baseline=True
                )
    judgement = form.judge(cond.params, Evidence(check_id, result, metric, base))
    if judgement.resolution == "missing":
        judgement = replace(judgement, resolution=cond.on_missing)
    elif judgement.resolution == "no_baseline":
        judgement = replace(judgement, resolution=cond.on_no_baseline, no_baseline=True)
    return judgement


