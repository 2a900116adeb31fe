"""Running a stage from the command line (``run``, ``promote``, ``demo``), and a rollout.

Where it runs: with a Prefect server configured (``PREFECT_API_URL``, read without importing
Prefect, :mod:`neuroerp_ci.support.prefect_config`) or ``--prefect``, as the ``stage-gate``
flow, visible in the server's UI; otherwise right here with the Prefect-free thread pool, so
a run pays for its checks and not for a temporary Prefect server. Both paths call
:func:`neuroerp_ci.release.gate.gate_stage`: same checks, records, reports and exit codes.

Before anything heavy starts, on either path: secrets and mirrors are checked, the store is
opened, the version resolved and the promotion rule decided; a refusal is written, recorded
and printed at once.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from neuroerp_ci.cli.consoles import err, out
from neuroerp_ci.cli.exit_codes import ExitCode, for_verdict
from neuroerp_ci.cli.report_command import read_run_report
from neuroerp_ci.cli.store_access import open_history
from neuroerp_ci.config import Pipeline, Stage
from neuroerp_ci.errors import OrchestrationError, UsageError
from neuroerp_ci.model import CheckResult, Verdict, summary_line
from neuroerp_ci.support.prefect_config import configured_api_url
from neuroerp_ci.support.secrets import redact

if TYPE_CHECKING:
    from neuroerp_ci.model import StageReport
    from neuroerp_ci.project.versioning import Version
    from neuroerp_ci.run.runner import RunOptions, StageOutcome
    from neuroerp_ci.store import HistoryStore

PREFECT_ENV = "NEUROERP_CI_PREFECT"
PrefectOpt = Annotated[
    bool | None,
    typer.Option(
        "--prefect/--no-prefect",
        envvar=PREFECT_ENV,
        show_default=False,
        help="Run the stage as a Prefect flow (default: when a Prefect server is configured, "
        "PREFECT_API_URL; without one --prefect starts a temporary server). --no-prefect runs "
        f"it here without Prefect even then. Also {PREFECT_ENV}=1/0.",
    ),
]


NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Run every check, also a test suite or scanner none of whose inputs changed "
        "since a passing run (by default such a check is skipped and that run's result judged).",
    ),
]


def with_prefect(asked: bool | None) -> bool:
    """Prefect when asked for, else when a server is configured where Prefect looks."""
    return asked if asked is not None else configured_api_url(os.environ, Path.cwd()) is not None


def joined(advisories: list[Path] | None) -> str | None:
    """``--advisories`` folders as the flows' one string parameter (``os.pathsep``)."""
    return os.pathsep.join(str(a) for a in advisories) if advisories else None


def run_stage_command(
    pipeline: Pipeline,
    stage: Stage,
    output: Path | None,
    version: str | None,
    advisories: list[Path] | None,
    prefect: bool | None,
    no_cache: bool = False,
) -> int:
    """Run ``stage`` for ``version`` (default: the checkout's HEAD); the exit code."""
    from neuroerp_ci.checks.advisories import mirror_problem
    from neuroerp_ci.release.gate import refuse, requested_version, run_options
    from neuroerp_ci.release.promotion import check_promotion
    from neuroerp_ci.reports.writer import default_output_dir, new_run_id
    from neuroerp_ci.run.runner import stage_secrets

    stage_secrets(pipeline, stage.name, os.environ, resolve_blocks=False)  # unset {env:..}: exit 2
    for folder in advisories or []:
        problem = mirror_problem(folder)
        if problem is not None:
            raise UsageError(f"--advisories {folder}: {problem}")
    run_id = new_run_id()
    out_dir = (output or default_output_dir(pipeline.project_dir, run_id)).resolve()
    named = version
    wanted = requested_version(pipeline, named)  # a name that is no commit: exit 2 now
    mirrors = joined(advisories)
    options = run_options(
        pipeline, stage, wanted.id, out_dir, mirrors, run_id, _secret_block, not no_cache
    )
    said = f" of {pipeline.path} for version {wanted.id}"
    # A bad store URL (exit 2) or a store that cannot be opened (exit 3) stops the run
    # here, in one line, before Prefect or any check starts.
    with open_history(pipeline) as store:
        decision = check_promotion(pipeline, stage, wanted.id, store)
        as_flow = decision.allowed and with_prefect(prefect)
        how = " (Prefect flow)" if as_flow else ""
        out.print(Text.assemble("Running stage ", (stage.name, "bold"), said, how))
        if not as_flow:
            if decision.allowed:
                outcome = _gate_here(pipeline, stage, wanted, options, store)
            else:
                outcome = refuse(pipeline, options, decision, store)
            _notify_here(pipeline, outcome.report)
            return conclude(outcome.report, outcome.output_dir)
    return _gate_as_flow(pipeline, stage, named, options, out_dir, mirrors)


def _gate_here(
    pipeline: Pipeline,
    stage: Stage,
    wanted: Version,
    options: RunOptions,
    store: HistoryStore,
) -> StageOutcome:
    """The stage in this process: the checks on a thread pool, live on the console."""
    from neuroerp_ci.cli.progress import ConsoleProgress
    from neuroerp_ci.release.gate import gate_stage
    from neuroerp_ci.run.runner import MAX_CONCURRENT_CHECKS, ThreadExecutor
    from neuroerp_ci.support.secrets import install_log_redaction

    install_log_redaction()
    checks = [pipeline.checks[c] for c in stage.checks]
    with (
        ConsoleProgress(out, checks) as progress,
        ThreadPoolExecutor(MAX_CONCURRENT_CHECKS, thread_name_prefix="check") as pool,
    ):
        executor: ThreadExecutor[Future[CheckResult]] = ThreadExecutor(pool)
        try:
            return gate_stage(pipeline, stage, wanted, options, executor, progress, store)
        finally:  # stopped (SIGINT, SIGTERM): checks not started yet never start
            pool.shutdown(wait=False, cancel_futures=True)


def _gate_as_flow(
    pipeline: Pipeline,
    stage: Stage,
    named: str | None,
    options: RunOptions,
    out_dir: Path,
    advisories: str | None,
) -> int:
    """The stage as the ``stage-gate`` flow (the configured or a temporary server)."""
    from neuroerp_ci.cli.progress import ConsoleProgress
    from neuroerp_ci.project.versioning import UNVERSIONED

    checks = [pipeline.checks[c] for c in stage.checks]
    with ConsoleProgress(out, checks) as progress:
        from neuroerp_ci.orchestration import (
            set_observer,
            stage_gate,
            start_temporary_server,
            without_heartbeats,
        )

        set_observer(progress)
        try:
            start_temporary_server()
            with without_heartbeats():
                state = stage_gate(
                    stage=stage.name,  # a flow run is given the name; it looks the stage up
                    config=str(pipeline.path),
                    version=named or UNVERSIONED,
                    output_dir=str(out_dir),
                    advisories=advisories,
                    run_id=options.run_id,
                    use_cache=options.use_cache,
                    return_state=True,
                )
        except Exception as exc:  # Prefect itself broke (e.g. its server did not start)
            raise OrchestrationError(f"Prefect could not run the flow: {exc}") from exc
        finally:
            set_observer(None)
    report = read_report(out_dir, options.run_id)
    if report is None:  # the flow stopped before a report: its message says why
        why = state.message or f"the stage ran but wrote no report in {out_dir}"
        err.print(f"neuroerp-ci: error: {redact(why)}", markup=False, soft_wrap=True)
        return ExitCode.INTERNAL
    ended = None if state.is_completed() else (state.name or state.type.value, state.message or "")
    return conclude(report, out_dir, flow_ended=ended)


def conclude(report: StageReport, out_dir: Path, flow_ended: tuple[str, str] | None = None) -> int:
    """Print the verdict and the reports' folder; the exit code. A run the store did not
    record, or a flow that broke after its verdict (``flow_ended``: its state's name and
    message), is exit 3."""
    if report.recorded is not True:
        err.print(
            f"neuroerp-ci: error: NOT RECORDED: run {report.run_id} is not in the history "
            f"store, so its {report.verdict.value} does not count: "
            + redact(report.record_error or "the store did not take it"),
            markup=False,
            soft_wrap=True,
        )
        out.print(f"Reports: {out_dir}", soft_wrap=True)
        return ExitCode.INTERNAL
    if flow_ended is not None and report.verdict is not Verdict.FAIL:
        # The flow broke after the verdict (artifacts, notifications): it and we agree.
        state, message = flow_ended
        err.print(
            f"neuroerp-ci: error: the flow ended {state} after a {report.verdict.value}"
            f" verdict: {redact(message)}",
            markup=False,
            soft_wrap=True,
        )
        out.print(f"Reports: {out_dir}", soft_wrap=True)
        return ExitCode.INTERNAL
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}[report.verdict.value]
    line = summary_line(report.summary)
    out.print(Text.assemble((report.verdict.value, f"bold {colour}"), f" {line}"), soft_wrap=True)
    out.print(f"Reports: {out_dir}", soft_wrap=True)
    return for_verdict(report.verdict)


def read_report(out_dir: Path, run_id: str) -> StageReport | None:
    """This run's report.json, or None: missing, unreadable, or left by another run (an
    --output folder used before must not lend its old verdict)."""
    try:
        report = read_run_report(out_dir)
    except UsageError:
        return None
    return report if report.run_id == run_id else None


def _notify_here(pipeline: Pipeline, report: StageReport) -> None:
    """Metrics file / Pushgateway / webhook, as the flow does; a problem is one warning."""
    from neuroerp_ci.release.notifications import notify_outcome

    for note in notify_outcome(pipeline, report, load_secret=_secret_block):
        if not note.ok:
            err.print(f"neuroerp-ci: warning: {redact(note.text)}", markup=False, soft_wrap=True)


def _secret_block(name: str) -> str:
    """A ``{secret:BLOCK}``'s value: only a run that references one pays for Prefect (and,
    with no server configured, its temporary server)."""
    from neuroerp_ci.orchestration import load_secret, start_temporary_server

    start_temporary_server()
    return load_secret(name)


def run_rollout_command(
    pipeline: Pipeline,
    stage: Stage,
    output: Path | None,
    version: str,
    advisories: list[Path] | None,
) -> int:
    """A stage with approval or hooks, as the ``rollout`` flow (always Prefect: the approval
    is a form in its UI, each hook a task)."""
    from neuroerp_ci.orchestration import api_url_configured, rollout, start_temporary_server
    from neuroerp_ci.reports.writer import default_output_dir, new_run_id
    from neuroerp_ci.run.runner import stage_secrets

    name = stage.name
    stage_secrets(pipeline, name, os.environ, resolve_blocks=False)
    waits = stage.approval is not None
    if waits and not api_url_configured():
        raise UsageError(
            f"stage {name} waits for an approval in the Prefect UI: set PREFECT_API_URL to "
            f"your Prefect server, or run its deployment: prefect deployment run "
            f"'rollout/{name}' --param version={version} --watch"
        )
    run_id = new_run_id()
    out_dir = (output or default_output_dir(pipeline.project_dir, run_id)).resolve()
    note = " (approve it in the Prefect UI: the run waits, paused)" if waits else ""
    out.print(f"Rolling {version} out to {name}{note}", markup=False)
    start_temporary_server()  # none with PREFECT_API_URL; else tracked, it dies with us
    state = rollout(
        version=version,
        config=str(pipeline.path),
        stage=name,  # a flow run is given the name; it looks the stage up
        output_dir=str(out_dir),
        advisories=joined(advisories),
        run_id=run_id,
        return_state=True,
    )
    out.print(state.message or state.name, markup=False, soft_wrap=True)
    out.print(f"Reports: {out_dir}", soft_wrap=True)
    validation = read_report(out_dir, run_id)
    if validation is not None and validation.recorded is False:  # as a stage: exit 3
        err.print(
            "neuroerp-ci: error: NOT RECORDED: " + redact(validation.record_error),
            markup=False,
            soft_wrap=True,
        )
        return ExitCode.INTERNAL
    return ExitCode.OK if state.is_completed() else ExitCode.GATE_FAILED
