from __future__ import annotations

from pathlib import Path

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import Priority

GOOD = """
[target]
base_url = "http://127.0.0.1:{port}"
start = ["{python}", "-m", "http.server", "{port}"]
health_url = "/"

[[checks]]
id = "unit-tests"
kind = "pytest"
settings = { markers = "unit" }

[[checks]]
id = "smoke"
kind = "command"
priority = "low"
dependencies = ["unit-tests"]
settings = { argv = ["{python}", "-c", "print(1)"] }

[stages.development]
conditions = [
  { check = "unit-tests", metric = "failed", max = 0 },
  { check = "smoke", metric = "exit_code", max = 0, severity = "warning" },
]

[stages.staging]
checks = ["unit-tests"]
requires = "development"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    return info.value


def test_good_pipeline_loads(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    assert list(pipeline.checks) == ["unit-tests", "smoke"]
    assert pipeline.checks["smoke"].priority is Priority.LOW
    assert pipeline.checks["smoke"].dependencies == ("unit-tests",)
    assert pipeline.checks["unit-tests"].title == "unit-tests"
    assert pipeline.stages["development"].checks == ("unit-tests", "smoke")
    assert pipeline.stages["staging"].requires == "development"
    assert pipeline.project_dir == tmp_path.resolve()


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD + "\n[[checks]\n")
    assert "TOML syntax error" in exc.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tmp_path / "nope.toml")


def test_unknown_kind_names_check_and_known_kinds(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('kind = "command"', 'kind = "comand"'))
    assert exc.key == "checks[smoke].kind"
    assert "unknown kind 'comand'" in exc.problem and "command" in exc.problem


def test_unknown_dependency(tmp_path: Path) -> None:
    exc = error_for(
        tmp_path, GOOD.replace('dependencies = ["unit-tests"]', 'dependencies = ["unit"]')
    )
    assert exc.key == "checks[smoke].dependencies"
    assert "unknown dependency 'unit'" in exc.problem


def test_cycle_is_named(tmp_path: Path) -> None:
    text = GOOD.replace(
        'settings = { markers = "unit" }',
        'dependencies = ["smoke"]\nsettings = { markers = "unit" }',
    )
    exc = error_for(tmp_path, text)
    assert "cycle" in exc.problem
    assert (
        "unit-tests -> smoke -> unit-tests" in exc.problem
        or "smoke -> unit-tests -> smoke" in exc.problem
    )


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('kind = "pytest"', 'kind = "pytest"\ntimeout = "soon"'))
    assert exc.key == "checks[unit-tests].timeout"


def test_bad_settings_key_is_named(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('{ markers = "unit" }', '{ marker = "unit" }'))
    assert exc.key == "checks[unit-tests].settings.marker"
    assert exc.problem == "unknown key"


@pytest.mark.parametrize(
    ("condition", "needle"),
    [
        ('{ check = "unit-tests", metric = "failed" }', "needs 'max' or 'min'"),
        ('{ check = "unit-tests", metric = "failed", min = 5, max = 1 }', "greater than"),
        ('{ check = "unit-tests", findings = "high", max = -1 }', "whole number"),
        ('{ check = "unit-tests", findings = "high", max = 0.5 }', "whole number"),
        ('{ check = "unit-tests", metric = "x", findings = "high", max = 0 }', "exactly one"),
        ('{ check = "unit-tests", findings = "severe", max = 0 }', "severe"),
        ('{ check = "unit-tests", metric = "failed", max = "zero" }', "max"),
    ],
)
def test_bad_thresholds(tmp_path: Path, condition: str, needle: str) -> None:
    text = GOOD.replace('{ check = "unit-tests", metric = "failed", max = 0 }', condition)
    exc = error_for(tmp_path, text)
    assert exc.key.startswith("stages.development.conditions[0]")
    assert needle in str(exc)


def test_condition_on_check_outside_stage(tmp_path: Path) -> None:
    text = GOOD + (
        '\n[stages.nightly]\nchecks = ["unit-tests"]\n'
        'conditions = [{ check = "smoke", metric = "x", max = 1 }]\n'
    )
    exc = error_for(tmp_path, text)
    assert exc.key == "stages.nightly.conditions[0].check"


def test_stage_missing_a_dependency(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('checks = ["unit-tests"]', 'checks = ["smoke"]'))
    assert exc.key == "stages.staging.checks"
    assert "depends on 'unit-tests'" in exc.problem


def test_unknown_required_stage(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('requires = "development"', 'requires = "dev"'))
    assert exc.key == "stages.staging.requires"


def test_target_host_must_be_allowed(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace("http://127.0.0.1:{port}", "http://erp.example.com"))
    assert exc.key == "target"
    assert "allowed_hosts" in exc.problem


def test_duplicate_check_id(tmp_path: Path) -> None:
    exc = error_for(tmp_path, GOOD.replace('id = "smoke"', 'id = "unit-tests"'))
    assert "duplicate" in exc.problem


def test_unknown_stage_lookup(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="no stage 'prod'"):
        pipeline.stage("prod")
