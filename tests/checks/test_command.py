"""The command kind: metrics-line parsing, placeholders, and real child processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import Check, CheckContext, execute_check
from neuroerp_ci.checks.command import (
    CommandCheck,
    CommandSettings,
    command_reason,
    parse_metrics_line,
    placeholder_values,
)
from neuroerp_ci.errors import ToolError
from neuroerp_ci.model import CheckResult, CheckStatus, Direction, Priority


def make_check(settings: CommandSettings, timeout: float = 60.0) -> Check:
    return Check(
        id="cmd",
        title="cmd",
        kind="command",
        priority=Priority.HIGH,
        dependencies=(),
        timeout=timeout,
        settings=settings,
    )


def make_ctx(project: Path, base_url: str | None = None) -> CheckContext:
    return CheckContext(
        project_dir=project,
        work_dir=project / "work",
        python=sys.executable,
        env=dict(os.environ),
        base_url=base_url,
    )


def run_check(
    project: Path, settings: CommandSettings, timeout: float = 60.0, base_url: str | None = None
) -> CheckResult:
    return execute_check(CommandCheck(), make_check(settings, timeout), make_ctx(project, base_url))


def python(code: str, **settings: object) -> CommandSettings:
    return CommandSettings.model_validate({"argv": ["{python}", "-c", code], **settings})


# --- the metrics line -----------------------------------------------------------------------


def test_metrics_come_from_the_last_non_empty_line() -> None:
    stdout = 'migrating...\n{"ignored": 1}\n{"rows": 1200, "duration_ms": 840.5}\n\n  \n'

    assert parse_metrics_line(stdout) == {"rows": 1200.0, "duration_ms": 840.5}


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", r"printed no JSON metrics: \(empty output\)"),
        ("done, 12 rows\n", "printed no JSON metrics: done, 12 rows"),
        ('{"rows": 1}\nbye\n', "printed no JSON metrics: bye"),
        ("[1, 2]\n", r"printed no JSON metrics: \[1, 2\]"),
        ("{}\n", "printed no JSON metrics: {}"),
        ('{"rows": "12"}\n', "printed no JSON metrics: 'rows' is not a number"),
        ('{"ok": true}\n', "printed no JSON metrics: 'ok' is not a number"),
        ('{"p95": NaN}\n', "printed no JSON metrics: 'p95' is nan"),
        ('{"exit_code": 0}\n', "'exit_code' is reserved"),
    ],
)
def test_anything_but_a_json_object_of_numbers_is_an_error(stdout: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        parse_metrics_line(stdout)


# --- placeholders, settings, reason ---------------------------------------------------------


def test_placeholder_values_take_the_port_from_the_base_url(tmp_path: Path) -> None:
    values = placeholder_values(make_ctx(tmp_path, "http://127.0.0.1:8123"), ["{port}"])

    assert values == {
        "python": sys.executable,
        "project": str(tmp_path),
        "base_url": "http://127.0.0.1:8123",
        "port": "8123",
    }


def test_target_placeholder_without_a_base_url_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="needs a target base_url"):
        placeholder_values(make_ctx(tmp_path), ["--url={base_url}/health"])


def test_settings_need_uses_target_for_target_placeholders() -> None:
    with pytest.raises(ValidationError, match="set uses_target = true"):
        CommandSettings(argv=["curl", "{base_url}"])
    with pytest.raises(ValidationError, match="set uses_target = true"):
        CommandSettings(argv=["smoke"], env={"PORT": "{port}"})
    assert CommandSettings(argv=["curl", "{base_url}"], uses_target=True).uses_target


def test_settings_need_a_program_and_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        CommandSettings(argv=[])
    with pytest.raises(ValidationError):
        CommandSettings.model_validate({"argv": ["true"], "shell": True})


def test_only_commands_that_use_the_target_need_it() -> None:
    kind = CommandCheck()

    assert kind.needs_target_for(make_check(CommandSettings(argv=["true"], uses_target=True)))
    assert not kind.needs_target_for(make_check(CommandSettings(argv=["true"])))


def test_reason_shows_the_command_and_a_few_metrics() -> None:
    metrics = {f"m{i}": float(i) for i in range(6)}

    assert command_reason(["/usr/bin/migrate", "--check"], 0, metrics) == (
        "migrate --check exited 0; m0=0, m1=1, m2=2, m3=3, +2 more"
    )


# --- real child processes -------------------------------------------------------------------


@pytest.mark.integration
def test_exit_0_with_json_metrics(tmp_path: Path) -> None:
    code = "print('checking'); print('{\"rows\": 12, \"lag_ms\": 3.5}')"

    result = run_check(tmp_path, python(code, metrics_json=True))

    assert result.status is CheckStatus.OK, result.reason
    values = {name: (m.value, m.unit, m.direction) for name, m in result.metrics.items()}
    assert values == {
        "rows": (12.0, "", Direction.LOWER),
        "lag_ms": (3.5, "", Direction.LOWER),
        "exit_code": (0, "", Direction.LOWER),
    }
    assert result.reason.endswith("exited 0; rows=12, lag_ms=3.5")
    assert "checking" in Path(result.artifacts["log"]).read_text()


@pytest.mark.integration
def test_exit_status_outside_ok_codes_is_an_error(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('schema drift in table orders\\n'); sys.exit(3)"

    result = run_check(tmp_path, python(code))

    assert result.status is CheckStatus.ERROR
    assert "exited 3: schema drift in table orders" in result.reason
    assert "# exit 3" in (tmp_path / "work" / "command.log").read_text()


@pytest.mark.integration
def test_exit_status_in_ok_codes_is_a_result(tmp_path: Path) -> None:
    result = run_check(tmp_path, python("import sys; sys.exit(3)", ok_codes=[0, 3]))

    assert result.status is CheckStatus.OK, result.reason
    assert result.metrics["exit_code"].value == 3


@pytest.mark.integration
def test_garbage_stdout_with_metrics_json_is_an_error(tmp_path: Path) -> None:
    result = run_check(tmp_path, python("print('all good!')", metrics_json=True))

    assert result.status is CheckStatus.ERROR
    assert result.reason == "command printed no JSON metrics: all good!"


@pytest.mark.integration
def test_placeholders_cwd_and_env_reach_the_command(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    code = (
        "import json, os, sys; "
        "print(os.getcwd(), sys.argv[1], os.environ['SHOP_URL']); "
        "print(json.dumps({'argc': len(sys.argv)}))"
    )
    settings = CommandSettings(
        argv=["{python}", "-c", code, "{project}"],
        cwd="sub",
        env={"SHOP_URL": "{base_url}/api"},
        metrics_json=True,
        uses_target=True,
    )

    result = run_check(tmp_path, settings, base_url="http://127.0.0.1:9")

    assert result.status is CheckStatus.OK, result.reason
    log = (tmp_path / "work" / "command.log").read_text()
    assert f"{tmp_path / 'sub'} {tmp_path} http://127.0.0.1:9/api" in log
    assert result.metrics["argc"].value == 2


@pytest.mark.integration
def test_target_placeholder_without_a_running_target_is_an_error(tmp_path: Path) -> None:
    settings = CommandSettings(argv=["{python}", "-c", "pass", "{base_url}"], uses_target=True)

    result = run_check(tmp_path, settings)

    assert result.status is CheckStatus.ERROR
    assert "needs a target base_url" in result.reason


@pytest.mark.integration
def test_missing_program_is_an_error(tmp_path: Path) -> None:
    result = run_check(tmp_path, CommandSettings(argv=["no-such-program-neuroerp"]))

    assert result.status is CheckStatus.ERROR
    assert "not found" in result.reason


@pytest.mark.integration
def test_timeout_is_an_error_and_kills_the_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); "
        "time.sleep(60)"
    )

    result = run_check(tmp_path, python(code), timeout=2)

    assert result.status is CheckStatus.ERROR
    assert "timed out after 2 s" in result.reason
    child = int(pid_file.read_text())
    assert wait_gone(child), f"child {child} outlived the timed-out command"


def wait_gone(pid: int, within_s: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie waiting for init to reap it)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
