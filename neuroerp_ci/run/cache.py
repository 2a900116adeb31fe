"""Skip what did not change: a check's cache key, and the passing run whose result it reuses.

A kind that declares its inputs (:meth:`~neuroerp_ci.checks.interface.CheckKind.cache_inputs`:
a test suite, a scanner) gets a key, the SHA-256 of everything its result depends on:

- the kind, the check's id, settings and ``env`` as written, and the values of its ``env``
  and of the ``PYTHON*``/``PYTEST*``/``PIP_*`` variables it runs with (hashed, never stored);
- neuroerp-ci's version (a kind's code decides what a result says);
- every distribution installed in the project's interpreter and in neuroerp-ci's own (the
  tools and their plugins, their versions), and both interpreters' versions;
- the content of the project files the kind reads (its ``files`` patterns, over every file
  of the tree but version control, caches, virtual environments and neuroerp-ci's state);
- whatever else it names (an advisory mirror's content, the day).

Before such a check runs, the history store is asked for the newest finished, passing (PASS
or WARN), not invalidated run of the same target that recorded the same key for the same
check; its result (as the check produced it, before waivers and baseline marks) comes back,
marked ``cached_from``, and the gates judge it again with today's conditions, waivers and
baselines. Kinds that measure a live target declare nothing and always run. A key that cannot
be built (an unreadable file, a listing that fails) means the check runs: never a stale reuse.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from functools import cache
from importlib import metadata
from pathlib import Path

from neuroerp_ci import __version__
from neuroerp_ci.checks import KINDS, Check, CheckContext
from neuroerp_ci.checks._environment import installed_packages
from neuroerp_ci.checks._tool_versions import site_folders
from neuroerp_ci.errors import NeuroErpCiError
from neuroerp_ci.model import CheckResult, CheckStatus
from neuroerp_ci.reports.json_report import check_result_from_json, check_result_to_json
from neuroerp_ci.store import HistoryStore, StoreError
from neuroerp_ci.support.stat_memo import StatMemo, stat_key

KEY_FORMAT = "neuroerp-ci-cache/1"  # part of every key: a new format never meets an old key
# Never inputs: version control, caches, virtual environments, build output, our own state.
SKIPPED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".neuroerp-ci", ".venv", "venv", ".tox", ".nox", "__pycache__",
        ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules",
        "htmlcov", ".eggs",
    }
)  # fmt: skip
SKIPPED_FILES = ("*.pyc", "*.pyo", ".coverage", ".coverage.*", ".DS_Store")
ENV_PREFIXES = ("PYTHON", "PYTEST", "PIP_")
MAX_FILES = 50_000  # a tree larger than this is not hashed: the check just runs
PACKAGES_TIMEOUT_S = 60.0


@dataclass
class CheckCache:
    """One run's cache: keys are built on demand, the tree hashed once, and the results of
    this run's checks kept (``fresh``) for the store to record with the run."""

    store: HistoryStore | None
    target: str
    enabled: bool = True
    # Project files that are never inputs (patterns): the pipeline file (its settings are in
    # the key, its conditions are judged afresh) and the file's ``[cache] ignore``.
    ignored: tuple[str, ...] = ()
    fresh: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (key, result)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _trees: dict[Path, dict[str, str] | None] = field(default_factory=dict)
    _packages: dict[str, str] = field(default_factory=dict)

    def key(self, check: Check, ctx: CheckContext) -> str | None:
        """The check's cache key, or None: not cacheable, or its inputs cannot be read."""
        if not self._may_cache(check):
            return None
        try:
            inputs = KINDS[check.kind].cache_inputs(check, ctx)
            if inputs is None:
                return None
            tree = self._tree(ctx.project_dir)
            if tree is None:
                return None
            files = {
                p: h
                for p, h in tree.items()
                if _matches(p, inputs.files) and not _matches(p, self.ignored)
            }
            interpreters = {
                "project": self._interpreter(ctx.python, ctx),
                "own": _own_packages(),
            }
        except (NeuroErpCiError, OSError):
            return None
        names = sorted({*check.env, *(n for n in ctx.env if n.startswith(ENV_PREFIXES))})
        material = {
            "format": KEY_FORMAT,
            "neuroerp_ci": __version__,
            "check": check.id,
            "kind": check.kind,
            "settings": check.settings.model_dump(mode="json"),
            "env_written": dict(sorted(check.env.items())),
            "env": {n: _digest(ctx.env.get(n, "")) for n in names},
            "interpreters": interpreters,
            "files": files,
            "values": dict(sorted(inputs.values.items())),
        }
        return _digest(json.dumps(material, sort_keys=True, default=str))

    def prepare(self, checks: Sequence[Check], root: Path) -> None:
        """Hash ``root``'s files now, before any check runs (and writes), when a check may
        be cached: every key of the run describes the same tree."""
        if any(self._may_cache(c) for c in checks):
            self._tree(root)

    def _may_cache(self, check: Check) -> bool:
        """Not turned off, and not measuring the running target."""
        return self.enabled and check.cache and not KINDS[check.kind].needs_target_for(check)

    def reuse(self, check: Check, key: str) -> CheckResult | None:
        """The result a passing run recorded for ``key``, marked as reused; else None."""
        if self.store is None:
            return None
        try:
            found = self.store.cached_result(self.target, check.id, key)
        except StoreError:
            return None  # the run goes on without the cache: the check runs
        if found is None:
            return None
        run_id, text = found
        try:
            result = check_result_from_json(text)
        except ValueError:
            return None
        if result.check_id != check.id or result.status is not CheckStatus.OK:
            return None
        return replace(result, cache_key=key, cached_from=run_id, duration_s=0.0)

    def remember(self, check: Check, key: str, result: CheckResult) -> CheckResult:
        """Keep a result this run produced for the store (only one that completed)."""
        result = replace(result, cache_key=key)
        if result.status is CheckStatus.OK:
            with self._lock:
                self.fresh[check.id] = (key, check_result_to_json(result))
        return result

    def entries(self) -> dict[str, tuple[str, str]]:
        """The results this run produced and may lend (check id -> key, result JSON)."""
        with self._lock:
            return dict(self.fresh)

    def _tree(self, root: Path) -> dict[str, str] | None:
        with self._lock:
            if root not in self._trees:
                self._trees[root] = tree_digests(root)
            return self._trees[root]

    def _interpreter(self, python: str, ctx: CheckContext) -> str:
        with self._lock:
            if python in self._packages:
                return self._packages[python]
        digest = interpreter_digest(python, ctx)
        with self._lock:
            self._packages[python] = digest
        return digest


def tree_digests(root: Path) -> dict[str, str] | None:
    """``relative posix path -> SHA-256`` of every file of the tree (a symlink: of its target
    text); None when a file cannot be read or the tree is larger than :data:`MAX_FILES`."""
    found: dict[str, str] = {}
    for path in _files(root):
        if len(found) >= MAX_FILES:
            return None
        rel = path.relative_to(root).as_posix()
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = _file_digest(path)
        except OSError:
            return None
    return found


def _files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not any(fnmatchcase(name, p) for p in SKIPPED_FILES):
                yield Path(folder) / name


def _raise(exc: OSError) -> None:
    raise exc  # an unreadable folder: no key (a tree we could not see is no evidence)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatchcase(rel if "/" in p else name, p) for p in patterns)


def interpreter_digest(python: str, ctx: CheckContext) -> str:
    """What an interpreter has installed (names and versions) and its version, hashed;
    memoised per interpreter by the state of its site-packages folders."""

    def listing() -> str:
        env = installed_packages(python, ctx.project_dir, ctx.env, PACKAGES_TIMEOUT_S)
        names = sorted(f"{p.name}=={p.version}" for p in (*env.packages, *env.project))
        return _digest(json.dumps([env.python_version, env.executable, names]))

    folders = site_folders(Path(python), ctx.env)
    key = stat_key(Path(python), *folders) if folders else None
    return StatMemo("interpreter-packages").get(key, listing) if key else listing()


@cache
def _own_packages() -> str:
    """neuroerp-ci's own interpreter (where bandit, pip-audit and detect-secrets are found)."""
    names = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    return _digest(json.dumps([sys.version, sys.executable, names]))


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
