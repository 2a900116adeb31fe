"""No silent defaults, end to end: a stage that names no condition is gated by its checks'
kinds' default conditions, with the real pytest, bandit and pip-audit (offline mirror).

The project is the bundled demo with three real problems: a failing unit test, a
``shell=True`` call (bandit B602, high) and a vulnerable pin (``urllib3==1.26.4``). Its
pipeline file has the three checks and a development stage WITHOUT conditions. Before kinds
had defaults, every check there only had to complete, and the stage passed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.demo import DEMO_PIPELINE

pytestmark = pytest.mark.integration

Scenario = Callable[..., Any]  # the ``scenario`` fixture of conftest.py; returns a StageRun

FAILING_TEST = "test_default_gate_catches_this"
SHELL_MODULE = "neuroerp_demo/operator_shell.py"
ADVISORY_ID = re.compile(r"\b(PYSEC|GHSA|CVE)-\d{4}-[\w-]+")
NO_CONDITIONS = """
[target]
python = "{{python}}"

[[checks]]
id = "unit-tests"
kind = "pytest"
settings = {{ markers = "unit" }}

[[checks]]
id = "static-security"
kind = "bandit"
settings = {{ paths = ["neuroerp_demo"] }}

[[checks]]
id = "dependency-audit"
kind = "pip-audit"
settings = {{ requirements = ["requirements.txt"] }}

[stages.development]
{stage_options}
"""


def break_three_ways(stage_options: str = "") -> Callable[[Path], None]:
    """The demo with a failing unit test, a high bandit finding and a vulnerable pin, and a
    pipeline file whose stage names no condition."""

    def prepare(project: Path) -> None:
        unit_file = sorted((project / "tests").glob("test_unit*.py"))[0]
        with unit_file.open("a", encoding="utf-8") as fh:
            fh.write(
                "\n\nimport pytest  # appended by neuroerp-ci's default-conditions test\n\n\n"
                f"@pytest.mark.unit\ndef {FAILING_TEST}() -> None:\n    assert False\n"
            )
        (project / SHELL_MODULE).write_text(
            "import subprocess\n\n\ndef run(cmd: str) -> None:\n"
            "    subprocess.run(cmd, shell=True, check=False)\n",
            encoding="utf-8",
        )
        with (project / "requirements.txt").open("a", encoding="utf-8") as fh:
            fh.write("urllib3==1.26.4\n")
        (project / DEMO_PIPELINE).write_text(
            NO_CONDITIONS.format(stage_options=stage_options), encoding="utf-8"
        )

    return prepare


def test_a_stage_without_conditions_fails_on_each_kinds_defaults(scenario: Scenario) -> None:
    run = scenario("defaults", prepare=break_three_ways())
    run.assert_failed({"unit-tests", "static-security", "dependency-audit"})
    assert all(c["status"] == "ok" for c in run.report["checks"]), run.describe()
    failed = run.outcome("unit-tests", "failed <= 0 (default)")
    assert failed["status"] == "fail" and FAILING_TEST in failed["reason"], run.describe()
    assert run.outcome("unit-tests", "errors <= 0 (default)")["status"] == "pass"
    high = run.outcome("static-security", "findings(high+) <= 0 (default)")
    assert high["status"] == "fail" and "B602" in high["reason"], run.describe()
    audit = run.outcome("dependency-audit", "findings(any) <= 0 (default)")
    assert audit["status"] == "fail" and "urllib3" in audit["reason"], run.describe()
    assert ADVISORY_ID.search(audit["reason"]), run.describe()
    assert not [o for o in run.outcomes() if o["condition"] == "completed"], run.describe()
    # the same marked conditions in the other reports
    cases = ET.parse(run.out_dir / "junit.xml").getroot().findall(".//testcase")
    assert "failed <= 0 (default)" in {c.get("name") for c in cases}, run.describe()
    assert "findings(any) <= 0 (default)" in (run.out_dir / "report.md").read_text("utf-8")


def test_only_an_explicit_opt_out_leaves_completed_alone(scenario: Scenario) -> None:
    run = scenario("opted-out", prepare=break_three_ways("default_conditions = false"))
    assert run.returncode == 0 and run.report["verdict"] == "PASS", run.describe()
    assert [(o["check"], o["condition"]) for o in run.outcomes()] == [
        ("unit-tests", "completed"),
        ("static-security", "completed"),
        ("dependency-audit", "completed"),
    ], run.describe()
