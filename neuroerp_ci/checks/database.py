"""The ``database`` kind: timings and query plans of named SQL statements.

Example (pipeline file)::

    [[checks]]
    id = "db-queries"
    kind = "database"

    [checks.settings]
    url = "sqlite:///{project}/data/erp.sqlite3"   # any SQLAlchemy URL
    repeat = 20

    [[checks.settings.statements]]
    name = "article"
    sql = "SELECT id, name FROM articles WHERE id = :id"
    params = { id = 1 }

Statements are SQLAlchemy ``text()``: write a PostgreSQL cast of a parameter as
``CAST(:window AS interval)``, since ``:window::interval`` is not read as a parameter.

Each statement runs ``warmup`` + ``repeat`` times over ONE connection, round-robin across
statements (as the ``http`` kind does with endpoints); a sample is the wall time of execute
plus fetching every row. Metrics per statement: ``<name>.p50_ms`` and ``<name>.p95_ms``
(with the raw samples), ``<name>.rows`` and, where the database can explain its plan
(SQLite, PostgreSQL), ``<name>.full_scans``: how many tables the plan reads whole ("SCAN t"
in SQLite, "Seq Scan" in PostgreSQL). A dropped index shows there even when the table is
still too small for the timings to say so. Aggregates: ``slowest_p95_ms`` and ``full_scans``.

Read-only by default, checked twice: a statement must start with SELECT, WITH or EXPLAIN
(refused when the pipeline file is loaded), and the session itself is read-only (SQLite
``PRAGMA query_only``, PostgreSQL ``default_transaction_read_only``), which also stops a
data-modifying CTE or ``EXPLAIN ANALYZE DELETE``. Nothing is committed unless
``allow_writes = true``; then each execution is committed inside its timing.

The URL's host must be in ``ctx.allowed_hosts`` (checked before connecting); a relative
SQLite path is taken from the project directory and must exist (SQLite would otherwise
create an empty database and the check would measure nothing). Passwords never appear in
reasons or artifacts.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy
from pydantic import Field, field_validator, model_validator
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    typed_settings,
)
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Metric
from neuroerp_ci.percentiles import summary
from neuroerp_ci.placeholders import expand

SAMPLES_FILE = "db_samples.json"
READ_ONLY_KEYWORDS = frozenset({"SELECT", "WITH", "EXPLAIN"})
# How often (in SQLite virtual-machine steps) the deadline is looked at during a statement.
_SQLITE_PROGRESS_STEPS = 1000

_COMMENT_OR_SPACE = re.compile(r"\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\(", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")
# SQLite plan lines: "SCAN o", "SCAN o USING COVERING INDEX i", "SCAN CONSTANT ROW".
_SQLITE_SCAN = re.compile(r"^SCAN (\S+)")
_SQLITE_SUBQUERY = re.compile(r"^(?:CO-ROUTINE|MATERIALIZE) (\S+)")


class Statement(KindSettings):
    """One named statement; ``:name`` placeholders in ``sql`` take their values from ``params``."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)
    sql: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class DatabaseSettings(KindSettings):
    url: str = Field(min_length=1)  # SQLAlchemy URL; {project} is the project directory
    statements: list[Statement] = Field(min_length=1)
    repeat: int = Field(default=20, ge=1, le=100_000)  # counted executions per statement
    warmup: int = Field(default=2, ge=0, le=1_000)  # executions per statement not counted
    allow_writes: bool = False
    explain: bool = True  # read the query plan (full scans) where the dialect allows

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL (e.g. 'sqlite:///{project}/app.db')") from None
        return value

    @field_validator("statements")
    @classmethod
    def _unique_names(cls, value: list[Statement]) -> list[Statement]:
        names = [s.name for s in value]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"duplicate statement names {dups}")
        return value

    @model_validator(mode="after")
    def _read_only(self) -> DatabaseSettings:
        if not self.allow_writes:
            for stmt in self.statements:
                word = leading_keyword(stmt.sql)
                if word not in READ_ONLY_KEYWORDS:
                    raise ValueError(
                        f"statement {stmt.name!r} starts with {word or 'nothing'!r}: only"
                        " SELECT, WITH and EXPLAIN run unless allow_writes = true"
                    )
        return self


def leading_keyword(sql: str) -> str:
    """The first SQL word of ``sql``, upper-cased, after comments, blanks and ``(``."""
    pos = 0
    while match := _COMMENT_OR_SPACE.match(sql, pos):
        pos = match.end()
    word = _WORD.match(sql, pos)
    return word.group(0).upper() if word else ""


def sqlite_full_scans(plan: Sequence[str]) -> list[str]:
    """Tables (by alias) that an SQLite ``EXPLAIN QUERY PLAN`` reads whole.

    A scan of a sub-query or CTE result, or of a constant row, is not a table scan.
    """
    derived = {m.group(1) for line in plan if (m := _SQLITE_SUBQUERY.match(line))}
    scans = []
    for line in plan:
        match = _SQLITE_SCAN.match(line)
        if match is None:
            continue
        name = match.group(1)
        if line.startswith("SCAN CONSTANT ROW") or name.startswith("(") or name in derived:
            continue
        scans.append(name)
    return scans


def postgres_full_scans(plan: Any) -> list[str]:
    """Relations read by a "Seq Scan" node anywhere in ``EXPLAIN (FORMAT JSON)`` output."""
    scans: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("Node Type") == "Seq Scan":
                scans.append(str(node.get("Relation Name") or node.get("Alias") or "?"))
            for key in ("Plan", "Plans"):
                if key in node:
                    walk(node[key])

    walk(plan)
    return scans


def postgres_plan_lines(plan: Any) -> list[str]:
    """A compact text form of a JSON plan: one ``Node Type [on relation]`` per node."""
    lines: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, depth)
        elif isinstance(node, dict):
            if "Node Type" in node:
                on = f" on {node['Relation Name']}" if "Relation Name" in node else ""
                index = f" using {node['Index Name']}" if "Index Name" in node else ""
                lines.append("  " * depth + f"{node['Node Type']}{on}{index}")
            walk(node.get("Plan"), depth)
            walk(node.get("Plans"), depth + 1)

    walk(plan, 0)
    return lines


@dataclass
class StatementRun:
    """What one statement measured: timings (ms), rows of the last run, its plan."""

    name: str
    samples_ms: list[float] = field(default_factory=list)
    warmup_ms: list[float] = field(default_factory=list)
    rows: int = 0
    plan: list[str] | None = None  # None: the dialect gives no plan we can read
    full_scans: list[str] = field(default_factory=list)


def statement_metrics(runs: Sequence[StatementRun]) -> list[Metric]:
    """Per-statement p50/p95/rows/full_scans and the aggregates."""
    metrics: list[Metric] = []
    slowest = -math.inf
    total_scans: int | None = None
    for run in runs:
        stats = summary(run.samples_ms)
        samples = tuple(run.samples_ms)
        metrics.append(Metric(f"{run.name}.p50_ms", stats.p50, "ms", Direction.LOWER, samples))
        metrics.append(Metric(f"{run.name}.p95_ms", stats.p95, "ms", Direction.LOWER, samples))
        metrics.append(Metric(f"{run.name}.rows", float(run.rows), "rows", Direction.HIGHER))
        slowest = max(slowest, stats.p95)
        if run.plan is not None:
            count = len(run.full_scans)
            metrics.append(Metric(f"{run.name}.full_scans", float(count), "", Direction.LOWER))
            total_scans = (total_scans or 0) + count
    metrics.append(Metric("slowest_p95_ms", slowest, "ms", Direction.LOWER))
    if total_scans is not None:
        metrics.append(Metric("full_scans", float(total_scans), "", Direction.LOWER))
    return metrics


def masked(url: URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


class DatabaseCheck(CheckKind):
    """``kind = "database"``: p50/p95 per statement, rows and full table scans."""

    name: ClassVar[str] = "database"
    settings_model: ClassVar[type[KindSettings]] = DatabaseSettings
    exclusive: ClassVar[bool] = True

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, DatabaseSettings)
        url = resolve_database_url(settings.url, ctx)
        deadline = time.perf_counter() + check.timeout
        artifact = ctx.work_dir / SAMPLES_FILE
        artifact.unlink(missing_ok=True)
        runs = [StatementRun(s.name) for s in settings.statements]
        engine = _engine(url)
        secret = url.password
        try:
            with _connection(engine, url) as conn:
                server = _prepare(conn, read_only=not settings.allow_writes, deadline=deadline)
                if settings.explain:
                    for stmt, run in zip(settings.statements, runs, strict=True):
                        _explain(conn, stmt, run, deadline, secret)
                time_statements(conn, settings, runs, deadline, secret)
                conn.rollback()  # read-only: nothing to keep; writes were committed each time
        finally:
            engine.dispose()
            _write_samples(artifact, url, settings, runs)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        for metric in statement_metrics(runs):
            result.add_metric(metric)
        result.artifacts["db_samples"] = str(artifact)
        result.tool_versions["sqlalchemy"] = sqlalchemy.__version__
        result.tool_versions[url.get_backend_name()] = server
        result.reason = _reason(runs, settings.repeat)
        return result


def resolve_database_url(raw: str, ctx: CheckContext) -> URL:
    """The URL with ``{project}`` expanded, its host allowed and an SQLite file present."""
    try:
        url = make_url(expand(raw, {"project": str(ctx.project_dir), "python": ctx.python}))
    except ArgumentError as exc:
        raise ToolError(f"database url is not a SQLAlchemy URL: {exc}") from exc
    if url.host is not None:
        # Checked before any connection, like every URL the checks contact.
        allowed = {h.lower().strip("[]") for h in ctx.allowed_hosts}
        if url.host.lower().strip("[]") not in allowed:
            raise TargetError(
                f"database host {url.host!r} ({masked(url)}) is not in allowed_hosts"
                f" {list(ctx.allowed_hosts)}"
            )
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if not path.is_absolute():
                path = ctx.project_dir / path
                url = url.set(database=str(path))
            if not path.is_file():
                raise ToolError(f"SQLite database file {path} does not exist")
    return url


def time_statements(
    conn: Connection,
    settings: DatabaseSettings,
    runs: Sequence[StatementRun],
    deadline: float,
    secret: str | None = None,
) -> None:
    """Execute every statement ``warmup + repeat`` times, round-robin, recording timings."""
    commit = settings.allow_writes
    total = (settings.warmup + settings.repeat) * len(runs)
    done = 0
    for round_no in range(settings.warmup + settings.repeat):
        for stmt, run in zip(settings.statements, runs, strict=True):
            if time.perf_counter() >= deadline:
                raise ToolError(f"database check exceeded timeout after {done} of {total} runs")
            elapsed_ms, rows = _execute(conn, stmt, commit, deadline, secret)
            (run.warmup_ms if round_no < settings.warmup else run.samples_ms).append(elapsed_ms)
            run.rows = rows
            done += 1


def _execute(
    conn: Connection, stmt: Statement, commit: bool, deadline: float, secret: str | None
) -> tuple[float, int]:
    query = text(stmt.sql)
    try:
        _bound(conn, deadline)  # outside the timing
        started = time.perf_counter()
        result = conn.execute(query, stmt.params)
        rows = len(result.fetchall()) if result.returns_rows else max(result.rowcount, 0)
        if commit:
            conn.commit()
    except SQLAlchemyError as exc:
        _rollback(conn)
        if time.perf_counter() >= deadline:  # aborted by us (progress handler, statement_timeout)
            raise ToolError(
                f"database check exceeded timeout in statement {stmt.name!r}:"
                f" {_one_line(exc, secret)}"
            ) from exc
        raise ToolError(f"statement {stmt.name!r} failed: {_one_line(exc, secret)}") from exc
    return (time.perf_counter() - started) * 1000.0, rows


def _engine(url: URL) -> Engine:
    try:
        # NullPool: one real connection, closed when the check ends.
        return create_engine(url, poolclass=NullPool)
    except ImportError as exc:
        raise ToolError(
            f"database driver for {url.drivername!r} is not installed: {exc}"
        ) from exc
    except ArgumentError as exc:
        raise ToolError(f"unsupported database url {masked(url)}: {exc}") from exc


@contextmanager
def _connection(engine: Engine, url: URL) -> Iterator[Connection]:
    """``engine.connect()``; failing to connect is a one-line ToolError without the password."""
    try:
        conn = engine.connect()
    except (SQLAlchemyError, OSError) as exc:
        raise ToolError(
            f"cannot connect to {masked(url)}: {_one_line(exc, url.password)}"
        ) from exc
    try:
        yield conn
    finally:
        conn.close()


def _prepare(conn: Connection, *, read_only: bool, deadline: float) -> str:
    """Make the session read-only and bounded by ``deadline``; return the server version."""
    backend = conn.dialect.name
    try:
        if backend == "sqlite":
            raw = conn.connection.driver_connection
            if isinstance(raw, sqlite3.Connection):
                # Aborts a running statement (OperationalError "interrupted") at the deadline.
                raw.set_progress_handler(_past(deadline), _SQLITE_PROGRESS_STEPS)
            if read_only:
                conn.exec_driver_sql("PRAGMA query_only = ON")
            return sqlite3.sqlite_version
        if backend == "postgresql":
            if read_only:
                conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            conn.commit()  # the setting is session-wide; end the transaction that set it
    except SQLAlchemyError as exc:
        raise ToolError(f"cannot prepare the database session: {_one_line(exc)}") from exc
    version = conn.dialect.server_version_info
    return ".".join(str(part) for part in version) if version else "unknown"


def _bound(conn: Connection, deadline: float) -> None:
    """PostgreSQL: the next statement may run until ``deadline`` (per-statement timeout)."""
    if conn.dialect.name == "postgresql":
        remaining_ms = max(1, math.ceil((deadline - time.perf_counter()) * 1000))
        conn.exec_driver_sql(f"SET statement_timeout = {remaining_ms}")


def _past(deadline: float) -> Callable[[], int]:
    def handler() -> int:
        return 1 if time.perf_counter() >= deadline else 0

    return handler


def _explain(
    conn: Connection, stmt: Statement, run: StatementRun, deadline: float, secret: str | None
) -> None:
    """Fill ``run.plan`` and ``run.full_scans`` (SQLite and PostgreSQL only)."""
    backend = conn.dialect.name
    if backend not in ("sqlite", "postgresql") or leading_keyword(stmt.sql) == "EXPLAIN":
        return
    try:
        _bound(conn, deadline)
        if backend == "sqlite":
            rows = conn.execute(text("EXPLAIN QUERY PLAN " + stmt.sql), stmt.params).fetchall()
            run.plan = [str(row[-1]) for row in rows]
            run.full_scans = sqlite_full_scans(run.plan)
        else:
            rows = conn.execute(text("EXPLAIN (FORMAT JSON) " + stmt.sql), stmt.params).fetchall()
            plan = rows[0][0] if rows else None
            if isinstance(plan, str):  # a driver that does not decode json
                plan = json.loads(plan)
            run.plan = postgres_plan_lines(plan)
            run.full_scans = postgres_full_scans(plan)
    except (SQLAlchemyError, ValueError) as exc:
        _rollback(conn)
        raise ToolError(
            f"statement {stmt.name!r}: cannot explain its plan: {_one_line(exc, secret)}"
        ) from exc


def _rollback(conn: Connection) -> None:
    try:
        conn.rollback()
    except SQLAlchemyError:
        pass  # the error being reported matters more


def _one_line(exc: BaseException, secret: str | None = None) -> str:
    """The driver's own message on one line, without SQLAlchemy's SQL echo and links."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text_ = str(inner).split("\n[SQL:", 1)[0].split("\n(Background", 1)[0]
    line = " ".join(text_.split()) or type(inner).__name__
    if secret:
        line = line.replace(secret, "***")
    return f"{type(inner).__name__}: {line}"[:600]


def _reason(runs: Sequence[StatementRun], repeat: int) -> str:
    slowest = max(runs, key=lambda r: summary(r.samples_ms).p95)
    text_ = (
        f"{len(runs)} statements x {repeat} runs; slowest p95"
        f" {summary(slowest.samples_ms).p95:.2f} ms ({slowest.name})"
    )
    scanning = [f"{r.name} ({', '.join(r.full_scans)})" for r in runs if r.full_scans]
    if scanning:
        text_ += "; full scans: " + "; ".join(scanning)
    elif any(r.plan is not None for r in runs):
        text_ += "; no full scans"
    return text_


def _write_samples(
    path: Path, url: URL, settings: DatabaseSettings, runs: Sequence[StatementRun]
) -> None:
    data = {
        "url": masked(url),
        "repeat": settings.repeat,
        "warmup": settings.warmup,
        "statements": {
            stmt.name: {
                "sql": stmt.sql,
                "params": stmt.params,
                "plan": run.plan,
                "full_scans": run.full_scans,
                "rows": run.rows,
                "samples_ms": run.samples_ms,
                "warmup_ms": run.warmup_ms,
            }
            for stmt, run in zip(settings.statements, runs, strict=True)
        },
    }
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
