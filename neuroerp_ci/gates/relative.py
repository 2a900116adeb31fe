"""Relative conditions: a metric against its baseline value, by percent or by amount.

``max_increase_pct = 10``: value <= baseline + 10 % of it; ``max_decrease_pct``: value >=
baseline - x %; ``max_increase`` / ``max_decrease``: the same with an absolute delta in the
metric's unit (``max_decrease = 0``: must not drop). The baseline value is the median of the
baseline runs' values (:attr:`~neuroerp_ci.model.Baseline.value`), so one odd run does not
move it.
"""

from __future__ import annotations

from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.gates.baselines import change_pct, runs_text
from neuroerp_ci.gates.judgement import Judgement
from neuroerp_ci.model import Baseline
from neuroerp_ci.support.formatting import format_value


def describe_relative(cond: ConditionSpec) -> tuple[str, str]:
    """The condition as text (``p95_ms <= baseline +10 %``) and its target before a baseline."""
    op, allowance = _limit_parts(cond)
    target = f"{op} baseline{allowance}"
    return f"{cond.metric} {target}", target


def judge_relative(cond: ConditionSpec, check_id: str, value: float, base: Baseline) -> Judgement:
    """Compare ``value`` with the baseline's value by the condition's relative limit."""
    key = cond.relative_key
    amount = getattr(cond, key) if key else None
    assert key is not None and amount is not None  # validated with the config
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
    op, allowance = _limit_parts(cond)
    change = change_pct(value, reference)
    shown = f"{cond.metric} {format_value(value)}"
    basis = f"the baseline {format_value(reference)} ({_basis(base)}){allowance}"
    changed = "" if change is None else f"; change {change:+.1f} %"
    if breach:
        broken = ">" if upper else "<"
        reason = f"{check_id}: {shown} {broken} {format_value(limit)}, {basis}{changed}"
    else:
        reason = f"{check_id}: {shown} within {op} {format_value(limit)}, {basis}{changed}"
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


def _limit_parts(cond: ConditionSpec) -> tuple[str, str]:
    """(``<=`` or ``>=``, the allowance as text: ``" +10 %"``, ``" -5120"``, ``""``)."""
    key = cond.relative_key
    amount = getattr(cond, key) if key else None
    assert key is not None and amount is not None
    op, sign = ("<=", "+") if key.startswith("max_increase") else (">=", "-")
    if amount == 0:
        return op, ""
    unit = " %" if key.endswith("_pct") else ""
    return op, f" {sign}{format_value(amount)}{unit}"
