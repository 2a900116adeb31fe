"""Relative conditions and 'no baseline yet', through the gate's evaluate()."""

from __future__ import annotations

import math

import pytest
from baseline_fakes import DictBaselines, cond, make_baseline, make_check, metric, result_with

from neuroerp_ci.config import Stage
from neuroerp_ci.gates import NoBaselines, evaluate, evaluate_stage
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, OutcomeStatus, Priority

P95_RUNS = (250.0, 255.0, 260.0, 240.0, 270.0)  # median 255


def p95(value: float) -> CheckResult:
    return result_with(metric("p95_ms", value))


def test_max_increase_pct_breach_explains_itself() -> None:
    baselines = DictBaselines(make_baseline("p95_ms", P95_RUNS))
    outcome = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), p95(412), baselines
    )
    assert outcome.status is OutcomeStatus.FAIL
    assert outcome.condition == "p95_ms <= baseline +10 %"
    assert outcome.target == "<= 280.5"
    assert outcome.reason == (
        "api: p95_ms 412 > 280.5, the baseline 255 (median of 5 runs) +10 %; change +61.6 %"
    )
    assert outcome.value == 412 and outcome.baseline == 255
    assert outcome.change_pct is not None and math.isclose(
        outcome.change_pct, 61.5686, rel_tol=1e-4
    )
    assert outcome.baseline_runs == ("r5", "r4", "r3", "r2", "r1")
    assert outcome.p_value is None and outcome.effect is None and outcome.effect_ci is None


@pytest.mark.parametrize(
    ("value", "status"), [(280.5, OutcomeStatus.PASS), (280.6, OutcomeStatus.FAIL)]
)
def test_max_increase_pct_boundary(value: float, status: OutcomeStatus) -> None:
    baselines = DictBaselines(make_baseline("p95_ms", P95_RUNS))
    outcome = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), p95(value), baselines
    )
    assert outcome.status is status


def test_within_limit_passes_and_still_shows_the_baseline() -> None:
    baselines = DictBaselines(make_baseline("p95_ms", P95_RUNS))
    outcome = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), p95(260), baselines
    )
    assert outcome.status is OutcomeStatus.PASS
    assert outcome.reason == (
        "api: p95_ms 260 within <= 280.5, the baseline 255 (median of 5 runs) +10 %; change +2.0 %"
    )


def test_max_decrease_pct_for_a_higher_is_better_metric() -> None:
    baselines = DictBaselines(make_baseline("throughput_rps", (100.0, 98.0, 102.0)))
    throughput = result_with(metric("throughput_rps", 85.0, direction=Direction.HIGHER))
    outcome = evaluate(
        cond(metric="throughput_rps", max_decrease_pct=10), make_check(), throughput, baselines
    )
    assert outcome.status is OutcomeStatus.FAIL
    assert outcome.target == ">= 90"
    assert outcome.reason.startswith("api: throughput_rps 85 < 90, the baseline 100")
    assert "change -15.0 %" in outcome.reason


@pytest.mark.parametrize(
    ("value", "status"), [(81.5, OutcomeStatus.PASS), (81.2, OutcomeStatus.FAIL)]
)
def test_coverage_must_not_drop(value: float, status: OutcomeStatus) -> None:
    baselines = DictBaselines(make_baseline("coverage_pct", (81.5, 80.0, 82.0)))
    coverage = result_with(metric("coverage_pct", value, direction=Direction.HIGHER))
    outcome = evaluate(
        cond(metric="coverage_pct", max_decrease=0), make_check(), coverage, baselines
    )
    assert outcome.status is status
    assert outcome.condition == "coverage_pct >= baseline"
    if status is OutcomeStatus.FAIL:
        assert outcome.reason == (
            "api: coverage_pct 81.2 < 81.5, the baseline 81.5 (median of 3 runs); change -0.4 %"
        )


@pytest.mark.parametrize(
    ("value", "status"), [(205_120.0, OutcomeStatus.PASS), (205_121.0, OutcomeStatus.FAIL)]
)
def test_bundle_may_grow_by_an_absolute_amount(value: float, status: OutcomeStatus) -> None:
    baselines = DictBaselines(make_baseline("total_bytes", (200_000.0,)))
    size = result_with(metric("total_bytes", value))
    outcome = evaluate(cond(metric="total_bytes", max_increase=5120), make_check(), size, baselines)
    assert outcome.status is status
    assert outcome.condition == "total_bytes <= baseline +5120"
    assert "the baseline 200000 (1 run) +5120" in outcome.reason


def test_pinned_baseline_is_named_in_the_reason() -> None:
    pinned = make_baseline("p95_ms", (255.0,), runs=("20261128T104501Z-3f9a2c",), pinned=True)
    outcome = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), p95(300), DictBaselines(pinned)
    )
    assert "the baseline 255 (pinned run 20261128T104501Z-3f9a2c) +10 %" in outcome.reason
    assert outcome.baseline_runs == ("20261128T104501Z-3f9a2c",)


def test_zero_baseline_has_no_relative_change() -> None:
    baselines = DictBaselines(make_baseline("failed", (0.0, 0.0)))
    outcome = evaluate(
        cond(metric="failed", max_increase=0),
        make_check(),
        result_with(metric("failed", 2)),
        baselines,
    )
    assert outcome.status is OutcomeStatus.FAIL and outcome.change_pct is None
    assert outcome.reason == "api: failed 2 > 0, the baseline 0 (median of 2 runs)"


def test_runs_without_a_finite_value_are_dropped_from_the_baseline() -> None:
    baselines = DictBaselines(make_baseline("p95_ms", (math.nan, 250.0, 260.0)))
    outcome = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), p95(300), baselines
    )
    assert outcome.baseline == 255.0 and outcome.baseline_runs == ("r2", "r1")
    only_nan = DictBaselines(make_baseline("p95_ms", (math.nan,)))
    outcome = evaluate(cond(metric="p95_ms", max_increase_pct=10), make_check(), p95(300), only_nan)
    assert outcome.status is OutcomeStatus.WARN and "no baseline yet" in outcome.reason


def test_breach_weighs_by_severity() -> None:
    baselines = DictBaselines(make_baseline("p95_ms", P95_RUNS))
    warning = cond(metric="p95_ms", max_increase_pct=10, severity="warning")
    assert evaluate(warning, make_check(), p95(412), baselines).status is OutcomeStatus.WARN
    low = make_check(priority=Priority.LOW)
    assert evaluate(
        cond(metric="p95_ms", max_increase_pct=10), low, p95(412), baselines
    ).status is (OutcomeStatus.INFO)


def test_no_baseline_warns_by_default_and_names_the_stage() -> None:
    stage = Stage("staging", ("api",), (cond(metric="p95_ms", max_increase_pct=10),), None)
    [outcome] = evaluate_stage(
        stage.name, stage.conditions_by_check(), {"api": make_check()}, {"api": p95(412)}
    )
    assert outcome.status is OutcomeStatus.WARN
    assert (
        outcome.reason
        == "api: no baseline yet for p95_ms (0 passing runs of stage staging measured it)"
    )
    assert outcome.value == 412 and outcome.baseline is None and outcome.baseline_runs == ()
    assert outcome.target == "<= baseline +10 %"


@pytest.mark.parametrize(
    ("policy", "status"),
    [("fail", OutcomeStatus.FAIL), ("warn", OutcomeStatus.WARN), ("ignore", OutcomeStatus.INFO)],
)
def test_no_baseline_policy(policy: str, status: OutcomeStatus) -> None:
    condition = cond(metric="p95_ms", max_increase_pct=10, on_no_baseline=policy)
    outcome = evaluate(condition, make_check(), p95(412), NoBaselines())
    assert outcome.status is status
    assert outcome.reason.endswith("(0 passing runs of this stage measured it)")


def test_no_baseline_is_never_a_pass_even_for_low_priority() -> None:
    outcome = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(priority=Priority.LOW), p95(1)
    )
    assert outcome.status is OutcomeStatus.WARN


def test_stage_passes_its_provider_and_asks_for_each_metric() -> None:
    baselines = DictBaselines(make_baseline("p95_ms", P95_RUNS))
    stage = Stage(
        "staging",
        ("api",),
        (
            cond(metric="p95_ms", max_increase_pct=10),
            cond(metric="p95_ms", max=1000),
            cond(metric="error_rate", max_increase=0.01),
        ),
        None,
    )
    result = result_with(metric("p95_ms", 260), metric("error_rate", 0.0))
    outcomes = evaluate_stage(
        stage.name, stage.conditions_by_check(), {"api": make_check()}, {"api": result}, baselines
    )
    assert [o.status for o in outcomes] == [OutcomeStatus.PASS] * 2 + [OutcomeStatus.WARN]
    # absolute limits never consult the baseline
    assert baselines.asked == [("api", "p95_ms"), ("api", "error_rate")]


def test_errors_and_missing_metrics_come_before_the_baseline() -> None:
    baselines = DictBaselines(make_baseline("p95_ms", P95_RUNS))
    error = CheckResult("api", "http", CheckStatus.ERROR, reason="target not answering")
    outcome = evaluate(cond(metric="p95_ms", max_increase_pct=10), make_check(), error, baselines)
    assert (
        outcome.status is OutcomeStatus.FAIL and outcome.reason == "api error: target not answering"
    )
    missing = evaluate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), result_with(), baselines
    )
    assert missing.status is OutcomeStatus.FAIL and "was not measured" in missing.reason
    assert baselines.asked == []
