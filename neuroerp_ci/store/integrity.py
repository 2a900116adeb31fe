"""The store's integrity checks: a cheap one on every open, and the full one on request.

On open (SQLite, :func:`sqlite_file_problem`): before anything writes to an existing file,
it must be an SQLite database of whole pages that SQLite's ``quick_check`` finds sound and
that holds a neuroerp-ci history (or nothing yet), so a truncated, overwritten or foreign
file is reported, never taken for an empty store and written over.

In full (:func:`integrity_problems`): the database's own check, then the store's invariants.
Invariants: no row without its run; a run that is not finished owns no rows (a run's results
are written in one transaction with its verdict, so anything else is a half-written run); a
finished run has a verdict and an end time; statuses and verdicts are ones this code writes;
the schema is at a version this code knows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import exists, func, select, text
from sqlalchemy.engine import Connection

from neuroerp_ci.model import Verdict
from neuroerp_ci.store.records import RunStatus
from neuroerp_ci.store.schema import (
    RUN_CHILDREN,
    SCHEMA_VERSION,
    applied_versions,
    runs,
    schema_migrations,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
_HEADER_BYTES = 100
_SHOWN = 3  # problems or table names quoted in one message
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def sqlite_file_problem(path: Path, busy_timeout_s: float = 30.0) -> str | None:
    """Why the existing SQLite file ``path`` cannot be used as a store, or None.

    Read-only: nothing is written to the file. ``quick_check`` reads every page once
    (~30 ms for an 80 MB store with a warm cache); the rest is the 100-byte header. Raises
    :class:`sqlite3.Error` when SQLite cannot read the file for another reason (locked,
    permissions): not damage, so the caller reports it as such.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            header = handle.read(_HEADER_BYTES)
    except OSError as exc:
        return f"the file cannot be read ({exc.strerror})"
    if size == 0:  # SQLite would take it for a new database; our stores never look like that
        return "the file is empty (0 bytes): truncated, or not a store neuroerp-ci created"
    if len(header) < _HEADER_BYTES or not header.startswith(SQLITE_MAGIC):
        return f"the file ({size} bytes) is not an SQLite database: overwritten or truncated?"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"the file's SQLite header is damaged (page size {page_size})"
    if size % page_size:
        return f"the file is truncated: {size} bytes are not whole {page_size}-byte pages"
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=busy_timeout_s)
        try:
            found = [str(row[0]) for row in db.execute(f"PRAGMA quick_check({_SHOWN})")]
            tables = {
                str(row[0])
                for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) in _DAMAGED:
            return f"the file is damaged: SQLite says {exc}"
        raise
    if found != ["ok"]:
        lines = [line for f in found for line in f.splitlines() if not line.startswith("***")]
        return "the file is damaged: SQLite quick_check: " + "; ".join(lines[:_SHOWN])
    foreign = sorted(t for t in tables if not t.startswith("sqlite_"))
    if foreign and schema_migrations.name not in tables:
        return (
            "the file is an SQLite database but not a neuroerp-ci history store (it holds "
            f"{', '.join(foreign[:_SHOWN])}{', ...' if len(foreign) > _SHOWN else ''})"
        )
    return None


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
