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

Every flow writes its artifacts under stable keys (each check's task run its own, a progress
bar while a check of known duration runs, a link to ``report.html``), notifies
(:mod:`neuroerp_ci.release.notifications`), then
ends Completed (PASS), Completed named ``CompletedWithWarnings`` (WARN) or Failed (FAIL) with
the verdict summary as its message, so ``prefect deployment run ... --watch`` exits non-zero
on FAIL. A FAIL or a refusal is an expected end: the run's log says it in one line, with no
traceback of Prefect's.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import FailedRun, FlowPauseTimeout
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
from neuroerp_ci.checks.load import LoadSettings
from neuroerp_ci.config import Pipeline, Stage, load_pipeline
from neuroerp_ci.config.secret_refs import collect_secrets
from neuroerp_ci.config.stage_rules import HookSpec, LockSpec
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckResult, StageReport, Summary, Verdict, summary_line
from neuroerp_ci.release.gate import gate_stage, history, refuse, requested_version, run_options
from neuroerp_ci.release.notifications import notify_outcome
from neuroerp_ci.release.promotion import check_promotion
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
from neuroerp_ci.reports.markdown import check_markdown, markdown_summary, outcome_table
from neuroerp_ci.reports.writer import default_output_dir, write_atomically
from neuroerp_ci.run.checkout import identity, pipeline_for_version
from neuroerp_ci.run.runner import (
    MAX_CONCURRENT_CHECKS,
    CheckJob,
    NullObserver,
    RunObserver,
    RunOptions,
    pipeline_interpreter,
    run_stage,
    write_and_record,
)
from neuroerp_ci.store import HistoryStore
from neuroerp_ci.support.hosts import guarded_client
from neuroerp_ci.support.secrets import (
    install_log_redaction,
    redact,
    redact_data,
)
from neuroerp_ci.support.tooling import release_process, track_process

APPROVAL_POLL_S = 5
PROGRESS_EVERY_S = 3.0  # how often a running check's progress artifact moves
_observer: RunObserver = NullObserver()
# The messages of the Failed states our flows returned in this process (see _ExpectedFailure).
_failed_messages: set[str] = set()
RunLogger = logging.Logger | logging.LoggerAdapter[Any]
T = TypeVar("T")


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
            with _output_to(temporary_server_log()):
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


def temporary_server_log() -> Path:
    """Where the temporary server's own output goes: ``PREFECT_HOME/temporary-server.log``."""
    return Path(get_current_settings().home) / "temporary-server.log"


@contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """File descriptors 1 and 2 on ``log`` while a child is started: the server inherits
    them, so its shutdown noise (tracebacks of cancelled database connections) lands in
    ``log``, not in the console or stderr of the run that started it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # what we wrote before stays ours
    saved = [os.dup(1), os.dup(2)]
    try:
        with log.open("ab") as handle:
            for fd in (1, 2):
                os.dup2(handle.fileno(), fd)
            yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def set_observer(observer: RunObserver | None) -> None:
    """Progress callbacks for in-process runs (the CLI); deployments run without one."""
    global _observer
    _observer = observer or NullObserver()


@task(name="check", task_run_name="{check_id}", cache_policy=NO_CACHE, persist_result=False)
def run_check(
    check_id: str,
    job: CheckJob,
    deps: list[CheckResult],
    stage: str = "",
    expected_s: float | None = None,
) -> CheckResult | State[Any]:
    """One check as a task run: a progress artifact while it runs (when its duration is
    known), then its own artifact (:func:`check_markdown`) on the task run's page. A check
    skipped as unchanged ends ``Cached``, as Prefect names a task run its cache answered."""
    key = artifact_key("-".join(part for part in ("neuroerp-ci", stage, check_id) if part))
    logger = get_run_logger()
    with _progress(f"{key}-progress", check_id, expected_s, logger):
        result = job(deps)
    shown = redact_data(result)  # artifacts are kept in Prefect's database
    _best_effort(
        logger,
        f"{check_id}: artifact",
        lambda: create_markdown_artifact(
            key=f"{key}-check",
            markdown=redact(check_markdown(shown)),
            description=redact(f"{check_id}: {shown.status.value} — {shown.reason}"[:500]),
        ),
    )
    if result.cached_from is not None:
        return Completed(name="Cached", message=result.cache_note, data=result)
    return result


def expected_duration_s(check: Check) -> float | None:
    """How long a check should run: a load test's planned run time (warm-up included), else
    the check's ``estimate``; None when unknown."""
    if isinstance(check.settings, LoadSettings):
        return check.settings.planned_s
    return check.estimate_s


@contextmanager
def _progress(
    key: str, check_id: str, expected_s: float | None, logger: RunLogger
) -> Iterator[None]:
    """A progress artifact of the current task run, moved by elapsed / expected time every
    :data:`PROGRESS_EVERY_S` from a thread of its own (never past 99 % until the check
    returns, then 100 %). Artifact API errors are logged as warnings, never raised."""
    if not expected_s:
        yield
        return
    text = f"{check_id}: time elapsed of about {expected_s:g} s expected"
    made = _best_effort(
        logger,
        f"{check_id}: progress artifact",
        lambda: create_progress_artifact(0.0, key=key, description=text),
    )
    if not isinstance(made, UUID):  # not written (a coroutine only in async code)
        yield
        return
    started = time.monotonic()
    done = threading.Event()

    def move(percent: float) -> object | None:
        return _best_effort(
            logger,
            f"{check_id}: progress artifact",
            lambda: update_progress_artifact(made, round(percent, 1)),
        )

    def tick() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            elapsed = time.monotonic() - started
            if move(min(99.0, 100.0 * elapsed / expected_s)) is None:
                return  # the API refused once: stop asking

    # The copied context holds the run's settings (the API URL of a temporary server).
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(tick,), name=f"progress-{key}", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        move(100.0)


def _best_effort(logger: RunLogger, what: str, make: Callable[[], T]) -> T | None:
    """``make()``, or None with a warning: an artifact is there for people to read, it never
    decides a check."""
    try:
        return make()
    except Exception as exc:  # any API or validation error of Prefect's
        logger.warning("%s not written: %s", what, redact(str(exc))[:300])
        return None


class PrefectExecutor:
    """Submits each check as a Prefect task; ``after`` becomes ``wait_for``."""

    def __init__(self, stage: str = "") -> None:
        self._stage = stage  # part of each check's artifact key

    def submit(
        self,
        check: Check,
        job: CheckJob,
        deps: Sequence[PrefectFuture[CheckResult]],
        after: Sequence[PrefectFuture[CheckResult]],
    ) -> PrefectFuture[CheckResult]:
        future: PrefectFuture[CheckResult] = run_check.submit(
            check.id,
            job,
            list(deps),
            stage=self._stage,
            expected_s=expected_duration_s(check),
            wait_for=list(after),
        )  # type: ignore[call-overload]
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
    use_cache: bool = True,
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
        use_cache: Skip a test suite or scanner none of whose inputs changed since a
            passing run, and judge that run's result; false runs every check.
    """
    install_log_redaction()  # run logs go to Prefect's database: never with a secret
    quiet_expected_failures()
    try:
        pipeline = load_pipeline(config)
        wanted = requested_version(pipeline, version)
        spec = pipeline.stage(stage)  # the one look-up of this run: the flow is given a name
        options = run_options(
            pipeline, spec, wanted.id, output_dir, advisories, run_id, load_secret, use_cache
        )
        with history(pipeline) as store:
            executor = PrefectExecutor(spec.name)
            outcome = gate_stage(pipeline, spec, wanted, options, executor, _observer, store)
    except NeuroErpCiError as exc:
        return _could_not_run(stage, exc)
    publish_artifacts(outcome.report, outcome.output_dir)
    _notify(pipeline, outcome.report)
    return final_state(outcome.report, str(outcome.output_dir))


def _could_not_run(stage: str, exc: NeuroErpCiError) -> State[Any]:
    """Failed, saying why nothing ran (a bad pipeline file, an unknown stage or version)."""
    return failed(redact(summary_line(Summary(stage, Verdict.FAIL, (str(exc),)))))


def failed(message: str) -> State[Any]:
    """``Failed(message=...)``: a verdict, not an error. Run from a deployment, Prefect's
    engine then raises ``FailedRun(message)`` and logs it with a 40-line traceback of its
    own (to the run's log and the worker's); :class:`_ExpectedFailure` drops exactly that
    record, the log's ``Finished in state Failed('<message>')`` line says it all."""
    _failed_messages.add(message)
    return Failed(message=message)


class _ExpectedFailure(logging.Filter):
    """Drops the records of a ``FailedRun`` whose message is one our flows ended with."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, FailedRun) and str(exc) in _failed_messages)


def quiet_expected_failures() -> None:
    """Keep Prefect's traceback of an expected Failed end out of the logs (once a process):
    ``prefect.flow_runs`` is the run's log (sent to the API), ``prefect.engine`` the
    worker's console."""
    for name in ("prefect.flow_runs", "prefect.engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ExpectedFailure) for f in logger.filters):
            logger.addFilter(_ExpectedFailure())


def publish_artifacts(report: StageReport, report_dir: Path | None = None) -> None:
    """The flow run's artifacts: the summary (``report.md`` with status words), the outcomes
    table (cells escaped) and, given the run folder, a link to its ``report.html``."""
    key = artifact_key(f"neuroerp-ci-{report.stage}")
    report = redact_data(report)  # artifacts are kept in Prefect's database
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=redact(markdown_summary(report)),
        description=summary_line(report.summary),
    )
    create_table_artifact(
        key=f"{key}-outcomes",
        table=redact_data(outcome_table(report)),
        description=f"{report.stage} gate outcomes",
    )
    if report_dir is not None:  # a file on the machine that ran the flow (the worker's)
        page = report_dir.resolve() / "report.html"
        create_link_artifact(
            key=f"{key}-report",
            link=redact(page.as_uri()),
            link_text="report.html",
            description=redact(f"{report.stage} report on the machine that ran it: {page}"),
        )


def final_state(report: StageReport, report_dir: str, message: str | None = None) -> State[Any]:
    """Completed, Completed("CompletedWithWarnings") or Failed, with the summary as message.

    A run the history store refused is Failed whatever its verdict, and its summary (which
    says so first) is the message: a verdict that was not recorded is no verdict.
    """
    line = summary_line(report.summary)
    message = redact(line if report.recorded is False else message or line)
    if report.verdict is Verdict.FAIL or report.recorded is False:
        # No data: Prefect raises FailedRun(data or message); see failed().
        return failed(message)
    if report.verdict is Verdict.WARN:
        return Completed(name="CompletedWithWarnings", message=message, data=report_dir)
    return Completed(message=message, data=report_dir)


def artifact_key(text: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def _notify(pipeline: Pipeline, report: StageReport, rollout: RolloutReport | None = None) -> None:
    """Metrics file / Pushgateway / webhook as configured; problems are logged, not raised."""
    logger = get_run_logger()
    for note in notify_outcome(pipeline, report, rollout=rollout, load_secret=load_secret):
        (logger.info if note.ok else logger.warning)("%s", note.text)


def load_secret(name: str) -> str:
    """A Prefect Secret block's value (through the configured or temporary server)."""
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
    quiet_expected_failures()
    try:
        pipeline = load_pipeline(config)
        wanted = requested_version(pipeline, version)
        spec = pipeline.stage(stage)  # the one look-up of this run: the flow is given a name
        options = run_options(
            pipeline, spec, wanted.id, output_dir, advisories, run_id, load_secret
        )
        with history(pipeline) as store:
            decision = check_promotion(pipeline, spec, wanted.id, store, as_rollout=True)
            if not decision.allowed:
                refused = refuse(pipeline, options, decision, store)
                publish_artifacts(refused.report, refused.output_dir)
                _notify(pipeline, refused.report)
                return final_state(refused.report, str(refused.output_dir))
            with pipeline_for_version(pipeline, wanted) as tested:
                options = replace(options, identity=identity(wanted, pipeline, tested))
                report, stage_report = _roll_out(tested, spec, options, store, approval_poll_s)
    except NeuroErpCiError as exc:
        return _could_not_run(stage, exc)
    publish_rollout_artifacts(report, options.output_dir)
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
    secrets = collect_secrets(pipeline, env, load_secret, stage=stage.name, target=False)
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
            executor = PrefectExecutor(stage.name)
            return run_stage(pipeline, options, executor, _observer, store=store).report

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


def publish_rollout_artifacts(report: RolloutReport, report_dir: Path | None = None) -> None:
    key = artifact_key(f"neuroerp-ci-{report.stage}-rollout")
    report = redact_data(report)
    create_markdown_artifact(
        key=key,
        markdown=redact(render_rollout_markdown(report)),
        description=summary_line(report.summary),
    )
    if report.validation is not None:
        publish_artifacts(report.validation, report_dir)


# --- the deployment form's stage choices -----------------------------------------------------

# The parameter of each flow that names stages, and which stages it may name.
STAGE_PARAMETERS = {"stage-gate": "stage", "rollout": "stage", "release": "stages"}


def stage_choices(pipeline: Pipeline, flow_name: str) -> list[str]:
    """The stages a deployment form of ``flow_name`` offers: the plain gates for stage-gate,
    the rollout stages for rollout, every stage for release; file order."""
    if flow_name == "release":
        return list(pipeline.stages)
    rollout_wanted = flow_name == "rollout"
    return [n for n, s in pipeline.stages.items() if is_rollout_stage(s) is rollout_wanted]


def with_stage_choices(
    schema: dict[str, Any], parameter: str, choices: Sequence[str]
) -> dict[str, Any]:
    """A copy of a deployment's parameter schema in which ``parameter`` is one of
    ``choices``: an ``enum`` on a string (the UI shows a select), ``items.enum`` on a list
    of strings (release's ``stages``). A default that is no choice is dropped; the
    deployment's own parameter value still applies."""
    new: dict[str, Any] = json.loads(json.dumps(schema))  # a deep copy of plain JSON
    field = new.get("properties", {}).get(parameter)
    if field is None:
        raise KeyError(f"no parameter {parameter!r} in the schema")
    for variant in [field, *field.get("anyOf", [])]:
        if variant.get("type") == "string":
            variant["enum"] = list(choices)
        elif variant.get("type") == "array":
            variant.setdefault("items", {"type": "string"})["enum"] = list(choices)
    default = field.get("default")
    chosen = [default] if isinstance(default, str) else default
    if isinstance(chosen, list) and not set(chosen) <= set(choices):
        del field["default"]
    return new


def offer_stage_choices(base: Path | None = None) -> list[str]:
    """On the server of ``PREFECT_API_URL``: each deployment of stage-gate, rollout and
    release offers the stages of its pipeline file (its ``config`` parameter, relative to
    ``base``, the checkout that ran ``prefect deploy``) as a choice in its run form; with
    the schema enforced (Prefect's default), a run naming another stage is refused before it
    starts. One line per deployment: what it offers, or why it was left as it was.

    ``prefect deploy`` writes the schema from the flow's signature each time (``prefect.yaml``
    cannot set it), so this runs after every ``prefect deploy``.
    """
    from prefect import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    where = base or Path.cwd()
    ours = FlowFilter(name=FlowFilterName(any_=[*STAGE_PARAMETERS]))
    with get_client(sync_client=True) as client:
        names = {f.id: f.name for f in client.read_flows(flow_filter=ours)}
        said = []
        for deployment in client.read_deployments(flow_filter=ours):
            flow_name = names[deployment.flow_id]
            label = f"{flow_name}/{deployment.name}"
            try:
                schema, choices = _schema_with_choices(deployment, flow_name, where)
            except (NeuroErpCiError, ValueError) as exc:
                said.append(f"{label}: left as it was: {exc}")
                continue
            client.update_deployment(
                deployment.id, DeploymentUpdate(parameter_openapi_schema=schema)
            )
            said.append(f"{label}: {STAGE_PARAMETERS[flow_name]} is one of {', '.join(choices)}")
    return said


def _schema_with_choices(
    deployment: DeploymentResponse, flow_name: str, where: Path
) -> tuple[dict[str, Any], list[str]]:
    """The deployment's parameter schema with its pipeline file's stages as the choices, and
    the choices; ValueError when its own parameter value is no such stage."""
    parameter = STAGE_PARAMETERS[flow_name]
    schema: dict[str, Any] = deployment.parameter_openapi_schema or {}
    config = deployment.parameters.get("config") or (
        schema.get("properties", {}).get("config", {}).get("default", "")
    )
    pipeline = load_pipeline(where / str(config))
    choices = stage_choices(pipeline, flow_name)
    value = deployment.parameters.get(parameter)
    unknown = [v for v in ([value] if isinstance(value, str) else value or []) if v not in choices]
    if not choices or unknown:
        raise ValueError(f"{unknown or 'no stage'} not among {choices} of {pipeline.path}")
    return with_stage_choices(schema, parameter, choices), choices


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
    quiet_expected_failures()
    try:
        pipeline = load_pipeline(config)
        chain = release_chain(pipeline, stages)
        version = requested_version(pipeline, version).id  # one identity for every stage of it
    except NeuroErpCiError as exc:
        return failed(f"release {version}: FAIL — {exc}")
    if not chain:
        return failed(f"release {version}: FAIL — no stages to run")
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
            return failed(f"release {version}: FAIL at {name} — {state.message}")
        done.append(f"{name} {'WARN' if state.name == 'CompletedWithWarnings' else 'PASS'}")
    warned = any(d.endswith("WARN") for d in done)
    text = f"release {version}: {'WARN' if warned else 'PASS'} — " + ", ".join(done)
    if warned:
        return Completed(name="CompletedWithWarnings", message=text)
    return Completed(message=text)
