"""What the store hands back about a run, and the time conversions at its edge."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from neuroerp_ci.model import Confirmation, NoiseReading, Verdict

# Verdicts that make a run a candidate baseline and let a later stage rely on it.
PASSING = (Verdict.PASS.value, Verdict.WARN.value)


class RunStatus(StrEnum):
    RUNNING = "running"  # begun; or its process died before it finished (cannot tell apart)
    FINISHED = "finished"  # verdict and everything it measured recorded, in one transaction
    ABORTED = "aborted"  # the run stopped with an error before it had a verdict


@dataclass(frozen=True)
class RunRecord:
    """One stage run as the store knows it."""

    run_id: str
    stage: str
    target: str
    version: str
    status: RunStatus
    verdict: Verdict | None
    started_at: str  # ISO 8601, UTC
    finished_at: str | None
    duration_s: float | None
    pinned: bool = False
    invalidated_reason: str | None = None
    summary: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """The status as ``history`` shows it: a ``running`` row may be a run that was killed
        (no process on any machine can vouch for it), so it reads ``running/aborted?``."""
        if self.status is RunStatus.RUNNING:
            return "running/aborted?"
        return self.status.value

    @property
    def passing(self) -> bool:
        """Finished with PASS or WARN and not invalidated: fit to be a baseline."""
        return (
            self.status is RunStatus.FINISHED
            and self.verdict is not None
            and self.verdict.value in PASSING
            and self.invalidated_reason is None
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, keys in a fixed order (``history --json``)."""
        return {
            "run_id": self.run_id,
            "stage": self.stage,
            "target": self.target,
            "version": self.version,
            "status": self.status.value,
            "verdict": None if self.verdict is None else self.verdict.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "pinned": self.pinned,
            "invalidated_reason": self.invalidated_reason,
            "summary": self.summary,
            "fingerprint": self.fingerprint,
        }


def record_from_row(row: Mapping[Any, Any]) -> RunRecord:
    """A :class:`RunRecord` from a ``runs`` row."""
    return RunRecord(
        run_id=row["run_id"],
        stage=row["stage"],
        target=row["target"],
        version=row["version"],
        status=RunStatus(row["status"]),
        verdict=None if row["verdict"] is None else Verdict(row["verdict"]),
        started_at=to_iso(row["started_at"]),
        finished_at=None if row["finished_at"] is None else to_iso(row["finished_at"]),
        duration_s=row["duration_s"],
        pinned=bool(row["pinned"]),
        invalidated_reason=row["invalidated_reason"],
        summary=row["summary"] or "",
        fingerprint=json.loads(row["fingerprint"] or "{}"),
    )


def to_db_time(value: str | datetime) -> datetime:
    """An ISO 8601 string or datetime as the naive UTC datetime every backend stores.

    A naive input is taken to be UTC already.
    """
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def to_iso(value: datetime) -> str:
    """A stored (naive UTC) datetime as ISO 8601 with ``+00:00``."""
    return value.replace(tzinfo=UTC).isoformat()


def finite(value: float | None) -> float | None:
    """``value``, or None when it is missing or not finite (stored as NULL)."""
    return value if value is not None and math.isfinite(value) else None


def samples_json(samples: tuple[float, ...]) -> str:
    """A JSON array; non-finite samples become ``null`` (JSON cannot hold them)."""
    return json.dumps([finite(float(s)) for s in samples], allow_nan=False)


def samples_from_json(text: str) -> tuple[float, ...]:
    """The samples back; ``null`` becomes NaN (dropped later as "not measured")."""
    return tuple(math.nan if s is None else float(s) for s in json.loads(text or "[]"))


def _json_ready(value: Any) -> Any:
    """``value`` with tuples as lists and non-finite floats as None (JSON cannot hold NaN)."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def noise_json(noise: NoiseReading | None) -> str | None:
    """A check's noise reading as a JSON object; None (NULL) when it has none."""
    if noise is None:
        return None
    return json.dumps(_json_ready(asdict(noise)), sort_keys=True, allow_nan=False)


def noise_from_json(text: str | None) -> NoiseReading | None:
    """The noise reading back (None for NULL); a missing float is NaN, lists are tuples."""
    if not text:
        return None
    data = json.loads(text)
    data["load_avg"] = tuple(_float(v) for v in data.get("load_avg", (0.0, 0.0)))
    data["probe_ms"] = tuple(_float(v) for v in data.get("probe_ms", ()))
    known = NoiseReading.__dataclass_fields__
    return NoiseReading(**{k: v for k, v in data.items() if k in known})


def confirmations_json(confirmations: Sequence[Confirmation]) -> str:
    """An outcome's re-measurements as a JSON array (``[]`` when there were none)."""
    return json.dumps([_json_ready(asdict(c)) for c in confirmations], allow_nan=False)


def confirmations_from_json(text: str | None) -> tuple[Confirmation, ...]:
    """The re-measurements back, in the order they were made."""
    return tuple(
        Confirmation(int(c["attempt"]), c.get("value"), bool(c["breached"]), str(c["reason"]))
        for c in json.loads(text or "[]")
    )


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)
