"""The pipeline file's ``target.setup``, ``target.workdir`` and a check entry's own ``env``."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuroerp_ci.checks import KINDS, CheckContext, execute_check
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import CheckStatus
from neuroerp_ci.run.runner import stage_secrets

CHECK = '[[checks]]\nid = "unit"\nkind = "command"\nsettings = { argv = ["true"] }\n'


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "neuroerp-ci.toml"
    path.write_text(text + "\n[stages.dev]\n")
    return load_pipeline(path)


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_setup_workdir_and_env_load(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        '[target]\nworkdir = "scratch"\nsetup_timeout = 30\n'
        'setup = [["{python}", "-m", "app.migrate"], ["{python}", "{project}/seed.py"]]\n'
        + CHECK.replace('kind = "command"', 'kind = "command"\nenv = { DB = "{project}/t.db" }'),
    )
    target = pipeline.target  # type: ignore[attr-defined]
    assert target.workdir == "scratch" and target.setup_timeout == 30
    assert target.setup[0] == ["{python}", "-m", "app.migrate"]
    assert pipeline.checks["unit"].env == {"DB": "{project}/t.db"}  # type: ignore[attr-defined]


def test_defaults(tmp_path: Path) -> None:
    target = load(tmp_path, CHECK).target  # type: ignore[attr-defined]
    assert (target.setup, target.setup_timeout, target.workdir) == ([], 300.0, "project")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[target]\nworkdir = "tmp"\n', "target.workdir", "one of project, scratch"),
        ('[target]\nsetup = ["python", "x.py"]\n', "target.setup[0]", "a list"),
        ("[target]\nsetup = [[]]\n", "target.setup[0]", "at least 1"),
        ("[target]\nsetup_timeout = 0\n", "target.setup_timeout", "greater than 0"),
        ('[target]\nsetup = [["{python}", "--port", "{port}"]]\n', "target.setup[0][2]",
         "{port} is not replaced in this field (only {project}, {python})"),
        ('[target]\nsetup = [["{pyhton}"]]\n', "target.setup[0][0]", "did you mean {python}?"),
    ],
)
def test_bad_setup_is_refused_naming_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    message = refused(tmp_path, text + CHECK)
    assert f": {key}: " in message and problem in message


@pytest.mark.parametrize(
    ("env", "key", "problem"),
    [
        ('{ "bad-name" = "x" }', "checks[unit].env", "not environment variable names"),
        ('{ URL = "{base_url}/api" }', "checks[unit].env.URL",
         "{base_url} is the target's: only for a check that uses the target"),
        ('{ X = "{prjoect}" }', "checks[unit].env.X", "did you mean {project}?"),
        ('{ X = "{env:lower-case}" }', "checks[unit].env.X", "not a valid env name"),
    ],
)
def test_bad_check_env_is_refused_naming_the_key(
    tmp_path: Path, env: str, key: str, problem: str
) -> None:
    text = CHECK.replace('kind = "command"', f'kind = "command"\nenv = {env}')
    message = refused(tmp_path, text)
    assert f": {key}: " in message and problem in message


def test_check_env_may_name_the_target_when_the_check_uses_it(tmp_path: Path) -> None:
    text = CHECK.replace('kind = "command"', 'kind = "command"\nenv = { URL = "{base_url}" }')
    text = text.replace('["true"] }', '["true"], uses_target = true }')
    load(tmp_path, '[target]\nbase_url = "http://127.0.0.1:8000"\n' + text)


def test_references_in_setup_and_check_env_must_resolve(tmp_path: Path) -> None:
    setup = '[target]\nsetup = [["{python}", "--password={env:DB_PW}"]]\n'
    pipeline = load(tmp_path, setup + CHECK)
    with pytest.raises(ConfigError, match=r"target\.setup\[0\]\[1\]: \{env:DB_PW\}: \$DB_PW"):
        stage_secrets(pipeline, "dev", {})  # type: ignore[arg-type]
    with_env = CHECK.replace('kind = "command"', 'kind = "command"\nenv = { P = "{env:TEST_PW}" }')
    pipeline = load(tmp_path, with_env)
    with pytest.raises(ConfigError, match=r"checks\[unit\]\.env\.P: \{env:TEST_PW\}"):
        stage_secrets(pipeline, "dev", {})  # type: ignore[arg-type]
    secrets = stage_secrets(pipeline, "dev", {"TEST_PW": "long-enough"})  # type: ignore[arg-type]
    assert secrets.values == {"env:TEST_PW": "long-enough"}
    assert "TEST_PW" in secrets.env_names  # kept out of every other child environment


def test_execute_check_puts_the_checks_env_on_top(tmp_path: Path) -> None:
    text = CHECK.replace(
        'kind = "command"', 'kind = "command"\nenv = { DB = "{project}/t.db", PW = "{env:PW}" }'
    )
    check = load(tmp_path, text).checks["unit"]  # type: ignore[attr-defined]
    seen: dict[str, str] = {}

    class Spy(type(KINDS["command"])):  # type: ignore[misc]
        def measure(self, check, ctx):  # type: ignore[no-untyped-def]
            seen.update(ctx.env)
            return super().measure(check, ctx)

    ctx = CheckContext(
        project_dir=tmp_path, work_dir=tmp_path / "w", python="py",
        env={"DB": "outer", "KEEP": "1"}, secrets={"env:PW": "pw-value"},
    )
    result = execute_check(Spy(), check, ctx)
    assert result.status is CheckStatus.OK, result.reason
    assert seen["DB"] == f"{tmp_path}/t.db" and seen["PW"] == "pw-value" and seen["KEEP"] == "1"
    assert ctx.env["DB"] == "outer"  # the run's context is not changed for other checks
