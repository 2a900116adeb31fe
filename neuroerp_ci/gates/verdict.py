"""The verdict of a stage: FAIL if any outcome failed, WARN if any warned, else PASS.

An INCONCLUSIVE outcome counts as what its condition's ``on_inconclusive`` says (WARN by
default, FAIL when asked), never as a pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from neuroerp_ci.model import Outcome, OutcomeStatus, Summary, Verdict


def decide(outcomes: Sequence[Outcome]) -> Verdict:
    statuses = {o.weight for o in outcomes}
    if OutcomeStatus.FAIL in statuses or not outcomes:
        return Verdict.FAIL  # nothing evaluated is not a pass
    if OutcomeStatus.WARN in statuses:
        return Verdict.WARN
    return Verdict.PASS


def summarize(stage: str, verdict: Verdict, outcomes: Sequence[Outcome]) -> Summary:
    """The verdict, the counts and the reasons that decided it (rendered by
    :func:`~neuroerp_ci.model.summary_line`)."""
    if not outcomes:
        return Summary(stage, Verdict.FAIL, evaluated=0)
    failed = [o for o in outcomes if o.weight is OutcomeStatus.FAIL]
    warned = [o for o in outcomes if o.weight is OutcomeStatus.WARN]
    deciding = failed if verdict is Verdict.FAIL else warned
    distinct = tuple(dict.fromkeys(o.reason for o in deciding))  # one errored check, one reason
    return Summary(stage, verdict, distinct, evaluated=len(outcomes), deciding=len(deciding))
