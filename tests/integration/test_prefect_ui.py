"""What a person sees in the Prefect UI of gate runs started from deployments (a real server).

The server, work pool, ``prefect deploy --all`` and worker are test_prefect_server's (its
module-scoped fixtures, one server for this module). A tiny pipeline, Python only: its one
check sleeps briefly (``estimate = 2``: a progress bar) and reports coverage 75 against a
``min = 80`` condition (target ``>= 80``), so development FAILs; staging for the same version
is then refused. Both run at once through ``prefect deployment run ... --watch``, exactly as
CI does, and are read back through the client API: the check's task run carries its own
artifact with its reason and a finished progress artifact; the outcomes table has no cell
a Markdown renderer turns into a blockquote; the link artifact points at report.html; both
runs end Failed with their summary and their logs hold no traceback. Before that, the
deployment forms are given the demo pipeline's stages as choices and a run naming another
stage is refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from neuroerp_ci.orchestration import offer_stage_choices
from neuroerp_ci.reports.markdown import escape_markdown
from tests.integration.test_prefect_server import (  # noqa: F401 - module-scoped fixtures
    RUN_TIMEOUT_S,
    Server,
    deployed,
    server,
    start_worker,
    stop_worker,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PIPELINE = """
[target]
name = "tiny-ui"
python = "{python}"

[[checks]]
id = "coverage"
kind = "command"
estimate = 2
settings.argv = ["{python}", "-c", "import time; time.sleep(2); print('{{\\"coverage\\": 75}}')"]
settings.metrics_json = true

[stages.development]
conditions = [{{ check = "coverage", metric = "coverage", min = 80 }}]

[stages.staging]
requires = "development"
"""
VERSION = "ui-1"


def flow_run_id(stdout: str) -> UUID:
    found = re.search(r"UUID: ([0-9a-f-]{36})", stdout)
    assert found, stdout
    return UUID(found.group(1))


def run_watched(srv: Server, stage: str, config: Path, out: Path) -> tuple[int, UUID]:
    done = srv.prefect(
        "deployment", "run", f"stage-gate/{stage}",
        "--param", f"config={config}", "--param", f"version={VERSION}",
        "--param", f"output_dir={out}",
        "--watch", "--watch-interval", "1", "--watch-timeout", str(RUN_TIMEOUT_S),
        timeout=RUN_TIMEOUT_S + 30,
    )  # fmt: skip
    return done.returncode, flow_run_id(done.stdout)


def wait_for_final_logs(srv: Server, run_ids: list[UUID]) -> None:
    """Until each run's log on the server holds its final state: all its logs are sent then
    (the flow-run process sends them on its way out)."""
    deadline = time.monotonic() + 90
    pending = list(run_ids)
    while pending and time.monotonic() < deadline:
        pending = [r for r in pending if "Finished in state" not in run_log(srv, r)]
        time.sleep(0.5)
    assert not pending, f"no final state in the logs of {pending}"


def run_log(srv: Server, run_id: UUID) -> str:
    logs = read(srv, lambda c: c.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
    ))  # fmt: skip
    return "\n".join(entry.message for entry in logs)


def read(srv: Server, what: Any) -> Any:
    """``await what(client)`` against the module's server."""

    async def go() -> Any:
        async with get_client() as client:
            return await what(client)

    with temporary_settings({PREFECT_API_URL: srv.env["PREFECT_API_URL"]}):
        return asyncio.run(go())


def rendered(cell: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")  # comes with rich
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(cell))


@pytest.fixture(scope="module")
def runs(deployed: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("ui")
    config = tmp / "neuroerp-ci.toml"
    config.write_text(PIPELINE.format(python=sys.executable), encoding="utf-8")
    with temporary_settings({PREFECT_API_URL: deployed.env["PREFECT_API_URL"]}):
        offered = offer_stage_choices(deployed.checkout)
    worker = start_worker(deployed, {})
    try:
        with ThreadPoolExecutor(2) as pool:
            development = pool.submit(run_watched, deployed, "development", config, tmp / "dev")
            time.sleep(1)  # staging is refused either way; only the order of the log changes
            staging = pool.submit(run_watched, deployed, "staging", config, tmp / "staging")
            results = {"development": development.result(), "staging": staging.result()}
        wait_for_final_logs(deployed, [run_id for _code, run_id in results.values()])
    finally:
        stop_worker(deployed, worker)
    yield {"server": deployed, "runs": results, "offered": offered, "dev_out": tmp / "dev"}


def test_the_run_form_offers_the_pipelines_stages(runs: dict[str, Any]) -> None:
    srv: Server = runs["server"]
    assert (
        "stage-gate/development: stage is one of development, staging, nightly-baseline, audit"
        in (runs["offered"])
    )

    async def bogus(client: Any) -> tuple[Any, str]:
        deployment = await client.read_deployment_by_name("stage-gate/development")
        try:
            await client.create_flow_run_from_deployment(deployment.id, parameters={"stage": "x"})
        except PrefectHTTPStatusError as exc:
            return deployment.parameter_openapi_schema, str(exc)
        return deployment.parameter_openapi_schema, "created"

    schema, refused = read(srv, bogus)
    assert schema["properties"]["stage"]["enum"] == [
        "development", "staging", "nightly-baseline", "audit",
    ]  # fmt: skip
    assert "Validation failed for field 'stage'" in refused


def test_the_check_task_run_carries_its_reason_and_progress(runs: dict[str, Any]) -> None:
    srv: Server = runs["server"]
    code, run_id = runs["runs"]["development"]
    assert code != 0  # FAIL: --watch says so
    report = json.loads((runs["dev_out"] / "report.json").read_text(encoding="utf-8"))
    (check,) = report["checks"]
    artifacts = {a.key: a for a in read(srv, lambda c: c.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
    ))}  # fmt: skip
    own = artifacts["neuroerp-ci-development-coverage-check"]
    assert own.task_run_id is not None
    task_run = read(srv, lambda c: c.read_task_run(own.task_run_id))
    assert task_run.name == "coverage"
    assert escape_markdown(check["reason"]) in own.data
    assert "| coverage | 75 |" in own.data and "1 counted" not in own.data
    progress = artifacts["neuroerp-ci-development-coverage-progress"]
    assert progress.task_run_id == own.task_run_id and progress.data == 100.0

    table = json.loads(artifacts["neuroerp-ci-development-outcomes"].data)
    (row,) = [r for r in table if r["condition"].startswith("coverage")]
    assert row["status"] == "fail" and row["target"] == "\\>= 80"
    for cell in (cell for r in table for cell in r.values()):
        assert not cell.startswith(">"), cell
        assert "<blockquote>" not in rendered(cell), cell

    link = artifacts["neuroerp-ci-development-report"].data
    assert link == f"[report.html]({(runs['dev_out'].resolve() / 'report.html').as_uri()})"
    summary = artifacts["neuroerp-ci-development-summary"].data
    assert summary.startswith("## FAIL — development @ ui-1")
    assert not re.search("[\u2600-\u27bf\U0001f000-\U0001faff]", summary)


@pytest.mark.parametrize(
    ("stage", "said"),
    [
        ("development", "development: FAIL — 1 of 1 conditions failed: coverage"),
        ("staging", "staging: FAIL — refused: staging requires development to have passed"),
    ],
)
def test_a_fail_or_refusal_ends_failed_with_its_summary_and_no_traceback(
    runs: dict[str, Any], stage: str, said: str
) -> None:
    srv: Server = runs["server"]
    code, run_id = runs["runs"][stage]
    assert code != 0
    flow_run = read(srv, lambda c: c.read_flow_run(run_id))
    assert flow_run.state.is_failed() and flow_run.state.message.startswith(said)
    text = run_log(srv, run_id)
    assert f"Finished in state Failed('{said}" in text, text
    assert "Traceback" not in text, text
