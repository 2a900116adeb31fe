from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from neuroerp_demo.faults import A11Y_ENV, DROP_HEADER_ENV, FaultConfigError, read_faults
from neuroerp_demo.web import QA_LOGIN, SECURITY_HEADERS, SESSION_COOKIE

pytestmark = pytest.mark.unit


def sign_in(client: TestClient, password: str = QA_LOGIN[1]) -> object:
    return client.post(
        "/login",
        data={"username": QA_LOGIN[0], "password": password},
        follow_redirects=False,
    )


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/login", "/health", "/api/articles"):
        answer = client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value, (path, name)


def test_a_dropped_header_is_gone_and_the_others_stay(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DROP_HEADER_ENV, "content-security-policy")
    answer = client.get("/login")
    assert "Content-Security-Policy" not in answer.headers
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_the_login_form_is_labelled_unless_broken(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = client.get("/login").text
    assert '<label for="password">' in page and 'alt="NeuroERP logo"' in page
    monkeypatch.setenv(A11Y_ENV, "1")
    broken = client.get("/login").text
    assert '<label for="password">' not in broken and "alt=" not in broken
    assert client.get("/logo.svg").headers["content-type"].startswith("image/svg+xml")


def test_signing_in_opens_the_account_page(client: TestClient) -> None:
    assert client.get("/account", follow_redirects=False).status_code == 303
    answer = sign_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/account"
    cookie = answer.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Signed in as <b>qa</b>" in client.get("/account").text


def test_a_wrong_password_or_a_huge_form_signs_nobody_in(client: TestClient) -> None:
    wrong = sign_in(client, "guess")
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    huge = client.post("/login", content=b"x" * 5000, follow_redirects=False)
    assert huge.status_code == 413


def test_the_a11y_knob_is_0_or_1() -> None:
    assert read_faults({A11Y_ENV: "1"}).a11y_broken is True
    with pytest.raises(FaultConfigError, match="must be 0 or 1"):
        read_faults({A11Y_ENV: "yes"})
