"""Skipping what did not change (neuroerp_ci/run/cache.py), through the runner and a real
SQLite history store. The check kind here is a test double that counts its runs and reads one
file of the project; tests/integration/test_cache_real_project.py is the twin with pytest and
bandit on a project of files.

- An unchanged check is skipped, its earlier result judged again: a condition tightened
  between runs FAILs on the reused result; a waiver removed makes its finding count again.
- A changed input runs it again; a file it does not read does not.
- Only a passing, not invalidated run lends its result; ``use_cache=False`` runs everything.
- A kind that measures the target (and a check that uses it) is never cached.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from neuroerp_ci.checks import KINDS, Check, CheckContext, CheckKind, KindSettings
from neuroerp_ci.checks.interface import CacheInputs, TargetUserSettings
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    Priority,
    StageReport,
    Verdict,
)
from neuroerp_ci.run.cache import CheckCache
from neuroerp_ci.run.runner import RunOptions, ThreadExecutor, run_stage
from neuroerp_ci.store import open_store

RUNS: list[str] = []  # the check ids the counting kind ran, in order


class CountSettings(TargetUserSettings):
    file: str = "data.txt"


class CountCheck(CheckKind):
    """Reports the number in ``file`` as metric ``value`` and one finding "X1"."""

    name: ClassVar[str] = "count"
    settings_model: ClassVar[type[KindSettings]] = CountSettings

    def metric_names(self, settings: KindSettings) -> MetricNames:
        return MetricNames(fixed=frozenset({"value"}), findings=True, audit=True)

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        return ({"metric": "value", "max": 100},)

    def cache_inputs(self, check: Check, ctx: CheckContext) -> CacheInputs | None:
        assert isinstance(check.settings, CountSettings)
        return CacheInputs(files=(check.settings.file,))

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        assert isinstance(check.settings, CountSettings)
        RUNS.append(check.id)
        value = float((ctx.project_dir / check.settings.file).read_text())
        result = CheckResult(check.id, check.kind, CheckStatus.OK, reason=f"read {value:g}")
        result.add_metric(Metric("value", value, "", Direction.LOWER))
        result.findings.append(
            Finding("count", "X1", FindingSeverity.LOW, "a low finding", "data.txt:1")
        )
        return result


PIPELINE = """\
[target]
python = "{python}"

[[checks]]
id = "counted"
kind = "count"

[[checks]]
id = "other"
kind = "count"
settings = { file = "other.txt" }
"""
STAGE = '\n[stages.dev]\nconditions = [{ check = "counted", metric = "value", max = %s }]\n'


@pytest.fixture(autouse=True)
def count_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, CountCheck.name, CountCheck())
    RUNS.clear()


def project(tmp_path: Path, limit: float = 10, extra: str = "") -> Path:
    (tmp_path / "data.txt").write_text("5")
    (tmp_path / "other.txt").write_text("1")
    write_pipeline(tmp_path, limit, extra)
    return tmp_path


def write_pipeline(root: Path, limit: float, extra: str = "") -> None:
    (root / "neuroerp-ci.toml").write_text(PIPELINE + extra + STAGE % limit)


def run(root: Path, run_id: str, use_cache: bool = True) -> StageReport:
    pipeline = load_pipeline(root / "neuroerp-ci.toml")
    options = RunOptions(
        stage="dev", output_dir=root / "out" / run_id, run_id=run_id, use_cache=use_cache
    )
    with (
        open_store(f"sqlite:///{root / 'history.sqlite3'}") as store,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        return run_stage(pipeline, options, ThreadExecutor(pool), store=store).report


def result(report: StageReport, check_id: str) -> CheckResult:
    return next(r for r in report.checks if r.check_id == check_id)


def test_an_unchanged_check_is_skipped_and_a_tightened_condition_fails_on_its_result(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    first = run(root, "r1")
    assert first.verdict is Verdict.PASS and sorted(RUNS) == ["counted", "other"]
    assert result(first, "counted").cache_key and result(first, "counted").cached_from is None
    second = run(root, "r2")
    assert sorted(RUNS) == ["counted", "other"]  # neither ran again
    reused = result(second, "counted")
    assert reused.cached_from == "r1" and reused.cache_note == "skipped (unchanged since run r1)"
    assert reused.metrics["value"].value == 5 and reused.status is CheckStatus.OK
    assert second.verdict is Verdict.PASS
    write_pipeline(root, limit=4)  # the condition, not an input: still reused, judged again
    third = run(root, "r3")
    assert sorted(RUNS) == ["counted", "other"] and result(third, "counted").cached_from == "r1"
    (outcome,) = [o for o in third.outcomes if o.check == "counted"]
    assert outcome.condition == "value <= 4" and outcome.status.value == "fail"
    assert third.verdict is Verdict.FAIL
    markdown = (root / "out" / "r3" / "report.md").read_text(encoding="utf-8")
    assert "skipped (unchanged since run r1)" in markdown


def test_a_changed_input_runs_the_check_again_and_other_files_do_not(tmp_path: Path) -> None:
    root = project(tmp_path)
    run(root, "r1")
    (root / "README.md").write_text("read by no check")
    run(root, "r2")
    assert sorted(RUNS) == ["counted", "other"]
    (root / "data.txt").write_text("7")
    third = run(root, "r3")
    assert sorted(RUNS) == ["counted", "counted", "other"]  # only the check that reads it
    assert result(third, "counted").metrics["value"].value == 7
    assert result(third, "counted").cached_from is None
    assert result(third, "other").cached_from == "r1"


def test_only_a_passing_valid_run_lends_its_result_and_no_cache_runs_all(tmp_path: Path) -> None:
    root = project(tmp_path, limit=4)
    assert run(root, "r1").verdict is Verdict.FAIL
    run(root, "r2")  # r1 failed: nothing to reuse (and r2 fails again)
    assert sorted(RUNS) == ["counted", "counted", "other", "other"]
    write_pipeline(root, limit=10)
    assert run(root, "r3").verdict is Verdict.PASS
    assert result(run(root, "r4"), "counted").cached_from == "r3"
    with open_store(f"sqlite:///{root / 'history.sqlite3'}") as store:
        store.invalidate("r3", "the runner was misconfigured")
    assert result(run(root, "r5"), "counted").cached_from is None  # r3 lends nothing now
    ran = len(RUNS)
    fresh = run(root, "r6", use_cache=False)
    assert len(RUNS) == ran + 2 and result(fresh, "counted").cached_from is None


def test_a_removed_waiver_makes_the_reused_finding_count_again(tmp_path: Path) -> None:
    expires = (date.today() + timedelta(days=30)).isoformat()
    waiver = f'\n[[waivers]]\nrule = "X1"\nreason = "accepted"\nowner = "qa"\nexpires = {expires}\n'
    conditions = '\n[stages.dev]\nconditions = [{ check = "counted", findings = "any", max = 0 }]\n'
    (tmp_path / "data.txt").write_text("5")
    (tmp_path / "other.txt").write_text("1")
    (tmp_path / "neuroerp-ci.toml").write_text(PIPELINE + waiver + conditions)
    first = run(tmp_path, "r1")
    assert first.verdict is Verdict.PASS and len(result(first, "counted").waived) == 1
    (tmp_path / "neuroerp-ci.toml").write_text(PIPELINE + conditions)
    second = run(tmp_path, "r2")
    counted = result(second, "counted")
    assert counted.cached_from == "r1" and len(counted.findings) == 1 and not counted.waived
    assert second.verdict is Verdict.FAIL


def test_a_check_that_uses_the_target_gets_no_key(tmp_path: Path) -> None:
    root = project(tmp_path)
    ctx = CheckContext(project_dir=root, work_dir=root / "w", python=sys.executable, env={})
    cache = CheckCache(None, "t")

    def check(**settings: Any) -> Check:
        return Check("c", "c", "count", Priority.HIGH, (), 1.0, CountSettings(**settings))

    assert cache.key(check(), ctx) is not None
    assert cache.key(check(uses_target=True), ctx) is None
    assert CheckCache(None, "t", enabled=False).key(check(), ctx) is None
    assert cache.key(replace(check(), cache=False), ctx) is None  # [[checks]] cache = false


MEASURING = ("http", "load", "database", "network", "frontend", "a11y", "command")


@pytest.mark.parametrize("name", MEASURING)
def test_kinds_that_measure_or_run_commands_declare_no_inputs(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    fields = kind.settings_model.model_fields
    required = {
        key: (["true"] if key == "argv" else "SELECT 1" if key == "sql" else "x")
        for key, info in fields.items()
        if info.is_required()
    }
    try:
        settings = kind.settings_model.model_validate(required)
    except ValueError:
        settings = kind.settings_model.model_construct(**required)
    check = Check(name, name, name, priority=Priority.HIGH, dependencies=(), timeout=1.0,
                  settings=settings)  # fmt: skip
    ctx = CheckContext(project_dir=tmp_path, work_dir=tmp_path / "w", python="python", env={})
    assert kind.cache_inputs(check, ctx) is None
