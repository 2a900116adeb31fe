"""Keeping and reading raw tool outputs, shared by the check kinds that run a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.secrets import redact
from neuroerp_ci.support.tooling import ToolRun, describe


def write_log(path: Path, run: ToolRun) -> Path:
    """Save a run's command line, exit status, stdout and stderr as one text file (redacted:
    the code under test may print its whole environment)."""
    path.write_text(
        redact(
            f"$ {describe(run.argv)}\n# exit {run.returncode}, {run.duration_s:.3f} s\n"
            f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}\n"
        ),
        encoding="utf-8",
        errors="backslashreplace",  # a file name with non-UTF-8 bytes in the command line
    )
    return path


def read_json_file(path: Path, what: str) -> Any:
    """Load a JSON report a tool wrote; a missing or unreadable one is a ToolError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolError(f"{what} wrote no report ({path.name} missing)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"{what} report {path.name} is unreadable: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f"{what} report {path.name} is not valid JSON: {exc}") from exc


def remove_stale(*paths: Path) -> None:
    """Delete outputs of an earlier run so a tool that writes nothing cannot pass on old data."""
    for path in paths:
        path.unlink(missing_ok=True)
