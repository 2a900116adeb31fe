"""The demo's audit stage as shipped, then with the faults its pipeline file names: a leaked
key, an expired waiver and a denied licence each fail it for their own reason."""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.demo import DEMO_PIPELINE, DEMO_WAIVERS, write_demo
from neuroerp_ci.model import OutcomeStatus, StageReport, Verdict
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage

pytestmark = pytest.mark.integration

FAKE_KEY = "AKIA" + "IOSFODNN" + "7EXAMPLE"  # the demo's fault, built so this file holds none


def audit(project: Path, out: Path) -> StageReport:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROERP_", "PYTEST_"))}
    with ThreadPoolExecutor(max_workers=2) as pool:
        options = RunOptions(stage="audit", output_dir=out, run_id=out.name, env=env)
        pipeline = load_pipeline(project / DEMO_PIPELINE)
        return run_stage(pipeline, options, ThreadExecutor(pool)).report


def failed(report: StageReport) -> dict[str, str]:
    return {
        f"{o.check}: {o.condition}": o.reason
        for o in report.outcomes
        if o.status is OutcomeStatus.FAIL
    }


def test_the_demo_audit_passes_its_gates_and_each_fault_fails_them(tmp_path: Path) -> None:
    project = write_demo(tmp_path / "demo")
    ends = (date.today() + timedelta(days=60)).isoformat()
    assert f"expires = {ends}" in (project / DEMO_WAIVERS).read_text(encoding="utf-8")

    clean = audit(project, tmp_path / "clean")

    # the bundled advisory subset is old (a WARN that says so); nothing fails
    assert clean.verdict is Verdict.WARN and failed(clean) == {}
    waived = {f.rule for c in clean.checks for f in c.waived}
    assert "B311" in waived  # the fault knob's random.random(), waived in waivers.toml
    data = json.loads((tmp_path / "clean" / "report.json").read_text(encoding="utf-8"))
    assert data["files"]["sarif"] == "report.sarif"
    assert (tmp_path / "clean" / "bom.cdx.json").is_file()

    # the faults the pipeline file names, all at once
    (project / "neuroerp_demo" / "settings.py").write_text(
        f'AWS_KEY = "{FAKE_KEY}"\n', encoding="utf-8"
    )
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    waivers = project / DEMO_WAIVERS
    waivers.write_text(
        re.sub(r"expires = \S+", f"expires = {yesterday}", waivers.read_text("utf-8"), count=1),
        encoding="utf-8",
    )
    pipeline = project / DEMO_PIPELINE
    pipeline.write_text(
        pipeline.read_text("utf-8").replace('"SSPL-1.0"]', '"SSPL-1.0", "MIT"]'), "utf-8"
    )

    faulty = audit(project, tmp_path / "faulty")

    assert faulty.verdict is Verdict.FAIL
    reasons = failed(faulty)
    assert "aws-access-key high at neuroerp_demo/settings.py:1" in reasons[
        "secret-scan: findings(any) <= 0"
    ]
    assert f"(waiver demo-fault-random expired {yesterday})" in reasons[
        "static-security: findings(any) <= 0"
    ]
    denied = reasons["licences: findings(high+) <= 0"]
    assert "license-denied high at" in denied and "licence MIT is denied" in denied
    for folder in (tmp_path / "clean", tmp_path / "faulty"):
        for path in folder.rglob("*"):
            assert not path.is_file() or FAKE_KEY.encode() not in path.read_bytes(), path
