"""A quick run of benchmarks/browser_timing.py: the browser path next to the httpx paths."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import chromium_or_skip

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "browser_timing.py"
ROW = re.compile(r"^(?P<path>browser|httpx page|httpx GET)\s+(?P<rate>\d+\.\d+)\s+"
                 r"(?P<wall>\d+\.\d+)\s+(?P<cpu>-?\d+\.\d+)$")  # fmt: skip
RATIO = re.compile(
    r"^ratio browser / (?P<other>httpx page|httpx GET)\s*:\s+(?P<wall>\d+\.\d)x wall"
)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_quick_run_prints_rates_costs_and_ratios() -> None:
    chromium_or_skip()
    proc = subprocess.run(  # noqa: S603 - our own script, argument list
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    rows = {m["path"]: m for line in lines if (m := ROW.match(line))}
    assert set(rows) == {"browser", "httpx page", "httpx GET"}
    for row in rows.values():
        assert float(row["rate"]) > 0 and float(row["wall"]) > 0
    ratios = {m["other"]: float(m["wall"]) for line in lines if (m := RATIO.match(line))}
    assert set(ratios) == {"httpx page", "httpx GET"}
    # a cold browser load does far more than one GET of the HTML
    assert ratios["httpx GET"] > 1
    assert any(line.startswith("browser launch (once per check): ") for line in lines)
