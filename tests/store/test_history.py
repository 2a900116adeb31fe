"""Recording runs and reading them back: begin/finish, abort, listing, pin/unpin/invalidate,
``passed`` for stage promotion."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from neuroerp_ci.model import CheckStatus, Metric, Verdict
from neuroerp_ci.store import HistoryStore, RunStatus, StoreError, UnknownRunError
from neuroerp_ci.store.schema import check_results, findings, metrics, outcomes, runs

from .conftest import at, make_report, record


def rows(store: HistoryStore, table, run_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every row of a child ``table`` of ``run_id``, as dicts, in insertion order."""
    query = (
        select(table)
        .join(runs, runs.c.pk == table.c.run_pk)
        .where(runs.c.run_id == run_id)
        .order_by(table.c.pk)
    )
    with store._read("test") as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def test_a_begun_run_is_running_until_it_finishes(store: HistoryStore) -> None:
    store.begin_run("r1", "staging", "erp", "abc123", {"python": "3.11"}, at(0))
    begun = store.run("r1")
    assert (begun.status, begun.verdict, begun.state) == (
        RunStatus.RUNNING, None, "running/aborted?"
    )  # fmt: skip
    assert begun.started_at == "2026-03-01T12:00:00+00:00"
    assert rows(store, metrics, "r1") == []
    store.finish_run(make_report("r1", version="abc123"))
    done = store.run("r1")
    assert (done.status, done.verdict, done.state) == (RunStatus.FINISHED, Verdict.PASS, "finished")
    assert done.finished_at == "2026-03-01T12:00:30+00:00" and done.duration_s == 30.0
    assert done.summary == "staging: PASS"


def test_finish_writes_checks_metrics_with_samples_findings_and_outcomes(
    store: HistoryStore,
) -> None:
    report = make_report("r1", samples=7)
    report.checks[0].metrics["nan_metric"] = Metric("nan_metric", math.nan, samples=(1.0, math.inf))
    record(store, report)
    checks = rows(store, check_results, "r1")
    assert [(c["check_id"], c["kind"], c["status"]) for c in checks] == [
        ("api", "http_probe", "ok"), ("scan", "bandit", "ok")
    ]  # fmt: skip
    measured = {(m["check_id"], m["name"]): m for m in rows(store, metrics, "r1")}
    p95 = measured[("api", "p95_ms")]
    assert p95["value"] == 100.0 and p95["unit"] == "ms" and p95["direction"] == "lower"
    assert json.loads(p95["samples"]) == list(report.checks[0].metrics["p95_ms"].samples)
    nan = measured[("api", "nan_metric")]
    assert nan["value"] is None and json.loads(nan["samples"]) == [1.0, None]
    assert measured[("scan", "loc")]["value"] == 1234.0
    found = rows(store, findings, "r1")
    assert [(f["rule"], f["severity"], f["location"]) for f in found] == [
        ("B602", "high", "app.py:12"), ("B101", "low", "app.py:40")
    ]  # fmt: skip
    concluded = rows(store, outcomes, "r1")
    assert [(o["check_id"], o["status"]) for o in concluded] == [("api", "pass"), ("scan", "pass")]
    first = concluded[0]
    keys = ("baseline", "p_value", "effect_ci_low", "effect_ci_high")
    assert [first[k] for k in keys] == [100.0, 0.4, -1.0, 2.0]
    assert json.loads(first["baseline_runs"]) == ["r-old-1", "r-old-2"]


def test_the_fingerprint_gains_the_tool_versions_the_checks_saw(store: HistoryStore) -> None:
    record(store, make_report("r1"), {"python": "3.11", "tools": {"git": "2.39"}})
    assert store.run("r1").fingerprint == {
        "python": "3.11",
        "tools": {"bandit": "1.9.4", "git": "2.39", "httpx": "0.28.1"},
    }


def test_a_run_never_begun_is_recorded_whole_by_finish(store: HistoryStore) -> None:
    store.finish_run(make_report("solo"))
    solo = store.run("solo")
    assert solo.status is RunStatus.FINISHED and solo.fingerprint["python"]
    assert len(rows(store, metrics, "solo")) == 3


def test_a_finished_run_cannot_be_finished_or_begun_again(store: HistoryStore) -> None:
    record(store, make_report("r1"))
    with pytest.raises(StoreError, match="run r1 is finished already"):
        store.finish_run(make_report("r1", verdict=Verdict.FAIL))
    with pytest.raises(StoreError, match="run r1 exists already"):
        store.begin_run("r1", "staging", "erp", "v1", {}, at(1))
    assert store.run("r1").verdict is Verdict.PASS
    assert len(rows(store, check_results, "r1")) == 2  # nothing written twice


def test_a_failed_finish_writes_nothing(store: HistoryStore) -> None:
    store.begin_run("r1", "staging", "erp", "v1", {}, at(0))
    broken = make_report("r1")
    broken.checks.append(broken.checks[0])  # the same check twice: a unique key breaks
    with pytest.raises(StoreError, match="cannot record run r1"):
        store.finish_run(broken)
    assert store.run("r1").status is RunStatus.RUNNING
    assert rows(store, check_results, "r1") == [] and rows(store, metrics, "r1") == []
    assert store.integrity_check() == []


def test_abort_marks_only_a_running_run(store: HistoryStore) -> None:
    store.begin_run("r1", "staging", "erp", "v1", {}, at(0))
    store.abort_run("r1", "KeyboardInterrupt")
    aborted = store.run("r1")
    assert aborted.status is RunStatus.ABORTED and aborted.state == "aborted"
    assert aborted.summary == "aborted: KeyboardInterrupt"
    record(store, make_report("r2"))
    store.abort_run("r2", "too late")
    assert store.run("r2").status is RunStatus.FINISHED


def test_runs_are_listed_newest_first_and_filtered(store: HistoryStore) -> None:
    record(store, make_report("a", started=at(0)))
    record(store, make_report("b", started=at(2), stage="development"))
    record(store, make_report("c", started=at(1), target="other"))
    store.begin_run("d", "staging", "erp", "v1", {}, at(3))
    assert [r.run_id for r in store.runs()] == ["d", "b", "c", "a"]
    assert [r.run_id for r in store.runs(stage="staging")] == ["d", "c", "a"]
    assert [r.run_id for r in store.runs(stage="staging", target="erp")] == ["d", "a"]
    assert [r.run_id for r in store.runs(limit=2)] == ["d", "b"]
    assert store.count_runs() == 4 and store.count_runs(RunStatus.FINISHED) == 3


def test_an_unknown_run_is_named(store: HistoryStore) -> None:
    with pytest.raises(UnknownRunError, match="no run 'nope'"):
        store.run("nope")
    with pytest.raises(UnknownRunError):
        store.pin("nope")
    with pytest.raises(UnknownRunError):
        store.invalidate("nope", "why")


def test_passed_is_the_latest_passing_valid_run_of_that_version(store: HistoryStore) -> None:
    assert store.passed("development", "erp", "v1") is None
    record(store, make_report("old", stage="development", started=at(0)))
    record(store, make_report("warn", stage="development", started=at(1), verdict=Verdict.WARN))
    record(store, make_report("fail", stage="development", started=at(2), verdict=Verdict.FAIL))
    record(store, make_report("v2", stage="development", started=at(3), version="v2"))
    store.begin_run("running", "development", "erp", "v1", {}, at(4))
    found = store.passed("development", "erp", "v1")
    assert found is not None and found.run_id == "warn"
    store.invalidate("warn", "flaky runner")
    found = store.passed("development", "erp", "v1")
    assert found is not None and found.run_id == "old"
    assert store.passed("development", "other-target", "v1") is None
    assert store.passed("staging", "erp", "v1") is None


def test_pin_keeps_one_pinned_run_per_stage_and_target(store: HistoryStore) -> None:
    record(store, make_report("a", started=at(0)))
    record(store, make_report("b", started=at(1)))
    record(store, make_report("dev", stage="development", started=at(2)))
    assert store.pin("a").pinned
    store.pin("dev")
    assert store.pin("b").pinned
    assert {r.run_id: r.pinned for r in store.runs()} == {"a": False, "b": True, "dev": True}
    unpinned = store.unpin("staging", "erp")
    assert unpinned is not None and unpinned.run_id == "b"
    assert store.unpin("staging", "erp") is None
    assert store.run("dev").pinned


@pytest.mark.parametrize("state", ["fail", "running", "invalidated"])
def test_only_a_finished_passing_valid_run_can_be_pinned(store: HistoryStore, state: str) -> None:
    if state == "running":
        store.begin_run("r", "staging", "erp", "v1", {}, at(0))
    else:
        record(store, make_report("r", verdict=Verdict.FAIL if state == "fail" else Verdict.PASS))
    if state == "invalidated":
        store.invalidate("r", "wrong build")
    with pytest.raises(UnknownRunError, match="run r cannot be pinned: it is") as caught:
        store.pin("r")
    assert {"fail": "finished FAIL", "running": "running", "invalidated": "wrong build"}[
        state
    ] in str(caught.value)


def test_invalidating_keeps_the_reason_and_drops_the_pin(store: HistoryStore) -> None:
    record(store, make_report("r"))
    store.pin("r")
    with pytest.raises(StoreError, match="needs a reason"):
        store.invalidate("r", "  ")
    gone = store.invalidate("r", " load generator was throttled ")
    assert gone.invalidated_reason == "load generator was throttled" and not gone.pinned
    assert not gone.passing


def test_an_errored_check_is_recorded_without_metrics(store: HistoryStore) -> None:
    record(store, make_report("r", check_status=CheckStatus.ERROR, verdict=Verdict.FAIL))
    checks = {c["check_id"]: c for c in rows(store, check_results, "r")}
    assert checks["api"]["status"] == "error" and checks["api"]["reason"] == "target not available"
    assert [m["check_id"] for m in rows(store, metrics, "r")] == ["scan"]


def test_run_records_serialise_for_scripts(store: HistoryStore) -> None:
    record(store, make_report("r"))
    data = store.run("r").to_dict()
    assert list(data) == [
        "run_id", "stage", "target", "version", "status", "verdict", "started_at",
        "finished_at", "duration_s", "pinned", "invalidated_reason", "summary", "fingerprint",
    ]  # fmt: skip
    assert json.loads(json.dumps(data)) == data
