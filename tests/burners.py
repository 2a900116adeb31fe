"""CPU burners for tests of a busy machine: another job's processes, not ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

# Spins for at most 60 s, so a burner nobody killed still ends.
BURN = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass\n"
# Forks the burners away and exits: they are not our descendants (another job's processes),
# in a process group of their own whose id the leader prints before it lets go of stdout.
FOREIGN = (
    "import os, sys\n"
    "if os.fork(): os._exit(0)\n"
    "os.setsid()\n"
    "for _ in range(int(sys.argv[1]) - 1):\n"
    "    if os.fork() == 0: break\n"
    "if os.getpid() == os.getpgrp(): print(os.getpgrp(), flush=True)\n"
    "os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n" + BURN
)


@contextmanager
def foreign_burners(count: int | None = None) -> Iterator[None]:
    """``count`` burners (default one per CPU) outside our process tree while the block runs."""
    count = count or os.cpu_count() or 1
    out = subprocess.run(  # noqa: S603 - our own code, argument list
        [sys.executable, "-c", FOREIGN, str(count)],
        stdout=subprocess.PIPE,
        check=True,
        timeout=30,
    ).stdout
    pgid = int(out.split()[0])
    try:
        time.sleep(0.3)  # spinning before the window starts
        yield
    finally:
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
