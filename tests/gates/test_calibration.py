"""``calibrate``: a condition's false-alarm and detection rates, replayed through the real
dispatcher on a seeded history whose answers are computed here by hand."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

import pytest
from baseline_fakes import cond, make_check

from neuroerp_ci.gates.calibration import (
    MIN_PAIRS,
    SHIFTS_PCT,
    calibrate,
    calibrate_stage,
    shifted,
)
from neuroerp_ci.gates.conditions.dispatch import DEFAULT_MARK
from neuroerp_ci.model import Direction, Metric, Priority, Severity

RUNS = 5  # [baseline] runs


def history_of(
    values: Sequence[float], samples: Sequence[Sequence[float]] = ()
) -> list[tuple[str, Metric]]:
    """(run id, metric) newest first, from values oldest first."""
    runs = [
        (
            f"r{i:02d}",
            Metric("p95_ms", v, "ms", Direction.LOWER, tuple(samples[i]) if samples else ()),
        )
        for i, v in enumerate(values)
    ]
    return list(reversed(runs))


def seeded_runs(
    count: int = 40, n: int = 5, seed: int = 11
) -> tuple[list[float], list[list[float]]]:
    """``count`` unchanged runs: each the mean of ``n`` draws of N(100, 15)."""
    rng = random.Random(seed)
    samples = [[rng.gauss(100.0, 15.0) for _ in range(n)] for _ in range(count)]
    return [statistics.fmean(s) for s in samples], samples


def by_hand(values: Sequence[float], allowed_pct: float, shift_pct: float = 0.0) -> float:
    """The relative limit's breach rate, computed directly: run i (shifted) against the
    median of the RUNS runs before it."""
    hits = [
        values[i] * (1 + shift_pct / 100)
        > statistics.median(values[i - RUNS : i]) * (1 + allowed_pct / 100)
        for i in range(RUNS, len(values))
    ]
    return sum(hits) / len(hits) * 100


def test_relative_limit_rates_equal_the_hand_computation() -> None:
    values, samples = seeded_runs()
    condition = cond(metric="p95_ms", max_increase_pct=10)
    got = calibrate(
        condition, make_check(), history_of(values, samples), runs=RUNS, measured_at="t"
    )
    assert (got.runs, got.pairs) == (40, 35)
    expected = by_hand(values, 10)
    assert got.false_alarm_pct == pytest.approx(expected)
    assert 0 < expected < 20  # the seed gives some false alarms: the rate is really measured
    rates = dict(got.detection_pct)
    assert tuple(rates) == SHIFTS_PCT
    assert rates[10.0] == pytest.approx(by_hand(values, 10, 10))
    assert 20 < rates[10.0] < 90
    assert rates[20.0] == pytest.approx(by_hand(values, 10, 20))
    assert rates[50.0] == 100.0
    # blocking (high priority) and above the 5 % budget
    assert got.over_budget is (expected > 5.0)
    assert got.measured_at == "t" and got.budget_pct == 5.0


def test_the_baseline_rolls_with_the_judged_run() -> None:
    # 100, 120, 100, ... with one run of baseline: every 120 follows a 100 (+20 %: an alarm),
    # every 100 follows a 120 (-17 %: none).
    values = [100.0, 120.0] * 5 + [100.0]
    got = calibrate(
        cond(metric="p95_ms", max_increase_pct=10), make_check(), history_of(values), runs=1
    )
    assert (got.pairs, got.false_alarm_pct) == (10, 50.0)
    # A 120 after a 100 breaches at any shift (limit 110); a 100 after a 120 (limit 132)
    # only at +50 % (150), not at +10 % (110) or +20 % (120).
    assert dict(got.detection_pct) == {10.0: 50.0, 20.0: 50.0, 50.0: 100.0}


def test_an_absolute_limit_below_every_run_always_alarms_and_is_over_budget() -> None:
    values, _ = seeded_runs(count=12)
    history = history_of(values)
    blocking = calibrate(cond(metric="p95_ms", max=10), make_check(), history, runs=RUNS)
    assert blocking.false_alarm_pct == 100.0 and blocking.pairs == 7
    assert dict(blocking.detection_pct) == {10.0: 100.0, 20.0: 100.0, 50.0: 100.0}
    assert blocking.over_budget
    assert "over the 5 % false-alarm budget" in blocking.text()
    warning = calibrate(
        cond(metric="p95_ms", max=10), make_check(priority=Priority.MEDIUM), history, runs=RUNS
    )
    assert warning.false_alarm_pct == 100.0 and not warning.over_budget  # only blocking ones
    lenient = calibrate(
        cond(metric="p95_ms", max=10), make_check(), history, runs=RUNS, budget_pct=100
    )
    assert not lenient.over_budget


def test_the_regression_test_on_unchanged_runs_stays_quiet_and_catches_plus_20_pct() -> None:
    rng = random.Random(3)
    samples = [[rng.gauss(20.0, 1.0) for _ in range(30)] for _ in range(40)]
    values = [statistics.median(s) for s in samples]
    condition = cond(metric="p95_ms", regression={})
    got = calibrate(condition, make_check(), history_of(values, samples), runs=RUNS)
    assert got.pairs == 35
    assert got.false_alarm_pct == 0.0 and not got.over_budget
    rates = dict(got.detection_pct)
    assert rates[20.0] == 100.0 and rates[50.0] == 100.0
    assert rates[10.0] >= 90.0  # +10 % = 2 standard deviations of a sample: well beyond 5 %


def test_a_throughput_is_shifted_down() -> None:
    rps = Metric("rps", 200.0, "rps", Direction.HIGHER, (190.0, 210.0))
    assert shifted(rps, 10) == Metric("rps", 180.0, "rps", Direction.HIGHER, (171.0, 189.0))
    latency = Metric("p95_ms", 100.0, "ms", Direction.LOWER, (50.0,))
    assert shifted(latency, 50) == Metric("p95_ms", 150.0, "ms", Direction.LOWER, (75.0,))
    runs = list(
        reversed([(f"r{i}", Metric("rps", 200.0, "rps", Direction.HIGHER)) for i in range(8)])
    )
    got = calibrate(cond(metric="rps", max_decrease_pct=15), make_check(), runs, runs=2)
    assert got.false_alarm_pct == 0.0
    assert dict(got.detection_pct) == {10.0: 0.0, 20.0: 100.0, 50.0: 100.0}


def test_too_few_pairs_give_no_rate() -> None:
    values = [100.0] * (RUNS + MIN_PAIRS - 1)
    got = calibrate(cond(metric="p95_ms", max=10), make_check(), history_of(values), runs=RUNS)
    assert (got.false_alarm_pct, got.detection_pct, got.pairs) == (None, (), MIN_PAIRS - 1)
    assert not got.over_budget
    assert got.text() == f"false alarms unknown, from {RUNS + MIN_PAIRS - 1} runs"


def test_a_stage_calibrates_metric_conditions_and_skips_findings_limits() -> None:
    check = make_check()
    latency = cond(metric="p95_ms", max_increase_pct=10, severity="warning")
    findings = cond(findings="high", max=0)
    values, _ = seeded_runs(count=10)
    asked: list[tuple[str, str]] = []

    def read(check_id: str, metric: str) -> list[tuple[str, Metric]]:
        asked.append((check_id, metric))
        return history_of(values)

    done, skipped = calibrate_stage(
        {"api": ((latency, cond(metric="p95_ms", max=10), findings), False)},
        {"api": check},
        read,
        runs=RUNS,
        measured_at="2026-03-01T12:00:00+00:00",
    )
    assert [(c.condition, c.severity) for c in done] == [
        ("p95_ms <= baseline +10 %", Severity.WARNING),
        ("p95_ms <= 10", Severity.BLOCKING),
    ]
    assert asked == [("api", "p95_ms")]  # one read per metric
    assert not done[0].calibration.over_budget  # a warning is never over budget
    assert done[1].calibration.over_budget
    assert [(s.check, s.why) for s in skipped] == [
        ("api", "a findings condition limits no metric: no shift to inject")
    ]
    defaults, _ = calibrate_stage(
        {"api": ((cond(metric="p95_ms", max=10),), True)}, {"api": check}, read, runs=RUNS
    )
    assert defaults[0].condition == "p95_ms <= 10" + DEFAULT_MARK
