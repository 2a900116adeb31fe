"""The one way neuroerp-ci runs an external tool, and what keeps every child from outliving it.

Every subprocess goes through :func:`run_tool`: it applies a hard timeout (the whole process
group is killed, so a child of the tool cannot outlive it), captures output, and maps every
way of failing to a :class:`~neuroerp_ci.errors.ToolError` whose message names the command,
the exit code and the tail of stderr. Never a shell.

Every process group neuroerp-ci starts (tools, the target, locust workers) is started with
:func:`start_group` and tracked twice until it is released:

- by the :class:`ProcessScope` of the run it belongs to, when there is one: a run that stops
  (an exception, SIGINT, SIGTERM) closes its scope, which kills the scope's groups at once and
  refuses to start new ones, so the worker threads waiting on tools return at once;
- by a watchdog process (:mod:`neuroerp_ci.support._watchdog`, started with the first tracked
  child):
  when this process ends, however it ends (SIGKILL included), the watchdog kills whatever is
  still registered, within a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.text import tail_lines

TAIL_CHARS = 600
_WATCHDOG_SCRIPT = Path(__file__).with_name("_watchdog.py")


@dataclass(frozen=True)
class ToolRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    def tail(self, chars: int = TAIL_CHARS) -> str:
        """The last lines of stderr (or stdout when stderr is empty), on one line
        (:func:`~neuroerp_ci.support.text.tail_lines`)."""
        return tail_lines(self.stderr.strip() or self.stdout.strip(), chars)


def find_tool(name: str, override: str | None = None) -> str:
    """Locate an executable: an explicit override, then beside this interpreter, then PATH.

    Looking beside ``sys.executable`` first makes tools installed in the same virtual
    environment work when the environment is not activated.
    """
    if override:
        found = shutil.which(override)
        if found is None:
            raise ToolError(f"tool '{override}' not found (is it installed and executable?)")
        return found
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"tool '{name}' not found beside {sys.executable} or on PATH")
    return found


def describe(argv: Sequence[str]) -> str:
    """A short human form of a command line for reasons and logs."""
    shown = [Path(argv[0]).name, *argv[1:]] if argv else []
    text = " ".join(shown)
    return text if len(text) <= 120 else text[:117] + "..."


def run_tool(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    ok_codes: Collection[int] | None = (0,),
) -> ToolRun:
    """Run ``argv`` and return its output, or raise ToolError.

    ``ok_codes=None`` accepts any exit status (the caller reads the output to decide).
    """
    argv = tuple(str(a) for a in argv)
    started = time.perf_counter()
    try:
        proc: subprocess.Popen[str] = start_group(  # noqa: S603 - argument list, never a shell
            argv,
            cwd=str(cwd),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise ToolError(f"tool '{argv[0]}' not found: {exc.strerror}") from exc
    except PermissionError as exc:
        raise ToolError(f"tool '{argv[0]}' is not executable: {exc.strerror}") from exc
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_process_group(proc)
        proc.communicate()
        raise ToolError(f"{describe(argv)} timed out after {timeout:g} s") from exc
    except BaseException:
        kill_process_group(proc)
        proc.communicate()
        raise
    finally:
        release_group(proc)
    stopped = _stopped_reason()
    if stopped is not None:  # killed by its run's scope: its output is no result
        raise ToolError(f"{describe(argv)} stopped: {stopped}")
    run = ToolRun(argv, proc.returncode, stdout, stderr, time.perf_counter() - started)
    if ok_codes is not None and run.returncode not in ok_codes:
        raise ToolError(f"{describe(argv)} exited {run.returncode}: {run.tail()}")
    return run


def kill_process_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started in its session."""
    signal_group(proc.pid, signal.SIGKILL)


# --- tracking the process groups we start -------------------------------------------------


def start_group(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **popen)`` in a new session (its own process group), tracked
    by the current run's scope and by the watchdog until :func:`release_group`.

    Raises ToolError, with nothing left running, when the current scope was stopped.
    """
    scope = _SCOPE.get()
    if scope is not None and scope.stopped is not None:
        raise ToolError(f"{describe(argv)} not started: {scope.stopped}")
    proc: subprocess.Popen[Any] = subprocess.Popen(  # noqa: S603 - the callers pass lists
        list(argv), start_new_session=True, **popen
    )
    _WATCHDOG.send(f"+g {proc.pid}")
    if scope is not None and not scope.add(proc.pid):  # stopped while it started
        kill_process_group(proc)
        proc.communicate()
        release_group(proc)
        raise ToolError(f"{describe(argv)} not started: {scope.stopped}")
    return proc


def release_group(proc: subprocess.Popen[Any]) -> None:
    """Stop tracking ``proc``'s group: call it once the group is dead or finished."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.discard(proc.pid)
    _WATCHDOG.send(f"-g {proc.pid}")


def track_process(proc: subprocess.Popen[Any]) -> None:
    """Have the watchdog end one process we did not start as a group (Prefect's temporary
    server) should this process die without stopping it; :func:`release_process` undoes."""
    _WATCHDOG.send(f"+p {proc.pid}")


def release_process(proc: subprocess.Popen[Any]) -> None:
    _WATCHDOG.send(f"-p {proc.pid}")


class ProcessScope:
    """The process groups one run's checks started. :meth:`stop` kills those still running
    and refuses new ones; the checks' worker threads see their tools die and return."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: set[int] = set()
        self.stopped: str | None = None  # why, once stopped

    def add(self, pgid: int) -> bool:
        """Track a new group; False when the scope was stopped (the caller kills it)."""
        with self._lock:
            if self.stopped is not None:
                return False
            self._groups.add(pgid)
            return True

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)

    def stop(self, reason: str) -> None:
        """SIGKILL every group still running; from now on nothing starts in this scope."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason
            groups, self._groups = self._groups, set()
        for pgid in groups:
            signal_group(pgid, signal.SIGKILL)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this the scope of the tools started in this thread (and its context)."""
        token = _SCOPE.set(self)
        try:
            yield
        finally:
            _SCOPE.reset(token)


@contextmanager
def process_scope() -> Iterator[ProcessScope]:
    """A scope for one run, stopped when the block is left: at once (and with the reason)
    when an exception, KeyboardInterrupt or termination leaves it."""
    scope = ProcessScope()
    try:
        yield scope
    except BaseException as exc:
        scope.stop(stop_reason(exc))
        raise
    scope.stop("the run ended")


def stop_reason(exc: BaseException) -> str:
    """A short reason for a run that stopped with ``exc``: the signal when there was one."""
    number = getattr(exc, "signal", None)  # Prefect's TerminationSignal and the CLI's own
    if isinstance(number, int):
        try:
            return f"stopped by {signal.Signals(number).name}"
        except ValueError:
            return f"stopped by signal {number}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


_SCOPE: ContextVar[ProcessScope | None] = ContextVar("neuroerp_ci_process_scope", default=None)


def _stopped_reason() -> str | None:
    scope = _SCOPE.get()
    return None if scope is None else scope.stopped


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group that may be gone already."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_process_group(proc: subprocess.Popen[bytes], stop_timeout: float) -> None:
    """SIGTERM the process group, wait up to ``stop_timeout`` for the leader, SIGKILL the rest.

    The leader is waited for without being reaped (``WNOWAIT``), so its pid, which is also
    the group id, cannot be reused by another process before the final SIGKILL to the group.
    """
    signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + stop_timeout
    while proc.returncode is None and not _exited(proc.pid):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    # Whatever is left in the group (the leader ignoring SIGTERM, or its children) goes now.
    signal_group(proc.pid, signal.SIGKILL)
    release_group(proc)
    proc.wait()


def _exited(pid: int) -> bool:
    try:
        status = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True  # already reaped
    return status is not None


def log_tail(log_path: Path | None, chars: int = TAIL_CHARS) -> str:
    """The end of the target's log on one line ("" when there is none)."""
    if log_path is None:
        return ""
    try:
        with log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            start = max(0, fh.tell() - 4 * chars)
            fh.seek(start)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if start > 0:  # begun mid-line: from the next whole line on
        text = text.partition("\n")[2]
    return tail_lines(text, chars)


class _Watchdog:
    """The client end of :mod:`neuroerp_ci.support._watchdog`: one per process, started on
    first use.

    The watchdog reads our registrations from a pipe; the kernel closes the pipe when this
    process ends, however it ends, and the watchdog then kills what is still registered.
    If it cannot be started, tracking degrades to the run's own cleanup (never an error).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._owner = 0  # the pid that started it: a forked child starts its own

    def send(self, line: str) -> None:
        with self._lock:
            for _attempt in range(2):  # a watchdog that died is replaced once
                pipe = self._pipe if self._owner == os.getpid() else None
                if pipe is None:
                    pipe = self._start()
                if pipe is None:
                    return
                try:
                    pipe.write(line.encode("ascii") + b"\n")
                    pipe.flush()
                    return
                except OSError:
                    self._pipe = None

    def _start(self) -> IO[bytes] | None:
        try:
            proc = subprocess.Popen(  # noqa: S603 - fixed argument list
                [sys.executable, "-I", "-S", str(_WATCHDOG_SCRIPT), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Own session: a Ctrl-C or kill aimed at our process group spares it.
                start_new_session=True,
            )
        except OSError:
            return None
        self._proc, self._pipe, self._owner = proc, proc.stdin, os.getpid()
        return self._pipe

    def forget_after_fork(self) -> None:
        # The child must not hold the parent's pipe open (the watchdog would wait for it too).
        self._lock = threading.Lock()
        if self._pipe is not None:
            try:
                self._pipe.close()
            except OSError:
                pass
        self._proc = self._pipe = None


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.forget_after_fork)
