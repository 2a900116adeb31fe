"""The Prefect adapter: the one module that imports Prefect.

Three flows:

- ``stage-gate``: one stage's quality gate. Each check is a Prefect task (submitted in
  dependency order to a bounded thread pool, so checks run concurrently where the DAG
  allows). Before any check runs the stage's promotion rule is checked against the run
  history (``requires``: refused with a FAIL report); the run is recorded in the history.
- ``rollout``: a production rollout (:mod:`neuroerp_ci.release.rollout`): the flow run pauses for a
  typed :class:`ApprovalInput` (a form in the Prefect UI, or ``resume_flow_run`` through the
  API), then runs the hooks as tasks and the stage's checks as validation, rolling back on any
  FAIL.
- ``release``: development → staging → production as subflows, stopping at the first FAIL.

Every flow writes its artifacts under stable keys, notifies
(:mod:`neuroerp_ci.release.notifications`), then
ends Completed (PASS), Completed named ``CompletedWithWarnings`` (WARN) or Failed (FAIL) with
the verdict summary as its message, so ``prefect deployment run ... --watch`` exits non-zero
on FAIL.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.futures import PrefectFuture
from prefect.input import RunInput
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    get_current_settings,
    temporary_settings,
)
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from neuroerp_ci.checks import Check
from neuroerp_ci.config import Pipeline, Stage, load_pipeline
from neuroerp_ci.config.secret_refs import collect_secrets
from neuroerp_ci.config.stage_rules import HookSpec, LockSpec
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckResult, StageReport, Summary, Verdict, summary_line
from neuroerp_ci.project.versioning import UNVERSIONED, Version, resolve_version
from neuroerp_ci.release.notifications import notify_outcome
from neuroerp_ci.release.promotion import PromotionDecision, check_promotion, refusal_report
from neuroerp_ci.release.rollout import (
    Approval,
    ApprovalRequest,
    Approver,
    HookContext,
    HookRunner,
    RolloutLock,
    RolloutReport,
    StepResult,
    compare_canary,
    is_rollout_stage,
    render_rollout_json,
    render_rollout_markdown,
    rollout_stage_report,
    run_rollout,
)
from neuroerp_ci.reports.markdown import markdown_summary, outcome_rows
from neuroerp_ci.reports.writer import default_output_dir, new_run_id, write_atomically
from neuroerp_ci.run.checkout import identity, pipeline_for_version
from neuroerp_ci.run.runner import (
    CheckJob,
    NullObserver,
    RunObserver,
    RunOptions,
    StageOutcome,
    pipeline_interpreter,
    run_stage,
    split_mirrors,
    write_and_record,
)
from neuroerp_ci.store import HistoryStore, open_store, store_url
from neuroerp_ci.support.hosts import guarded_client
from neuroerp_ci.support.secrets import (
    install_log_redaction,
    redact,
    redact_data,
)
from neuroerp_ci.support.tooling import release_process, track_process

MAX_CONCURRENT_CHECKS = 8
APPROVAL_POLL_S = 5
_observer: RunObserver = NullObserver()


def api_url_configured() -> bool:
    """Whether runs report to a Prefect server of the user's (``PREFECT_API_URL``)."""
    return bool(get_current_settings().api.url)


def without_heartbeats() -> AbstractContextManager[object]:
    """Flow-run heartbeats off: they only serve crashed-deployment detection, and in-process
    they cost about a second a run."""
    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def start_temporary_server() -> None:
    """Start Prefect's temporary server now, when no PREFECT_API_URL is set, and track it.

    Prefect would start it on its first API call, as a plain child process stopped at
    interpreter exit: a neuroerp-ci killed with SIGKILL (or SIGTERM before this release)
    left it running for good, ~190 MB each. Started here, its process is handed to the
    watchdog (:mod:`neuroerp_ci.support.tooling`) the moment it exists. The instance is the one
    Prefect's clients use (Prefect keeps one per port), so nothing else changes.
    """
    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    class TrackedServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            proc = super()._run_uvicorn_command()
            track_process(proc)
            return proc

        def stop(self) -> None:
            proc = self.server_process
            super().stop()
            if proc is not None:
                release_process(proc)

    server = TrackedServer()
    server.start()
    if not isinstance(server, TrackedServer) and server.server_process is not None:
        track_process(server.server_process)  # Prefect had started it already


def set_observer(observer: RunObserver | None) -> None:
    """Progress callbacks for in-process runs (the CLI); deployments run without one."""
    global _observer
    _observer = observer or NullObserver()


@task(name="check", task_run_name="{check_id}", cache_policy=NO_CACHE, persist_result=False)
def run_check(check_id: str, job: CheckJob, deps: list[CheckResult]) -> CheckResult:
    return job(deps)


class PrefectExecutor:
    """Submits each check as a Prefect task; ``after`` becomes ``wait_for``."""

    def submit(
        self,
        check: Check,
        job: CheckJob,
        deps: Sequence[PrefectFuture[CheckResult]],
        after: Sequence[PrefectFuture[CheckResult]],
    ) -> PrefectFuture[CheckResult]:
        future: PrefectFuture[CheckResult] = run_check.submit(
            check.id, job, list(deps), wait_for=list(after)  # type: ignore[call-overload]
        )
        return future

    def result(self, handle: PrefectFuture[CheckResult]) -> CheckResult:
        return handle.result()


# --- stage-gate ------------------------------------------------------------------------------


@flow(
    name="stage-gate",
    flow_run_name="{stage}-{version}",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENT_CHECKS),  # type: ignore[arg-type]
    validate_parameters=True,
)
def stage_gate(
    stage: str = "development",
    config: str = "neuroerp-ci.toml",
    version: str = "unversioned",
    output_dir: str | None = None,
    advisories: str | None = None,
    run_id: str | None = None,
) -> State[Any]:
    """Run one stage's quality gate and end in a state that carries its verdict.

    Args:
        stage: The stage of the pipeline file to run (development, staging, ...).
        config: Path of the pipeline file (relative to the worker's working directory).
        version: The version under test (a git SHA): promotion rules and history use it.
        output_dir: Where the reports go (default: .neuroerp-ci/runs/<run id> in the project).
        advisories: Offline OSV advisory mirror folder(s) for pip-audit checks, several
            joined with os.pathsep.
        run_id: Run id for the reports and history (default: a new one).
    """
    install_log_redaction()  # run logs go to Prefect's database: never with a secret
    try:
        pipeline = load_pipeline(config)
        wanted = _version(pipeline, version)
        spec = pipeline.stage(stage)  # the one look-up of this run: the flow is given a name
        options = _options(pipeline, spec, wanted.id, output_dir, advisories, run_id)
        with _history(pipeline) as store:
            decision = check_promotion(pipeline, spec, wanted.id, store)
            if decision.allowed:
                with pipeline_for_version(pipeline, wanted) as tested:
                    options = replace(options, identity=identity(wanted, pipeline, tested))
                    outcome = run_stage(tested, options, PrefectExecutor(), _observer, store=store)
            else:
                outcome = _refuse(pipeline, options, decision, store)
    except NeuroErpCiError as exc:
        return _could_not_run(stage, exc)
    publish_artifacts(outcome.report)
    _notify(pipeline, outcome.report)
    return final_state(outcome.report, str(outcome.output_dir))


def _could_not_run(stage: str, exc: NeuroErpCiError) -> State[Any]:
    """Failed, saying why nothing ran (a bad pipeline file, an unknown stage or version)."""
    return Failed(message=redact(summary_line(Summary(stage, Verdict.FAIL, (str(exc),)))))


def _version(pipeline: Pipeline, version: str) -> Version:
    """The version named, resolved to its full form; the checkout's HEAD when none is named
    (a Quick run from the UI), never a silent "unversioned" for a git checkout."""
    named = None if version.strip() in ("", UNVERSIONED) else version
    return resolve_version(pipeline.project_dir, named)


def _options(
    pipeline: Pipeline,
    stage: Stage,
    version: str,
    output_dir: str | None,
    advisories: str | None,
    run_id: str | None,
) -> RunOptions:
    the_id = run_id or new_run_id()
    return RunOptions(
        stage=stage.name,
        version=version,
        output_dir=(
            Path(output_dir) if output_dir else default_output_dir(pipeline.project_dir, the_id)
        ),
        run_id=the_id,
        advisories=split_mirrors(advisories),
        load_secret=_load_secret,
    )


@contextmanager
def _history(pipeline: Pipeline) -> Iterator[HistoryStore]:
    """The pipeline's history store (default: SQLite in the project), open for one run."""
    with open_store(store_url(pipeline.store_url, pipeline.project_dir)) as store:
        yield store


def _refuse(
    pipeline: Pipeline,
    options: RunOptions,
    decision: PromotionDecision,
    store: HistoryStore,
) -> StageOutcome:
    """A refused stage: a FAIL report with the reason, written and recorded; nothing ran."""
    report = refusal_report(decision, pipeline.target.name, options.run_id)
    out_dir = options.output_dir or default_output_dir(pipeline.project_dir, options.run_id)
    report, files = write_and_record(report, out_dir, store)
    return StageOutcome(report, out_dir, files)


def publish_artifacts(report: StageReport) -> None:
    key = artifact_key(f"neuroerp-ci-{report.stage}")
    report = redact_data(report)  # artifacts are kept in Prefect's database
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=redact(markdown_summary(report)),
        description=summary_line(report.summary),
    )
    create_table_artifact(
        key=f"{key}-outcomes",
        table=redact_data(outcome_rows(report)),
        description=f"{report.stage} gate outcomes",
    )


def final_state(report: StageReport, report_dir: str, message: str | None = None) -> State[Any]:
    """Completed, Completed("CompletedWithWarnings") or Failed, with the summary as message.

    A run the history store refused is Failed whatever its verdict, and its summary (which
    says so first) is the message: a verdict that was not recorded is no verdict.
    """
    line = summary_line(report.summary)
    message = redact(line if report.recorded is False else message or line)
    if report.verdict is Verdict.FAIL or report.recorded is False:
        # No data: Prefect raises FailedRun(data or message), and the worker's log should end
        # with the verdict, not a folder name.
        return Failed(message=message)
    if report.verdict is Verdict.WARN:
        return Completed(name="CompletedWithWarnings", message=message, data=report_dir)
    return Completed(message=message, data=report_dir)


def artifact_key(text: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def _notify(pipeline: Pipeline, report: StageReport, rollout: RolloutReport | None = None) -> None:
    """Metrics file / Pushgateway / webhook as configured; problems are logged, not raised."""
    logger = get_run_logger()
    for note in notify_outcome(pipeline, report, rollout=rollout, load_secret=_load_secret):
        (logger.info if note.ok else logger.warning)("%s", note.text)


def _load_secret(name: str) -> str:
    from prefect.blocks.system import Secret

    value = Secret.load(name).get()  # type: ignore[union-attr]
    return value if isinstance(value, str) else str(value)


# --- rollout ---------------------------------------------------------------------------------


class ApprovalInput(RunInput):
    """The approval form of a paused rollout (rendered by the Prefect UI)."""

    approve: bool = Field(default=False, description="Tick to deploy; leave unticked to reject.")
    approver: str = Field(min_length=1, max_length=100, description="Who decides.")
    comment: str = Field(default="", max_length=2000, description="Why (kept with the run).")


def prefect_approval(poll_interval_s: int = APPROVAL_POLL_S) -> Approver:
    """Ask through Prefect: pause the current flow run until the form is submitted."""

    def approve(request: ApprovalRequest) -> Approval:
        form = ApprovalInput.with_initial_data(description=request.description, approve=False)
        try:
            answer = pause_flow_run(
                wait_for_input=form,
                timeout=request.timeout_s,
                poll_interval=poll_interval_s,
                key="approval",
            )
        except FlowPauseTimeout:
            return Approval(False, timed_out=True)
        return Approval(answer.approve, answer.approver, answer.comment)

    return approve


@task(name="hook", task_run_name="{name}", cache_policy=NO_CACHE, persist_result=False)
def run_hook(name: str, runner: HookRunner, spec: HookSpec) -> StepResult:
    return runner.run(name, spec)


class TaskHooks:
    """Each hook call is a Prefect task (visible in the UI); retries stay in the runner."""

    def __init__(self, runner: HookRunner) -> None:
        self._runner = runner

    def run(self, name: str, spec: HookSpec) -> StepResult:
        result: StepResult = run_hook(name, self._runner, spec)
        return result


@flow(
    name="rollout",
    flow_run_name="{stage}-{version}",
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENT_CHECKS),  # type: ignore[arg-type]
    validate_parameters=True,
)
def rollout(
    version: str,
    config: str = "neuroerp-ci.toml",
    stage: str = "production",
    output_dir: str | None = None,
    advisories: str | None = None,
    run_id: str | None = None,
    approval_poll_s: int = APPROVAL_POLL_S,
) -> State[Any]:
    """Roll a version out: approval, backup, deploy, validation, rollback on any FAIL.

    Args:
        version: The version to deploy (a git SHA); it must have passed the required stage.
        config: Path of the pipeline file (relative to the worker's working directory).
        stage: The stage with approval and hooks in the pipeline file.
        output_dir: Where the reports go (default: .neuroerp-ci/runs/<run id> in the project).
        advisories: Offline OSV advisory mirror folder(s) for pip-audit checks, several
            joined with os.pathsep.
        run_id: Run id for the reports and history (default: a new one).
        approval_poll_s: How often the paused run looks for the approval form's answer.
    """
    install_log_redaction()
    try:
        pipeline = load_pipeline(config)
        wanted = _version(pipeline, version)
        spec = pipeline.stage(stage)  # the one look-up of this run: the flow is given a name
        options = _options(pipeline, spec, wanted.id, output_dir, advisories, run_id)
        with _history(pipeline) as store:
            decision = check_promotion(pipeline, spec, wanted.id, store, as_rollout=True)
            if not decision.allowed:
                refused = _refuse(pipeline, options, decision, store)
                publish_artifacts(refused.report)
                _notify(pipeline, refused.report)
                return final_state(refused.report, str(refused.output_dir))
            with pipeline_for_version(pipeline, wanted) as tested:
                options = replace(options, identity=identity(wanted, pipeline, tested))
                report, stage_report = _roll_out(tested, spec, options, store, approval_poll_s)
    except NeuroErpCiError as exc:
        return _could_not_run(stage, exc)
    publish_rollout_artifacts(report)
    _notify(pipeline, stage_report, report)
    line = summary_line(report.summary)
    if report.verdict is Verdict.FAIL:
        # Also in the run's log: after an expired pause Prefect replaces the final state's
        # message with its own ("The flow was paused and never resumed.").
        get_run_logger().error("%s", line)
    # The rollout's verdict decides (a PASS validation can still end in a failed switch).
    state_report = replace(stage_report, verdict=report.verdict)
    return final_state(state_report, str(options.output_dir), message=line)


def _roll_out(
    pipeline: Pipeline, stage: Stage, options: RunOptions, store: HistoryStore, poll_s: int
) -> tuple[RolloutReport, StageReport]:
    out_dir = options.output_dir or default_output_dir(pipeline.project_dir, options.run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The hooks get only what they reference; the validation collects its own.
    secrets = collect_secrets(pipeline, env, _load_secret, stage=stage.name, target=False)
    ctx = HookContext(
        project_dir=pipeline.project_dir,
        python=_python(pipeline),
        stage=stage.name,
        version=options.version,
        run_id=options.run_id,
        log_dir=out_dir / "hooks",
        env=secrets.child_env(env),
        allowed_hosts=tuple(pipeline.target.allowed_hosts),
        secrets=secrets.values,
    )
    with guarded_client(pipeline.target.allowed_hosts) as client:

        def validate() -> StageReport:
            return run_stage(pipeline, options, PrefectExecutor(), _observer, store=store).report

        report = run_rollout(
            pipeline,
            stage,
            options.version,
            options.run_id,
            approve=prefect_approval(poll_s),
            validate=validate,
            hooks=TaskHooks(HookRunner(ctx, client)),
            canary=lambda spec: compare_canary(spec, client, pipeline.target.allowed_hosts),
            lock=RolloutLock(
                store.rollout_locks(),
                stage.lock or LockSpec(),
                stage.name,
                pipeline.target.name,
                options.run_id,
                _flow_run_label(),
            ),
        )
    report = redact_data(report)  # hook reasons quote the hooks' output
    stage_report = report.validation
    if stage_report is None:  # stopped before validation: record why, as a FAIL run
        stage_report, _files = write_and_record(rollout_stage_report(report), out_dir, store)
    write_atomically(out_dir / "rollout.json", render_rollout_json(report))  # redacts
    write_atomically(out_dir / "rollout.md", render_rollout_markdown(report))
    return report, stage_report


def _flow_run_label() -> str:
    """'flow run <name> <id>': how a person finds the rollout that holds a lock."""
    from prefect.runtime import flow_run

    return f"flow run {flow_run.name} {flow_run.id}" if flow_run.id else ""


def _python(pipeline: Pipeline) -> str:
    return pipeline_interpreter(pipeline).path


def publish_rollout_artifacts(report: RolloutReport) -> None:
    key = artifact_key(f"neuroerp-ci-{report.stage}-rollout")
    report = redact_data(report)
    create_markdown_artifact(
        key=key,
        markdown=redact(render_rollout_markdown(report)),
        description=summary_line(report.summary),
    )
    if report.validation is not None:
        publish_artifacts(report.validation)


# --- release ---------------------------------------------------------------------------------


def release_chain(pipeline: Pipeline, stages: Sequence[str] | None = None) -> list[Stage]:
    """The stages a release runs, in order.

    Given ``stages``: those (each must exist). Otherwise the longest ``requires`` chain in
    the pipeline file, e.g. development → staging → production.
    """
    if stages:
        return [pipeline.stage(name) for name in stages]
    best: list[str] = []
    for name in pipeline.stages:
        chain = [name]
        while (before := pipeline.stages[chain[0]].requires) is not None and before not in chain:
            chain.insert(0, before)
        if len(chain) > len(best):
            best = chain
    return [pipeline.stages[name] for name in best]


@flow(name="release", flow_run_name="release-{version}", validate_parameters=True)
def release(
    version: str,
    config: str = "neuroerp-ci.toml",
    stages: list[str] | None = None,
    output_dir: str | None = None,
    advisories: str | None = None,
    approval_poll_s: int = APPROVAL_POLL_S,
) -> State[Any]:
    """Run the release chain for one version as subflows; stop at the first FAIL.

    Args:
        version: The version to release (a git SHA).
        config: Path of the pipeline file (relative to the worker's working directory).
        stages: The stages in order (default: the pipeline's requires chain, e.g.
            development, staging, production).
        output_dir: A folder for the reports; each stage writes into a subfolder.
        advisories: Offline OSV advisory mirror folder(s) for pip-audit checks, several
            joined with os.pathsep.
        approval_poll_s: How often a paused rollout looks for the approval form's answer.
    """
    try:
        pipeline = load_pipeline(config)
        chain = release_chain(pipeline, stages)
        version = _version(pipeline, version).id  # one identity for every stage of it
    except NeuroErpCiError as exc:
        return Failed(message=f"release {version}: FAIL — {exc}")
    if not chain:
        return Failed(message=f"release {version}: FAIL — no stages to run")
    done: list[str] = []
    for stage in chain:
        name = stage.name  # each subflow is a flow run of its own: it is given the name
        sub_dir = str(Path(output_dir) / name) if output_dir else None
        state: State[Any]
        if is_rollout_stage(stage):
            state = rollout(
                version=version,
                config=config,
                stage=name,
                output_dir=sub_dir,
                advisories=advisories,
                approval_poll_s=approval_poll_s,
                return_state=True,
            )
        else:
            state = stage_gate(
                stage=name,
                config=config,
                version=version,
                output_dir=sub_dir,
                advisories=advisories,
                return_state=True,
            )
        if not state.is_completed():
            return Failed(message=f"release {version}: FAIL at {name} — {state.message}")
        done.append(f"{name} {'WARN' if state.name == 'CompletedWithWarnings' else 'PASS'}")
    warned = any(d.endswith("WARN") for d in done)
    text = f"release {version}: {'WARN' if warned else 'PASS'} — " + ", ".join(done)
    if warned:
        return Completed(name="CompletedWithWarnings", message=text)
    return Completed(message=text)
