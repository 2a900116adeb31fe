"""Production rollout: approval, backup, deploy, canary, validation, rollback. Plain Python.

One module per job: :mod:`.sequence` (the order of the steps, :func:`run_rollout`),
:mod:`.approval`, :mod:`.lock` (one rollout of a stage and target at a time), :mod:`.hooks`
(commands and HTTP calls with timeouts), :mod:`.canary`, :mod:`.report` (the record) and
:mod:`.render` (``rollout.json``, ``rollout.md``).
"""

from __future__ import annotations

from neuroerp_ci.release.rollout.approval import (
    Approval,
    ApprovalRequest,
    Approver,
    approval_problem,
)
from neuroerp_ci.release.rollout.canary import (
    CanaryJudge,
    CanaryResult,
    compare_canary,
    judge_canary,
)
from neuroerp_ci.release.rollout.hooks import HookCaller, HookContext, HookError, HookRunner
from neuroerp_ci.release.rollout.lock import LockOutcome, RolloutLock
from neuroerp_ci.release.rollout.render import render_rollout_json, render_rollout_markdown
from neuroerp_ci.release.rollout.report import (
    LOCK_STEP,
    ROLLOUT_CHECK,
    RolloutReport,
    StepResult,
    StepStatus,
    rollout_stage_report,
)
from neuroerp_ci.release.rollout.sequence import (
    Validator,
    check_rollout_plan,
    is_rollout_stage,
    run_rollout,
)

__all__ = [
    "LOCK_STEP",
    "ROLLOUT_CHECK",
    "Approval",
    "ApprovalRequest",
    "Approver",
    "CanaryJudge",
    "CanaryResult",
    "HookCaller",
    "HookContext",
    "HookError",
    "HookRunner",
    "LockOutcome",
    "RolloutLock",
    "RolloutReport",
    "StepResult",
    "StepStatus",
    "Validator",
    "approval_problem",
    "check_rollout_plan",
    "compare_canary",
    "is_rollout_stage",
    "judge_canary",
    "render_rollout_json",
    "render_rollout_markdown",
    "rollout_stage_report",
    "run_rollout",
]
