"""Run one stage: start the target, run its checks in dependency order, gate, report.

Plain Python: no Prefect, no rich. How checks are executed concurrently is given by a
:class:`CheckExecutor` (a thread pool here, Prefect tasks in :mod:`neuroerp_ci.orchestration`);
progress goes to a :class:`RunObserver` that only the CLI gives a face.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar, runtime_checkable

from neuroerp_ci.checks import KINDS, Check, CheckContext, execute_check, skipped
from neuroerp_ci.checks.interface import LiveLimit
from neuroerp_ci.config import Pipeline
from neuroerp_ci.config.abort import abort_limits
from neuroerp_ci.config.secret_refs import collect_secrets
from neuroerp_ci.dag import order
from neuroerp_ci.errors import ConfigError, SetupError, TargetError
from neuroerp_ci.gates import (
    NO_BASELINES,
    BaselineProvider,
    ConditionSpec,
    decide,
    evaluate_stage,
    summarize,
)
from neuroerp_ci.gates.new_findings import mark_baseline_states
from neuroerp_ci.gates.waivers import apply_waivers
from neuroerp_ci.model import Calibration, CheckResult, CheckStatus, Outcome, StageReport
from neuroerp_ci.project.interpreter import Interpreter, find_interpreter, interpreter_outcome
from neuroerp_ci.reports.interface import Renderer
from neuroerp_ci.reports.registry import HTML_PAGE, RENDERERS, WITHOUT_PAGE
from neuroerp_ci.reports.writer import default_output_dir, new_run_id, write_reports
from neuroerp_ci.run.cache import CheckCache
from neuroerp_ci.run.confirmation import (
    ConfirmingObserver,
    Remeasure,
    confirm_breaches,
    work_name,
)
from neuroerp_ci.run.report_history import page_renderer, report_context
from neuroerp_ci.run.target import (
    TargetInfo,
    Workspace,
    check_health,
    prepared_workspace,
    setup_outcome,
    target_session,
)
from neuroerp_ci.store import HistoryStore, StoreError, environment_fingerprint
from neuroerp_ci.support.secrets import (
    RunSecrets,
    SecretLoader,
    redact,
    redact_data,
    redact_tree,
)
from neuroerp_ci.support.tooling import ProcessScope, process_scope, stop_reason

H = TypeVar("H")
ADVISORIES_ENV = "NEUROERP_CI_ADVISORIES"


class RunObserver(Protocol):
    """Told when each check starts and finishes; ``check_finished`` comes before the check
    is judged (its result says how the tool ran, not whether it met its conditions)."""

    def check_started(self, check: Check) -> None: ...
    def check_finished(self, check: Check, result: CheckResult) -> None: ...


@runtime_checkable
class JudgementObserver(Protocol):
    """What an observer implements to be told each check's outcomes once they are final
    (after waivers, baselines and re-measurements), in stage order; an observer without it
    is not told. The console's mark says whether the check met its conditions from these."""

    def check_judged(
        self, check: Check, result: CheckResult, outcomes: Sequence[Outcome]
    ) -> None: ...


class NullObserver:
    def check_started(self, check: Check) -> None:
        pass

    def check_finished(self, check: Check, result: CheckResult) -> None:
        pass

    def check_judged(self, check: Check, result: CheckResult, outcomes: Sequence[Outcome]) -> None:
        pass


def tell_judged(
    observer: object,
    checks: Sequence[Check],
    results: Mapping[str, CheckResult],
    outcomes: Sequence[Outcome],
) -> None:
    """Give a :class:`JudgementObserver` each check's final outcomes."""
    if not isinstance(observer, JudgementObserver):
        return
    for check in checks:
        own = [o for o in outcomes if o.check == check.id]
        observer.check_judged(check, results[check.id], own)


CheckJob = Callable[[Sequence[CheckResult]], CheckResult]


class CheckExecutor(Protocol[H]):
    """Runs jobs concurrently. ``deps`` results are handed to the job; ``after`` only orders."""

    def submit(self, check: Check, job: CheckJob, deps: Sequence[H], after: Sequence[H]) -> H: ...

    def result(self, handle: H) -> CheckResult: ...


# Checks running at once, whoever runs them (Prefect's task runner or the thread pool).
MAX_CONCURRENT_CHECKS = 8


class ThreadExecutor(Generic[H]):
    """The Prefect-free executor: a bounded thread pool. Jobs are queued in dependency
    order, so a job only ever waits for jobs that started before it (no deadlock)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool

    def submit(
        self,
        check: Check,
        job: CheckJob,
        deps: Sequence[Future[CheckResult]],
        after: Sequence[Future[CheckResult]],
    ) -> Future[CheckResult]:
        def run() -> CheckResult:
            for handle in after:
                handle.result()
            return job([handle.result() for handle in deps])

        return self._pool.submit(run)

    def result(self, handle: Future[CheckResult]) -> CheckResult:
        return handle.result()


@dataclass(frozen=True)
class RunOptions:
    stage: str
    version: str = ""
    output_dir: Path | None = None
    run_id: str = ""
    advisories: tuple[Path, ...] = ()  # offline OSV mirror folders; override env and file
    env: Mapping[str, str] | None = None  # the caller's environment (default: os.environ)
    load_secret: SecretLoader | None = None  # reads {secret:BLOCK} (Prefect Secret blocks)
    # How the version was found and which tree was tested (see versioning / checkout); the
    # runner adds the interpreter. Reports and the history record it as ``tested``.
    identity: Mapping[str, str] | None = None
    # Reuse the result of a passing run for a check none of whose inputs changed
    # (run/cache.py); False (``--no-cache``): every check runs.
    use_cache: bool = True


@dataclass(frozen=True)
class StageOutcome:
    report: StageReport
    output_dir: Path
    files: dict[str, Path]


def run_stage(
    pipeline: Pipeline,
    options: RunOptions,
    executor: CheckExecutor[H],
    observer: RunObserver | None = None,
    store: HistoryStore | None = None,
) -> StageOutcome:
    """Run a stage end to end and write its reports; never raises for a failing check.

    With a history ``store`` the run is recorded: a ``running`` row before the checks start,
    baselines for the gate from the stage's earlier runs, and the whole run (one transaction)
    once the reports are written (see :func:`write_and_record`: a run the store refuses is
    reported "not recorded"). A run that stops with an exception, SIGINT or SIGTERM is marked
    ``aborted``, after its tools were killed and its target stopped; one that is killed stays
    ``running``, and neither ever becomes a baseline.
    """
    observer = observer or NullObserver()
    stage = pipeline.stage(options.stage)
    run_id = options.run_id or new_run_id()
    out_dir = options.output_dir or default_output_dir(pipeline.project_dir, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(options.env if options.env is not None else os.environ)
    # Before anything starts: a missing secret is a ConfigError; from here on every secret is
    # redacted, and no child process inherits one it was not granted.
    secrets = stage_secrets(pipeline, stage.name, env, options.load_secret)
    child_env = secrets.child_env(env)
    started_at, started = _now(), time.perf_counter()
    checks = [pipeline.checks[c] for c in stage.checks]
    needs_target = any(KINDS[c.kind].needs_target_for(c) for c in checks)
    interpreter = pipeline_interpreter(pipeline)
    tested = tested_identity(options, interpreter, pipeline.target.workdir)
    if store is not None:
        store.begin_run(
            run_id,
            stage.name,
            pipeline.target.name,
            options.version,
            {**environment_fingerprint(), "tested": tested},
            started_at,
        )
    try:
        # Left by an exception, the scope kills the checks' tools first, then the target stops.
        # Setup runs first, in the project or its scratch copy (removed last), whatever the
        # checks need: it prepares what the target and the test suites use.
        values = {"python": interpreter.path, "project": str(pipeline.project_dir)}
        values.update(secrets.values)  # {env:NAME} / {secret:BLOCK} in target env/start/setup
        with (
            prepared_workspace(
                pipeline.target, pipeline.project_dir, values, child_env, out_dir / "setup"
            ) as work,
            _target(pipeline, work, child_env, out_dir, needs_target) as target,
            process_scope() as scope,
        ):
            base_ctx = _context(
                pipeline, interpreter, options, child_env, target, out_dir, secrets.values
            )
            base_ctx = replace(base_ctx, project_dir=work.project_dir)
            cache = CheckCache(
                store,
                pipeline.target.name,
                enabled=options.use_cache and pipeline.cache.enabled,
                ignored=(pipeline.path.name, *pipeline.cache.ignore, *_inside(out_dir, pipeline)),
            )
            cache.prepare(checks, work.project_dir)  # the tree as it is before any check runs
            results = run_checks(
                checks,
                base_ctx,
                target,
                executor,
                observer,
                grants=secrets.grants,
                scope=scope,
                abort_when=abort_limits(stage.conditions),
                cache=cache,
            )
            for check in checks:  # each report names the interpreter its check ran on
                if runs_on_interpreter(check):
                    results[check.id].tool_versions.setdefault(
                        "python", f"{interpreter.version} at {interpreter.path}"
                    )
            baselines: BaselineProvider = NO_BASELINES
            if store is not None:
                baselines = store.baseline_provider(
                    stage.name,
                    pipeline.target.name,
                    runs=pipeline.baseline_runs,
                    window_days=pipeline.baseline_window_days,
                    include=pipeline.baseline_include,
                    exclude_run_id=run_id,
                )
            # Findings a waiver covers are set apart (listed, not counted), then every finding
            # is compared with the baseline run's (new / unchanged / updated / absent).
            audited = audit_checks(checks)
            waiver_outcomes = apply_waivers(results, pipeline.waivers, audited)
            mark_baseline_states(results, audited, baselines)
            conditions = stage.conditions_by_check()
            outcomes = evaluate_stage(stage.name, conditions, pipeline.checks, results, baselines)
            # Judged while the target still runs: a breached measurement is re-measured
            # (confirm = N) before it counts.
            remeasure = remeasurer(
                base_ctx, target, executor, observer, secrets.grants, scope, stage.conditions
            )
            outcomes = confirm_breaches(
                outcomes,
                conditions,
                pipeline.checks,
                results,
                remeasure,
                baselines,
                stage=stage.name,
            )
        outcomes = [*outcomes, *waiver_outcomes]
        outcomes = with_calibrations(outcomes, store, stage.name, pipeline.target.name)
        tell_judged(observer, checks, results, redact_data(outcomes))  # now final: the console
        if uses_interpreter(pipeline, checks, needs_target):
            warning = interpreter_outcome(interpreter)
            outcomes = [warning, *outcomes] if warning else outcomes
        if work.error is not None:  # blocking whatever the checks' on_error policies say
            outcomes = [setup_outcome(work.error), *outcomes]
        verdict = decide(outcomes)
        report = StageReport(
            run_id=run_id,
            stage=stage.name,
            version=options.version,
            target=pipeline.target.name,
            verdict=verdict,
            started_at=started_at,
            finished_at=_now(),
            duration_s=round(time.perf_counter() - started, 3),
            checks=[results[c.id] for c in checks],
            outcomes=outcomes,
            summary=summarize(stage.name, verdict, outcomes),
            tested=tested,
        )
        report = redact_data(report)  # the reasons of outcomes and summary quote the checks
        report, files = write_and_record(report, out_dir, store, cache.entries())
    except BaseException as exc:
        if store is not None:
            with suppress(StoreError):  # the original error is the one to report
                store.abort_run(run_id, redact(stop_reason(exc)))
        raise
    finally:
        # What the tools, setup and the target wrote themselves (reports, logs).
        redact_tree(out_dir / "checks", out_dir / "setup", out_dir / "target.log")
    return StageOutcome(report, out_dir, files)


def _inside(folder: Path, pipeline: Pipeline) -> tuple[str, ...]:
    """Patterns for ``folder`` when it lies in the project (an ``--output`` there): the
    run's own reports are never an input of its checks."""
    try:
        rel = folder.resolve().relative_to(pipeline.project_dir.resolve()).as_posix()
    except ValueError:
        return ()
    return (f"{rel}/*",) if rel != "." else ()


def audit_checks(checks: Sequence[Check]) -> list[str]:
    """The ids of the checks whose kind is a code audit's scanner (their findings are
    waived, compared with the baseline run and written to SARIF)."""
    return [c.id for c in checks if KINDS[c.kind].metric_names(c.settings).audit]


def with_calibrations(
    outcomes: Sequence[Outcome], store: HistoryStore | None, stage: str, target: str
) -> list[Outcome]:
    """Each outcome with its condition's measured error rates (``neuroerp-ci calibrate``),
    found by check and condition text. Without a store, or when it cannot be read, the
    outcomes stay as they are: the figures inform a reader, they never decide or break a run.
    """
    known: dict[tuple[str, str], Calibration] = {}
    if store is not None:
        with suppress(StoreError):
            known = store.calibrations(stage, target)
    return [
        replace(o, calibration=known[(o.check, o.condition)])
        if (o.check, o.condition) in known
        else o
        for o in outcomes
    ]


def write_and_record(
    report: StageReport,
    out_dir: Path,
    store: HistoryStore | None,
    cached: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[StageReport, dict[str, Path]]:
    """Write the reports, record the run in ``store``; the reports say whether it holds it.

    Until the store has the run its reports say "not recorded"; when the store refuses it
    (unreachable, full, broken) they stay so, with the reason, and the summary says it too,
    since notifications and Prefect's final state quote the summary: a verdict the history
    does not hold is never shown as one. Returns the report as finally written.
    """
    if store is None:
        return report, write_reports(report, out_dir, page_renderers(report, out_dir, None))
    # report.html (charts: the costly one) once, below, as finally written
    write_reports(replace(report, recorded=False), out_dir, WITHOUT_PAGE)
    try:
        store.finish_run(report, cached)
    except StoreError as exc:
        report = not_recorded(report, str(exc))
        with suppress(StoreError):  # a store that took the start may still take this
            store.abort_run(report.run_id, f"not recorded: {exc}"[:500])
    else:
        report = replace(report, recorded=True)
    return report, write_reports(report, out_dir, page_renderers(report, out_dir, store))


def page_renderers(
    report: StageReport, out_dir: Path, store: HistoryStore | None
) -> dict[str, Renderer]:
    """Every report format, ``report.html`` with the stage's trends, timelines and links."""
    context, _problem = report_context(report, out_dir, store)  # the page names a problem
    return {**RENDERERS, HTML_PAGE: page_renderer(context)}


def not_recorded(report: StageReport, error: str) -> StageReport:
    """``report`` marked as refused by the history store, its summary saying so first."""
    return replace(
        report,
        recorded=False,
        record_error=error,
        summary=replace(report.summary, unrecorded=error),
    )


def stage_secrets(
    pipeline: Pipeline,
    stage: str,
    env: Mapping[str, str],
    load_secret: SecretLoader | None = None,
    *,
    resolve_blocks: bool = True,
) -> RunSecrets:
    """The secrets of a run of ``stage`` (:func:`~neuroerp_ci.config.secret_refs.collect_secrets`):
    what
    its checks, and the target if one of them needs it or it has setup commands (which run
    with its env), reference must resolve."""
    checks = [pipeline.checks[c] for c in pipeline.stage(stage).checks]
    target = bool(pipeline.target.setup) or any(KINDS[c.kind].needs_target_for(c) for c in checks)
    return collect_secrets(
        pipeline, env, load_secret, stage=stage, target=target, resolve_blocks=resolve_blocks
    )


def run_checks(
    checks: Sequence[Check],
    base_ctx: CheckContext,
    target: TargetInfo | TargetError | None,
    executor: CheckExecutor[H],
    observer: RunObserver,
    grants: Mapping[str, Mapping[str, str]] | None = None,
    scope: ProcessScope | None = None,
    abort_when: Mapping[str, tuple[LiveLimit, ...]] | None = None,
    cache: CheckCache | None = None,
) -> dict[str, CheckResult]:
    """Submit every check in dependency order; exclusive (measurement) checks run alone.

    ``grants``: check id -> environment variables only that check gets (``[secrets] grant``).
    ``scope``: the run's process scope; once it is stopped, no check starts anything.
    ``abort_when``: check id -> the stage's abort_on_fail limits on it (its CheckContext's).
    """
    by_id = {c.id: c for c in checks}
    exclusive = {c.id for c in checks if KINDS[c.kind].exclusive}
    handles: dict[str, H] = {}
    barrier: list[H] = []  # the last exclusive check: everything after it waits for it
    for check_id in order({c.id: c.dependencies for c in checks}, exclusive):
        check = by_id[check_id]
        after = list(handles.values()) if check_id in exclusive else barrier
        job = _job(
            check,
            base_ctx,
            target,
            observer,
            (grants or {}).get(check_id, {}),
            scope,
            (abort_when or {}).get(check_id, ()),
            cache=cache,
        )
        deps = [handles[d] for d in check.dependencies]
        handles[check_id] = executor.submit(check, job, deps, after)
        if check_id in exclusive:
            barrier = [handles[check_id]]
    return {cid: executor.result(h) for cid, h in handles.items()}


def remeasurer(
    base_ctx: CheckContext,
    target: TargetInfo | TargetError | None,
    executor: CheckExecutor[H],
    observer: RunObserver,
    grants: Mapping[str, Mapping[str, str]],
    scope: ProcessScope,
    conditions: Sequence[ConditionSpec],
) -> Remeasure:
    """How :func:`~neuroerp_ci.run.confirmation.confirm_breaches` re-runs a check: the
    same job as its first run (context, grants, scope, abort limits) through the same
    executor, alone (every other check is done), its outputs in ``<id>.confirm-<n>/``."""
    limits = abort_limits(conditions)

    def remeasure(check: Check, attempt: int) -> CheckResult:
        name = work_name(check.id, attempt)
        job = _job(
            check,
            base_ctx,
            target,
            ConfirmingObserver(observer, attempt),
            grants.get(check.id, {}),
            scope,
            limits.get(check.id, ()),
            work=name,
        )
        # Named for the executor (a Prefect task run "<id>.confirm-<n>"); the job runs check.
        return executor.result(executor.submit(replace(check, id=name), job, [], []))

    return remeasure


def _job(
    check: Check,
    base_ctx: CheckContext,
    target: TargetInfo | TargetError | None,
    observer: RunObserver,
    granted: Mapping[str, str],
    scope: ProcessScope | None = None,
    abort_when: tuple[LiveLimit, ...] = (),
    work: str | None = None,
    cache: CheckCache | None = None,
) -> CheckJob:
    """The job of one check run; ``work``: its folder under the run's checks (default: the
    check id)."""
    kind = KINDS[check.kind]
    scope = scope or ProcessScope()

    def job(dep_results: Sequence[CheckResult]) -> CheckResult:
        observer.check_started(check)
        not_done = [r for r in dep_results if r.status is not CheckStatus.OK]
        if scope.stopped is not None:
            result = skipped(check, f"the run was stopped: {scope.stopped}")
        elif isinstance(target, SetupError):  # what it would examine was not prepared
            result = CheckResult(
                check.id, check.kind, CheckStatus.ERROR, reason=f"not run: {target.headline}"
            )
        elif not_done:
            names = ", ".join(f"{r.check_id} ({r.status.value})" for r in not_done)
            result = skipped(check, f"dependency did not complete: {names}")
        elif kind.needs_target_for(check) and isinstance(target, TargetError):
            result = CheckResult(
                check.id, check.kind, CheckStatus.ERROR, reason=f"target not available: {target}"
            )
        else:
            env = {**base_ctx.env, **granted}
            ctx = replace(
                base_ctx,
                work_dir=base_ctx.work_dir / (work or check.id),
                env=env,
                abort_when=abort_when,
            )
            key = cache.key(check, ctx) if cache is not None else None
            reused = cache.reuse(check, key) if cache is not None and key else None
            if reused is not None:  # nothing it reads changed since a passing run
                result = reused
            else:
                with scope.active():  # its tools die with the run
                    result = execute_check(kind, check, ctx)
                redact_tree(ctx.work_dir)  # the tool's own outputs, at once
                result = redact_data(result)
                if cache is not None and key:
                    result = cache.remember(check, key, result)
        result = redact_data(result)  # before anyone sees it: console, Prefect, reports
        observer.check_finished(check, result)
        return result

    return job


@contextmanager
def _target(
    pipeline: Pipeline,
    work: Workspace,
    env: dict[str, str],
    out_dir: Path,
    needed: bool,
) -> Iterator[TargetInfo | TargetError | None]:
    """The running (and healthy) target, the error that kept it from running (its setup's
    included, a :class:`SetupError`), or None when no check needs it."""
    if work.error is not None:
        yield work.error
        return
    if not needed:
        yield None
        return
    with ExitStack() as stack:
        target: TargetInfo | TargetError
        try:
            target = stack.enter_context(
                target_session(
                    pipeline.target, work.values, env, out_dir / "target.log", work.project_dir
                )
            )
            if pipeline.target.start is None and target.health_url:
                check_health(target)  # an external target: is it there at all?
        except TargetError as exc:
            target = exc
        yield target


def _context(
    pipeline: Pipeline,
    interpreter: Interpreter,
    options: RunOptions,
    env: dict[str, str],
    target: TargetInfo | TargetError | None,
    out_dir: Path,
    secrets: Mapping[str, str] | None = None,
) -> CheckContext:
    check_env = dict(env)
    base_url = target.base_url if isinstance(target, TargetInfo) else None
    if base_url:
        check_env["NEUROERP_CI_BASE_URL"] = base_url
    return CheckContext(
        project_dir=pipeline.project_dir,
        work_dir=out_dir / "checks",
        python=interpreter.path,
        env=check_env,
        base_url=base_url,
        allowed_hosts=tuple(pipeline.target.allowed_hosts),
        advisories=resolve_advisories(options.advisories, env, pipeline.advisories),
        secrets=dict(secrets or {}),
    )


def resolve_advisories(
    explicit: Sequence[Path], env: Mapping[str, str], from_pipeline: Sequence[Path]
) -> tuple[Path, ...]:
    """The offline advisory mirror folders: ``--advisories``, then the environment (several
    joined with ``os.pathsep``), then the pipeline file; () = the live service."""
    if explicit:
        return tuple(p.resolve() for p in explicit)
    if env.get(ADVISORIES_ENV):
        return tuple(p.resolve() for p in split_mirrors(env[ADVISORIES_ENV]))
    return tuple(from_pipeline)


def split_mirrors(joined: str | None) -> tuple[Path, ...]:
    """``/a:/b`` (``os.pathsep``) -> the mirror folders; empty parts are left out."""
    return tuple(Path(part) for part in (joined or "").split(os.pathsep) if part.strip())


def pipeline_interpreter(pipeline: Pipeline) -> Interpreter:
    """The interpreter the pipeline's checks run on (``target.python``, a project venv, or
    neuroerp-ci's own); one that cannot run is an error in the pipeline file."""
    target = pipeline.target
    try:
        return find_interpreter(
            target.python, "python" in target.model_fields_set, pipeline.project_dir
        )
    except TargetError as exc:
        raise ConfigError(pipeline.path, "target.python", str(exc)) from None


def uses_interpreter(pipeline: Pipeline, checks: Sequence[Check], needs_target: bool) -> bool:
    """Whether anything in the run runs on the target's interpreter: a test suite, an audit
    of its environment, or a command (the target's and its setup's included) that names
    ``{python}``."""
    if needs_target and any("{python}" in arg for arg in pipeline.target.start or ()):
        return True
    if any("{python}" in arg for argv in pipeline.target.setup for arg in argv):
        return True
    return any(runs_on_interpreter(check) for check in checks)


def runs_on_interpreter(check: Check) -> bool:
    """Whether the check runs on (or audits) the target's interpreter, or names ``{python}``
    in its settings or its own environment."""
    return (
        KINDS[check.kind].runs_target_python(check)
        or "{python}" in repr(check.settings)
        or any("{python}" in value for value in check.env.values())
    )


def tested_identity(
    options: RunOptions, interpreter: Interpreter, workdir: str = "project"
) -> dict[str, str]:
    """What this run tested: the version and how it was found, where, and the interpreter."""
    return {
        "version": options.version,
        **dict(options.identity or {}),
        "workdir": "a scratch copy" if workdir == "scratch" else "the project folder",
        "python": interpreter.path,
        "python_version": interpreter.version,
        "python_prefix": interpreter.prefix,
        "python_source": interpreter.source,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
