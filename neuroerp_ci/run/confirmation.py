"""Confirm before failing (``confirm = N``): a breached measurement is measured again.

A timing on a shared machine can spike once for reasons of the machine's (another job, a
GC pause, a cold cache). So a condition of a measurement check (an exclusive kind: http,
load, database, network, frontend) whose limit its first measurement breached re-runs that
check, alone, up to ``confirm`` times (default 1), and every condition breached on that
check is judged again on each re-measurement (one re-run serves them all):

- every re-measurement breaches too: the outcome stays FAIL (or WARN), its reason and
  ``confirmations`` showing the re-measurements;
- one does not: the outcome is INCONCLUSIVE, counting as the condition's
  ``on_inconclusive`` (never more than the breach it did not confirm), with the reason
  ``<first reason>; not confirmed: re-measured p95_ms 212 within <= 300``: a one-off spike
  does not FAIL, and does not pass either;
- one cannot measure at all (the check errored, the run was stopped, the metric is gone):
  the first measurement stands, and the reason says it could not be confirmed. Fail closed.

A breach made INCONCLUSIVE by a busy machine (its first measurement breached, but the noise
reading could explain it) is re-measured too: the neighbour may be gone a moment later.
Only when every re-measurement breaches on a machine that can tell does it become the
breach (FAIL or WARN by its severity); else it stays INCONCLUSIVE, with the re-measurements.

Not re-measured: a condition with ``confirm = 0``; a breach that counts for nothing (INFO);
an INCONCLUSIVE outcome that did not breach (too few samples for the min effect: the same
samples again would not decide); a load test
that ``abort_on_fail`` stopped early (it stopped because the breach was beyond doubt, and
a re-run would spend the time the abort saved).

The report's ``checks`` keep the first measurement; each re-measurement's raw outputs are
kept in ``checks/<id>.confirm-<attempt>/`` of the run folder, and its figures in the
outcome's ``confirmations``. This module only decides; how a check is re-run is given by
the runner (:data:`Remeasure`), so it never touches a process itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable

from neuroerp_ci.checks import KINDS, Check
from neuroerp_ci.gates import NO_BASELINES, BaselineProvider, ConditionSpec, describe, evaluate
from neuroerp_ci.gates.conditions import DEFAULT_MARK, StageConditions
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Confirmation,
    Outcome,
    OutcomeStatus,
)

# Re-runs ``check`` alone for re-measurement ``attempt`` (1, 2, ...) and returns its result.
Remeasure = Callable[[Check, int], CheckResult]

# The outcome statuses a re-measurement may take back: breaches that count in the verdict.
_CONFIRMED_STATUSES = (OutcomeStatus.FAIL, OutcomeStatus.WARN)
# A load test stopped early by abort_on_fail reports this metric as 1 (checks/_load_abort).
_ABORTED_METRIC = "aborted"

# What a re-measurement says about the first one's breach.
Agreement = Literal["agrees", "disagrees", "undecided"]


def work_name(check_id: str, attempt: int) -> str:
    """The folder (under the run's ``checks/``) of a re-measurement's raw outputs."""
    return f"{check_id}.confirm-{attempt}"


@runtime_checkable
class ConfirmationObserver(Protocol):
    """What an observer implements to show re-measurements (the console: "confirming
    api-latency"); an observer without these methods is not told about them."""

    def confirmation_started(self, check: Check, attempt: int) -> None: ...
    def confirmation_finished(self, check: Check, attempt: int, result: CheckResult) -> None: ...


class ConfirmingObserver:
    """The run observer a re-measurement runs under: it tells ``observer`` of the
    re-measurement when it knows about confirmations, and nothing otherwise, so a re-run is
    never counted as one more check of the run."""

    def __init__(self, observer: object, attempt: int) -> None:
        self._observer = observer if isinstance(observer, ConfirmationObserver) else None
        self._attempt = attempt

    def check_started(self, check: Check) -> None:
        if self._observer is not None:
            self._observer.confirmation_started(check, self._attempt)

    def check_finished(self, check: Check, result: CheckResult) -> None:
        if self._observer is not None:
            self._observer.confirmation_finished(check, self._attempt, result)


@dataclass
class _Breach:
    """One breached outcome waiting for its re-measurements."""

    index: int  # its place in the stage's outcomes
    outcome: Outcome
    spec: ConditionSpec
    default: bool  # a kind's default condition (its text ends in "(default)")
    seen: list[Outcome] = field(default_factory=list)  # its re-evaluations, in order


def confirm_breaches(
    outcomes: Sequence[Outcome],
    conditions: StageConditions,
    checks: Mapping[str, Check],
    results: Mapping[str, CheckResult],
    remeasure: Remeasure,
    baselines: BaselineProvider = NO_BASELINES,
    *,
    stage: str | None = None,
) -> list[Outcome]:
    """``outcomes`` with every breach of a measurement check re-measured as its condition's
    ``confirm`` says (see the module docstring); the others as they are, in their order.

    ``baselines`` must be the provider the outcomes were judged with: a re-measurement is
    judged against the same baseline as the first measurement.
    """
    confirmed = list(outcomes)
    for check_id, breaches in _breaches(outcomes, conditions, checks, results).items():
        for breach in _remeasured(checks[check_id], breaches, remeasure, baselines, stage):
            confirmed[breach.index] = _concluded(breach)
    return confirmed


def _breaches(
    outcomes: Sequence[Outcome],
    conditions: StageConditions,
    checks: Mapping[str, Check],
    results: Mapping[str, CheckResult],
) -> dict[str, list[_Breach]]:
    """The outcomes to re-measure, by check (in stage order), with their conditions."""
    found: dict[str, list[_Breach]] = {}
    for index, outcome in enumerate(outcomes):
        check, result = checks.get(outcome.check), results.get(outcome.check)
        own, default = conditions.get(outcome.check, ((), False))
        spec = _spec_of(outcome, own, default)
        if check is None or result is None or spec is None:
            continue  # an outcome about the run itself (setup, interpreter, promotion)
        if _to_confirm(outcome, spec, check, result):
            found.setdefault(check.id, []).append(_Breach(index, outcome, spec, default))
    return found


def _spec_of(outcome: Outcome, own: Sequence[ConditionSpec], default: bool) -> ConditionSpec | None:
    """The condition ``outcome`` is the outcome of, found by its text."""
    for spec in own:
        text = describe(spec)[0] + (DEFAULT_MARK if default else "")
        if text == outcome.condition:
            return spec
    return None


def _to_confirm(outcome: Outcome, spec: ConditionSpec, check: Check, result: CheckResult) -> bool:
    """Whether a re-measurement could take this breach back (see the module docstring)."""
    aborted = result.metrics.get(_ABORTED_METRIC)
    return (
        outcome.breached
        and (outcome.status in _CONFIRMED_STATUSES or outcome.status is OutcomeStatus.INCONCLUSIVE)
        and spec.confirm > 0
        and KINDS[check.kind].exclusive
        and spec.metric is not None  # a findings limit (a11y's) is no measurement to repeat
        and result.status is CheckStatus.OK
        and not (aborted is not None and aborted.value >= 1)
    )


def _remeasured(
    check: Check,
    breaches: list[_Breach],
    remeasure: Remeasure,
    baselines: BaselineProvider,
    stage: str | None,
) -> list[_Breach]:
    """Re-run ``check`` while some breach still wants a re-measurement: each re-run judges
    every breach still open; a breach closes when its ``confirm`` count is reached or a
    re-measurement did not agree with it."""
    attempt = 0
    open_ = list(breaches)
    while open_:
        attempt += 1
        result = remeasure(check, attempt)
        if result.status is CheckStatus.OK:
            # Judged without the check's own summary, which a breach's reason would quote:
            # a confirmation's line names the value and the limit (the first reason has the rest).
            result = replace(result, reason="")
        for breach in open_:
            breach.seen.append(
                evaluate(breach.spec, check, result, baselines, stage=stage, default=breach.default)
            )
        open_ = [
            b for b in open_ if _agreement(b.seen[-1]) == "agrees" and b.spec.confirm > attempt
        ]
    return breaches


def _agreement(again: Outcome) -> Agreement:
    """What one re-evaluation says of the first breach: it breached again on data that can
    tell (agrees); it met the limit, or the data could not tell, a busy machine for one
    (disagrees); it had nothing to judge: the check errored or was skipped, the metric is
    missing (undecided)."""
    if again.status in (OutcomeStatus.PASS, OutcomeStatus.INCONCLUSIVE):
        return "disagrees"
    return "agrees" if again.breached else "undecided"


def _concluded(breach: _Breach) -> Outcome:
    """The breached outcome with its re-measurements: kept when all agreed, INCONCLUSIVE
    when one disagreed, kept with a note when one could not measure."""
    first = breach.outcome
    confirmations = tuple(
        Confirmation(n, again.value, _agreement(again) == "agrees", _said(again))
        for n, again in enumerate(breach.seen, start=1)
    )
    last = _agreement(breach.seen[-1])
    said = ", then ".join(c.reason for c in confirmations)
    if last == "agrees":
        reason = f"{first.reason}; confirmed: re-measured {said}"
        if first.status is OutcomeStatus.INCONCLUSIVE:  # a busy machine's breach, now certain
            again = breach.seen[-1]
            return replace(
                first,
                status=again.status,
                counts_as=None,
                reason=reason,
                confirmations=confirmations,
            )
        return replace(first, reason=reason, confirmations=confirmations)
    if first.status is OutcomeStatus.INCONCLUSIVE:  # still cannot tell: stays as it was
        reason = f"{first.reason}; not confirmed: re-measured {said}"
        return replace(first, reason=reason, confirmations=confirmations)
    if last == "undecided":
        reason = f"{first.reason}; could not confirm: re-measured {said}; the first one stands"
        return replace(first, reason=reason, confirmations=confirmations)
    counts_as = OutcomeStatus.FAIL if breach.spec.on_inconclusive == "fail" else OutcomeStatus.WARN
    if first.status is OutcomeStatus.WARN:
        counts_as = OutcomeStatus.WARN  # never more than the breach it did not confirm
    return replace(
        first,
        status=OutcomeStatus.INCONCLUSIVE,
        counts_as=counts_as,
        reason=f"{first.reason}; not confirmed: re-measured {said}",
        confirmations=confirmations,
    )


def _said(again: Outcome) -> str:
    """A re-evaluation's reason without the check id it starts with: ``p95_ms 212 within
    <= 300``."""
    prefix = f"{again.check}: "
    return again.reason.removeprefix(prefix)
