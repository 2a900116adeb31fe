"""The secret references of a pipeline file (``{env:NAME}``, ``{secret:BLOCK}``) and the
secret values of one run: where references may stand, which secrets a run needs, and their
values from the environment or Prefect Secret blocks. Redaction is
:mod:`neuroerp_ci.support.secrets`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from neuroerp_ci.config.pipeline import Pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.support.secrets import (
    DEFAULT_SECRET_ENV,
    MIN_SECRET_LENGTH,
    REFERENCE,
    REFERENCE_NAME,
    REFERENCE_PLACES,
    Reference,
    RunSecrets,
    SecretLoader,
    register,
)


def references(pipeline: Pipeline) -> list[Reference]:
    """Every reference in the pipeline file; a malformed one or one in a place where
    references are not expanded is a ConfigError naming the key."""
    found: list[Reference] = []
    for owner, place, key, text in _strings(pipeline):
        for match in REFERENCE.finditer(text):
            kind, name = match.group(1), match.group(2)
            if not REFERENCE_NAME[kind].fullmatch(name):
                raise ConfigError(pipeline.path, key, f"{match.group(0)}: not a valid {kind} name")
            if not any(fnmatchcase(place, p) for p in REFERENCE_PLACES):
                raise ConfigError(
                    pipeline.path,
                    key,
                    f"{match.group(0)}: secret references are not expanded here (only in "
                    "target.env/start/setup, a check's env, command argv/env, database url, "
                    "http endpoint url/headers/form, http login url/headers/form/json, hook"
                    " argv/env and secrets.grant)",
                )
            found.append(Reference(key, kind, name, owner))
    for check_id in pipeline.secrets.grant:
        if check_id not in pipeline.checks:
            raise ConfigError(pipeline.path, "secrets.grant", f"unknown check {check_id!r}")
    return found


def collect_secrets(
    pipeline: Pipeline,
    env: Mapping[str, str],
    load_secret: SecretLoader | None = None,
    *,
    stage: str | None = None,
    target: bool = True,
    resolve_blocks: bool = True,
) -> RunSecrets:
    """Resolve and register every secret of a run (see the module docstring).

    With ``stage``, only the references that run expands must resolve: those of its checks
    (and their grants), its hooks, and the target's when ``target`` (it is started). Every
    referenced variable is still kept out of child environments and, if set, redacted.

    A needed reference to an unset (or empty) variable, a block that cannot be loaded (or,
    with ``resolve_blocks`` and no ``load_secret``, any block), and a secret shorter than
    :data:`MIN_SECRET_LENGTH` are ConfigErrors naming the key; nothing has run yet.
    """
    needed = _needed(pipeline, stage, target)
    values: dict[str, str] = {}
    names = {*DEFAULT_SECRET_ENV, pipeline.notify.webhook_env, *pipeline.secrets.env}
    for ref in references(pipeline):
        if ref.kind == "env":
            names.add(ref.name)
        if ref.placeholder in values or not needed(ref.owner):
            continue
        if ref.kind == "secret" and not resolve_blocks:
            continue
        value = _resolve(pipeline, ref, env, load_secret)
        _refuse_short(pipeline, ref.key, f"{{{ref.placeholder}}}", value)
        values[ref.placeholder] = value
    for name in pipeline.secrets.env:
        if env.get(name):
            _refuse_short(pipeline, "secrets.env", f"${name}", env[name])
    secret_values = [*values.values(), *(env[n] for n in names if env.get(n))]
    if not env.get(pipeline.notify.webhook_env) and pipeline.notify.webhook_secret_block:
        block = _webhook_block(pipeline.notify.webhook_secret_block, load_secret)
        if block:
            secret_values.append(block)
    for value in secret_values:
        if len(value) >= MIN_SECRET_LENGTH:  # a short webhook "URL" is refused by notify
            register(value)
    grants = {
        check: {k: _expand(v, values) for k, v in granted.items()}
        for check, granted in pipeline.secrets.grant.items()
        if needed(f"check:{check}")
    }
    return RunSecrets(values, frozenset(names), grants)


def _needed(pipeline: Pipeline, stage: str | None, target: bool) -> Callable[[str], bool]:
    """Whether a run of ``stage`` expands the references of an owner."""
    if stage is None:
        return lambda owner: True
    checks = {f"check:{c}" for c in pipeline.stage(stage).checks}

    def needed(owner: str) -> bool:
        if owner == "target":
            return target
        return owner in checks or owner == f"stage:{stage}"

    return needed


def _resolve(
    pipeline: Pipeline, ref: Reference, env: Mapping[str, str], load: SecretLoader | None
) -> str:
    if ref.kind == "env":
        value = env.get(ref.name, "")
        if not value:
            raise ConfigError(pipeline.path, ref.key, f"{{env:{ref.name}}}: ${ref.name} is not set")
        return value
    if load is None:
        raise ConfigError(
            pipeline.path,
            ref.key,
            f"{{secret:{ref.name}}}: Prefect Secret blocks are read only when the stage runs "
            "as a Prefect flow",
        )
    try:
        value = load(ref.name)
    except Exception as exc:  # noqa: BLE001 - any failure to load is one line, no value shown
        raise ConfigError(
            pipeline.path,
            ref.key,
            f"{{secret:{ref.name}}}: cannot load the Prefect Secret block: {type(exc).__name__}",
        ) from None
    if not value:
        raise ConfigError(pipeline.path, ref.key, f"{{secret:{ref.name}}}: the block is empty")
    return value


def _refuse_short(pipeline: Pipeline, key: str, what: str, value: str) -> None:
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(
            pipeline.path,
            key,
            f"{what} is {len(value)} characters long: a secret needs at least "
            f"{MIN_SECRET_LENGTH} (a shorter one cannot be redacted without mangling other text)",
        )


def _webhook_block(name: str, load: SecretLoader | None) -> str:
    if load is None:
        return ""
    try:
        return load(name).strip()
    except Exception:  # noqa: BLE001 - notify reports it when it needs the URL
        return ""


def _expand(text: str, values: Mapping[str, str]) -> str:
    return REFERENCE.sub(lambda m: values.get(f"{m.group(1)}:{m.group(2)}", m.group(0)), text)


def _strings(pipeline: Pipeline) -> Iterator[tuple[str, str, str, str]]:
    """(owner, place pattern, shown key, text) of every string value in the pipeline file."""
    sections: list[tuple[str, list[str], str, Any]] = [
        ("target", ["target"], "target", pipeline.target.model_dump()),
        ("", ["notify"], "notify", pipeline.notify.model_dump()),
        ("", ["secrets", "env"], "secrets.env", pipeline.secrets.env),
        ("", ["store", "url"], "store.url", pipeline.store_url or ""),
    ]
    for c in pipeline.checks.values():
        settings = c.settings.model_dump()
        sections.append((f"check:{c.id}", ["checks", c.kind], f"checks[{c.id}].settings", settings))
        sections.append((f"check:{c.id}", ["checks", "env"], f"checks[{c.id}].env", dict(c.env)))
    for check_id, granted in pipeline.secrets.grant.items():
        where = ["secrets", "grant", check_id]
        sections.append((f"check:{check_id}", where, f"secrets.grant.{check_id}", granted))
    for stage in pipeline.stages.values():
        owner, key = f"stage:{stage.name}", f"stages.{stage.name}"
        for part in ("hooks", "canary", "approval"):
            spec = getattr(stage, part)
            if spec is not None:
                sections.append((owner, ["stages", "*", part], f"{key}.{part}", spec.model_dump()))
        for i, cond in enumerate(stage.conditions):
            where = ["stages", "*", "conditions", "[]"]
            sections.append((owner, where, f"{key}.conditions[{i}]", cond.model_dump()))
    for owner, place, key, data in sections:
        for pattern, shown, text in _walk(data, place, key):
            yield owner, pattern, shown, text


def _walk(node: Any, place: list[str], key: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(node, str):
        yield "/".join(place), key, node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, [*place, str(k)], f"{key}.{k}")
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _walk(v, [*place, "[]"], f"{key}[{i}]")
