"""Baseline hygiene (issue 11 item 1): a run becomes a metric's baseline only if every
condition on that metric passed in it, so a slowdown that only warns never turns into the
norm it is compared with; and store migration 3, which records what that rule reads."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, select, text

from neuroerp_ci.checks import Check, KindSettings
from neuroerp_ci.cli import main
from neuroerp_ci.config import ConditionSpec, Stage, load_pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.gates import decide, evaluate_stage
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Confirmation,
    Direction,
    Metric,
    NoiseReading,
    Outcome,
    OutcomeStatus,
    Priority,
    Severity,
    StageReport,
    Summary,
    Verdict,
)
from neuroerp_ci.store import HistoryStore, open_store
from neuroerp_ci.store.connect import WRITE_OPTION, create_store_engine
from neuroerp_ci.store.records import confirmations_from_json, noise_from_json
from neuroerp_ci.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    check_results,
    lock_for_migration,
    migrate,
    outcomes,
    runs,
)

from .conftest import at, make_report, record

# -- helpers ---------------------------------------------------------------------------------


def on_p95(
    status: OutcomeStatus,
    *,
    metric: str | None = "p95_ms",
    check: str = "api",
    no_baseline: bool = False,
    counts_as: OutcomeStatus | None = None,
    condition: str = "p95_ms no regression (alpha 0.01, min effect 5 %)",
) -> Outcome:
    """An outcome of a condition on ``check``'s ``metric`` with that status."""
    reason = f"{check}: {metric} {status.value}: shift +61.0 % beyond +5 %"
    return Outcome(
        check,
        condition,
        status,
        Severity.WARNING,
        160.0,
        "no shift beyond +5 % (alpha 0.01)",
        reason,
        metric=metric,
        no_baseline=no_baseline,
        breached=status is not OutcomeStatus.PASS and not no_baseline,
        counts_as=counts_as,
    )


def run_with(
    store: HistoryStore,
    run_id: str,
    minute: float,
    *extra: Outcome,
    verdict: Verdict | None = None,
) -> StageReport:
    """Record a run (conftest's report: api p95_ms with samples) with ``extra`` outcomes."""
    report = make_report(run_id, started=at(minute), latency=100.0 + minute)
    worst = decide([*report.outcomes, *extra])
    report = replace(report, outcomes=[*report.outcomes, *extra], verdict=verdict or worst)
    return record(store, report)


def baseline_runs(store: HistoryStore, include: Any = "pass", **kwargs: Any) -> tuple[str, ...]:
    provider = store.baseline_provider("staging", "erp", include=include, **kwargs)
    found = provider.baseline("api", "p95_ms")
    return () if found is None else found.runs


# -- the selection rule ----------------------------------------------------------------------


def test_a_run_whose_condition_on_the_metric_warned_is_left_out(store: HistoryStore) -> None:
    run_with(store, "r0", 0)
    run_with(store, "r1", 1, on_p95(OutcomeStatus.WARN))
    run_with(store, "r2", 2, on_p95(OutcomeStatus.PASS))
    assert baseline_runs(store) == ("r2", "r0")
    assert baseline_runs(store, "pass_or_warn") == ("r2", "r1", "r0")


@pytest.mark.parametrize(
    ("outcome", "kept_with_pass", "kept_with_pass_or_warn"),
    [
        (on_p95(OutcomeStatus.PASS), True, True),
        (on_p95(OutcomeStatus.WARN), False, True),
        (on_p95(OutcomeStatus.INFO), False, True),
        (on_p95(OutcomeStatus.INCONCLUSIVE, counts_as=OutcomeStatus.WARN), False, True),
        (on_p95(OutcomeStatus.INCONCLUSIVE), False, True),  # counts as WARN when unset
        (on_p95(OutcomeStatus.INCONCLUSIVE, counts_as=OutcomeStatus.FAIL), False, False),
        (on_p95(OutcomeStatus.FAIL), False, False),
    ],
    ids=["pass", "warn", "info", "inconclusive-warn", "inconclusive", "inconclusive-fail", "fail"],
)
def test_which_outcomes_keep_a_run_out_with_each_include(
    store: HistoryStore, outcome: Outcome, kept_with_pass: bool, kept_with_pass_or_warn: bool
) -> None:
    # The verdict stays WARN: only the outcome decides here (a FAIL verdict is never a candidate).
    run_with(store, "r0", 0, outcome, verdict=Verdict.WARN)
    assert (baseline_runs(store) == ("r0",)) is kept_with_pass
    assert (baseline_runs(store, "pass_or_warn") == ("r0",)) is kept_with_pass_or_warn


def test_an_outcome_that_only_said_no_baseline_yet_keeps_nothing_out(store: HistoryStore) -> None:
    """Else the first run could never be a baseline, nor any after it."""
    run_with(store, "r0", 0, on_p95(OutcomeStatus.WARN, no_baseline=True))
    run_with(store, "r1", 1, on_p95(OutcomeStatus.FAIL, no_baseline=True), verdict=Verdict.WARN)
    assert baseline_runs(store) == ("r1", "r0")
    assert store.baseline_provider("staging", "erp").left_out("api", "p95_ms") == []


def test_legacy_outcomes_without_a_metric_keep_nothing_out(store: HistoryStore) -> None:
    """Rows written before migration 3 do not say which metric their condition limits."""
    run_with(store, "r0", 0, on_p95(OutcomeStatus.WARN, metric=None))
    assert baseline_runs(store) == ("r0",)


def test_only_conditions_on_that_check_and_metric_count(store: HistoryStore) -> None:
    run_with(store, "r0", 0, on_p95(OutcomeStatus.WARN, metric="error_rate"))
    run_with(store, "r1", 1, on_p95(OutcomeStatus.WARN, check="scan"))
    assert baseline_runs(store) == ("r1", "r0")
    provider = store.baseline_provider("staging", "erp")
    assert provider.baseline("api", "error_rate") is not None
    assert provider.baseline("api", "error_rate").runs == ("r1",)  # type: ignore[union-attr]


def test_the_last_n_runs_are_counted_among_the_clean_ones(store: HistoryStore) -> None:
    """Left-out runs do not use up places: the baseline reaches back for clean runs."""
    for i in range(3):
        run_with(store, f"ok{i}", i)
    for i in range(3, 8):
        run_with(store, f"slow{i}", i, on_p95(OutcomeStatus.WARN))
    assert baseline_runs(store, runs=3) == ("ok2", "ok1", "ok0")


def test_a_pinned_run_is_the_baseline_whatever_its_outcomes(store: HistoryStore) -> None:
    """Whoever pinned a WARN run chose it; hygiene does not second-guess a pin."""
    run_with(store, "r0", 0)
    run_with(store, "r1", 1, on_p95(OutcomeStatus.WARN))
    store.pin("r1")
    provider = store.baseline_provider("staging", "erp")
    assert baseline_runs(store) == ("r1",)
    assert provider.left_out("api", "p95_ms") == []


def test_left_out_names_the_run_its_verdict_and_the_outcome_newest_first(
    store: HistoryStore,
) -> None:
    run_with(store, "r0", 0)
    run_with(store, "r1", 1, on_p95(OutcomeStatus.WARN))
    run_with(
        store,
        "r2",
        2,
        on_p95(OutcomeStatus.INCONCLUSIVE, counts_as=OutcomeStatus.WARN),
        on_p95(OutcomeStatus.WARN, condition="p95_ms <= baseline +20 %"),
    )
    run_with(store, "r3", 3, on_p95(OutcomeStatus.FAIL))  # FAIL verdict: never a candidate
    gone = store.baseline_provider("staging", "erp").left_out("api", "p95_ms")
    assert [(g.run_id, g.verdict, g.status, g.condition) for g in gone] == [
        ("r2", Verdict.WARN, OutcomeStatus.INCONCLUSIVE, on_p95(OutcomeStatus.PASS).condition),
        ("r2", Verdict.WARN, OutcomeStatus.WARN, "p95_ms <= baseline +20 %"),
        ("r1", Verdict.WARN, OutcomeStatus.WARN, on_p95(OutcomeStatus.PASS).condition),
    ]
    assert gone[-1].reason == "api: p95_ms warn: shift +61.0 % beyond +5 %"
    assert [g.run_id for g in store.baseline_provider("staging", "erp").left_out(
        "api", "p95_ms", limit=1)] == ["r2", "r2"]  # fmt: skip
    relaxed = store.baseline_provider("staging", "erp", include="pass_or_warn")
    assert relaxed.left_out("api", "p95_ms") == []


def test_left_out_keeps_to_the_window(store: HistoryStore) -> None:
    run_with(store, "old", 0, on_p95(OutcomeStatus.WARN))
    run_with(store, "new", 60 * 24 * 10, on_p95(OutcomeStatus.WARN))
    now = datetime.fromisoformat(at(60 * 24 * 11))
    provider = store.baseline_provider("staging", "erp", window_days=5, now=now)
    assert [g.run_id for g in provider.left_out("api", "p95_ms")] == ["new"]


# -- what migration 3 records ----------------------------------------------------------------


def test_the_new_outcome_columns_and_the_noise_reading_are_written(
    store: HistoryStore, store_url: str
) -> None:
    noise = NoiseReading(
        noisy=True,
        reason="load 3.1 on 2 cores",
        allowance_pct=40.0,
        load_avg=(1.5, 3.1),
        cpus=2,
        run_queue_max=5,
        steal_pct=None,
        probe_ms=(12.0, 19.5),
        probe_reference_ms=11.8,
        window_s=30.0,
    )
    outcome = replace(
        on_p95(OutcomeStatus.INCONCLUSIVE, counts_as=OutcomeStatus.FAIL),
        mde_pct=38.5,
        needed_n=120,
        confirmations=(Confirmation(1, 131.0, True, "api: p95_ms 131 > 110"),),
    )
    report = make_report("r0", started=at(0))
    report.checks[0].noise = noise
    record(store, replace(report, outcomes=[outcome], verdict=Verdict.FAIL))
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        row = conn.execute(select(outcomes)).one()
        noise_of = dict(conn.execute(select(check_results.c.check_id, check_results.c.noise)).all())
    engine.dispose()
    assert (row.status, row.metric, row.no_baseline, row.breached, row.counts_as) == (
        "inconclusive", "p95_ms", False, True, "fail",
    )  # fmt: skip
    assert (row.mde_pct, row.needed_n) == (38.5, 120)
    assert confirmations_from_json(row.confirmations) == outcome.confirmations
    assert noise_from_json(noise_of["api"]) == noise
    assert noise_of["scan"] is None


def test_non_finite_noise_figures_are_stored_as_null(store: HistoryStore, store_url: str) -> None:
    report = make_report("r0", started=at(0))
    report.checks[0].noise = NoiseReading(False, "quiet", probe_ms=(math.nan, 2.0))
    record(store, report)
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        stored = conn.scalar(select(check_results.c.noise).where(check_results.c.check_id == "api"))
    engine.dispose()
    assert json.loads(stored)["probe_ms"] == [None, 2.0]
    back = noise_from_json(stored)
    assert back is not None and math.isnan(back.probe_ms[0]) and back.probe_ms[1] == 2.0


# -- migration from a version 2 store, on SQLite and PostgreSQL ------------------------------

V1_OUTCOME = (
    "INSERT INTO outcomes (run_pk, check_id, condition, status, severity, value, target,"
    " baseline_runs, reason) VALUES (:pk, 'api', 'p95_ms <= +10 %', 'warn', 'warning', 160.0,"
    " '<= 110', '[]', 'api: p95_ms 160 above +10 %')"
)


def make_v2_store(url: str) -> None:
    """A store as neuroerp-ci wrote it before migration 3: one finished WARN run with a
    completed api check, its p95_ms metric and a (metric-less) WARN outcome."""
    engine = create_store_engine(url)
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            lock_for_migration(conn)
            assert migrate(conn, MIGRATIONS[:2]) == [1, 2]
            conn.execute(
                text(
                    "INSERT INTO runs (run_id, stage, target, version, fingerprint, verdict,"
                    " status, summary, started_at, finished_at, pinned) VALUES ('old', 'staging',"
                    " 'erp', 'v1', '{}', 'WARN', 'finished', '', :t, :t, :f)"
                ),
                {"t": datetime(2026, 3, 1, 11), "f": False},
            )
            pk = conn.scalar(text("SELECT pk FROM runs WHERE run_id = 'old'"))
            conn.execute(
                text(
                    "INSERT INTO check_results (run_pk, check_id, kind, status, reason)"
                    " VALUES (:pk, 'api', 'http_probe', 'ok', '')"
                ),
                {"pk": pk},
            )
            conn.execute(
                text(
                    "INSERT INTO metrics (run_pk, check_id, name, value, unit, direction, samples)"
                    " VALUES (:pk, 'api', 'p95_ms', 160.0, 'ms', 'lower', '[150.0, 160.0]')"
                ),
                {"pk": pk},
            )
            conn.execute(text(V1_OUTCOME), {"pk": pk})
    engine.dispose()


def check_upgraded(url: str) -> None:
    make_v2_store(url)
    with open_store(url) as store:
        assert store.schema_versions() == list(range(1, SCHEMA_VERSION + 1)) == [1, 2, 3, 4, 5]
        assert store.integrity_check() == []
        # the legacy row keeps its data, gets the defaults, and keeps nothing out
        assert baseline_runs(store) == ("old",)
        assert store.baseline_provider("staging", "erp").left_out("api", "p95_ms") == []
        # a new run records the new columns, "inconclusive" (12 characters) included
        run_with(store, "new", 120, on_p95(OutcomeStatus.INCONCLUSIVE))
        assert baseline_runs(store) == ("old",)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(runs.c.run_id, outcomes)
            .join(runs, runs.c.pk == outcomes.c.run_pk)
            .where(outcomes.c.check_id == "api")
            .order_by(outcomes.c.pk)
        ).all()
        columns = {c["name"]: c for c in inspect(conn).get_columns("outcomes")}
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    legacy = rows[0]
    assert (legacy.run_id, legacy.reason, legacy.value) == (
        "old", "api: p95_ms 160 above +10 %", 160.0,
    )  # fmt: skip
    assert (legacy.metric, legacy.no_baseline, legacy.breached, legacy.confirmations) == (
        None, False, None, "[]",
    )  # fmt: skip
    assert [r.status for r in rows if r.run_id == "new"][-1] == "inconclusive"
    assert "calibrations" in tables
    if url.startswith("postgresql"):
        assert columns["status"]["type"].length == 16


def test_a_version_2_sqlite_store_is_upgraded_keeping_its_runs(store_url: str) -> None:
    Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    check_upgraded(store_url)


@pytest.mark.integration
def test_a_version_2_postgresql_store_is_upgraded_keeping_its_runs(pg_url: str) -> None:
    check_upgraded(pg_url)


@pytest.mark.integration
def test_a_fresh_postgresql_store_records_inconclusive_outcomes(pg_url: str) -> None:
    with open_store(pg_url) as store:
        run_with(store, "r0", 0)
        run_with(store, "r1", 1, on_p95(OutcomeStatus.INCONCLUSIVE, counts_as=OutcomeStatus.WARN))
        assert baseline_runs(store) == ("r0",)
        assert baseline_runs(store, "pass_or_warn") == ("r1", "r0")
        [gone] = store.baseline_provider("staging", "erp").left_out("api", "p95_ms")
        assert (gone.run_id, gone.status) == ("r1", OutcomeStatus.INCONCLUSIVE)
        assert store.integrity_check() == []


def test_a_fresh_store_and_an_upgraded_one_have_the_same_columns(
    tmp_path: Path, store_url: str
) -> None:
    open_store(store_url).close()
    upgraded = f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
    make_v2_store(upgraded)
    open_store(upgraded).close()

    def shape(url: str) -> dict[str, list[tuple[str, str, bool, Any]]]:
        engine = create_engine(url)
        with engine.connect() as conn:
            seen = inspect(conn)
            found = {
                t: [
                    (c["name"], str(c["type"]), c["nullable"], c["default"])
                    for c in seen.get_columns(t)
                ]  # fmt: skip
                for t in seen.get_table_names()
            }
        engine.dispose()
        return found

    assert shape(store_url) == shape(upgraded)


# -- baseline show ---------------------------------------------------------------------------

PIPELINE = """
[target]
name = "erp"

[store]
url = "sqlite:///state/history.sqlite3"

[baseline]
runs = 3
{include}

[[checks]]
id = "api"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "print(1)"] }}

[stages.staging]
checks = ["api"]
"""


def show(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str, include: str = "") -> str:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE.format(include=include), encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        main(["baseline", "show", "staging", "-c", str(config), *argv])
    captured = capsys.readouterr()
    assert (stop.value.code, captured.err) == (0, "")
    return captured.out if "--json" in argv else " ".join(captured.out.split())  # unwrapped


@pytest.fixture
def shown_store(tmp_path: Path) -> HistoryStore:
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'history.sqlite3'}")
    run_with(store, "r0", 0)
    run_with(store, "r1", 1, on_p95(OutcomeStatus.WARN))
    run_with(store, "r2", 2, on_p95(OutcomeStatus.PASS))
    return store


def test_baseline_show_lists_the_runs_left_out_and_why(
    shown_store: HistoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = show(tmp_path, capsys, "--metric", "p95_ms")
    assert "every condition on the metric passed" in out
    assert "r2, r0" in out
    assert (
        "left out of api p95_ms: run r1 (WARN): api p95_ms no regression (alpha 0.01, min effect"
        " 5 %) warn: api: p95_ms warn: shift +61.0 % beyond +5 %"
    ) in out
    shown = json.loads(show(tmp_path, capsys, "--json", "--check", "api"))
    assert shown["include"] == "pass"
    assert [m["runs"] for m in shown["metrics"] if m["metric"] == "p95_ms"] == [["r2", "r0"]]
    assert [(g["metric"], g["run_id"], g["verdict"], g["status"]) for g in shown["left_out"]] == [
        ("p95_ms", "r1", "WARN", "warn")
    ]
    shown_store.close()


def test_baseline_show_with_pass_or_warn_leaves_a_warned_run_in(
    shown_store: HistoryStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = show(tmp_path, capsys, "--metric", "p95_ms", include='include = "pass_or_warn"')
    assert "no condition on the metric failed" in out
    assert "r2, r1, r0" in out and "left out" not in out
    shown_store.close()


def test_baseline_show_lists_left_out_runs_when_no_baseline_formed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state' / 'history.sqlite3'}") as store:
        run_with(store, "r0", 0, on_p95(OutcomeStatus.WARN))
        out = show(tmp_path, capsys, "--metric", "p95_ms")
    assert "No baseline yet for stage staging of erp" in out
    assert "left out of api p95_ms: run r0 (WARN)" in out


# -- MUST SHOW: a warned slowdown never becomes its own baseline -----------------------------

SAMPLES = 80


def api_result(rng: np.random.Generator, scale: float) -> CheckResult:
    """One http check's latencies: ~N(20, 1) ms, times ``scale``."""
    samples = tuple(float(s) for s in rng.normal(20.0, 1.0, SAMPLES) * scale)
    p95 = float(np.percentile(samples, 95))
    result = CheckResult("api", "http", CheckStatus.OK, duration_s=1.0)
    result.add_metric(Metric("p95_ms", p95, "ms", Direction.LOWER, samples))
    return result


def judge_and_record(
    store: HistoryStore, stage: Stage, run_id: str, minute: int, result: CheckResult, include: Any
) -> StageReport:
    """What the runner does with a stage run's results: baseline, gate, verdict, record."""
    check = Check("api", "api", "http", Priority.HIGH, (), 60.0, KindSettings())
    store.begin_run(run_id, stage.name, "erp", f"v{minute}", {}, at(minute))
    provider = store.baseline_provider(
        stage.name, "erp", runs=5, exclude_run_id=run_id, include=include
    )
    found = evaluate_stage(
        stage.name, stage.conditions_by_check(), {"api": check}, {"api": result}, provider
    )
    verdict = decide(found)
    report = StageReport(
        run_id=run_id,
        stage=stage.name,
        version=f"v{minute}",
        target="erp",
        verdict=verdict,
        started_at=at(minute),
        finished_at=at(minute + 0.5),
        duration_s=30.0,
        checks=[result],
        outcomes=found,
        summary=Summary(stage.name, verdict),
    )
    store.finish_run(report)
    return report


WARNING_STAGE = Stage(
    "staging",
    ("api",),
    tuple(
        ConditionSpec.model_validate(
            {"check": "api", "metric": "p95_ms", "severity": "warning", **form}
        )  # fmt: skip
        for form in (
            {"regression": {"alpha": 0.01, "min_effect_pct": 5, "min_samples": 20}},
            {"max_increase_pct": 20},
        )
    ),
    None,
)


def slowdown_history(store: HistoryStore, include: Any) -> list[StageReport]:
    """Five fast runs, then ten runs 60 % slower; the slow runs' reports."""
    rng = np.random.default_rng(11)
    fast = [
        judge_and_record(store, WARNING_STAGE, f"fast{i}", i, api_result(rng, 1.0), include)
        for i in range(5)
    ]
    # the first run had no baseline yet: it warned so, and still became the baseline
    assert all(o.no_baseline for o in fast[0].outcomes)
    assert fast[0].verdict is Verdict.WARN
    assert all(r.verdict is Verdict.PASS for r in fast[1:])
    return [
        judge_and_record(store, WARNING_STAGE, f"slow{i}", 5 + i, api_result(rng, 1.6), include)
        for i in range(10)
    ]


def test_a_slowdown_gated_at_warning_never_becomes_the_baseline_in_10_runs(
    store: HistoryStore,
) -> None:
    slow = slowdown_history(store, "pass")
    fast_ids = {f"fast{i}" for i in range(5)}
    for report in slow:
        assert [o.status for o in report.outcomes] == [OutcomeStatus.WARN] * 2, report.run_id
        assert report.verdict is Verdict.WARN
        for outcome in report.outcomes:
            assert set(outcome.baseline_runs) == fast_ids  # always the fast runs, all of them
            assert outcome.change_pct is not None and outcome.change_pct > 40
    last = slow[-1].outcomes
    assert last[0].reason.startswith("api: p95_ms regressed")
    provider = store.baseline_provider("staging", "erp")
    left = {g.run_id for g in provider.left_out("api", "p95_ms", limit=20)}
    assert left == {f"slow{i}" for i in range(10)}


def test_without_hygiene_the_warned_slowdown_becomes_the_norm(store: HistoryStore) -> None:
    """The failure mode the rule prevents (``include = "pass_or_warn"``, the old behaviour):
    once the slow runs fill the baseline the slowdown passes."""
    slow = slowdown_history(store, "pass_or_warn")
    assert [o.status for o in slow[0].outcomes] == [OutcomeStatus.WARN] * 2
    assert slow[-1].verdict is Verdict.PASS
    assert set(slow[-1].outcomes[0].baseline_runs) <= {f"slow{i}" for i in range(10)}


def test_a_bad_include_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE.format(include='include = "warn"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(config)
    assert str(caught.value) == (
        f"{config}: baseline.include: must be one of pass, pass_or_warn (got 'warn')"
    )
    config.write_text(PIPELINE.format(include=""), encoding="utf-8")
    assert load_pipeline(config).baseline_include == "pass"
