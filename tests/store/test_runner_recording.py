"""``run_stage`` with a history store: the run is recorded, and the next run of the stage is
compared with it. Real (trivial) command checks, the Prefect-free thread executor."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neuroerp_ci.checks import Check
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import OutcomeStatus, Verdict
from neuroerp_ci.run.runner import NullObserver, RunOptions, StageOutcome, ThreadExecutor, run_stage
from neuroerp_ci.store import HistoryStore, RunStatus

PIPELINE = """
[target]
name = "erp"
python = "{python}"  # declared: no interpreter warning

[[checks]]
id = "work"
kind = "command"
[checks.settings]
argv = ["{python}", "-c", 'import json; print(json.dumps(dict(work_ms=40)))']
metrics_json = true

[stages.dev]
checks = ["work"]
conditions = [{ check = "work", metric = "work_ms", max_increase_pct = 50 }]
"""


def run(
    tmp_path: Path, store: HistoryStore, run_id: str, observer: NullObserver | None = None
) -> StageOutcome:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE, encoding="utf-8")
    pipeline = load_pipeline(config)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return run_stage(
            pipeline,
            RunOptions(stage="dev", version="v1", output_dir=tmp_path / run_id, run_id=run_id),
            ThreadExecutor(pool),
            observer,
            store=store,
        )


def test_a_run_is_recorded_and_becomes_the_next_runs_baseline(
    tmp_path: Path, store: HistoryStore
) -> None:
    first = run(tmp_path, store, "run-1").report
    (no_baseline,) = first.outcomes
    assert no_baseline.status is OutcomeStatus.WARN and no_baseline.baseline_runs == ()
    recorded = store.run("run-1")
    assert recorded.status is RunStatus.FINISHED and recorded.verdict is Verdict.WARN
    assert recorded.target == "erp" and recorded.version == "v1"
    assert recorded.fingerprint["python"]

    second = run(tmp_path, store, "run-2").report
    (compared,) = second.outcomes
    assert compared.baseline_runs == ("run-1",) and compared.baseline == 40.0
    assert compared.status is OutcomeStatus.PASS
    assert second.verdict is Verdict.PASS
    assert [r.run_id for r in store.runs()] == ["run-2", "run-1"]
    report = json.loads((tmp_path / "run-2" / "report.json").read_text())
    assert report["outcomes"][0]["baseline_runs"] == ["run-1"]


class Exploding(NullObserver):
    def check_started(self, check: Check) -> None:
        raise RuntimeError("observer broke")


def test_a_run_that_raises_is_marked_aborted_and_never_a_baseline(
    tmp_path: Path, store: HistoryStore
) -> None:
    with pytest.raises(RuntimeError, match="observer broke"):
        run(tmp_path, store, "broken", Exploding())
    broken = store.run("broken")
    assert broken.status is RunStatus.ABORTED
    assert broken.summary == "aborted: RuntimeError: observer broke"
    assert store.baseline_provider("dev", "erp").baseline("work", "work_ms") is None
    assert store.integrity_check() == []
