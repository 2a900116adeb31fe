"""The watchdog of one neuroerp-ci process: ``python -I -S _watchdog.py OWNER_PID``.

It reads registrations from its stdin, a pipe only the owner holds, one line each:
``+g PID`` / ``-g PID`` for a process group the owner started and released, ``+p PID`` /
``-p PID`` for a single process (Prefect's temporary server). When the pipe reaches end of
file, because the owner exited or was killed (SIGKILL included: the kernel closes the pipe),
every group still registered gets SIGKILL, every process SIGTERM and, after a short grace,
SIGKILL. Then the watchdog exits. (OWNER_PID is only there to tell watchdogs apart in ``ps``.)

It ignores SIGINT, SIGTERM and SIGHUP: a Ctrl-C, ``kill`` or hang-up aimed at the owner's job
must not end the one process that cleans up after it. Standard library only, imports nothing
from neuroerp_ci, so it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_S = 2.0


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    watched: dict[bytes, set[int]] = {b"g": set(), b"p": set()}
    for line in sys.stdin.buffer:  # until the owner is gone
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 2 or not parts[1].isdigit():
            continue
        op, kind, pid = parts[0][:1], parts[0][1:], int(parts[1])
        if kind in watched and pid > 1:
            (watched[kind].add if op == b"+" else watched[kind].discard)(pid)
    for pgid in watched[b"g"]:
        _signal(pgid, signal.SIGKILL, group=True)
    alive = {pid for pid in watched[b"p"] if _signal(pid, signal.SIGTERM)}
    deadline = time.monotonic() + GRACE_S
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {pid for pid in alive if _running(pid)}
    for pid in alive:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: signal.Signals, group: bool = False) -> bool:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


if __name__ == "__main__":
    main()
