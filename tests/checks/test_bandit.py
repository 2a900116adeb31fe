"""The bandit kind: report parsing on captured bandit 1.9.4 reports, and real bandit runs.

The real runs show that the check audits exactly what is there: every Python file under the
paths (a left-out file is an error naming it), no project ``.bandit`` or ``[tool.bandit]``
narrowing the scan, and ``# nosec`` findings listed as suppressed instead of vanishing.

The assets in tests/assets/bandit/ were written by this kind's own command line
(``bandit_argv``) on a sample project in /tmp/neuroerp-bandit with app/shell.py
(subprocess shell=True, hashlib.md5), a vendored .venv file and a tests/ file (both
excluded): bandit-findings.json; bandit-syntax-error.json (plus app/broken.py, which does not
parse: bandit exit 1 for the findings, the file only in ``errors``);
bandit-missing-path.json (``paths = ["nothere"]``: exit 0) and bandit-empty-dir.json
(``paths = ["empty"]``: exit 0, loc 0).
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import Check, CheckContext, execute_check
from neuroerp_ci.checks.bandit import (
    BanditCheck,
    BanditReport,
    BanditSettings,
    ScanPlan,
    bandit_argv,
    hidden_by_nosec,
    parse_bandit_report,
    plan_scan,
    report_reason,
    require_complete,
)
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.errors import ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    FindingSeverity,
    OutcomeStatus,
    Priority,
    StageReport,
    Verdict,
)
from neuroerp_ci.reports.writer import write_reports

CAPTURED_IN = Path("/tmp/neuroerp-bandit")  # the project the assets were captured in

SHELL = """\
import subprocess


def run(command):
    return subprocess.call(command, shell=True)
"""


def load(assets: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((assets / "bandit" / name).read_text())
    return data


def bandit_check(settings: BanditSettings) -> Check:
    return Check(
        id="bandit",
        title="bandit",
        kind="bandit",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=120,
        settings=settings,
    )


def run_check(
    project: Path, settings: BanditSettings, env: dict[str, str] | None = None
) -> CheckResult:
    ctx = CheckContext(
        project_dir=project,
        work_dir=project / ".neuroerp-ci" / "work",
        python=sys.executable,
        env=dict(os.environ) if env is None else env,
    )
    return execute_check(BanditCheck(), bandit_check(settings), ctx)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# --- parsing captured reports ---------------------------------------------------------------


def test_parse_report_gives_findings_with_relative_locations(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-findings.json"), CAPTURED_IN)

    assert (report.loc, report.files, report.errors) == (6, 1, ())
    rules = [(f.rule, f.severity, f.location) for f in report.findings]
    assert rules == [
        ("B404", FindingSeverity.LOW, "app/shell.py:1"),
        ("B602", FindingSeverity.HIGH, "app/shell.py:5"),
        ("B324", FindingSeverity.HIGH, "app/shell.py:11"),
    ]
    b602 = report.findings[1]
    assert b602.tool == "bandit"
    assert b602.confidence == "high"
    assert b602.message == (
        "subprocess call with shell=True identified, security issue. "
        "(subprocess_popen_with_shell_equals_true)"
    )
    require_complete(report)  # does not raise


def test_reason_counts_findings_by_severity(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-findings.json"), CAPTURED_IN)

    assert report_reason(report) == "3 findings (2 high, 0 medium, 1 low) in 1 files, 6 lines"


def test_undefined_severity_counts_as_high(assets: Path) -> None:
    data = load(assets, "bandit-findings.json")
    data["results"][0]["issue_severity"] = "UNDEFINED"

    report = parse_bandit_report(data, CAPTURED_IN)

    assert report.findings[0].severity is FindingSeverity.UNKNOWN
    assert report.count(FindingSeverity.HIGH) == 3


def test_file_that_does_not_parse_is_an_error(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-syntax-error.json"), CAPTURED_IN)

    assert report.files == 2 and len(report.findings) == 3  # the rest was still scanned
    with pytest.raises(ToolError) as caught:
        require_complete(report)
    assert str(caught.value) == (
        "bandit could not audit 1 path(s): app/broken.py (syntax error while parsing AST from file)"
    )


def test_missing_path_is_an_error(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-missing-path.json"), CAPTURED_IN)

    with pytest.raises(ToolError, match=r"nothere \(No such file or directory\)"):
        require_complete(report)


def test_empty_directory_audited_no_code(assets: Path) -> None:
    report = parse_bandit_report(load(assets, "bandit-empty-dir.json"), CAPTURED_IN)

    assert (report.loc, report.files, report.errors) == (0, 0, ())
    with pytest.raises(ToolError, match="bandit audited no code"):
        require_complete(report)


@pytest.mark.parametrize(
    "broken", [[], {"results": []}, {"metrics": {}, "errors": [], "results": []}]
)
def test_report_of_another_shape_is_an_error(broken: Any) -> None:
    with pytest.raises(ToolError, match="unexpected shape"):
        parse_bandit_report(broken, CAPTURED_IN)


# --- command line and settings --------------------------------------------------------------


def test_argv_uses_absolute_targets_and_exclusions(tmp_path: Path) -> None:
    write(tmp_path, {"app/a.py": "", "tests/test_a.py": ""})
    settings = BanditSettings(paths=["app", "."], exclude=["tests", "nothere", "*/migrations/*"])
    plan = plan_scan(settings, tmp_path)
    ini = tmp_path / "own.ini"

    argv = bandit_argv("bandit", settings, plan, tmp_path / "out.json", ini)

    # "nothere" is not passed: bandit would drop every file whose name merely contains it.
    assert argv == [
        "bandit", "-r", "-f", "json", "-o", str(tmp_path / "out.json"), "-q", "--ini", str(ini),
        "-x", f"{tmp_path / 'tests'},*/migrations/*",
        str(tmp_path / "app"), str(tmp_path),
    ]  # fmt: skip
    assert bandit_argv("bandit", settings, plan, tmp_path / "o", ini, ignore_nosec=True)[-3:] == [
        "--ignore-nosec", str(tmp_path / "app"), str(tmp_path),
    ]  # fmt: skip


def test_argv_without_exclusions_still_replaces_the_tool_defaults(tmp_path: Path) -> None:
    settings = BanditSettings(paths=["."], exclude=[])
    argv = bandit_argv("bandit", settings, plan_scan(settings, tmp_path), tmp_path / "o", tmp_path)
    assert argv[argv.index("-x") + 1] == ""  # no -x: bandit would skip .git, .tox, *.egg, ...


def test_settings_reject_values_bandit_would_split() -> None:
    with pytest.raises(ValidationError):
        BanditSettings(exclude=["a,b"])
    with pytest.raises(ValidationError, match=r"settings.skips is gone: .*\[\[waivers\]\]"):
        BanditSettings.model_validate({"skips": ["B101"]})  # rules are waived, not skipped
    with pytest.raises(ValidationError):
        BanditSettings(paths=[])


# --- real bandit runs -----------------------------------------------------------------------


@pytest.mark.integration
def test_shell_true_is_a_high_finding(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings())

    assert result.status is CheckStatus.OK, result.reason
    b602 = [f for f in result.findings if f.rule == "B602"]
    assert len(b602) == 1
    assert (b602[0].severity, b602[0].location) == (FindingSeverity.HIGH, "app/shell.py:5")
    values = {name: m.value for name, m in result.metrics.items()}
    assert values == {
        "loc": 3, "files": 1, "findings_high": 1, "findings_medium": 0, "findings_low": 1,
        "excluded_files": 0, "suppressed": 0, "suppressed_high": 0,
    }  # fmt: skip
    assert result.suppressed == []
    assert "bandit_ignore_nosec_json" not in result.artifacts  # nothing hidden: one run only
    assert result.tool_versions == {"bandit": version("bandit")}
    assert json.loads(Path(result.artifacts["bandit_json"]).read_text())["results"]


@pytest.mark.integration
def test_default_exclusions_really_exclude(tmp_path: Path) -> None:
    # bandit itself would keep scanning .venv/ and tests/ given "-x .venv,tests" (relative).
    project = write(
        tmp_path,
        {
            "app/ok.py": "def add(a, b):\n    return a + b\n",
            ".venv/lib/vendored.py": "eval('1')\n",
            "tests/test_app.py": "def test_add():\n    assert True\n",
            "node_modules/x/build.py": SHELL,
        },
    )

    result = run_check(project, BanditSettings())

    assert result.status is CheckStatus.OK, result.reason
    assert result.findings == []
    assert result.metrics["files"].value == 1
    assert result.metrics["excluded_files"].value == 3
    assert result.reason == (
        "no findings in 1 files, 2 lines; 3 Python files excluded by the check's exclude"
    )


@pytest.mark.integration
def test_file_that_does_not_parse_is_an_error_in_a_real_run(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL, "app/broken.py": "def broken(:\n    pass\n"})

    result = run_check(project, BanditSettings())

    assert result.status is CheckStatus.ERROR
    assert result.reason == (
        "bandit could not audit 1 path(s): app/broken.py (syntax error while parsing AST from file)"
    )


@pytest.mark.integration
def test_missing_path_is_an_error_in_a_real_run(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings(paths=["app", "nothere"]))

    assert result.status is CheckStatus.ERROR
    assert result.reason == "bandit could not audit 1 path(s): nothere (No such file or directory)"


@pytest.mark.integration
def test_empty_directory_is_an_error_in_a_real_run(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    result = run_check(tmp_path, BanditSettings(paths=["empty"]))

    assert result.status is CheckStatus.ERROR
    assert result.reason == "bandit audited no code (0 lines in 0 files)"


@pytest.mark.integration
def test_executable_override_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})

    result = run_check(project, BanditSettings(executable="tools/no-such-bandit"))

    assert result.status is CheckStatus.ERROR
    assert "not found" in result.reason
    assert "no-such-bandit" in result.reason


@pytest.mark.integration
def test_executable_override_relative_to_the_project(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": SHELL})
    wrapper = project / "tools" / "bandit"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / "bandit"} "$@"\n')
    wrapper.chmod(0o755)

    result = run_check(project, BanditSettings(executable="tools/bandit"))

    assert result.status is CheckStatus.OK, result.reason
    assert [f.rule for f in result.findings] == ["B404", "B602"]


# --- what the check asks bandit to scan (its own listing) -----------------------------------

HIGH_MD5 = "import hashlib\n\n\ndef digest(data):\n    return hashlib.md5(data).hexdigest()\n"


def test_plan_lists_python_files_scripts_and_exclusions(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/a.py": "",
            "app/gui.pyw": "",
            "app/README.txt": "# not python\n",
            "app/bin/tool": "#!/usr/bin/env python3\nprint(1)\n",
            "app/bin/run.sh": "#!/bin/sh\nexec python -m app\n",
            "app/migrations/0001.py": "",
            "app/tests_util.py": "",  # "tests" excludes tests/, not every name holding it
            "tests/test_a.py": "",
        },
    )
    os.mkfifo(tmp_path / "app" / "pipe")  # opening it to read a shebang would hang

    plan = plan_scan(
        BanditSettings(paths=["app", "tests"], exclude=["tests", "*/migrations/*"]), tmp_path
    )

    relative = sorted(os.path.relpath(p, tmp_path) for p in plan.expected)
    assert relative == ["app/a.py", "app/bin/tool", "app/gui.pyw", "app/tests_util.py"]
    assert plan.excluded == 2
    assert plan.scripts == (str(tmp_path / "app" / "bin" / "tool"),)
    assert plan.targets[-1] == plan.scripts[0]  # passed by name: "-r" would leave it out


def test_plan_records_symlinked_python_directories(tmp_path: Path) -> None:
    write(tmp_path, {"app/a.py": "", "vendor/lib.py": "", "data/x.json": "{}"})
    (tmp_path / "app" / "vendor").symlink_to(tmp_path / "vendor")
    (tmp_path / "app" / "data").symlink_to(tmp_path / "data")  # no Python in it: fine

    plan = plan_scan(BanditSettings(paths=["app"]), tmp_path)

    assert plan.symlinked == (str(tmp_path / "app" / "vendor"),)
    report = BanditReport(1, 1, (), (), frozenset(plan.expected))
    with pytest.raises(
        ToolError, match=r"does not follow symlinked directories; 1 hold .*app/vendor"
    ):
        require_complete(report, plan)


def test_plan_records_directories_it_cannot_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"app/a.py": ""})
    real_walk = os.walk

    def walk(top: str, onerror: Any = None) -> Any:  # what os.walk does on EACCES
        onerror(PermissionError(13, "Permission denied", os.path.join(top, "secret")))
        return real_walk(top)

    monkeypatch.setattr(os, "walk", walk)
    plan = plan_scan(BanditSettings(paths=["app"]), tmp_path)

    assert plan.unreadable == ("app/secret (Permission denied)",)
    with pytest.raises(ToolError, match=r"1 directories under the paths cannot be listed"):
        require_complete(BanditReport(1, 1, (), (), plan.expected), plan)


def _plan(tmp_path: Path, *names: str) -> ScanPlan:
    return ScanPlan(
        tmp_path, (str(tmp_path),), frozenset(str(tmp_path / n) for n in names), 0, (), (), (),
        (), (),
    )  # fmt: skip


def test_files_bandit_left_out_are_named_with_a_count(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "a.py", "b.py", "c.py", "d.py", "e.py")
    report = BanditReport(10, 1, (), (), frozenset({str(tmp_path / "a.py")}))

    with pytest.raises(ToolError) as caught:
        require_complete(report, plan)

    assert str(caught.value) == (
        "bandit left out 4 of 5 Python files under the paths: b.py, c.py, d.py, +1 more"
    )


def test_files_bandit_scanned_unasked_are_an_error(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "a.py")
    scanned = frozenset({str(tmp_path / "a.py"), str(tmp_path / "tests" / "t.py")})

    with pytest.raises(ToolError, match=r"scanned 1 files the check did not list .*: tests/t\.py"):
        require_complete(BanditReport(10, 2, (), (), scanned), plan)


def test_odd_file_names_are_escaped_for_reports(assets: Path) -> None:
    data = load(assets, "bandit-findings.json")
    data["results"][0]["filename"] = "/tmp/neuroerp-bandit/app/bad\udcffname\n.py"

    report = parse_bandit_report(data, CAPTURED_IN)

    assert report.findings[0].location == "app/bad\\xffname\\x0a.py:1"
    json.dumps(report.findings[0].location).encode("utf-8")  # writable into report.json


def test_hidden_by_nosec_must_match_the_tool_counters(assets: Path) -> None:
    full = parse_bandit_report(load(assets, "bandit-findings.json"), CAPTURED_IN)
    honoured = BanditReport(6, 1, full.findings[:1], (), full.scanned, nosec=1, nosec_rules=1)

    assert [f.rule for f in hidden_by_nosec(honoured, full)] == ["B602", "B324"]
    with pytest.raises(ToolError, match="counted 3 findings hidden by # nosec, but .* shows 2"):
        hidden_by_nosec(BanditReport(6, 1, full.findings[:1], (), nosec=3), full)


def test_project_configs_are_named_with_their_keys(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".bandit": "[bandit]\nskips = B101\nexclude = ./legacy\n",
            "app/.bandit": "[bandit]\ntests = B602\n",
            ".venv/lib/pkg/.bandit": "[bandit]\nskips = B101\n",  # excluded: not named
            "pyproject.toml": '[tool.bandit]\nexclude_dirs = ["legacy"]\nskips = ["B602"]\n',
            "bandit.yaml": "skips: [B101]\n",
        },
    )

    found = list(plan_scan(BanditSettings(paths=["."]), tmp_path).project_configs)

    assert found == [
        ".bandit (exclude, skips)",
        "app/.bandit (tests)",
        "pyproject.toml [tool.bandit] (exclude_dirs, skips)",
        "bandit.yaml",
    ]


def test_honour_nosec_is_the_default() -> None:
    assert BanditSettings().honour_nosec is True
    assert BanditSettings(honour_nosec=False).honour_nosec is False


# --- real bandit: audited exactly what is there ---------------------------------------------

LEGACY = {"app/ok.py": "def add(a, b):\n    return a + b\n", "app/legacy/shell.py": SHELL}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("files", "settings", "named"),
    [
        # Each narrowed bandit silently before: the B602 in app/legacy/shell.py went unseen.
        (
            {"app/.bandit": "[bandit]\nconfigfile = bandit.yaml\n",
             "bandit.yaml": 'exclude_dirs: ["legacy"]\n'},
            {}, "app/.bandit (configfile), bandit.yaml",
        ),
        ({"app/.bandit": "[bandit]\nskips = B602\n"}, {}, "app/.bandit (skips)"),
        ({"app/.bandit": "[bandit]\ntests = B101\n"}, {}, "app/.bandit (tests)"),
        (
            {"app/.bandit": f"[bandit]\nexclude = {'{project}'}/app/legacy\n"},
            {"exclude": []}, "app/.bandit (exclude)",
        ),
        (
            {"pyproject.toml": '[tool.bandit]\nexclude_dirs = ["legacy"]\nskips = ["B602"]\n'},
            {}, "pyproject.toml [tool.bandit] (exclude_dirs, skips)",
        ),
    ],
    ids=["configfile-exclude_dirs", "skips", "tests", "exclude", "pyproject"],
)  # fmt: skip
def test_project_bandit_config_cannot_narrow_the_scan(
    tmp_path: Path, files: dict[str, str], settings: dict[str, Any], named: str
) -> None:
    project = write(tmp_path, LEGACY)
    write(project, {k: v.replace("{project}", str(project)) for k, v in files.items()})

    result = run_check(project, BanditSettings(paths=["app"], **settings))

    assert result.status is CheckStatus.OK, result.reason
    b602 = [f.location for f in result.findings if f.rule == "B602"]
    assert b602 == ["app/legacy/shell.py:5"]
    assert result.reason.endswith(f"; project bandit settings not applied: {named}")


@pytest.mark.integration
def test_a_file_bandit_left_out_is_an_error_naming_it(tmp_path: Path) -> None:
    # bandit's -x also matches by substring: excluding app/legacy.py drops app/legacy.pyw too.
    project = write(
        tmp_path, {"app/legacy.py": SHELL, "app/legacy.pyw": SHELL, "app/ok.py": "x = 1\n"}
    )

    result = run_check(project, BanditSettings(paths=["app"], exclude=["app/legacy.py"]))

    assert result.status is CheckStatus.ERROR
    assert result.reason == ("bandit left out 1 of 2 Python files under the paths: app/legacy.pyw")


@pytest.mark.integration
def test_python_scripts_without_py_name_are_scanned(tmp_path: Path) -> None:
    tool = "#!/usr/bin/env python3\nimport subprocess\nsubprocess.call(input(), shell=True)\n"
    project = write(tmp_path, {"app/ok.py": "x = 1\n", "app/bin/tool": tool})

    result = run_check(project, BanditSettings(paths=["app"]))

    assert result.status is CheckStatus.OK, result.reason
    assert ("B602", "app/bin/tool:3") in [(f.rule, f.location) for f in result.findings]
    assert "; 1 scripts without .py scanned: app/bin/tool" in result.reason


@pytest.mark.integration
def test_odd_file_names_do_not_crash_and_reach_the_report(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/ok.py": "x = 1\n", "app/new\nline.py": "eval(input())\n"})
    (project / "app").joinpath(os.fsdecode(b"bad\xffname.py")).write_text(SHELL)
    (project / "app").joinpath(os.fsdecode(b"scr\xfeipt")).write_text("#!/usr/bin/python\n" + SHELL)

    result = run_check(project, BanditSettings(paths=["app"]))

    assert result.status is CheckStatus.OK, result.reason
    locations = {f.location for f in result.findings}
    assert {"app/bad\\xffname.py:5", "app/new\\x0aline.py:1", "app/scr\\xfeipt:6"} <= locations
    assert "app/scr\\xfeipt" in result.reason
    out = write_reports(_stage(result), tmp_path / "out")  # every text must be encodable
    assert "bad\\\\xffname.py:5" in out["report.json"].read_text(encoding="utf-8")


# --- real bandit: # nosec is counted and listed, never silent -------------------------------

NOSEC = """\
import hashlib
import subprocess


def run(command):
    return subprocess.call(command, shell=True)  # nosec


def digest(data):
    return hashlib.md5(data).hexdigest()  # nosec B324
"""


def _stage(result: CheckResult, outcomes: list[Any] | None = None) -> StageReport:
    return StageReport(
        "r1", "development", "v1", "demo", Verdict.PASS, "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:01Z", 1.0, [result], outcomes or [],
    )  # fmt: skip


@pytest.mark.integration
def test_nosec_high_finding_is_counted_and_listed_as_suppressed(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": NOSEC})

    result = run_check(project, BanditSettings(paths=["app"]))

    assert result.status is CheckStatus.OK, result.reason
    assert [f.rule for f in result.findings] == ["B404"]  # the import only
    hidden = [(f.rule, f.severity, f.location) for f in result.suppressed]
    assert hidden == [
        ("B602", FindingSeverity.HIGH, "app/shell.py:6"),
        ("B324", FindingSeverity.HIGH, "app/shell.py:10"),
    ]
    assert result.metrics["suppressed"].value == 2
    assert result.metrics["suppressed_high"].value == 2
    assert "; 2 suppressed by # nosec (2 high)" in result.reason
    assert Path(result.artifacts["bandit_ignore_nosec_json"]).is_file()
    # A findings limit does not count them; a limit on the metric does.
    check = bandit_check(BanditSettings())
    limit = evaluate(ConditionSpec(check="bandit", findings="high", max=0), check, result)
    watched = evaluate(
        ConditionSpec(check="bandit", metric="suppressed_high", max=0), check, result
    )
    assert (limit.status, watched.status) == (OutcomeStatus.PASS, OutcomeStatus.FAIL)

    out = write_reports(_stage(result, [limit, watched]), tmp_path / "out")

    document = json.loads(out["report.json"].read_text(encoding="utf-8"))
    listed = document["checks"][0]["suppressed"]
    assert [(f["rule"], f["severity"], f["location"]) for f in listed] == [
        ("B602", "high", "app/shell.py:6"),
        ("B324", "high", "app/shell.py:10"),
    ]
    assert document["checks"][0]["metrics"]["suppressed"]["value"] == 2
    assert document["counts"]["findings"]["high"] == 0  # not counted as findings
    markdown = out["report.md"].read_text(encoding="utf-8")
    assert "#### bandit: suppressed, not counted (2)" in markdown
    assert "- **high** `B602` (bandit):" in markdown


@pytest.mark.integration
def test_nosec_not_honoured_when_the_settings_say_so(tmp_path: Path) -> None:
    project = write(tmp_path, {"app/shell.py": NOSEC})

    result = run_check(project, BanditSettings(paths=["app"], honour_nosec=False))

    assert result.status is CheckStatus.OK, result.reason
    assert {"B602", "B324"} <= {f.rule for f in result.findings}
    assert result.suppressed == [] and result.metrics["suppressed"].value == 0
    assert result.reason.endswith("; # nosec not honoured")


# --- real bandit: no shared state -----------------------------------------------------------


@pytest.mark.integration
def test_concurrent_scans_share_no_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    project = write(tmp_path / "project", {"app/shell.py": SHELL, "app/hash.py": HIGH_MD5})
    before = sorted(p for p in project.rglob("*"))
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}

    def scan(work: str, paths: list[str]) -> CheckResult:
        ctx = CheckContext(project, project / ".neuroerp-ci" / work, sys.executable, env)
        return execute_check(BanditCheck(), bandit_check(BanditSettings(paths=paths)), ctx)

    with ThreadPoolExecutor(max_workers=2) as pool:
        shell, md5 = pool.map(scan, ["one", "two"], [["app/shell.py"], ["app/hash.py"]])

    assert (shell.status, md5.status) == (CheckStatus.OK, CheckStatus.OK), (shell, md5)
    assert {f.rule for f in shell.findings} == {"B404", "B602"}
    assert {f.rule for f in md5.findings} == {"B324"}
    assert list(home.iterdir()) == []  # not even stevedore's entry-point cache
    # stevedore writes no cache at all when the interpreter lives under /tmp (a CI clone):
    # then there is nothing to look for; elsewhere the cache is in the check's own folder.
    if not sys.executable.startswith("/tmp"):
        assert (project / ".neuroerp-ci" / "one" / "cache").is_dir()
    after = [p for p in project.rglob("*") if ".neuroerp-ci" not in p.parts]
    assert after == [p for p in before if ".neuroerp-ci" not in p.parts]
