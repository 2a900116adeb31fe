"""``neuroerp-ci history`` and ``neuroerp-ci baseline show|pin|unpin|invalidate`` on a store
filled through the store API (no stage runs here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuroerp_ci.cli import main
from neuroerp_ci.model import Verdict
from neuroerp_ci.store import HistoryStore, open_store

from .conftest import at, make_report, record

PIPELINE = """
[target]
name = "erp"

[store]
url = "sqlite:///state/history.sqlite3"

[baseline]
runs = 3

[[checks]]
id = "api"
kind = "command"
settings = { argv = ["{python}", "-c", "print(1)"] }

[stages.staging]
checks = ["api"]
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, HistoryStore]:
    """A pipeline file whose (relative) store holds five staging runs and one of another
    target; the newest staging run failed."""
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE, encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'history.sqlite3'}")
    for i in range(4):
        record(store, make_report(f"r{i}", started=at(i), latency=100.0 + i))
    record(store, make_report("r4", started=at(4), verdict=Verdict.FAIL))
    record(store, make_report("crm", started=at(5), target="crm"))
    store.begin_run("r5", "staging", "erp", "v2", {}, at(6))
    return config, store


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    code = stop.value.code
    return (code if isinstance(code, int) else -1), captured.out, captured.err


def test_history_json_is_an_array_of_the_targets_runs_and_nothing_else(
    project: tuple[Path, HistoryStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = project
    code, out, err = cli(["history", "--config", str(config), "--json"], capsys)
    assert (code, err) == (0, "")
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == ["r5", "r4", "r3", "r2", "r1", "r0"]
    assert runs[0]["status"] == "running" and runs[0]["verdict"] is None
    assert runs[1]["verdict"] == "FAIL" and runs[1]["fingerprint"]["tools"]["bandit"] == "1.9.4"
    code, out, _ = cli(["history", "-c", str(config), "--json", "--limit", "2"], capsys)
    assert [r["run_id"] for r in json.loads(out)] == ["r5", "r4"]
    code, out, _ = cli(["history", "-c", str(config), "--json", "--stage", "development"], capsys)
    assert json.loads(out) == []


def test_history_table_shows_status_verdict_and_flags(
    project: tuple[Path, HistoryStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, store = project
    store.pin("r2")
    store.invalidate("r1", "throttled")
    code, out, _ = cli(["history", "--config", str(config)], capsys)
    assert code == 0
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ r")}
    assert "running/aborted?" in lines["r5"] and "FAIL" in lines["r4"]
    assert "pinned" in lines["r2"] and "invalidated" in lines["r1"]
    assert "PASS" in lines["r0"] and "finished" in lines["r0"] and "30 s" in lines["r0"]
    assert "crm" not in out


def test_baseline_show_names_the_runs_and_the_median(
    project: tuple[Path, HistoryStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = project
    code, out, _ = cli(["baseline", "show", "staging", "-c", str(config), "--json"], capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["pinned"] is None
    p95 = [m for m in shown["metrics"] if (m["check"], m["metric"]) == ("api", "p95_ms")]
    assert p95 == [{"check": "api", "metric": "p95_ms", "baseline": 102.0,
                    "values": [103.0, 102.0, 101.0], "runs": ["r3", "r2", "r1"],
                    "samples": 150}]  # fmt: skip
    code, out, _ = cli(
        ["baseline", "show", "staging", "-c", str(config), "--check", "api", "--metric", "p95_ms"],
        capsys,
    )
    assert code == 0 and "last 3 passing runs" in out
    assert "r3, r2, r1" in out and "102" in out and "loc" not in out


def test_pin_unpin_and_invalidate_change_the_baseline(
    project: tuple[Path, HistoryStore], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = project
    code, out, _ = cli(["baseline", "pin", "r0", "-c", str(config)], capsys)
    assert code == 0 and "Pinned run r0 as the baseline of stage staging (erp)" in out
    _, out, _ = cli(["baseline", "show", "staging", "-c", str(config), "--json"], capsys)
    assert json.loads(out)["pinned"] == "r0"
    code, out, _ = cli(["baseline", "unpin", "staging", "-c", str(config)], capsys)
    assert code == 0 and "Unpinned run r0" in out
    code, out, _ = cli(["baseline", "unpin", "staging", "-c", str(config)], capsys)
    assert code == 0 and "No run of stage staging (erp) was pinned" in out
    code, out, _ = cli(
        ["baseline", "invalidate", "r3", "--reason", "noisy host", "-c", str(config)], capsys
    )
    assert code == 0 and "Invalidated run r3 of stage staging: noisy host" in out
    _, out, _ = cli(["baseline", "show", "staging", "-c", str(config), "--json"], capsys)
    runs = {tuple(m["runs"]) for m in json.loads(out)["metrics"]}
    assert runs == {("r2", "r1", "r0")}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["baseline", "pin", "nope"], "no run 'nope'"),
        (["baseline", "invalidate", "nope", "--reason", "x"], "no run 'nope'"),
        (["baseline", "pin", "r4"], "run r4 cannot be pinned: it is finished FAIL"),
        (["baseline", "pin", "r5"], "run r5 cannot be pinned: it is running/aborted?"),
        (["baseline", "invalidate", "r1", "--reason", " "], "--reason must say why"),
        (["baseline", "show", "production"], "no stage 'production'"),
    ],
)
def test_bad_run_ids_and_stages_are_exit_2_with_one_line(
    project: tuple[Path, HistoryStore],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    needle: str,
) -> None:
    config, _ = project
    code, out, err = cli([*argv, "--config", str(config)], capsys)
    assert code == 2, (out, err)
    assert len(err.splitlines()) == 1 and err.startswith("neuroerp-ci: error: ")
    assert needle in err


def test_an_unusable_store_url_is_an_error_in_the_pipeline_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE.replace("sqlite:///state", "mysql://u@h"), encoding="utf-8")
    code, _, err = cli(["history", "--config", str(config)], capsys)
    assert code == 2
    assert err.startswith(f"neuroerp-ci: error: {config}: store.url: history store mysql://u@h")


def test_an_unreachable_store_is_exit_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "neuroerp-ci.toml"
    text = PIPELINE.replace("sqlite:///state/history.sqlite3", "postgresql://ci@127.0.0.1:1/ci")
    config.write_text(text, encoding="utf-8")
    code, _, err = cli(["history", "--config", str(config)], capsys)
    assert code == 3 and len(err.splitlines()) == 1
    assert "history store postgresql://ci@127.0.0.1:1/ci: cannot open: " in err
