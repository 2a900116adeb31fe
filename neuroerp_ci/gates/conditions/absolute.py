"""The absolute limit: ``{ metric = "p95_ms", max = 250 }``, ``min = 80``, or both (a band)."""

from __future__ import annotations

from pydantic import model_validator

from neuroerp_ci.gates.conditions.interface import ConditionForm, Evidence, FormParams
from neuroerp_ci.gates.conditions.judgement import Judgement, Resolution
from neuroerp_ci.support.formatting import format_value


class AbsoluteParams(FormParams):
    """An absolute limit on the metric's value: ``max``, ``min`` or both."""

    max: float | None = None  # the metric must be at most this
    min: float | None = None  # the metric must be at least this

    @model_validator(mode="after")
    def _ordered(self) -> AbsoluteParams:
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min} is greater than 'max' {self.max}")
        return self


class AbsoluteLimit(ConditionForm[AbsoluteParams]):
    """``max`` and/or ``min`` on the metric's value in this run; no baseline involved."""

    name = "absolute"
    keys = ("max", "min")
    params_model = AbsoluteParams

    def describe(self, params: AbsoluteParams, metric: str | None) -> tuple[str, str]:
        bounds = []
        if params.min is not None:
            bounds.append(f">= {format_value(params.min)}")
        if params.max is not None:
            bounds.append(f"<= {format_value(params.max)}")
        target = " and ".join(bounds)
        return f"{metric} {target}", target

    def judge(self, params: AbsoluteParams, evidence: Evidence) -> Judgement:
        assert evidence.metric is not None  # subject "metric": the dispatcher measured it
        value = evidence.metric.value
        _, target = self.describe(params, evidence.metric.name)
        above = params.max is not None and value > params.max
        below = params.min is not None and value < params.min
        shown = f"{evidence.check_id}: {evidence.metric.name} {format_value(value)}"
        moved: float | None = None
        if above:
            assert params.max is not None
            reason = f"{shown} > {format_value(params.max)}"
            moved = _beyond(value, params.max)
        elif below:
            assert params.min is not None
            reason = f"{shown} < {format_value(params.min)}"
            moved = _beyond(value, params.min)
        else:
            reason = f"{shown} within {target}"
        resolution: Resolution = "breached" if above or below else "met"
        return Judgement(resolution, value, target, reason, moved_pct=moved)


def _beyond(value: float, limit: float) -> float | None:
    """How far ``value`` lies beyond ``limit``, in % of it (None for a limit of 0)."""
    return abs(value - limit) / abs(limit) * 100.0 if limit else None
