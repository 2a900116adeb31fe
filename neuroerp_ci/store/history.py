"""The history store: every stage run, what it measured and what the gate concluded.

A run is recorded in two steps. :meth:`HistoryStore.begin_run` writes a ``running`` row before
the checks start, so a run killed half-way stays visible (``history`` shows it as
``running/aborted?``) and is never used as a baseline. :meth:`HistoryStore.finish_run` then
writes everything else (check results, metrics with samples, findings, outcomes, verdict) in
ONE transaction: a reader sees a run whole or not at all.

Example::

    store = open_store("sqlite:////srv/project/.neuroerp-ci/history.sqlite3")
    store.begin_run(run_id, "staging", "erp", "3f9a2c1", environment_fingerprint(), started)
    provider = store.baseline_provider("staging", "erp", runs=5, exclude_run_id=run_id)
    ...  # gates: evaluate_stage(stage.name, stage.conditions_by_check(), checks, results,
    ...  #                       provider)
    store.finish_run(report)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

import neuroerp_ci.store.calibrations as stored_calibrations
import neuroerp_ci.store.trends as stored_trends
from neuroerp_ci.model import Calibration, Metric, StageReport, summary_line
from neuroerp_ci.store.baselines import (
    BaselineInclude,
    BaselineSelection,
    StoreBaselineProvider,
)
from neuroerp_ci.store.connect import WRITE_OPTION, create_store_engine, safe_url
from neuroerp_ci.store.errors import StoreError, UnknownRunError
from neuroerp_ci.store.fingerprint import environment_fingerprint, with_tool_versions
from neuroerp_ci.store.integrity import integrity_problems
from neuroerp_ci.store.locks import Clock, LockTable
from neuroerp_ci.store.records import (
    PASSING,
    RunRecord,
    RunStatus,
    confirmations_json,
    finite,
    noise_json,
    record_from_row,
    samples_json,
    to_db_time,
)
from neuroerp_ci.store.schema import (
    MIGRATIONS,
    PIN_LOCK_KEY,
    applied_versions,
    check_cache,
    check_results,
    findings,
    lock_for_migration,
    metrics,
    migrate,
    outcomes,
    runs,
)
from neuroerp_ci.store.trends import MetricPoint
from neuroerp_ci.support.secrets import redact, redact_data


def open_store(url: str) -> HistoryStore:
    """Open (and if needed create or migrate) the store at ``url``.

    Raises :class:`StoreError` (one line) when it cannot be reached, read or migrated, and
    :class:`~neuroerp_ci.store.errors.StoreUrlError` for a URL it cannot use.
    """
    store = HistoryStore(create_store_engine(url), safe_url(url))
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


class HistoryStore:
    """Runs, metrics with samples, findings and outcomes in one SQL database."""

    def __init__(self, engine: Engine, name: str | None = None) -> None:
        self._engine = engine
        self.name = name or safe_url(engine.url)

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the store's connections."""
        self._engine.dispose()

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply missing migrations under the migration lock; return the versions applied."""
        with self._read("open") as conn:
            if applied_versions(conn) == [m.version for m in MIGRATIONS]:
                return []  # up to date: no write lock needed (readers stay readers)
        with self._write("open") as conn:
            lock_for_migration(conn)
            return migrate(conn)

    def schema_versions(self) -> list[int]:
        """The migration versions the store has applied."""
        with self._read("read the schema version") as conn:
            return applied_versions(conn)

    # -- recording a run ------------------------------------------------------------------

    def begin_run(
        self,
        run_id: str,
        stage: str,
        target: str,
        version: str,
        fingerprint: Mapping[str, Any],
        started_at: str | datetime,
    ) -> None:
        """Record that a run started (status ``running``)."""
        row = {
            "run_id": run_id,
            "stage": stage,
            "target": target,
            "version": version,
            "fingerprint": json.dumps(dict(fingerprint), sort_keys=True),
            "status": RunStatus.RUNNING.value,
            "summary": "",
            "started_at": to_db_time(started_at),
            "pinned": False,
        }
        try:
            with self._write(f"record the start of run {run_id}") as conn:
                conn.execute(insert(runs).values(row))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                message = f"history store {self.name}: run {run_id} exists already"
                raise StoreError(message) from None
            raise

    def finish_run(
        self, report: StageReport, cached: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        """Record a run's results and verdict, all in one transaction; status ``finished``.

        A run that was never begun is recorded whole now. A run already finished or aborted
        is refused: the record of a run does not change after it ended. Every text is
        redacted (:mod:`neuroerp_ci.support.secrets`) before it is written. ``cached``:
        check id -> (cache key, result JSON) of the checks a later run may reuse
        (:mod:`neuroerp_ci.run.cache`).
        """
        report = redact_data(report)
        with self._write(f"record run {report.run_id}") as conn:
            found = conn.execute(
                select(runs.c.pk, runs.c.status, runs.c.fingerprint)
                .where(runs.c.run_id == report.run_id)
                .with_for_update()
            ).first()
            if found is None:
                fingerprint: dict[str, Any] = environment_fingerprint()
                pk = self._insert_running(conn, report, fingerprint)
            elif found.status != RunStatus.RUNNING.value:
                raise StoreError(
                    f"history store {self.name}: run {report.run_id} is {found.status} already"
                )
            else:
                pk, fingerprint = found.pk, json.loads(found.fingerprint)
            _write_children(conn, pk, report)
            rows = [
                {"run_pk": pk, "check_id": c, "cache_key": key, "result": redact(result)}
                for c, (key, result) in sorted((cached or {}).items())
            ]
            if rows:
                conn.execute(insert(check_cache), rows)
            conn.execute(
                update(runs)
                .where(runs.c.pk == pk)
                .values(
                    stage=report.stage,
                    target=report.target,
                    version=report.version,
                    verdict=report.verdict.value,
                    status=RunStatus.FINISHED.value,
                    summary=summary_line(report.summary),
                    finished_at=to_db_time(report.finished_at),
                    duration_s=finite(report.duration_s),
                    fingerprint=json.dumps(with_tool_versions(fingerprint, report), sort_keys=True),
                )
            )

    def abort_run(self, run_id: str, reason: str) -> None:
        """Mark a ``running`` run ``aborted`` (it stopped without a verdict); else a no-op."""
        reason = redact(reason)
        with self._write(f"mark run {run_id} aborted") as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == RunStatus.RUNNING.value)
                .values(
                    status=RunStatus.ABORTED.value,
                    summary=f"aborted: {reason}",
                    finished_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )

    # -- reading --------------------------------------------------------------------------

    def runs(
        self, stage: str | None = None, target: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """The newest ``limit`` runs (optionally of one stage and/or target), newest first."""
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.pk.desc()).limit(limit)
        if stage is not None:
            query = query.where(runs.c.stage == stage)
        if target is not None:
            query = query.where(runs.c.target == target)
        with self._read("list runs") as conn:
            return [record_from_row(row._mapping) for row in conn.execute(query)]

    def run(self, run_id: str) -> RunRecord:
        """One run; :class:`UnknownRunError` when the store has no run with that id."""
        with self._read(f"read run {run_id}") as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise UnknownRunError(f"history store {self.name}: no run {run_id!r}")
        return record_from_row(row._mapping)

    def count_runs(self, status: RunStatus | None = None) -> int:
        """How many runs the store holds (with that status)."""
        query = select(func.count()).select_from(runs)
        if status is not None:
            query = query.where(runs.c.status == status.value)
        with self._read("count runs") as conn:
            return int(conn.scalar(query) or 0)

    def passed(self, stage: str, target: str, version: str) -> RunRecord | None:
        """The latest run of ``stage`` for ``version`` that finished PASS or WARN and is not
        invalidated: what a stage's ``requires`` checks."""
        query = (
            select(runs)
            .where(
                runs.c.stage == stage,
                runs.c.target == target,
                runs.c.version == version,
                runs.c.status == RunStatus.FINISHED.value,
                runs.c.verdict.in_(PASSING),
                runs.c.invalidated_reason.is_(None),
            )
            .order_by(runs.c.started_at.desc(), runs.c.pk.desc())
            .limit(1)
        )
        with self._read(f"look up a passing {stage} run") as conn:
            row = conn.execute(query).first()
        return None if row is None else record_from_row(row._mapping)

    def cached_result(self, target: str, check_id: str, key: str) -> tuple[str, str] | None:
        """(run id, result JSON) of the newest finished, passing, not invalidated run of
        ``target`` that recorded ``key`` for ``check_id``; None when there is none."""
        query = (
            select(runs.c.run_id, check_cache.c.result)
            .join(runs, runs.c.pk == check_cache.c.run_pk)
            .where(
                check_cache.c.cache_key == key,
                check_cache.c.check_id == check_id,
                runs.c.target == target,
                runs.c.status == RunStatus.FINISHED.value,
                runs.c.verdict.in_(PASSING),
                runs.c.invalidated_reason.is_(None),
            )
            .order_by(runs.c.started_at.desc(), runs.c.pk.desc())
            .limit(1)
        )
        with self._read(f"look up a cached result of {check_id}") as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row.run_id), str(row.result))

    def baseline_provider(
        self,
        stage: str,
        target: str,
        runs: int = 5,
        window_days: float | None = None,
        exclude_run_id: str | None = None,
        now: datetime | None = None,
        include: BaselineInclude = "pass",
    ) -> StoreBaselineProvider:
        """Baselines for the gates of a ``stage`` run on ``target`` (see
        :mod:`neuroerp_ci.store.baselines` for which runs count; ``include``: the
        ``[baseline] include`` of the pipeline)."""
        selection = BaselineSelection(
            stage, target, runs, window_days, exclude_run_id, now, include=include
        )
        return StoreBaselineProvider(lambda: self._read("select a baseline"), selection)

    def rollout_locks(self, clock: Clock | None = None) -> LockTable:
        """The rollout locks (:mod:`neuroerp_ci.store.locks`); ``clock`` for tests."""
        return LockTable(self._write, self._read, clock)

    def metric_history(
        self, stage: str, target: str, limit: int = 20, before_run: str | None = None
    ) -> list[MetricPoint]:
        """What the newest ``limit`` finished runs of ``stage`` measured, oldest first
        (:mod:`neuroerp_ci.store.trends`): the trend charts' data."""
        return stored_trends.metric_history(
            lambda: self._read(f"read the trends of {stage}"), stage, target, limit, before_run
        )

    # -- calibrations ---------------------------------------------------------------------

    def measured_runs(
        self, stage: str, target: str, check: str, metric: str, limit: int | None = None
    ) -> list[tuple[str, Metric]]:
        """The runs that may form a baseline of ``metric`` of ``check``, with what they
        measured (samples too), newest first: what ``calibrate`` replays."""
        return stored_calibrations.measured_runs(
            lambda: self._read(f"read the history of {check} {metric}"),
            stage,
            target,
            check,
            metric,
            limit,
        )

    def save_calibrations(
        self,
        stage: str,
        target: str,
        entries: Sequence[stored_calibrations.CalibrationEntry],
    ) -> int:
        """Add the measured error rates of conditions of ``stage`` on ``target``."""
        with self._write(f"record the calibration of stage {stage}") as conn:
            return stored_calibrations.save(conn, stage, target, entries)

    def calibrations(
        self, stage: str, target: str
    ) -> dict[stored_calibrations.CalibrationKey, Calibration]:
        """The newest calibration of each condition of ``stage`` on ``target``, by (check,
        condition text)."""
        with self._read(f"read the calibration of stage {stage}") as conn:
            return stored_calibrations.latest(conn, stage, target)

    # -- baseline management ---------------------------------------------------------------

    def pin(self, run_id: str) -> RunRecord:
        """Make ``run_id`` the baseline of its stage and target (unpinning any other run).

        Only a finished, passing (PASS or WARN), not invalidated run can be pinned.
        """
        record = self.run(run_id)
        if not record.passing:
            if record.invalidated_reason is not None:
                what = f"invalidated ({record.invalidated_reason})"
            elif record.verdict is not None:
                what = f"{record.state} {record.verdict.value}"
            else:
                what = record.state
            raise UnknownRunError(
                f"run {run_id} cannot be pinned: it is {what};"
                " only a finished PASS or WARN run can be the baseline"
            )
        with self._write(f"pin run {run_id}") as conn:
            if conn.dialect.name == "postgresql":
                # Two pins at once would both clear the old pin and then collide on the
                # one-pin-per-stage index; the lock lets the second see the first.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PIN_LOCK_KEY})
            conn.execute(
                update(runs)
                .where(
                    runs.c.stage == record.stage,
                    runs.c.target == record.target,
                    runs.c.pinned.is_(True),
                    runs.c.run_id != run_id,
                )
                .values(pinned=False)
            )
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(pinned=True))
        return self.run(run_id)

    def unpin(self, stage: str, target: str) -> RunRecord | None:
        """Unpin the pinned run of ``stage`` and ``target``; return it, or None if none was."""
        with self._write(f"unpin stage {stage}") as conn:
            run_id = conn.scalar(
                select(runs.c.run_id).where(
                    runs.c.stage == stage, runs.c.target == target, runs.c.pinned.is_(True)
                )
            )
            if run_id is None:
                return None
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(pinned=False))
        return self.run(run_id)

    def invalidate(self, run_id: str, reason: str) -> RunRecord:
        """Exclude a run from baselines and from ``passed`` for good (it also loses a pin)."""
        if not reason.strip():
            raise StoreError("invalidating a run needs a reason")
        self.run(run_id)  # UnknownRunError first
        with self._write(f"invalidate run {run_id}") as conn:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    invalidated_reason=reason.strip(),
                    invalidated_at=datetime.now(UTC).replace(tzinfo=None),
                    pinned=False,
                )
            )
        return self.run(run_id)

    # -- health ---------------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """Problems found by the database's own check and the store's invariants; [] = sound."""
        with self._read("check integrity") as conn:
            return integrity_problems(conn)

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        with self._errors(action), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        with self._errors(action), self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StoreError(
                f"history store {self.name}: cannot {action}: "
                f"{detail[0] if detail else type(exc).__name__}"
            ) from exc

    def _insert_running(
        self, conn: Connection, report: StageReport, fingerprint: dict[str, Any]
    ) -> int:
        result = conn.execute(
            insert(runs).values(
                run_id=report.run_id,
                stage=report.stage,
                target=report.target,
                version=report.version,
                fingerprint=json.dumps(fingerprint, sort_keys=True),
                status=RunStatus.RUNNING.value,
                summary="",
                started_at=to_db_time(report.started_at),
                pinned=False,
            )
        )
        key = result.inserted_primary_key
        if key is None:
            raise StoreError(f"history store {self.name}: no key for the new run {report.run_id}")
        return int(key[0])


def _write_children(conn: Connection, pk: int, report: StageReport) -> None:
    checks = [
        {
            "run_pk": pk,
            "check_id": r.check_id,
            "kind": r.kind,
            "status": r.status.value,
            "reason": r.reason,
            "duration_s": finite(r.duration_s),
            "noise": noise_json(r.noise),
        }
        for r in report.checks
    ]
    measured = [
        {
            "run_pk": pk,
            "check_id": r.check_id,
            "name": m.name,
            "value": finite(m.value),
            "unit": m.unit,
            "direction": m.direction.value,
            "samples": samples_json(m.samples),
        }
        for r in report.checks
        for m in r.metrics.values()
    ]
    found = [
        {
            "run_pk": pk,
            "check_id": r.check_id,
            "tool": f.tool,
            "rule": f.rule,
            "severity": f.severity.value,
            "confidence": f.confidence,
            "location": f.location,
            "message": f.message,
            "fingerprint": f.identity,
            "state": state,
            "waiver_id": None if f.waiver is None else f.waiver.id,
        }
        for r in report.checks
        for state, listed in (
            ("counted", r.findings),
            ("waived", r.waived),
            ("suppressed", r.suppressed),
        )
        for f in listed
    ]
    concluded = [
        {
            "run_pk": pk,
            "check_id": o.check,
            "condition": o.condition,
            "status": o.status.value,
            "severity": o.severity.value,
            "value": finite(o.value),
            "target": o.target,
            "baseline": finite(o.baseline),
            "change_pct": finite(o.change_pct),
            "p_value": finite(o.p_value),
            "effect": finite(o.effect),
            "effect_ci_low": None if o.effect_ci is None else finite(o.effect_ci[0]),
            "effect_ci_high": None if o.effect_ci is None else finite(o.effect_ci[1]),
            "baseline_runs": json.dumps(list(o.baseline_runs)),
            "reason": o.reason,
            "metric": o.metric,
            "no_baseline": o.no_baseline,
            "breached": o.breached,
            "counts_as": None if o.counts_as is None else o.counts_as.value,
            "mde_pct": finite(o.mde_pct),
            "needed_n": o.needed_n,
            "confirmations": confirmations_json(o.confirmations),
        }
        for o in report.outcomes
    ]
    for table, rows in (
        (check_results, checks),
        (metrics, measured),
        (findings, found),
        (outcomes, concluded),
    ):
        if rows:
            conn.execute(insert(table), rows)
