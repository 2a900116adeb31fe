"""Notifications: Prometheus text that Prometheus' own parser reads back, a Pushgateway PUT, and
a webhook on FAIL whose secret URL never shows up in a note, a log line or a report.

Unit tests use ``httpx.MockTransport``; the integration twins use a real loopback receiver,
and one runs the ``stage-gate`` flow with the URL in a Prefect Secret block.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.config.stage_rules import NotifySpec
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
)
from neuroerp_ci.orchestration import stage_gate  # configures Prefect's logging before caplog
from neuroerp_ci.release.notifications import (
    CONTENT_TYPE,
    NotifyError,
    metric_names,
    notify_outcome,
    prometheus_text,
    push_metrics,
    pushgateway_url,
    resolve_webhook_url,
    send_webhook,
    webhook_payload,
    write_metrics_file,
)

# Prefect's temporary server took 70 s to start on a busy 2-core CI machine (30 s default).
SERVER_STARTUP_S = 240

SECRET = "https://hooks.example.test/services/T000/B000/s3cr3t-token"


def report(verdict: Verdict = Verdict.FAIL, version: str = "3f9a2c1") -> StageReport:
    api = CheckResult("api-baseline", "http", CheckStatus.OK, duration_s=2.5)
    api.add_metric(Metric("p95_ms", 412.0, "ms", Direction.LOWER))
    api.add_metric(Metric("error_rate", math.nan, "", Direction.LOWER))
    scan = CheckResult("static-security", "bandit", CheckStatus.ERROR, reason="bandit crashed")
    scan.findings.append(Finding("bandit", "B602", FindingSeverity.HIGH, "shell", "a.py:3"))
    failed = Outcome(
        "api-baseline", "p95_ms <= 300", OutcomeStatus.FAIL, Severity.BLOCKING, 412.0, "300",
        "p95_ms 412 > 300",
    )  # fmt: skip
    return StageReport(
        "run-9", "staging", version, "erp", verdict, "2026-03-01T12:00:00+00:00",
        "2026-03-01T12:00:42+00:00", 42.0, [api, scan], [failed],
        summary=Summary("staging", verdict, ("1 of 1 conditions failed: p95_ms 412 > 300",)),
    )  # fmt: skip


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


# --- Prometheus text ------------------------------------------------------------------------


def test_prometheus_text_is_read_back_by_prometheus_own_parser() -> None:
    text = prometheus_text(report())
    assert set(families(text)) == set(metric_names(text)) == {
        "neuroerp_ci_gate_verdict", "neuroerp_ci_gate_info", "neuroerp_ci_gate_duration_seconds",
        "neuroerp_ci_gate_last_run_timestamp_seconds", "neuroerp_ci_gate_outcomes",
        "neuroerp_ci_check_status", "neuroerp_ci_check_duration_seconds",
        "neuroerp_ci_check_findings", "neuroerp_ci_check_metric",
    }  # fmt: skip
    assert sample(text, "neuroerp_ci_gate_verdict", verdict="FAIL", stage="staging") == 1
    assert sample(text, "neuroerp_ci_gate_verdict", verdict="PASS") == 0
    assert sample(text, "neuroerp_ci_gate_outcomes", status="fail") == 1
    assert sample(text, "neuroerp_ci_check_metric", check="api-baseline", metric="p95_ms") == 412
    assert math.isnan(sample(text, "neuroerp_ci_check_metric", metric="error_rate"))
    assert sample(text, "neuroerp_ci_check_status", check="static-security", status="error") == 1
    assert sample(text, "neuroerp_ci_check_findings", severity="high") == 1
    assert sample(text, "neuroerp_ci_gate_last_run_timestamp_seconds") == 1772366442


def test_inconclusive_outcomes_are_listed_as_what_they_count_as() -> None:
    """An INCONCLUSIVE outcome is in ``failed`` or ``warned`` by its weight, labelled."""
    base = report()
    spike = Outcome(
        "api-baseline", "p95_ms <= 300", OutcomeStatus.INCONCLUSIVE, Severity.BLOCKING, 412.0,
        "300", "p95_ms 412 > 300; not confirmed: re-measured p95_ms 212 within <= 300",
        counts_as=OutcomeStatus.WARN,
    )  # fmt: skip
    weak = Outcome(
        "api-baseline", "p95_ms no regression", OutcomeStatus.INCONCLUSIVE, Severity.BLOCKING,
        412.0, "", "cannot detect shifts below 38 %", counts_as=OutcomeStatus.FAIL,
    )  # fmt: skip
    outcomes = [*base.outcomes, spike, weak]
    payload = webhook_payload(StageReport(**{**vars(base), "outcomes": outcomes}))
    assert payload["failed"] == [
        "api-baseline: p95_ms 412 > 300",
        "api-baseline: inconclusive: cannot detect shifts below 38 %",
    ]
    assert payload["warned"] == [
        "api-baseline: inconclusive: p95_ms 412 > 300; not confirmed: re-measured p95_ms 212"
        " within <= 300"
    ]
    metrics = prometheus_text(StageReport(**{**vars(base), "outcomes": [spike, weak]}))
    assert sample(metrics, "neuroerp_ci_gate_outcomes", status="inconclusive") == 2


def test_label_values_are_escaped() -> None:
    text = prometheus_text(report(version='v"1\\beta\nnext'))
    assert sample(text, "neuroerp_ci_gate_info", version='v"1\\beta\nnext') == 1


def test_metrics_file_is_written_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = write_metrics_file("a 1\n", tmp_path / "metrics" / "staging.prom")
    write_metrics_file("a 2\n", path)
    assert path.read_text() == "a 2\n"
    assert [p.name for p in path.parent.iterdir()] == ["staging.prom"]


def test_pushgateway_url_groups_by_stage_and_target() -> None:
    assert (
        pushgateway_url("http://127.0.0.1:9091/", "neuroerp_ci", {"stage": "staging", "t": "a b"})
        == "http://127.0.0.1:9091/metrics/job/neuroerp_ci/stage/staging/t/a%20b"
    )
    assert pushgateway_url("http://gw", "j", {"target": "erp/eu"}).endswith(
        "/target@base64/ZXJwL2V1"
    )


def test_push_metrics_puts_the_text() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        note = push_metrics("a 1\n", "http://127.0.0.1:9091", "j", {"stage": "s"}, client, 5)
    assert note == "metrics pushed to http://127.0.0.1:9091 (HTTP 200)"
    assert seen[0].method == "PUT" and seen[0].content == b"a 1\n"
    assert seen[0].headers["content-type"] == CONTENT_TYPE
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(400, text="bad"))) as c,
        pytest.raises(NotifyError, match="pushgateway http://127.0.0.1:9091: HTTP 400: bad"),
    ):
        push_metrics("a 1\n", "http://127.0.0.1:9091", "j", {}, c, 5)


# --- the webhook ----------------------------------------------------------------------------


def test_the_webhook_url_comes_from_the_environment_then_the_secret_block() -> None:
    spec = NotifySpec(webhook_secret_block="ci-webhook")
    loaded: list[str] = []

    def load(name: str) -> str:
        loaded.append(name)
        return SECRET

    assert resolve_webhook_url(spec, {"NEUROERP_CI_WEBHOOK_URL": "http://127.0.0.1:1/h"}, load) == (
        "http://127.0.0.1:1/h"
    )
    assert loaded == []
    assert resolve_webhook_url(spec, {}, load) == SECRET and loaded == ["ci-webhook"]
    assert resolve_webhook_url(NotifySpec(), {}, load) is None


def test_a_bad_webhook_value_is_refused_without_showing_it() -> None:
    with pytest.raises(NotifyError) as caught:
        resolve_webhook_url(NotifySpec(), {"NEUROERP_CI_WEBHOOK_URL": "hooks.example/s3cr3t"})
    assert "s3cr3t" not in str(caught.value)
    assert str(caught.value) == "webhook: the URL in $NEUROERP_CI_WEBHOOK_URL is not an http(s) URL"


def test_send_webhook_retries_server_errors_but_not_refusals() -> None:
    statuses = iter([500, 429, 200])
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(next(statuses)))) as c:
        note = send_webhook(SECRET, {"text": "x"}, c, timeout=1, retries=2, sleep=lambda s: None)
    assert note == "webhook: delivered (HTTP 200, attempt 3)"
    calls: list[int] = []
    transport = httpx.MockTransport(lambda r: calls.append(1) or httpx.Response(404))  # type: ignore[func-returns-value]
    with httpx.Client(transport=transport) as c, pytest.raises(NotifyError, match="HTTP 404"):
        send_webhook(SECRET, {"text": "x"}, c, timeout=1, retries=3, sleep=lambda s: None)
    assert calls == [1]


def test_a_transport_error_naming_the_url_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as c,
        pytest.raises(NotifyError) as caught,
    ):
        send_webhook(SECRET, {"text": "x"}, c, timeout=1, retries=1, sleep=lambda s: None)
    assert "s3cr3t" not in str(caught.value) and "hooks.example.test" not in str(caught.value)
    assert "ConnectError: cannot reach [REDACTED]" in str(caught.value)


@dataclass
class Receiver:
    requests: list[httpx.Request] = field(default_factory=list)
    status: int = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)


def pipeline_with_notify(tmp_path: Path, notify: str) -> Any:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(
        '[target]\nname = "erp"\n\n[[checks]]\nid = "x"\nkind = "command"\n'
        'settings = { argv = ["{python}", "-c", "print(1)"] }\n\n[stages.staging]\n\n'
        f"[notify]\n{notify}\n",
        encoding="utf-8",
    )
    return load_pipeline(path)


def test_notify_outcome_on_fail_sends_writes_and_never_shows_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = pipeline_with_notify(tmp_path, 'metrics_file = "metrics/{stage}.prom"')
    receiver = Receiver()
    caplog.set_level(logging.DEBUG)
    with httpx.Client(transport=httpx.MockTransport(receiver)) as client:
        notes = notify_outcome(
            pipeline, report(), env={"NEUROERP_CI_WEBHOOK_URL": SECRET}, client=client
        )
    assert [n.text for n in notes] == [
        f"metrics written to {tmp_path / 'metrics' / 'staging.prom'}",
        "webhook: delivered (HTTP 200, attempt 1)",
    ]
    body = json.loads(receiver.requests[0].content)
    assert body == webhook_payload(report())
    assert body["text"].startswith("neuroerp-ci erp 3f9a2c1: staging: FAIL")
    assert body["failed"] == ["api-baseline: p95_ms 412 > 300"]
    assert (tmp_path / "metrics" / "staging.prom").read_text() == prometheus_text(report())
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log it
    assert not any("s3cr3t" in r.getMessage() for r in caplog.records)


def test_notify_outcome_on_pass_calls_no_webhook(tmp_path: Path) -> None:
    pipeline = pipeline_with_notify(tmp_path, "")
    receiver = Receiver()
    with httpx.Client(transport=httpx.MockTransport(receiver)) as client:
        notes = notify_outcome(
            pipeline, report(Verdict.PASS), env={"NEUROERP_CI_WEBHOOK_URL": SECRET}, client=client
        )
    assert notes == [] and receiver.requests == []


def test_a_failing_webhook_is_a_warning_note_not_an_exception(tmp_path: Path) -> None:
    pipeline = pipeline_with_notify(tmp_path, "retries = 0")
    with httpx.Client(transport=httpx.MockTransport(Receiver(status=500))) as client:
        (note,) = notify_outcome(
            pipeline, report(), env={"NEUROERP_CI_WEBHOOK_URL": SECRET}, client=client
        )
    assert not note.ok and note.text == "webhook: not delivered after 1 attempt(s): HTTP 500"


# --- integration: a real receiver, and the flow with a Prefect Secret block -----------------


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str], bytes]] = []

    def _take(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _take  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str], bytes]]]]:
    handler = type("Sink", (_Sink,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.received
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_webhook_and_pushgateway_against_a_real_receiver(
    tmp_path: Path, sink: tuple[str, list[Any]]
) -> None:
    base, received = sink
    pipeline = pipeline_with_notify(tmp_path, f'pushgateway_url = "{base}"')
    notes = notify_outcome(pipeline, report(), env={"NEUROERP_CI_WEBHOOK_URL": f"{base}/s3cr3t"})
    assert all(n.ok for n in notes) and not any("s3cr3t" in n.text for n in notes)
    (put, post) = received
    assert put[0] == "PUT" and put[1] == "/metrics/job/neuroerp_ci/stage/staging/target/erp"
    assert put[2]["Content-Type"] == CONTENT_TYPE and put[3].decode() == prometheus_text(report())
    assert post[0] == "POST" and post[1] == "/s3cr3t"
    assert json.loads(post[3])["verdict"] == "FAIL"


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=SERVER_STARTUP_S),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


@pytest.mark.integration
def test_a_failed_stage_gate_calls_the_webhook_from_a_secret_block(
    harness: None,
    tmp_path: Path,
    sink: tuple[str, list[Any]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.blocks.system import Secret

    base, received = sink
    secret_url = f"{base}/hook/s3cr3t"
    Secret(value=secret_url).save("neuroerp-ci-test-webhook", overwrite=True)
    monkeypatch.delenv("NEUROERP_CI_WEBHOOK_URL", raising=False)
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(
        '[[checks]]\nid = "x"\nkind = "command"\n'
        'settings = { argv = ["{python}", "-c", "raise SystemExit(4)"] }\n\n[stages.dev]\n\n'
        '[notify]\nwebhook_secret_block = "neuroerp-ci-test-webhook"\n'
        'metrics_file = "metrics/{stage}.prom"\n',
        encoding="utf-8",
    )
    caplog.set_level(logging.DEBUG)
    # Importing neuroerp_ci.cli (other tests do) sets PREFECT_LOGGING_LEVEL=WARNING for Prefect's
    # loggers; the run logger's INFO lines are what this test reads.
    caplog.set_level(logging.DEBUG, logger="prefect")
    state = stage_gate(
        stage="dev", config=str(config), version="v1", output_dir=str(tmp_path / "out"),
        return_state=True,
    )  # fmt: skip
    assert state.is_failed()
    (post,) = received
    assert post[1] == "/hook/s3cr3t" and json.loads(post[3])["summary"] == state.message
    text = (tmp_path / "metrics" / "dev.prom").read_text()
    assert sample(text, "neuroerp_ci_gate_verdict", verdict="FAIL", stage="dev") == 1
    shown = capsys.readouterr()
    reports = "".join(p.read_text() for p in (tmp_path / "out").iterdir() if p.is_file())
    for where in (shown.out, shown.err, reports, *(r.getMessage() for r in caplog.records)):
        assert "s3cr3t" not in where
    assert any("webhook: delivered" in r.getMessage() for r in caplog.records)
