"""Rollout locks: one rollout of a stage and target at a time, across processes and machines.

A lock is a row of ``rollout_locks`` keyed by stage and target: the run holding it (its run
id and a label such as its Prefect flow run), when it was acquired and until when its lease
runs. The holder renews the lease while it lives (:class:`LeaseRenewer`); a run that crashed
stops renewing, and once ``expires_at`` has passed the next rollout takes the lock over.

Taking the lock is one compare-and-set in a write transaction: read the row ``FOR UPDATE``
(SQLite: the transaction began with ``BEGIN IMMEDIATE`` and holds the database's write lock;
PostgreSQL: the row lock, and ``INSERT ... ON CONFLICT DO NOTHING`` when there is no row
yet), then insert, take over an expired lease (``UPDATE ... WHERE token = <the one read>``)
or report the holder. Of two runs racing for it exactly one wins. Renewing and releasing
compare the acquisition's random token, so a run whose lease was taken over cannot renew or
delete its successor's lock.

Time is the database server's clock on PostgreSQL (runs on several machines, one clock) and
the local clock on SQLite (one machine). Times are naive UTC, like the rest of the store.

Example::

    locks = store.rollout_locks()
    attempt = locks.try_acquire("production", "erp", run_id, "flow run 5f0c…", lease_s=60)
    if attempt.lease is None:
        print("held by", attempt.holder.describe())
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from neuroerp_ci.store.errors import StoreError
from neuroerp_ci.store.schema import rollout_locks

logger = logging.getLogger(__name__)

Transaction = Callable[[str], AbstractContextManager[Connection]]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class LockHolder:
    """The run holding a lock, as recorded (times naive UTC)."""

    stage: str
    target: str
    run_id: str
    label: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """'run R (flow run F) since 2026-03-01T12:00:00+00:00' — who, and since when."""
        label = f" ({self.label})" if self.label else ""
        return f"run {self.run_id}{label} since {iso_utc(self.acquired_at)}"


@dataclass(frozen=True)
class Lease:
    """A lock this process holds: what renewing and releasing it need."""

    stage: str
    target: str
    run_id: str
    token: str
    lease_s: float


@dataclass(frozen=True)
class LockAttempt:
    """The result of :meth:`LockTable.try_acquire`.

    ``lease`` is set when the lock was acquired; ``holder`` is who holds it now (this run when
    acquired); ``took_over`` the run whose lease had expired when this one took the lock.
    """

    holder: LockHolder
    lease: Lease | None = None
    took_over: LockHolder | None = None


class LockTable:
    """The ``rollout_locks`` rows of one store; ``write`` and ``read`` open its transactions.

    ``clock`` replaces the time source (tests); by default see the module docstring.
    """

    def __init__(self, write: Transaction, read: Transaction, clock: Clock | None = None) -> None:
        self._write = write
        self._read = read
        self._clock = clock

    def try_acquire(
        self, stage: str, target: str, run_id: str, label: str, lease_s: float
    ) -> LockAttempt:
        """Take the lock of ``stage`` and ``target`` if nobody holds a live lease on it."""
        token = secrets.token_hex(16)
        key = _key(stage, target)
        with self._write(f"take the {stage} rollout lock of {target}") as conn:
            found = conn.execute(select(rollout_locks).where(*key).with_for_update()).first()
            now = self._now(conn)  # after the row lock: a waiter decides on fresh time
            row = {
                "run_id": run_id,
                "label": label,
                "token": token,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": now + timedelta(seconds=lease_s),
            }
            took_over = None
            if found is None:
                conn.execute(
                    _insert(conn)
                    .values(stage=stage, target=target, **row)
                    .on_conflict_do_nothing(index_elements=["stage", "target"])
                )
            elif found.expires_at <= now:
                took_over = _holder(found)
                conn.execute(
                    update(rollout_locks)
                    .where(*key, rollout_locks.c.token == found.token)
                    .values(**row)
                )
            current = conn.execute(select(rollout_locks).where(*key)).first()
        if current is None:  # cannot happen inside one transaction; fail closed if it does
            raise StoreError(f"the {stage} rollout lock of {target} vanished while taking it")
        holder = _holder(current)
        if current.token != token:
            return LockAttempt(holder)
        if took_over is not None:
            logger.warning(
                "took over the %s rollout lock of %s from %s: its lease expired at %s",
                stage,
                target,
                took_over.describe(),
                iso_utc(took_over.expires_at),
            )
        return LockAttempt(holder, Lease(stage, target, run_id, token, lease_s), took_over)

    def renew(self, lease: Lease) -> bool:
        """Extend the lease by ``lease_s`` from now; False when this run no longer holds it."""
        with self._write(f"renew the {lease.stage} rollout lock of {lease.target}") as conn:
            now = self._now(conn)
            done = conn.execute(
                update(rollout_locks)
                .where(*_key(lease.stage, lease.target), rollout_locks.c.token == lease.token)
                .values(renewed_at=now, expires_at=now + timedelta(seconds=lease.lease_s))
            )
            return bool(done.rowcount == 1)

    def release(self, lease: Lease) -> bool:
        """Give the lock up; False when this run did not hold it any more."""
        with self._write(f"release the {lease.stage} rollout lock of {lease.target}") as conn:
            done = conn.execute(
                delete(rollout_locks).where(
                    *_key(lease.stage, lease.target), rollout_locks.c.token == lease.token
                )
            )
            return bool(done.rowcount == 1)

    def holder(self, stage: str, target: str) -> LockHolder | None:
        """Who holds the lock (even with an expired lease nobody took over yet), or None."""
        with self._read(f"read the {stage} rollout lock of {target}") as conn:
            row = conn.execute(select(rollout_locks).where(*_key(stage, target))).first()
        return None if row is None else _holder(row)

    def _now(self, conn: Connection) -> datetime:
        if self._clock is not None:
            return self._clock()
        if conn.dialect.name == "postgresql":
            value = conn.scalar(text("SELECT timezone('UTC', clock_timestamp())"))
            if not isinstance(value, datetime):
                raise StoreError(f"the database clock answered {value!r}, not a time")
            return value
        return datetime.now(UTC).replace(tzinfo=None)


class LeaseRenewer:
    """Renews a lease every ``interval_s`` (default ``lease_s / 3``) in a daemon thread until
    :meth:`stop`.

    ``lost`` says why the lease is gone: another run took it over, or it could not be renewed
    until it expired (the store unreachable). A store error before that is retried.
    """

    def __init__(
        self,
        renew: Callable[[], bool],
        lease_s: float,
        interval_s: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._renew = renew
        self._lease_s = lease_s
        self._interval_s = lease_s / 3 if interval_s is None else interval_s
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(target=self._loop, name="rollout-lease", daemon=True)

    @property
    def lost(self) -> str | None:
        return self._lost

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _loop(self) -> None:
        renewed = self._monotonic()
        while not self._stop.wait(self._interval_s):
            try:
                if not self._renew():
                    self._lost = "another run took the lock over (this run's lease had expired)"
                    return
                renewed = self._monotonic()
            except StoreError as exc:
                if self._monotonic() - renewed >= self._lease_s:
                    self._lost = f"the lease could not be renewed before it expired: {exc}"
                    return
                logger.warning("could not renew the rollout lock (will retry): %s", exc)


def iso_utc(moment: datetime) -> str:
    """A naive UTC time from the store as ISO 8601 to the second: '2026-03-01T12:00:00+00:00'."""
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _key(stage: str, target: str) -> tuple[Any, Any]:
    return rollout_locks.c.stage == stage, rollout_locks.c.target == target


def _insert(conn: Connection) -> Any:
    # Both dialects' INSERT ... ON CONFLICT; a concurrent first insert then does nothing.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(rollout_locks)


def _holder(row: Any) -> LockHolder:
    return LockHolder(
        row.stage,
        row.target,
        row.run_id,
        row.label,
        row.acquired_at,
        row.renewed_at,
        row.expires_at,
    )
