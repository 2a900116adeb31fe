"""The recipes of docs/extending.md, followed to the letter: if one of these breaks, the page
is wrong (or the extension point moved) and both must change together.

(a) a new check kind: a settings model, a ``CheckKind`` with ``metric_names`` and
    ``measure``, one registry line; loaded from a pipeline file, run by the runner, gated.
(b) a new condition form: tests/gates/test_new_condition_form.py.
(c) a new report format: a pure renderer, one registry line; the runner writes its file.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from neuroerp_ci.checks import KINDS, Check, CheckContext, CheckKind, KindSettings
from neuroerp_ci.checks.interface import typed_settings
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.errors import ConfigError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Metric,
    OutcomeStatus,
    StageReport,
    Verdict,
)
from neuroerp_ci.reports import RENDERERS
from neuroerp_ci.run.runner import RunOptions, StageOutcome, ThreadExecutor, run_stage

# --- (a) a new check kind: what would be neuroerp_ci/checks/roll.py --------------------------


class RollSettings(KindSettings):
    """Settings of a ``roll`` check."""

    faces: int = Field(default=6, ge=2, le=100)  # the die's number of faces


class RollCheck(CheckKind):
    """Roll a die that always shows its highest face: the smallest kind that measures."""

    name: ClassVar[str] = "roll"
    settings_model: ClassVar[type[KindSettings]] = RollSettings

    def metric_names(self, settings: KindSettings) -> MetricNames:
        return MetricNames(fixed=frozenset({"face"}))

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return ({"metric": "face", "min": 1},)

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, RollSettings)
        result = CheckResult(
            check.id, check.kind, CheckStatus.OK, reason=f"rolled {settings.faces}"
        )
        result.add_metric(Metric("face", settings.faces, "", Direction.HIGHER))
        return result


PIPELINE = """\
[target]
python = "{python}"

[[checks]]
id = "die"
kind = "roll"
settings = { faces = 6 }

[[checks]]
id = "coin"
kind = "roll"
settings = { faces = 2 }

[stages.dev]
conditions = [{ check = "die", metric = "face", max = 4 }]
"""


@pytest.fixture
def roll_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # The registry line of neuroerp_ci/checks/__init__.py, undone after the test.
    monkeypatch.setitem(KINDS, RollCheck.name, RollCheck())


def run_dev(tmp_path: Path, text: str = PIPELINE) -> StageOutcome:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(text)
    pipeline = load_pipeline(config)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return run_stage(
            pipeline,
            RunOptions(stage="dev", output_dir=tmp_path / "out", run_id="t"),
            ThreadExecutor(pool),
        )


@pytest.mark.usefixtures("roll_kind")
def test_a_new_check_kind_is_loaded_run_and_gated(tmp_path: Path) -> None:
    outcome = run_dev(tmp_path)
    report = outcome.report
    assert [r.status for r in report.checks] == [CheckStatus.OK, CheckStatus.OK]
    by_check = {o.check: o for o in report.outcomes}
    assert by_check["die"].condition == "face <= 4"
    assert by_check["die"].status is OutcomeStatus.FAIL and by_check["die"].value == 6
    # "coin" has no condition of its own in the stage: it gets the kind's default.
    assert by_check["coin"].condition == "face >= 1 (default)"
    assert by_check["coin"].status is OutcomeStatus.PASS
    assert report.verdict is Verdict.FAIL
    assert "face" in (outcome.output_dir / "report.json").read_text()


@pytest.mark.usefixtures("roll_kind")
def test_a_new_kind_s_settings_and_metric_names_are_checked_at_load(tmp_path: Path) -> None:
    config = tmp_path / "neuroerp-ci.toml"
    config.write_text(PIPELINE.replace("faces = 6", "faces = 1"))
    with pytest.raises(ConfigError, match=r"checks\[die\]\.settings\.faces"):
        load_pipeline(config)
    config.write_text(PIPELINE.replace('metric = "face"', 'metric = "fase"'))
    with pytest.raises(ConfigError, match="did you mean 'face'"):
        load_pipeline(config)


# --- (c) a new report format: what would be neuroerp_ci/reports/verdict_text.py ----------------


def render_verdict_text(report: StageReport) -> str:
    """``verdict.txt``: the verdict and one line per outcome, for a shell to grep."""
    lines = [f"{report.stage} {report.verdict.value}"]
    lines += [f"{o.status.value} {o.check}: {o.condition}" for o in report.outcomes]
    return "\n".join(lines) + "\n"


@pytest.mark.usefixtures("roll_kind")
def test_a_new_report_format_is_written_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The registry line of neuroerp_ci/reports/registry.py, undone after the test.
    monkeypatch.setitem(RENDERERS, "verdict.txt", render_verdict_text)
    outcome = run_dev(tmp_path)
    assert outcome.files["verdict.txt"] == outcome.output_dir / "verdict.txt"
    text = (outcome.output_dir / "verdict.txt").read_text()
    assert text == render_verdict_text(outcome.report)
    assert text.startswith("dev FAIL\nfail die: face <= 4\n")
    assert {"report.json", "junit.xml", "report.md"} <= set(outcome.files)
