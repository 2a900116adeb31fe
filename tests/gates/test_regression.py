"""The statistical regression condition, through the gate's evaluate()."""

from __future__ import annotations

import math

import numpy as np
import pytest
from baseline_fakes import DictBaselines, cond, make_baseline, make_check, metric, result_with

from neuroerp_ci.gates import NoBaselines, evaluate
from neuroerp_ci.model import Baseline, CheckResult, Direction, Outcome, OutcomeStatus

REGRESSION = {"alpha": 0.01, "min_effect_pct": 5, "min_samples": 20}


def latencies(seed: int, n: int, scale: float = 1.0, median: float = 20.0) -> list[float]:
    """Right-skewed request latencies (ms) around ``median``, multiplied by ``scale``."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in rng.lognormal(math.log(median), 0.15, n) * scale]


def history(runs: int = 5, n: int = 80, name: str = "p95_ms", **kwargs: object) -> Baseline:
    samples = [s for i in range(runs) for s in latencies(100 + i, n)]
    values = [float(np.percentile(latencies(100 + i, n), 95)) for i in range(runs)]
    return make_baseline(name, values, samples, **kwargs)  # type: ignore[arg-type]


def run_of(samples: list[float], direction: Direction = Direction.LOWER) -> CheckResult:
    return result_with(metric("p95_ms", float(np.nanpercentile(samples, 95)), samples, direction))


def judge(samples: list[float], baseline: Baseline, **spec: object) -> Outcome:
    condition = cond(metric="p95_ms", regression={**REGRESSION, **spec})
    return evaluate(condition, make_check(), run_of(samples), DictBaselines(baseline))


def test_a_clear_slowdown_fails_with_effect_interval_and_runs() -> None:
    base = history()
    outcome = judge(latencies(1, 80, scale=1.2), base)
    assert outcome.status is OutcomeStatus.FAIL
    assert outcome.p_value is not None and outcome.p_value < 1e-6
    assert outcome.effect is not None and 14 < outcome.effect < 26
    assert outcome.effect_ci is not None
    low, high = outcome.effect_ci
    assert 5 < low < outcome.effect < high
    assert outcome.baseline == base.value and outcome.baseline_runs == base.runs
    assert outcome.change_pct is not None
    assert outcome.condition == "p95_ms no regression (alpha 0.01, min effect 5 %)"
    assert outcome.target == "no shift beyond +5 % (alpha 0.01)"
    assert outcome.reason.startswith(
        f"api: p95_ms regressed: shift {outcome.effect:+.1f} % [98 % CI "
    )
    assert outcome.reason.endswith("p<0.0001 vs 5 runs (min effect 5 %, n=80 vs 400)")


def test_same_distribution_passes() -> None:
    outcome = judge(latencies(2, 80), history())
    assert outcome.status is OutcomeStatus.PASS
    assert "no significant regression: shift" in outcome.reason
    assert outcome.p_value is not None and outcome.p_value >= 0.01


def test_a_significant_shift_below_the_floor_passes_and_says_why() -> None:
    rng = np.random.default_rng(7)
    base = make_baseline("p95_ms", [101.0] * 5, [float(v) for v in rng.normal(100, 1, 500)])
    current = [float(v) for v in rng.normal(102, 1, 200)]  # +2 %: real, but under 5 %
    outcome = judge(current, base)
    assert outcome.p_value is not None and outcome.p_value < 1e-6
    assert outcome.status is OutcomeStatus.PASS
    assert "no regression beyond the min effect: shift +2.1 % [98 % CI +1.9, +2.3]" in (
        outcome.reason
    )


def test_min_effect_zero_makes_any_significant_shift_a_regression() -> None:
    rng = np.random.default_rng(7)
    base = make_baseline("p95_ms", [101.0] * 5, [float(v) for v in rng.normal(100, 1, 500)])
    current = [float(v) for v in rng.normal(102, 1, 200)]
    assert judge(current, base, min_effect_pct=0).status is OutcomeStatus.FAIL


def test_getting_faster_is_never_a_regression() -> None:
    outcome = judge(latencies(3, 80, scale=0.7), history())
    assert outcome.status is OutcomeStatus.PASS
    assert outcome.effect is not None and outcome.effect < -20
    assert outcome.p_value is not None and outcome.p_value > 0.99


@pytest.mark.parametrize(
    ("scale", "status"), [(0.8, OutcomeStatus.FAIL), (1.2, OutcomeStatus.PASS)]
)
def test_higher_is_better_metrics_regress_downwards(scale: float, status: OutcomeStatus) -> None:
    base = make_baseline("rps", [100.0] * 5, latencies(5, 400, median=100))
    current = latencies(6, 80, scale=scale, median=100)
    result = result_with(metric("rps", float(np.median(current)), current, Direction.HIGHER))
    condition = cond(metric="rps", regression=REGRESSION)
    outcome = evaluate(condition, make_check(), result, DictBaselines(base))
    assert outcome.status is status
    assert outcome.target == "no shift beyond -5 % (alpha 0.01)"
    if status is OutcomeStatus.FAIL:
        assert outcome.effect_ci is not None and outcome.effect_ci[1] < -5
        assert outcome.reason.startswith("api: rps regressed: shift -")


def test_too_few_samples_in_the_run_fails_by_default_naming_the_counts() -> None:
    outcome = judge(latencies(1, 12, scale=2.0), history())
    assert outcome.status is OutcomeStatus.FAIL
    assert outcome.reason == (
        "api: p95_ms has too few samples for the regression test: 12 in this run, 400 in the"
        " baseline (5 runs); need at least 20 each"
    )
    assert outcome.baseline is not None and outcome.p_value is None


def test_too_few_samples_in_the_baseline_follows_on_missing() -> None:
    base = history(runs=1, n=10)
    condition = cond(metric="p95_ms", regression=REGRESSION, on_missing="warn")
    outcome = evaluate(condition, make_check(), run_of(latencies(1, 80)), DictBaselines(base))
    assert outcome.status is OutcomeStatus.WARN
    assert "80 in this run, 10 in the baseline (1 run)" in outcome.reason


def test_a_metric_without_samples_cannot_be_tested() -> None:
    base = history(name="coverage_pct")
    result = result_with(metric("coverage_pct", 81.0))
    condition = cond(metric="coverage_pct", regression={})
    outcome = evaluate(condition, make_check(), result, DictBaselines(base))
    assert outcome.status is OutcomeStatus.FAIL
    assert "0 in this run, 400 in the baseline" in outcome.reason


def test_no_baseline_yet_warns() -> None:
    condition = cond(metric="p95_ms", regression={})
    outcome = evaluate(
        condition, make_check(), run_of(latencies(1, 80)), NoBaselines(), stage="dev"
    )
    assert outcome.status is OutcomeStatus.WARN
    assert (
        outcome.reason
        == "api: no baseline yet for p95_ms (0 passing runs of stage dev measured it)"
    )


def test_pinned_baseline_is_named() -> None:
    base = make_baseline(
        "p95_ms", [25.0], latencies(9, 300), runs=("20261128T104501Z-3f9a2c",), pinned=True
    )
    outcome = judge(latencies(1, 80, scale=1.3), base)
    assert outcome.status is OutcomeStatus.FAIL
    assert "vs pinned run 20261128T104501Z-3f9a2c (min effect 5 %, n=80 vs 300)" in outcome.reason


def test_zero_baseline_median_is_missing_data() -> None:
    base = make_baseline("p95_ms", [0.0], [0.0] * 30)
    outcome = judge([0.0] * 25 + [1.0] * 5, base)
    assert outcome.status is OutcomeStatus.FAIL
    assert "baseline median is 0" in outcome.reason


def test_non_finite_samples_do_not_count() -> None:
    samples = latencies(1, 19) + [math.nan] * 10
    assert "19 in this run" in judge(samples, history()).reason


def test_same_inputs_same_outcome() -> None:
    base, current = history(), latencies(4, 80, scale=1.07)
    assert judge(current, base) == judge(current, base)
