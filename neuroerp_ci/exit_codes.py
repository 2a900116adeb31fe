"""Exit-code policy of the CLI, in one pure function."""

from __future__ import annotations

from enum import IntEnum

from neuroerp_ci.model import Verdict


class ExitCode(IntEnum):
    OK = 0  # PASS or WARN
    GATE_FAILED = 1  # FAIL verdict
    BAD_INPUT = 2  # bad pipeline file or command-line usage
    INTERNAL = 3  # neuroerp-ci or Prefect itself broke


def for_verdict(verdict: Verdict) -> ExitCode:
    return ExitCode.GATE_FAILED if verdict is Verdict.FAIL else ExitCode.OK
