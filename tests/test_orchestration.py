"""The Prefect adapter against Prefect's test harness (a real, temporary API and database)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.states import get_state_exception

from neuroerp_ci.orchestration import artifact_key, stage_gate

# Prefect's temporary server took 70 s to start on a busy 2-core CI machine (30 s default).
SERVER_STARTUP_S = 240

PIPELINE = """
[target]
python = "{{python}}"

[[checks]]
id = "quick"
kind = "command"
settings.argv = ["{{python}}", "-c", "print('{{\\"value\\": {value}}}')"]
settings.metrics_json = true

[stages.dev]
conditions = [
  {{ check = "quick", metric = "value", max = 10 }},
  {{ check = "quick", metric = "value", max = 5, severity = "warning" }},
]
"""


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=SERVER_STARTUP_S),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield


def gate(tmp_path: Path, value: int, config_text: str | None = None) -> Any:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(config_text if config_text is not None else PIPELINE.format(value=value))
    return stage_gate(
        stage="dev",
        config=str(config),
        version="abc123",
        output_dir=str(tmp_path / "out"),
        run_id="run-1",
        return_state=True,
    )


def artifacts(key: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )

    return asyncio.run(read())


@pytest.mark.integration
def test_pass_completes_with_summary_and_artifacts(harness: None, tmp_path: Path) -> None:
    state = gate(tmp_path, 1)
    assert state.is_completed() and state.name == "Completed"
    assert state.message == "dev: PASS — 2 of 2 conditions met"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["version"] == "abc123"
    summary = artifacts("neuroerp-ci-dev-summary")
    table = artifacts("neuroerp-ci-dev-outcomes")
    assert summary and "PASS" in summary[0].data
    assert table and "value <= 10" in str(table[0].data)


@pytest.mark.integration
def test_warn_completes_with_warnings(harness: None, tmp_path: Path) -> None:
    state = gate(tmp_path, 7)
    assert state.is_completed() and state.name == "CompletedWithWarnings"
    assert "1 of 2 conditions warned: quick: value 7 > 5" in state.message


@pytest.mark.integration
def test_fail_ends_the_flow_failed_with_the_verdict(harness: None, tmp_path: Path) -> None:
    state = gate(tmp_path, 12)
    assert state.is_failed()
    assert state.message == (
        "dev: FAIL — 1 of 2 conditions failed: quick: value 12 > 10"
        """ (python -c print('{"value": 12}') exited 0; value=12)"""
    )
    # What a worker's log ends with: Prefect raises this exception for the Failed state.
    assert str(get_state_exception(state)) == state.message
    assert (tmp_path / "out" / "junit.xml").is_file()


@pytest.mark.integration
def test_bad_config_fails_the_flow_with_one_line(harness: None, tmp_path: Path) -> None:
    state = gate(tmp_path, 0, config_text="[[checks]]\nid = 'x'\nkind = 'nope'\n[stages.dev]\n")
    assert state.is_failed()
    assert "checks[x].kind: unknown kind 'nope'" in state.message
    assert "\n" not in state.message


def test_artifact_keys_are_prefect_safe() -> None:
    assert artifact_key("neuroerp-ci-Staging_EU 2") == "neuroerp-ci-staging-eu-2"
