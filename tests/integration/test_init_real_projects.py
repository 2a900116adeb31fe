"""``neuroerp-ci init`` on two real projects of different shapes, then their development stage.

The projects are real sdists downloaded with pip at test time (nothing third-party is kept in
this repository): itsdangerous 2.2.0 (src layout, pinned requirements/*.txt, a test suite that
needs freezegun) and idna 3.10 (flat layout, no requirements file, tests needing only
pytest). itsdangerous gets a project .venv, as a user would have one: made without pip, it
sees neuroerp-ci's own packages (pytest, pytest-cov) through a .pth file and gets freezegun
installed into it, which takes seconds where installing everything would take minutes. idna
has none, so its checks run on neuroerp-ci's interpreter and the verdict warns about it.

Each project: ``init`` writes the file (exit 0, the real loader accepts it), then the real
``run development`` (Prefect and every tool included) must end in a verdict with every check
having run (status ``ok``), not a check error or a refused pipeline file. Which verdict is
the projects' own business: at the time of writing itsdangerous FAILs (a bandit B324 finding,
test keys the secrets scan reports), idna FAILs (old pip and setuptools in neuroerp-ci's
environment, with the offline mirror's 2024 data). The two stages run side by side, each with
a Prefect home of its own, to stay within about two minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.config import DEFAULT_FILE, load_pipeline
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration

SDISTS = {"itsdangerous": "itsdangerous==2.2.0", "idna": "idna==3.10"}
ITSDANGEROUS_TEST_NEEDS = "freezegun==1.4.0"  # its requirements/tests.txt pin
STAGE_CHECKS = ["unit-tests", "dependency-audit", "static-security", "secret-scan", "licences"]
PIP_TIMEOUT_S = 240


@dataclass(frozen=True)
class Gated:
    """One project after ``init`` and ``run development``."""

    project: Path
    init: subprocess.CompletedProcess[str]
    run: subprocess.CompletedProcess[str]
    report: dict[str, Any]

    def describe(self) -> str:
        checks = [f"{c['id']}: {c['status']} {c['reason']}" for c in self.report.get("checks", [])]
        return "\n".join(
            [
                f"{self.project.name}: exit {self.run.returncode}, {self.report.get('summary')}",
                *checks,
                f"stdout: {self.run.stdout[-2500:]}",
                f"stderr: {self.run.stderr[-2500:]}",
            ]
        )


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        check=False,
    )


def skip_unless_ok(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        pytest.skip(f"{what} failed (no package index reachable?): {done.stderr.strip()[-300:]}")


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two sdists, downloaded and unpacked; itsdangerous with its .venv."""
    base = tmp_path_factory.mktemp("real-projects")
    try:
        done = pip(
            "download", "--no-binary", ":all:", "--no-deps", "-d", str(base), *SDISTS.values()
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip download did not finish in {PIP_TIMEOUT_S} s")
    skip_unless_ok(done, "pip download " + " ".join(SDISTS.values()))
    found: dict[str, Path] = {}
    for name, spec in SDISTS.items():
        version = spec.split("==")[1]
        with tarfile.open(base / f"{name}-{version}.tar.gz") as archive:
            archive.extractall(base, filter="data")
        found[name] = base / f"{name}-{version}"
    add_venv(found["itsdangerous"], ITSDANGEROUS_TEST_NEEDS)
    return found


def add_venv(project: Path, needs: str) -> None:
    """A project .venv that sees neuroerp-ci's packages and has ``needs`` installed."""
    venv = project / ".venv"
    subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    assert site.is_dir(), f"no {site} in the new venv"
    (site / "neuroerp-ci-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    try:
        done = pip("install", "--no-deps", "--target", str(site), needs)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install {needs} did not finish in {PIP_TIMEOUT_S} s")
    skip_unless_ok(done, f"pip install {needs}")


def init_and_run(project: Path, out: Path, env: dict[str, str], prefect_home: Path) -> Gated:
    init = run_cli(["init"], env, cwd=project, timeout=120)
    assert init.returncode == 0, f"init exit {init.returncode}: {init.stdout}{init.stderr}"
    own_env = {**env, "PREFECT_HOME": str(prefect_home)}
    run = run_cli(["run", "development", "--output", str(out)], own_env, cwd=project)
    report_file = out / "report.json"
    report = json.loads(report_file.read_text(encoding="utf-8")) if report_file.is_file() else {}
    return Gated(project, init, run, report)


@pytest.fixture(scope="module")
def gated(
    projects: dict[str, Path],
    stage_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Gated]:
    """``init`` then ``run development`` in both projects, side by side."""
    base = tmp_path_factory.mktemp("gated")
    with ThreadPoolExecutor(max_workers=len(projects)) as pool:
        futures = {
            name: pool.submit(
                init_and_run, project, base / f"{name}-out", stage_env, base / f"{name}-prefect"
            )
            for name, project in projects.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(SDISTS))
def test_init_writes_a_file_the_real_loader_accepts(gated: dict[str, Gated], name: str) -> None:
    result = gated[name]
    assert result.init.stderr == ""
    assert "Next: neuroerp-ci run development\n" in result.init.stdout
    pipeline = load_pipeline(result.project / DEFAULT_FILE)
    assert list(pipeline.stage("development").checks) == STAGE_CHECKS


def test_the_shapes_were_told_apart(gated: dict[str, Gated]) -> None:
    its = load_pipeline(gated["itsdangerous"].project / DEFAULT_FILE)
    idna = load_pipeline(gated["idna"].project / DEFAULT_FILE)
    assert its.target.python == ".venv/bin/python"
    assert its.checks["static-security"].settings.paths == ["src/itsdangerous"]  # type: ignore[attr-defined]
    assert idna.checks["static-security"].settings.paths == ["idna"]  # type: ignore[attr-defined]
    assert "package:        src/itsdangerous (src layout" in gated["itsdangerous"].init.stdout
    assert "package:        idna (flat layout" in gated["idna"].init.stdout
    assert "virtual env:    .venv/" in gated["itsdangerous"].init.stdout
    assert "virtual env:    not found" in gated["idna"].init.stdout


@pytest.mark.parametrize("name", list(SDISTS))
def test_the_development_stage_runs_every_check_to_a_verdict(
    gated: dict[str, Gated], name: str
) -> None:
    result = gated[name]
    assert result.report, f"no report.json\n{result.describe()}"
    assert result.run.returncode in (0, 1), result.describe()  # a verdict, not a refusal
    assert "Traceback" not in result.run.stderr, result.describe()
    assert result.report["verdict"] in ("PASS", "WARN", "FAIL"), result.describe()
    statuses = {c["id"]: c["status"] for c in result.report["checks"]}
    assert statuses == dict.fromkeys(STAGE_CHECKS, "ok"), result.describe()
    judged = {o["check"] for o in result.report["outcomes"]}
    assert set(STAGE_CHECKS) <= judged, result.describe()
    tests = next(c for c in result.report["checks"] if c["id"] == "unit-tests")
    assert tests["metrics"]["tests"]["value"] > 0, result.describe()
    assert tests["metrics"]["failed"]["value"] == 0, result.describe()
    assert "coverage_pct" in tests["metrics"], result.describe()
