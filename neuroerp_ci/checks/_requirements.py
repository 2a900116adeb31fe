"""Requirements files read the way pip reads them: every requirement they name, nested ones too.

pip-audit 2.10.1 with ``--no-deps`` reads only the files on its command line: a ``-r other.txt``
line inside one is dropped without a word, and so is every requirement whose environment
marker is false on its interpreter (both verified). The ``pip-audit`` kind therefore reads the
files itself with :func:`read_requirements`, hands pip-audit every file they include, and
compares what pip-audit audited with what is named here.

What is read, as pip does (``pip/_internal/req/req_file.py``): ``\\`` continuations, comments
(``#`` at the start or after a blank), ``-r``/``--requirement`` and ``-c``/``--constraint``
(relative to the including file; a file included twice is read once), ``-e``/``--editable``,
global options such as ``-i`` or ``--pre`` (ignored: no index is used), and per-requirement
options (``--hash``). A line this module does not understand is a ToolError naming
``file:line``: a requirement must never be skipped because of its spelling.

:func:`read_lock` reads a ``pylock.toml`` (PEP 751) into the same shape, and writes its pins as
a requirements file for pip-audit: one way to audit, whatever names the pins.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Pep508
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from neuroerp_ci.errors import ToolError

_COMMENT = re.compile(r"(^|\s+)#.*$")
_REMOTE = re.compile(r"^(https?|file|ftp)://", re.IGNORECASE)
_NESTED = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_EDITABLE = ("-e", "--editable")
# Global options of a requirements file: about indexes and builds, nothing pip-audit reads.
_GLOBAL_WITH_VALUE = frozenset(
    {
        "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host",
        "--no-binary", "--only-binary", "--use-feature",
    }
)  # fmt: skip
_GLOBAL_FLAGS = frozenset({"--no-index", "--pre", "--prefer-binary", "-Z", "--always-unzip"})
_REQUIRE_HASHES = "--require-hashes"
_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tar.bz2", ".tgz")
_PER_REQUIREMENT = ("--hash", "--config-settings", "--global-option", "--install-option")


@dataclass(frozen=True)
class NamedRequirement:
    """One requirement line: what it names, where, and whether pip-audit can audit it."""

    text: str  # the requirement as written, without options and comment
    origin: str  # "requirements/dev.txt:12", relative to the project
    name: str | None  # PEP 503 normalised; None for a bare path or URL
    specifier: str = ""
    marker: str | None = None
    url: str | None = None  # "name @ url"
    editable: bool = False
    hashed: bool = False
    constraint: bool = False  # read from a -c file: limits versions, installs nothing

    @property
    def pinned(self) -> Version | None:
        """The exact version when the only specifier is ``==V`` (no wildcard), else None."""
        if self.name is None or self.url or self.editable:
            return None
        parts = [s.strip() for s in self.specifier.split(",") if s.strip()]
        if len(parts) != 1 or not parts[0].startswith("==") or parts[0].startswith("==="):
            return None
        try:
            return Version(parts[0][2:].strip())
        except InvalidVersion:  # "==1.*"
            return None

    def applies(self) -> bool:
        """Whether its marker holds on this interpreter (pip-audit drops it silently if not)."""
        if self.marker is None:
            return True
        try:
            return Marker(self.marker).evaluate()
        except (UndefinedComparison, UndefinedEnvironmentName, InvalidMarker):
            return True  # it cannot be decided: count it, so a miss becomes visible

    def why_not_auditable(self) -> str | None:
        """Why pip-audit ``--no-deps`` cannot audit it (None: it can)."""
        if self.editable:
            return "editable"
        if self.name is None:
            return "a path or URL, no version"
        if self.url:
            return "a URL, no version"
        if self.pinned is None:
            return "not pinned to an exact version (==)"
        return None

    def shown(self) -> str:
        """``packaging==24.1 (requirements/dev.txt:12)``."""
        return f"{self.text} ({self.origin})"


@dataclass(frozen=True)
class RequirementFiles:
    """Everything a set of requirements files names, nested files included."""

    files: tuple[Path, ...]  # requirement files read, the given ones first (not -c files)
    constraint_files: tuple[Path, ...]
    requirements: tuple[NamedRequirement, ...]  # in file order, constraints left out
    constraints: tuple[NamedRequirement, ...]
    require_hashes: bool  # some file says --require-hashes
    # The project's own entries (a lock's ``directory`` package of the project): not audited.
    project: tuple[str, ...] = ()


def read_requirements(paths: list[Path], project: Path) -> RequirementFiles:
    """Read ``paths`` and every file they include; raise ToolError naming ``file:line``."""
    reader = _Reader(project)
    for path in paths:
        reader.read(path.resolve(), constraint=False, origin=None)
    return RequirementFiles(
        tuple(reader.files),
        tuple(reader.constraint_files),
        tuple(r for r in reader.entries if not r.constraint),
        tuple(r for r in reader.entries if r.constraint),
        reader.require_hashes,
    )


class _Reader:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.files: list[Path] = []
        self.constraint_files: list[Path] = []
        self.entries: list[NamedRequirement] = []
        self.require_hashes = False
        self._seen: set[tuple[Path, bool]] = set()

    def read(self, path: Path, *, constraint: bool, origin: str | None) -> None:
        if (path, constraint) in self._seen:
            return  # included twice, or a cycle: pip would read it again, to the same effect
        self._seen.add((path, constraint))
        where = self.relative(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            by = f" (included by {origin})" if origin else ""
            raise ToolError(f"requirements file {where} not found{by}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ToolError(f"requirements file {where} is unreadable: {exc}") from exc
        (self.constraint_files if constraint else self.files).append(path)
        for number, line in _logical_lines(text):
            self.line(path, f"{where}:{number}", line, constraint)

    def line(self, path: Path, origin: str, line: str, constraint: bool) -> None:
        args, options = _split(line)
        if not args:
            self.option_line(path, origin, options, constraint)
            return
        try:
            tokens = shlex.split(options)
        except ValueError as exc:
            raise ToolError(f"{origin}: cannot read the options {options!r}: {exc}") from exc
        unknown = [t for t in tokens if t.startswith("-") and not t.startswith(_PER_REQUIREMENT)]
        if unknown:
            raise ToolError(f"{origin}: unknown option {unknown[0]!r} after a requirement")
        hashed = any(t.startswith("--hash") for t in tokens)
        self.entries.append(_named(args, origin, constraint=constraint, hashed=hashed))

    def option_line(self, path: Path, origin: str, options: str, constraint: bool) -> None:
        try:
            tokens = shlex.split(options)
        except ValueError as exc:
            raise ToolError(f"{origin}: cannot read {options!r}: {exc}") from exc
        option, value = _option(tokens)
        if option in _NESTED:
            if not value:
                raise ToolError(f"{origin}: {option} needs a file name")
            if _REMOTE.match(value):
                raise ToolError(f"{origin}: remote requirements file {value} cannot be read")
            nested = (path.parent / value).resolve()
            self.read(nested, constraint=constraint or _NESTED[option], origin=origin)
        elif option in _EDITABLE:
            if not value:
                raise ToolError(f"{origin}: {option} needs a path or URL")
            self.entries.append(
                NamedRequirement(
                    f"{option} {value}", origin, _egg_name(value), editable=True,
                    constraint=constraint,
                )
            )  # fmt: skip
        elif option == _REQUIRE_HASHES:
            self.require_hashes = True
        elif option not in _GLOBAL_WITH_VALUE | _GLOBAL_FLAGS:
            raise ToolError(f"{origin}: unknown option {option!r}")

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.project.resolve()).as_posix()
        except ValueError:
            return str(path)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """pip's ``join_lines`` + ``ignore_comments``: (first line number, text) per line."""
    joined: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.endswith("\\") and not _COMMENT.match(raw):
            if not parts:
                first = number
            parts.append(raw[:-1])
            continue
        if parts:
            parts.append(" " + raw if _COMMENT.match(raw) else raw)
            joined.append((first, "".join(parts)))
            parts = []
        else:
            joined.append((number, raw))
    if parts:  # a continuation on the last line
        joined.append((first, "".join(parts)))
    lines = [(n, _COMMENT.sub("", line).strip()) for n, line in joined]
    return [(n, line) for n, line in lines if line]


def _split(line: str) -> tuple[str, str]:
    """pip's ``break_args_options``: the requirement, then options from the first ``-``."""
    tokens = line.split(" ")
    args: list[str] = []
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(args), " ".join(tokens[index:])
        args.append(token)
    return " ".join(args), ""


def _option(tokens: list[str]) -> tuple[str, str]:
    """``-r x.txt``, ``-rx.txt``, ``--requirement=x.txt`` -> (option, value)."""
    head, rest = tokens[0], tokens[1:]
    if head.startswith("--") and "=" in head:
        option, value = head.split("=", 1)
        return option, value
    if not head.startswith("--") and len(head) > 2:
        return head[:2], head[2:]
    return head, rest[0] if rest else ""


def _named(text: str, origin: str, *, constraint: bool, hashed: bool) -> NamedRequirement:
    try:
        req = Pep508(text)
    except InvalidRequirement:
        if text.startswith(".") or os.sep in text or "://" in text or text.endswith(_ARCHIVES):
            return NamedRequirement(text, origin, None, constraint=constraint, hashed=hashed)
        raise ToolError(f"{origin}: not a requirement pip can read: {text!r}") from None
    return NamedRequirement(
        text,
        origin,
        canonicalize_name(req.name),
        specifier=str(req.specifier),
        marker=None if req.marker is None else str(req.marker),
        url=req.url,
        hashed=hashed,
        constraint=constraint,
    )


def read_lock(path: Path, project: Path, generated: Path) -> RequirementFiles:
    """The packages of a ``pylock.toml`` (PEP 751) as requirements, written to ``generated``
    as ``name==version ; marker`` lines for pip-audit; raise ToolError naming the file.

    A package without a version (a directory or VCS source) cannot be audited and is refused
    by :func:`~neuroerp_ci.checks.pip_audit.require_auditable`, unless it is the project
    itself (a ``directory`` source at the project): that one is named, not audited.
    """
    where = _relative(path, project)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolError(f"lock file {where} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(f"lock file {where} is unreadable: {exc}") from exc
    version = str(data.get("lock-version", ""))
    if not version.split(".")[0] == "1":
        raise ToolError(f"{where}: lock-version {version or '(missing)'} is not 1.x (PEP 751)")
    packages = data.get("packages")
    if not isinstance(packages, list) or not packages:
        raise ToolError(f"{where}: no [[packages]] in the lock file")
    entries: list[NamedRequirement] = []
    own: list[str] = []
    for index, package in enumerate(packages):
        origin = f"{where}: packages[{index}]"
        name = package.get("name") if isinstance(package, dict) else None
        if not isinstance(name, str) or not name:
            raise ToolError(f"{origin} has no name")
        pinned = package.get("version")
        marker = package.get("marker")
        marker = str(marker) if marker else None
        source = _lock_source(package, path.parent)
        if source is not None and source.resolve() == project.resolve():
            own.append(" ".join(str(p) for p in (name, pinned, f"({origin})") if p))
            continue
        if not isinstance(pinned, str) or not pinned:
            vcs = package.get("vcs")
            url = str(source or (vcs.get("url") if isinstance(vcs, dict) else None) or "?")
            entries.append(
                NamedRequirement(f"{name} @ {url}", origin, canonicalize_name(name), url=url)
            )
            continue
        text = f"{name}=={pinned}" + (f" ; {marker}" if marker else "")
        entries.append(
            NamedRequirement(text, origin, canonicalize_name(name), f"=={pinned}", marker=marker)
        )
    generated.parent.mkdir(parents=True, exist_ok=True)
    generated.write_text(
        f"# Generated by neuroerp-ci from {where}\n"
        + "".join(f"{r.text}\n" for r in entries if r.pinned is not None),
        encoding="utf-8",
    )
    return RequirementFiles((generated,), (), tuple(entries), (), False, tuple(own))


def _lock_source(package: dict[str, object], base: Path) -> Path | None:
    """The local directory a lock's package is built from, if it has one."""
    directory = package.get("directory")
    if isinstance(directory, dict) and isinstance(directory.get("path"), str):
        return base / str(directory["path"])
    return None


def _relative(path: Path, project: Path) -> str:
    try:
        return path.resolve().relative_to(project.resolve()).as_posix()
    except ValueError:
        return str(path)


def _egg_name(value: str) -> str | None:
    match = re.search(r"#egg=([A-Za-z0-9._-]+)", value)
    return canonicalize_name(match.group(1)) if match else None
