"""The http kind's assertions on one answer: body, headers, the security-headers preset."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks._http_assertions import (
    EXCERPT_CHARS,
    SECURITY_RULES,
    BodyExpectation,
    Expectations,
    Failure,
    HeaderRule,
    Observed,
    SecurityRule,
    body_failures,
    check_header_names,
    cookie_failures,
    evaluate,
    header_failures,
    lookup,
    parse_json_path,
    same_json,
    security_failures,
    security_rules,
)
from neuroerp_ci.model import FindingSeverity
from neuroerp_ci.support.secrets import REDACTED

# Headers of a page that passes every rule of the preset, over https.
GOOD = (
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("Set-Cookie", "session=abc123; Path=/; Secure; HttpOnly; SameSite=Lax"),
)


def answer(
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes | str = b"",
    *,
    status: int = 200,
    https: bool = False,
    truncated: bool = False,
    charset: str | None = None,
) -> Observed:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return Observed(status, headers, raw, truncated, https, charset)


def rules(failures: list[Failure]) -> list[str]:
    return [f.rule for f in failures]


def without(name: str, headers: tuple[tuple[str, str], ...] = GOOD) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() != name.lower())


def replaced(name: str, value: str) -> tuple[tuple[str, str], ...]:
    return (*without(name), (name, value))


def security(
    headers: tuple[tuple[str, str], ...],
    *,
    https: bool = True,
    only: tuple[SecurityRule, ...] = SECURITY_RULES,
    allow: tuple[str, ...] = (),
) -> list[Failure]:
    return security_failures(only, answer(headers, https=https), allow)


# --- JSON paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("$", ()),
        ("$.a", ("a",)),
        ("$.data.items[0].id", ("data", "items", 0, "id")),
        ("$[2]", (2,)),
        ("$[-1].name", (-1, "name")),
        ("$['odd key'][\"x.y\"]", ("odd key", "x.y")),
        ("$.with-dash_1", ("with-dash_1",)),
    ],
)
def test_json_paths_of_the_supported_subset(path: str, parts: tuple[Any, ...]) -> None:
    assert parse_json_path(path) == parts


@pytest.mark.parametrize(
    "path", ["a.b", "$..a", "$.*", "$[*]", "$.a[?(@.x)]", "$.a.", "$[0:2]", "$.1a", "$ .a"]
)
def test_other_json_path_syntax_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="JSON path"):
        parse_json_path(path)


def test_lookup_on_lists_and_objects() -> None:
    doc = [{"id": 1, "tags": ["a", "b"]}, {"id": 2}]
    assert lookup(doc, (0, "id")) == 1
    assert lookup(doc, (-1, "id")) == 2
    assert lookup(doc, (0, "tags", 1)) == "b"
    missing = lookup(doc, (5,))
    assert lookup(doc, ("id",)) is missing  # a key on a list
    assert lookup(doc, (0, 0)) is missing  # an index on an object
    assert lookup(doc, (1, "tags")) is missing
    assert lookup({"a": None}, ("a",)) is None  # null is a value, not missing


def test_json_equality_keeps_types_apart() -> None:
    assert same_json(1, 1.0) and same_json({"a": [1, "x"]}, {"a": [1.0, "x"]})
    assert not same_json(True, 1) and not same_json(1, True) and not same_json(0, False)
    assert not same_json("1", 1) and not same_json([1], [1, 2]) and not same_json(None, 0)
    assert same_json(None, None) and same_json(False, False)


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"contains": [""]},
        {"regex": "("},
        {"json": {"a.b": 1}},
        {"json": {"$.a": {"exists": "yes"}}},
        {"json": {"$.a": {"b": 1}}},  # a table compared as is must say equals
        {"typo": ["x"]},
    ],
)
def test_invalid_body_expectations(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        BodyExpectation.model_validate(body)


@pytest.mark.parametrize(
    "rule", [{}, {"absent": False}, {"absent": True, "glob": "x"}, {"regex": "["}]
)
def test_invalid_header_rules(rule: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        HeaderRule.model_validate(rule)


def test_header_names_are_tokens() -> None:
    check_header_names({"X-Foo": "a", "Content-Type": "b"})
    with pytest.raises(ValueError, match="not HTTP header names"):
        check_header_names({"X Foo": "a"})
    with pytest.raises(ValueError, match="not HTTP header names"):
        check_header_names({"X-Foo:": "a"})


def test_security_rules_true_false_or_a_list() -> None:
    assert security_rules(True) == SECURITY_RULES
    assert security_rules(False) == ()
    assert security_rules(["cookies", "clickjacking"]) == ("clickjacking", "cookies")
    assert Expectations().empty and not Expectations(security=("cookies",)).empty


# --- body -----------------------------------------------------------------------------------------


def body(**expect: Any) -> BodyExpectation:
    return BodyExpectation.model_validate(expect)


def test_contains_not_contains_and_regex() -> None:
    page = answer(body="<h1>Orders</h1><p>Total: 42</p>")
    expect = body(contains=["Orders", "Total"], not_contains=["Traceback"], regex=r"Total: \d+")
    assert body_failures(expect, page) == []
    failed = body_failures(
        body(contains=["Invoice"], not_contains=["Orders"], regex=r"Sum: \d+"), page
    )
    assert rules(failed) == ["body:contains", "body:not_contains", "body:regex"]
    assert failed[0].said == 'body lacks "Invoice"'
    assert failed[0].detail == 'body starts "<h1>Orders</h1><p>Total: 42</p>"'
    assert failed[1].said == 'body contains "Orders"'
    assert failed[2].said == r"body does not match /Sum: \d+/"
    assert all(f.severity is FindingSeverity.HIGH for f in failed)


def test_contains_is_case_sensitive_and_regex_flags_are_the_authors() -> None:
    page = answer(body="TOTAL")
    assert rules(body_failures(body(contains=["total"]), page)) == ["body:contains"]
    assert body_failures(body(regex="(?i)total"), page) == []


def test_the_excerpt_is_short_printable_and_without_secrets() -> None:
    secret = "hunter2-secret"
    text = f"\x1b[31mError\x00\n\n   for user with password {secret} " + "x" * 500
    failed = evaluate(Expectations(body(contains=["Welcome"])), answer(body=text), [secret])
    (failure,) = failed
    shown = json.loads(failure.detail.removeprefix("body starts "))
    assert len(shown) <= EXCERPT_CHARS and shown.endswith("…")
    assert secret not in failure.detail and REDACTED in failure.detail
    assert "\x1b" not in failure.detail and "\x00" not in failure.detail
    assert "\n" not in failure.detail and "Error\ufffd for user" in shown


def test_a_secret_across_the_excerpts_end_is_still_redacted() -> None:
    secret = "s3cr3t-value-long"
    text = "a " * 59 + secret  # the secret starts just before the excerpt ends
    (failure,) = evaluate(Expectations(body(contains=["zzz"])), answer(body=text), [secret])
    assert "s3cr3t" not in failure.detail


def test_non_json_body_is_a_failed_assertion_not_a_crash() -> None:
    page = answer((("Content-Type", "text/html"),), "<html>oops</html>")
    (failure,) = body_failures(body(json={"$.a": 1}), page)
    assert failure.rule == "body:json" and failure.said == "body is not JSON"
    assert 'Content-Type "text/html"' in failure.detail and "<html>oops" in failure.detail
    assert rules(body_failures(body(json={"$.a": 1}), answer(body=b""))) == ["body:json"]
    assert rules(body_failures(body(json={"$.a": 1}), answer(body=b"\xff\xfe\x00"))) == [
        "body:json"
    ]


def test_deeply_nested_json_is_a_failed_assertion() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (failure,) = body_failures(body(json={"$[0]": {"exists": True}}), answer(body=deep))
    assert failure.said == "body is not JSON" and "RecursionError" in failure.detail


def test_json_assertions() -> None:
    doc = {"data": {"total": 3, "ok": True, "items": [{"id": 7}], "none": None}}
    page = answer(body=json.dumps(doc))
    passing = {
        "$.data.total": 3.0,
        "$.data.ok": True,
        "$.data.items[0].id": {"exists": True},
        "$.data.items[1]": {"exists": False},
        "$.data.items": {"equals": [{"id": 7}]},
        "$.data.none": {"exists": True},
    }
    assert body_failures(body(json=passing), page) == []
    failing = {
        "$.data.total": 5,
        "$.data.ok": 1,
        "$.data.items[0].name": {"exists": True},
        "$.data": {"exists": False},
        "$.data.items[3]": "x",
    }
    said = [f.said for f in body_failures(body(json=failing), page)]
    assert said == [
        "$.data.total is 3 (expected 5)",
        "$.data.ok is true (expected 1)",
        "$.data.items[0].name missing",
        "$.data exists (expected absent)",
        '$.data.items[3] missing (expected "x")',
    ]


def test_json_path_on_a_top_level_list() -> None:
    page = answer(body='[{"id": 1}, {"id": 2}]')
    assert body_failures(body(json={"$[1].id": 2, "$[-1].id": 2}), page) == []
    assert [f.said for f in body_failures(body(json={"$.id": 1}), page)] == [
        "$.id missing (expected 1)"
    ]


def test_a_huge_body_is_judged_only_where_it_can_be() -> None:
    prefix = b"Total: 42 " + b"x" * 2048
    page = answer(body=prefix, truncated=True)
    assert body_failures(body(contains=["Total"], regex="Total: 42"), page) == []
    (lacks,) = body_failures(body(contains=["Footer"]), page)
    assert "only its first 2058 bytes were read" in lacks.detail
    failed = body_failures(body(not_contains=["Traceback"], json={"$.a": 1}), page)
    assert [f.said for f in failed] == [
        'body over 2058 bytes: cannot tell it lacks "Traceback"',
        "body over 2058 bytes: JSON not checked",
    ]


def test_the_body_is_decoded_with_its_charset() -> None:
    page = answer(body="Größe".encode("latin-1"), charset="latin-1")
    assert body_failures(body(contains=["Größe"]), page) == []
    odd = answer(body="Größe".encode(), charset="no-such-codec")
    assert body_failures(body(contains=["Größe"]), odd) == []


# --- headers --------------------------------------------------------------------------------------


def test_header_glob_regex_absent_and_present() -> None:
    page = answer(
        (("Content-Type", "Application/JSON; charset=utf-8"), ("X-Empty", ""), ("Server", "x"))
    )
    assert header_failures("content-type", "application/json*", page) == []
    assert header_failures("Content-Type", HeaderRule(regex=r"^Application/"), page) == []
    assert header_failures("Content-Type", HeaderRule(glob="*json*"), page) == []
    (wrong,) = header_failures("Content-Type", "text/html*", page)
    assert wrong.rule == "header:Content-Type"
    assert wrong.said == (
        'header Content-Type is "Application/JSON; charset=utf-8" (expected "text/html*")'
    )
    assert [f.said for f in header_failures("X-Missing", "*", page)] == ["missing header X-Missing"]
    assert [f.said for f in header_failures("X-Empty", HeaderRule(present=True), page)] == [
        "header X-Empty is empty"
    ]
    assert header_failures("X-Powered-By", HeaderRule(absent=True), page) == []
    (sent,) = header_failures("server", HeaderRule(absent=True), page)
    assert (sent.said, sent.detail) == ("header server is sent (expected absent)", '"x"')


def test_repeated_headers_are_read_joined() -> None:
    page = answer((("Vary", "Accept"), ("vary", "Cookie")))
    assert header_failures("Vary", "Accept, Cookie", page) == []


def test_cookie_and_credential_values_are_never_shown() -> None:
    page = answer((("Set-Cookie", "session=topsecret123; Path=/"), ("Authorization", "Bearer t0k")))
    failed = header_failures("Set-Cookie", "nothing*", page) + header_failures(
        "Authorization", "Basic *", page
    )
    assert len(failed) == 2
    assert all("topsecret123" not in f.said + f.detail and "t0k" not in f.said for f in failed)
    assert "(value not shown)" in failed[0].said


# --- the security preset --------------------------------------------------------------------------


def test_a_good_page_passes_every_rule() -> None:
    assert security(GOOD) == []


@pytest.mark.parametrize(
    "name",
    [
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Strict-Transport-Security",
    ],
)
def test_a_dropped_header_fails_naming_it(name: str) -> None:
    failed = security(without(name))
    assert rules(failed) == [f"header:{name}"]
    assert [f.said for f in failed] == [f"missing header {name}"]
    assert all(f.severity is FindingSeverity.MEDIUM for f in failed)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("Content-Security-Policy", "", "header Content-Security-Policy is empty"),
        ("Content-Security-Policy", " ; ;", "header Content-Security-Policy is empty"),
        ("X-Content-Type-Options", "", "header X-Content-Type-Options is empty"),
        ("X-Content-Type-Options", "sniff", 'header X-Content-Type-Options is "sniff"'),
        ("Referrer-Policy", "", "header Referrer-Policy is empty"),
        ("Referrer-Policy", "sometimes", 'header Referrer-Policy is "sometimes" (no valid'),
        ("Referrer-Policy", "no-referrer, unsafe-url", "header Referrer-Policy is unsafe-url"),
        ("Referrer-Policy", "UNSAFE-URL", "header Referrer-Policy is unsafe-url"),
        ("Strict-Transport-Security", "max-age=0", "max-age=0 (turns HSTS off)"),
        ("Strict-Transport-Security", "includeSubDomains", "has no valid max-age"),
        ("Strict-Transport-Security", "max-age=abc", "has no valid max-age"),
    ],
)
def test_present_but_useless_values_fail(name: str, value: str, said: str) -> None:
    failed = [f.said for f in security(replaced(name, value))]
    assert any(s.startswith(said) or said in s for s in failed), failed


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Content-Type-Options", "NoSniff"),
        ("Referrer-Policy", "unsafe-url, no-referrer"),  # the last valid token counts
        ("Referrer-Policy", "no-referrer, bogus"),
        ("Strict-Transport-Security", 'max-age="600"'),
    ],
)
def test_values_browsers_accept_pass(name: str, value: str) -> None:
    assert security(replaced(name, value)) == []


def test_report_only_csp_does_not_count() -> None:
    headers = (*without("Content-Security-Policy"), ("Content-Security-Policy-Report-Only", "x"))
    failed = [f for f in security(headers) if f.rule == "header:Content-Security-Policy"]
    assert len(failed) == 1 and "enforces nothing" in failed[0].detail


@pytest.mark.parametrize(
    ("csp", "xfo", "passes"),
    [
        ("default-src 'self'", "DENY", True),
        ("default-src 'self'", "sameorigin", True),
        ("default-src 'self'", "ALLOWALL", False),
        ("default-src 'self'", "ALLOW-FROM https://a.example", False),
        ("default-src 'self'", "DENY, SAMEORIGIN", False),  # conflicting values
        ("default-src 'self'", "", False),
        ("default-src 'self'", None, False),
        ("frame-ancestors 'self'", None, True),
        ("frame-ancestors 'none'", None, True),
        ("frame-ancestors https://erp.example", None, True),
        ("frame-ancestors *", "DENY", False),  # browsers ignore X-Frame-Options then
        ("frame-ancestors https:", None, False),
    ],
)
def test_clickjacking(csp: str, xfo: str | None, passes: bool) -> None:
    headers = [("Content-Security-Policy", csp)]
    if xfo is not None:
        headers.append(("X-Frame-Options", xfo))
    failed = security(tuple(headers), only=("clickjacking",))
    assert (failed == []) is passes, failed
    if not passes:
        assert rules(failed) == ["header:X-Frame-Options"]


def test_x_frame_options_allowall_is_named() -> None:
    (failure,) = security((("X-Frame-Options", "ALLOWALL"),), only=("clickjacking",))
    assert failure.said == (
        'header X-Frame-Options is "ALLOWALL" (expected DENY or SAMEORIGIN, or CSP frame-ancestors)'
    )


def test_hsts_only_over_https() -> None:
    assert security(without("Strict-Transport-Security"), https=False) == []


def test_only_the_chosen_rules_apply() -> None:
    failed = security((), only=("x-content-type-options", "referrer-policy"))
    assert rules(failed) == ["header:X-Content-Type-Options", "header:Referrer-Policy"]


# --- cookies --------------------------------------------------------------------------------------


def cookies(*lines: str, https: bool = True, allow: tuple[str, ...] = ()) -> list[str]:
    seen = answer(tuple(("Set-Cookie", line) for line in lines), https=https)
    return [f.said for f in cookie_failures(seen, allow)]


def test_cookie_flags_in_any_case() -> None:
    assert cookies("sid=1; SECURE; httponly; samesite=STRICT") == []
    assert cookies("sid=1; Secure; HttpOnly; SameSite=None") == []


def test_each_missing_cookie_flag_is_named() -> None:
    assert cookies("sid=abc; Path=/") == [
        "cookie sid lacks Secure",
        "cookie sid lacks HttpOnly",
        "cookie sid lacks SameSite",
    ]
    assert cookies("sid=1; HttpOnly; SameSite=Lax", https=False) == []  # Secure: https only
    assert cookies("sid=1; HttpOnly; SameSite=None", https=False) == [
        "cookie sid has SameSite=None without Secure (browsers drop it)"
    ]
    assert cookies("sid=1; Secure; HttpOnly; SameSite=Sometimes") == [
        "cookie sid has SameSite=Sometimes (expected Strict, Lax or None)"
    ]


def test_flags_in_the_value_or_a_longer_name_do_not_count() -> None:
    assert cookies("sid=Secure; HttpOnlyX; SameSiteX=Lax", https=True) == [
        "cookie sid lacks Secure",
        "cookie sid lacks HttpOnly",
        "cookie sid lacks SameSite",
    ]


def test_script_cookies_may_lack_httponly_and_deletions_are_skipped() -> None:
    lines = ("csrftoken=t; Secure; SameSite=Strict", "old=; Max-Age=0", "sid=1; Secure")
    assert cookies(*lines, allow=("csrftoken",)) == [
        "cookie sid lacks HttpOnly",
        "cookie sid lacks SameSite",
    ]


def test_cookie_values_are_not_shown() -> None:
    seen = answer((("Set-Cookie", "sid=VERYSECRETTOKEN"),), https=True)
    failed = security_failures(("cookies",), seen)
    assert failed and all("VERYSECRETTOKEN" not in f.said + f.detail for f in failed)


# --- all of it on one answer ----------------------------------------------------------------------


def test_evaluate_runs_body_headers_then_the_preset() -> None:
    expect = Expectations(
        body(contains=["Total"]),
        {"Content-Type": "application/json*"},
        ("x-content-type-options",),
    )
    page = answer((("Content-Type", "text/html"),), "<p>no</p>", status=500)
    assert rules(evaluate(expect, page)) == [
        "body:contains",
        "header:Content-Type",
        "header:X-Content-Type-Options",
    ]
