"""Relative conditions: a metric against its baseline value, by percent or by amount.

``max_increase_pct = 10``: value <= baseline + 10 % of it; ``max_decrease_pct``: value >=
baseline - x %; ``max_increase`` / ``max_decrease``: the same with an absolute delta in the
metric's unit (``max_decrease = 0``: must not drop). The baseline value is the median of the
baseline runs' values (:attr:`~neuroerp_ci.model.Baseline.value`), so one odd run does not
move it.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from neuroerp_ci.gates.baselines import change_pct, runs_text
from neuroerp_ci.gates.conditions.interface import ConditionForm, Evidence, FormParams
from neuroerp_ci.gates.conditions.judgement import Judgement
from neuroerp_ci.model import Baseline
from neuroerp_ci.support.formatting import format_value


class RelativeParams(FormParams):
    """ONE limit against the baseline value (the median of the baseline runs' values)."""

    max_increase_pct: float | None = Field(default=None, ge=0)  # at most baseline + x % of it
    max_decrease_pct: float | None = Field(default=None, ge=0, le=100)  # at least baseline - x %
    max_increase: float | None = Field(default=None, ge=0)  # at most baseline + x (its unit)
    max_decrease: float | None = Field(default=None, ge=0)  # at least baseline - x (0: no drop)

    @model_validator(mode="after")
    def _one_limit(self) -> RelativeParams:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if not given:
            raise ValueError("give one of " + ", ".join(type(self).model_fields))
        if len(given) > 1:
            raise ValueError(
                "give one relative limit per condition, got "
                + ", ".join(given)
                + "; write one condition for each"
            )
        return self

    @property
    def key(self) -> str:
        """The limit given: ``"max_increase_pct"``, ``"max_decrease"`` ..."""
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def amount(self) -> float:
        value: float = getattr(self, self.key)
        return value


class RelativeLimit(ConditionForm[RelativeParams]):
    """The metric against its baseline value, by percent or by an amount in its unit."""

    name = "relative"
    keys = tuple(RelativeParams.model_fields)  # max_increase_pct, ..., max_decrease
    params_model = RelativeParams
    needs_baseline = True

    def describe(self, params: RelativeParams, metric: str | None) -> tuple[str, str]:
        """``p95_ms <= baseline +10 %`` and its target before a baseline is known."""
        op, allowance = _limit_parts(params)
        target = f"{op} baseline{allowance}"
        return f"{metric} {target}", target

    def judge(self, params: RelativeParams, evidence: Evidence) -> Judgement:
        """Compare the value with the baseline's value by the relative limit."""
        assert evidence.metric is not None and evidence.baseline is not None  # the dispatcher's
        value, base = evidence.metric.value, evidence.baseline
        key, amount = params.key, params.amount
        reference = base.value
        if key == "max_increase_pct":
            limit = reference + abs(reference) * amount / 100.0
        elif key == "max_decrease_pct":
            limit = reference - abs(reference) * amount / 100.0
        elif key == "max_increase":
            limit = reference + amount
        else:
            limit = reference - amount
        upper = key.startswith("max_increase")
        breach = value > limit if upper else value < limit
        op, allowance = _limit_parts(params)
        change = change_pct(value, reference)
        shown = f"{evidence.check_id}: {evidence.metric.name} {format_value(value)}"
        basis = f"the baseline {format_value(reference)} ({_basis(base)}){allowance}"
        changed = "" if change is None else f"; change {change:+.1f} %"
        if breach:
            broken = ">" if upper else "<"
            reason = f"{shown} {broken} {format_value(limit)}, {basis}{changed}"
        else:
            reason = f"{shown} within {op} {format_value(limit)}, {basis}{changed}"
        return Judgement(
            "breached" if breach else "met",
            value,
            f"{op} {format_value(limit)}",
            reason,
            baseline=reference,
            change_pct=change,
            baseline_runs=base.runs,
        )


def _basis(base: Baseline) -> str:
    if base.pinned:
        return runs_text(base)
    return runs_text(base) if len(base.values) == 1 else f"median of {runs_text(base)}"


def _limit_parts(params: RelativeParams) -> tuple[str, str]:
    """(``<=`` or ``>=``, the allowance as text: ``" +10 %"``, ``" -5120"``, ``""``)."""
    key, amount = params.key, params.amount
    op, sign = ("<=", "+") if key.startswith("max_increase") else (">=", "-")
    if amount == 0:
        return op, ""
    unit = " %" if key.endswith("_pct") else ""
    return op, f" {sign}{format_value(amount)}{unit}"
