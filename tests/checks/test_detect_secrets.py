"""The secrets kind: detect-secrets output parsing, and real detect-secrets runs.

The real runs scan throwaway git repositories holding fake AWS access keys (``AKIA`` and 16
upper-case letters and digits, made up here; built from two parts so this file holds none).
They show that a key is found at its file and line, named by type and hash only, and that
the key itself is in no file of the work directory and nowhere in the result; that only
tracked files are scanned; that the baseline and allowlist pragmas suppress (listed, not
counted); that a history range finds a key added and removed again; and that a missing tool,
garbage output or a crash is an error whose reason quotes nothing it scanned.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import KINDS, Check, CheckContext, execute_check
from neuroerp_ci.checks.detect_secrets import (
    HELP_URL,
    TREE_SOURCE,
    Detected,
    SecretsCheck,
    SecretsSettings,
    chunked,
    content_kind,
    crash_reason,
    examined,
    finding_of,
    parse_baseline,
    parse_full_patch,
    parse_scan_output,
    rule_of,
    scan_argv,
    tool_env,
    unquote_git_path,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, FindingSeverity, Priority, fingerprint_of
from neuroerp_ci.support.tooling import ToolRun
from tests.git_repo import git

KEY = "AKIA" + "Q4ZT7NEUROERP9X2"  # a made-up AWS access key id
OTHER_KEY = "AKIA" + "M8RWJ2KXC5VB7HD3"
HASH = "a" * 40

# --- settings, names, metrics ---------------------------------------------------------------


def test_the_kind_is_registered_with_its_settings() -> None:
    kind = KINDS["secrets"]
    assert isinstance(kind, SecretsCheck)
    assert kind.default_conditions(SecretsSettings()) == ({"findings": "any", "max": 0},)
    names = kind.metric_names(SecretsSettings())
    assert names.findings
    assert names.fixed == {"secrets", "files_scanned", "suppressed"}
    assert "settings.history" in names.problem("commits_scanned", "s", "secrets")
    assert kind.metric_names(SecretsSettings(history="main..HEAD")).produces("commits_scanned")


@pytest.mark.parametrize(
    "settings",
    [
        {"pathz": ["."]},
        {"paths": ["../elsewhere"]},
        {"exclude": ["/etc"]},
        {"paths": []},
        {"baseline": "../.secrets.baseline"},
        {"history": "--all"},
        {"history": "-x..y"},
        {"history": "HEAD"},
        {"exclude_lines": ["("]},
        {"plugins_disabled": ["No Such"]},
    ],
)
def test_settings_refuse_what_cannot_be_meant(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SecretsSettings.model_validate(settings)


def test_settings_take_ranges_and_globs() -> None:
    settings = SecretsSettings.model_validate(
        {"paths": ["app", "*.cfg"], "history": "v1.0..", "exclude_lines": ["^#"]}
    )
    assert settings.history == "v1.0.."
    assert SecretsSettings(history="..HEAD").history == "..HEAD"


def test_command_line_never_verifies_and_names_files_after_a_separator() -> None:
    settings = SecretsSettings(
        plugins_disabled=["HexHighEntropyString"], exclude_lines=["-x"], honour_allowlist=False
    )
    argv = scan_argv("ds", settings, ["-odd.py", "a.py"])

    assert argv[:4] == ["ds", "-v", "scan", "--no-verify"]
    assert "--baseline" not in argv
    assert "--disable-filter=detect_secrets.filters.allowlist.is_line_allowlisted" in argv
    assert "--disable-plugin=HexHighEntropyString" in argv
    assert "--exclude-lines=-x" in argv
    assert argv[-3:] == ["--", "-odd.py", "a.py"]
    assert "--only-allowlisted" in scan_argv("ds", SecretsSettings(), ["a"], allowlisted=True)


def test_tool_environment_holds_none_of_the_callers_secrets() -> None:
    caller = {"PATH": "/usr/bin", "HOME": "/home/x", "LANG": "C.UTF-8", "DB_PASSWORD": "pw-123"}
    caller |= {"AWS_SECRET_ACCESS_KEY": KEY, "GIT_DIR": "/elsewhere"}

    env = tool_env(caller)

    assert {k: env[k] for k in ("PATH", "HOME", "LANG")} == {
        "PATH": "/usr/bin", "HOME": "/home/x", "LANG": "C.UTF-8",
    }  # fmt: skip
    assert set(env) == {"PATH", "HOME", "LANG", "PYTHONUTF8", "PYTHONIOENCODING",
                        "PYTHONDONTWRITEBYTECODE"}  # fmt: skip


def test_rule_and_finding_name_the_type_and_the_hash_only() -> None:
    hit = Detected("AWS Access Key", "app/x.py", HASH, 3)

    finding = finding_of(hit, "app/x.py", "app/x.py:3")

    assert rule_of("AWS Access Key") == "aws-access-key"
    assert rule_of("Public IP (ipv4)") == "public-ip-ipv4"
    assert finding.rule == "aws-access-key"
    assert finding.severity is FindingSeverity.HIGH
    assert finding.message == f"AWS Access Key found (sha1 {HASH[:12]})"
    expected = fingerprint_of("detect-secrets", "AWS Access Key", "app/x.py", HASH)
    assert finding.fingerprint == expected
    assert finding.help_url == HELP_URL
    assert finding.location == "app/x.py:3"


# --- parsing detect-secrets' report and log -------------------------------------------------


def report(results: dict[str, list[dict[str, object]]]) -> str:
    return json.dumps(
        {"version": "1.5.0", "plugins_used": [{"name": "AWSKeyDetector"}], "filters_used": [],
         "results": results, "generated_at": "2026-01-01T00:00:00Z"}
    )  # fmt: skip


def result(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "type": "AWS Access Key", "filename": "a.py", "hashed_secret": HASH,
        "is_verified": False, "line_number": 2,
    }  # fmt: skip
    return {**base, **fields}


def test_report_gives_the_secrets_and_keeps_known_fields() -> None:
    data, hits = parse_scan_output(report({"a.py": [result()]}))

    assert hits == [Detected("AWS Access Key", "a.py", HASH, 2)]
    assert data["results"] == {"a.py": [result()]}
    assert set(data) == {"version", "plugins_used", "filters_used", "results", "generated_at"}


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "garbage",
        "[]",
        json.dumps({"results": []}),
        report({"a.py": {}}),
        report({"a.py": ["x"]}),
        report({"a.py": [result(hashed_secret="not-a-hash")]}),
        report({"a.py": [result(line_number="2")]}),
        report({"a.py": [result(line_number=True)]}),
        report({"a.py": [result(type=None)]}),
    ],
)
def test_report_of_another_shape_is_an_error(stdout: str) -> None:
    with pytest.raises(ToolError, match="detect-secrets"):
        parse_scan_output(stdout)


def test_unknown_result_field_is_an_error_that_does_not_quote_it() -> None:
    with pytest.raises(ToolError) as caught:
        parse_scan_output(report({"a.py": [result(secret_value=KEY)]}))
    assert "secret_value" in str(caught.value)
    assert KEY not in str(caught.value)


def test_a_bad_hash_is_an_error_that_does_not_quote_it() -> None:
    with pytest.raises(ToolError) as caught:
        parse_scan_output(report({"a.py": [result(hashed_secret=KEY)]}))
    assert KEY not in str(caught.value)


LOG = (
    "[scan]\tINFO\tChecking file: a.py\n"
    '[scan]\tINFO\tSkipping "yarn.lock" due to `detect_secrets.filters.heuristic.is_lock_file`\n'
    "[scan]\tINFO\tChecking file: odd\nname.txt\n"
    '[scan]\tINFO\tSkipping "0" due to `1`.\n'
)


def test_log_says_what_was_examined_and_filtered() -> None:
    filtered = examined(("a.py", "yarn.lock", "odd\nname.txt"), LOG)
    assert filtered == {"yarn.lock": "is_lock_file"}


@pytest.mark.parametrize(
    ("files", "stderr", "message"),
    [
        (("a.py", "gone.py"), LOG, "did not examine 1 of the 2 files it was given: gone.py"),
        (("b.py",), "[scan]\tWARNING\tUnable to open file: b.py\n", "could not open 1 files"),
        (("a.py",), LOG.replace("a.py", "b.py") + "[scan]\tINFO\tChecking file: a.py\n",
         "examined 2 files it was not given"),
        ((), "[scan]\tINFO\tChecking file: x\n", "not given: x"),
    ],
)  # fmt: skip
def test_log_missing_a_file_is_an_error(files: tuple[str, ...], stderr: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        examined(files, stderr)


def test_crash_reason_names_the_exception_but_quotes_no_scanned_line() -> None:
    traceback = (
        "Traceback (most recent call last):\n  File x, line 3\n"
        f'yaml.scanner.ScannerError: mapping values are not allowed here\n  key: "{KEY}": x\n'
    )
    crash = ToolRun(("detect-secrets",), 1, "", traceback, 0.1)
    other = ToolRun(("detect-secrets",), 1, "", f"ValueError: bad {KEY}\n", 0.1)
    usage = ToolRun(("ds",), 2, "", "usage: ...\ndetect-secrets scan: error: argument x\n", 0.1)

    assert KEY not in crash_reason(crash)
    assert crash_reason(other).startswith("detect-secrets exited 1 with ValueError;")
    assert KEY not in crash_reason(other)
    assert crash_reason(usage) == (
        "detect-secrets refused its command line: detect-secrets scan: error: argument x"
    )
    killed = ToolRun(("ds",), -9, "", "", 0.1)
    assert crash_reason(killed) == "detect-secrets was killed by signal 9"


def test_long_file_lists_are_split_to_fit_a_command_line() -> None:
    names = tuple(f"dir/file-{n:05}.py" for n in range(2500))

    chunks = list(chunked(names))

    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert sum(chunks, ()) == names
    assert len(list(chunked(tuple("x" * 40_000 for _ in range(5))))) == 3
    with pytest.raises(ToolError, match="no file to scan"):
        list(chunked(()))


# --- the baseline, git output, file contents ------------------------------------------------


def test_baseline_entries_are_keyed_by_file_type_and_hash() -> None:
    data = {
        "results": {
            "./a.py": [{"type": "AWS Access Key", "hashed_secret": HASH, "is_secret": False}],
            "b.py": [{"type": "Secret Keyword", "hashed_secret": HASH}],
        },
        "filters_used": [{"path": "detect_secrets.filters.regex.should_exclude_file"}],
    }

    known = parse_baseline(data, ".secrets.baseline")

    assert known.entries == {
        ("a.py", "AWS Access Key", HASH): False,
        ("b.py", "Secret Keyword", HASH): None,
    }
    assert known.not_applied == ("should_exclude_file",)


@pytest.mark.parametrize(
    "data",
    [[], {}, {"results": []}, {"results": {"a": [{"type": "x"}]}},
     {"results": {"a": [{"type": "x", "hashed_secret": HASH, "is_secret": "no"}]}}],
)  # fmt: skip
def test_baseline_of_another_shape_is_an_error_naming_it(data: object) -> None:
    with pytest.raises(ToolError, match=r"baseline my\.baseline"):
        parse_baseline(data, "my.baseline")


def test_git_quoted_paths_are_the_file_system_names() -> None:
    assert unquote_git_path("plain name.txt") == "plain name.txt"
    assert unquote_git_path('"caf\\303\\251.txt"') == "café.txt"
    assert unquote_git_path('"a\\nb\\t\\"c\\\\"') == 'a\nb\t"c\\'
    assert unquote_git_path('"bad\\377"') == os.fsdecode(b"bad\xff")
    with pytest.raises(ToolError):
        unquote_git_path('"bad\\q"')


PATCH = (
    b"diff --git a/new.py b/new.py\nnew file mode 100644\nindex 0000000..1111111\n"
    b"--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+one\n+diff --git a/x b/x\n"
    b"\\ No newline at end of file\n"
    b"diff --git a/old.py b/old.py\nindex 2222222..3333333 100644\n--- a/old.py\n+++ b/old.py\n"
    b"@@ -1,3 +1,3 @@ context\n keep\r\n-gone\n+@@ -1 +99,9 @@\n+Binary files a and b differ\n"
    b"-gone too\n"
)


def test_full_patch_gives_each_new_file_and_its_added_lines() -> None:
    new, old = parse_full_patch(PATCH)

    assert new.lines == [b"one", b"diff --git a/x b/x"]
    assert new.added == {1, 2}
    assert old.lines == [b"keep\r", b"@@ -1 +99,9 @@", b"Binary files a and b differ"]
    assert old.added == {2, 3}


@pytest.mark.parametrize(
    "patch",
    [
        b"diff --git a/x b/x\n@@ -5,1 +5,1 @@\n-a\n+b\n",  # not full context
        b"diff --git a/x b/x\n@@ -0,0 +1,3 @@\n+a\n",  # truncated
        b"diff --git a/x b/x\n@@ -0,0 +1,1 @@\n?a\n",
        b"@@ -0,0 +1 @@\n+a\n",
        b"diff --git a/x b/x\n@@ nonsense @@\n",
    ],
)
def test_patch_of_another_shape_is_an_error(patch: bytes) -> None:
    with pytest.raises(ToolError, match="git printed"):
        parse_full_patch(patch)


def test_content_kind_tells_text_binary_and_other_encodings(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes("café\n".encode())
    (tmp_path / "nul").write_bytes(b"\x00ok")
    (tmp_path / "b").write_bytes(b"\x00\xff\xfe")
    (tmp_path / "l").write_bytes("café\n".encode("latin-1"))

    kinds = [content_kind(tmp_path / n) for n in ("t", "nul", "b", "l")]

    assert kinds == ["text", "text", "binary", "not-utf8"]


# --- real detect-secrets runs ---------------------------------------------------------------


def secrets_check(settings: SecretsSettings, timeout: float = 120) -> Check:
    return Check("secrets", "secrets", "secrets", Priority.HIGH, (), timeout, settings)


def run_check(
    project: Path,
    settings: SecretsSettings | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> CheckResult:
    ctx = CheckContext(
        project_dir=project,
        work_dir=project / ".neuroerp-ci" / "work",
        python=sys.executable,
        env=dict(os.environ) if env is None else env,
    )
    check = secrets_check(settings or SecretsSettings(), timeout)
    return execute_check(SecretsCheck(), check, ctx)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(exist_ok=True)
    git(root, "init", "-q", ".")
    write(root, {".gitignore": ".neuroerp-ci/\n", **files})
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def assert_key_nowhere(result: CheckResult, work_dir: Path, *keys: str) -> None:
    assert files_under(work_dir), "the check wrote its artifacts"
    for key in keys:
        assert key not in repr(result)
        for path in files_under(work_dir):
            assert key.encode() not in path.read_bytes(), path


APP = f'import os\n\nAWS_KEY = "{KEY}"\n'


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_tracked_key_is_found_at_its_line_and_shown_nowhere(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app/settings.py": APP, "README.md": "# readme\n"})

    result = run_check(project)

    assert result.status is CheckStatus.OK, result.reason
    [finding] = result.findings
    assert (finding.tool, finding.rule, finding.location) == (
        "detect-secrets", "aws-access-key", "app/settings.py:3",
    )  # fmt: skip
    assert finding.message.startswith("AWS Access Key found (sha1 ")
    assert result.metrics["secrets"].value == 1
    assert result.metrics["files_scanned"].value == 3  # .gitignore, README.md, settings.py
    assert result.reason.startswith(f"1 secret in 3 files ({TREE_SOURCE})")
    assert result.tool_versions["detect-secrets"] == "1.5.0"
    report = json.loads(Path(result.artifacts["detect_secrets_json"]).read_text())
    assert list(report["results"]) == ["app/settings.py"]
    log = Path(result.artifacts["log"]).read_text()
    assert "Checking file: app/settings.py" in log
    assert_key_nowhere(result, project / ".neuroerp-ci" / "work", KEY)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_an_empty_file_does_not_crash_the_allowlist_run(tmp_path: Path) -> None:
    # detect-secrets 1.5 --only-allowlisted raises ValueError on an empty file (an empty
    # package __init__.py, found on the first real project tried)
    project = repo(tmp_path / "p", {"app/__init__.py": "", "app/settings.py": APP})

    result = run_check(project)

    assert result.status is CheckStatus.OK, result.reason
    assert [f.location for f in result.findings] == ["app/settings.py:3"]
    assert result.metrics["files_scanned"].value == 3  # .gitignore, __init__.py, settings.py


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_tested_tree_is_scanned_untracked_files_too_ignored_ones_not(tmp_path: Path) -> None:
    # an untracked, not ignored file is part of the tree the run tests (a dirty version)
    project = repo(tmp_path / "p", {"app.py": "print('hi')\n", ".gitignore": "local/\n"})
    write(project, {"scratch/notes.py": APP, "local/keys.py": APP})

    result = run_check(project)

    assert result.status is CheckStatus.OK, result.reason
    assert [f.location for f in result.findings] == ["scratch/notes.py:3"]
    assert result.metrics["files_scanned"].value == 3  # .gitignore, app.py, scratch/notes.py
    assert result.reason.startswith(f"1 secret in 3 files ({TREE_SOURCE})")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_the_baseline_suppresses_known_secrets_and_nothing_else(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app/settings.py": APP})
    first = run_check(project)
    baseline = Path(first.artifacts["detect_secrets_json"]).read_text()
    write(project, {".secrets.baseline": baseline, "app/more.py": f'key = "{OTHER_KEY}"\n'})
    git(project, "add", ".")

    result = run_check(project)

    assert result.status is CheckStatus.OK, result.reason
    assert [f.location for f in result.findings] == ["app/more.py:1"]
    [known] = result.suppressed
    assert known.location == "app/settings.py:3"
    assert known.message.endswith("; known: in .secrets.baseline")
    assert "1 known in .secrets.baseline suppressed (0 audited false)" in result.reason
    assert result.metrics["suppressed"].value == 1
    assert_key_nowhere(result, project / ".neuroerp-ci" / "work", KEY, OTHER_KEY)

    audited = json.loads(baseline)
    audited["results"]["app/settings.py"][0]["is_secret"] = True
    write(project, {".secrets.baseline": json.dumps(audited)})
    real = run_check(project)
    assert sorted(f.location for f in real.findings) == ["app/more.py:1", "app/settings.py:3"]
    assert "1 audited real in the baseline, counted" in real.reason


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_baseline_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": "x = 1\n", ".secrets.baseline": "{nope"})

    broken = run_check(project)
    named = run_check(project, SecretsSettings(baseline="ci/secrets.json"))
    none = run_check(project, SecretsSettings(baseline=""))

    assert broken.status is CheckStatus.ERROR
    assert broken.reason.startswith("baseline .secrets.baseline is not JSON")
    assert (named.status, named.reason) == (
        CheckStatus.ERROR, "baseline ci/secrets.json does not exist",
    )  # fmt: skip
    assert none.status is CheckStatus.OK, none.reason


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_allowlisted_lines_are_suppressed_unless_not_honoured(tmp_path: Path) -> None:
    marked = f'KEY = "{KEY}"  # pragma: allowlist secret\n'
    project = repo(tmp_path / "p", {"app.py": marked})

    honoured = run_check(project)
    ignored = run_check(project, SecretsSettings(honour_allowlist=False))

    assert honoured.findings == []
    assert [f.location for f in honoured.suppressed] == ["app.py:1"]
    assert "1 allowlisted in the source, suppressed" in honoured.reason
    assert [f.location for f in ignored.findings] == ["app.py:1"]
    assert "allowlist pragmas not honoured" in ignored.reason


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_history_finds_a_key_added_and_removed_again(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": "x = 1\n"})
    base = git(project, "rev-parse", "HEAD")
    write(project, {"app.py": f"x = 1\ny = 2\nKEY = '{KEY}'\n"})
    git(project, "commit", "-q", "-am", "add a key")
    added = git(project, "rev-parse", "HEAD")
    write(project, {"app.py": "x = 1\ny = 2\n"})
    git(project, "commit", "-q", "-am", "remove it")

    tree_only = run_check(project)
    result = run_check(project, SecretsSettings(history=f"{base}..HEAD"))

    assert tree_only.findings == []
    assert result.status is CheckStatus.OK, result.reason
    [finding] = result.findings
    assert finding.location == f"app.py:3 (commit {added[:7]})"
    assert finding.rule == "aws-access-key"
    assert result.metrics["commits_scanned"].value == 2
    assert f"history {base}..HEAD: 2 commits, 1 secrets in lines they added" in result.reason
    assert "detect_secrets_history_json" in result.artifacts
    assert_key_nowhere(result, project / ".neuroerp-ci" / "work", KEY)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_history_keeps_only_added_lines_and_ignores_diff_attributes(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"old.py": f"KEY = '{KEY}'\n"})
    base = git(project, "rev-parse", "HEAD")
    # "-diff" would make git show no content; lone CRs would shift detect-secrets' lines.
    write(project, {".gitattributes": "*.py -diff\n", "old.py": f"KEY = '{KEY}'\nx = 1\n"})
    (project / "new.py").write_bytes(f"\r\rOTHER = '{OTHER_KEY}'\n".encode())
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "touch old.py, add new.py")
    commit = git(project, "rev-parse", "HEAD")[:7]
    git(project, "rm", "-q", "new.py")
    git(project, "commit", "-q", "-m", "remove new.py")

    result = run_check(project, SecretsSettings(history=f"{base}..HEAD"))

    assert result.status is CheckStatus.OK, result.reason
    # old.py's key is in the tree; no commit of the range added its line.
    locations = sorted(f.location for f in result.findings)
    assert locations == [f"new.py:1 (commit {commit})", "old.py:1"]
    assert "2 commits, 1 secrets in lines they added" in result.reason
    assert_key_nowhere(result, project / ".neuroerp-ci" / "work", KEY, OTHER_KEY)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_history_does_not_report_a_secret_still_in_the_tree_twice(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"a.py": "x = 1\n"})
    write(project, {"a.py": f"x = 1\nKEY = '{KEY}'\n"})
    git(project, "commit", "-q", "-am", "add a key")

    result = run_check(project, SecretsSettings(history="HEAD~1..HEAD"))

    assert [f.location for f in result.findings] == ["a.py:2"]
    assert "1 commits, 0 secrets in lines they added, 1 already reported" in result.reason


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_history_needs_a_git_repository_and_a_valid_range(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain", {"a.py": "x = 1\n"})
    project = repo(tmp_path / "p", {"a.py": "x = 1\n"})

    outside = run_check(plain, SecretsSettings(history="a..b"))
    unknown = run_check(project, SecretsSettings(history="nosuch..HEAD"))

    assert (outside.status, outside.reason) == (
        CheckStatus.ERROR, "history 'a..b' needs a git repository",
    )  # fmt: skip
    assert unknown.status is CheckStatus.ERROR
    assert unknown.reason.startswith("git rev-list exited 128")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_directory_outside_git_is_scanned_whole_and_says_so(tmp_path: Path) -> None:
    project = write(
        tmp_path / "plain",
        {"conf/app.ini": f"aws_key = {KEY}\n", ".venv/lib/x.py": APP, "node_modules/m.js": APP},
    )

    result = run_check(project)

    assert result.status is CheckStatus.OK, result.reason
    assert [f.location for f in result.findings] == ["conf/app.ini:1"]
    assert "(not a git repository: every file but .git, .neuroerp-ci, .venv" in result.reason
    assert result.metrics["files_scanned"].value == 1


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_files_detect_secrets_would_skip_silently_are_errors(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": "x = 1\n"})
    (project / "legacy.txt").write_bytes(f"café password = '{KEY}'\n".encode("latin-1"))
    (project / "logo.bin").write_bytes(b"\x00\xff" * 10)
    git(project, "add", ".")

    result = run_check(project)
    excluded = run_check(project, SecretsSettings(exclude=["legacy.txt"]))
    nothing = run_check(project, SecretsSettings(paths=["nosuch"]))

    assert result.status is CheckStatus.ERROR
    assert "1 text files are not UTF-8" in result.reason
    assert result.reason.endswith("(exclude or convert them): legacy.txt")
    assert excluded.status is CheckStatus.OK, excluded.reason
    assert "not scanned: 1 binary" in excluded.reason
    assert "1 files excluded by the check's exclude" in excluded.reason
    assert nothing.status is CheckStatus.ERROR
    assert nothing.reason == f"paths entries that take no file ({TREE_SOURCE}): nosuch"


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_missing_tool_is_an_error(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": APP})

    result = run_check(project, SecretsSettings(executable=str(tmp_path / "no-detect-secrets")))

    assert result.status is CheckStatus.ERROR
    assert "not found" in result.reason


def fake_tool(folder: Path, script: str) -> str:
    path = folder / "fake-detect-secrets"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_garbage_output_is_an_error(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": APP})
    tool = fake_tool(tmp_path, 'echo "not json"\n')

    result = run_check(project, SecretsSettings(executable=tool))

    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("detect-secrets printed no JSON report")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_report_that_examined_nothing_is_an_error(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": APP})
    empty = json.dumps({"version": "1.5.0", "results": {}})
    tool = fake_tool(tmp_path, f"echo '{empty}'\n")

    result = run_check(project, SecretsSettings(executable=tool))

    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("detect-secrets did not examine 2 of the 2 files")


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_crash_quotes_nothing_and_the_tool_gets_none_of_our_secrets(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": APP})
    seen = tmp_path / "env.txt"
    tool = fake_tool(
        tmp_path,
        f"env > {seen}\necho 'Traceback (most recent call last):' >&2\n"
        f"echo 'ValueError: line AWS_KEY = \"{KEY}\"' >&2\nexit 1\n",
    )
    env = {**os.environ, "DB_PASSWORD": "hunter2-secret", "AWS_SECRET_ACCESS_KEY": OTHER_KEY}

    result = run_check(project, SecretsSettings(executable=tool), env=env)

    assert result.status is CheckStatus.ERROR
    assert result.reason.startswith("detect-secrets exited 1 with ValueError;")
    assert_key_nowhere(result, project / ".neuroerp-ci" / "work", KEY)
    passed = seen.read_text()
    assert "hunter2-secret" not in passed
    assert OTHER_KEY not in passed
    assert "PYTHONUTF8=1" in passed


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_tool_that_hangs_is_stopped_by_the_checks_timeout(tmp_path: Path) -> None:
    project = repo(tmp_path / "p", {"app.py": "x = 1\n"})
    tool = fake_tool(tmp_path, "sleep 30\n")

    result = run_check(project, SecretsSettings(executable=tool), timeout=1)

    assert result.status is CheckStatus.ERROR
    assert "timed out after" in result.reason or "timeout of 1 s ran out" in result.reason
    assert result.duration_s < 15
