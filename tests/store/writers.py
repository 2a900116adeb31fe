"""Writer processes for the concurrency tests (module level, so ``spawn`` can start them).

Each writer does what a stage run does to the store: begin a run, read a baseline, finish the
run with a realistic report (two checks, metrics with samples, findings, outcomes).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from typing import Any

from neuroerp_ci.store import open_store

from .conftest import make_report

SAMPLES = 400  # per latency metric: a short load test's worth


def write_runs(url: str, writer: str, count: int, start_at: float, results: Queue[Any]) -> None:
    """Record ``count`` runs as fast as possible, starting at ``start_at`` (epoch seconds)."""
    time.sleep(max(0.0, start_at - time.time()))
    done: list[str] = []
    try:
        with open_store(url) as store:
            for i in range(count):
                run_id = f"{writer}-{i:03d}"
                started = datetime.now(UTC).isoformat()
                store.begin_run(run_id, "staging", "erp", f"v{i}", {"writer": writer}, started)
                store.baseline_provider("staging", "erp", exclude_run_id=run_id).baseline(
                    "api", "p95_ms"
                )
                store.finish_run(
                    make_report(run_id, started=started, latency=100.0 + i, samples=SAMPLES)
                )
                done.append(run_id)
        results.put((writer, "ok", done))
    except Exception as exc:  # the test fails on it, with the message
        results.put((writer, f"{type(exc).__name__}: {exc}", done))


def write_forever(url: str, writer: str, samples: int) -> None:
    """Record runs with big sample sets until killed (the SIGKILL test)."""
    with open_store(url) as store:
        i = 0
        while True:
            run_id = f"{writer}-{i:05d}"
            started = datetime.now(UTC).isoformat()
            store.begin_run(run_id, "staging", "erp", "v1", {}, started)
            store.finish_run(make_report(run_id, started=started, samples=samples))
            i += 1
