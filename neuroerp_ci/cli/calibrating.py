"""``neuroerp-ci calibrate STAGE``: how often each condition of a stage is wrong, measured on
the stage's own history, stored, and shown beside the condition in every later report.

The replay itself is :mod:`neuroerp_ci.gates.calibration`; here the history is read from
the store, the figures are stored and shown as a table or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from neuroerp_ci.config import Pipeline
from neuroerp_ci.gates.calibration import (
    DEFAULT_BUDGET_PCT,
    SHIFTS_PCT,
    CalibratedCondition,
    SkippedCondition,
    calibrate_stage,
)
from neuroerp_ci.model import Severity
from neuroerp_ci.store import HistoryStore
from neuroerp_ci.store.calibrations import CalibrationEntry
from neuroerp_ci.support.formatting import MISSING

DEFAULT_LIMIT = 100  # newest passing runs replayed per metric (--limit): recent ones matter


@dataclass(frozen=True)
class StageCalibration:
    """What ``calibrate`` measured for one stage of the pipeline's target."""

    stage: str
    target: str
    budget_pct: float
    measured_at: str
    conditions: list[CalibratedCondition]
    skipped: list[SkippedCondition]

    @property
    def over_budget(self) -> list[CalibratedCondition]:
        """The blocking conditions whose false-alarm rate exceeds the budget."""
        return [c for c in self.conditions if c.calibration.over_budget]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "target": self.target,
            "budget_pct": self.budget_pct,
            "measured_at": self.measured_at,
            "conditions": [
                {
                    "check": c.check,
                    "condition": c.condition,
                    "metric": c.metric,
                    "severity": c.severity.value,
                    "runs": c.calibration.runs,
                    "pairs": c.calibration.pairs,
                    "false_alarm_pct": c.calibration.false_alarm_pct,
                    "detection_pct": {f"{s:g}": r for s, r in c.calibration.detection_pct},
                    "over_budget": c.calibration.over_budget,
                    "text": c.calibration.text(),
                }
                for c in self.conditions
            ],
            "skipped": [
                {"check": s.check, "condition": s.condition, "why": s.why} for s in self.skipped
            ],
        }


def calibrate_pipeline_stage(
    pipeline: Pipeline,
    stage: str,
    store: HistoryStore,
    *,
    budget_pct: float = DEFAULT_BUDGET_PCT,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> StageCalibration:
    """Replay the stage's history through its metric conditions and store the figures."""
    spec = pipeline.stage(stage)  # an unknown stage: ConfigError, one line, exit 2
    target = pipeline.target.name
    measured_at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    done, skipped = calibrate_stage(
        spec.conditions_by_check(),
        pipeline.checks,
        lambda check, metric: store.measured_runs(stage, target, check, metric, limit),
        runs=pipeline.baseline_runs,
        budget_pct=budget_pct,
        measured_at=measured_at,
    )
    store.save_calibrations(
        stage,
        target,
        [CalibrationEntry(c.check, c.condition, c.metric, c.calibration) for c in done],
    )
    return StageCalibration(stage, target, budget_pct, measured_at, done, skipped)


def calibration_table(result: StageCalibration) -> Table:
    """One row per condition: its runs, pairs, false-alarm and detection rates, a flag."""
    table = Table(
        title=(
            f"Calibration of stage {result.stage} ({result.target}),"
            f" false-alarm budget {result.budget_pct:g} %"
        ),
        title_justify="left",
    )
    table.add_column("check")
    table.add_column("condition", overflow="fold")
    table.add_column("severity")
    for column in ("runs", "pairs", "false alarms"):
        table.add_column(column, justify="right")
    for shift in SHIFTS_PCT:
        table.add_column(f"detects +{shift:g} %", justify="right")
    table.add_column("flag")
    for c in result.conditions:
        cal = c.calibration
        rates = dict(cal.detection_pct)
        table.add_row(
            c.check,
            c.condition,
            c.severity.value,
            str(cal.runs),
            str(cal.pairs),
            _pct(cal.false_alarm_pct),
            *(_pct(rates.get(shift)) for shift in SHIFTS_PCT),
            _flag(c),
        )
    return table


def calibration_notes(result: StageCalibration) -> list[str]:
    """The lines under the table: conditions skipped, too little history, over budget."""
    lines = [f"skipped {s.check}: {s.condition}: {s.why}" for s in result.skipped]
    short = [c for c in result.conditions if c.calibration.false_alarm_pct is None]
    if short:
        lines.append(
            f"{len(short)} condition(s) have too few passing runs for a rate: each needs"
            " [baseline] runs + 5 passing runs that measured its metric"
        )
    over = result.over_budget
    if over:
        lines += [
            f"OVER BUDGET: {c.check}: {c.condition} (blocking) false alarms"
            f" {_pct(c.calibration.false_alarm_pct)} > {result.budget_pct:g} %"
            for c in over
        ]
    if not result.conditions:
        lines.append(f"stage {result.stage} has no condition on a metric to calibrate")
    else:
        lines.append(
            f"stored the calibration of {len(result.conditions)} condition(s),"
            f" measured {result.measured_at}; reports show it beside each condition"
        )
    return lines


def _flag(c: CalibratedCondition) -> str:
    if c.calibration.over_budget:
        return "OVER BUDGET"
    if c.calibration.false_alarm_pct is None:
        return "too few runs"
    if c.severity is not Severity.BLOCKING and c.calibration.false_alarm_pct > (
        c.calibration.budget_pct
    ):
        return f"above budget ({c.severity.value})"
    return ""


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f} %"
