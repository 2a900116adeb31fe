"""neuroerp-ci's own folder in a project (``.neuroerp-ci/``): runs, history, tool state.

It carries its own ``.gitignore``, as pytest's cache folder does, so nothing neuroerp-ci
writes ever makes the project's tree dirty.
"""

from __future__ import annotations

from pathlib import Path

STATE_DIR = ".neuroerp-ci"
_IGNORE = "# written by neuroerp-ci: its runs, history and tool state\n*\n"


def ensure_state_dir(project_dir: Path) -> Path:
    """``<project>/.neuroerp-ci``, created with its ``.gitignore`` if it is not there."""
    folder = project_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_IGNORE, encoding="utf-8")
    return folder
