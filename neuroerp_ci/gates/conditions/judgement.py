"""What one condition concluded, before the condition's severity turns it into a status.

Every condition form returns a :class:`Judgement`; the dispatcher
(:mod:`neuroerp_ci.gates.conditions.dispatch`) adds the check, the condition text and the
severity to make the :class:`~neuroerp_ci.model.Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from neuroerp_ci.model import OutcomeStatus, Policy, Severity

# "met" passes; "breached" weighs by the condition's severity; "missing" (a form's data cannot
# decide, e.g. too few samples) becomes the condition's on_missing in the dispatcher;
# "inconclusive" (the samples cannot detect the effect that matters, the machine was too busy
# to tell) is INCONCLUSIVE; "no_baseline" (a form that compares with the baseline run found
# none) becomes the condition's on_no_baseline in the dispatcher; a policy name ("fail",
# "warn", "ignore") is what on_missing / on_error / on_no_baseline said.
Resolution = Literal["met", "breached", "missing", "inconclusive", "no_baseline"] | Policy

BREACH_STATUS = {
    Severity.BLOCKING: OutcomeStatus.FAIL,
    Severity.WARNING: OutcomeStatus.WARN,
    Severity.INFO: OutcomeStatus.INFO,
}
POLICY_STATUS: dict[Policy, OutcomeStatus] = {
    "fail": OutcomeStatus.FAIL,
    "warn": OutcomeStatus.WARN,
    "ignore": OutcomeStatus.INFO,
}


@dataclass(frozen=True)
class Judgement:
    """A condition's conclusion with the numbers that explain it."""

    resolution: Resolution
    value: float | None
    target: str
    reason: str
    baseline: float | None = None
    change_pct: float | None = None
    p_value: float | None = None
    effect: float | None = None
    effect_ci: tuple[float, float] | None = None
    baseline_runs: tuple[str, ...] = ()
    mde_pct: float | None = None  # a statistical form: the smallest shift it detects, %
    needed_n: int | None = None  # about how many samples per run would detect its min effect
    # How far the value moved from what the condition compares it with (the baseline, else
    # the limit), in %: what the dispatcher weighs against a busy machine's allowance.
    moved_pct: float | None = None
    no_baseline: bool = False  # only said "no baseline yet" (its run may still form one)

    def status(self, severity: Severity) -> OutcomeStatus:
        if self.resolution == "met":
            return OutcomeStatus.PASS
        if self.resolution == "breached":
            return BREACH_STATUS[severity]
        if self.resolution == "inconclusive":
            return OutcomeStatus.INCONCLUSIVE
        if self.resolution == "missing" or self.resolution == "no_baseline":
            return OutcomeStatus.FAIL  # the dispatcher resolves it first; fail closed anyway
        return POLICY_STATUS[self.resolution]
