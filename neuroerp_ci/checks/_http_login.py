"""The ``http`` kind's login step, and reading an answer the assertions can look at.

The login is one request (a form or JSON POST, usually) sent once, before the warm-up, over
the check's one client: the cookies it sets stay in the client's cookie jar, so every
endpoint sends them. It fails closed: no answer, a status outside ``expect_status``, a body
that fails ``expect_body`` (``not_contains = ["Invalid password"]``), a cookie of
``expect_cookies`` not set, or no cookie set at all is a :class:`TargetError` (the check is
``error``), so nothing behind a failed login is measured as a pass. Many applications answer
a wrong password with 200 and the form again: ``expect_cookies`` (the session cookie's name)
or ``expect_body`` is what tells them apart.

The reasons name the step's method and URL path, the status and what failed, never what was
sent (form and JSON values may hold secrets).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import httpx

from neuroerp_ci.checks._http_assertions import BodyExpectation, Observed, Shown, body_failures
from neuroerp_ci.errors import TargetError


@dataclass(frozen=True)
class LoginResult:
    """A login that worked: its answer (for the header assertions), time and cookies."""

    seen: Observed
    latency_ms: float
    cookies: tuple[str, ...]  # names in the client's jar afterwards


def read_body(
    response: httpx.Response, started: float, timeout: float, keep: int | None
) -> tuple[bytes, bool]:
    """Read the whole body of a streamed ``response`` within ``timeout`` seconds of
    ``started`` (httpx's timeouts are per read); keep its first ``keep`` bytes (None: none)
    and say whether there was more."""
    kept = bytearray()
    truncated = False
    for chunk in response.iter_bytes():
        if keep is not None and not truncated:
            room = keep - len(kept)
            kept += chunk[:room]
            truncated = len(chunk) > room
        if time.perf_counter() - started > timeout:
            raise httpx.ReadTimeout(
                f"response not complete within {timeout:g} s", request=response.request
            )
    return bytes(kept), truncated


def observed(response: httpx.Response, body: bytes, truncated: bool) -> Observed:
    """What the assertions see of ``response``."""
    return Observed(
        status=response.status_code,
        headers=tuple(response.headers.multi_items()),
        body=body,
        truncated=truncated,
        https=response.request.url.scheme == "https",
        charset=response.charset_encoding,
    )


def log_in(
    client: httpx.Client,
    request: httpx.Request,
    *,
    follow_redirects: bool,
    expect_status: Collection[int],
    expect_cookies: Collection[str] = (),
    expect_body: BodyExpectation | None = None,
    timeout: float,
    max_body_bytes: int,
    secrets: Iterable[str] = (),
) -> LoginResult:
    """Send the login ``request`` over ``client``; TargetError unless it worked."""
    what = f"login step {request.method} {request.url.path}"
    started = time.perf_counter()
    try:
        response = client.send(request, stream=True, follow_redirects=follow_redirects)
        try:
            body, truncated = read_body(response, started, timeout, max_body_bytes)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        raise TargetError(
            f"{what} failed: {type(exc).__name__}: {exc}; nothing behind the login was measured"
        ) from exc
    latency_ms = (time.perf_counter() - started) * 1000.0
    seen = observed(response, body, truncated)
    status = f"HTTP {seen.status}"
    if seen.status not in expect_status:
        wanted = ", ".join(map(str, expect_status))
        raise TargetError(
            f"{what} failed: answered {status} (expected {wanted});"
            " nothing behind the login was measured"
        )
    if expect_body is not None:
        failed = body_failures(expect_body, seen, Shown(secrets))
        if failed:
            said = "; ".join(f.said for f in failed[:2])
            raise TargetError(
                f"{what} failed: {said} ({status}); nothing behind the login was measured"
            )
    cookies = tuple(sorted({cookie.name for cookie in client.cookies.jar}))
    missing = [name for name in expect_cookies if name not in cookies]
    if missing or not cookies:
        said = f"no cookie {', '.join(missing)}" if missing else "no cookie set"
        have = f"; cookies set: {', '.join(cookies)}" if cookies else ""
        raise TargetError(
            f"{what} failed: {said} ({status}{have}); nothing behind the login was measured"
        )
    return LoginResult(seen, latency_ms, cookies)
