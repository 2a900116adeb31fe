"""Exit-code policy of the CLI, in pure functions."""

from __future__ import annotations

import signal
from enum import IntEnum

from neuroerp_ci.model import Verdict


class ExitCode(IntEnum):
    OK = 0  # PASS or WARN
    GATE_FAILED = 1  # FAIL verdict
    BAD_INPUT = 2  # bad pipeline file or command-line usage
    INTERNAL = 3  # neuroerp-ci, its history store or Prefect broke; or the run is not recorded
    INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C
    TERMINATED = 128 + signal.SIGTERM  # 143: SIGTERM (a CI runner cancelling the job)


def for_verdict(verdict: Verdict) -> ExitCode:
    return ExitCode.GATE_FAILED if verdict is Verdict.FAIL else ExitCode.OK


def for_signal(signum: int) -> int:
    """128 + the signal's number, as a shell reports a process that a signal ended."""
    return 128 + signum
