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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neuroerp_ci.checks import KINDS, Check
from neuroerp_ci.dag import find_cycle
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import FindingSeverity, Priority, Severity
from neuroerp_ci.stage_rules import ApprovalSpec, CanarySpec, HooksSpec, NotifySpec

DEFAULT_FILE = "neuroerp-ci.toml"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

Policy = Literal["fail", "warn", "ignore"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _host_allowed(self) -> TargetSpec:
        if self.base_url is not None:
            host = urlsplit(self.base_url).hostname or ""
            if host not in self.allowed_hosts:
                raise ValueError(
                    f"base_url host {host!r} is not in allowed_hosts {self.allowed_hosts}"
                )
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
    # production rollout (the ``rollout`` flow only): see neuroerp_ci.stage_rules
    approval: ApprovalSpec | None = None
    hooks: HooksSpec | None = None
    canary: CanarySpec | None = None


class CheckEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    title: str = ""
    kind: str
    priority: Priority = Priority.HIGH
    dependencies: list[str] = Field(default_factory=list)
    timeout: float = Field(default=600.0, gt=0)
    estimate: float | None = Field(default=None, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)


class AdvisorySpec(_Strict):
    mirror: str | None = None  # OSV advisory mirror directory, relative to the pipeline file


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
    checks: list[CheckEntry] = Field(min_length=1)
    stages: dict[str, StageSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Stage:
    name: str
    checks: tuple[str, ...]  # in file order
    conditions: tuple[ConditionSpec, ...]
    requires: str | None
    approval: ApprovalSpec | None = None
    hooks: HooksSpec | None = None
    canary: CanarySpec | None = None


@dataclass(frozen=True)
class Pipeline:
    path: Path
    project_dir: Path
    target: TargetSpec
    checks: dict[str, Check]  # in file order
    stages: dict[str, Stage]
    advisories: Path | None
    store_url: str | None = None
    baseline_runs: int = 5
    baseline_window_days: float | None = None
    notify: NotifySpec = field(default_factory=NotifySpec)

    def stage(self, name: str) -> Stage:
        try:
            return self.stages[name]
        except KeyError:
            known = ", ".join(self.stages)
            raise ConfigError(self.path, "stages", f"no stage {name!r} (stages: {known})") from None


def load_pipeline(path: Path | str) -> Pipeline:
    """Read and validate a pipeline file; raise ConfigError naming file and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "pipeline file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"TOML syntax error: {exc}") from exc
    return parse_pipeline(raw, path)


def parse_pipeline(raw: dict[str, Any], path: Path) -> Pipeline:
    try:
        spec = PipelineFile.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, raw, path) from None
    checks = {entry.id: _check(entry, i, path) for i, entry in enumerate(spec.checks)}
    ids = [entry.id for entry in spec.checks]
    for dup in (i for i in ids if ids.count(i) > 1):
        raise ConfigError(path, f"checks[{dup}].id", f"duplicate check id {dup!r}")
    for check in checks.values():
        for dep in check.dependencies:
            if dep not in checks:
                raise ConfigError(
                    path, f"checks[{check.id}].dependencies", f"unknown dependency {dep!r}"
                )
    cycle = find_cycle({c.id: c.dependencies for c in checks.values()})
    if cycle:
        raise ConfigError(
            path, f"checks[{cycle[0]}].dependencies", "dependency cycle " + " -> ".join(cycle)
        )
    stages = {name: _stage(name, s, checks, spec.stages, path) for name, s in spec.stages.items()}
    mirror = None
    if spec.advisories.mirror:
        mirror = (path.parent / spec.advisories.mirror).resolve()
    return Pipeline(
        path,
        path.parent.resolve(),
        spec.target,
        checks,
        stages,
        mirror,
        store_url=spec.store.url,
        baseline_runs=spec.baseline.runs,
        baseline_window_days=spec.baseline.window_days,
        notify=spec.notify,
    )


def _check(entry: CheckEntry, index: int, path: Path) -> Check:
    kind = KINDS.get(entry.kind)
    if kind is None:
        known = ", ".join(sorted(KINDS))
        raise ConfigError(
            path, f"checks[{entry.id}].kind", f"unknown kind {entry.kind!r} (known: {known})"
        )
    try:
        settings = kind.settings_model.model_validate(entry.settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        where = f"checks[{entry.id}].settings" + (f".{key}" if key else "")
        raise ConfigError(path, where, _message(first)) from None
    return Check(
        id=entry.id,
        title=entry.title or entry.id,
        kind=entry.kind,
        priority=entry.priority,
        dependencies=tuple(entry.dependencies),
        timeout=entry.timeout,
        settings=settings,
        estimate_s=entry.estimate,
    )


def _stage(
    name: str,
    spec: StageSpec,
    checks: dict[str, Check],
    all_stages: dict[str, StageSpec],
    path: Path,
) -> Stage:
    key = f"stages.{name}"
    selected = tuple(spec.checks) if spec.checks is not None else tuple(checks)
    for cid in selected:
        if cid not in checks:
            raise ConfigError(path, f"{key}.checks", f"unknown check {cid!r}")
        for dep in checks[cid].dependencies:
            if dep not in selected:
                raise ConfigError(
                    path,
                    f"{key}.checks",
                    f"check {cid!r} depends on {dep!r}, which this stage does not include",
                )
    for i, cond in enumerate(spec.conditions):
        if cond.check not in selected:
            raise ConfigError(
                path,
                f"{key}.conditions[{i}].check",
                f"check {cond.check!r} is not part of stage {name!r}",
            )
    if spec.requires is not None and spec.requires not in all_stages:
        raise ConfigError(path, f"{key}.requires", f"unknown stage {spec.requires!r}")
    return Stage(
        name,
        selected,
        tuple(spec.conditions),
        spec.requires,
        approval=spec.approval,
        hooks=spec.hooks,
        canary=spec.canary,
    )


def _config_error(exc: ValidationError, raw: dict[str, Any], path: Path) -> ConfigError:
    first = exc.errors()[0]
    return ConfigError(path, _key(first["loc"], raw), _message(first))


def _key(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    """('checks', 2, 'kind') -> 'checks[unit-tests].kind' when the entry has an id."""
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            entry = node[part] if isinstance(node, list) and part < len(node) else None
            ident = entry.get("id") if isinstance(entry, dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{ident if ident else part}]"]
        else:
            parts.append(str(part))
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (
                node[part]
                if isinstance(node, list) and isinstance(part, int) and part < len(node)
                else None
            )
        )
    return ".".join(parts)


def _message(error: Any) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "extra_forbidden":
        return "unknown key"
    inp = error.get("input")
    if error["type"] != "value_error" and not isinstance(inp, dict | list):
        return f"{msg} (got {inp!r})"
    return msg


def resolve_config_path(config: Path | str | None, cwd: Path | None = None) -> Path:
    """``--config`` if given, else ``neuroerp-ci.toml`` in the working directory."""
    if config is not None:
        return Path(config)
    return (cwd or Path.cwd()) / DEFAULT_FILE
