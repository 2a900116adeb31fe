"""Skipping unchanged checks, as a user sees it: ``neuroerp-ci run`` (server-less) twice on a
small project of files with real pytest and bandit, then one file changed, then
``--no-cache``. The unit twin is tests/run/test_cache.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import run_cli

PIPELINE = f"""\
[target]
name = "tiny"
python = "{sys.executable}"

[[checks]]
id = "unit"
kind = "pytest"
settings = {{ paths = ["tests"] }}

[[checks]]
id = "sast"
kind = "bandit"
settings = {{ paths = ["pkg"] }}

[stages.dev]
conditions = [{{ check = "unit", metric = "failed", max = 0 }}]
"""


def write_project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_add.py").write_text(
        "from pkg import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / "neuroerp-ci.toml").write_text(PIPELINE)
    return root


def run(root: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    out = root / "out"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_API", "PYTEST_", "PYTHONPATH"))
    }
    done = run_cli(
        ["run", "dev", "--output", str(out), "--version", "v1", *extra], env, cwd=root
    )
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.stdout, {c["id"]: c for c in report["checks"]} | {"": report}


@pytest.mark.integration
def test_unchanged_checks_are_skipped_and_a_changed_test_file_reruns_only_the_tests(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "tiny")
    _, first = run(root)
    assert first[""]["verdict"] == "PASS", first
    assert first["unit"]["cached_from"] is None and first["unit"]["cache_key"]
    first_run = first[""]["run_id"]

    console, second = run(root)
    assert second["unit"]["cached_from"] == first_run
    assert second["sast"]["cached_from"] == first_run
    assert f"skipped     0.0 s  unchanged since run {first_run}" in console
    assert second["unit"]["metrics"] == first["unit"]["metrics"]

    # A failing test: pytest runs again (and the gate fails); bandit does not read tests/.
    (root / "tests" / "test_add.py").write_text(
        "from pkg import add\n\ndef test_add():\n    assert add(1, 2) == 4\n"
    )
    _, third = run(root)
    assert third["unit"]["cached_from"] is None
    assert third["unit"]["metrics"]["failed"]["value"] == 1
    assert third["sast"]["cached_from"] == first_run
    assert third[""]["verdict"] == "FAIL"

    # The fix, then --no-cache: both tools run.
    (root / "tests" / "test_add.py").write_text(
        "from pkg import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    _, fourth = run(root, "--no-cache")
    assert fourth["unit"]["cached_from"] is None and fourth["sast"]["cached_from"] is None
    assert fourth[""]["verdict"] == "PASS"
