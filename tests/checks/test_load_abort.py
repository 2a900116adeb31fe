"""abort_on_fail for load tests: the decision on canned live snapshots, the watched subprocess,
the pipeline file's rules, and real locust against the slowed demo service (integration)."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.checks import KINDS
from neuroerp_ci.checks._load_abort import (
    HOLD_POLLS,
    LIVE_METRICS,
    MIN_REQUESTS,
    AbortDecision,
    AbortWatch,
    LiveSnapshot,
    abort_metrics,
    abort_reason,
    breach,
    min_requests,
    parse_snapshot,
    read_snapshot,
    run_watched,
    stop_requested,
)
from neuroerp_ci.checks.interface import LiveLimit
from neuroerp_ci.checks.load import LocustLoadCheck, render_wrapper
from neuroerp_ci.config import Pipeline, TargetSpec, parse_pipeline
from neuroerp_ci.config.abort import abort_limits
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo
from neuroerp_ci.errors import ConfigError, ToolError
from neuroerp_ci.model import CheckStatus, OutcomeStatus, StageReport, Verdict
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.run.target import TargetInfo, target_session

P95_MAX_300 = LiveLimit("p95_ms", "max", 300.0)
KNOBS = ("NEUROERP_DEMO_DELAY_MS", "NEUROERP_DEMO_ERROR_RATE")


def snap(
    t: float,
    requests: int = 200,
    *,
    slow: int = 0,
    failures: int = 0,
    started: float = 1000.0,
    measured_from: float | None = 1000.0,
) -> LiveSnapshot:
    """``requests`` timed at 100 ms, ``slow`` of them at 1000 ms instead; ``t`` in seconds
    from ``started``."""
    histogram = {100.0: requests - slow, 1000.0: slow}
    return LiveSnapshot(started + t, started, measured_from, requests, failures, histogram)


# --- the decision ----------------------------------------------------------------------


def test_a_breach_must_hold_on_two_consecutive_snapshots() -> None:
    watch = AbortWatch([P95_MAX_300])
    assert watch.observe(snap(1, slow=50)) is None  # breached once
    assert watch.observe(snap(2, slow=0)) is None  # within: the streak starts over
    assert watch.observe(snap(3, slow=50)) is None
    decision = watch.observe(snap(4, slow=50))
    assert decision is not None and HOLD_POLLS == 2
    assert decision.limit == P95_MAX_300 and decision.value == 1000.0
    assert decision.elapsed_s == 4.0 and decision.requests == 200


def test_the_same_snapshot_read_twice_counts_once() -> None:
    watch = AbortWatch([P95_MAX_300])
    same = snap(1, slow=50)
    assert watch.observe(same) is None
    assert watch.observe(same) is None  # the reader polled before locust wrote again
    assert watch.observe(snap(2, slow=50)) is not None


def test_delay_is_counted_from_the_start_of_the_load() -> None:
    limit = LiveLimit("p95_ms", "max", 300.0, delay_s=5.0)
    watch = AbortWatch([limit])
    for t in (1, 2, 3, 4):  # breached all along, but too early
        assert breach(limit, snap(t, slow=50)) is None
        assert watch.observe(snap(t, slow=50)) is None
    assert watch.observe(snap(5, slow=50)) is None  # the first snapshot that may judge
    decision = watch.observe(snap(6, slow=50))
    assert decision is not None and decision.elapsed_s == 6.0


def test_the_warm_up_is_never_judged() -> None:
    watch = AbortWatch([P95_MAX_300])
    for t in (1, 2, 3):
        assert watch.observe(snap(t, slow=50, measured_from=None)) is None


def test_enough_requests_for_the_percentile() -> None:
    assert min_requests("p50_ms") == MIN_REQUESTS == 50
    assert min_requests("p95_ms") == 100  # 5 requests beyond the 95th percentile
    assert min_requests("p99_ms") == 500
    assert min_requests("failure_ratio") == min_requests("rps") == MIN_REQUESTS
    watch = AbortWatch([P95_MAX_300])
    assert watch.observe(snap(1, requests=99, slow=99)) is None
    assert watch.observe(snap(2, requests=99, slow=99)) is None  # every request slow: too few
    assert watch.observe(snap(3, requests=100, slow=99)) is None
    assert watch.observe(snap(4, requests=101, slow=99)) is not None


def test_op_max_and_min() -> None:
    failures = LiveLimit("failure_ratio", "max", 0.01)
    assert breach(failures, snap(3, failures=20)) == pytest.approx(0.1)
    assert breach(failures, snap(3, failures=2)) is None  # 1 % is within "at most 1 %"
    rps = LiveLimit("rps", "min", 100.0)
    assert breach(rps, snap(4, requests=200)) == pytest.approx(50.0)  # 200 in 4 s
    assert breach(rps, snap(1, requests=200)) is None  # 200 rps
    band = [LiveLimit("p50_ms", "min", 50.0), LiveLimit("p50_ms", "max", 500.0)]
    watch = AbortWatch(band)
    assert watch.observe(snap(1)) is None and watch.observe(snap(2)) is None
    watch = AbortWatch(band)
    watch.observe(snap(1, slow=150))
    decision = watch.observe(snap(2, slow=150))
    assert decision is not None and decision.limit.op == "max"


def test_reason_and_metrics_say_what_stopped_the_run_and_the_time_saved() -> None:
    decision = AbortDecision(P95_MAX_300, 1012.0, 6.0, 312)
    assert decision.text() == "p95_ms 1012 > 300"
    assert abort_reason(decision, 6.2, 60.0) == (
        "stopped early after 6.2 s: p95_ms 1012 > 300 beyond doubt (abort_on_fail);"
        " 53.8 s of 60 s saved"
    )
    aborted, saved = abort_metrics(True, 6.2, 60.0)
    assert (aborted.name, aborted.value, saved.name) == ("aborted", 1.0, "time_saved_s")
    assert saved.value == pytest.approx(53.8)
    assert [m.value for m in abort_metrics(False, 60.1, 60.0)] == [0.0, 0.0]


def test_snapshots_from_the_wrapper_and_garbage(tmp_path: Path) -> None:
    data = {
        "t": 1005.5,
        "started": 1000.0,
        "measured_from": 1001.0,
        "requests": 3,
        "failures": 1,
        "histogram": {"100": 2, "250": 1},
    }
    parsed = parse_snapshot(data)
    assert parsed.histogram == {100.0: 2, 250.0: 1} and parsed.elapsed_s == 5.5
    assert parsed.value("p50_ms") == 100.0 and parsed.value("rps") == pytest.approx(3 / 4.5)
    assert parsed.value("failure_ratio") == pytest.approx(1 / 3)
    path = tmp_path / "live.json"
    assert read_snapshot(path) is None  # none written yet
    for garbage in (
        "{",
        "[]",
        json.dumps({**data, "requests": -1}),
        json.dumps({**data, "t": None}),
        json.dumps({**data, "histogram": {"x": 1}}),
    ):
        path.write_text(garbage, encoding="utf-8")
        assert read_snapshot(path) is None, garbage  # stops nothing, never a wrong stop
    assert stop_requested({"stop_requested": 1003.2}) == 1003.2
    assert stop_requested({"stop_requested": None}) is None and stop_requested([]) is None


def test_live_metrics_are_the_load_kinds() -> None:
    kind = LocustLoadCheck()
    assert kind.live_metrics == LIVE_METRICS
    assert {"p50_ms", "p95_ms", "p99_ms", "failure_ratio", "rps"} <= LIVE_METRICS
    names = kind.metric_names(kind.settings_model.model_validate({"duration_s": 5}))
    assert names.produces("aborted") and names.produces("time_saved_s")


def test_the_wrapper_writes_snapshots_and_quits_on_request_only_when_watched() -> None:
    args: dict[str, Any] = {
        "record_path": "/w/r.json",
        "warmup_s": 0.0,
        "stages": [],
        "allowed_hosts": ["127.0.0.1"],
    }
    watched = render_wrapper(**args, live_path="/w/locust_live.json")
    compile(watched, "_neuroerp_ci_load.py", "exec")
    assert embedded(watched)["live"] == "/w/locust_live.json"
    assert "live" not in embedded(render_wrapper(**args))  # no snapshot, no SIGUSR1 handler
    assert "gevent.signal_handler(signal.SIGUSR1, _on_stop_request)" in watched


def embedded(source: str) -> dict[str, Any]:
    line = next(x for x in source.splitlines() if x.startswith("_CONFIG = json.loads("))
    config: dict[str, Any] = json.loads(eval(line.removeprefix("_CONFIG = json.loads(")[:-1]))  # noqa: S307
    return config


# --- the watched subprocess ------------------------------------------------------------

# Runs for a minute unless SIGUSR1 arrives (then it says so and exits 0), like the wrapper.
_STOPPABLE = """
import signal, sys, time
def stop(*_):
    print("stopped on request", flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, stop if sys.argv[1] == "obey" else signal.SIG_IGN)
print("running", flush=True)
time.sleep(60)
"""


@pytest.mark.integration
def test_run_watched_stops_the_process_once_asked(tmp_path: Path) -> None:
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 2

    run = run_watched(
        [sys.executable, "-c", _STOPPABLE, "obey"],
        cwd=tmp_path,
        timeout=120,
        env=dict(os.environ),
        should_stop=should_stop,
        interval_s=0.2,
    )
    assert run.returncode == 0
    assert "running" in run.stdout and "stopped on request" in run.stdout
    assert run.duration_s < 60 / 2  # far from the minute it would have run
    assert len(calls) == 2  # not asked again once stopping


@pytest.mark.integration
def test_run_watched_kills_a_process_that_ignores_the_request(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="did not stop 0.5 s after asked to"):
        run_watched(
            [sys.executable, "-c", _STOPPABLE, "ignore"],
            cwd=tmp_path,
            timeout=120,
            env=dict(os.environ),
            should_stop=lambda: True,
            interval_s=0.2,
            quit_grace_s=0.5,
        )


# --- the pipeline file's rules -----------------------------------------------------------


def pipeline_with(*conditions: Mapping[str, Any], priority: str = "high") -> Pipeline:
    raw = {
        "target": {"base_url": "http://127.0.0.1:8000"},
        "checks": [
            {
                "id": "load-test",
                "kind": "load",
                "priority": priority,
                "settings": {"duration_s": 60},
            },
            {"id": "unit-tests", "kind": "pytest"},
        ],
        "stages": {"staging": {"conditions": list(conditions)}},
    }
    return parse_pipeline(raw, Path("/p/neuroerp-ci.toml"))


def config_error(*conditions: Mapping[str, Any], priority: str = "high") -> str:
    with pytest.raises(ConfigError) as info:
        pipeline_with(*conditions, priority=priority)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_abort_limits_of_a_stage() -> None:
    pipeline = pipeline_with(
        {"check": "load-test", "metric": "p95_ms", "max": 300, "abort_on_fail": True, "delay_s": 3},
        {"check": "load-test", "metric": "rps", "min": 5, "max": 1e6, "abort_on_fail": True},
        {"check": "load-test", "metric": "failure_ratio", "max": 0.01},  # judged at the end
    )
    limits = abort_limits(pipeline.stage("staging").conditions)
    assert limits == {
        "load-test": (
            LiveLimit("p95_ms", "max", 300.0, 3.0),
            LiveLimit("rps", "max", 1e6, 0.0),
            LiveLimit("rps", "min", 5.0, 0.0),
        )
    }


@pytest.mark.parametrize(
    ("condition", "priority", "key", "why"),
    [
        (
            {"check": "unit-tests", "metric": "failed", "max": 0},
            "high",
            "conditions[0].abort_on_fail",
            "'unit-tests' (pytest) cannot be stopped early",
        ),
        (
            {"check": "load-test", "metric": "p95_ms", "max_increase_pct": 10},
            "high",
            "conditions[0].abort_on_fail",
            "needs an absolute limit (max / min), not a relative",
        ),
        (
            {"check": "load-test", "metric": "p95_ms", "regression": {}},
            "high",
            "conditions[0].abort_on_fail",
            "not a regression condition",
        ),
        (
            {"check": "load-test", "metric": "mean_ms", "max": 300},
            "high",
            "conditions[0].abort_on_fail",
            "does not watch 'mean_ms' while it runs",
        ),
        (
            {"check": "load-test", "metric": "get_x.p95_ms", "max": 300},
            "high",
            "conditions[0].abort_on_fail",
            "does not watch 'get_x.p95_ms'",
        ),
        (
            {"check": "load-test", "metric": "p95_ms", "max": 300, "severity": "warning"},
            "high",
            "conditions[0].abort_on_fail",
            "needs a blocking condition (this one is warning)",
        ),
        (
            {"check": "load-test", "metric": "p95_ms", "max": 300},
            "medium",
            "conditions[0].abort_on_fail",
            "(this one is warning)",
        ),
    ],
)
def test_abort_on_fail_where_it_cannot_work(
    condition: dict[str, Any], priority: str, key: str, why: str
) -> None:
    message = config_error({**condition, "abort_on_fail": True}, priority=priority)
    assert f"stages.staging.{key}: condition " in message
    assert why in message
    assert f"on {condition['check']!r}" in message


def test_delay_without_abort_on_fail() -> None:
    message = config_error({"check": "load-test", "metric": "p95_ms", "max": 300, "delay_s": 0})
    assert "stages.staging.conditions[0].delay_s: condition 'p95_ms <= 300' on 'load-test':" in (
        message
    )
    assert "delay_s only applies with abort_on_fail = true" in message


# --- integration: real locust against the slowed demo service --------------------------


def clean_env(**knobs: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update(knobs)
    return env


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo(tmp_path_factory.mktemp("abort") / "demo")


@contextmanager
def demo_service(project: Path, log: Path, **knobs: str) -> Iterator[TargetInfo]:
    spec = TargetSpec(
        base_url="http://127.0.0.1:{port}",
        start=[
            "{python}",
            "-m",
            "uvicorn",
            "neuroerp_demo.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--log-level",
            "warning",
        ],
        health_url="/health",
        stop_timeout=5,
    )
    with target_session(spec, {"python": sys.executable}, clean_env(**knobs), log, project) as info:
        yield info


def abort_pipeline(project: Path, duration_s: int) -> Pipeline:
    """The demo's load test alone, gated on ``p95_ms <= 100`` with abort_on_fail after 3 s."""
    path = project / DEMO_PIPELINE
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    (entry,) = [c for c in raw["checks"] if c["id"] == "load-test"]
    entry["settings"].update(users=20, spawn_rate=20, duration_s=duration_s, warmup_s=1)
    conditions = [
        {"check": "load-test", "metric": "p95_ms", "max": 100, "abort_on_fail": True, "delay_s": 3},
        {"check": "load-test", "metric": "failure_ratio", "max": 0.01},
    ]
    reduced = {
        "target": raw["target"],
        "checks": [entry],
        "stages": {"staging": {"checks": ["load-test"], "conditions": conditions}},
    }
    return parse_pipeline(reduced, path)


def run_staging(pipeline: Pipeline, out: Path, **knobs: str) -> StageReport:
    assert isinstance(KINDS["load"], LocustLoadCheck)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcome = run_stage(
            pipeline,
            RunOptions(stage="staging", output_dir=out, run_id="t", env=clean_env(**knobs)),
            ThreadExecutor(pool),
        )
    return outcome.report


@pytest.mark.integration
def test_a_breached_limit_stops_locust_early_and_fails_the_stage(
    demo_project: Path, tmp_path: Path
) -> None:
    run_time = 60
    report = run_staging(
        abort_pipeline(demo_project, run_time), tmp_path, NEUROERP_DEMO_DELAY_MS="600"
    )
    (result,) = report.checks
    assert result.status is CheckStatus.OK, result.reason
    assert result.reason.startswith("stopped early after "), result.reason
    assert "p95_ms " in result.reason and "> 100 beyond doubt (abort_on_fail)" in result.reason
    assert f"s of {run_time} s saved" in result.reason
    assert result.metrics["aborted"].value == 1.0
    assert result.metrics["time_saved_s"].value > run_time / 2
    assert result.duration_s < run_time / 2  # the whole check, locust's start-up included
    # Real figures: every request waited 600 ms, +500 % over the limit: beyond what a busy
    # machine explains (the noise allowance is capped at +400 %).
    assert result.metrics["p95_ms"].value >= 600
    outcomes = {o.condition: o for o in report.outcomes}
    assert outcomes["p95_ms <= 100"].status is OutcomeStatus.FAIL
    assert outcomes["failure_ratio <= 0.01"].status is OutcomeStatus.PASS
    assert report.verdict is Verdict.FAIL
    record = json.loads(Path(result.artifacts["locust_run"]).read_text(encoding="utf-8"))
    assert record["stop_requested"] is not None and record["stopped"] is not None
    report_text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "stopped early after" in report_text


@pytest.mark.integration
def test_a_limit_that_holds_lets_the_run_go_to_its_end(demo_project: Path, tmp_path: Path) -> None:
    run_time = 6
    report = run_staging(abort_pipeline(demo_project, run_time), tmp_path)
    (result,) = report.checks
    assert result.status is CheckStatus.OK, result.reason
    assert not result.reason.startswith("stopped early"), result.reason
    assert result.metrics["aborted"].value == 0.0
    assert result.metrics["time_saved_s"].value == 0.0
    assert result.metrics["duration_s"].value >= run_time - 1 - 2  # warm-up, locust's slack
    assert report.verdict is Verdict.PASS, [o.reason for o in report.outcomes]
    record = json.loads(Path(result.artifacts["locust_run"]).read_text(encoding="utf-8"))
    assert record["stop_requested"] is None
