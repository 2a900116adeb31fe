"""The security audit end to end with the real tools (bandit, pip-audit on the offline advisory
mirror, detect-secrets, the licence check on a real interpreter): report.sarif and bom.cdx.json
validate against their official schemas, waivers expire, new findings are told from old ones,
and a leaked key fails the gate at its line without appearing anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from jsonschema.validators import validator_for

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import StageReport, Verdict
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.store import open_store
from tests.checks.test_licenses import new_venv, write_distribution
from tests.git_repo import git

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"
SARIF_SCHEMA = SCHEMAS / "sarif-schema-2.1.0.json"
# A fake AWS access key id, built here so that this file holds none.
FAKE_KEY = "AKIA" + "Q3ZTW7XN" + "4JD2LMPB"
SHELL = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
EVAL = "def parse(text):\n    return eval(text)\n"


@pytest.fixture(scope="module")
def licensed_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real interpreter with one GPL-3.0-only and one MIT distribution installed."""
    python, site = new_venv(tmp_path_factory.mktemp("audit") / "venv")
    write_distribution(site, "gpl-widget", "1.0", ["License-Expression: GPL-3.0-only"])
    write_distribution(site, "mit-helper", "2.1", ["License-Expression: MIT"])
    return python


def write_project(
    root: Path,
    python: Path,
    mirror: Path,
    conditions: str,
    *,
    checks: tuple[str, ...] = ("sast",),
    waivers: str = "",
    key: bool = False,
) -> Path:
    """A git repository with a shell=True call (bandit B602 high, B404 low), a vulnerable pin
    (urllib3 1.26.4) and, with ``key``, an AWS key in config/settings.py line 1."""
    files = {
        "app/__init__.py": "",
        "app/run.py": SHELL,
        "requirements.txt": "urllib3==1.26.4\n",
        ".gitignore": ".neuroerp-ci/\n",
    }
    if key:
        files["config/settings.py"] = f'AWS_ACCESS_KEY_ID = "{FAKE_KEY}"\nREGION = "eu"\n'
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "neuroerp-ci.toml").write_text(
        f'[target]\nname = "shop"\npython = "{python}"\n\n'
        f'[advisories]\nmirror = "{mirror}"\n\n'
        '[[checks]]\nid = "sast"\nkind = "bandit"\nsettings = { paths = ["app"] }\n\n'
        '[[checks]]\nid = "deps"\nkind = "pip-audit"\n'
        'settings = { requirements = ["requirements.txt"] }\n\n'
        '[[checks]]\nid = "secrets"\nkind = "secrets"\n\n'
        '[[checks]]\nid = "licences"\nkind = "licenses"\nsettings = { deny = ["GPL-3.0-only"] }\n\n'
        f"[stages.audit]\nchecks = {json.dumps(list(checks))}\n"
        f"conditions = [\n{conditions}]\n{waivers}",
        encoding="utf-8",
    )
    git(root, "init", "-q")
    commit(root, "first")
    return root


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def audit(project: Path, out: Path) -> StageReport:
    """The audit stage, in threads, recorded in the project's history store."""
    pipeline = load_pipeline(project / "neuroerp-ci.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROERP_", "PYTEST_"))}
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        open_store(f"sqlite:///{project / '.neuroerp-ci' / 'history.sqlite3'}") as store,
    ):
        options = RunOptions(stage="audit", output_dir=out, run_id=out.name, env=env)
        return run_stage(pipeline, options, ThreadExecutor(pool), store=store).report


def waiver(days: int, rule: str = "B602") -> str:
    expires = (date.today() + timedelta(days=days)).isoformat()
    return (
        f'\n[[waivers]]\nid = "shell-ok"\nrule = "{rule}"\npath = "app/*"\n'
        f'reason = "argv comes from our own table"\nowner = "qa"\nexpires = {expires}\n'
    )


def outcome(report: StageReport, check: str, condition: str) -> Any:
    found = [o for o in report.outcomes if o.check == check and o.condition == condition]
    assert len(found) == 1, [(o.check, o.condition) for o in report.outcomes]
    return found[0]


def sarif_results(out: Path) -> dict[str, list[dict[str, Any]]]:
    document = json.loads((out / "report.sarif").read_text(encoding="utf-8"))
    return {run["tool"]["driver"]["name"]: run["results"] for run in document["runs"]}


def test_sarif_and_sbom_of_a_real_audit_validate_and_a_denied_licence_fails(
    tmp_path: Path, licensed_python: Path, advisory_mirror: Path
) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"no SARIF 2.1.0 schema at {SARIF_SCHEMA} (../shared/schemas)")
    project = write_project(
        tmp_path / "shop", licensed_python, advisory_mirror, "",
        checks=("sast", "deps", "secrets", "licences"), key=True,
    )  # fmt: skip
    out = tmp_path / "run1"

    report = audit(project, out)

    assert report.verdict is Verdict.FAIL
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = validator_for(schema)
    validator.check_schema(schema)
    sarif = json.loads((out / "report.sarif").read_text(encoding="utf-8"))
    errors = [e.message for e in validator(schema).iter_errors(sarif)]
    assert errors == []
    results = sarif_results(out)
    assert set(results) == {"bandit", "pip-audit", "detect-secrets", "licenses"}
    places = {
        (r["ruleId"], loc["physicalLocation"]["artifactLocation"]["uri"],
         loc["physicalLocation"]["region"]["startLine"])
        for tool in ("bandit", "detect-secrets") for r in results[tool]
        for loc in r["locations"]
    }  # fmt: skip
    assert ("B602", "app/run.py", 5) in places
    assert ("aws-access-key", "config/settings.py", 1) in places
    assert "PYSEC-2021-108" in {r["ruleId"] for r in results["pip-audit"]}

    bom_text = (out / "bom.cdx.json").read_text(encoding="utf-8")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom_text) is None
    bom = json.loads(bom_text)
    refs = {c["bom-ref"]: c for c in bom["components"]}
    vulns = {v["id"]: v for v in bom["vulnerabilities"]}
    assert "PYSEC-2021-108" in vulns
    assert {refs[a["ref"]]["name"] for a in vulns["PYSEC-2021-108"]["affects"]} == {"urllib3"}
    licences = {c["name"]: c.get("licenses") for c in bom["components"]}
    assert licences["gpl-widget"] == [{"expression": "GPL-3.0-only"}]

    denied = outcome(report, "licences", "findings(high+) <= 0 (default)")
    assert denied.status.value == "fail"
    assert "gpl-widget==1.0" in denied.reason and "GPL-3.0-only" in denied.reason
    assert "mit-helper" not in denied.reason


def test_waivers_that_expired_expire_soon_or_hold(
    tmp_path: Path, licensed_python: Path, advisory_mirror: Path
) -> None:
    limit = '  { check = "sast", findings = "high", max = 0 },\n'
    verdicts = {}
    for days in (-1, 3, 30):
        root = tmp_path / f"shop{days}"
        root.mkdir()
        project = write_project(root, licensed_python, advisory_mirror, limit, waivers=waiver(days))
        out = tmp_path / f"run{days}"
        report = audit(project, out)
        verdicts[days] = report.verdict
        findings = outcome(report, "sast", "findings(high+) <= 0")
        valid = outcome(report, "waivers", "waiver shell-ok valid")
        ends = (date.today() + timedelta(days=days)).isoformat()
        if days == -1:
            assert findings.status.value == "fail"
            assert f"B602 high at app/run.py:5 (waiver shell-ok expired {ends})" in findings.reason
            assert valid.status.value == "warn" and "expired on" in valid.reason
        elif days == 3:
            assert findings.status.value == "pass" and valid.status.value == "warn"
            assert valid.reason.startswith(f"waiver shell-ok expires in 3 days ({ends}, owner qa)")
        else:
            assert findings.status.value == "pass" and valid.status.value == "pass"
            data = json.loads((out / "report.json").read_text(encoding="utf-8"))
            [waived] = data["checks"][0]["waived"]
            assert (waived["rule"], waived["waiver"]["id"]) == ("B602", "shell-ok")
            assert "sast: waived, not counted (1)" in (out / "report.md").read_text("utf-8")
            [b602] = [r for r in sarif_results(out)["bandit"] if r["ruleId"] == "B602"]
            assert b602["suppressions"][0]["status"] == "accepted"
            assert "argv comes from our own table" in b602["suppressions"][0]["justification"]
    assert verdicts == {-1: Verdict.FAIL, 3: Verdict.WARN, 30: Verdict.PASS}


def test_a_new_finding_is_new_an_old_one_unchanged_and_only_the_new_one_fails(
    tmp_path: Path, licensed_python: Path, advisory_mirror: Path
) -> None:
    conditions = (
        '  { check = "sast", findings = "any", new = true, max = 0 },\n'
        '  { check = "sast", findings = "high", max = 5, severity = "warning" },\n'
    )
    root = tmp_path / "shop"
    root.mkdir()
    project = write_project(root, licensed_python, advisory_mirror, conditions)
    first = audit(project, tmp_path / "run1")
    # no baseline run yet: new cannot be told from old, so it warns and may become the baseline
    new_only = outcome(first, "sast", "new_findings(any) <= 0")
    assert first.verdict is Verdict.WARN and new_only.no_baseline

    (project / "app" / "parse.py").write_text(EVAL, encoding="utf-8")
    commit(project, "a new eval")
    second = audit(project, tmp_path / "run2")

    states = {r["ruleId"]: r["baselineState"] for r in sarif_results(tmp_path / "run2")["bandit"]}
    assert states == {"B602": "unchanged", "B404": "unchanged", "B307": "new"}
    new_only = outcome(second, "sast", "new_findings(any) <= 0")
    assert second.verdict is Verdict.FAIL and new_only.status.value == "fail"
    assert "B307 medium at app/parse.py:2" in new_only.reason and "B602" not in new_only.reason
    assert outcome(second, "sast", "findings(high+) <= 5").status.value == "pass"
    assert second.checks[0].metrics["new_findings"].value == 1

    # lines added above an old finding move it, they do not make it new
    (project / "app" / "run.py").write_text("# runs commands\n" + SHELL, encoding="utf-8")
    commit(project, "a comment")
    third = audit(project, tmp_path / "run3")
    moved = {f.rule: (f.baseline_state, f.location) for f in third.checks[0].findings}
    assert moved["B602"] == ("updated", "app/run.py:6")
    assert moved["B307"][0] == "new"  # run 2 failed: run 1 is still the baseline


def test_a_leaked_key_fails_at_its_line_and_appears_nowhere(
    tmp_path: Path, licensed_python: Path, advisory_mirror: Path
) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    project = write_project(
        root, licensed_python, advisory_mirror, "", checks=("secrets",), key=True
    )
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROERP_", "PYTEST_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "neuroerp_ci", "run", "audit", "-c",
         str(project / "neuroerp-ci.toml"), "--output", str(out)],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    [limit] = [o for o in report["outcomes"] if o["check"] == "secrets"]
    assert limit["status"] == "fail"
    assert "aws-access-key high at config/settings.py:1" in limit["reason"]
    assert "AWS Access Key" in report["checks"][0]["findings"][0]["message"]
    assert FAKE_KEY not in done.stdout + done.stderr
    leaked = [
        str(path)
        for folder in (out, project / ".neuroerp-ci")
        for path in folder.rglob("*")
        if path.is_file() and FAKE_KEY.encode() in path.read_bytes()
    ]
    assert leaked == []
    assert any((project / ".neuroerp-ci").glob("history.sqlite3*"))
