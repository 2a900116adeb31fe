"""Baseline selection: the last N passing runs of the same stage and target that measured the
metric, within the window, or exactly the pinned run. Nothing else ever counts."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from neuroerp_ci.gates.baselines import BaselineProvider
from neuroerp_ci.model import CheckStatus, Metric, Verdict
from neuroerp_ci.store import HistoryStore

from .conftest import T0, at, make_report, record


def p95_runs(
    store: HistoryStore,
    runs: int = 5,
    window_days: float | None = None,
    exclude_run_id: str | None = None,
    now: datetime | None = None,
) -> tuple[str, ...]:
    """Which runs form the baseline of api/p95_ms of staging on erp."""
    provider = store.baseline_provider("staging", "erp", runs, window_days, exclude_run_id, now)
    baseline = provider.baseline("api", "p95_ms")
    return () if baseline is None else baseline.runs


def test_the_provider_meets_the_gates_protocol(store: HistoryStore) -> None:
    provider: BaselineProvider = store.baseline_provider("staging", "erp")
    assert provider.baseline("api", "p95_ms") is None  # no runs yet: no baseline, not zero


def test_the_last_n_passing_runs_newest_first(store: HistoryStore) -> None:
    for i in range(7):
        record(store, make_report(f"r{i}", started=at(i), latency=100.0 + i, samples=10))
    baseline = store.baseline_provider("staging", "erp", runs=5).baseline("api", "p95_ms")
    assert baseline is not None
    assert baseline.runs == ("r6", "r5", "r4", "r3", "r2")
    assert baseline.values == (106.0, 105.0, 104.0, 103.0, 102.0)
    assert baseline.value == 104.0  # the median
    assert len(baseline.samples) == 50 and not baseline.pinned
    assert baseline.samples[:10] == make_report("x", latency=106.0, samples=10).checks[0].metrics[
        "p95_ms"
    ].samples


def test_failed_running_aborted_and_invalidated_runs_never_count(store: HistoryStore) -> None:
    record(store, make_report("good-1", started=at(0)))
    record(store, make_report("warn", started=at(1), verdict=Verdict.WARN))
    record(store, make_report("failed", started=at(2), verdict=Verdict.FAIL))
    record(store, make_report("invalid", started=at(3)))
    store.invalidate("invalid", "noisy neighbour")
    store.begin_run("killed", "staging", "erp", "v1", {}, at(4))
    store.begin_run("aborted", "staging", "erp", "v1", {}, at(5))
    store.abort_run("aborted", "KeyboardInterrupt")
    assert p95_runs(store) == ("warn", "good-1")


def test_other_stages_and_targets_never_count(store: HistoryStore) -> None:
    record(store, make_report("dev", stage="development", started=at(0)))
    record(store, make_report("other", target="crm", started=at(1)))
    record(store, make_report("mine", started=at(2)))
    assert p95_runs(store) == ("mine",)


def test_only_runs_that_measured_the_metric_with_a_completed_check(store: HistoryStore) -> None:
    record(store, make_report("measured", started=at(0)))
    record(store, make_report("errored", started=at(1), check_status=CheckStatus.ERROR,
                              verdict=Verdict.WARN))  # fmt: skip
    nan = make_report("nan", started=at(2))
    nan.checks[0].metrics["p95_ms"] = Metric("p95_ms", math.nan, "ms")
    record(store, nan)
    assert p95_runs(store) == ("measured",)
    extra = make_report("extra", started=at(3), extra_metrics={"rows": 12.0})
    record(store, extra)
    provider = store.baseline_provider("staging", "erp")
    rows = provider.baseline("api", "rows")
    assert rows is not None and rows.runs == ("extra",) and rows.samples == ()
    assert provider.baseline("api", "no_such_metric") is None


def test_the_window_drops_old_runs(store: HistoryStore) -> None:
    record(store, make_report("ancient", started=at(0)))
    record(store, make_report("recent", started=at(60 * 24 * 9)))
    now = T0 + timedelta(days=10)
    assert p95_runs(store, window_days=2, now=now) == ("recent",)
    assert p95_runs(store, window_days=20, now=now) == ("recent", "ancient")
    assert p95_runs(store, window_days=0.5, now=now) == ()


def test_the_run_being_judged_is_excluded(store: HistoryStore) -> None:
    record(store, make_report("earlier", started=at(0)))
    record(store, make_report("current", started=at(1)))
    assert p95_runs(store, exclude_run_id="current") == ("earlier",)


def test_a_pinned_run_is_the_whole_baseline_whatever_its_age(store: HistoryStore) -> None:
    record(store, make_report("pinned", started=at(0), latency=90.0))
    for i in range(1, 4):
        record(store, make_report(f"r{i}", started=at(i)))
    store.pin("pinned")
    provider = store.baseline_provider(
        "staging", "erp", window_days=0.001, now=T0 + timedelta(days=30)
    )
    baseline = provider.baseline("api", "p95_ms")
    assert baseline is not None
    assert (baseline.runs, baseline.values, baseline.pinned) == (("pinned",), (90.0,), True)
    assert provider.pinned_run() == "pinned"
    # The pinned run did not measure this metric: no baseline, not a fallback to other runs.
    record(store, make_report("r9", started=at(9), extra_metrics={"rows": 1.0}))
    assert store.baseline_provider("staging", "erp").baseline("api", "rows") is None
    store.unpin("staging", "erp")
    assert p95_runs(store, runs=2) == ("r9", "r3")


def test_metrics_lists_what_candidate_runs_measured(store: HistoryStore) -> None:
    record(store, make_report("a", started=at(0), extra_metrics={"rows": 3.0}))
    record(store, make_report("f", started=at(1), verdict=Verdict.FAIL, extra_metrics={"x": 1.0}))
    provider = store.baseline_provider("staging", "erp")
    assert provider.metrics() == [
        ("api", "error_rate"), ("api", "p95_ms"), ("api", "rows"), ("scan", "loc")
    ]  # fmt: skip


def test_a_baseline_needs_at_least_one_run(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="at least 1 run"):
        store.baseline_provider("staging", "erp", runs=0)
