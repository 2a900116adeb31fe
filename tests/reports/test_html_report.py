"""``report.html`` and the trends page, read back as a document tree: self-contained, escaped,
the verdict first, a chart with data for every limited metric, the failing limit drawn."""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser

import pytest

from neuroerp_ci.model import (
    BaselineState,
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    Outcome,
    OutcomeStatus,
    Severity,
    StageReport,
    Summary,
    Verdict,
    WaiverRef,
)
from neuroerp_ci.reports.context import ReportContext, TrendPoint
from neuroerp_ci.reports.html import render_html, render_trends, threshold_of
from neuroerp_ci.reports.html_assets import CONTENT_SECURITY_POLICY

VOID = {"meta", "input", "br", "hr", "img", "link", "source", "wbr", "col", "area", "base"}
NAMESPACES = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parts: list[Node | str] = field(default_factory=list)  # children and text, in order

    @property
    def children(self) -> list[Node]:
        return [p for p in self.parts if isinstance(p, Node)]

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag) and all(n.attrs.get(k) == v for k, v in attrs.items())
        ]

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def content(self) -> str:
        return "".join(p if isinstance(p, str) else p.content() for p in self.parts)


class TreeBuilder(HTMLParser):
    """The page as a tree; checks that every element it opens is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].parts.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].parts.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(page: str) -> Node:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def charts_of(root: Node) -> list[Node]:
    return [n for n in root.find_all("figure") if "chart" in n.classes()]


# -- reports to render ---------------------------------------------------------------------------


def _report(checks: list[CheckResult], outcomes: list[Outcome], verdict: Verdict) -> StageReport:
    return StageReport(
        run_id="20261128T104501Z-3f9a2c",
        stage="development",
        version="1.4.2+g3f9a2c1",
        target="valeo-neuroerp",
        verdict=verdict,
        started_at="2026-11-28T10:45:01Z",
        finished_at="2026-11-28T10:47:13Z",
        duration_s=132.25,
        checks=checks,
        outcomes=outcomes,
        summary=Summary("development", verdict, ("http-smoke: error_rate 0.333 > 0.01",), 3, 1),
        recorded=True,
        tested={"version": "1.4.2+g3f9a2c1", "sha": "3f9a2c1e4b5d" * 3, "source": "git HEAD"},
    )


def build_http_report() -> StageReport:
    """A FAIL on an error rate limit, latency samples, findings of every kind, a hostile
    reason."""
    draw = random.Random(11)
    latencies = tuple(draw.gauss(120.0, 15.0) for _ in range(300))
    http = CheckResult(
        check_id="http-smoke",
        kind="http_probe",
        status=CheckStatus.OK,
        duration_s=3.2,
        metrics={
            "error_rate": Metric("error_rate", 0.333, "ratio", Direction.LOWER),
            "p95_ms": Metric("p95_ms", 150.0, "ms", Direction.LOWER, latencies),
            "requests": Metric("requests", 90, "count", Direction.HIGHER),
        },
        tool_versions={"httpx": "0.28.1"},
    )
    secret = Finding("bandit", "B105", FindingSeverity.LOW, "hard-coded password", "app/a.py:3")
    bandit = CheckResult(
        check_id="bandit",
        kind="bandit",
        status=CheckStatus.OK,
        findings=[
            Finding(
                "bandit",
                "B602",
                FindingSeverity.HIGH,
                "shell=True <b>x</b>",
                "app/b.py:9",
                baseline_state=BaselineState.NEW,
            ),
            Finding("bandit", "B101", FindingSeverity.MEDIUM, "assert used", "app/c.py:1"),
        ],
        waived=[replace(secret, waiver=WaiverRef("W-1", "test fixture", "qa", "2027-01-31"))],
        suppressed=[Finding("bandit", "B311", FindingSeverity.LOW, "random", "app/d.py:4")],
        absent=[Finding("bandit", "B303", FindingSeverity.MEDIUM, "md5", "app/e.py:2")],
    )
    outcomes = [
        Outcome(
            "http-smoke",
            "error_rate <= 0.01",
            OutcomeStatus.FAIL,
            Severity.BLOCKING,
            0.333,
            "<= 0.01",
            "http-smoke: index: 30 of 90 answered HTTP 500 <script>alert(1)</script>",
            metric="error_rate",
        ),
        Outcome(
            "http-smoke",
            "p95_ms <= baseline +10 %",
            OutcomeStatus.PASS,
            Severity.BLOCKING,
            150.0,
            "<= 165",
            "http-smoke: p95_ms 150 within <= 165",
            baseline=150.0,
            change_pct=0.0,
            baseline_runs=("r1", "r2"),
            metric="p95_ms",
        ),
        Outcome(
            "bandit",
            "findings(high+) <= 0",
            OutcomeStatus.WARN,
            Severity.WARNING,
            1.0,
            "<= 0",
            "bandit: 1 findings high+ > 0",
        ),
    ]
    return _report([http, bandit], outcomes, Verdict.FAIL)


def _history(values: list[float]) -> list[TrendPoint]:
    return [
        TrendPoint(f"r{i}", f"2026-11-{i + 1:02d}T10:00:00Z", v, "PASS" if v < 0.05 else "FAIL")
        for i, v in enumerate(values)
    ]


def build_context() -> ReportContext:
    return ReportContext(
        history={
            ("http-smoke", "error_rate"): _history([0.0, 0.0, 0.01, math.nan, 0.0]),
            ("http-smoke", "p95_ms"): _history([140.0, 150.0, 160.0]),
        },
        timelines={"http-smoke": [(float(t), 30.0, 120.0 + t, 10.0) for t in range(5)]},
        links={
            "SARIF": "report.sarif",
            "SBOM": "bom.cdx.json",
            "raw": "http-smoke/responses.json",
            "outside": "https://example.com/x",
        },
    )


@pytest.fixture
def http_report() -> StageReport:
    return build_http_report()


@functools.cache
def rendered(with_context: bool) -> str:
    """The http report's page (rendered once: charts take a moment), with or without the
    context."""
    return render_html(build_http_report(), build_context() if with_context else None)


# -- the page ------------------------------------------------------------------------------------


def test_every_report_renders_a_well_formed_page(any_report: StageReport) -> None:
    page = render_html(any_report)
    assert page.startswith("<!DOCTYPE html>\n")
    root = parse(page)
    verdict = root.find_all("section", id="verdict")
    assert len(verdict) == 1
    assert verdict[0].attrs["data-verdict"] == any_report.verdict.value
    ids = [n.attrs["id"] for n in root.walk() if "id" in n.attrs]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    for figure in charts_of(root):
        assert figure.find_all("figcaption"), figure.attrs
        assert any("-data-" in n.attrs.get("id", "") for n in figure.walk()), figure.attrs


def test_nothing_outside_the_file_is_referenced() -> None:
    page = rendered(with_context=True)
    root = parse(page)
    assert not root.find_all("link") and not root.find_all("img") and not root.find_all("iframe")
    scripts = root.find_all("script")
    assert len(scripts) == 1 and "src" not in scripts[0].attrs
    (csp,) = [
        m for m in root.find_all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp.attrs["content"] == CONTENT_SECURITY_POLICY
    for node in root.walk():
        for name in ("src", "href", "xlink:href", "action", "srcset", "data"):
            value = node.attrs.get(name)
            if value is not None:
                assert not re.match(r"[a-z][a-z0-9+.-]*:|//", value, re.I), (node.tag, value)
    # No URL at all, but the SVG namespace names.
    rest = page
    for namespace in NAMESPACES:
        rest = rest.replace(f'"{namespace}"', '""')
    assert "http://" not in rest and "https://" not in rest.replace("https://example.com/x", ""), (
        re.findall(r"https?://\S+", rest)
    )
    assert "@import" not in page and "url(http" not in page


def test_the_outside_link_is_named_not_linked() -> None:
    root = parse(rendered(with_context=True))
    (files,) = root.find_all("section", id="files")
    hrefs = {a.attrs["href"]: a.content() for a in files.find_all("a")}
    assert hrefs == {
        "report.sarif": "SARIF",
        "bom.cdx.json": "SBOM",
        "http-smoke/responses.json": "raw",
    }
    assert "https://example.com/x" in files.content()


def test_report_text_stays_text() -> None:
    page = rendered(with_context=False)
    root = parse(page)
    assert len(root.find_all("script")) == 1  # the page's own
    assert not [b for b in root.find_all("b") if b.content() == "x"]
    (banner,) = root.find_all("section", id="verdict")
    assert "<script>alert(1)</script>" in banner.content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "shell=True <b>x</b>" in root.content()


def test_the_verdict_and_its_reasons_come_first() -> None:
    root = parse(rendered(with_context=False))
    (main,) = root.find_all("main")
    first = main.children[0]
    assert first.tag == "section" and first.attrs["id"] == "verdict"
    text = " ".join(first.content().split())
    assert "FAIL" in text and "development" in text and "1.4.2+g3f9a2c1" in text
    assert "valeo-neuroerp" in text
    reasons = [" ".join(li.content().split()) for li in first.find_all("li")]
    assert reasons[0].startswith("FAIL http-smoke error_rate <= 0.01: http-smoke: index: 30 of 90")
    assert reasons[1].startswith("WARN bandit findings(high+) <= 0")
    assert len(reasons) == 2  # what passed is not a reason
    order = [n.attrs.get("id") for n in main.children if n.tag == "section"]
    assert order == ["verdict", "tested", "outcomes", "checks", "files"]


def test_what_was_tested_is_shown(http_report: StageReport) -> None:
    root = parse(rendered(with_context=False))
    (tested,) = root.find_all("section", id="tested")
    text = tested.content()
    assert "3f9a2c1e4b5d" in text and "git HEAD" in text and "recorded" in text
    unrecorded = replace(http_report, recorded=False, record_error="database is locked")
    (banner,) = parse(render_html(unrecorded)).find_all("section", id="verdict")
    assert "NOT RECORDED" in banner.content() and "database is locked" in banner.content()


def test_outcomes_table_has_every_outcome_failing_first() -> None:
    root = parse(rendered(with_context=False))
    (section,) = root.find_all("section", id="outcomes")
    rows = section.find_all("tbody")[0].find_all("tr")
    cells = [[" ".join(td.content().split()) for td in row.find_all("td")] for row in rows]
    assert [c[0] for c in cells] == ["FAIL", "WARN", "PASS"]
    fail = cells[0]
    assert fail[1:6] == ["http-smoke", "error_rate <= 0.01", "blocking", "0.333", "<= 0.01"]
    passed = cells[2]
    assert passed[6:8] == ["150", "+0.0 %"]
    assert "baseline runs: r1, r2" in passed[8]
    assert "s-fail" in rows[0].find_all("td")[0].classes()


def test_inconclusive_says_what_it_counts_as(inconclusive_report: StageReport) -> None:
    root = parse(render_html(inconclusive_report))
    (section,) = root.find_all("section", id="outcomes")
    statuses = [row.find_all("td")[0].content() for row in section.find_all("tr")[1:]]
    # what counts as a failure comes first, whatever its status word
    assert statuses[0] == "INCONCLUSIVE (counts as fail)"
    (banner,) = root.find_all("section", id="verdict")
    assert banner.find_all("li")[0].content().startswith("INCONCLUSIVE (counts as fail)")
    assert "calibration: false alarms 1.8 %" in section.content()


def test_the_failing_limit_is_drawn_on_its_chart() -> None:
    root = parse(rendered(with_context=True))
    charts = charts_of(root)
    failing = [c for c in charts if c.attrs["data-status"] == "fail"]
    # the limited metric's chart, and the load timeline of the check that failed
    assert [(c.attrs["data-kind"], c.attrs.get("data-metric")) for c in failing] == [
        ("trend", "error_rate"),
        ("timeline", None),
    ]
    chart = failing[0]
    thresholds = [n for n in chart.walk() if n.attrs.get("id", "").endswith("-threshold")]
    assert len(thresholds) == 1
    data = [n for n in chart.walk() if "-data-" in n.attrs.get("id", "")]
    assert data and any(n.tag == "path" or n.find_all("path") for n in data)
    caption = " ".join(chart.find_all("figcaption")[0].content().split())
    assert "Limit 1 %" in caption and "error_rate <= 0.01" in caption
    assert "last 4 runs" in caption  # the NaN run is left out


def test_each_limited_metric_gets_its_charts() -> None:
    root = parse(rendered(with_context=True))
    kinds = [(c.attrs["data-kind"], c.attrs.get("data-metric")) for c in charts_of(root)]
    # requests is not limited: no chart; p95_ms has samples: its distribution too
    assert kinds == [
        ("trend", "error_rate"),
        ("trend", "p95_ms"),
        ("distribution", "p95_ms"),
        ("timeline", None),
    ]
    for chart in charts_of(root):
        assert any("-data-" in n.attrs.get("id", "") for n in chart.walk())
        assert chart.find_all("svg") and chart.find_all("figcaption")
    p95 = [c for c in charts_of(root) if c.attrs.get("data-metric") == "p95_ms"]
    for chart in p95:
        assert chart.attrs["data-status"] == "pass"
        assert any(n.attrs.get("id", "").endswith("-baseline") for n in chart.walk())


def test_findings_are_listed_with_filters() -> None:
    root = parse(rendered(with_context=False))
    (block,) = [n for n in root.walk() if "findings" in n.classes()]
    assert block.attrs["data-check"] == "bandit"
    rows = [r for r in block.find_all("tr") if "data-severity" in r.attrs]
    assert [(r.attrs["data-severity"], r.attrs["data-state"]) for r in rows] == [
        ("high", "counted"),
        ("medium", "counted"),
        ("low", "waived"),
        ("low", "suppressed"),
        ("medium", "fixed"),
    ]
    assert [r.attrs["data-rank"] for r in rows] == ["3", "2", "1", "1", "2"]
    first = [" ".join(td.content().split()) for td in rows[0].find_all("td")]
    assert first[:5] == ["HIGH", "B602 (bandit)", "app/b.py:9", "shell=True <b>x</b>", "new"]
    assert "W-1 (until 2027-01-31, qa: test fixture)" in rows[2].content()
    # Without a script the controls are hidden and every row is shown.
    (filters,) = [n for n in block.walk() if "filters" in n.classes()]
    assert "hidden" in filters.attrs
    assert filters.find_all("select") and filters.find_all("input")
    assert not any("hidden" in r.attrs for r in rows)


def test_the_same_report_gives_the_same_page(http_report: StageReport) -> None:
    assert render_html(http_report, build_context()) == rendered(with_context=True)


def test_an_empty_report_renders() -> None:
    empty = StageReport(
        run_id="",
        stage="",
        version="",
        target="",
        verdict=Verdict.PASS,
        started_at="",
        finished_at="",
        duration_s=0.0,
        checks=[],
        outcomes=[],
    )
    root = parse(render_html(empty, ReportContext()))
    text = root.content()
    assert "No check ran" in text and "No condition was evaluated" in text
    assert not charts_of(root)


def test_a_metric_without_a_value_has_no_chart(http_report: StageReport) -> None:
    http = http_report.checks[0]
    broken = replace(
        http, metrics={**http.metrics, "error_rate": Metric("error_rate", math.nan, "ratio")}
    )
    report = replace(http_report, checks=[broken, *http_report.checks[1:]])
    root = parse(render_html(report))
    assert "error_rate" not in {c.attrs.get("data-metric") for c in charts_of(root)}


@pytest.mark.parametrize(
    ("target", "value", "limit"),
    [
        ("<= 300", 412.0, 300.0),
        (">= 0.8", 0.5, 0.8),
        ("<= 2.5e-07", None, 2.5e-07),
        (">= 10 and <= 300", 400.0, 300.0),
        (">= 10 and <= 300", 5.0, 10.0),
        (">= 10 and <= 300", 20.0, 10.0),
        ("<= baseline +10 %", 1.0, None),
        ("no shift beyond +5 % (alpha 0.01)", 1.0, None),
        ("ok", None, None),
    ],
)
def test_threshold_of_a_target(target: str, value: float | None, limit: float | None) -> None:
    outcome = Outcome("c", "x", OutcomeStatus.FAIL, Severity.BLOCKING, value, target, "")
    assert threshold_of(outcome) == limit


# -- the trends page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    run_id: str
    started_at: str
    version: str
    verdict: Verdict | None


def test_trends_page_has_the_runs_and_a_chart_per_metric() -> None:
    history = {
        ("http-smoke", "error_rate"): _history([0.0, 0.0, 0.5]),
        ("api-latency", "p95_ms"): _history([0.01, 0.02]),
        ("api-latency", "gone"): _history([math.nan]),
    }
    runs = [Run("r2", "2026-11-03T10:00:00Z", "1.0.2", Verdict.FAIL), Run("r1", "x", "1.0.1", None)]
    units = {("http-smoke", "error_rate"): "ratio"}
    page = render_trends("development", "valeo <erp>", history, runs, units)
    assert page == render_trends("development", "valeo <erp>", history, runs, units)
    root = parse(page)
    assert "valeo <erp>" in root.content()
    rows = root.find_all("section", id="runs")[0].find_all("tr")[1:]
    assert [[" ".join(td.content().split()) for td in r.find_all("td")] for r in rows] == [
        ["r2", "2026-11-03T10:00:00Z", "1.0.2", "FAIL"],
        ["r1", "x", "1.0.1", "—"],
    ]
    charts = charts_of(root)
    assert [
        (c.attrs["data-check"], c.attrs["data-metric"], c.attrs["data-status"]) for c in charts
    ] == [
        ("api-latency", "p95_ms", "pass"),
        ("http-smoke", "error_rate", "fail"),
    ]
    for chart in charts:
        assert any("-data-" in n.attrs.get("id", "") for n in chart.walk())
        assert any(n.attrs.get("id", "").endswith("-current") for n in chart.walk())
    assert "newest 50 %" in charts[1].find_all("figcaption")[0].content()


def test_an_empty_trends_page_renders() -> None:
    root = parse(render_trends("staging", "t", {}, []))
    assert not charts_of(root)
    assert "No run of this stage" in root.content()
