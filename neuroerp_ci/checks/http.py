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
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Metric
from neuroerp_ci.support.hosts import ensure_allowed, guarded_client, http_url_problem, resolve_url
from neuroerp_ci.support.placeholders import expand

SAMPLES_FILE = "http_samples.json"

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Endpoint(KindSettings):
    """One endpoint to probe: a ``path`` under the target's base URL or an absolute ``url``."""

    # "json" would shadow BaseModel.json, so the field is ``body`` with the alias "json".
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)
    path: str | None = None
    url: str | None = None
    method: Method = "GET"
    body: dict[str, Any] | None = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"HTTP status codes are 100..599, got {bad}")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> Endpoint:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' or 'url'")
        problem = http_url_problem(self.url) if self.url is not None else None
        if problem:
            raise ValueError(f"'url' must be an absolute http:// or https:// URL: {problem}")
        return self


class HttpProbeSettings(KindSettings):
    endpoints: list[Endpoint] = Field(min_length=1)
    samples: int = Field(default=20, ge=1, le=10_000)  # counted requests per endpoint
    warmup: int = Field(default=2, ge=0, le=1_000)  # requests per endpoint not counted
    request_timeout: float = Field(default=10.0, gt=0)
    verify_tls: bool = True

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, value: list[Endpoint]) -> list[Endpoint]:
        counts = Counter(e.name for e in value)
        dups = sorted(n for n, count in counts.items() if count > 1)
        if dups:
            raise ValueError(f"duplicate endpoint names {dups}")
        return value


@dataclass(frozen=True)
class ResolvedEndpoint:
    """An endpoint with its URL resolved and allowed, and its headers with secrets in."""

    endpoint: Endpoint
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


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
        url = (
            expand(ep.url, secrets)
            if ep.url is not None
            else resolve_url(ep.path or "", base_url, f"endpoint {ep.name!r} path")
        )
        try:
            httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise TargetError(f"endpoint {ep.name!r}: invalid URL {url!r}: {exc}") from exc
        ensure_allowed(url, allowed_hosts, f"endpoint {ep.name!r}")
        headers = {k: expand(v, secrets) for k, v in ep.headers.items()}
        targets.append(ResolvedEndpoint(ep, url, headers))
    return targets


def probe(
    client: httpx.Client,
    targets: Sequence[ResolvedEndpoint],
    *,
    samples: int,
    warmup: int,
    request_timeout: float,
    deadline: float,
) -> ProbeRun:
    """Send ``warmup`` then ``samples`` rounds of one request per target, in order.

    ``deadline`` is a ``time.perf_counter()`` value; passing it raises ToolError.
    """
    run = ProbeRun()
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
            sample = _request(client, target, is_warmup, min(request_timeout, remaining))
            run.samples.append(sample)
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
    client: httpx.Client, target: ResolvedEndpoint, warmup: bool, timeout: float
) -> Sample:
    ep = target.endpoint
    timeline = _Timeline()
    request = client.build_request(
        ep.method,
        target.url,
        json=ep.body,
        headers=dict(target.headers),
        timeout=httpx.Timeout(timeout),
        extensions={"trace": timeline},
    )
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        response = client.send(request, stream=True)
        try:
            status = response.status_code
            # httpx timeouts are per read; this bounds the whole body as well.
            for _chunk in response.iter_bytes():
                if time.perf_counter() - started > timeout:
                    raise httpx.ReadTimeout(
                        f"response not complete within {timeout:g} s", request=request
                    )
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
    return Sample(
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
    """``kind = "http"``: request latency percentiles, error rate and network timings."""

    name: ClassVar[str] = "http"
    settings_model: ClassVar[type[KindSettings]] = HttpProbeSettings
    exclusive: ClassVar[bool] = True
    needs_target: ClassVar[bool] = True

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        # Tests inject httpx.MockTransport (or a counting real transport) here.
        self._transport = transport

    def metric_names(self, settings: KindSettings) -> MetricNames:
        endpoints = settings.endpoints if isinstance(settings, HttpProbeSettings) else []
        overall = {"p50_ms", "p95_ms", "p99_ms", "error_rate", "max_ms", "requests"}
        return MetricNames(
            fixed=frozenset(overall | {"throughput_rps", "connect_ms", "tls_ms", "ttfb_ms"}),
            per_item=frozenset({"p50_ms", "p95_ms", "p99_ms", "mean_ms", "error_rate"}),
            items=frozenset(e.name for e in endpoints),
            item="endpoint",
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return ({"metric": "error_rate", "max": 0.01},)  # over all endpoints

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
        targets = resolve_targets(
            settings.endpoints, ctx.base_url, ctx.allowed_hosts, ctx.secrets
        )
        deadline = time.perf_counter() + check.timeout
        artifact = ctx.work_dir / SAMPLES_FILE
        run = ProbeRun()
        try:
            with self.client(settings, ctx.allowed_hosts) as client:
                run = probe(
                    client,
                    targets,
                    samples=settings.samples,
                    warmup=settings.warmup,
                    request_timeout=settings.request_timeout,
                    deadline=deadline,
                )
        finally:
            # Kept even when the probe fails: the raw samples say what went wrong.
            _write_samples(artifact, targets, run)
        counted = run.counted()
        if all(s.status is None for s in counted):
            url, problem = run.first_error or (targets[0].url, "no answer")
            raise TargetError(f"target not answering at {url}: {problem}")
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        for metric in probe_metrics(run, [t.endpoint.name for t in targets]):
            result.add_metric(metric)
        result.artifacts["http_samples"] = str(artifact)
        result.tool_versions["httpx"] = httpx.__version__
        result.reason = _reason(result, failures(run, targets))
        return result


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


def _write_samples(path: Path, targets: Sequence[ResolvedEndpoint], run: ProbeRun) -> None:
    data = {
        "wall_s": run.wall_s,
        "endpoints": {
            t.endpoint.name: {
                "method": t.endpoint.method,
                "url": t.url,
                "expect_status": t.endpoint.expect_status,
                "samples": [
                    {k: v for k, v in asdict(s).items() if k != "endpoint"}
                    for s in run.samples
                    if s.endpoint == t.endpoint.name
                ],
            }
            for t in targets
        },
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
