"""``neuroerp-ci report``: a run's page rebuilt with the trends as they are now, the trends
page of a stage, and one line with exit 2 for what it cannot do. Real runs of a trivial
command check (the Prefect-free executor) recorded in the pipeline's default SQLite store."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from neuroerp_ci.cli.commands import main
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.reports.writer import default_output_dir
from neuroerp_ci.run.runner import NullObserver, RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.store import open_store, store_url

pytestmark = pytest.mark.timeout(120)

PIPELINE = """
[target]
name = "erp"
python = "{python}"

[[checks]]
id = "work"
kind = "command"
[checks.settings]
argv = ["{python}", "-c", 'import json; print(json.dumps(dict(work_ms={ms})))']
metrics_json = true

[stages.dev]
checks = ["work"]
conditions = [{{ check = "work", metric = "work_ms", max = 100 }}]
"""


def run(project: Path, run_id: str, ms: float) -> Path:
    config = project / "neuroerp-ci.toml"
    config.write_text(PIPELINE.format(python=sys.executable, ms=ms), encoding="utf-8")
    pipeline = load_pipeline(config)
    out = default_output_dir(project, run_id)
    with open_store(store_url(None, project)) as store, ThreadPoolExecutor(2) as pool:
        run_stage(
            pipeline,
            RunOptions(stage="dev", version=run_id, output_dir=out, run_id=run_id),
            ThreadExecutor(pool),
            NullObserver(),
            store=store,
        )
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for i, ms in enumerate([40, 50, 150]):
        run(tmp_path, f"run-{i}", ms)
    return tmp_path


def cli(project: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main([*args, "-c", str(project / "neuroerp-ci.toml")])
    return int(done.value.code or 0)


def test_a_run_page_is_rebuilt_with_the_stages_trend(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = project / ".neuroerp-ci" / "runs" / "run-2" / "report.html"
    written = page.read_text(encoding="utf-8")
    assert 'data-verdict="FAIL"' in written and 'data-metric="work_ms"' in written
    page.unlink()
    assert cli(project, "report") == 0  # the newest run
    assert capsys.readouterr().out.strip() == str(page)
    rebuilt = page.read_text(encoding="utf-8")
    assert 'data-status="fail"' in rebuilt and "-threshold" in rebuilt
    assert "last 2 runs" in rebuilt  # the two earlier runs are in its trend

    folder = project / ".neuroerp-ci" / "runs" / "run-0"
    other = project / "copy.html"
    assert cli(project, "report", str(folder), "-o", str(other)) == 0
    assert 'data-verdict="PASS"' in other.read_text(encoding="utf-8")


def test_the_trends_page_covers_the_stages_runs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project, "report", "--trends", "dev") == 0
    page = project / ".neuroerp-ci" / "trends" / "dev.html"
    assert capsys.readouterr().out.strip() == str(page)
    text = page.read_text(encoding="utf-8")
    assert all(f"run-{i}" in text for i in range(3))
    assert 'class="chart"' in text and 'data-metric="work_ms"' in text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--trends", "prod"], "--trends prod: no such stage"),
        (["run-9"], "no report.json there"),
        (["run-0", "--trends", "dev"], "give a run or --trends STAGE, not both"),
        (["--limit", "1"], "--limit"),
    ],
)
def test_what_it_cannot_do_is_one_line_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    assert cli(project, "report", *args) == 2
    error = capsys.readouterr().err
    assert said in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1, error
