"""Production rollout: approval, hooks in order, validation, exactly one rollback.

Hooks here are real commands that append a line to ``hooks.log`` (so the order and the number
of calls are counted, not assumed); HTTP hooks and the canary use ``httpx.MockTransport`` in
unit tests and real loopback servers in their integration twins. The Prefect tests pause a
real ``rollout`` flow run and resume it through the API from another thread.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.config.stage_rules import CanarySpec, HookSpec, LockSpec
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import (
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
    summary_line,
)
from neuroerp_ci.release.rollout import (
    Approval,
    ApprovalRequest,
    HookContext,
    HookRunner,
    RolloutLock,
    RolloutReport,
    StepStatus,
    compare_canary,
    judge_canary,
    render_rollout_json,
    render_rollout_markdown,
    rollout_stage_report,
    run_rollout,
)
from neuroerp_ci.store import HistoryStore, LockTable, StoreError, open_store

# A hook command: append "<hook> <version>" to a file, then exit with the given code.
APPEND = (
    'import os, sys; open(sys.argv[1], "a").write(sys.argv[2] + " " + '
    'os.environ["NEUROERP_CI_VERSION"] + "\\n"); sys.exit(int(sys.argv[3]))'
)

# Prefect's temporary server took 70 s to start on a busy 2-core CI machine (30 s default).
SERVER_STARTUP_S = 240


def hook(name: str, exit_code: int = 0) -> str:
    return f'{{ argv = ["{{python}}", "-c", \'{APPEND}\', "{{project}}/hooks.log", "{name}", "{exit_code}"] }}'  # noqa: E501


PIPELINE = """
[target]
name = "shop"
python = "{{python}}"

[[checks]]
id = "validate"
kind = "command"
[checks.settings]
argv = ["{{python}}", "-c", "import sys; sys.exit(int(sys.argv[1]))", "{validate_exit}"]

[stages.production]
checks = ["validate"]
approval = {{ timeout_s = {timeout}, approvers = ["alice", "bob"] }}

[stages.production.hooks]
backup = {backup}
deploy = {deploy}
rollback = {rollback}
"""


def write_pipeline(
    directory: Path,
    *,
    validate_exit: int = 0,
    backup_exit: int = 0,
    deploy_exit: int = 0,
    rollback_exit: int = 0,
    timeout: int = 60,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "neuroerp-ci.toml"
    path.write_text(
        PIPELINE.format(
            validate_exit=validate_exit,
            timeout=timeout,
            backup=hook("backup", backup_exit),
            deploy=hook("deploy", deploy_exit),
            rollback=hook("rollback", rollback_exit),
        ),
        encoding="utf-8",
    )
    return path


def hook_lines(project: Path) -> list[str]:
    log = project / "hooks.log"
    return log.read_text().splitlines() if log.exists() else []


def runner(project: Path, client: httpx.Client | None = None, version: str = "v1") -> HookRunner:
    import sys

    ctx = HookContext(project, sys.executable, "production", version, "run-1", project / "logs")
    return HookRunner(ctx, client, sleep=lambda s: None)


def validation(verdict: Verdict) -> Callable[[], StageReport]:
    """What the stage's checks concluded (the flow tests run them for real)."""
    status = OutcomeStatus.PASS if verdict is Verdict.PASS else OutcomeStatus.FAIL
    outcome = Outcome("smoke", "smoke_failures <= 0", status, Severity.BLOCKING, 0, "0", "why")
    summary = Summary("production", verdict, ("smoke: smoke_failures 3 > 0",))
    return lambda: StageReport(
        "run-1", "production", "v1", "shop", verdict, "t0", "t1", 1.0, [], [outcome], summary
    )


def approve_as(who: str, approved: bool = True, comment: str = "") -> Callable[..., Approval]:
    return lambda request: Approval(approved, who, comment)


def rollout(project: Path, approve: Callable[..., Approval], verdict: Verdict) -> RolloutReport:
    pipeline = load_pipeline(project / "neuroerp-ci.toml")
    return run_rollout(
        pipeline,
        pipeline.stage("production"),
        "v1",
        "run-1",
        approve=approve,
        validate=validation(verdict),
        hooks=runner(project),
    )


# --- the sequence, with real command hooks --------------------------------------------------


def test_approved_rollout_runs_backup_then_deploy_and_no_rollback(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    report = rollout(tmp_path, approve_as("alice", comment="ship it"), Verdict.PASS)
    assert hook_lines(tmp_path) == ["backup v1", "deploy v1"]
    assert [s.step for s in report.steps] == ["approval", "backup", "deploy", "validation"]
    assert report.verdict is Verdict.PASS and report.rollback == "not needed"
    line = summary_line(report.summary)
    assert line.startswith("production: PASS — v1 deployed (approved by alice)")
    assert report.steps[0].reason == "approved by alice: ship it"
    # Built from the validation's summary as data, not by cutting its line at the dash.
    assert report.summary.reasons == (
        "v1 deployed (approved by alice)",
        "validation: smoke: smoke_failures 3 > 0",
    )


def test_a_validation_the_store_refused_is_quoted_with_its_reason(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    pipeline = load_pipeline(tmp_path / "neuroerp-ci.toml")
    passed = validation(Verdict.PASS)()
    unrecorded = replace(passed, summary=replace(passed.summary, unrecorded="store down"))
    report = run_rollout(
        pipeline, pipeline.stage("production"), "v1", "run-1",
        approve=approve_as("alice"), validate=lambda: unrecorded, hooks=runner(tmp_path),
    )  # fmt: skip
    assert summary_line(report.summary) == (
        "production: PASS — v1 deployed (approved by alice); validation: store down; "
        "unrecorded verdict: production: PASS — smoke: smoke_failures 3 > 0"
    )
    assert report.steps[-1].reason.startswith("production: NOT RECORDED — store down; ")


def test_failed_validation_rolls_back_exactly_once_and_records_both(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    report = rollout(tmp_path, approve_as("bob"), Verdict.FAIL)
    assert hook_lines(tmp_path) == ["backup v1", "deploy v1", "rollback v1"]
    validation_step, rollback_step = report.steps[-2:]
    assert validation_step.step == "validation" and validation_step.status is StepStatus.FAILED
    assert rollback_step.step == "rollback" and rollback_step.ok and rollback_step.attempts == 1
    assert report.verdict is Verdict.FAIL and report.rollback == "rolled back"
    line = summary_line(report.summary)
    assert "validation failed: smoke: smoke_failures 3 > 0; rolled back" in line
    data = json.loads(render_rollout_json(report))
    assert [s["step"] for s in data["steps"]][-2:] == ["validation", "rollback"]
    assert data["validation"]["verdict"] == "FAIL" and data["rollback"] == "rolled back"


def test_a_failing_rollback_is_reported_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_pipeline(tmp_path, rollback_exit=3)
    report = rollout(tmp_path, approve_as("alice"), Verdict.FAIL)
    assert hook_lines(tmp_path) == ["backup v1", "deploy v1", "rollback v1"]  # once, no retry
    assert report.verdict is Verdict.FAIL and report.rollback == "FAILED"
    line = summary_line(report.summary)
    assert line.startswith("production: FAIL — ROLLBACK FAILED: rollback hook failed")
    assert "exited 3" in line and "validation failed" in line
    loud = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("ROLLBACK FAILED" in r.getMessage() for r in loud)
    assert "Rollback: FAILED" in render_rollout_markdown(report)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Approval(False, "bob", "not during the sale"), "rejected by bob: not during the sale"),
        (Approval(False, timed_out=True), "approval timed out after 60 s (nobody approved)"),
        (Approval(True, "mallory"), "'mallory' approved but is not one of the approvers"),
        (Approval(True, " "), "approved without saying who approves"),
    ],
)
def test_no_approval_is_a_fail_with_nothing_deployed(
    tmp_path: Path, answer: Approval, reason: str
) -> None:
    write_pipeline(tmp_path)
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> Approval:
        asked.append(request)
        return answer

    report = rollout(tmp_path, approve, Verdict.PASS)
    assert asked[0].approvers == ("alice", "bob") and asked[0].timeout_s == 60
    assert hook_lines(tmp_path) == []  # no backup, no deploy, no rollback
    assert [s.step for s in report.steps] == ["approval"]
    assert report.verdict is Verdict.FAIL and report.rollback == "not needed"
    line = summary_line(report.summary)
    assert reason in line and "nothing deployed, no rollback needed" in line
    stage_report = rollout_stage_report(report)
    assert stage_report.verdict is Verdict.FAIL
    assert stage_report.outcomes[0].reason.startswith(reason.split(" after")[0])


def test_failed_backup_stops_before_deploy_without_rollback(tmp_path: Path) -> None:
    write_pipeline(tmp_path, backup_exit=1)
    report = rollout(tmp_path, approve_as("alice"), Verdict.PASS)
    assert hook_lines(tmp_path) == ["backup v1"]
    assert report.rollback == "not needed" and "backup hook failed" in summary_line(report.summary)


def test_failed_deploy_rolls_back_without_validating(tmp_path: Path) -> None:
    write_pipeline(tmp_path, deploy_exit=1)
    validated: list[bool] = []

    def validate() -> StageReport:
        validated.append(True)
        return validation(Verdict.PASS)()

    pipeline = load_pipeline(tmp_path / "neuroerp-ci.toml")
    report = run_rollout(
        pipeline, pipeline.stage("production"), "v1", "run-1",
        approve=approve_as("alice"), validate=validate, hooks=runner(tmp_path),
    )  # fmt: skip
    assert hook_lines(tmp_path) == ["backup v1", "deploy v1", "rollback v1"]
    assert validated == [] and report.rollback == "rolled back"
    assert "deploy hook failed after 1 attempt" in summary_line(report.summary)


def test_validation_that_crashes_still_rolls_back(tmp_path: Path) -> None:
    write_pipeline(tmp_path)

    def validate() -> StageReport:
        raise RuntimeError("target vanished")

    pipeline = load_pipeline(tmp_path / "neuroerp-ci.toml")
    report = run_rollout(
        pipeline, pipeline.stage("production"), "v1", "run-1",
        approve=approve_as("alice"), validate=validate, hooks=runner(tmp_path),
    )  # fmt: skip
    assert hook_lines(tmp_path)[-1] == "rollback v1"
    assert "validation could not run: RuntimeError: target vanished" in summary_line(report.summary)


# --- the plan is checked before anyone is asked ---------------------------------------------


def test_a_deploy_without_rollback_hook_is_a_config_error(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path)
    path.write_text(path.read_text().replace("rollback = {", "# rollback = {"))
    with pytest.raises(ConfigError, match=r"stages.production.hooks: a stage that deploys"):
        load_pipeline(path)


def test_an_http_hook_outside_the_allowed_hosts_is_refused_before_approval(
    tmp_path: Path,
) -> None:
    path = write_pipeline(tmp_path)
    text = path.read_text().replace(
        "deploy = {", 'deploy = { url = "https://deploy.example.com/go" }\n# deploy = {'
    )
    path.write_text(text)
    asked: list[ApprovalRequest] = []
    pipeline = load_pipeline(path)
    with pytest.raises(ConfigError, match=r"hooks.deploy.url: URL host 'deploy.example.com'"):
        run_rollout(
            pipeline, pipeline.stage("production"), "v1", "r",
            approve=lambda r: asked.append(r) or Approval(True, "alice"),  # type: ignore[func-returns-value]
            validate=validation(Verdict.PASS), hooks=runner(tmp_path),
        )  # fmt: skip
    assert asked == []


# --- hooks ----------------------------------------------------------------------------------


def test_a_command_hook_is_retried_and_gets_the_version(tmp_path: Path) -> None:
    # Fails on its first call, succeeds on the second (the counter file tells which).
    code = (
        'import os, pathlib, sys; p = pathlib.Path("count"); n = int(p.read_text()) + 1 '
        "if p.exists() else 1; p.write_text(str(n)); "
        'print(os.environ["NEUROERP_CI_VERSION"], os.environ["NEUROERP_CI_HOOK"]); sys.exit(n < 2)'
    )
    spec = HookSpec(argv=["{python}", "-c", code], retries=2)
    result = runner(tmp_path, version="3f9a").run("deploy", spec)
    assert result.ok and result.attempts == 2
    assert result.reason.endswith("exited 0 (attempt 2/3)")
    log = Path(result.log or "").read_text()
    assert "attempt 1/3 failed" in log and "3f9a deploy" in log


def test_a_command_hook_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    # The hook writes its pid, then hangs far beyond its timeout; that its process is gone
    # when run() returns proves the kill (no wall-clock ceiling: a busy machine is slow).
    pid_file = tmp_path / "hook.pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(300)"
    spec = HookSpec(argv=["{python}", "-c", code], timeout_s=5)
    result = runner(tmp_path).run("backup", spec)
    assert not result.ok and "timed out after 5 s" in result.reason
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_http_hook_retries_a_5xx_and_sends_the_identity(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(503 if len(seen) == 1 else 200, text="switched")

    spec = HookSpec(url="http://127.0.0.1:9/deploy", body={"color": "green"}, retries=1)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        result = runner(tmp_path, client).run("deploy", spec)
    assert result.ok and result.attempts == 2
    assert seen[1] == {
        "color": "green", "version": "v1", "stage": "production", "hook": "deploy",
        "run_id": "run-1",
    }  # fmt: skip


def test_an_http_hook_on_a_host_not_allowed_is_never_called(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200))  # type: ignore[func-returns-value]
    with httpx.Client(transport=transport) as client:
        result = runner(tmp_path, client).run("deploy", HookSpec(url="http://10.0.0.8/deploy"))
    assert not result.ok and "not in allowed_hosts" in result.reason and calls == []


class _Handler(BaseHTTPRequestHandler):
    """A loopback server: /slow waits ``delay`` seconds; POST /deploy records its body."""

    delay = 0.0
    bodies: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        time.sleep(self.delay)
        self._answer(200, b"ok")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self._answer(200 if self.path == "/deploy" else 500, b"done")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[float], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(delay: float = 0.0) -> str:
        handler = type("H", (_Handler,), {"delay": delay, "bodies": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_http_hooks_against_a_real_loopback_server(
    tmp_path: Path, serve: Callable[[float], str]
) -> None:
    base = serve(0.0)
    with httpx.Client() as client:
        ok = runner(tmp_path, client).run("deploy", HookSpec(url=f"{base}/deploy"))
        bad = runner(tmp_path, client).run("switch", HookSpec(url=f"{base}/switch", retries=1))
    assert ok.ok and ok.reason == f"deploy hook ok: POST {base}/deploy answered 200"
    assert not bad.ok and bad.attempts == 2 and "answered 500: done" in bad.reason


# --- canary ---------------------------------------------------------------------------------

SPEC = CanarySpec(canary_url="http://127.0.0.1:1", stable_url="http://127.0.0.1:2", samples=30)


def test_a_canary_like_the_stable_target_passes() -> None:
    stable = [10.0 + (i % 7) * 0.3 for i in range(30)]
    result = judge_canary(SPEC, list(reversed(stable)), stable, {})
    assert result.passed and result.reason.startswith("no regression")


def test_a_slower_canary_fails_with_the_shift_and_its_interval() -> None:
    stable = [10.0 + (i % 7) * 0.3 for i in range(30)]
    canary = [v * 1.5 for v in stable]
    result = judge_canary(SPEC, canary, stable, {})
    assert not result.passed and result.reason.startswith("regression beyond 10 %")
    assert result.p_value is not None and result.p_value < 0.01
    assert result.shift_ci_ms is not None and result.shift_ci_ms[0] > 1.0


def test_a_canary_with_errors_fails_on_its_error_rate() -> None:
    stable = [10.0] * 30
    result = judge_canary(SPEC, stable[:27], stable, {"canary": 3})
    assert not result.passed and result.reason.startswith("canary error rate 10.0% > 1.0%")


def test_compare_canary_samples_both_sides_alternately() -> None:
    hosts: list[str] = []
    now = [0.0]

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(f"{request.url.port}")
        now[0] += 0.030 if request.url.port == 1 else 0.010  # the canary is 20 ms slower
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        result = compare_canary(SPEC, client, ["127.0.0.1"], clock=lambda: now[0])
    assert hosts[:4] == ["1", "2", "2", "1"] and len(hosts) == 60
    assert not result.passed and result.canary_median_ms == pytest.approx(30.0)


@pytest.mark.integration
def test_compare_canary_against_real_loopback_servers(serve: Callable[[float], str]) -> None:
    stable, slow = serve(0.0), serve(0.02)
    with httpx.Client() as client:
        same = compare_canary(
            CanarySpec(canary_url=serve(0.0), stable_url=stable, samples=20), client, ["127.0.0.1"]
        )
        slower = compare_canary(
            CanarySpec(canary_url=slow, stable_url=stable, samples=20), client, ["127.0.0.1"]
        )
    assert not slower.passed and "regression" in slower.reason
    assert slower.shift_ms is not None and slower.shift_ms > 10
    assert same.shift_ms is not None and same.shift_ms < slower.shift_ms


# --- the rollout flow, paused for approval and resumed through the API -----------------------


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=SERVER_STARTUP_S),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


def paused_run_id(name: str, timeout: float = 60.0) -> Any:
    """The id of the flow run called ``name`` once it is Paused."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            if runs and runs[0].state is not None and runs[0].state.is_paused():
                return runs[0].id
            time.sleep(0.2)
    raise AssertionError(f"flow run {name} never paused")


def run_flow_and_answer(
    config: Path, version: str, answer: dict[str, Any] | None
) -> tuple[Any, list[str]]:
    """Run the rollout flow; another thread resumes it with ``answer`` (None: never)."""
    from prefect.flow_runs import resume_flow_run

    from neuroerp_ci.orchestration import rollout as rollout_flow

    seen: list[str] = []

    def resume() -> None:
        run_id = paused_run_id(f"production-{version}")
        seen.append("paused")
        resume_flow_run(run_id, run_input=answer)

    resumer = None
    if answer is not None:
        resumer = threading.Thread(target=contextvars.copy_context().run, args=(resume,))
        resumer.start()
    state = rollout_flow(
        version=version,
        config=str(config),
        output_dir=str(config.parent / "out"),
        approval_poll_s=1,
        return_state=True,
    )
    if resumer is not None:
        resumer.join(timeout=60)
    return state, seen


def rollout_record(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "out" / "rollout.json").read_text())
    return data


@pytest.mark.integration
def test_flow_approved_through_the_api_deploys_and_validates(harness: None, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path)
    answer = {"approve": True, "approver": "alice", "comment": "release window"}
    state, seen = run_flow_and_answer(config, "a1", answer)
    assert seen == ["paused"]
    assert state.is_completed(), state.message
    assert hook_lines(tmp_path) == ["backup a1", "deploy a1"]
    record = rollout_record(tmp_path)
    assert record["approval"]["approver"] == "alice" and record["approval"]["approved"]
    steps = [s["step"] for s in record["steps"]]
    assert steps == ["lock", "approval", "backup", "deploy", "validation"]
    assert record["rollback"] == "not needed"
    assert record["lock"]["acquired"] and record["lock"]["released"].startswith("released at")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["checks"][0]["id"] == "validate"


@pytest.mark.integration
def test_flow_rejected_through_the_api_fails_with_who_and_why(
    harness: None, tmp_path: Path
) -> None:
    from neuroerp_ci.store import open_store

    config = write_pipeline(tmp_path)
    answer = {"approve": False, "approver": "bob", "comment": "freeze until Monday"}
    state, _ = run_flow_and_answer(config, "r1", answer)
    assert state.is_failed()
    assert state.message == (
        "production: FAIL — rejected by bob: freeze until Monday; nothing deployed, "
        "no rollback needed"
    )
    assert hook_lines(tmp_path) == []
    assert rollout_record(tmp_path)["rollback"] == "not needed"
    with open_store(f"sqlite:///{tmp_path / '.neuroerp-ci' / 'history.sqlite3'}") as store:
        (run,) = store.runs(stage="production")
    assert run.verdict is Verdict.FAIL and "rejected by bob: freeze until Monday" in run.summary


@pytest.mark.integration
def test_flow_not_approved_in_time_fails(harness: None, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, timeout=2)
    state, _ = run_flow_and_answer(config, "t1", None)
    # Prefect's server fails a run whose pause expired with its own message and refuses the
    # flow's Failed(message): the reason lives in the records (rollout.json, report, history).
    assert state.is_failed()
    assert hook_lines(tmp_path) == []
    record = rollout_record(tmp_path)
    assert record["approval"]["timed_out"] and record["verdict"] == "FAIL"
    assert "approval timed out after 2 s (nobody approved)" in record["summary"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "FAIL" and "approval timed out" in report["summary"]


@pytest.mark.integration
def test_flow_with_failing_validation_rolls_back_once(harness: None, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, validate_exit=1)
    answer = {"approve": True, "approver": "alice", "comment": ""}
    state, _ = run_flow_and_answer(config, "f1", answer)
    assert state.is_failed()
    assert hook_lines(tmp_path) == ["backup f1", "deploy f1", "rollback f1"]
    record = rollout_record(tmp_path)
    steps = {s["step"]: s for s in record["steps"]}
    assert steps["validation"]["status"] == "failed" and steps["rollback"]["status"] == "ok"
    assert record["validation"]["verdict"] == "FAIL" and record["rollback"] == "rolled back"
    assert "; rolled back (rollback hook ok" in (state.message or "")


@pytest.mark.integration
def test_flow_with_failing_rollback_says_so(harness: None, tmp_path: Path) -> None:
    config = write_pipeline(tmp_path, validate_exit=1, rollback_exit=2)
    answer = {"approve": True, "approver": "bob", "comment": "go"}
    state, _ = run_flow_and_answer(config, "x1", answer)
    assert state.is_failed()
    assert (state.message or "").startswith("production: FAIL — ROLLBACK FAILED: rollback hook")
    assert hook_lines(tmp_path).count("rollback x1") == 1
    assert rollout_record(tmp_path)["rollback"] == "FAILED"


# --- one rollout at a time: the rollout lock --------------------------------------------------


@pytest.fixture
def lock_store(tmp_path: Path) -> Iterator[HistoryStore]:
    with open_store(f"sqlite:///{tmp_path / 'state' / 'history.sqlite3'}") as store:
        yield store


def lock_for(
    store: HistoryStore, run_id: str, spec: LockSpec | None = None, **clock: Any
) -> RolloutLock:
    table = store.rollout_locks()
    return RolloutLock(
        table, spec or LockSpec(), "production", "shop", run_id, f"flow run {run_id}", **clock
    )


def locked_rollout(
    project: Path, approve: Callable[..., Approval], verdict: Verdict, lock: RolloutLock
) -> RolloutReport:
    pipeline = load_pipeline(project / "neuroerp-ci.toml")
    return run_rollout(
        pipeline,
        pipeline.stage("production"),
        "v1",
        "run-1",
        approve=approve,
        validate=validation(verdict),
        hooks=runner(project),
        lock=lock,
    )


def never_asked(request: ApprovalRequest) -> Approval:
    raise AssertionError("approval was asked although another rollout holds the lock")


def holder_of(store: HistoryStore) -> str | None:
    held = store.rollout_locks().holder("production", "shop")
    return None if held is None else held.run_id


class FakeWait:
    """``sleep`` and ``monotonic`` of a waiting lock: sleeping advances the clock."""

    def __init__(self, on_sleep: Callable[[], None] = lambda: None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self._on_sleep()

    def monotonic(self) -> float:
        return self.now


def test_a_second_rollout_is_refused_at_once_naming_the_holder_and_nothing_happens(
    tmp_path: Path, lock_store: HistoryStore
) -> None:
    write_pipeline(tmp_path)
    first = lock_for(lock_store, "run-0")
    assert first.acquire().acquired
    report = locked_rollout(tmp_path, never_asked, Verdict.PASS, lock_for(lock_store, "run-1"))
    assert report.verdict is Verdict.FAIL and hook_lines(tmp_path) == []
    assert [(s.step, s.status) for s in report.steps] == [("lock", StepStatus.FAILED)]
    assert report.lock is not None and report.lock.holder_run_id == "run-0"
    since = report.lock.holder_since
    assert since is not None
    assert summary_line(report.summary) == (
        "production: FAIL — another production rollout of shop holds the rollout lock: run "
        f"run-0 (flow run run-0) since {since}; nothing deployed, no rollback needed"
    )
    assert json.loads(render_rollout_json(report))["lock"]["holder_run_id"] == "run-0"
    assert "Lock: another production rollout of shop holds" in render_rollout_markdown(report)
    assert holder_of(lock_store) == "run-0"  # the refused run leaves the holder's lock alone
    stage_report = rollout_stage_report(report)
    assert [o.condition for o in stage_report.outcomes] == ["lock ok"]
    first.release()


def _raise(request: ApprovalRequest) -> Approval:
    raise RuntimeError("the Prefect API went away")


@pytest.mark.parametrize(
    ("approve", "verdict", "validate_exit", "expected_hooks"),
    [
        (approve_as("alice"), Verdict.PASS, 0, ["backup v1", "deploy v1"]),
        (approve_as("bob", approved=False), Verdict.FAIL, 0, []),
        (lambda request: Approval(False, timed_out=True), Verdict.FAIL, 0, []),
        (approve_as("alice"), Verdict.FAIL, 1, ["backup v1", "deploy v1", "rollback v1"]),
    ],
    ids=["approved", "rejected", "timed-out", "rolled-back"],
)
def test_the_lock_is_held_from_before_approval_and_released_on_every_way_out(
    tmp_path: Path,
    lock_store: HistoryStore,
    approve: Callable[..., Approval],
    verdict: Verdict,
    validate_exit: int,
    expected_hooks: list[str],
) -> None:
    write_pipeline(tmp_path, validate_exit=validate_exit)
    held_while_asked: list[str | None] = []

    def asked(request: ApprovalRequest) -> Approval:
        held_while_asked.append(holder_of(lock_store))
        return approve(request)

    report = locked_rollout(tmp_path, asked, verdict, lock_for(lock_store, "run-1"))
    assert held_while_asked == ["run-1"]
    assert report.verdict is verdict and hook_lines(tmp_path) == expected_hooks
    assert report.steps[0].step == "lock" and report.steps[0].ok
    assert report.lock is not None and report.lock.released.startswith("released at")
    assert holder_of(lock_store) is None


def test_the_lock_is_released_when_the_approval_itself_crashes(
    tmp_path: Path, lock_store: HistoryStore
) -> None:
    write_pipeline(tmp_path)
    with pytest.raises(RuntimeError, match="went away"):
        locked_rollout(tmp_path, _raise, Verdict.PASS, lock_for(lock_store, "run-1"))
    assert holder_of(lock_store) is None and hook_lines(tmp_path) == []


def test_a_waiting_rollout_goes_on_once_the_holder_is_done(
    tmp_path: Path, lock_store: HistoryStore
) -> None:
    write_pipeline(tmp_path)
    first = lock_for(lock_store, "run-0")
    assert first.acquire().acquired

    def holder_done() -> None:  # the first rollout ends while the second waits
        first.release()

    wait = FakeWait(on_sleep=holder_done)
    spec = LockSpec(mode="wait", wait_timeout_s=600, poll_s=5)
    lock = lock_for(lock_store, "run-1", spec, sleep=wait.sleep, monotonic=wait.monotonic)
    report = locked_rollout(tmp_path, approve_as("alice"), Verdict.PASS, lock)
    assert wait.sleeps == [5]
    assert report.verdict is Verdict.PASS and hook_lines(tmp_path) == ["backup v1", "deploy v1"]
    assert report.lock is not None and report.lock.waited_s == 5
    assert "after waiting 5 s" in report.lock.reason and holder_of(lock_store) is None


def test_a_waiting_rollout_gives_up_at_its_wait_timeout_naming_the_holder(
    tmp_path: Path, lock_store: HistoryStore
) -> None:
    write_pipeline(tmp_path)
    assert lock_for(lock_store, "run-0").acquire().acquired
    wait = FakeWait()
    spec = LockSpec(mode="wait", wait_timeout_s=12, poll_s=5)
    lock = lock_for(lock_store, "run-1", spec, sleep=wait.sleep, monotonic=wait.monotonic)
    report = locked_rollout(tmp_path, never_asked, Verdict.PASS, lock)
    assert wait.sleeps == [5, 5, 2]
    assert report.verdict is Verdict.FAIL and hook_lines(tmp_path) == []
    line = summary_line(report.summary)
    assert "still holds the rollout lock after 12 s of waiting: run run-0" in line
    assert holder_of(lock_store) == "run-0"


def test_a_rollout_whose_lock_was_taken_over_during_approval_deploys_nothing(
    tmp_path: Path, lock_store: HistoryStore
) -> None:
    write_pipeline(tmp_path)
    # Another run whose clock says this run's lease ran out (it was not renewed in time).
    hour_later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    later = lock_store.rollout_locks(lambda: hour_later)

    def approve_while_taken_over(request: ApprovalRequest) -> Approval:
        assert later.try_acquire("production", "shop", "intruder", "", 60).lease is not None
        return Approval(True, "alice")

    report = locked_rollout(
        tmp_path, approve_while_taken_over, Verdict.PASS, lock_for(lock_store, "run-1")
    )
    assert report.verdict is Verdict.FAIL and hook_lines(tmp_path) == []
    assert [s.step for s in report.steps] == ["lock", "approval", "lock"]
    line = summary_line(report.summary)
    assert "the rollout lock was lost" in line and "nothing deployed" in line
    assert report.lock is not None and "not held any more" in report.lock.released
    assert holder_of(lock_store) == "intruder"


class _Unreachable(LockTable):
    def __init__(self) -> None:
        super().__init__(write=None, read=None)  # type: ignore[arg-type]

    def try_acquire(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError("history store db: cannot take the lock: connection refused")


def test_a_store_that_cannot_be_reached_is_no_lock(tmp_path: Path) -> None:
    write_pipeline(tmp_path)
    lock = RolloutLock(_Unreachable(), LockSpec(), "production", "shop", "run-1")
    report = locked_rollout(tmp_path, never_asked, Verdict.PASS, lock)
    assert report.verdict is Verdict.FAIL and hook_lines(tmp_path) == []
    assert "could not take the production rollout lock of shop" in summary_line(report.summary)
    assert "connection refused" in summary_line(report.summary)


def test_lock_settings_in_the_pipeline_file(tmp_path: Path) -> None:
    assert LockSpec.model_validate("wait") == LockSpec(mode="wait")
    path = write_pipeline(tmp_path)
    text = path.read_text() + '\n[stages.production.lock]\nmode = "wait"\nwait_timeout_s = 90\n'
    path.write_text(text)
    lock = load_pipeline(path).stage("production").lock
    assert lock == LockSpec(mode="wait", wait_timeout_s=90)
    path.write_text(text + '\n[stages.plain]\nchecks = ["validate"]\nlock = "wait"\n')
    with pytest.raises(ConfigError, match="'lock' applies only to a rollout stage"):
        load_pipeline(path)
    path.write_text(text.replace('"wait"', '"queue"'))
    with pytest.raises(ConfigError, match="mode"):
        load_pipeline(path)


@pytest.mark.integration
def test_flow_refused_at_once_while_another_rollout_holds_the_lock(
    harness: None, tmp_path: Path
) -> None:
    config = write_pipeline(tmp_path)
    url = f"sqlite:///{tmp_path / '.neuroerp-ci' / 'history.sqlite3'}"
    with open_store(url) as store:
        first = lock_for(store, "run-0")
        assert first.acquire().acquired
        state, seen = run_flow_and_answer(config, "l1", None)  # must not wait for an answer
        assert holder_of(store) == "run-0"
        first.release()
        (run,) = store.runs(stage="production")
    assert state.is_failed() and seen == []
    message = state.message or ""
    assert "holds the rollout lock: run run-0 (flow run run-0) since " in message, message
    assert hook_lines(tmp_path) == []
    record = rollout_record(tmp_path)
    assert record["lock"]["acquired"] is False and record["lock"]["holder_run_id"] == "run-0"
    assert [s["step"] for s in record["steps"]] == ["lock"]
    assert run.verdict is Verdict.FAIL and "run run-0" in run.summary
