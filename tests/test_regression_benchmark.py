"""A quick run of benchmarks/regression_detection.py against the real demo service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "regression_detection.py"


@pytest.mark.integration
def test_quick_benchmark_prints_the_table_and_catches_a_big_slowdown(tmp_path: Path) -> None:
    numbers = tmp_path / "benchmark.json"
    # Other jobs on a shared 2-core machine can swamp a +50 % shift of a few milliseconds;
    # as root (CI here) the benchmark takes the CPU first, as its README line advises.
    nice = ["--nice", "-10"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    proc = subprocess.run(  # noqa: S603 - our own script, argument list
        [sys.executable, str(SCRIPT), "--quick", "--json", str(numbers), *nice],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "| machine | slowdown  | added delay | measured shift | ours: FAIL (a)" in out
    assert "| quiet   | 0 % (A/A) |" in out and "| quiet   | +50 %     |" in out
    assert "| loaded  | 0 % (A/A) |" in out  # the noisy neighbour
    assert "api-baseline: p95_ms " in out and "shift +" in out  # an outcome explains itself
    data = json.loads(numbers.read_text(encoding="utf-8"))
    levels = {(level["loaded"], level["level_pct"]): level for level in data["levels"]}
    assert levels[False, 0]["runs"] == levels[False, 50]["runs"] == levels[True, 0]["runs"] == 2
    # +50 % of the median is several milliseconds: the gate condition must see every one,
    # as a FAIL, or INCONCLUSIVE where other tests keep the machine busy; never a pass
    assert levels[False, 50]["ours"] + levels[False, 50]["inconclusive"] == 2
    assert levels[False, 50]["delay_ms"] >= 3
    # beside the burners the http check measured a busy machine, and never claimed a
    # regression the burners explain
    assert levels[True, 0]["noisy"] == 2 and levels[True, 0]["ours"] == 0
    judged = [run for run in data["runs"] if not run.get("history")]
    assert len(judged) == 6
    assert all(run["noise"] for run in judged)
    assert all(len(run["samples"]) == 20 and len(run["window"]) == 5 for run in judged)
    # every judged run's baseline is made of baseline runs only, never of a level run
    history = {run["run_id"] for run in data["runs"] if run.get("history")}
    assert all(set(run["window"]) <= history for run in judged)
