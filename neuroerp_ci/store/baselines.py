"""Baseline selection: which earlier runs a metric of this run is compared with.

For each metric, the baseline is the pinned run of the stage and target if there is one
(exactly that run, whatever its age: whoever pinned it chose it), else the last ``runs`` runs
of the same stage and target that finished PASS or WARN, are not invalidated, started within
the window, measured the metric with a check that completed, and in which every condition on
that metric of that check passed. A run still ``running`` (or killed) never counts.

Why the last rule: a slowdown that only warns would otherwise become the baseline itself and,
a few runs later, pass against its own slow history. With ``include = "pass"`` (default) any
outcome on the metric that did not pass keeps its run out (WARN, INFO, INCONCLUSIVE, FAIL);
with ``"pass_or_warn"`` only one that counted as a FAIL does. An outcome that only said "no
baseline yet" never keeps its run out, or no baseline could ever form; neither does an
outcome recorded before the store knew which metric a condition limits (``metric`` NULL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.engine import Connection

from neuroerp_ci.model import (
    NEW_FINDINGS,
    Baseline,
    CheckStatus,
    Finding,
    FindingsBaseline,
    FindingSeverity,
    OutcomeStatus,
    Verdict,
)
from neuroerp_ci.store.records import PASSING, RunStatus, samples_from_json
from neuroerp_ci.store.schema import check_results, findings, metrics, outcomes, runs

Reader = Callable[[], AbstractContextManager[Connection]]

# Which outcomes on a metric still let their run be its baseline (``[baseline] include``):
# "pass": only passes; "pass_or_warn": anything that did not count as a FAIL.
BaselineInclude = Literal["pass", "pass_or_warn"]
BASELINE_INCLUDE: tuple[BaselineInclude, ...] = ("pass", "pass_or_warn")


@dataclass(frozen=True)
class LeftOut:
    """One outcome that kept a candidate run out of a metric's baseline (``baseline show``)."""

    run_id: str
    verdict: Verdict
    status: OutcomeStatus
    condition: str
    reason: str


@dataclass(frozen=True)
class BaselineSelection:
    """Which runs may form a baseline."""

    stage: str
    target: str
    runs: int = 5
    window_days: float | None = None
    exclude_run_id: str | None = None  # the run being judged
    now: datetime | None = None  # the window ends here (default: when the provider was made)
    include: BaselineInclude = "pass"  # which outcomes on the metric a baseline run may have

    def since(self) -> datetime | None:
        """The oldest start time the window admits, naive UTC; None without a window."""
        if self.window_days is None:
            return None
        end = self.now or datetime.now(UTC)
        if end.tzinfo is not None:
            end = end.astimezone(UTC).replace(tzinfo=None)
        return end - timedelta(days=self.window_days)


class StoreBaselineProvider:
    """The history store's :class:`~neuroerp_ci.gates.baselines.BaselineProvider`.

    The pinned run is looked up once, on first use, so every condition of one gate sees
    the same choice.
    """

    def __init__(self, read: Reader, selection: BaselineSelection) -> None:
        if selection.runs < 1:
            raise ValueError(f"a baseline needs at least 1 run, got {selection.runs}")
        if selection.include not in BASELINE_INCLUDE:
            raise ValueError(f"baseline include must be one of {BASELINE_INCLUDE}")
        self._read = read
        self.selection = selection
        self._since = selection.since()
        self._pinned: str | None = None
        self._pinned_known = False

    def pinned_run(self) -> str | None:
        """The run id pinned for this stage and target, if any."""
        if not self._pinned_known:
            with self._read() as conn:
                self._pinned = conn.scalar(self._pinned_query())
            self._pinned_known = True
        return self._pinned

    def baseline(self, check: str, metric: str) -> Baseline | None:
        """The baseline of ``metric`` of ``check``, newest run first; None when no run fits."""
        pinned = self.pinned_run()
        query = self._measured(check, metric)
        if pinned is not None:
            query = query.where(runs.c.run_id == pinned)
        else:
            query = self.qualified(check, metric).limit(self.selection.runs)
        with self._read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return None
        return Baseline(
            check=check,
            metric=metric,
            values=tuple(float(r.value) for r in rows),
            samples=tuple(s for r in rows for s in samples_from_json(r.samples)),
            runs=tuple(r.run_id for r in rows),
            pinned=pinned is not None,
        )

    def findings(self, check: str) -> FindingsBaseline | None:
        """The findings of ``check`` in the baseline run (counted and waived ones; what the
        source suppressed is not a finding), None when no run fits.

        That is the pinned run, else the newest finished run in which the check completed
        and none of its ``new = true`` limits failed or warned. Unlike a metric's baseline,
        the run's verdict does not matter: a first run of a real project fails for its old
        findings, and new ones are told apart from exactly those. A run in which a new
        finding was flagged never becomes the baseline, so running again does not make it
        old.
        """
        pinned = self.pinned_run()
        sel = self.selection
        filters = [
            runs.c.stage == sel.stage,
            runs.c.target == sel.target,
            runs.c.status == RunStatus.FINISHED.value,
            runs.c.invalidated_reason.is_(None),
            check_results.c.check_id == check,
            check_results.c.status == CheckStatus.OK.value,
        ]
        if sel.exclude_run_id is not None:
            filters.append(runs.c.run_id != sel.exclude_run_id)
        if pinned is not None:
            filters.append(runs.c.run_id == pinned)
        else:
            flagged = and_(
                outcomes.c.run_pk == runs.c.pk,
                outcomes.c.check_id == check,
                outcomes.c.condition.like(f"{NEW_FINDINGS}(%"),
                outcomes.c.status != OutcomeStatus.PASS.value,
                outcomes.c.no_baseline.is_(False),
            )
            filters.append(~exists().where(flagged))
            if self._since is not None:
                filters.append(runs.c.started_at >= self._since)
        completed = (
            select(runs.c.pk, runs.c.run_id)
            .select_from(check_results.join(runs, runs.c.pk == check_results.c.run_pk))
            .where(*filters)
            .order_by(runs.c.started_at.desc(), runs.c.pk.desc())
            .limit(1)
        )
        with self._read() as conn:
            run = conn.execute(completed).first()
            if run is None:
                return None
            rows = conn.execute(
                select(findings)
                .where(
                    findings.c.run_pk == run.pk,
                    findings.c.check_id == check,
                    findings.c.state.in_(("counted", "waived")),
                )
                .order_by(findings.c.pk)
            ).all()
        return FindingsBaseline(run.run_id, tuple(_stored_finding(r._mapping) for r in rows))

    def qualified(self, check: str, metric: str) -> Select[str, float, str]:
        """Every run that may be a baseline of ``metric`` of ``check`` (run id, value,
        samples JSON), newest first, pins aside: a candidate within the window in which no
        condition on the metric spoilt it. What ``calibrate`` should replay too."""
        spoilt = exists().where(self._spoils(check, metric))
        return self._window(self._measured(check, metric)).where(~spoilt)

    def left_out(self, check: str, metric: str, limit: int = 10) -> list[LeftOut]:
        """The candidate runs the baseline of ``metric`` of ``check`` leaves out because a
        condition on it did not pass in them (see the module), newest run first, at most
        ``limit`` runs, one entry per outcome that kept its run out. Empty while a run is
        pinned: the pin is the baseline, whatever its outcomes."""
        if self.pinned_run() is not None:
            return []
        spoilt = (
            self._window(self._measured(check, metric))
            .where(exists().where(self._spoils(check, metric)))
            .limit(limit)
        )
        with self._read() as conn:
            run_ids = [r.run_id for r in conn.execute(spoilt)]
            if not run_ids:
                return []
            rows = conn.execute(
                select(
                    runs.c.run_id,
                    runs.c.verdict,
                    outcomes.c.status,
                    outcomes.c.condition,
                    outcomes.c.reason,
                )
                .select_from(outcomes.join(runs, runs.c.pk == outcomes.c.run_pk))
                .where(runs.c.run_id.in_(run_ids), self._spoils(check, metric))
                .order_by(runs.c.started_at.desc(), runs.c.pk.desc(), outcomes.c.pk)
            ).all()
        return [
            LeftOut(r.run_id, Verdict(r.verdict), OutcomeStatus(r.status), r.condition, r.reason)
            for r in rows
        ]

    def metrics(self) -> list[tuple[str, str]]:
        """(check, metric) pairs that some candidate run measured, sorted: what ``baseline
        show`` can list."""
        pinned = self.pinned_run()
        query = (
            select(metrics.c.check_id, metrics.c.name)
            .select_from(metrics.join(runs, runs.c.pk == metrics.c.run_pk))
            .where(*self._candidate_filters(), metrics.c.value.is_not(None))
            .distinct()
            .order_by(metrics.c.check_id, metrics.c.name)
        )
        if pinned is not None:
            query = query.where(runs.c.run_id == pinned)
        elif self._since is not None:
            query = query.where(runs.c.started_at >= self._since)
        with self._read() as conn:
            return [(r.check_id, r.name) for r in conn.execute(query)]

    def _candidate_filters(self) -> Iterator[ColumnElement[bool]]:
        sel = self.selection
        yield runs.c.stage == sel.stage
        yield runs.c.target == sel.target
        yield runs.c.status == RunStatus.FINISHED.value
        yield runs.c.verdict.in_(PASSING)
        yield runs.c.invalidated_reason.is_(None)
        if sel.exclude_run_id is not None:
            yield runs.c.run_id != sel.exclude_run_id

    def _spoils(self, check: str, metric: str) -> ColumnElement[bool]:
        """An outcome of the outer query's run that keeps it out of the metric's baseline."""
        if self.selection.include == "pass":
            failed: ColumnElement[bool] = outcomes.c.status != OutcomeStatus.PASS.value
        else:
            failed = or_(
                outcomes.c.status == OutcomeStatus.FAIL.value,
                and_(
                    outcomes.c.status == OutcomeStatus.INCONCLUSIVE.value,
                    outcomes.c.counts_as == OutcomeStatus.FAIL.value,
                ),
            )
        return and_(
            outcomes.c.run_pk == runs.c.pk,
            outcomes.c.check_id == check,
            outcomes.c.metric == metric,  # NULL (a legacy row) never matches
            outcomes.c.no_baseline.is_(False),
            failed,
        )

    def _pinned_query(self) -> Select[str]:
        return select(runs.c.run_id).where(*self._candidate_filters(), runs.c.pinned.is_(True))

    def _measured(self, check: str, metric: str) -> Select[str, float, str]:
        joined = metrics.join(runs, runs.c.pk == metrics.c.run_pk).join(
            check_results,
            and_(
                check_results.c.run_pk == metrics.c.run_pk,
                check_results.c.check_id == metrics.c.check_id,
            ),
        )
        return (
            select(runs.c.run_id, metrics.c.value, metrics.c.samples)
            .select_from(joined)
            .where(
                *self._candidate_filters(),
                metrics.c.check_id == check,
                metrics.c.name == metric,
                metrics.c.value.is_not(None),
                check_results.c.status == CheckStatus.OK.value,
            )
            .order_by(runs.c.started_at.desc(), runs.c.pk.desc())
        )

    def _window(self, query: Select[str, float, str]) -> Select[str, float, str]:
        if self._since is None:
            return query
        return query.where(runs.c.started_at >= self._since)


def _stored_finding(row: Any) -> Finding:
    """A finding as the store keeps it (no fix versions or aliases: the fingerprint, rule and
    location are what a comparison needs)."""
    return Finding(
        tool=row["tool"],
        rule=row["rule"],
        severity=FindingSeverity(row["severity"]),
        message=row["message"],
        location=row["location"],
        confidence=row["confidence"],
        fingerprint=row["fingerprint"] or "",
    )
