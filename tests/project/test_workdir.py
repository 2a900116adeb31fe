"""The scratch copy of a project (``target.workdir = "scratch"``)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from neuroerp_ci.errors import SetupError
from neuroerp_ci.project.workdir import SCRATCH_PREFIX, copy_project, remove_tree, scratch_copy
from tests.git_repo import git


def files_under(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
    )


def test_plain_folder_is_copied_without_state_venvs_and_caches(tmp_path: Path) -> None:
    project = tmp_path / "p"
    for name in ("app.py", "data/app.db", ".neuroerp-ci/history.sqlite3", ".venv/bin/python",
                 "venv/lib/x.py", "pkg/__pycache__/m.pyc", "pkg/m.py", ".env"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(name)
    os.chmod(project / "app.py", 0o755)
    copy = tmp_path / "copy"
    copy_project(project, copy)
    assert files_under(copy) == [".env", "app.py", "data/app.db", "pkg/m.py"]
    assert (copy / "data" / "app.db").read_text() == "data/app.db"
    assert stat.S_IMODE((copy / "app.py").stat().st_mode) == 0o755


@pytest.mark.integration
def test_git_checkout_copies_tracked_and_untracked_not_ignored(tmp_path: Path) -> None:
    project = tmp_path / "repo" / "service"  # the pipeline file may live in a sub-folder
    project.mkdir(parents=True)
    (project / ".gitignore").write_text("*.db\nbuild/\n")
    (project / "app.py").write_text("v1")
    (project / "gone.py").write_text("deleted on disk")
    (tmp_path / "repo" / "outside.txt").write_text("not the project's")
    git(tmp_path / "repo", "init", "-q")
    git(tmp_path / "repo", "add", ".")
    git(tmp_path / "repo", "commit", "-qm", "init")
    (project / "app.py").write_text("v2, not committed")
    (project / "gone.py").unlink()
    (project / "new.py").write_text("untracked")
    (project / "local.db").write_text("ignored data")
    (project / "build").mkdir()
    (project / "build" / "out.js").write_text("ignored build")
    copy = tmp_path / "copy"
    copy_project(project, copy)
    assert files_under(copy) == [".gitignore", "app.py", "new.py"]
    assert (copy / "app.py").read_text() == "v2, not committed"  # what is on disk is tested


def test_links_into_the_project_lead_into_the_copy(tmp_path: Path) -> None:
    project, outside = tmp_path / "p", tmp_path / "shared"
    (project / "data").mkdir(parents=True)
    outside.mkdir()
    (project / "data" / "app.db").write_text("dev data")
    (outside / "big.bin").write_text("shared")
    (project / "abs.db").symlink_to(project / "data" / "app.db")  # absolute, into the project
    (project / "rel.db").symlink_to("data/app.db")
    (project / "data-dir").symlink_to(project / "data", target_is_directory=True)
    (project / "shared").symlink_to("../shared")  # relative, out of the project
    copy = tmp_path / "scratch" / "p"
    copy_project(project, copy)
    for link in ("abs.db", "rel.db", "data-dir"):
        assert (copy / link).resolve().is_relative_to(copy.resolve()), link
    (copy / "abs.db").write_text("wiped")
    assert (project / "data" / "app.db").read_text() == "dev data"
    assert (copy / "shared").resolve() == outside.resolve()  # outside: still there


def test_sockets_are_skipped(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "a.txt").write_text("a")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(project / "db.sock"))
        copy_project(project, tmp_path / "copy")
    assert files_under(tmp_path / "copy") == ["a.txt"]


def test_a_file_that_cannot_be_copied_is_a_setup_error_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "secret.key").write_text("x")

    def refuse(src: object, dst: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(shutil, "copy2", refuse)  # as an unreadable file does (but for root)
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kwargs: str) -> str:
        made.append(Path(real_mkdtemp(**kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(SetupError, match=r"cannot copy secret\.key .*Permission denied"), (
        scratch_copy(project)
    ):
        pass
    assert made and not made[0].exists()


def test_scratch_copy_is_removed_even_when_made_read_only(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "app.py").write_text("x")
    with pytest.raises(RuntimeError), scratch_copy(project) as copy:
        assert copy.name == "p" and copy.parent.name.startswith(SCRATCH_PREFIX)
        (copy / "locked").mkdir()
        (copy / "locked" / "f").write_text("x")
        os.chmod(copy / "locked", 0o500)
        os.chmod(copy, 0o500)
        raise RuntimeError("the run failed")
    assert not copy.parent.exists()


def test_remove_tree_of_nothing_is_fine(tmp_path: Path) -> None:
    remove_tree(tmp_path / "absent")
