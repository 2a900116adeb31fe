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
from neuroerp_ci.model import FindingSeverity, Priority, Severity
from neuroerp_ci.support.hosts import LOOPBACK_HOSTS, allowed_set, ensure_allowed, http_url_problem
from neuroerp_ci.support.secrets import ENV_NAME, SecretsSpec

DEFAULT_FILE = "neuroerp-ci.toml"
Policy = Literal["fail", "warn", "ignore"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TargetSpec(_Strict):
    name: str = "target"
    base_url: str | None = None
    start: list[str] | None = Field(default=None, min_length=1)
    health_url: str | None = None  # absolute, or a path relative to base_url
    start_timeout: float = Field(default=60.0, gt=0)
    stop_timeout: float = Field(default=10.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    allowed_hosts: list[str] = Field(default_factory=lambda: list(LOOPBACK_HOSTS), min_length=1)
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


class RegressionSpec(_Strict):
    """The statistical regression test of a condition (see :mod:`neuroerp_ci.gates.regression`).

    A regression is a one-sided Mann-Whitney test with ``p < alpha`` AND a Hodges-Lehmann
    shift whose whole confidence interval lies beyond ``min_effect_pct`` of the baseline
    median in the bad direction.
    """

    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    min_effect_pct: float = Field(default=5.0, ge=0)
    min_samples: int = Field(default=20, ge=5)  # in the run and in the baseline, each


# The keys of each kind of limit a metric condition can have; one kind per condition.
ABSOLUTE_KEYS = ("max", "min")
RELATIVE_KEYS = ("max_increase_pct", "max_decrease_pct", "max_increase", "max_decrease")
BASELINE_KEYS = (*RELATIVE_KEYS, "regression")


class ConditionSpec(_Strict):
    """One gate condition: a limit on a metric or on findings.

    A metric condition takes ONE kind of limit: absolute (``max`` and/or ``min``), relative
    to the baseline (one of :data:`RELATIVE_KEYS`), or a statistical ``regression`` test
    against the baseline's samples. ``on_no_baseline`` says what a baseline condition
    concludes while there is no baseline yet (default ``warn``: reported, never a silent pass).
    """

    check: str
    metric: str | None = None
    max: float | None = None
    min: float | None = None
    max_increase_pct: float | None = Field(default=None, ge=0)
    max_decrease_pct: float | None = Field(default=None, ge=0, le=100)
    max_increase: float | None = Field(default=None, ge=0)
    max_decrease: float | None = Field(default=None, ge=0)
    regression: RegressionSpec | None = None
    findings: FindingSeverity | Literal["any"] | None = None
    severity: Severity | None = None  # default: from the check's priority
    on_missing: Policy = "fail"
    on_error: Policy = "fail"
    on_no_baseline: Policy = "warn"

    @property
    def relative_key(self) -> str | None:
        """The relative limit this condition has (``"max_increase_pct"`` ...), if any."""
        return next((k for k in RELATIVE_KEYS if getattr(self, k) is not None), None)

    @property
    def uses_baseline(self) -> bool:
        """Whether the condition compares with the baseline (relative or regression)."""
        return any(getattr(self, k) is not None for k in BASELINE_KEYS)

    @model_validator(mode="after")
    def _one_form(self) -> ConditionSpec:
        if (self.metric is None) == (self.findings is None):
            raise ValueError("give exactly one of 'metric' or 'findings'")
        given = {k for k in (*ABSOLUTE_KEYS, *BASELINE_KEYS) if getattr(self, k) is not None}
        if self.findings is not None:
            _check_findings_limit(self, given)
        else:
            _check_metric_limit(self.metric or "", given)
        if "on_no_baseline" in self.model_fields_set and not self.uses_baseline:
            raise ValueError(
                "'on_no_baseline' only applies to conditions against the baseline ("
                + ", ".join(BASELINE_KEYS) + ")"
            )
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min} is greater than 'max' {self.max}")
        return self


def _check_findings_limit(cond: ConditionSpec, given: set[str]) -> None:
    if cond.max is None or given - {"max"}:
        raise ValueError("a findings limit takes 'max' (a count) and nothing else")
    if cond.max < 0 or cond.max != int(cond.max):
        raise ValueError(f"findings 'max' must be a whole number >= 0, got {cond.max}")


def _check_metric_limit(metric: str, given: set[str]) -> None:
    kinds = {
        "absolute": [k for k in ABSOLUTE_KEYS if k in given],
        "relative": [k for k in RELATIVE_KEYS if k in given],
        "regression": ["regression"] if "regression" in given else [],
    }
    present = {kind: keys for kind, keys in kinds.items() if keys}
    if not present:
        raise ValueError(
            f"metric {metric!r} needs 'max' or 'min', or a limit against the baseline: one of "
            + ", ".join(repr(k) for k in RELATIVE_KEYS)
            + " or 'regression'"
        )
    if len(present) > 1:
        shown = " and ".join(f"{kind} ({', '.join(keys)})" for kind, keys in present.items())
        raise ValueError(
            f"metric {metric!r}: one kind of limit per condition, got {shown};"
            " write one condition for each"
        )
    relative = kinds["relative"]
    if len(relative) > 1:
        raise ValueError(
            f"metric {metric!r}: give one relative limit per condition, got "
            + ", ".join(relative)
            + "; write one condition for each"
        )


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
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    title: str = ""
    kind: str
    priority: Priority = Priority.HIGH
    dependencies: list[str] = Field(default_factory=list)
    timeout: float = Field(default=600.0, gt=0)
    estimate: float | None = Field(default=None, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    # false: in a stage without conditions on it, only ``completed``, not its kind's defaults
    default_conditions: bool = True
    # added to the environment of this check's tools only (placeholders, {env:NAME} allowed)
    env: dict[str, str] = Field(default_factory=dict)

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


class BaselineSpec(_Strict):
    runs: int = Field(default=5, ge=1, le=100)  # last N passing runs of the same stage/target
    window_days: float | None = Field(default=None, gt=0)  # and no older than this


class PipelineFile(_Strict):
    target: TargetSpec = Field(default_factory=TargetSpec)
    advisories: AdvisorySpec = Field(default_factory=AdvisorySpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    baseline: BaselineSpec = Field(default_factory=BaselineSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    secrets: SecretsSpec = Field(default_factory=SecretsSpec)
    checks: list[CheckEntry] = Field(min_length=1)
    stages: dict[str, StageSpec] = Field(min_length=1)


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
    notify: NotifySpec = field(default_factory=NotifySpec)
    secrets: SecretsSpec = field(default_factory=SecretsSpec)

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            known = ", ".join(self.stages)
            raise ConfigError(self.path, "stages", f"no stage {name!r} (stages: {known})") from None
