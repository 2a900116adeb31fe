"""What keeps a tool from outliving its run or neuroerp-ci: the run's process scope and the
watchdog. Real processes throughout; every wait has a generous deadline, no timing asserts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.tooling import (
    ProcessScope,
    process_scope,
    release_group,
    run_tool,
    start_group,
    stop_reason,
)

PY = sys.executable
DEADLINE_S = 30.0
# Writes its pid to argv[1], then sleeps: a tool that would run far longer than any test.
SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"


def gone(pid: int) -> bool:
    """Dead, or a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        time.sleep(0.02)


def read_pid(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip(), f"{path} to be written")
    return int(path.read_text())


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.integration
def test_a_stopped_scope_kills_the_tool_its_thread_waits_on_and_starts_no_more(
    tmp_path: Path,
) -> None:
    scope = ProcessScope()
    pid_file = tmp_path / "tool.pid"
    outcome: list[BaseException | object] = []

    def check() -> None:  # what a check's worker thread does
        with scope.active():
            try:
                outcome.append(
                    run_tool([PY, "-c", SLEEPER, str(pid_file)], cwd=tmp_path, timeout=300)
                )
            except ToolError as exc:
                outcome.append(exc)

    worker = threading.Thread(target=check)
    worker.start()
    pid = read_pid(pid_file)
    scope.stop("stopped by SIGTERM")
    worker.join(DEADLINE_S)
    assert not worker.is_alive(), "the worker still waits on its tool"
    (error,) = outcome
    assert isinstance(error, ToolError) and "stopped: stopped by SIGTERM" in str(error)
    assert gone(pid)
    with scope.active(), pytest.raises(ToolError, match="not started: stopped by SIGTERM"):
        run_tool([PY, "-c", SLEEPER, str(tmp_path / "late.pid")], cwd=tmp_path, timeout=300)
    assert not (tmp_path / "late.pid").exists()


@pytest.mark.integration
def test_a_scope_left_by_an_exception_kills_its_groups(tmp_path: Path) -> None:
    pid_file = tmp_path / "tool.pid"
    with pytest.raises(KeyboardInterrupt), process_scope() as scope, scope.active():
        proc = start_group([PY, "-c", SLEEPER, str(pid_file)])
        pid = read_pid(pid_file)
        raise KeyboardInterrupt
    proc.wait(DEADLINE_S)
    release_group(proc)
    assert gone(pid) and scope.stopped == "interrupted (SIGINT)"


def test_stop_reasons_name_the_signal() -> None:
    class Signalled(BaseException):
        signal = signal.SIGTERM

    assert stop_reason(Signalled()) == "stopped by SIGTERM"
    assert stop_reason(KeyboardInterrupt()) == "interrupted (SIGINT)"
    assert stop_reason(RuntimeError("broke\nsecond line")) == "RuntimeError: broke"


# The owner: starts a group (a tool with a grandchild in its group) and a released group,
# prints their pids, then dies the way argv[1] says.
OWNER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from neuroerp_ci.support.tooling import release_group, start_group
    quiet = dict(stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # our pipes stay ours
    tracked = start_group(["sh", "-c", "sleep 300 & echo $!; exec sleep 300"],
                          stdout=subprocess.PIPE, text=True, **quiet)
    grandchild = int(tracked.stdout.readline())
    released = start_group(["sleep", "300"], stdout=subprocess.DEVNULL, **quiet)
    release_group(released)  # the owner says it is done with it: the watchdog must not touch it
    print(tracked.pid, grandchild, released.pid, flush=True)
    if sys.argv[1] == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("death", ["sigkill", "normal exit"])
def test_the_watchdog_kills_what_its_owner_left_however_the_owner_ended(death: str) -> None:
    owner = subprocess.run(  # noqa: S603 - fixed argument list
        [PY, "-c", OWNER, death.replace(" ", "-")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert owner.returncode == (-signal.SIGKILL if death == "sigkill" else 0), owner.stderr
    leader, grandchild, released = (int(p) for p in owner.stdout.split())
    try:
        wait_until(lambda: gone(leader) and gone(grandchild), "the tracked group to die")
        assert not gone(released), "a released group was killed"
    finally:
        for pid in (leader, grandchild, released):
            kill_quietly(pid)
