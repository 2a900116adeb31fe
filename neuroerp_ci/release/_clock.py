"""The one timestamp format of release records (rollout steps, refusals): ISO 8601, UTC, seconds."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    """'2026-03-01T12:00:00+00:00'."""
    return datetime.now(UTC).isoformat(timespec="seconds")
