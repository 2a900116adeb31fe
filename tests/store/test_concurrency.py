"""Several writers at once, and writers killed half-way, through the store API in real
processes: no record lost, none half-written, the store sound afterwards.

(``test_cli_concurrency.py`` does the same with ``neuroerp-ci run`` processes.)
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from neuroerp_ci.store import HistoryStore, RunStatus, open_store
from neuroerp_ci.store.schema import check_results, findings, metrics, outcomes, runs

from .writers import write_forever, write_runs

RUNS_PER_WRITER = 20
SPAWN = multiprocessing.get_context("spawn")


def children_per_run(store: HistoryStore) -> dict[str, tuple[int, int, int, int]]:
    """run id -> (check results, metrics, findings, outcomes) rows."""
    counts: dict[str, list[int]] = {}
    with store._read("test") as conn:
        for index, table in enumerate((check_results, metrics, findings, outcomes)):
            query = (
                select(runs.c.run_id, func.count(table.c.pk))
                .select_from(runs.outerjoin(table, table.c.run_pk == runs.c.pk))
                .group_by(runs.c.run_id)
            )
            for run_id, count in conn.execute(query):
                counts.setdefault(run_id, [0, 0, 0, 0])[index] = count
    return {run_id: (c[0], c[1], c[2], c[3]) for run_id, c in counts.items()}


# A report from make_report: 2 checks, 3 metrics, 2 findings, 2 outcomes.
WHOLE_RUN = (2, 3, 2, 2)


def concurrent_writers(url: str, writers: int = 2) -> None:
    """``writers`` processes record RUNS_PER_WRITER runs each, all at once."""
    open_store(url).close()  # the schema exists; the race under test is the writes
    results: Any = SPAWN.Queue()
    start_at = time.time() + 3.0  # every interpreter is up by then
    names = [f"w{n}" for n in range(writers)]
    procs = [
        SPAWN.Process(target=write_runs, args=(url, name, RUNS_PER_WRITER, start_at, results))
        for name in names
    ]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert sorted((w, status, len(done)) for w, status, done in reports) == [
        (name, "ok", RUNS_PER_WRITER) for name in names
    ]
    with open_store(url) as store:
        assert store.integrity_check() == []
        recorded = store.runs(limit=1000)
        assert len(recorded) == writers * RUNS_PER_WRITER
        assert {r.status for r in recorded} == {RunStatus.FINISHED}
        assert set(children_per_run(store).values()) == {WHOLE_RUN}
        baseline = store.baseline_provider("staging", "erp").baseline("api", "p95_ms")
        assert baseline is not None and len(baseline.runs) == 5
        # The writers really overlapped: their runs interleave in start order.
        order = [r.run_id.split("-")[0] for r in reversed(recorded)]
        switches = sum(1 for a, b in zip(order, order[1:], strict=False) if a != b)
        assert switches >= 2, order


@pytest.mark.integration
def test_two_processes_write_20_runs_each_to_sqlite_at_once(store_url: str) -> None:
    concurrent_writers(store_url)


@pytest.mark.integration
@pytest.mark.postgres
def test_two_processes_write_20_runs_each_to_postgresql_at_once(pg_url: str) -> None:
    concurrent_writers(pg_url)


def kill_writers_mid_write(url: str, rounds: int) -> None:
    """Kill a busy writer with SIGKILL at random moments; every time, the store must be sound
    and every finished run whole, and the next writer must work."""
    open_store(url).close()
    rng = random.Random(20261128)
    left_running = 0  # killed runs so far (each may leave its run 'running')
    for round_no in range(rounds):
        proc = SPAWN.Process(target=write_forever, args=(url, f"k{round_no}", 20_000))
        proc.start()
        with open_store(url) as store:
            deadline = time.monotonic() + 120
            # Wait until the writer has finished a few runs and has begun another one ...
            while (
                store.count_runs(RunStatus.FINISHED) < 2 * (round_no + 1)
                or store.count_runs(RunStatus.RUNNING) <= left_running
            ):
                assert time.monotonic() < deadline, "the writer recorded nothing"
                time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))  # ... and kill it while it writes that one
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
        with open_store(url) as store:
            assert store.integrity_check() == []
            per_run = children_per_run(store)
            for record in store.runs(limit=10_000):
                expected = WHOLE_RUN if record.status is RunStatus.FINISHED else (0, 0, 0, 0)
                assert per_run[record.run_id] == expected, record
            # At most the run being written when the kill came is left running.
            running = store.count_runs(RunStatus.RUNNING)
            assert running <= left_running + 1
            left_running = running
    assert left_running >= 1, "no kill landed inside a run: the test proved nothing"
    with open_store(url) as store:
        before = store.count_runs(RunStatus.FINISHED)
        write_forever_once(store)
        assert store.count_runs(RunStatus.FINISHED) == before + 1


def write_forever_once(store: HistoryStore) -> None:
    from .conftest import make_report

    store.begin_run("after", "staging", "erp", "v1", {}, "2026-03-02T00:00:00+00:00")
    store.finish_run(make_report("after", started="2026-03-02T00:00:00+00:00"))


@pytest.mark.integration
def test_a_writer_killed_mid_transaction_leaves_sqlite_sound(store_url: str) -> None:
    kill_writers_mid_write(store_url, rounds=5)


@pytest.mark.integration
@pytest.mark.postgres
def test_a_writer_killed_mid_transaction_leaves_postgresql_sound(pg_url: str) -> None:
    kill_writers_mid_write(pg_url, rounds=3)
