"""Whether a Prefect server is configured (neuroerp_ci/support/prefect_config.py): read
without importing Prefect, and compared with what Prefect itself reads for the same setups
(the integration twin: a child process asks Prefect's settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from neuroerp_ci.support.prefect_config import configured_api_url

URL = "http://127.0.0.1:4999/api"
Setup = Callable[[Path, dict[str, str]], None]


def _nothing(root: Path, env: dict[str, str]) -> None:
    pass


def _environment(root: Path, env: dict[str, str]) -> None:
    env["PREFECT_API_URL"] = URL


def _dotenv(root: Path, env: dict[str, str]) -> None:
    (root / ".env").write_text(f'# a comment\nexport PREFECT_API_URL="{URL}"\n')


def _prefect_toml(root: Path, env: dict[str, str]) -> None:
    (root / "prefect.toml").write_text(f'[api]\nurl = "{URL}"\n')


def _pyproject(root: Path, env: dict[str, str]) -> None:
    (root / "pyproject.toml").write_text(f'[tool.prefect.api]\nurl = "{URL}"\n')


def _active_profile(root: Path, env: dict[str, str]) -> None:
    (root / "home" / "profiles.toml").write_text(
        f'active = "team"\n[profiles.team]\nPREFECT_API_URL = "{URL}"\n[profiles.other]\n'
    )


def _chosen_profile(root: Path, env: dict[str, str]) -> None:
    (root / "home" / "profiles.toml").write_text(
        f'active = "other"\n[profiles.team]\nPREFECT_API_URL = "{URL}"\n[profiles.other]\n'
    )
    env["PREFECT_PROFILE"] = "team"


def _profile_without_url(root: Path, env: dict[str, str]) -> None:
    (root / "home" / "profiles.toml").write_text('active = "local"\n[profiles.local]\n')


def _empty_env_beats_profile(root: Path, env: dict[str, str]) -> None:
    _active_profile(root, env)
    env["PREFECT_API_URL"] = ""


SETUPS: dict[str, tuple[Setup, str | None]] = {
    "nothing": (_nothing, None),
    "environment": (_environment, URL),
    "dotenv": (_dotenv, URL),
    "prefect.toml": (_prefect_toml, URL),
    "pyproject": (_pyproject, URL),
    "active profile": (_active_profile, URL),
    "PREFECT_PROFILE": (_chosen_profile, URL),
    "profile without url": (_profile_without_url, None),
}


def _prepared(tmp_path: Path, setup: Setup) -> tuple[Path, dict[str, str]]:
    (tmp_path / "home").mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PREFECT_HOME": str(tmp_path / "home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    setup(tmp_path, env)
    return tmp_path, env


@pytest.mark.parametrize("name", [*SETUPS, "empty variable"])
def test_the_configured_url_is_found_where_prefect_looks(name: str, tmp_path: Path) -> None:
    setup, expected = SETUPS.get(name, (_empty_env_beats_profile, None))
    root, env = _prepared(tmp_path, setup)
    assert configured_api_url(env, root) == expected


def test_a_damaged_profiles_file_is_no_server(tmp_path: Path) -> None:
    root, env = _prepared(tmp_path, _nothing)
    (root / "home" / "profiles.toml").write_text("active = [unclosed")
    assert configured_api_url(env, root) is None


@pytest.mark.integration
@pytest.mark.parametrize("name", list(SETUPS))
def test_prefect_itself_reads_the_same(name: str, tmp_path: Path) -> None:
    root, env = _prepared(tmp_path, SETUPS[name][0])
    done = subprocess.run(  # noqa: S603 - fixed argument list
        [
            sys.executable,
            "-c",
            "import json; from prefect.settings import get_current_settings as s;"
            " u = s().api.url; print(json.dumps(u and str(u)))",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    prefects = json.loads(done.stdout.strip().splitlines()[-1]) or None
    assert configured_api_url(env, root) == prefects
