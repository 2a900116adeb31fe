"""Fault knobs, so a pipeline can be shown failing for real reasons.

``NEUROERP_DEMO_DELAY_MS``: milliseconds added to every request (a slow service).
``NEUROERP_DEMO_ERROR_RATE``: fraction 0..1 of API requests answered 500 (a flaky service).
``NEUROERP_DEMO_A11Y_BROKEN=1``: the login page loses a label and an alt text (accessibility).
``NEUROERP_DEMO_DROP_HEADER=NAME``: answers lose that security header (e.g.
``Content-Security-Policy``).

The knobs are read on every request, so a test can turn them on and off; the service also
reads them once at start-up and refuses to start when one is not a valid number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

DELAY_ENV = "NEUROERP_DEMO_DELAY_MS"
ERROR_RATE_ENV = "NEUROERP_DEMO_ERROR_RATE"
A11Y_ENV = "NEUROERP_DEMO_A11Y_BROKEN"
DROP_HEADER_ENV = "NEUROERP_DEMO_DROP_HEADER"


class FaultConfigError(ValueError):
    """A fault knob holds a value that is not usable."""


@dataclass(frozen=True)
class Faults:
    delay_ms: float = 0.0
    error_rate: float = 0.0
    a11y_broken: bool = False
    drop_header: str = ""


def _number(env: Mapping[str, str], name: str, meaning: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise FaultConfigError(f"{name} must be {meaning}, got {raw!r}") from None
    if not math.isfinite(value):
        raise FaultConfigError(f"{name} must be {meaning}, got {raw!r}")
    return value


def read_faults(env: Mapping[str, str] | None = None) -> Faults:
    """The fault knobs from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    delay = _number(env, DELAY_ENV, "a number of milliseconds >= 0")
    if delay < 0:
        raise FaultConfigError(f"{DELAY_ENV} must be a number of milliseconds >= 0, got {delay:g}")
    rate = _number(env, ERROR_RATE_ENV, "a fraction between 0 and 1")
    if not 0.0 <= rate <= 1.0:
        raise FaultConfigError(f"{ERROR_RATE_ENV} must be a fraction between 0 and 1, got {rate:g}")
    broken = env.get(A11Y_ENV, "").strip()
    if broken not in ("", "0", "1"):
        raise FaultConfigError(f"{A11Y_ENV} must be 0 or 1, got {broken!r}")
    return Faults(delay, rate, broken == "1", env.get(DROP_HEADER_ENV, "").strip())


def should_fail(error_rate: float, draw: float) -> bool:
    """Whether a request with the uniform ``draw`` in [0, 1) gets an injected error."""
    return draw < error_rate
