"""Store fixtures: a fresh SQLite store per test, a throw-away PostgreSQL database per session,
and a builder for realistic stage reports."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
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
from neuroerp_ci.store import HistoryStore, open_store

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    """An ISO start time ``minutes`` after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat()


def make_report(
    run_id: str,
    *,
    stage: str = "staging",
    target: str = "erp",
    version: str = "v1",
    verdict: Verdict = Verdict.PASS,
    started: str | None = None,
    latency: float = 100.0,
    samples: int = 50,
    check_status: CheckStatus = CheckStatus.OK,
    extra_metrics: dict[str, float] | None = None,
) -> StageReport:
    """A report with an ``api`` check (p95_ms with samples), a findings check and outcomes."""
    started = started or at(0)
    metrics = {
        "p95_ms": Metric(
            "p95_ms",
            latency,
            "ms",
            Direction.LOWER,
            tuple(latency * (0.9 + 0.2 * i / max(samples - 1, 1)) for i in range(samples)),
        ),
        "error_rate": Metric("error_rate", 0.0, "ratio"),
    }
    for name, value in (extra_metrics or {}).items():
        metrics[name] = Metric(name, value)
    api = CheckResult(
        "api",
        "http_probe",
        check_status,
        reason="" if check_status is CheckStatus.OK else "target not available",
        duration_s=1.5,
        metrics=metrics if check_status is CheckStatus.OK else {},
        tool_versions={"httpx": "0.28.1"},
    )
    scan = CheckResult(
        "scan",
        "bandit",
        CheckStatus.OK,
        duration_s=2.0,
        metrics={"loc": Metric("loc", 1234.0, "count")},
        findings=[
            Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "app.py:12", "HIGH"),
            Finding("bandit", "B101", FindingSeverity.LOW, "assert used", "app.py:40"),
        ],
        tool_versions={"bandit": "1.9.4"},
    )
    outcomes = [
        Outcome(
            "api",
            "p95_ms <= +10 %",
            OutcomeStatus.PASS,
            Severity.BLOCKING,
            latency,
            "<= 110",
            "api: p95_ms 100 within +10 %",
            baseline=100.0,
            change_pct=0.0,
            p_value=0.4,
            effect=0.5,
            effect_ci=(-1.0, 2.0),
            baseline_runs=("r-old-1", "r-old-2"),
        ),
        Outcome(
            "scan",
            "findings(high+) <= 1",
            OutcomeStatus.PASS,
            Severity.BLOCKING,
            1.0,
            "<= 1",
            "scan: 1 high finding",
        ),
    ]
    return StageReport(
        run_id=run_id,
        stage=stage,
        version=version,
        target=target,
        verdict=verdict,
        started_at=started,
        finished_at=(datetime.fromisoformat(started) + timedelta(seconds=30)).isoformat(),
        duration_s=30.0,
        checks=[api, scan],
        outcomes=outcomes,
        summary=Summary(stage, verdict),
    )


def record(
    store: HistoryStore, report: StageReport, fingerprint: dict[str, object] | None = None
) -> StageReport:
    """begin_run + finish_run, as the runner does."""
    store.begin_run(
        report.run_id,
        report.stage,
        report.target,
        report.version,
        fingerprint or {"python": "3.11"},
        report.started_at,
    )
    store.finish_run(report)
    return report


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'history.sqlite3'}"


@pytest.fixture
def store(store_url: str) -> Iterator[HistoryStore]:
    with open_store(store_url) as opened:
        yield opened


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards; its URL."""
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}")
    name = f"neuroerp_ci_test_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied before each test."""
    engine = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield pg_database
