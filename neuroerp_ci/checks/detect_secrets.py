"""The ``secrets`` kind: secrets committed to the project, found by detect-secrets.

What is scanned: the files of the tree the run tests: git-tracked files and untracked files
git does not ignore (``git ls-files`` in the project directory), or, when the project is not
in a git repository, every file under it but ``.git``, ``.venv``,
``venv``, ``node_modules``, ``__pycache__`` and ``.neuroerp-ci``; the reason says which.
``paths`` and ``exclude`` narrow that list. With ``history = "A..B"`` the lines added by the
commits of that range (merges left out) are scanned as well, so a key added and removed again
is still found: ``path:line (commit abc1234)``.

Fail-closed rules, each verified with detect-secrets 1.5.0:

- The check lists the files and passes them by name (never a directory, never an empty list:
  ``detect-secrets scan --`` with no name scans the whole repository). detect-secrets skips a
  name it cannot open without a word, so it runs with ``-v`` and the check reads which files
  it logged as checked (``Checking file: ...``) or left out by one of its own file filters
  (lock files, ...: named in the reason). A file in neither, or checked unasked, is an error.
- detect-secrets reads a file as UTF-8 and drops it silently when that fails. The check reads
  every file first: a binary file (a NUL in its first 8000 bytes, git's rule) is not passed
  and is counted in the reason; a text file that is not UTF-8 is an error naming it, to be
  excluded or converted, since nobody would have scanned it.
- ``--no-verify`` always: detect-secrets would otherwise send what it found to the services
  the secrets belong to. ``--baseline`` is never passed (``scan --baseline`` rewrites the
  file). The tool runs with ``PATH``, ``HOME`` and ``LANG`` of the caller's environment only,
  plus ``PYTHONUTF8=1`` and ``PYTHONIOENCODING=utf-8:surrogateescape`` (file names with any
  bytes come back as they went in); no secret of the run reaches it.

Secrets stay out of every output. detect-secrets prints hashes, never a value; the check
keeps only the fields it knows of each result (an unknown field is an error, since it might
hold the value) and writes that JSON as the artifact. Its stderr can quote scanned lines (a
YAML parse error shows the line), so no reason quotes it: a crash is named by its exit code
and exception class, and the log keeps only the lines naming files. History blobs are written
to a private temporary directory outside the work directory, removed when the scan ends.

Suppressed, never silent (``CheckResult.suppressed``, not counted by findings limits):

- secrets in the baseline file (``baseline``, default ``.secrets.baseline`` when it exists,
  matched by file, type and hash), unaudited or audited false (``is_secret: false``); one
  audited as real (``is_secret: true``) still counts. Only the baseline's results are used:
  its plugin and filter settings are not applied (exclusions it has are named in the reason),
  and the file itself is not scanned (it holds hashes that look like secrets);
- lines marked ``pragma: allowlist secret``: a second run with ``--only-allowlisted`` lists
  them (``honour_allowlist = false``: the marks hide nothing).

A history finding of a secret also in the tree, or in an earlier commit of the range, is
not reported twice (the reason counts them). Lines are numbered as detect-secrets reads the
file (a lone ``\\r`` ends a line), history lines as git does; they differ only there.

Example pipeline entry::

    [[checks]]
    id = "secrets"
    kind = "secrets"
    settings = { exclude = ["tests/fixtures"], history = "origin/main..HEAD" }
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from neuroerp_ci.checks._tool_versions import version_run
from neuroerp_ci.checks.interface import (
    CacheInputs,
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    executable_identity,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    fingerprint_of,
)
from neuroerp_ci.support.secrets import redact
from neuroerp_ci.support.text import printable_name, tail_lines
from neuroerp_ci.support.tooling import ToolRun, describe, find_tool, run_tool

TOOL = "detect-secrets"
HELP_URL = "https://github.com/Yelp/detect-secrets/tree/master/detect_secrets/plugins"
DEFAULT_BASELINE = ".secrets.baseline"
# How the files were found, in the reason: the tree the run tests (its version names it).
TREE_SOURCE = "git-tracked and untracked, not ignored files"
ALLOWLIST_FILTER = "detect_secrets.filters.allowlist.is_line_allowlisted"
# Directories never scanned when the project is not a git repository.
WALK_SKIPS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".neuroerp-ci"})
MAX_COMMITS = 1000  # a history range longer than this is an error: name a shorter one
_BINARY_PROBE = 8000  # bytes looked at for a NUL, as git does
_CHUNK_FILES = 1000  # file names per detect-secrets run (the command line has a limit)
_CHUNK_CHARS = 100_000
_SHOWN = 3
_GLOB_CHARS = frozenset("*?[")
# The fields of one detect-secrets result; any other could hold what was found.
_RESULT_FIELDS = frozenset(
    {"type", "filename", "hashed_secret", "is_verified", "line_number", "is_secret"}
)
_REPORT_FIELDS = ("version", "plugins_used", "filters_used", "results", "generated_at")
_SHA1 = re.compile(r"[0-9a-f]{40}")
_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()/-]{0,79}")
# detect-secrets' -v log lines ("[scan]\tINFO\tChecking file: app/x.py"): only file names.
_CHECKED = re.compile(r"\[[\w.]+\]\t\w+\tChecking file: (.*)")
_FILTERED = re.compile(r'\[[\w.]+\]\t\w+\tSkipping "(.*)" due to `([\w.]+)`')
_UNOPENED = re.compile(r"\[[\w.]+\]\t\w+\tUnable to open file: (.*)")
_USAGE_ERROR = re.compile(r"detect-secrets[\w -]*: error: .*")
_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b.*")
_GIT_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_REGULAR_MODES = frozenset({"100644", "100755"})


def _relative_entry(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith("/") or "\x00" in value or ".." in parts:
        raise ValueError(f"must be a path inside the project (no '..', not absolute): {value!r}")
    return value


_ProjectPath = Annotated[str, Field(min_length=1)]


class SecretsSettings(KindSettings):
    """Settings of a ``secrets`` check; paths and globs are relative to the project.

    An entry without ``*?[`` is a file or directory (with everything under it); one with them
    is matched (fnmatch, ``*`` crosses ``/``) against each file's project-relative path.
    """

    # what is scanned of the tracked (or, outside git, all) files: "." = all of them
    paths: list[_ProjectPath] = Field(default_factory=lambda: ["."], min_length=1)
    exclude: list[_ProjectPath] = Field(default_factory=list)  # left out; counted in the reason
    # a detect-secrets baseline: its secrets are suppressed. The default may be missing; a
    # path set here must exist; "" = no baseline.
    baseline: str = DEFAULT_BASELINE
    # "A..B": also scan the lines the commits of this git range added (merges left out)
    history: Annotated[str, Field(pattern=r"^([^-\s]\S*)?\.\.\S*$")] | None = None
    honour_allowlist: bool = True  # "pragma: allowlist secret" suppresses (listed, not hidden)
    # detect-secrets plugin class names not run (e.g. "HexHighEntropyString"): in the reason
    plugins_disabled: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]] = Field(
        default_factory=list
    )
    exclude_lines: list[str] = Field(default_factory=list)  # Python regexes; in the reason
    executable: str | None = None  # detect-secrets binary to use instead of the one found

    @field_validator("paths", "exclude")
    @classmethod
    def _inside_project(cls, entries: list[str]) -> list[str]:
        return [_relative_entry(entry) for entry in entries]

    @field_validator("baseline")
    @classmethod
    def _baseline_inside(cls, value: str) -> str:
        return _relative_entry(value) if value else value

    @field_validator("exclude_lines")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {pattern!r} ({exc})") from exc
        return patterns


@dataclass(frozen=True)
class FileList:
    """What the check asks detect-secrets to scan (project-relative names) and what it left
    out on purpose, each named in the reason."""

    files: tuple[str, ...]
    source: str  # TREE_SOURCE, or why every file under the project is taken
    in_git: bool  # the project is in a git repository (a history range can be scanned)
    excluded: int = 0  # left out by the check's exclude
    binary: tuple[str, ...] = ()
    symlinks: tuple[str, ...] = ()
    submodules: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # tracked, but not in the working tree
    special: tuple[str, ...] = ()  # not a regular file (a FIFO, a socket)


@dataclass(frozen=True)
class Detected:
    """One result of detect-secrets: never the secret, only its SHA-1."""

    type: str
    filename: str  # as detect-secrets names it: relative to the directory it ran in
    hashed_secret: str
    line: int


@dataclass(frozen=True)
class ScanOutput:
    """What the detect-secrets runs over one list of files found, and what they examined."""

    detected: tuple[Detected, ...]
    filtered: Mapping[str, str]  # file -> the detect-secrets file filter that skipped it
    report: dict[str, Any]  # the tool's JSON, known fields only, the results of every run


@dataclass(frozen=True)
class KnownSecrets:
    """A detect-secrets baseline file: (file, type, hash) -> its ``is_secret`` audit."""

    path: str  # as the settings name it
    entries: Mapping[tuple[str, str, str], bool | None]
    not_applied: tuple[str, ...] = ()  # its own exclusions, which this check does not apply

    def audit(self, path: str, hit: Detected) -> bool | None | Literal["absent"]:
        """``is_secret`` of the baseline's entry for this secret; "absent" if it has none."""
        return self.entries.get((path, hit.type, hit.hashed_secret), "absent")


@dataclass(frozen=True)
class Committed:
    """A secret on a line a commit of the history range added."""

    commit: str
    path: str  # project-relative, in that commit
    hit: Detected


@dataclass
class HistoryScan:
    """The lines a git range added, scanned."""

    range: str
    commits: tuple[str, ...]
    merges: int = 0  # merge commits in the range, not scanned
    shallow: bool = False
    found: list[Committed] = field(default_factory=list)
    allowlisted: list[Committed] = field(default_factory=list)
    binary: int = 0  # added files with a NUL in their first 8000 bytes
    replaced: int = 0  # not UTF-8: scanned with the undecodable bytes replaced
    filtered: int = 0  # left out by detect-secrets' file filters
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class Triage:
    """The findings, what is suppressed, and why (for the reason)."""

    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    in_baseline: int = 0  # suppressed: unaudited or audited false in the baseline
    audited_false: int = 0
    confirmed: int = 0  # audited real in the baseline: counted
    allowlisted: int = 0
    history: int = 0  # findings from the history range
    repeats: int = 0  # history hits of a secret already reported


class Deadline:
    """The check's timeout, shared by all of its tool runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        rest = self.end - time.monotonic()
        if rest <= 0:
            raise ToolError(f"the check's timeout of {self.seconds:g} s ran out")
        return rest


class SecretsCheck(CheckKind):
    """Scan the project's files (and optionally a git range) with detect-secrets."""

    name: ClassVar[str] = "secrets"
    settings_model = SecretsSettings

    def metric_names(self, settings: KindSettings) -> MetricNames:
        fixed = {"secrets", "files_scanned", "suppressed"}
        if isinstance(settings, SecretsSettings) and settings.history is not None:
            return MetricNames(
                fixed=frozenset({*fixed, "commits_scanned"}), findings=True, audit=True
            )
        needs = {"commits_scanned": "settings.history"}
        return MetricNames(fixed=frozenset(fixed), findings=True, audit=True, needs=needs)

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return ({"findings": "any", "max": 0},)

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        settings = typed_settings(check, SecretsSettings)
        if settings.history is not None:
            return None  # a range of commits: what it names moves with the repository
        tool = find_tool(TOOL, _override(settings.executable, ctx.project_dir))
        # Which files it would scan (git-tracked or not) is an input beside their content.
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        env = tool_env(ctx.env)
        listing = list_files(settings, ctx.project_dir, ctx.work_dir, env, Deadline(60.0))
        scanned = hashlib.sha256(repr(listing).encode("utf-8", "surrogateescape")).hexdigest()
        files = CacheInputs.under(settings.paths, settings.baseline)
        return CacheInputs(files, {TOOL: executable_identity(tool, ctx.env), "scanned": scanned})

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, SecretsSettings)
        tool = find_tool(TOOL, _override(settings.executable, ctx.project_dir))
        deadline, env = Deadline(check.timeout), tool_env(ctx.env)
        out = _Outputs(ctx.work_dir)
        out.remove_stale()
        known = load_baseline(ctx.project_dir, settings)
        listing = list_files(settings, ctx.project_dir, ctx.work_dir, env, deadline)
        log: list[str] = []
        try:
            tree = scan_files(tool, listing.files, ctx.project_dir, settings, env, deadline, log)
            allowed = None
            if settings.honour_allowlist:
                allowed = scan_files(
                    tool, listing.files, ctx.project_dir, settings, env, deadline, log,
                    allowlisted=True,
                )  # fmt: skip
            history = None
            if settings.history is not None:
                if not listing.in_git:
                    raise ToolError(f"history {settings.history!r} needs a git repository")
                history = scan_history(tool, settings, ctx.project_dir, env, deadline, log)
        finally:
            out.write_log(log)
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.artifacts = out.write(tree, allowed, history)
        triage = sort_findings(tree, allowed, history, known)
        result.findings, result.suppressed = triage.findings, triage.suppressed
        for metric in scan_metrics(listing, tree, triage, history):
            result.add_metric(metric)
        result.reason = report_reason(settings, listing, tree, triage, known, history)
        version = tool_version(tool, ctx.project_dir, env, deadline)
        if version:
            result.tool_versions[TOOL] = version
        return result


class _Outputs:
    """The check's files in its work directory: the tool's JSON (hashes only) and a log that
    keeps the command lines and the file names detect-secrets logged, nothing it quoted."""

    def __init__(self, work_dir: Path) -> None:
        self.tree = work_dir / "detect-secrets.json"
        self.allowlisted = work_dir / "detect-secrets-allowlisted.json"
        self.history = work_dir / "detect-secrets-history.json"
        self.log = work_dir / "detect-secrets.log"

    def remove_stale(self) -> None:
        for path in (self.tree, self.allowlisted, self.history, self.log):
            path.unlink(missing_ok=True)

    def write_log(self, lines: list[str]) -> None:
        self.log.write_text(
            redact("\n".join(lines) + "\n"), encoding="utf-8", errors="backslashreplace"
        )

    def write(
        self, tree: ScanOutput, allowed: ScanOutput | None, history: HistoryScan | None
    ) -> dict[str, str]:
        artifacts = {"detect_secrets_json": str(self.tree), "log": str(self.log)}
        _write_json(self.tree, tree.report)
        if allowed is not None:
            _write_json(self.allowlisted, allowed.report)
            artifacts["detect_secrets_allowlisted_json"] = str(self.allowlisted)
        if history is not None:
            _write_json(self.history, history.report)
            artifacts["detect_secrets_history_json"] = str(self.history)
        return artifacts


def _write_json(path: Path, data: Any) -> None:
    # ensure_ascii: a file name with undecodable bytes stays a valid (escaped) JSON string
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --- the environment ------------------------------------------------------------------------


def tool_env(caller: Mapping[str, str]) -> dict[str, str]:
    """The environment detect-secrets and git run with: the caller's ``PATH``, ``HOME`` and
    ``LANG`` and nothing else of it, so no secret of the run reaches them; UTF-8 file reading
    whatever the locale, and file names in its log exactly as they were given."""
    env = {name: caller[name] for name in ("PATH", "HOME", "LANG") if name in caller}
    env.setdefault("PATH", os.defpath)
    env.update(
        PYTHONUTF8="1", PYTHONIOENCODING="utf-8:surrogateescape", PYTHONDONTWRITEBYTECODE="1"
    )
    return env


def _git_env(env: Mapping[str, str]) -> dict[str, str]:
    # English messages ("not a git repository"); never a prompt; no index refresh written.
    return {**env, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


# --- which files ----------------------------------------------------------------------------


class _Selection:
    """The check's ``paths`` and ``exclude`` over project-relative (``/``) file names."""

    def __init__(self, settings: SecretsSettings) -> None:
        self.paths = list(settings.paths)
        self.exclude = list(settings.exclude)
        baseline = settings.baseline
        self.baseline = _normal(baseline) if baseline else None

    def within(self, path: str) -> str | None:
        """The first ``paths`` entry that takes ``path``, or None."""
        return next((entry for entry in self.paths if _matches(entry, path)), None)

    def excluded(self, path: str) -> bool:
        return path == self.baseline or any(_matches(entry, path) for entry in self.exclude)

    def selected(self, path: str) -> bool:
        return self.within(path) is not None and not self.excluded(path)


def _matches(entry: str, path: str) -> bool:
    if _GLOB_CHARS & set(entry):
        return fnmatch.fnmatchcase(path, entry.removeprefix("./"))
    base = _normal(entry)
    return base == "." or path == base or path.startswith(base + "/")


def _normal(entry: str) -> str:
    return os.path.normpath(entry.replace("\\", "/")).replace(os.sep, "/")


def list_files(
    settings: SecretsSettings,
    project: Path,
    work_dir: Path,
    env: Mapping[str, str],
    deadline: Deadline,
) -> FileList:
    """The files to scan: git-tracked (or all, outside git), narrowed by the settings.

    Raises ToolError for a ``paths`` entry that takes no file, an unreadable file, a text
    file that is not UTF-8 (detect-secrets would skip it silently) and an empty list.
    """
    tracked, source = git_tracked(project, env, deadline)
    entries = tracked if tracked is not None else walk_files(project, work_dir)
    selection = _Selection(settings)
    used: set[str] = set()
    files: list[str] = []
    kept: dict[str, list[str]] = defaultdict(list)  # binary, symlink, submodule, ...
    refused: list[str] = []
    excluded = 0
    for mode, path in entries:
        entry = selection.within(path)
        if entry is None:
            continue
        used.add(entry)
        if selection.excluded(path):
            excluded += path != selection.baseline
            continue
        kind = "submodule" if mode == "160000" else _file_kind(project / path)
        if kind == "text":
            files.append(path)
        elif kind == "not-utf8":
            refused.append(path)
        elif kind.startswith("unreadable"):
            raise ToolError(f"cannot read {_shown(path)} ({kind.partition(':')[2].strip()})")
        else:
            kept[kind].append(path)
    unused = [entry for entry in settings.paths if entry not in used and _normal(entry) != "."]
    if unused:
        raise ToolError(f"paths entries that take no file ({source}): {_listed(unused)}")
    if refused:
        raise ToolError(
            f"{len(refused)} text files are not UTF-8, which detect-secrets skips without a "
            f"word (exclude or convert them): {_listed([_shown(p) for p in refused])}"
        )
    if not files:
        raise ToolError(f"no file to scan ({source}, {excluded} excluded)")
    return FileList(
        files=tuple(files),
        source=source,
        in_git=tracked is not None,
        excluded=excluded,
        binary=tuple(kept["binary"]),
        symlinks=tuple(kept["symlink"]),
        submodules=tuple(kept["submodule"]),
        missing=tuple(kept["missing"]),
        special=tuple(kept["special"]),
    )


def git_tracked(
    project: Path, env: Mapping[str, str], deadline: Deadline
) -> tuple[list[tuple[str, str]] | None, str]:
    """(mode, path) of every file git tracks under the project, and how the files were found;
    None when the project is not in a git repository (every file is scanned then)."""
    walked = "every file but " + ", ".join(sorted(WALK_SKIPS))
    try:
        git = find_tool("git")
    except ToolError:
        if any((folder / ".git").exists() for folder in (project, *project.resolve().parents)):
            raise ToolError("git not found, but the project is in a git repository") from None
        return None, f"git not found and no .git: {walked}"
    probe = run_tool(
        [git, "rev-parse", "--show-toplevel"],
        cwd=project, timeout=deadline.left(), env=_git_env(env), ok_codes=None,
    )  # fmt: skip
    if probe.returncode != 0:
        if "not a git repository" in probe.stderr:
            return None, f"not a git repository: {walked}"
        raise ToolError(f"git rev-parse exited {probe.returncode}: {_stderr_tail(probe)}")
    listed = _git(git, ["ls-files", "--stage"], project, env, deadline)
    entries: dict[str, str] = {}
    for line in listed.split("\n"):
        if not line:
            continue
        meta, tab, name = line.partition("\t")
        fields = meta.split()
        if not tab or len(fields) != 3:
            raise ToolError("git ls-files --stage printed a line of another shape")
        entries.setdefault(unquote_git_path(name), fields[0])  # a conflict lists it 3 times
    # Untracked files git does not ignore are part of the tree the run tests (its version is
    # "<sha>+dirty.<tree>" then): a key in a new file nobody has added yet counts too.
    others = _git(git, ["ls-files", "--others", "--exclude-standard"], project, env, deadline)
    for line in others.split("\n"):
        if line:
            path = unquote_git_path(line)
            entries.setdefault(path, _untracked_mode(project / path))
    return [(mode, path) for path, mode in entries.items()], TREE_SOURCE


def _untracked_mode(path: Path) -> str:
    """The git mode an untracked file would get: a symlink, else a regular file."""
    try:
        return "120000" if stat.S_ISLNK(os.lstat(path).st_mode) else "100644"
    except OSError:
        return "100644"  # gone since git listed it: the scan's own check reports it


def walk_files(project: Path, work_dir: Path) -> list[tuple[str, str]]:
    """("", path) of every file under the project but :data:`WALK_SKIPS` and the check's own
    work directory; symlinked directories are listed (as links), never followed."""
    found: list[tuple[str, str]] = []
    own = os.path.normpath(os.path.abspath(work_dir))

    def refused(exc: OSError) -> None:
        raise ToolError(f"cannot list {_shown(str(exc.filename))} ({exc.strerror})")

    for root, dirs, names in os.walk(project, onerror=refused):
        rel = os.path.relpath(root, project)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        kept = []
        for name in sorted(dirs):
            path = os.path.join(root, name)
            if name in WALK_SKIPS or os.path.normpath(os.path.abspath(path)) == own:
                continue
            if os.path.islink(path):
                found.append(("", prefix + name))
            else:
                kept.append(name)
        dirs[:] = kept
        found += [("", prefix + name) for name in sorted(names)]
    return found


def _file_kind(path: Path) -> str:
    """text, binary, not-utf8, symlink, missing, special or "unreadable: why"."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if stat.S_ISLNK(mode):
        return "symlink"
    if not stat.S_ISREG(mode):
        return "special"
    try:
        return content_kind(path)
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def content_kind(path: Path) -> Literal["text", "binary", "not-utf8"]:
    """Whether detect-secrets can read ``path`` (UTF-8); if not, whether it is binary (a NUL
    in its first 8000 bytes, git's rule) or text in another encoding."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    head = b""
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(1 << 16):
                head = head or chunk[:_BINARY_PROBE]
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "binary" if b"\0" in head else "not-utf8"
    return "text"


def unquote_git_path(text: str) -> str:
    """A path as git prints it with ``core.quotePath``: as is, or in C quotes with octal bytes
    (``"caf\\303\\251.txt"``); the file system's name (undecodable bytes as surrogates)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    body, raw, i = text[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            raw += char.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1 : i + 2] in _GIT_ESCAPES:
            raw.append(_GIT_ESCAPES[body[i + 1]])
            i += 2
        elif re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            raw.append(int(body[i + 1 : i + 4], 8))
            i += 4
        else:
            raise ToolError("git printed a quoted path with an unknown escape")
    return os.fsdecode(bytes(raw))


def _git(git: str, args: list[str], cwd: Path, env: Mapping[str, str], deadline: Deadline) -> str:
    """git's stdout, or ToolError quoting its stderr only (stdout may be file contents)."""
    run = run_tool(
        [git, "-c", "core.quotePath=true", *args],
        cwd=cwd, timeout=deadline.left(), env=_git_env(env), ok_codes=None,
    )  # fmt: skip
    if run.returncode != 0:
        raise ToolError(f"git {args[0]} exited {run.returncode}: {_stderr_tail(run)}")
    return run.stdout


def _stderr_tail(run: ToolRun, chars: int = 300) -> str:
    return tail_lines(run.stderr, chars) or "no message"


# --- the baseline ---------------------------------------------------------------------------


def load_baseline(project: Path, settings: SecretsSettings) -> KnownSecrets | None:
    """The settings' baseline file, or None: none named, or the default one is missing.

    An explicitly named file that is missing, unreadable or of another shape is a ToolError
    naming it.
    """
    if not settings.baseline:
        return None
    path = project / settings.baseline
    if not path.exists() and "baseline" not in settings.model_fields_set:
        return None
    name = settings.baseline
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolError(f"baseline {name} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"baseline {name} is unreadable: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ToolError(f"baseline {name} is not JSON: {exc.msg} (line {exc.lineno})") from exc
    return parse_baseline(data, name)


def parse_baseline(data: Any, name: str) -> KnownSecrets:
    """A detect-secrets baseline document's results, keyed by (file, type, hash)."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ToolError(f"baseline {name} has no results table: not a detect-secrets baseline")
    entries: dict[tuple[str, str, str], bool | None] = {}
    for filename, items in results.items():
        if not isinstance(items, list):
            raise ToolError(f"baseline {name}: results for a file are not a list")
        for item in items:
            valid = isinstance(item, dict) and isinstance(item.get("type"), str)
            hashed = item.get("hashed_secret") if isinstance(item, dict) else None
            audit = item.get("is_secret") if isinstance(item, dict) else None
            if not valid or not isinstance(hashed, str) or not isinstance(audit, bool | None):
                raise ToolError(f"baseline {name}: a result without type, hashed_secret or a "
                                "true/false is_secret")  # fmt: skip
            entries[(_normal(str(filename)), item["type"], hashed)] = audit
    filters = data.get("filters_used") if isinstance(data.get("filters_used"), list) else []
    not_applied = sorted(
        {
            str(f.get("path", "")).rpartition(".")[2]
            for f in filters
            if isinstance(f, dict) and ".regex." in str(f.get("path", ""))
        }
    )
    return KnownSecrets(name, entries, tuple(not_applied))


# --- running detect-secrets -----------------------------------------------------------------


def scan_argv(
    tool: str, settings: SecretsSettings, files: Iterable[str], *, allowlisted: bool = False
) -> list[str]:
    """detect-secrets' command line: verbose (its log says which files it examined), never a
    network call, the files by name after ``--``."""
    argv = [tool, "-v", "scan", "--no-verify"]
    if allowlisted:
        argv.append("--only-allowlisted")
    elif not settings.honour_allowlist:
        argv.append(f"--disable-filter={ALLOWLIST_FILTER}")
    argv += [f"--disable-plugin={name}" for name in settings.plugins_disabled]
    argv += [f"--exclude-lines={pattern}" for pattern in settings.exclude_lines]
    return [*argv, "--", *files]


def scan_files(
    tool: str,
    files: tuple[str, ...],
    cwd: Path,
    settings: SecretsSettings,
    env: Mapping[str, str],
    deadline: Deadline,
    log: list[str],
    *,
    allowlisted: bool = False,
) -> ScanOutput:
    """Run detect-secrets over ``files`` (names relative to ``cwd``), in chunks that fit a
    command line; raise ToolError unless it examined exactly those files."""
    detected: list[Detected] = []
    filtered: dict[str, str] = {}
    report: dict[str, Any] = {}
    if allowlisted:
        # detect-secrets 1.5 crashes on an empty file with --only-allowlisted (an empty
        # __init__.py is in most projects); an empty file holds no allowlisted line anyway.
        files = tuple(name for name in files if _size(cwd / name) != 0)
        if not files:
            return ScanOutput((), {}, {"results": {}})
    for chunk in chunked(files):
        argv = scan_argv(tool, settings, chunk, allowlisted=allowlisted)
        run = run_tool(argv, cwd=cwd, timeout=deadline.left(), env=env, ok_codes=None)
        log += log_lines(run, chunk)
        if run.returncode != 0:
            raise ToolError(crash_reason(run))
        part, hits = parse_scan_output(run.stdout)
        filtered.update(examined(chunk, run.stderr))
        unasked = sorted({hit.filename for hit in hits} - set(chunk))
        if unasked:
            raise ToolError(
                f"detect-secrets reported {len(unasked)} files it was not given: "
                f"{_listed([_shown(p) for p in unasked])}"
            )
        detected += hits
        results = report.get("results", {})
        report = {**part, **report, "results": {**results, **part["results"]}}
    return ScanOutput(tuple(detected), filtered, report)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None  # scanned anyway: detect-secrets' own run names what it could not read


def chunked(files: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if not files:
        # "scan --" with no name scans the whole repository: never run it so.
        raise ToolError("no file to scan")
    chunk: list[str] = []
    size = 0
    for name in files:
        if chunk and (len(chunk) >= _CHUNK_FILES or size + len(name) > _CHUNK_CHARS):
            yield tuple(chunk)
            chunk, size = [], 0
        chunk.append(name)
        size += len(name) + 1
    yield tuple(chunk)


def parse_scan_output(stdout: str) -> tuple[dict[str, Any], list[Detected]]:
    """detect-secrets' JSON report: its known fields (the artifact) and the secrets found.

    Raises ToolError for anything else, without quoting it: a result field this check does
    not know could hold the secret itself.
    """
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise ToolError(
            f"detect-secrets printed no JSON report ({exc.msg} at character {exc.pos})"
        ) from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ToolError("detect-secrets JSON report has no results table")
    hits: list[Detected] = []
    kept: dict[str, list[dict[str, Any]]] = {}
    for filename, items in results.items():
        if not isinstance(items, list):
            raise ToolError("detect-secrets JSON report: results of a file are not a list")
        kept[filename] = []
        for item in items:
            hit, known_fields = _result(item)
            hits.append(Detected(hit.type, filename, hit.hashed_secret, hit.line))
            kept[filename].append(known_fields)
    report = {key: data[key] for key in _REPORT_FIELDS if key in data}
    report["results"] = kept
    return report, hits


def _result(item: Any) -> tuple[Detected, dict[str, Any]]:
    if not isinstance(item, dict):
        raise ToolError("detect-secrets JSON report: a result is not an object")
    unknown = set(item) - _RESULT_FIELDS
    if unknown:
        shown = sorted(str(k) for k in unknown if re.fullmatch(r"[a-z_]{1,40}", str(k)))
        raise ToolError(
            f"detect-secrets reported {len(unknown)} unknown result fields "
            f"({', '.join(shown) or 'unnamed'}); not kept: one could hold the secret"
        )
    kind, hashed, line = item.get("type"), item.get("hashed_secret"), item.get("line_number")
    if not isinstance(kind, str) or not _TYPE.fullmatch(kind):
        raise ToolError("detect-secrets JSON report: a result without a secret type")
    if not isinstance(hashed, str) or not _SHA1.fullmatch(hashed):
        raise ToolError(f"detect-secrets JSON report: a {kind} without a SHA-1 hashed_secret")
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        raise ToolError(f"detect-secrets JSON report: a {kind} without a line number")
    return Detected(kind, "", hashed, line), dict(item)


def examined(files: tuple[str, ...], stderr: str) -> dict[str, str]:
    """Which of ``files`` detect-secrets' file filters skipped (file -> filter name), from
    its ``-v`` log; ToolError for a file it did not examine, could not open, or examined
    unasked."""
    given = {_as_logged(name): name for name in files}
    checked: set[str] = set()
    for logged in given:
        if "\n" in logged and f"\tChecking file: {logged}\n" in stderr:
            # a name with a line break spans lines of the log: taken out before reading lines
            stderr = stderr.replace(f"\tChecking file: {logged}\n", "\n")
            checked.add(logged)
    skipped: dict[str, str] = {}
    unopened: set[str] = set()
    for line in stderr.split("\n"):
        if match := _CHECKED.fullmatch(line):
            checked.add(match.group(1))
        elif match := _FILTERED.fullmatch(line):
            skipped[match.group(1)] = match.group(2).rpartition(".")[2]
        elif match := _UNOPENED.fullmatch(line):
            unopened.add(match.group(1))
    filtered: dict[str, str] = {}
    refused: list[str] = []
    missing: list[str] = []
    for logged, name in given.items():
        by_filter = skipped.get(logged)
        if logged in checked:
            continue
        if logged in unopened or by_filter == "is_invalid_file":
            refused.append(name)
        elif by_filter is not None:
            filtered[name] = by_filter
        else:
            missing.append(name)
    if refused:
        shown = [_shown(name) for name in refused]
        raise ToolError(f"detect-secrets could not open {len(shown)} files: {_listed(shown)}")
    if missing:
        raise ToolError(
            f"detect-secrets did not examine {len(missing)} of the {len(files)} files it was "
            f"given: {_listed([_shown(p) for p in missing])}"
        )
    unasked = sorted(checked - set(given))
    if unasked:
        raise ToolError(
            f"detect-secrets examined {len(unasked)} files it was not given: "
            f"{_listed([_shown(p) for p in unasked])}"
        )
    return filtered


def _as_logged(name: str) -> str:
    # The child writes undecodable bytes as they are (surrogateescape); run_tool reads them
    # back as U+FFFD.
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def log_lines(run: ToolRun, files: tuple[str, ...]) -> list[str]:
    """The log of one run: its command, exit status, and the lines of detect-secrets' log
    that name a file it was given; any other line may quote a scanned line and is counted."""
    given = {_as_logged(name) for name in files}
    lines = [f"$ {describe(run.argv)}", f"# exit {run.returncode}, {run.duration_s:.3f} s"]
    dropped = 0
    for line in run.stderr.split("\n"):
        match = _CHECKED.fullmatch(line) or _FILTERED.fullmatch(line) or _UNOPENED.fullmatch(line)
        if match and match.group(1) in given:
            lines.append(line)
        elif line.strip():
            dropped += 1
    if dropped:
        lines.append(f"# {dropped} other lines of stderr not kept: they may quote scanned lines")
    return lines


def crash_reason(run: ToolRun) -> str:
    """Why a detect-secrets run failed, without quoting its output (a traceback can show a
    scanned line): a refused command line is quoted (it holds only our arguments), an
    exception by its class."""
    lines = [line.strip() for line in run.stderr.split("\n") if line.strip()]
    last = lines[-1] if lines else ""
    if run.returncode < 0:
        return f"detect-secrets was killed by signal {-run.returncode}"
    if run.returncode == 2 and _USAGE_ERROR.fullmatch(last):
        return f"detect-secrets refused its command line: {last[:300]}"
    match = _EXCEPTION.fullmatch(last)
    what = f" with {match.group(1)}" if match else ""
    return (
        f"detect-secrets exited {run.returncode}{what}; its output is not quoted (it may show "
        "scanned lines)"
    )


def tool_version(tool: str, cwd: Path, env: Mapping[str, str], deadline: Deadline) -> str:
    def recognised(out: str) -> bool:
        return re.fullmatch(r"\d+(\.\d+)*\S{0,20}", out.strip()) is not None

    run = version_run(tool, recognised, cwd=cwd, timeout=deadline.left(), env=env, ok_codes=None)
    version = run.stdout.strip()
    return version if run.returncode == 0 and recognised(version) else ""


# --- the history range ----------------------------------------------------------------------


@dataclass
class PatchedFile:
    """One file of a full-context diff: the new file's lines and which of them were added."""

    lines: list[bytes] = field(default_factory=list)
    added: set[int] = field(default_factory=set)  # 1-based line numbers


_HUNK_BYTES = re.compile(rb"@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_full_patch(data: bytes) -> list[PatchedFile]:
    """The files of ``git diff-tree -p --text --unified=<all>`` output, exactly.

    Hunks are read by their line counts, so no content can pass for a header; a file whose
    hunks do not cover it from its first line is a ToolError (its context was not full).
    """
    files: list[PatchedFile] = []
    lines = data.split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(b"diff --git "):
            files.append(PatchedFile())
        elif line.startswith(b"@@ "):
            match = _HUNK_BYTES.match(line)
            if match is None or not files:
                raise ToolError("git printed a diff hunk of another shape")
            current = files[-1]
            old = 1 if match.group(1) is None else int(match.group(1))
            start = int(match.group(2))
            new = 1 if match.group(3) is None else int(match.group(3))
            if new and start != len(current.lines) + 1:
                raise ToolError("git printed a diff without the whole file as context")
            i = _read_hunk(lines, i, old, new, current)
    return files


def _read_hunk(lines: list[bytes], i: int, old: int, new: int, into: PatchedFile) -> int:
    while old > 0 or new > 0 or (i < len(lines) and lines[i].startswith(b"\\")):
        if i >= len(lines):
            raise ToolError("git printed a truncated diff")
        body, tag = lines[i], lines[i][:1]
        i += 1
        if tag in (b" ", b"+") and new > 0:
            into.lines.append(body[1:])
            if tag == b"+":
                into.added.add(len(into.lines))
            new -= 1
            old -= tag == b" "
        elif tag == b"-" and old > 0:
            old -= 1
        elif tag != b"\\":  # "\ No newline at end of file"
            raise ToolError("git printed a diff line of another shape")
    return i


def scan_history(
    tool: str,
    settings: SecretsSettings,
    project: Path,
    env: Mapping[str, str],
    deadline: Deadline,
    log: list[str],
) -> HistoryScan:
    """Scan the lines each commit of ``settings.history`` added (merges left out).

    Each added or changed file is rebuilt from git's full-context diff (the bytes git stores,
    no filter or ``-diff`` attribute in the way) into a private temporary directory, as
    ``<commit>/<path>``; detect-secrets scans them all at once and only hits on the lines
    the commit added are kept.
    """
    assert settings.history is not None
    git = find_tool("git")
    rng = settings.history
    commits = _git(git, ["rev-list", "--reverse", "--no-merges", rng, "--"], project, env,
                   deadline).split()  # fmt: skip
    if len(commits) > MAX_COMMITS:
        raise ToolError(f"history {rng} has {len(commits)} commits, more than {MAX_COMMITS}")
    merges = _git(git, ["rev-list", "--count", "--merges", rng, "--"], project, env, deadline)
    shallow = _git(git, ["rev-parse", "--is-shallow-repository"], project, env, deadline)
    scan = HistoryScan(rng, tuple(commits), int(merges.strip() or 0), shallow.strip() == "true")
    selection = _Selection(settings)
    with tempfile.TemporaryDirectory(prefix="neuroerp-ci-secrets-") as tmp:
        root = Path(tmp)
        where: dict[str, tuple[str, str, set[int]]] = {}  # scan name -> commit, path, lines
        for commit in commits:
            for path, patched in _commit_files(git, commit, project, env, deadline, root):
                if not selection.selected(path):
                    continue
                content = b"\n".join(patched.lines) + b"\n"
                if not _utf8(content):
                    if b"\0" in content[:_BINARY_PROBE]:
                        scan.binary += 1
                        continue
                    scan.replaced += 1
                    content = content.decode("utf-8", "replace").encode("utf-8")
                # A lone CR ends a line for detect-secrets, not for git: keep git's numbering.
                content = re.sub(rb"\r(?!\n)", b" ", content)
                target = root / commit / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                where[f"{commit}/{path}"] = (commit, path, patched.added)
        names = tuple(where)
        if names:
            out = scan_files(tool, names, root, settings, env, deadline, log)
            scan.filtered = len(out.filtered)
            scan.found = _on_added(out.detected, where, commits)
            report: dict[str, Any] = {"scan": out.report}
            if settings.honour_allowlist:
                allowed = scan_files(tool, names, root, settings, env, deadline, log,
                                     allowlisted=True)  # fmt: skip
                scan.allowlisted = _on_added(allowed.detected, where, commits)
                report["allowlisted"] = allowed.report
            scan.report = report
    scan.report = {"range": rng, "commits": list(commits), **scan.report}
    return scan


def _commit_files(
    git: str, commit: str, project: Path, env: Mapping[str, str], deadline: Deadline, tmp: Path
) -> Iterator[tuple[str, PatchedFile]]:
    """(path, new file) of each regular file ``commit`` added or changed, under the project."""
    common = ["-r", "--no-commit-id", "--no-renames", "--root", "--relative", "--diff-filter=AM"]
    raw = _git(git, ["diff-tree", *common, commit], project, env, deadline)
    entries = []
    for line in raw.split("\n"):
        if not line:
            continue
        meta, tab, name = line.partition("\t")
        fields = meta.split()
        if not tab or len(fields) != 5:
            raise ToolError(f"git diff-tree printed a line of another shape for {commit[:7]}")
        entries.append((fields[1], unquote_git_path(name)))
    if not any(mode in _REGULAR_MODES for mode, _ in entries):
        return
    patch_file = tmp / "commit.patch"  # the diff holds what the commit added: kept private
    full = ["-p", "--text", "--unified=2147483647", f"--output={patch_file}"]
    _git(git, ["diff-tree", *common, *full, commit], project, env, deadline)
    try:
        patched = parse_full_patch(patch_file.read_bytes())
    finally:
        patch_file.unlink(missing_ok=True)
    if len(patched) != len(entries):
        raise ToolError(
            f"git diff-tree listed {len(entries)} files of commit {commit[:7]} but showed "
            f"{len(patched)} diffs"
        )
    for (mode, path), new in zip(entries, patched, strict=True):
        if mode in _REGULAR_MODES and new.added:
            yield path, new


def _on_added(
    hits: Iterable[Detected],
    where: Mapping[str, tuple[str, str, set[int]]],
    commits: list[str],
) -> list[Committed]:
    """The hits on lines their commit added, oldest commit first."""
    found = []
    for hit in hits:
        commit, path, lines = where[hit.filename]
        if hit.line in lines:
            found.append(Committed(commit, path, hit))
    order = {commit: n for n, commit in enumerate(commits)}
    return sorted(found, key=lambda c: (order[c.commit], c.path, c.hit.line))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- findings, metrics, reason --------------------------------------------------------------


def rule_of(secret_type: str) -> str:
    """``AWS Access Key`` -> ``aws-access-key``."""
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-") or "secret"


def finding_of(hit: Detected, path: str, location: str, note: str = "") -> Finding:
    """A finding naming the secret's type and the start of its SHA-1, never the secret."""
    return Finding(
        tool=TOOL,
        rule=rule_of(hit.type),
        severity=FindingSeverity.HIGH,
        message=f"{hit.type} found (sha1 {hit.hashed_secret[:12]}){note}",
        location=location,
        fingerprint=fingerprint_of(TOOL, hit.type, path, hit.hashed_secret),
        help_url=HELP_URL,
    )


def sort_findings(
    tree: ScanOutput,
    allowed: ScanOutput | None,
    history: HistoryScan | None,
    known: KnownSecrets | None,
) -> Triage:
    """Findings and suppressed ones: the tree's first, then the history's not yet seen."""
    out = Triage()
    seen: set[tuple[str, str, str]] = set()

    def place(hit: Detected, path: str, location: str, allowlisted: bool) -> None:
        key = (hit.type, path, hit.hashed_secret)
        if key in seen:
            out.repeats += 1
            return
        seen.add(key)
        audit = known.audit(path, hit) if known is not None else "absent"
        if allowlisted:
            out.allowlisted += 1
            note = "; allowlisted in the source"
            out.suppressed.append(finding_of(hit, path, location, note))
        elif audit == "absent":
            out.findings.append(finding_of(hit, path, location))
        elif audit is True:
            assert known is not None
            out.confirmed += 1
            out.findings.append(finding_of(hit, path, location, f"; audited real in {known.path}"))
        else:
            assert known is not None
            out.in_baseline += 1
            out.audited_false += audit is False
            out.suppressed.append(finding_of(hit, path, location, f"; known: in {known.path}"))

    for hit in sorted(tree.detected, key=lambda h: (h.filename, h.line, h.type)):
        place(hit, _normal(hit.filename), f"{_shown(_normal(hit.filename))}:{hit.line}", False)
    for hit in sorted(allowed.detected if allowed else (), key=lambda h: (h.filename, h.line)):
        place(hit, _normal(hit.filename), f"{_shown(_normal(hit.filename))}:{hit.line}", True)
    if history is not None:
        out.repeats = 0  # only history hits count as repeats
        before = len(out.findings)
        for committed, allowlisted in [
            *((c, False) for c in history.found),
            *((c, True) for c in history.allowlisted),
        ]:
            hit = committed.hit
            where = f"{_shown(committed.path)}:{hit.line} (commit {committed.commit[:7]})"
            place(hit, committed.path, where, allowlisted)
        out.history = len(out.findings) - before
    return out


def scan_metrics(
    listing: FileList, tree: ScanOutput, triage: Triage, history: HistoryScan | None
) -> list[Metric]:
    """Secrets found, files detect-secrets read, suppressed; commits with a history range."""
    metrics = [
        Metric("secrets", len(triage.findings), "", Direction.LOWER),
        Metric("files_scanned", len(listing.files) - len(tree.filtered), "", Direction.HIGHER),
        Metric("suppressed", len(triage.suppressed), "", Direction.LOWER),
    ]
    if history is not None:
        metrics.append(Metric("commits_scanned", len(history.commits), "", Direction.HIGHER))
    return metrics


def report_reason(
    settings: SecretsSettings,
    listing: FileList,
    tree: ScanOutput,
    triage: Triage,
    known: KnownSecrets | None,
    history: HistoryScan | None,
) -> str:
    """One line: what was found in how many files of which list, then everything suppressed
    or left out, e.g. ``1 secret in 12 files (git-tracked files); 2 known in .secrets.baseline
    suppressed``."""
    count = len(triage.findings)
    scanned = len(listing.files) - len(tree.filtered)
    found = f"{count} secret{'s' if count != 1 else ''}" if count else "no secrets"
    parts = [f"{found} in {scanned} files ({listing.source})"]
    if triage.in_baseline:
        parts.append(
            f"{triage.in_baseline} known in {known.path if known else '?'} suppressed "
            f"({triage.audited_false} audited false)"
        )
    if triage.confirmed:
        parts.append(f"{triage.confirmed} audited real in the baseline, counted")
    if known is not None and known.not_applied:
        parts.append(f"baseline exclusions not applied: {', '.join(known.not_applied)}")
    if triage.allowlisted:
        parts.append(f"{triage.allowlisted} allowlisted in the source, suppressed")
    if not settings.honour_allowlist:
        parts.append("allowlist pragmas not honoured")
    if tree.filtered:
        by_filter = Counter(tree.filtered.values())
        named = ", ".join(f"{name}: {n}" for name, n in sorted(by_filter.items()))
        parts.append(f"{len(tree.filtered)} files left out by detect-secrets' filters ({named})")
    left = [
        (len(listing.binary), "binary"),
        (len(listing.symlinks), "symlinks"),
        (len(listing.submodules), "submodules"),
        (len(listing.missing), "tracked files missing from the working tree"),
        (len(listing.special), "special files"),
    ]
    if any(n for n, _ in left):
        parts.append("not scanned: " + ", ".join(f"{n} {what}" for n, what in left if n))
    if listing.excluded:
        parts.append(f"{listing.excluded} files excluded by the check's exclude")
    if settings.plugins_disabled:
        parts.append(f"plugins disabled: {', '.join(settings.plugins_disabled)}")
    if settings.exclude_lines:
        parts.append(f"lines matching {len(settings.exclude_lines)} exclude_lines not scanned")
    if history is not None:
        parts.append(_history_reason(history, triage))
    return "; ".join(parts)


def _history_reason(history: HistoryScan, triage: Triage) -> str:
    text = (
        f"history {history.range}: {len(history.commits)} commits, {triage.history} secrets "
        "in lines they added"
    )
    extra = [
        (triage.repeats, "already reported"),
        (history.merges, "merge commits not scanned"),
        (history.binary, "binary files not scanned"),
        (history.replaced, "non-UTF-8 files scanned with bytes replaced"),
        (history.filtered, "files left out by detect-secrets' filters"),
    ]
    text += "".join(f", {n} {what}" for n, what in extra if n)
    return text + (" (shallow clone: older commits absent)" if history.shallow else "")


def _listed(items: list[str], shown: int = _SHOWN) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f", +{more} more" if more > 0 else "")


def _shown(path: str) -> str:
    return printable_name(path)


def _override(executable: str | None, project: Path) -> str | None:
    # A relative path such as ".venv/bin/detect-secrets" means the project's.
    if executable and os.sep in executable and not os.path.isabs(executable):
        return str(project / executable)
    return executable
