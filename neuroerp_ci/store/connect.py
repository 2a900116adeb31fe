"""Store URLs and the engine behind a store, tuned for several writers at once.

SQLite (the default, one file per project) is opened in WAL mode so readers never block the
writer and a killed writer leaves no half transaction behind (the WAL is rolled back on the
next open). Every write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock
up front, so a second writer waits in the busy handler (up to 30 s) instead of failing with
"database is locked" when it upgrades a read lock. ``synchronous=FULL``: with WAL, NORMAL
survives a killed process but may lose the last commits on power loss; a recorded PASS is
what a later stage is promoted on, and one fsync per commit is nothing next to a stage run.

WAL needs a local file system (shared memory between processes): a store on NFS or shared
by several machines belongs in PostgreSQL (``postgresql://user@host/db``, driver psycopg 3).

An SQLite store is never taken for a new one by mistake. A missing file is created whole,
its header written before it appears under its name (a hard link), so no process ever sees a
store file of 0 bytes; SQLite would take such a file, or one truncated to nothing, for an
empty database and silently start a new history in it. An existing file is checked before
anything writes to it (:func:`neuroerp_ci.store.integrity.sqlite_file_problem`): a damaged,
truncated or foreign file is a :class:`StoreError` and stays exactly as it was.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from neuroerp_ci.store.errors import StoreError, StoreUrlError
from neuroerp_ci.store.integrity import sqlite_file_problem
from neuroerp_ci.support.state_dir import ensure_state_dir

DEFAULT_FILE = "history.sqlite3"
SQLITE_BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
# Execution option of a connection whose transaction writes (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "neuroerp_ci_write"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_LEFT_AS_IT_IS = (
    "the file was left as it is: restore it from a backup, or move it away to start a new history"
)


def default_store_url(project_dir: Path) -> str:
    """``sqlite:///<project_dir>/.neuroerp-ci/history.sqlite3`` (an absolute path)."""
    return "sqlite:///" + str((ensure_state_dir(project_dir) / DEFAULT_FILE).resolve())


def store_url(configured: str | None, project_dir: Path) -> str:
    """The store URL of a pipeline: the configured one, else the default file.

    A relative SQLite path is taken relative to ``project_dir`` (the pipeline file's folder),
    not to wherever the command happens to run.
    """
    if not configured:
        return default_store_url(project_dir)
    url = parse_url(configured)
    if url.get_backend_name() == "sqlite" and url.database and not _memory(url):
        path = Path(url.database)
        if not path.is_absolute():
            return url.set(database=str((project_dir / path).resolve())).render_as_string(
                hide_password=False
            )
    return configured


def parse_url(url: str) -> URL:
    """The URL parsed; a one-line :class:`StoreUrlError` when it cannot be."""
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreUrlError(f"history store URL {url!r} is not a database URL: {exc}") from None


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparsable URL>"
    return parsed.render_as_string(hide_password=True)


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite (file) or PostgreSQL; anything else is refused.

    ``postgresql://`` without a driver uses psycopg 3 (SQLAlchemy's default, psycopg2, is not
    a dependency). Nothing connects yet: connection errors surface on first use.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreUrlError(
            f"history store {safe_url(parsed)}: backend {backend!r} is not supported "
            f"(use {' or '.join(SUPPORTED_BACKENDS)})"
        )
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
        )
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreUrlError(
            f"history store {safe_url(parsed)}: database driver not available: {exc}"
        ) from None


def _memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def _sqlite_engine(url: URL) -> Engine:
    if _memory(url):
        raise StoreUrlError(
            f"history store {safe_url(url)}: an in-memory SQLite store forgets every run; "
            "give a file path"
        )
    path = Path(str(url.database))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"history store {safe_url(url)}: cannot create {path.parent}: {exc.strerror}"
        ) from None
    _sound_or_new(path, safe_url(url))
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sound_or_new(path: Path, name: str) -> None:
    """An existing store file that passes the open check, or a new one created whole."""
    if path.exists():
        try:
            problem = sqlite_file_problem(path, SQLITE_BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise StoreError(f"history store {name}: cannot open {path}: {exc}") from None
        if problem is not None:
            raise StoreError(f"history store {name}: {problem}; {_LEFT_AS_IT_IS}")
        return
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise StoreError(
            f"history store {name}: the file is missing but its write-ahead log {wal} is "
            "there (deleted or moved by hand?): restore the file, or move the log away to "
            "start a new history"
        )
    _create_whole(path, name)


def _create_whole(path: Path, name: str) -> None:
    """Create an empty WAL-mode store at ``path``: written under a temporary name, then
    linked to ``path`` (which fails if another process created it first: then that one is
    used), so the file never exists without its header."""
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    try:
        db = sqlite3.connect(fresh, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")  # writes the header page
        finally:
            db.close()
        try:
            os.link(fresh, path)
        except FileExistsError:
            pass
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"history store {name}: cannot create {path}: {exc}") from None
    finally:
        fresh.unlink(missing_ok=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_begin); the driver must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL needs an exclusive lock and SQLite answers "database is
    # locked" at once, without the busy handler, while another process opens it too (seen
    # with 8 processes opening a fresh store together): retry for as long as busy_timeout.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
