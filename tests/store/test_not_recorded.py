"""A run the history store refuses at the end is reported "not recorded", everywhere: the
reports, the summary (which notifications quote) and the flow's final state.

The store really breaks: the run's own check drops a table of the store while it runs, so
recording the finished run fails inside SQLite (real check, real store, thread executor).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import Summary, Verdict
from neuroerp_ci.reports.json_report import report_from_dict
from neuroerp_ci.run.runner import RunOptions, StageOutcome, ThreadExecutor, run_stage
from neuroerp_ci.store import HistoryStore, RunStatus

PIPELINE = """
[target]
python = "{python}"  # declared: no interpreter warning
name = "erp"

[[checks]]
id = "work"
kind = "command"
[checks.settings]
argv = ["{python}", "-c", '''
import sqlite3, sys
if sys.argv[1] == "break":
    sqlite3.connect(sys.argv[2]).execute("DROP TABLE outcomes")
''', "%(mode)s", "%(db)s"]

[stages.dev]
checks = ["work"]
"""


def run(tmp_path: Path, store: HistoryStore, store_url: str, mode: str) -> StageOutcome:
    config = tmp_path / "neuroerp-ci.toml"
    db = store_url.removeprefix("sqlite:///")
    config.write_text(PIPELINE % {"mode": mode, "db": db}, encoding="utf-8")
    with ThreadPoolExecutor(max_workers=2) as pool:
        return run_stage(
            load_pipeline(config),
            RunOptions(stage="dev", version="v1", output_dir=tmp_path / mode, run_id=mode),
            ThreadExecutor(pool),
            store=store,
        )


def written(outcome: StageOutcome) -> tuple[dict[str, object], str]:
    report = json.loads((outcome.output_dir / "report.json").read_text(encoding="utf-8"))
    return report, (outcome.output_dir / "report.md").read_text(encoding="utf-8")


def test_a_recorded_run_says_so_in_its_reports(
    tmp_path: Path, store: HistoryStore, store_url: str
) -> None:
    outcome = run(tmp_path, store, store_url, "keep")
    report, markdown = written(outcome)
    assert outcome.report.recorded is True and report["recorded"] is True
    assert report["record_error"] == "" and "NOT RECORDED" not in markdown
    assert store.run("keep").status is RunStatus.FINISHED


def test_a_run_the_store_refuses_is_not_recorded_in_every_report(
    tmp_path: Path, store: HistoryStore, store_url: str
) -> None:
    outcome = run(tmp_path, store, store_url, "break")
    report, markdown = written(outcome)
    assert outcome.report.verdict is Verdict.PASS  # what the gate said, never shown as such
    assert outcome.report.recorded is False and report["recorded"] is False
    error = str(report["record_error"])
    assert error.startswith(f"history store {store_url}: cannot record run break: ")
    assert "no such table: outcomes" in error
    assert str(report["summary"]).startswith(f"dev: NOT RECORDED — {error}; unrecorded verdict:")
    assert markdown.startswith("## ❌ NOT RECORDED — dev @ v1 (the gate said PASS)")
    assert f"**Not recorded** in the history: {error}" in markdown
    assert report_from_dict(report) == outcome.report
    # The run's start was recorded: it is marked aborted (with why), never a baseline.
    recorded = store.run("break")
    assert recorded.status is RunStatus.ABORTED and recorded.verdict is None
    assert recorded.summary.startswith("aborted: not recorded: history store ")


def test_a_run_not_recorded_ends_its_flow_failed_with_the_summary() -> None:
    from neuroerp_ci.orchestration import final_state

    from .conftest import make_report

    report = make_report("r1", stage="dev", verdict=Verdict.PASS)
    said = Summary("dev", Verdict.PASS, written="dev: NOT RECORDED — x")
    unrecorded = replace(report, recorded=False, summary=said)
    state = final_state(unrecorded, "/runs/r1", message="a rollout's own message")
    assert state.is_failed() and state.message == "dev: NOT RECORDED — x"
    assert final_state(report, "/runs/r1").is_completed()
