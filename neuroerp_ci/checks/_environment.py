"""What the target's interpreter has installed, as pins pip-audit can audit.

pip-audit audits the environment it runs in, and the target's interpreter is another one (its
own venv, usually without pip-audit). So the distributions are listed *in* that interpreter,
with ``importlib.metadata`` over its ``sys.path`` (the first distribution of a name is the one
imported, as pip lists it), and pip-audit gets them as ``name==version`` lines of a generated
requirements file (``--no-deps --disable-pip``): nothing is resolved, nothing installed.

The project's own install (``pip install -e .``: a PEP 610 ``direct_url.json`` pointing at the
project directory, or its ``[project] name`` installed from a local directory) is named as the
project and not audited: it is the code under test, not a dependency. Every other distribution
is audited by its version, wherever it was installed from, as pip-audit would.

Each package also carries what its metadata says about its licence, as written (the
``licenses`` kind normalises it): pip-audit never reads it.

Example::

    env = installed_packages(".venv/bin/python", Path("."), os.environ, timeout=60)
    named = env.as_requirements(work_dir / "environment-requirements.txt")
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from neuroerp_ci.checks._requirements import NamedRequirement, RequirementFiles
from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.tooling import describe, run_tool

INSTALLED = "installed"  # the origin of an installed package in messages: "idna==3.10 (installed)"

# Runs in the target's interpreter (any Python 3.8+): one JSON line on stdout.
_LIST_SCRIPT = """\
import json, sys
from importlib import metadata
sys.path[:] = [p for p in sys.path if p]  # "-c" puts the working directory first
def licence(meta):
    # What the metadata says about the licence (the licenses kind reads it); a licence text
    # in the License field is cut short, it is never a usable name anyway.
    try:
        fields = {key: meta.get(key) for key in ("License-Expression", "License")}
        fields = {k: v[:2000] for k, v in fields.items() if isinstance(v, str)}
        fields["classifiers"] = [str(c) for c in (meta.get_all("Classifier") or [])
                                 if str(c).startswith("License ::")]
        return fields
    except Exception as exc:
        return {"error": repr(exc)[:200]}
found = []
for dist in metadata.distributions():
    try:
        direct = dist.read_text("direct_url.json")
    except Exception:
        direct = None
    found.append({"name": dist.metadata["Name"], "version": dist.version,
                  "direct_url": direct, "path": str(getattr(dist, "_path", "")),
                  "licence": licence(dist.metadata)})
print(json.dumps({"python": sys.version.split()[0], "executable": sys.executable,
                  "distributions": found}))
"""


@dataclass(frozen=True)
class InstalledPackage:
    """One distribution the interpreter would import."""

    name: str  # PEP 503 normalised
    display: str  # as its metadata spells it
    version: str
    path: str  # its .dist-info / .egg-info folder
    source_url: str | None = None  # PEP 610 url: a local directory, VCS or archive install
    editable: bool = False
    # What its metadata says about its licence, as written (the licenses kind normalises it):
    license_expression: str | None = None  # PEP 639 ``License-Expression``
    license: str | None = None  # the ``License`` field: a name, or a whole licence text
    license_classifiers: tuple[str, ...] = ()  # its ``License :: ...`` classifiers
    license_error: str = ""  # why they could not be read ("" when they were)

    def shown(self) -> str:
        how = "editable" if self.editable else "from " + (self.source_url or "an index")
        return f"{self.display} {self.version} ({how})"


@dataclass(frozen=True)
class Environment:
    """The distributions of one interpreter, the project's own install set apart."""

    python: str  # the interpreter as configured
    python_version: str
    executable: str
    packages: tuple[InstalledPackage, ...]  # audited: every distribution but the project's
    project: tuple[InstalledPackage, ...]  # the project's own install(s), not audited

    def by_name(self) -> dict[str, InstalledPackage]:
        return {p.name: p for p in (*self.packages, *self.project)}

    def describe(self) -> str:
        """``installed in .venv/bin/python (Python 3.11.7)``."""
        return f"installed in {self.python} (Python {self.python_version})"

    def as_requirements(self, path: Path) -> RequirementFiles:
        """Write the pins pip-audit audits to ``path``; return them as requirements."""
        lines = [f"{p.display}=={p.version}" for p in self.packages]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Generated by neuroerp-ci: what " + self.describe() + "\n" + "\n".join(lines) + "\n",
            encoding="utf-8",
        )
        named = tuple(
            NamedRequirement(f"{p.display}=={p.version}", INSTALLED, p.name, f"=={p.version}")
            for p in self.packages
        )
        return RequirementFiles((path,), (), named, (), False)


def installed_packages(
    python: str, project: Path, env: Mapping[str, str], timeout: float
) -> Environment:
    """List what ``python`` has installed (run in ``project``); raise ToolError if it cannot."""
    run = run_tool([python, "-c", _LIST_SCRIPT], cwd=project, timeout=timeout, env=env)
    lines = run.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
        entries = [d for d in data["distributions"] if isinstance(d, dict)]
        version, executable = str(data["python"]), str(data["executable"])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise ToolError(
            f"{describe([python, '-c', '...'])} did not list its installed packages: {run.tail()}"
        ) from exc
    found = [(entry, _installed(entry)) for entry in entries]
    unnamed = [str(entry.get("path") or entry)[:120] for entry, p in found if p is None]
    if unnamed:
        raise ToolError(
            f"{python}: {len(unnamed)} installed distribution(s) have no name or version in "
            f"their metadata, so they cannot be audited: {'; '.join(unnamed[:5])}"
        )
    first: dict[str, InstalledPackage] = {}
    for _, package in found:
        if package is not None:
            first.setdefault(package.name, package)  # later ones are shadowed on sys.path
    own = [p for p in first.values() if _is_project(p, project)]
    rest = tuple(p for p in first.values() if p not in own)
    if not rest:
        raise ToolError(f"{python}: no installed package to audit (is it the right interpreter?)")
    return Environment(python, version, executable, rest, tuple(own))


def drift(named: RequirementFiles, environment: Environment) -> list[str]:
    """The pins that differ from what is installed, e.g. ``idna==3.10 (requirements.txt:2),
    installed 3.7`` or ``..., not installed``; requirements whose marker is false left out."""
    installed = environment.by_name()
    differing = []
    for req in named.requirements:
        if not req.applies() or req.name is None or req.pinned is None:
            continue
        have = installed.get(req.name)
        if have is None:
            differing.append(f"{req.shown()}, not installed")
        elif not _same(have.version, str(req.pinned)):
            differing.append(f"{req.shown()}, installed {have.version}")
    return differing


def project_name(project: Path) -> str | None:
    """``[project] name`` of the project's pyproject.toml, normalised; None without one."""
    try:
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    name = data.get("project", {}).get("name")
    return canonicalize_name(name) if isinstance(name, str) and name else None


def _installed(entry: dict[str, Any]) -> InstalledPackage | None:
    """The package one listed distribution is; None without a name or version."""
    name, version, path = entry.get("name"), entry.get("version"), str(entry.get("path", ""))
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        return None
    url, editable = None, False
    if isinstance(entry.get("direct_url"), str):
        try:
            direct = json.loads(entry["direct_url"])
        except ValueError:
            direct = {}
        if isinstance(direct, dict):
            url = str(direct.get("url")) if direct.get("url") else None
            dir_info = direct.get("dir_info")
            editable = isinstance(dir_info, dict) and bool(dir_info.get("editable"))
    licence = entry.get("licence")
    fields: dict[str, Any] = licence if isinstance(licence, dict) else {}
    expression, text = fields.get("License-Expression"), fields.get("License")
    classifiers, error = fields.get("classifiers"), fields.get("error")
    return InstalledPackage(
        canonicalize_name(name),
        name,
        version,
        path,
        url,
        editable,
        license_expression=expression if isinstance(expression, str) else None,
        license=text if isinstance(text, str) else None,
        license_classifiers=tuple(
            c for c in (classifiers if isinstance(classifiers, list) else []) if isinstance(c, str)
        ),
        license_error=str(error) if error else "",
    )


def _is_project(package: InstalledPackage, project: Path) -> bool:
    """The project's own install: from its directory, or its name installed from a local
    directory (an index release of the same name is a dependency like any other)."""
    local = _local_path(package.source_url)
    if local is not None and local == project.resolve():
        return True
    return package.name == project_name(project) and (package.editable or local is not None)


def _local_path(url: str | None) -> Path | None:
    if not url or not url.startswith("file://"):
        return None
    path = Path(unquote(urlparse(url).path))
    return path.resolve() if path.is_dir() else None


def _same(installed: str, pinned: str) -> bool:
    try:
        return Version(installed) == Version(pinned)
    except InvalidVersion:
        return installed == pinned
