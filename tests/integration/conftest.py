"""End-to-end helpers: a fresh copy of the bundled demo, one change, the real CLI in a subprocess.

Every scenario runs ``python -m neuroerp_ci run development`` exactly as a user would, with the
real tools (pytest, bandit, pip-audit, the demo service under uvicorn), and then reads the
``report.json`` it wrote. The helpers here are the only place that knows how a scenario is set
up, run and read, so each test states just its one change and what the gate must say.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w  # pip-audit's own dependency, so always installed next to it

from neuroerp_ci.demo import DEMO_PIPELINE, write_demo

CLI = (sys.executable, "-m", "neuroerp_ci")
CLI_TIMEOUT_S = 300
ADVISORIES_ENV = "NEUROERP_CI_ADVISORIES"
# Knobs and settings of the outer test run that must not leak into the stage under test.
_NOT_INHERITED = ("NEUROERP_DEMO_", "NEUROERP_CI_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")

Outcome = dict[str, Any]
Prepare = Callable[[Path], None]


@dataclass(frozen=True)
class StageRun:
    """What one ``run development`` left behind: exit code, console text and report."""

    returncode: int
    stdout: str
    stderr: str
    out_dir: Path
    report: dict[str, Any]

    def check(self, check_id: str) -> dict[str, Any]:
        """The ``checks[]`` entry of ``check_id``."""
        found = [c for c in self.report["checks"] if c["id"] == check_id]
        assert len(found) == 1, f"{check_id!r} not exactly once in checks[]:\n{self.describe()}"
        return found[0]

    def outcomes(self, check_id: str | None = None, status: str | None = None) -> list[Outcome]:
        """The outcomes, optionally of one check and/or with one status."""
        return [
            o
            for o in self.report["outcomes"]
            if (check_id is None or o["check"] == check_id)
            and (status is None or o["status"] == status)
        ]

    def outcome(self, check_id: str, condition: str) -> Outcome:
        """The one outcome of ``check_id`` whose condition text is ``condition``."""
        found = [o for o in self.outcomes(check_id) if o["condition"] == condition]
        assert len(found) == 1, f"no single {check_id}: {condition!r}:\n{self.describe()}"
        return found[0]

    def failing(self) -> list[Outcome]:
        """Outcomes that count as a FAIL (an INCONCLUSIVE one with on_inconclusive fail too)."""
        return [
            o
            for o in self.outcomes()
            if o["status"] == "fail" or (o["status"] == "inconclusive" and o["counts_as"] == "fail")
        ]

    def failing_checks(self) -> set[str]:
        return {o["check"] for o in self.failing()}

    def assert_failed(self, failing: set[str], may_also_fail: frozenset[str] = frozenset()) -> None:
        """Exit 1 and FAIL on the console and in report.json, no traceback, and failed
        outcomes on exactly the checks ``failing`` (plus, at most, ``may_also_fail``)."""
        assert self.returncode == 1, self.describe()
        assert self.report["verdict"] == "FAIL", self.describe()
        assert "FAIL" in self.stdout and "Reports:" in self.stdout, self.describe()
        assert "Traceback" not in self.stderr, self.describe()
        assert failing <= self.failing_checks() <= failing | may_also_fail, self.describe()

    def describe(self) -> str:
        """Enough of the run to understand a failed assertion without opening files."""
        lines = [f"exit {self.returncode}; {self.report.get('summary', '(no report)')}"]
        lines += [
            f"  check {c['id']}: {c['status']} {c['reason']}"
            for c in self.report.get("checks", [])
            if c["status"] != "ok"
        ]
        lines += [
            f"  {o['status']} {o['check']} [{o['condition']}]: {o['reason']}"
            for o in self.report.get("outcomes", [])
            if o["status"] != "pass"
        ]
        lines.append(f"stdout tail: {self.stdout[-1500:]}")
        lines.append(f"stderr tail: {self.stderr[-1500:]}")
        return "\n".join(lines)


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """The neuroerp-ci command line in a child process (never through a shell)."""
    return subprocess.run(  # noqa: S603 - fixed argument list
        [*CLI, *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_development(
    project: Path, out_dir: Path, env: Mapping[str, str], stage: str = "development"
) -> StageRun:
    """``run development`` (or ``stage``) on ``project``'s pipeline file; the report must
    exist."""
    done = run_cli(
        [
            "run", stage,
            "--config", str(project / DEMO_PIPELINE),
            "--output", str(out_dir),
            "--version", "test",
        ],
        env,
        cwd=project,
    )  # fmt: skip
    report_file = out_dir / "report.json"
    assert report_file.is_file(), (
        f"no report.json (exit {done.returncode})\nstdout: {done.stdout[-2000:]}\n"
        f"stderr: {done.stderr[-3000:]}"
    )
    report: dict[str, Any] = json.loads(report_file.read_text(encoding="utf-8"))
    return StageRun(done.returncode, done.stdout, done.stderr, out_dir, report)


def edit_pipeline(
    project: Path,
    target: Mapping[str, Any] | None = None,
    check_settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Change the demo's pipeline file: ``target`` keys set (``None`` removes one), and
    settings merged into the named checks. Comments are lost; the values are what count."""
    path = project / DEMO_PIPELINE
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    for key, value in (target or {}).items():
        if value is None:
            document["target"].pop(key)
        else:
            document["target"][key] = value
    for check_id, settings in (check_settings or {}).items():
        found = [c for c in document["checks"] if c["id"] == check_id]
        assert len(found) == 1, f"the demo pipeline has no single check {check_id!r}"
        found[0].setdefault("settings", {}).update(settings)
    path.write_text(tomli_w.dumps(document), encoding="utf-8")


@pytest.fixture(scope="session")
def run_stage() -> Callable[..., StageRun]:
    """:func:`run_development` for a test's own project: ``run_stage(project, out, env, stage)``."""
    return run_development


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the session: runs share its database, other sessions do not."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture(scope="session")
def stage_env(advisory_mirror: Path, prefect_home: Path) -> dict[str, str]:
    """The caller's environment with the offline advisory mirror and no fault knobs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env[ADVISORIES_ENV] = str(advisory_mirror)
    env["PREFECT_HOME"] = str(prefect_home)
    return env


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory, stage_env: dict[str, str]
) -> Callable[..., StageRun]:
    """Run the development stage on a fresh demo after one change.

    ``prepare`` edits the written project's files; ``target`` and ``check_settings`` edit its
    pipeline file (see :func:`edit_pipeline`); ``env`` adds variables, ``unset`` removes them.
    """

    def run(
        name: str,
        *,
        prepare: Prepare | None = None,
        target: Mapping[str, Any] | None = None,
        check_settings: Mapping[str, Mapping[str, Any]] | None = None,
        env: Mapping[str, str] | None = None,
        unset: tuple[str, ...] = (),
    ) -> StageRun:
        base = tmp_path_factory.mktemp(name)
        project = write_demo(base / "demo")
        if prepare is not None:
            prepare(project)
        if target or check_settings:
            edit_pipeline(project, target, check_settings)
        run_env = {k: v for k, v in stage_env.items() if k not in unset}
        run_env.update(env or {})
        return run_development(project, base / "out", run_env)

    return run
