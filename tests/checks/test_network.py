from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.checks.network import (
    NetworkCheck,
    NetworkHost,
    NetworkSettings,
    Timing,
    _read_status,
    network_metrics,
    resolve_hosts,
)
from neuroerp_ci.errors import TargetError
from neuroerp_ci.model import CheckStatus, Priority
from neuroerp_ci.support.hosts import free_port

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def make_check(settings: dict[str, Any], timeout: float = 60.0) -> Check:
    return Check(
        id="net", title="net", kind="network", priority=Priority.MEDIUM, dependencies=(),
        timeout=timeout, settings=NetworkSettings.model_validate(settings),
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


class CountingResolver:
    """The system resolver, counting lookups."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.lookups.append(host)
        return socket.getaddrinfo(host, port, **kwargs)


# --- pure parts -----------------------------------------------------------------------


def test_kind_is_exclusive_and_needs_target() -> None:
    kind = NetworkCheck()
    assert kind.name == "network" and kind.exclusive and kind.needs_target


def test_hosts_default_to_the_target() -> None:
    (target,) = resolve_hosts([], "http://127.0.0.1:8123", LOOPBACK)
    assert (target.name, target.host, target.port) == ("target", "127.0.0.1", 8123)
    assert target.path == "/"
    assert target.authority == "127.0.0.1:8123"


def test_hosts_paths_ports_and_ipv6() -> None:
    hosts = [
        NetworkHost(name="health", url="/health?deep=1"),
        NetworkHost(name="tls", url="https://localhost/"),
        NetworkHost(name="v6", url="http://[::1]:8080/x"),
    ]
    health, tls, v6 = resolve_hosts(hosts, "http://127.0.0.1:8123/base", LOOPBACK)
    assert health.url == "http://127.0.0.1:8123/base/health?deep=1"
    assert health.path == "/base/health?deep=1"
    assert (tls.scheme, tls.port, tls.authority) == ("https", 443, "localhost")
    assert (v6.host, v6.port, v6.authority) == ("::1", 8080, "[::1]:8080")


def test_disallowed_host_and_missing_base_url() -> None:
    with pytest.raises(TargetError, match="url of 'ext' host 'example.org'.*not in allowed_hosts"):
        resolve_hosts([NetworkHost(name="ext", url="https://example.org/")], None, LOOPBACK)
    with pytest.raises(TargetError, match="no hosts and the pipeline has no target base_url"):
        resolve_hosts([], None, LOOPBACK)
    with pytest.raises(TargetError, match="relative path but there is no base_url"):
        resolve_hosts([NetworkHost(name="a", url="/health")], None, LOOPBACK)


def test_settings_validation() -> None:
    assert NetworkSettings().samples == 10 and NetworkSettings().hosts == []
    with pytest.raises(ValidationError, match="duplicate host names"):
        NetworkSettings.model_validate(
            {"hosts": [{"name": "a", "url": "/"}, {"name": "a", "url": "/x"}]}
        )
    with pytest.raises(ValidationError):
        NetworkSettings.model_validate({"samples": 0})
    with pytest.raises(ValidationError):
        NetworkSettings.model_validate({"hosts": [{"name": "A B", "url": "/"}]})


def test_metrics_are_medians_of_counted_successes() -> None:
    timings = [
        Timing("a", True, 9.0, 9.0, None, 9.0, status=200),  # warm-up
        Timing("a", False, 1.0, 2.0, None, 10.0, status=200),
        Timing("a", False, 3.0, 4.0, None, 30.0, status=404),  # any status is an answer
        Timing("a", False, 5.0, None, None, None, error="ConnectionRefusedError: x"),
        Timing("b", False, 0.1, 0.2, 1.5, 2.0, status=200),
    ]
    m = {metric.name: metric for metric in network_metrics(timings, ["a", "b"])}
    assert m["a.dns_ms"].value == 2.0 and m["a.dns_ms"].samples == (1.0, 3.0)
    assert m["a.connect_ms"].value == 3.0
    assert m["a.ttfb_ms"].value == 20.0 and m["a.ttfb_ms"].samples == (10.0, 30.0)
    assert m["a.failures"].value == 1
    assert "a.tls_ms" not in m  # plain http
    assert m["b.tls_ms"].value == 1.5 and m["b.failures"].value == 0


def test_status_line_is_read_and_garbage_refused() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        assert _read_status(left, left.recv(1)) == 204
        right.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        with pytest.raises(ValueError, match="not an HTTP response: 'SSH-2.0-OpenSSH_9.2'"):
            _read_status(left, left.recv(1))


# --- integration: real servers on loopback ---------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # would keep connections open: we must not reuse them
    connections = 0
    lock = threading.Lock()

    def setup(self) -> None:
        with _Handler.lock:
            _Handler.connections += 1
        super().setup()

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if url.path == "/slow":
            time.sleep(int(parse_qs(url.query)["ms"][0]) / 1000)
        body = b"ok"
        self.send_response(200 if url.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    _Handler.connections = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def url_of(httpd: ThreadingHTTPServer, host: str = "127.0.0.1", scheme: str = "http") -> str:
    return f"{scheme}://{host}:{httpd.server_address[1]}"


@pytest.mark.integration
def test_every_sample_is_a_fresh_connection(
    tmp_path: Path, server: ThreadingHTTPServer
) -> None:
    resolver = CountingResolver()
    check = make_check({"samples": 5, "warmup": 1})
    result = execute_check(NetworkCheck(resolver), check, make_ctx(tmp_path, url_of(server)))
    assert result.status is CheckStatus.OK, result.reason
    assert _Handler.connections == 6  # warm-up + 5, none reused
    assert resolver.lookups == ["127.0.0.1"] * 6  # and a lookup for each
    m = result.metrics
    for step in ("dns_ms", "connect_ms", "ttfb_ms"):
        assert len(m[f"target.{step}"].samples) == 5
    assert "target.tls_ms" not in m and m["target.failures"].value == 0
    raw = json.loads(Path(result.artifacts["network_samples"]).read_text())
    assert [s["status"] for s in raw["target"]["samples"]] == [200] * 6
    assert {s["address"] for s in raw["target"]["samples"]} == {"127.0.0.1"}


@pytest.mark.integration
def test_first_byte_waits_for_the_server_connect_does_not(
    tmp_path: Path, server: ThreadingHTTPServer
) -> None:
    check = make_check({"hosts": [{"name": "slow", "url": "/slow?ms=60"},
                                  {"name": "byname", "url": url_of(server, "localhost")}],
                        "samples": 3, "warmup": 0})
    result = execute_check(NetworkCheck(), check, make_ctx(tmp_path, url_of(server)))
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    assert m["slow.ttfb_ms"].value >= 60.0  # the server sleeps 60 ms before its answer
    assert m["slow.connect_ms"].value < m["slow.ttfb_ms"].value
    assert m["byname.failures"].value == 0  # "localhost" resolved through the system
    assert "slow: connect" in result.reason and "byname: connect" in result.reason


@pytest.mark.integration
def test_any_http_status_is_an_answer(tmp_path: Path, server: ThreadingHTTPServer) -> None:
    check = make_check({"hosts": [{"name": "gone", "url": "/missing"}], "samples": 2})
    result = execute_check(NetworkCheck(), check, make_ctx(tmp_path, url_of(server)))
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["gone.failures"].value == 0


@pytest.mark.integration
def test_closed_port_is_not_answering(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    result = execute_check(NetworkCheck(), make_check({"samples": 2}), make_ctx(tmp_path, base))
    assert result.status is CheckStatus.ERROR
    assert f"host 'target' not answering at {base}: ConnectionRefusedError" in result.reason


class RawServer:
    """A TCP server on loopback whose every connection is handled by ``behave``."""

    def __init__(self, behave: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.behave = behave
        self.threads: list[threading.Thread] = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            worker = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            worker.start()
            self.threads.append(worker)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            self.behave(conn)

    def close(self) -> None:
        self.closing.set()
        self.sock.close()
        for worker in self.threads:
            worker.join(5)


def _hang_up(conn: socket.socket) -> None:
    conn.recv(4096)


def _not_http(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")


def _silent(conn: socket.socket) -> None:
    conn.recv(4096)
    time.sleep(1.0)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("behave", "settings", "expected"),
    [
        (_hang_up, {}, "ConnectionError: connection closed before any answer"),
        (_not_http, {}, "not an HTTP response: 'SSH-2.0-OpenSSH_9.2'"),
        (_silent, {"timeout": 0.2}, "TimeoutError: timed out"),
    ],
)
def test_servers_that_do_not_answer_http(
    tmp_path: Path, behave: Callable[[socket.socket], None], settings: dict[str, Any],
    expected: str,
) -> None:
    raw = RawServer(behave)
    try:
        check = make_check({"samples": 2, "warmup": 0, **settings})
        result = execute_check(NetworkCheck(), check, make_ctx(tmp_path, raw.url))
    finally:
        raw.close()
    assert result.status is CheckStatus.ERROR
    assert expected in result.reason


@pytest.mark.integration
def test_disallowed_host_gets_no_lookup_and_no_connection(tmp_path: Path) -> None:
    resolver = CountingResolver()
    check = make_check({"hosts": [{"name": "ok", "url": "/"},
                                  {"name": "ext", "url": "http://db.example.invalid/"}]})
    result = execute_check(
        NetworkCheck(resolver), check, make_ctx(tmp_path, "http://127.0.0.1:9")
    )
    assert result.status is CheckStatus.ERROR
    assert "'db.example.invalid'" in result.reason and "not in allowed_hosts" in result.reason
    assert resolver.lookups == []  # not even the allowed host was looked up
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        ctx = make_ctx(tmp_path, f"http://127.0.0.2:{port}", allowed=("127.0.0.1",))
        result = execute_check(NetworkCheck(resolver), make_check({"samples": 3}), ctx)
        assert result.status is CheckStatus.ERROR and "not in allowed_hosts" in result.reason
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    assert resolver.lookups == []


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[ThreadingHTTPServer]:
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
    _Handler.connections = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.integration
def test_tls_handshake_every_sample_and_verification(
    tmp_path: Path, tls_server: ThreadingHTTPServer
) -> None:
    base = url_of(tls_server, scheme="https")
    check = make_check({"samples": 3, "warmup": 0, "verify_tls": False})
    result = execute_check(NetworkCheck(), check, make_ctx(tmp_path, base))
    assert result.status is CheckStatus.OK, result.reason
    assert len(result.metrics["target.tls_ms"].samples) == 3  # a full handshake each time
    assert result.metrics["target.tls_ms"].value > 0
    assert "tls" in result.reason and result.tool_versions["openssl"].startswith("OpenSSL")
    # A self-signed certificate is refused when verification is on (the default).
    result = execute_check(NetworkCheck(), make_check({"samples": 2}), make_ctx(tmp_path, base))
    assert result.status is CheckStatus.ERROR
    assert "CERTIFICATE_VERIFY_FAILED" in result.reason


# 127.0.0.2 (not allowed) written the ways a resolver still reads as it.
DISGUISES = (
    "http://0x7f.0.0.2:{port}/", "http://2130706434:{port}/", "http://127.0.2:{port}/",
    "http://[::ffff:127.0.0.2]:{port}/", "http://127.0.0.2.:{port}/",
    "http://127.0.0.1@127.0.0.2:{port}/", "http://127.0.0.2:{port}\\@127.0.0.1/",
)


@pytest.mark.integration
@pytest.mark.parametrize("form", DISGUISES)
def test_disguised_forms_of_a_disallowed_address_get_no_lookup_or_connection(
    tmp_path: Path, form: str
) -> None:
    resolver = CountingResolver()
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        listener.setblocking(False)
        url = form.format(port=listener.getsockname()[1])
        check = make_check({"hosts": [{"name": "x", "url": url}], "samples": 2})
        result = execute_check(
            NetworkCheck(resolver), check, make_ctx(tmp_path, None, allowed=("127.0.0.1",))
        )
        assert result.status is CheckStatus.ERROR
        assert result.reason.startswith("url of 'x' "), result.reason
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert resolver.lookups == []


@pytest.mark.integration
def test_another_form_of_the_allowed_address_is_timed_at_that_address(
    tmp_path: Path, server: ThreadingHTTPServer
) -> None:
    resolver = CountingResolver()
    hosts = [{"name": "short", "url": url_of(server, "127.1")},
             {"name": "hex", "url": url_of(server, "0x7f.0.0.1")}]
    check = make_check({"hosts": hosts, "samples": 2, "warmup": 0})
    result = execute_check(
        NetworkCheck(resolver), check, make_ctx(tmp_path, None, allowed=("127.0.0.1",))
    )
    assert result.status is CheckStatus.OK, result.reason
    assert resolver.lookups == ["127.0.0.1"] * 4  # the canonical form is what is dialled
