"""What an ``http`` endpoint's answer must look like, and whether one does: pure functions.

Three kinds of assertion, each optional (the settings models are here, the endpoint in
:mod:`neuroerp_ci.checks.http` holds them)::

    expect_body = { contains = ["Orders"], not_contains = ["Traceback"], regex = "Total: \\\\d+",
                    json = { "$.data.total" = 3, "$.items[0].id" = { exists = true } } }
    expect_headers = { "Content-Type" = "application/json*", "X-Powered-By" = { absent = true } }
    security_headers = true        # or a list: ["content-security-policy", "cookies"]

Every failed assertion is a :class:`Failure` with a rule id (``body:contains``,
``header:Content-Security-Policy``, ``cookie:HttpOnly``), a short text for the check's reason
(``missing header Content-Security-Policy``) and a detail for its finding (what was seen: a
header value, a body excerpt of at most :data:`EXCERPT_CHARS` printable characters). Cookie
values are never shown, nor the values of ``Authorization``-like headers, and every secret
value the run knows is replaced by ``[REDACTED]`` in what is shown.

The security preset, and what each rule passes on:

- ``content-security-policy``: an enforced ``Content-Security-Policy`` with at least one
  directive (``...-Report-Only`` enforces nothing).
- ``x-content-type-options``: its first value is ``nosniff`` (any case).
- ``clickjacking``: CSP ``frame-ancestors`` without ``*`` / ``http:`` / ``https:`` sources,
  else ``X-Frame-Options`` of only ``DENY`` / ``SAMEORIGIN`` (``ALLOWALL``, ``ALLOW-FROM``
  and conflicting values fail).
- ``referrer-policy``: the policy a browser would use (the last valid token) exists and is
  not ``unsafe-url``.
- ``strict-transport-security``: https URLs only: the first header has ``max-age`` > 0.
- ``cookies``: every ``Set-Cookie`` (but deletions, ``Max-Age`` <= 0) has ``HttpOnly``
  (unless its name is in ``allow_script_cookies``) and ``SameSite`` (``Strict``, ``Lax``, or
  ``None`` with ``Secure``); over https also ``Secure``. Attribute names in any case.

A body larger than the check's ``max_body_bytes`` is read only so far: ``contains`` and
``regex`` are judged on that part (a match there is a match), while ``not_contains`` and
``json`` fail, since the rest cannot be judged. Regular expressions are Python's ``re``
(``search``): they come from the pipeline file, so their cost is the pipeline author's.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, field_validator, model_validator

from neuroerp_ci.checks.interface import KindSettings
from neuroerp_ci.model import FindingSeverity
from neuroerp_ci.support.secrets import REDACTED
from neuroerp_ci.support.text import printable

EXCERPT_CHARS = 120
DEFAULT_MAX_BODY_BYTES = 1_048_576

SecurityRule = Literal[
    "content-security-policy",
    "x-content-type-options",
    "clickjacking",
    "referrer-policy",
    "strict-transport-security",
    "cookies",
]
SECURITY_RULES: tuple[SecurityRule, ...] = get_args(SecurityRule)

# RFC 9110 token: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers whose values are credentials: named, never shown.
_HIDDEN_VALUES = frozenset(
    {"set-cookie", "cookie", "authorization", "proxy-authorization", "x-api-key", "x-auth-token"}
)
_REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "same-origin",
        "origin",
        "strict-origin",
        "origin-when-cross-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)
_OPEN_FRAME_SOURCES = frozenset({"*", "http:", "https:", "http://*", "https://*"})
_SAMESITE = frozenset({"strict", "lax", "none"})


# --- JSON paths: $.a.b[0]['c d'] ----------------------------------------------------------

_SEGMENT = re.compile(
    r"\.(?P<key>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|\[(?P<index>-?[0-9]+)\]"
    r"|\['(?P<single>[^']*)'\]"
    r'|\["(?P<double>[^"]*)"\]'
)
JsonPath = tuple[str | int, ...]


def parse_json_path(text: str) -> JsonPath:
    """``$.a.b[0]['c d']`` -> ``("a", "b", 0, "c d")``; ValueError for anything else (no
    wildcards, recursion or filters: each path names one value)."""
    if not text.startswith("$"):
        raise ValueError(f"JSON path {text!r} must start with '$'")
    parts: list[str | int] = []
    pos = 1
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None:
            raise ValueError(
                f"JSON path {text!r}: cannot read {text[pos:]!r} (supported: $.key, $['any key'],"
                " $[0], $[-1])"
            )
        if match.group("index") is not None:
            parts.append(int(match.group("index")))
        else:
            parts.append(next(g for g in match.group("key", "single", "double") if g is not None))
        pos = match.end()
    return tuple(parts)


_MISSING = object()


def lookup(document: Any, path: JsonPath) -> Any:
    """The value at ``path``, or :data:`_MISSING` (a key on a list, an index on an object,
    an index out of range)."""
    node = document
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                return _MISSING
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
    return node


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0``, but ``true`` is no number and ``"1"`` no 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# --- the settings -------------------------------------------------------------------------


def valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


class BodyExpectation(KindSettings):
    """What the body must (not) hold; every key optional, at least one given."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # texts the body must contain (case-sensitive)
    contains: list[str] = Field(default_factory=list)
    # texts the body must not contain
    not_contains: list[str] = Field(default_factory=list)
    # a Python regular expression the body must match (re.search; (?i) for any case)
    regex: str | None = None
    # JSON path -> the value there, or { exists = true/false }, or { equals = value } (for
    # a table value); paths: $.key, $['any key'], $[0], $[-1]
    json_paths: dict[str, Any] = Field(default_factory=dict, alias="json")

    @field_validator("contains", "not_contains")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not text for text in value):
            raise ValueError("an empty text is in every body")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return valid_regex(value)

    @field_validator("json_paths")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path, expected in value.items():
            parse_json_path(path)
            if isinstance(expected, dict) and not (
                len(expected) == 1
                and (isinstance(expected.get("exists"), bool) or "equals" in expected)
            ):
                raise ValueError(
                    f"{path}: a table is {{ exists = true }}, {{ exists = false }} or"
                    f" {{ equals = ... }} (to compare with a table), got {expected!r}"
                )
        return value

    @model_validator(mode="after")
    def _says_something(self) -> BodyExpectation:
        if not (self.contains or self.not_contains or self.regex or self.json_paths):
            raise ValueError("expect_body needs contains, not_contains, regex or json")
        return self


class HeaderRule(KindSettings):
    """One header expectation as a table: exactly one of the keys."""

    absent: bool = False  # true: the header must not be sent (X-Powered-By, Server)
    present: bool = False  # true: sent with a non-empty value
    glob: str | None = None  # the value matches this glob (any case), as a plain string does
    regex: str | None = None  # the value matches this Python regular expression (re.search)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return valid_regex(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> HeaderRule:
        given = [self.absent, self.present, self.glob is not None, self.regex is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of absent = true, present = true, glob or regex")
        return self


def check_header_names(value: Mapping[str, Any]) -> None:
    """ValueError naming a key of ``expect_headers`` that is no header name."""
    bad = sorted(name for name in value if not _HEADER_NAME.fullmatch(name))
    if bad:
        raise ValueError(f"not HTTP header names: {bad}")


def security_rules(value: bool | Iterable[SecurityRule]) -> tuple[SecurityRule, ...]:
    """``security_headers`` as the rules it turns on: true = all, false = none."""
    if isinstance(value, bool):
        return SECURITY_RULES if value else ()
    chosen = set(value)
    return tuple(r for r in SECURITY_RULES if r in chosen)


@dataclass(frozen=True)
class Expectations:
    """Everything one endpoint's answer is checked for."""

    body: BodyExpectation | None = None
    headers: Mapping[str, str | HeaderRule] = field(default_factory=dict)
    security: tuple[SecurityRule, ...] = ()
    allow_script_cookies: Collection[str] = ()

    @property
    def empty(self) -> bool:
        return self.body is None and not self.headers and not self.security


# --- what was seen ------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """One answer as the assertions see it: status, headers in order (repeats kept), the
    body's first bytes, and whether there was more."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False
    https: bool = False
    charset: str | None = None  # from Content-Type, None: UTF-8

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), one per header line."""
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def joined(self, name: str) -> str | None:
        """The header's lines joined with ``, `` (HTTP's reading), None when it is not sent."""
        found = self.values(name)
        return ", ".join(found) if found else None

    def text(self) -> str:
        encoding = "utf-8"
        if self.charset:
            try:
                encoding = codecs.lookup(self.charset).name
            except LookupError:
                pass
        return self.body.decode(encoding, errors="replace")


@dataclass(frozen=True)
class Failure:
    """One failed assertion."""

    rule: str  # "body:contains", "header:Content-Security-Policy", "cookie:Secure", ...
    said: str  # for the reason: 'missing header Content-Security-Policy', 'body lacks "Total"'
    detail: str = ""  # for the finding: what was seen instead
    severity: FindingSeverity = FindingSeverity.HIGH


class Shown:
    """Text from the answer made safe to show: secrets out, printable, short."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str, chars: int = EXCERPT_CHARS) -> str:
        for secret in self._secrets:  # in the whole text: one across any cut is still found
            text = text.replace(secret, REDACTED)
        text = " ".join(printable(text[: chars * 8]).split())
        return text if len(text) <= chars else text[: chars - 1] + "…"

    def quoted(self, text: str, chars: int = 60) -> str:
        return json.dumps(self(text, chars), ensure_ascii=False)


def evaluate(expect: Expectations, seen: Observed, secrets: Iterable[str] = ()) -> list[Failure]:
    """Every assertion of ``expect`` that ``seen`` fails: body, headers, then the preset."""
    shown = Shown(secrets)
    failures: list[Failure] = []
    if expect.body is not None:
        failures += body_failures(expect.body, seen, shown)
    for name, rule in expect.headers.items():
        failures += header_failures(name, rule, seen, shown)
    failures += security_failures(expect.security, seen, expect.allow_script_cookies, shown)
    return failures


# --- body -----------------------------------------------------------------------------------


def body_failures(
    expect: BodyExpectation, seen: Observed, shown: Shown | None = None
) -> list[Failure]:
    shown = shown or Shown(())
    text = seen.text()
    cut = f" (only its first {len(seen.body)} bytes were read)" if seen.truncated else ""
    excerpt = f"body starts {shown.quoted(text, EXCERPT_CHARS)}{cut}" if text else "empty body"
    failures = [
        Failure("body:contains", f"body lacks {shown.quoted(needle, 40)}", excerpt)
        for needle in expect.contains
        if needle not in text
    ]
    for needle in expect.not_contains:
        if needle in text:
            at = text.index(needle)
            around = shown.quoted(text[max(at - 40, 0) : at + len(needle) + 40], EXCERPT_CHARS)
            failures.append(
                Failure("body:not_contains", f"body contains {shown.quoted(needle, 40)}", around)
            )
        elif seen.truncated:
            failures.append(
                Failure(
                    "body:not_contains",
                    f"body over {len(seen.body)} bytes: cannot tell it lacks"
                    f" {shown.quoted(needle, 40)}",
                    "raise max_body_bytes to read all of it",
                )
            )
    if expect.regex is not None and re.search(expect.regex, text) is None:
        pattern = shown(expect.regex, 40)
        failures.append(Failure("body:regex", f"body does not match /{pattern}/", excerpt))
    if expect.json_paths:
        failures += _json_failures(expect.json_paths, seen, text, shown)
    return failures


def _json_failures(
    paths: Mapping[str, Any], seen: Observed, text: str, shown: Shown
) -> list[Failure]:
    if seen.truncated:
        said = f"body over {len(seen.body)} bytes: JSON not checked"
        return [Failure("body:json", said, "raise max_body_bytes to read all of it")]
    try:
        document = json.loads(seen.body)
    except (ValueError, RecursionError) as exc:
        kind = seen.joined("content-type") or "no Content-Type"
        detail = f"{type(exc).__name__}; Content-Type {shown.quoted(kind, 60)}; " + (
            f"body starts {shown.quoted(text, EXCERPT_CHARS)}" if text else "empty body"
        )
        return [Failure("body:json", "body is not JSON", detail)]
    failures = []
    for path, expected in paths.items():
        found = lookup(document, parse_json_path(path))
        said = _json_mismatch(path, expected, found, shown)
        if said:
            failures.append(Failure("body:json", said))
    return failures


def _json_mismatch(path: str, expected: Any, found: Any, shown: Shown) -> str:
    """What is wrong at ``path``, "" when nothing is."""
    if isinstance(expected, dict) and "exists" in expected:
        exists = found is not _MISSING
        if exists == expected["exists"]:
            return ""
        return f"{path} missing" if expected["exists"] else f"{path} exists (expected absent)"
    if isinstance(expected, dict):
        expected = expected["equals"]
    if found is _MISSING:
        return f"{path} missing (expected {shown(_json_text(expected), 40)})"
    if same_json(found, expected):
        return ""
    return f"{path} is {shown(_json_text(found), 40)} (expected {shown(_json_text(expected), 40)})"


def _json_text(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# --- headers --------------------------------------------------------------------------------


def header_failures(
    name: str, rule: str | HeaderRule, seen: Observed, shown: Shown | None = None
) -> list[Failure]:
    shown = shown or Shown(())
    value = seen.joined(name)
    rule_id = f"header:{name}"
    if isinstance(rule, HeaderRule) and rule.absent:
        if value is None:
            return []
        return [
            Failure(rule_id, f"header {name} is sent (expected absent)", _value(name, value, shown))
        ]
    if value is None:
        return [Failure(rule_id, f"missing header {name}")]
    if isinstance(rule, HeaderRule) and rule.present:
        return [] if value.strip() else [Failure(rule_id, f"header {name} is empty")]
    if isinstance(rule, HeaderRule) and rule.regex is not None:
        if re.search(rule.regex, value):
            return []
        wanted = f"/{shown(rule.regex, 40)}/"
    else:
        pattern = rule if isinstance(rule, str) else rule.glob or ""
        if fnmatchcase(value.lower(), pattern.lower()):
            return []
        wanted = shown.quoted(pattern, 40)
    said = f"header {name} is {_value(name, value, shown)} (expected {wanted})"
    return [Failure(rule_id, said)]


def _value(name: str, value: str, shown: Shown) -> str:
    if name.lower() in _HIDDEN_VALUES:
        return "(value not shown)"
    return shown.quoted(value, 60)


# --- the security preset ----------------------------------------------------------------------

_MEDIUM = FindingSeverity.MEDIUM


def security_failures(
    rules: Collection[SecurityRule],
    seen: Observed,
    allow_script_cookies: Collection[str] = (),
    shown: Shown | None = None,
) -> list[Failure]:
    shown = shown or Shown(())
    failures: list[Failure] = []
    policies = [_csp_directives(v) for v in seen.values("content-security-policy")]
    if "content-security-policy" in rules:
        failures += _csp(seen, policies)
    if "x-content-type-options" in rules:
        failures += _nosniff(seen, shown)
    if "clickjacking" in rules:
        failures += _clickjacking(seen, policies, shown)
    if "referrer-policy" in rules:
        failures += _referrer(seen, shown)
    if "strict-transport-security" in rules and seen.https:
        failures += _hsts(seen, shown)
    if "cookies" in rules:
        failures += cookie_failures(seen, allow_script_cookies, shown)
    return failures


def _csp_directives(value: str) -> dict[str, list[str]]:
    """One CSP header value: directive name (lower case) -> its source tokens."""
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        tokens = part.split()
        if tokens:
            directives.setdefault(tokens[0].lower(), tokens[1:])  # the first one counts
    return directives


def _csp(seen: Observed, policies: list[dict[str, list[str]]]) -> list[Failure]:
    rule = "header:Content-Security-Policy"
    if any(policies):
        return []
    if policies:
        return [Failure(rule, "header Content-Security-Policy is empty", severity=_MEDIUM)]
    only = seen.values("content-security-policy-report-only")
    detail = "only Content-Security-Policy-Report-Only, which enforces nothing" if only else ""
    return [Failure(rule, "missing header Content-Security-Policy", detail, _MEDIUM)]


def _nosniff(seen: Observed, shown: Shown) -> list[Failure]:
    rule, name = "header:X-Content-Type-Options", "X-Content-Type-Options"
    value = seen.joined(name)
    if value is None:
        return [Failure(rule, f"missing header {name}", severity=_MEDIUM)]
    first = value.split(",")[0].strip()
    if first.lower() == "nosniff":
        return []
    if not first:
        return [Failure(rule, f"header {name} is empty", severity=_MEDIUM)]
    said = f"header {name} is {shown.quoted(value, 40)} (expected nosniff)"
    return [Failure(rule, said, severity=_MEDIUM)]


def _clickjacking(
    seen: Observed, policies: list[dict[str, list[str]]], shown: Shown
) -> list[Failure]:
    rule = "header:X-Frame-Options"
    framing = [p["frame-ancestors"] for p in policies if "frame-ancestors" in p]
    if framing:
        # Every enforced policy applies: one that limits framing is enough.
        if any(not _OPEN_FRAME_SOURCES & {s.lower() for s in sources} for sources in framing):
            return []
        sources = " ".join(framing[0])
        said = f"CSP frame-ancestors {shown.quoted(sources, 40)} lets any site frame the page"
        return [Failure(rule, said, severity=_MEDIUM)]
    value = seen.joined("x-frame-options")
    if value is None or not value.strip(" ,"):
        said = "missing header X-Frame-Options (and no CSP frame-ancestors)"
        return [Failure(rule, said, "clickjacking: any site may frame the page", _MEDIUM)]
    given = {v.strip().lower() for v in value.split(",") if v.strip()}
    if given <= {"deny", "sameorigin"} and len(given) == 1:
        return []
    said = (
        f"header X-Frame-Options is {shown.quoted(value, 40)}"
        " (expected DENY or SAMEORIGIN, or CSP frame-ancestors)"
    )
    return [Failure(rule, said, severity=_MEDIUM)]


def _referrer(seen: Observed, shown: Shown) -> list[Failure]:
    rule, name = "header:Referrer-Policy", "Referrer-Policy"
    value = seen.joined(name)
    if value is None:
        return [Failure(rule, f"missing header {name}", severity=_MEDIUM)]
    tokens = [t.strip().lower() for t in value.split(",")]
    valid = [t for t in tokens if t in _REFERRER_POLICIES]
    if not any(tokens):
        return [Failure(rule, f"header {name} is empty", severity=_MEDIUM)]
    if not valid:
        said = f"header {name} is {shown.quoted(value, 40)} (no valid policy)"
        return [Failure(rule, said, severity=_MEDIUM)]
    if valid[-1] == "unsafe-url":  # the last valid token is the one browsers use
        said = f"header {name} is unsafe-url (full URLs go to every site)"
        return [Failure(rule, said, severity=_MEDIUM)]
    return []


def _hsts(seen: Observed, shown: Shown) -> list[Failure]:
    rule, name = "header:Strict-Transport-Security", "Strict-Transport-Security"
    found = seen.values(name)
    if not found:
        return [Failure(rule, f"missing header {name}", severity=_MEDIUM)]
    max_age: int | None = None
    for part in found[0].split(";"):  # browsers read the first header only (RFC 6797)
        key, _, raw = part.partition("=")
        if key.strip().lower() == "max-age":
            digits = raw.strip().strip('"')
            max_age = int(digits) if digits.isdigit() else None
            break
    if max_age is None:
        said = f"header {name} has no valid max-age ({shown.quoted(found[0], 40)})"
        return [Failure(rule, said, severity=_MEDIUM)]
    if max_age <= 0:
        return [Failure(rule, f"header {name} has max-age=0 (turns HSTS off)", severity=_MEDIUM)]
    return []


@dataclass(frozen=True)
class SetCookie:
    """One ``Set-Cookie`` line: the cookie's name and its attributes (names in lower case)."""

    name: str
    attributes: Mapping[str, str]

    @classmethod
    def parse(cls, line: str) -> SetCookie:
        pair, *attrs = line.split(";")
        name = pair.split("=", 1)[0].strip() if "=" in pair else ""
        attributes: dict[str, str] = {}
        for attr in attrs:
            key, _, value = attr.partition("=")
            attributes.setdefault(key.strip().lower(), value.strip())
        return cls(name, attributes)

    @property
    def deletion(self) -> bool:
        raw = self.attributes.get("max-age", "")
        return raw.lstrip("-").isdigit() and int(raw) <= 0


def cookie_failures(
    seen: Observed, allow_script_cookies: Collection[str] = (), shown: Shown | None = None
) -> list[Failure]:
    shown = shown or Shown(())
    failures = []
    for line in seen.values("set-cookie"):
        cookie = SetCookie.parse(line)
        if cookie.deletion:
            continue
        who = f"cookie {shown(cookie.name, 40) or '(no name)'}"
        attrs = cookie.attributes
        if seen.https and "secure" not in attrs:
            failures.append(Failure("cookie:Secure", f"{who} lacks Secure", severity=_MEDIUM))
        if cookie.name not in allow_script_cookies and "httponly" not in attrs:
            failures.append(Failure("cookie:HttpOnly", f"{who} lacks HttpOnly", severity=_MEDIUM))
        same_site = attrs.get("samesite")
        if same_site is None:
            failures.append(Failure("cookie:SameSite", f"{who} lacks SameSite", severity=_MEDIUM))
        elif same_site.lower() not in _SAMESITE:
            said = f"{who} has SameSite={shown(same_site, 20)} (expected Strict, Lax or None)"
            failures.append(Failure("cookie:SameSite", said, severity=_MEDIUM))
        elif same_site.lower() == "none" and "secure" not in attrs:
            said = f"{who} has SameSite=None without Secure (browsers drop it)"
            failures.append(Failure("cookie:SameSite", said, severity=_MEDIUM))
    return failures
