"""Whether a Prefect server is configured, read the way Prefect 3 reads ``PREFECT_API_URL``,
without importing Prefect (that alone costs 1.5 s, more than a refused stage may take).

Prefect's sources, highest first: the environment, ``.env`` in the working directory,
``prefect.toml`` (``[api] url``), ``pyproject.toml`` (``[tool.prefect.api] url``), then the
active profile (``PREFECT_PROFILE`` or the file's ``active``) of the profiles file
(``PREFECT_PROFILES_PATH``, the same three files' ``profiles_path``, ``$PREFECT_HOME``, or
``~/.prefect/profiles.toml``). An integration test compares the answer with Prefect's own.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_URL = "PREFECT_API_URL"
_TEST_MODES = ("PREFECT_TESTING_UNIT_TEST_MODE", "PREFECT_TESTING_TEST_MODE")


def configured_api_url(environ: Mapping[str, str], cwd: Path) -> str | None:
    """The Prefect API URL a Prefect client would use here, or None (a temporary server)."""
    dotenv = _dotenv(cwd / ".env")
    prefect_toml = _toml(cwd / "prefect.toml")
    tool = _table(_toml(cwd / "pyproject.toml"), "tool", "prefect")
    for value in (
        environ.get(_URL),
        dotenv.get(_URL),
        _table(prefect_toml, "api").get("url"),
        _table(tool, "api").get("url"),
    ):
        if value is not None:
            return str(value) or None
    if any(_truthy(environ.get(mode)) for mode in _TEST_MODES):
        return None  # Prefect then reads only its bundled profiles (none has a URL)
    profiles = _toml(_profiles_path(environ, cwd, dotenv, prefect_toml, tool))
    name = environ.get("PREFECT_PROFILE") or profiles.get("active")
    profile = _table(profiles, "profiles", str(name)) if name else {}
    value = profile.get(_URL)
    return (str(value) or None) if value is not None else None


def _profiles_path(
    environ: Mapping[str, str],
    cwd: Path,
    dotenv: Mapping[str, str],
    prefect_toml: Mapping[str, Any],
    tool: Mapping[str, Any],
) -> Path:
    for value in (
        environ.get("PREFECT_PROFILES_PATH"),
        dotenv.get("PREFECT_PROFILES_PATH"),
        prefect_toml.get("profiles_path"),
        tool.get("profiles_path"),
    ):
        if value:
            return Path(str(value)).expanduser()
    home = environ.get("PREFECT_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".prefect") / "profiles.toml"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables; a missing or unreadable file is none (Prefect warns, goes on)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _table(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        inner = data.get(key)
        data = inner if isinstance(inner, dict) else {}
    return data


def _dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (``export``, quotes and comments allowed)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, str] = {}
    for line in lines:
        line = line.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) > 1:
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[key.strip()] = value
    return found
