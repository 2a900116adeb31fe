"""benchmarks/pipeline_overhead.py: its shell twin of the demo stage, its tables and goal lines."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.demo import write_demo

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "pipeline_overhead.py"
ROW = re.compile(
    r"^  (?P<label>\S.*?)\s+(?P<median>-?\d+\.\d+)\s+(?P<min>-?\d+\.\d+)"
    r"\s+(?P<ratio>-?\d+\.\d+)\s+(?P<per_check>-?\d+\.\d+)$"
)


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pipeline_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_shell_twin_runs_every_check_of_the_demo_stage(tmp_path: Path) -> None:
    bench = load_benchmark()
    project = write_demo(tmp_path / "demo")
    config = bench.dev_only_pipeline(project)
    pipeline = load_pipeline(config)
    original = tomllib.loads((project / "neuroerp-ci.toml").read_text())["stages"][bench.STAGE]
    assert pipeline.stage(bench.STAGE).checks == tuple(original["checks"])
    assert not pipeline.cache.enabled  # every run does the shell script's work
    demo = bench.Demo(project, config, pipeline, tmp_path / "mirror", tmp_path)
    work = tmp_path / "work"
    script = bench.shell_script(demo, work, "http://127.0.0.1:9")

    for check_id in original["checks"]:
        assert f"|| fail {check_id} $rc" in script
    for marker in ("unit", "integration", "e2e", "performance"):
        assert f"-m pytest tests -m {marker} -p no:cacheprovider" in script
    assert f"--cov-report=json:{work / 'checks' / 'unit-tests' / 'coverage.json'}" in script
    assert "--osv-url http://127.0.0.1:9/v1/query" in script
    assert "-m neuroerp_demo.smoke http://127.0.0.1:" in script
    assert "[ $rc -eq 0 ] || [ $rc -eq 1 ]; } || fail smoke" in script


@pytest.mark.integration
def test_quick_overhead_run_prints_a_table_of_ratios() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "overhead", "--checks", "10"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "(a) demo stage" not in out  # --only overhead
    table = out[out.index("(c) orchestration overhead") :].splitlines()
    rows = {m["label"]: m for line in table if (m := ROW.match(line))}
    assert set(rows) == {
        "direct run_tool, 1 command",
        "direct run_tool, 10 commands",
        "ThreadExecutor run_stage, 1 check",
        "ThreadExecutor run_stage, 10 independent",
        "ThreadExecutor run_stage, 10 chained",
        "Prefect flow, 1 check",
        "Prefect flow, 10 independent",
        "Prefect flow, 10 chained",
        "Prefect flow, 1 check, no heartbeat",
        "Prefect flow, 10 independent, no heartbeat",
        "Prefect flow, 1 check, right after 10",
    }
    for row in rows.values():
        assert float(row["ratio"]) > 0 and float(row["min"]) <= float(row["median"])
    assert float(rows["direct run_tool, 10 commands"]["ratio"]) == 1.0
    derived = [line for line in table if "per-check overhead, flow" in line]
    assert len(derived) == 2 and all(re.search(r"-?\d+\.\d ms$", line) for line in derived)


def test_pipeline_table_states_the_goal_against_the_shell_script_run_alongside() -> None:
    bench = load_benchmark()
    shell, here, temporary, served = (
        bench.Series("shell", [10.0, 20.0], [9.0, 19.0]),
        bench.Series("no server", [9.0, 22.0], [8.0, 20.0]),
        bench.Series("temporary", [15.0, 25.0], [9.0, 19.0]),
        bench.Series("served", [12.0, 21.0], [9.0, 19.0]),
    )
    lines = bench.pipeline_table([shell, here, temporary, served], 3.0)

    # ratio of medians 15.5 / 15; min/min 9 / 10; paired: median of 0.9 and 1.1
    assert (
        "  run (no server) / shell = 1.03 (goal <= 1.0): MISSED; min/min 0.90, paired 1.00" in lines
    )
    row = next(line for line in lines if line.startswith("  no server "))
    assert row.split()[-7:] == ["15.50", "9.00", "1.03", "0.90", "1.00", "14.00", "1.50"]
    gain = next(line for line in lines if "concurrency's gain" in line)
    assert gain.endswith("-0.50 s")


@pytest.mark.integration
def test_quick_refusal_run_times_the_refused_stage_with_and_without_prefect() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "refusal"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "(a) demo stage" not in out and "(c) orchestration overhead" not in out
    table = out[out.index("(b) refused stage 'staging'") :].splitlines()
    rows = [line for line in table if re.match(r"^  \S.*\s\d+\.\d\d\s+\d+\.\d\d$", line)]
    assert [row.split("  ")[1] for row in rows] == [
        "neuroerp-ci run staging (no server)",
        "neuroerp-ci run staging --prefect (no server)",
        "python -c 'import neuroerp_ci.cli' (the floor)",
    ]
    assert any(
        re.match(
            r"^  refused stage \(no server\) = \d+\.\d\d s median, .*\(goal <= 2 s\): (met|MISSED)",
            line,
        )
        for line in table
    )
