"""The environment fingerprint of a run: what a timing depends on besides the code.

Recorded with every run so a person can tell why two runs differ (another machine, another
Python, another tool version). The host name is hashed: the store may be shared, and the
fingerprint only needs to tell hosts apart, not name them.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from neuroerp_ci.model import StageReport

_HOST_SALT = b"neuroerp-ci host:"


def environment_fingerprint(tool_versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """This process's environment as a JSON-ready object.

    >>> sorted(environment_fingerprint())  # doctest: +NORMALIZE_WHITESPACE
    ['cpu_count', 'host', 'machine', 'neuroerp_ci', 'platform', 'python',
     'python_implementation', 'tools']
    """
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count() or 0,
        "host": hashed_hostname(),
        "neuroerp_ci": _own_version(),
        "tools": dict(sorted((tool_versions or {}).items())),
    }


def hashed_hostname(name: str | None = None) -> str:
    """16 hex digits of a salted SHA-256 of the host name: stable, and not the name."""
    host = socket.gethostname() if name is None else name
    return hashlib.sha256(_HOST_SALT + host.encode("utf-8")).hexdigest()[:16]


def report_tool_versions(report: StageReport) -> dict[str, str]:
    """Tool name -> version over all checks of a report; differing versions are joined."""
    seen: dict[str, set[str]] = {}
    for result in report.checks:
        for tool, version in result.tool_versions.items():
            seen.setdefault(tool, set()).add(version)
    return {tool: " | ".join(sorted(versions)) for tool, versions in sorted(seen.items())}


def with_tool_versions(fingerprint: Mapping[str, Any], report: StageReport) -> dict[str, Any]:
    """``fingerprint`` with the tool versions the report's checks saw merged into ``tools``."""
    merged = dict(fingerprint)
    tools = dict(merged.get("tools") or {})
    tools.update(report_tool_versions(report))
    merged["tools"] = dict(sorted(tools.items()))
    return merged


def _own_version() -> str:
    try:
        return metadata.version("neuroerp-ci")
    except metadata.PackageNotFoundError:
        return "unknown"
