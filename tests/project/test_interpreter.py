"""Which interpreter the project's checks run on: target.python, a project venv, or ours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neuroerp_ci.errors import TargetError
from neuroerp_ci.model import OutcomeStatus
from neuroerp_ci.project.interpreter import find_interpreter, interpreter_outcome


@pytest.fixture(scope="module")
def project_with_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")],
        check=True, timeout=120,
    )
    return project


def test_a_project_venv_is_used_when_target_python_is_unset(project_with_venv: Path) -> None:
    found = find_interpreter("{python}", False, project_with_venv)
    assert found.path == str(project_with_venv / ".venv" / "bin" / "python")
    assert Path(found.prefix).resolve() == (project_with_venv / ".venv").resolve()
    assert found.source == "project .venv" and interpreter_outcome(found) is None


def test_target_python_wins_over_a_project_venv(project_with_venv: Path) -> None:
    found = find_interpreter(sys.executable, True, project_with_venv)
    assert found.path == sys.executable and found.source.startswith("target.python")
    relative = find_interpreter(".venv/bin/python", True, project_with_venv)
    assert relative.path == str(project_with_venv / ".venv" / "bin" / "python")


def test_falling_back_to_our_own_interpreter_warns_and_says_how_to_change_it(
    tmp_path: Path,
) -> None:
    found = find_interpreter("{python}", False, tmp_path)
    assert found.path == sys.executable and found.tools_own_by_default
    outcome = interpreter_outcome(found)
    assert outcome is not None and outcome.status is OutcomeStatus.WARN
    assert sys.executable in outcome.reason and "target" in outcome.reason
    assert found.version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_declaring_our_interpreter_is_a_choice_not_a_warning(tmp_path: Path) -> None:
    found = find_interpreter("{python}", True, tmp_path)
    assert found.path == sys.executable and interpreter_outcome(found) is None


def test_an_interpreter_that_cannot_run_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="target.python .*no-such-python"):
        find_interpreter(str(tmp_path / "no-such-python"), True, tmp_path)
