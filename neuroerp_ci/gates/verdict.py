"""The verdict of a stage: FAIL if any outcome failed, WARN if any warned, else PASS."""

from __future__ import annotations

from collections.abc import Sequence

from neuroerp_ci.model import Outcome, OutcomeStatus, Verdict

_SHOWN_REASONS = 3


def decide(outcomes: Sequence[Outcome]) -> Verdict:
    statuses = {o.status for o in outcomes}
    if OutcomeStatus.FAIL in statuses or not outcomes:
        return Verdict.FAIL  # nothing evaluated is not a pass
    if OutcomeStatus.WARN in statuses:
        return Verdict.WARN
    return Verdict.PASS


def summarize(stage: str, verdict: Verdict, outcomes: Sequence[Outcome]) -> str:
    """One line: the verdict, the counts and the reasons that decided it."""
    if not outcomes:
        return f"{stage}: FAIL — no condition was evaluated"
    failed = [o for o in outcomes if o.status is OutcomeStatus.FAIL]
    warned = [o for o in outcomes if o.status is OutcomeStatus.WARN]
    deciding = failed if verdict is Verdict.FAIL else warned
    head = f"{stage}: {verdict.value}"
    if not deciding:
        return f"{head} — {len(outcomes)} of {len(outcomes)} conditions met"
    label = "failed" if verdict is Verdict.FAIL else "warned"
    distinct = list(dict.fromkeys(o.reason for o in deciding))  # one errored check, one reason
    reasons = "; ".join(distinct[:_SHOWN_REASONS])
    more = f"; and {len(distinct) - _SHOWN_REASONS} more" if len(distinct) > _SHOWN_REASONS else ""
    return f"{head} — {len(deciding)} of {len(outcomes)} conditions {label}: {reasons}{more}"
