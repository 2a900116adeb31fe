"""``target.workdir = "scratch"``: the stage runs in a copy of the project, removed afterwards.

A setup that initialises a database, a migration, a test suite that writes files: in the copy
they cannot touch the developer's own data. What is copied is what the version under test is
made of (:mod:`neuroerp_ci.project.versioning` hashes the same files):

- in a git checkout, ``git ls-files --cached --others --exclude-standard``: tracked files as
  they are on disk, plus untracked files that are not ignored. Ignored files (local databases,
  ``.env``, build outputs) and ``.git`` are not copied: ``target.setup`` makes what is needed;
- elsewhere, every file except :data:`NOT_COPIED` (neuroerp-ci's own folder, virtual
  environments, which the interpreter is used from where it is, and byte-code caches).

Symbolic links are copied as links; one that leads into the project is pointed at the same
place in the copy (an absolute link would otherwise reach the original), one that leads out of
it still leads there: data outside the project is not protected. Sockets and pipes are skipped.

Example::

    with scratch_copy(Path("/srv/erp")) as copy:
        ...  # copy == /tmp/neuroerp-ci-scratch-xxxx/erp, gone after the block
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from neuroerp_ci.errors import SetupError, ToolError
from neuroerp_ci.project.interpreter import VENV_DIRS
from neuroerp_ci.support.state_dir import STATE_DIR
from neuroerp_ci.support.tooling import run_tool

NOT_COPIED = frozenset({".git", STATE_DIR, *VENV_DIRS, "__pycache__"})
SCRATCH_PREFIX = "neuroerp-ci-scratch-"
_GIT_TIMEOUT_S = 120.0


@contextmanager
def scratch_copy(project_dir: Path) -> Iterator[Path]:
    """A copy of ``project_dir`` (same folder name) in a new temporary folder, removed when
    the block is left however it is left; SetupError when the project cannot be copied."""
    try:
        scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    except OSError as exc:
        raise SetupError(f"cannot make a scratch folder: {exc.strerror or exc}") from exc
    try:
        copy = scratch / project_dir.resolve().name
        copy_project(project_dir, copy)
        yield copy
    finally:
        remove_tree(scratch)


def copy_project(project_dir: Path, copy: Path) -> int:
    """Copy the project's files (see the module docstring) to ``copy``; how many entries."""
    source = project_dir.resolve()
    count = 0
    relative = Path(".")
    try:
        copy.mkdir(parents=True)
        for relative in project_files(source):
            count += _copy_entry(source, copy, relative)
    except (OSError, shutil.Error) as exc:
        raise SetupError(f"cannot copy {relative} to a scratch folder: {exc}") from exc
    return count


def project_files(project_dir: Path) -> list[Path]:
    """The project's files to copy, relative to it."""
    listed = _git_files(project_dir)
    if listed is None:
        return list(_walk(project_dir))
    # A tracked file deleted on disk is still listed; neuroerp-ci's folder never counts.
    return [
        p for p in listed
        if p.parts and p.parts[0] != STATE_DIR and os.path.lexists(project_dir / p)
    ]


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything in it, folders a setup made read-only included."""
    if not os.path.lexists(path):
        return
    with suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    for folder, dirs, _files in os.walk(path):  # top-down: opened before it is entered
        for name in dirs:
            with suppress(OSError):
                child = os.path.join(folder, name)
                if not os.path.islink(child):
                    os.chmod(child, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)


def _git_files(project_dir: Path) -> list[Path] | None:
    """Tracked plus untracked-not-ignored files under ``project_dir``; None outside git."""
    try:
        run = run_tool(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=project_dir,
            timeout=_GIT_TIMEOUT_S,
            ok_codes=None,
        )
    except ToolError:  # git is not installed: copy like any folder
        return None
    if run.returncode != 0:  # not a git checkout
        return None
    # A file in both the index and the work tree (a merge conflict) is listed more than once.
    return [Path(name) for name in dict.fromkeys(run.stdout.split("\0")) if name]


def _walk(project_dir: Path) -> Iterable[Path]:
    for folder, dirs, files in os.walk(project_dir):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in NOT_COPIED]
        # A link to a folder is copied as a link, not walked into.
        for name in [d for d in dirs if (here / d).is_symlink()]:
            dirs.remove(name)
            files.append(name)
        for name in files:
            if name not in NOT_COPIED:
                yield (here / name).relative_to(project_dir)


def _copy_entry(source: Path, copy: Path, relative: Path) -> int:
    src, dst = source / relative, copy / relative
    dst.parent.mkdir(parents=True, exist_ok=True)
    mode = os.lstat(src).st_mode
    if stat.S_ISLNK(mode):
        os.symlink(_link_target(src, source, copy, dst), dst)
    elif stat.S_ISDIR(mode):  # a git submodule: its files, without its .git
        shutil.copytree(
            src, dst, symlinks=True, ignore=shutil.ignore_patterns(*NOT_COPIED),
            dirs_exist_ok=True,
        )
    elif stat.S_ISREG(mode):
        shutil.copy2(src, dst, follow_symlinks=False)
    else:
        return 0  # a socket, pipe or device: nothing a copy could hold
    return 1


def _link_target(src: Path, source: Path, copy: Path, dst: Path) -> str:
    """Where the copied link points: into the copy when the original led into the project
    (written relative or absolute, through another link or not), else where it led."""
    written = os.readlink(src)
    lexical = Path(os.path.normpath(src.parent / written))
    for candidate in (lexical, Path(os.path.realpath(src))):
        if candidate.is_relative_to(source):
            return os.path.relpath(copy / candidate.relative_to(source), dst.parent)
    return str(lexical)  # outside the project: the same place, from wherever the copy is
