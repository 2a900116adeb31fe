from __future__ import annotations

import pytest

from neuroerp_demo.faults import (
    DELAY_ENV,
    ERROR_RATE_ENV,
    FaultConfigError,
    Faults,
    read_faults,
    should_fail,
)

pytestmark = pytest.mark.unit


def test_no_knobs_means_no_faults() -> None:
    assert read_faults({}) == Faults(0.0, 0.0)
    assert read_faults({DELAY_ENV: " ", ERROR_RATE_ENV: ""}) == Faults(0.0, 0.0)


def test_knobs_are_parsed() -> None:
    assert read_faults({DELAY_ENV: "12.5", ERROR_RATE_ENV: "0.25"}) == Faults(12.5, 0.25)


DELAY_MEANING = "NEUROERP_DEMO_DELAY_MS must be a number of milliseconds >= 0"
RATE_MEANING = "NEUROERP_DEMO_ERROR_RATE must be a fraction between 0 and 1"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (DELAY_ENV, "slow", f"{DELAY_MEANING}, got 'slow'"),
        (DELAY_ENV, "-5", f"{DELAY_MEANING}, got -5"),
        (DELAY_ENV, "nan", f"{DELAY_MEANING}, got 'nan'"),
        (ERROR_RATE_ENV, "1.5", f"{RATE_MEANING}, got 1.5"),
        (ERROR_RATE_ENV, "10%", f"{RATE_MEANING}, got '10%'"),
    ],
)
def test_invalid_knobs_are_rejected_with_the_reason(name: str, value: str, message: str) -> None:
    with pytest.raises(FaultConfigError) as info:
        read_faults({name: value})
    assert str(info.value) == message


def test_should_fail_compares_the_draw_with_the_rate() -> None:
    assert should_fail(0.0, 0.0) is False
    assert should_fail(0.3, 0.29) is True
    assert should_fail(0.3, 0.3) is False
    assert should_fail(1.0, 0.999) is True
