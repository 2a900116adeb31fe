"""The measured error rates of gate conditions (``neuroerp-ci calibrate``), and the history
they are measured on.

Each calibration is one row of ``calibrations``: a stage, target, check and condition text
(as the outcomes name it), the metric, when it was measured and the figures. Rows are kept
(a later calibration adds rows, it does not overwrite), so the figures' history stays; a run
reads the newest row of each condition (:func:`latest`).

:func:`measured_runs` reads what calibration replays: the passing runs of a stage and
target, with what they measured. It is the baseline's candidate query itself
(:class:`~neuroerp_ci.store.baselines.StoreBaselineProvider`: finished, PASS or WARN, not
invalidated, the check completed, the metric measured), without the pin, the window and the
limit of ``runs``, and without the rule that keeps a run whose condition on the metric did
not pass out of a baseline: that rule would drop exactly the alarms calibration counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, RowMapping

from neuroerp_ci.model import Calibration, Direction, Metric
from neuroerp_ci.store.baselines import BaselineSelection, Reader, StoreBaselineProvider
from neuroerp_ci.store.records import finite, samples_from_json, to_db_time, to_iso
from neuroerp_ci.store.schema import calibrations, metrics

DEFAULT_BUDGET_PCT = Calibration(None, (), 0, 0).budget_pct  # a row written without one

# (check id, condition text): what an outcome finds its calibration by.
CalibrationKey = tuple[str, str]


@dataclass(frozen=True)
class CalibrationEntry:
    """One condition's calibration, as the store keeps it."""

    check: str
    condition: str  # as its outcomes name it
    metric: str | None
    calibration: Calibration


def save(conn: Connection, stage: str, target: str, entries: Iterable[CalibrationEntry]) -> int:
    """Add the calibrations of ``stage`` on ``target``; returns how many rows were written.

    A calibration without ``measured_at`` cannot be told from an older one: refused.
    """
    rows = [_row(stage, target, entry) for entry in entries]
    if rows:
        conn.execute(insert(calibrations), rows)
    return len(rows)


def latest(conn: Connection, stage: str, target: str) -> dict[CalibrationKey, Calibration]:
    """The newest calibration of each condition of ``stage`` on ``target``."""
    query = (
        select(calibrations)
        .where(calibrations.c.stage == stage, calibrations.c.target == target)
        .order_by(calibrations.c.measured_at, calibrations.c.pk)
    )
    found: dict[CalibrationKey, Calibration] = {}
    for row in conn.execute(query):
        found[(row.check_id, row.condition)] = _calibration(row._mapping)  # newest wins
    return found


def measured_runs(
    read: Reader, stage: str, target: str, check: str, metric: str, limit: int | None = None
) -> list[tuple[str, Metric]]:
    """The runs of ``stage`` on ``target`` that may form a baseline and measured ``metric``
    of ``check``: (run id, the metric as measured, samples included), newest first.

    The candidate rules are the baseline's own (finished, PASS or WARN, not invalidated,
    the check completed, the metric measured), from the same query.
    """
    provider = StoreBaselineProvider(read, BaselineSelection(stage, target))
    query = provider._measured(check, metric).add_columns(metrics.c.unit, metrics.c.direction)
    if limit is not None:
        query = query.limit(limit)
    with read() as conn:
        rows = conn.execute(query).all()
    return [
        (
            str(r.run_id),
            Metric(
                metric,
                float(r.value),
                str(r.unit or ""),
                Direction(r.direction),
                samples_from_json(r.samples),
            ),
        )
        for r in rows
    ]


def _row(stage: str, target: str, entry: CalibrationEntry) -> dict[str, object]:
    cal = entry.calibration
    if not cal.measured_at:
        raise ValueError(f"{entry.check}: {entry.condition}: a calibration needs measured_at")
    detection: Sequence[list[float | None]] = [
        [finite(shift), finite(rate)] for shift, rate in cal.detection_pct
    ]
    return {
        "stage": stage,
        "target": target,
        "check_id": entry.check,
        "condition": entry.condition,
        "metric": entry.metric,
        "measured_at": to_db_time(cal.measured_at),
        "runs": cal.runs,
        "pairs": cal.pairs,
        "false_alarm_pct": finite(cal.false_alarm_pct),
        "detection": json.dumps(list(detection), allow_nan=False),
        "budget_pct": finite(cal.budget_pct),
        "over_budget": cal.over_budget,
    }


def _calibration(row: RowMapping) -> Calibration:
    detection = tuple(
        (float(shift), float(rate))
        for shift, rate in json.loads(row["detection"] or "[]")
        if shift is not None and rate is not None
    )
    false_alarm, budget = row["false_alarm_pct"], row["budget_pct"]
    return Calibration(
        false_alarm_pct=None if false_alarm is None else float(false_alarm),
        detection_pct=detection,
        runs=int(row["runs"]),
        pairs=int(row["pairs"]),
        budget_pct=DEFAULT_BUDGET_PCT if budget is None else float(budget),
        over_budget=bool(row["over_budget"]),
        measured_at=to_iso(row["measured_at"]),
    )
