"""The trend charts' data: every metric of the newest finished runs of a stage, any verdict."""

from __future__ import annotations

from neuroerp_ci.model import Verdict
from neuroerp_ci.run.report_history import trend_series
from neuroerp_ci.store import HistoryStore

from .conftest import at, make_report, record


def test_newest_finished_runs_of_the_stage_oldest_first_any_verdict(store: HistoryStore) -> None:
    for i, verdict in enumerate([Verdict.PASS, Verdict.FAIL, Verdict.WARN, Verdict.PASS]):
        record(store, make_report(f"r{i}", started=at(i), latency=100.0 + i, verdict=verdict))
    record(store, make_report("other", stage="development", started=at(9)))
    store.begin_run("running", "staging", "erp", "v9", {}, at(10))  # never finished

    points = store.metric_history("staging", "erp", limit=3)
    p95 = [(p.run_id, p.value, p.verdict) for p in points if p.metric == "p95_ms"]
    assert p95 == [("r1", 101.0, "FAIL"), ("r2", 102.0, "WARN"), ("r3", 103.0, "PASS")]
    assert {p.check for p in points} == {"api", "scan"}

    without = store.metric_history("staging", "erp", limit=3, before_run="r3")
    assert [p.run_id for p in without if p.metric == "p95_ms"] == ["r0", "r1", "r2"]


def test_invalidated_runs_are_no_trend(store: HistoryStore) -> None:
    record(store, make_report("r0", started=at(0)))
    record(store, make_report("r1", started=at(1), latency=900.0))
    store.invalidate("r1", "measured on a broken machine")
    series = trend_series(store.metric_history("staging", "erp"))
    assert [p.run_id for p in series[("api", "p95_ms")]] == ["r0"]
