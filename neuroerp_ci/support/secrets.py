"""Secrets: which values are secret, keeping them out of child environments, redacting them.

Which values are secret (:func:`~neuroerp_ci.config.secret_refs.collect_secrets`, once at the
start of every run):

- the webhook URL: ``[notify] webhook_env`` (default ``NEUROERP_CI_WEBHOOK_URL``) or the
  Prefect Secret block ``[notify] webhook_secret_block``; Prefect's ``PREFECT_API_KEY`` and
  ``PREFECT_API_AUTH_STRING``;
- the value of every environment variable named in ``[secrets] env``;
- every value the pipeline file *references* instead of writing it: ``{env:NAME}`` (an
  environment variable) or ``{secret:BLOCK}`` (a Prefect Secret block). References are
  expanded only in the places listed in :data:`REFERENCE_PLACES`; anywhere else they are a
  config error, so a literal ``{env:...}`` is never sent anywhere.

Example::

    [secrets]
    env = ["DB_PASSWORD", "PROBE_TOKEN"]     # secret even where nothing references them
    [secrets.grant]                          # the only checks that get a secret in their env
    integration-tests = { DB_PASSWORD = "{env:DB_PASSWORD}" }

    [target]
    env = { DATABASE_URL = "postgresql://erp:{env:DB_PASSWORD}@127.0.0.1/erp" }

Kept out of environments: every check's tools, the target and the hooks get the caller's
environment without the secret variables (by name, and any variable whose value holds a
secret); a check named in ``[secrets] grant`` or with its own ``env``, the target's ``env``
(which the setup commands get too) and a hook's ``env`` get exactly what they reference.

Redacted (:data:`SECRETS`, one process-wide :class:`Redactor`; a value once registered stays
redacted) where text leaves the process: check results (reasons, findings, metrics,
artifacts), every file under the run folder (tool logs and the tools' own reports, target.log,
hook logs), every report format, the history store, Prefect artifacts, state messages and run
logs (:func:`install_log_redaction`), the console, the webhook body and Prometheus output.
Covered forms of a value: as is, URL-encoded (``quote`` and ``quote_plus``), JSON-escaped,
XML/HTML-escaped, and for a URL also the part before its query. Not covered: base64 or any
other transformation, a value split across lines, a fragment of a value. Values shorter than
:data:`MIN_SECRET_LENGTH` are refused (redacting them would mangle unrelated text).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

MIN_SECRET_LENGTH = 6
WEBHOOK_ENV = "NEUROERP_CI_WEBHOOK_URL"  # the default of ``[notify] webhook_env``
# Always secret: the default webhook variable, and Prefect's own credentials (a check has no
# business with the server the run reports to).
DEFAULT_SECRET_ENV = (WEBHOOK_ENV, "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")
REDACTED = "[REDACTED]"  # no < > & " ' \: safe inside JSON, XML, Markdown and rich markup

# The reference placeholders, for the placeholder expander and its validator: ``{env:NAME}``
# and ``{secret:BLOCK}``. A reference's placeholder key is "env:NAME" / "secret:BLOCK".
REFERENCE_KINDS = ("env", "secret")
REFERENCE = re.compile(r"\{(env|secret):([^{}]*)\}")
REFERENCE_NAME = {
    "env": re.compile(r"[A-Za-z_][A-Za-z0-9_]*"),
    "secret": re.compile(r"[a-z0-9][a-z0-9-]*"),
}
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Where references are expanded: paths into the pipeline file with check ids replaced by the
# check's kind, stage names by "*" and list positions by "[]".
REFERENCE_PLACES = (
    "target/env/*",
    "target/start/[]",
    "target/setup/*",  # argv lists: "[]/[]" would read as a character class
    "checks/env/*",  # a check entry's own env (its settings are under checks/<kind>/)
    "checks/command/argv/[]",
    "checks/command/env/*",
    "checks/database/url",
    "checks/http/endpoints/[]/url",
    "checks/http/endpoints/[]/headers/*",
    "checks/http/endpoints/[]/form/*",
    "checks/http/login/url",
    "checks/http/login/headers/*",
    "checks/http/login/form/*",
    "checks/http/login/body/*",  # the login's json (dumped under its field name)
    "stages/*/hooks/*/argv/[]",
    "stages/*/hooks/*/env/*",
    "secrets/grant/*/*",
)

SecretLoader = Callable[[str], str]
T = TypeVar("T")


class SecretsSpec(BaseModel):
    """``[secrets]``: variables whose values are secret, and checks that may see some."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: list[str] = Field(default_factory=list)
    # check id -> environment variables added for that check only (values may reference)
    grant: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [n for n in value if not re.fullmatch(ENV_NAME, n)]
        if bad:
            raise ValueError(f"not environment variable names: {bad}")
        return value

    @field_validator("grant")
    @classmethod
    def _granted_names(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        bad = [n for env in value.values() for n in env if not re.fullmatch(ENV_NAME, n)]
        if bad:
            raise ValueError(f"not environment variable names: {bad}")
        return value


# --- redaction ------------------------------------------------------------------------------


def encodings(value: str) -> set[str]:
    """The forms of ``value`` that are redacted (see the module docstring)."""
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
        html.escape(value, quote=False).replace('"', "&quot;"),
    }
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.query:
        bare = value.split("?", 1)[0]
        if len(bare) >= MIN_SECRET_LENGTH and parts.path.strip("/"):
            forms.add(bare)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Redactor:
    """A set of secret values and the one way to remove them from text, bytes and data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def add(self, value: str) -> None:
        """Register a secret; a value shorter than MIN_SECRET_LENGTH is a ValueError."""
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"a secret needs at least {MIN_SECRET_LENGTH} characters")
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            forms = sorted({f for v in self._values for f in encodings(v)}, key=len, reverse=True)
            self._text = re.compile("|".join(re.escape(f) for f in forms))
            self._bytes = re.compile(b"|".join(re.escape(f.encode()) for f in forms))

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    def contains(self, text: str) -> bool:
        pattern = self._text
        return pattern is not None and pattern.search(text) is not None

    def redact(self, text: str) -> str:
        pattern = self._text
        return text if pattern is None else pattern.sub(REDACTED, text)

    def redact_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes
        return data if pattern is None else pattern.sub(REDACTED.encode(), data)

    def redact_data(self, obj: T) -> T:
        """A copy of ``obj`` (dataclasses, dicts, lists, tuples, strings) with every string,
        dict keys included, redacted; enums, numbers and everything else as they are."""
        if self._text is None:
            return obj
        redacted: Any = self._walk(obj)
        return redacted  # type: ignore[no-any-return]

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, Enum) or obj is None or isinstance(obj, int | float):
            return obj
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self._walk(k): self._walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v) for v in obj]
        if isinstance(obj, tuple):
            if all(isinstance(v, int | float) for v in obj):  # samples: nothing to redact
                return obj
            return tuple(self._walk(v) for v in obj)
        if is_dataclass(obj) and not isinstance(obj, type):
            changes = {f.name: self._walk(getattr(obj, f.name)) for f in fields(obj) if f.init}
            return replace(obj, **changes)
        return obj

    def redact_file(self, path: Path) -> bool:
        """Rewrite ``path`` (atomically, same mode) if it holds a secret; True if it did."""
        pattern = self._bytes
        if pattern is None or path.is_symlink() or not path.is_file():
            return False
        data = path.read_bytes()
        if pattern.search(data) is None:
            return False
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pattern.sub(REDACTED.encode(), data))
            os.chmod(tmp, path.stat().st_mode & 0o7777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def redact_tree(self, *paths: Path) -> int:
        """Redact every regular file at or under ``paths``; the number of files rewritten."""
        if self._bytes is None:
            return 0
        count = 0
        for path in paths:
            found = path.rglob("*") if path.is_dir() and not path.is_symlink() else [path]
            count += sum(self.redact_file(p) for p in found)
        return count


SECRETS = Redactor()


def register(value: str) -> None:
    SECRETS.add(value)


def redact(text: str) -> str:
    return SECRETS.redact(text)


def redact_data(obj: T) -> T:
    return SECRETS.redact_data(obj)


def redact_tree(*paths: Path) -> int:
    return SECRETS.redact_tree(*paths)


# --- logging --------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Rewrites a log record that shows a secret: message, arguments and traceback."""

    def __init__(self, redactor: Redactor = SECRETS) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor.values:
            return True
        message = record.getMessage()
        if self.redactor.contains(message):
            record.msg, record.args = self.redactor.redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


_FILTER = RedactingFilter()
# Prefect's run loggers feed its API (the database), the root logger's handler the console.
LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "httpx", "httpcore")


def install_log_redaction(names: Iterable[str] = LOGGERS) -> None:
    """Put the redacting filter on these loggers and their handlers (idempotent).

    A logger's filter only sees records logged on it, a handler's those of every child
    logger; Prefect re-creates handlers when it sets up logging, so call this per flow run.
    """
    for name in names:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if _FILTER not in target.filters:
                target.addFilter(_FILTER)


install_log_redaction(("httpx", "httpcore"))


# --- which values are secret ----------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """One ``{env:NAME}`` / ``{secret:BLOCK}`` in the pipeline file, and where."""

    key: str  # as ConfigError shows it, e.g. "checks[db].settings.url"
    kind: str  # "env" or "secret"
    name: str
    owner: str = ""  # who expands it: "target", "check:<id>" (grants too), "stage:<name>"

    @property
    def placeholder(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class RunSecrets:
    """The secrets of one run, resolved; :data:`SECRETS` already redacts them."""

    values: Mapping[str, str] = field(default_factory=dict)  # "env:NAME" -> value
    env_names: frozenset[str] = frozenset()  # variables never passed to a child process
    grants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # check -> env

    def child_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` without the secret variables and without any variable holding a secret."""
        return {k: v for k, v in env.items() if k not in self.env_names and not SECRETS.contains(v)}
