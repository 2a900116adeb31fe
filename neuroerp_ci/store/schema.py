"""The tables of the history store (SQLAlchemy Core) and their versioned migrations.

One row in ``runs`` per stage run; everything the run produced hangs off it by ``run_pk``
(deleted with it). Times are naive UTC ``DateTime`` values on every backend; metric samples
are a JSON array in a text column (``null`` for a non-finite sample).

Migrations are numbered and recorded in ``schema_migrations``. :func:`migrate` applies the
missing ones inside the caller's transaction, which must hold the migration lock
(:func:`lock_for_migration`), so two processes opening a fresh store at once do not both
create it. A migration that changes a table must not change what an earlier migration
created: freeze the earlier definition in its own function first.

Version 2 adds ``rollout_locks``: at most one row per stage and target, the run holding that
rollout's lock and its lease (see :mod:`neuroerp_ci.store.locks`).

Version 3 adds what a timing gate needs to be trusted: on ``outcomes`` the metric a condition
limits, whether it only said "no baseline yet", whether its limit was breached, what an
INCONCLUSIVE outcome counts as, the minimum detectable effect and the re-measurements (JSON),
with ``status`` widened for ``inconclusive``; on ``check_results`` the machine's noise reading
(JSON); and ``calibrations``, a condition's measured false-alarm and detection rates. A fresh
store is built the same way as an old one is upgraded (version 1's frozen tables, then
version 3's columns added), so the two cannot differ.

Version 4 adds what a security audit needs of the past: on ``findings`` each finding's stable
fingerprint (what ``new = true`` conditions and SARIF's ``baselineState`` compare), its state
(``counted``, ``waived`` by a pipeline waiver, ``suppressed`` in the source) and the waiver's
id, so a later run finds every finding of its baseline run, waived ones too.

Version 5 adds ``check_cache``: a run's cacheable check results under their inputs' hash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

from neuroerp_ci.store.errors import StoreError

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False, default=""),
    Column("applied_at", DateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(128), nullable=False, unique=True),
    Column("stage", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("fingerprint", Text, nullable=False),  # JSON object
    Column("verdict", String(8)),  # PASS | WARN | FAIL; NULL until finished
    Column("status", String(16), nullable=False),  # running | finished | aborted
    Column("summary", Text, nullable=False, default=""),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("duration_s", Float),
    Column("invalidated_reason", Text),
    Column("invalidated_at", DateTime),
    Column("pinned", Boolean, nullable=False, default=False),
    Index("ix_runs_lookup", "stage", "target", "status", "verdict", "started_at"),
    Index("ix_runs_version", "stage", "target", "version"),
    # At most one pinned run per stage and target, whatever the writers do at once.
    Index(
        "ux_runs_pinned",
        "stage",
        "target",
        unique=True,
        sqlite_where=text("pinned = 1"),
        postgresql_where=text("pinned"),
    ),
)


def _run_pk() -> Column[int]:
    return Column(
        "run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False, index=True
    )


def _check_result_columns_v3() -> list[Column[Any]]:
    """The columns migration 3 adds to ``check_results`` (new objects on every call: one set
    for the table, one for the migration that adds them)."""
    return [Column("noise", Text)]  # JSON of a NoiseReading; NULL: not a measurement


def _outcome_columns_v3() -> list[Column[Any]]:
    """The columns migration 3 adds to ``outcomes``. Every one is NULL or has a server
    default, so rows written before it stay valid (``metric`` NULL: a legacy row, which
    never keeps its run from a baseline)."""
    return [
        Column("metric", String(200)),  # the metric the condition limits; NULL: none
        # the outcome only said "no baseline yet" (never disqualifies its run)
        Column("no_baseline", Boolean, nullable=False, default=False, server_default=false()),
        Column("breached", Boolean),  # the form judged its limit breached; NULL: legacy row
        Column("counts_as", String(16)),  # an INCONCLUSIVE outcome's weight: warn | fail
        Column("mde_pct", Float),
        Column("needed_n", Integer),
        # JSON array of the re-measurements of a breach ([{attempt, value, breached, reason}])
        Column("confirmations", Text, nullable=False, default="[]", server_default="[]"),
    ]


def _finding_columns_v4() -> list[Column[Any]]:
    """The columns migration 4 adds to ``findings`` (NULL fingerprint: a legacy row, whose
    fingerprint is derived again from tool, rule and location)."""
    return [
        Column("fingerprint", String(64)),
        # counted | waived | suppressed
        Column("state", String(16), nullable=False, default="counted", server_default="counted"),
        Column("waiver_id", String(200)),
    ]


check_results = Table(
    "check_results",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    _run_pk(),
    Column("check_id", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # ok | error | skipped
    Column("reason", Text, nullable=False, default=""),
    Column("duration_s", Float),
    *_check_result_columns_v3(),
    UniqueConstraint("run_pk", "check_id", name="uq_check_results_run_check"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    _run_pk(),
    Column("check_id", String(128), nullable=False),
    Column("name", String(200), nullable=False),
    Column("value", Float),  # NULL: not measured (NaN)
    Column("unit", String(32), nullable=False, default=""),
    Column("direction", String(8), nullable=False),
    Column("samples", Text, nullable=False, default="[]"),  # JSON array
    UniqueConstraint("run_pk", "check_id", "name", name="uq_metrics_run_check_name"),
    Index("ix_metrics_check_name", "check_id", "name"),
)

findings = Table(
    "findings",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    _run_pk(),
    Column("check_id", String(128), nullable=False),
    Column("tool", String(64), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("confidence", String(32)),
    Column("location", Text, nullable=False),
    Column("message", Text, nullable=False),
    *_finding_columns_v4(),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    _run_pk(),
    Column("check_id", String(128), nullable=False),
    Column("condition", Text, nullable=False),
    Column("status", String(16), nullable=False),  # widened by migration 3 (inconclusive)
    Column("severity", String(16), nullable=False),
    Column("value", Float),
    Column("target", Text, nullable=False),
    Column("baseline", Float),
    Column("change_pct", Float),
    Column("p_value", Float),
    Column("effect", Float),
    Column("effect_ci_low", Float),
    Column("effect_ci_high", Float),
    Column("baseline_runs", Text, nullable=False, default="[]"),  # JSON array of run ids
    Column("reason", Text, nullable=False),
    *_outcome_columns_v3(),
)

# Children of a run, in the order they are written (and checked for orphans).
# Version 5: the result of each cacheable check of a run, as the check produced it (before
# waivers and baseline marks), under the hash of its inputs: a later run of the same target
# whose check has the same key reuses it when this run passed (see neuroerp_ci.run.cache).
check_cache = Table(
    "check_cache",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    _run_pk(),
    Column("check_id", String(128), nullable=False),
    Column("cache_key", String(64), nullable=False),
    Column("result", Text, nullable=False),  # JSON: the result and its samples
    UniqueConstraint("run_pk", "check_id", name="uq_check_cache_run_check"),
    Index("ix_check_cache_lookup", "cache_key", "check_id"),
)

RUN_CHILDREN: tuple[Table, ...] = (check_results, metrics, findings, outcomes, check_cache)

# One row while a run holds the rollout lock of a stage and target (primary key: at most one).
rollout_locks = Table(
    "rollout_locks",
    metadata,
    Column("stage", String(200), primary_key=True),
    Column("target", String(200), primary_key=True),
    Column("run_id", String(128), nullable=False),  # the holder
    Column("label", Text, nullable=False, default=""),  # e.g. its Prefect flow run
    Column("token", String(64), nullable=False),  # this acquisition; renew/release compare it
    Column("acquired_at", DateTime, nullable=False),
    Column("renewed_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),  # after this, another run may take it over
)

# One row per calibration of a condition (``neuroerp-ci calibrate``): how often it is wrong,
# measured by replaying the stored history. Not a child of a run: it describes many.
calibrations = Table(
    "calibrations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("stage", String(200), nullable=False),
    Column("target", String(200), nullable=False),
    Column("check_id", String(128), nullable=False),
    Column("condition", Text, nullable=False),  # the condition's text, as in the outcomes
    Column("metric", String(200)),
    Column("measured_at", DateTime, nullable=False),
    Column("runs", Integer, nullable=False),  # passing runs replayed
    Column("pairs", Integer, nullable=False),  # A/A pairs judged
    Column("false_alarm_pct", Float),  # NULL: too few runs for A/A pairs
    Column("detection", Text, nullable=False, default="[]"),  # JSON [[shift %, detected %], ...]
    Column("budget_pct", Float, nullable=False),
    Column("over_budget", Boolean, nullable=False, default=False),
    Index("ix_calibrations_lookup", "stage", "target", "check_id", "measured_at"),
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _v1_tables() -> tuple[Table, ...]:
    """The run tables as migration 1 created them, frozen: migration 3 alters ``outcomes``
    and ``check_results``, and a fresh store must be built the way an old one was."""
    frozen = MetaData()
    v1_runs = runs.to_metadata(frozen)  # unchanged since version 1
    v1_checks = Table(
        "check_results",
        frozen,
        Column("pk", Integer, primary_key=True, autoincrement=True),
        _run_pk(),
        Column("check_id", String(128), nullable=False),
        Column("kind", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("reason", Text, nullable=False, default=""),
        Column("duration_s", Float),
        UniqueConstraint("run_pk", "check_id", name="uq_check_results_run_check"),
    )
    v1_metrics = metrics.to_metadata(frozen)  # unchanged since version 1
    v1_findings = Table(
        "findings",
        frozen,
        Column("pk", Integer, primary_key=True, autoincrement=True),
        _run_pk(),
        Column("check_id", String(128), nullable=False),
        Column("tool", String(64), nullable=False),
        Column("rule", String(200), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("confidence", String(32)),
        Column("location", Text, nullable=False),
        Column("message", Text, nullable=False),
    )
    v1_outcomes = Table(
        "outcomes",
        frozen,
        Column("pk", Integer, primary_key=True, autoincrement=True),
        _run_pk(),
        Column("check_id", String(128), nullable=False),
        Column("condition", Text, nullable=False),
        Column("status", String(8), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("value", Float),
        Column("target", Text, nullable=False),
        Column("baseline", Float),
        Column("change_pct", Float),
        Column("p_value", Float),
        Column("effect", Float),
        Column("effect_ci_low", Float),
        Column("effect_ci_high", Float),
        Column("baseline_runs", Text, nullable=False, default="[]"),
        Column("reason", Text, nullable=False),
    )
    return v1_runs, v1_checks, v1_metrics, v1_findings, v1_outcomes


def _v1(conn: Connection) -> None:
    for table in _v1_tables():
        table.create(conn)


def _v2(conn: Connection) -> None:
    rollout_locks.create(conn)


def _add_columns(conn: Connection, table: str, columns: Sequence[Column[Any]]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` with each column as ``CREATE TABLE`` would write it
    (type, server default, NOT NULL), so an added column is the column a new table has."""
    for column in columns:
        spec = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {spec}"))


def _v3(conn: Connection) -> None:
    _add_columns(conn, outcomes.name, _outcome_columns_v3())
    _add_columns(conn, check_results.name, _check_result_columns_v3())
    if conn.dialect.name == "postgresql":  # SQLite does not enforce a VARCHAR length
        conn.execute(text("ALTER TABLE outcomes ALTER COLUMN status TYPE VARCHAR(16)"))
    calibrations.create(conn)


def _v4(conn: Connection) -> None:
    _add_columns(conn, findings.name, _finding_columns_v4())


def _v5(conn: Connection) -> None:
    check_cache.create(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, check results, metrics, findings, outcomes", _v1),
    Migration(2, "rollout locks", _v2),
    Migration(3, "outcome metric, noise, inconclusive, confirmations; calibrations", _v3),
    Migration(4, "finding fingerprints, waived and suppressed findings", _v4),
    Migration(5, "check results kept for reuse by their inputs' hash", _v5),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# pg_advisory_xact_lock keys: any constant that no other application on the server uses.
MIGRATION_LOCK_KEY = 0x6E65_7572  # "neur"
PIN_LOCK_KEY = 0x6E65_7573


def lock_for_migration(conn: Connection) -> None:
    """Serialise migrations across processes until the transaction ends.

    PostgreSQL: a transaction-level advisory lock. SQLite: nothing to do here, the caller's
    transaction began with ``BEGIN IMMEDIATE`` and so already holds the database's write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def applied_versions(conn: Connection) -> list[int]:
    """The migration versions recorded in the store (empty for a fresh database)."""
    if not conn.dialect.has_table(conn, schema_migrations.name):
        return []
    return sorted(conn.scalars(select(schema_migrations.c.version)))


def migrate(conn: Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations the store lacks, in order; return the versions applied.

    Runs in the caller's transaction (which holds the migration lock): all of them apply, or
    none. Refuses a store that a newer neuroerp-ci has migrated beyond what this one knows.
    """
    known = max((m.version for m in migrations), default=0)
    schema_migrations.create(conn, checkfirst=True)
    applied = set(applied_versions(conn))
    newest = max(applied, default=0)
    if newest > known:
        raise StoreError(
            f"store schema version {newest} is newer than this neuroerp-ci knows ({known}); "
            "upgrade neuroerp-ci"
        )
    done: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in applied:
            continue
        migration.apply(conn)
        conn.execute(
            insert(schema_migrations).values(
                version=migration.version,
                description=migration.description,
                applied_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )
        done.append(migration.version)
    return done


__all__ = [
    "MIGRATIONS",
    "RUN_CHILDREN",
    "SCHEMA_VERSION",
    "Migration",
    "applied_versions",
    "calibrations",
    "check_cache",
    "check_results",
    "findings",
    "lock_for_migration",
    "metadata",
    "metrics",
    "migrate",
    "outcomes",
    "rollout_locks",
    "runs",
    "schema_migrations",
]
