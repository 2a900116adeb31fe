"""Percentiles and summaries of raw samples, shared by every kind that measures timings.

Percentiles use linear interpolation between closest ranks (numpy's default ``"linear"``
method, the same cut points as ``statistics.quantiles(method="inclusive")``): for ``n``
sorted values the ``q``-th percentile sits at position ``(n - 1) * q / 100``.

Example::

    >>> percentile([10.0, 20.0, 30.0, 40.0], 50)
    25.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """The usual statistics of one sample set (all in the samples' unit)."""

    count: int
    min: float
    max: float
    mean: float
    p50: float
    p95: float
    p99: float


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation.

    Raises ValueError for no values, a ``q`` outside 0..100 or a value that is not finite
    (a NaN would silently corrupt the ordering).
    """
    return _percentile_sorted(_sorted_finite(values), q)


def median(values: Iterable[float]) -> float:
    """The 50th percentile."""
    return percentile(values, 50.0)


def summary(values: Iterable[float]) -> Summary:
    """Count, min, max, mean and p50/p95/p99 of ``values`` (ValueError when empty)."""
    ordered = _sorted_finite(values)
    return Summary(
        count=len(ordered),
        min=ordered[0],
        max=ordered[-1],
        mean=math.fsum(ordered) / len(ordered),
        p50=_percentile_sorted(ordered, 50.0),
        p95=_percentile_sorted(ordered, 95.0),
        p99=_percentile_sorted(ordered, 99.0),
    )


def weighted_percentile(
    values_counts: Mapping[float, int] | Iterable[tuple[float, int]], q: float
) -> float:
    """The ``q``-th percentile (0..100) of values given with how often each occurred.

    The same cut point as :func:`percentile` on the expanded list (each value repeated
    ``count`` times), without expanding it: for histograms such as locust's
    ``{bucketed_ms: count}``. Zero counts are ignored; ValueError for no counted value,
    a negative or fractional count, a value that is not finite, or ``q`` outside 0..100.

    >>> weighted_percentile({10.0: 1, 20.0: 3}, 50)
    20.0
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    pairs = values_counts.items() if isinstance(values_counts, Mapping) else values_counts
    ordered: list[tuple[float, int]] = []
    for value, count in pairs:
        if isinstance(count, bool) or int(count) != count or count < 0:
            raise ValueError(f"counts must be whole numbers >= 0, got {count!r}")
        if not math.isfinite(float(value)):
            raise ValueError("values must be finite numbers")
        if count:
            ordered.append((float(value), int(count)))
    if not ordered:
        raise ValueError("no values to summarise")
    ordered.sort()
    total = sum(count for _, count in ordered)
    position = (total - 1) * q / 100.0
    lower = math.floor(position)
    fraction = position - lower
    low_value = _value_at_rank(ordered, lower)
    if fraction == 0.0:
        return low_value
    high_value = _value_at_rank(ordered, min(lower + 1, total - 1))
    return low_value + (high_value - low_value) * fraction


def _value_at_rank(ordered: Sequence[tuple[float, int]], rank: int) -> float:
    """The value at 0-based ``rank`` of the expanded, sorted list."""
    seen = 0
    for value, count in ordered:
        seen += count
        if rank < seen:
            return value
    return ordered[-1][0]


def _sorted_finite(values: Iterable[float]) -> list[float]:
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("no values to summarise")
    if not all(math.isfinite(v) for v in ordered):
        raise ValueError("values must be finite numbers")
    return ordered


def _percentile_sorted(ordered: Sequence[float], q: float) -> float:
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction
