"""The http kind acting like a user against a real HTTP server on loopback.

The server is a small shop front: a login form (``/login``: the right password sets a
session cookie and redirects, a wrong one answers 401; ``/login-lenient`` answers a wrong
password with 200 and the form again, as many applications do), pages behind the login
(``/orders`` HTML, ``/api/orders`` JSON; without the cookie a 302 to the login), a search
form (POST ``/search``) and security headers on every page, which a test may drop.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from neuroerp_ci.checks.http import HttpProbeCheck, HttpProbeSettings
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import CheckResult, CheckStatus, Outcome, OutcomeStatus, Priority

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PASSWORD = "correct-horse-" + secrets.token_hex(4)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@dataclass
class Shop:
    """What the server does and what it saw; a test changes ``dropped``."""

    dropped: set[str] = field(default_factory=set)  # security headers left out
    paths: list[str] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    shop: Shop

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._record()
        if self.path == "/login":
            self._send(200, "<form method=post><input name=user><input name=password></form>")
        elif self.path in ("/orders", "/api/orders"):
            if not self._logged_in():
                self._send(302, "", {"Location": "/login"})
            elif self.path == "/orders":
                self._send(200, "<h1>Orders</h1><p>Total: 42</p>")
            else:
                body = {"orders": [{"id": 1, "total": 42}], "count": 1}
                self._send(200, json.dumps(body), {"Content-Type": "application/json"})
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._record()
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode("utf-8"))
        if self.path in ("/login", "/login-lenient"):
            if form.get("user") == ["qa"] and form.get("password") == [PASSWORD]:
                token = secrets.token_hex(16)
                with self.shop.lock:
                    self.shop.sessions.add(token)
                cookie = f"session={token}; Path=/; HttpOnly; SameSite=Lax"
                self._send(303, "", {"Location": "/orders", "Set-Cookie": cookie})
            else:
                status = 200 if self.path == "/login-lenient" else 401
                self._send(status, "<form>Invalid password</form>")
        elif self.path == "/search":
            query = form.get("q", [""])[0].replace("<", "&lt;")
            self._send(200, f"<p>Results for {query}: 3</p>")
        else:
            self._send(404, "not found")

    def _record(self) -> None:
        with self.shop.lock:
            self.shop.paths.append(f"{self.command} {self.path}")

    def _logged_in(self) -> bool:
        cookies = self.headers.get("Cookie", "")
        pairs = dict(p.strip().split("=", 1) for p in cookies.split(";") if "=" in p)
        return pairs.get("session") in self.shop.sessions

    def _send(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        merged = {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS, **(headers or {})}
        for name, value in merged.items():
            if name not in self.shop.dropped:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def shop() -> Iterator[tuple[str, Shop]]:
    state = Shop()
    handler = type("ShopHandler", (_Handler,), {"shop": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


LOGIN = {
    "path": "/login",
    "form": {"user": "qa", "password": "{env:QA_PASSWORD}"},
    "expect_cookies": ["session"],
}
ENDPOINTS = [
    {"name": "login-page", "path": "/login", "security_headers": True},
    {"name": "orders", "path": "/orders", "security_headers": True,
     "expect_body": {"contains": ["Total"], "not_contains": ["Traceback"]}},
    {"name": "orders-api", "path": "/api/orders",
     "expect_headers": {"Content-Type": "application/json*", "X-Powered-By": {"absent": True}},
     "expect_body": {"json": {"$.count": 1, "$.orders[0].total": 42,
                              "$.orders[0].id": {"exists": True}}}},
]  # fmt: skip


def run_check(
    tmp_path: Path, base_url: str, settings: dict[str, Any], password: str = PASSWORD
) -> tuple[Check, CheckResult]:
    check = Check(
        id="shop-ui",
        title="shop as a user",
        kind="http",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=60.0,
        settings=HttpProbeSettings.model_validate({"samples": 3, "warmup": 1, **settings}),
    )
    work = tmp_path / "work"
    ctx = CheckContext(
        project_dir=tmp_path,
        work_dir=work,
        python=sys.executable,
        env={},
        base_url=base_url,
        secrets={"env:QA_PASSWORD": password},
    )
    return check, execute_check(HttpProbeCheck(), check, ctx)


def judged(check: Check, result: CheckResult) -> list[Outcome]:
    """The outcomes of the kind's default conditions (what a stage without its own uses)."""
    defaults = HttpProbeCheck().default_conditions(check.settings)
    return [
        evaluate(ConditionSpec.model_validate({"check": check.id, **d}), check, result)
        for d in defaults
    ]


def nothing_secret_in(result: CheckResult, password: str = PASSWORD) -> None:
    texts = [result.reason, *(f.message for f in result.findings)]
    texts.append(Path(result.artifacts["http_samples"]).read_text(encoding="utf-8"))
    assert not any(password in t for t in texts)


def test_the_clean_shop_passes_after_logging_in(tmp_path: Path, shop: tuple[str, Shop]) -> None:
    base_url, state = shop
    check, result = run_check(tmp_path, base_url, {"login": LOGIN, "endpoints": ENDPOINTS})
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["assertion_failures"].value == 0, result.findings
    assert result.metrics["error_rate"].value == 0.0, result.reason
    assert result.findings == []
    assert [o.status for o in judged(check, result)] == [OutcomeStatus.PASS] * 2
    assert state.paths[0] == "POST /login"  # first, once
    assert state.paths.count("POST /login") == 1
    nothing_secret_in(result)


def test_a_dropped_security_header_fails_naming_it(
    tmp_path: Path, shop: tuple[str, Shop]
) -> None:
    base_url, state = shop
    state.dropped = {"Content-Security-Policy"}
    check, result = run_check(tmp_path, base_url, {"login": LOGIN, "endpoints": ENDPOINTS})
    assert result.status is CheckStatus.OK, result.reason
    error_rate, assertions = judged(check, result)
    assert error_rate.status is OutcomeStatus.PASS
    assert assertions.status is OutcomeStatus.FAIL
    # Without CSP the page has no frame-ancestors either, but X-Frame-Options DENY holds.
    assert "login-page: missing header Content-Security-Policy (HTTP 200)" in assertions.reason
    assert {(f.rule, f.location) for f in result.findings} == {
        ("header:Content-Security-Policy", "login-page /login"),
        ("header:Content-Security-Policy", "orders /orders"),
    }
    assert all(f.message.startswith("HTTP 200: missing header") for f in result.findings)


def test_a_page_behind_the_login_needs_the_login_step(
    tmp_path: Path, shop: tuple[str, Shop]
) -> None:
    base_url, _ = shop
    orders = [ENDPOINTS[1]]
    _, logged_in = run_check(tmp_path / "in", base_url, {"login": LOGIN, "endpoints": orders})
    assert logged_in.status is CheckStatus.OK, logged_in.reason
    assert logged_in.metrics["orders.error_rate"].value == 0.0
    assert logged_in.metrics["orders.assertion_failures"].value == 0
    # Without the login the same page answers 302 to the login form: a wrong status and
    # a failed body assertion, never a pass.
    check, anonymous = run_check(tmp_path / "out", base_url, {"endpoints": orders})
    assert anonymous.metrics["orders.error_rate"].value == 1.0
    assert anonymous.reason.startswith(
        'orders: 3 of 3 answered HTTP 302; orders: body lacks "Total" (HTTP 302)'
    ), anonymous.reason
    assert [o.status for o in judged(check, anonymous)] == [OutcomeStatus.FAIL] * 2


@pytest.mark.parametrize(
    ("login", "said"),
    [
        (LOGIN, "answered HTTP 401 (expected 200, 204, 302, 303)"),
        # 200 and the form again: the session cookie that was not set tells.
        ({**LOGIN, "path": "/login-lenient"}, "no cookie session (HTTP 200)"),
    ],
)
def test_a_wrong_password_is_an_error_not_a_pass(
    tmp_path: Path, shop: tuple[str, Shop], login: dict[str, Any], said: str
) -> None:
    base_url, state = shop
    wrong = "wrong-password-" + secrets.token_hex(4)
    check, result = run_check(
        tmp_path, base_url, {"login": login, "endpoints": ENDPOINTS}, password=wrong
    )
    assert result.status is CheckStatus.ERROR
    assert said in result.reason and "nothing behind the login was measured" in result.reason
    assert wrong not in result.reason
    assert [p for p in state.paths if not p.startswith("POST /login")] == []  # nothing probed
    assert {o.status for o in judged(check, result)} == {OutcomeStatus.FAIL}


def test_a_form_post_works(tmp_path: Path, shop: tuple[str, Shop]) -> None:
    base_url, state = shop
    search = {"name": "search", "path": "/search", "method": "POST",
              "form": {"q": "chairs & tables"},
              "expect_body": {"contains": ["Results for chairs & tables: 3"]}}  # fmt: skip
    check, result = run_check(tmp_path, base_url, {"endpoints": [search]})
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["search.assertion_failures"].value == 0
    assert result.metrics["search.error_rate"].value == 0.0
    assert state.paths == ["POST /search"] * 4
    assert [o.status for o in judged(check, result)] == [OutcomeStatus.PASS] * 2
