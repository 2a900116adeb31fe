"""Offline advisory mirrors: OSV records on disk, and a local OSV endpoint for pip-audit.

A mirror folder is either a checkout of the PyPA advisory database (``vulns/<package>/*.yaml``)
or any tree of OSV records (``*.json`` / ``*.yaml``), such as the PyPI advisories of GitHub's
advisory database. :class:`AdvisoryMirror` merges one or more folders and answers "which
advisories affect this package at this version"; :func:`serve_osv` puts it behind the one OSV
call pip-audit makes (``POST /v1/query``), so ``pip-audit -s osv --osv-url <url>/v1/query``
audits offline.

Decisions, on purpose:

- PyPA layout: lookup is by directory (the database keeps every advisory in its package's
  folder), parsed on the first query for that package. Any other tree is indexed once, on the
  first query, by each record's ``affected[].package.name`` (ecosystem PyPI only; a file
  that does not mention PyPI is not parsed). Names are compared after PEP 503 normalisation.
- Several folders are merged by advisory id: the same id in two folders is the record with
  the newer ``modified``. pip-audit itself folds records that are aliases of each other
  (a PYSEC id and its GHSA id) into one result.
- A folder with a ``PACKAGES.txt`` is a *subset*: it knows only the packages listed there.
  A package that no folder of the mirror covers is a :class:`~neuroerp_ci.errors.ToolError`,
  never "no advisories".
- A file that cannot be read or parsed, or is not an OSV record, raises
  :class:`~neuroerp_ci.errors.ToolError` when its package is queried (any query, for a tree:
  it could belong to any package): a broken advisory could hide a vulnerability.
- Each folder's date (:meth:`MirrorFolder.snapshot_date`) is the newest of: its git HEAD
  commit (a checkout), the first ``YYYY-MM-DD`` in ``SNAPSHOT.txt``, and the newest
  ``modified`` of its records; a date after today is not believed. No date at all is None.
- Only ``ECOSYSTEM`` ranges are evaluated (``GIT`` ranges name commits, not releases), with the
  OSV algorithm: events sorted by version, ``introduced`` (``"0"`` = since the beginning)
  opens, ``fixed`` closes at that version, ``last_affected`` closes after it; ``limit`` is
  ignored. A range holding a version that is not PEP 440 is skipped (it cannot be ordered);
  the record's explicit ``versions`` list still applies.
- Withdrawn records never match.
- What needs every file (a tree's index, the records' ``modified`` days) is remembered
  between runs per content of the folder, every file's size and times included
  (:func:`_content_key`, :mod:`~neuroerp_ci.support.stat_memo`): a change is re-read.

Example::

    mirror = AdvisoryMirror(Path("/srv/advisory-database"), Path("/srv/ghsa-pypi"))
    [r["id"] for r in mirror.query("urllib3", "1.26.4")]   # ['PYSEC-2021-108', ...]
    mirror.folders[0].snapshot_date()                      # SnapshotDate(2024-10-10, ...)
    with serve_osv(mirror) as url:
        ...  # pip-audit -s osv --osv-url f"{url}/v1/query"
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.stat_memo import StatMemo, settled
from neuroerp_ci.support.tooling import find_tool, run_tool

Record = dict[str, Any]

ECOSYSTEM = "PyPI"
MAX_BODY_BYTES = 64 * 1024  # an OSV query is a few hundred bytes
SNAPSHOT_FILE = "SNAPSHOT.txt"  # first line: what the data is; its first YYYY-MM-DD: its date
PACKAGES_FILE = "PACKAGES.txt"  # a subset: the only packages it knows, one per line
GIT_TIMEOUT_S = 10.0
_RECORD_SUFFIXES = (".yaml", ".json")
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})")
# A record's top-level ``modified`` (YAML at the start of a line, or a JSON key).
_MODIFIED = re.compile(rb'(?:^modified|"modified")\s*:\s*["\']?(\d{4})-(\d{2})-(\d{2})', re.M)


# libyaml's parser when built in (about 10x faster); the resolver below stays Python's.
_SafeBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringLoader(_SafeBase):  # type: ignore[misc,valid-type]
    """Safe YAML that keeps every scalar a string.

    Plain YAML would read an unquoted version ``1.10`` as the float 1.1 and a timestamp as a
    datetime; advisory versions and dates must stay exactly as written.
    """


_StringLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class SnapshotDate:
    """How old a folder's data is: the day, and what said so."""

    day: date
    source: str  # "git HEAD commit", "SNAPSHOT.txt" or "newest record modified"

    def age_days(self, today: date | None = None) -> int:
        """Whole days from the snapshot to ``today`` (default: today in UTC), at least 0."""
        return max(0, ((today or _today()) - self.day).days)


class MirrorFolder:
    """One folder of OSV records (PyPA layout or any tree), indexed lazily.

    Raises :class:`~neuroerp_ci.errors.ToolError` if ``root`` holds no advisory at all.
    Safe to query from several threads.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        vulns = self.root / "vulns"
        self.pypa_layout = vulns.is_dir()
        if self.pypa_layout:
            if not any(next(vulns.glob(f"*/*{s}"), None) for s in _RECORD_SUFFIXES):
                raise ToolError(f"advisory mirror {self.root}: vulns/ holds no */*.yaml advisories")
        elif not self.root.is_dir() or next(iter(self._tree_files()), None) is None:
            raise ToolError(
                f"advisory mirror {self.root}: no vulns/ folder and no OSV records "
                f"(*.json, *.yaml) below it (not an OSV mirror)"
            )
        self._lock = threading.Lock()
        self._folders: dict[str, list[Path]] | None = None
        self._tree: dict[str, list[str]] | None = None  # package -> files below the root
        self._key: tuple[str | None] | None = None  # (_content_key(),) once known
        self._records: dict[str, list[Record]] = {}
        self._dates: list[SnapshotDate] | None = None
        self.packages = _covered_packages(self.root)

    @property
    def snapshot(self) -> str:
        """What data this is: the first line of ``SNAPSHOT.txt`` if present, else the path."""
        first = _first_line(self.root / SNAPSHOT_FILE)
        if first is None:
            return str(self.root)
        return first if len(first) <= 160 else first[:157] + "..."

    @property
    def subset(self) -> bool:
        """Whether it knows only some packages (``PACKAGES.txt``)."""
        return self.packages is not None

    def covers(self, name: str) -> bool:
        return self.packages is None or canonicalize_name(name) in self.packages

    def snapshot_date(self, today: date | None = None) -> SnapshotDate | None:
        """The newest believable date of this data (module docstring), or None."""
        day = today or _today()
        with self._lock:
            if self._dates is None:
                claimed = [d for d in (_git_date(self.root), self._file_date()) if d]
                self._dates = claimed + [
                    SnapshotDate(d, "newest record modified") for d in self._modified_days()
                ]
        believable = [d for d in self._dates if d.day <= day]
        # max() keeps the first of equal days: git, then SNAPSHOT.txt, then the records.
        return max(believable, key=lambda d: d.day, default=None)

    def records(self, name: str) -> list[Record]:
        """Every advisory filed for package ``name`` (withdrawn ones included)."""
        key = canonicalize_name(name)
        with self._lock:
            if key not in self._records:
                if self.pypa_layout:
                    folders = self._index().get(key, [])
                    self._records[key] = [
                        _load(p)
                        for folder in folders
                        for p in sorted(folder.iterdir())
                        if p.suffix in _RECORD_SUFFIXES
                    ]
                else:
                    files = self._tree_index().get(key, [])
                    self._records[key] = [_load(self.root / f) for f in files]
            return self._records[key]

    def _index(self) -> dict[str, list[Path]]:
        if self._folders is None:
            folders: dict[str, list[Path]] = {}
            for folder in sorted(p for p in (self.root / "vulns").iterdir() if p.is_dir()):
                folders.setdefault(canonicalize_name(folder.name), []).append(folder)
            self._folders = folders
        return self._folders

    def _tree_index(self) -> dict[str, list[str]]:
        """Package -> its record files; remembered per content of the tree (it parses every
        PyPI record below the root), in a memo of its own: the value can be large."""
        if self._tree is None:
            key = self._content_key()
            if key is None:
                self._tree = self._read_tree_index()
            else:
                name = hashlib.sha256(str(self.root).encode("utf-8", "surrogateescape"))
                memo = StatMemo(f"advisory-tree-{name.hexdigest()[:16]}", max_entries=2)
                self._tree = memo.get(key, self._read_tree_index, _is_tree_index)
        return self._tree

    def _read_tree_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for path in self._tree_files():
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise ToolError(f"advisory mirror: cannot read {path}: {exc}") from exc
            if ECOSYSTEM.encode() not in raw:
                continue  # another ecosystem's advisory: never about a PyPI package
            record = _load(path, raw)
            names = {
                canonicalize_name(str(a.get("package", {}).get("name", "")))
                for a in record["affected"]
                if isinstance(a.get("package"), dict) and a["package"].get("ecosystem") == ECOSYSTEM
            }
            for package in sorted(names):
                index.setdefault(package, []).append(str(path.relative_to(self.root)))
        return index

    def _tree_files(self) -> list[Path]:
        """Record files below the root, hidden folders (``.git``) left out, in path order."""
        found: list[Path] = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(folder, n) for n in names if n.endswith(_RECORD_SUFFIXES)]
        return sorted(found)

    def _record_files(self) -> list[Path]:
        if self.pypa_layout:
            return sorted(
                p for s in _RECORD_SUFFIXES for p in (self.root / "vulns").glob(f"*/*{s}")
            )
        return self._tree_files()

    def _file_date(self) -> SnapshotDate | None:
        first = _first_line(self.root / SNAPSHOT_FILE)
        day = _iso_day(first or "")
        return SnapshotDate(day, SNAPSHOT_FILE) if day else None

    def _content_key(self) -> str | None:
        if self._key is None:
            top = self.root / "vulns" if self.pypa_layout else self.root
            self._key = (_content_key(top, skip_hidden=not self.pypa_layout),)
        return self._key[0]

    def _modified_days(self) -> list[date]:
        """Every distinct ``modified`` day of the records; remembered per content of the
        folder, since it reads every record (80-200 ms for the PyPA database)."""
        key = self._content_key()
        if key is None:
            return self._read_modified_days()
        days = StatMemo("advisory-modified-days").get(
            key, lambda: [d.isoformat() for d in self._read_modified_days()], _is_days
        )
        return [date.fromisoformat(d) for d in days]

    def _read_modified_days(self) -> list[date]:
        """Every distinct ``modified`` day of the records (a regex, not a parse: fast)."""
        days: set[date] = set()
        for path in self._record_files():
            try:
                match = _MODIFIED.search(path.read_bytes())
            except OSError:
                continue  # reported when its package is queried
            if match is not None:
                with contextlib.suppress(ValueError):
                    days.add(date(*(int(g) for g in match.groups())))
        return sorted(days)


class AdvisoryMirror:
    """One or more mirror folders, merged; the object pip-audit's local endpoint serves.

    Raises :class:`~neuroerp_ci.errors.ToolError` if a folder holds no advisory. Safe to query
    from several threads.
    """

    def __init__(self, root: Path | str, *more: Path | str) -> None:
        self.folders = [MirrorFolder(r) for r in (root, *more)]
        self.root = self.folders[0].root
        self._lock = threading.Lock()
        self._merged: dict[str, list[Record]] = {}
        # Every read error raised so far, so a caller whose tool only saw an HTTP 500 can say why.
        self.errors: list[str] = []

    @property
    def snapshot(self) -> str:
        """What data this is: each folder's ``SNAPSHOT.txt`` first line (or path), joined."""
        return "; ".join(folder.snapshot for folder in self.folders)

    def records(self, name: str) -> list[Record]:
        """Every advisory filed for ``name`` in any folder (withdrawn ones included); the
        same id in two folders is the record modified last."""
        key = canonicalize_name(name)
        with self._lock:
            if key in self._merged:
                return self._merged[key]
        covering = [folder for folder in self.folders if folder.covers(key)]
        try:
            if not covering:
                raise ToolError(_not_covered(key, self.folders))
            merged: dict[str, Record] = {}
            for folder in covering:
                for record in folder.records(key):
                    old = merged.get(record["id"])
                    if old is None or _modified(record) > _modified(old):
                        merged[record["id"]] = record
        except ToolError as exc:
            with self._lock:
                self.errors.append(str(exc))
            raise
        with self._lock:
            self._merged[key] = list(merged.values())
            return self._merged[key]

    def query(self, name: str, version: str) -> list[Record]:
        """The OSV records affecting ``name`` at ``version`` (deep copies, file order)."""
        key = canonicalize_name(name)
        return [
            copy.deepcopy(record)
            for record in self.records(name)
            if "withdrawn" not in record
            and any(
                canonicalize_name(str(affected.get("package", {}).get("name", ""))) == key
                and affected.get("package", {}).get("ecosystem") == ECOSYSTEM
                and affects(affected, version)
                for affected in record["affected"]
            )
        ]

    def find(self, name: str, advisory_id: str) -> Record | None:
        """The record of ``name`` whose id or one of whose aliases is ``advisory_id``."""
        found = self.related(name, {advisory_id})
        return found[0] if found else None

    def related(self, name: str, ids: set[str]) -> list[Record]:
        """The records of ``name`` whose id or aliases meet ``ids`` (one advisory, all names)."""
        return [
            record
            for record in self.records(name)
            if ids & {record["id"], *(str(a) for a in record.get("aliases") or [])}
        ]


def mirror_problem(path: Path) -> str | None:
    """Why ``path`` is not an advisory mirror folder (one line), or None if it is one."""
    try:
        MirrorFolder(path)
    except ToolError as exc:
        return str(exc)
    return None


def mirror_content_key(root: Path) -> str | None:
    """What a mirror folder holds, as :func:`_content_key` names it (None: cannot be told)."""
    vulns = root / "vulns"
    if vulns.is_dir():
        return _content_key(vulns, skip_hidden=False)
    return _content_key(root, skip_hidden=True)


def _content_key(top: Path, *, skip_hidden: bool) -> str | None:
    """Every file and folder below ``top`` by path, size, modification and change time and
    inode, hashed: what the memoised indexes of a folder are keyed by. None when one cannot
    be examined or a file was modified too recently to tell
    (:func:`~neuroerp_ci.support.stat_memo.settled`).

    Files, not only folders: a folder's time changes when a file is added, removed or renamed
    into place (git, rsync), but not when one is rewritten in place, and a record edited in
    place may name another package or range; the change time also sees a file put back with
    its old modification time. Statting ~2,700 files costs ~15 ms; reading them, 80-200 ms.
    Linked folders are followed (the PyPA lookup follows them); hidden ones (``.git``) are
    left out of a tree, as its index leaves them out.
    """
    digest = hashlib.sha256()
    pending: list[str] = [str(top)]
    seen: set[tuple[int, int]] = set()
    try:
        while pending:
            with os.scandir(pending.pop()) as scan:
                entries = sorted(scan, key=lambda e: e.name)
            for entry in entries:
                st = entry.stat()
                if entry.is_dir():
                    folder = (st.st_dev, st.st_ino)
                    if (skip_hidden and entry.name.startswith(".")) or folder in seen:
                        continue  # a link back up is walked once
                    seen.add(folder)
                    pending.append(entry.path)
                elif not settled(st.st_mtime_ns):
                    return None
                times = f"{st.st_mtime_ns}\0{st.st_ctime_ns}"
                line = f"{entry.path}\0{st.st_size}\0{times}\0{st.st_ino}\n"
                digest.update(line.encode("utf-8", "surrogateescape"))
    except OSError:
        return None
    return f"{top}|{digest.hexdigest()}"


def _is_days(value: Any) -> bool:
    try:
        return isinstance(value, list) and all(date.fromisoformat(d) for d in value)
    except (TypeError, ValueError):
        return False


def _is_tree_index(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(files, list) and all(isinstance(f, str) for f in files)
        for files in value.values()
    )


def _covered_packages(root: Path) -> frozenset[str] | None:
    listed = root / PACKAGES_FILE
    if not listed.is_file():
        return None
    try:
        text = listed.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"advisory mirror {root}: cannot read {PACKAGES_FILE}: {exc}") from exc
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return frozenset(canonicalize_name(n) for n in names if n)


def _not_covered(name: str, folders: Sequence[MirrorFolder]) -> str:
    counts = ", ".join(f"{f.root} ({len(f.packages or ())} packages)" for f in folders)
    return (
        f"no advisory data for {name!r}: the advisory subset {counts} does not cover it "
        f"(its {PACKAGES_FILE} lists the packages it knows); point neuroerp-ci at a full mirror"
    )


def _modified(record: Record) -> str:
    # ISO 8601 UTC timestamps ("2024-10-10T17:22:00Z") order correctly as text.
    return str(record.get("modified") or "")


def _first_line(path: Path) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[0].strip() if lines else None


def _iso_day(text: str) -> date | None:
    match = _ISO_DAY.search(text)
    if match is None:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _git_date(root: Path) -> SnapshotDate | None:
    """HEAD's commit date of a git checkout; None if it is not one or git cannot tell."""
    if not (root / ".git").exists():
        return None
    try:
        git = find_tool("git")
        done = run_tool(
            # --git-dir: this checkout's own history, never that of a repository around it
            [git, f"--git-dir={root / '.git'}", "log", "-1", "--format=%cs"],
            cwd=root,
            timeout=GIT_TIMEOUT_S,
            ok_codes=None,
        )
    except ToolError:
        return None
    day = _iso_day(done.stdout) if done.returncode == 0 else None
    return SnapshotDate(day, "git HEAD commit") if day else None


def _today() -> date:
    return datetime.now(UTC).date()


def _load(path: Path, raw: bytes | None = None) -> Record:
    try:
        text = (raw if raw is not None else path.read_bytes()).decode("utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_StringLoader)  # noqa: S506 - safe loader subclass
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ToolError(f"advisory mirror: cannot read {path}: {_one_line(exc)}") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("affected"), list)
        or not all(isinstance(a, dict) for a in data["affected"])
    ):
        raise ToolError(f"advisory mirror: {path} is not an OSV record (needs id and affected)")
    return cast(Record, data)


def affects(affected: Record, version: str) -> bool:
    """Whether one ``affected[]`` entry covers ``version`` (its ranges or its versions list)."""
    try:
        parsed: Version | None = Version(version)
    except InvalidVersion:
        parsed = None  # only an exact entry in the versions list can match
    for listed in affected.get("versions") or []:
        if str(listed) == version or (parsed is not None and _same(str(listed), parsed)):
            return True
    if parsed is None:
        return False
    for rng in affected.get("ranges") or []:
        if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
            if in_range(parsed, rng.get("events") or []) is True:
                return True
    return False


def in_range(version: Version, events: list[Any]) -> bool | None:
    """OSV range evaluation; ``None`` when an event's version cannot be ordered (skip it)."""
    bounds: list[tuple[Version | None, str]] = []
    for event in events:
        if not isinstance(event, dict):
            return None
        for kind, raw in event.items():
            if kind == "introduced" and str(raw) == "0":
                bounds.append((None, kind))
                continue
            if kind not in ("introduced", "fixed", "last_affected"):
                continue  # "limit" bounds commit walks; it does not apply to releases
            try:
                bounds.append((Version(str(raw)), kind))
            except InvalidVersion:
                return None
    # Stable sort: "introduced X" listed before "fixed X" keeps X unaffected.
    bounds.sort(key=lambda b: (0, Version("0")) if b[0] is None else (1, b[0]))
    affected = False
    for bound, kind in bounds:
        if kind == "introduced":
            affected = affected or bound is None or version >= bound
        elif kind == "fixed" and bound is not None and version >= bound:
            affected = False
        elif kind == "last_affected" and bound is not None and version > bound:
            affected = False
    return affected


def _same(listed: str, version: Version) -> bool:
    try:
        return Version(listed) == version
    except InvalidVersion:
        return False


# --- severity -------------------------------------------------------------------------------

_LABELS = {
    "critical": "critical",
    "high": "high",
    "moderate": "medium",  # GitHub's word for medium
    "medium": "medium",
    "low": "low",
}


def severity_label(record: Record) -> str | None:
    """``critical``/``high``/``medium``/``low`` from an OSV record, or None if it has no rating.

    ``database_specific.severity`` (GitHub's label) wins; else the highest CVSS v3 base score
    in ``severity[]``, rated with the CVSS bands (9.0 critical, 7.0 high, 4.0 medium).
    """
    specific = record.get("database_specific")
    if isinstance(specific, dict):
        label = _LABELS.get(str(specific.get("severity", "")).lower())
        if label:
            return label
    scores = [
        score
        for entry in record.get("severity") or []
        if isinstance(entry, dict) and str(entry.get("type", "")).startswith("CVSS_V3")
        for score in [cvss3_base_score(str(entry.get("score", "")))]
        if score is not None
    ]
    if not scores:
        return None
    top = max(scores)
    if top >= 9.0:
        return "critical"
    if top >= 7.0:
        return "high"
    if top >= 4.0:
        return "medium"
    return "low"  # 0.0 is "none" in CVSS; still an advisory, so the lowest band


_CVSS_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS v3.0/3.1 base score of a vector such as ``CVSS:3.1/AV:N/AC:L/...``; None if bad."""
    parts = vector.strip().split("/")
    if not parts or not parts[0].startswith("CVSS:3"):
        return None
    metrics = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    try:
        changed = {"U": False, "C": True}[metrics["S"]]
        pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}
        av, ac, ui = (_CVSS_WEIGHTS[m][metrics[m]] for m in ("AV", "AC", "UI"))
        c, i, a = (_CVSS_WEIGHTS[m][metrics[m]] for m in ("C", "I", "A"))
        privileges = pr[metrics["PR"]]
    except KeyError:
        return None
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    exploitability = 8.22 * av * ac * privileges * ui
    total = (1.08 if changed else 1.0) * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _roundup(value: float) -> float:
    # CVSS 3.1 Appendix A: round up to one decimal without floating-point surprises.
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000.0
    return (math.floor(scaled / 10_000) + 1) / 10.0


# --- the local OSV endpoint -----------------------------------------------------------------

_PIP_AUDIT_TIMES = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")


def for_pip_audit(record: Record) -> Record:
    """A copy of ``record`` that pip-audit 2.x can read without crashing.

    pip-audit matches ``affected[].package.name`` to the normalised name by plain equality (a
    ``PyYAML`` entry would lose its fix versions), calls ``Version()`` on every ``fixed`` event
    of the first ECOSYSTEM range (one non-PEP 440 value aborts the whole audit) and parses
    ``published`` with two strptime formats only. Those fields are normalised or dropped here.
    """
    served = copy.deepcopy(record)
    for affected in served.get("affected", []):
        package = affected.get("package")
        if isinstance(package, dict) and "name" in package:
            package["name"] = canonicalize_name(str(package["name"]))
        for rng in affected.get("ranges") or []:
            if isinstance(rng, dict) and rng.get("type") == "ECOSYSTEM":
                rng["events"] = [
                    e for e in rng.get("events") or [] if "fixed" not in e or _pep440(e["fixed"])
                ]
    if "published" in served and not _pip_audit_time(served["published"]):
        del served["published"]
    return served


def _pep440(raw: Any) -> bool:
    try:
        Version(str(raw))
    except InvalidVersion:
        return False
    return True


def _pip_audit_time(raw: Any) -> bool:
    for fmt in _PIP_AUDIT_TIMES:
        try:
            datetime.strptime(str(raw), fmt)
        except ValueError:
            continue
        return True
    return False


class _OsvServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mirror: AdvisoryMirror) -> None:
        super().__init__(("127.0.0.1", 0), _OsvHandler)
        self.mirror = mirror


class _OsvHandler(BaseHTTPRequestHandler):
    server: _OsvServer
    server_version = "neuroerp-ci-osv-mirror"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] != "/v1/query":
            # pip-audit 2.x only calls /v1/query, one package per request (no querybatch).
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            return
        try:
            name, version = self._read_query()
        except ValueError as exc:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        try:
            vulns = [for_pip_audit(r) for r in self.server.mirror.query(name, version)]
        except ToolError as exc:  # also kept in mirror.errors
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
            return
        # Everything in one page: no next_page_token, which pip-audit would ignore anyway.
        self._reply(HTTPStatus.OK, {"vulns": vulns})

    def do_GET(self) -> None:  # noqa: N802
        self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "use POST /v1/query"})

    def _read_query(self) -> tuple[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            raise ValueError(f"body must be 1..{MAX_BODY_BYTES} bytes, got {length}")
        try:
            body = json.loads(self.rfile.read(length))
            package, version = body["package"], body["version"]
            name, ecosystem = package["name"], package.get("ecosystem", ECOSYSTEM)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"expected {{package: {{name, ecosystem}}, version}}: {exc}") from exc
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise ValueError("package.name and version must be non-empty strings")
        if ecosystem != ECOSYSTEM:
            raise ValueError(f"only the {ECOSYSTEM} ecosystem is mirrored, not {ecosystem!r}")
        return name, version

    def _reply(self, status: HTTPStatus, payload: Record) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Silent: a request log on stderr would only drown the tool's own output."""


@contextmanager
def serve_osv(mirror: AdvisoryMirror) -> Iterator[str]:
    """Serve ``mirror`` as an OSV API on 127.0.0.1 (a free port) while the block runs.

    Yields the base URL, e.g. ``http://127.0.0.1:41234``; pip-audit wants ``<url>/v1/query``.
    A mirror error met while serving is answered with HTTP 500 and kept in ``mirror.errors``.
    The server stops and its port is closed when the block exits.
    """
    server = _OsvServer(mirror)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
