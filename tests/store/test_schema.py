"""Versioned migrations: applied once, in order, in one transaction, under a lock that keeps
two processes opening a fresh store from both creating it."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from neuroerp_ci.store import SCHEMA_VERSION, StoreError, open_store
from neuroerp_ci.store.connect import WRITE_OPTION, create_store_engine
from neuroerp_ci.store.schema import (
    MIGRATIONS,
    Migration,
    lock_for_migration,
    migrate,
    runs,
    schema_migrations,
)


def test_a_fresh_store_gets_every_table_and_its_version(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.schema_versions() == list(range(1, SCHEMA_VERSION + 1))
    engine = create_store_engine(store_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"schema_migrations", "runs", "check_results", "metrics", "findings", "outcomes",
            "rollout_locks", "calibrations"} <= tables  # fmt: skip


def test_migration_1_keeps_creating_the_version_1_tables(store_url: str) -> None:
    """Migration 3 adds columns with ALTER TABLE, so migration 1 must not create them too:
    it creates the frozen version 1 shape, on a fresh store as on an old one."""
    open_store(store_url).close()  # creates the folder
    engine = create_store_engine(store_url.replace("history.sqlite3", "v1.sqlite3"))
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            assert migrate(conn, MIGRATIONS[:1]) == [1]
        v1 = {c["name"] for c in inspect(conn).get_columns("outcomes")}
        conn.rollback()  # end the inspection's transaction
        v1_findings = {c["name"] for c in inspect(conn).get_columns("findings")}
        conn.rollback()
        with conn.begin():
            assert migrate(conn) == [2, 3, 4, 5]
        v3 = {c["name"] for c in inspect(conn).get_columns("outcomes")}
        noise = {c["name"] for c in inspect(conn).get_columns("check_results")}
        v4_findings = {c["name"] for c in inspect(conn).get_columns("findings")}
    engine.dispose()
    added = {"metric", "no_baseline", "breached", "counts_as", "mde_pct", "needed_n",
             "confirmations"}  # fmt: skip
    assert not added & v1 and v3 == v1 | added and "noise" in noise
    finding_columns = {"fingerprint", "state", "waiver_id"}
    assert not finding_columns & v1_findings and v4_findings == v1_findings | finding_columns


def test_reopening_applies_nothing_again(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.migrate() == []
    with open_store(store_url) as store:
        assert store.schema_versions() == list(range(1, SCHEMA_VERSION + 1))


def _extra_column(conn) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text("ALTER TABLE runs ADD COLUMN extra INTEGER"))


def test_a_new_migration_is_applied_to_an_existing_store(store_url: str) -> None:
    open_store(store_url).close()
    newer = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "runs.extra", _extra_column))
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            lock_for_migration(conn)
            assert migrate(conn, newer) == [SCHEMA_VERSION + 1]
        with conn.begin():
            assert migrate(conn, newer) == []
    columns = {c["name"] for c in inspect(engine).get_columns("runs")}
    engine.dispose()
    assert "extra" in columns


def _broken(conn) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text("ALTER TABLE runs ADD COLUMN half INTEGER"))
    raise RuntimeError("the new migration breaks half-way")


def test_a_failing_migration_leaves_the_store_as_it_was(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_store_engine(store_url)
    with engine.connect() as conn, pytest.raises(RuntimeError):
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            migrate(conn, (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", _broken)))
    columns = {c["name"] for c in inspect(engine).get_columns("runs")}
    with engine.connect() as conn:
        versions = list(conn.scalars(select(schema_migrations.c.version)))
    engine.dispose()
    assert "half" not in columns  # the ALTER was rolled back with the failed migration
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_store_from_a_newer_neuroerp_ci_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        conn.execute(
            insert(schema_migrations).values(
                version=99, description="future", applied_at=datetime(2030, 1, 1)
            )
        )
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        open_store(store_url)


def test_the_database_refuses_a_second_pinned_run_of_a_stage(store_url: str) -> None:
    open_store(store_url).close()
    engine = create_store_engine(store_url)
    row = {"stage": "staging", "target": "erp", "version": "v", "fingerprint": "{}",
           "status": "finished", "summary": "", "started_at": datetime(2026, 1, 1)}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(runs), [{**row, "run_id": "a", "pinned": True},
                                    {**row, "run_id": "b", "pinned": False}])  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == "b").values(pinned=True))
    engine.dispose()


def _open_at(url: str, start_at: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    time.sleep(max(0.0, start_at - time.time()))
    try:
        with open_store(url) as store:
            queue.put(("ok", store.schema_versions()))
    except Exception as exc:  # reported to the test, which fails on it
        queue.put(("error", repr(exc)))


@pytest.mark.integration
@pytest.mark.parametrize("attempt", range(3))
def test_processes_opening_a_fresh_store_at_once_migrate_it_once(
    tmp_path: Path, attempt: int
) -> None:
    """Eight processes open one fresh file together (once failed 1 in ~20 tries with
    "database is locked" from the switch to WAL, before that switch was retried)."""
    url = f"sqlite:///{tmp_path / f'fresh-{attempt}' / 'history.sqlite3'}"
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 2.0  # after every interpreter has started
    procs = [ctx.Process(target=_open_at, args=(url, start_at, queue)) for _ in range(8)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert results == [("ok", list(range(1, SCHEMA_VERSION + 1)))] * len(procs)
    engine = create_store_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(schema_migrations.c.version)).all()
    engine.dispose()
    assert [r.version for r in rows] == list(range(1, SCHEMA_VERSION + 1))
