"""benchmarks/cache.py: the code stage it adds to the demo, the report parsing, the file
changes and its tables, without running a stage."""

from __future__ import annotations

import importlib.util
import sqlite3
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from neuroerp_ci.checks import KINDS
from neuroerp_ci.config import load_pipeline
from neuroerp_ci.demo import DEMO_PIPELINE, write_demo

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "cache.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cache_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark()


def test_the_code_stage_holds_every_cacheable_check_of_the_demo_and_its_conditions(
    bench: ModuleType, tmp_path: Path
) -> None:
    project = bench.setup_project(tmp_path, "code", {}, code=True)
    pipeline = load_pipeline(project.config)
    stage = pipeline.stage(bench.CODE_STAGE)
    assert project.stage == bench.CODE_STAGE
    assert stage.checks == (
        "unit-tests", "integration-tests", "performance-tests", "static-security",
        "dependency-audit", "secret-scan", "licences",
    )  # fmt: skip
    for cid in stage.checks:  # none measures the target: a run may skip every one
        check = pipeline.checks[cid]
        assert not KINDS[check.kind].needs_target_for(check)
    # The development stage's conditions on these checks, nothing of the others'.
    development = tomllib.loads((project.root / DEMO_PIPELINE).read_text())["stages"]
    wanted = [c for c in development[bench.FULL_STAGE]["conditions"] if c["check"] in stage.checks]
    assert [c.check for c in stage.conditions] == [c["check"] for c in wanted]
    assert "e2e-tests" not in {c.check for c in stage.conditions}
    # The rest of the file is as written: the other stages still load.
    assert pipeline.stage(bench.FULL_STAGE).checks[2] == "e2e-tests"
    assert (project.root / bench.IGNORED_DB).is_file()  # a change to it is a write


def test_adding_a_stage_keeps_the_file_and_refuses_an_existing_name(
    bench: ModuleType, tmp_path: Path
) -> None:
    text = (write_demo(tmp_path / "demo") / DEMO_PIPELINE).read_text()
    stage = {
        "checks": ["unit-tests"],
        "conditions": [
            {"check": "unit-tests", "metric": "coverage_pct", "min": 80.5},
            {
                "check": "unit-tests",
                "findings": "any",
                "new": True,
                "max": 0,
                "severity": "warning",
            },
        ],
    }
    added = bench.with_stage(text, "quick-code", stage)
    assert added.startswith(text.rstrip())
    assert tomllib.loads(added)["stages"]["quick-code"] == stage
    with pytest.raises(bench.BenchmarkError, match="already has a stage 'development'"):
        bench.with_stage(text, "development", stage)


def report(checks: list[dict[str, Any]], verdict: str = "WARN") -> dict[str, Any]:
    return {
        "run_id": "20260101T000000Z-bbbbbb",
        "verdict": verdict,
        "summary": f"code: {verdict}",
        "duration_s": 0.7,
        "checks": checks,
    }


def row(cid: str, cached_from: str | None = None, status: str = "ok") -> dict[str, Any]:
    return {
        "id": cid, "kind": "pytest", "status": status, "duration_s": 0.0 if cached_from else 3.2,
        "cached_from": cached_from, "cache_key": "ab" * 32, "metrics": {},
    }  # fmt: skip


def test_a_report_tells_which_checks_ran_and_which_were_reused(bench: ModuleType) -> None:
    first = "20260101T000000Z-aaaaaa"
    parsed = bench.parse_report(
        report([row("unit-tests", first), row("secret-scan"), row("licences", first)])
    )
    assert parsed.run_id == "20260101T000000Z-bbbbbb"
    assert parsed.ran == ["secret-scan"]
    assert parsed.reused == ["unit-tests", "licences"]
    assert parsed.problems() == []
    failed = bench.parse_report(report([row("unit-tests"), row("a11y", status="error")], "FAIL"))
    assert failed.problems() == ["verdict FAIL: code: FAIL", "a11y: error"]


def test_changed_lines_name_the_split_and_say_when_repetitions_differ(
    bench: ModuleType,
) -> None:
    first = "20260101T000000Z-aaaaaa"
    same = bench.parse_report(report([row("unit-tests"), row("licences", first)]))
    assert bench.changed_lines([same, same]) == [
        "ran again: unit-tests",
        "reused:    licences",
    ]
    none_ran = bench.parse_report(report([row("unit-tests", first), row("licences", first)]))
    lines = bench.changed_lines([same, none_ran])
    assert lines[2:] == [
        "ran again: -",
        "reused:    unit-tests, licences",
        "(the split differed between the 2 repetitions)",
    ]


def test_each_change_is_new_and_the_database_gets_a_row(bench: ModuleType, tmp_path: Path) -> None:
    by_path = {c.path: c for c in bench.CHANGES}
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_unit_db.py").write_text("x = 1\n")
    by_path["tests/test_unit_db.py"].apply(tmp_path, "benchmark change 1")
    by_path["tests/test_unit_db.py"].apply(tmp_path, "benchmark change 2")
    text = (tmp_path / "tests" / "test_unit_db.py").read_text()
    assert text == "x = 1\n\n# benchmark change 1\n\n# benchmark change 2\n"
    by_path["docs/benchmark-{token}.md"].apply(tmp_path, "t1")
    assert (tmp_path / "docs" / "benchmark-t1.md").read_text() == "\n<!-- t1 -->\n"
    db = by_path[bench.IGNORED_DB]
    db.apply(tmp_path, "a")
    db.apply(tmp_path, "b")
    conn = sqlite3.connect(tmp_path / bench.IGNORED_DB)
    try:
        assert conn.execute("SELECT token FROM benchmark_touch").fetchall() == [("a",), ("b",)]
    finally:
        conn.close()
    # The demo's own [cache] ignore names the database the change writes.
    demo = tomllib.loads((write_demo(tmp_path / "demo") / DEMO_PIPELINE).read_text())
    assert bench.IGNORED_DB in demo["cache"]["ignore"]


def test_tables_give_median_min_stage_time_and_share_of_cold(bench: ModuleType) -> None:
    cold, warm = bench.Series("cold (--no-cache)"), bench.Series("unchanged re-run")
    for seconds, stage in ((20.0, 14.0), (22.0, 15.0), (21.0, 14.5)):
        cold.add((seconds, bench.parse_report(report([row("u")]) | {"duration_s": stage})))
    for seconds in (2.0, 1.5, 2.5):
        warm.add((seconds, bench.parse_report(report([row("u", "r")]))))
    floor = bench.Series("floor")
    floor.times += [1.0]
    lines = bench.table([cold, warm, floor], cold)
    assert lines[1].split() == ["cold", "(--no-cache)", "21.00", "20.00", "14.50", "100%"]
    assert lines[2].split()[-4:] == ["2.00", "1.50", "0.70", "10%"]
    assert lines[3].split()[-4:] == ["1.00", "1.00", "-", "5%"]
    # medians 2/21; mins 1.5/20; per repetition 2/20, 1.5/22, 2.5/21 -> median 2.5/21
    assert bench.ratios(warm, cold) == "9.5% (medians); min/min 7.5%, paired 10.0%"


def test_a_missing_mirror_is_a_setup_error(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--quick", "--advisories", str(tmp_path / "none")]) == 2
    assert "no OSV mirror at" in capsys.readouterr().err


def test_run_env_points_at_the_mirror_and_cache_and_drops_prefect(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("NEUROERP_CI_PREFECT", "1")
    env = bench.run_env(tmp_path / "mirror", tmp_path / "cache")
    assert "PREFECT_API_URL" not in env and "NEUROERP_CI_PREFECT" not in env
    assert env["NEUROERP_CI_ADVISORIES"] == str(tmp_path / "mirror")
    assert env["NEUROERP_CI_CACHE_DIR"] == str(tmp_path / "cache")
