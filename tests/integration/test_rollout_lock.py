"""One production rollout at a time, on a real Prefect server with a real worker.

Two ``rollout/production`` runs are started at once and every run that pauses for approval
is approved. Prefect's deployment concurrency limit frees its slot while a run is paused, so
without the rollout lock both runs pause, both are approved and both deploy, one on top of
the other. With it, exactly one deploys and the other ends Failed, naming the flow run that
holds the lock — refused at once, before anyone was asked to approve it.

The server, work pool, deployments and worker are those of ``test_prefect_server`` (its
fixtures and helpers, one server for this module); the demo's production stage is cut down
to no ``requires`` and one quick validation check, so the test measures the lock, not the
gates.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from test_prefect_server import (  # the real-server fixtures: one server for this module
    DEMO_DIR,
    RUN_TIMEOUT_S,
    Server,
    deployed,
    server,
    start_worker,
    stop_worker,
    worker_log,
)

from neuroerp_ci.demo import DEMO_PIPELINE

pytestmark = pytest.mark.integration
__all__ = ["deployed", "server"]  # fixtures, used by name

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def quick_production(project: Path) -> None:
    """The demo's production stage without ``requires`` and with one quick check (bandit)."""
    path = project / DEMO_PIPELINE
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    production = document["stages"]["production"]
    production.pop("requires", None)
    production["checks"] = ["static-security"]
    production["conditions"] = [{"check": "static-security", "findings": "high", "max": 0}]
    path.write_text(tomli_w.dumps(document), encoding="utf-8")


def start_rollout(srv: Server, version: str) -> str:
    """``prefect deployment run rollout/production`` without waiting; the flow run's id."""
    done = srv.prefect("deployment", "run", "rollout/production", "--param", f"version={version}")
    found = re.search(r"UUID: ([0-9a-f-]{36})", done.stdout)
    assert done.returncode == 0 and found, done.stdout + done.stderr
    return found.group(1)


def api(srv: Server) -> str:
    return srv.env["PREFECT_API_URL"]


def flow_run(srv: Server, run_id: str) -> dict[str, Any]:
    response = httpx.get(f"{api(srv)}/flow_runs/{run_id}", timeout=10)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def wait_for(
    srv: Server, run_ids: list[str], done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, dict[str, Any]]:
    """Poll the API until ``done`` holds for every run's state; bounded by RUN_TIMEOUT_S."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        states = {run_id: flow_run(srv, run_id)["state"] for run_id in run_ids}
        if all(done(state) for state in states.values()):
            return states
        if time.monotonic() > deadline:
            pytest.fail(f"runs not {what} after {RUN_TIMEOUT_S} s: {states}")
        time.sleep(1)


def approve(srv: Server, run_id: str) -> None:
    """What an approver does in the UI's Resume form, through the API."""
    answer = {"approve": True, "approver": "alice", "comment": "lock test"}
    response = httpx.post(
        f"{api(srv)}/flow_runs/{run_id}/resume", json={"run_input": answer}, timeout=30
    )
    response.raise_for_status()
    assert response.json()["status"] == "ACCEPT", response.text


def test_two_rollouts_at_once_deploy_exactly_one_and_the_other_names_the_holder(
    deployed: Server, advisory_mirror: Path
) -> None:
    project = deployed.checkout / DEMO_DIR
    quick_production(project)
    worker = start_worker(deployed, {"NEUROERP_CI_ADVISORIES": str(advisory_mirror)})
    runs = {start_rollout(deployed, version): version for version in ("lock-a", "lock-b")}
    ids = list(runs)
    waiting = wait_for(
        deployed, ids, lambda s: s["type"] == "PAUSED" or s["type"] in FINAL, "paused or ended"
    )
    for run_id, state in waiting.items():
        if state["type"] == "PAUSED":
            approve(deployed, run_id)
    final = wait_for(deployed, ids, lambda s: s["type"] in FINAL, "ended")
    stop_worker(deployed, worker)

    log = worker_log(deployed, 0)
    completed = [r for r, s in final.items() if s["type"] == "COMPLETED"]
    failed = [r for r, s in final.items() if s["type"] == "FAILED"]
    assert len(completed) == 1 and len(failed) == 1, f"{final}\n{log}"
    (winner,), (loser,) = completed, failed
    message = final[loser]["message"] or ""
    assert "holds the rollout lock: run " in message, message
    assert winner in message, f"the refusal does not name the holder {winner}: {message}"
    assert "nothing deployed" in message
    # Exactly one deploy hook ran, and what is deployed is the winner's version.
    deploy_logs = list((project / ".neuroerp-ci" / "runs").glob("*/hooks/hook-deploy.log"))
    assert len(deploy_logs) == 1, deploy_logs
    data = project / "data"
    assert (data / "deployed.txt").read_text() == runs[winner]
    assert (data / "previous.txt").read_text() == ""  # nothing was deployed before it
