"""What report.html gets beyond the run: links to the run folder's files, load timelines,
trends (or a note why not), and a page that says so when it cannot be drawn."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import neuroerp_ci.run.report_history as report_history
from neuroerp_ci.model import StageReport, Verdict
from neuroerp_ci.reports.context import ReportContext
from neuroerp_ci.run.report_history import page_renderer, report_context, run_links
from neuroerp_ci.store import StoreError
from tests.reports.conftest import _base, _latency


def report(tmp_path: Path) -> StageReport:
    check = _latency()
    raw = tmp_path / "checks" / check.check_id / "stats.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text("{}", encoding="utf-8")
    elsewhere = tmp_path.parent / "elsewhere.json"
    elsewhere.write_text("{}", encoding="utf-8")
    check.artifacts = {"stats": str(raw), "outside": str(elsewhere), "gone": str(tmp_path / "x")}
    return replace(_base(Verdict.PASS, [check], []), run_id="r1")


def test_links_are_the_run_folders_files_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "report.sarif").write_text("{}", encoding="utf-8")
    run = report(tmp_path)
    links = run_links(run, tmp_path)
    check = run.checks[0].check_id
    assert links == {
        "SARIF findings": "report.sarif",
        f"{check}: stats": f"checks/{check}/stats.json",
    }  # outside the folder or missing: not linked


class BrokenStore:
    def metric_history(self, *_args: object) -> list[object]:
        raise StoreError("history store x: database is locked")


def test_a_store_that_cannot_be_read_gives_a_page_without_trends_saying_why(
    tmp_path: Path,
) -> None:
    run = report(tmp_path)
    context, problem = report_context(run, tmp_path, BrokenStore())  # type: ignore[arg-type]
    assert problem.startswith("no trends: the history store could not be read")
    assert context.history == {} and context.notes == (problem,)
    page = page_renderer(context)(run)
    assert "database is locked" in page and 'data-verdict="PASS"' in page


def test_a_page_that_cannot_be_drawn_says_so_and_keeps_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object, **_kwargs: object) -> str:
        raise ValueError("odd data")

    monkeypatch.setattr(report_history, "render_html", explode)
    page = page_renderer(ReportContext())(report(tmp_path))
    assert 'data-verdict="PASS"' in page
    assert "could not be drawn (ValueError: odd data)" in page and "report.md" in page
