"""Running git in a test's own repository (identity set, never a shell, bounded in time)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """``git args`` in ``repo``; its stdout, stripped. A failing command fails the test."""
    done = subprocess.run(  # noqa: S603 - fixed argument list
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c",
         "commit.gpgsign=false", *args],
        cwd=repo, capture_output=True, text=True, check=True, timeout=60,
    )
    return done.stdout.strip()
