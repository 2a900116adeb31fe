"""Promotion rules: a stage that ``requires`` another runs only for a version that passed it.

Unit tests decide against a small fake history and the real SQLite store; the integration
tests run the real CLI (``run staging --version X`` and ``promote``) and prove with a marker
file that a refused stage runs no check at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import OutcomeStatus, StageReport, Summary, Verdict, summary_line
from neuroerp_ci.release.promotion import PROMOTION_CHECK, check_promotion, refusal_report
from neuroerp_ci.store import HistoryStore, RunRecord, RunStatus, open_store

# The development check writes dev.marker, the staging check staging.marker: a marker file
# exists only if its check really ran.
PIPELINE = """
[target]
name = "tiny"
python = "{{python}}"

[[checks]]
id = "dev-marker"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "{write}", "{{project}}/dev.marker", "{dev_exit}"] }}

[[checks]]
id = "staging-marker"
kind = "command"
settings = {{ argv = ["{{python}}", "-c", "{write}", "{{project}}/staging.marker", "0"] }}

[stages.development]
checks = ["dev-marker"]

[stages.staging]
requires = "development"
checks = ["staging-marker"]
"""
WRITE = (
    "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('ran'); sys.exit(int(sys.argv[2]))"
)


# A rollout stage: its check would write prod.marker, after an approval.
PRODUCTION = """
[[checks]]
id = "prod-marker"
kind = "command"
settings = { argv = ["{python}", "-c", "open('prod.marker', 'w').write('ran')"] }

[stages.production]
requires = "staging"
approval = { timeout_s = 5 }
checks = ["prod-marker"]
"""


def write_pipeline(directory: Path, dev_exit: int = 0, production: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "neuroerp-ci.toml"
    text = PIPELINE.format(write=WRITE, dev_exit=dev_exit) + (PRODUCTION if production else "")
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class FakeHistory:
    """A history that knows which (stage, target, version) passed, and records the asks."""

    passing: dict[tuple[str, str, str], str] = field(default_factory=dict)
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def passed(self, stage: str, target: str, version: str) -> RunRecord | None:
        self.asked.append((stage, target, version))
        run_id = self.passing.get((stage, target, version))
        if run_id is None:
            return None
        return RunRecord(
            run_id, stage, target, version, RunStatus.FINISHED, Verdict.PASS, "t0", "t1", 1.0
        )


def test_a_stage_without_requires_is_always_allowed(tmp_path: Path) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path))
    history = FakeHistory()
    decision = check_promotion(pipeline, pipeline.stage("development"), "abc", history)
    assert decision.allowed and decision.required is None
    assert history.asked == []


def test_staging_without_a_development_pass_is_refused_with_the_reason(tmp_path: Path) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path))
    history = FakeHistory({("development", "tiny", "other-version"): "r0"})
    decision = check_promotion(pipeline, pipeline.stage("staging"), "abc123", history)
    assert not decision.allowed
    assert history.asked == [("development", "tiny", "abc123")]
    assert "staging requires development to have passed for version abc123" in decision.reason
    assert "neuroerp-ci run development --version abc123" in decision.reason


def test_staging_after_a_development_pass_is_allowed_with_the_evidence(tmp_path: Path) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path))
    history = FakeHistory({("development", "tiny", "abc123"): "run-7"})
    decision = check_promotion(pipeline, pipeline.stage("staging"), "abc123", history)
    assert decision.allowed and decision.evidence_run == "run-7"
    assert decision.reason == "development passed for abc123 (PASS, run run-7)"


@pytest.mark.parametrize("version", ["", "unversioned"])
def test_no_version_is_refused_without_asking_the_history(tmp_path: Path, version: str) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path))
    history = FakeHistory()
    decision = check_promotion(pipeline, pipeline.stage("staging"), version, history)
    assert not decision.allowed and "no version was given" in decision.reason
    assert history.asked == []


def test_no_history_fails_closed(tmp_path: Path) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path))
    decision = check_promotion(pipeline, pipeline.stage("staging"), "abc", None)
    assert not decision.allowed and "no run history" in decision.reason


def test_a_rollout_stage_is_refused_as_a_plain_gate_even_with_its_evidence(
    tmp_path: Path,
) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path, production=True))
    history = FakeHistory({("staging", "tiny", "abc"): "run-3"})
    plain = check_promotion(pipeline, pipeline.stage("production"), "abc", history)
    assert not plain.allowed and history.asked == []
    assert plain.reason.startswith("production has approval, hooks or a canary and runs only")
    assert "neuroerp-ci promote abc --to production" in plain.reason
    assert refusal_report(plain, "tiny", "r").outcomes[0].condition == "runs only as a rollout"
    production = pipeline.stage("production")
    rollout = check_promotion(pipeline, production, "abc", history, as_rollout=True)
    assert rollout.allowed and rollout.evidence_run == "run-3"


def test_the_refusal_report_is_a_fail_with_one_outcome_and_no_checks(tmp_path: Path) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path))
    decision = check_promotion(pipeline, pipeline.stage("staging"), "abc", FakeHistory())
    report = refusal_report(decision, "tiny", "run-1")
    assert report.verdict is Verdict.FAIL and report.checks == []
    (outcome,) = report.outcomes
    assert outcome.check == PROMOTION_CHECK and outcome.status is OutcomeStatus.FAIL
    assert outcome.condition == "requires development passed for abc"
    line = summary_line(report.summary)
    assert line.startswith("staging: FAIL — refused: staging requires development")


# --- against the real history store ---------------------------------------------------------


def _report(run_id: str, stage: str, version: str, verdict: Verdict) -> StageReport:
    return StageReport(
        run_id, stage, version, "tiny", verdict, "2026-03-01T12:00:00+00:00",
        "2026-03-01T12:00:01+00:00", 1.0, [], [], summary=Summary(stage, verdict),
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    opened = open_store(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    return opened


def test_the_real_store_decides_by_stage_target_version_and_validity(
    tmp_path: Path, store: HistoryStore
) -> None:
    pipeline = load_pipeline(write_pipeline(tmp_path / "p"))
    with store:
        store.finish_run(_report("failed", "development", "v1", Verdict.FAIL))
        store.finish_run(_report("other", "development", "v2", Verdict.PASS))
        assert not check_promotion(pipeline, pipeline.stage("staging"), "v1", store).allowed
        store.finish_run(_report("warned", "development", "v1", Verdict.WARN))
        decision = check_promotion(pipeline, pipeline.stage("staging"), "v1", store)
        assert decision.allowed and decision.evidence_run == "warned"
        store.invalidate("warned", "flaky environment")
        assert not check_promotion(pipeline, pipeline.stage("staging"), "v1", store).allowed


# --- the real CLI ---------------------------------------------------------------------------

CLI = (sys.executable, "-m", "neuroerp_ci")
_NOT_INHERITED = ("NEUROERP_DEMO_", "NEUROERP_CI_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")


def cli(args: list[str], project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_HOME"] = str(home)
    return subprocess.run(  # noqa: S603 - fixed argument list
        [*CLI, *args, "--config", str(project / "neuroerp-ci.toml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the module: its database is migrated once (≈ 9 s), not per run."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.mark.integration
def test_cli_run_staging_without_development_pass_is_refused_before_any_check(
    tmp_path: Path, home: Path
) -> None:
    project = tmp_path / "project"
    write_pipeline(project)
    done = cli(["run", "staging", "--version", "abc123"], project, home)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused: staging requires development to have passed for version abc123" in (
        " ".join(done.stdout.split())
    )
    assert not (project / "staging.marker").exists()  # the staging check never ran
    with open_store(f"sqlite:///{project / '.neuroerp-ci' / 'history.sqlite3'}") as store:
        (record,) = store.runs(stage="staging")
    assert record.verdict is Verdict.FAIL and "refused" in record.summary


@pytest.mark.integration
def test_cli_run_of_a_rollout_stage_is_refused_so_it_cannot_skip_its_approval(
    tmp_path: Path, home: Path
) -> None:
    project = tmp_path / "project"
    write_pipeline(project, production=True)
    with open_store(f"sqlite:///{project / '.neuroerp-ci' / 'history.sqlite3'}") as store:
        store.finish_run(_report("staged", "staging", "v9", Verdict.PASS))
    done = cli(["run", "production", "--version", "v9"], project, home)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "refused: production has approval, hooks or a canary" in " ".join(done.stdout.split())
    assert not (project / "prod.marker").exists()  # no validation check ran, nothing passed
    with open_store(f"sqlite:///{project / '.neuroerp-ci' / 'history.sqlite3'}") as store:
        assert store.passed("production", "tiny", "v9") is None


@pytest.mark.integration
def test_cli_promote_runs_staging_only_after_development_passed(
    tmp_path: Path, home: Path
) -> None:
    project = tmp_path / "project"
    write_pipeline(project, dev_exit=1)  # the development check fails: FAIL
    refused = cli(["promote", "v7", "--to", "staging"], project, home)
    assert refused.returncode == 1 and "no passing development run" in refused.stdout
    assert cli(["run", "development", "--version", "v7"], project, home).returncode == 1
    assert (project / "dev.marker").exists()
    still = cli(["promote", "v7", "--to", "staging"], project, home)
    assert still.returncode == 1, still.stdout + still.stderr
    assert not (project / "staging.marker").exists()

    write_pipeline(project, dev_exit=0)  # fixed: development passes for v7
    assert cli(["run", "development", "--version", "v7"], project, home).returncode == 0
    promoted = cli(["promote", "v7", "--to", "staging"], project, home)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "Promoting v7 to staging: development passed for v7 (PASS, run" in promoted.stdout
    assert (project / "staging.marker").read_text() == "ran"
