"""Run one stage: start the target, run its checks in dependency order, gate, report.

Plain Python: no Prefect, no rich. How checks are executed concurrently is given by a
:class:`CheckExecutor` (a thread pool here, Prefect tasks in :mod:`neuroerp_ci.orchestration`);
progress goes to a :class:`RunObserver` that only the CLI gives a face.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from neuroerp_ci.checks import KINDS, Check, CheckContext, execute_check, skipped
from neuroerp_ci.config import Pipeline
from neuroerp_ci.dag import order
from neuroerp_ci.errors import TargetError
from neuroerp_ci.gates import NO_BASELINES, BaselineProvider, decide, evaluate_stage, summarize
from neuroerp_ci.model import CheckResult, CheckStatus, StageReport
from neuroerp_ci.placeholders import expand
from neuroerp_ci.reports.writer import default_output_dir, new_run_id, write_reports
from neuroerp_ci.store import HistoryStore, StoreError, environment_fingerprint
from neuroerp_ci.target import TargetInfo, check_health, target_session

H = TypeVar("H")
ADVISORIES_ENV = "NEUROERP_CI_ADVISORIES"


class RunObserver(Protocol):
    def check_started(self, check: Check) -> None: ...
    def check_finished(self, check: Check, result: CheckResult) -> None: ...


class NullObserver:
    def check_started(self, check: Check) -> None:
        pass

    def check_finished(self, check: Check, result: CheckResult) -> None:
        pass


CheckJob = Callable[[Sequence[CheckResult]], CheckResult]


class CheckExecutor(Protocol[H]):
    """Runs jobs concurrently. ``deps`` results are handed to the job; ``after`` only orders."""

    def submit(self, check: Check, job: CheckJob, deps: Sequence[H], after: Sequence[H]) -> H: ...

    def result(self, handle: H) -> CheckResult: ...


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
    advisories: Path | None = None  # offline OSV mirror; overrides env and pipeline file
    env: Mapping[str, str] | None = None  # the caller's environment (default: os.environ)


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
    once the reports are written. A run that stops with an exception is marked ``aborted``;
    one that is killed stays ``running``, and neither ever becomes a baseline.
    """
    observer = observer or NullObserver()
    stage = pipeline.stage(options.stage)
    run_id = options.run_id or new_run_id()
    out_dir = options.output_dir or default_output_dir(pipeline.project_dir, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(options.env if options.env is not None else os.environ)
    started_at, started = _now(), time.perf_counter()
    checks = [pipeline.checks[c] for c in stage.checks]
    needs_target = any(KINDS[c.kind].needs_target_for(c) for c in checks)
    if store is not None:
        store.begin_run(
            run_id,
            stage.name,
            pipeline.target.name,
            options.version,
            environment_fingerprint(),
            started_at,
        )
    try:
        with _target(pipeline, env, out_dir, needs_target) as target:
            base_ctx = _context(pipeline, options, env, target, out_dir)
            results = run_checks(checks, base_ctx, target, executor, observer)
        baselines: BaselineProvider = NO_BASELINES
        if store is not None:
            baselines = store.baseline_provider(
                stage.name,
                pipeline.target.name,
                runs=pipeline.baseline_runs,
                window_days=pipeline.baseline_window_days,
                exclude_run_id=run_id,
            )
        outcomes = evaluate_stage(stage, pipeline.checks, results, baselines)
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
        )
        files = write_reports(report, out_dir)
    except BaseException as exc:
        if store is not None:
            with suppress(StoreError):  # the original error is the one to report
                store.abort_run(run_id, f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        raise
    if store is not None:
        store.finish_run(report)
    return StageOutcome(report, out_dir, files)


def run_checks(
    checks: Sequence[Check],
    base_ctx: CheckContext,
    target: TargetInfo | TargetError | None,
    executor: CheckExecutor[H],
    observer: RunObserver,
) -> dict[str, CheckResult]:
    """Submit every check in dependency order; exclusive (measurement) checks run alone."""
    by_id = {c.id: c for c in checks}
    exclusive = {c.id for c in checks if KINDS[c.kind].exclusive}
    handles: dict[str, H] = {}
    barrier: list[H] = []  # the last exclusive check: everything after it waits for it
    for check_id in order({c.id: c.dependencies for c in checks}, exclusive):
        check = by_id[check_id]
        after = list(handles.values()) if check_id in exclusive else barrier
        job = _job(check, base_ctx, target, observer)
        deps = [handles[d] for d in check.dependencies]
        handles[check_id] = executor.submit(check, job, deps, after)
        if check_id in exclusive:
            barrier = [handles[check_id]]
    return {cid: executor.result(h) for cid, h in handles.items()}


def _job(
    check: Check,
    base_ctx: CheckContext,
    target: TargetInfo | TargetError | None,
    observer: RunObserver,
) -> CheckJob:
    kind = KINDS[check.kind]

    def job(dep_results: Sequence[CheckResult]) -> CheckResult:
        observer.check_started(check)
        not_done = [r for r in dep_results if r.status is not CheckStatus.OK]
        if not_done:
            names = ", ".join(f"{r.check_id} ({r.status.value})" for r in not_done)
            result = skipped(check, f"dependency did not complete: {names}")
        elif kind.needs_target_for(check) and isinstance(target, TargetError):
            result = CheckResult(
                check.id, check.kind, CheckStatus.ERROR, reason=f"target not available: {target}"
            )
        else:
            ctx = replace(base_ctx, work_dir=base_ctx.work_dir / check.id)
            result = execute_check(kind, check, ctx)
        observer.check_finished(check, result)
        return result

    return job


@contextmanager
def _target(
    pipeline: Pipeline, env: dict[str, str], out_dir: Path, needed: bool
) -> Iterator[TargetInfo | TargetError | None]:
    """The running (and healthy) target, the error that kept it from running, or None when
    no check needs it."""
    if not needed:
        yield None
        return
    values = {"python": _python(pipeline, env), "project": str(pipeline.project_dir)}
    with ExitStack() as stack:
        target: TargetInfo | TargetError
        try:
            target = stack.enter_context(
                target_session(
                    pipeline.target, values, env, out_dir / "target.log", pipeline.project_dir
                )
            )
            if pipeline.target.start is None and target.health_url:
                check_health(target)  # an external target: is it there at all?
        except TargetError as exc:
            target = exc
        yield target


def _context(
    pipeline: Pipeline,
    options: RunOptions,
    env: dict[str, str],
    target: TargetInfo | TargetError | None,
    out_dir: Path,
) -> CheckContext:
    check_env = dict(env)
    base_url = target.base_url if isinstance(target, TargetInfo) else None
    if base_url:
        check_env["NEUROERP_CI_BASE_URL"] = base_url
    return CheckContext(
        project_dir=pipeline.project_dir,
        work_dir=out_dir / "checks",
        python=_python(pipeline, env),
        env=check_env,
        base_url=base_url,
        allowed_hosts=tuple(pipeline.target.allowed_hosts),
        advisories=resolve_advisories(options.advisories, env, pipeline.advisories),
    )


def resolve_advisories(
    explicit: Path | None, env: Mapping[str, str], from_pipeline: Path | None
) -> Path | None:
    """The offline advisory mirror: ``--advisories``, then the environment, then the file."""
    if explicit is not None:
        return explicit.resolve()
    if env.get(ADVISORIES_ENV):
        return Path(env[ADVISORIES_ENV]).resolve()
    return from_pipeline


def _python(pipeline: Pipeline, env: Mapping[str, str]) -> str:
    return expand(pipeline.target.python, {"python": sys.executable})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
