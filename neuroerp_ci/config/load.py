"""Loading the pipeline file: TOML in, a validated :class:`~neuroerp_ci.config.pipeline.Pipeline`
out, or one :class:`~neuroerp_ci.errors.ConfigError` line naming the file, the key and what is
wrong. Everything is checked up front, before anything runs.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from neuroerp_ci.checks import KINDS, Check
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.config.abort import refuse_misplaced_abort
from neuroerp_ci.config.pipeline import (
    DEFAULT_FILE,
    CheckEntry,
    Pipeline,
    PipelineFile,
    Stage,
    StageSpec,
)
from neuroerp_ci.config.secret_refs import references
from neuroerp_ci.dag import find_cycle
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.gates.conditions import ConditionSpec
from neuroerp_ci.gates.waivers import WaiverSpec, too_far_ahead
from neuroerp_ci.support.placeholders import PLACEHOLDERS, describe_known, placeholder_names


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
        baseline_include=spec.baseline.include,
        notify=spec.notify,
        secrets=spec.secrets,
        waivers=load_waivers(spec, path),
        cache=spec.cache,
    )
    references(pipeline)  # a malformed or misplaced {env:...}/{secret:...} fails here
    return pipeline


def load_waivers(spec: PipelineFile, path: Path) -> tuple[WaiverSpec, ...]:
    """The pipeline file's waivers, then its waivers file's; each one ends at most
    ``max_waiver_days`` from today, and no two share a name."""
    found = [(path, "waivers", w) for w in spec.waivers]
    waivers_file = spec.audit.waivers_file
    if waivers_file is not None:
        file = path.parent / waivers_file
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(path, "audit.waivers_file", f"{waivers_file}: no such file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(file, "", f"cannot read the waivers file: {exc}") from None
        extra = set(raw) - {"waivers"}
        if extra:
            raise ConfigError(file, sorted(extra)[0], "a waivers file holds [[waivers]] only")
        entries = raw.get("waivers", [])
        if not isinstance(entries, list):
            raise ConfigError(file, "waivers", "must be an array of tables ([[waivers]])")
        for index, entry in enumerate(entries):
            try:
                found.append((file, "waivers", WaiverSpec.model_validate(entry)))
            except ValidationError as exc:
                key, problem = _explain(exc, entry if isinstance(entry, dict) else {})
                where = f"waivers[{index}]" + (f".{key}" if key else "")
                raise ConfigError(file, where, problem) from None
    names: set[str] = set()
    for file, key, waiver in found:
        where = f"{key}[{waiver.name}]"
        if waiver.name in names:
            raise ConfigError(file, where, f"two waivers are named {waiver.name!r}: give one an id")
        names.add(waiver.name)
        too_far = too_far_ahead(waiver, spec.audit.max_waiver_days)
        if too_far:
            raise ConfigError(file, f"{where}.expires", too_far)
    return tuple(w for _, _, w in found)


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
        cache=entry.cache,
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
        refuse_misplaced_abort(cond, checks[cond.check], path, where)
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
    if cond.form.subject == "findings" and not names.findings:
        raise ConfigError(
            path,
            f"{where}.{cond.form.keys[0]}",  # the key that named the findings (``findings``)
            f"check {check.id!r} ({check.kind}) reports no findings; limit one of its metrics"
            f" instead: {names.describe()}",
        )
    if cond.form.compares_with_baseline(cond.params) and cond.metric is None and not names.audit:
        raise ConfigError(
            path,
            f"{where}.new",
            f"check {check.id!r} ({check.kind}) is no code audit: its findings are not compared"
            " with the baseline run (new = true applies to bandit, pip-audit, secrets, licenses)",
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
