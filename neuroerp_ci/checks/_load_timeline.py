"""A load test's timeline: requests, failures and latency second by second, for the report's chart.

The wrapper locustfile (:mod:`neuroerp_ci.checks.load`) samples locust's cumulative
"Aggregated" statistics in the master (or only) process once a second and keeps, per point,
what that second added::

    {"t": 3.0, "users": 8, "requests": 412, "failures": 2, "p50": 12.0, "p95": 41.0}

``t``: seconds since the test started (warm-up included); ``requests`` / ``failures``: counted
in the interval since the previous point; ``p50`` / ``p95``: percentiles of the response times
timed in that interval (from the difference of locust's cumulative histograms), None when none
was. A cumulative count going down means locust's statistics were reset in between (the
warm-up ends with a reset); that interval then counts from zero. The wrapper keeps at most
:data:`MAX_POINTS` points: a run longer than that samples every few seconds instead
(:func:`sample_every`).

The functions the wrapper runs (:data:`WRAPPER_FUNCTIONS`) are copied into it as source
(:func:`wrapper_source`): locust may run under another interpreter, and remote workers need not
have neuroerp-ci installed. They may use builtins only.

The timeline is informational: nothing gates on it, so a missing or malformed one is dropped
(``()`` / ``[]``), never an error. The check writes it as ``locust_timeline.json`` in its work
directory; :func:`read_timeline` reads that file back for the report.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_POINTS = 3600
TIMELINE_FILE = "locust_timeline.json"
_FORMAT = 1


@dataclass(frozen=True)
class TimelinePoint:
    """What one interval of the run added (see the module docstring)."""

    t_s: float  # end of the interval, seconds since the test started
    users: int
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None


# --- run inside locust by the wrapper (builtins only) ---------------------------------


def histogram_percentile(histogram: Mapping[Any, int], q: float) -> float | None:
    """The ``q``-th percentile of a ``{value: count}`` histogram, None when it counts nothing.

    The same cut point as :func:`~neuroerp_ci.checks._percentiles.weighted_percentile`
    (linear interpolation between the closest ranks of the expanded list).
    """
    ordered = sorted((float(value), int(count)) for value, count in histogram.items() if count > 0)
    total = sum(count for _value, count in ordered)
    if total == 0:
        return None
    position = (total - 1) * q / 100.0
    lower = int(position)
    fraction = position - lower
    wanted = [lower, min(lower + 1, total - 1)]
    found = []
    seen = 0
    for value, count in ordered:
        seen += count
        while wanted and wanted[0] < seen:
            found.append(value)
            wanted.pop(0)
        if not wanted:
            break
    low, high = found[0], found[-1]
    return low if fraction == 0.0 else low + (high - low) * fraction


def timeline_delta(
    previous: tuple[int, int, Mapping[Any, int]] | None,
    current: tuple[int, int, Mapping[Any, int]],
) -> tuple[int, int, dict[Any, int]]:
    """Requests, failures and the response-time histogram added from ``previous`` to ``current``.

    Both are locust's cumulative ``(num_requests, num_failures, response_times)``; None: the
    start, or a known stats reset. A count lower than before also means a reset: the delta
    then counts from zero.
    """
    requests, failures, histogram = current
    before = previous if previous is not None else (0, 0, {})
    if (
        requests < before[0]
        or failures < before[1]
        or any(histogram.get(value, 0) < count for value, count in before[2].items())
    ):
        before = (0, 0, {})
    added = {}
    for value, count in histogram.items():
        grew = count - before[2].get(value, 0)
        if grew > 0:
            added[value] = grew
    return requests - before[0], failures - before[1], added


def timeline_point(
    t_s: float,
    users: int,
    previous: tuple[int, int, Mapping[Any, int]] | None,
    current: tuple[int, int, Mapping[Any, int]],
) -> dict[str, Any]:
    """The timeline point for the interval ending at ``t_s`` (neuroerp_ci.checks._load_timeline
    describes its keys)."""
    requests, failures, added = timeline_delta(previous, current)
    p50, p95 = histogram_percentile(added, 50.0), histogram_percentile(added, 95.0)
    return {
        "t": round(t_s, 3),
        "users": users,
        "requests": requests,
        "failures": failures,
        "p50": None if p50 is None else round(p50, 3),
        "p95": None if p95 is None else round(p95, 3),
    }


WRAPPER_FUNCTIONS = (histogram_percentile, timeline_delta, timeline_point)


def wrapper_source() -> str:
    """The source of :data:`WRAPPER_FUNCTIONS`, for the wrapper locustfile (which has
    ``from __future__ import annotations``: their annotations are never evaluated there)."""
    return "\n\n\n".join(inspect.getsource(f).rstrip() for f in WRAPPER_FUNCTIONS)


def sample_every(planned_s: float) -> int:
    """Seconds between timeline points so that a run of ``planned_s`` fits :data:`MAX_POINTS`."""
    return max(1, math.ceil(planned_s / MAX_POINTS))


# --- read back in neuroerp-ci -----------------------------------------------------------


def parse_timeline(data: Any) -> tuple[TimelinePoint, ...]:
    """The run record's ``timeline``; ``()`` when it is missing or not a valid timeline.

    Valid: a list of at most :data:`MAX_POINTS` points with strictly increasing finite
    ``t >= 0``, whole counts ``>= 0`` and percentiles that are None or finite ``>= 0``.
    One bad point drops the whole timeline: a chart with holes would mislead.
    """
    if not isinstance(data, list) or len(data) > MAX_POINTS:
        return ()
    points: list[TimelinePoint] = []
    for item in data:
        point = _point(item)
        if point is None or (points and point.t_s <= points[-1].t_s):
            return ()
        points.append(point)
    return tuple(points)


def _point(item: Any) -> TimelinePoint | None:
    if not isinstance(item, dict):
        return None
    t_s = _number(item.get("t"))
    counts = [_count(item.get(key)) for key in ("users", "requests", "failures")]
    p50, p95 = item.get("p50"), item.get("p95")
    latencies = [_number(p) for p in (p50, p95)]
    if t_s is None or None in counts or any(
        p is not None and v is None for p, v in zip((p50, p95), latencies, strict=True)
    ):
        return None
    users, requests, failures = (int(c or 0) for c in counts)
    return TimelinePoint(t_s, users, requests, failures, latencies[0], latencies[1])


def _number(value: Any) -> float | None:
    """A finite number >= 0, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def timeline_json(points: Sequence[TimelinePoint], measured_from_s: float | None) -> str:
    """The ``locust_timeline.json`` document: the points, and when the warm-up ended (seconds
    since the start; None without a warm-up)."""
    document = {
        "format": _FORMAT,
        "measured_from_s": measured_from_s,
        "points": [
            {"t": p.t_s, "users": p.users, "requests": p.requests, "failures": p.failures,
             "p50": p.p50_ms, "p95": p.p95_ms}
            for p in points
        ],
    }
    return json.dumps(document, indent=1)


def write_timeline(
    path: Path, points: Sequence[TimelinePoint], measured_from_s: float | None = None
) -> Path | None:
    """Write ``points`` to ``path``; None (nothing written) when there are none or it fails."""
    if not points:
        return None
    try:
        path.write_text(timeline_json(points, measured_from_s), encoding="utf-8")
    except OSError:
        return None  # informational: the check's result stands without it
    return path


def read_timeline(path: Path) -> list[tuple[float, float, float | None, float]]:
    """``(t_s, requests_per_s, p95_ms, failures_per_s)`` per point of a ``locust_timeline.json``.

    Rates divide each interval's counts by its length (the first interval starts at 0).
    ``[]`` when the file is missing, unreadable or not a valid timeline.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return []
    points = parse_timeline(data.get("points") if isinstance(data, dict) else data)
    rows: list[tuple[float, float, float | None, float]] = []
    start = 0.0
    for point in points:
        span = point.t_s - start
        if span <= 0:
            return []
        rows.append((point.t_s, point.requests / span, point.p95_ms, point.failures / span))
        start = point.t_s
    return rows
