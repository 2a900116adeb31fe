"""Test helpers for the gates: a real BaselineProvider over a dict, and builders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuroerp_ci.checks import Check, KindSettings
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.model import (
    Baseline,
    CheckResult,
    CheckStatus,
    Direction,
    FindingsBaseline,
    Metric,
    Priority,
)


class DictBaselines:
    """Baselines keyed by (check, metric); records what the gates asked for."""

    def __init__(self, *baselines: Baseline) -> None:
        self._by_key = {(b.check, b.metric): b for b in baselines}
        self.asked: list[tuple[str, str]] = []

    def baseline(self, check: str, metric: str) -> Baseline | None:
        self.asked.append((check, metric))
        return self._by_key.get((check, metric))

    def findings(self, check: str) -> FindingsBaseline | None:
        return None


def make_baseline(
    metric: str,
    values: Sequence[float],
    samples: Sequence[float] = (),
    *,
    check: str = "api",
    runs: Sequence[str] | None = None,
    pinned: bool = False,
) -> Baseline:
    default = tuple(f"r{len(values) - i}" for i in range(len(values)))  # newest first
    run_ids = tuple(runs) if runs is not None else default
    return Baseline(check, metric, tuple(values), tuple(samples), run_ids, pinned)


def make_check(check_id: str = "api", priority: Priority = Priority.HIGH) -> Check:
    return Check(check_id, check_id, "http", priority, (), 60.0, KindSettings())


def result_with(*metrics: Metric, check_id: str = "api") -> CheckResult:
    result = CheckResult(check_id, "http", CheckStatus.OK, duration_s=1.0)
    for metric in metrics:
        result.add_metric(metric)
    return result


def metric(
    name: str, value: float, samples: Sequence[float] = (), direction: Direction = Direction.LOWER
) -> Metric:
    return Metric(name, value, "", direction, tuple(samples))


def cond(**fields: Any) -> ConditionSpec:
    return ConditionSpec.model_validate({"check": "api", **fields})
