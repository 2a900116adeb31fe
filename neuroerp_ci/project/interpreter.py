"""Which Python the project's checks run on, and saying so.

``target.python`` in the pipeline file names it (``{python}`` is neuroerp-ci's own). When it
is not set, a project-local virtual environment (``.venv``, then ``venv``) is used if there
is one; otherwise the checks run on neuroerp-ci's own interpreter, and the stage gets a WARN
outcome that says so and how to change it: the project's tests would otherwise silently run
on neuroerp-ci's packages (its Flask, say, from locust's dependencies).

Example::

    interpreter = find_interpreter(pipeline.target.python, python_set, project_dir)
    interpreter.describe()  # '/srv/app/.venv/bin/python (Python 3.11.7, project .venv)'
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.model import Outcome, OutcomeStatus, Severity
from neuroerp_ci.support.placeholders import expand
from neuroerp_ci.support.tooling import run_tool

INTERPRETER_CHECK = "interpreter"  # the ``check`` of the outcome that warns about it
VENV_DIRS = (".venv", "venv")
_VERSION_CODE = "import platform, sys; print(platform.python_version(), sys.prefix)"


@dataclass(frozen=True)
class Interpreter:
    """The interpreter the checks run on."""

    path: str
    version: str  # e.g. "3.11.7"
    prefix: str  # its sys.prefix: the environment whose packages the tests import
    source: str  # "target.python", "project .venv", "neuroerp-ci's own interpreter"
    tools_own_by_default: bool  # nobody chose it: target.python unset and no project venv

    def describe(self) -> str:
        return f"{self.path} (Python {self.version}, {self.source})"


def find_interpreter(configured: str, is_set: bool, project_dir: Path) -> Interpreter:
    """The interpreter for ``target.python`` (``is_set``: written in the pipeline file)."""
    if is_set:
        path, source = expand(configured, {"python": sys.executable}), "target.python"
        if path == sys.executable:
            source = "target.python: neuroerp-ci's own interpreter"
        return _probe(_absolute(path, project_dir), source, tools_own=False)
    for folder in VENV_DIRS:
        candidate = project_dir / folder / "bin" / "python"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return _probe(str(candidate), f"project {folder}", tools_own=False)
    return _probe(sys.executable, "neuroerp-ci's own interpreter", tools_own=True)


def interpreter_outcome(interpreter: Interpreter) -> Outcome | None:
    """A WARN when the checks fell back to neuroerp-ci's interpreter without anyone asking."""
    if not interpreter.tools_own_by_default:
        return None
    return Outcome(
        check=INTERPRETER_CHECK,
        condition="the project's own interpreter",
        status=OutcomeStatus.WARN,
        severity=Severity.WARNING,
        value=None,
        target="target.python or a project .venv",
        reason=(
            f"checks ran on neuroerp-ci's own interpreter {interpreter.describe()}, with its "
            "packages, not the project's: set [target] python = \"path/to/python\" (or "
            "\"{python}\" to accept this one), or create the project's .venv"
        ),
    )


def _absolute(path: str, project_dir: Path) -> str:
    if os.sep in path and not os.path.isabs(path):
        return str((project_dir / path).absolute())
    return path


def _probe(path: str, source: str, *, tools_own: bool) -> Interpreter:
    try:
        run = run_tool([path, "-c", _VERSION_CODE], cwd=Path.cwd(), timeout=60)
    except ToolError as exc:
        raise TargetError(f"target.python {path}: cannot run it: {exc}") from exc
    version, _, prefix = run.stdout.strip().partition(" ")
    if not version:
        raise TargetError(f"target.python {path}: printed no version ({run.tail(200)})")
    return Interpreter(path, version, prefix, source, tools_own)
