"""The Prefect adapter: the one module that imports Prefect.

Each check is a Prefect task (submitted in dependency order to a bounded thread pool, so
checks run concurrently where the DAG allows); the stage is the ``stage-gate`` flow. The flow
writes a Markdown and a table artifact under stable keys, then ends Completed (PASS),
Completed named ``CompletedWithWarnings`` (WARN) or Failed (FAIL) with the verdict summary as
its message, so ``prefect deployment run ... --watch`` exits non-zero on FAIL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from neuroerp_ci.checks import Check
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckResult, StageReport, Verdict
from neuroerp_ci.reports.markdown import markdown_summary, outcome_rows
from neuroerp_ci.runner import CheckJob, NullObserver, RunObserver, RunOptions, run_stage

MAX_CONCURRENT_CHECKS = 8
_observer: RunObserver = NullObserver()


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
    """Run one stage's quality gate and end in a state that carries its verdict."""
    try:
        pipeline = load_pipeline(config)
        options = RunOptions(
            stage=stage,
            version=version,
            output_dir=Path(output_dir) if output_dir else None,
            run_id=run_id or "",
            advisories=Path(advisories) if advisories else None,
        )
        outcome = run_stage(pipeline, options, PrefectExecutor(), _observer)
    except NeuroErpCiError as exc:
        return Failed(message=f"{stage}: FAIL — {exc}")
    publish_artifacts(outcome.report)
    return final_state(outcome.report, str(outcome.output_dir))


def publish_artifacts(report: StageReport) -> None:
    key = artifact_key(f"neuroerp-ci-{report.stage}")
    create_markdown_artifact(
        key=f"{key}-summary", markdown=markdown_summary(report), description=report.summary
    )
    create_table_artifact(
        key=f"{key}-outcomes",
        table=outcome_rows(report),
        description=f"{report.stage} gate outcomes",
    )


def final_state(report: StageReport, report_dir: str) -> State[Any]:
    message = report.summary
    if report.verdict is Verdict.FAIL:
        return Failed(message=message, data=report_dir)
    if report.verdict is Verdict.WARN:
        return Completed(name="CompletedWithWarnings", message=message, data=report_dir)
    return Completed(message=message, data=report_dir)


def artifact_key(text: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
