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

import difflib
import math
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neuroerp_ci.checks import KINDS, Check
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.dag import find_cycle
from neuroerp_ci.errors import ConfigError, TargetError
from neuroerp_ci.hosts import LOOPBACK_HOSTS, allowed_set, ensure_allowed, http_url_problem
from neuroerp_ci.model import FindingSeverity, Priority, Severity
from neuroerp_ci.placeholders import PLACEHOLDERS, describe_known, placeholder_names
from neuroerp_ci.secrets import ENV_NAME, SecretsSpec, references
from neuroerp_ci.stage_rules import ApprovalSpec, CanarySpec, HooksSpec, LockSpec, NotifySpec

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
            # when the runner expands it (neuroerp_ci.target.resolve_target).
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
    # production rollout (the ``rollout`` flow only): see neuroerp_ci.stage_rules
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
    """Validate a parsed pipeline file. Every step is linear in the file's size."""
    _refuse_non_finite(raw, path)
    try:
        spec = PipelineFile.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, raw, path) from None
    seen: set[str] = set()
    for entry in spec.checks:
        if entry.id in seen:
            raise ConfigError(path, f"checks[{entry.id}].id", f"duplicate check id {entry.id!r}")
        seen.add(entry.id)
    checks = {entry.id: _check(entry, i, path) for i, entry in enumerate(spec.checks)}
    _refuse_unknown_placeholders(raw, path)
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
    names = {c.id: KINDS[c.kind].metric_names(c.settings) for c in checks.values()}
    opted_out = {entry.id for entry in spec.checks if not entry.default_conditions}
    stages = {
        name: _stage(name, s, checks, spec.stages, path, names, opted_out)
        for name, s in spec.stages.items()
    }
    mirrors = spec.advisories.mirror or []
    mirror = tuple(
        (path.parent / m).resolve() for m in ([mirrors] if isinstance(mirrors, str) else mirrors)
    )
    pipeline = Pipeline(
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
        secrets=spec.secrets,
    )
    references(pipeline)  # a malformed or misplaced {env:...}/{secret:...} fails here
    return pipeline


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
        key, problem = _explain(exc, entry.settings)
        where = f"checks[{entry.id}].settings" + (f".{key}" if key else "")
        raise ConfigError(path, where, problem) from None
    check = Check(
        id=entry.id,
        title=entry.title or entry.id,
        kind=entry.kind,
        priority=entry.priority,
        dependencies=tuple(entry.dependencies),
        timeout=entry.timeout,
        settings=settings,
        estimate_s=entry.estimate,
        env=dict(entry.env),
    )
    for name, value in entry.env.items():
        used = [p for p in ("{base_url}", "{port}") if p in value]
        if used and not kind.needs_target_for(check):
            raise ConfigError(
                path,
                f"checks[{entry.id}].env.{name}",
                f"{used[0]} is the target's: only for a check that uses the target"
                " (settings uses_target = true)",
            )
    return check


def _stage(
    name: str,
    spec: StageSpec,
    checks: dict[str, Check],
    all_stages: dict[str, StageSpec],
    path: Path,
    names: dict[str, MetricNames],
    opted_out: set[str],
) -> Stage:
    key = f"stages.{name}"
    selected = tuple(spec.checks) if spec.checks is not None else tuple(checks)
    included: set[str] = set()
    for cid in selected:
        if cid not in checks:
            raise ConfigError(path, f"{key}.checks", f"unknown check {cid!r}")
        if cid in included:
            raise ConfigError(path, f"{key}.checks", f"check {cid!r} is listed twice")
        included.add(cid)
    for cid in selected:
        for dep in checks[cid].dependencies:
            if dep not in included:
                raise ConfigError(
                    path,
                    f"{key}.checks",
                    f"check {cid!r} depends on {dep!r}, which this stage does not include",
                )
    for i, cond in enumerate(spec.conditions):
        where = f"{key}.conditions[{i}]"
        if cond.check not in included:
            raise ConfigError(
                path, f"{where}.check", f"check {cond.check!r} is not part of stage {name!r}"
            )
        _refuse_unmeasurable(cond, checks[cond.check], names[cond.check], path, where)
    if spec.requires is not None and spec.requires not in all_stages:
        raise ConfigError(path, f"{key}.requires", f"unknown stage {spec.requires!r}")
    defaults: tuple[ConditionSpec, ...] = ()
    if spec.default_conditions:
        conditioned = {cond.check for cond in spec.conditions}
        defaults = tuple(
            ConditionSpec.model_validate({"check": cid, **default})
            for cid in selected
            if cid not in conditioned and cid not in opted_out
            for default in KINDS[checks[cid].kind].default_conditions(checks[cid].settings)
        )
    return Stage(
        name,
        selected,
        tuple(spec.conditions),
        spec.requires,
        approval=spec.approval,
        hooks=spec.hooks,
        canary=spec.canary,
        lock=spec.lock,
        defaults=defaults,
    )


def _refuse_unmeasurable(
    cond: ConditionSpec, check: Check, names: MetricNames, path: Path, where: str
) -> None:
    """A condition on a metric (or findings) its check can never produce would only ever
    report missing data (or, for findings, pass on nothing): refuse it now."""
    if cond.metric is not None and not names.produces(cond.metric):
        raise ConfigError(path, f"{where}.metric", names.problem(cond.metric, check.id, check.kind))
    if cond.findings is not None and not names.findings:
        raise ConfigError(
            path,
            f"{where}.findings",
            f"check {check.id!r} ({check.kind}) reports no findings; limit one of its metrics"
            f" instead: {names.describe()}",
        )


# --- placeholders and numbers anywhere in the file --------------------------------------------

_ALL = frozenset(PLACEHOLDERS)
# Where placeholders are replaced outside the check kinds' own settings (those: each kind's
# ``placeholders``), and which: see target.py, rollout.py and notify.py.
_TARGET_PLACEHOLDERS = {
    "base_url": frozenset({"python", "port", "project"}),
    "health_url": _ALL,
    "start": _ALL,
    "env": _ALL,
    "python": frozenset({"python"}),
    "setup": frozenset({"python", "project"}),
}
_CHECK_ENV_PLACEHOLDERS = _ALL  # {base_url} and {port} only for a check that uses the target
_NOTIFY_PLACEHOLDERS = frozenset({"stage"})
_HOOK_PLACEHOLDERS = {
    "argv": frozenset({"python", "project"}),
    "env": frozenset({"python", "project"}),
}

Loc = tuple[int | str, ...]


def _leaves(node: Any, loc: Loc = ()) -> Iterator[tuple[Loc, Any]]:
    """Every scalar of the parsed TOML document with its location, in document order."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _leaves(value, (*loc, name))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*loc, i))
    else:
        yield loc, node


def _refuse_non_finite(raw: dict[str, Any], path: Path) -> None:
    """TOML has ``inf`` and ``nan``; no limit, timeout or setting means anything with them."""
    for loc, value in _leaves(raw):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(path, _key(loc, raw), f"must be a finite number (got {value})")


def _placeholders_of(loc: Loc, raw: dict[str, Any]) -> frozenset[str] | None:
    """The placeholders replaced in the value at ``loc``; None where none are."""
    head = [p for p in loc if isinstance(p, str)]
    if loc[:1] == ("target",) and len(loc) >= 2:
        return _TARGET_PLACEHOLDERS.get(str(loc[1]))
    if loc[:1] == ("checks",) and len(loc) >= 4 and loc[2] == "env":
        return _CHECK_ENV_PLACEHOLDERS
    if loc[:1] == ("checks",) and len(loc) >= 4 and loc[2] == "settings":
        entry = raw["checks"][loc[1]]
        kind = KINDS.get(str(entry.get("kind")))
        return kind.placeholders.get(str(loc[3])) if kind else None
    if len(head) >= 5 and head[0] == "stages" and head[2] == "hooks":
        return _HOOK_PLACEHOLDERS.get(head[4])
    if tuple(head) == ("notify", "metrics_file"):
        return _NOTIFY_PLACEHOLDERS
    return None


def _refuse_unknown_placeholders(raw: dict[str, Any], path: Path) -> None:
    """A ``{word}`` that is no placeholder of its field would stay in the value as written."""
    for loc, value in _leaves(raw):
        if not isinstance(value, str) or "{" not in value:
            continue
        words = placeholder_names(value)
        if not words:
            continue
        known = _placeholders_of(loc, raw)
        if known is None:
            # Elsewhere braces are text (SQL, a JSON body), except in a URL or path, where a
            # placeholder someone expected to be replaced would make it invalid.
            misplaced = next((w for w in words if w in _ALL), None)
            if misplaced is not None and str(loc[-1]).endswith(("url", "path", "cwd")):
                raise ConfigError(
                    path,
                    _key(loc, raw),
                    f"{{{misplaced}}} is not replaced in this field (placeholders work in"
                    " target base_url, health_url, start, env, python and setup, a check's"
                    " env, command argv and env, database url, hook argv and env)",
                )
            continue
        unknown = next((w for w in words if w not in known), None)
        if unknown is None:
            continue
        here = describe_known(sorted(known))
        if unknown in _ALL:
            problem = f"{{{unknown}}} is not replaced in this field (only {here})"
        else:
            close = difflib.get_close_matches(unknown, sorted(known), n=1, cutoff=0.6)
            problem = f"unknown placeholder {{{unknown}}}" + (
                f"; did you mean {{{close[0]}}}?" if close else ""
            )
            problem += f" (known here: {here}"
            if known is not _NOTIFY_PLACEHOLDERS:  # notify replaces {stage} only, no escape
                problem += f"; write {{{{{unknown}}}}} for a literal {{{unknown}}}"
            problem += ")"
        raise ConfigError(path, _key(loc, raw), problem)


# --- pydantic's errors in the user's words ----------------------------------------------------

_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _config_error(exc: ValidationError, raw: dict[str, Any], path: Path) -> ConfigError:
    key, problem = _explain(exc, raw)
    return ConfigError(path, key, problem)


def _explain(exc: ValidationError, raw: dict[str, Any]) -> tuple[str, str]:
    """The key of the first error and what is wrong there, in one line.

    A value that fits no member of a union (``FindingSeverity | "any"``) gives one error per
    member, each at the field plus a tag like ``str-enum[FindingSeverity]``: they are merged
    into one message listing everything allowed.
    """
    errors = exc.errors()
    keys = [_real_loc(e["loc"], raw, e["type"]) for e in errors]
    first = keys[0]
    same = [e for e, k in zip(errors, keys, strict=True) if k == first]
    return _key(first, raw), _message(same if len(same) > 1 else same[:1])


def _real_loc(loc: Loc, raw: Any, error_type: str) -> Loc:
    """``loc`` without pydantic's union tags: the path in the user's document."""
    real: list[int | str] = []
    node = raw
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            node = node[part]
        elif error_type == "missing" and isinstance(node, dict) and i == len(loc) - 1:
            node = None  # the missing key itself
        else:
            continue  # a union member's tag
        real.append(part)
    return tuple(real)


def _key(loc: Loc, raw: dict[str, Any]) -> str:
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


def _message(errors: list[Any]) -> str:
    """One error (or the merged errors of a union's members) as one plain line."""
    first = errors[0]
    kind = first["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if len(errors) == 1 and kind in ("value_error", "assertion_error"):
        return str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    wanted: list[str] = []
    values: list[str] = []
    for error in errors:
        words, allowed = _expected(error)
        if allowed:
            values.extend(v for v in allowed if v not in values)
        elif words and words not in wanted:
            wanted.append(words)
    if values:
        wanted.append(f"one of {', '.join(values)}" if len(values) > 1 else repr(values[0]))
    text = ("must be " + " or ".join(wanted)) if wanted else _plain(first)
    return text + _got(first.get("input"))


def _expected(error: Any) -> tuple[str, list[str]]:
    """What one error asked for: words (``a whole number``) or allowed values."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("enum", "literal_error"):
        return "", _QUOTED.findall(str(ctx.get("expected", "")))
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind], []
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        bound = ctx.get(name)
        shown = f"{bound:g}" if isinstance(bound, float) else str(bound)
        return f"{words} {shown}", []
    return "", []


def _plain(error: Any) -> str:
    """Pydantic's message without its ``Input should be`` phrasing."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("too_short", "too_long"):
        count = ctx.get("min_length" if kind == "too_short" else "max_length")
        entries = "entry" if count == 1 else "entries"
        return f"must have at {'least' if kind == 'too_short' else 'most'} {count} {entries}"
    if kind == "string_too_short":
        count = ctx.get("min_length")
        return "must not be empty" if count == 1 else f"must have at least {count} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    return msg.replace("Input should be", "must be").replace("Input ", "the value ")


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return " (got a table)"
    if isinstance(value, list):
        return " (got a list)"
    return f" (got {value!r})"


def resolve_config_path(config: Path | str | None, cwd: Path | None = None) -> Path:
    """``--config`` if given, else ``neuroerp-ci.toml`` in the working directory."""
    if config is not None:
        return Path(config)
    return (cwd or Path.cwd()) / DEFAULT_FILE
