"""``[[waivers]]`` and ``[audit]`` in the pipeline file: loaded, checked up front."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from neuroerp_ci.config import load_pipeline
from neuroerp_ci.errors import ConfigError
from tests.test_config import GOOD, error_for, write

SOON = (date.today() + timedelta(days=30)).isoformat()


def waiver(rule: str = "B602", expires: str = SOON, **extra: str) -> str:
    keys = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    return (
        f'\n[[waivers]]\nrule = "{rule}"\nreason = "fixed argv"\nowner = "qa"\n'
        f"expires = {expires}\n{keys}"
    )


def test_waivers_from_the_file_and_the_waivers_file(tmp_path: Path) -> None:
    (tmp_path / "waivers.toml").write_text(waiver("PYSEC-2024-60", package="idna"))
    text = GOOD + waiver() + '\n[audit]\nwaivers_file = "waivers.toml"\n'
    pipeline = load_pipeline(write(tmp_path, text))
    assert [w.name for w in pipeline.waivers] == ["B602", "PYSEC-2024-60 (idna)"]


def test_a_waiver_too_far_ahead_is_refused_naming_it(tmp_path: Path) -> None:
    far = (date.today() + timedelta(days=91)).isoformat()
    error = error_for(tmp_path, GOOD + waiver(expires=far))
    assert error.key == "waivers[B602].expires"
    assert "91 days ahead: at most max_waiver_days = 90" in str(error)
    allowed = GOOD + waiver(expires=far) + "\n[audit]\nmax_waiver_days = 120\n"
    assert len(load_pipeline(write(tmp_path, allowed)).waivers) == 1


def test_an_expired_waiver_loads_and_is_judged_at_run_time(tmp_path: Path) -> None:
    past = (date.today() - timedelta(days=1)).isoformat()
    assert load_pipeline(write(tmp_path, GOOD + waiver(expires=past))).waivers[0].rule == "B602"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (waiver(expires='"soon"'), "waivers", "expires"),
        (waiver() + waiver(), "waivers[B602]", "two waivers are named 'B602'"),
        ('\n[[waivers]]\nrule = "B602"\nexpires = 2026-12-31\n', "waivers", "reason"),
        ('\n[audit]\nwaivers_file = "missing.toml"\n', "audit.waivers_file", "no such file"),
    ],
)
def test_bad_waivers_are_one_line_errors(tmp_path: Path, text: str, key: str, problem: str) -> None:
    error = error_for(tmp_path, GOOD + text)
    assert error.key.startswith(key) and problem in str(error)
    assert "\n" not in str(error)


def test_skips_and_ignore_point_to_waivers(tmp_path: Path) -> None:
    text = GOOD + ('\n[[checks]]\nid = "sast"\nkind = "bandit"\nsettings = { skips = ["B101"] }\n')
    error = error_for(tmp_path, text)
    assert error.key == "checks[sast].settings"
    assert "settings.skips is gone: waive a finding with a [[waivers]] entry" in str(error)


def test_a_bad_waivers_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "waivers.toml").write_text('[[waivers]]\nrule = "B602"\n')
    with pytest.raises(ConfigError) as info:
        load_pipeline(write(tmp_path, GOOD + '\n[audit]\nwaivers_file = "waivers.toml"\n'))
    assert Path(info.value.path).name == "waivers.toml" and info.value.key.startswith("waivers[0]")


def test_new_findings_need_a_code_audit_check(tmp_path: Path) -> None:
    text = GOOD.replace(
        '{ check = "unit-tests", metric = "failed", max = 0 },',
        '{ check = "unit-tests", findings = "any", new = true, max = 0 },',
    )
    error = error_for(tmp_path, text)
    assert error.key.endswith(".new") and "is no code audit" in str(error)
