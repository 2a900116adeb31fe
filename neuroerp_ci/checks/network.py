"""The ``network`` kind: DNS, TCP connect, TLS handshake and first byte, per host.

Example (pipeline file)::

    [[checks]]
    id = "network"
    kind = "network"
    settings = { samples = 10 }          # no hosts: the target's base_url, named "target"

    # or named hosts; a path is taken relative to the target's base_url
    settings = { hosts = [{ name = "api", url = "/health" },
                          { name = "edge", url = "https://localhost:8443/" }] }

Every sample is a fresh connection over a raw socket, so each one pays for all four steps
(a pooled HTTP client would hide connect and TLS after the first request):

1. ``dns_ms``: ``socket.getaddrinfo`` for the host (an IP literal resolves in microseconds);
2. ``connect_ms``: TCP connect, trying the resolved addresses in order as a client would;
3. ``tls_ms``: the TLS handshake (https only), with a full handshake every time;
4. ``ttfb_ms``: from the last byte of a ``GET`` request sent to the first byte received.

Metrics per host are the medians with the raw samples: ``<name>.dns_ms``,
``<name>.connect_ms``, ``<name>.tls_ms`` and ``<name>.ttfb_ms``, plus ``<name>.failures``
(counted samples that did not get an HTTP status line). A host with no successful sample is
a TargetError (status error). Every host is checked against ``ctx.allowed_hosts`` before
the first packet, DNS lookups included. Any HTTP status counts as an answer: this kind
measures the network path, the ``http`` kind measures the application.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from neuroerp_ci import __version__
from neuroerp_ci.checks._percentiles import median
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
from neuroerp_ci.support.hosts import ensure_allowed, resolve_url

SAMPLES_FILE = "network_samples.json"
TARGET_HOST_NAME = "target"
_STATUS_LINE_LIMIT = 8192  # bytes read looking for the end of the status line
_DRAIN_LIMIT = 1 << 20  # the rest of a response is read (and dropped) up to this much

Resolver = Callable[..., list[tuple[Any, ...]]]


class NetworkHost(KindSettings):
    """One host to time: an absolute http(s) URL, or a path under the target's base URL."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)
    url: str = Field(min_length=1)


class NetworkSettings(KindSettings):
    hosts: list[NetworkHost] = Field(default_factory=list)  # empty: the target's base_url
    samples: int = Field(default=10, ge=1, le=1_000)  # counted connections per host
    warmup: int = Field(default=1, ge=0, le=100)  # connections per host not counted
    timeout: float = Field(default=5.0, gt=0)  # seconds for each of connect, TLS, first byte
    verify_tls: bool = True

    @field_validator("hosts")
    @classmethod
    def _unique_names(cls, value: list[NetworkHost]) -> list[NetworkHost]:
        counts = Counter(h.name for h in value)
        dups = sorted(n for n, count in counts.items() if count > 1)
        if dups:
            raise ValueError(f"duplicate host names {dups}")
        return value


def _host_names(settings: KindSettings) -> list[str]:
    hosts = settings.hosts if isinstance(settings, NetworkSettings) else []
    return [h.name for h in hosts] or [TARGET_HOST_NAME]


@dataclass(frozen=True)
class HostTarget:
    """A host with its URL resolved, split and allowed."""

    name: str
    url: str
    scheme: str
    host: str
    port: int
    authority: str  # for the Host header
    path: str  # path and query of the request


@dataclass
class Timing:
    """One connection: the time of each step (ms) and how it ended."""

    host: str
    warmup: bool
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    address: str | None = None  # the address that accepted the connection
    status: int | None = None  # HTTP status of the answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None


def resolve_hosts(
    hosts: Sequence[NetworkHost], base_url: str | None, allowed_hosts: Sequence[str]
) -> list[HostTarget]:
    """Every host's URL resolved and allowed, all before any packet (DNS included)."""
    if not hosts:
        if base_url is None:
            raise TargetError("network check has no hosts and the pipeline has no target base_url")
        hosts = [NetworkHost(name=TARGET_HOST_NAME, url=base_url)]
    targets = []
    for entry in hosts:
        url = resolve_url(entry.url, base_url, f"host {entry.name!r} url")
        # The canonical host is what gets resolved and dialled: the host that was allowed.
        parsed = ensure_allowed(url, allowed_hosts, f"url of {entry.name!r}")
        targets.append(
            HostTarget(
                entry.name, url, parsed.scheme, parsed.host, parsed.port, parsed.authority,
                parsed.target,
            )
        )
    return targets


def tls_context(verify: bool) -> ssl.SSLContext:
    """A client context; a fresh connection never resumes an earlier TLS session."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def time_connection(
    target: HostTarget,
    *,
    timeout: float,
    context: ssl.SSLContext,
    resolver: Resolver = socket.getaddrinfo,
    warmup: bool = False,
) -> Timing:
    """Open one fresh connection to ``target`` and time each step; errors end up in ``error``."""
    timing = Timing(target.name, warmup)
    started = time.perf_counter()
    try:
        infos = resolver(target.host, target.port, type=socket.SOCK_STREAM)
        timing.dns_ms = _ms_since(started)
        started = time.perf_counter()
        sock, timing.address = _connect(infos, timeout)
        timing.connect_ms = _ms_since(started)
        try:
            if target.scheme == "https":
                started = time.perf_counter()
                sock = context.wrap_socket(sock, server_hostname=target.host)
                timing.tls_ms = _ms_since(started)
            sock.sendall(_request(target))
            sent = time.perf_counter()
            first = sock.recv(1)
            if not first:
                raise ConnectionError("connection closed before any answer")
            timing.ttfb_ms = _ms_since(sent)
            timing.status = _read_status(sock, first)
            _drain(sock)
        finally:
            sock.close()
    except (OSError, ValueError) as exc:  # socket.gaierror, ssl.SSLError, timeouts: OSError
        timing.error = f"{type(exc).__name__}: {exc}"
    return timing


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _connect(infos: Sequence[tuple[Any, ...]], timeout: float) -> tuple[socket.socket, str]:
    """Connect to the first address that accepts, as ``socket.create_connection`` does."""
    if not infos:
        raise OSError("the name resolved to no address")
    last: OSError | None = None
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock, str(address[0])
    assert last is not None
    raise last


def _request(target: HostTarget) -> bytes:
    return (
        f"GET {target.path} HTTP/1.1\r\nHost: {target.authority}\r\n"
        f"User-Agent: neuroerp-ci/{__version__}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


def _read_status(sock: socket.socket, first: bytes) -> int:
    """The status code of the HTTP status line that starts with ``first``."""
    data = first
    while b"\r\n" not in data and len(data) < _STATUS_LINE_LIMIT:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1", errors="replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {line[:80]!r}")
    return int(parts[1])


def _drain(sock: socket.socket) -> None:
    """Read the rest of the answer so the server is not reset mid-write (not timed)."""
    received = 0
    try:
        while received < _DRAIN_LIMIT:
            chunk = sock.recv(65536)
            if not chunk:
                return
            received += len(chunk)
    except OSError:
        pass  # the measurement is complete; a slow or reset tail does not change it


def time_hosts(
    targets: Sequence[HostTarget],
    settings: NetworkSettings,
    *,
    deadline: float,
    resolver: Resolver = socket.getaddrinfo,
) -> list[Timing]:
    """``warmup`` then ``samples`` rounds of one fresh connection per host, round-robin."""
    context = tls_context(settings.verify_tls)
    timings: list[Timing] = []
    total = (settings.warmup + settings.samples) * len(targets)
    for round_no in range(settings.warmup + settings.samples):
        for target in targets:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise ToolError(
                    f"network check exceeded timeout after {len(timings)} of {total} connections"
                )
            timings.append(
                time_connection(
                    target,
                    timeout=min(settings.timeout, remaining),
                    context=context,
                    resolver=resolver,
                    warmup=round_no < settings.warmup,
                )
            )
    return timings


def network_metrics(timings: Sequence[Timing], hosts: Sequence[str]) -> list[Metric]:
    """Per host: the median of each step over counted, successful connections."""
    metrics: list[Metric] = []
    for name in hosts:
        counted = [t for t in timings if t.host == name and not t.warmup]
        good = [t for t in counted if t.ok]
        for step in ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms"):
            values = tuple(v for t in good if (v := getattr(t, step)) is not None)
            if values:
                metrics.append(
                    Metric(f"{name}.{step}", median(values), "ms", Direction.LOWER, values)
                )
        failures = float(len(counted) - len(good))
        metrics.append(Metric(f"{name}.failures", failures, "count", Direction.LOWER))
    return metrics


class NetworkCheck(CheckKind):
    """``kind = "network"``: DNS, connect, TLS and first-byte times of fresh connections."""

    name: ClassVar[str] = "network"
    settings_model: ClassVar[type[KindSettings]] = NetworkSettings
    exclusive: ClassVar[bool] = True
    needs_target: ClassVar[bool] = True

    def metric_names(self, settings: KindSettings) -> MetricNames:
        return MetricNames(
            per_item=frozenset({"dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "failures"}),
            items=frozenset(_host_names(settings)),
            item="host",
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        # Every host must answer every sample; timings have no limit that suits every path.
        return tuple({"metric": f"{name}.failures", "max": 0} for name in _host_names(settings))

    def __init__(self, resolver: Resolver | None = None) -> None:
        # Tests inject a counting resolver here; the default is the system's.
        self._resolver: Resolver = resolver or socket.getaddrinfo

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, NetworkSettings)
        targets = resolve_hosts(settings.hosts, ctx.base_url, ctx.allowed_hosts)
        deadline = time.perf_counter() + check.timeout
        artifact = ctx.work_dir / SAMPLES_FILE
        timings: list[Timing] = []
        try:
            timings = time_hosts(targets, settings, deadline=deadline, resolver=self._resolver)
        finally:
            _write_samples(artifact, targets, timings)
        for target in targets:
            counted = [t for t in timings if t.host == target.name and not t.warmup]
            if not any(t.ok for t in counted):
                problem = next((t.error for t in counted if t.error), "no answer")
                raise TargetError(f"host {target.name!r} not answering at {target.url}: {problem}")
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        for metric in network_metrics(timings, [t.name for t in targets]):
            result.add_metric(metric)
        result.artifacts["network_samples"] = str(artifact)
        result.tool_versions["openssl"] = ssl.OPENSSL_VERSION
        result.reason = _reason(result, targets, settings.samples)
        return result


def _reason(result: CheckResult, targets: Sequence[HostTarget], samples: int) -> str:
    parts = []
    for target in targets:
        m = result.metrics
        steps = [
            f"{label} {m[key].value:.2f} ms"
            for label, key in (
                ("connect", f"{target.name}.connect_ms"),
                ("tls", f"{target.name}.tls_ms"),
                ("ttfb", f"{target.name}.ttfb_ms"),
            )
            if key in m
        ]
        failures = int(m[f"{target.name}.failures"].value)
        parts.append(
            f"{target.name}: " + ", ".join(steps) + (f", {failures} failed" if failures else "")
        )
    return f"median of {samples} connections per host; " + "; ".join(parts)


def _write_samples(path: Path, targets: Sequence[HostTarget], timings: Sequence[Timing]) -> None:
    data = {
        t.name: {
            "url": t.url,
            "samples": [
                {k: v for k, v in asdict(s).items() if k != "host"}
                for s in timings if s.host == t.name
            ],
        }
        for t in targets
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
