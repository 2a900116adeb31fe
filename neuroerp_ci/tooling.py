"""The one way neuroerp-ci runs an external tool.

Every subprocess goes through :func:`run_tool`: it applies a hard timeout (the whole process
group is killed, so a child of the tool cannot outlive it), captures output, and maps every
way of failing to a :class:`~neuroerp_ci.errors.ToolError` whose message names the command,
the exit code and the tail of stderr. Never a shell.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from neuroerp_ci.errors import ToolError

TAIL_CHARS = 600


@dataclass(frozen=True)
class ToolRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    def tail(self, chars: int = TAIL_CHARS) -> str:
        """The last part of stderr (or stdout when stderr is empty), on one line."""
        text = (self.stderr.strip() or self.stdout.strip())[-chars:]
        return " ".join(text.split())


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
        proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
            argv,
            cwd=str(cwd),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
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
    run = ToolRun(argv, proc.returncode, stdout, stderr, time.perf_counter() - started)
    if ok_codes is not None and run.returncode not in ok_codes:
        raise ToolError(f"{describe(argv)} exited {run.returncode}: {run.tail()}")
    return run


def kill_process_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started in its session."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
