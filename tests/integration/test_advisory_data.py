"""Advisory data you can trust, end to end: ``neuroerp-ci run`` with the real pip-audit.

The shared offline mirror is the PyPA advisory database of 2024-10-10. Before the pip-audit
kind knew the age of its data, a project with clean pins passed against it: "no known
vulnerabilities", though two years of advisories were missing. Now the age is in the check's
reason, on the console and in every report, and a default condition warns about it; made
blocking, it fails the stage.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

RunStage = Callable[..., Any]  # the ``run_stage`` fixture of conftest.py; returns a StageRun

SNAPSHOT = date(2024, 10, 10)
PIPELINE = """\
[[checks]]
id = "deps"
kind = "pip-audit"
settings = {{ requirements = ["requirements.txt"]{extra} }}

[stages.audit]
"""


def audit(run_stage: RunStage, tmp_path: Path, env: dict[str, str], extra: str = "") -> Any:
    """``run audit`` on a project with one clean pin and a pip-audit check without conditions."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "requirements.txt").write_text("idna==3.10\n", encoding="utf-8")
    (project / "neuroerp-ci.toml").write_text(PIPELINE.format(extra=extra), encoding="utf-8")
    return run_stage(project, tmp_path / "out", env, "audit")


def age_text() -> str:
    days = (datetime.now(UTC).date() - SNAPSHOT).days
    return f"(2024-10-10, {days} days old)"


def test_the_2024_snapshot_warns_naming_its_age(
    run_stage: RunStage, tmp_path: Path, stage_env: dict[str, str], advisory_mirror: Path
) -> None:
    run = audit(run_stage, tmp_path, stage_env)
    assert run.returncode == 0 and run.report["verdict"] == "WARN", run.describe()
    aged = run.outcome("deps", "advisory_age_days <= 30 (default)")
    assert aged["status"] == "warn" and aged["severity"] == "warning", run.describe()
    assert age_text() in aged["reason"], run.describe()
    assert run.outcome("deps", "findings(any) <= 0 (default)")["status"] == "pass"
    # the check's reason, on the console and in every report
    shown = f"offline mirror {advisory_mirror} {age_text()}: no known vulnerabilities"
    assert run.check("deps")["reason"].startswith(shown), run.describe()
    assert shown in run.stdout, run.describe()
    assert shown in (run.out_dir / "report.md").read_text(encoding="utf-8")
    versions = run.check("deps")["tool_versions"]
    assert versions["advisory-data"] == f"{advisory_mirror}: 2024-10-10 (SNAPSHOT.txt)"
    cases = ET.parse(run.out_dir / "junit.xml").getroot().findall(".//testcase")
    out = [c.findtext("system-out") or "" for c in cases if "advisory_age" in str(c.get("name"))]
    assert len(out) == 1 and out[0].startswith("WARNING: ") and age_text() in out[0]


def test_the_age_condition_made_blocking_fails(
    run_stage: RunStage, tmp_path: Path, stage_env: dict[str, str]
) -> None:
    run = audit(run_stage, tmp_path, stage_env, extra=', max_age_severity = "blocking"')
    run.assert_failed({"deps"})
    aged = run.outcome("deps", "advisory_age_days <= 30 (default)")
    assert aged["status"] == "fail" and age_text() in aged["reason"], run.describe()
    assert "FAIL" in run.stdout and age_text() in run.stdout, run.describe()
