"""What ``report.html`` needs beyond the run: the stage's earlier runs, load timelines, links.

Read here, from the history store and the run folder, so the renderer stays pure. Nothing in
here may fail a run: a store that cannot be read draws the page without trends and says why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from neuroerp_ci.checks._load_timeline import read_timeline
from neuroerp_ci.model import StageReport, summary_line
from neuroerp_ci.reports.context import ReportContext, TimelinePoint, TrendPoint
from neuroerp_ci.reports.html import render_html
from neuroerp_ci.reports.interface import Renderer
from neuroerp_ci.store.errors import StoreError
from neuroerp_ci.store.history import HistoryStore
from neuroerp_ci.store.trends import MetricPoint

TREND_RUNS = 20  # how many earlier runs a trend chart shows
# The run folder's own files a report links to, in this order (those that exist).
LINKED_FILES = (
    ("Machine-readable report", "report.json"),
    ("Markdown report", "report.md"),
    ("SARIF findings", "report.sarif"),
    ("SBOM (CycloneDX)", "bom.cdx.json"),
    ("JUnit XML", "junit.xml"),
    ("Raw samples", "samples.json"),
)


def report_context(
    report: StageReport,
    out_dir: Path,
    store: HistoryStore | None,
    limit: int = TREND_RUNS,
) -> tuple[ReportContext, str]:
    """The context of ``report``'s page and, when the history could not be read, why
    (empty when it could, or when there is no store)."""
    history: dict[tuple[str, str], list[TrendPoint]] = {}
    problem = ""
    if store is not None:
        try:
            points = store.metric_history(report.stage, report.target, limit, report.run_id)
        except StoreError as exc:
            problem = f"no trends: the history store could not be read: {exc}"
        else:
            history = trend_series(points)
    return (
        ReportContext(
            history=history,
            timelines=load_timelines(report),
            links=run_links(report, out_dir),
            notes=(problem,) if problem else (),
        ),
        problem,
    )


def page_renderer(context: ReportContext) -> Renderer:
    """``report.html``'s renderer with ``context``. A page that cannot be drawn (a chart
    library's error on odd data) becomes a short page saying so, pointing at report.md: the
    run's other reports are written whatever happens to this one."""

    def render(report: StageReport) -> str:
        try:
            return render_html(report, context)
        except Exception as exc:  # noqa: BLE001 - any drawing error; the page says which
            return _undrawn_page(report, f"{type(exc).__name__}: {exc}")

    return render


def _undrawn_page(report: StageReport, error: str) -> str:
    verdict = report.verdict.value
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(verdict)} · {escape(report.stage)}</title></head><body>"
        f'<section id="verdict" data-verdict="{escape(verdict)}"><h1>{escape(verdict)} — '
        f"{escape(report.stage)} @ {escape(report.version)}</h1>"
        f"<p>{escape(summary_line(report.summary))}</p></section>"
        f"<p>This page could not be drawn ({escape(error)}); report.md and report.json hold "
        "the whole report.</p></body></html>\n"
    )


def trend_series(points: Iterable[MetricPoint]) -> dict[tuple[str, str], list[TrendPoint]]:
    """(check, metric) -> its measured values in the runs, in the order given (oldest first);
    unmeasured values and invalidated runs are left out (they are no trend)."""
    series: defaultdict[tuple[str, str], list[TrendPoint]] = defaultdict(list)
    for p in points:
        if p.value is None or not math.isfinite(p.value) or p.invalidated:
            continue
        series[(p.check, p.metric)].append(
            TrendPoint(p.run_id, p.started_at, p.value, p.verdict or None)
        )
    return dict(series)


def load_timelines(report: StageReport) -> dict[str, Sequence[TimelinePoint]]:
    """Check id -> its load test second by second, for the load checks that wrote one."""
    timelines: dict[str, Sequence[TimelinePoint]] = {}
    for result in report.checks:
        path = result.artifacts.get("locust_timeline")
        if path:
            points = read_timeline(Path(path))
            if points:
                timelines[result.check_id] = points
    return timelines


def run_links(report: StageReport, out_dir: Path) -> dict[str, str]:
    """Label -> path relative to the run folder: its report files that exist, then each
    check's raw outputs that lie inside the folder (others are on another machine's disk)."""
    links = {label: name for label, name in LINKED_FILES if (out_dir / name).is_file()}
    root = out_dir.resolve()
    for result in report.checks:
        for name, raw in sorted(result.artifacts.items()):
            relative = _inside(Path(raw), root)
            if relative is not None:
                links[f"{result.check_id}: {name}"] = relative
    return links


def _inside(path: Path, root: Path) -> str | None:
    try:
        resolved = path.resolve()
        return resolved.relative_to(root).as_posix() if resolved.is_file() else None
    except (OSError, ValueError):
        return None


def trends_of(
    store: HistoryStore, stage: str, target: str, limit: int = TREND_RUNS
) -> Mapping[tuple[str, str], Sequence[TrendPoint]]:
    """The trends page's series: every metric of the newest ``limit`` runs of ``stage``."""
    return trend_series(store.metric_history(stage, target, limit))
