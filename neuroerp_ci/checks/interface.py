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
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, model_validator

from neuroerp_ci.checks._tool_versions import installation_key
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import NeuroErpCiError, ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Priority
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS
from neuroerp_ci.support.noise import NoiseSampler
from neuroerp_ci.support.placeholders import expand
from neuroerp_ci.support.text import printable_result

# Settings keys that moved to the pipeline's [[waivers]] (one list for every scanner, each
# entry with a reason, an owner and an end date): refused with a pointer, never ignored.
WAIVER_POINTER = (
    "{key} is gone: waive a finding with a [[waivers]] entry (rule, reason, owner, expires) "
    "in the pipeline file; see docs/usage.md#waivers"
)


class KindSettings(BaseModel):
    """Base of every kind's settings: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # keys of earlier versions that are refused with a pointer to what replaced them
    moved_keys: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_moved(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key, pointer in cls.moved_keys.items():
                if key in data:
                    raise ValueError(pointer.format(key=f"settings.{key}"))
        return data


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
    # ``[[checks]] env``: added to the environment of this check's tools only, placeholders
    # as written (expanded by :func:`execute_check`)
    env: Mapping[str, str] = field(default_factory=dict)
    # ``[[checks]] cache = false``: always run, even when nothing it reads changed
    cache: bool = True


@dataclass(frozen=True)
class LiveLimit:
    """A limit a check watches while it runs, to stop once it is breached beyond doubt: a
    stage condition's ``abort_on_fail`` (``{ metric = "p95_ms", max = 300 }`` -> metric
    ``p95_ms``, op ``max``, limit 300). The check only stops early; the gate still judges the
    metrics it returns, so the condition FAILs as it would have."""

    metric: str
    op: Literal["max", "min"]
    limit: float
    delay_s: float = 0.0  # seconds into the run before a breach may stop it


@dataclass(frozen=True)
class CheckContext:
    """What a check may touch while it runs."""

    project_dir: Path  # the target project (the pipeline file's directory)
    work_dir: Path  # this check's own directory for raw tool outputs (created for it)
    python: str  # interpreter used for Python tools (pytest) in the target project
    env: Mapping[str, str]  # environment for subprocesses (the caller's, plus NEUROERP_CI_*)
    base_url: str | None = None  # the target's resolved base URL, if the pipeline has one
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    advisories: tuple[Path, ...] = ()  # offline OSV advisory mirror folders, if configured
    # {env:NAME} / {secret:BLOCK} placeholder values ("env:NAME" -> value): secret, never shown
    secrets: Mapping[str, str] = field(default_factory=dict)
    # The stage's abort_on_fail limits on this check (only kinds with live_metrics get any).
    abort_when: tuple[LiveLimit, ...] = ()


@dataclass(frozen=True)
class CacheInputs:
    """What a check's result depends on, besides what every cache key holds (the kind, its
    settings and ``env``, the interpreters' installed packages, neuroerp-ci's version): the
    project files matching ``files`` (a pattern without ``/`` matches a file's name anywhere,
    one with ``/`` its path from the project; ``*`` is every file) and any other ``values``
    (an advisory mirror's content, the day). See :mod:`neuroerp_ci.run.cache`."""

    files: tuple[str, ...] = ("*",)
    values: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def under(paths: Sequence[str], *also: str) -> tuple[str, ...]:
        """Patterns for every file under the project ``paths`` (``.``: all of them), and
        ``also``."""
        found: list[str] = []
        for path in paths:
            clean = path.strip().removeprefix("./").strip("/")
            if clean in ("", "."):
                return ("*",)
            found += [clean, f"{clean}/*"]
        return (*found, *also)


def executable_identity(path: str, env: Mapping[str, str]) -> str:
    """A tool's installation as it is now (its executable, and for a Python script its
    interpreter's packages): a reinstall or an upgrade changes it. Raises ToolError when it
    cannot be told (then nothing is cached)."""
    identity = installation_key(path, env)
    if identity is None:
        raise ToolError(f"{path}: its installation cannot be examined")
    return identity


class CheckKind(ABC):
    """A kind of check: the registry maps ``kind = "..."`` in the pipeline file to one."""

    name: ClassVar[str]
    settings_model: ClassVar[type[KindSettings]]
    # Measurement kinds (timings) run alone so other checks do not distort them.
    exclusive: ClassVar[bool] = False
    # Kinds that talk to the target service need it running.
    needs_target: ClassVar[bool] = False
    # Settings fields whose placeholders are replaced, and which (neuroerp_ci.support.placeholders).
    placeholders: ClassVar[Mapping[str, frozenset[str]]] = {}
    # For a kind without default conditions: what ``completed`` alone already makes sure of.
    completed_means: ClassVar[str] = ""
    # Metrics the kind watches while it runs and may stop on (``abort_on_fail``): () = none.
    live_metrics: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def metric_names(self, settings: KindSettings) -> MetricNames:
        """Every metric a check with these settings can produce; conditions must name one."""

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        """The conditions (pipeline-file form, without ``check``) of a check that has none of
        its own in a stage. A kind without any says why in :attr:`completed_means`."""
        return ()

    def runs_target_python(self, check: Check) -> bool:
        """Whether this check runs on (or audits) the target's interpreter: its verdict is
        then about that interpreter's packages. ``{python}`` in settings counts too."""
        return False

    def needs_target_for(self, check: Check) -> bool:
        """Whether the runner must have the target service up for this check."""
        settings = check.settings
        return self.needs_target or (
            isinstance(settings, TargetUserSettings) and settings.uses_target
        )

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        """What the result depends on, if it is a function of files and settings (a test
        suite, a scanner); None (the default) for a kind that must always run: anything that
        measures a live target, or reads what a key cannot hold. Only the result of a
        passing run with the same inputs is reused, and the gates still judge it."""
        return None

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
    # A measurement records how busy the machine was while it measured (support/noise.py):
    # the gate weighs a timing breach on a busy machine against what the machine explains.
    sampler = NoiseSampler() if kind.exclusive else None
    with sampler or nullcontext():
        try:
            ctx.work_dir.mkdir(parents=True, exist_ok=True)
            result = kind.measure(check, with_check_env(check, ctx))
        except NeuroErpCiError as exc:
            result = CheckResult(check.id, check.kind, CheckStatus.ERROR, reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - a crashing kind must not crash the stage
            result = CheckResult(
                check.id, check.kind, CheckStatus.ERROR, reason=f"internal error: {exc!r}"
            )
    result.duration_s = round(time.perf_counter() - started, 3)
    if sampler is not None:
        result.noise = sampler.reading
    # File names and tool output may hold any bytes; reports and the store hold text.
    return printable_result(result)


def with_check_env(check: Check, ctx: CheckContext) -> CheckContext:
    """``ctx`` with the check's own ``env`` on top of its environment, placeholders expanded."""
    if not check.env:
        return ctx
    values = placeholder_values(ctx, list(check.env.values()))
    own = {name: expand(value, values) for name, value in check.env.items()}
    return replace(ctx, env={**ctx.env, **own})


def placeholder_values(ctx: CheckContext, texts: list[str]) -> dict[str, str]:
    """Values for ``{python}``, ``{project}``, ``{base_url}`` and ``{port}`` (and the run's
    ``{env:NAME}`` / ``{secret:BLOCK}``) in a check's ``texts``."""
    values = {"python": ctx.python, "project": str(ctx.project_dir), "base_url": ctx.base_url or ""}
    values.update(ctx.secrets)
    if any(p in t for p in ("{base_url}", "{port}") for t in texts):
        if ctx.base_url is None:
            raise ToolError("{base_url} or {port} is used: needs a target base_url")
        port = urlsplit(ctx.base_url).port
        if port is not None:
            values["port"] = str(port)
    return values


def skipped(check: Check, reason: str) -> CheckResult:
    return CheckResult(check.id, check.kind, CheckStatus.SKIPPED, reason=reason)
