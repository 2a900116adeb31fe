"""Stopping a load test once a limit is breached beyond doubt: a condition's ``abort_on_fail``.

As k6's thresholds with ``abortOnFail`` / ``delayAbortEval``: while locust runs, its cumulative
statistics so far are judged against the stage's abort limits about once a second, and the first
limit breached beyond doubt ends the run. The metrics measured up to then are the check's result
(plus ``aborted`` = 1 and ``time_saved_s``), and the gate judges them as usual: the condition
FAILs on real figures, and the report says the run stopped early and how much time that saved.

Beyond doubt means all of, on two consecutive snapshots (about a second apart, so one slow
second cannot stop a run):

- the run has gone on for the limit's ``delay_s`` (counted from the start of the load, like
  k6's ``delayAbortEval``) and its warm-up is over (warm-up statistics are discarded);
- at least :data:`MIN_REQUESTS` requests were measured, and for a percentile enough that
  :data:`TAIL_REQUESTS` of them lie beyond it (p95: 100, p99: 500): a handful of slow requests
  cannot decide a p99 on their own;
- the value is beyond the limit (``max``: above it, ``min``: below it).

The figures come from a snapshot the wrapper locustfile (:mod:`neuroerp_ci.checks.load`) writes
once a second in the master (or only) locust process: locust's cumulative totals and its
response-time histogram, written to a temporary file and renamed, so a reader never sees half
of one. The values are computed from it as the final metrics are (the same histogram, the same
percentile), so a run is stopped on the figure the gate will judge.

Stopping: SIGUSR1 to locust's process group, on which the wrapper quits locust's runner the way
its own ``--run-time`` limit does, so the final statistics and the run record are written as at
a normal end. (locust's SIGTERM handler fires ``quitting`` before it stops the runner: the run
record would lack the stop time and the workers' CPU figures.) A locust that has not exited
:data:`QUIT_GRACE_S` after being asked is killed, and the check errors.

A snapshot that is missing or unreadable stops nothing: the run then goes to its end and the
gate judges all of it, which is what happens without ``abort_on_fail``.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuroerp_ci.checks._locust_stats import PERCENTILES
from neuroerp_ci.checks._percentiles import weighted_percentile
from neuroerp_ci.checks.interface import LiveLimit
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import Direction, Metric
from neuroerp_ci.support.formatting import format_value
from neuroerp_ci.support.tooling import (
    ToolRun,
    describe,
    kill_process_group,
    release_group,
    signal_group,
    start_group,
)

# The aggregate metrics the snapshot holds (per-endpoint ones are judged only after the run).
LIVE_METRICS = frozenset({*PERCENTILES, "failure_ratio", "rps"})
MIN_REQUESTS = 50
TAIL_REQUESTS = 5  # requests beyond a percentile before it may stop a run
HOLD_POLLS = 2  # consecutive snapshots the breach must hold on
POLL_S = 1.0
QUIT_GRACE_S = 30.0  # from the stop request to locust's exit (users stop, files are written)
STOP_SIGNAL = signal.SIGUSR1  # the wrapper's handler quits the runner (see load._WRAPPER)
LIVE_FILE = "locust_live.json"


@dataclass(frozen=True)
class LiveSnapshot:
    """locust's cumulative "Aggregated" statistics at one moment of the run (epoch seconds)."""

    t: float
    started: float  # the start of the load (locust's test_start)
    measured_from: float | None  # the end of the warm-up; None while it lasts
    requests: int
    failures: int
    histogram: Mapping[float, int]  # bucketed response time (ms) -> count, since measured_from

    @property
    def elapsed_s(self) -> float:
        return self.t - self.started

    def value(self, metric: str) -> float | None:
        """``metric`` as the final result would give it from these statistics, or None."""
        if metric == "failure_ratio":
            return self.failures / self.requests if self.requests else None
        if metric == "rps":
            if self.measured_from is None or self.t <= self.measured_from:
                return None
            return self.requests / (self.t - self.measured_from)
        if metric in PERCENTILES and any(self.histogram.values()):
            return weighted_percentile(self.histogram, PERCENTILES[metric])
        return None


@dataclass(frozen=True)
class AbortDecision:
    """The limit that stopped a run, the value that breached it, and when."""

    limit: LiveLimit
    value: float
    elapsed_s: float
    requests: int

    def text(self) -> str:
        """``p95_ms 1012 > 300``."""
        op = ">" if self.limit.op == "max" else "<"
        metric = self.limit.metric
        return f"{metric} {format_value(self.value)} {op} {format_value(self.limit.limit)}"


def min_requests(metric: str) -> int:
    """Requests needed before ``metric`` may stop a run: :data:`MIN_REQUESTS`, and for a
    percentile enough that :data:`TAIL_REQUESTS` lie beyond it."""
    q = PERCENTILES.get(metric)
    if q is None:
        return MIN_REQUESTS
    return max(MIN_REQUESTS, math.ceil(TAIL_REQUESTS * 100.0 / (100.0 - q) - 1e-9))


def breach(limit: LiveLimit, snap: LiveSnapshot) -> float | None:
    """The value of ``limit``'s metric when this snapshot may judge it and it is beyond the
    limit; None otherwise (warm-up, too early, too few requests, within the limit)."""
    if snap.measured_from is None or snap.elapsed_s < limit.delay_s:
        return None
    if snap.requests < min_requests(limit.metric):
        return None
    value = snap.value(limit.metric)
    if value is None:
        return None
    beyond = value > limit.limit if limit.op == "max" else value < limit.limit
    return value if beyond else None


class AbortWatch:
    """Judges successive snapshots against the limits; remembers the first decision.

    The same snapshot read twice (the reader polled faster than locust wrote) counts once.
    """

    def __init__(self, limits: Sequence[LiveLimit], live_path: Path | None = None) -> None:
        self.limits = tuple(limits)
        self.live_path = live_path
        self.decision: AbortDecision | None = None
        self._streaks = [0] * len(self.limits)
        self._last_t: float | None = None

    def observe(self, snap: LiveSnapshot) -> AbortDecision | None:
        """The decision to stop, once a limit has been breached on HOLD_POLLS snapshots."""
        if self.decision is not None:
            return self.decision
        if self._last_t is not None and snap.t <= self._last_t:
            return None
        self._last_t = snap.t
        for i, limit in enumerate(self.limits):
            value = breach(limit, snap)
            self._streaks[i] = self._streaks[i] + 1 if value is not None else 0
            if value is not None and self._streaks[i] >= HOLD_POLLS and self.decision is None:
                self.decision = AbortDecision(limit, value, snap.elapsed_s, snap.requests)
        return self.decision

    def poll(self) -> bool:
        """Read the live snapshot file and judge it: True when the run should stop now."""
        if self.live_path is None:
            return False
        snap = read_snapshot(self.live_path)
        return snap is not None and self.observe(snap) is not None


def parse_snapshot(data: Any) -> LiveSnapshot:
    """The wrapper's live snapshot (ValueError when it is not one)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        histogram = {float(k): int(v) for k, v in (data.get("histogram") or {}).items()}
        measured = data.get("measured_from")
        snap = LiveSnapshot(
            t=float(data["t"]),
            started=float(data["started"]),
            measured_from=None if measured is None else float(measured),
            requests=int(data["requests"]),
            failures=int(data["failures"]),
            histogram=histogram,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"unreadable snapshot: {exc!r}") from exc
    numbers = (snap.t, snap.started, *histogram)
    if not all(math.isfinite(x) for x in numbers) or min(snap.requests, snap.failures) < 0:
        raise ValueError("non-finite time or negative count")
    if any(c < 0 for c in histogram.values()):
        raise ValueError("negative histogram count")
    return snap


def read_snapshot(path: Path) -> LiveSnapshot | None:
    """The snapshot in ``path``, or None when there is none yet or it cannot be read."""
    try:
        return parse_snapshot(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
        return None


def stop_requested(record: Any) -> float | None:
    """When the wrapper got the stop request (its run record's ``stop_requested``), or None."""
    value = record.get("stop_requested") if isinstance(record, dict) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def abort_reason(decision: AbortDecision, ran_s: float, planned_s: float) -> str:
    """``stopped early after 6.2 s: p95_ms 1012 > 300 beyond doubt (abort_on_fail);
    53.8 s of 60 s saved``."""
    saved = max(0.0, planned_s - ran_s)
    return (
        f"stopped early after {ran_s:.1f} s: {decision.text()} beyond doubt (abort_on_fail);"
        f" {saved:.1f} s of {planned_s:g} s saved"
    )


def abort_metrics(stopped_early: bool, ran_s: float, planned_s: float) -> list[Metric]:
    """``aborted`` (1 when the run was stopped early) and ``time_saved_s`` (planned - ran)."""
    saved = max(0.0, planned_s - ran_s) if stopped_early else 0.0
    return [
        Metric("aborted", float(stopped_early), "flag", Direction.LOWER),
        Metric("time_saved_s", saved, "s", Direction.HIGHER),
    ]


def run_watched(
    argv: Sequence[str],
    *,
    cwd: Path,
    timeout: float,
    env: Mapping[str, str],
    should_stop: Callable[[], bool],
    interval_s: float = POLL_S,
    quit_grace_s: float = QUIT_GRACE_S,
) -> ToolRun:
    """Run ``argv`` like :func:`~neuroerp_ci.support.tooling.run_tool` (any exit status), but
    ask ``should_stop`` every ``interval_s`` while it runs; once it says so, send
    :data:`STOP_SIGNAL` to the process group and wait up to ``quit_grace_s`` for the exit.

    Raises ToolError when the run (or its stop) outlasts its time; the group is then killed.
    """
    argv = tuple(str(a) for a in argv)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        proc: subprocess.Popen[str] = start_group(
            argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise ToolError(f"cannot start {describe(argv)}: {exc}") from exc
    asked = False
    out: tuple[str, str] | None = None
    try:
        while out is None and time.monotonic() < deadline:
            wait_s = max(0.0, min(interval_s, deadline - time.monotonic()))
            try:
                out = proc.communicate(timeout=wait_s)
            except subprocess.TimeoutExpired:  # still running; the output so far is kept
                if not asked and should_stop():
                    signal_group(proc.pid, STOP_SIGNAL)
                    asked = True
                    deadline = min(deadline, time.monotonic() + quit_grace_s)
        if out is None:
            kill_process_group(proc)
            proc.communicate()
    except BaseException:
        kill_process_group(proc)
        proc.communicate()
        raise
    finally:
        release_group(proc)
    if out is None:
        if asked:
            raise ToolError(f"{describe(argv)} did not stop {quit_grace_s:g} s after asked to")
        raise ToolError(f"{describe(argv)} timed out after {timeout:g} s")
    stdout, stderr = out
    return ToolRun(argv, proc.returncode, stdout, stderr, time.perf_counter() - started)
