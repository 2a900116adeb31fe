"""``neuroerp-ci calibrate STAGE`` end to end: a real SQLite store seeded through
``HistoryStore.finish_run``, the table and JSON it prints, the figures it stores, its exit
codes, and a following run whose reports show the calibration beside the condition."""

from __future__ import annotations

import json
import random
import statistics
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from neuroerp_ci.cli import main
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Metric,
    StageReport,
    Verdict,
)
from neuroerp_ci.reports.json_report import report_from_dict
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.store import HistoryStore, open_store

PIPELINE = """
[target]
name = "erp"
python = "{python}"  # declared: no interpreter warning

[store]
url = "sqlite:///state/history.sqlite3"

[baseline]
runs = 5

[[checks]]
id = "api"
kind = "command"
[checks.settings]
argv = ["{python}", "-c", 'import json; print(json.dumps(dict(p95_ms=100)))']
metrics_json = true

[[checks]]
id = "scan"
kind = "bandit"
settings = { paths = ["src"] }

[stages.staging]
checks = ["api", "scan"]
conditions = [
  { check = "api", metric = "p95_ms", max_increase_pct = 10 },
  { check = "api", metric = "p95_ms", max = 50 },
  { check = "api", metric = "p95_ms", regression = {}, severity = "warning" },
  { check = "scan", findings = "high", max = 0 },
]

[stages.quiet]
checks = ["api"]
conditions = [{ check = "api", metric = "p95_ms", max_increase_pct = 10 }]
"""
RELATIVE, ABSOLUTE = "p95_ms <= baseline +10 %", "p95_ms <= 50"
REGRESSION = "p95_ms no regression (alpha 0.01, min effect 5 %)"
PASSING = 30  # seeded passing runs: 25 A/A pairs with 5 runs of baseline
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seeded_report(run_id: str, i: int, samples: list[float], verdict: Verdict) -> StageReport:
    started = (T0 + timedelta(minutes=i)).isoformat()
    latency = Metric("p95_ms", statistics.median(samples), "ms", Direction.LOWER, tuple(samples))
    result = CheckResult("api", "command", CheckStatus.OK, duration_s=1.0)
    result.add_metric(latency)
    return StageReport(run_id, "staging", "v1", "erp", verdict, started, started, 1.0, [result], [])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The pipeline file and its store: 30 passing staging runs whose samples come from one
    distribution, N(100, 5), plus a FAIL run and an invalidated run (neither replayed)."""
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE, encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hello')\n", encoding="utf-8")
    rng = random.Random(5)
    with open_store(f"sqlite:///{tmp_path / 'state' / 'history.sqlite3'}") as store:
        for i in range(PASSING + 2):
            samples = [rng.gauss(100.0, 5.0) for _ in range(30)]
            verdict = Verdict.FAIL if i == 10 else Verdict.PASS
            store.finish_run(seeded_report(f"r{i:02d}", i, samples, verdict))
        store.invalidate("r20", "a deploy broke the machine")
    return config


def store_of(config: Path) -> HistoryStore:
    return open_store(f"sqlite:///{config.parent / 'state' / 'history.sqlite3'}")


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    code = stop.value.code
    return (code if isinstance(code, int) else -1), captured.out, captured.err


def test_calibrate_prints_stores_and_fails_on_a_blocking_condition_over_budget(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(["calibrate", "staging", "--config", str(project)], capsys)
    assert (code, err) == (1, "")
    text = " ".join(out.split())
    assert "Calibration of stage staging (erp), false-alarm budget 5 %" in text
    assert "detects +10 %" in text and "detects +50 %" in text
    assert "OVER BUDGET: api: p95_ms <= 50 (blocking) false alarms 100.0 % > 5 %" in text
    assert "skipped scan: findings(high+) <= 0: a findings condition limits no metric" in text
    assert "stored the calibration of 3 condition(s)" in text

    with store_of(project) as store:
        stored = store.calibrations("staging", "erp")
    assert set(stored) == {("api", RELATIVE), ("api", ABSOLUTE), ("api", REGRESSION)}
    absolute = stored[("api", ABSOLUTE)]
    assert (absolute.runs, absolute.pairs) == (PASSING, PASSING - 5)  # FAIL, invalidated left out
    assert absolute.false_alarm_pct == 100.0 and absolute.over_budget
    assert absolute.detection_pct == ((10.0, 100.0), (20.0, 100.0), (50.0, 100.0))
    regression = stored[("api", REGRESSION)]
    assert regression.false_alarm_pct == 0.0 and not regression.over_budget
    assert dict(regression.detection_pct)[20.0] == 100.0
    relative = stored[("api", RELATIVE)]
    # A median of 30 draws of N(100, 5) moves by about 1 %: +10 % never happens unchanged,
    # and +50 % always shows.
    assert relative.false_alarm_pct == 0.0 and dict(relative.detection_pct)[50.0] == 100.0


def test_json_output_and_a_wider_budget_pass(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        ["calibrate", "staging", "-c", str(project), "--json", "--budget", "100"], capsys
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["stage"], data["target"], data["budget_pct"]) == ("staging", "erp", 100.0)
    by_condition = {c["condition"]: c for c in data["conditions"]}
    assert by_condition[ABSOLUTE]["false_alarm_pct"] == 100.0
    assert by_condition[ABSOLUTE]["over_budget"] is False  # 100 % is not above 100 %
    assert by_condition[ABSOLUTE]["detection_pct"] == {"10": 100.0, "20": 100.0, "50": 100.0}
    assert by_condition[REGRESSION]["severity"] == "warning"
    assert data["skipped"][0]["condition"] == "findings(high+) <= 0"
    with store_of(project) as store:  # the newest figures win
        assert not store.calibrations("staging", "erp")[("api", ABSOLUTE)].over_budget


def test_too_little_history_and_bad_input(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(["calibrate", "quiet", "-c", str(project)], capsys)  # no runs of it
    assert code == 0
    assert "too few runs" in out and "too few passing runs for a rate" in out
    with store_of(project) as store:
        (quiet,) = store.calibrations("quiet", "erp").values()
    assert (quiet.false_alarm_pct, quiet.runs, quiet.pairs) == (None, 0, 0)

    code, out, err = cli(["calibrate", "nope", "-c", str(project)], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no stage 'nope'" in err
    code, _, err = cli(["calibrate", "staging", "-c", str(project), "--budget", "-1"], capsys)
    assert code == 2 and "--budget" in err


@pytest.mark.integration
def test_a_following_run_shows_the_calibration_beside_each_condition(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = cli(["calibrate", "staging", "-c", str(project)], capsys)
    assert code == 1
    out_dir = project.parent / "next"
    with store_of(project) as store, ThreadPoolExecutor(max_workers=2) as pool:
        stored = store.calibrations("staging", "erp")
        run = run_stage(
            load_pipeline(project),
            RunOptions(stage="staging", version="v2", output_dir=out_dir, run_id="next"),
            ThreadExecutor(pool),
            store=store,
        )
    outcomes = {o.condition: o for o in run.report.outcomes}
    assert outcomes[ABSOLUTE].calibration == stored[("api", ABSOLUTE)]
    assert outcomes["findings(high+) <= 0"].calibration is None

    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    shown = {o["condition"]: o["calibration"] for o in report["outcomes"]}
    absolute = shown[ABSOLUTE]
    assert absolute["false_alarm_pct"] == 100.0 and absolute["over_budget"] is True
    assert absolute["detection_pct"] == [[10.0, 100.0], [20.0, 100.0], [50.0, 100.0]]
    assert absolute["text"] == stored[("api", ABSOLUTE)].text()
    assert absolute["text"].startswith("false alarms 100.0 %, detects +10 % in 100 %")
    assert absolute["text"].endswith("from 30 runs (over the 5 % false-alarm budget)")
    assert shown["findings(high+) <= 0"] is None
    read_back = report_from_dict(report)
    assert [o.calibration for o in read_back.outcomes] == [
        o.calibration for o in run.report.outcomes
    ]  # it comes back whole

    markdown = (out_dir / "report.md").read_text(encoding="utf-8")
    assert "| Calibration |" in markdown and stored[("api", RELATIVE)].text() in markdown
    junit = ET.parse(out_dir / "junit.xml").getroot()
    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in junit.iter("testcase")
    }
    assert properties[ABSOLUTE]["calibration"] == absolute["text"]
    assert "calibration" not in properties["findings(high+) <= 0"]
