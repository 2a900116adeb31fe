"""Sample stage reports: a PASS, a WARN, and a FAIL with an errored check, findings and samples."""

from __future__ import annotations

import pytest

from neuroerp_ci.model import (
    Calibration,
    CheckResult,
    CheckStatus,
    Confirmation,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
)


def _base(verdict: Verdict, checks: list[CheckResult], outcomes: list[Outcome]) -> StageReport:
    return StageReport(
        run_id="20261128T104501Z-3f9a2c",
        stage="development",
        version="1.4.2+g3f9a2c1",
        target="valeo-neuroerp",
        verdict=verdict,
        started_at="2026-11-28T10:45:01Z",
        finished_at="2026-11-28T10:47:13Z",
        duration_s=132.25,
        checks=checks,
        outcomes=outcomes,
        summary=Summary("development", verdict, ("sample",)),
    )


def _unit_tests() -> CheckResult:
    return CheckResult(
        check_id="unit-tests",
        kind="pytest",
        status=CheckStatus.OK,
        duration_s=12.345,
        metrics={
            "tests": Metric("tests", 120, "count", Direction.HIGHER),
            "failed": Metric("failed", 0, "count"),
            "coverage": Metric("coverage", 0.8734, "ratio", Direction.HIGHER),
        },
        artifacts={"junit": "/runs/x/unit-tests/junit.xml", "coverage": "/runs/x/cov.json"},
        tool_versions={"pytest": "9.0.1", "pytest-cov": "7.0.0"},
    )


def _latency() -> CheckResult:
    return CheckResult(
        check_id="api-latency",
        kind="http_probe",
        status=CheckStatus.OK,
        duration_s=4.5,
        metrics={
            "p95_ms": Metric("p95_ms", 412.75, "ms", Direction.LOWER, (380.0, 401.5, 412.75)),
            "error_rate": Metric("error_rate", 0.0123, "ratio", Direction.LOWER),
            "throughput_rps": Metric("throughput_rps", 88.4, "rps", Direction.HIGHER, (88.4,)),
        },
        tool_versions={"httpx": "0.28.1"},
    )


def _bandit(findings: int) -> CheckResult:
    severities = [FindingSeverity.LOW, FindingSeverity.HIGH, FindingSeverity.MEDIUM]
    return CheckResult(
        check_id="bandit",
        kind="bandit",
        status=CheckStatus.OK,
        duration_s=2.0,
        metrics={"loc": Metric("loc", 5321, "count", Direction.HIGHER)},
        findings=[
            Finding(
                tool="bandit",
                rule=f"B{600 + i}",
                severity=severities[i % 3],
                message=f"finding {i} uses a | pipe and <script>alert(1)</script>",
                location=f"app/module_{i}.py:{10 + i}",
                confidence="HIGH",
            )
            for i in range(findings)
        ],
        artifacts={"bandit": "/runs/x/bandit/bandit.json"},
        tool_versions={"bandit": "1.9.4"},
    )


def _pip_audit() -> CheckResult:
    return CheckResult(
        check_id="dependency-audit",
        kind="pip_audit",
        status=CheckStatus.ERROR,
        reason="pip-audit exited 1: \x1b[31mERROR\x1b[0m skipped 3 dependencies | no service",
        duration_s=0.8,
        findings=[
            Finding(
                tool="pip-audit",
                rule="PYSEC-2021-108",
                severity=FindingSeverity.UNKNOWN,
                message="Jinja2 sandbox escape",
                location="jinja2==2.11.2",
                fix_versions=("2.11.3",),
                aliases=("CVE-2020-28493",),
            )
        ],
    )


def _e2e_skipped() -> CheckResult:
    return CheckResult(
        check_id="e2e",
        kind="pytest",
        status=CheckStatus.SKIPPED,
        reason="dependency dependency-audit did not complete",
    )


def _completed(check: CheckResult, severity: Severity = Severity.BLOCKING) -> Outcome:
    return Outcome(
        check=check.check_id,
        condition="completed",
        status=OutcomeStatus.PASS,
        severity=severity,
        value=None,
        target="ok",
        reason=f"completed in {check.duration_s:.1f} s",
    )


@pytest.fixture
def pass_report() -> StageReport:
    unit = _unit_tests()
    outcomes = [
        _completed(unit),
        Outcome(
            "unit-tests", "coverage >= 0.8", OutcomeStatus.PASS, Severity.BLOCKING, 0.8734,
            ">= 0.8", "unit-tests: coverage 0.873 within >= 0.8",
        ),
    ]
    return _base(Verdict.PASS, [unit], outcomes)


@pytest.fixture
def warn_report() -> StageReport:
    latency = _latency()
    outcomes = [
        Outcome(
            "api-latency", "p95_ms <= 400", OutcomeStatus.WARN, Severity.WARNING, 412.75,
            "<= 400", "api-latency: p95_ms 412.8 > 400", baseline=380.0,
        ),
        Outcome(
            "api-latency", "error_rate <= 0.05", OutcomeStatus.PASS, Severity.BLOCKING, 0.0123,
            "<= 0.05", "api-latency: error_rate 0.0123 within <= 0.05",
        ),
    ]
    return _base(Verdict.WARN, [latency], outcomes)


@pytest.fixture
def fail_report() -> StageReport:
    unit, latency, bandit, audit, e2e = (
        _unit_tests(), _latency(), _bandit(25), _pip_audit(), _e2e_skipped()
    )
    outcomes = [
        _completed(unit),
        Outcome(
            "api-latency", "p95_ms <= 300", OutcomeStatus.PASS, Severity.BLOCKING, 280.0,
            "<= 300", "api-latency: p95_ms 280 within <= 300",
        ),
        Outcome(
            "api-latency", "throughput_rps >= 100", OutcomeStatus.WARN, Severity.WARNING, 88.4,
            ">= 100", "api-latency: throughput_rps 88.4 < 100",
        ),
        Outcome(
            "bandit", "findings(high+) <= 0", OutcomeStatus.FAIL, Severity.BLOCKING, 8.0,
            "<= 0", "bandit: 8 findings high+ > 0 (B601 | B604)",
        ),
        Outcome(
            "dependency-audit", "completed", OutcomeStatus.FAIL, Severity.BLOCKING, None,
            "ok", f"dependency-audit error: {audit.reason}",
        ),
        Outcome(
            "e2e", "completed", OutcomeStatus.INFO, Severity.INFO, None,
            "ok", f"e2e skipped: {e2e.reason}",
        ),
    ]
    return _base(Verdict.FAIL, [unit, latency, bandit, audit, e2e], outcomes)


@pytest.fixture
def baseline_report() -> StageReport:
    """Outcomes against a baseline: a relative limit breached and a statistical regression."""
    latency = _latency()
    outcomes = [
        Outcome(
            "api-latency", "p95_ms <= baseline +10 %", OutcomeStatus.FAIL, Severity.BLOCKING,
            412.75, "<= 280.5",
            "api-latency: p95_ms 412.8 > 280.5, the baseline 255 (median of 5 runs) +10 %;"
            " change +61.9 %",
            baseline=255.0, change_pct=61.86, baseline_runs=("r5", "r4", "r3", "r2", "r1"),
        ),
        Outcome(
            "api-latency", "p95_ms no regression (alpha 0.01, min effect 5 %)",
            OutcomeStatus.FAIL, Severity.BLOCKING, 412.75, "no shift beyond +5 % (alpha 0.01)",
            "api-latency: p95_ms regressed: shift +18.2 % [98 % CI +12.1, +24.9] p=0.0003 vs pinned"
            " run r0 (min effect 5 %, n=3 vs 120)",
            baseline=380.0, change_pct=8.62, p_value=0.0003, effect=18.2,
            effect_ci=(12.1, 24.9), baseline_runs=("r0",),
        ),
    ]
    return _base(Verdict.FAIL, [latency], outcomes)


@pytest.fixture
def inconclusive_report() -> StageReport:
    """INCONCLUSIVE outcomes: a spike its re-measurement did not repeat (counts as warn), and
    a regression test too weak for the effect that matters (counts as fail), with every
    outcome field set."""
    latency = _latency()
    outcomes = [
        Outcome(
            "api-latency", "p95_ms <= 300", OutcomeStatus.INCONCLUSIVE, Severity.BLOCKING,
            412.75, "<= 300",
            "api-latency: p95_ms 412.8 > 300; not confirmed: re-measured p95_ms 212 within <= 300",
            metric="p95_ms", breached=True, counts_as=OutcomeStatus.WARN,
            confirmations=(Confirmation(1, 212.0, False, "p95_ms 212 within <= 300"),),
        ),
        Outcome(
            "api-latency", "p95_ms no regression (alpha 0.01, min effect 5 %)",
            OutcomeStatus.INCONCLUSIVE, Severity.BLOCKING, 412.75,
            "no shift beyond +5 % (alpha 0.01)",
            "api-latency: p95_ms cannot detect shifts below 38 % with n=3; about n=120 would",
            baseline=380.0, change_pct=8.62, p_value=0.2, effect=3.1, effect_ci=(-20.0, 30.0),
            baseline_runs=("r2", "r1"), metric="p95_ms", counts_as=OutcomeStatus.FAIL,
            mde_pct=38.0, needed_n=120,
            calibration=Calibration(
                1.8, ((10.0, 61.0), (20.0, 96.0), (50.0, 100.0)), 40, 39,
                measured_at="2026-11-27T08:00:00+00:00",
            ),
        ),
        Outcome(
            "api-latency", "error_rate <= 0.05", OutcomeStatus.PASS, Severity.BLOCKING, 0.0123,
            "<= 0.05", "api-latency: error_rate 0.0123 within <= 0.05", metric="error_rate",
        ),
        Outcome(
            "api-latency", "throughput_rps >= 100", OutcomeStatus.WARN, Severity.WARNING, 88.4,
            ">= 100",
            "api-latency: throughput_rps 88.4 < 100; confirmed: re-measured throughput_rps 90.1"
            " < 100",
            metric="throughput_rps", breached=True,
            confirmations=(Confirmation(1, 90.1, True, "throughput_rps 90.1 < 100"),),
        ),
    ]
    return _base(Verdict.FAIL, [latency], outcomes)


@pytest.fixture(
    params=["pass_report", "warn_report", "fail_report", "baseline_report", "inconclusive_report"]
)
def any_report(request: pytest.FixtureRequest) -> StageReport:
    report: StageReport = request.getfixturevalue(request.param)
    return report
