"""How often a gate condition is wrong, measured on the stage's own history.

``neuroerp-ci calibrate STAGE`` replays the stored passing runs of each metric condition
through the real dispatcher (:func:`~neuroerp_ci.gates.conditions.dispatch.evaluate`), so
the figures describe exactly the code that gates a run:

- **false alarms (A/A)**: each passing run that has ``runs`` passing runs before it is judged
  against the baseline those ``runs`` runs form (rolling, as the store forms it). Every one
  of those runs passed, so nothing changed: an outcome that breached, failed or warned there
  is a false alarm. Below :data:`MIN_PAIRS` pairs the rate is unknown (None), not 0.
- **detection**: the same pairs, the judged run's value and samples moved by +10, +20 and
  +50 % in the metric's bad direction (a latency ×1.1, a throughput ×0.9 for 10 %); a
  breach is a detection.

Why replay rather than a formula: the forms differ (a fixed limit, a median of runs, a rank
test with an effect floor and an MDE rule), the history is not one clean distribution (the
machine drifts from run to run), and the dispatcher adds rules of its own. Only running
the conditions themselves on the runs the store really holds says how they behave there.

Not replayed: ``confirm`` re-measurements and the machine's noise reading (a stored run holds
one measurement and a quiet synthetic result), so the false-alarm rate is that of a single
measurement: an upper bound for a condition that confirms a breach before it counts.

Pure: the history comes in as data (run id and the :class:`~neuroerp_ci.model.Metric` it
measured, newest first); the store reads it and keeps the results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from neuroerp_ci.checks import Check
from neuroerp_ci.gates.conditions.dispatch import (
    DEFAULT_MARK,
    StageConditions,
    describe,
    evaluate,
)
from neuroerp_ci.gates.conditions.spec import ConditionSpec
from neuroerp_ci.model import (
    Baseline,
    Calibration,
    CheckResult,
    CheckStatus,
    Direction,
    FindingsBaseline,
    Metric,
    Outcome,
    OutcomeStatus,
    Severity,
)

SHIFTS_PCT = (10.0, 20.0, 50.0)  # injected into the judged run, in the metric's bad direction
MIN_PAIRS = 5  # fewer A/A pairs say nothing about a rate: unknown
DEFAULT_BUDGET_PCT = 5.0  # the false-alarm rate a blocking condition may have

# The passing runs of one stage and target that measured one metric: (run id, the metric as
# that run measured it), newest first, as the store hands them back.
History = Sequence[tuple[str, Metric]]
_ALARMS = (OutcomeStatus.FAIL, OutcomeStatus.WARN)


@dataclass(frozen=True)
class CalibratedCondition:
    """One condition of a stage and its measured error rates."""

    check: str
    condition: str  # as its outcomes name it (a kind's default ends in "(default)")
    metric: str
    severity: Severity
    calibration: Calibration


@dataclass(frozen=True)
class SkippedCondition:
    """A condition calibration cannot replay, and why (a findings limit has no metric)."""

    check: str
    condition: str
    why: str


class _OneBaseline:
    """The :class:`~neuroerp_ci.gates.baselines.BaselineProvider` of one replayed pair."""

    def __init__(self, baseline: Baseline) -> None:
        self._baseline = baseline

    def baseline(self, check: str, metric: str) -> Baseline | None:
        found = self._baseline
        return found if (found.check, found.metric) == (check, metric) else None

    def findings(self, check: str) -> FindingsBaseline | None:
        return None  # a replay judges timings, never findings


def calibrate(
    cond: ConditionSpec,
    check: Check,
    history: History,
    *,
    runs: int,
    budget_pct: float = DEFAULT_BUDGET_PCT,
    measured_at: str = "",
    default: bool = False,
) -> Calibration:
    """The error rates of ``cond`` (a condition on a metric) on ``history``.

    ``runs`` is the pipeline's ``[baseline] runs``: how many runs before the judged one form
    its baseline. ``default`` marks a kind's default condition (only its text changes).
    """
    if cond.form.subject != "metric" or cond.metric is None:
        raise ValueError(f"{check.id}: only a condition on a metric can be calibrated")
    if runs < 1:
        raise ValueError(f"a baseline needs at least 1 run, got {runs}")
    metric = cond.metric
    chronological = list(reversed(history))
    pairs = [
        (_baseline(check.id, metric, chronological[i - runs : i]), chronological[i][1])
        for i in range(runs, len(chronological))
    ]

    def judged(base: Baseline, measured: Metric) -> Outcome:
        result = CheckResult(check.id, check.kind, CheckStatus.OK, metrics={metric: measured})
        return evaluate(cond, check, result, _OneBaseline(base), default=default)

    severity = cond.severity or Severity.for_priority(check.priority)
    if len(pairs) < MIN_PAIRS:
        return Calibration(None, (), len(history), len(pairs), budget_pct, False, measured_at)
    false_alarm_pct = _pct(_alarmed(judged(base, run)) for base, run in pairs)
    detection = tuple(
        (shift, _pct(judged(base, shifted(run, shift)).breached for base, run in pairs))
        for shift in SHIFTS_PCT
    )
    over = severity is Severity.BLOCKING and false_alarm_pct > budget_pct
    return Calibration(
        false_alarm_pct, detection, len(history), len(pairs), budget_pct, over, measured_at
    )


def calibrate_stage(
    conditions: StageConditions,
    checks: Mapping[str, Check],
    history_of: Callable[[str, str], History],
    *,
    runs: int,
    budget_pct: float = DEFAULT_BUDGET_PCT,
    measured_at: str = "",
) -> tuple[list[CalibratedCondition], list[SkippedCondition]]:
    """Every metric condition of a stage (its pipeline's ``conditions_by_check()``), in stage
    order, calibrated on ``history_of(check, metric)``; and the conditions skipped (findings
    limits: they limit no metric, so no shift can be injected). A check with no condition
    has only ``completed``: nothing to calibrate."""
    read: dict[tuple[str, str], History] = {}
    done: list[CalibratedCondition] = []
    skipped: list[SkippedCondition] = []
    for check_id, (own, default) in conditions.items():
        check = checks[check_id]
        for cond in own:
            text = _text(cond, default)
            if cond.form.subject != "metric" or cond.metric is None:
                why = f"a {cond.form.name} condition limits no metric: no shift to inject"
                skipped.append(SkippedCondition(check_id, text, why))
                continue
            key = (check_id, cond.metric)
            if key not in read:
                read[key] = history_of(*key)
            calibration = calibrate(
                cond,
                check,
                read[key],
                runs=runs,
                budget_pct=budget_pct,
                measured_at=measured_at,
                default=default,
            )
            severity = cond.severity or Severity.for_priority(check.priority)
            done.append(CalibratedCondition(check_id, text, cond.metric, severity, calibration))
    return done, skipped


def shifted(metric: Metric, shift_pct: float) -> Metric:
    """``metric`` with its value and samples moved by ``shift_pct`` % in its bad direction:
    a lower-is-better metric ×(1 + shift), a higher-is-better one ×(1 - shift)."""
    sign = 1.0 if metric.direction is Direction.LOWER else -1.0
    factor = 1.0 + sign * shift_pct / 100.0
    return Metric(
        metric.name,
        metric.value * factor,
        metric.unit,
        metric.direction,
        tuple(s * factor for s in metric.samples),
    )


def _baseline(check: str, metric: str, before: Sequence[tuple[str, Metric]]) -> Baseline:
    """The baseline the runs ``before`` (oldest first) form, newest first as the store's."""
    newest_first = list(reversed(before))
    return Baseline(
        check=check,
        metric=metric,
        values=tuple(m.value for _, m in newest_first),
        samples=tuple(s for _, m in newest_first for s in m.samples),
        runs=tuple(run_id for run_id, _ in newest_first),
    )


def _pct(hits: Iterable[bool]) -> float:
    """How many of ``hits`` are true, in % of them all (never called on none)."""
    seen = list(hits)
    return sum(seen) / len(seen) * 100.0


def _alarmed(outcome: Outcome) -> bool:
    """Whether the gate would have said something was wrong: a breach (whatever its
    severity made of it), or an outcome that counts as a FAIL or WARN (too few samples, an
    inconclusive test)."""
    return outcome.breached or outcome.weight in _ALARMS


def _text(cond: ConditionSpec, default: bool) -> str:
    """The condition as its outcomes name it (the key its calibration is found by)."""
    return describe(cond)[0] + (DEFAULT_MARK if default else "")
