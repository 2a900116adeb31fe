"""What neuroerp-ci's orchestration costs: the demo stage vs a plain shell script, a refused
stage's wall time, and the per-check overhead of the Prefect flow.

Run it from the repository with the project's interpreter::

    python benchmarks/pipeline_overhead.py                    # all parts, about 6 minutes
    python benchmarks/pipeline_overhead.py --quick            # one repetition of each
    python benchmarks/pipeline_overhead.py --only refusal     # part (b) only, under a minute
    python benchmarks/pipeline_overhead.py --only overhead    # part (c) only, under a minute

(a) pipeline: the bundled demo's ``development`` stage, end to end, as a user pays for it:

    * ``shell``: a generated bash script that runs THE SAME tools one after another: starts
      the demo service, waits for its health URL with curl, runs pytest per marker with the
      same flags (JUnit and coverage reports), bandit, pip-audit against the same offline
      mirror (served by :func:`neuroerp_ci.checks.advisories.serve_osv` from this process), the same
      number of HTTP requests as the ``http`` check (one httpx client, as the check does), the
      smoke and migration commands, then stops the service. Every command line comes from the
      kinds' own ``*_argv`` functions and the loaded pipeline, so nothing differs but the
      orchestration. The ``--version`` calls the product adds are left out (measured apart).
    * ``neuroerp-ci run development`` in a subprocess with no Prefect server configured: the
      default, the stage on a thread pool in that process, no Prefect at all.
    * the same with ``--prefect``: the ``stage-gate`` flow on a temporary Prefect server
      (what ``run`` and ``demo`` did by default before).
    * the same without ``--prefect`` but PREFECT_API_URL pointing at an already running
      ``prefect server start``: the flow, as a team with a server runs it.

    The CLI runs read the mirror from disk (NEUROERP_CI_ADVISORIES) and run with the result
    cache off (``[cache] enabled = false`` in the reduced pipeline file): each does the work
    the script does. Ratios are against the shell script measured side by side: medians,
    mins, and the median of the per-repetition ratios (the order rotates each repetition, so
    drift of a busy machine touches all alike).
    A variant that called ``run_stage`` with the ThreadExecutor directly is gone: it is what
    the default ``run`` now does, short of the history store and the console.

(b) refusal: ``neuroerp-ci run staging --version <a version development never passed>`` on
the full demo pipeline (its staging requires development): the refusal is decided before any
check, and before Prefect, starts. Wall time of the subprocess, without and with
``--prefect``, next to the floor of any command (the interpreter importing the CLI). One
unmeasured run first creates the project's history store, which a real project has.

(c) overhead: ``--checks`` (50) trivial ``command`` checks (``/bin/true``), independent and
as a dependency chain, run in this process by the ``stage_gate`` flow, by ``run_stage`` with
the ThreadExecutor, and directly with ``run_tool`` one after another. A flow with one check
gives the one-off cost of a flow run; the rest, divided by the checks, the cost per check.

(d) fixed costs: interpreter start, imports, the tools' ``--version`` calls.

Everything runs under a temporary PREFECT_HOME (its database created once up front; the
time that takes is reported, it is what a fresh CI container pays on every run), with
telemetry off and NEUROERP_CI_PREFECT unset. Each measurement is repeated ``--repeat``
times (default 3; the order of the variants rotates between repetitions) and reported as
median and min. Exit 0 when every run succeeded, 1 when a run failed (its output is
printed), 2 on a setup problem.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroerp_ci.checks._browser import CHROMIUM_ARGS, find_chromium
from neuroerp_ci.checks.a11y import AXE_PACKAGE, AXE_SCRIPT, A11ySettings
from neuroerp_ci.checks.advisories import AdvisoryMirror, serve_osv
from neuroerp_ci.checks.bandit import OWN_INI, BanditSettings, bandit_argv, plan_scan
from neuroerp_ci.checks.command import CommandSettings
from neuroerp_ci.checks.detect_secrets import (
    Deadline,
    SecretsSettings,
    list_files,
    scan_argv,
    tool_env,
)
from neuroerp_ci.checks.http import HttpProbeSettings
from neuroerp_ci.checks.pip_audit import PipAuditSettings, base_argv, requirement_files
from neuroerp_ci.checks.pytest import (
    PytestSettings,
    install_probe,
    pytest_argv,
    pytest_env,
)
from neuroerp_ci.config import Pipeline, load_pipeline
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo
from neuroerp_ci.model import summary_line
from neuroerp_ci.run.runner import MAX_CONCURRENT_CHECKS, RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.run.target import POLL_INTERVAL_S, wait_healthy
from neuroerp_ci.support.hosts import free_port, join_url, resolve_url
from neuroerp_ci.support.placeholders import expand, expand_all
from neuroerp_ci.support.prefect_config import configured_api_url
from neuroerp_ci.support.tooling import find_tool, run_tool, stop_process_group

REPO = Path(__file__).resolve().parents[1]
STAGE = "development"
REFUSED_STAGE = "staging"  # the demo's staging requires development
NEVER_PASSED = "benchmark-never-passed"  # a version label: the demo copy is no git checkout
PREFECT_SWITCH = "NEUROERP_CI_PREFECT"  # neuroerp_ci.cli.stage_command.PREFECT_ENV
RUN_TIMEOUT_S = 300.0
DEFAULT_MIRROR = REPO.parent / "shared" / "advisory-database"
SETTLE_S = 2.0  # lets the Prefect server write the previous run's events before a flow run
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


class BenchmarkError(Exception):
    """A measured run did not succeed: its numbers would mean nothing."""


# --- measurements ----------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated wall times (s) of one variant, plus the stage time its report gave, if any."""

    label: str
    times: list[float] = field(default_factory=list)
    stage_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def min(self) -> float:
        return min(self.times)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def repeat_rotated(variants: Sequence[tuple[Series, Callable[[], None]]], repeat: int) -> None:
    """Run every variant ``repeat`` times, rotating the order so drift touches all alike."""
    for rep in range(repeat):
        shift = rep % len(variants)
        for series, run in [*variants[shift:], *variants[:shift]]:
            print(f"  [{rep + 1}/{repeat}] {series.label} ...", end=" ", flush=True)
            run()
            print(f"{series.times[-1]:.2f} s", flush=True)


# --- setup: environment, demo project, Prefect database --------------------------------------


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """This process's environment with a private PREFECT_HOME, no telemetry, no stray API,
    and no NEUROERP_CI_PREFECT: without ``api_url`` a run takes the CLI's own default."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_API_") and k != PREFECT_SWITCH
    }
    env.update(QUIET_PREFECT, PREFECT_HOME=str(home))
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


def create_prefect_db(home: Path) -> float:
    """Create and migrate the SQLite database under ``home`` (a subprocess); seconds taken."""
    code = (
        "import asyncio\n"
        "from prefect.server.database import provide_database_interface\n"
        "asyncio.run(provide_database_interface().create_db())\n"
    )
    return timed(lambda: _check_run([sys.executable, "-c", code], prefect_env(home), home))


def copy_prefect_db(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.glob("prefect.db*"):
        shutil.copy2(path, dest / path.name)


def dev_only_pipeline(project: Path) -> Path:
    """The demo's pipeline file reduced to the target, the stage and its checks, with the
    result cache off: every run does the shell script's work, none reuses the last one's.

    Other stages may use kinds that are not registered in every checkout; what the stage runs
    is unchanged.
    """
    data = tomllib.loads((project / DEMO_PIPELINE).read_text(encoding="utf-8"))
    stage = data["stages"][STAGE]
    wanted = set(stage["checks"])
    reduced = {
        "target": data["target"],
        "cache": {"enabled": False},
        "checks": [c for c in data["checks"] if c["id"] in wanted],
        "stages": {STAGE: stage},
    }
    path = project / "benchmark-development.toml"
    path.write_text(to_toml(reduced), encoding="utf-8")
    return path


def to_toml(data: Mapping[str, Any]) -> str:
    """Enough TOML for a pipeline file: tables, sub-tables, arrays of tables, inline values."""
    lines: list[str] = []

    def table(header: str, body: Mapping[str, Any]) -> None:
        lines.extend([header, *(f"{k} = {_toml_value(v)}" for k, v in body.items()), ""])

    for key, value in data.items():
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for item in value:
                table(f"[[{key}]]", item)
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for sub, body in value.items():
                table(f"[{key}.{json.dumps(sub)}]", body)
        elif isinstance(value, dict):
            table(f"[{key}]", value)
        else:
            raise TypeError(f"top-level {key!r}: only tables are written")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML form for {value!r}")


@contextmanager
def prefect_server(home: Path, log: Path) -> Iterator[tuple[str, float]]:
    """``prefect server start`` on a free loopback port; yields (API URL, seconds to healthy)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = prefect_env(home, api)
    env["PREFECT_SERVER_UI_ENABLED"] = "false"
    argv = [find_tool("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - argument list
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=str(home),
        )  # fmt: skip
    try:
        wait_healthy(f"{api}/health", 90, proc, log_path=log)
        yield api, time.perf_counter() - started
    finally:
        stop_process_group(proc, 10)


# --- part (a): the demo stage ----------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    project: Path
    config: Path
    pipeline: Pipeline
    mirror: Path
    runs: Path  # a fresh output directory per run goes here

    def out_dir(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.runs))


def shell_script(demo: Demo, work: Path, osv_url: str) -> str:
    """The development stage as a plain bash script: same tools, same flags, one by one."""
    pipeline, project = demo.pipeline, demo.project
    port = str(free_port())
    python = sys.executable
    values = {"python": python, "project": str(project), "port": port}
    base_url = expand(pipeline.target.base_url or "", values)
    values["base_url"] = base_url
    health = resolve_url(expand(pipeline.target.health_url or base_url, values), base_url)
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        "# Generated by benchmarks/pipeline_overhead.py: the stage's tools, one after another.",
        "set -u",
        f"cd {q(str(project))}",
        f"export NEUROERP_CI_PORT={port} NEUROERP_CI_BASE_URL={q(base_url)}",
        'fail() { echo "shell pipeline: $1 exited $2" >&2; tail -n 20 "$3" >&2; exit 1; }',
        f"{shlex.join(expand_all(pipeline.target.start or [], values))} "
        f">{q(str(work / 'target.log'))} 2>&1 &",
        "TARGET=$!",
        "trap 'kill $TARGET 2>/dev/null; wait $TARGET 2>/dev/null' EXIT",
        f"for _ in $(seq {int(pipeline.target.start_timeout / POLL_INTERVAL_S)}); do",
        f"  curl -fs -o /dev/null {q(health)} && break; sleep {POLL_INTERVAL_S}",
        "done",
        f"curl -fs -o /dev/null {q(health)} || fail target-health $? {q(str(work / 'target.log'))}",
    ]
    for check_id in pipeline.stage(STAGE).checks:
        check = pipeline.checks[check_id]
        cwork = work / "checks" / check_id
        cwork.mkdir(parents=True)
        log = q(str(cwork / "output.log"))
        settings = check.settings
        ok: tuple[int, ...]
        if isinstance(settings, PytestSettings):
            # The same run as the kind's: its probe plugin, own coverage data and basetemp.
            plugin_dir, probe_dir = install_probe(cwork)
            setenv = [f"{k}={v}" for k, v in pytest_env({}, plugin_dir, probe_dir, cwork).items()]
            argv = ["env", *setenv, *pytest_argv(python, settings, cwork, cwork / "tmp")]
            ok = (0,)
        elif isinstance(settings, BanditSettings):
            report, ini = cwork / "bandit.json", cwork / "bandit.ini"
            ini.write_text(OWN_INI, encoding="utf-8")  # as the kind: no project .bandit applies
            plan = plan_scan(settings, project)
            argv = [
                "env",
                f"XDG_CACHE_HOME={cwork / 'cache'}",
                *bandit_argv(find_tool("bandit"), settings, plan, report, ini),
            ]
            ok = (0, 1)
        elif isinstance(settings, PipAuditSettings):
            files = requirement_files(settings, project)
            argv = base_argv(find_tool("pip-audit"), settings, files, cwork, cwork / "audit.json")
            argv += ["-s", "osv", "--osv-url", f"{osv_url}/v1/query"]
            lines.append("export NO_PROXY=127.0.0.1,localhost")
            ok = (0,)
        elif isinstance(settings, SecretsSettings):
            # The kind's two runs over the same file list: the scan, then allowlisted lines.
            env = tool_env(os.environ)
            listing = list_files(settings, project, cwork, env, Deadline(check.timeout))
            tool = find_tool("detect-secrets")
            scan = scan_argv(tool, settings, listing.files)
            nonempty = [f for f in listing.files if (project / f).stat().st_size]
            allowed = scan_argv(tool, settings, nonempty, allowlisted=True)
            lines.append(
                f"cd {q(str(project))} && {shlex.join(allowed)} >/dev/null 2>&1 && cd - >/dev/null"
            )
            argv, ok = ["sh", "-c", f"cd {q(str(project))} && {shlex.join(scan)}"], (0,)
        elif isinstance(settings, HttpProbeSettings):
            argv, ok = http_loop_argv(python, settings, base_url), (0,)
        elif isinstance(settings, A11ySettings):
            argv, ok = a11y_argv(python, settings, base_url), (0,)
        elif isinstance(settings, CommandSettings):
            argv, ok = expand_all(settings.argv, values), tuple(settings.ok_codes)
        else:
            raise BenchmarkError(f"no shell equivalent for check {check_id} (kind {check.kind})")
        test = " || ".join(f"[ $rc -eq {code} ]" for code in ok)
        lines += [
            f"{shlex.join(argv)} >{log} 2>&1; rc=$?",
            f"{{ {test}; }} || fail {check_id} $rc {log}",
        ]
    return "\n".join(lines) + "\n"


_HTTP_LOOP = """
import json, sys, httpx
warmup, samples, endpoints = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
login = json.loads(sys.argv[5])
bad = 0
with httpx.Client(trust_env=False, follow_redirects=False, timeout=float(sys.argv[4])) as c:
    if login is not None:  # once, before the warm-up; its cookies stay in the client's jar
        method, url, body, form, headers, expect, follow = login
        answer = c.request(method, url, json=body, data=form, headers=headers,
                           follow_redirects=follow)
        if answer.status_code not in expect or not c.cookies:
            sys.exit(f"login: status {answer.status_code}, cookies {list(c.cookies)}")
    for _ in range(warmup + samples):
        for method, url, body, form, headers, expect in endpoints:
            answer = c.request(method, url, json=body, data=form, headers=headers)
            bad += answer.status_code not in expect
print(bad)
sys.exit(1 if bad else 0)
"""


def http_loop_argv(python: str, settings: HttpProbeSettings, base_url: str) -> list[str]:
    """The ``http`` check's requests (the login once, then warm-up + samples, round-robin,
    one client) as python -c. The check's assertions on bodies and headers are left out:
    they read answers already received."""
    endpoints = [
        [e.method, e.url or join_url(base_url, e.path or ""), e.body, e.form, e.headers,
         e.expect_status]
        for e in settings.endpoints
    ]  # fmt: skip
    step = settings.login
    login = (
        None
        if step is None
        else [step.method, step.url or join_url(base_url, step.path or ""), step.body,
              step.form, step.headers, step.expect_status, step.follow_redirects]
    )  # fmt: skip
    return [
        python, "-c", _HTTP_LOOP, str(settings.warmup), str(settings.samples),
        json.dumps(endpoints), str(settings.request_timeout), json.dumps(login),
    ]  # fmt: skip


def a11y_argv(python: str, settings: A11ySettings, base_url: str) -> list[str]:
    """The ``a11y`` check's loads as python -c: Chromium through Playwright, each page loaded
    ``warmup + samples`` times (one load without timings), its ``wait_for`` awaited, and
    axe-core evaluated (as the kind does: a page's CSP blocks a script tag) and run once per
    page. The kind's network guard (a route on every request) is left out."""
    loads = 1 if not settings.timings else settings.warmup + settings.samples
    pages = [[p.url or join_url(base_url, p.path or ""), p.wait_for] for p in settings.pages]
    chromium = find_chromium(settings.executable, os.environ, Path.cwd())
    axe = str(importlib.resources.files(AXE_PACKAGE) / AXE_SCRIPT)
    return [
        python, "-c", _A11Y_LOOP, chromium, json.dumps(list(CHROMIUM_ARGS)), axe,
        json.dumps(pages), str(loads),
    ]  # fmt: skip


_A11Y_LOOP = """
import json, pathlib, sys
from playwright.sync_api import sync_playwright
exe, args, axe = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
pages, loads = json.loads(sys.argv[4]), int(sys.argv[5])
script = pathlib.Path(axe).read_text(encoding="utf-8")
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=exe, headless=True, args=args)
    for url, wait_for in pages:
        for i in range(loads):
            context = browser.new_context(
                service_workers="block", viewport={"width": 1280, "height": 900}
            )
            page = context.new_page()
            if page.goto(url).status >= 400:
                sys.exit(f"{url}: HTTP status 400 or more")
            if wait_for is not None:
                page.wait_for_selector(wait_for, state="visible")
            if i == 0:
                page.evaluate(script)
                page.evaluate("() => axe.run(document)")
            context.close()
    browser.close()
"""


def run_shell(demo: Demo, series: Series) -> None:
    work = demo.out_dir("shell")
    # A fresh mirror per run: the product's pip-audit check also reads it anew every run.
    with serve_osv(AdvisoryMirror(demo.mirror)) as osv_url:
        script = work / "stage.sh"
        script.write_text(shell_script(demo, work, osv_url), encoding="utf-8")
        series.times.append(timed(lambda: _check_run(["bash", str(script)], None, work)))


def run_cli(demo: Demo, series: Series, env: Mapping[str, str], flow: bool) -> None:
    """``neuroerp-ci run development``; ``flow``: whether it must run as a Prefect flow (with
    no server configured, ``--prefect`` is given). Its console line tells which path ran."""
    out = demo.out_dir("cli")
    argv = [find_tool("neuroerp-ci"), "run", STAGE, "-c", str(demo.config), "-o", str(out)]
    if flow and configured_api_url(env, demo.project) is None:
        argv.append("--prefect")
    output = ""

    def run() -> None:
        nonlocal output
        output = _check_run(argv, env, demo.project)

    series.times.append(timed(run))
    if ("(Prefect flow)" in output) != flow:
        raise BenchmarkError(f"{series.label}: ran {'without' if flow else 'as'} a flow:\n{output}")
    series.stage_times.append(_passed_report(out))


def no_server(env: Mapping[str, str], cwd: Path) -> Mapping[str, str]:
    """``env``, after making sure that no Prefect server is configured for a run in ``cwd``."""
    api = configured_api_url(env, cwd)
    if api is not None:
        raise BenchmarkError(f"a Prefect server is configured for {cwd} ({api}): unset it")
    return env


def _passed_report(out: Path) -> float:
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    # WARN: every check ran and every blocking condition held (an old advisory mirror warns)
    if report["verdict"] not in ("PASS", "WARN"):
        raise BenchmarkError(f"{out}: verdict {report['verdict']}: {report['summary']}")
    return float(report["duration_s"])


def _check_run(
    argv: Sequence[str], env: Mapping[str, str] | None, cwd: Path, ok: tuple[int, ...] = (0,)
) -> str:
    """Run to completion; its output. BenchmarkError unless its exit code is in ``ok``.
    Nothing it started outlives it."""
    proc = subprocess.Popen(  # noqa: S603 - argument list
        list(argv), cwd=str(cwd), env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        output = f"timed out after {RUN_TIMEOUT_S:g} s"
    finally:
        # e.g. the demo service of a shell script that failed half way
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.returncode not in ok:
        tail = (output or "").strip()[-2000:]
        raise BenchmarkError(f"{shlex.join(argv)[:200]} exited {proc.returncode}:\n{tail}")
    return output or ""


def part_pipeline(root: Path, home: Path, mirror: Path, repeat: int) -> list[str]:
    project = write_demo(root / "demo")
    config = dev_only_pipeline(project)
    demo = Demo(project, config, load_pipeline(config), mirror, root / "runs")
    demo.runs.mkdir()
    # Byte-compile the fresh copy and create the service's seeded database once, so that no
    # variant pays for either in its first run.
    _check_run([sys.executable, "-m", "compileall", "-q", str(project)], None, project)
    seed = "from neuroerp_demo.db import init_db; init_db()"
    _check_run([sys.executable, "-c", seed], None, project)
    product_env = no_server({**prefect_env(home), "NEUROERP_CI_ADVISORIES": str(mirror)}, project)
    shell, here, temporary, served = (
        Series("shell script, same tools one by one"),
        Series("neuroerp-ci run (no server: no Prefect)"),
        Series("neuroerp-ci run --prefect (temporary server)"),
        Series("neuroerp-ci run (running Prefect server)"),
    )
    server_home = root / "server-home"
    copy_prefect_db(home, server_home)  # already migrated: start as a user's server would
    with prefect_server(server_home, root / "prefect-server.log") as (api, start_s):
        print(f"  prefect server start (migrated database): healthy after {start_s:.2f} s")
        served_env = {**product_env, "PREFECT_API_URL": api}
        repeat_rotated(
            [
                (shell, lambda: run_shell(demo, shell)),
                (here, lambda: run_cli(demo, here, product_env, flow=False)),
                (temporary, lambda: run_cli(demo, temporary, product_env, flow=True)),
                (served, lambda: run_cli(demo, served, served_env, flow=True)),
            ],
            repeat,
        )
    return pipeline_table([shell, here, temporary, served], start_s)


def pipeline_table(rows: Sequence[Series], server_start_s: float) -> list[str]:
    shell = rows[0]
    lines = [
        f"(a) demo stage '{STAGE}' end to end (wall seconds, {len(shell.times)} runs each)",
        f"  {'variant':<46}{'median':>8}{'min':>8}{'ratio':>8}{'min/min':>9}{'paired':>8}"
        f"{'in stage':>10}{'outside':>9}",
    ]
    for series in rows:
        stage = statistics.median(series.stage_times) if series.stage_times else None
        inside = f"{stage:10.2f}" if stage is not None else f"{'-':>10}"
        outside = f"{series.median - stage:9.2f}" if stage is not None else f"{'-':>9}"
        lines.append(
            f"  {series.label:<46}{series.median:8.2f}{series.min:8.2f}"
            f"{series.median / shell.median:8.2f}{series.min / shell.min:9.2f}"
            f"{paired_ratio(series, shell):8.2f}{inside}{outside}"
        )
    lines += [
        "  ratio = median / the shell script's median; min/min = min / its min; paired = median",
        "  of each repetition's ratio to the shell run of the same repetition. 'in stage' = the",
        "  report's duration_s (target start to reports), 'outside' = median wall - in stage",
        "  (process, imports, Prefect server start and flow run bookkeeping, shutdown).",
        f"  prefect server start on a migrated database, not in any row: {server_start_s:.2f} s",
    ]
    shell, here, temporary, served = rows
    goal = here.median / shell.median
    lines.append(
        f"  run (no server) / shell = {goal:.2f} (goal <= 1.0): "
        f"{'met' if goal <= 1.0 else 'MISSED'}"
        f"; min/min {here.min / shell.min:.2f}, paired {paired_ratio(here, shell):.2f}"
    )
    derived = [
        ("Prefect's cost per run, temporary server (--prefect - no server)",
         temporary.median - here.median),
        ("Prefect's cost per run, running server (running server - no server)",
         served.median - here.median),
        ("concurrency's gain (shell - no server; negative: a loss)",
         shell.median - here.median),
    ]  # fmt: skip
    lines += [f"    {label:<76}{value:7.2f} s" for label, value in derived]
    return lines


def paired_ratio(series: Series, reference: Series) -> float:
    """The median of the per-repetition ratios: both ran in the same repetition, close in time."""
    return statistics.median(t / r for t, r in zip(series.times, reference.times, strict=True))


# --- part (b): a refused stage ---------------------------------------------------------------


def part_refusal(root: Path, home: Path, repeat: int) -> list[str]:
    project = write_demo(root / "refusal-demo")
    config = project / DEMO_PIPELINE  # the whole pipeline: staging and what it requires
    runs = root / "refusal-runs"
    runs.mkdir()
    env = no_server(prefect_env(home), project)

    def refuse(series: Series, *flags: str) -> None:
        out = Path(tempfile.mkdtemp(prefix="refusal-", dir=runs))
        argv = [
            find_tool("neuroerp-ci"), "run", REFUSED_STAGE, "--version", NEVER_PASSED,
            "-c", str(config), "-o", str(out), *flags,
        ]  # fmt: skip
        series.times.append(timed(lambda: _check_run(argv, env, project, ok=(1,))))
        _refused_report(out)

    def floor(series: Series) -> None:
        argv = [sys.executable, "-c", "import neuroerp_ci.cli"]
        series.times.append(timed(lambda: _check_run(argv, env, project)))

    refuse(Series("warm-up"))  # creates the project's history store, as any earlier run has
    here, flow, imports = (
        Series(f"neuroerp-ci run {REFUSED_STAGE} (no server)"),
        Series(f"neuroerp-ci run {REFUSED_STAGE} --prefect (no server)"),
        Series("python -c 'import neuroerp_ci.cli' (the floor)"),
    )
    repeat_rotated(
        [(here, lambda: refuse(here)), (flow, lambda: refuse(flow, "--prefect")),
         (imports, lambda: floor(imports))],
        repeat,
    )  # fmt: skip
    lines = [
        f"(b) refused stage '{REFUSED_STAGE}' for version {NEVER_PASSED} ({STAGE} never passed"
        f" it; wall seconds, {len(here.times)} runs each)",
        f"  {'variant':<52}{'median':>8}{'min':>8}",
        *(f"  {s.label:<52}{s.median:8.2f}{s.min:8.2f}" for s in (here, flow, imports)),
        f"  refused stage (no server) = {here.median:.2f} s median, {here.min:.2f} s min "
        f"(goal <= 2 s): {'met' if here.median <= 2.0 else 'MISSED'}; above the floor "
        f"{here.median - imports.median:.2f} s",
    ]
    return lines


def _refused_report(out: Path) -> None:
    """The run was refused by the promotion rule, ran no check, and was recorded."""
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    refused = any(o["check"] == "promotion" and o["status"] == "fail" for o in report["outcomes"])
    if report["verdict"] != "FAIL" or report["checks"] or not refused or not report["recorded"]:
        raise BenchmarkError(f"{out}: not a recorded refusal: {report['summary']}")


# --- part (c): per-check overhead -----------------------------------------------------------


def trivial_pipeline(path: Path, count: int, chain: bool, true: str) -> Path:
    ids = [f"c{i:03d}" for i in range(1, count + 1)]
    checks = [
        {"id": cid, "kind": "command", "settings": {"argv": [true]}}
        | ({"dependencies": [ids[i - 1]]} if chain and i else {})
        for i, cid in enumerate(ids)
    ]
    stage = {"checks": ids, "conditions": [{"check": ids[-1], "metric": "exit_code", "max": 0}]}
    path.write_text(to_toml({"checks": checks, "stages": {"bench": stage}}), encoding="utf-8")
    return path


def part_overhead(root: Path, count: int, repeat: int) -> list[str]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from neuroerp_ci.orchestration import stage_gate

    true = shutil.which("true") or "/bin/true"
    work = root / "overhead"
    work.mkdir()
    one = trivial_pipeline(work / "one.toml", 1, False, true)
    wide = trivial_pipeline(work / "wide.toml", count, False, true)
    chain = trivial_pipeline(work / "chain.toml", count, True, true)

    def out() -> str:
        return tempfile.mkdtemp(prefix="run-", dir=work)

    def flow(config: Path, heartbeat: bool = True) -> None:
        settings = {} if heartbeat else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        with temporary_settings(settings):
            state = stage_gate(
                stage="bench", config=str(config), output_dir=out(), return_state=True
            )
        if not state.is_completed():
            raise BenchmarkError(f"flow on {config.name} ended {state.name}: {state.message}")

    def threads(config: Path) -> None:
        with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_CHECKS) as pool:
            done = run_stage(
                load_pipeline(config), RunOptions("bench", output_dir=Path(out())),
                ThreadExecutor(pool),
            )  # fmt: skip
        if done.report.verdict.value != "PASS":
            raise BenchmarkError(f"run_stage on {config.name}: {summary_line(done.report.summary)}")

    def direct(n: int) -> None:
        for _ in range(n):
            run_tool([true], cwd=work, timeout=60)

    def back_to_back() -> float:
        flow(wide)
        return timed(lambda: flow(one))

    first_flow = timed(lambda: flow(one))  # starts this process's temporary Prefect server
    print(f"  first flow run in this process (temporary server start): {first_flow:.2f} s")
    # (label, run, settle first): a flow run right after a busy one waits for the server to
    # write the previous run's events; that cost is measured apart (back-to-back), not mixed in.
    specs: list[tuple[str, Callable[[], object], bool]] = [
        ("direct run_tool, 1 command", lambda: direct(1), False),
        (f"direct run_tool, {count} commands", lambda: direct(count), False),
        ("ThreadExecutor run_stage, 1 check", lambda: threads(one), False),
        (f"ThreadExecutor run_stage, {count} independent", lambda: threads(wide), False),
        (f"ThreadExecutor run_stage, {count} chained", lambda: threads(chain), False),
        ("Prefect flow, 1 check", lambda: flow(one), True),
        (f"Prefect flow, {count} independent", lambda: flow(wide), True),
        (f"Prefect flow, {count} chained", lambda: flow(chain), True),
        ("Prefect flow, 1 check, no heartbeat", lambda: flow(one, heartbeat=False), True),
        (f"Prefect flow, {count} independent, no heartbeat", lambda: flow(wide, False), True),
        (f"Prefect flow, 1 check, right after {count}", back_to_back, True),
    ]
    rows = [Series(label) for label, _, _ in specs]

    def measure(series: Series, fn: Callable[[], object], settle: bool) -> Callable[[], None]:
        def run() -> None:
            if settle:
                time.sleep(SETTLE_S)
            started = time.perf_counter()
            returned = fn()
            elapsed = time.perf_counter() - started
            series.times.append(returned if isinstance(returned, float) else elapsed)

        return run

    runs = [(r, measure(r, fn, settle)) for r, (_, fn, settle) in zip(rows, specs, strict=True)]
    repeat_rotated(runs, repeat)
    return overhead_table(rows, count, first_flow)


def overhead_table(rows: Sequence[Series], count: int, first_flow: float) -> list[str]:
    d1, dn, t1, tn, tc, f1, fn, fc, h1, hn, b2b = rows
    lines = [
        f"(c) orchestration overhead, {count} trivial command checks (seconds, "
        f"{len(d1.times)} runs each)",
        f"  {'variant':<46}{'median':>8}{'min':>8}{'ratio':>8}{'ms/check':>10}",
    ]
    for series in rows:
        n = 1 if series.label.split(", ")[1].startswith("1 ") else count
        direct = d1 if n == 1 else dn
        lines.append(
            f"  {series.label:<46}{series.median:8.3f}{series.min:8.3f}"
            f"{series.median / direct.median:8.2f}{series.median / n * 1000:10.1f}"
        )
    direct_step = (dn.median - d1.median) / (count - 1)  # one more /bin/true, run directly

    def marginal(many: Series, one: Series) -> float:
        return (many.median - one.median) / (count - 1) - direct_step

    derived = [
        (f"per-check overhead, flow: (flow {count} - direct {count}) / {count}",
         (fn.median - dn.median) / count),
        (f"per-check overhead, flow chained: (chain - direct {count}) / {count}",
         (fc.median - dn.median) / count),
        (f"per-check overhead, ThreadExecutor: ({count} - direct {count}) / {count}",
         (tn.median - dn.median) / count),
        ("one-off cost of a flow run: flow 1 - direct 1", f1.median - d1.median),
        ("one-off cost of a ThreadExecutor run: 1 - direct 1", t1.median - d1.median),
        (f"marginal per check, flow, no heartbeat: ({count} - 1) / {count - 1} - direct",
         marginal(hn, h1)),
        ("marginal per check, flow chained (vs flow 1)", marginal(fc, f1)),
        ("marginal per check, ThreadExecutor chained", marginal(tc, t1)),
        ("heartbeat thread join per flow run: flow 1 - no heartbeat", f1.median - h1.median),
        (f"back-to-back penalty: flow 1 right after {count} - flow 1", b2b.median - f1.median),
        ("temporary server start: first flow in the process - flow 1",
         first_flow - f1.median),
    ]  # fmt: skip
    lines += [
        "  ratio = median / median of direct run_tool with the same number of commands;",
        f"  flows start after a {SETTLE_S:g} s pause except where said. Derived (medians):",
        *(f"    {label:<66}{value * 1000:9.1f} ms" for label, value in derived),
    ]
    return lines


# --- small costs the product adds -----------------------------------------------------------


def component_costs(root: Path, repeat: int) -> list[str]:
    """Fixed costs outside the tools' real work, each the median of ``repeat`` runs."""
    probes = {
        "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
        "import neuroerp_ci.cli (what validate/plan load)": [
            sys.executable,
            "-c",
            "import neuroerp_ci.cli",
        ],  # fmt: skip
        "import prefect": [sys.executable, "-c", "import prefect"],
        "import neuroerp_ci.run.runner (no Prefect)": [
            sys.executable,
            "-c",
            "import neuroerp_ci.run.runner",
        ],  # fmt: skip
        "import neuroerp_ci.orchestration (runner + Prefect)": [
            sys.executable,
            "-c",
            "import neuroerp_ci.orchestration",
        ],  # fmt: skip
        "bandit --version (run by the bandit check)": [find_tool("bandit"), "--version"],
        "pip-audit --version (run by the pip-audit check)": [find_tool("pip-audit"), "--version"],
    }
    lines = ["(d) fixed costs (median of runs, seconds)"]
    for label, argv in probes.items():
        times = [run_tool(argv, cwd=root, timeout=60).duration_s for _ in range(repeat)]
        lines.append(f"  {label:<52}{statistics.median(times):8.2f}")
    return lines


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="one repetition of everything")
    parser.add_argument("--only", choices=["all", "pipeline", "overhead", "refusal"], default="all")
    parser.add_argument("--checks", type=int, default=50, help="trivial checks in part (c)")
    parser.add_argument(
        "--advisories",
        type=Path,
        default=Path(os.environ.get("NEUROERP_CI_ADVISORIES") or DEFAULT_MIRROR),
        help="offline OSV mirror for pip-audit (default: $NEUROERP_CI_ADVISORIES)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1
    if args.repeat < 1 or args.checks < 2:
        parser.error("--repeat must be >= 1 and --checks >= 2")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only in ("all", "pipeline") and not (args.advisories / "vulns").is_dir():
        print(f"no OSV mirror at {args.advisories} (set --advisories)", file=sys.stderr)
        return 2
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="neuroerp-bench-") as tmp:
        root = Path(tmp)
        home = root / "prefect-home"
        home.mkdir()
        # Before Prefect is imported (part c imports it): this process uses the same home.
        for key in [k for k in os.environ if k.startswith("PREFECT_API_")]:
            del os.environ[key]
        os.environ.update(QUIET_PREFECT, PREFECT_HOME=str(home))
        try:
            db_s = create_prefect_db(home)
            print(f"  Prefect database created in a fresh PREFECT_HOME: {db_s:.2f} s", flush=True)
            tables: list[str] = []
            if args.only in ("all", "pipeline"):
                tables += [*part_pipeline(root, home, args.advisories.resolve(), args.repeat), ""]
            if args.only in ("all", "refusal"):  # before (c): its flows leave a server running
                tables += [*part_refusal(root, home, args.repeat), ""]
            if args.only in ("all", "overhead"):
                tables += [*part_overhead(root, args.checks, args.repeat), ""]
            if args.only == "all":
                tables += [*component_costs(root, args.repeat), ""]
        except BenchmarkError as exc:
            print(f"benchmark run failed: {exc}", file=sys.stderr)
            return 1
        tables.append(
            f"Prefect database creation in a fresh PREFECT_HOME (once; every run in a fresh CI "
            f"container pays it): {db_s:.2f} s. Total benchmark time "
            f"{time.perf_counter() - started:.0f} s; 1-minute load average "
            f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
            f"({os.cpu_count()} CPUs)."
        )
    print("\n" + "\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
