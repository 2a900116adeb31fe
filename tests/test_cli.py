"""The command line: a bad pipeline file or usage is exit 2 with ONE line on stderr naming the
file (and key); ``validate`` and ``plan`` describe a good one. Nothing here runs a stage."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroerp_ci.cli import commands as cli_module
from neuroerp_ci.cli import main
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo

PIPELINE = """
[[checks]]
id = "quick"
kind = "command"
settings = { argv = ["{python}", "-c", "print(1)"] }

[[checks]]
id = "after"
kind = "command"
dependencies = ["quick"]
settings = { argv = ["{python}", "-c", "print(2)"] }

[stages.dev]
checks = ["quick", "after"]
"""
QUICK = 'id = "quick"\n'


def pipeline_file(tmp_path: Path, text: str = PIPELINE) -> Path:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(text, encoding="utf-8")
    return path


def changed(old: str, new: str) -> str:
    """The good pipeline with exactly one edit."""
    assert PIPELINE.count(old) == 1, old
    return PIPELINE.replace(old, new)


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``neuroerp-ci argv`` run in this process."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    code = stop.value.code
    return (code if isinstance(code, int) else -1), captured.out, captured.err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("neuroerp-ci: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def unwrapped(out: str) -> str:
    """The text as printed before rich folded it at 80 columns (it keeps the spaces it
    breaks at), for substring checks; see test_plain_output_is_not_wrapped."""
    return "".join(out.splitlines())


@pytest.fixture
def demo_pipeline(tmp_path: Path) -> Path:
    return write_demo(tmp_path / "demo") / DEMO_PIPELINE


BAD_FILES = {
    "toml-syntax": (PIPELINE + '\n[[checks]\nid = "broken"\n', "TOML syntax error"),
    "unknown-kind": (
        changed('id = "quick"\nkind = "command"', 'id = "quick"\nkind = "teleport"'),
        "checks[quick].kind: unknown kind 'teleport'",
    ),
    "cycle": (
        changed(QUICK, QUICK + 'dependencies = ["after"]\n'),
        "dependency cycle",
    ),
    "unknown-dependency": (
        changed('dependencies = ["quick"]', 'dependencies = ["nowhere"]'),
        "checks[after].dependencies: unknown dependency 'nowhere'",
    ),
    "wrong-type": (changed(QUICK, QUICK + 'timeout = "soon"\n'), "checks[quick].timeout:"),
    "unknown-placeholder": (
        changed('"print(1)"', '"print({prot})"'),
        "checks[quick].settings.argv[2]: unknown placeholder {prot}",
    ),
    "non-finite": (
        changed(QUICK, QUICK + "timeout = inf\n"),
        "checks[quick].timeout: must be a finite number (got inf)",
    ),
    "unmeasurable-metric": (
        PIPELINE + 'conditions = [{ check = "after", metric = "exit_cod", max = 0 }]\n',
        "stages.dev.conditions[0].metric: check 'after' (command) never measures 'exit_cod';"
        " did you mean 'exit_code'?",
    ),
    "enum-typo": (
        PIPELINE + 'conditions = [{ check = "after", metric = "exit_code", max = 0,'
        ' on_error = "pass" }]\n',
        "stages.dev.conditions[0].on_error: must be one of fail, warn, ignore (got 'pass')",
    ),
}


@pytest.mark.parametrize(("text", "problem"), BAD_FILES.values(), ids=BAD_FILES.keys())
@pytest.mark.parametrize("command", ["validate", "run", "plan"])
def test_bad_pipeline_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str, problem: str
) -> None:
    path = pipeline_file(tmp_path, text)
    stage = [] if command == "validate" else ["dev"]
    code, out, err = cli([command, *stage, "--config", str(path)], capsys)
    assert code == 2, (out, err)
    assert_one_line_error(err, str(path), problem)
    assert "Traceback" not in out + err


def test_cycle_names_the_dependencies_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pipeline_file(tmp_path, BAD_FILES["cycle"][0])
    code, _, err = cli(["validate", "--config", str(path)], capsys)
    assert code == 2
    assert re.search(r"checks\[(quick|after)\]\.dependencies: dependency cycle", err), err


def test_unknown_stage_on_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pipeline_file(tmp_path)
    code, _, err = cli(["run", "production", "--config", str(path)], capsys)
    assert code == 2
    assert_one_line_error(err, str(path), "stages: no stage 'production'", "dev")


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent" / "neuroerp-ci.toml"
    code, _, err = cli(["run", "dev", "--config", str(path)], capsys)
    assert code == 2
    assert_one_line_error(err, str(path), "not found")


def test_advisories_without_vulns_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pipeline_file(tmp_path)
    mirror = tmp_path / "not-a-mirror"
    mirror.mkdir()
    code, out, err = cli(["run", "dev", "--config", str(path), "--advisories", str(mirror)], capsys)
    assert code == 2
    assert_one_line_error(err, f"--advisories {mirror}", "vulns/")
    assert "Running stage" not in out  # refused before anything started


def test_bad_file_in_a_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    path = pipeline_file(tmp_path, BAD_FILES["wrong-type"][0])
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [sys.executable, "-m", "neuroerp_ci", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done
    assert_one_line_error(done.stderr, str(path), "checks[quick].timeout:")
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["plan"], "Missing argument 'stage'"),
        (["run", "dev", "--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
        (["run", "dev", "--output"], "--output"),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(argv, capsys)
    assert code == 2
    assert err.splitlines() == [err.strip()] and err.startswith("neuroerp-ci: usage error: ")
    assert needle in err and "Traceback" not in out + err


def test_validate_the_demo(demo_pipeline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["validate", "--config", str(demo_pipeline)], capsys)
    assert (code, err) == (0, "")
    text = unwrapped(out)
    assert f"{demo_pipeline}: valid" in text and "stages: development" in text


def test_plan_shows_layers_critical_path_and_mermaid(
    demo_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "development", "--config", str(demo_pipeline)]
    code, as_json, _ = cli([*argv, "--json"], capsys)
    assert code == 0
    plan = json.loads(as_json)
    code, out, err = cli(argv, capsys)
    assert (code, err) == (0, "")
    # api-baseline measures latency, so it runs alone: a layer of its own
    assert ["api-baseline"] in plan["layers"]
    assert re.search(r"^\s*\d+\. api-baseline$", out, re.MULTILINE), out
    assert sorted(plan["order"]) == sorted(c for layer in plan["layers"] for c in layer)
    assert len(plan["critical_path"]) >= 2 and plan["critical_path_s"] > 0
    text = unwrapped(out)
    assert "Critical path" in text and " -> ".join(plan["critical_path"]) in text
    assert "flowchart LR" in out and plan["mermaid"].startswith("flowchart LR")


def test_plain_output_is_not_wrapped(
    demo_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = cli(["validate", "--config", str(demo_pipeline)], capsys)
    summary = out.splitlines()[0]  # the whole summary on one line, then the conditions
    assert "stages: development (" in summary and summary.endswith(")"), out
    assert out.splitlines()[1] == "Conditions of stage development:", out
    _, out, _ = cli(["plan", "development", "--config", str(demo_pipeline), "--json"], capsys)
    plan = json.loads(out)
    _, out, _ = cli(["plan", "development", "--config", str(demo_pipeline)], capsys)
    assert f"  1. {', '.join(plan['layers'][0])}" in out.splitlines(), out


# --- --output: a report directory the run could not write is bad input, before anything runs --


def output_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """--output values the run could not write to, and what the one line must say."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory", encoding="utf-8")
    return {
        "a file": (a_file, f"--output {a_file}: is a file, not a directory"),
        "under a file": (a_file / "runs", f"--output {a_file / 'runs'}: {a_file} is a file"),
    }


def command_line(command: str, path: Path, output: Path, tmp_path: Path) -> list[str]:
    if command == "demo":
        return ["demo", str(tmp_path / "new-demo"), "--output", str(output)]
    if command == "promote":
        return ["promote", "abc123", "--to", "dev", "--config", str(path), "--output", str(output)]
    return ["run", "dev", "--config", str(path), "--output", str(output)]


@pytest.mark.parametrize("command", ["run", "demo", "promote"])
@pytest.mark.parametrize("case", ["a file", "under a file"])
def test_an_output_that_is_a_file_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, case: str
) -> None:
    output, problem = output_cases(tmp_path)[case]
    code, out, err = cli(command_line(command, pipeline_file(tmp_path), output, tmp_path), capsys)
    assert code == 2, (out, err)
    assert_one_line_error(err, problem)
    assert "Running stage" not in out and not (tmp_path / "new-demo").exists()


@pytest.mark.parametrize("command", ["run", "demo", "promote"])
@pytest.mark.parametrize(
    ("errno_code", "problem"),
    [
        (errno.ENOSPC, "no space left on the device of"),
        (errno.EDQUOT, "no space left on the device of"),
        (errno.EACCES, "cannot write in"),
        (errno.EROFS, "cannot write in"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_anything_runs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    errno_code: int,
    problem: str,
) -> None:
    def refuse(directory: Path) -> None:  # the device, as the write probe finds it
        raise OSError(errno_code, os.strerror(errno_code))

    monkeypatch.setattr(cli_module, "write_probe", refuse)
    output = tmp_path / "reports" / "run-1"
    code, out, err = cli(command_line(command, pipeline_file(tmp_path), output, tmp_path), capsys)
    assert code == 2, (out, err)
    assert_one_line_error(err, f"--output {output}: {problem} {tmp_path}")
    assert "Running stage" not in out and not output.exists()


def test_the_default_report_directory_is_probed_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(directory: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli_module, "write_probe", full)
    code, out, err = cli(["run", "dev", "--config", str(pipeline_file(tmp_path))], capsys)
    assert code == 2
    assert_one_line_error(err, "report directory", "no space left", "--output DIR")


def test_the_write_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    assert cli_module.output_problem(tmp_path / "new" / "runs") is None
    assert list(tmp_path.iterdir()) == []  # neither the folders nor the probe file


@pytest.fixture
def tiny_devices(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A full and a read-only 64 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    full, read_only = tmp_path / "full", tmp_path / "read-only"
    full.mkdir()
    read_only.mkdir()
    mounted: list[Path] = []
    try:
        for where, options in ((full, "size=64k"), (read_only, "size=64k,ro")):
            done = subprocess.run(  # noqa: S603 - fixed argument list
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],  # noqa: S607
                capture_output=True,
                timeout=30,
                check=False,
            )
            if done.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
            mounted.append(where)
        with (full / "filler").open("wb", buffering=0) as fh, contextlib.suppress(OSError):
            while fh.write(bytes(4096)):
                pass
        yield full, read_only
    finally:
        for where in mounted:
            subprocess.run(["umount", str(where)], timeout=30, check=False)  # noqa: S603,S607


def test_a_really_full_or_read_only_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_devices: tuple[Path, Path]
) -> None:
    full, read_only = tiny_devices
    path = pipeline_file(tmp_path)
    code, out, err = cli(["run", "dev", "--config", str(path), "--output", str(full / "r")], capsys)
    assert code == 2
    assert_one_line_error(err, f"--output {full / 'r'}: no space left on the device of {full}")
    code, out, err = cli(["run", "dev", "--config", str(path), "--output", str(read_only)], capsys)
    assert code == 2
    assert_one_line_error(err, f"--output {read_only}: cannot write in {read_only}")


# --- validate and plan show the conditions that will gate, defaults marked ---------------------

DEFAULTS_PIPELINE = """
[[checks]]
id = "tests"
kind = "pytest"

[[checks]]
id = "scan"
kind = "bandit"
default_conditions = false

[[checks]]
id = "quick"
kind = "command"
settings = { argv = ["{python}", "-c", "print(1)"] }

[stages.dev]
conditions = [{ check = "tests", metric = "failed", max = 0, severity = "warning" }]

[stages.nightly]
"""


def test_validate_and_plan_mark_the_kinds_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pipeline_file(tmp_path, DEFAULTS_PIPELINE)
    code, out, err = cli(["validate", "--config", str(path)], capsys)
    assert (code, err) == (0, "")
    assert "nightly (3 checks, 2 conditions, 2 of them kind defaults)" in out.splitlines()[0]
    nightly = out[out.index("Conditions of stage nightly:") :].splitlines()[1:]
    assert nightly == [
        "  tests: failed <= 0 (default) [blocking; default of pytest]",
        "  tests: errors <= 0 (default) [blocking; default of pytest]",
        "  scan: completed [blocking; implicit: default_conditions = false]",
        "  quick: completed [blocking; implicit: the command exited with one of ok_codes]",
    ]
    assert "  tests: failed <= 0 [warning]" in out  # dev: its own condition, no defaults
    code, text, _ = cli(["plan", "nightly", "--config", str(path)], capsys)
    assert code == 0 and "\n".join(nightly) in text
    code, as_json, _ = cli(["plan", "nightly", "--config", str(path), "--json"], capsys)
    planned = json.loads(as_json)["conditions"]
    assert [(c["check"], c["condition"], c["source"]) for c in planned] == [
        ("tests", "failed <= 0 (default)", "default"),
        ("tests", "errors <= 0 (default)", "default"),
        ("scan", "completed", "completed"),
        ("quick", "completed", "completed"),
    ]
