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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neuroerp_ci.checks import KINDS, Check
from neuroerp_ci.dag import find_cycle
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import FindingSeverity, Priority, Severity

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


class ConditionSpec(_Strict):
    """One gate condition: a metric threshold or a limit on findings."""

    check: str
    metric: str | None = None
    max: float | None = None
    min: float | None = None
    findings: FindingSeverity | Literal["any"] | None = None
    severity: Severity | None = None  # default: from the check's priority
    on_missing: Policy = "fail"
    on_error: Policy = "fail"

    @model_validator(mode="after")
    def _one_form(self) -> ConditionSpec:
        if (self.metric is None) == (self.findings is None):
            raise ValueError("give exactly one of 'metric' or 'findings'")
        if self.metric is not None and self.max is None and self.min is None:
            raise ValueError(f"metric {self.metric!r} needs 'max' or 'min'")
        if self.findings is not None:
            if self.max is None or self.min is not None:
                raise ValueError("a findings limit takes 'max' (a count), not 'min'")
            if self.max < 0 or self.max != int(self.max):
                raise ValueError(f"findings 'max' must be a whole number >= 0, got {self.max}")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min} is greater than 'max' {self.max}")
        return self


class StageSpec(_Strict):
    checks: list[str] | None = None  # default: every check in the file
    conditions: list[ConditionSpec] = Field(default_factory=list)
    requires: str | None = None  # a stage that must have passed for the same version


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
    checks: list[CheckEntry] = Field(min_length=1)
    stages: dict[str, StageSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Stage:
    name: str
    checks: tuple[str, ...]  # in file order
    conditions: tuple[ConditionSpec, ...]
    requires: str | None


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
    return Stage(name, selected, tuple(spec.conditions), spec.requires)


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
