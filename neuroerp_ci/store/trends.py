"""What the stage's recent runs measured: the data of the reports' trend charts.

One query over ``runs`` and ``metrics``: the newest finished runs of a stage and target,
whatever their verdict (a trend that left out the failing runs would hide the regression it
is drawn for), each metric's value, without samples (a chart of N runs needs N numbers).
Invalidated runs are kept and say so: their point is drawn, marked.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from neuroerp_ci.store.records import RunStatus, to_iso
from neuroerp_ci.store.schema import metrics, runs

Reader = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True)
class MetricPoint:
    """One metric of one check as one finished run measured it."""

    run_id: str
    started_at: str  # ISO 8601, UTC
    version: str
    verdict: str  # PASS | WARN | FAIL
    check: str
    metric: str
    value: float | None  # None: not measured
    unit: str
    invalidated: bool = False


def metric_history(
    read: Reader, stage: str, target: str, limit: int = 20, before_run: str | None = None
) -> list[MetricPoint]:
    """Every metric of the newest ``limit`` finished runs of ``stage`` on ``target``, oldest
    run first; ``before_run``: leave that run out (the one a report is being drawn for)."""
    newest = (
        select(runs.c.pk)
        .where(
            runs.c.stage == stage,
            runs.c.target == target,
            runs.c.status == RunStatus.FINISHED.value,
        )
        .order_by(runs.c.started_at.desc(), runs.c.pk.desc())
        .limit(limit)
    )
    if before_run is not None:
        newest = newest.where(runs.c.run_id != before_run)
    query = (
        select(
            runs.c.run_id,
            runs.c.started_at,
            runs.c.version,
            runs.c.verdict,
            runs.c.invalidated_reason,
            metrics.c.check_id,
            metrics.c.name,
            metrics.c.value,
            metrics.c.unit,
        )
        .join(metrics, metrics.c.run_pk == runs.c.pk)
        .where(runs.c.pk.in_(newest.scalar_subquery()))
        .order_by(runs.c.started_at, runs.c.pk, metrics.c.check_id, metrics.c.name)
    )
    with read() as conn:
        rows = conn.execute(query).all()
    return [
        MetricPoint(
            run_id=str(r.run_id),
            started_at=to_iso(r.started_at),
            version=str(r.version),
            verdict=str(r.verdict or ""),
            check=str(r.check_id),
            metric=str(r.name),
            value=None if r.value is None else float(r.value),
            unit=str(r.unit or ""),
            invalidated=r.invalidated_reason is not None,
        )
        for r in rows
    ]
