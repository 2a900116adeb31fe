"""The demo's server-rendered pages: a login form, the signed-in account page, and the
security headers every answer carries.

The QA account is public, like any demo login (user ``qa``, password ``qa-demo-login``); a
real pipeline references its test account's password (``{env:QA_PASSWORD}``). Sessions live
in memory: a restart signs everybody out.
"""

from __future__ import annotations

import hmac
import secrets
from html import escape
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from neuroerp_demo.faults import read_faults

QA_LOGIN = ("qa", "qa-demo-login")
SESSION_COOKIE = "erp_session"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
MAX_FORM_BYTES = 4096

router = APIRouter(include_in_schema=False)
_sessions: dict[str, str] = {}  # session token -> user


def with_security_headers(response: Response) -> Response:
    """``response`` with :data:`SECURITY_HEADERS`, but the one ``NEUROERP_DEMO_DROP_HEADER``
    names (a fault: a release that lost a header)."""
    dropped = read_faults().drop_header.lower()
    for name, value in SECURITY_HEADERS.items():
        if name.lower() != dropped:
            response.headers.setdefault(name, value)
    return response


def _page(title: str, body: str, status_code: int = status.HTTP_200_OK) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · NeuroERP demo</title></head>\n"
        f"<body><main><h1>{escape(title)}</h1>\n{body}\n</main></body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status_code)


def _login_form(error: str = "") -> str:
    """The form; the a11y fault drops the password field's label and the logo's alt text."""
    broken = read_faults().a11y_broken
    logo_alt = "" if broken else ' alt="NeuroERP logo"'
    password_label = "" if broken else '<label for="password">Password</label>'
    message = f'<p role="alert">{escape(error)}</p>' if error else ""
    return (
        f'<img src="/logo.svg" width="32" height="32"{logo_alt}>'
        f"{message}"
        '<form method="post" action="/login">'
        '<label for="username">User</label>'
        '<input id="username" name="username" autocomplete="username" required>'
        f"{password_label}"
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
    )


LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#1f6feb"/></svg>'
)


@router.get("/logo.svg")
def logo() -> Response:
    return Response(LOGO, media_type="image/svg+xml")


@router.get("/login")
def login_page() -> HTMLResponse:
    return _page("Sign in", _login_form())


@router.post("/login")
async def login(request: Request) -> Response:
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return _page("Sign in", _login_form("Form too large."), status.HTTP_413_CONTENT_TOO_LARGE)
    form = parse_qs(raw.decode("utf-8", "replace"))
    user = form.get("username", [""])[0]
    given = form.get("password", [""])[0]
    if not (hmac.compare_digest(user, QA_LOGIN[0]) and hmac.compare_digest(given, QA_LOGIN[1])):
        return _page(
            "Sign in", _login_form("Unknown user or wrong password."), status.HTTP_401_UNAUTHORIZED
        )
    token = secrets.token_urlsafe(24)
    _sessions[token] = user
    answer = RedirectResponse("/account", status_code=status.HTTP_303_SEE_OTHER)
    answer.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/")
    return answer


@router.get("/account")
def account(request: Request) -> Response:
    user = _sessions.get(request.cookies.get(SESSION_COOKIE, ""))
    if user is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    return _page("Account", f"<p>Signed in as <b>{escape(user)}</b>.</p>")
