"""The integrity check finds what a crash or a buggy writer could leave behind."""

from __future__ import annotations

import sqlite3

from neuroerp_ci.store import HistoryStore

from .conftest import at, make_report, record


def test_a_sound_store_has_no_problems(store: HistoryStore) -> None:
    record(store, make_report("a", started=at(0)))
    store.begin_run("running", "staging", "erp", "v1", {}, at(1))
    assert store.integrity_check() == []


def test_orphans_half_written_runs_and_bad_values_are_reported(
    store: HistoryStore, store_url: str
) -> None:
    record(store, make_report("a", started=at(0)))
    record(store, make_report("b", started=at(1)))
    store.begin_run("half", "staging", "erp", "v1", {}, at(2))
    # Plant the damage with plain sqlite3 and foreign keys off, as a buggy writer could.
    db = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
    db.execute("PRAGMA foreign_keys = OFF")
    half = db.execute("SELECT pk FROM runs WHERE run_id = 'half'").fetchone()[0]
    db.execute(
        "INSERT INTO check_results (run_pk, check_id, kind, status, reason) "
        "VALUES (?, 'api', 'http_probe', 'ok', '')",
        (half,),
    )
    db.execute("DELETE FROM runs WHERE run_id = 'a'")  # its children stay behind: orphans
    db.execute("UPDATE runs SET verdict = 'MAYBE' WHERE run_id = 'b'")
    db.close()
    problems = store.integrity_check()
    assert "check_results: 2 rows without their run" in problems
    assert "metrics: 3 rows without their run" in problems
    assert "run half is running but has check_results rows (half written)" in problems
    assert "run b has an unknown status 'finished' or verdict 'MAYBE'" in problems
    assert any(p.startswith("sqlite foreign_key_check: check_results") for p in problems)
