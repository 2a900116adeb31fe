"""Rollout locks in the history store: take, refuse, renew, expire, take over, release — on
SQLite and on PostgreSQL, with threads and processes racing for one lock (exactly one wins)
and a holder killed with SIGKILL (its lease runs out and the next run takes the lock over).

Lease arithmetic is tested on a fake clock; the renewal thread and the crash on the real one,
with waits bounded by deadlines, never by a duration asserted."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect

from neuroerp_ci.store import (
    HistoryStore,
    LeaseRenewer,
    LockTable,
    StoreError,
    open_store,
)
from neuroerp_ci.store.connect import WRITE_OPTION, create_store_engine
from neuroerp_ci.store.schema import MIGRATIONS, lock_for_migration, migrate

from .conftest import make_report

T0 = datetime(2026, 3, 1, 12, 0, 0)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    """The store URL of each backend (PostgreSQL: the session's throw-away database)."""
    name = "store_url" if request.param == "sqlite" else "pg_url"
    value: str = request.getfixturevalue(name)
    return value


@pytest.fixture
def opened(url: str) -> Iterator[HistoryStore]:
    with open_store(url) as store:
        yield store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def locks(opened: HistoryStore, clock: FakeClock) -> LockTable:
    return opened.rollout_locks(clock)


def test_the_first_run_takes_the_lock_and_a_second_is_told_who_holds_it(
    locks: LockTable,
) -> None:
    first = locks.try_acquire("production", "erp", "run-a", "flow run a 1234", lease_s=60)
    assert first.lease is not None and first.took_over is None
    second = locks.try_acquire("production", "erp", "run-b", "flow run b", lease_s=60)
    assert second.lease is None
    assert second.holder.run_id == "run-a" and second.holder.label == "flow run a 1234"
    assert second.holder.acquired_at == T0
    assert second.holder.expires_at == T0 + timedelta(seconds=60)
    assert second.holder.describe() == "run run-a (flow run a 1234) since 2026-03-01T12:00:00+00:00"


def test_locks_are_per_stage_and_target(locks: LockTable) -> None:
    assert locks.try_acquire("production", "erp", "a", "", 60).lease is not None
    assert locks.try_acquire("production", "shop", "b", "", 60).lease is not None
    assert locks.try_acquire("canary", "erp", "c", "", 60).lease is not None
    assert locks.try_acquire("production", "erp", "d", "", 60).lease is None


def test_a_released_lock_is_free_and_a_stale_release_does_nothing(locks: LockTable) -> None:
    lease = locks.try_acquire("production", "erp", "run-a", "", 60).lease
    assert lease is not None
    assert locks.release(lease) is True
    assert locks.holder("production", "erp") is None
    assert locks.release(lease) is False  # released twice: nothing to delete
    again = locks.try_acquire("production", "erp", "run-b", "", 60)
    assert again.lease is not None and again.took_over is None
    assert locks.release(lease) is False  # the old lease cannot delete run-b's lock
    held = locks.holder("production", "erp")
    assert held is not None and held.run_id == "run-b"


def test_renewing_keeps_the_lease_alive_past_its_first_length(
    locks: LockTable, clock: FakeClock
) -> None:
    lease = locks.try_acquire("production", "erp", "run-a", "", lease_s=60).lease
    assert lease is not None
    for _ in range(5):  # 5 x 50 s: far past the first 60 s, renewed in time each time
        clock.advance(50)
        assert locks.renew(lease) is True
        assert locks.try_acquire("production", "erp", "run-b", "", 60).lease is None
    held = locks.holder("production", "erp")
    assert held is not None and held.acquired_at == T0
    assert held.renewed_at == clock.now and held.expires_at == clock.now + timedelta(seconds=60)


def test_a_live_lease_is_not_taken_over_even_a_moment_before_it_expires(
    locks: LockTable, clock: FakeClock
) -> None:
    assert locks.try_acquire("production", "erp", "run-a", "", 60).lease is not None
    clock.advance(59.999)
    assert locks.try_acquire("production", "erp", "run-b", "", 60).lease is None


def test_an_expired_lease_is_taken_over_and_its_old_holder_is_out(
    locks: LockTable, clock: FakeClock
) -> None:
    old = locks.try_acquire("production", "erp", "run-a", "flow run a", 60).lease
    assert old is not None
    clock.advance(60)
    new = locks.try_acquire("production", "erp", "run-b", "flow run b", 60)
    assert new.lease is not None
    assert new.took_over is not None and new.took_over.run_id == "run-a"
    assert new.holder.run_id == "run-b" and new.holder.acquired_at == clock.now
    # The crashed run comes back: it can neither renew nor release run-b's lock.
    assert locks.renew(old) is False
    assert locks.release(old) is False
    held = locks.holder("production", "erp")
    assert held is not None and held.run_id == "run-b"


def test_the_same_run_id_twice_is_still_two_holders(locks: LockTable) -> None:
    # A retried flow run may reuse its run id: the token, not the id, says who holds it.
    assert locks.try_acquire("production", "erp", "run-a", "", 60).lease is not None
    assert locks.try_acquire("production", "erp", "run-a", "", 60).lease is None


def test_threads_racing_for_one_lock_exactly_one_wins(opened: HistoryStore) -> None:
    locks = opened.rollout_locks()  # the real clock: each thread its own "now"
    racers = 8
    start = threading.Barrier(racers)
    won: list[str] = []
    errors: list[BaseException] = []

    def race(name: str) -> None:
        start.wait(timeout=30)
        try:
            if locks.try_acquire("production", "erp", name, "", 60).lease is not None:
                won.append(name)
        except BaseException as exc:  # reported below: the test fails on it
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"run-{i}",)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(won) == 1
    held = locks.holder("production", "erp")
    assert held is not None and held.run_id == won[0]


def test_threads_racing_to_take_over_an_expired_lease_exactly_one_wins(
    opened: HistoryStore,
) -> None:
    then = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    expired = opened.rollout_locks(lambda: then)
    assert expired.try_acquire("production", "erp", "crashed", "", 60).lease is not None
    locks = opened.rollout_locks(lambda: then + timedelta(minutes=5))
    racers = 6
    start = threading.Barrier(racers)
    won: list[str] = []

    def race(name: str) -> None:
        start.wait(timeout=30)
        attempt = locks.try_acquire("production", "erp", name, "", 600)
        if attempt.lease is not None:
            assert attempt.took_over is not None and attempt.took_over.run_id == "crashed"
            won.append(name)

    threads = [threading.Thread(target=race, args=(f"run-{i}",)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1


def _race_in_process(url: str, name: str, start_at: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    time.sleep(max(0.0, start_at - time.time()))
    try:
        with open_store(url) as store:
            attempt = store.rollout_locks().try_acquire("production", "erp", name, "", 60)
        queue.put((name, attempt.lease is not None, attempt.holder.run_id))
    except Exception as exc:  # reported to the test, which fails on it
        queue.put((name, None, repr(exc)))


@pytest.mark.integration
def test_processes_racing_for_one_lock_exactly_one_wins(url: str) -> None:
    open_store(url).close()  # migrated before the race: the race is for the lock alone
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 3.0  # after every interpreter has started
    names = [f"proc-{i}" for i in range(4)]
    procs = [ctx.Process(target=_race_in_process, args=(url, n, start_at, queue)) for n in names]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert all(r[1] is not None for r in results), results
    winners = [name for name, won, _ in results if won]
    assert len(winners) == 1, results
    assert {holder for _, _, holder in results} == {winners[0]}  # everyone saw the same holder


HOLDER = textwrap.dedent(
    """
    import sys, time
    from neuroerp_ci.store import LeaseRenewer, open_store
    store = open_store(sys.argv[1])
    locks = store.rollout_locks()
    lease = locks.try_acquire("production", "erp", "crashed", "pid", float(sys.argv[2])).lease
    assert lease is not None
    LeaseRenewer(lambda: locks.renew(lease), lease.lease_s).start()
    print("held", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.integration
def test_a_killed_holders_lease_expires_and_the_next_run_takes_it_over(
    url: str, tmp_path: Path
) -> None:
    lease_s = 4.0
    open_store(url).close()
    holder = subprocess.Popen(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", HOLDER, url, str(lease_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with open_store(url) as store:
            locks = store.rollout_locks()
            # Alive and renewing: refused, also after more than one lease length.
            deadline = time.monotonic() + 2 * lease_s
            while time.monotonic() < deadline:
                refused = locks.try_acquire("production", "erp", "next", "", 60)
                assert refused.lease is None and refused.holder.run_id == "crashed"
                time.sleep(0.5)
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
            deadline = time.monotonic() + 60
            attempt = locks.try_acquire("production", "erp", "next", "", 60)
            while attempt.lease is None and time.monotonic() < deadline:
                time.sleep(0.2)
                attempt = locks.try_acquire("production", "erp", "next", "", 60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
    assert attempt.lease is not None, "the killed holder's lease never expired"
    assert attempt.took_over is not None and attempt.took_over.run_id == "crashed"


# --- the renewal thread ------------------------------------------------------------------------


def test_the_renewer_renews_until_stopped() -> None:
    calls = threading.Semaphore(0)

    def renew() -> bool:
        calls.release()
        return True

    renewer = LeaseRenewer(renew, lease_s=0.03)
    renewer.start()
    try:
        for _ in range(3):
            assert calls.acquire(timeout=30)
    finally:
        renewer.stop()
    assert renewer.lost is None


def test_the_renewer_notices_a_lease_taken_over() -> None:
    done = threading.Event()

    def renew() -> bool:
        done.set()
        return False

    renewer = LeaseRenewer(renew, lease_s=0.03)
    renewer.start()
    assert done.wait(timeout=30)
    renewer.stop()
    assert renewer.lost is not None and "took the lock over" in renewer.lost


def test_the_renewer_retries_store_errors_until_the_lease_would_have_expired() -> None:
    elapsed = [0.0]
    tries = threading.Semaphore(0)

    def renew() -> bool:
        tries.release()
        elapsed[0] += 0.5  # each failed try: half a lease later on the fake clock
        raise StoreError("history store x: cannot renew: connection refused")

    renewer = LeaseRenewer(renew, lease_s=1.0, interval_s=0.01, monotonic=lambda: elapsed[0])
    renewer.start()
    assert tries.acquire(timeout=30)
    assert tries.acquire(timeout=30)  # the first error was retried; then the lease was over
    renewer.stop()
    assert renewer.lost is not None and "connection refused" in renewer.lost


# --- the migration -----------------------------------------------------------------------------


def test_a_store_of_schema_1_gets_the_lock_table_and_keeps_its_runs(store_url: str) -> None:
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            lock_for_migration(conn)
            migrate(conn, MIGRATIONS[:1])
    engine.dispose()
    report = make_report("before-v2")
    with HistoryStore(create_store_engine(store_url)) as old:
        # A run row as version 1 wrote it (its children's tables have gained columns since).
        old.begin_run(
            report.run_id, report.stage, report.target, report.version, {}, report.started_at
        )
    with open_store(store_url) as store:
        assert store.schema_versions() == [m.version for m in MIGRATIONS]
        assert store.run("before-v2").run_id == "before-v2"
        assert store.rollout_locks().try_acquire("production", "erp", "r", "", 60).lease
        assert store.integrity_check() == []
    engine = create_store_engine(store_url)
    assert "rollout_locks" in inspect(engine).get_table_names()
    engine.dispose()
