"""The bundled demo target: a small ERP-like service (FastAPI + SQLite) with a prebuilt
front end, its own test suites, a locust profile and a pipeline file.

The project ships as package data under ``neuroerp_ci/demo/project``; :func:`write_demo`
copies it somewhere writable, where it is run from (it is never installed)::

    from pathlib import Path
    from neuroerp_ci.demo import DEMO_PIPELINE, write_demo

    project = write_demo(Path("neuroerp-demo"))
    pipeline_file = project / DEMO_PIPELINE
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from neuroerp_ci.errors import UsageError

DEMO_PIPELINE = "neuroerp-ci.toml"
DEMO_WAIVERS = "waivers.toml"
WAIVER_DAYS = 60  # how far ahead the written demo's waivers end (at most 90 are allowed)
_EXPIRES = re.compile(r"^expires = \d{4}-\d{2}-\d{2}$", re.MULTILINE)

# Left behind when the template itself was run or tested in a source checkout.
_SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".neuroerp-ci", "data"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".sqlite3", ".sqlite3-wal", ".sqlite3-shm")
_SKIP_FILES = frozenset({".coverage", "coverage.json"})


def template() -> Traversable:
    """The demo project inside the installed package."""
    return files("neuroerp_ci.demo") / "project"


def write_demo(dest: Path) -> Path:
    """Copy the demo project into ``dest`` (absent or an empty directory) and return it.

    Raises :class:`~neuroerp_ci.errors.UsageError` when ``dest`` is a file or a non-empty
    directory, so nothing of the user's is ever overwritten.
    """
    dest = Path(dest)
    if dest.exists():
        if not dest.is_dir():
            raise UsageError(f"cannot write the demo to {dest}: it is a file")
        if any(dest.iterdir()):
            raise UsageError(f"cannot write the demo to {dest}: the directory is not empty")
    source = template()
    if not source.is_dir():
        raise UsageError(f"the demo template is missing from the installed package ({source})")
    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(source, dest)
    _refresh_waivers(dest / DEMO_WAIVERS)
    return dest


def _refresh_waivers(path: Path) -> None:
    """Every waiver of the written demo ends ``WAIVER_DAYS`` from today: a waiver must end,
    and the template's dates would have passed by the time someone runs it."""
    ends = (datetime.now(UTC).date() + timedelta(days=WAIVER_DAYS)).isoformat()
    path.write_text(_EXPIRES.sub(f"expires = {ends}", path.read_text("utf-8")), "utf-8")


def _copy_tree(source: Traversable, dest: Path) -> None:
    for item in source.iterdir():
        if item.is_dir():
            if item.name in _SKIP_DIRS:
                continue
            target = dest / item.name
            target.mkdir()
            _copy_tree(item, target)
        elif item.name not in _SKIP_FILES and not item.name.endswith(_SKIP_SUFFIXES):
            (dest / item.name).write_bytes(item.read_bytes())
