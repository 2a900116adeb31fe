"""The bundled demo: write_demo() copies the template; the copy's suites and service work."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from neuroerp_ci.demo import DEMO_PIPELINE, template, write_demo
from neuroerp_ci.errors import UsageError
from neuroerp_ci.support.tooling import kill_process_group, run_tool

EXPECTED = (
    DEMO_PIPELINE,
    "pyproject.toml",
    "requirements.txt",
    "locustfile.py",
    "README.md",
    "neuroerp_demo/__init__.py",
    "neuroerp_demo/app.py",
    "neuroerp_demo/db.py",
    "neuroerp_demo/faults.py",
    "neuroerp_demo/smoke.py",
    "neuroerp_demo/migrate.py",
    "tests/conftest.py",
    "frontend/dist/index.html",
    "frontend/src/README.md",
)
FAULT_KNOBS = ("NEUROERP_DEMO_DELAY_MS", "NEUROERP_DEMO_ERROR_RATE", "NEUROERP_DEMO_DB")


def test_write_demo_copies_the_project(tmp_path: Path) -> None:
    dest = write_demo(tmp_path / "demo")
    assert dest == tmp_path / "demo"
    for name in EXPECTED:
        assert (dest / name).is_file(), name
    assets = sorted(p.name for p in (dest / "frontend/dist/assets").iterdir())
    assert [re.sub(r"\.[0-9a-f]{8}\.", ".<hash>.", a) for a in assets] == [
        "app.<hash>.css", "app.<hash>.js", "vendor.<hash>.js",
    ]
    index = (dest / "frontend/dist/index.html").read_text(encoding="utf-8")
    for asset in assets:
        assert f"/assets/{asset}" in index
    assert (dest / "neuroerp_demo/app.py").read_bytes() == (
        template() / "neuroerp_demo" / "app.py"
    ).read_bytes()
    assert not list(dest.rglob("__pycache__"))


def test_write_demo_into_an_existing_empty_directory(tmp_path: Path) -> None:
    assert (write_demo(tmp_path) / DEMO_PIPELINE).is_file()


def test_write_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UsageError, match="not empty"):
        write_demo(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_write_demo_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="is a file"):
        write_demo(target)


def test_requirements_are_exact_pins(tmp_path: Path) -> None:
    lines = (template() / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert len(pins) >= 15
    assert all(re.fullmatch(r"[a-z0-9-]+==[0-9][0-9a-z.]*", pin) for pin in pins), pins


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FAULT_KNOBS}
    env.pop("NEUROERP_CI_BASE_URL", None)
    return {**env, **extra}


@pytest.mark.integration
def test_demo_unit_suite_passes_with_coverage(tmp_path: Path) -> None:
    project = write_demo(tmp_path / "demo")
    run = run_tool(
        [sys.executable, "-m", "pytest", "-m", "unit", "-q", "-p", "no:cacheprovider",
         "--cov=neuroerp_demo", "--cov-report=json:coverage.json"],
        cwd=project, timeout=300, env=_clean_env(), ok_codes=None,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert re.search(r"\d+ passed", run.stdout)
    coverage = json.loads((project / "coverage.json").read_text(encoding="utf-8"))
    assert coverage["totals"]["percent_covered"] >= 80


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _service(project: Path, env: Mapping[str, str]) -> Iterator[str]:
    """Start the demo with uvicorn on a free loopback port; always stop it."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "neuroerp_demo.app:app",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=project, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise AssertionError(f"uvicorn exited {proc.returncode}: {err[-1500:]}")
            try:
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the demo service did not get healthy within 60 s")
            time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_process_group(proc)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _fastest(client: httpx.Client, path: str, n: int = 3) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        assert client.get(path).status_code == 200
        times.append(time.perf_counter() - started)
    return min(times)


@pytest.mark.integration
def test_demo_service_serves_and_fault_knobs_work(tmp_path: Path) -> None:
    project = write_demo(tmp_path / "demo")
    plain = _clean_env(NEUROERP_DEMO_DB=str(tmp_path / "plain.sqlite3"))
    with _service(project, plain) as url, httpx.Client(base_url=url, timeout=10) as client:
        baseline = _fastest(client, "/health")
        assert client.get("/api/articles/1").status_code == 200
        assert client.get("/").headers["content-type"].startswith("text/html")
    faulty = _clean_env(
        NEUROERP_DEMO_DB=str(tmp_path / "faulty.sqlite3"),
        NEUROERP_DEMO_DELAY_MS="300",
        NEUROERP_DEMO_ERROR_RATE="1",
    )
    with _service(project, faulty) as url, httpx.Client(base_url=url, timeout=10) as client:
        delayed = _fastest(client, "/health")
        broken = client.get("/api/articles")
    assert delayed >= 0.3
    assert delayed - baseline >= 0.25, (baseline, delayed)
    assert broken.status_code == 500
    assert broken.json() == {"detail": "injected fault"}


@pytest.mark.integration
def test_demo_service_refuses_an_invalid_knob(tmp_path: Path) -> None:
    project = write_demo(tmp_path / "demo")
    env = _clean_env(
        NEUROERP_DEMO_DB=str(tmp_path / "x.sqlite3"), NEUROERP_DEMO_ERROR_RATE="lots"
    )
    run = run_tool(
        [sys.executable, "-m", "uvicorn", "neuroerp_demo.app:app",
         "--host", "127.0.0.1", "--port", str(_free_port())],
        cwd=project, timeout=60, env=env, ok_codes=None,
    )
    assert run.returncode != 0
    assert "NEUROERP_DEMO_ERROR_RATE must be a fraction between 0 and 1, got 'lots'" in run.stderr
