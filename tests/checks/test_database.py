from __future__ import annotations

import importlib
import json
import secrets
import sqlite3
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from neuroerp_ci.checks.database import (
    DatabaseCheck,
    DatabaseSettings,
    StatementRun,
    leading_keyword,
    masked,
    postgres_full_scans,
    postgres_plan_lines,
    resolve_database_url,
    sqlite_full_scans,
    statement_metrics,
)
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.demo import DEMO_PIPELINE, template, write_demo
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import CheckResult, CheckStatus, OutcomeStatus, Priority
from neuroerp_ci.percentiles import percentile
from neuroerp_ci.target import free_port

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_UNREACHABLE = "PostgreSQL not reachable at 127.0.0.1:5432"

# Captured from SQLite 3.40 on the demo's revenue query (db.revenue_plan) with and without
# idx_orders_created_at, and from sub-query shapes that scan no table.
PLAN_WITH_INDEX = [
    "SEARCH o USING COVERING INDEX idx_orders_created_at (created_at>? AND created_at<?)",
    "SEARCH l USING INDEX idx_order_lines_order_id (order_id=?)",
    "USE TEMP B-TREE FOR GROUP BY",
    "USE TEMP B-TREE FOR count(DISTINCT)",
]
PLAN_WITHOUT_INDEX = [
    "SCAN l",
    "SEARCH o USING INTEGER PRIMARY KEY (rowid=?)",
    "USE TEMP B-TREE FOR GROUP BY",
    "USE TEMP B-TREE FOR count(DISTINCT)",
]
PLAN_DERIVED = [
    "CO-ROUTINE s", "COMPOUND QUERY", "LEFT-MOST SUBQUERY", "SCAN CONSTANT ROW",
    "UNION USING TEMP B-TREE", "SCAN CONSTANT ROW", "SCAN s",
]


def make_check(settings: dict[str, Any], timeout: float = 60.0, cid: str = "db") -> Check:
    return Check(
        id=cid, title=cid, kind="database", priority=Priority.HIGH, dependencies=(),
        timeout=timeout, settings=DatabaseSettings.model_validate(settings),
    )


def make_ctx(project: Path, allowed: tuple[str, ...] = LOOPBACK) -> CheckContext:
    work = project / "work"
    work.mkdir(parents=True, exist_ok=True)
    return CheckContext(
        project_dir=project, work_dir=work, python=sys.executable, env={}, allowed_hosts=allowed,
    )


def small_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT, price INTEGER)")
    conn.executemany(
        "INSERT INTO items (kind, price) VALUES (?, ?)",
        [("bolt" if i % 3 else "nut", i) for i in range(300)],
    )
    conn.commit()
    conn.close()
    return path


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


# --- pure functions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("SELECT 1", "SELECT"),
        ("  select 1", "SELECT"),
        ("-- report\n/* v2 */ (WITH a AS (SELECT 1) SELECT * FROM a)", "WITH"),
        ("explain query plan select 1", "EXPLAIN"),
        ("DELETE FROM t", "DELETE"),
        ("/* SELECT */ UPDATE t SET a = 1", "UPDATE"),
        ("PRAGMA query_only = OFF", "PRAGMA"),
        ("", ""),
        ("/* never closed SELECT", ""),
    ],
)
def test_leading_keyword(sql: str, word: str) -> None:
    assert leading_keyword(sql) == word


@pytest.mark.parametrize(
    "sql", ["DELETE FROM t", "insert into t values (1)", "DROP INDEX i", "PRAGMA query_only = 0",
            "/* SELECT */ UPDATE t SET a = 1"],
)
def test_writes_are_refused_unless_allowed(sql: str) -> None:
    statement = {"name": "w", "sql": sql}
    with pytest.raises(ValidationError, match="only SELECT, WITH and EXPLAIN run unless"):
        DatabaseSettings.model_validate({"url": "sqlite://", "statements": [statement]})
    allowed = {"url": "sqlite://", "statements": [statement], "allow_writes": True}
    assert DatabaseSettings.model_validate(allowed).allow_writes


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "sqlite://", "statements": []}, "at least 1 item"),
        ({"url": "not a url", "statements": [{"name": "a", "sql": "SELECT 1"}]},
         "not a SQLAlchemy URL"),
        ({"url": "sqlite://", "statements": [{"name": "a", "sql": "SELECT 1"},
                                             {"name": "a", "sql": "SELECT 2"}]},
         "duplicate statement names"),
        ({"url": "sqlite://", "statements": [{"name": "Bad Name", "sql": "SELECT 1"}]},
         "should match pattern"),
        ({"statements": [{"name": "a", "sql": "SELECT 1"}]}, "url"),
        ({"url": "sqlite://", "statements": [{"name": "a", "sql": "SELECT 1"}], "repeat": 0},
         "greater than or equal to 1"),
    ],
)
def test_invalid_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DatabaseSettings.model_validate(settings)


def test_settings_defaults() -> None:
    settings = DatabaseSettings.model_validate(
        {"url": "sqlite://", "statements": [{"name": "a", "sql": "SELECT 1"}]}
    )
    assert (settings.repeat, settings.warmup, settings.allow_writes) == (20, 2, False)
    assert settings.statements[0].params == {}


def test_sqlite_full_scans() -> None:
    assert sqlite_full_scans(PLAN_WITH_INDEX) == []
    assert sqlite_full_scans(PLAN_WITHOUT_INDEX) == ["l"]
    assert sqlite_full_scans(PLAN_DERIVED) == []  # constant rows and a sub-query's result
    assert sqlite_full_scans(["SCAN articles USING COVERING INDEX sqlite_autoindex_1"]) == [
        "articles"
    ]


def test_postgres_plans(assets: Path) -> None:
    index = json.loads((assets / "database" / "pg-plan-index-scan.json").read_text())
    seq = json.loads((assets / "database" / "pg-plan-seq-scan.json").read_text())
    assert postgres_full_scans(index) == []
    assert postgres_full_scans(seq) == ["orders"]
    assert postgres_plan_lines(index) == [
        "Aggregate", "  Sort", "    Index Only Scan on orders using orders_created",
    ]
    assert postgres_plan_lines(seq)[-1] == "    Seq Scan on orders"


def test_statement_metrics_use_the_shared_percentiles() -> None:
    samples = [float(v) for v in range(1, 21)]
    runs = [
        StatementRun("fast", samples_ms=samples, rows=3, plan=["SEARCH t"], full_scans=[]),
        StatementRun("slow", samples_ms=[v * 10 for v in samples], rows=0, plan=["SCAN t"],
                     full_scans=["t"]),
        StatementRun("opaque", samples_ms=[1.0], rows=1, plan=None),
    ]
    m = {metric.name: metric for metric in statement_metrics(runs)}
    assert m["fast.p50_ms"].value == percentile(samples, 50)
    assert m["fast.p95_ms"].value == percentile(samples, 95)
    assert m["fast.p95_ms"].samples == tuple(samples)
    assert m["fast.rows"].value == 3 and m["fast.full_scans"].value == 0
    assert m["slow.full_scans"].value == 1
    assert "opaque.full_scans" not in m  # no plan, no claim either way
    assert m["slowest_p95_ms"].value == m["slow.p95_ms"].value
    assert m["full_scans"].value == 1


def test_password_is_masked() -> None:
    url = make_url("postgresql+psycopg://erp:s3cr3t-pw@127.0.0.1:5432/erp")
    assert masked(url) == "postgresql+psycopg://erp:***@127.0.0.1:5432/erp"


def test_url_placeholders_relative_paths_and_missing_files(tmp_path: Path) -> None:
    small_db(tmp_path / "app.sqlite3")
    ctx = make_ctx(tmp_path)
    url = resolve_database_url("sqlite:///{project}/app.sqlite3", ctx)
    assert url.database == f"{tmp_path}/app.sqlite3"
    assert resolve_database_url("sqlite:///app.sqlite3", ctx).database == str(
        tmp_path / "app.sqlite3"
    )
    with pytest.raises(ToolError, match="SQLite database file .*missing.sqlite3 does not exist"):
        resolve_database_url("sqlite:///{project}/missing.sqlite3", ctx)
    assert not (tmp_path / "missing.sqlite3").exists()  # SQLite was not asked to create it
    assert resolve_database_url("sqlite://", ctx).database is None  # in memory


def test_database_host_must_be_allowed(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, allowed=("127.0.0.1",))
    with pytest.raises(TargetError, match=r"database host 'db\.example\.org' \(.*:\*\*\*@"):
        resolve_database_url("postgresql+psycopg://u:pw@db.example.org/erp", ctx)


# --- integration: real SQLite ------------------------------------------------------------


@pytest.mark.integration
def test_sqlite_timings_rows_and_plans(tmp_path: Path) -> None:
    small_db(tmp_path / "app.sqlite3")
    check = make_check({
        "url": "sqlite:///{project}/app.sqlite3", "repeat": 5, "warmup": 1,
        "statements": [
            {"name": "one", "sql": "SELECT * FROM items WHERE id = :id", "params": {"id": 7}},
            {"name": "nuts", "sql": "SELECT id FROM items WHERE kind = :kind",
             "params": {"kind": "nut"}},
        ],
    })
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    assert m["one.rows"].value == 1 and m["nuts.rows"].value == 100
    assert len(m["one.p95_ms"].samples) == 5
    assert m["one.full_scans"].value == 0  # the primary key
    assert m["nuts.full_scans"].value == 1  # no index on kind
    assert m["full_scans"].value == 1
    assert "full scans: nuts (items)" in result.reason
    assert result.tool_versions["sqlite"] == sqlite3.sqlite_version
    raw = json.loads(Path(result.artifacts["db_samples"]).read_text())
    assert raw["statements"]["nuts"]["plan"] == ["SCAN items"]
    assert len(raw["statements"]["one"]["warmup_ms"]) == 1


@pytest.mark.integration
def test_session_is_read_only_even_when_the_keyword_passes(tmp_path: Path) -> None:
    path = small_db(tmp_path / "app.sqlite3")
    # SQLite takes a WITH clause in front of DELETE: the keyword check lets it through.
    sneaky = "WITH doomed AS (SELECT id FROM items) DELETE FROM items WHERE id IN doomed"
    check = make_check({"url": f"sqlite:///{path}", "statements": [{"name": "x", "sql": sneaky}]})
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert "statement 'x'" in result.reason and "readonly database" in result.reason
    assert count(path, "items") == 300


@pytest.mark.integration
def test_writes_run_and_commit_when_allowed(tmp_path: Path) -> None:
    path = small_db(tmp_path / "app.sqlite3")
    check = make_check({
        "url": f"sqlite:///{path}", "allow_writes": True, "repeat": 4, "warmup": 1,
        "statements": [{"name": "add", "sql": "INSERT INTO items (kind, price) VALUES ('x', 1)"}],
    })
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["add.rows"].value == 1  # rowcount of an INSERT
    assert count(path, "items") == 305


@pytest.mark.integration
def test_failing_statement_is_an_error_naming_it(tmp_path: Path) -> None:
    small_db(tmp_path / "app.sqlite3")
    check = make_check({"url": "sqlite:///{project}/app.sqlite3", "explain": False,
                        "statements": [{"name": "bad", "sql": "SELECT * FROM nope"}]})
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert result.reason == "statement 'bad' failed: OperationalError: no such table: nope"


@pytest.mark.integration
def test_runaway_statement_is_stopped_at_the_check_timeout(tmp_path: Path) -> None:
    small_db(tmp_path / "app.sqlite3")
    forever = (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r"
    )
    settings = {"url": "sqlite:///{project}/app.sqlite3",
                "statements": [{"name": "spin", "sql": forever}]}
    check = make_check(settings, timeout=0.5)
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert "exceeded timeout in statement 'spin'" in result.reason
    assert "interrupted" in result.reason


@pytest.mark.integration
def test_missing_driver_is_an_error_naming_it(tmp_path: Path) -> None:
    check = make_check({"url": "mysql+pymysql://u:pw@127.0.0.1:1/erp",
                        "statements": [{"name": "a", "sql": "SELECT 1"}]})
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert "pymysql" in result.reason and "pw@" not in result.reason


@pytest.mark.integration
def test_connection_error_is_one_line_without_the_password(tmp_path: Path) -> None:
    password = "s3cret-" + secrets.token_hex(4)
    url = f"postgresql+psycopg://erp:{password}@127.0.0.1:{free_port()}/erp"
    check = make_check({"url": url, "statements": [{"name": "a", "sql": "SELECT 1"}]})
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("cannot connect to postgresql+psycopg://erp:***@127.0.0.1:")
    assert "Connection refused" in result.reason
    assert password not in result.reason and "\n" not in result.reason


# --- the demo: dropping idx_orders_created_at ---------------------------------------------


@pytest.fixture
def demo_db_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The demo service's own database module (schema, seed, queries)."""
    monkeypatch.syspath_prepend(str(template()))
    return importlib.import_module("neuroerp_demo.db")


def demo_entry(project: Path, check_id: str, stage: str) -> tuple[dict[str, Any], list[Any]]:
    """A check's settings and its conditions in ``stage``, as the demo pipeline file has them."""
    raw = tomllib.loads((project / DEMO_PIPELINE).read_text(encoding="utf-8"))
    entry = next(c for c in raw["checks"] if c["id"] == check_id)
    conditions = [
        ConditionSpec.model_validate(c)
        for c in raw["stages"][stage]["conditions"] if c["check"] == check_id
    ]
    return entry["settings"], conditions


def run_db_queries(project: Path, work: str) -> tuple[CheckResult, list[Any]]:
    settings, conditions = demo_entry(project, "db-queries", "nightly-baseline")
    # More runs than the demo's own: a p95 of 100 samples needs 5 slow outliers (a busy
    # machine) to move, so the ratio below measures the index, not the neighbours.
    settings = {**settings, "repeat": 100, "warmup": 5}
    check = make_check(settings, cid="db-queries")
    ctx = CheckContext(project, project / work, sys.executable, {}, allowed_hosts=LOOPBACK)
    result = execute_check(DatabaseCheck(), check, ctx)
    return result, [evaluate(cond, check, result) for cond in conditions]


def drop_index(path: Path, name: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"DROP INDEX {name}")
    conn.commit()
    conn.close()


@pytest.mark.integration
def test_dropping_the_revenue_index_fails_the_gate_naming_revenue(
    tmp_path: Path, demo_db_module: ModuleType
) -> None:
    project = write_demo(tmp_path / "demo")
    path = project / "data" / "erp.sqlite3"
    path.parent.mkdir()
    conn = demo_db_module.connect(path)
    demo_db_module.apply_migrations(conn)
    demo_db_module.seed(conn, orders=50_000)  # ten times the service's own seed
    conn.close()

    with_index, outcomes = run_db_queries(project, "w1")
    assert with_index.status is CheckStatus.OK, with_index.reason
    assert all(o.status is OutcomeStatus.PASS for o in outcomes), outcomes
    assert with_index.metrics["revenue.rows"].value >= 1  # the window holds orders

    drop_index(path, "idx_orders_created_at")
    without, outcomes = run_db_queries(project, "w2")
    assert without.status is CheckStatus.OK, without.reason
    m0, m1 = with_index.metrics, without.metrics
    assert m1["revenue.rows"].value == m0["revenue.rows"].value  # same answer, slower
    ratio = m1["revenue.p95_ms"].value / m0["revenue.p95_ms"].value
    assert ratio >= 3, f"p95 without/with index only {ratio:.1f}x"
    assert (m0["revenue.full_scans"].value, m1["revenue.full_scans"].value) == (0, 1)
    failed = {o.condition: o for o in outcomes if o.status is OutcomeStatus.FAIL}
    assert "revenue.full_scans 1 > 0" in failed["revenue.full_scans <= 0"].reason
    # only the revenue statement fails (its coarse p95 ceiling may trip as well)
    assert set(failed) <= {"revenue.full_scans <= 0", "revenue.p95_ms <= 25"}
    assert all("db-queries: revenue." in o.reason for o in failed.values())
    assert "full scans: revenue" in without.reason
    # the article lookup does not depend on that index
    assert m1["article.full_scans"].value == 0


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_url() -> str:
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except OperationalError:
        pytest.skip(PG_UNREACHABLE)
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A private schema with 50 000 orders over ~87 days and an index on created_at."""
    schema = f"neuroerp_ci_{secrets.token_hex(4)}"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(
            f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, customer text NOT NULL,"
            " created_at timestamptz NOT NULL)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {schema}.orders SELECT g, 'customer ' || mod(g, 12),"
            " now() - g * interval '150 seconds' FROM generate_series(1, 50000) AS g"
        )
        conn.exec_driver_sql(f"CREATE INDEX orders_created ON {schema}.orders (created_at)")
        conn.exec_driver_sql(f"ANALYZE {schema}.orders")
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_index_versus_seq_scan(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    check = make_check({
        "url": pg_url, "repeat": 20,
        "statements": [
            {"name": "recent", "sql": "SELECT date_trunc('hour', created_at) AS h, count(*)"
             f" FROM {pg_schema}.orders WHERE created_at >= now() - CAST(:window AS interval)"
             " GROUP BY h ORDER BY h", "params": {"window": "1 day"}},
            {"name": "one", "sql": f"SELECT * FROM {pg_schema}.orders WHERE id = :id",
             "params": {"id": 7}},
        ],
    })
    with_index = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert with_index.status is CheckStatus.OK, with_index.reason
    assert with_index.tool_versions["postgresql"].split(".")[0].isdigit()
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {pg_schema}.orders_created")
    engine.dispose()
    without = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert without.status is CheckStatus.OK, without.reason
    m0, m1 = with_index.metrics, without.metrics
    assert m0["recent.rows"].value == m1["recent.rows"].value >= 24
    assert (m0["recent.full_scans"].value, m1["recent.full_scans"].value) == (0, 1)
    assert "full scans: recent (orders)" in without.reason
    assert m1["recent.p95_ms"].value / m0["recent.p95_ms"].value >= 3
    raw = json.loads(Path(without.artifacts["db_samples"]).read_text())
    assert raw["statements"]["recent"]["plan"][-1].strip() == "Seq Scan on orders"


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_session_is_read_only(tmp_path: Path, pg_url: str, pg_schema: str) -> None:
    sneaky = f"WITH d AS (DELETE FROM {pg_schema}.orders RETURNING 1) SELECT count(*) FROM d"
    check = make_check({"url": pg_url, "statements": [{"name": "sneaky", "sql": sneaky}]})
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert "statement 'sneaky'" in result.reason and "read-only transaction" in result.reason
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        left = conn.exec_driver_sql(f"SELECT count(*) FROM {pg_schema}.orders").scalar()
    engine.dispose()
    assert left == 50_000


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_statement_stopped_at_the_check_timeout(tmp_path: Path, pg_url: str) -> None:
    check = make_check(
        {"url": pg_url, "explain": False,
         "statements": [{"name": "sleepy", "sql": "SELECT pg_sleep(30)"}]},
        timeout=0.5,
    )
    result = execute_check(DatabaseCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert "exceeded timeout in statement 'sleepy'" in result.reason
    assert "statement timeout" in result.reason
