"""Version identity on real git repositories: full SHA, dirty trees by content, prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuroerp_ci.errors import UsageError
from neuroerp_ci.project.versioning import UNVERSIONED, detect_version, resolve_version
from neuroerp_ci.support.state_dir import STATE_DIR, ensure_state_dir
from tests.git_repo import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "app.py").write_text("print('v1')\n")
    (root / ".gitignore").write_text("*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_a_clean_checkout_is_its_full_sha(repo: Path) -> None:
    version = detect_version(repo)
    assert version.id == git(repo, "rev-parse", "HEAD") and len(version.id) == 40
    assert version.tree is None and version.source == "git HEAD"
    assert version.short == version.id[:12]


def test_our_own_folder_and_ignored_files_never_make_a_tree_dirty(repo: Path) -> None:
    state = ensure_state_dir(repo)
    (state / "runs").mkdir()
    (state / "runs" / "report.json").write_text("{}")
    (repo / "build.log").write_text("ignored by the project")
    assert detect_version(repo).tree is None
    assert git(repo, "status", "--porcelain") == ""  # the folder ignores itself, as pytest's
    (state / ".gitignore").unlink()  # even without its .gitignore it does not count
    assert detect_version(repo).tree is None


def test_a_project_that_ignores_our_folder_itself_still_gets_a_tree(repo: Path) -> None:
    # git add exits 1 on an exclude pathspec that names an ignored path: found on a project
    # whose .gitignore lists .neuroerp-ci/ (a user's first step)
    (repo / ".gitignore").write_text(f"*.log\n{STATE_DIR}/\n")
    git(repo, "commit", "-q", "-am", "ignore the state folder")
    (ensure_state_dir(repo) / "history.sqlite3").write_text("")
    assert detect_version(repo).tree is None
    (repo / "app.py").write_text("print('changed')\n")
    assert detect_version(repo).tree is not None


def test_two_different_dirty_trees_are_two_versions_the_same_tree_one(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / "app.py").write_text("print('failing change')\n")
    first = detect_version(repo)
    assert first.id.startswith(head + "+dirty.") and first.sha == head
    assert detect_version(repo).id == first.id  # the same tree, the same version
    (repo / "app.py").write_text("print('another change')\n")
    second = detect_version(repo)
    assert second.id != first.id
    (repo / "app.py").write_text("print('failing change')\n")
    assert detect_version(repo).id == first.id  # content, not time, decides
    (repo / "new_module.py").write_text("x = 1\n")  # an untracked file is part of the tree
    assert detect_version(repo).id not in (first.id, second.id)
    assert git(repo, "status", "--porcelain").count("\n") == 1  # the real index untouched
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_a_prefix_tag_or_branch_resolves_to_the_full_sha(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1.0")
    for name in (head[:7], head[:12], head, "v1.0", "HEAD"):
        version = resolve_version(repo, name)
        assert version.id == head and version.source == f"--version {name}"
    assert resolve_version(repo, None).id == head


@pytest.mark.parametrize("name", ["deadbeef", "no-such-branch", "-h", "v1..v2"])
def test_a_name_that_is_no_commit_is_refused(repo: Path, name: str) -> None:
    with pytest.raises(UsageError, match="names no commit here|not a commit"):
        resolve_version(repo, name)


def test_a_dirty_version_is_taken_as_written(repo: Path) -> None:
    (repo / "app.py").write_text("changed\n")
    dirty = detect_version(repo)
    assert resolve_version(repo, dirty.id) == type(dirty)(
        dirty.id, dirty.sha, dirty.tree, f"--version {dirty.id}"
    )


def test_outside_git_a_label_is_kept_and_nothing_is_unversioned(tmp_path: Path) -> None:
    assert detect_version(tmp_path).id == UNVERSIONED
    assert resolve_version(tmp_path, "1.4.2").id == "1.4.2"
    assert STATE_DIR == ".neuroerp-ci"


def test_a_folder_the_checkout_ignores_is_not_versioned_by_it(repo: Path) -> None:
    # The demo written into a clone of another repository: that repository's commit is not
    # the code under test.
    (repo / ".gitignore").write_text("*.log\nneuroerp-demo/\n")
    git(repo, "commit", "-q", "-am", "ignore the demo")
    demo = repo / "neuroerp-demo"
    demo.mkdir()
    assert detect_version(demo).id == UNVERSIONED
    assert resolve_version(demo, "test").id == "test"
