"""Answers worth keeping between runs on one machine, keyed by the files they came from.

What a tool prints for ``--version``, which packages an interpreter has installed, an
advisory mirror's index: each costs a subprocess or a walk over thousands of files, and each
only changes when its files do. :func:`stat_key` names files by path, size, modification time
and inode; :class:`StatMemo` keeps ``key -> JSON value`` in one file per kind of answer under
the user's cache folder (``NEUROERP_CI_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuroerp-ci``, else
``~/.cache/neuroerp-ci``). The memo is an optimisation only: a folder that cannot be read or
written, or a damaged file, means the answer is computed again, never a failed run.

Example::

    memo = StatMemo("interpreter-packages")
    key = stat_key(Path(python), site_packages)
    packages = memo.get(key, lambda: list_packages(python)) if key else list_packages(python)
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

CACHE_DIR_ENV = "NEUROERP_CI_CACHE_DIR"
MAX_ENTRIES = 256  # per memo file: the newest are kept
SETTLE_S = 2.0  # see settled()
T = TypeVar("T")
_lock = threading.Lock()


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder the memo files live in (not created here)."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_DIR_ENV):
        return Path(env[CACHE_DIR_ENV]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "neuroerp-ci"


def stat_key(*paths: Path) -> str | None:
    """The identity of these files as they are now, or None when one cannot be examined
    (then nothing may be memoised: a missing file is no evidence of anything) or was
    modified too recently to tell (:func:`settled`)."""
    parts: list[str] = []
    for path in paths:
        try:
            real = path.resolve(strict=True)
            st = real.stat()
        except (OSError, RuntimeError):
            return None
        if not settled(st.st_mtime_ns):
            return None
        parts.append(f"{real}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    return "|".join(parts)


def settled(mtime_ns: int) -> bool:
    """Whether a file's modification time can tell a later change apart ("racy git"): file
    times tick coarsely (a few ms on ext4, 2 s on FAT), so a file rewritten in place within
    the tick it was examined in keeps its size and time. Only a file last modified
    ``SETTLE_S`` ago or more is evidence; a time in the future (a skewed clock) is none."""
    return mtime_ns <= time.time_ns() - int(SETTLE_S * 1e9)


class StatMemo:
    """One memo file: ``get(key, compute)`` returns the stored value or computes, stores
    and returns it. Values must survive a JSON round trip."""

    def __init__(
        self, name: str, folder: Path | None = None, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._path = (folder or cache_dir()) / f"{name}.json"
        self._max_entries = max_entries  # small for large values (an index per mirror)

    def get(
        self, key: str, compute: Callable[[], T], valid: Callable[[Any], bool] | None = None
    ) -> T:
        """``valid`` refuses a stored value (a damaged or foreign file: computed again) and a
        computed one (a failed answer: returned, never stored)."""
        with _lock:
            entries = self._read()
        if key in entries and (valid is None or valid(entries[key])):
            value: T = entries[key]
            return value
        value = compute()
        if valid is not None and not valid(value):
            return value
        with _lock:
            entries = self._read()
            entries.pop(key, None)
            entries[key] = value  # newest last: the oldest go first when it is full
            while len(entries) > self._max_entries:
                entries.pop(next(iter(entries)))
            self._write(entries)
        return value

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        tmp: str | None = None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=self._path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entries, handle)
            os.replace(tmp, self._path)  # another process's write is never half-read
        except (OSError, TypeError, ValueError):
            if tmp is not None:  # an optimisation only (see the module docstring)
                Path(tmp).unlink(missing_ok=True)
