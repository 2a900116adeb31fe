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

Read-only by default. A statement must start with SELECT, WITH or EXPLAIN (refused when
the pipeline file is loaded, so a typo fails early), but that look at the text is not the
guard: the database session itself refuses anything else, whatever the SQL says.

- **SQLite**: ``PRAGMA query_only`` and an authorizer (``set_authorizer``) that allows
  reading tables and calling functions only: no write, no ``PRAGMA`` (so no
  ``query_only = OFF``, even inside ``EXPLAIN``, which compiles a pragma and so runs it),
  no ``ATTACH``, no transaction or savepoint statement, no ``load_extension``. Python's
  sqlite3 runs one statement per call.
- **PostgreSQL** (driver psycopg only): every statement is sent as ONE prepared statement
  (``prepare_threshold = 0``: the extended protocol, which refuses ``SELECT 1; COMMIT; ...``),
  inside its own ``BEGIN READ ONLY`` transaction that is rolled back after it (so a
  ``set_config()``, ``SET`` or ``RESET`` of one execution is gone before the next), on a
  session opened with ``default_transaction_read_only = on``. Before anything runs, each
  statement must be one PostgreSQL can ``EXPLAIN`` (a query, not ``SET``, ``COMMIT``,
  ``DO``, ``COPY``, ``ANALYZE``, ...) whose plan changes no table, and the role must not
  reach beyond a read-only transaction: superusers, replication roles, members of
  ``pg_write_server_files``, ``pg_execute_server_program`` or ``pg_signal_backend``, and
  roles that may call dblink (a second session, not read-only) are refused. Connect as a
  read-only reporting role. A statement that ends the transaction anyway is an error.
- Any other database is refused unless ``allow_writes = true``: nothing here could hold
  its session to reading.

Nothing is committed unless ``allow_writes = true``; then each execution is committed
inside its timing.

Every host the URL can reach (its host, ``?host=`` lists, ``hostaddr``, libpq's
``PGHOSTADDR``; ``service`` is refused) must be in ``ctx.allowed_hosts``
(:func:`neuroerp_ci.support.hosts.ensure_database_allowed`, before connecting); a relative SQLite
path is taken from the project directory and must exist (SQLite would otherwise create an
empty database and the check would measure nothing). Passwords never appear in reasons or
artifacts.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import sqlalchemy
from pydantic import Field, field_validator, model_validator
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from neuroerp_ci.checks._percentiles import summary
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Metric
from neuroerp_ci.support.hosts import ensure_database_allowed
from neuroerp_ci.support.placeholders import expand

SAMPLES_FILE = "db_samples.json"
_SQLITE_REFUSED = "neuroerp_ci_refused"  # key in Connection.info: what the authorizer denied
READ_ONLY_KEYWORDS = frozenset({"SELECT", "WITH", "EXPLAIN"})
# How often (in SQLite virtual-machine steps) the deadline is looked at during a statement.
_SQLITE_PROGRESS_STEPS = 1000
# What a read-only SQLite session may do (authorizer actions); ROLLBACK is our own.
_SQLITE_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_SQLITE_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name
    for name in (
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE",
        "CREATE_TEMP_TRIGGER", "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE",
        "DROP_INDEX", "DROP_TABLE", "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER",
        "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW", "INSERT", "PRAGMA", "TRANSACTION",
        "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE", "CREATE_VTABLE",
        "DROP_VTABLE", "SAVEPOINT",
    )
}  # fmt: skip
_SQLITE_DENIED_FUNCTIONS = frozenset({"load_extension"})
# Roles whose rights reach beyond a read-only transaction (files, programs, other backends).
_PG_POWER_ROLES = ("pg_write_server_files", "pg_execute_server_program", "pg_signal_backend")
_PG_POWERS = """
SELECT r.rolname, r.rolsuper, r.rolreplication FROM pg_roles r
WHERE pg_has_role(session_user, r.oid, 'MEMBER')
  AND (r.rolsuper OR r.rolreplication OR r.rolname = ANY(%(power_roles)s))
ORDER BY r.rolsuper DESC, r.rolname
"""
_PG_DBLINK = """
SELECT p.oid::regprocedure::text FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid
WHERE e.extname = 'dblink' AND has_function_privilege(session_user, p.oid, 'EXECUTE')
LIMIT 1
"""

_COMMENT_OR_SPACE = re.compile(r"\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\(", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]+")
# SQLite plan lines: "SCAN o", "SCAN o USING COVERING INDEX i", "SCAN CONSTANT ROW".
_SQLITE_SCAN = re.compile(r"^SCAN (\S+)")
_SQLITE_SUBQUERY = re.compile(r"^(?:CO-ROUTINE|MATERIALIZE) (\S+)")


class Statement(KindSettings):
    """One named statement; ``:name`` placeholders in ``sql`` take their values from ``params``."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)  # metric prefix: <name>.p95_ms
    sql: str = Field(min_length=1)  # SELECT, WITH or EXPLAIN unless allow_writes
    params: dict[str, Any] = Field(default_factory=dict)  # values of its :name placeholders


class DatabaseSettings(KindSettings):
    url: str = Field(min_length=1)  # SQLAlchemy URL; {project} is the project directory
    statements: list[Statement] = Field(min_length=1)
    repeat: int = Field(default=20, ge=1, le=100_000)  # counted executions per statement
    warmup: int = Field(default=2, ge=0, le=1_000)  # executions per statement not counted
    allow_writes: bool = False  # allow statements other than SELECT, WITH and EXPLAIN
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
        counts = Counter(s.name for s in value)
        dups = sorted(n for n, count in counts.items() if count > 1)
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


def postgres_writes(plan: Any) -> list[str]:
    """``Delete on orders`` for each node of a JSON plan that changes a table (ModifyTable)."""
    writes: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("Node Type") == "ModifyTable":
                writes.append(f"{node.get('Operation', '?')} on {node.get('Relation Name', '?')}")
            for key in ("Plan", "Plans"):
                if key in node:
                    walk(node[key])

    walk(plan)
    return writes


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
    placeholders: ClassVar[Mapping[str, frozenset[str]]] = {
        "url": frozenset({"project", "python"})
    }
    # No default condition: timings and plans have no limit that suits every query.
    completed_means: ClassVar[str] = "every statement ran (one that fails is a check error)"

    def metric_names(self, settings: KindSettings) -> MetricNames:
        db = settings if isinstance(settings, DatabaseSettings) else None
        explain = db is not None and db.explain
        scans = {"full_scans"} if explain else set()
        return MetricNames(
            fixed=frozenset({"slowest_p95_ms"} | scans),
            per_item=frozenset({"p50_ms", "p95_ms", "rows"} | scans),
            items=frozenset(s.name for s in db.statements) if db else frozenset(),
            item="statement",
            needs={} if explain else {"full_scans": "explain = true"},
        )

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, DatabaseSettings)
        url = resolve_database_url(settings.url, ctx)
        deadline = time.perf_counter() + check.timeout
        artifact = ctx.work_dir / SAMPLES_FILE
        artifact.unlink(missing_ok=True)
        runs = [StatementRun(s.name) for s in settings.statements]
        read_only = not settings.allow_writes
        engine = _engine(url, read_only)
        secret = url.password
        try:
            with _connection(engine, url) as conn:
                server = _prepare(conn, read_only=read_only, deadline=deadline)
                # PostgreSQL read-only: explaining every statement first is part of the guard.
                gate = read_only and conn.dialect.name == "postgresql"
                if settings.explain or gate:
                    for stmt, run in zip(settings.statements, runs, strict=True):
                        _explain(conn, stmt, run, deadline, secret, gate=gate,
                                 record=settings.explain)
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
        # A referenced password goes in percent-encoded: "@" or "/" in it must not split the URL.
        secrets = {k: quote(v, safe="") for k, v in ctx.secrets.items()}
        values = {"project": str(ctx.project_dir), "python": ctx.python, **secrets}
        url = make_url(expand(raw, values))
    except ArgumentError as exc:
        raise ToolError(f"database url is not a SQLAlchemy URL: {exc}") from exc
    # Checked before any connection, like every URL the checks contact; libpq reads its
    # environment in this process, so that environment is the one that counts.
    ensure_database_allowed(url, ctx.allowed_hosts, os.environ, masked(url))
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
            if not commit:
                _end_read_only(conn, stmt)
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
        _raise_if_refused(conn, stmt, exc)
        raise ToolError(f"statement {stmt.name!r} failed: {_one_line(exc, secret)}") from exc
    return (time.perf_counter() - started) * 1000.0, rows


def _engine(url: URL, read_only: bool) -> Engine:
    connect_args: dict[str, Any] = {}
    backend = url.get_backend_name()
    if read_only and backend == "postgresql":
        if url.get_driver_name() != "psycopg":
            raise ToolError(
                f"read-only statements on PostgreSQL need the psycopg driver"
                f" (postgresql+psycopg://), not {url.drivername!r}: it sends each statement"
                " alone, as a prepared statement"
            )
        options = url.query.get("options", "")
        options = options if isinstance(options, str) else " ".join(options)
        connect_args = {
            "prepare_threshold": 0,  # every statement prepared: one statement per execution
            "options": f"{options} -c default_transaction_read_only=on".strip(),
        }
    elif read_only and backend != "sqlite":
        raise ToolError(
            f"{url.drivername!r}: only SQLite and PostgreSQL sessions can be held to reading;"
            " set allow_writes = true to run these statements on it anyway"
        )
    try:
        # NullPool: one real connection, closed when the check ends.
        return create_engine(url, poolclass=NullPool, connect_args=connect_args)
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
                if not isinstance(raw, sqlite3.Connection):
                    raise ToolError(
                        f"read-only statements need Python's sqlite3 driver, not"
                        f" {type(raw).__name__}"
                    )
                conn.exec_driver_sql("PRAGMA query_only = ON")
                # From here on the authorizer is the guard (it also stops query_only = OFF).
                raw.set_authorizer(_sqlite_reader(conn.info))
            return sqlite3.sqlite_version
        if backend == "postgresql":
            if read_only:
                _pg_read_only(conn)
            conn.commit()  # the setting is session-wide; end the transaction that set it
    except SQLAlchemyError as exc:
        raise ToolError(f"cannot prepare the database session: {_one_line(exc)}") from exc
    version = conn.dialect.server_version_info
    return ".".join(str(part) for part in version) if version else "unknown"


def _sqlite_reader(info: dict[Any, Any]) -> Callable[..., int]:
    """An SQLite authorizer that allows reading only; what it denied goes into ``info``."""

    def authorize(
        action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
    ) -> int:
        if action in _SQLITE_READ_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in (
                _SQLITE_DENIED_FUNCTIONS
            ):
                info[_SQLITE_REFUSED] = f"function {arg2}()"
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_TRANSACTION and (arg1 or "").upper() == "ROLLBACK":
            return sqlite3.SQLITE_OK  # the driver's own rollback; it undoes, never writes
        name = _SQLITE_ACTION_NAMES.get(action, f"action {action}")
        info[_SQLITE_REFUSED] = " ".join(x for x in (name.replace("_", " "), arg1, arg2) if x)
        return sqlite3.SQLITE_DENY

    return authorize


def _raise_if_refused(conn: Connection, stmt: Statement, exc: Exception) -> None:
    """ToolError naming what the SQLite authorizer denied, if that is why ``stmt`` failed."""
    refused = conn.info.pop(_SQLITE_REFUSED, None)
    if refused:
        raise ToolError(
            f"statement {stmt.name!r} refused by the read-only session: {refused}"
        ) from exc


def _pg_read_only(conn: Connection) -> None:
    """A read-only session whose role cannot act outside its transactions, or ToolError."""
    conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    user = conn.exec_driver_sql("SELECT session_user").scalar()
    powers = conn.exec_driver_sql(_PG_POWERS, {"power_roles": list(_PG_POWER_ROLES)}).first()
    if powers is not None:
        name, superuser, replication = powers
        what = (
            "a superuser" if superuser and name == user else
            "a replication role" if replication and name == user else
            f"a member of {name}"
        )  # fmt: skip
        raise ToolError(
            f"read-only statements refuse the role {user!r}: it is {what}, whose rights reach"
            " beyond a read-only transaction (other backends, server files and programs);"
            " connect as a role without them"
        )
    dblink = conn.exec_driver_sql(_PG_DBLINK).scalar()
    if dblink is not None:
        raise ToolError(
            f"read-only statements refuse the role {user!r}: it may call {dblink}, which runs"
            " SQL in a second session that is not read-only; revoke EXECUTE on dblink's"
            " functions from it"
        )
    conn.commit()
    # psycopg now opens every transaction with BEGIN READ ONLY (set while none is open).
    conn.connection.driver_connection.read_only = True  # type: ignore[union-attr]


def _end_read_only(conn: Connection, stmt: Statement) -> None:
    """Roll back one read-only execution; a statement that ended our transaction is an error."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        status = getattr(getattr(raw, "info", None), "transaction_status", None)
        if status is None or status.name != "INTRANS":
            _rollback(conn)
            raise ToolError(
                f"statement {stmt.name!r} ended the read-only transaction: refused"
            )
    conn.rollback()


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
    conn: Connection,
    stmt: Statement,
    run: StatementRun,
    deadline: float,
    secret: str | None,
    *,
    gate: bool = False,
    record: bool = True,
) -> None:
    """Fill ``run.plan`` and ``run.full_scans`` (SQLite and PostgreSQL only).

    ``gate`` (PostgreSQL, read-only): the statement must be one PostgreSQL can explain, and
    its plan must change no table, or ToolError before anything has run.
    """
    backend = conn.dialect.name
    if backend not in ("sqlite", "postgresql"):
        return
    if not gate and leading_keyword(stmt.sql) == "EXPLAIN":
        return
    try:
        _bound(conn, deadline)
        if backend == "sqlite":
            rows = conn.execute(text("EXPLAIN QUERY PLAN " + stmt.sql), stmt.params).fetchall()
            lines = [str(row[-1]) for row in rows]
            scans = sqlite_full_scans(lines)
        else:
            rows = conn.execute(text("EXPLAIN (FORMAT JSON) " + stmt.sql), stmt.params).fetchall()
            plan = rows[0][0] if rows else None
            if isinstance(plan, str):  # a driver that does not decode json
                plan = json.loads(plan)
            writes = postgres_writes(plan) if gate else []
            if writes:
                raise ToolError(
                    f"statement {stmt.name!r} changes data ({', '.join(writes)}): refused"
                    " unless allow_writes = true"
                )
            lines, scans = postgres_plan_lines(plan), postgres_full_scans(plan)
    except (SQLAlchemyError, ValueError) as exc:
        _rollback(conn)
        _raise_if_refused(conn, stmt, exc)
        if gate:
            raise ToolError(
                f"statement {stmt.name!r} is not a query PostgreSQL can explain, so it does"
                f" not run read-only: {_one_line(exc, secret)}"
            ) from exc
        raise ToolError(
            f"statement {stmt.name!r}: cannot explain its plan: {_one_line(exc, secret)}"
        ) from exc
    _rollback(conn)  # explaining runs nothing, and each statement starts afresh
    if record:
        run.plan, run.full_scans = lines, scans


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
