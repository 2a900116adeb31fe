"""What a verdict is about, through the real command line: the project's own interpreter and
packages, the full commit, a tree left clean, and promotion between stages of one commit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.git_repo import git
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration

PIPELINE = """
[target]
name = "shop"

[[checks]]
id = "unit"
kind = "pytest"
settings = { paths = ["tests"] }

[stages.development]

[stages.staging]
requires = "development"
"""

# The project's own test: it runs on the project's venv, whose packaging is not ours.
PROJECT_TEST = """
import importlib.metadata, sys
from pathlib import Path

def test_runs_on_the_projects_own_interpreter_and_packages():
    venv = Path(__file__).resolve().parents[1] / ".venv"
    assert Path(sys.prefix).resolve() == venv.resolve()
    assert importlib.metadata.version("packaging") == "23.2"
"""



@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real git repository with its own virtual environment (pytest, packaging 23.2)."""
    repo = tmp_path_factory.mktemp("shop")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_env.py").write_text(PROJECT_TEST)
    (repo / "neuroerp-ci.toml").write_text(PIPELINE)
    (repo / ".gitignore").write_text(".venv/\n")
    subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "venv", str(repo / ".venv")], check=True, timeout=300
    )
    subprocess.run(  # noqa: S603 - fixed argument list
        [str(repo / ".venv" / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", "pytest", "packaging==23.2"],
        check=True, timeout=600, capture_output=True,
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "shop")
    return repo


def test_the_project_venv_runs_the_tests_and_the_tree_stays_clean(
    shop: Path, stage_env: dict[str, str], tmp_path: Path
) -> None:
    head = git(shop, "rev-parse", "HEAD")
    dev = run_cli(["run", "development", "--config", str(shop / "neuroerp-ci.toml")],
                  stage_env, cwd=shop)
    assert dev.returncode == 0, dev.stdout + dev.stderr
    assert f"for version {head}" in dev.stdout  # the full SHA, never a short spelling
    assert git(shop, "status", "--porcelain") == ""  # our runs, history, coverage: ignored
    runs = sorted((shop / ".neuroerp-ci" / "runs").iterdir())
    report = json.loads((runs[-1] / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["version"] == head
    tested = report["tested"]
    assert tested["sha"] == head and tested["source"] == "git HEAD"
    assert tested["python"] == str(shop / ".venv" / "bin" / "python")
    assert tested["python_source"] == "project .venv"
    unit = next(c for c in report["checks"] if c["id"] == "unit")
    assert unit["tool_versions"]["python"].endswith(f" at {shop / '.venv' / 'bin' / 'python'}")
    assert "Tested: commit" in (runs[-1] / "report.md").read_text()

    # Staging for the same commit, named by a prefix: development passed for it.
    staging = run_cli(["promote", head[:10], "--to", "staging",
                       "--config", str(shop / "neuroerp-ci.toml")], stage_env, cwd=shop)
    assert staging.returncode == 0, staging.stdout + staging.stderr
    assert "refused" not in staging.stdout

    # A dirty tree is another version: staging for it is refused (development never saw it).
    (shop / "tests" / "test_more.py").write_text("def test_more():\n    pass\n")
    try:
        refused = run_cli(["run", "staging", "--config", str(shop / "neuroerp-ci.toml")],
                          stage_env, cwd=shop)
    finally:
        (shop / "tests" / "test_more.py").unlink()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{head}+dirty." in refused.stdout and "refused" in refused.stdout
