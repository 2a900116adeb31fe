"""What a person opening ``report.html`` or the trends page in a real headless Chromium must
get: no console error, nothing fetched from outside the file, the verdict at the top, every
chart drawn with data, and a failing condition's chart showing the threshold it crossed.

The demo runs these pages come from are test_development_gate's (one run each, shared); a
full-page screenshot of each page is kept under ``$NEUROERP_CI_TEST_OUTPUT/browser/``
(default ``.test-output/browser/`` in the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.browser import PageVisit, open_file

VIEWPORT_HEIGHT = 900

# Every chart's SVG has data marks with a non-empty box (a line, bars, steps): what the
# browser drew, not what the file claims.
_CHARTS_WITHOUT_DATA = """
() => [...document.querySelectorAll('figure.chart')].filter(fig => {
  const marks = [...fig.querySelectorAll('svg [id*="-data-"]')];
  return !marks.some(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
}).map(fig => fig.id || fig.dataset.metric || '?')
"""


def screenshot_path(name: str) -> Path:
    default = Path(__file__).parents[2] / ".test-output"
    return Path(os.environ.get("NEUROERP_CI_TEST_OUTPUT", default)) / "browser" / f"{name}.png"


def assert_self_contained(visit: PageVisit) -> None:
    assert visit.console_errors == [], visit.console_errors
    assert visit.page_errors == [], visit.page_errors
    assert visit.outside_requests() == [], visit.outside_requests()


def assert_charts_drawn(page: Any) -> int:
    charts = page.locator("figure.chart").count()
    assert charts > 0, "no chart in the page"
    assert page.evaluate(_CHARTS_WITHOUT_DATA) == []
    return int(charts)


def assert_verdict_on_top(page: Any, verdict: str) -> None:
    banner = page.locator("[data-verdict]").first
    assert banner.get_attribute("data-verdict") == verdict
    box = banner.bounding_box()
    assert box is not None and box["y"] + box["height"] <= VIEWPORT_HEIGHT, box


def check_passing_page(html: Path, verdict: str) -> Path:
    """A PASS (or WARN) run's page; returns the screenshot's path."""
    shot = screenshot_path(f"report-{verdict.lower()}")
    with open_file(html, shot) as (page, visit):
        assert_verdict_on_top(page, verdict)
        assert_charts_drawn(page)
        assert page.locator("figure.chart[data-status='fail']").count() == 0
    assert_self_contained(visit)
    return shot


def check_failing_page(html: Path, metric: str) -> Path:
    """A FAIL run's page, ``metric`` the failing condition's: its chart draws the threshold,
    and the banner at the top names it."""
    shot = screenshot_path("report-fail")
    with open_file(html, shot) as (page, visit):
        assert_verdict_on_top(page, "FAIL")
        assert_charts_drawn(page)
        failing = page.locator("figure.chart[data-status='fail']")
        metrics = {failing.nth(i).get_attribute("data-metric") for i in range(failing.count())}
        assert metric in metrics, f"the FAIL condition has no chart: {metrics}"
        chart = page.locator(f"figure.chart[data-status='fail'][data-metric='{metric}']").first
        threshold = chart.locator("svg [id$='-threshold']")
        assert threshold.count() == 1
        box = threshold.first.bounding_box()
        assert box is not None and box["width"] > 0, "threshold not drawn"
        assert metric in page.locator("[data-verdict]").first.inner_text()
    assert_self_contained(visit)
    return shot


def check_trends_page(html: Path, stage: str) -> Path:
    shot = screenshot_path(f"trends-{stage}")
    with open_file(html, shot) as (page, visit):
        assert assert_charts_drawn(page) >= 2
    assert_self_contained(visit)
    return shot
