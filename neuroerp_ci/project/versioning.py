"""What version a verdict is about: the full commit SHA, plus the working tree when it is dirty.

A clean checkout is its full SHA. A dirty one is ``<sha>+dirty.<hash>``, where the hash is the
git tree of the whole working tree (tracked changes and untracked files that are not ignored),
so two different dirty trees are two versions and the same tree is one. neuroerp-ci's own
folder never counts (:data:`STATE_DIR` carries a ``.gitignore`` of its own, and is excluded
here even without it). A version the user names is resolved to the same form: a SHA prefix,
tag or branch to the full SHA, or refused when git cannot tell which commit it is.

Example::

    version = detect_version(Path("."))
    version.id      # '3f9a2c1e…40 hex…+dirty.5d41402abc4b'
    version.source  # 'git HEAD with local changes'
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from neuroerp_ci.errors import ToolError, UsageError
from neuroerp_ci.support.state_dir import STATE_DIR
from neuroerp_ci.support.tooling import run_tool

UNVERSIONED = "unversioned"
DIRTY_MARK = "+dirty."
_TREE_CHARS = 12
_GIT_TIMEOUT_S = 60.0
_HEX = re.compile(r"[0-9a-f]{4,40}")
_DIRTY = re.compile(r"([0-9a-f]{40})\+dirty\.([0-9a-f]{12})")


@dataclass(frozen=True)
class Version:
    """One version under test, and how it was found."""

    id: str  # what the history and promotion match exactly
    sha: str | None  # the full commit SHA, when the project is a git checkout
    tree: str | None  # the working tree's hash when it differs from the commit
    source: str  # e.g. "git HEAD", "git HEAD with local changes", "--version 3f9a2c1"

    @property
    def short(self) -> str:
        """A form for people: 12 characters of the SHA (and the tree), else the id."""
        if self.sha is None:
            return self.id
        return self.sha[:12] + (f"{DIRTY_MARK}{self.tree[:8]}" if self.tree else "")


def detect_version(project_dir: Path) -> Version:
    """The checkout's version: full SHA, ``+dirty.<tree hash>`` when it has local changes."""
    top = _git_top(project_dir)
    if top is None:
        return Version(UNVERSIONED, None, None, "not a git checkout")
    head = _git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head is None:
        return Version(UNVERSIONED, None, None, "git checkout without a commit")
    tree = _dirty_tree(top, head)
    if tree is None:
        return Version(head, head, None, "git HEAD")
    return Version(f"{head}{DIRTY_MARK}{tree}", head, tree, "git HEAD with local changes")


def resolve_version(project_dir: Path, given: str | None) -> Version:
    """The version the user named (or the checkout's when none), in its exact form.

    In a git checkout a name must resolve to one commit: a SHA prefix, a tag or a branch
    becomes the full SHA; an ambiguous or unknown name is a :class:`UsageError`. A dirty
    version (``<sha>+dirty.<hash>``) is taken as written. Outside git any label is kept.
    """
    if given is None or not given.strip():
        return detect_version(project_dir)
    given = given.strip()
    top = _git_top(project_dir)
    if top is None:
        return Version(given, None, None, f"--version {given} (not a git checkout)")
    dirty = _DIRTY.fullmatch(given)
    if dirty:
        return Version(given, dirty.group(1), dirty.group(2), f"--version {given}")
    if given.startswith("-"):
        raise UsageError(f"--version {given!r}: not a commit")
    sha = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{given}^{{commit}}")
    if sha is None:
        ambiguous = _HEX.fullmatch(given.lower()) is not None and _is_ambiguous(top, given)
        why = "is ambiguous: give more characters" if ambiguous else "names no commit here"
        raise UsageError(f"--version {given}: {why} (in {top})")
    return Version(sha, sha, None, f"--version {given}")


def holds(checkout: Version, wanted: Version) -> bool:
    """Whether the checkout is exactly the version wanted (commit and tree)."""
    return checkout.id == wanted.id


def _git_top(project_dir: Path) -> Path | None:
    """The checkout holding ``project_dir``; None when there is none, or when the checkout
    ignores the folder (the demo written into a clone, say): its commit is not this code."""
    out = _git(project_dir, "rev-parse", "--show-toplevel")
    if not out:
        return None
    try:
        ignored = run_tool(
            ["git", "check-ignore", "-q", "--", str(project_dir.resolve())],
            cwd=project_dir,
            timeout=_GIT_TIMEOUT_S,
            ok_codes=None,
        )
    except ToolError:
        return None
    return None if ignored.returncode == 0 else Path(out)


def _dirty_tree(top: Path, head: str) -> str | None:
    """The working tree's git tree hash when it differs from HEAD's tree, else None.

    A scratch index (a copy of the real one, so unchanged files cost nothing) takes every
    file that is not ignored; ``git write-tree`` names the result. The real index is never
    touched.
    """
    head_tree = _git(top, "rev-parse", f"{head}^{{tree}}")
    git_dir = _git(top, "rev-parse", "--absolute-git-dir")
    if head_tree is None or git_dir is None:
        raise ToolError(f"git cannot read the commit tree in {top}")
    with tempfile.TemporaryDirectory(prefix="neuroerp-ci-index-") as scratch:
        index = Path(scratch) / "index"
        real = Path(git_dir) / "index"
        if real.is_file():
            shutil.copyfile(real, index)
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        # Our own folder, and bytecode caches (written by whatever imports the code, never
        # source): neither makes a tree another version.
        excludes = [
            ":(exclude,top,glob)**/__pycache__/**",
            ":(exclude,top,glob)**/*.py[co]",
        ]
        # git add refuses (exit 1) a pathspec naming an ignored path: a project that ignores
        # our folder already keeps it out.
        if not _ignored(top, STATE_DIR):
            excludes.insert(0, f":(exclude,top){STATE_DIR}")
        run_tool(
            ["git", "add", "--all", "--", ".", *excludes],
            cwd=top,
            timeout=_GIT_TIMEOUT_S,
            env=env,
        )
        tree = run_tool(["git", "write-tree"], cwd=top, timeout=_GIT_TIMEOUT_S, env=env)
    written = tree.stdout.strip()
    return None if written == head_tree else written[:_TREE_CHARS]


def _ignored(top: Path, name: str) -> bool:
    """Whether git ignores ``name`` (relative to the top of the work tree)."""
    run = run_tool(
        ["git", "check-ignore", "--quiet", "--", name],
        cwd=top,
        timeout=_GIT_TIMEOUT_S,
        ok_codes=None,
    )
    return run.returncode == 0


def _is_ambiguous(top: Path, prefix: str) -> bool:
    try:
        run = run_tool(
            ["git", "rev-parse", "--disambiguate=" + prefix],
            cwd=top,
            timeout=_GIT_TIMEOUT_S,
            ok_codes=None,
        )
    except ToolError:
        return False
    return len(run.stdout.split()) > 1


def _git(cwd: Path, *args: str) -> str | None:
    """``git args`` stdout, stripped; None when git is missing or says no."""
    try:
        run = run_tool(["git", *args], cwd=cwd, timeout=_GIT_TIMEOUT_S, ok_codes=None)
    except ToolError:
        return None
    out = run.stdout.strip()
    return out if run.returncode == 0 and out else None
