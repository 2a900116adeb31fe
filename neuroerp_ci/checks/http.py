"""The ``http`` kind: a latency baseline of the target's HTTP endpoints.

Example (pipeline file)::

    [[checks]]
    id = "api-latency"
    kind = "http"
    settings = { samples = 50, endpoints = [
        { name = "health", path = "/health" },
        { name = "orders", path = "/api/orders", method = "POST", json = { limit = 10 } },
    ] }

Requests go sequentially over ONE reused ``httpx.Client`` (keep-alive, as a real client
would). Samples interleave round-robin across endpoints: slow drift of the machine (GC,
caches, other load) then touches every endpoint alike instead of biasing whichever endpoint
happened to be measured last. httpcore's ``trace`` extension gives connect, TLS and
time-to-first-byte timings per request; total latency is wall time around the whole request
including reading the body.

Every URL's host must be in ``ctx.allowed_hosts`` (the rule of :mod:`neuroerp_ci.support.hosts`);
this is checked for all endpoints before the first request, and the client checks again the
host it dials. Redirects are not followed: a 3xx is an answer with that status. A target
where no request got any HTTP answer is a TargetError (status error), never a pass;
otherwise HTTP errors and wrong statuses become the error rate.

Acting like a user (all optional): an endpoint may send a form (``form = { q = "x" }``) and
assert on its answer's body, headers and security headers (``expect_body``,
``expect_headers``, ``security_headers``: :mod:`neuroerp_ci.checks._http_assertions`); a
``login`` step runs once before the warm-up and its cookies go with every endpoint
(:mod:`neuroerp_ci.checks._http_login`; a failed login is an ``error``)::

    settings = { samples = 20, login = { path = "/login", form = { user = "qa",
                 password = "{env:QA_PASSWORD}" }, expect_cookies = ["session"] },
                 endpoints = [
        { name = "orders", path = "/orders", expect_body = { contains = ["Total"] },
          security_headers = true },
    ] }

Assertions are judged on each endpoint's first counted answer (whatever its status; the
status of every request is the error rate): one failure per assertion is a finding (rule
``body:contains``, ``header:Content-Security-Policy``, ...; location ``<endpoint> <path>``)
and counts in ``assertion_failures`` and ``<endpoint>.assertion_failures``, which a default
condition holds at 0. An endpoint with assertions that never got a counted answer fails them
all as one (``response:none``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
from pydantic import ConfigDict, Field, field_validator, model_validator

from neuroerp_ci.checks._http_assertions import (
    DEFAULT_MAX_BODY_BYTES,
    BodyExpectation,
    Expectations,
    Failure,
    HeaderRule,
    Observed,
    SecurityRule,
    check_header_names,
    evaluate,
    security_rules,
)
from neuroerp_ci.checks._http_login import LoginResult, log_in, observed, read_body
from neuroerp_ci.checks._percentiles import median, summary
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Finding, Metric
from neuroerp_ci.support.hosts import ensure_allowed, guarded_client, http_url_problem, resolve_url
from neuroerp_ci.support.placeholders import expand
from neuroerp_ci.support.secrets import MIN_SECRET_LENGTH

SAMPLES_FILE = "http_samples.json"
ASSERTION_FAILURES = "assertion_failures"

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _valid_statuses(value: list[int]) -> list[int]:
    bad = [s for s in value if not 100 <= s <= 599]
    if bad:
        raise ValueError(f"HTTP status codes are 100..599, got {bad}")
    return value


def _check_location(path: str | None, url: str | None) -> None:
    if (path is None) == (url is None):
        raise ValueError("give exactly one of 'path' or 'url'")
    problem = http_url_problem(url) if url is not None else None
    if problem:
        raise ValueError(f"'url' must be an absolute http:// or https:// URL: {problem}")


def _check_body(body: dict[str, Any] | None, form: dict[str, str] | None) -> None:
    if body is not None and form is not None:
        raise ValueError("give at most one of 'json' or 'form'")


class Endpoint(KindSettings):
    """One endpoint to probe: a ``path`` under the target's base URL or an absolute ``url``."""

    # "json" would shadow BaseModel.json, so the field is ``body`` with the alias "json".
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)
    path: str | None = None
    url: str | None = None
    method: Method = "GET"
    body: dict[str, Any] | None = Field(default=None, alias="json")
    # a form-encoded body (application/x-www-form-urlencoded; {env:NAME} / {secret:BLOCK}
    # allowed in values); not with json
    form: dict[str, str] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    # contains / not_contains / regex / json path assertions on the first counted answer
    expect_body: BodyExpectation | None = None
    # header name -> a glob its value matches (any case), or a table: { absent = true },
    # { present = true }, { glob = "..." }, { regex = "..." }
    expect_headers: dict[str, str | HeaderRule] = Field(default_factory=dict)
    # true: the security-headers preset (CSP, nosniff, clickjacking, Referrer-Policy, HSTS
    # over https, cookie flags); or a list of its rules
    security_headers: bool | list[SecurityRule] = False
    # cookies that may lack HttpOnly (scripts read them, e.g. a CSRF token)
    allow_script_cookies: list[str] = Field(default_factory=list)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        return _valid_statuses(value)

    @field_validator("expect_headers")
    @classmethod
    def _header_names(cls, value: dict[str, str | HeaderRule]) -> dict[str, str | HeaderRule]:
        check_header_names(value)
        return value

    @model_validator(mode="after")
    def _one_location(self) -> Endpoint:
        _check_location(self.path, self.url)
        _check_body(self.body, self.form)
        return self

    @property
    def expectations(self) -> Expectations:
        return Expectations(
            self.expect_body,
            self.expect_headers,
            security_rules(self.security_headers),
            frozenset(self.allow_script_cookies),
        )


class LoginStep(KindSettings):
    """A login sent once before the warm-up; its cookies go with every endpoint of the check.

    It must work, or the check is an error: a status in ``expect_status``, ``expect_body``
    (if given) met, every cookie of ``expect_cookies`` set, and at least one cookie set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    path: str | None = None
    url: str | None = None
    method: Method = "POST"
    # a form-encoded body; values may be {env:NAME} / {secret:BLOCK} (never shown anywhere)
    form: dict[str, str] | None = None
    # a JSON body instead; its strings may be {env:NAME} / {secret:BLOCK}
    body: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)  # {env:NAME} / {secret:BLOCK} allowed
    expect_status: list[int] = Field(default_factory=lambda: [200, 204, 302, 303], min_length=1)
    # false: a redirect is the answer (its cookies count); true: follow it (allowed hosts only)
    follow_redirects: bool = False
    # cookies the login must set (the session cookie): a wrong password that answers 200
    # with the form again then fails the step
    expect_cookies: list[str] = Field(default_factory=list)
    # assertions the login's answer must pass (e.g. not_contains = ["Invalid password"])
    expect_body: BodyExpectation | None = None
    # header assertions on the login's answer: findings, not an error
    expect_headers: dict[str, str | HeaderRule] = Field(default_factory=dict)
    # the preset on the login's answer (the session cookie's flags): findings, not an error
    security_headers: bool | list[SecurityRule] = False
    allow_script_cookies: list[str] = Field(default_factory=list)  # as on an endpoint

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        return _valid_statuses(value)

    @field_validator("expect_headers")
    @classmethod
    def _header_names(cls, value: dict[str, str | HeaderRule]) -> dict[str, str | HeaderRule]:
        check_header_names(value)
        return value

    @model_validator(mode="after")
    def _one_location(self) -> LoginStep:
        _check_location(self.path, self.url)
        _check_body(self.body, self.form)
        return self

    @property
    def expectations(self) -> Expectations:
        """The login's header assertions (its body assertions decide whether it worked)."""
        return Expectations(
            None,
            self.expect_headers,
            security_rules(self.security_headers),
            frozenset(self.allow_script_cookies),
        )


class HttpProbeSettings(KindSettings):
    endpoints: list[Endpoint] = Field(min_length=1)
    samples: int = Field(default=20, ge=1, le=10_000)  # counted requests per endpoint
    warmup: int = Field(default=2, ge=0, le=1_000)  # requests per endpoint not counted
    request_timeout: float = Field(default=10.0, gt=0)
    verify_tls: bool = True
    # sent once before the warm-up; its cookies go with every endpoint (a failed login: error)
    login: LoginStep | None = None
    # body bytes kept for the assertions (more is read, not kept: not_contains and json fail)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=64 * 1_048_576)

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, value: list[Endpoint]) -> list[Endpoint]:
        counts = Counter(e.name for e in value)
        dups = sorted(n for n, count in counts.items() if count > 1)
        if dups:
            raise ValueError(f"duplicate endpoint names {dups}")
        return value

    @property
    def asserts(self) -> bool:
        """Whether any endpoint (or the login's answer) has assertions."""
        login = self.login is not None and not self.login.expectations.empty
        return login or any(not e.expectations.empty for e in self.endpoints)


@dataclass(frozen=True)
class ResolvedEndpoint:
    """An endpoint with its URL resolved and allowed, and its headers with secrets in."""

    endpoint: Endpoint
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None  # with secrets in

    @property
    def shown(self) -> str:
        """``orders /api/orders``: the endpoint in a finding's location (no query: it may
        hold a secret)."""
        return f"{self.endpoint.name} {httpx.URL(self.url).path}"


@dataclass(frozen=True)
class ResolvedLogin:
    """The login step with its URL resolved and allowed, and its values with secrets in."""

    step: LoginStep
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None
    body: dict[str, Any] | None = None


@dataclass
class Sample:
    """One request: its timings (ms) and how it ended."""

    endpoint: str
    warmup: bool
    latency_ms: float
    status: int | None = None  # None: no HTTP answer (the request raised)
    ok: bool = False  # answered with an expected status
    connect_ms: float | None = None  # only when this request opened a new connection
    tls_ms: float | None = None
    ttfb_ms: float | None = None  # request sent -> response headers received
    error: str | None = None


@dataclass
class ProbeRun:
    """Everything one probe measured; ``wall_s`` covers the counted requests only."""

    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    first_error: tuple[str, str] | None = None  # (url, "ExcClass: message") of a raise
    # each asserting endpoint's first counted answer, which its assertions judge
    answers: dict[str, Observed] = field(default_factory=dict)

    def counted(self, endpoint: str | None = None) -> list[Sample]:
        return [
            s for s in self.samples if not s.warmup and (endpoint is None or s.endpoint == endpoint)
        ]


class _Timeline:
    """The ``trace`` callback: when each httpcore event happened (perf_counter seconds)."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        # "connection.connect_tcp.started" / "http11.send_request_headers.started" ...:
        # drop the emitter prefix so HTTP/1.1 and HTTP/2 events read alike.
        self.marks[event.split(".", 1)[-1]] = time.perf_counter()

    def span_ms(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return (self.marks[end] - self.marks[start]) * 1000.0
        return None


def resolve_targets(
    endpoints: Sequence[Endpoint],
    base_url: str | None,
    allowed_hosts: Sequence[str],
    secrets: Mapping[str, str] | None = None,
) -> list[ResolvedEndpoint]:
    """Resolve every endpoint's URL and check its host, all before any request.

    ``secrets`` are the values of ``{env:NAME}`` / ``{secret:BLOCK}`` in ``url`` and headers.
    """
    targets = []
    secrets = secrets or {}
    for ep in endpoints:
        what = f"endpoint {ep.name!r}"
        url = _allowed_url(ep.url, ep.path, base_url, allowed_hosts, secrets, what)
        headers = {k: expand(v, secrets) for k, v in ep.headers.items()}
        form = {k: expand(v, secrets) for k, v in ep.form.items()} if ep.form is not None else None
        targets.append(ResolvedEndpoint(ep, url, headers, form))
    return targets


def resolve_login(
    step: LoginStep,
    base_url: str | None,
    allowed_hosts: Sequence[str],
    secrets: Mapping[str, str] | None = None,
) -> ResolvedLogin:
    """The login step's URL resolved and allowed, its headers, form and JSON strings with
    their ``{env:NAME}`` / ``{secret:BLOCK}`` values in."""
    secrets = secrets or {}
    url = _allowed_url(step.url, step.path, base_url, allowed_hosts, secrets, "login step")
    return ResolvedLogin(
        step,
        url,
        {k: expand(v, secrets) for k, v in step.headers.items()},
        {k: expand(v, secrets) for k, v in step.form.items()} if step.form is not None else None,
        _expand_json(step.body, secrets) if step.body is not None else None,
    )


def _allowed_url(
    url: str | None,
    path: str | None,
    base_url: str | None,
    allowed_hosts: Sequence[str],
    secrets: Mapping[str, str],
    what: str,
) -> str:
    resolved = (
        expand(url, secrets)
        if url is not None
        else resolve_url(path or "", base_url, f"{what} path")
    )
    try:
        httpx.URL(resolved)
    except httpx.InvalidURL as exc:
        raise TargetError(f"{what}: invalid URL {resolved!r}: {exc}") from exc
    ensure_allowed(resolved, allowed_hosts, what)
    return resolved


def _expand_json(value: Any, secrets: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return expand(value, secrets)
    if isinstance(value, dict):
        return {k: _expand_json(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_json(v, secrets) for v in value]
    return value


def probe(
    client: httpx.Client,
    targets: Sequence[ResolvedEndpoint],
    *,
    samples: int,
    warmup: int,
    request_timeout: float,
    deadline: float,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ProbeRun:
    """Send ``warmup`` then ``samples`` rounds of one request per target, in order.

    ``deadline`` is a ``time.perf_counter()`` value; passing it raises ToolError. The first
    counted answer of each target with assertions is kept (its first ``max_body_bytes``).
    """
    run = ProbeRun()
    asserting = {t.endpoint.name for t in targets if not t.endpoint.expectations.empty}
    total = (warmup + samples) * len(targets)
    counted_started: float | None = None
    for round_no in range(warmup + samples):
        is_warmup = round_no < warmup
        if not is_warmup and counted_started is None:
            counted_started = time.perf_counter()
        for target in targets:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise ToolError(
                    f"http probe exceeded timeout after {len(run.samples)} of {total} requests"
                )
            name = target.endpoint.name
            keep = (
                max_body_bytes
                if not is_warmup and name in asserting and name not in run.answers
                else None
            )
            sample, seen = _request(
                client, target, is_warmup, min(request_timeout, remaining), keep
            )
            run.samples.append(sample)
            if seen is not None:
                run.answers[name] = seen
            if sample.status is None:
                if time.perf_counter() >= deadline:
                    # Cut short by the check's budget, not a fair error of the target.
                    raise ToolError(
                        f"http probe exceeded timeout after {len(run.samples)} of {total}"
                        f" requests (last: {sample.error})"
                    )
                if run.first_error is None:
                    run.first_error = (target.url, sample.error or "")
    run.wall_s = time.perf_counter() - (counted_started or time.perf_counter())
    return run


def _request(
    client: httpx.Client,
    target: ResolvedEndpoint,
    warmup: bool,
    timeout: float,
    keep: int | None = None,
) -> tuple[Sample, Observed | None]:
    """One request; with ``keep``, also the answer (its first ``keep`` body bytes)."""
    ep = target.endpoint
    timeline = _Timeline()
    request = client.build_request(
        ep.method,
        target.url,
        json=ep.body,
        data=dict(target.form) if target.form is not None else None,
        headers=dict(target.headers),
        timeout=httpx.Timeout(timeout),
        extensions={"trace": timeline},
    )
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    seen: Observed | None = None
    try:
        response = client.send(request, stream=True)
        try:
            status = response.status_code
            # httpx timeouts are per read; this bounds the whole body as well.
            body, truncated = read_body(response, started, timeout, keep)
            if keep is not None:
                seen = observed(response, body, truncated)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        status = None
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - started) * 1000.0
    ok = status is not None and status in ep.expect_status
    if status is not None and not ok:
        error = f"unexpected status {status} (expected {ep.expect_status})"
    sent = "send_request_body.complete"
    sample = Sample(
        endpoint=ep.name,
        warmup=warmup,
        latency_ms=latency_ms,
        status=status,
        ok=ok,
        connect_ms=timeline.span_ms("connect_tcp.started", "connect_tcp.complete"),
        tls_ms=timeline.span_ms("start_tls.started", "start_tls.complete"),
        ttfb_ms=timeline.span_ms(sent, "receive_response_headers.complete"),
        error=error,
    )
    return sample, seen


def probe_metrics(run: ProbeRun, endpoints: Sequence[str]) -> list[Metric]:
    """Per-endpoint and aggregate metrics of a probe run (latency of successes only)."""
    metrics: list[Metric] = []
    for name in endpoints:
        counted = run.counted(name)
        metrics.extend(_latency_metrics(f"{name}.", counted, with_mean=True))
    counted = run.counted()
    metrics.extend(_latency_metrics("", counted, with_mean=False))
    good = [s.latency_ms for s in counted if s.ok]
    if good:
        metrics.append(Metric("max_ms", max(good), "ms", Direction.LOWER))
    metrics.append(Metric("requests", float(len(counted)), "count", Direction.HIGHER))
    if run.wall_s > 0:
        metrics.append(Metric("throughput_rps", len(counted) / run.wall_s, "rps", Direction.HIGHER))
    # Connections are opened mostly during warm-up (keep-alive), so connect and TLS
    # samples come from every request that opened one; TTFB from counted requests only.
    for name, values in (
        ("connect_ms", [s.connect_ms for s in run.samples if s.connect_ms is not None]),
        ("tls_ms", [s.tls_ms for s in run.samples if s.tls_ms is not None]),
        ("ttfb_ms", [s.ttfb_ms for s in counted if s.ttfb_ms is not None]),
    ):
        if values:
            metrics.append(Metric(name, median(values), "ms", Direction.LOWER, tuple(values)))
    return metrics


def _latency_metrics(prefix: str, counted: list[Sample], *, with_mean: bool) -> list[Metric]:
    good = tuple(s.latency_ms for s in counted if s.ok)
    out: list[Metric] = []
    if good:
        stats = summary(good)
        values = {"p50_ms": stats.p50, "p95_ms": stats.p95, "p99_ms": stats.p99}
        if with_mean:
            values["mean_ms"] = stats.mean
        out.extend(
            Metric(prefix + key, value, "ms", Direction.LOWER, good)
            for key, value in values.items()
        )
    errors = sum(1 for s in counted if not s.ok)
    rate = errors / len(counted) if counted else 1.0
    out.append(Metric(prefix + "error_rate", rate, "ratio", Direction.LOWER))
    return out


class HttpProbeCheck(CheckKind):
    """``kind = "http"``: request latency percentiles, error rate and network timings; with
    forms, a login and assertions on body, headers and security headers, what users get."""

    name: ClassVar[str] = "http"
    settings_model: ClassVar[type[KindSettings]] = HttpProbeSettings
    exclusive: ClassVar[bool] = True
    needs_target: ClassVar[bool] = True

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        # Tests inject httpx.MockTransport (or a counting real transport) here.
        self._transport = transport

    def metric_names(self, settings: KindSettings) -> MetricNames:
        own = settings if isinstance(settings, HttpProbeSettings) else None
        endpoints = own.endpoints if own is not None else []
        asserts = own is not None and own.asserts
        login = own is not None and own.login is not None
        overall = {"p50_ms", "p95_ms", "p99_ms", "error_rate", "max_ms", "requests"}
        overall |= {"throughput_rps", "connect_ms", "tls_ms", "ttfb_ms"}
        per_item = {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "error_rate"}
        needs = {}
        if asserts:
            overall.add(ASSERTION_FAILURES)
            per_item.add(ASSERTION_FAILURES)
        else:
            needs[ASSERTION_FAILURES] = "expect_body, expect_headers or security_headers"
        if login:
            overall.add("login_ms")
        else:
            needs["login_ms"] = "settings.login"
        return MetricNames(
            fixed=frozenset(overall),
            per_item=frozenset(per_item),
            items=frozenset(e.name for e in endpoints),
            item="endpoint",
            findings=asserts,  # one per failed assertion
            needs=needs,
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        conditions: list[dict[str, Any]] = [{"metric": "error_rate", "max": 0.01}]  # overall
        if isinstance(settings, HttpProbeSettings) and settings.asserts:
            conditions.append({"metric": ASSERTION_FAILURES, "max": 0})
        return tuple(conditions)

    def client(self, settings: HttpProbeSettings, allowed_hosts: Sequence[str]) -> httpx.Client:
        """The one client of a probe: allowed hosts only, a redirect counts as its status."""
        return guarded_client(
            allowed_hosts,
            transport=self._transport,
            verify=settings.verify_tls,
            timeout=settings.request_timeout,
        )

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, HttpProbeSettings)
        # Every URL is resolved and allowed before the first request, the login's too.
        login = (
            resolve_login(settings.login, ctx.base_url, ctx.allowed_hosts, ctx.secrets)
            if settings.login is not None
            else None
        )
        targets = resolve_targets(settings.endpoints, ctx.base_url, ctx.allowed_hosts, ctx.secrets)
        deadline = time.perf_counter() + check.timeout
        artifact = ctx.work_dir / SAMPLES_FILE
        hidden = _hidden_values(ctx.secrets, login)
        run = ProbeRun()
        logged_in: LoginResult | None = None
        judged: list[Judged] = []
        try:
            with self.client(settings, ctx.allowed_hosts) as client:
                if login is not None:
                    logged_in = send_login(client, login, settings, deadline, hidden)
                run = probe(
                    client,
                    targets,
                    samples=settings.samples,
                    warmup=settings.warmup,
                    request_timeout=settings.request_timeout,
                    deadline=deadline,
                    max_body_bytes=settings.max_body_bytes,
                )
            judged = judge(run, targets, login, logged_in, hidden)
        finally:
            # Kept even when the probe fails: the raw samples say what went wrong.
            _write_samples(artifact, targets, run, login, logged_in, judged)
        counted = run.counted()
        if all(s.status is None for s in counted):
            url, problem = run.first_error or (targets[0].url, "no answer")
            raise TargetError(f"target not answering at {url}: {problem}")
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        for metric in probe_metrics(run, [t.endpoint.name for t in targets]):
            result.add_metric(metric)
        if settings.asserts:
            for metric in assertion_metrics(judged, targets):
                result.add_metric(metric)
        if logged_in is not None:
            result.add_metric(Metric("login_ms", logged_in.latency_ms, "ms", Direction.LOWER))
        result.findings = assertion_findings(judged)
        result.artifacts["http_samples"] = str(artifact)
        result.tool_versions["httpx"] = httpx.__version__
        said = [failures(run, targets), assertion_summary(judged)]
        result.reason = _reason(result, "; ".join(s for s in said if s))
        return result


def send_login(
    client: httpx.Client,
    login: ResolvedLogin,
    settings: HttpProbeSettings,
    deadline: float,
    hidden: Sequence[str] = (),
) -> LoginResult:
    """The login step over ``client`` (its cookies stay in the client's jar)."""
    step = login.step
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise ToolError("http probe exceeded timeout before the login step")
    timeout = min(settings.request_timeout, remaining)
    request = client.build_request(
        step.method,
        login.url,
        json=login.body,
        data=dict(login.form) if login.form is not None else None,
        headers=dict(login.headers),
        timeout=httpx.Timeout(timeout),
    )
    return log_in(
        client,
        request,
        follow_redirects=step.follow_redirects,
        expect_status=step.expect_status,
        expect_cookies=step.expect_cookies,
        expect_body=step.expect_body,
        timeout=timeout,
        max_body_bytes=settings.max_body_bytes,
        secrets=hidden,
    )


def _hidden_values(secrets: Mapping[str, str], login: ResolvedLogin | None) -> list[str]:
    """Values never shown in an excerpt: the run's secrets and what the login step sends
    (a password written into the pipeline file is a password all the same)."""
    hidden = [v for v in secrets.values() if v]
    if login is not None:
        sent = [*(login.form or {}).values(), *_strings(login.body)]
        hidden += [v for v in sent if len(v) >= MIN_SECRET_LENGTH]
    return hidden


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@dataclass(frozen=True)
class Judged:
    """The assertions of one endpoint (or of the login step) on the answer they judged."""

    who: str  # the endpoint's name, or "login step"
    location: str  # "orders /api/orders": a finding's location
    status: int | None  # None: no counted request got an answer
    failed: tuple[Failure, ...] = ()

    @property
    def status_text(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else "no answer"


def judge(
    run: ProbeRun,
    targets: Sequence[ResolvedEndpoint],
    login: ResolvedLogin | None = None,
    logged_in: LoginResult | None = None,
    secrets: Sequence[str] = (),
) -> list[Judged]:
    """Every asserting endpoint's (and the login's) assertions on its kept answer."""
    judged: list[Judged] = []
    if login is not None and logged_in is not None and not login.step.expectations.empty:
        seen = logged_in.seen
        failed = evaluate(login.step.expectations, seen, secrets)
        where = f"login {httpx.URL(login.url).path}"
        judged.append(Judged("login step", where, seen.status, tuple(failed)))
    for target in targets:
        expect = target.endpoint.expectations
        if expect.empty:
            continue
        answer = run.answers.get(target.endpoint.name)
        if answer is None:
            none = Failure(
                "response:none",
                "no answer to check",
                "no counted request got an HTTP answer, so no assertion could pass",
            )
            judged.append(Judged(target.endpoint.name, target.shown, None, (none,)))
            continue
        failed = evaluate(expect, answer, secrets)
        judged.append(Judged(target.endpoint.name, target.shown, answer.status, tuple(failed)))
    return judged


def assertion_metrics(
    judged: Sequence[Judged], targets: Sequence[ResolvedEndpoint]
) -> list[Metric]:
    """``assertion_failures`` over the check (the login's included) and per asserting
    endpoint."""
    by_name = {j.who: len(j.failed) for j in judged}
    metrics = [
        Metric(f"{t.endpoint.name}.{ASSERTION_FAILURES}", by_name[t.endpoint.name], "count")
        for t in targets
        if t.endpoint.name in by_name
    ]
    total = sum(len(j.failed) for j in judged)
    metrics.append(Metric(ASSERTION_FAILURES, total, "count", Direction.LOWER))
    return metrics


def assertion_findings(judged: Sequence[Judged]) -> list[Finding]:
    """One finding per failed assertion: its rule, where, the status and what was seen."""
    return [
        Finding(
            tool="http",
            rule=failure.rule,
            severity=failure.severity,
            message=f"{j.status_text}: {failure.said}"
            + (f"; {failure.detail}" if failure.detail else ""),
            location=j.location,
        )
        for j in judged
        for failure in j.failed
    ]


def assertion_summary(judged: Sequence[Judged], shown: int = 2) -> str:
    """``login-page: missing header Content-Security-Policy (HTTP 200)``: the first
    ``shown`` endpoints with failed assertions, two assertions each, then how many more."""
    said = []
    for j in judged:
        if not j.failed:
            continue
        texts = [f.said for f in j.failed[:2]]
        if len(j.failed) > 2:
            texts.append(f"{len(j.failed) - 2} more")
        said.append(f"{j.who}: {', '.join(texts)} ({j.status_text})")
    more = len(said) - shown
    if more > 0:
        said[shown:] = [f"{more} more endpoint{'s' if more > 1 else ''} failed assertions"]
    return "; ".join(said)


def _reason(result: CheckResult, failed: str) -> str:
    """``index: 3 of 30 answered HTTP 500; 60 requests, p95 12.0 ms, error rate 5.0 %``: the
    failing endpoints first, so a breached condition quoting it names them."""
    m = result.metrics
    count = int(m["requests"].value)
    rate = m["error_rate"].value * 100
    p95 = f"p95 {m['p95_ms'].value:.1f} ms" if "p95_ms" in m else "no successful request"
    said = f"{count} requests, {p95}, error rate {rate:.1f} %"
    return f"{failed}; {said}" if failed else said


def failures(run: ProbeRun, targets: Sequence[ResolvedEndpoint], shown: int = 2) -> str:
    """Which endpoints failed how often, and how: ``index: 30 of 30 answered HTTP 500`` or
    ``orders: 3 of 30 failed (2× HTTP 503, 1× connection refused)``; "" when none did.
    The first ``shown`` failing endpoints, then how many more."""
    said = []
    for target in targets:
        counted = run.counted(target.endpoint.name)
        how = Counter(_failure(s) for s in counted if not s.ok)
        if not how:
            continue
        failed = f"{target.endpoint.name}: {how.total()} of {len(counted)}"
        expected = target.endpoint.expect_status
        if len(how) == 1 and next(iter(how)).startswith("HTTP "):
            wanted = "" if expected == [200] else f" (expected {', '.join(map(str, expected))})"
            said.append(f"{failed} answered {next(iter(how))}{wanted}")
        else:
            kinds = ", ".join(f"{n}× {label}" for label, n in how.most_common())
            said.append(f"{failed} failed ({kinds})")
    more = len(said) - shown
    if more > 0:
        said[shown:] = [f"{more} more endpoint{'s' if more > 1 else ''} failed"]
    return "; ".join(said)


# What a request that got no HTTP answer ran into, by httpx's exception class.
_NO_ANSWER = {
    "ConnectTimeout": "connect timeout",
    "ReadTimeout": "timed out",
    "WriteTimeout": "timed out",
    "PoolTimeout": "timed out",
    "RemoteProtocolError": "connection dropped",
}


def _failure(sample: Sample) -> str:
    """A failed request in a word or two: ``HTTP 503``, ``connection refused``."""
    if sample.status is not None:
        return f"HTTP {sample.status}"
    error = sample.error or ""
    name = error.split(":", 1)[0]
    if name == "ConnectError":
        return "connection refused" if "refused" in error.lower() else "could not connect"
    return _NO_ANSWER.get(name, name or "no answer")


def _write_samples(
    path: Path,
    targets: Sequence[ResolvedEndpoint],
    run: ProbeRun,
    login: ResolvedLogin | None = None,
    logged_in: LoginResult | None = None,
    judged: Sequence[Judged] = (),
) -> None:
    failed = {j.who: [f"{f.rule}: {f.said}" for f in j.failed] for j in judged}
    data: dict[str, Any] = {
        "wall_s": run.wall_s,
        "endpoints": {
            t.endpoint.name: {
                "method": t.endpoint.method,
                "url": t.url,
                "expect_status": t.endpoint.expect_status,
                **(
                    {"failed_assertions": failed[t.endpoint.name]}
                    if t.endpoint.name in failed
                    else {}
                ),
                "samples": [
                    {k: v for k, v in asdict(s).items() if k != "endpoint"}
                    for s in run.samples
                    if s.endpoint == t.endpoint.name
                ],
            }
            for t in targets
        },
    }
    if login is not None:  # what was sent stays out: it may hold a password
        data["login"] = {
            "method": login.step.method,
            "url": login.url,
            "status": logged_in.seen.status if logged_in is not None else None,
            "latency_ms": logged_in.latency_ms if logged_in is not None else None,
            "cookies": list(logged_in.cookies) if logged_in is not None else [],
            "failed_assertions": failed.get("login step", []),
        }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
