"""The CI contract on a real Prefect server, exactly as a user sets it up (all on 127.0.0.1).

One server for the module (``prefect server start`` on a free port, its own PREFECT_HOME and
SQLite database in a temp dir), a ``process`` work pool, ``prefect deploy --all`` with the
repository's own ``prefect.yaml`` from a copy of the checkout holding the demo where the
yaml's parameters expect it, and a worker. Then ``prefect deployment run ... --watch``:

- ``stage-gate/development`` on the healthy demo exits 0;
- the same with ``NEUROERP_DEMO_ERROR_RATE=0.5`` in the worker's environment (the demo
  service inherits it) exits non-zero with the FAIL summary;
- ``stage-gate/staging`` for a version that never passed development is refused (non-zero).

Worker and server are stopped with SIGTERM and waited for; no process may be left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from neuroerp_ci.demo import write_demo
from tests.git_repo import git

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "neuroerp-ci"  # the work pool prefect.yaml's definitions name
DEMO_DIR = "neuroerp-demo"  # where prefect.yaml's `config` parameter looks
DEPLOYMENTS = {
    "stage-gate/development", "stage-gate/staging", "stage-gate/nightly-baseline",
    "stage-gate/weekly-audit", "rollout/production", "release/release",
}  # fmt: skip
RUN_TIMEOUT_S = 300
_NOT_INHERITED = ("NEUROERP_DEMO_", "NEUROERP_CI_", "PREFECT_", "PYTEST_")


@dataclass
class Server:
    """A running Prefect server and the environment every ``prefect`` command needs."""

    env: dict[str, str]
    checkout: Path
    logs: Path
    process: subprocess.Popen[bytes]
    marker: str  # a value in every started process's environment, to find leftovers
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def prefect(
        self, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed argument list
            [PREFECT, *args],
            cwd=self.checkout,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def base_env(tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env.update(
        PREFECT_HOME=str(tmp / "home"),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_CLI_PROMPT="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_SERVER_LOGGING_LEVEL="CRITICAL",
    )
    return env


def start(argv: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - fixed argument list
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGTERM and the check reach all
        )


def wait_until(
    ready: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    pytest.fail(f"{what} not ready after 120 s:\n{log.read_text()[-3000:]}")


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group and wait; SIGKILL only if it does not stop (and fail)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        pytest.fail(f"process {proc.args!r} ignored SIGTERM for 30 s")
    group_left = True
    deadline = time.monotonic() + 10
    while group_left and time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
            time.sleep(0.2)
        except ProcessLookupError:
            group_left = False
    assert not group_left, f"processes of {proc.args!r}'s group still run after it stopped"


def leftovers(marker: str) -> list[str]:
    """Live processes (this user's) whose environment holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:200]!r}")
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("prefect-server")
    checkout = tmp / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "prefect.yaml", checkout / "prefect.yaml")
    shutil.copytree(REPO / "flows", checkout / "flows", ignore=shutil.ignore_patterns("__py*"))
    write_demo(checkout / DEMO_DIR)
    port = free_port()
    # prefect.yaml's pull step is `set_working_directory: {{ $PWD }}`, resolved by `prefect
    # deploy`: PWD must be the checkout, as it is in the shell of a user who cd'ed there.
    env = {**base_env(tmp, port), "PWD": str(checkout)}
    marker = str(tmp)  # PREFECT_HOME lives under it: every child of ours carries it
    log = tmp / "server.log"
    proc = start([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                 env, checkout, log)  # fmt: skip
    srv = Server(env, checkout, tmp, proc, marker)
    try:
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}/api/health"), "server", proc, log)
        yield srv
    finally:
        for worker in srv.workers:
            stop(worker)
        stop(proc)
        time.sleep(0.5)
        left = leftovers(marker)
        assert not left, f"processes left behind: {left}"


def start_worker(server: Server, extra_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    log = server.logs / f"worker-{len(list(server.logs.glob('worker-*.log')))}.log"
    proc = start([PREFECT, "worker", "start", "--pool", POOL],
                 {**server.env, **extra_env}, server.checkout, log)  # fmt: skip
    server.workers.append(proc)
    wait_until(lambda: "started" in log.read_text(errors="replace"), "worker", proc, log)
    return proc


def stop_worker(server: Server, proc: subprocess.Popen[bytes]) -> None:
    stop(proc)
    server.workers.remove(proc)


def worker_log(server: Server, number: int) -> str:
    return (server.logs / f"worker-{number}.log").read_text(errors="replace")[-5000:]


def watch(server: Server, deployment: str, version: str) -> subprocess.CompletedProcess[str]:
    return server.prefect(
        "deployment", "run", deployment, "--param", f"version={version}",
        "--watch", "--watch-timeout", str(RUN_TIMEOUT_S),
        timeout=RUN_TIMEOUT_S + 30,
    )  # fmt: skip


def final_message(server: Server, run: subprocess.CompletedProcess[str]) -> str:
    """The message of the final state of the flow run ``prefect deployment run`` created.

    ``--watch`` prints only the state's name; a CI job reads the verdict from the API.
    """
    found = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert found, run.stdout
    shown = server.prefect("flow-run", "inspect", found.group(1), "--output", "json")
    assert shown.returncode == 0, shown.stderr
    message: str = json.loads(shown.stdout)["state"]["message"]
    return message


@pytest.fixture(scope="module")
def deployed(server: Server) -> Server:
    pool = server.prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    done = server.prefect("deploy", "--all", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    listed = server.prefect("deployment", "ls")
    names = {line.split("│")[1].strip() for line in listed.stdout.splitlines() if "/" in line}
    assert DEPLOYMENTS <= names, listed.stdout
    return server


def test_deployments_carry_their_schedules_and_typed_parameters(deployed: Server) -> None:
    shown = deployed.prefect("deployment", "inspect", "stage-gate/nightly-baseline")
    assert shown.returncode == 0, shown.stderr
    assert "'cron': '30 2 * * *'" in shown.stdout and "'timezone': 'Europe/Berlin'" in shown.stdout
    production = deployed.prefect("deployment", "inspect", "rollout/production").stdout
    assert "'approval_poll_s'" in production and "'required': ['version']" in production


def test_development_run_exits_0_when_healthy_and_non_zero_with_errors(
    deployed: Server, advisory_mirror: Path
) -> None:
    env = {"NEUROERP_CI_ADVISORIES": str(advisory_mirror)}
    worker = start_worker(deployed, env)
    healthy_run = watch(deployed, "stage-gate/development", "it-healthy")
    stop_worker(deployed, worker)
    assert healthy_run.returncode == 0, worker_log(deployed, 0)
    assert "Completed" in healthy_run.stdout

    worker = start_worker(deployed, {**env, "NEUROERP_DEMO_ERROR_RATE": "0.5"})
    broken = watch(deployed, "stage-gate/development", "it-broken")
    refused = watch(deployed, "stage-gate/staging", "never-passed-development")
    stop_worker(deployed, worker)
    assert broken.returncode != 0, worker_log(deployed, 1)
    assert "Flow run finished in state 'Failed'" in broken.stdout
    message = final_message(deployed, broken)
    assert message.startswith("development: FAIL") and "error_rate" in message, message
    assert refused.returncode != 0, worker_log(deployed, 1)
    message = final_message(deployed, refused)
    assert "refused: staging requires development" in message, message


OLD_COMMIT_PIPELINE = f"""
[target]
name = "pricing"
python = "{sys.executable}"

[[checks]]
id = "unit-tests"
kind = "pytest"
settings = {{ paths = ["tests"] }}

[stages.development]
"""



def test_a_deployment_run_for_an_older_commit_tests_that_commit(
    deployed: Server, tmp_path: Path
) -> None:
    """The worker's checkout holds the fix; the run for the older commit must test the older
    commit (a scratch worktree) and FAIL naming its test, never record the checkout's PASS."""
    repo = tmp_path / "pricing"
    (repo / "tests").mkdir(parents=True)
    (repo / "neuroerp-ci.toml").write_text(OLD_COMMIT_PIPELINE)
    test_file = repo / "tests" / "test_price.py"
    test_file.write_text("def test_price_includes_vat():\n    assert round(100 * 1.19) == 120\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "broken")
    old = git(repo, "rev-parse", "HEAD")
    test_file.write_text("def test_price_includes_vat():\n    assert round(100 * 1.19) == 119\n")
    git(repo, "commit", "-q", "-am", "fixed")
    config = f"config={repo / 'neuroerp-ci.toml'}"
    worker = start_worker(deployed, {})
    try:
        runs = {
            name: deployed.prefect(
                "deployment", "run", "stage-gate/development", "--param", config,
                "--param", f"version={version}", "--watch",
                "--watch-timeout", str(RUN_TIMEOUT_S), timeout=RUN_TIMEOUT_S + 30,
            )  # fmt: skip
            for name, version in (("old", old[:10]), ("head", "HEAD"))
        }
    finally:
        stop_worker(deployed, worker)
    assert runs["old"].returncode != 0, runs["old"].stdout
    message = final_message(deployed, runs["old"])
    assert message.startswith("development: FAIL") and "test_price_includes_vat" in message
    assert runs["head"].returncode == 0, runs["head"].stdout + final_message(deployed, runs["head"])
    reports = [json.loads(p.read_text()) for p in repo.glob(".neuroerp-ci/runs/*/report.json")]
    by_verdict = {r["verdict"]: r for r in reports}
    assert by_verdict["FAIL"]["version"] == old  # recorded for the commit that was tested
    assert by_verdict["FAIL"]["tested"]["checkout"].startswith("a scratch worktree of")
    assert by_verdict["PASS"]["version"] == git(repo, "rev-parse", "HEAD")
    assert git(repo, "worktree", "list").count("\n") == 0
