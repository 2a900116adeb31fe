"""What ``report.html`` shows beyond the run itself: earlier runs, load timelines, file links.

The renderer stays pure: whoever writes the page (the run, ``neuroerp-ci report``) reads the
history store and the run folder and hands the result in as a :class:`ReportContext`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# One second of a load test: (seconds since its start, requests/s, p95 latency in ms or None
# when no request finished in that second, failures/s).
TimelinePoint = tuple[float, float, float | None, float]


@dataclass(frozen=True)
class TrendPoint:
    """One earlier run's value of one metric."""

    run_id: str
    started_at: str  # ISO 8601, UTC
    value: float
    verdict: str | None  # the run's verdict ("PASS", ...), or None when it has none


@dataclass(frozen=True)
class ReportContext:
    """Inputs of ``report.html`` that the :class:`~neuroerp_ci.model.StageReport` lacks.

    ``history``: (check id, metric) -> that metric in the stage's earlier runs, oldest first
    (this run not included); ``timelines``: check id -> its load test second by second;
    ``links``: label -> a file name relative to the page (``"report.sarif"``); ``notes``: what
    the page lacks and why.
    """

    history: Mapping[tuple[str, str], Sequence[TrendPoint]] = field(default_factory=dict)
    timelines: Mapping[str, Sequence[TimelinePoint]] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    # What the page could not show and why ("no trends: the history store could not be read").
    notes: Sequence[str] = ()


class RunSummary(Protocol):
    """One row of the trends page's run table (the store's ``RunRecord`` is one)."""

    @property
    def run_id(self) -> str: ...

    @property
    def started_at(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def verdict(self) -> str | None: ...
