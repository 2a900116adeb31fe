"""The ``load`` kind: the project's locust profile against the target, as a subprocess.

Example (pipeline file)::

    [[checks]]
    id = "load-test"
    kind = "load"
    settings = { locustfile = "locustfile.py", users = 20, spawn_rate = 10, duration_s = 60,
                 warmup_s = 10, workers = 2 }

or a load shape instead of ``users`` / ``spawn_rate`` / ``duration_s`` (ramp, step, spike)::

    settings = { shape = [
        { duration_s = 20, users = 10, spawn_rate = 1 },   # ramp up
        { duration_s = 30, users = 50, spawn_rate = 50 },  # spike
        { duration_s = 20, users = 10, spawn_rate = 50 },  # back down
    ], warmup_s = 5 }

locust is never imported here (importing it monkey-patches the whole process with gevent).
It runs as ``locust -f <wrapper>,<locustfile> --headless --host <target>``: the wrapper, a
small locustfile written into the check's work directory (see ``_WRAPPER``), ends the
warm-up by resetting locust's stats, adds the shape, measures each locust process's CPU time
during the load and writes a run record with locust's failure messages.

Metrics come from locust's ``--json-file`` (its histograms; percentiles are computed here):
``requests``, ``failures``, ``failure_ratio``, ``rps`` (samples: requests per second),
``p50_ms`` ``p90_ms`` ``p95_ms`` ``p99_ms`` (samples: the response times), ``mean_ms``,
``max_ms``, the same per endpoint as ``<endpoint>.<metric>`` (``GET /api/articles/[id]`` ->
``get_api_articles_id.p95_ms``), ``duration_s`` (the measured window), ``users`` (peak;
samples: running users each second), ``task_exceptions``, and for the generator
``generator_cpu_pct`` (busiest locust process, % of one core), ``generator_busy_pct``
(share of the time its event loop ran or waited for a CPU) and ``generator_saturated`` (1
when either reached 90 % or locust warned about its CPU). Gate it with
``{ check = "load-test", metric = "generator_saturated", max = 0, severity = "warning" }``:
a saturated generator measured itself, not the target.

Timeline (informational, never gated): the wrapper also records once a second what that
second added (requests, failures, p50/p95 of its response times, running users; warm-up
included), kept in the check's work directory as ``locust_timeline.json`` (artifact
``locust_timeline``) for the report's chart; :func:`neuroerp_ci.checks._load_timeline.read_timeline`
reads it. A missing or malformed timeline is left out, never an error.

Stopping early: a stage condition with ``abort_on_fail = true`` (an absolute limit on
``p50_ms`` ``p90_ms`` ``p95_ms`` ``p99_ms``, ``failure_ratio`` or ``rps``) arrives as
``ctx.abort_when``; the run is then watched about once a second and stopped once the limit is
breached beyond doubt (:mod:`neuroerp_ci.checks._load_abort`). Such a check also reports
``aborted`` (1 when stopped early) and ``time_saved_s`` (planned run time minus the time it ran),
and its reason starts with "stopped early after 6.2 s: p95_ms 1012 > 300 beyond doubt ...".

Distributed: ``workers = N`` starts N local ``locust --worker`` processes and a master bound
to 127.0.0.1. ``workers = "external"`` starts only the master, bound to
``master_bind_host:master_bind_port``, and waits up to ``worker_wait_s`` for
``expect_workers`` workers started elsewhere, each with::

    locust --worker -f - --master-host <master address> --master-port <master_bind_port>

(``-f -`` downloads the locustfiles, wrapper included, from the master). The target's
``base_url`` must then be reachable from the worker machines and be in ``allowed_hosts``.

Fail closed: a locustfile that does not load, locust exiting non-zero or before the planned
duration, no request in the measured window, or a target that stops answering mid-run each
raise (status ``error``) with locust's own message. The target host is checked against
``ctx.allowed_hosts`` before locust starts, and inside every locust process the wrapper
guards name resolution (``getaddrinfo``, which requests, urllib3 and geventhttpclient all go
through, redirects included): a request to any other host, such as an absolute URL written
into the locustfile, fails in locust's stats with "neuroerp-ci refused host ..." without a
connection, and a run with any refused request is an error naming the hosts (its timings
would mix those requests in). Code that opens raw sockets to numeric addresses, or undoes
the guard, is beyond what a wrapper can stop.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from neuroerp_ci.checks._load_abort import (
    LIVE_FILE,
    LIVE_METRICS,
    AbortWatch,
    abort_metrics,
    abort_reason,
    run_watched,
    stop_requested,
)
from neuroerp_ci.checks._load_timeline import (
    MAX_POINTS,
    TIMELINE_FILE,
    sample_every,
    wrapper_source,
    write_timeline,
)
from neuroerp_ci.checks._locust_stats import (
    PERCENTILES,
    SATURATED_CPU_PCT,
    EndpointStats,
    RunRecord,
    aggregate,
    cpu_warning_logged,
    endpoint_labels,
    endpoint_metrics,
    parse_run_record,
    parse_stats,
    per_second,
    stopped_answering,
)
from neuroerp_ci.checks._outputs import read_json_file, remove_stale, write_log
from neuroerp_ci.checks.interface import Check, CheckContext, CheckKind, KindSettings
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Metric
from neuroerp_ci.support.hosts import allowed_set, ensure_allowed, free_port
from neuroerp_ci.support.tooling import (
    ToolRun,
    describe,
    find_tool,
    log_tail,
    run_tool,
    start_group,
    stop_process_group,
)

STATS_BASE = "locust_stats"  # locust appends ".json"
RECORD_FILE = "locust_run.json"
LOG_FILE = "locust.log"
WRAPPER_FILE = "_neuroerp_ci_load.py"
# Start-up (imports, workers connecting) and shut-down on top of the planned load.
OVERHEAD_S = 30.0
WORKER_EXIT_GRACE_S = 10.0
EARLY_EXIT_SLACK_S = 2.0
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy"})


class LoadStage(KindSettings):
    """One stage of a load shape: hold ``users`` (reached at ``spawn_rate``/s) for a while."""

    duration_s: float = Field(gt=0, le=86_400)
    users: int = Field(ge=0, le=100_000)
    spawn_rate: float = Field(gt=0, le=100_000)


class LoadSettings(KindSettings):
    locustfile: str = "locustfile.py"  # relative to the project directory
    users: int = Field(default=10, ge=1, le=100_000)
    spawn_rate: float | None = Field(default=None, gt=0, le=100_000)  # default: users per s
    duration_s: int | None = Field(default=None, ge=1, le=86_400)  # locust takes whole seconds
    shape: list[LoadStage] | None = Field(default=None, min_length=1)
    warmup_s: float = Field(default=0.0, ge=0)  # excluded from every statistic
    stop_timeout: float | None = Field(default=None, ge=0)  # let running tasks finish
    workers: int | Literal["external"] = 0  # 0: one locust process
    expect_workers: int | None = Field(default=None, ge=1, le=1_000)  # with "external"
    master_bind_host: str = "127.0.0.1"
    # default: a free port for local workers, locust's 5557 for external ones
    master_bind_port: int | None = Field(default=None, ge=1, le=65_535)
    worker_wait_s: int = Field(default=60, ge=1, le=3_600)
    user_classes: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    executable: str | None = None  # another locust executable

    @model_validator(mode="after")
    def _consistent(self) -> LoadSettings:
        if "://" in self.locustfile or not self.locustfile.endswith(".py"):
            raise ValueError(f"'locustfile' must be a .py file path, got {self.locustfile!r}")
        if (self.shape is None) == (self.duration_s is None):
            raise ValueError("give exactly one of 'duration_s' or 'shape'")
        if self.shape is not None:
            given = {"users", "spawn_rate"} & self.model_fields_set
            if given:
                raise ValueError(f"{sorted(given)} come from the 'shape' stages; remove them")
            if not any(stage.users for stage in self.shape):
                raise ValueError("every 'shape' stage has 0 users")
        if self.warmup_s >= self.planned_s:
            raise ValueError(
                f"'warmup_s' {self.warmup_s:g} leaves nothing of the {self.planned_s:g} s run"
            )
        if isinstance(self.workers, int) and not 0 <= self.workers <= 64:
            raise ValueError(f"'workers' must be 0..64 or \"external\", got {self.workers}")
        if (self.workers == "external") != (self.expect_workers is not None):
            raise ValueError("'expect_workers' is required with workers = \"external\" only")
        return self

    @property
    def planned_s(self) -> float:
        """How long the load runs, warm-up included."""
        if self.shape is not None:
            return sum(stage.duration_s for stage in self.shape)
        return float(self.duration_s or 0)

    @property
    def distributed(self) -> bool:
        return self.workers != 0


class LocustLoadCheck(CheckKind):
    """``kind = "load"``: locust's RPS, latency percentiles and failures under a profile."""

    name: ClassVar[str] = "load"
    settings_model: ClassVar[type[KindSettings]] = LoadSettings
    exclusive: ClassVar[bool] = True
    needs_target: ClassVar[bool] = True
    live_metrics: ClassVar[frozenset[str]] = LIVE_METRICS  # abort_on_fail (_load_abort)

    def metric_names(self, settings: KindSettings) -> MetricNames:
        per_endpoint = {"requests", "failures", "failure_ratio", "rps", "mean_ms", "max_ms"}
        per_endpoint |= set(PERCENTILES)
        run = {"duration_s", "users", "task_exceptions", "aborted", "time_saved_s"}
        generator = {"generator_cpu_pct", "generator_busy_pct", "generator_saturated"}
        return MetricNames(
            fixed=frozenset(per_endpoint | run | generator),
            per_item=frozenset(per_endpoint),
            items=None,  # locust's endpoints, labelled as endpoint_labels() does
            item="endpoint",
            item_pattern=r"[a-z0-9_]+",
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return (
            {"metric": "failure_ratio", "max": 0.01},
            {"metric": "task_exceptions", "max": 0},  # the locustfile's own code crashed
            # A saturated generator measured itself: a warning, as for any load test.
            {"metric": "generator_saturated", "max": 0, "severity": "warning"},
        )

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = check.settings
        if not isinstance(settings, LoadSettings):
            raise TypeError(f"load check {check.id!r} got {type(settings).__name__} settings")
        started = time.monotonic()
        if not ctx.base_url:
            raise TargetError("the load check needs the target's base_url")
        ensure_allowed(ctx.base_url, ctx.allowed_hosts, "load target")
        locustfile = (ctx.project_dir / settings.locustfile).resolve()
        if not locustfile.is_file():
            raise ToolError(f"locustfile {settings.locustfile!r} not found in {ctx.project_dir}")
        if check.timeout < settings.planned_s + OVERHEAD_S:
            raise ToolError(
                f"check timeout {check.timeout:g} s is too short for {settings.planned_s:g} s"
                f" of load (needs at least {settings.planned_s + OVERHEAD_S:g} s)"
            )
        exe = find_tool("locust", settings.executable)
        work = ctx.work_dir
        stats_path = work / (STATS_BASE + ".json")
        record_path = work / RECORD_FILE
        wrapper = work / WRAPPER_FILE
        live_path = work / LIVE_FILE
        timeline_path = work / TIMELINE_FILE
        remove_stale(stats_path, record_path, work / LOG_FILE, live_path, timeline_path)
        watch = AbortWatch(ctx.abort_when, live_path) if ctx.abort_when else None
        wrapper.write_text(
            render_wrapper(
                record_path=str(record_path),
                warmup_s=settings.warmup_s,
                stages=[s.model_dump() for s in settings.shape or []],
                allowed_hosts=sorted(allowed_set(ctx.allowed_hosts)),
                live_path=str(live_path) if watch else None,
                timeline_every=sample_every(settings.planned_s),
            ),
            encoding="utf-8",
        )
        files = f"{wrapper},{locustfile}"
        env = locust_env(ctx.env)
        port = settings.master_bind_port or (5557 if settings.workers == "external" else None)
        port = port or free_port()
        argv = [
            exe, *master_args(files, ctx.base_url, str(work / STATS_BASE), settings, port),
        ]
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts["locust_wrapper"] = str(wrapper)
        workers = LocalWorkers()
        try:
            if isinstance(settings.workers, int) and settings.workers > 0:
                workers.start(
                    worker_args(exe, files, port), settings.workers, ctx.project_dir, env, work
                )
            remaining = check.timeout - (time.monotonic() - started)
            if watch is None:
                run = run_tool(
                    argv, cwd=ctx.project_dir, timeout=remaining, env=env, ok_codes=None
                )
            else:  # judged about once a second; stopped once a limit is breached beyond doubt
                run = run_watched(
                    argv, cwd=ctx.project_dir, timeout=remaining, env=env, should_stop=watch.poll
                )
        finally:
            worker_codes = workers.stop(WORKER_EXIT_GRACE_S)
            result.artifacts.update(workers.artifacts())
        result.artifacts["locust_log"] = str(write_log(work / LOG_FILE, run))
        version = _version(run.stderr)
        if version:
            result.tool_versions["locust"] = version
        if run.returncode != 0:
            raise ToolError(
                f"{describe(run.argv)} exited {run.returncode}: {run.tail()}"
                + workers.failures(worker_codes)
            )
        raw_record = read_json_file(record_path, "locust (run record)")
        record = parse_run_record(raw_record)
        measured = record.measured_from if settings.warmup_s > 0 else None
        written = write_timeline(  # informational: a bad or missing timeline is just left out
            timeline_path, record.timeline,
            None if measured is None or record.started is None else measured - record.started,
        )
        if written is not None:
            result.artifacts["locust_timeline"] = str(written)
        rows = parse_stats(read_json_file(stats_path, "locust"))
        result.artifacts["locust_stats"] = str(stats_path)
        result.artifacts["locust_run"] = str(record_path)
        # Stopped early only when we asked and locust took the request; a locust that ended
        # on its own before the planned duration is still an error (interpret()).
        decision = watch.decision if watch else None
        stopped_early = decision is not None and stop_requested(raw_record) is not None
        for metric in interpret(record, rows, settings, run, stopped_early=stopped_early):
            result.add_metric(metric)
        result.reason = _reason(result.metrics, record)
        if watch is not None:
            ran = record.ran_s or 0.0
            for metric in abort_metrics(stopped_early, ran, settings.planned_s):
                result.add_metric(metric)
            if stopped_early and decision is not None:
                result.artifacts["locust_live"] = str(live_path)
                early = abort_reason(decision, ran, settings.planned_s)
                result.reason = f"{early}; {result.reason}"
        return result


def master_args(
    files: str, host: str, stats_base: str, settings: LoadSettings, port: int
) -> list[str]:
    """Arguments of the headless (master or only) locust process."""
    args = [
        "-f", files, "--headless", "--host", host, "--json-file", stats_base,
        "--only-summary", "--loglevel", "INFO",
        # Failures are measured and gated here; a non-zero exit then means locust failed.
        "--exit-code-on-error", "0",
    ]
    if settings.shape is None:
        users = settings.users
        args += ["-u", str(users), "-r", f"{settings.spawn_rate or users:g}",
                 "-t", f"{settings.duration_s}s"]
    if settings.stop_timeout is not None:
        args += ["--stop-timeout", f"{settings.stop_timeout:g}"]
    if settings.tags:
        args += ["--tags", *settings.tags]
    if settings.exclude_tags:
        args += ["--exclude-tags", *settings.exclude_tags]
    if settings.distributed:
        bind = "127.0.0.1" if isinstance(settings.workers, int) else settings.master_bind_host
        expect = settings.workers if isinstance(settings.workers, int) else settings.expect_workers
        args += ["--master", "--master-bind-host", bind, "--master-bind-port", str(port),
                 "--expect-workers", str(expect),
                 "--expect-workers-max-wait", str(settings.worker_wait_s)]
    # User classes are positional; "--" ends the options so "--tags a" cannot swallow them.
    return args + (["--", *settings.user_classes] if settings.user_classes else [])


def worker_args(exe: str, files: str, port: int) -> list[str]:
    return [exe, "-f", files, "--worker", "--master-host", "127.0.0.1",
            "--master-port", str(port), "--loglevel", "INFO"]


def locust_env(env: Mapping[str, str]) -> dict[str, str]:
    """The check's environment without proxy settings: a proxy would receive the load and
    bypass the host allow-list."""
    return {k: v for k, v in env.items() if k.lower() not in _PROXY_VARS}


def interpret(
    record: RunRecord,
    rows: Sequence[EndpointStats],
    settings: LoadSettings,
    run: ToolRun,
    *,
    stopped_early: bool = False,
) -> list[Metric]:
    """Metrics of a finished run, or ToolError / TargetError when it cannot be trusted.

    ``stopped_early``: the run was stopped on purpose (abort_on_fail), so it is expected to
    end before the planned duration.
    """
    tail = run.tail()
    if record.refused:
        # No connection was made, but the failures sit in the timings: nothing to measure.
        hosts = ", ".join(f"{host!r} x {count}" for host, count in record.refused)
        raise TargetError(
            f"the locustfile sent requests to hosts outside allowed_hosts, refused before"
            f" connecting: {hosts} (list them in the target's allowed_hosts to load-test them)"
        )
    if record.started is None or record.stopped is None:
        raise ToolError(f"locust never started the load test: {tail}")
    ran = record.stopped - record.started
    planned = settings.planned_s
    # locust's -t timer counts from gevent's cached loop time, stale after its blocking
    # start-up: runs end up to ~1 s short on a busy machine without anything going wrong.
    if not stopped_early and ran < planned - max(EARLY_EXIT_SLACK_S, 0.1 * planned):
        raise ToolError(f"locust stopped after {ran:.1f} s of the planned {planned:g} s: {tail}")
    total = aggregate(rows)
    if total.requests == 0:
        why = record.exceptions[0][1] if record.exceptions else tail
        raise ToolError(f"locust made no request in the measured window: {why}")
    start = record.measured_from or total.start_time
    window = max(record.stopped - start, 1e-9)
    stopped = stopped_answering(total, record.errors, record.stopped, max(2.0, 0.1 * window))
    if stopped:
        raise TargetError(stopped)
    metrics = endpoint_metrics("", total, window, per_second(total, start, record.stopped))
    for label, row in zip(endpoint_labels(rows), rows, strict=True):
        series = per_second(row, start, record.stopped)
        metrics.extend(endpoint_metrics(label + ".", row, window, series))
    metrics.append(Metric("duration_s", window, "s", Direction.HIGHER))
    if record.users:
        users = tuple(float(n) for n in record.users)
        metrics.append(Metric("users", max(users), "count", Direction.HIGHER, users))
    metrics.append(
        Metric(
            "task_exceptions", float(sum(n for n, _ in record.exceptions)), "count",
            Direction.LOWER,
        )
    )
    metrics.extend(generator_metrics(record, run.stderr))
    return metrics


def generator_metrics(record: RunRecord, log: str) -> list[Metric]:
    """How hard the locust processes worked, and whether one of them was the bottleneck.

    ``generator_cpu_pct``: CPU time of the busiest process, in % of one core (a gevent
    process uses one). ``generator_busy_pct`` (Linux): the share of the load its event loop
    was running or runnable but waiting for a CPU; on a machine shared with the target a
    CPU-bound generator gets less than a full core yet is busy all the time, and a waiting
    generator's timings include that wait. Either at >= 90 %, or locust's own CPU warning,
    makes ``generator_saturated`` 1.
    """
    metrics = []
    busiest = max((g.cpu_pct for g in record.generators), default=None)
    if busiest is not None:
        metrics.append(Metric("generator_cpu_pct", busiest, "%", Direction.LOWER))
    busy = [g.busy_pct for g in record.generators if g.busy_pct is not None]
    if busy:
        metrics.append(Metric("generator_busy_pct", max(busy), "%", Direction.LOWER))
    saturated = (
        (busiest is not None and busiest >= SATURATED_CPU_PCT)
        or any(b >= SATURATED_CPU_PCT for b in busy)
        or record.cpu_warning
        or any(g.cpu_warning for g in record.generators)
        or cpu_warning_logged(log)
    )
    metrics.append(Metric("generator_saturated", float(saturated), "flag", Direction.LOWER))
    return metrics


def _reason(m: Mapping[str, Metric], record: RunRecord) -> str:
    text = (
        f"{int(m['requests'].value)} requests in {m['duration_s'].value:.1f} s"
        f" ({m['rps'].value:.1f} rps), p95 {m['p95_ms'].value:g} ms,"
        f" failures {m['failure_ratio'].value * 100:.1f} %"
    )
    if "generator_cpu_pct" in m:
        text += f", generator CPU {m['generator_cpu_pct'].value:.0f} %"
    if "generator_busy_pct" in m:
        text += f" (busy {m['generator_busy_pct'].value:.0f} %)"
    if m["generator_saturated"].value:
        text += " (generator saturated: the figures measure locust, not the target)"
    if record.exceptions:
        count, message = record.exceptions[0]
        text += f"; exceptions in the locustfile: {count} x {message}"
    return text


def _version(log: str) -> str | None:
    marker = "Starting Locust "
    at = log.find(marker)
    if at < 0:
        return None
    return log[at + len(marker):].split(maxsplit=1)[0] or None


class LocalWorkers:
    """``locust --worker`` processes on this machine, each in its own process group.

    run_tool runs one process to completion; workers must run beside the master, so they
    are started here (never through a shell) and always stopped: first given
    ``WORKER_EXIT_GRACE_S`` to leave on the master's quit message, then the group is
    terminated and killed (:func:`neuroerp_ci.run.target.stop_process_group`).
    """

    def __init__(self) -> None:
        self._procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(
        self, argv: Sequence[str], count: int, cwd: Path, env: Mapping[str, str], log_dir: Path
    ) -> None:
        for i in range(count):
            log_path = log_dir / f"locust-worker-{i + 1}.log"
            with log_path.open("wb") as log:  # the child keeps its own descriptor
                try:
                    proc = start_group(  # tracked: dies with the run, and with neuroerp-ci
                        argv, cwd=str(cwd), env=dict(env), stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT,
                    )
                except OSError as exc:
                    raise ToolError(f"cannot start {describe(argv)}: {exc}") from exc
            self._procs.append((proc, log_path))

    def stop(self, grace_s: float) -> list[int | None]:
        """Wait for every worker to exit, then end each group; the exit codes (None: killed)."""
        deadline = time.monotonic() + grace_s
        codes: list[int | None] = []
        for proc, _log in self._procs:
            try:
                code: int | None = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                code = None
            stop_process_group(proc, 2.0)  # children of the worker, or the worker itself
            codes.append(code)
        return codes

    def artifacts(self) -> dict[str, str]:
        return {log.stem: str(log) for _proc, log in self._procs}

    def failures(self, codes: Sequence[int | None]) -> str:
        """"; worker 2 exited 1: <log tail>" for each worker that failed."""
        return "".join(
            f"; worker {i + 1} exited {code}: {log_tail(log, 300)}"
            for i, ((_proc, log), code) in enumerate(zip(self._procs, codes, strict=True))
            if code not in (0, None)
        )


def render_wrapper(
    *,
    record_path: str,
    warmup_s: float,
    stages: Sequence[Mapping[str, Any]],
    allowed_hosts: Sequence[str],
    live_path: str | None = None,
    timeline_every: int = 1,
) -> str:
    """The wrapper locustfile's source with its settings embedded as a JSON string literal.

    ``allowed_hosts`` are canonical (:func:`neuroerp_ci.support.hosts.allowed_set`): remote workers
    may not have neuroerp-ci installed, so the wrapper compares with them on its own terms.
    ``live_path``: where the master writes its live snapshot for abort_on_fail (None: none).
    ``timeline_every``: seconds between timeline points (:mod:`._load_timeline`).
    """
    settings: dict[str, Any] = {
        "record": record_path,
        "warmup_s": warmup_s,
        "stages": [dict(s) for s in stages],
        "allowed_hosts": list(allowed_hosts),
        "timeline_every": timeline_every,
        "timeline_max": MAX_POINTS,
    }
    if live_path is not None:
        settings["live"] = live_path
    config = json.dumps(settings, sort_keys=True)
    source = _WRAPPER.replace("__TIMELINE_FUNCTIONS__", wrapper_source())
    return source.replace("__CONFIG__", repr(config))


# The wrapper locustfile, loaded by every locust process (local, master, workers; remote
# workers download it with `-f -`) before the project's locustfile. It guards getaddrinfo
# (see the module docstring). Otherwise only locust's public event hooks: warm-up ends with a
# stats reset in every process; CPU time is measured per process during the load (locust
# samples CPU only every 10 s) and workers send theirs to the master; the master (or the
# single process) samples users and the timeline (functions copied from _load_timeline at
# __TIMELINE_FUNCTIONS__) once a second and writes the run record at `quitting`, with
# locust's failure messages, which --json-file does not contain.
_WRAPPER = '''"""Generated by neuroerp-ci for one load check: rewritten on every run."""

from __future__ import annotations

import _socket
import ipaddress
import json
import os
import signal
import socket
import time

import gevent
import gevent._socketcommon
import gevent.socket
from locust import LoadTestShape, events
from locust import runners as _locust_runners
from locust.runners import MasterRunner, WorkerRunner

_CONFIG = json.loads(__CONFIG__)
_MESSAGE = "neuroerp_ci_generator"
_ALLOWED = frozenset(_CONFIG["allowed_hosts"])
_REFUSED = "neuroerp-ci refused host"
_state = {"generators": [], "refused": {}}

# Workers send their stats every 3 s by default: once a second, the master's timeline (and
# its abort_on_fail snapshot) follows the load second by second instead of in 3 s bursts.
if getattr(_locust_runners, "WORKER_REPORT_INTERVAL", 0) > 1.0:
    _locust_runners.WORKER_REPORT_INTERVAL = 1.0


def _numeric(host):
    """The address a resolver reads in ``host`` (127.1, 0x7f.0.0.1, ::ffff:7f00:1), or None."""
    try:
        infos = _socket.getaddrinfo(host, None, 0, 0, 0, socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError, TypeError):
        return None
    address = ipaddress.ip_address(infos[0][4][0].split("%")[0])
    return str(getattr(address, "ipv4_mapped", None) or address)


def _canonical(host):
    """``host`` as the allow-list spells it (support.hosts), or None when it can't be."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str) or not host:
        return None
    address = _numeric(host)
    if address is not None:
        return address
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
        if _numeric(name) is not None:
            return None  # "127.0.0.1." goes to DNS as a name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _guarded(original):
    def getaddrinfo(host, *args, **kwargs):
        if _canonical(host) not in _ALLOWED:
            shown = host if isinstance(host, str) else repr(host)
            _state["refused"][shown] = _state["refused"].get(shown, 0) + 1
            raise socket.gaierror(
                socket.EAI_NONAME,
                "%s %r: not in allowed_hosts %s" % (_REFUSED, host, sorted(_ALLOWED)),
            )
        return original(host, *args, **kwargs)

    getaddrinfo.neuroerp_ci_guard = True
    return getaddrinfo


# Every client (requests/urllib3, geventhttpclient, socket.create_connection) resolves the
# host it is about to dial through one of these, redirects included.
for _module in (socket, gevent.socket, gevent._socketcommon):
    if not getattr(_module.getaddrinfo, "neuroerp_ci_guard", False):
        _module.getaddrinfo = _guarded(_module.getaddrinfo)


def _role(runner):
    if isinstance(runner, MasterRunner):
        return "master"
    if isinstance(runner, WorkerRunner):
        return "worker"
    return "local"


def _on_generator(environment, msg, **_kwargs):
    _state["generators"].append(msg.data)


@events.init.add_listener
def _on_init(environment, **_kwargs):
    _state["environment"] = environment
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(_MESSAGE, _on_generator)


def _end_warmup(environment):
    if "stopped" not in _state and environment.runner is not None:
        _state["measured_from"] = time.time()  # before the reset: no request precedes it
        environment.runner.stats.reset_all()
        _state["timeline_reset"] = True  # the next timeline point counts from zero


def _schedstat():
    # Linux: seconds the main thread (the gevent loop) ran, and waited runnable for a CPU.
    try:
        with open("/proc/self/schedstat", encoding="ascii") as fh:
            ran, waited = fh.read().split()[:2]
        return (int(ran) + int(waited)) / 1e9
    except (OSError, ValueError):
        return None


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    _state.update(started=time.time(), cpu0=time.process_time(), wall0=time.monotonic(),
                  busy0=_schedstat())
    _state.pop("stopped", None)
    _state.pop("measured_from", None)
    if isinstance(environment.runner, MasterRunner):
        _state["workers"] = environment.runner.worker_count
    if _CONFIG["warmup_s"] > 0:
        _state["warmup"] = gevent.spawn_later(_CONFIG["warmup_s"], _end_warmup, environment)
    if not isinstance(environment.runner, WorkerRunner):
        _state["users"] = []
        _state["timeline"] = []
        _state.pop("timeline_last", None)
        _state.pop("timeline_reset", None)
        _state.pop("timeline_off", None)
        _state["sampler"] = gevent.spawn(_sample_users, environment.runner)


def _sample_users(runner):
    ticks = 0
    while True:  # the running user count once a second (a master sums its workers')
        gevent.sleep(1.0)
        _state["users"].append(runner.user_count)
        ticks += 1
        if ticks % _CONFIG["timeline_every"] == 0 and "timeline_off" not in _state:
            try:
                _sample_timeline(runner)
            except Exception:  # informational: never at the cost of the users or live snapshot
                _state["timeline_off"] = True
                _state["timeline"] = []  # a timeline with a hole would mislead
        if _CONFIG.get("live"):
            _write_live(runner)


def _sample_timeline(runner):
    # What the last interval added, from locust's cumulative totals (neuroerp-ci's
    # _load_timeline, whose functions are copied below): only the last totals are kept.
    if len(_state["timeline"]) >= _CONFIG["timeline_max"]:
        return
    total = runner.stats.total
    current = (total.num_requests, total.num_failures, dict(total.response_times))
    previous = None if _state.pop("timeline_reset", False) else _state.get("timeline_last")
    _state["timeline_last"] = current
    point = timeline_point(time.time() - _state["started"], runner.user_count, previous, current)
    _state["timeline"].append(point)


__TIMELINE_FUNCTIONS__


def _write_live(runner):
    # neuroerp-ci's abort_on_fail watch reads this (atomically replaced) once a second.
    total = runner.stats.total
    measured = _state.get("measured_from")
    if measured is None and _CONFIG["warmup_s"] <= 0:
        measured = _state.get("started")
    snapshot = {
        "t": time.time(),
        "started": _state.get("started"),
        "measured_from": measured,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "histogram": {str(k): v for k, v in total.response_times.items()},
    }
    path = _CONFIG["live"]
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(snapshot, fh)
        os.replace(path + ".tmp", path)
    except OSError:
        pass  # no snapshot: nothing is stopped, the run goes to its end


def _on_stop_request():
    # SIGUSR1 from neuroerp-ci (abort_on_fail): quit as --run-time does, so test_stop,
    # quitting and the --json-file stats all happen as at a normal end.
    environment = _state.get("environment")
    if environment is None or environment.runner is None or "stop_requested" in _state:
        return
    _state["stop_requested"] = time.time()
    gevent.spawn(environment.runner.quit)


if _CONFIG.get("live"):
    gevent.signal_handler(signal.SIGUSR1, _on_stop_request)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs):
    if "started" not in _state or "stopped" in _state:
        return
    _state["stopped"] = time.time()
    for name in ("warmup", "sampler"):
        greenlet = _state.pop(name, None)
        if greenlet is not None:
            greenlet.kill(block=False)
    runner = environment.runner
    busy = _schedstat()
    usage = {
        "node": "%s:%d" % (socket.gethostname(), os.getpid()),
        "role": _role(runner),
        "cpu_s": time.process_time() - _state["cpu0"],
        "wall_s": time.monotonic() - _state["wall0"],
        "busy_s": None if busy is None or _state["busy0"] is None else busy - _state["busy0"],
        "cpu_warning": bool(getattr(runner, "cpu_warning_emitted", False)),
        "refused": dict(_state["refused"]),  # kept apart from stats: a reset clears those
    }
    if isinstance(runner, WorkerRunner):
        runner.send_message(_MESSAGE, usage)
    else:
        _state["generators"].append(usage)


def _refused_total():
    total = dict(_state["refused"])  # this process's, up to now; then each worker's
    for usage in _state["generators"]:
        if usage.get("role") == "worker":
            for host, count in (usage.get("refused") or {}).items():
                total[host] = total.get(host, 0) + count
    return total


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs):
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):
        return
    record = {
        "role": _role(runner),
        "started": _state.get("started"),
        "stopped": _state.get("stopped"),
        "measured_from": _state.get("measured_from", _state.get("started")),
        "errors": list(environment.stats.serialize_errors().values()),
        "exceptions": [
            {"count": row["count"], "msg": row["msg"]} for row in runner.exceptions.values()
        ],
        "generators": _state["generators"],
        "users": _state.get("users", []),
        "timeline": _state.get("timeline", []),
        "cpu_warning": bool(getattr(runner, "cpu_warning_emitted", False)),
        "worker_cpu_warning": bool(getattr(runner, "worker_cpu_warning_emitted", False)),
        "workers": _state.get("workers", 0),
        "refused": _refused_total(),
        "stop_requested": _state.get("stop_requested"),
    }
    path = _CONFIG["record"]
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(record, fh, default=str)
    os.replace(path + ".tmp", path)


if _CONFIG["stages"]:

    class NeuroErpCiShape(LoadTestShape):
        """The configured stages one after the other; the test stops after the last."""

        def tick(self):
            elapsed = self.get_run_time()
            for stage in _CONFIG["stages"]:
                if elapsed < stage["duration_s"]:
                    return stage["users"], stage["spawn_rate"]
                elapsed -= stage["duration_s"]
            return None
'''
