from __future__ import annotations

from typing import Any

import pytest

from neuroerp_ci.checks import Check, KindSettings
from neuroerp_ci.config import ConditionSpec, Stage
from neuroerp_ci.gates import completed, decide, evaluate, evaluate_stage, summarize
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Finding,
    FindingSeverity,
    Metric,
    OutcomeStatus,
    Priority,
    Severity,
    Verdict,
    summary_line,
)


def make_check(check_id: str = "api", priority: Priority = Priority.HIGH) -> Check:
    return Check(check_id, check_id, "http", priority, (), 60.0, KindSettings())


def ok(check_id: str = "api", **metrics: float) -> CheckResult:
    result = CheckResult(check_id, "http", CheckStatus.OK, duration_s=1.5)
    for name, value in metrics.items():
        result.add_metric(Metric(name, value))
    return result


def cond(**fields: Any) -> ConditionSpec:
    return ConditionSpec.model_validate({"check": "api", **fields})


def finding(severity: FindingSeverity, rule: str = "B602") -> Finding:
    return Finding("bandit", rule, severity, "subprocess with shell=True", "app.py:3")


def test_threshold_breach_fails_with_value_and_target() -> None:
    outcome = evaluate(cond(metric="p95_ms", max=250), make_check(), ok(p95_ms=412.0))
    assert outcome.status is OutcomeStatus.FAIL
    assert outcome.value == 412.0 and outcome.target == "<= 250"
    assert outcome.reason == "api: p95_ms 412 > 250"


def test_threshold_met_passes() -> None:
    outcome = evaluate(cond(metric="coverage_pct", min=80), make_check(), ok(coverage_pct=91.25))
    assert outcome.status is OutcomeStatus.PASS
    assert outcome.condition == "coverage_pct >= 80"


def test_min_breach_says_below() -> None:
    outcome = evaluate(cond(metric="coverage_pct", min=80), make_check(), ok(coverage_pct=78.5))
    assert outcome.status is OutcomeStatus.FAIL
    assert "78.5 < 80" in outcome.reason


@pytest.mark.parametrize(
    ("priority", "status"),
    [
        (Priority.HIGH, OutcomeStatus.FAIL),
        (Priority.MEDIUM, OutcomeStatus.WARN),
        (Priority.LOW, OutcomeStatus.INFO),
    ],
)
def test_severity_defaults_from_priority(priority: Priority, status: OutcomeStatus) -> None:
    outcome = evaluate(cond(metric="x", max=1), make_check(priority=priority), ok(x=2))
    assert outcome.status is status


def test_explicit_severity_wins() -> None:
    outcome = evaluate(cond(metric="x", max=1, severity="warning"), make_check(), ok(x=2))
    assert outcome.status is OutcomeStatus.WARN and outcome.severity is Severity.WARNING


def test_missing_metric_fails_by_default_even_for_low_priority() -> None:
    outcome = evaluate(
        cond(metric="p95_ms", max=1), make_check(priority=Priority.LOW), ok(p50_ms=1)
    )
    assert outcome.status is OutcomeStatus.FAIL
    assert "'p95_ms' was not measured" in outcome.reason and "p50_ms" in outcome.reason


def test_nan_is_missing() -> None:
    outcome = evaluate(cond(metric="x", max=1), make_check(), ok(x=float("nan")))
    assert outcome.status is OutcomeStatus.FAIL


def test_missing_policy_warn() -> None:
    outcome = evaluate(cond(metric="x", max=1, on_missing="warn"), make_check(), ok())
    assert outcome.status is OutcomeStatus.WARN


def test_errored_check_fails_its_conditions() -> None:
    error = CheckResult("api", "http", CheckStatus.ERROR, reason="target not answering")
    outcome = evaluate(cond(metric="p95_ms", max=250), make_check(), error)
    assert outcome.status is OutcomeStatus.FAIL
    assert outcome.reason == "api error: target not answering"
    ignored = evaluate(cond(metric="p95_ms", max=250, on_error="ignore"), make_check(), error)
    assert ignored.status is OutcomeStatus.INFO


def test_findings_limit_counts_at_or_above_level() -> None:
    result = ok()
    result.findings = [finding(FindingSeverity.LOW, "B311"), finding(FindingSeverity.HIGH)]
    high = evaluate(cond(findings="high", max=0), make_check(), result)
    assert high.status is OutcomeStatus.FAIL and high.value == 1.0
    assert "B602 high at app.py:3" in high.reason
    medium = evaluate(cond(findings="medium", max=1), make_check(), result)
    assert medium.status is OutcomeStatus.PASS
    anything = evaluate(cond(findings="any", max=1), make_check(), result)
    assert anything.status is OutcomeStatus.FAIL and anything.condition == "findings(any) <= 1"


def test_unrated_advisory_counts_as_high() -> None:
    result = ok()
    result.findings = [finding(FindingSeverity.UNKNOWN, "PYSEC-2021-108")]
    assert evaluate(cond(findings="high", max=0), make_check(), result).status is OutcomeStatus.FAIL


def test_completed_outcome_for_checks_without_conditions() -> None:
    assert completed(make_check(), ok()).status is OutcomeStatus.PASS
    error = CheckResult("api", "http", CheckStatus.ERROR, reason="bandit not found")
    assert completed(make_check(priority=Priority.LOW), error).status is OutcomeStatus.FAIL


def test_stage_verdict_and_summary() -> None:
    checks = {"api": make_check(), "lint": make_check("lint", Priority.MEDIUM)}
    stage = Stage("development", ("api", "lint"), (cond(metric="p95_ms", max=250),), None)
    results = {"api": ok(p95_ms=300), "lint": ok("lint")}
    outcomes = evaluate_stage(stage.name, stage.conditions_by_check(), checks, results)
    assert [o.check for o in outcomes] == ["api", "lint"]
    verdict = decide(outcomes)
    assert verdict is Verdict.FAIL
    summary = summary_line(summarize("development", verdict, outcomes))
    assert summary == "development: FAIL — 1 of 2 conditions failed: api: p95_ms 300 > 250"


def test_verdicts() -> None:
    warn = evaluate(cond(metric="x", max=1, severity="warning"), make_check(), ok(x=2))
    info = evaluate(cond(metric="x", max=1, severity="info"), make_check(), ok(x=2))
    passed = evaluate(cond(metric="x", max=1), make_check(), ok(x=0))
    assert decide([passed, info]) is Verdict.PASS
    assert decide([passed, warn, info]) is Verdict.WARN
    assert decide([]) is Verdict.FAIL
    warned = summarize("dev", Verdict.WARN, [passed, warn])
    assert "1 of 2 conditions warned" in summary_line(warned)


def test_kind_defaults_are_evaluated_and_marked_as_defaults() -> None:
    checks = {"api": make_check(), "lint": make_check("lint")}
    stage = Stage("dev", ("api", "lint"), (), None, defaults=(cond(metric="error_rate", max=0.01),))
    outcomes = evaluate_stage(
        stage.name,
        stage.conditions_by_check(),
        checks,
        {"api": ok(error_rate=0.5), "lint": ok("lint")},
    )
    assert [(o.check, o.condition, o.status) for o in outcomes] == [
        ("api", "error_rate <= 0.01 (default)", OutcomeStatus.FAIL),
        ("lint", "completed", OutcomeStatus.PASS),
    ]
    assert outcomes[0].reason == "api: error_rate 0.5 > 0.01"
    assert decide(outcomes) is Verdict.FAIL


def test_a_checks_own_condition_replaces_its_defaults() -> None:
    own = cond(metric="error_rate", max=0.5)
    stage = Stage("dev", ("api",), (own,), None, defaults=(cond(metric="error_rate", max=0.01),))
    outcomes = evaluate_stage(
        stage.name, stage.conditions_by_check(), {"api": make_check()}, {"api": ok(error_rate=0.2)}
    )
    assert [(o.condition, o.status) for o in outcomes] == [
        ("error_rate <= 0.5", OutcomeStatus.PASS)
    ]


def test_a_default_on_an_errored_check_fails_with_the_error() -> None:
    stage = Stage("dev", ("api",), (), None, defaults=(cond(metric="error_rate", max=0.01),))
    error = CheckResult("api", "http", CheckStatus.ERROR, reason="target not answering")
    [outcome] = evaluate_stage(
        stage.name, stage.conditions_by_check(), {"api": make_check()}, {"api": error}
    )
    assert (
        outcome.status is OutcomeStatus.FAIL and outcome.reason == "api error: target not answering"
    )
