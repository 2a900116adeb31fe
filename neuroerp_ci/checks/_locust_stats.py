"""Reading what a locust run left behind: its ``--json-file`` stats and our run record.

locust's ``--json-file`` holds, per endpoint (``name`` + ``method``), counters, a response-time
histogram ``{bucketed_ms: count}`` (locust rounds to about two significant digits: 147 -> 150)
and per-second request and failure counts. It holds no percentiles and no aggregate row:
percentiles come from the histogram through
:func:`~neuroerp_ci.checks._percentiles.weighted_percentile`, the
aggregate from merging the endpoints.
Failure messages are not in that file; the run record written by our locustfile wrapper
(see :mod:`neuroerp_ci.checks.load`) carries them, with the window that was measured and the
CPU time of every load-generating process, and a per-second timeline
(:mod:`neuroerp_ci.checks._load_timeline`).

Everything here is pure: garbage in raises :class:`~neuroerp_ci.errors.ToolError` (except
in the timeline, which is informational: a bad one is left out).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neuroerp_ci.checks._load_timeline import TimelinePoint, parse_timeline
from neuroerp_ci.checks._percentiles import weighted_percentile
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import Direction, Metric

# Latency samples kept per metric: order statistics thinned evenly from the histogram, so a
# long run does not store one float per request while the distribution's shape is kept.
MAX_LATENCY_SAMPLES = 2000
# locust's own threshold for its "CPU usage above 90%" warning.
SATURATED_CPU_PCT = 90.0
PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}

# Failures that mean no HTTP answer at all (requests / urllib3 / geventhttpclient wording).
_CONNECTION_FAILURES = re.compile(
    r"ConnectionRefused|ConnectionReset|ConnectionAborted|RemoteDisconnected|BrokenPipe"
    r"|NewConnectionError|Max retries exceeded|Connection aborted|ConnectTimeout"
    r"|Failed to establish a new connection|ConnectionError|socket\.timeout",
)
# locust's log lines when a generating process ran out of CPU.
_CPU_WARNINGS = ("CPU usage above", "exceeded cpu threshold", "CPU usage threshold was exceeded")


@dataclass(frozen=True)
class EndpointStats:
    """One row of locust's JSON stats (or the merge of all rows)."""

    method: str
    name: str
    requests: int
    failures: int
    histogram: dict[float, int]  # bucketed response time (ms) -> count
    total_ms: float
    max_ms: float
    start_time: float  # epoch seconds: first request, or the stats reset ending the warm-up
    last_request: float | None
    reqs_per_sec: dict[int, int]  # epoch second -> requests (failures included)
    fails_per_sec: dict[int, int]


@dataclass(frozen=True)
class LocustError:
    """One distinct failure message locust recorded, with how often it happened."""

    method: str
    name: str
    error: str
    occurrences: int
    first_seen: float | None = None
    last_seen: float | None = None

    def text(self) -> str:
        """``GET /api/x: ConnectionRefusedError(...)``, as locust's error report says it."""
        where = self.name
        if self.method and not where.upper().startswith(self.method.upper() + " "):
            where = f"{self.method} {where}"
        return f"{where}: {self.error}"


@dataclass(frozen=True)
class GeneratorUsage:
    """CPU time one locust process (local, master or worker) used during the load."""

    node: str
    role: str
    cpu_s: float
    wall_s: float
    cpu_warning: bool = False
    busy_s: float | None = None  # main thread running or runnable (Linux schedstat)

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def busy_pct(self) -> float | None:
        if self.busy_s is None or self.wall_s <= 0:
            return None
        return min(100.0, 100.0 * self.busy_s / self.wall_s)


@dataclass(frozen=True)
class RunRecord:
    """What the wrapper saw in the master (or the single local) locust process."""

    role: str
    started: float | None  # epoch seconds of test start; None if the test never started
    stopped: float | None
    measured_from: float | None  # end of the warm-up (stats reset), else the start
    errors: tuple[LocustError, ...] = ()
    exceptions: tuple[tuple[int, str], ...] = ()  # (count, message) raised in user code
    generators: tuple[GeneratorUsage, ...] = ()
    cpu_warning: bool = False
    workers: int = 0
    users: tuple[int, ...] = ()  # running users, sampled once a second during the test
    # Hosts outside allowed_hosts the wrapper refused to resolve, with how often.
    refused: tuple[tuple[str, int], ...] = ()
    # What each second added (informational, for the report's chart; () when unreadable).
    timeline: tuple[TimelinePoint, ...] = ()

    @property
    def ran_s(self) -> float | None:
        if self.started is None or self.stopped is None:
            return None
        return max(0.0, self.stopped - self.started)


def parse_stats(data: Any) -> list[EndpointStats]:
    """Endpoint rows of locust's ``--json-file`` output (ToolError when it is not that)."""
    if not isinstance(data, list):
        kind = type(data).__name__
        raise ToolError(f"locust JSON stats: expected a list of endpoints, got {kind}")
    rows = []
    for i, row in enumerate(data):
        try:
            rows.append(_endpoint(row))
        except (KeyError, TypeError, ValueError) as exc:
            raise ToolError(f"locust JSON stats: entry {i} is unreadable: {exc!r}") from exc
    return rows


def _endpoint(row: Mapping[str, Any]) -> EndpointStats:
    histogram = {float(k): int(v) for k, v in row["response_times"].items()}
    if any(c < 0 or not math.isfinite(v) for v, c in histogram.items()):
        raise ValueError("negative count or non-finite response time")
    requests, failures = int(row["num_requests"]), int(row["num_failures"])
    if requests < 0 or not 0 <= failures:
        raise ValueError("negative request or failure count")
    return EndpointStats(
        method=str(row.get("method") or ""),
        name=str(row["name"]),
        requests=requests,
        failures=failures,
        histogram=histogram,
        total_ms=float(row.get("total_response_time") or 0.0),
        max_ms=float(row.get("max_response_time") or 0.0),
        start_time=float(row["start_time"]),
        last_request=_opt_float(row.get("last_request_timestamp")),
        reqs_per_sec={int(k): int(v) for k, v in (row.get("num_reqs_per_sec") or {}).items()},
        fails_per_sec={int(k): int(v) for k, v in (row.get("num_fail_per_sec") or {}).items()},
    )


def aggregate(rows: Sequence[EndpointStats]) -> EndpointStats:
    """All endpoints merged, as locust's own "Aggregated" row would be."""
    histogram: Counter[float] = Counter()
    reqs: Counter[int] = Counter()
    fails: Counter[int] = Counter()
    for row in rows:
        histogram.update(row.histogram)
        reqs.update(row.reqs_per_sec)
        fails.update(row.fails_per_sec)
    lasts = [r.last_request for r in rows if r.last_request is not None]
    return EndpointStats(
        method="",
        name="Aggregated",
        requests=sum(r.requests for r in rows),
        failures=sum(r.failures for r in rows),
        histogram=dict(histogram),
        total_ms=sum(r.total_ms for r in rows),
        max_ms=max((r.max_ms for r in rows), default=0.0),
        start_time=min((r.start_time for r in rows), default=0.0),
        last_request=max(lasts) if lasts else None,
        reqs_per_sec=dict(reqs),
        fails_per_sec=dict(fails),
    )


def endpoint_labels(rows: Sequence[EndpointStats]) -> list[str]:
    """A metric-safe, unique label per row: ``GET /api/articles/[id]`` -> ``get_api_articles_id``.

    The method is prefixed unless the name already starts with it; clashes left after
    sanitising get ``_2``, ``_3`` ... in row order.
    """
    labels: list[str] = []
    for row in rows:
        text = row.name
        if row.method and not text.upper().startswith(row.method.upper() + " "):
            text = f"{row.method} {text}"
        base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "endpoint"
        label, n = base, 1
        while label in labels:
            n += 1
            label = f"{base}_{n}"
        labels.append(label)
    return labels


def per_second(row: EndpointStats, start: float, stop: float) -> tuple[float, ...]:
    """Requests per whole second of the window; the two partial edge seconds are left out.

    Seconds without any request count as 0, which is what they were.
    """
    first, last = int(start), int(stop)
    seconds = range(first + 1, last) if last - first >= 3 else range(first, last + 1)
    return tuple(float(row.reqs_per_sec.get(s, 0)) for s in seconds)


def thinned_samples(histogram: Mapping[float, int], cap: int = MAX_LATENCY_SAMPLES) -> tuple[
    float, ...
]:
    """The histogram as sorted samples: all of them, or ``cap`` evenly spaced order statistics."""
    ordered = sorted((v, c) for v, c in histogram.items() if c > 0)
    total = sum(c for _, c in ordered)
    if total <= cap:
        return tuple(v for v, c in ordered for _ in range(c))
    ranks = [int((i + 0.5) * total / cap) for i in range(cap)]
    out: list[float] = []
    seen, j = 0, 0
    for value, count in ordered:
        seen += count
        while j < cap and ranks[j] < seen:
            out.append(value)
            j += 1
    return tuple(out)


def endpoint_metrics(
    prefix: str, row: EndpointStats, window_s: float, series: tuple[float, ...] = ()
) -> list[Metric]:
    """requests, failures, failure_ratio, rps, latency percentiles, mean and max of one row.

    Latency covers every request locust timed, failed ones included (its histogram does not
    separate them); samples are the histogram's (thinned) order statistics.
    """
    metrics = [
        Metric(prefix + "requests", float(row.requests), "count", Direction.HIGHER),
        Metric(prefix + "failures", float(row.failures), "count", Direction.LOWER),
        Metric(
            prefix + "failure_ratio",
            row.failures / row.requests if row.requests else 1.0,
            "ratio",
            Direction.LOWER,
        ),
    ]
    if window_s > 0:
        metrics.append(
            Metric(prefix + "rps", row.requests / window_s, "rps", Direction.HIGHER, series)
        )
    timed = sum(row.histogram.values())
    if timed:
        samples = thinned_samples(row.histogram)
        metrics.extend(
            Metric(prefix + key, weighted_percentile(row.histogram, q), "ms", Direction.LOWER,
                   samples)
            for key, q in PERCENTILES.items()
        )
        metrics.append(Metric(prefix + "mean_ms", row.total_ms / timed, "ms", Direction.LOWER))
        # The exact maximum, not its histogram bucket.
        metrics.append(Metric(prefix + "max_ms", row.max_ms, "ms", Direction.LOWER))
    return metrics


def parse_run_record(data: Any) -> RunRecord:
    """The wrapper's run record (ToolError when it is not one)."""
    if not isinstance(data, dict):
        raise ToolError("locust run record: expected a JSON object")
    try:
        errors = tuple(
            LocustError(
                method=str(e.get("method") or ""),
                name=str(e.get("name") or ""),
                error=str(e["error"]),
                occurrences=int(e["occurrences"]),
                first_seen=_opt_float(e.get("first_seen")),
                last_seen=_opt_float(e.get("last_seen")),
            )
            for e in data.get("errors", [])
        )
        exceptions = tuple(
            (int(x.get("count", 1)), str(x.get("msg", ""))) for x in data.get("exceptions", [])
        )
        generators = tuple(
            GeneratorUsage(
                node=str(g.get("node", "")),
                role=str(g["role"]),
                cpu_s=float(g["cpu_s"]),
                wall_s=float(g["wall_s"]),
                cpu_warning=bool(g.get("cpu_warning", False)),
                busy_s=_opt_float(g.get("busy_s")),
            )
            for g in data.get("generators", [])
        )
        return RunRecord(
            role=str(data["role"]),
            started=_opt_float(data.get("started")),
            stopped=_opt_float(data.get("stopped")),
            measured_from=_opt_float(data.get("measured_from") or data.get("started")),
            errors=errors,
            exceptions=exceptions,
            generators=generators,
            cpu_warning=bool(data.get("cpu_warning")) or bool(data.get("worker_cpu_warning")),
            workers=int(data.get("workers") or 0),
            users=tuple(int(n) for n in data.get("users", [])),
            refused=tuple(
                sorted((str(host), int(n)) for host, n in (data.get("refused") or {}).items())
            ),
            timeline=parse_timeline(data.get("timeline")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ToolError(f"locust run record is unreadable: {exc!r}") from exc


def is_connection_failure(error: str) -> bool:
    """Whether a locust failure message means the target gave no HTTP answer at all."""
    return bool(_CONNECTION_FAILURES.search(error))


def stopped_answering(
    total: EndpointStats, errors: Iterable[LocustError], stop: float, grace_s: float
) -> str | None:
    """Locust's message when the target stopped answering before the run ended, else None.

    Stopped means: connection-level failures were recorded, and no request succeeded in the
    last ``grace_s`` seconds before ``stop`` (or none succeeded at all).
    """
    connection = [e for e in errors if is_connection_failure(e.error)]
    if not connection:
        return None
    good = [s for s, n in total.reqs_per_sec.items() if n > total.fails_per_sec.get(s, 0)]
    last_good = max(good) + 1 if good else None  # the end of the last second with a success
    if last_good is not None and stop - last_good < grace_s:
        return None
    worst = max(connection, key=lambda e: e.occurrences)
    count = sum(e.occurrences for e in connection)
    what = (
        "target not answering" if last_good is None
        else f"target stopped answering {stop - last_good:.1f} s before the end"
    )
    return f"{what}: {count} connection failures, e.g. {worst.text()}"


def cpu_warning_logged(log: str) -> bool:
    """Whether locust's log says a generating process ran out of CPU."""
    return any(marker in log for marker in _CPU_WARNINGS)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
