"""Production rollout: approval, backup, deploy, canary, validation, rollback. Plain Python.

The sequence (:func:`run_rollout`)::

    lock ────── held by another run (refuse / waited) ─> FAIL (nothing deployed)
       │
    approval ── rejected / timed out ──────────────────> FAIL (nothing deployed)
       │
    backup ──── hook error ────────────────────────────> FAIL (nothing deployed)
       │
    deploy ──── hook error ──┐
    canary ──── regression ──┤  (canary mode: compare, then the full ``switch``)
    switch ──── hook error ──┤
    validation ─ FAIL ───────┴─> rollback (once) ──────> FAIL, "rolled back"
       │                              └─ rollback error ─> FAIL, "ROLLBACK FAILED: ..."
    PASS / WARN          ... and in every case: release the lock

The rollout lock (:class:`RolloutLock`, a row in the history store per stage and target) is
taken before anyone is asked to approve and held to the end, rollback included, with a lease
renewed while the run lives. So a second rollout started while the first waits for approval
is refused at once, or waits for the lock (``[stages.<name>] lock = "wait"``), before it asks
anyone. The lock is confirmed again after the approval and before a canary's ``switch``: a
run that lost it (the store unreachable until the lease ran out, then another run took it)
fails there, before backup and deploy, or rolls its canary back. Prefect's deployment
concurrency limit cannot do this: it frees the slot while a run is paused for approval.

How a person approves, how checks run and how hooks are called are passed in: the Prefect
adapter (:mod:`neuroerp_ci.orchestration`) pauses the flow run for typed input, runs the
stage's checks as tasks and each hook as a task; tests pass plain callables. Every step's
result is kept in a :class:`RolloutReport` (``rollout.json`` and ``rollout.md``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from neuroerp_ci.config import Pipeline, Stage
from neuroerp_ci.config.stage_rules import HookSpec, HooksSpec
from neuroerp_ci.errors import ConfigError, NeuroErpCiError, TargetError
from neuroerp_ci.model import StageReport, Summary, Verdict, summary_detail, summary_line
from neuroerp_ci.release._clock import now
from neuroerp_ci.release.rollout.approval import ApprovalRequest, Approver, approval_problem
from neuroerp_ci.release.rollout.canary import CanaryJudge, CanaryResult
from neuroerp_ci.release.rollout.hooks import HookCaller
from neuroerp_ci.release.rollout.lock import RolloutLock
from neuroerp_ci.release.rollout.report import LOCK_STEP, RolloutReport, StepResult, StepStatus
from neuroerp_ci.support.hosts import ensure_allowed

logger = logging.getLogger(__name__)

_NOTHING_DEPLOYED = "nothing deployed, no rollback needed"

Validator = Callable[[], StageReport]  # runs the stage's checks once deployed


def is_rollout_stage(stage: Stage) -> bool:
    """Stages with approval, hooks or a canary run as a rollout, not as a plain gate."""
    return stage.approval is not None or stage.hooks is not None or stage.canary is not None


def check_rollout_plan(pipeline: Pipeline, stage: Stage) -> None:
    """Refuse a rollout that cannot work before anyone is asked to approve it."""
    where = f"stages.{stage.name}"
    hooks = stage.hooks
    if stage.canary is not None:
        if hooks is None or hooks.deploy is None or hooks.switch is None:
            raise ConfigError(
                pipeline.path,
                f"{where}.canary",
                "canary mode needs hooks.deploy (start the canary) and hooks.switch "
                "(the full switch once the canary passed)",
            )
        for key in ("canary_url", "stable_url"):
            _allowed(pipeline, getattr(stage.canary, key), f"{where}.canary.{key}")
    if hooks is not None:
        for name in HooksSpec.model_fields:
            spec: HookSpec | None = getattr(hooks, name)
            if spec is not None and spec.url is not None:
                _allowed(pipeline, spec.url, f"{where}.hooks.{name}.url")


def _allowed(pipeline: Pipeline, url: str, key: str) -> None:
    try:
        ensure_allowed(url, pipeline.target.allowed_hosts, "URL")
    except TargetError as exc:
        raise ConfigError(pipeline.path, key, f"{exc} (see [target] allowed_hosts)") from None


def run_rollout(
    pipeline: Pipeline,
    stage: Stage,
    version: str,
    run_id: str,
    *,
    approve: Approver,
    validate: Validator,
    hooks: HookCaller,
    canary: CanaryJudge | None = None,
    lock: RolloutLock | None = None,
) -> RolloutReport:
    """Run the rollout of ``stage`` (one of ``pipeline``'s) for ``version``; never raises for
    a failed step.

    With ``lock``, nothing happens (no approval is asked) unless the lock is taken, and it is
    released on every way out. Raises :class:`ConfigError` (before anything happens) for a
    plan that cannot work.
    """
    check_rollout_plan(pipeline, stage)
    report = RolloutReport(stage.name, version, pipeline.target.name, run_id, now())
    if lock is None:
        return _steps(report, stage, approve, validate, hooks, canary, None)
    failure = _lock(report, lock)
    if failure is not None:
        return _finish(report, Verdict.FAIL, failure, _NOTHING_DEPLOYED)
    try:
        return _steps(report, stage, approve, validate, hooks, canary, lock)
    finally:
        released = lock.release()
        if report.lock is not None:
            report.lock.released = released


def _steps(
    report: RolloutReport,
    stage: Stage,
    approve: Approver,
    validate: Validator,
    hooks: HookCaller,
    canary: CanaryJudge | None,
    lock: RolloutLock | None,
) -> RolloutReport:
    version = report.version
    failure = _approve(report, stage, approve)
    if failure is None:
        # The approval may have taken hours: still ours before anything changes?
        failure = _confirm_lock(report, lock, "backup and deploy")
    specs = stage.hooks
    if failure is None and specs is not None and specs.backup is not None:
        failure = _hook(report, hooks, "backup", specs.backup)
    if failure is not None:
        return _finish(report, Verdict.FAIL, failure, _NOTHING_DEPLOYED)
    failure = _deploy(report, stage, hooks, canary, lock)
    if failure is None:
        failure = _validate(report, validate)
    if failure is None:
        assert report.validation is not None
        validation = report.validation
        who = f" (approved by {report.approval.approver})" if report.approval else ""
        return _finish(
            report,
            validation.verdict,
            f"{version} deployed{who}",
            f"validation: {summary_detail(validation.summary)}",
        )
    return _roll_back(report, stage, hooks, failure)


def _lock(report: RolloutReport, lock: RolloutLock) -> str | None:
    started = time.perf_counter()
    outcome = lock.acquire()
    report.lock = outcome
    took = round(time.perf_counter() - started, 3)
    status = StepStatus.OK if outcome.acquired else StepStatus.FAILED
    report.steps.append(StepResult(LOCK_STEP, status, outcome.reason, took))
    if outcome.acquired:
        return None
    logger.warning("%s rollout of %s: %s", report.stage, report.version, outcome.reason)
    return outcome.reason


def _confirm_lock(report: RolloutReport, lock: RolloutLock | None, before: str) -> str | None:
    """Why the rollout must not go on to ``before`` (it lost its lock), or None."""
    lost = lock.check() if lock is not None else None
    if lost is None:
        return None
    reason = f"{lost}; {before} not started"
    report.steps.append(StepResult(LOCK_STEP, StepStatus.FAILED, reason))
    logger.error("%s rollout of %s: %s", report.stage, report.version, reason)
    return reason


def _approve(report: RolloutReport, stage: Stage, approve: Approver) -> str | None:
    if stage.approval is None:
        return None
    request = ApprovalRequest(
        stage.name,
        report.version,
        report.target,
        stage.approval.timeout_s,
        tuple(stage.approval.approvers),
    )
    started = time.perf_counter()
    answer = approve(request)
    report.approval = answer
    problem = approval_problem(request, answer)
    took = round(time.perf_counter() - started, 3)
    if problem is None:
        note = f": {answer.comment.strip()}" if answer.comment.strip() else ""
        reason = f"approved by {answer.approver.strip()}{note}"
        report.steps.append(StepResult("approval", StepStatus.OK, reason, took))
        return None
    report.steps.append(StepResult("approval", StepStatus.FAILED, problem, took))
    logger.warning("%s rollout of %s: %s", stage.name, report.version, problem)
    return problem


def _hook(report: RolloutReport, hooks: HookCaller, name: str, spec: HookSpec) -> str | None:
    result = hooks.run(name, spec)
    report.steps.append(result)
    return None if result.ok else result.reason


def _deploy(
    report: RolloutReport,
    stage: Stage,
    hooks: HookCaller,
    canary: CanaryJudge | None,
    lock: RolloutLock | None,
) -> str | None:
    specs = stage.hooks
    if specs is None or specs.deploy is None:
        return None
    failure = _hook(report, hooks, "deploy", specs.deploy)
    if failure is None and stage.canary is not None:
        if canary is None:
            return "canary mode is configured but no canary comparison was given"
        started = time.perf_counter()
        try:
            result = canary(stage.canary)
        except (NeuroErpCiError, ValueError) as exc:
            result = CanaryResult(False, f"canary comparison failed: {exc}")
        report.canary = result
        status = StepStatus.OK if result.passed else StepStatus.FAILED
        took = round(time.perf_counter() - started, 3)
        report.steps.append(StepResult("canary", status, result.reason, took))
        failure = None if result.passed else f"canary failed: {result.reason}"
    if failure is None and specs.switch is not None:
        failure = _confirm_lock(report, lock, "switch")
    if failure is None and specs.switch is not None:
        failure = _hook(report, hooks, "switch", specs.switch)
    return failure


def _validate(report: RolloutReport, validate: Validator) -> str | None:
    started = time.perf_counter()
    try:
        validation = validate()
    except Exception as exc:  # noqa: BLE001 - whatever broke, what was deployed must go back
        reason = f"validation could not run: {type(exc).__name__}: {exc}".splitlines()[0]
        took = round(time.perf_counter() - started, 3)
        report.steps.append(StepResult("validation", StepStatus.FAILED, reason, took))
        return reason
    report.validation = validation
    took = round(time.perf_counter() - started, 3)
    ok = validation.verdict is not Verdict.FAIL
    status = StepStatus.OK if ok else StepStatus.FAILED
    report.steps.append(StepResult("validation", status, summary_line(validation.summary), took))
    return None if ok else f"validation failed: {summary_detail(validation.summary)}"


def _roll_back(
    report: RolloutReport, stage: Stage, hooks: HookCaller, failure: str
) -> RolloutReport:
    """Call the rollback hook exactly once; its failure is the loudest thing reported."""
    spec = stage.hooks.rollback if stage.hooks is not None else None
    if spec is None:
        # Nothing was deployed by a hook (HooksSpec demands a rollback hook for deploys).
        report.rollback = "no hook"
        return _finish(report, Verdict.FAIL, failure, "no rollback hook configured")
    result = hooks.run("rollback", spec)
    report.steps.append(result)
    if result.ok:
        report.rollback = "rolled back"
        return _finish(report, Verdict.FAIL, failure, f"rolled back ({result.reason})")
    report.rollback = "FAILED"
    logger.error(
        "ROLLBACK FAILED in the %s rollout of %s: %s (after: %s)",
        report.stage,
        report.version,
        result.reason,
        failure,
    )
    return _finish(
        report,
        Verdict.FAIL,
        f"ROLLBACK FAILED: {result.reason}",
        f"the {report.stage} target may be left half deployed — act now. It was rolling back "
        f"because {failure}",
    )


def _finish(report: RolloutReport, verdict: Verdict, *reasons: str) -> RolloutReport:
    report.verdict = verdict
    report.summary = Summary(report.stage, verdict, reasons)
    report.finished_at = now()
    return report
