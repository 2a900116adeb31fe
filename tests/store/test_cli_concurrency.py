"""``neuroerp-ci run`` processes and the history store, exactly as a user runs them.

- Two runs of a tiny pipeline start at the same moment, round after round, writing the same
  store: every run is recorded whole and the store passes its integrity check.
  (``benchmarks/store_concurrency.py`` does the full 20 rounds; each CLI run pays for
  Prefect's temporary server, so the test does fewer.)
- A run killed with SIGKILL while its check runs leaves a ``running`` row; the store stays
  readable and sound, and the next run works and is recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neuroerp_ci.store import HistoryStore, RunStatus, open_store

CLI = (sys.executable, "-m", "neuroerp_ci")
# Three rounds: six runs written two at a time, one more than a baseline takes (5). Each
# round costs two CLI runs with their Prefect servers (~20 s); more: NEUROERP_CI_TEST_STORE_ROUNDS.
ROUNDS = int(os.environ.get("NEUROERP_CI_TEST_STORE_ROUNDS", "3"))
RUN_TIMEOUT_S = 300
# Knobs of the outer test run that must not leak into the runs under test.
_NOT_INHERITED = ("NEUROERP_DEMO_", "NEUROERP_CI_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")

PIPELINE = """
[target]
name = "tiny"
{store}

[[checks]]
id = "first"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "print(1)"] }}

[[checks]]
id = "work"
kind = "command"
dependencies = ["first"]
[checks.settings]
argv = ["{{python}}", "-c", 'import json; print(json.dumps(dict(work_ms=40)))']
metrics_json = true

[[checks]]
id = "slow"
kind = "command"
[checks.settings]
argv = [
    "{{python}}", "-c",
    'import os, sys, time; open(sys.argv[1], "w").write(str(os.getpid())); time.sleep(30)',
    "{{project}}/slow.pid",
]

[stages.dev]
checks = ["first", "work"]
conditions = [{{ check = "work", metric = "work_ms", max_increase_pct = 1000 }}]

[stages.slow]
checks = ["slow"]
"""


def write_project(directory: Path, url: str | None = None) -> Path:
    """A pipeline file in ``directory``; its store is ``url`` or the default file."""
    directory.mkdir(parents=True, exist_ok=True)
    store = f'\n[store]\nurl = "{url}"\n' if url else ""
    config = directory / "neuroerp-ci.toml"
    config.write_text(PIPELINE.format(store=store), encoding="utf-8")
    return config


def run_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env["PREFECT_HOME"] = str(prefect_home)
    # Two temporary Prefect servers starting at once on a busy machine need more than the
    # default 20 s; the store, not Prefect's start-up, is under test.
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    return env


def start_run(config: Path, stage: str, version: str, prefect_home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        [*CLI, "run", stage, "--config", str(config), "--version", version],
        cwd=config.parent,
        env=run_env(prefect_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a kill reaches its children
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"neuroerp-ci run did not end in {RUN_TIMEOUT_S} s:\n{out[-2000:]}\n{err}")
    return proc.returncode, out, err


def run_id_of(stdout: str) -> str:
    """The run id: the name of the report directory the run printed."""
    lines = [line for line in stdout.splitlines() if line.startswith("Reports: ")]
    assert len(lines) == 1, stdout
    return Path(lines[0].removeprefix("Reports: ").strip()).name


def two_writers(tmp_path: Path, url: str | None, rounds: int) -> None:
    config = write_project(tmp_path / "project", url)
    homes = [tmp_path / "prefect-a", tmp_path / "prefect-b"]  # Prefect's own DB is not tested
    recorded_by_cli: list[str] = []
    for round_no in range(rounds):
        procs = [start_run(config, "dev", f"r{round_no}", home) for home in homes]
        for proc in procs:
            code, out, err = finish(proc)
            assert code == 0, f"exit {code}\n{out[-2000:]}\n{err[-3000:]}"
            assert "Traceback" not in err, err
            recorded_by_cli.append(run_id_of(out))
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [*CLI, "history", "--config", str(config), "--json", "--limit", "1000"],
        env=run_env(homes[0]), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    listed = json.loads(done.stdout)
    assert sorted(r["run_id"] for r in listed) == sorted(recorded_by_cli)
    assert len(listed) == 2 * rounds
    assert {(r["status"], r["verdict"] in ("PASS", "WARN")) for r in listed} == {("finished", True)}
    store_at = url or f"sqlite:///{config.parent / '.neuroerp-ci' / 'history.sqlite3'}"
    with open_store(store_at) as store:
        assert store.integrity_check() == []
        baseline = store.baseline_provider("dev", "tiny").baseline("work", "work_ms")
        assert baseline is not None and baseline.value == 40.0
        assert len(baseline.runs) == min(5, 2 * rounds)


@pytest.mark.integration
def test_two_cli_runs_at_once_record_every_run_in_the_default_sqlite_store(
    tmp_path: Path,
) -> None:
    two_writers(tmp_path, None, ROUNDS)


@pytest.mark.integration
@pytest.mark.postgres
def test_two_cli_runs_at_once_record_every_run_in_postgresql(tmp_path: Path, pg_url: str) -> None:
    two_writers(tmp_path, pg_url, max(2, ROUNDS // 2))


def wait_for(condition: object, what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.integration
def test_a_run_killed_with_sigkill_leaves_a_sound_store_and_the_next_run_works(
    tmp_path: Path,
) -> None:
    config = write_project(tmp_path / "project")
    url = f"sqlite:///{config.parent / '.neuroerp-ci' / 'history.sqlite3'}"
    pid_file = config.parent / "slow.pid"
    home = tmp_path / "prefect"
    proc = start_run(config, "slow", "killed", home)
    try:
        wait_for(pid_file.exists, "the slow check to start")
        with open_store(url) as store:
            running = [r for r in store.runs() if r.status is RunStatus.RUNNING]
        assert [r.version for r in running] == ["killed"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        if pid_file.exists():  # the check runs in a process group of its own
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode == -signal.SIGKILL

    with open_store(url) as store:
        assert store.integrity_check() == []
        (killed,) = store.runs()
        assert killed.status is RunStatus.RUNNING and killed.state == "running/aborted?"
        assert killed.verdict is None
    code, out, err = finish(start_run(config, "dev", "after", home))
    assert code == 0, f"{out[-2000:]}\n{err[-3000:]}"
    with open_store(url) as store:
        after = store.run(run_id_of(out))
        assert after.status is RunStatus.FINISHED and after.version == "after"
        assert store.integrity_check() == []
        assert_not_a_baseline(store, killed.run_id)
    history = subprocess.run(  # noqa: S603 - fixed argument list
        [*CLI, "history", "--config", str(config)],
        env=run_env(home), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "running/aborted?" in history.stdout and "finished" in history.stdout


def assert_not_a_baseline(store: HistoryStore, run_id: str) -> None:
    for stage in ("slow", "dev"):
        provider = store.baseline_provider(stage, "tiny")
        assert all(run_id not in (b.runs if b else ()) for b in
                   (provider.baseline(c, m) for c, m in provider.metrics()))  # fmt: skip
