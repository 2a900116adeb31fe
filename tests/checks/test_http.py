from __future__ import annotations

import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import ValidationError
from rich.console import Console

from neuroerp_ci.checks._percentiles import percentile
from neuroerp_ci.checks.http import (
    HttpProbeCheck,
    HttpProbeSettings,
    ProbeRun,
    Sample,
    probe_metrics,
)
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.cli.progress import ConsoleProgress
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import CheckStatus, Direction, OutcomeStatus, Priority
from neuroerp_ci.support.hosts import free_port

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def make_check(settings: dict[str, Any], timeout: float = 60.0) -> Check:
    return Check(
        id="latency",
        title="latency",
        kind="http",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=timeout,
        settings=HttpProbeSettings.model_validate(settings),
    )


def make_ctx(
    tmp_path: Path, base_url: str | None, allowed: tuple[str, ...] = LOOPBACK
) -> CheckContext:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return CheckContext(
        project_dir=tmp_path, work_dir=work, python=sys.executable, env={},
        base_url=base_url, allowed_hosts=allowed,
    )


class Recorder:
    """A MockTransport handler that records every request it was given."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def by_path(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/bad":
        return httpx.Response(503, text="down")
    if request.url.path == "/moved":
        return httpx.Response(302, headers={"location": "http://10.255.255.1:9/"})
    return httpx.Response(200, text="ok")


# --- settings ------------------------------------------------------------------------


def test_kind_is_exclusive_and_needs_target() -> None:
    assert HttpProbeCheck.name == "http"
    assert HttpProbeCheck.exclusive is True
    assert HttpProbeCheck.needs_target is True


@pytest.mark.parametrize(
    "endpoint",
    [
        {"name": "a"},  # neither path nor url
        {"name": "a", "path": "/", "url": "http://127.0.0.1/"},  # both
        {"name": "A b", "path": "/"},  # bad name
        {"name": "a", "url": "/relative"},  # url must be absolute
        {"name": "a", "path": "/", "expect_status": [700]},
        {"name": "a", "path": "/", "method": "FETCH"},
        {"name": "a", "path": "/", "typo": 1},
    ],
)
def test_invalid_endpoint_settings(endpoint: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HttpProbeSettings.model_validate({"endpoints": [endpoint]})


def test_settings_defaults_json_alias_and_limits() -> None:
    s = HttpProbeSettings.model_validate(
        {"endpoints": [{"name": "a", "path": "/", "method": "POST", "json": {"x": 1}}]}
    )
    assert (s.samples, s.warmup, s.request_timeout, s.verify_tls) == (20, 2, 10.0, True)
    assert s.endpoints[0].body == {"x": 1}
    assert s.endpoints[0].expect_status == [200]
    with pytest.raises(ValidationError):
        HttpProbeSettings.model_validate({"endpoints": []})
    with pytest.raises(ValidationError):
        HttpProbeSettings.model_validate({"endpoints": [{"name": "a", "path": "/"}], "samples": 0})
    with pytest.raises(ValidationError, match="duplicate"):
        HttpProbeSettings.model_validate(
            {"endpoints": [{"name": "a", "path": "/"}, {"name": "a", "path": "/x"}]}
        )


# --- unit: MockTransport -------------------------------------------------------------


def test_statuses_error_rates_and_round_robin(tmp_path: Path) -> None:
    rec = Recorder(by_path)
    check = make_check(
        {"endpoints": [{"name": "good", "path": "/ok"}, {"name": "bad", "path": "/bad"}],
         "samples": 5, "warmup": 1}
    )
    result = HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, "http://127.0.0.1:1"))

    assert result.status is CheckStatus.OK
    paths = [r.url.path for r in rec.requests]
    assert paths == ["/ok", "/bad"] * 6  # 1 warm-up + 5 samples, interleaved
    m = result.metrics
    assert m["good.error_rate"].value == 0.0
    assert m["bad.error_rate"].value == 1.0
    assert m["error_rate"].value == 0.5
    assert m["error_rate"].unit == "ratio"
    assert m["requests"].value == 10  # warm-up not counted
    assert len(m["good.p50_ms"].samples) == 5
    assert "bad.p50_ms" not in m  # no successful request: no latency to report
    assert len(m["p95_ms"].samples) == 5  # aggregate latency covers successes only
    assert m["p95_ms"].direction is Direction.LOWER
    assert m["throughput_rps"].direction is Direction.HIGHER
    assert "connect_ms" not in m  # MockTransport opens no connection
    # The failing endpoint first, how it failed; then the figures.
    assert result.reason.startswith("bad: 5 of 5 answered HTTP 503; 10 requests, p95 ")
    assert result.reason.endswith("error rate 50.0 %")

    raw = json.loads(Path(result.artifacts["http_samples"]).read_text())
    bad = raw["endpoints"]["bad"]
    assert bad["url"] == "http://127.0.0.1:1/bad"
    assert [s["status"] for s in bad["samples"]] == [503] * 6
    assert [s["warmup"] for s in bad["samples"]] == [True] + [False] * 5
    assert "unexpected status 503" in bad["samples"][0]["error"]


def test_body_headers_method_and_expected_status(tmp_path: Path) -> None:
    def created(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert json.loads(request.content) == {"limit": 10}
        assert request.headers["x-tenant"] == "t1"
        return httpx.Response(201)

    rec = Recorder(created)
    check = make_check(
        {"endpoints": [{"name": "orders", "url": "http://localhost:8000/api/orders",
                        "method": "POST", "json": {"limit": 10}, "headers": {"X-Tenant": "t1"},
                        "expect_status": [201]}],
         "samples": 3, "warmup": 0}
    )
    result = HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, None))
    assert len(rec.requests) == 3
    assert result.metrics["error_rate"].value == 0.0


def test_redirect_is_not_followed_and_counts_as_error(tmp_path: Path) -> None:
    rec = Recorder(by_path)
    check = make_check(
        {"endpoints": [{"name": "a", "path": "/ok"}, {"name": "m", "path": "/moved"}],
         "samples": 2, "warmup": 0}
    )
    result = HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, "http://127.0.0.1:1"))
    assert {r.url.host for r in rec.requests} == {"127.0.0.1"}
    assert result.metrics["m.error_rate"].value == 1.0


def test_transport_errors_count_in_error_rate(tmp_path: Path) -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200)

    check = make_check({"endpoints": [{"name": "a", "path": "/"}], "samples": 4, "warmup": 0})
    result = HttpProbeCheck(httpx.MockTransport(flaky)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.metrics["error_rate"].value == 0.5
    raw = json.loads(Path(result.artifacts["http_samples"]).read_text())
    errors = [s["error"] for s in raw["endpoints"]["a"]["samples"]]
    assert errors[0] == "ReadTimeout: timed out" and errors[1] is None


def test_nothing_answering_is_a_target_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    check = make_check({"endpoints": [{"name": "a", "path": "/health"}], "samples": 3})
    ctx = make_ctx(tmp_path, "http://127.0.0.1:1")
    expected = r"not answering at http://127\.0\.0\.1:1/health: ConnectError"
    with pytest.raises(TargetError, match=expected):
        HttpProbeCheck(httpx.MockTransport(refuse)).measure(check, ctx)
    result = execute_check(HttpProbeCheck(httpx.MockTransport(refuse)), check, ctx)
    assert result.status is CheckStatus.ERROR
    assert "Connection refused" in result.reason
    # The raw samples are kept even though the check failed.
    raw = json.loads((ctx.work_dir / "http_samples.json").read_text())
    assert len(raw["endpoints"]["a"]["samples"]) == 5


def test_all_wrong_status_is_not_a_target_error(tmp_path: Path) -> None:
    # The target answered (with 503): that is an error rate for the gates, not "unreachable".
    check = make_check({"endpoints": [{"name": "bad", "path": "/bad"}], "samples": 2})
    result = HttpProbeCheck(Recorder(by_path).transport()).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.metrics["error_rate"].value == 1.0
    assert "p95_ms" not in result.metrics
    assert "no successful request" in result.reason


def test_disallowed_host_sends_zero_requests(tmp_path: Path) -> None:
    rec = Recorder(by_path)
    check = make_check(
        {"endpoints": [{"name": "ok", "path": "/ok"},
                       {"name": "far", "url": "http://10.255.255.1:9/x"}]}
    )
    ctx = make_ctx(tmp_path, "http://127.0.0.1:1", allowed=("127.0.0.1",))
    with pytest.raises(TargetError, match=r"'10\.255\.255\.1'.*\['127\.0\.0\.1'\]"):
        HttpProbeCheck(rec.transport()).measure(check, ctx)
    assert rec.requests == []  # refused before the first (allowed) endpoint was probed


def test_relative_path_without_base_url_is_a_target_error(tmp_path: Path) -> None:
    rec = Recorder(by_path)
    check = make_check({"endpoints": [{"name": "a", "path": "/ok"}]})
    with pytest.raises(TargetError, match="no base_url"):
        HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, None))
    assert rec.requests == []


def test_probe_stops_at_check_timeout(tmp_path: Path) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)
        return httpx.Response(200)

    check = make_check(
        {"endpoints": [{"name": "a", "path": "/"}], "samples": 100, "warmup": 0}, timeout=0.2
    )
    rec = Recorder(slow)
    with pytest.raises(ToolError, match="exceeded timeout"):
        HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, "http://127.0.0.1:1"))
    assert 0 < len(rec.requests) < 100


def _sample(name: str, ms: float, *, ok: bool = True, warmup: bool = False) -> Sample:
    return Sample(name, warmup, ms, status=200 if ok else 500, ok=ok)


def test_metrics_use_counted_successes_only() -> None:
    good = [12.0, 3.0, 7.0, 30.0, 5.0, 9.0]
    run = ProbeRun(
        samples=[_sample("a", 1000.0, warmup=True), *(_sample("a", v) for v in good),
                 _sample("a", 999.0, ok=False), _sample("b", 4.0)],
        wall_s=2.0,
    )
    m = {metric.name: metric for metric in probe_metrics(run, ["a", "b"])}
    assert m["a.p50_ms"].value == pytest.approx(percentile(good, 50))
    assert m["a.p95_ms"].value == pytest.approx(percentile(good, 95))
    assert m["a.p99_ms"].value == pytest.approx(percentile(good, 99))
    assert m["a.mean_ms"].value == pytest.approx(sum(good) / len(good))
    assert m["a.error_rate"].value == pytest.approx(1 / 7)
    assert m["p99_ms"].value == pytest.approx(percentile([*good, 4.0], 99))
    assert m["max_ms"].value == 30.0
    assert m["requests"].value == 8
    assert m["throughput_rps"].value == pytest.approx(4.0)
    assert m["error_rate"].value == pytest.approx(1 / 8)
    assert "mean_ms" not in m


def test_connect_samples_include_warmup_ttfb_does_not() -> None:
    warm = Sample("a", True, 5.0, status=200, ok=True, connect_ms=1.5, ttfb_ms=50.0)
    later = [Sample("a", False, 3.0, status=200, ok=True, ttfb_ms=t) for t in (1.0, 2.0, 3.0)]
    m = {metric.name: metric for metric in probe_metrics(ProbeRun([warm, *later], 1.0), ["a"])}
    assert m["connect_ms"].value == 1.5 and m["connect_ms"].samples == (1.5,)
    assert m["ttfb_ms"].value == 2.0
    assert "tls_ms" not in m


# --- integration: a real HTTP server on loopback ---------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if url.path == "/slow":
            time.sleep(int(parse_qs(url.query).get("ms", ["50"])[0]) / 1000)
        if url.path == "/hop":  # a redirect to wherever ?to= says
            self.send_response(302)
            self.send_header("Location", parse_qs(url.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = 500 if url.path == "/fail" else 200
        body = b"ok" if status == 200 else b"boom"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting what it is asked to send."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return super().handle_request(request)


@pytest.mark.integration
def test_real_server_latency_and_connection_reuse(tmp_path: Path, server: str) -> None:
    check = make_check(
        {"endpoints": [{"name": "slow", "path": "/slow?ms=50"}, {"name": "fast", "path": "/"}],
         "samples": 5, "warmup": 1}
    )
    result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, server))
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    assert m["slow.p50_ms"].value >= 50.0  # the server sleeps 50 ms before answering
    assert m["slow.p50_ms"].value > m["fast.p50_ms"].value
    assert m["error_rate"].value == 0.0
    assert m["requests"].value == 10
    # One client, keep-alive: a single TCP connect for all 12 requests (warm-up included).
    assert m["connect_ms"].samples and len(m["connect_ms"].samples) == 1
    assert "tls_ms" not in m  # plain http
    assert len(m["ttfb_ms"].samples) == 10
    assert result.tool_versions["httpx"] == httpx.__version__


@pytest.mark.integration
def test_real_server_500_endpoint(tmp_path: Path, server: str) -> None:
    check = make_check(
        {"endpoints": [{"name": "ok", "path": "/"}, {"name": "fail", "path": "/fail"}],
         "samples": 4, "warmup": 0}
    )
    result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, server))
    assert result.status is CheckStatus.OK
    assert result.metrics["fail.error_rate"].value == 1.0
    assert result.metrics["ok.error_rate"].value == 0.0
    assert result.metrics["error_rate"].value == 0.5


@pytest.mark.integration
def test_real_request_timeout_counts_as_error(tmp_path: Path, server: str) -> None:
    check = make_check(
        {"endpoints": [{"name": "ok", "path": "/"}, {"name": "hang", "path": "/slow?ms=1500"}],
         "samples": 2, "warmup": 0, "request_timeout": 0.2}
    )
    result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, server))
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["hang.error_rate"].value == 1.0
    raw = json.loads(Path(result.artifacts["http_samples"]).read_text())
    assert all(s["error"].startswith("ReadTimeout") for s in raw["endpoints"]["hang"]["samples"])


@pytest.mark.integration
def test_closed_port_is_not_answering(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    check = make_check({"endpoints": [{"name": "a", "path": "/"}], "samples": 2})
    result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, base))
    assert result.status is CheckStatus.ERROR
    assert f"not answering at {base}/: ConnectError" in result.reason


@pytest.mark.integration
def test_disallowed_remote_host_is_never_contacted(tmp_path: Path) -> None:
    transport = CountingTransport()
    check = make_check({"endpoints": [{"name": "a", "path": "/"}]})
    ctx = make_ctx(tmp_path, "http://10.255.255.1:9", allowed=("127.0.0.1",))
    result = execute_check(HttpProbeCheck(transport), check, ctx)
    assert result.status is CheckStatus.ERROR
    assert "'10.255.255.1'" in result.reason and "allowed_hosts" in result.reason
    assert transport.calls == 0


@pytest.mark.integration
def test_disallowed_loopback_listener_sees_no_connection(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        check = make_check({"endpoints": [{"name": "a", "path": "/"}], "samples": 3})
        ctx = make_ctx(tmp_path, f"http://127.0.0.2:{port}", allowed=("127.0.0.1",))
        result = execute_check(HttpProbeCheck(), check, ctx)
        assert result.status is CheckStatus.ERROR
        assert "not in allowed_hosts" in result.reason
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection ever reached the listener
        # Control: the listener does notice a connection when one is made.
        with socket.create_connection(("127.0.0.2", port), timeout=2):
            deadline = time.monotonic() + 2
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    assert time.monotonic() < deadline, "control connection not accepted"
                    time.sleep(0.01)
                    continue
                conn.close()
                break


@contextmanager
def silent_listener(address: str) -> Iterator[tuple[socket.socket, int]]:
    """A listener nobody may reach; ``assert_untouched`` proves nothing connected."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((address, 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener, listener.getsockname()[1]


def assert_untouched(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        listener.accept()


# 127.0.0.2 (not allowed) written the ways a resolver or URL parser still reads as it.
DISGUISES = (
    "http://0x7f.0.0.2:{port}/", "http://2130706434:{port}/", "http://0177.0.0.2:{port}/",
    "http://127.0.2:{port}/", "http://[::ffff:127.0.0.2]:{port}/", "http://127.0.0.2.:{port}/",
    "http://127.0.0.1@127.0.0.2:{port}/", "http://127.0.0.2:{port}\\@127.0.0.1/",
    "http://127.0.0.2%3A{port}/", " http://127.0.0.2:{port}/",
)


@pytest.mark.integration
@pytest.mark.parametrize("form", DISGUISES)
def test_disguised_forms_of_a_disallowed_address_never_reach_it(
    tmp_path: Path, form: str
) -> None:
    with silent_listener("127.0.0.2") as (listener, port):
        check = make_check({"endpoints": [{"name": "a", "path": "/"}], "samples": 2})
        ctx = make_ctx(tmp_path, form.format(port=port), allowed=("127.0.0.1",))
        result = execute_check(HttpProbeCheck(), check, ctx)
        assert result.status is CheckStatus.ERROR
        assert result.reason.startswith("endpoint 'a'"), result.reason  # refused up front
        assert_untouched(listener)


@pytest.mark.integration
def test_other_forms_of_the_allowed_address_reach_it(tmp_path: Path, server: str) -> None:
    port = urlsplit(server).port
    endpoints = [
        {"name": name, "url": f"http://{host}:{port}/"}
        for name, host in (("short", "127.1"), ("hex", "0x7f.0.0.1"), ("int", "2130706433"))
    ]
    check = make_check({"endpoints": endpoints, "samples": 2, "warmup": 0})
    result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, server,
                                                             allowed=("127.0.0.1",)))
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["error_rate"].value == 0.0


@pytest.mark.integration
def test_redirect_to_a_disallowed_host_is_not_followed(tmp_path: Path, server: str) -> None:
    with silent_listener("127.0.0.2") as (listener, port):
        hop = f"/hop?to=http://127.0.0.2:{port}/"
        check = make_check({"endpoints": [{"name": "hop", "path": hop}], "samples": 3})
        result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, server))
        assert result.status is CheckStatus.OK, result.reason
        assert result.metrics["error_rate"].value == 1.0  # a 302 where 200 was expected
        assert_untouched(listener)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.integration
def test_tls_timings_and_verification(tmp_path: Path, tls_server: str) -> None:
    settings = {"endpoints": [{"name": "a", "path": "/"}], "samples": 3, "warmup": 1}
    result = execute_check(
        HttpProbeCheck(), make_check({**settings, "verify_tls": False}),
        make_ctx(tmp_path, tls_server),
    )
    assert result.status is CheckStatus.OK, result.reason
    assert len(result.metrics["tls_ms"].samples) == 1  # one handshake, then keep-alive
    assert result.metrics["tls_ms"].value > 0
    # A self-signed certificate is refused when verification is on (the default).
    result = execute_check(HttpProbeCheck(), make_check(settings), make_ctx(tmp_path, tls_server))
    assert result.status is CheckStatus.ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in result.reason


# --- the reason names the failing endpoints and how they failed ---------------------------


def test_the_reason_counts_each_endpoints_failures_by_kind(tmp_path: Path) -> None:
    calls = 0

    def orders(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path == "/ok":
            return httpx.Response(200)
        calls += 1
        if calls == 3:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(503 if calls < 3 else 200)

    check = make_check(
        {"endpoints": [{"name": "home", "path": "/ok"}, {"name": "orders", "path": "/orders"}],
         "samples": 4, "warmup": 0}
    )
    result = HttpProbeCheck(httpx.MockTransport(orders)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.reason.startswith(
        "orders: 3 of 4 failed (2× HTTP 503, 1× connection refused); 8 requests, p95 "
    ), result.reason


def test_the_reason_names_the_first_failing_endpoints_then_how_many_more(tmp_path: Path) -> None:
    names = ["a", "b", "c", "d"]
    check = make_check(
        {"endpoints": [{"name": n, "path": "/bad", "expect_status": [201]} for n in names],
         "samples": 2, "warmup": 0}
    )
    result = HttpProbeCheck(Recorder(by_path).transport()).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.reason.startswith(
        "a: 2 of 2 answered HTTP 503 (expected 201); b: 2 of 2 answered HTTP 503 (expected 201);"
        " 2 more endpoints failed; 8 requests"
    ), result.reason


@pytest.mark.integration
def test_a_500_is_named_by_endpoint_and_status_in_check_gate_and_console(
    tmp_path: Path, server: str
) -> None:
    check = make_check(
        {"endpoints": [{"name": "home", "path": "/"}, {"name": "index", "path": "/fail"}],
         "samples": 3, "warmup": 0}
    )
    result = execute_check(HttpProbeCheck(), check, make_ctx(tmp_path, server))
    assert result.status is CheckStatus.OK, result.reason
    assert result.reason.startswith("index: 3 of 3 answered HTTP 500; 6 requests"), result.reason
    # The gate's error_rate outcome quotes it, and the console prints that literally.
    spec = ConditionSpec.model_validate({"check": "latency", "metric": "error_rate", "max": 0.01})
    outcome = evaluate(spec, check, result)
    assert outcome.status is OutcomeStatus.FAIL
    assert "error_rate 0.5 > 0.01 (index: 3 of 3 answered HTTP 500;" in outcome.reason
    out = io.StringIO()
    with ConsoleProgress(Console(file=out, width=200, force_terminal=False), [check]) as progress:
        progress.check_judged(check, result, [outcome])
    line = out.getvalue().splitlines()[0]
    assert line.startswith("✘ latency") and " FAIL " in line
    assert "index: 3 of 3 answered HTTP 500" in line


# --- acting like a user: forms, assertions, a login (MockTransport) --------------------------

SECURE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def test_user_settings_defaults_and_refusals() -> None:
    s = HttpProbeSettings.model_validate(
        {"endpoints": [{"name": "a", "path": "/"}],
         "login": {"path": "/login", "form": {"user": "qa"}}}
    )
    assert s.login is not None and s.login.method == "POST"
    assert s.login.expect_status == [200, 204, 302, 303] and not s.login.follow_redirects
    assert s.max_body_bytes == 1_048_576 and not s.asserts
    assert s.endpoints[0].security_headers is False and s.endpoints[0].expectations.empty
    for bad in (
        {"endpoints": [{"name": "a", "path": "/", "form": {"a": "1"}, "json": {"a": 1}}]},
        {"endpoints": [{"name": "a", "path": "/", "security_headers": ["csp"]}]},
        {"endpoints": [{"name": "a", "path": "/", "expect_headers": {"X Bad": "1"}}]},
        {"endpoints": [{"name": "a", "path": "/", "expect_body": {}}]},
        {"endpoints": [{"name": "a", "path": "/"}], "login": {"form": {"a": "1"}}},  # no path
        {"endpoints": [{"name": "a", "path": "/"}], "login": {"path": "/l", "expect_status": [9]}},
        {"endpoints": [{"name": "a", "path": "/"}], "max_body_bytes": 10},
    ):
        with pytest.raises(ValidationError):
            HttpProbeSettings.model_validate(bad)


def test_metric_names_and_default_conditions_follow_the_assertions() -> None:
    kind = HttpProbeCheck()
    plain = HttpProbeSettings.model_validate({"endpoints": [{"name": "a", "path": "/"}]})
    asserting = HttpProbeSettings.model_validate(
        {"endpoints": [{"name": "a", "path": "/", "security_headers": True}],
         "login": {"path": "/login", "form": {"u": "x"}}}
    )
    assert kind.default_conditions(plain) == ({"metric": "error_rate", "max": 0.01},)
    assert kind.default_conditions(asserting) == (
        {"metric": "error_rate", "max": 0.01}, {"metric": "assertion_failures", "max": 0},
    )
    names = kind.metric_names(asserting)
    assert names.produces("assertion_failures") and names.produces("a.assertion_failures")
    assert names.produces("login_ms") and names.findings
    none = kind.metric_names(plain)
    assert not none.produces("assertion_failures") and not none.findings
    assert "expect_body, expect_headers or security_headers" in none.problem(
        "assertion_failures", "c", "http"
    )
    assert "settings.login" in none.problem("login_ms", "c", "http")


def test_a_form_post_is_form_encoded_with_its_secret_in_and_shown_nowhere(tmp_path: Path) -> None:
    password = "pw-" + "9f3a2c7d1e"

    def search(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert parse_qs(request.content.decode()) == {"q": ["chairs & tables"], "pw": [password]}
        return httpx.Response(200, text="3 results")

    check = make_check(
        {"endpoints": [{"name": "search", "path": "/search", "method": "POST",
                        "form": {"q": "chairs & tables", "pw": "{env:PW}"},
                        "expect_body": {"contains": ["results"]}}],
         "samples": 2, "warmup": 1}
    )
    ctx = CheckContext(**{**make_ctx(tmp_path, "http://127.0.0.1:1").__dict__,
                          "secrets": {"env:PW": password}})
    rec = Recorder(search)
    result = HttpProbeCheck(rec.transport()).measure(check, ctx)
    assert len(rec.requests) == 3
    assert result.metrics["assertion_failures"].value == 0
    assert result.metrics["search.assertion_failures"].value == 0
    assert result.findings == []
    artifact = Path(result.artifacts["http_samples"]).read_text()
    assert password not in artifact and password not in result.reason


def answers(path_to: dict[str, Callable[[httpx.Request], httpx.Response]]) -> Recorder:
    return Recorder(lambda request: path_to[request.url.path](request))


def test_failed_assertions_are_findings_metrics_and_the_reason(tmp_path: Path) -> None:
    rec = answers({
        "/orders": lambda r: httpx.Response(500, text="<h1>Internal error</h1>"),
        "/login-page": lambda r: httpx.Response(
            200, text="<form>", headers={k: v for k, v in SECURE_HEADERS.items()
                                         if k != "Content-Security-Policy"}),
        "/api": lambda r: httpx.Response(200, json={"total": 3}, headers=SECURE_HEADERS),
    })  # fmt: skip
    check = make_check(
        {"endpoints": [
            {"name": "orders", "path": "/orders", "expect_body": {"contains": ["Total"]}},
            {"name": "login-page", "path": "/login-page",
             "security_headers": ["content-security-policy", "x-content-type-options"]},
            {"name": "api", "path": "/api", "expect_body": {"json": {"$.total": 3}},
             "expect_headers": {"Content-Type": "application/json*",
                                "X-Powered-By": {"absent": True}}},
        ], "samples": 3, "warmup": 1}
    )
    result = HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, "http://127.0.0.1:1"))
    m = result.metrics
    assert m["assertion_failures"].value == 2
    assert m["orders.assertion_failures"].value == 1
    assert m["login-page.assertion_failures"].value == 1
    assert m["api.assertion_failures"].value == 0
    assert m["assertion_failures"].direction is Direction.LOWER
    assert not m["assertion_failures"].timing  # a count: never re-measured as a timing
    assert result.reason.startswith(
        'orders: 3 of 3 answered HTTP 500; orders: body lacks "Total" (HTTP 500);'
        " login-page: missing header Content-Security-Policy (HTTP 200); 9 requests"
    ), result.reason
    by_rule = {f.rule: f for f in result.findings}
    assert set(by_rule) == {"body:contains", "header:Content-Security-Policy"}
    lacks = by_rule["body:contains"]
    assert lacks.location == "orders /orders" and lacks.tool == "http"
    assert lacks.message == 'HTTP 500: body lacks "Total"; body starts "<h1>Internal error</h1>"'
    assert by_rule["header:Content-Security-Policy"].location == "login-page /login-page"
    raw = json.loads(Path(result.artifacts["http_samples"]).read_text())
    assert raw["endpoints"]["orders"]["failed_assertions"] == ['body:contains: body lacks "Total"']
    assert "failed_assertions" not in raw["endpoints"]["api"] or not raw["endpoints"]["api"][
        "failed_assertions"]


def test_the_default_condition_fails_naming_endpoint_assertion_and_status(tmp_path: Path) -> None:
    rec = answers({"/": lambda r: httpx.Response(200, text="ok")})
    check = make_check(
        {"endpoints": [{"name": "home", "path": "/", "security_headers": ["referrer-policy"]}],
         "samples": 2, "warmup": 0}
    )
    result = HttpProbeCheck(rec.transport()).measure(check, make_ctx(tmp_path, "http://127.0.0.1:1"))
    (default,) = [d for d in HttpProbeCheck().default_conditions(check.settings)
                  if d["metric"] == "assertion_failures"]
    outcome = evaluate(ConditionSpec.model_validate({"check": "latency", **default}), check, result)
    assert outcome.status is OutcomeStatus.FAIL
    assert "assertion_failures 1 > 0 (home: missing header Referrer-Policy (HTTP 200)" in (
        outcome.reason
    ), outcome.reason


def test_assertions_judge_the_first_counted_answer(tmp_path: Path) -> None:
    calls = 0

    def changing(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1  # warm-up: 1, counted: 2, 3
        return httpx.Response(200, text="cold" if calls == 1 else f"warm {calls}")

    check = make_check(
        {"endpoints": [{"name": "a", "path": "/", "expect_body": {"contains": ["warm 2"]}}],
         "samples": 2, "warmup": 1}
    )
    result = HttpProbeCheck(httpx.MockTransport(changing)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.metrics["assertion_failures"].value == 0  # not the warm-up, not the last


def test_an_asserting_endpoint_without_any_answer_fails_its_assertions(tmp_path: Path) -> None:
    def half(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200)

    check = make_check(
        {"endpoints": [{"name": "up", "path": "/"},
                       {"name": "down", "path": "/down", "expect_body": {"contains": ["x"]}}],
         "samples": 2, "warmup": 0}
    )
    result = HttpProbeCheck(httpx.MockTransport(half)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.metrics["down.assertion_failures"].value == 1
    assert [f.rule for f in result.findings] == ["response:none"]
    assert "down: no answer to check (no answer)" in result.reason


class FakeApp:
    """A MockTransport app with a login: POST /login with the right password sets a cookie;
    /private answers 200 with it, 302 to the login without."""

    def __init__(self, password: str = "right-password", status: int = 303) -> None:
        self.password = password
        self.status = status
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path == "/login":
            form = parse_qs(request.content.decode())
            if form.get("password") == [self.password]:
                return httpx.Response(self.status, headers={
                    "Location": "/private", "Set-Cookie": "sid=s-42; Path=/; HttpOnly"})
            return httpx.Response(200, text="<form>Invalid password</form>")
        if request.headers.get("cookie") == "sid=s-42":
            return httpx.Response(200, text="Welcome back")
        return httpx.Response(302, headers={"Location": "/login"})


def login_check(password: str, **login: Any) -> Check:
    return make_check(
        {"login": {"path": "/login", "form": {"user": "qa", "password": password}, **login},
         "endpoints": [{"name": "private", "path": "/private",
                        "expect_body": {"contains": ["Welcome"]}}],
         "samples": 3, "warmup": 1}
    )


def test_the_login_runs_once_first_and_its_cookie_goes_with_every_endpoint(
    tmp_path: Path,
) -> None:
    app = FakeApp()
    result = HttpProbeCheck(httpx.MockTransport(app)).measure(
        login_check("right-password"), make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert app.paths == ["/login"] + ["/private"] * 4  # once, before the warm-up
    assert result.metrics["error_rate"].value == 0.0
    assert result.metrics["assertion_failures"].value == 0
    assert result.metrics["login_ms"].unit == "ms"
    raw = json.loads(Path(result.artifacts["http_samples"]).read_text())
    assert raw["login"]["status"] == 303 and raw["login"]["cookies"] == ["sid"]
    assert "right-password" not in json.dumps(raw)


@pytest.mark.parametrize(
    ("password", "login", "reason"),
    [
        # The app answers a wrong password with 200 and the form again: only the cookie
        # (or the body) tells.
        ("wrong-password", {}, "no cookie set (HTTP 200)"),
        ("wrong-password", {"expect_cookies": ["sid"]}, "no cookie sid (HTTP 200)"),
        ("wrong-password", {"expect_body": {"not_contains": ["Invalid password"]}},
         'body contains "Invalid password" (HTTP 200)'),
        ("wrong-password", {"expect_status": [302, 303]}, "answered HTTP 200 (expected 302, 303)"),
        ("right-password", {"expect_cookies": ["session"]},
         "no cookie session (HTTP 303; cookies set: sid)"),
    ],
)
def test_a_failed_login_is_an_error_and_nothing_behind_it_is_measured(
    tmp_path: Path, password: str, login: dict[str, Any], reason: str
) -> None:
    app = FakeApp()
    check = login_check(password, **login)
    result = execute_check(HttpProbeCheck(httpx.MockTransport(app)), check,
                           make_ctx(tmp_path, "http://127.0.0.1:1"))
    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("login step POST /login failed: "), result.reason
    assert reason in result.reason and "nothing behind the login was measured" in result.reason
    assert password not in result.reason
    assert app.paths == ["/login"]


def test_a_login_that_cannot_connect_is_an_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = execute_check(HttpProbeCheck(httpx.MockTransport(refuse)),
                           login_check("right-password"), make_ctx(tmp_path, "http://127.0.0.1:1"))
    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("login step POST /login failed: ConnectError"), result.reason


def test_a_login_redirect_can_be_followed(tmp_path: Path) -> None:
    app = FakeApp()
    check = login_check("right-password", follow_redirects=True, expect_status=[200],
                        expect_body={"contains": ["Welcome"]})
    result = HttpProbeCheck(httpx.MockTransport(app)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert app.paths[:2] == ["/login", "/private"]
    assert result.metrics["error_rate"].value == 0.0


def test_a_login_to_a_disallowed_host_sends_nothing(tmp_path: Path) -> None:
    rec = Recorder(by_path)
    check = make_check({"login": {"url": "http://10.255.255.1:9/login", "form": {"a": "b"}},
                        "endpoints": [{"name": "a", "path": "/ok"}]})
    with pytest.raises(TargetError, match=r"login step host '10\.255\.255\.1'"):
        HttpProbeCheck(rec.transport()).measure(
            check, make_ctx(tmp_path, "http://127.0.0.1:1", allowed=("127.0.0.1",))
        )
    assert rec.requests == []


def test_the_login_answers_cookie_flags_are_findings_not_an_error(tmp_path: Path) -> None:
    app = FakeApp()
    check = login_check("right-password", security_headers=["cookies"])
    result = HttpProbeCheck(httpx.MockTransport(app)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    assert result.status is CheckStatus.OK
    assert [(f.rule, f.location) for f in result.findings] == [("cookie:SameSite", "login /login")]
    assert result.metrics["assertion_failures"].value == 1
    assert "login step: cookie sid lacks SameSite (HTTP 303)" in result.reason
    assert "s-42" not in result.findings[0].message  # the cookie's value is never shown


def test_references_may_stand_in_forms_and_the_login(tmp_path: Path) -> None:
    from neuroerp_ci.config import load_pipeline
    from neuroerp_ci.config.secret_refs import collect_secrets

    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(
        """
[target]
base_url = "http://127.0.0.1:8000"

[[checks]]
id = "ui"
kind = "http"
[checks.settings]
endpoints = [{ name = "search", path = "/s", method = "POST", form = { t = "{env:QA_KEY}" } }]
[checks.settings.login]
path = "/login"
form = { user = "qa", password = "{env:QA_PW}" }
headers = { X-Key = "{env:QA_KEY}" }

[[checks]]
id = "api"
kind = "http"
settings.endpoints = [{ name = "a", path = "/a" }]
settings.login = { path = "/api/login", json = { auth = { password = "{env:QA_PW}" } } }

[stages.dev]
""",
        encoding="utf-8",
    )
    env = {"QA_PW": "pw-0123456789", "QA_KEY": "key-0123456789"}
    found = collect_secrets(load_pipeline(path), env)
    assert found.values == {"env:QA_PW": env["QA_PW"], "env:QA_KEY": env["QA_KEY"]}


def test_a_reference_in_an_assertion_is_refused(tmp_path: Path) -> None:
    from neuroerp_ci.config import load_pipeline
    from neuroerp_ci.config.secret_refs import collect_secrets
    from neuroerp_ci.errors import ConfigError

    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(
        """
[target]
base_url = "http://127.0.0.1:8000"

[[checks]]
id = "ui"
kind = "http"
settings.endpoints = [{ name = "a", path = "/", expect_body = { contains = ["{env:QA_PW}"] } }]

[stages.dev]
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="not expanded here"):
        collect_secrets(load_pipeline(path), {"QA_PW": "pw-0123456789"})


def test_what_the_login_sent_is_redacted_from_excerpts(tmp_path: Path) -> None:
    literal = "literal-pass-" + "4f2b9c"  # written into the pipeline file, not a reference

    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/login":
            return httpx.Response(200, headers={"Set-Cookie": "sid=1; HttpOnly; SameSite=Lax"})
        return httpx.Response(200, text=f"debug: last password was {literal}")

    check = make_check(
        {"login": {"path": "/login", "json": {"auth": {"password": literal}}},
         "endpoints": [{"name": "a", "path": "/", "expect_body": {"contains": ["Welcome"]}}],
         "samples": 1, "warmup": 0}
    )
    result = HttpProbeCheck(httpx.MockTransport(echo)).measure(
        check, make_ctx(tmp_path, "http://127.0.0.1:1")
    )
    (finding,) = result.findings
    assert literal not in finding.message and "[REDACTED]" in finding.message
