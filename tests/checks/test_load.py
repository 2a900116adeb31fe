"""The ``load`` kind: settings, locust's outputs (captured), and real locust runs against the
real demo service (integration)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import KINDS
from neuroerp_ci.checks._load_timeline import MAX_POINTS, read_timeline
from neuroerp_ci.checks._locust_stats import (
    EndpointStats,
    LocustError,
    aggregate,
    cpu_warning_logged,
    endpoint_labels,
    endpoint_metrics,
    is_connection_failure,
    parse_run_record,
    parse_stats,
    per_second,
    stopped_answering,
    thinned_samples,
)
from neuroerp_ci.checks._percentiles import percentile, weighted_percentile
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.checks.load import (
    LoadSettings,
    LocustLoadCheck,
    generator_metrics,
    interpret,
    locust_env,
    master_args,
    render_wrapper,
)
from neuroerp_ci.config import ConditionSpec, Pipeline, TargetSpec, parse_pipeline
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    OutcomeStatus,
    Priority,
    Severity,
    StageReport,
    Verdict,
)
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.run.target import TargetInfo, target_session
from neuroerp_ci.support.hosts import allowed_set, free_port, host_allowed
from neuroerp_ci.support.tooling import ToolRun, find_tool, stop_process_group

LOOPBACK = ("127.0.0.1", "localhost", "::1")
KNOBS = ("NEUROERP_DEMO_DELAY_MS", "NEUROERP_DEMO_ERROR_RATE")
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "locust"


def make_check(settings: Mapping[str, Any], timeout: float = 120.0) -> Check:
    return Check(
        id="load-test", title="load", kind="load", priority=Priority.HIGH, dependencies=(),
        timeout=timeout, settings=LoadSettings.model_validate(settings),
    )


def make_ctx(
    project: Path, work: Path, base_url: str | None, allowed: tuple[str, ...] = LOOPBACK
) -> CheckContext:
    return CheckContext(
        project_dir=project, work_dir=work, python=sys.executable, env=clean_env(),
        base_url=base_url, allowed_hosts=allowed,
    )


def clean_env(**knobs: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS}
    env.update(knobs)
    return env


def load_asset(name: str) -> Any:
    return json.loads((ASSET_DIR / name).read_text(encoding="utf-8"))


def fake_run(stderr: str = "") -> ToolRun:
    return ToolRun(("locust",), 0, "", stderr, 1.0)


def row(**overrides: Any) -> EndpointStats:
    base: dict[str, Any] = {
        "method": "GET", "name": "GET /x", "requests": 4, "failures": 1,
        "histogram": {10.0: 3, 200.0: 1}, "total_ms": 240.0, "max_ms": 204.0,
        "start_time": 100.0, "last_request": 103.5,
        "reqs_per_sec": {100: 1, 101: 2, 103: 1}, "fails_per_sec": {101: 1},
    }
    base.update(overrides)
    return EndpointStats(**base)


# --- the kind and its settings -------------------------------------------------------


def test_kind_is_exclusive_and_needs_target() -> None:
    assert LocustLoadCheck.name == "load"
    assert LocustLoadCheck.exclusive is True
    assert LocustLoadCheck.needs_target is True


def test_settings_defaults_and_planned_duration() -> None:
    s = LoadSettings.model_validate({"duration_s": 30})
    assert (s.locustfile, s.users, s.spawn_rate, s.warmup_s, s.workers) == (
        "locustfile.py", 10, None, 0.0, 0,
    )
    assert s.planned_s == 30.0 and not s.distributed
    shaped = LoadSettings.model_validate(
        {"shape": [{"duration_s": 5, "users": 2, "spawn_rate": 1},
                   {"duration_s": 2.5, "users": 9, "spawn_rate": 9}]}
    )
    assert shaped.planned_s == 7.5


@pytest.mark.parametrize(
    "settings",
    [
        {},  # neither duration nor shape
        {"duration_s": 5, "shape": [{"duration_s": 5, "users": 1, "spawn_rate": 1}]},
        {"shape": [{"duration_s": 5, "users": 1, "spawn_rate": 1}], "users": 3},
        {"shape": [{"duration_s": 5, "users": 0, "spawn_rate": 1}]},
        {"duration_s": 5, "warmup_s": 5},  # nothing left to measure
        {"duration_s": 5, "locustfile": "http://example.invalid/locustfile.py"},
        {"duration_s": 5, "locustfile": "profile.txt"},
        {"duration_s": 5, "workers": "external"},  # without expect_workers
        {"duration_s": 5, "workers": 2, "expect_workers": 2},
        {"duration_s": 5, "workers": 65},
        {"duration_s": 5, "workers": "many"},
        {"duration_s": 2.5},  # locust takes whole seconds
        {"duration_s": 5, "users": 0},
        {"duration_s": 5, "typo": 1},
    ],
)
def test_invalid_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LoadSettings.model_validate(settings)


def test_master_args_single_shape_and_distributed() -> None:
    single = master_args(
        "w.py,l.py", "http://127.0.0.1:8000", "/w/locust_stats",
        LoadSettings.model_validate(
            {"duration_s": 7, "users": 4, "stop_timeout": 3, "tags": ["read"],
             "user_classes": ["ErpUser"]}
        ),
        5557,
    )
    assert single[:5] == ["-f", "w.py,l.py", "--headless", "--host", "http://127.0.0.1:8000"]
    assert ["-u", "4", "-r", "4", "-t", "7s"] == single[single.index("-u"):single.index("-u") + 6]
    assert ["--exit-code-on-error", "0"] == single[single.index("--exit-code-on-error"):][:2]
    assert "--master" not in single and single[-2:] == ["--", "ErpUser"]
    assert ["--stop-timeout", "3", "--tags", "read"] == single[
        single.index("--stop-timeout"):single.index("--stop-timeout") + 4
    ]

    shaped = master_args(
        "w.py,l.py", "http://h", "/s",
        LoadSettings.model_validate({"shape": [{"duration_s": 3, "users": 2, "spawn_rate": 1}]}),
        5557,
    )
    assert not {"-u", "-r", "-t"} & set(shaped)  # the shape class drives the load

    local = master_args("f", "http://h", "/s", LoadSettings(duration_s=5, workers=2), 40001)
    at = local.index("--master")
    assert local[at:at + 9] == [
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", "40001",
        "--expect-workers", "2", "--expect-workers-max-wait", "60",
    ]
    external = master_args(
        "f", "http://h", "/s",
        LoadSettings(duration_s=5, workers="external", expect_workers=3,
                     master_bind_host="0.0.0.0", worker_wait_s=30),  # noqa: S104
        5557,
    )
    at = external.index("--master")
    assert external[at + 2] == "0.0.0.0" and external[at + 6] == "3"  # noqa: S104
    assert external[at + 8] == "30"


def test_locust_env_drops_proxies_only() -> None:
    env = locust_env({"HTTP_PROXY": "http://proxy:3128", "https_proxy": "x", "ALL_PROXY": "y",
                      "PATH": "/bin", "NEUROERP_CI_BASE_URL": "http://127.0.0.1:1"})
    assert env == {"PATH": "/bin", "NEUROERP_CI_BASE_URL": "http://127.0.0.1:1"}


def test_wrapper_compiles_and_embeds_its_settings() -> None:
    stages = [{"duration_s": 2.0, "users": 3, "spawn_rate": 1.0}]
    source = render_wrapper(
        record_path="/w/run's.json", warmup_s=1.5, stages=stages, allowed_hosts=["127.0.0.1"]
    )
    compile(source, "_neuroerp_ci_load.py", "exec")
    line = next(x for x in source.splitlines() if x.startswith("_CONFIG = json.loads("))
    embedded = json.loads(eval(line.removeprefix("_CONFIG = json.loads(")[:-1]))  # noqa: S307
    assert embedded == {
        "record": "/w/run's.json", "stages": stages, "warmup_s": 1.5,
        "allowed_hosts": ["127.0.0.1"], "timeline_every": 1, "timeline_max": MAX_POINTS,
    }
    assert "def timeline_point(" in source  # copied from _load_timeline
    assert "class NeuroErpCiShape(LoadTestShape)" in source
    assert "import locust" not in source.replace("from locust", "")  # events only


# --- locust's JSON stats (captured from real runs) -----------------------------------


def test_parse_and_aggregate_captured_stats() -> None:
    rows = parse_stats(load_asset("stats_ok.json"))
    assert {r.name for r in rows} == {
        "GET /api/articles", "GET /api/articles/[id]", "POST /api/orders",
        "GET /api/reports/revenue",
    }
    total = aggregate(rows)
    assert total.requests == sum(r.requests for r in rows) > 0
    assert sum(total.histogram.values()) == total.requests  # every request was timed
    assert total.max_ms == max(r.max_ms for r in rows)
    assert sum(total.reqs_per_sec.values()) == total.requests
    assert total.start_time == min(r.start_time for r in rows)


@pytest.mark.parametrize(
    "data",
    [{}, [{"name": "x"}], [{"name": "x", "num_requests": 1, "num_failures": 0,
                            "start_time": 1, "response_times": {"ten": 1}}],
     [{"name": "x", "num_requests": -1, "num_failures": 0, "start_time": 1,
       "response_times": {}}]],
)
def test_garbage_stats_are_tool_errors(data: Any) -> None:
    with pytest.raises(ToolError, match="locust JSON stats"):
        parse_stats(data)


def test_endpoint_labels_are_metric_safe_and_unique() -> None:
    rows = [
        row(method="GET", name="GET /api/articles/[id]"),
        row(method="POST", name="/api/orders"),
        row(method="GET", name="/api/orders"),
        row(method="GET", name="/api/orders"),
    ]
    assert endpoint_labels(rows) == [
        "get_api_articles_id", "post_api_orders", "get_api_orders", "get_api_orders_2",
    ]


def test_endpoint_metrics_come_from_the_histogram() -> None:
    r = row(histogram={10.0: 90, 20.0: 5, 300.0: 5}, requests=100, failures=10,
            total_ms=2600.0, max_ms=304.2)
    m = {x.name: x for x in endpoint_metrics("a.", r, 4.0, (20.0, 30.0))}
    expanded = [10.0] * 90 + [20.0] * 5 + [300.0] * 5
    for key, q in (("p50_ms", 50), ("p90_ms", 90), ("p95_ms", 95), ("p99_ms", 99)):
        assert m[f"a.{key}"].value == pytest.approx(percentile(expanded, q))
        assert m[f"a.{key}"].direction is Direction.LOWER
    assert m["a.p99_ms"].value == 300.0 and m["a.max_ms"].value == 304.2  # exact max
    assert m["a.failure_ratio"].value == 0.1 and m["a.failure_ratio"].unit == "ratio"
    assert m["a.rps"].value == 25.0 and m["a.rps"].direction is Direction.HIGHER
    assert m["a.rps"].samples == (20.0, 30.0)
    assert sorted(m["a.p95_ms"].samples) == expanded  # few requests: all of them
    assert m["a.mean_ms"].value == 26.0


def test_thinned_samples_keep_the_distribution() -> None:
    histogram = {float(v): 1000 for v in range(1, 51)}  # 50 000 requests
    samples = thinned_samples(histogram, cap=500)
    assert len(samples) == 500 and list(samples) == sorted(samples)
    for q in (5, 50, 95):
        assert percentile(samples, q) == pytest.approx(weighted_percentile(histogram, q), abs=1)


def test_per_second_drops_partial_edges_and_fills_gaps() -> None:
    r = row(reqs_per_sec={100: 3, 101: 7, 103: 9, 105: 2})
    assert per_second(r, 100.4, 105.6) == (7.0, 0.0, 9.0, 0.0)
    assert per_second(r, 100.4, 101.2) == (3.0, 7.0)  # too short to drop edges


def test_run_record_and_garbage() -> None:
    record = parse_run_record(load_asset("run_workers.json"))
    assert record.role == "master" and record.workers == 2
    assert sorted(g.role for g in record.generators) == ["master", "worker", "worker"]
    assert all(0 <= g.cpu_pct < 100 for g in record.generators)
    assert record.ran_s is not None and record.ran_s > 3
    bad_records: list[Any] = [[], {"errors": []}, {"role": "local", "generators": [{"role": "x"}]}]
    for bad in bad_records:
        with pytest.raises(ToolError, match="run record"):
            parse_run_record(bad)


def test_connection_failures_are_told_from_http_failures() -> None:
    assert is_connection_failure("ConnectionRefusedError(111, 'Connection refused')")
    assert is_connection_failure(
        "ConnectionError(MaxRetryError(\"HTTPConnectionPool(host='127.0.0.1', port=1): Max "
        "retries exceeded\"))"
    )
    assert is_connection_failure("RemoteDisconnected('Remote end closed connection')")
    assert not is_connection_failure("HTTPError('500 Server Error: Internal Server Error')")


def test_stopped_answering_from_captured_run() -> None:
    rows = parse_stats(load_asset("stats_target_died.json"))
    record = parse_run_record(load_asset("run_target_died.json"))
    assert record.stopped is not None
    message = stopped_answering(aggregate(rows), record.errors, record.stopped, 2.0)
    assert message is not None
    assert "target stopped answering" in message and "ConnectionRefusedError" in message
    # The same failures spread over a run whose last second still had successes: no.
    total = aggregate(rows)
    last = max(total.reqs_per_sec)
    healthy = replace(total, reqs_per_sec={**total.reqs_per_sec, last: 5},
                      fails_per_sec={**total.fails_per_sec, last: 1})
    assert stopped_answering(healthy, record.errors, last + 1.0, 2.0) is None
    # Never a success at all: not answering.
    dead = replace(total, fails_per_sec=dict(total.reqs_per_sec))
    message = stopped_answering(dead, record.errors, record.stopped, 2.0)
    assert message is not None and message.startswith("target not answering:")
    # HTTP failures alone never mean "stopped answering".
    http = [LocustError("GET", "/x", "HTTPError('500 Server Error')", 9)]
    assert stopped_answering(total, http, record.stopped, 2.0) is None


def test_interpret_captured_runs() -> None:
    settings = LoadSettings(duration_s=4, warmup_s=1)
    record = parse_run_record(load_asset("run_ok.json"))
    rows = parse_stats(load_asset("stats_ok.json"))
    metrics = {m.name: m for m in interpret(record, rows, settings, fake_run())}
    assert metrics["requests"].value == sum(r.requests for r in rows) > 0
    assert metrics["failure_ratio"].value == 0.0
    assert record.stopped is not None and record.measured_from is not None
    window = record.stopped - record.measured_from  # the run after its 1 s warm-up
    assert metrics["duration_s"].value == pytest.approx(window) and window < 3.01
    assert metrics["rps"].value == pytest.approx(metrics["requests"].value / window)
    assert "get_api_articles_id.p95_ms" in metrics and "post_api_orders.requests" in metrics
    assert metrics["generator_saturated"].value == 0.0
    assert 0 < metrics["generator_cpu_pct"].value < 90

    with pytest.raises(TargetError, match="ConnectionRefusedError"):
        interpret(
            parse_run_record(load_asset("run_target_died.json")),
            parse_stats(load_asset("stats_target_died.json")), LoadSettings(duration_s=6),
            fake_run(),
        )


def test_interpret_refuses_early_exit_and_empty_runs() -> None:
    record = parse_run_record(load_asset("run_ok.json"))
    rows = parse_stats(load_asset("stats_ok.json"))
    log = "[...] locust.main: Shutting down (exit code 0)"
    with pytest.raises(ToolError, match=r"stopped after 3\.\d s of the planned 30 s.*Shutting"):
        interpret(record, rows, LoadSettings(duration_s=30), fake_run(log))
    with pytest.raises(ToolError, match="no request in the measured window"):
        interpret(record, [], LoadSettings(duration_s=4), fake_run(log))
    never = replace(record, started=None, stopped=None)
    with pytest.raises(ToolError, match="never started"):
        interpret(never, rows, LoadSettings(duration_s=4), fake_run(log))


def test_generator_saturation_from_cpu_flag_or_log() -> None:
    record = parse_run_record(load_asset("run_ok.json"))
    calm = {m.name: m.value for m in generator_metrics(record, "")}
    assert calm["generator_saturated"] == 0.0
    busy = replace(record.generators[0], cpu_s=record.generators[0].wall_s * 0.95)
    assert {m.name: m.value for m in generator_metrics(
        replace(record, generators=(busy,)), ""
    )}["generator_saturated"] == 1.0
    assert {m.name: m.value for m in generator_metrics(
        replace(record, cpu_warning=True), ""
    )}["generator_saturated"] == 1.0
    # locust's own warning, as runners.py words it
    line = "vm/WARNING/locust.runners: CPU usage above 90%! This may constrain your throughput"
    assert cpu_warning_logged(line)
    assert {m.name: m.value for m in generator_metrics(record, line)}["generator_saturated"] == 1
    waiting = replace(record.generators[0], busy_s=record.generators[0].wall_s * 0.97)
    assert waiting.busy_pct is not None and waiting.cpu_pct < 90 < waiting.busy_pct
    assert {m.name: m.value for m in generator_metrics(
        replace(record, generators=(waiting,)), ""
    )}["generator_saturated"] == 1.0
    no_cpu = replace(record, generators=())
    names = {m.name for m in generator_metrics(no_cpu, "")}
    assert names == {"generator_saturated"}  # not measured: not made up


def test_disallowed_host_is_refused_before_locust(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text("raise SystemExit('must not be loaded')\n")
    result = execute_check(
        LocustLoadCheck(), make_check({"duration_s": 5}),
        make_ctx(tmp_path, tmp_path / "work", "http://10.255.255.1:9", allowed=("127.0.0.1",)),
    )
    assert result.status is CheckStatus.ERROR
    assert "'10.255.255.1'" in result.reason and "allowed_hosts" in result.reason
    assert not (tmp_path / "work" / "locust.log").exists()  # locust never ran


def test_missing_locustfile_and_short_timeout(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, tmp_path / "work", "http://127.0.0.1:9")
    result = execute_check(LocustLoadCheck(), make_check({"duration_s": 5}), ctx)
    assert result.status is CheckStatus.ERROR and "locustfile 'locustfile.py' not found" in (
        result.reason
    )
    (tmp_path / "locustfile.py").write_text("")
    result = execute_check(LocustLoadCheck(), make_check({"duration_s": 60}, timeout=30), ctx)
    assert result.status is CheckStatus.ERROR and "too short" in result.reason


# --- integration: real locust against the real demo service --------------------------


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = write_demo(tmp_path_factory.mktemp("load") / "demo")
    for name in ("quits_early.py", "burns_cpu.py"):
        shutil.copy(ASSET_DIR / name, project / name)
    shutil.copy(ASSET_DIR / "syntax_error.py.txt", project / "syntax_error.py")
    return project


@contextmanager
def demo_service(project: Path, log: Path, **knobs: str) -> Iterator[TargetInfo]:
    spec = TargetSpec(
        base_url="http://127.0.0.1:{port}",
        start=["{python}", "-m", "uvicorn", "neuroerp_demo.app:app", "--host", "127.0.0.1",
               "--port", "{port}", "--log-level", "warning"],
        health_url="/health",
        stop_timeout=5,
    )
    values = {"python": sys.executable, "project": str(project)}
    with target_session(spec, values, clean_env(**knobs), log, project) as info:
        yield info


@pytest.fixture(scope="module")
def healthy_url(
    demo_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with demo_service(demo_project, tmp_path_factory.mktemp("svc") / "target.log") as info:
        assert info.base_url is not None
        yield info.base_url


def run_load(
    project: Path, tmp_path: Path, base_url: str, settings: Mapping[str, Any]
) -> CheckResult:
    return execute_check(
        LocustLoadCheck(), make_check(settings), make_ctx(project, tmp_path / "work", base_url)
    )


def staging_load_pipeline(
    project: Path, monkeypatch: pytest.MonkeyPatch, users: int = 10
) -> Pipeline:
    """The demo's pipeline file cut down to its target, the load test and the load test's
    staging conditions (the other staging checks have their own tests), with a shorter run."""
    monkeypatch.setitem(KINDS, "load", LocustLoadCheck())  # until the registry lists it
    path = project / DEMO_PIPELINE
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    (entry,) = [c for c in raw["checks"] if c["id"] == "load-test"]
    conditions = [c for c in raw["stages"]["staging"]["conditions"] if c["check"] == "load-test"]
    assert {c["metric"] for c in conditions} >= {"p95_ms", "failure_ratio", "rps"}
    entry["settings"].update(users=users, spawn_rate=users, duration_s=5, warmup_s=1)
    reduced = {
        "target": raw["target"],
        "checks": [entry],
        "stages": {"staging": {"checks": ["load-test"], "conditions": conditions}},
    }
    return parse_pipeline(reduced, path)


def run_staging(
    pipeline: Pipeline, out: Path, **knobs: str
) -> tuple[StageReport, dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcome = run_stage(
            pipeline,
            RunOptions(stage="staging", output_dir=out, run_id="t", env=clean_env(**knobs)),
            ThreadExecutor(pool),
        )
    outcomes = {o.condition: o for o in outcome.report.outcomes}
    return outcome.report, outcomes


@pytest.mark.integration
def test_staging_gate_passes_on_a_healthy_service(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, outcomes = run_staging(staging_load_pipeline(demo_project, monkeypatch), tmp_path)
    result = report.checks[0]
    assert result.status is CheckStatus.OK, result.reason
    assert report.verdict is Verdict.PASS, [o.reason for o in report.outcomes]
    assert outcomes["p95_ms <= 150"].status is OutcomeStatus.PASS
    assert result.metrics["failure_ratio"].value == 0.0
    assert result.tool_versions["locust"]
    assert Path(result.artifacts["locust_stats"]).is_file()


@pytest.mark.integration
def test_staging_gate_fails_on_p95_with_a_1s_delay(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = staging_load_pipeline(demo_project, monkeypatch)
    report, outcomes = run_staging(pipeline, tmp_path, NEUROERP_DEMO_DELAY_MS="1000")
    result = report.checks[0]
    assert result.status is CheckStatus.OK, result.reason
    p95 = result.metrics["p95_ms"].value
    # 1 s against a 150 ms limit: +567 %, beyond what a busy machine explains (the noise
    # allowance is capped at +400 %), so a loaded CI machine cannot make it INCONCLUSIVE.
    assert p95 >= 1000  # every request waits 1 s in the service
    assert result.metrics["get_api_articles_id.p95_ms"].value >= 1000
    outcome = outcomes["p95_ms <= 150"]
    assert outcome.status is OutcomeStatus.FAIL and outcome.value == p95
    assert "p95_ms" in outcome.reason and "> 150" in outcome.reason
    assert f"{p95:g}"[:3] in outcome.reason  # the measured value is in the reason
    assert report.verdict is Verdict.FAIL


@pytest.mark.integration
def test_staging_gate_fails_on_failure_ratio_with_10_percent_errors(
    demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 users: enough requests for a ratio near 0.1
    pipeline = staging_load_pipeline(demo_project, monkeypatch, users=20)
    report, outcomes = run_staging(pipeline, tmp_path, NEUROERP_DEMO_ERROR_RATE="0.1")
    result = report.checks[0]
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    assert m["requests"].value >= 60
    # ~10 % of API requests fail (binomial: 0.03..0.2 holds with overwhelming probability)
    assert 0.03 <= m["failure_ratio"].value <= 0.2
    assert m["failures"].value == round(m["failure_ratio"].value * m["requests"].value)
    outcome = outcomes["failure_ratio <= 0.01"]
    assert outcome.status is OutcomeStatus.FAIL
    assert "failure_ratio" in outcome.reason and "> 0.01" in outcome.reason
    assert report.verdict is Verdict.FAIL


@pytest.mark.integration
def test_syntax_error_is_an_error_with_locusts_message(
    demo_project: Path, tmp_path: Path, healthy_url: str
) -> None:
    result = run_load(
        demo_project, tmp_path, healthy_url, {"duration_s": 3, "locustfile": "syntax_error.py"}
    )
    assert result.status is CheckStatus.ERROR
    assert "SyntaxError" in result.reason and "syntax_error.py" in result.reason
    assert "exited 1" in result.reason


@pytest.mark.integration
def test_locust_exiting_early_is_an_error(
    demo_project: Path, tmp_path: Path, healthy_url: str
) -> None:
    result = run_load(
        demo_project, tmp_path, healthy_url, {"duration_s": 5, "locustfile": "quits_early.py"}
    )
    assert result.status is CheckStatus.ERROR
    assert "of the planned 5 s" in result.reason
    assert "Shutting down" in result.reason  # locust's own log line


@pytest.mark.integration
def test_target_that_stops_answering_mid_run_is_an_error(
    demo_project: Path, tmp_path: Path
) -> None:
    with demo_service(demo_project, tmp_path / "target.log") as info:
        assert info.base_url is not None and info.pid is not None
        killer = threading.Timer(2.0, os.killpg, (info.pid, signal.SIGKILL))
        killer.start()
        try:
            result = run_load(demo_project, tmp_path, info.base_url,
                              {"duration_s": 6, "users": 4, "spawn_rate": 4})
        finally:
            killer.cancel()
    assert result.status is CheckStatus.ERROR
    assert "target stopped answering" in result.reason
    assert "ConnectionRefusedError" in result.reason  # locust's failure message


@pytest.mark.integration
def test_disallowed_loopback_listener_sees_no_connection(
    demo_project: Path, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = execute_check(
            LocustLoadCheck(), make_check({"duration_s": 3}),
            make_ctx(demo_project, tmp_path / "work", f"http://127.0.0.2:{port}",
                     allowed=("127.0.0.1",)),
        )
        assert result.status is CheckStatus.ERROR
        assert "not in allowed_hosts" in result.reason
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection ever reached the listener
        # Control: the same locust profile against the listener does connect.
        with socket.create_connection(("127.0.0.2", port), timeout=2):
            deadline = time.monotonic() + 2
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    assert time.monotonic() < deadline, "control connection not accepted"
                    time.sleep(0.01)
                    continue
                conn.close()
                break


@pytest.mark.integration
def test_two_local_workers_aggregate_into_one_result(
    demo_project: Path, tmp_path: Path, healthy_url: str
) -> None:
    result = run_load(demo_project, tmp_path, healthy_url,
                      {"duration_s": 4, "users": 6, "spawn_rate": 6, "workers": 2})
    assert result.status is CheckStatus.OK, result.reason
    record = json.loads(Path(result.artifacts["locust_run"]).read_text())
    assert record["role"] == "master" and record["workers"] == 2
    assert sorted(g["role"] for g in record["generators"]) == ["master", "worker", "worker"]
    stats = parse_stats(json.loads(Path(result.artifacts["locust_stats"]).read_text()))
    assert result.metrics["requests"].value == sum(r.requests for r in stats) > 0
    assert "get_api_articles.p95_ms" in result.metrics
    for name in ("locust-worker-1", "locust-worker-2"):
        assert "Got quit message from master" in Path(result.artifacts[name]).read_text()
    # Workers report once a second (not locust's 3 s): the master's timeline is per second.
    assert sum(p["requests"] > 0 for p in record["timeline"]) >= 2, record["timeline"]


@pytest.mark.integration
def test_external_worker_downloads_the_locustfiles_from_the_master(
    demo_project: Path, tmp_path: Path, healthy_url: str
) -> None:
    # Stands in for a worker on another machine: started by hand, knowing only the master.
    port = free_port()
    log = tmp_path / "external-worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603 - fixed argument list
            [find_tool("locust"), "--worker", "-f", "-", "--master-host", "127.0.0.1",
             "--master-port", str(port)],
            cwd=tmp_path, env=clean_env(), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        result = run_load(demo_project, tmp_path, healthy_url,
                          {"duration_s": 4, "users": 4, "workers": "external",
                           "expect_workers": 1, "master_bind_port": port, "worker_wait_s": 30})
        worker.wait(timeout=30)
    finally:
        stop_process_group(worker, 2.0)
    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["requests"].value > 0
    record = json.loads(Path(result.artifacts["locust_run"]).read_text())
    assert record["workers"] == 1
    # The downloaded wrapper ran in the worker: it reported its CPU time to the master.
    assert sorted(g["role"] for g in record["generators"]) == ["master", "worker"]


@pytest.mark.integration
def test_shape_stages_run_and_warmup_is_excluded(
    demo_project: Path, tmp_path: Path, healthy_url: str
) -> None:
    settings = {"warmup_s": 1.5, "shape": [{"duration_s": 2, "users": 2, "spawn_rate": 2},
                                           {"duration_s": 3, "users": 8, "spawn_rate": 8}]}
    result = run_load(demo_project, tmp_path, healthy_url, settings)
    assert result.status is CheckStatus.OK, result.reason
    log = Path(result.artifacts["locust_log"]).read_text()
    assert "Shape test updating to 2 users" in log and "Shape test updating to 8 users" in log
    users = result.metrics["users"].samples  # running users, once a second
    assert users[0] == 2 and max(users) == result.metrics["users"].value == 8
    assert users.index(8.0) > users.index(2.0)  # the step came after the first stage
    record = json.loads(Path(result.artifacts["locust_run"]).read_text())
    assert record["measured_from"] - record["started"] >= 1.5
    stats = json.loads(Path(result.artifacts["locust_stats"]).read_text())
    # Every counted request came after the warm-up ended (locust's stats were reset then).
    assert all(row["start_time"] >= record["measured_from"] for row in stats)
    assert all(int(s) >= int(record["measured_from"]) for row in stats
               for s in row["num_reqs_per_sec"])
    # The timeline: one point a second, warm-up included; the reset at its end is no dip.
    timeline = read_timeline(Path(result.artifacts["locust_timeline"]))
    assert len(timeline) >= 4, timeline
    assert sum(rps > 0 for _t, rps, _p95, _f in timeline) >= len(timeline) - 1
    assert all((p95 is None) == (rps == 0) for _t, rps, p95, _f in timeline)
    assert all(p["requests"] >= 0 for p in record["timeline"])
    assert max(p["users"] for p in record["timeline"]) == 8


@pytest.mark.integration
def test_saturated_generator_gives_a_warning(
    demo_project: Path, tmp_path: Path, healthy_url: str
) -> None:
    result = run_load(demo_project, tmp_path, healthy_url,
                      {"duration_s": 3, "users": 5, "locustfile": "burns_cpu.py"})
    assert result.status is CheckStatus.OK, result.reason
    m = result.metrics
    # Pinned to the CPU: its event loop ran, or waited for a core, all the time (on a busy
    # machine it may get less than a full core, so the CPU share alone can stay under 90 %).
    assert m["generator_busy_pct"].value >= 90
    assert 0 < m["generator_cpu_pct"].value <= m["generator_busy_pct"].value + 1
    assert m["generator_saturated"].value == 1.0
    assert "generator saturated" in result.reason
    cond = ConditionSpec(check="load-test", metric="generator_saturated", max=0,
                         severity=Severity.WARNING)
    outcome = evaluate(cond, make_check({"duration_s": 3}), result)
    assert outcome.status is OutcomeStatus.WARN


# --- requests the locustfile sends to hosts outside allowed_hosts ------------------------


class CountingListener:
    """A TCP listener on a loopback address that accepts, counts and closes connections."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@contextmanager
def redirecting_target(location: str) -> Iterator[str]:
    """An allowed target on 127.0.0.1: ``/ok`` answers 200, ``/hop`` redirects to ``location``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/hop":
                self.send_response(302)
                self.send_header("Location", location)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_requests_to_other_hosts_are_refused_in_locust_and_never_measured(
    tmp_path: Path,
) -> None:
    """An absolute URL in the locustfile (HttpUser and FastHttpUser) and a redirect from the
    allowed target both point at 127.0.0.2, which is not allowed: nothing connects there,
    locust counts them as failures naming the host, and the run is an error, not timings."""
    shutil.copy(ASSET_DIR / "foreign_hosts.py", tmp_path / "locustfile.py")
    foreign = CountingListener("127.0.0.2")
    foreign_url = f"http://127.0.0.2:{foreign.port}/steal"
    try:
        with redirecting_target(foreign_url) as base_url:
            ctx = replace(
                make_ctx(tmp_path, tmp_path / "work", base_url, allowed=("127.0.0.1",)),
                env=clean_env(NEUROERP_TEST_FOREIGN_URL=foreign_url),
            )
            result = execute_check(
                LocustLoadCheck(), make_check({"duration_s": 3, "users": 3}), ctx
            )
    finally:
        foreign.close()
    assert foreign.accepted == 0
    assert result.status is CheckStatus.ERROR
    assert "outside allowed_hosts, refused before connecting: '127.0.0.2' x" in result.reason
    record = json.loads((tmp_path / "work" / "locust_run.json").read_text())
    assert record["refused"]["127.0.0.2"] >= 3  # every kind of request was refused
    failures = {e["name"]: e["error"] for e in record["errors"]}
    for name in ("absolute", "redirected", "fast-absolute"):
        assert "neuroerp-ci refused host '127.0.0.2'" in failures[name], failures
    stats = parse_stats(json.loads((tmp_path / "work" / "locust_stats.json").read_text()))
    rows = {r.name: r for r in stats}
    for name in ("absolute", "redirected", "fast-absolute"):
        assert rows[name].failures == rows[name].requests > 0  # none counted as a success
    assert rows["/ok"].failures == 0 < rows["/ok"].requests  # the allowed target was loaded


HOST_FORMS = (
    "127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "::ffff:127.0.0.1",
    "::1", "0:0:0:0:0:0:0:1", "LOCALHOST", "localhost.", "ｌｏｃａｌｈｏｓｔ", "127.0.0.2",
    "127.0.0.1.", "127.0.0.08", "evil.example", "localhost.evil.example", "",
)


@pytest.mark.integration
def test_wrapper_guard_agrees_with_the_allowed_hosts_rule(tmp_path: Path) -> None:
    """The guard inside locust (which cannot import neuroerp-ci on a remote worker) allows
    exactly the hosts neuroerp_ci.support.hosts allows, in every form a client may pass."""
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(render_wrapper(
        record_path=str(tmp_path / "r.json"), warmup_s=0, stages=[],
        allowed_hosts=sorted(allowed_set(LOOPBACK)),
    ), encoding="utf-8")
    probe = (
        "import json, runpy, sys; ns = runpy.run_path(sys.argv[1]);"
        " print(json.dumps([ns['_canonical'](h) in ns['_ALLOWED'] for h in sys.argv[2:]]))"
    )
    run = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-c", probe, str(wrapper), *HOST_FORMS],
        capture_output=True, text=True, timeout=60, check=True,
    )
    in_locust = dict(zip(HOST_FORMS, json.loads(run.stdout.splitlines()[-1]), strict=True))
    expected = {h: host_allowed(h, LOOPBACK) for h in HOST_FORMS}
    assert in_locust == expected
    assert expected["0x7f.0.0.1"] and not expected["127.0.0.2"] and not expected["127.0.0.1."]


@pytest.mark.integration
def test_base_url_that_parsers_read_differently_is_refused_before_locust(
    demo_project: Path, tmp_path: Path
) -> None:
    """urlsplit reads this host as 127.0.0.1, urllib3's parse_url as 127.0.0.2: which one a
    client dials depends on the client, so the URL is refused before anything runs."""
    foreign = CountingListener("127.0.0.2")
    try:
        base_url = f"http://127.0.0.2:{foreign.port}\\@127.0.0.1:{free_port()}"
        result = execute_check(
            LocustLoadCheck(), make_check({"duration_s": 2, "users": 2}),
            make_ctx(demo_project, tmp_path / "work", base_url, allowed=("127.0.0.1",)),
        )
    finally:
        foreign.close()
    assert result.status is CheckStatus.ERROR
    assert "backslash" in result.reason
    assert foreign.accepted == 0
