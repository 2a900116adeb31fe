"""The command line: a bad pipeline file or usage is exit 2 with ONE line on stderr naming the
file (and key); ``validate`` and ``plan`` describe a good one. Nothing here runs a stage."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert len(out.splitlines()) == 1, out
    _, out, _ = cli(["plan", "development", "--config", str(demo_pipeline), "--json"], capsys)
    plan = json.loads(out)
    _, out, _ = cli(["plan", "development", "--config", str(demo_pipeline)], capsys)
    assert f"  1. {', '.join(plan['layers'][0])}" in out.splitlines(), out
