"""``neuroerp-ci run`` as a user runs it, when its history store is unusable or breaks, and
when it is told to stop (SIGTERM) or killed (SIGKILL).

- A bad store URL is exit 2, a damaged SQLite store or an unreachable PostgreSQL exit 3, each
  in one line, before anything runs (no Prefect, no check), a damaged file exactly as it was.
- A PostgreSQL store that goes away during the run (its database stops taking connections):
  exit 3 with one loud line, the reports say "not recorded", and the
  webhook (set to notify on PASS) is still called, saying NOT RECORDED.
- SIGTERM while a pytest check sleeps and the target runs: exit 143, every process the run
  started is gone soon after, Prefect's temporary server included, and the run is recorded
  ``aborted``. SIGKILL: the watchdog ends the tools, the target and the server.

Runs are server-less unless they say --prefect: two of the last three start Prefect's
temporary server (5-10 s each, the server dies with the run too): keep their number small.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine, text

from neuroerp_ci.store import RunStatus, open_store

CLI = (sys.executable, "-m", "neuroerp_ci")
RUN_TIMEOUT_S = 300
DEADLINE_S = 60.0  # for processes to go: generous, it is a bound and not a measurement
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_NOT_INHERITED = ("NEUROERP_DEMO_", "NEUROERP_CI_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")

# A check that writes its pid to <project>/check.pid, then waits for <project>/go (at most
# SLEEP_S seconds) and passes; a target started by neuroerp-ci.
PIPELINE = """
[target]
name = "sleepy"
python = "{{python}}"
base_url = "http://127.0.0.1:{{port}}"
start = ["{{python}}", "-m", "http.server", "{{port}}", "--bind", "127.0.0.1"]
start_timeout = 60
{extra}

[[checks]]
id = "slow-tests"
kind = "pytest"
timeout = 600
settings = {{ uses_target = true }}

[stages.dev]
checks = ["slow-tests"]
"""
SLOW_TEST = """
import os, time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_waits_for_go():
    (PROJECT / "check.pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + float(os.environ.get("SLEEP_S", "120"))
    while not (PROJECT / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def write_project(directory: Path, extra: str = "") -> Path:
    (directory / "tests").mkdir(parents=True)
    (directory / "tests" / "test_slow.py").write_text(SLOW_TEST, encoding="utf-8")
    config = directory / "neuroerp-ci.toml"
    config.write_text(PIPELINE.format(extra=extra), encoding="utf-8")
    return config


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env.update(extra)
    return env


def run_cli(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument list
        [*CLI, "run", "dev", "--config", str(config), "--version", "v1"],
        cwd=config.parent, env=env, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip


def start_cli(config: Path, env: dict[str, str], prefect: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        [*CLI, "run", "dev", "--config", str(config), "--version", "v1",
         "--prefect" if prefect else "--no-prefect"],
        cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for(condition: Callable[[], object], what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie nobody reaped yet counts: it runs nothing and holds no memory)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def describe(procs: list[psutil.Process]) -> str:
    lines = []
    for proc in procs:
        try:
            lines.append(f"{proc.pid}: {' '.join(proc.cmdline())[:150]}")
        except psutil.Error:
            lines.append(f"{proc.pid}: (gone)")
    return "\n".join(lines)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# --- before anything runs ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://ci@db.example/ci", "backend 'mysql' is not supported"),
        ("not a url", "is not a database URL"),
    ],
)
def test_a_bad_store_url_is_exit_2_in_one_line_before_anything_runs(
    tmp_path: Path, url: str, needle: str
) -> None:
    config = write_project(tmp_path / "project", f'\n[store]\nurl = "{url}"\n')
    done = run_cli(config, cli_env(tmp_path))
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert line.startswith(f"neuroerp-ci: error: {config}: store.url: ") and needle in line
    assert not (config.parent / ".neuroerp-ci" / "runs").exists()  # nothing ran


def damaged_store(project: Path, how: str) -> Path:
    """The project's default store, filled with a real run, then damaged ``how``."""
    path = project / ".neuroerp-ci" / "history.sqlite3"
    path.parent.mkdir(parents=True)
    with open_store(f"sqlite:///{path}") as store:
        for i in range(20):
            store.begin_run(f"r{i}", "dev", "sleepy", "v0", {"python": "3.11"}, "2026-01-01")
    if how == "truncated to nothing":
        os.truncate(path, 0)
    else:  # garbage over a page in the middle: SQLite still opens it
        with path.open("r+b") as handle:
            handle.seek(path.stat().st_size // 2 // 4096 * 4096)
            handle.write(b"\x5a" * 4096)
    return path


@pytest.mark.integration
@pytest.mark.parametrize("how", ["truncated to nothing", "garbage in the middle"])
def test_a_damaged_sqlite_store_is_exit_3_in_one_line_and_left_untouched(
    tmp_path: Path, how: str
) -> None:
    config = write_project(tmp_path / "project")
    path = damaged_store(config.parent, how)
    before = path.read_bytes()
    done = run_cli(config, cli_env(tmp_path))
    assert done.returncode == 3, f"{done.stdout}\n{done.stderr}"
    line = one_line(done.stderr)
    assert line.startswith(f"neuroerp-ci: error: history store sqlite:///{path}: the file ")
    assert "left as it is" in line
    assert path.read_bytes() == before
    assert not (config.parent / ".neuroerp-ci" / "runs").exists()  # nothing ran


@pytest.mark.integration
def test_an_unreachable_postgresql_store_is_exit_3_in_one_line_before_anything_runs(
    tmp_path: Path,
) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    url = "postgresql://ci:secret@127.0.0.1:1/ci"
    config = write_project(tmp_path / "project", f'\n[store]\nurl = "{url}"\n')
    done = run_cli(config, cli_env(tmp_path))
    assert done.returncode == 3, done.stderr
    line = one_line(done.stderr)
    assert line.startswith("neuroerp-ci: error: history store postgresql://ci:***@127.0.0.1:1/ci:")
    assert "secret" not in line and "refused" in line
    assert not (config.parent / ".neuroerp-ci" / "runs").exists()


# --- the store breaks at the end of the run ------------------------------------------------


@pytest.fixture
def pg_store() -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A fresh PostgreSQL database: its URL, and a switch that shuts it (terminating every
    session and refusing new ones) or opens it again. Dropped afterwards."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1.0).close()
    except OSError:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    name = f"neuroerp_ci_stop_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")

    def accept(connections: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {connections}'))
            if not connections:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = :name"),
                    {"name": name},
                )  # fmt: skip

    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}", accept
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Webhook:
    """A local webhook receiver: every JSON body POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.received = received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.integration
@pytest.mark.postgres
def test_a_store_that_goes_away_before_the_run_is_recorded_is_exit_3_and_not_recorded(
    tmp_path: Path, pg_store: tuple[str, Callable[[bool], None]]
) -> None:
    url, accept = pg_store
    project = tmp_path / "project"
    config = write_project(
        project,
        f'\n[store]\nurl = "{url}"\n\n[notify]\non = ["PASS", "WARN", "FAIL"]\n',
    )
    hook = Webhook()
    try:
        proc = start_cli(config, cli_env(tmp_path, NEUROERP_CI_WEBHOOK_URL=hook.url), False)
        try:
            wait_for((project / "check.pid").exists, "the check to start")
            accept(False)  # the database goes away while the check runs
            (project / "go").touch()
            out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        hook.close()
    accept(True)
    assert proc.returncode == 3, f"{out}\n{err}"
    loud = [line for line in err.splitlines() if line.startswith("neuroerp-ci:")]
    assert len(loud) == 1 and "Traceback" not in err, err
    assert loud[0].startswith("neuroerp-ci: error: NOT RECORDED: run ")
    assert "so its PASS does not count: history store postgresql://postgres@" in loud[0]
    assert "PASS dev" not in out  # no verdict line for a verdict nobody recorded
    reports = Path(out.split("Reports: ")[1].strip())
    report = json.loads((reports / "report.json").read_text(encoding="utf-8"))
    assert report["recorded"] is False and report["verdict"] == "PASS"
    assert report["record_error"].startswith(f"history store {url}: cannot record run ")
    assert report["summary"].startswith("dev: NOT RECORDED — ")
    assert (reports / "report.md").read_text(encoding="utf-8").startswith("## ❌ NOT RECORDED")
    # Notifications were still sent, and say it.
    (payload,) = hook.received
    assert payload["summary"] == report["summary"] and "NOT RECORDED" in payload["text"]
    # The store holds no verdict for the run: its start, still "running".
    with open_store(url) as store:
        (run,) = store.runs()
        assert run.run_id == report["run_id"] and run.verdict is None
        assert run.status is RunStatus.RUNNING


# --- stop means stop -----------------------------------------------------------------------


@contextlib.contextmanager
def started_run(
    tmp_path: Path, prefect: bool
) -> Iterator[tuple[subprocess.Popen[str], Path, list[psutil.Process]]]:
    """A run whose check sleeps: the CLI, its project and every process it started (the
    target, pytest, with ``prefect`` Prefect's temporary server). Whatever is left is killed
    afterwards."""
    config = write_project(tmp_path / "project")
    proc = start_cli(config, cli_env(tmp_path, SLEEP_S="300"), prefect)
    project = config.parent
    family: list[psutil.Process] = []
    try:
        wait_for(lambda: (project / "check.pid").exists() or proc.poll() is not None, "the check")
        assert proc.poll() is None, proc.communicate()
        family = psutil.Process(proc.pid).children(recursive=True)
        names = describe(family)
        for part in ("http.server", "pytest", *(["uvicorn"] if prefect else [])):
            assert part in names, names
        yield proc, project, family
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in family:
            with contextlib.suppress(psutil.Error):
                p.kill()
        proc.communicate(timeout=60)


@pytest.mark.integration
@pytest.mark.parametrize("prefect", [False, True], ids=["server-less", "prefect"])
def test_sigterm_mid_check_stops_everything_and_records_the_run_aborted(
    tmp_path: Path, prefect: bool
) -> None:
    with started_run(tmp_path, prefect) as (proc, project, family):
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        wait_for(lambda: all(gone(p) for p in family), "every process of the run to end",
                 DEADLINE_S)  # fmt: skip
    assert proc.returncode == 143, f"{out}\n{err}"
    assert "neuroerp-ci: stopped by SIGTERM: the run was stopped" in err.splitlines(), err
    assert "Traceback" not in err, err
    with open_store(f"sqlite:///{project / '.neuroerp-ci' / 'history.sqlite3'}") as store:
        (run,) = store.runs()
    assert run.status is RunStatus.ABORTED and run.summary == "aborted: stopped by SIGTERM"


@pytest.mark.integration
def test_sigkill_mid_check_leaves_no_tool_target_or_server_behind(tmp_path: Path) -> None:
    with started_run(tmp_path, prefect=True) as (proc, _project, family):
        proc.kill()
        proc.communicate(timeout=60)
        wait_for(lambda: all(gone(p) for p in family), "the watchdog to end the run's processes",
                 DEADLINE_S)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
