"""The pipeline file (``neuroerp-ci.toml``): loading and validation.

Everything is checked up front, before anything runs; every problem is one
:class:`~neuroerp_ci.errors.ConfigError` naming the file, the key and what is wrong.

Example::

    [target]
    base_url = "http://127.0.0.1:{port}"        # {port}: a free port picked per run
    start = ["{python}", "-m", "uvicorn", "app:app", "--port", "{port}"]
    health_url = "/health"

    [[checks]]
    id = "unit-tests"
    kind = "pytest"
    priority = "high"
    settings = { markers = "unit", cov = "app" }

    [stages.development]
    checks = ["unit-tests"]
    conditions = [{ check = "unit-tests", metric = "coverage_pct", min = 80 }]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neuroerp_ci.checks import Check
from neuroerp_ci.config.stage_rules import ApprovalSpec, CanarySpec, HooksSpec, LockSpec, NotifySpec
from neuroerp_ci.errors import ConfigError, TargetError
from neuroerp_ci.gates.conditions import ConditionSpec
from neuroerp_ci.gates.waivers import MAX_WAIVER_DAYS, WaiverSpec
from neuroerp_ci.model import Priority
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS, allowed_set, ensure_allowed, http_url_problem
from neuroerp_ci.support.secrets import ENV_NAME, SecretsSpec

DEFAULT_FILE = "neuroerp-ci.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TargetSpec(_Strict):
    name: str = "target"  # names the target in the history; baselines are per stage and target
    # where the checks reach the running target ({port}: a free port picked per run)
    base_url: str | None = None
    # the command (argv list) that starts the target; none: it is already running
    start: list[str] | None = Field(default=None, min_length=1)
    health_url: str | None = None  # absolute, or a path relative to base_url
    start_timeout: float = Field(default=60.0, gt=0)  # seconds until health_url answers 2xx
    stop_timeout: float = Field(default=10.0, gt=0)  # seconds from SIGTERM to SIGKILL
    # added to the environment of the target and the setup commands ({env:NAME} allowed)
    env: dict[str, str] = Field(default_factory=dict)
    # the only hosts any check, hook or webhook may reach (network checks fail closed)
    allowed_hosts: list[str] = Field(default_factory=lambda: list(LOOPBACK_HOSTS), min_length=1)
    # the interpreter Python tools run on; default: the project's .venv, else neuroerp-ci's
    python: str = "{python}"
    # commands (argv lists) run in order before the target starts and before any check
    setup: list[Annotated[list[str], Field(min_length=1)]] = Field(default_factory=list)
    setup_timeout: float = Field(default=300.0, gt=0)  # seconds, per setup command
    # "scratch": setup, target and checks run in a copy of the project, removed afterwards
    workdir: Literal["project", "scratch"] = "project"

    @field_validator("allowed_hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        allowed_set(value)  # ValueError naming the entry
        return value

    @model_validator(mode="after")
    def _host_allowed(self) -> TargetSpec:
        if self.base_url is not None:
            # {port} is picked per run; a host from another placeholder (a secret) is checked
            # when the runner expands it (neuroerp_ci.run.target.resolve_target).
            problem = http_url_problem(self.base_url)
            if problem:
                raise ValueError(f"base_url {problem}")
            concrete = self.base_url.replace("{port}", "1")
            if "{" not in concrete:
                try:
                    ensure_allowed(concrete, self.allowed_hosts, "base_url")
                except TargetError as exc:
                    raise ValueError(str(exc)) from None
        if self.start and not (self.health_url or self.base_url):
            raise ValueError("a target with 'start' needs 'health_url' or 'base_url' to wait for")
        return self


class StageSpec(_Strict):
    checks: list[str] | None = None  # default: every check in the file
    conditions: list[ConditionSpec] = Field(default_factory=list)
    requires: str | None = None  # a stage that must have passed for the same version
    # false: a check without conditions here gets only ``completed``, not its kind's defaults
    default_conditions: bool = True
    # production rollout (the ``rollout`` flow only): see neuroerp_ci.config.stage_rules
    approval: ApprovalSpec | None = None
    hooks: HooksSpec | None = None
    canary: CanarySpec | None = None
    lock: LockSpec | None = None  # a rollout's lock; default LockSpec() (refuse while held)

    @model_validator(mode="after")
    def _lock_for_rollouts(self) -> StageSpec:
        if self.lock is not None and not (self.approval or self.hooks or self.canary):
            raise ValueError("'lock' applies only to a rollout stage (approval, hooks or canary)")
        return self


class CheckEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)  # unique in the file
    title: str = ""  # shown in reports
    kind: str  # one of the check kinds below (pytest, bandit, pip-audit, http, ...)
    # the default severity of its conditions: high -> blocking, medium -> warning, low -> info
    priority: Priority = Priority.HIGH
    dependencies: list[str] = Field(default_factory=list)  # ids of checks that run first
    timeout: float = Field(default=600.0, gt=0)  # seconds, for every tool and request loop
    estimate: float | None = Field(default=None, gt=0)  # expected seconds, for plan
    settings: dict[str, Any] = Field(default_factory=dict)  # the kind's settings (below)
    # false: in a stage without conditions on it, only ``completed``, not its kind's defaults
    default_conditions: bool = True
    # added to the environment of this check's tools only (placeholders, {env:NAME} allowed)
    env: dict[str, str] = Field(default_factory=dict)
    # false: always run, even when nothing it reads changed since a passing run (a suite that
    # reads the clock, the network or a service); true: such a check is skipped and that run's
    # result judged again (kinds that measure a live target are never skipped)
    cache: bool = True

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not re.fullmatch(ENV_NAME, name)]
        if bad:
            raise ValueError(f"not environment variable names: {bad}")
        return value


class AdvisorySpec(_Strict):
    # OSV advisory mirror folder(s), relative to the pipeline file; several are merged
    mirror: str | Annotated[list[str], Field(min_length=1)] | None = None


class StoreSpec(_Strict):
    # SQLAlchemy URL of the history store; default: SQLite in <project>/.neuroerp-ci/
    url: str | None = None


class CacheSpec(_Strict):
    """Skipping test suites and scanners none of whose inputs changed since a passing run."""

    # false: every check runs every time (as with --no-cache)
    enabled: bool = True
    # project files that are never inputs, e.g. a database the target writes on every run
    # ("data/*.sqlite3"); a pattern without "/" matches a file's name anywhere, one with "/"
    # its path from the project folder
    ignore: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class BaselineSpec(_Strict):
    runs: int = Field(default=5, ge=1, le=100)  # last N passing runs of the same stage/target
    window_days: float | None = Field(default=None, gt=0)  # and no older than this
    # and in which every condition on the metric passed ("pass"), or none failed ("pass_or_warn")
    include: Literal["pass", "pass_or_warn"] = "pass"


class AuditSpec(_Strict):
    """How the security audit accepts findings (the ``[[waivers]]`` list)."""

    # a TOML file of more [[waivers]], relative to the pipeline file (e.g. "waivers.toml")
    waivers_file: str | None = Field(default=None, min_length=1)
    # how far ahead a waiver may end: no finding is accepted for ever
    max_waiver_days: int = Field(default=MAX_WAIVER_DAYS, ge=1, le=366)


class PipelineFile(_Strict):
    target: TargetSpec = Field(default_factory=TargetSpec)
    advisories: AdvisorySpec = Field(default_factory=AdvisorySpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    baseline: BaselineSpec = Field(default_factory=BaselineSpec)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    secrets: SecretsSpec = Field(default_factory=SecretsSpec)
    checks: list[CheckEntry] = Field(min_length=1)
    stages: dict[str, StageSpec] = Field(min_length=1)
    # accepted findings of every scanner, each with a reason, an owner and an end date
    waivers: list[WaiverSpec] = Field(default_factory=list)
    audit: AuditSpec = Field(default_factory=AuditSpec)


@dataclass(frozen=True)
class Stage:
    name: str
    checks: tuple[str, ...]  # in file order
    conditions: tuple[ConditionSpec, ...]  # as written in the stage
    requires: str | None
    approval: ApprovalSpec | None = None
    hooks: HooksSpec | None = None
    canary: CanarySpec | None = None
    lock: LockSpec | None = None
    # the kind's default conditions of each check that has none of its own in this stage
    defaults: tuple[ConditionSpec, ...] = ()

    def conditions_by_check(self) -> dict[str, tuple[tuple[ConditionSpec, ...], bool]]:
        """Each check's conditions (in stage order) and whether they are its kind's defaults.

        A check with neither gets the implicit ``completed`` condition.
        """
        own: dict[str, list[ConditionSpec]] = {c: [] for c in self.checks}
        defaults: dict[str, list[ConditionSpec]] = {c: [] for c in self.checks}
        for cond in self.conditions:
            own[cond.check].append(cond)
        for cond in self.defaults:
            defaults[cond.check].append(cond)
        return {
            c: (tuple(own[c]), False) if own[c] or not defaults[c] else (tuple(defaults[c]), True)
            for c in self.checks
        }


@dataclass(frozen=True)
class Pipeline:
    path: Path
    project_dir: Path
    target: TargetSpec
    checks: dict[str, Check]  # in file order
    stages: dict[str, Stage]
    advisories: tuple[Path, ...]  # offline OSV mirror folders; () = the live service
    store_url: str | None = None
    baseline_runs: int = 5
    baseline_window_days: float | None = None
    baseline_include: Literal["pass", "pass_or_warn"] = "pass"
    notify: NotifySpec = field(default_factory=NotifySpec)
    secrets: SecretsSpec = field(default_factory=SecretsSpec)
    waivers: tuple[WaiverSpec, ...] = ()  # the file's and the waivers file's, in that order
    cache: CacheSpec = field(default_factory=CacheSpec)

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            known = ", ".join(self.stages)
            raise ConfigError(self.path, "stages", f"no stage {name!r} (stages: {known})") from None
