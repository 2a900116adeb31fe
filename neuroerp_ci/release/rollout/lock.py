"""The rollout lock: one rollout of a stage and target at a time, held from before the
approval to the end (rollback included), as a lease in the history store.

Prefect's deployment concurrency limit cannot do this: it frees the slot while a run is
paused for approval. See :class:`RolloutLock`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from neuroerp_ci.config.stage_rules import LockSpec
from neuroerp_ci.release._clock import now
from neuroerp_ci.store import Lease, LeaseRenewer, LockAttempt, LockTable, StoreError
from neuroerp_ci.store.locks import iso_utc

logger = logging.getLogger(__name__)


@dataclass
class LockOutcome:
    """What the rollout lock did, for the report: taken (maybe after waiting, maybe over an
    expired lease) or not, and which other run held it."""

    acquired: bool
    mode: str  # refuse | wait
    reason: str
    lease_s: float
    waited_s: float = 0.0
    holder_run_id: str | None = None  # the other run: refused by, waited for, or taken over from
    holder_label: str = ""
    holder_since: str | None = None
    took_over: bool = False  # from holder_*, whose lease had expired (it crashed)
    released: str = ""  # how it ended: "released at ...", or why it could not be


class RolloutLock:
    """The rollout lock of one stage and target for one run: take, confirm, release.

    :meth:`acquire` refuses or waits as ``spec`` says and then renews the lease in a thread
    until :meth:`release`. ``sleep`` and ``monotonic`` are the waiting's clock (tests).
    """

    def __init__(
        self,
        table: LockTable,
        spec: LockSpec,
        stage: str,
        target: str,
        run_id: str,
        label: str = "",
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._spec = spec
        self._stage, self._target, self._run_id, self._label = stage, target, run_id, label
        self._sleep = sleep
        self._monotonic = monotonic
        self._lease: Lease | None = None
        self._renewer: LeaseRenewer | None = None

    def acquire(self) -> LockOutcome:
        """Take the lock, waiting for it in ``wait`` mode; a store error is not a lock."""
        spec, what = self._spec, f"the {self._stage} rollout lock of {self._target}"
        started = self._monotonic()
        logged = False
        while True:
            waited = round(self._monotonic() - started, 3)
            try:
                attempt = self._table.try_acquire(
                    self._stage, self._target, self._run_id, self._label, spec.lease_s
                )
            except StoreError as exc:
                reason = f"could not take {what}: {exc}"
                return LockOutcome(False, spec.mode, reason, spec.lease_s, waited)
            if attempt.lease is not None:
                return self._taken(attempt, attempt.lease, waited, what)
            holder = attempt.holder
            outcome = LockOutcome(
                False,
                spec.mode,
                "",
                spec.lease_s,
                waited,
                holder_run_id=holder.run_id,
                holder_label=holder.label,
                holder_since=iso_utc(holder.acquired_at),
            )
            if spec.mode == "refuse":
                outcome.reason = (
                    f"another {self._stage} rollout of {self._target} holds the rollout "
                    f"lock: {holder.describe()}"
                )
                return outcome
            if waited >= spec.wait_timeout_s:
                outcome.reason = (
                    f"another {self._stage} rollout of {self._target} still holds the "
                    f"rollout lock after {waited:.0f} s of waiting: {holder.describe()}"
                )
                return outcome
            if not logged:
                logger.warning(
                    "waiting up to %.0f s for %s, held by %s",
                    spec.wait_timeout_s,
                    what,
                    holder.describe(),
                )
                logged = True
            self._sleep(min(spec.poll_s, max(spec.wait_timeout_s - waited, 0.0)))

    def _taken(self, attempt: LockAttempt, lease: Lease, waited: float, what: str) -> LockOutcome:
        self._lease = lease
        self._renewer = LeaseRenewer(lambda: self._table.renew(lease), lease.lease_s)
        self._renewer.start()
        mine = attempt.holder
        reason = f"took {what} at {iso_utc(mine.acquired_at)} (lease {lease.lease_s:g} s)"
        outcome = LockOutcome(True, self._spec.mode, reason, lease.lease_s, waited)
        if waited > 0:
            outcome.reason += f" after waiting {waited:.0f} s"
        old = attempt.took_over
        if old is not None:
            outcome.reason += (
                f", taking it over from {old.describe()}, whose lease expired at "
                f"{iso_utc(old.expires_at)}"
            )
            outcome.holder_run_id, outcome.holder_label = old.run_id, old.label
            outcome.holder_since, outcome.took_over = iso_utc(old.acquired_at), True
        return outcome

    def check(self) -> str | None:
        """None while this run holds the lock (renewed just now), else why it does not."""
        if self._lease is None or self._renewer is None:
            return "this run does not hold the rollout lock"
        if self._renewer.lost is not None:
            return f"the rollout lock was lost: {self._renewer.lost}"
        try:
            held = self._table.renew(self._lease)
        except StoreError as exc:
            return f"could not confirm the rollout lock: {exc}"
        return None if held else "the rollout lock was lost: another run took it over"

    def release(self) -> str:
        """Stop renewing and give the lock up; never raises (the lease expires anyway)."""
        if self._lease is None or self._renewer is None:
            return ""
        self._renewer.stop()
        lease, self._lease = self._lease, None
        try:
            released = self._table.release(lease)
        except StoreError as exc:
            logger.error("could not release the rollout lock: %s", exc)
            return f"NOT released ({exc}); it expires {lease.lease_s:g} s after its last renewal"
        if not released:
            return "not held any more at the end: another run had taken it over"
        return f"released at {now()}"
