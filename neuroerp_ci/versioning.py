"""The version under test when the user gives none: the project's git SHA."""

from __future__ import annotations

from pathlib import Path

from neuroerp_ci.errors import ToolError
from neuroerp_ci.tooling import run_tool

UNVERSIONED = "unversioned"


def detect_version(project_dir: Path) -> str:
    """``git rev-parse --short HEAD`` (with ``-dirty`` for local changes), else "unversioned"."""
    try:
        sha = run_tool(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_dir, timeout=10)
        status = run_tool(["git", "status", "--porcelain"], cwd=project_dir, timeout=10)
    except ToolError:
        return UNVERSIONED
    return sha.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
