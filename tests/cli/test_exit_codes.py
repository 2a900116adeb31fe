from __future__ import annotations

import signal

import pytest

from neuroerp_ci.cli.exit_codes import ExitCode, for_signal, for_verdict
from neuroerp_ci.model import Verdict


@pytest.mark.parametrize(
    ("verdict", "code"),
    [(Verdict.PASS, 0), (Verdict.WARN, 0), (Verdict.FAIL, 1)],
)
def test_every_verdict_maps_to_an_exit_code(verdict: Verdict, code: int) -> None:
    assert for_verdict(verdict) == code


def test_codes_are_distinct() -> None:
    assert len({c.value for c in ExitCode}) == len(ExitCode)


def test_a_run_stopped_by_a_signal_exits_128_plus_its_number() -> None:
    assert for_signal(signal.SIGINT) == ExitCode.INTERRUPTED == 130
    assert for_signal(signal.SIGTERM) == ExitCode.TERMINATED == 143
