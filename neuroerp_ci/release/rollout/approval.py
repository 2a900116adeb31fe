"""The approval of a rollout: what a person is asked, what they answered, whether it lets the
rollout go on. How the question is put (a paused Prefect flow run, a test's callable) is the
caller's :data:`Approver`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from neuroerp_ci.release._clock import now


@dataclass(frozen=True)
class ApprovalRequest:
    """What a person is asked to approve."""

    stage: str
    version: str
    target: str
    timeout_s: int
    approvers: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        who = f" Approvers: {', '.join(self.approvers)}." if self.approvers else ""
        return (
            f"Deploy **{self.version}** of {self.target} to **{self.stage}**? Set `approve`, "
            f"say who you are in `approver` and why in `comment`.{who} Without an answer "
            f"within {self.timeout_s} s the stage fails and nothing is deployed."
        )


@dataclass(frozen=True)
class Approval:
    """The answer: approved or not, by whom and why. ``timed_out``: nobody answered."""

    approved: bool
    approver: str = ""
    comment: str = ""
    timed_out: bool = False
    at: str = field(default_factory=now)


Approver = Callable[[ApprovalRequest], Approval]


def approval_problem(request: ApprovalRequest, answer: Approval) -> str | None:
    """Why ``answer`` does not let the rollout go on, or None when it does."""
    who = answer.approver.strip()
    comment = f": {answer.comment.strip()}" if answer.comment.strip() else " (no comment)"
    if answer.timed_out:
        return f"approval timed out after {request.timeout_s} s (nobody approved)"
    if not answer.approved:
        return f"rejected by {who or 'an anonymous reviewer'}{comment}"
    if not who:
        return "approved without saying who approves (the 'approver' field is empty)"
    if request.approvers and who not in request.approvers:
        return f"{who!r} approved but is not one of the approvers {list(request.approvers)}"
    return None
