from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.config import TargetSpec
from neuroerp_ci.errors import SetupError, TargetError
from neuroerp_ci.run.target import (
    TargetInfo,
    Workspace,
    check_health,
    prepared_workspace,
    resolve_target,
    run_setup,
    setup_name,
    setup_outcome,
    target_session,
    wait_healthy,
)
from neuroerp_ci.support.hosts import ensure_allowed, free_port, join_url
from neuroerp_ci.support.tooling import stop_process_group

PY = sys.executable


def values(tmp_path: Path) -> dict[str, str]:
    return {"python": PY, "project": str(tmp_path)}


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_soon(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- unit: URL resolution, no processes ---------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_join_url_keeps_base_path() -> None:
    assert join_url("http://h:1", "/health") == "http://h:1/health"
    assert join_url("http://h:1/api/", "health") == "http://h:1/api/health"


@pytest.mark.parametrize(
    ("url", "ok"),
    [("http://127.0.0.1:8/x", True), ("http://LOCALHOST/", True), ("http://[::1]:9/", True),
     ("http://10.0.0.1/", False), ("ftp://127.0.0.1/", False), ("/relative", False)],
)
def test_ensure_allowed(url: str, ok: bool) -> None:
    if ok:
        ensure_allowed(url, ["127.0.0.1", "localhost", "::1"])
    else:
        with pytest.raises(TargetError):
            ensure_allowed(url, ["127.0.0.1", "localhost", "::1"])


def test_resolve_picks_one_port_for_every_placeholder(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", health_url="/health",
                      start=["{python}", "-m", "app", "--port", "{port}"])
    info, used = resolve_target(spec, values(tmp_path))
    port = used["port"]
    assert info.base_url == f"http://127.0.0.1:{port}"
    assert info.health_url == f"http://127.0.0.1:{port}/health"
    assert used["base_url"] == info.base_url
    assert info.pid is None


def test_resolve_without_port_placeholder_picks_none(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://localhost:8000")
    info, used = resolve_target(spec, values(tmp_path))
    assert "port" not in used
    assert info.health_url == "http://localhost:8000"


def test_session_without_start_only_resolves(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://127.0.0.1:9", health_url="http://127.0.0.1:9/h")
    with target_session(spec, values(tmp_path), {}, tmp_path / "t.log") as info:
        assert info == TargetInfo("http://127.0.0.1:9", "http://127.0.0.1:9/h", None, None,
                                  ("127.0.0.1", "localhost", "::1"))
    assert not (tmp_path / "t.log").exists()


def test_disallowed_health_host_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    spec = TargetSpec(
        base_url="http://127.0.0.1:{port}", health_url="http://10.255.255.1:9/health",
        start=[PY, "-c", f"open({str(marker)!r}, 'w').close()"],
    )
    with pytest.raises(TargetError, match="10.255.255.1"), target_session(
        spec, values(tmp_path), dict(os.environ), tmp_path / "t.log", tmp_path
    ):
        pass
    time.sleep(0.2)
    assert not marker.exists()


def test_missing_executable_is_a_target_error(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", start=[str(tmp_path / "nope")])
    with pytest.raises(TargetError, match="cannot start target"), target_session(
        spec, values(tmp_path), {}, tmp_path / "t.log", tmp_path
    ):
        pass


# --- integration: real servers and processes -----------------------------------------


class _Flaky(BaseHTTPRequestHandler):
    """503 for the first two requests, then 200."""

    hits = 0

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        type(self).hits += 1
        self.send_response(200 if type(self).hits > 2 else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def flaky_server() -> Iterator[str]:
    _Flaky.hits = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.integration
def test_wait_healthy_retries_until_2xx(flaky_server: str) -> None:
    wait_healthy(flaky_server + "/health", 10, interval=0.05)
    assert _Flaky.hits == 3


@pytest.mark.integration
def test_wait_healthy_refuses_disallowed_host() -> None:
    with pytest.raises(TargetError, match="allowed_hosts"):
        wait_healthy("http://10.255.255.1:9/", 1, allowed_hosts=["127.0.0.1"])


@pytest.mark.integration
def test_check_health(flaky_server: str) -> None:
    info = TargetInfo(flaky_server, flaky_server + "/")
    with pytest.raises(TargetError, match="HTTP 503"):
        check_health(info)
    closed = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(TargetError, match="not answering"):
        check_health(TargetInfo(closed, closed))


@pytest.mark.integration
def test_real_server_starts_healthy_and_is_stopped(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("served from the project dir")
    spec = TargetSpec(
        base_url="http://127.0.0.1:{port}", health_url="/",
        start=["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
        env={"TARGET_PROJECT": "{project}"}, start_timeout=30,
    )
    log = tmp_path / "out" / "target.log"
    with target_session(spec, values(tmp_path), dict(os.environ), log, tmp_path) as info:
        assert info.pid is not None and alive(info.pid)
        assert info.base_url is not None and info.base_url.startswith("http://127.0.0.1:")
        port = int(info.base_url.rsplit(":", 1)[1])
        assert port > 0 and info.health_url == info.base_url + "/"
        assert info.log_path == log
        # cwd is the project dir: the served listing shows our file.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /marker.txt HTTP/1.0\r\n\r\n")
            assert b"served from the project dir" in conn.makefile("rb").read()
        pid = info.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "GET /marker.txt" in log.read_text()


@pytest.mark.integration
def test_target_env_gets_port_and_base_url(tmp_path: Path) -> None:
    script = (
        "import http.server, os, pathlib\n"
        "pathlib.Path('env.txt').write_text("
        "os.environ['NEUROERP_CI_PORT'] + ' ' + os.environ['NEUROERP_CI_BASE_URL']"
        " + ' ' + os.environ['EXTRA'])\n"
        "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler,"
        " ServerClass=http.server.ThreadingHTTPServer,"
        " port=int(os.environ['NEUROERP_CI_PORT']), bind='127.0.0.1')\n"
    )
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", start=[PY, "-c", script],
                      env={"EXTRA": "x-{port}"}, start_timeout=30)
    with target_session(spec, values(tmp_path), dict(os.environ), tmp_path / "t.log",
                        tmp_path) as info:
        port = info.base_url.rsplit(":", 1)[1] if info.base_url else ""
        assert (tmp_path / "env.txt").read_text() == f"{port} {info.base_url} x-{port}"


@pytest.mark.integration
def test_start_command_exiting_early(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://127.0.0.1:{port}",
                      start=[PY, "-c", "import sys; print('no database'); sys.exit(3)"])
    with pytest.raises(TargetError, match=r"exited with code 3 .*no database"), target_session(
        spec, values(tmp_path), dict(os.environ), tmp_path / "t.log", tmp_path
    ):
        pytest.fail("the block must not run for a target that never got healthy")


@pytest.mark.integration
def test_never_healthy_times_out_and_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    # Ignores SIGTERM, so stopping has to escalate to SIGKILL.
    script = (
        "import os, signal, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "print('still booting', flush=True)\n"
        "time.sleep(120)\n"
    )
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", start=[PY, "-c", script],
                      start_timeout=2, stop_timeout=0.5)
    with pytest.raises(TargetError, match=r"not healthy after 2 s at http://127\.0\.0\.1:\d+"
                       r".*still booting"), target_session(
        spec, values(tmp_path), dict(os.environ), tmp_path / "t.log", tmp_path
    ):
        pass
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.integration
def test_exception_in_block_still_stops_target(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", health_url="/",
                      start=[PY, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                      start_timeout=30)
    pid = None
    with pytest.raises(RuntimeError, match="check crashed"), target_session(
        spec, values(tmp_path), dict(os.environ), tmp_path / "t.log", tmp_path
    ) as info:
        pid = info.pid
        raise RuntimeError("check crashed")
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.integration
def test_grandchild_is_stopped_with_the_group(tmp_path: Path) -> None:
    grandchild_file = tmp_path / "grandchild"
    script = (
        "import os, subprocess, sys, pathlib, http.server\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"pathlib.Path({str(grandchild_file)!r}).write_text(str(child.pid))\n"
        "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler,"
        " ServerClass=http.server.ThreadingHTTPServer,"
        " port=int(os.environ['NEUROERP_CI_PORT']), bind='127.0.0.1')\n"
    )
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", start=[PY, "-c", script],
                      start_timeout=30, stop_timeout=5)
    with target_session(spec, values(tmp_path), dict(os.environ), tmp_path / "t.log",
                        tmp_path) as info:
        assert info.pid is not None
        grandchild = int(grandchild_file.read_text())
        assert alive(info.pid) and alive(grandchild)
        leader = info.pid
    assert not alive(leader)
    # Reparented to init once the leader is gone; it must be dead, not merely orphaned.
    assert gone_soon(grandchild)


@pytest.mark.integration
def test_stop_process_group_on_already_exited_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([PY, "-c", "pass"], start_new_session=True)
    proc.wait()
    stop_process_group(proc, 1)  # must not raise
    assert proc.returncode == 0


@pytest.mark.integration
def test_keyboard_interrupt_still_stops_target(tmp_path: Path) -> None:
    spec = TargetSpec(base_url="http://127.0.0.1:{port}", health_url="/",
                      start=[PY, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                      start_timeout=30)
    pid = None
    # A suite started in the background of a non-interactive shell inherits SIGINT ignored:
    # the real signal must still arrive, so Python's own handler is put back for the test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), target_session(
            spec, values(tmp_path), dict(os.environ), tmp_path / "t.log", tmp_path
        ) as info:
            pid = info.pid
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert pid is not None and not alive(pid)


# --- setup commands and the workspace --------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "name"),
    [(["{python}", "-m", "app.migrate"], "app.migrate"), (["{python}", "scripts/seed.py"], "seed"),
     (["{python}", "-c", "print(1)"], "python"), (["flask", "--app", "flaskr", "init-db"], "flask"),
     (["/usr/bin/python3", "-u", "x.py"], "x"), (["../odd name!"], "odd_name")],
)
def test_setup_name(argv: list[str], name: str) -> None:
    assert setup_name(argv) == name


def test_workspace_without_setup_is_the_project(tmp_path: Path) -> None:
    with prepared_workspace(TargetSpec(), tmp_path, values(tmp_path), {}, tmp_path / "s") as work:
        assert work == Workspace(tmp_path, values(tmp_path))
    assert not (tmp_path / "s").exists()


@pytest.mark.integration
def test_setup_executable_missing_is_a_setup_error(tmp_path: Path) -> None:
    spec = TargetSpec(setup=[[PY, "-c", "pass"], [str(tmp_path / "nope"), "--init"]])
    with pytest.raises(SetupError, match=r"setup command 2 of 2 \(nope --init\): cannot run it"):
        run_setup(spec, values(tmp_path), dict(os.environ), tmp_path, tmp_path / "setup")


@pytest.mark.integration
def test_setup_and_target_share_one_port_and_the_targets_env(tmp_path: Path) -> None:
    spec = TargetSpec(
        base_url="http://127.0.0.1:{port}", health_url="/",
        start=["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
        env={"APP_DB": "{project}/app.db"},
        setup=[["{python}", "-c", "import os, pathlib; pathlib.Path('seen').write_text("
                "os.environ['NEUROERP_CI_PORT'] + ' ' + os.environ['APP_DB'])"]],
        start_timeout=30,
    )
    with prepared_workspace(spec, tmp_path, values(tmp_path), dict(os.environ),
                            tmp_path / "setup") as work:
        assert work.error is None
        with target_session(spec, work.values, dict(os.environ), tmp_path / "t.log",
                            work.project_dir) as info:
            port = (info.base_url or "").rsplit(":", 1)[1]
    assert (tmp_path / "seen").read_text() == f"{port} {tmp_path}/app.db"


@pytest.mark.integration
def test_what_a_setup_command_leaves_running_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    script = (
        "import subprocess, sys, pathlib\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
    )
    spec = TargetSpec(setup=[[PY, "-c", script]])
    run_setup(spec, values(tmp_path), dict(os.environ), tmp_path, tmp_path / "setup")
    assert gone_soon(int(pid_file.read_text()))


@pytest.mark.integration
def test_failed_workspace_setup_is_reported_not_raised(tmp_path: Path) -> None:
    spec = TargetSpec(setup=[[PY, "-c", "import sys; sys.exit('boom')"]])
    with prepared_workspace(spec, tmp_path, values(tmp_path), dict(os.environ),
                            tmp_path / "setup") as work:
        assert isinstance(work.error, SetupError)
        assert "exited 1: boom (log: setup/1-" in str(work.error)
    outcome = setup_outcome(work.error)
    assert outcome.check == "setup" and outcome.severity.value == "blocking"
