"""The record of one rollout: each step's result in order, and what the rollout concluded.

:class:`RolloutReport` is written as ``rollout.json`` and ``rollout.md``
(:mod:`neuroerp_ci.release.rollout.render`); :func:`rollout_stage_report` turns a rollout that
stopped before its validation into a stage report for the history and CI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from neuroerp_ci.model import (
    NO_SUMMARY,
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
    summary_line,
)
from neuroerp_ci.release._clock import now
from neuroerp_ci.release.rollout.approval import Approval
from neuroerp_ci.release.rollout.canary import CanaryResult
from neuroerp_ci.release.rollout.lock import LockOutcome

ROLLOUT_CHECK = "rollout"  # the ``check`` of the outcomes a rollout reports itself
LOCK_STEP = "lock"


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class StepResult:
    """One step of a rollout: a hook, the approval, the canary or the validation."""

    step: str
    status: StepStatus
    reason: str
    duration_s: float = 0.0
    attempts: int = 0
    log: str | None = None  # file with the step's raw output (commands, HTTP bodies)

    @property
    def ok(self) -> bool:
        return self.status is StepStatus.OK


@dataclass
class RolloutReport:
    """Everything one rollout did, in order, and what it concluded."""

    stage: str
    version: str
    target: str
    run_id: str
    started_at: str
    verdict: Verdict = Verdict.FAIL
    summary: Summary = NO_SUMMARY  # set when the rollout ends
    finished_at: str = ""
    steps: list[StepResult] = field(default_factory=list)
    approval: Approval | None = None
    canary: CanaryResult | None = None
    validation: StageReport | None = None
    rollback: str = "not needed"  # "not needed" | "rolled back" | "FAILED" | "no hook"
    lock: LockOutcome | None = None

    def step(self, name: str) -> StepResult | None:
        found = [s for s in self.steps if s.step == name]
        return found[-1] if found else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the validation report appears by run id, verdict and summary."""
        data: dict[str, Any] = {
            "stage": self.stage,
            "version": self.version,
            "target": self.target,
            "run_id": self.run_id,
            "verdict": self.verdict.value,
            "summary": summary_line(self.summary),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "lock": asdict(self.lock) if self.lock else None,
            "approval": asdict(self.approval) if self.approval else None,
            "steps": [{**asdict(s), "status": s.status.value} for s in self.steps],
            "canary": asdict(self.canary) if self.canary else None,
            "validation": None,
            "rollback": self.rollback,
        }
        if self.validation is not None:
            data["validation"] = {
                "run_id": self.validation.run_id,
                "verdict": self.validation.verdict.value,
                "summary": summary_line(self.validation.summary),
            }
        return data


def rollout_stage_report(report: RolloutReport) -> StageReport:
    """A stage report for a rollout that stopped before validation (rejected, timed out,
    a hook failed): verdict FAIL, one outcome per step taken, for the history and CI."""
    outcomes = [
        Outcome(
            check=ROLLOUT_CHECK,
            condition=f"{s.step} ok",
            status=OutcomeStatus.PASS if s.ok else OutcomeStatus.FAIL,
            severity=Severity.BLOCKING,
            value=None,
            target="ok",
            reason=s.reason,
        )
        for s in report.steps
    ]
    return StageReport(
        run_id=report.run_id,
        stage=report.stage,
        version=report.version,
        target=report.target,
        verdict=report.verdict,
        started_at=report.started_at,
        finished_at=report.finished_at or now(),
        duration_s=round(sum(s.duration_s for s in report.steps), 3),
        checks=[],
        outcomes=outcomes,
        summary=report.summary,
    )
