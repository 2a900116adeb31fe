"""Testing the version that was named: a scratch worktree of an older commit."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.errors import UsageError
from neuroerp_ci.model import Verdict
from neuroerp_ci.project.versioning import detect_version, resolve_version
from neuroerp_ci.run.checkout import needs_scratch, pipeline_for_version, scratch_checkout
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.store import open_store, store_url
from tests.git_repo import git

PIPELINE = f"""
[target]
python = "{sys.executable}"

[[checks]]
id = "unit-tests"
kind = "pytest"
settings = {{ paths = ["tests"] }}

[stages.development]
conditions = [{{ check = "unit-tests", metric = "failed", max = 0 }}]
"""



@pytest.fixture
def history_repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository whose older commit has a failing test and whose HEAD fixes it."""
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "neuroerp-ci.toml").write_text(PIPELINE)
    (repo / "tests" / "test_price.py").write_text(
        "def test_price_includes_vat():\n    assert round(100 * 1.19) == 120\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "broken")
    old = git(repo, "rev-parse", "HEAD")
    (repo / "tests" / "test_price.py").write_text(
        "def test_price_includes_vat():\n    assert round(100 * 1.19) == 119\n"
    )
    git(repo, "commit", "-q", "-am", "fixed")
    return repo, old, git(repo, "rev-parse", "HEAD")


def run_version(repo: Path, version: str, run_id: str) -> Verdict:
    pipeline = load_pipeline(repo / "neuroerp-ci.toml")
    wanted = resolve_version(repo, version)
    with pipeline_for_version(pipeline, wanted) as tested, ThreadPoolExecutor(2) as pool:
        outcome = run_stage(
            tested,
            RunOptions(stage="development", version=wanted.id, run_id=run_id,
                       output_dir=repo / ".neuroerp-ci" / "runs" / run_id),
            ThreadExecutor(pool),
            store=open_store(store_url(tested.store_url, tested.project_dir)),
        )
    return outcome.report.verdict


@pytest.mark.integration
def test_an_older_commit_named_by_prefix_is_tested_not_the_checkout(
    history_repo: tuple[Path, str, str],
) -> None:
    repo, old, head = history_repo
    assert run_version(repo, old[:8], "old") is Verdict.FAIL  # the broken commit's test ran
    assert run_version(repo, head, "head") is Verdict.PASS
    with open_store(store_url(None, repo)) as store:
        records = {r.run_id: r for r in store.runs(stage="development", target="target")}
    assert (records["old"].version, records["head"].version) == (old, head)
    assert git(repo, "worktree", "list").count("\n") == 0  # the scratch worktree is gone
    assert git(repo, "status", "--porcelain") == ""  # nothing of ours dirties the checkout


def test_a_dirty_version_this_checkout_does_not_hold_is_refused(
    history_repo: tuple[Path, str, str],
) -> None:
    repo, old, _ = history_repo
    (repo / "tests" / "test_price.py").write_text("def test_x():\n    pass\n")
    dirty = detect_version(repo)
    assert needs_scratch(repo, dirty) is False  # the tree it names is here
    (repo / "tests" / "test_price.py").write_text("def test_y():\n    pass\n")
    with pytest.raises(UsageError, match="working tree with local changes"):
        needs_scratch(repo, resolve_version(repo, dirty.id))
    assert needs_scratch(repo, resolve_version(repo, old)) is True


def test_the_scratch_worktree_is_removed_however_the_run_ends(
    history_repo: tuple[Path, str, str],
) -> None:
    repo, old, _ = history_repo
    with pytest.raises(RuntimeError), scratch_checkout(repo, resolve_version(repo, old)) as tree:
        assert "== 120" in (tree / "tests" / "test_price.py").read_text()
        raise RuntimeError("the stage broke")
    assert not tree.exists()
    assert git(repo, "worktree", "list").count("\n") == 0
