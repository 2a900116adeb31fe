"""Baseline selection: which earlier runs a metric of this run is compared with.

For each metric, the baseline is the pinned run of the stage and target if there is one
(exactly that run, whatever its age), else the last ``runs`` runs of the same stage and target
that finished PASS or WARN, are not invalidated, started within the window, and measured the
metric with a check that completed. A run still ``running`` (or killed) never counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.engine import Connection

from neuroerp_ci.model import Baseline, CheckStatus
from neuroerp_ci.store.records import PASSING, RunStatus, samples_from_json
from neuroerp_ci.store.schema import check_results, metrics, runs

Reader = Callable[[], AbstractContextManager[Connection]]


@dataclass(frozen=True)
class BaselineSelection:
    """Which runs may form a baseline."""

    stage: str
    target: str
    runs: int = 5
    window_days: float | None = None
    exclude_run_id: str | None = None  # the run being judged
    now: datetime | None = None  # the window ends here (default: when the provider was made)

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
            query = self._window(query).limit(self.selection.runs)
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
