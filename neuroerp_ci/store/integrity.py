"""The store's integrity check: the database's own, then the store's invariants.

Invariants: no row without its run; a run that is not finished owns no rows (a run's results
are written in one transaction with its verdict, so anything else is a half-written run); a
finished run has a verdict and an end time; statuses and verdicts are ones this code writes;
the schema is at a version this code knows.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select, text
from sqlalchemy.engine import Connection

from neuroerp_ci.model import Verdict
from neuroerp_ci.store.records import RunStatus
from neuroerp_ci.store.schema import RUN_CHILDREN, SCHEMA_VERSION, applied_versions, runs


def integrity_problems(conn: Connection) -> list[str]:
    """Every problem found, one line each; an empty list means the store is sound."""
    problems = _database_checks(conn)
    versions = applied_versions(conn)
    if versions != list(range(1, SCHEMA_VERSION + 1)):
        problems.append(f"schema migrations {versions}, expected 1..{SCHEMA_VERSION}")
        return problems  # the tables below may not exist
    for child in RUN_CHILDREN:
        orphans = conn.scalar(
            select(func.count())
            .select_from(child)
            .where(~exists().where(runs.c.pk == child.c.run_pk))
        )
        if orphans:
            problems.append(f"{child.name}: {orphans} rows without their run")
        partial = conn.execute(
            select(runs.c.run_id, runs.c.status)
            .where(runs.c.status != RunStatus.FINISHED.value)
            .where(exists().where(child.c.run_pk == runs.c.pk))
        ).all()
        problems.extend(
            f"run {r.run_id} is {r.status} but has {child.name} rows (half written)"
            for r in partial
        )
    problems.extend(
        f"run {r.run_id} is finished without a verdict or end time"
        for r in conn.execute(
            select(runs.c.run_id).where(
                runs.c.status == RunStatus.FINISHED.value,
                (runs.c.verdict.is_(None)) | (runs.c.finished_at.is_(None)),
            )
        )
    )
    problems.extend(
        f"run {r.run_id} has an unknown status {r.status!r} or verdict {r.verdict!r}"
        for r in conn.execute(
            select(runs.c.run_id, runs.c.status, runs.c.verdict).where(
                runs.c.status.not_in([s.value for s in RunStatus])
                | (runs.c.verdict.is_not(None) & runs.c.verdict.not_in([v.value for v in Verdict]))
            )
        )
    )
    return problems


def _database_checks(conn: Connection) -> list[str]:
    if conn.dialect.name != "sqlite":
        return []  # PostgreSQL guards its pages itself; the invariants below cover the rest
    problems = [
        f"sqlite integrity_check: {row[0]}"
        for row in conn.execute(text("PRAGMA integrity_check"))
        if row[0] != "ok"
    ]
    problems.extend(
        f"sqlite foreign_key_check: {row[0]} rowid {row[1]} has no {row[2]} row"
        for row in conn.execute(text("PRAGMA foreign_key_check"))
    )
    return problems
