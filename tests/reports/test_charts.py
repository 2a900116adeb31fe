"""The charts of report.html: inline SVG that a page can hold many of, the same every time."""

from __future__ import annotations

import functools
import math
import random
import re
import xml.etree.ElementTree as ET

import pytest

from neuroerp_ci.reports.charts import distribution_chart, timeline_chart, trend_chart

SVG_NS = "{http://www.w3.org/2000/svg}"
_RANDOM = random.Random(7)
TREND = [(f"11-{i:02d} 10:00", 280.0 + i, "PASS") for i in range(1, 12)] + [
    ("this run", 412.0, "fail")
]
SAMPLES = tuple(_RANDOM.gauss(300.0, 40.0) for _ in range(500))
TIMELINE = [
    (float(t), 50.0 + t % 5, None if t % 9 == 0 else 200.0 + t, 0.1 * (t % 3)) for t in range(60)
]


def ids_of(svg: str) -> list[str]:
    return [element.get("id", "") for element in ET.fromstring(svg).iter() if element.get("id")]


@functools.cache
def all_charts(prefix: str) -> tuple[str, str, str]:
    return (
        trend_chart(
            f"{prefix}t", "api-latency · p95_ms", "ms", TREND, 300.0, 280.0, len(TREND) - 1
        ),
        distribution_chart(f"{prefix}d", "p95_ms samples", "ms", SAMPLES, (), 300.0, 280.0),
        timeline_chart(f"{prefix}l", "load over time", TIMELINE),
    )


def test_each_chart_is_an_inline_svg_element() -> None:
    for svg in all_charts("c"):
        assert svg.startswith("<svg ")
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<metadata" not in svg
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag == f"{SVG_NS}svg"
        # Only namespace names: nothing a browser would fetch.
        urls = set(re.findall(r"https?://[^\"'\s)]+", svg))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_series_limit_and_baseline_carry_their_ids() -> None:
    trend, distribution, timeline = all_charts("c")
    assert {"ct-data-0", "ct-data-1", "ct-threshold", "ct-baseline", "ct-current"} <= set(
        ids_of(trend)
    )
    assert {"cd-data-0", "cd-threshold", "cd-baseline"} <= set(ids_of(distribution))
    assert {"cl-data-0", "cl-data-1", "cl-data-2"} <= set(ids_of(timeline))
    assert ET.fromstring(trend).get("id") == "ct"


def test_no_limit_no_line() -> None:
    svg = trend_chart("t", "coverage", "ratio", [("this run", 0.87, "pass")])
    assert "t-data-0" in ids_of(svg)
    assert not {"t-threshold", "t-baseline"} & set(ids_of(svg))


def test_baseline_samples_replace_the_baseline_line() -> None:
    svg = distribution_chart("d", "x", "ms", SAMPLES, SAMPLES[:100], threshold=None, baseline=1.0)
    found = set(ids_of(svg))
    assert {"d-data-0", "d-data-1"} <= found
    assert "d-baseline" not in found and "d-threshold" not in found


def test_the_same_data_give_the_same_bytes() -> None:
    assert all_charts.__wrapped__("c") == all_charts("c")


def test_every_id_belongs_to_its_chart_so_charts_share_a_page() -> None:
    first, second = all_charts("a"), all_charts("b")
    for prefix, svgs in (("a", first), ("b", second)):
        for svg in svgs:
            ids = ids_of(svg)
            assert len(ids) == len(set(ids))
            assert all(i.startswith(prefix) for i in ids), ids
            # every reference points at an id of the same chart
            for target in re.findall(r'(?:url\(#|href="#)([^)"]+)', svg):
                assert target in ids, target
    assert not set().union(*map(ids_of, first)) & set().union(*map(ids_of, second))


def test_text_is_shown_literally() -> None:
    svg = trend_chart("t", "cost $x$ <script>alert(1)</script>", "", [("a&b", 1.0, None)])
    root = ET.fromstring(svg)
    assert not any(element.tag.endswith("script") for element in root.iter())
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    assert "cost $x$ <script>alert(1)</script>" in texts
    assert "a&b" in texts


def test_values_that_are_not_numbers_are_left_out() -> None:
    points = [("a", math.nan, "PASS"), ("b", 2.0, "PASS"), ("c", math.inf, "PASS")]
    svg = trend_chart("t", "x", "", points, threshold=math.nan, current=2)
    ids = set(ids_of(svg))
    assert "t-data-0" in ids and "t-threshold" not in ids and "t-current" not in ids


@pytest.mark.parametrize(
    "chart",
    [
        lambda: trend_chart("e", "empty", "ms", []),
        lambda: distribution_chart("e", "empty", "ms", ()),
        lambda: distribution_chart("e", "one value", "ms", (5.0, 5.0, 5.0)),
        lambda: timeline_chart("e", "empty", []),
        lambda: timeline_chart("e", "no latency", [(0.0, 1.0, None, 0.0), (1.0, 2.0, None, 0.0)]),
    ],
)
def test_little_or_no_data_still_renders(chart: object) -> None:
    svg = chart()  # type: ignore[operator]
    assert ET.fromstring(svg).tag == f"{SVG_NS}svg"


def test_many_samples_keep_the_svg_small() -> None:
    many = [_RANDOM.expovariate(0.01) for _ in range(100_000)]
    svg = distribution_chart("d", "load test latencies", "ms", many)
    assert "d-data-0" in ids_of(svg)
    assert len(svg) < 80_000
