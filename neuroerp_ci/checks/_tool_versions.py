"""What a tool prints for ``--version``, asked once per installation of the tool.

``pip-audit --version`` costs 0.25-0.5 s (it imports its whole service stack) and bandit's
and detect-secrets' are not free either, yet the answer only changes when the tool is
installed again. :func:`version_run` keeps it in a :class:`~neuroerp_ci.support.stat_memo.StatMemo`
keyed by :func:`installation_key`:

- the executable as found and the file it resolves to (``pip install -U`` rewrites a
  console script; a binary is replaced);
- for a script run by Python (its ``#!`` line, ``#!/usr/bin/env python3`` looked up on the
  tool's ``PATH``, or pip's ``/bin/sh`` launcher for long paths): that interpreter, and every
  ``site-packages`` folder beside it, the base installation's and the user's: an upgrade
  removes one ``<name>-<version>.dist-info`` folder and adds another, which changes the
  folder's modification time even when the script stays as it was; the tool's own
  ``METADATA`` there too, when its name gives it away;
- ``PYTHONPATH`` / ``PYTHONHOME`` / ``PYTHONUSERBASE`` / ``PYTHONNOUSERSITE`` as the tool sees
  them, and the folders ``PYTHONPATH`` names.

A script run by anything else (a shell wrapper could run any program) has no key and is
asked every time, as is a tool whose files cannot all be examined. Only an exit 0 whose
output the caller recognises is kept: a failed or garbled answer is asked again next time.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from neuroerp_ci.support.stat_memo import StatMemo, stat_key
from neuroerp_ci.support.tooling import ToolRun, run_tool

MEMO = "tool-versions"
_PYTHON_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONNOUSERSITE")
_PYTHON = re.compile(r"(python|pypy)[\d.]*$")
# pip's launcher when the interpreter's path is too long for a #! line (distlib's form).
_SH_LAUNCHER = re.compile(r"""'''exec' ("[^"]+"|\S+) "\$0" "\$@"$""")
_SITE_GLOBS = (
    "lib/python*/site-packages",
    "lib/python3*/dist-packages",  # Debian's system Python
    "lib/python3/dist-packages",
    "local/lib/python3*/dist-packages",
)


def version_run(
    tool: str,
    recognised: Callable[[str], bool],
    *,
    cwd: Path | str,
    timeout: float,
    env: Mapping[str, str] | None,
    ok_codes: Collection[int] | None = (0,),
) -> ToolRun:
    """``run_tool([tool, "--version"], ...)``, memoised per installation of ``tool``.

    A remembered answer comes back as a run that exited 0 with the stdout it printed then
    (no stderr, 0 s). ``recognised(stdout)`` says whether an exit-0 answer is a version worth
    keeping. Errors are those of :func:`~neuroerp_ci.support.tooling.run_tool`.
    """
    argv = (tool, "--version")
    try:
        key = installation_key(tool, os.environ if env is None else env)
    except (OSError, ValueError):  # an optimisation only: the tool is asked as before
        key = None
    if key is None:
        return run_tool(argv, cwd=cwd, timeout=timeout, env=env, ok_codes=ok_codes)
    ran: list[ToolRun] = []

    def ask() -> dict[str, object]:
        run = run_tool(argv, cwd=cwd, timeout=timeout, env=env, ok_codes=ok_codes)
        ran.append(run)
        return {"returncode": run.returncode, "stdout": run.stdout}

    def valid(value: object) -> bool:
        return (
            isinstance(value, dict)
            and value.get("returncode") == 0
            and isinstance(value.get("stdout"), str)
            and recognised(value["stdout"])
        )

    stored = StatMemo(MEMO).get(f"{' '.join(argv)}|{key}", ask, valid)
    return ran[0] if ran else ToolRun(argv, 0, str(stored["stdout"]), "", 0.0)


def installation_key(tool: str, env: Mapping[str, str]) -> str | None:
    """What names this installation of ``tool`` (module docstring), or None when it cannot
    be told (then nothing may be memoised)."""
    path = Path(tool)
    interpreter = _interpreter(path, env)
    if interpreter is None:
        return None
    files = [path]
    if interpreter:
        python = Path(interpreter)
        sites = site_folders(python, env)
        if not sites:
            return None  # a Python without site-packages we can find: no evidence of upgrades
        files += [python, *sites, *_metadata(sites, path.name)]
    files += [
        Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).exists()
    ]
    stats = stat_key(*files)
    if stats is None:
        return None
    python_env = ",".join(f"{name}={env.get(name, '')}" for name in _PYTHON_ENV)
    return f"{tool}|{interpreter}|{python_env}|{stats}"


def _interpreter(path: Path, env: Mapping[str, str]) -> str | None:
    """The Python that runs the script ``path``; "" for a file that is not a script (a
    binary); None for a script run by anything else, or a file that cannot be read."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return ""
    lines = head.decode("utf-8", errors="replace").splitlines()
    words = lines[0][2:].split()
    if words and Path(words[0]).name == "env":  # "#!/usr/bin/env [-S] python3"
        names = [w for w in words[1:] if not w.startswith("-")]
        found = shutil.which(names[0], path=env.get("PATH")) if names else None
        words = [found] if found else []
    if words == ["/bin/sh"] and len(lines) > 1:
        match = _SH_LAUNCHER.match(lines[1])
        words = [match.group(1).strip('"')] if match else []
    if not words or not _PYTHON.match(Path(words[0]).name):
        return None
    return words[0]


def site_folders(python: Path, env: Mapping[str, str]) -> list[Path]:
    """The site-packages folders that Python may import the tool from: below the prefix it
    was started by (a venv's), the prefix it resolves to (the base installation) and the
    user's base. More than it may use is harmless: at worst a needless new answer."""
    prefixes = [python.parent.parent]
    try:
        prefixes.append(python.resolve(strict=True).parent.parent)
    except (OSError, RuntimeError):
        return []
    home = env.get("HOME")
    user_base = env.get("PYTHONUSERBASE") or (str(Path(home) / ".local") if home else "")
    if user_base:
        prefixes.append(Path(user_base))
    found = {site for prefix in prefixes for glob in _SITE_GLOBS for site in prefix.glob(glob)}
    return sorted(site for site in found if site.is_dir())


def _metadata(sites: list[Path], tool: str) -> list[Path]:
    """The ``METADATA`` of the distribution named like the tool (pip-audit: pip_audit-*)."""
    name = re.sub(r"[-_.]+", "_", tool).lower()
    found: list[Path] = []
    for site in sites:
        try:
            with os.scandir(site) as entries:
                found += [
                    Path(entry.path, "METADATA")
                    for entry in entries
                    if entry.name.lower().startswith(f"{name}-")
                    and entry.name.endswith(".dist-info")
                ]
        except OSError:
            continue
    return sorted(p for p in found if p.is_file())
