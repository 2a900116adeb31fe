"""``tool --version`` asked once per installation: real little tools in tmp_path, a real memo
folder per test (``NEUROERP_CI_CACHE_DIR``), no timing asserts.

A memo needs files that have settled (``stat_memo.settled``): the tools written here are
dated a minute back with :func:`age`, as an installed tool would be.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from neuroerp_ci.checks import detect_secrets
from neuroerp_ci.checks._tool_versions import MEMO, installation_key, version_run
from neuroerp_ci.errors import ToolError
from neuroerp_ci.support.stat_memo import CACHE_DIR_ENV
from neuroerp_ci.support.tooling import ToolRun

PYTHON = Path(sys.executable).resolve()  # the base interpreter: runs with no venv around it
# Counts its runs in <tool>.runs; prints what <tool>.out holds (exit code in <tool>.exit).
TOOL = """\
import pathlib, sys
me = pathlib.Path(sys.argv[0])
with open(f"{me}.runs", "a") as runs:
    runs.write("x")
print(pathlib.Path(f"{me}.out").read_text(), end="")
exit_file = pathlib.Path(f"{me}.exit")
sys.exit(int(exit_file.read_text()) if exit_file.exists() else 0)
"""


@pytest.fixture(autouse=True)
def memo_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(folder))
    return folder


def age(*paths: Path, seconds_ago: float = 60.0) -> None:
    """Date files back (a fresh file is no evidence; see stat_memo.settled)."""
    when = time.time() - seconds_ago
    for path in paths:
        os.utime(path, (when, when), follow_symlinks=False)


def tool(
    folder: Path, output: str, *, shebang: str = f"#!{PYTHON}", name: str = "faketool"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"{shebang}\n{TOOL}", encoding="utf-8")
    script.chmod(0o755)
    (folder / f"{name}.out").write_text(output, encoding="utf-8")
    age(script)
    return script


def runs(script: Path) -> int:
    counted = Path(f"{script}.runs")
    return len(counted.read_text()) if counted.exists() else 0


def ask(script: Path, ok_codes: tuple[int, ...] | None = (0,)) -> ToolRun:
    return version_run(
        str(script), lambda out: out.startswith("faketool "),
        cwd=script.parent, timeout=30, env=dict(os.environ), ok_codes=ok_codes,
    )  # fmt: skip


def test_the_version_is_asked_once_per_installation(tmp_path: Path, memo_folder: Path) -> None:
    script = tool(tmp_path / "bin", "faketool 1.2.3\n")
    first, second = ask(script), ask(script)
    assert first.stdout == second.stdout == "faketool 1.2.3\n"
    assert second.returncode == 0 and second.argv == (str(script), "--version")
    assert runs(script) == 1
    assert (memo_folder / f"{MEMO}.json").is_file()


def test_a_rewritten_or_touched_tool_is_asked_again(tmp_path: Path) -> None:
    script = tool(tmp_path / "bin", "faketool 1.0.0\n")
    assert ask(script).stdout == "faketool 1.0.0\n"
    # Reinstalled: same size, a new modification time.
    tool(tmp_path / "bin", "faketool 2.0.0\n")
    age(script, seconds_ago=30)
    assert ask(script).stdout == "faketool 2.0.0\n"
    age(script, seconds_ago=20)  # touched only
    assert ask(script).stdout == "faketool 2.0.0\n"
    assert runs(script) == 3


def test_an_upgrade_beside_an_unchanged_script_is_seen(tmp_path: Path) -> None:
    # A venv: bin/python links to the interpreter, the script names bin/python; pip install -U
    # swaps the dist-info folder in site-packages (a tool may keep its old script).
    venv = tmp_path / "venv"
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    (site / "faketool-1.0.dist-info").mkdir(parents=True)
    (site / "faketool-1.0.dist-info" / "METADATA").write_text("Name: faketool\nVersion: 1.0\n")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(PYTHON)
    script = tool(venv / "bin", "faketool 1.0\n", shebang=f"#!{venv / 'bin' / 'python'}")
    age(site / "faketool-1.0.dist-info" / "METADATA", site / "faketool-1.0.dist-info", site)
    key = installation_key(str(script), os.environ)
    assert key is not None and str(site) in key and "faketool-1.0.dist-info" in key
    assert ask(script).stdout == "faketool 1.0\n"
    assert ask(script).stdout == "faketool 1.0\n" and runs(script) == 1

    (site / "faketool-1.0.dist-info").rename(site / "faketool-2.0.dist-info")
    Path(f"{script}.out").write_text("faketool 2.0\n")  # what the new code says
    age(site, seconds_ago=30)
    assert installation_key(str(script), os.environ) != key
    assert ask(script).stdout == "faketool 2.0\n" and runs(script) == 2


def test_a_failed_or_garbled_answer_is_never_kept(tmp_path: Path) -> None:
    script = tool(tmp_path / "bin", "faketool 1.0\n")
    Path(f"{script}.exit").write_text("3")
    for _ in range(2):
        with pytest.raises(ToolError, match="exited 3"):
            ask(script)
    assert ask(script, ok_codes=None).returncode == 3  # the caller reads it (detect-secrets)
    assert runs(script) == 3
    Path(f"{script}.exit").unlink()
    Path(f"{script}.out").write_text("Traceback (most recent call last):\n")
    assert ask(script).stdout.startswith("Traceback") and ask(script).returncode == 0
    assert runs(script) == 5
    Path(f"{script}.out").write_text("faketool 1.0\n")
    ask(script), ask(script)
    assert runs(script) == 6  # recognised at last: kept


def test_a_script_run_by_a_shell_or_a_fresh_file_is_asked_every_time(tmp_path: Path) -> None:
    wrapper = tmp_path / "bin" / "wrapped"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{PYTHON}" "{tool(tmp_path / "real", "faketool 1")}"\n')
    wrapper.chmod(0o755)
    age(wrapper)
    assert installation_key(str(wrapper), os.environ) is None  # could run anything
    fresh = tool(tmp_path / "fresh", "faketool 1\n")
    os.utime(fresh)  # just written: a rewrite within the clock's tick would look the same
    assert installation_key(str(fresh), os.environ) is None
    ask(fresh), ask(fresh)
    assert runs(fresh) == 2


def test_env_shebangs_and_pips_long_path_launcher_name_their_python(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(PYTHON)
    env = {**os.environ, "PATH": str(bin_dir)}
    by_env = tool(tmp_path / "a", "faketool 1\n", shebang="#!/usr/bin/env -S python3")
    assert f"|{bin_dir / 'python3'}|" in (installation_key(str(by_env), env) or "")
    assert installation_key(str(by_env), {**env, "PATH": str(tmp_path / "none")}) is None
    launcher = f"#!/bin/sh\n'''exec' \"{bin_dir / 'python3'}\" \"$0\" \"$@\"\n' '''"
    long_path = tool(tmp_path / "b", "faketool 1\n", shebang=launcher)
    assert f"|{bin_dir / 'python3'}|" in (installation_key(str(long_path), env) or "")
    assert ask(long_path).stdout == "faketool 1\n"
    # What Python imports from is part of the key.
    assert installation_key(str(by_env), env) != installation_key(
        str(by_env), {**env, "PYTHONPATH": str(tmp_path)}
    )


def test_a_damaged_or_unwritable_memo_still_answers(
    tmp_path: Path, memo_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tool(tmp_path / "bin", "faketool 1.0\n")
    memo_folder.mkdir()
    memo = memo_folder / f"{MEMO}.json"
    memo.write_text("{not json", encoding="utf-8")
    assert ask(script).stdout == "faketool 1.0\n"
    assert ask(script).stdout == "faketool 1.0\n" and runs(script) == 1  # rewritten whole
    # A stored answer of the wrong shape is asked again.
    memo.write_text(memo.read_text().replace('"stdout": "faketool 1.0\\n"', '"stdout": 7'))
    assert ask(script).stdout == "faketool 1.0\n" and runs(script) == 2
    # A cache folder that cannot be created: every call asks, none fails.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("NEUROERP_CI_CACHE_DIR", str(blocked / "cache"))
    ask(script), ask(script)
    assert runs(script) == 4


def test_detect_secrets_keeps_its_version_through_the_memo(tmp_path: Path) -> None:
    # The caller's own check still applies to a remembered answer.
    script = tool(tmp_path / "bin", "1.5.0\n", name="detect-secrets")
    deadline = detect_secrets.Deadline(30)
    env = dict(os.environ)
    first = detect_secrets.tool_version(str(script), tmp_path, env, deadline)
    assert first == detect_secrets.tool_version(str(script), tmp_path, env, deadline) == "1.5.0"
    assert runs(script) == 1
