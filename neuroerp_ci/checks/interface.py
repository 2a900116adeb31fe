"""What a check kind is, and what it is given when it runs.

A kind is one class: a pydantic ``Settings`` model (validated when the pipeline file is
loaded, so a typo fails before anything runs) and :meth:`CheckKind.measure`, which runs the
real tool and returns a :class:`~neuroerp_ci.model.CheckResult`. A kind never decides pass
or fail, and it may raise :class:`~neuroerp_ci.errors.ToolError` for anything that went
wrong: :func:`execute_check` turns that into a result with status ``error``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckResult, CheckStatus, Priority


class KindSettings(BaseModel):
    """Base of every kind's settings: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetUserSettings(KindSettings):
    """Settings of kinds that may or may not talk to the target (tests, commands)."""

    uses_target: bool = False  # the runner starts the target service for this check


@dataclass(frozen=True)
class Check:
    """One check entry of the pipeline file, validated."""

    id: str
    title: str
    kind: str
    priority: Priority
    dependencies: tuple[str, ...]
    timeout: float  # seconds, applied to every subprocess and request loop of the check
    settings: KindSettings
    estimate_s: float | None = None  # expected duration, for the plan's critical path


@dataclass(frozen=True)
class CheckContext:
    """What a check may touch while it runs."""

    project_dir: Path  # the target project (the pipeline file's directory)
    work_dir: Path  # this check's own directory for raw tool outputs (created for it)
    python: str  # interpreter used for Python tools (pytest) in the target project
    env: Mapping[str, str]  # environment for subprocesses (the caller's, plus NEUROERP_CI_*)
    base_url: str | None = None  # the target's resolved base URL, if the pipeline has one
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    advisories: Path | None = None  # offline OSV advisory mirror directory, if configured
    extra: Mapping[str, str] = field(default_factory=dict)


class CheckKind(ABC):
    """A kind of check: the registry maps ``kind = "..."`` in the pipeline file to one."""

    name: ClassVar[str]
    settings_model: ClassVar[type[KindSettings]]
    # Measurement kinds (timings) run alone so other checks do not distort them.
    exclusive: ClassVar[bool] = False
    # Kinds that talk to the target service need it running.
    needs_target: ClassVar[bool] = False

    def needs_target_for(self, check: Check) -> bool:
        """Whether the runner must have the target service up for this check."""
        settings = check.settings
        return self.needs_target or (
            isinstance(settings, TargetUserSettings) and settings.uses_target
        )

    @abstractmethod
    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        """Run the tool and return what it measured; raise ToolError when it could not."""


SettingsT = TypeVar("SettingsT", bound=KindSettings)


def typed_settings(check: Check, model: type[SettingsT]) -> SettingsT:
    """A check's settings as its kind's model (the config loader validated them so)."""
    if not isinstance(check.settings, model):
        raise TypeError(f"check {check.id}: settings are not {model.__name__}")
    return check.settings


def execute_check(kind: CheckKind, check: Check, ctx: CheckContext) -> CheckResult:
    """Run one check and always return a result: failures become status ``error``."""
    started = time.perf_counter()
    try:
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        result = kind.measure(check, ctx)
    except NeuroErpCiError as exc:
        result = CheckResult(check.id, check.kind, CheckStatus.ERROR, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a crashing kind must not crash the stage
        result = CheckResult(
            check.id, check.kind, CheckStatus.ERROR, reason=f"internal error: {exc!r}"
        )
    result.duration_s = round(time.perf_counter() - started, 3)
    return result


def skipped(check: Check, reason: str) -> CheckResult:
    return CheckResult(check.id, check.kind, CheckStatus.SKIPPED, reason=reason)
