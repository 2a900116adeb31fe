"""Promotion rules: a stage that ``requires`` another runs only for a version that passed it.

The rule is checked before anything starts (no target, no check), against the run history:
``staging`` with ``requires = "development"`` runs for version ``3f9a2c1`` only if a
``development`` run of the same target for ``3f9a2c1`` finished PASS or WARN and was not
invalidated. A refused stage still produces a report (verdict FAIL, one outcome saying why),
so every caller (CLI, flow, CI) sees the refusal the way it sees any other FAIL.

Example::

    decision = check_promotion(pipeline, pipeline.stage("staging"), "3f9a2c1", store)
    if not decision.allowed:
        print(decision.reason)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from neuroerp_ci.config import Pipeline, Stage
from neuroerp_ci.model import Outcome, OutcomeStatus, Severity, StageReport, Summary, Verdict
from neuroerp_ci.project.versioning import UNVERSIONED
from neuroerp_ci.release._clock import now
from neuroerp_ci.release.rollout import is_rollout_stage
from neuroerp_ci.store.records import RunRecord

PROMOTION_CHECK = "promotion"  # the ``check`` of the outcome a refusal reports


class PassedLookup(Protocol):
    """What promotion needs from the history: :meth:`HistoryStore.passed`."""

    def passed(self, stage: str, target: str, version: str) -> RunRecord | None: ...


@dataclass(frozen=True)
class PromotionDecision:
    """Whether ``stage`` may run for ``version``, and the evidence either way."""

    stage: str
    version: str
    required: str | None  # the stage it requires, if any
    allowed: bool
    reason: str
    evidence_run: str | None = None  # the passing run of the required stage
    rule: str | None = None  # the condition refused, when it is not ``requires``

    @property
    def condition(self) -> str:
        return self.rule or f"requires {self.required} passed for {self.version}"


def check_promotion(
    pipeline: Pipeline,
    stage: Stage,
    version: str,
    history: PassedLookup | None,
    *,
    as_rollout: bool = False,
) -> PromotionDecision:
    """Decide whether ``stage`` (one of ``pipeline``'s) may run for ``version``.

    Fail closed: a stage with ``requires`` is refused without a version, or without a
    history to look in; a stage with approval, hooks or a canary is refused unless it runs
    as a rollout (``as_rollout``), so a plain gate can never record it passed unapproved.
    """
    name = stage.name
    if is_rollout_stage(stage) and not as_rollout:
        return PromotionDecision(
            name,
            version,
            stage.requires,
            False,
            f"{name} has approval, hooks or a canary and runs only as a rollout: "
            f"`neuroerp-ci promote {version} --to {name}` or the 'rollout/{name}' deployment",
            rule="runs only as a rollout",
        )
    required = stage.requires
    if required is None:
        return PromotionDecision(name, version, None, True, f"{name} has no promotion rule")
    target = pipeline.target.name
    if not version or version == UNVERSIONED:
        return PromotionDecision(
            name,
            version,
            required,
            False,
            f"{name} requires {required} to have passed for the same version, "
            "but no version was given (pass --version or the 'version' parameter)",
        )
    if history is None:
        return PromotionDecision(
            name,
            version,
            required,
            False,
            f"{name} requires {required} to have passed for {version}, "
            "but there is no run history to look it up in",
        )
    record = history.passed(required, target, version)
    if record is None:
        return PromotionDecision(
            name,
            version,
            required,
            False,
            f"{name} requires {required} to have passed for version {version}: no passing "
            f"{required} run of {target} for {version} in the history "
            f"(run `neuroerp-ci run {required} --version {version}` first)",
        )
    verdict = record.verdict.value if record.verdict else "?"
    return PromotionDecision(
        name,
        version,
        required,
        True,
        f"{required} passed for {version} ({verdict}, run {record.run_id})",
        evidence_run=record.run_id,
    )


def refusal_report(decision: PromotionDecision, target: str, run_id: str) -> StageReport:
    """The report of a refused stage: verdict FAIL, no checks, one outcome with the reason."""
    at = now()
    outcome = Outcome(
        check=PROMOTION_CHECK,
        condition=decision.condition,
        status=OutcomeStatus.FAIL,
        severity=Severity.BLOCKING,
        value=None,
        target="a PASS or WARN run",
        reason=f"refused: {decision.reason}",
    )
    return StageReport(
        run_id=run_id,
        stage=decision.stage,
        version=decision.version,
        target=target,
        verdict=Verdict.FAIL,
        started_at=at,
        finished_at=at,
        duration_s=0.0,
        checks=[],
        outcomes=[outcome],
        summary=Summary(decision.stage, Verdict.FAIL, (f"refused: {decision.reason}",)),
    )
