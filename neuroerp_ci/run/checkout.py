"""Test the version that was named: a scratch checkout of exactly that commit.

When the version a user names is not what the project's checkout holds, the stage runs on a
detached ``git worktree`` of that commit in a scratch folder (removed afterwards), so a
verdict is never recorded for a version that was not tested. A dirty version
(``<sha>+dirty.<hash>``) names a working tree that only exists where it was made: it is
refused unless the checkout holds exactly that tree.

Example::

    with scratch_checkout(project_dir, version) as tree:
        ...  # run the stage with the pipeline file under ``tree``
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path

from neuroerp_ci.config import Pipeline, TargetSpec
from neuroerp_ci.errors import ToolError, UsageError
from neuroerp_ci.project.interpreter import VENV_DIRS
from neuroerp_ci.project.versioning import Version, detect_version
from neuroerp_ci.store import store_url
from neuroerp_ci.support.tooling import run_tool

_GIT_TIMEOUT_S = 300.0


def needs_scratch(project_dir: Path, wanted: Version) -> bool:
    """Whether ``wanted`` differs from what the checkout holds (UsageError if untestable)."""
    if wanted.sha is None:
        return False  # not a git checkout: the label names what is here
    held = detect_version(project_dir)
    if held.id == wanted.id:
        return False
    if wanted.tree is not None:
        raise UsageError(
            f"version {wanted.short} is a working tree with local changes that this checkout "
            f"does not hold (it holds {held.short}): a dirty version is tested where it is"
        )
    return True


@contextmanager
def scratch_checkout(project_dir: Path, wanted: Version) -> Iterator[Path]:
    """A detached worktree of ``wanted.sha``; yields the path that matches ``project_dir``."""
    if wanted.sha is None:
        raise UsageError(f"version {wanted.id} is not a commit: nothing to check out")
    top = Path(_git(project_dir, "rev-parse", "--show-toplevel"))
    inside = project_dir.resolve().relative_to(top.resolve())
    scratch = Path(tempfile.mkdtemp(prefix=f"neuroerp-ci-{wanted.sha[:12]}-"))
    tree = scratch / "tree"
    _git(top, "worktree", "add", "--detach", "--quiet", str(tree), wanted.sha)
    try:
        yield tree / inside
    finally:
        with suppress(ToolError):
            _git(top, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(scratch, ignore_errors=True)
        with suppress(ToolError):
            _git(top, "worktree", "prune")


def _git(cwd: Path, *args: str) -> str:
    run = run_tool(["git", *args], cwd=cwd, timeout=_GIT_TIMEOUT_S)
    return run.stdout.strip()


@contextmanager
def pipeline_for_version(pipeline: Pipeline, wanted: Version) -> Iterator[Pipeline]:
    """The pipeline to run for ``wanted``: as loaded when the checkout holds it, else the
    same gate pointed at a scratch checkout of the commit, recording in the same history.

    The gate stays the one in the checkout's pipeline file: naming an older commit cannot
    bring an older, weaker gate with it.
    """
    if not needs_scratch(pipeline.project_dir, wanted):
        yield pipeline
        return
    with scratch_checkout(pipeline.project_dir, wanted) as tree:
        yield replace(
            pipeline,
            project_dir=tree,
            target=_same_interpreter(pipeline, tree),
            store_url=store_url(pipeline.store_url, pipeline.project_dir),
        )


def identity(wanted: Version, pipeline: Pipeline, tested: Pipeline) -> dict[str, str]:
    """How the version was found and where it was tested, for reports and the history."""
    where = (
        "the project checkout"
        if tested.project_dir == pipeline.project_dir
        else f"a scratch worktree of {wanted.short} (the checkout holds another version)"
    )
    found = {"sha": wanted.sha or "", "tree": wanted.tree or "", "source": wanted.source}
    return {**{k: v for k, v in found.items() if v}, "checkout": where}


def _same_interpreter(pipeline: Pipeline, tree: Path) -> TargetSpec:
    """The target with its interpreter pinned to the checkout's: a project venv is not in
    git, so the scratch tree would otherwise lose it (and a relative path would miss)."""
    target = pipeline.target
    if "python" in target.model_fields_set:
        configured = target.python
        if os.sep in configured and not os.path.isabs(configured) and "{" not in configured:
            configured = str((pipeline.project_dir / configured).absolute())
        return target.model_copy(update={"python": configured})
    for folder in VENV_DIRS:
        candidate = pipeline.project_dir / folder / "bin" / "python"
        if candidate.is_file() and not (tree / folder).exists():
            return target.model_copy(update={"python": str(candidate)})
    return target
