"""The a11y kind in the real browser: Debian's Chromium, axe-core from the wheel, pages served
by a stdlib HTTP server on 127.0.0.1 started here.

Skips only where no Chromium is installed (``.ci/run`` installs it with apt); the cases that
need no browser at all (a missing executable) run everywhere.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.checks._browser import INSTALL_LINE
from neuroerp_ci.checks.a11y import A11yCheck, A11ySettings
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.gates import ConditionSpec, evaluate
from neuroerp_ci.model import CheckResult, CheckStatus, OutcomeStatus, Priority
from neuroerp_ci.support.hosts import free_port
from tests.browser import chromium_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_HEAD = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
CLEAN = (
    _HEAD.format(title="Orders")
    + """<body><main>
<h1>Orders</h1><p id="intro">Open orders of this week.</p>
<form><label for="q">Search</label><input id="q" name="q" type="search"></form>
<script>
  // After load: a long task (total blocking time) and a banner that pushes the text down
  // (layout shift), both within the time the check waits for a quiet page.
  addEventListener('load', () => setTimeout(() => {
    const banner = document.createElement('p');
    banner.style.height = '300px';
    banner.textContent = 'Delivery delayed';
    document.querySelector('main').prepend(banner);
    const t = performance.now();
    while (performance.now() - t < 150) {}
  }, 20));
</script>
</main></body></html>"""
)
BROKEN = (
    _HEAD.format(title="Login")
    + """<body><main><h1>Login</h1>
<img src="/logo.png">
<form><input id="user" name="user" type="text"><button type="submit">Sign in</button></form>
</main></body></html>"""
)
# Renders its form on the client, late: only wait_for makes the check see it.
LATE = (
    _HEAD.format(title="Register")
    + """<body><main><h1>Register</h1><div id="app"></div>
<script>setTimeout(() => {
  document.getElementById('app').innerHTML = '<form><input name="email" type="email"></form>';
}, 300);</script></main></body></html>"""
)
EXTERNAL = (
    _HEAD.format(title="Shop")
    + """<body><main><h1>Shop</h1>
<img alt="Logo" src="http://cdn.example.com/logo.png"><p>Hello</p></main></body></html>"""
)
EMPTY = "<!doctype html><html><head></head><body>\n</body></html>"
PAGES = {"/clean": CLEAN, "/broken": BROKEN, "/late": LATE, "/external": EXTERNAL,
         "/empty": EMPTY}  # fmt: skip


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/down":
            self._send(500, "<h1>Internal Server Error</h1>")
        else:
            body = PAGES.get(self.path)
            self._send(200 if body is not None else 404, body or "not found")

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium_or_skip()


def run_check(
    tmp_path: Path, base_url: str, settings: dict[str, Any], timeout: float = 120.0
) -> tuple[Check, CheckResult]:
    check = Check(
        id="a11y", title="a11y", kind="a11y", priority=Priority.HIGH, dependencies=(),
        timeout=timeout, settings=A11ySettings.model_validate(settings),
    )  # fmt: skip
    ctx = CheckContext(
        project_dir=tmp_path, work_dir=tmp_path / "work", python="python",
        env={"PATH": os.environ.get("PATH", "")}, base_url=base_url,
    )  # fmt: skip
    return check, execute_check(A11yCheck(), check, ctx)


def gate(check: Check, result: CheckResult) -> list[OutcomeStatus]:
    return [
        evaluate(ConditionSpec.model_validate({"check": check.id, **d}), check, result).status
        for d in A11yCheck().default_conditions(check.settings)
    ]


def test_a_clean_page_has_no_violations_and_real_timings(
    tmp_path: Path, site: str, browser: str
) -> None:
    check, result = run_check(
        tmp_path, site, {"pages": [{"name": "orders", "path": "/clean"}], "samples": 2,
                         "warmup": 0},
    )  # fmt: skip
    assert result.status is CheckStatus.OK, result.reason
    assert result.findings == []
    m = result.metrics
    assert m["violations"].value == 0 and m["orders.violations"].value == 0
    assert m["elements_checked"].value > 0 and m["blocked_requests"].value == 0
    for name in ("ttfb_ms", "fcp_ms", "lcp_ms", "cls", "tbt_ms", "load_ms"):
        assert len(m[f"orders.{name}"].samples) == 2, name
        assert m[name].value == m[f"orders.{name}"].value
    assert 0 < m["ttfb_ms"].value <= m["fcp_ms"].value <= m["lcp_ms"].value
    assert m["load_ms"].value >= m["ttfb_ms"].value
    assert m["tbt_ms"].value > 50  # the 150 ms task after load, beyond its first 50 ms
    assert m["cls"].value > 0  # the banner pushed the text down
    assert result.reason.startswith("no violations on 1 pages")
    assert set(result.tool_versions) == {"chromium", "axe-core", "playwright"}
    assert result.tool_versions["axe-core"].startswith("4.")
    assert gate(check, result) == [OutcomeStatus.PASS] * 3
    assert Path(result.artifacts["a11y"]).is_file()


def test_missing_alt_and_label_fail_naming_rules_pages_and_selectors(
    tmp_path: Path, site: str, browser: str
) -> None:
    check, result = run_check(tmp_path, site, {"timings": False, "pages": [
        {"name": "login", "path": "/broken"},
        {"name": "register", "path": "/late", "wait_for": "form"},
        {"name": "shop", "path": "/external"},
    ]})  # fmt: skip
    assert result.status is CheckStatus.OK, result.reason
    found = {(f.rule, f.location) for f in result.findings}
    assert ("image-alt", "login: img") in found  # axe's shortest unique selector
    assert ("label", "login: #user") in found
    assert ("label", "register: input") in found  # rendered late, waited for
    image = next(f for f in result.findings if f.rule == "image-alt")
    assert image.tool == "axe-core" and image.severity.value == "critical"
    assert "/rules/axe/" in image.help_url and "image-alt" in image.help_url
    assert "alt" in image.message
    m = result.metrics
    assert m["login.violations"].value >= 2 and m["shop.violations"].value == 0
    assert m["violations_critical"].value >= 3 and "lcp_ms" not in m
    # the shop's logo from another host was never fetched: aborted and named
    assert m["blocked_requests"].value == 1
    assert "blocked (not in allowed_hosts): http://cdn.example.com/logo.png" in result.reason
    assert "login: label" in result.reason and "login: image-alt" in result.reason
    assert gate(check, result)[0] is OutcomeStatus.FAIL
    assert gate(check, result)[2] is OutcomeStatus.WARN  # the blocked request


@pytest.mark.parametrize(
    ("page", "wait_for", "expected"),
    [
        ("/down", None, "page 'page' answered HTTP 500"),
        ("/missing", None, "page 'page' answered HTTP 404"),
        ("/empty", None, "page 'page' (http://127.0.0.1:{port}/empty) rendered nothing"),
        ("/clean", "#never", "wait_for '#never' did not become visible within"),
    ],
)
def test_a_page_that_does_not_load_or_shows_nothing_is_an_error(
    tmp_path: Path, site: str, browser: str, page: str, wait_for: str | None, expected: str
) -> None:
    entry: dict[str, Any] = {"name": "page", "path": page}
    if wait_for:
        entry["wait_for"] = wait_for
    settings = {"timings": False, "page_timeout": 3, "pages": [entry]}
    check, result = run_check(tmp_path, site, settings)
    assert result.status is CheckStatus.ERROR
    assert expected.format(port=site.rsplit(":", 1)[1]) in result.reason
    assert all(status is OutcomeStatus.FAIL for status in gate(check, result)[:1])


def test_an_unreachable_target_is_an_error(tmp_path: Path, browser: str) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    _, result = run_check(
        tmp_path, base, {"timings": False, "pages": [{"name": "home", "path": "/"}]}
    )
    assert result.status is CheckStatus.ERROR
    assert "page 'home' did not load" in result.reason and "ERR_CONNECTION_REFUSED" in result.reason


def test_no_browser_is_an_error_not_a_pass(tmp_path: Path, site: str) -> None:
    settings = {
        "executable": str(tmp_path / "chromium"),
        "pages": [{"name": "p", "path": "/clean"}],
    }
    check, result = run_check(tmp_path, site, settings)
    assert result.status is CheckStatus.ERROR and INSTALL_LINE in result.reason
    assert gate(check, result)[0] is OutcomeStatus.FAIL


def test_an_executable_that_is_no_browser_is_an_error(tmp_path: Path, site: str) -> None:
    false = tmp_path / "chromium"
    false.write_text("#!/bin/sh\nexit 1\n")
    false.chmod(0o755)
    settings = {"executable": str(false), "pages": [{"name": "p", "path": "/clean"}]}
    _, result = run_check(tmp_path, site, settings, timeout=60)
    assert result.status is CheckStatus.ERROR
    assert "did not start" in result.reason and INSTALL_LINE in result.reason
