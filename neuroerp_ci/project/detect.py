"""What kind of Python project a directory holds, for ``neuroerp-ci init``.

:func:`detect_project` only reads files: the package(s) (``src/<pkg>/__init__.py``, a flat
``<pkg>/__init__.py``, or the module the distribution name points at), the tests (``tests/``
or ``test/``, or the ``testpaths`` of a pytest configuration), the requirements files and
whether each is pinned exactly (``name==version``: what the ``pip-audit`` kind can audit), the
dependencies ``pyproject.toml`` declares, a local virtual environment (``.venv`` or ``venv``
with a ``pyvenv.cfg``) and the git repository around it. :func:`missing_modules` is the one
probe that runs something: it asks the environment's interpreter whether pytest and pytest-cov
import there. :meth:`ProjectDetection.found` says all of it in lines a person reads, each
"not found: ..." when nothing was.

Example::

    detection = detect_project(Path("."))
    [p.path for p in detection.packages]   # ['src/itsdangerous']
    detection.tests.paths                  # ('tests',)
    detection.venv.python                  # '.venv/bin/python'
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from neuroerp_ci.errors import ToolError
from neuroerp_ci.project.interpreter import VENV_DIRS
from neuroerp_ci.support.tooling import run_tool

# Folders at the top of a project that hold no package of its own, even with an __init__.py.
NOT_PACKAGES = frozenset(
    {
        "tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks",
        "build", "dist", "site-packages", "node_modules", "src",
    }
)  # fmt: skip
TEST_DIRS = ("tests", "test")
TEST_FILE = re.compile(r"^(test_.*|.*_test)\.py$")
# The modules the pytest kind needs in the target's interpreter (pytest-cov for coverage).
TEST_MODULES = ("pytest", "pytest_cov")
_SKIP_WALK = frozenset({".git", "__pycache__", "node_modules", ".neuroerp-ci", *VENV_DIRS})
_SETUP_PY_NAME = re.compile(r"""\bname\s*=\s*["']([A-Za-z0-9][A-Za-z0-9._-]*)["']""")
_NESTED = ("-r", "--requirement")
_EDITABLE = ("-e", "--editable")
_MAX_NESTING = 10
_PROBE_TIMEOUT_S = 30.0
_FILES_SHOWN = 4

Layout = Literal["src", "flat"]


@dataclass(frozen=True)
class Package:
    """One importable package (or single module) of the project."""

    name: str  # the import name: what coverage measures
    path: str  # relative to the project: "src/itsdangerous", "idna", "six.py"
    layout: Layout


@dataclass(frozen=True)
class PytestConfig:
    """Where pytest's configuration is, and what of it matters to init."""

    file: str  # "pyproject.toml"
    section: str  # "[tool.pytest.ini_options]"
    testpaths: tuple[str, ...] = ()
    pythonpath: tuple[str, ...] = ()

    def where(self) -> str:
        return f"{self.file} {self.section}"


@dataclass(frozen=True)
class TestSuite:
    """The test folders found and how many test files they hold."""

    paths: tuple[str, ...]  # relative to the project
    files: int
    source: str  # "tests/" or "testpaths in pytest.ini [pytest]"


@dataclass(frozen=True)
class RequirementsFile:
    """A requirements file and whether ``pip-audit --no-deps`` can audit it as written."""

    path: str  # relative to the project
    pins: Mapping[str, str] = field(default_factory=dict)  # canonical name -> exact version
    not_pinned: tuple[str, ...] = ()  # requirements (as written) that are no exact pin

    @property
    def auditable(self) -> bool:
        return bool(self.pins) and not self.not_pinned

    def describe(self) -> str:
        if self.auditable:
            return f"{self.path} ({len(self.pins)} exact pins)"
        if not self.pins and not self.not_pinned:
            return f"{self.path} (names no requirement)"
        shown = ", ".join(self.not_pinned[:2]) + (", ..." if len(self.not_pinned) > 2 else "")
        return f"{self.path} ({len(self.not_pinned)} not pinned with ==: {shown})"


@dataclass(frozen=True)
class VirtualEnv:
    """A project-local virtual environment."""

    folder: str  # ".venv"
    python: str  # relative to the project: ".venv/bin/python"
    version: str | None  # from its pyvenv.cfg
    # TEST_MODULES its interpreter cannot import; None: not asked (or it could not answer)
    missing: tuple[str, ...] | None = None

    def describe(self) -> str:
        version = f", Python {self.version}" if self.version else ""
        return f"{self.folder}/ ({self.python}{version})"


@dataclass(frozen=True)
class ProjectDetection:
    """Everything :func:`detect_project` found in one directory."""

    directory: Path
    distribution: str | None = None  # the project's name as its metadata says
    distribution_source: str | None = None  # "pyproject.toml [project] name"
    packages: tuple[Package, ...] = ()
    tests: TestSuite | None = None
    empty_test_dirs: tuple[str, ...] = ()  # tests/ without a test_*.py in it
    pytest_config: PytestConfig | None = None
    requirements: tuple[RequirementsFile, ...] = ()
    declared_dependencies: tuple[str, ...] = ()  # pyproject [project] dependencies
    venv: VirtualEnv | None = None
    git_root: Path | None = None
    secrets_baseline: bool = False  # a .secrets.baseline at the top

    @property
    def name(self) -> str:
        """What the history calls the target: the distribution, else the folder's name."""
        return self.distribution or self.directory.resolve().name or "target"

    @property
    def src_layout(self) -> bool:
        return any(p.layout == "src" for p in self.packages)

    def found(self) -> list[tuple[str, str]]:
        """(what, found or "not found: ...") for each thing init looks for."""
        return [
            ("package", self._packages_text()),
            ("tests", self._tests_text()),
            ("pytest config", self._pytest_text()),
            ("requirements", self._requirements_text()),
            ("virtual env", self._venv_text()),
            ("git repository", self._git_text()),
        ]

    def _packages_text(self) -> str:
        if self.packages:
            layout = "src layout" if self.src_layout else "flat layout"
            named = ", ".join(p.path for p in self.packages)
            source = (
                f"; {self.distribution_source}: {self.distribution}" if self.distribution else ""
            )
            return f"{named} ({layout}{source})"
        looked = "src/<pkg>/__init__.py, <pkg>/__init__.py"
        if self.distribution:
            return (
                f"not found: no {looked} or {_import_name(self.distribution)}.py for "
                f"{self.distribution!r} ({self.distribution_source})"
            )
        return f"not found: no {looked}, and no name in pyproject.toml, setup.cfg or setup.py"

    def _tests_text(self) -> str:
        if self.tests is not None:
            paths = ", ".join(self.tests.paths)
            return f"{paths} ({self.tests.files} test files; {self.tests.source})"
        empty = f" ({', '.join(self.empty_test_dirs)} holds none)" if self.empty_test_dirs else ""
        return f"not found: no test_*.py or *_test.py in tests/ or test/{empty}"

    def _pytest_text(self) -> str:
        if self.pytest_config is not None:
            return self.pytest_config.where()
        return "not found: none in pytest.ini, pyproject.toml, tox.ini or setup.cfg"

    def _requirements_text(self) -> str:
        parts = [r.describe() for r in self.requirements[:_FILES_SHOWN]]
        if len(self.requirements) > _FILES_SHOWN:
            parts.append(f"{len(self.requirements) - _FILES_SHOWN} more")
        if self.declared_dependencies:
            parts.append(f"pyproject.toml declares {len(self.declared_dependencies)} dependencies")
        if parts:
            return "; ".join(parts)
        return "not found: no requirements*.txt or requirements/*.txt, no pyproject dependencies"

    def _venv_text(self) -> str:
        if self.venv is None:
            return "not found: no .venv/ or venv/ with a pyvenv.cfg"
        text = self.venv.describe()
        if self.venv.missing:
            text += f"; it cannot import {', '.join(self.venv.missing)}"
        return text

    def _git_text(self) -> str:
        if self.git_root is None:
            return "not found: no .git here or in a folder above"
        here = self.git_root == self.directory.resolve()
        return "yes (.git in this folder)" if here else f"yes, {self.git_root}"


def detect_project(directory: Path) -> ProjectDetection:
    """Look at ``directory`` (which must exist); never writes, never runs anything."""
    distribution, source = _distribution(directory)
    pytest_config = _pytest_config(directory)
    tests, empty = _tests(directory, pytest_config)
    return ProjectDetection(
        directory=directory,
        distribution=distribution,
        distribution_source=source,
        packages=_packages(directory, distribution),
        tests=tests,
        empty_test_dirs=empty,
        pytest_config=pytest_config,
        requirements=tuple(_requirements(directory)),
        declared_dependencies=_declared_dependencies(directory),
        venv=_venv(directory),
        git_root=_git_root(directory),
        secrets_baseline=(directory / ".secrets.baseline").is_file(),
    )


def missing_modules(
    python: Path, modules: tuple[str, ...] = TEST_MODULES
) -> tuple[str, ...] | None:
    """The ``modules`` the interpreter ``python`` cannot import; None when it did not answer."""
    code = (
        "import importlib.util, sys; "
        "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    )
    try:
        run = run_tool(
            [str(python), "-c", code, *modules], cwd=python.parent, timeout=_PROBE_TIMEOUT_S
        )
    except ToolError:
        return None
    return tuple(run.stdout.split())


def probe_venv(detection: ProjectDetection) -> ProjectDetection:
    """``detection`` with its environment's missing :data:`TEST_MODULES` filled in."""
    if detection.venv is None:
        return detection
    missing = missing_modules(detection.directory / detection.venv.python)
    return replace(detection, venv=replace(detection.venv, missing=missing))


# --- the package ------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _read_ini(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    return parser


def _distribution(directory: Path) -> tuple[str | None, str | None]:
    pyproject = _read_toml(directory / "pyproject.toml") or {}
    name = _table(pyproject, "project").get("name")
    if isinstance(name, str) and name:
        return name, "pyproject.toml [project] name"
    name = _table(_table(pyproject, "tool"), "poetry").get("name")
    if isinstance(name, str) and name:
        return name, "pyproject.toml [tool.poetry] name"
    setup_cfg = _read_ini(directory / "setup.cfg")
    if setup_cfg is not None and setup_cfg.has_option("metadata", "name"):
        name = setup_cfg.get("metadata", "name").strip()
        if name:
            return name, "setup.cfg [metadata] name"
    try:
        setup_py = (directory / "setup.py").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, None
    match = _SETUP_PY_NAME.search(setup_py)
    return (match.group(1), "setup.py name=") if match else (None, None)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _import_name(distribution: str) -> str:
    return re.sub(r"[-.]+", "_", distribution).lower()


def _package_dirs(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(
        child.name
        for child in folder.iterdir()
        if child.name.isidentifier()
        and child.name not in NOT_PACKAGES
        and (child / "__init__.py").is_file()
        and not (child / "pyvenv.cfg").exists()
    )


def _packages(directory: Path, distribution: str | None) -> tuple[Package, ...]:
    wanted = _import_name(distribution) if distribution else None

    def ordered(names: list[str]) -> list[str]:
        # The package the distribution is named after first: it is the one people look for.
        return sorted(names, key=lambda n: (n.lower() != wanted, n))

    src = _package_dirs(directory / "src")
    if src:
        return tuple(Package(n, f"src/{n}", "src") for n in ordered(src))
    flat = _package_dirs(directory)
    if flat:
        return tuple(Package(n, n, "flat") for n in ordered(flat))
    if wanted:  # a single-module distribution such as six: six.py
        places: tuple[tuple[str, Layout], ...] = (("src/", "src"), ("", "flat"))
        for folder, layout in places:
            module = directory / f"{folder}{wanted}.py"
            if module.is_file():
                return (Package(wanted, f"{folder}{wanted}.py", layout),)
    return ()


# --- the tests --------------------------------------------------------------------------------


def _pytest_config(directory: Path) -> PytestConfig | None:
    """The first configuration pytest itself would use (its own order of files)."""
    for name, section in (("pytest.ini", "pytest"), (".pytest.ini", "pytest")):
        ini = _read_ini(directory / name)
        if ini is not None:  # pytest uses this file even when it is empty
            return _ini_config(name, section, ini)
    tool = _table(_read_toml(directory / "pyproject.toml") or {}, "tool")
    pytest_table = _table(tool, "pytest")
    # An empty [tool.pytest.ini_options] is a configuration too; [tool.pytest] is pytest 9's.
    if "ini_options" in pytest_table or pytest_table:
        ini_style = "ini_options" in pytest_table
        table = _table(pytest_table, "ini_options") if ini_style else pytest_table
        shown = "[tool.pytest.ini_options]" if ini_style else "[tool.pytest]"
        return PytestConfig(
            "pyproject.toml", shown, _words(table.get("testpaths")), _words(table.get("pythonpath"))
        )
    for name, section in (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        ini = _read_ini(directory / name)
        if ini is not None and ini.has_section(section):
            return _ini_config(name, section, ini)
    return None


def _ini_config(name: str, section: str, ini: configparser.ConfigParser) -> PytestConfig:
    def value(key: str) -> tuple[str, ...]:
        return _words(ini.get(section, key, fallback=""))

    return PytestConfig(name, f"[{section}]", value("testpaths"), value("pythonpath"))


def _words(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str))
    return ()


def _tests(
    directory: Path, config: PytestConfig | None
) -> tuple[TestSuite | None, tuple[str, ...]]:
    candidates: list[str] = []
    source = ""
    if config is not None and config.testpaths:
        candidates = [
            p.rstrip("/") for p in config.testpaths if "*" not in p and (directory / p).is_dir()
        ]
        source = f"testpaths in {config.where()}"
    if not candidates:
        candidates = [d for d in TEST_DIRS if (directory / d).is_dir()]
        source = " and ".join(f"{d}/" for d in candidates)
    counted = {path: _count_test_files(directory / path) for path in candidates}
    with_tests = tuple(p for p, n in counted.items() if n)
    empty = tuple(f"{p}/" for p, n in counted.items() if not n)
    if not with_tests:
        return None, empty
    return TestSuite(with_tests, sum(counted.values()), source), empty


def _count_test_files(folder: Path) -> int:
    return sum(1 for path in _walk(folder) if TEST_FILE.match(path.name))


def _walk(folder: Path) -> Iterator[Path]:
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return
    for child in children:
        if child.is_dir() and not child.is_symlink():
            if child.name not in _SKIP_WALK and not (child / "pyvenv.cfg").exists():
                yield from _walk(child)
        elif child.is_file():
            yield child


# --- requirements -----------------------------------------------------------------------------


def _requirements(directory: Path) -> Iterator[RequirementsFile]:
    top = sorted(
        directory.glob("requirements*.txt"), key=lambda p: (p.name != "requirements.txt", p.name)
    )
    nested = sorted((directory / "requirements").glob("*.txt"))
    for path in [*top, *nested]:
        if path.is_file():
            yield _read_requirements(path, directory)


def _read_requirements(path: Path, directory: Path) -> RequirementsFile:
    pins: dict[str, str] = {}
    not_pinned: list[str] = []
    _read_into(path, pins, not_pinned, seen=set(), depth=0)
    return RequirementsFile(path.relative_to(directory).as_posix(), pins, tuple(not_pinned))


def _read_into(
    path: Path, pins: dict[str, str], not_pinned: list[str], seen: set[Path], depth: int
) -> None:
    """Pins and non-pins of ``path`` and the files it includes (-r), as the audit reads them."""
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        not_pinned.append(f"{path.name}: unreadable ({type(exc).__name__})")
        return
    for line in _logical_lines(text):
        option, _, rest = line.partition(" ")
        included = _included_file(option, rest)
        if included is not None:
            if depth < _MAX_NESTING:
                _read_into(path.parent / included, pins, not_pinned, seen, depth + 1)
            continue
        if option in _EDITABLE or option.startswith("--editable"):
            not_pinned.append(line)
            continue
        if line.startswith("-"):  # -c files, index options, --hash on its own line: no install
            continue
        text_only = line.split(" --", 1)[0].strip()  # per-requirement options (--hash=...)
        pin = _exact_pin(text_only)
        if pin is None:
            not_pinned.append(text_only)
        elif pin:
            pins[pin[0]] = pin[1]


def _included_file(option: str, rest: str) -> str | None:
    """The file a ``-r FILE`` / ``-rFILE`` / ``--requirement[=]FILE`` line includes."""
    for flag in _NESTED:
        if option == flag:
            return rest.strip() or None
        if flag == "-r" and option.startswith("-r") and not option.startswith("--"):
            return option[2:]
        if option.startswith(flag + "="):
            return option[len(flag) + 1 :]
    return None


def _logical_lines(text: str) -> Iterator[str]:
    joined = re.sub(r"\\\r?\n", " ", text)
    for raw in joined.splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if line:
            yield line


def _exact_pin(text: str) -> tuple[str, str] | tuple[()] | None:
    """(name, version) for ``name==version``; () when its marker excludes this interpreter
    (the audit skips it too); None for anything else."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return None  # a path, a URL, something pip-audit cannot audit by version
    if requirement.marker is not None and not requirement.marker.evaluate():
        return ()
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1:
        return None
    spec = specifiers[0]
    if spec.operator != "==" or "*" in spec.version:
        return None
    return canonicalize_name(requirement.name), spec.version


def _declared_dependencies(directory: Path) -> tuple[str, ...]:
    pyproject = _read_toml(directory / "pyproject.toml") or {}
    dependencies = _table(pyproject, "project").get("dependencies")
    if not isinstance(dependencies, list):
        return ()
    return tuple(d for d in dependencies if isinstance(d, str))


# --- environment and repository ---------------------------------------------------------------


def _venv(directory: Path) -> VirtualEnv | None:
    for folder in VENV_DIRS:
        config = directory / folder / "pyvenv.cfg"
        if not config.is_file():
            continue
        for python in ("bin/python", "Scripts/python.exe"):
            if (directory / folder / python).exists():
                return VirtualEnv(folder, f"{folder}/{python}", _venv_version(config))
    return None


def _venv_version(config: Path) -> str | None:
    try:
        lines = config.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    values = {
        key.strip().lower(): value.strip()
        for key, sep, value in (line.partition("=") for line in lines)
        if sep
    }
    return values.get("version") or values.get("version_info")


def _git_root(directory: Path) -> Path | None:
    here = directory.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None
