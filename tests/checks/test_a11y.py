"""The a11y kind without a browser: axe results to findings, timings, settings, fail-closed
paths that never get as far as launching Chromium (tests/integration/test_a11y_browser.py
drives the real one)."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from neuroerp_ci.checks import KINDS
from neuroerp_ci.checks._browser import (
    CHROMIUM_ENV,
    INSTALL_LINE,
    NetworkGuard,
    OpenPage,
    PageTimings,
    cumulative_layout_shift,
    find_chromium,
    outside_event_loop,
    parse_timings,
    resolver_rules,
    total_blocking_time,
)
from neuroerp_ci.checks.a11y import (
    A11yCheck,
    A11yRun,
    A11ySettings,
    PageRun,
    _check_page,
    _Deadline,
    a11y_reason,
    audit_metrics,
    axe_options,
    axe_script,
    parse_axe_results,
    selector_of,
    severity_of,
    summary_line,
    timing_metrics,
)
from neuroerp_ci.checks.interface import Check, CheckContext, execute_check
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.gates import evaluate
from neuroerp_ci.gates.waivers import WaiverSpec, apply_waivers
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    FindingSeverity,
    OutcomeStatus,
    Priority,
)
from neuroerp_ci.run.runner import audit_checks

# Trimmed from a real axe-core 4.12 run on a page with an <img> without alt and an <input>
# without a label (the shape axe.run returns; passes keep only what the check reads).
AXE_RESULTS: dict[str, Any] = {
    "testEngine": {"name": "axe-core", "version": "4.12.1"},
    "violations": [
        {
            "id": "image-alt",
            "impact": "critical",
            "tags": ["cat.text-alternatives", "wcag2a", "wcag111"],
            "description": "Ensure <img> elements have alternative text or a role of none",
            "help": "Images must have alternative text",
            "helpUrl": "https://dequeuniversity.com/rules/axe/4.12/image-alt?application=axeAPI",
            "nodes": [
                {
                    "impact": "critical",
                    "html": '<img src="/logo.png">',
                    "target": ['img[src="/logo.png"]'],
                    "failureSummary": "Fix any of the following:\n"
                    "  Element does not have an alt attribute\n"
                    "  aria-label attribute does not exist or is empty",
                }
            ],
        },
        {
            "id": "label",
            "impact": "critical",
            "help": "Form elements must have labels",
            "helpUrl": "https://dequeuniversity.com/rules/axe/4.12/label?application=axeAPI",
            "nodes": [
                {
                    "impact": "critical",
                    "target": ["#user"],
                    "failureSummary": "Fix any of the following:\n"
                    "  Element does not have an implicit (wrapped) <label>",
                },
                {
                    "impact": "serious",  # a node's own impact wins over the rule's
                    "target": [["#widget", "input.inner"]],
                    "failureSummary": "Fix all of the following:\n  Form element has no label",
                },
            ],
        },
        {
            "id": "region",
            "impact": "moderate",
            "help": "All page content should be contained by landmarks",
            "helpUrl": "https://dequeuniversity.com/rules/axe/4.12/region?application=axeAPI",
            "nodes": [{"target": ["iframe#ad", "p"], "failureSummary": None}],
        },
    ],
    "passes": [
        {"id": "document-title", "nodes": [{"target": ["html"]}]},
        {"id": "html-has-lang", "nodes": [{"target": ["html"]}]},
        {"id": "image-alt", "nodes": [{"target": ["img.ok"]}, {"target": ["img.ok2"]}]},
    ],
    "incomplete": [{"id": "color-contrast", "nodes": [{"target": ["p.faint"]}]}],
    "inapplicable": [{"id": "audio-caption", "nodes": []}],
}


def make_check(settings: dict[str, Any], timeout: float = 30.0, cid: str = "a11y") -> Check:
    return Check(
        id=cid, title=cid, kind="a11y", priority=Priority.HIGH, dependencies=(),
        timeout=timeout, settings=A11ySettings.model_validate(settings),
    )  # fmt: skip


def make_ctx(tmp_path: Path, env: dict[str, str] | None = None, **kw: Any) -> CheckContext:
    return CheckContext(
        project_dir=tmp_path, work_dir=tmp_path / "work", python="python",
        env=env if env is not None else {"PATH": os.environ.get("PATH", "")},
        base_url=kw.pop("base_url", "http://127.0.0.1:9"), **kw,
    )  # fmt: skip


PAGES = {"pages": [{"name": "login", "path": "/login"}]}


# --- axe results -> findings ---------------------------------------------------------------


def test_every_violating_element_is_a_finding_with_page_selector_and_help() -> None:
    outcome = parse_axe_results("login", AXE_RESULTS)
    shown = [(f.rule, f.severity, f.location) for f in outcome.findings]
    assert shown == [
        ("image-alt", FindingSeverity.CRITICAL, 'login: img[src="/logo.png"]'),
        ("label", FindingSeverity.CRITICAL, "login: #user"),
        ("label", FindingSeverity.HIGH, "login: #widget >>> input.inner"),
        ("region", FindingSeverity.MEDIUM, "login: iframe#ad >> p"),
    ]
    first = outcome.findings[0]
    assert first.tool == "axe-core"
    assert (
        first.message
        == "Images must have alternative text (Element does not have an alt attribute)"
    )
    assert first.help_url.startswith("https://dequeuniversity.com/rules/axe/4.12/image-alt")
    assert outcome.findings[3].message == "All page content should be contained by landmarks"
    assert outcome.by_impact == {"critical": 2, "serious": 1, "moderate": 1}
    # passes and violations nodes; incomplete ones are counted on their own
    assert (outcome.elements_checked, outcome.incomplete) == (4 + 4, 1)
    assert outcome.rules_run == 6  # image-alt (passing and violating) counted once


def test_findings_keep_their_identity_across_runs_and_pages() -> None:
    one = parse_axe_results("login", AXE_RESULTS).findings
    again = parse_axe_results("login", AXE_RESULTS).findings
    other = parse_axe_results("home", AXE_RESULTS).findings
    assert [f.identity for f in one] == [f.identity for f in again]
    assert {f.identity for f in one}.isdisjoint(f.identity for f in other)


@pytest.mark.parametrize(
    ("impact", "severity"),
    [
        ("critical", FindingSeverity.CRITICAL),
        ("serious", FindingSeverity.HIGH),
        ("moderate", FindingSeverity.MEDIUM),
        ("minor", FindingSeverity.LOW),
        (None, FindingSeverity.UNKNOWN),  # unrated counts as high, never as harmless
        ("bogus", FindingSeverity.UNKNOWN),
    ],
)
def test_impact_maps_to_severity(impact: Any, severity: FindingSeverity) -> None:
    assert severity_of(impact) is severity


def test_selectors_and_summaries() -> None:
    assert selector_of("#a") == "#a"
    assert selector_of(["iframe", ["#host", "button"]]) == "iframe >> #host >>> button"
    assert summary_line("Fix all of the following:\n  Element has no title\n  more") == (
        "Element has no title"
    )
    assert summary_line(None) == summary_line("Fix any of the following:") == ""


@pytest.mark.parametrize(
    "data",
    [{}, {"violations": [{"id": "x"}], "passes": [], "incomplete": []}, {"violations": None}, []],
)
def test_unreadable_axe_results_are_a_tool_error(data: Any) -> None:
    with pytest.raises(ToolError, match="unexpected shape"):
        parse_axe_results("login", data)


def test_axe_runs_the_wcag_a_and_aa_rules_unless_told_otherwise() -> None:
    default = axe_options(A11ySettings.model_validate(PAGES))
    assert default["runOnly"] == {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"],
    }
    assert default["resultTypes"] == ["violations", "passes", "incomplete"]
    more = axe_options(A11ySettings.model_validate({**PAGES, "include_best_practices": True}))
    assert more["runOnly"]["values"][-1] == "best-practice"
    own = axe_options(A11ySettings.model_validate({**PAGES, "tags": ["wcag22aa"]}))
    assert own["runOnly"]["values"] == ["wcag22aa"]


def test_axe_comes_from_the_bundled_wheel() -> None:
    source = axe_script()
    assert source.startswith("/*! axe v4.") and "axe.run" not in source[:20]


# --- a page that cannot be audited, with a fake page --------------------------------------


class FakePage:
    """Answers the check's evaluate calls as a page would, in the order they come."""

    def __init__(self, content: bool = True, answer: Any = None) -> None:
        self.content = content
        self.answer = (
            answer if answer is not None else {"version": "4.12.1", "results": AXE_RESULTS}
        )
        self.calls: list[str] = []

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        self.calls.append(expression[:40])
        if "innerText" in expression:
            return self.content
        if "typeof window.axe" in expression:
            return True
        if "axe.run" in expression:
            return self.answer
        return None  # the injected source


def open_page(page: FakePage) -> OpenPage:
    return OpenPage(page, "login", "http://127.0.0.1:9/login", 200, NetworkGuard(()))  # type: ignore[arg-type]


def check_page(page: FakePage) -> Any:
    settings = A11ySettings.model_validate(PAGES)
    return _check_page(
        open_page(page), "/* axe */", axe_options(settings), _Deadline(1e12), settings
    )


def test_a_page_with_findings_gives_them_with_axes_version() -> None:
    outcome, version = check_page(FakePage())
    assert version == "4.12.1" and len(outcome.findings) == 4


def test_zero_elements_checked_is_an_error_not_a_clean_page() -> None:
    empty = {**AXE_RESULTS, "violations": [], "passes": [], "incomplete": []}
    with pytest.raises(ToolError, match="checked no element on page 'login'"):
        check_page(FakePage(answer={"version": "4.12.1", "results": empty}))


def test_a_page_that_renders_nothing_is_an_error_before_axe_runs() -> None:
    page = FakePage(content=False)
    with pytest.raises(TargetError, match="'login'.*rendered nothing"):
        check_page(page)
    assert not any("axe.run" in call for call in page.calls)


def test_axe_without_results_is_an_error() -> None:
    with pytest.raises(ToolError, match="no results for page 'login'"):
        check_page(FakePage(answer={"oops": 1}))


# --- fail closed before any browser --------------------------------------------------------


def test_missing_executable_is_an_error_with_the_install_line(tmp_path: Path) -> None:
    check = make_check({**PAGES, "executable": str(tmp_path / "no-such-chromium")})
    result = execute_check(A11yCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert INSTALL_LINE in result.reason and "no-such-chromium" in result.reason
    assert not result.findings and not result.metrics
    # and the gate does not let it pass: every default condition fails on the error
    for default in A11yCheck().default_conditions(check.settings):
        cond = ConditionSpec.model_validate({"check": "a11y", **default})
        outcome = evaluate(cond, check, result, default=True)
        assert outcome.status in (OutcomeStatus.FAIL, OutcomeStatus.WARN), outcome
    blocking = ConditionSpec.model_validate({"check": "a11y", "findings": "high", "max": 0})
    assert evaluate(blocking, check, result).status is OutcomeStatus.FAIL


def test_no_chromium_on_path_and_env_override(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="neither chromium nor chromium-browser is on PATH"):
        find_chromium(None, {"PATH": str(tmp_path)}, tmp_path)
    with pytest.raises(ToolError, match=f"{CHROMIUM_ENV} = .*not an executable file"):
        find_chromium(None, {"PATH": "", CHROMIUM_ENV: str(tmp_path / "gone")}, tmp_path)
    fake = tmp_path / "bin" / "chromium"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    with pytest.raises(ToolError, match=INSTALL_LINE):  # not executable
        find_chromium("bin/chromium", {"PATH": ""}, tmp_path)
    fake.chmod(0o755)
    assert find_chromium("bin/chromium", {"PATH": ""}, tmp_path) == str(fake)
    assert find_chromium(None, {"PATH": str(fake.parent)}, tmp_path) == str(fake)
    assert find_chromium(None, {"PATH": "", CHROMIUM_ENV: str(fake)}, tmp_path) == str(fake)


def test_a_page_outside_allowed_hosts_is_refused_before_the_browser(tmp_path: Path) -> None:
    check = make_check({"pages": [{"name": "ext", "url": "https://example.com/"}],
                        "executable": str(tmp_path / "missing")})  # fmt: skip
    result = execute_check(A11yCheck(), check, make_ctx(tmp_path))
    assert result.status is CheckStatus.ERROR
    assert "not in allowed_hosts" in result.reason and "example.com" in result.reason


def test_a_relative_page_needs_a_base_url(tmp_path: Path) -> None:
    result = execute_check(A11yCheck(), make_check(PAGES), make_ctx(tmp_path, base_url=None))
    assert result.status is CheckStatus.ERROR and "no base_url" in result.reason


# --- the network guard ---------------------------------------------------------------------


def test_network_guard_allows_only_allowed_hosts() -> None:
    guard = NetworkGuard(("127.0.0.1", "localhost"))
    assert guard.allows("http://127.0.0.1:8000/app.js")
    assert guard.allows("http://LOCALHOST./x") and guard.allows("ws://localhost:1/socket")
    assert guard.allows("data:image/png;base64,AA") and guard.allows("blob:http://x/1")
    assert not guard.allows("https://example.com/")
    assert not guard.allows("wss://example.com/live")
    assert not guard.allows("http://127.0.0.1@evil.example/")  # user information
    assert not guard.allows("ftp://127.0.0.1/") and not guard.allows("file:///etc/passwd")


def test_resolver_rules_resolve_only_allowed_hosts() -> None:
    rules = resolver_rules(("LocalHost", "127.0.0.1", "::1"))
    assert rules == "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE [::1], EXCLUDE localhost"


def test_playwright_sync_work_runs_outside_a_running_event_loop() -> None:
    async def inside() -> str:
        return outside_event_loop(lambda: threading.current_thread().name)

    assert asyncio.run(inside()).startswith("chromium")
    assert outside_event_loop(lambda: threading.current_thread().name) == (
        threading.current_thread().name
    )


# --- timings -------------------------------------------------------------------------------


def test_cumulative_layout_shift_takes_the_largest_session_window() -> None:
    assert cumulative_layout_shift([]) == 0.0
    # 0.1 + 0.2 in one window; a 1.5 s gap opens the next: 0.25
    assert cumulative_layout_shift([(100, 0.1), (600, 0.2), (2100, 0.25)]) == pytest.approx(0.3)
    # a window ends 5 s after its first shift even without a gap
    shifts = [(t, 0.1) for t in range(0, 7000, 900)]
    assert cumulative_layout_shift(shifts) == pytest.approx(0.6)


def test_total_blocking_time_counts_long_tasks_after_first_paint_beyond_50_ms() -> None:
    tasks = [(10, 200), (400, 120), (600, 40), (900, 51)]
    # the first ends before FCP at 300; 120 -> 70, 40 -> 0 (not long), 51 -> 1
    assert total_blocking_time(tasks, 300) == pytest.approx(71)
    # a task running across FCP counts from FCP on: (250..450) -> 150 after 300 -> 100
    assert total_blocking_time([(250, 200)], 300) == pytest.approx(100)
    assert total_blocking_time(tasks, None) == pytest.approx(150 + 70 + 1)


def test_parse_timings() -> None:
    raw = {
        "observed": True, "unsupported": [],
        "navigation": {"responseStart": 12.3456789, "loadEventEnd": 180.0},
        "fcp": 96.0, "lcp": 140.0, "shifts": [[100, 0.05]], "longtasks": [[120, 90]],
    }  # fmt: skip
    timings = parse_timings(raw)
    assert timings == PageTimings(12.346, 96.0, 140.0, 0.05, 40.0, 180.0)
    assert parse_timings({**raw, "lcp": None, "navigation": {"responseStart": 5, "loadEventEnd": 0}}
                         ).values().keys() == {"ttfb_ms", "fcp_ms", "cls", "tbt_ms"}  # fmt: skip
    with pytest.raises(ToolError, match="observers did not run"):
        parse_timings({**raw, "observed": False})
    with pytest.raises(ToolError, match="no navigation timing"):
        parse_timings({**raw, "navigation": None})
    with pytest.raises(ToolError, match="unexpected shape"):
        parse_timings({"observed": True})


def _page(name: str, lcps: list[float]) -> PageRun:
    record = PageRun(name, f"http://127.0.0.1:9/{name}")
    record.timings = [PageTimings(ttfb_ms=5.0, lcp_ms=v, cls=0.0) for v in lcps]
    return record


def test_timings_per_page_and_the_worst_page_overall() -> None:
    metrics = {m.name: m for m in timing_metrics([_page("home", [100, 300, 200]),
                                                  _page("login", [250, 260, 900])])}  # fmt: skip
    assert metrics["home.lcp_ms"].value == 200 and metrics["home.lcp_ms"].samples == (100, 300, 200)
    assert metrics["login.lcp_ms"].value == 260
    assert metrics["lcp_ms"].value == 260 and metrics["lcp_ms"].samples == (250, 260, 900)
    assert metrics["lcp_ms"].unit == "ms" and metrics["cls"].unit == ""
    assert "fcp_ms" not in metrics  # never reported: no metric, not a zero


def test_audit_metrics_and_reason() -> None:
    login = _page("login", [420])
    login.axe = parse_axe_results("login", AXE_RESULTS)
    home = _page("home", [100])
    home.axe = parse_axe_results("home", {**AXE_RESULTS, "violations": []})
    run = A11yRun(pages={"home": home, "login": login}, blocked=["https://cdn.example/x.js"] * 2)
    metrics = {
        m.name: m for m in [*audit_metrics([home, login], 2), *timing_metrics([home, login])]
    }
    assert metrics["violations"].value == 4 and metrics["login.violations"].value == 4
    assert metrics["home.violations"].value == 0
    assert [
        metrics[f"violations_{i}"].value for i in ("critical", "serious", "moderate", "minor")
    ] == [2, 1, 1, 0]
    assert metrics["elements_checked"].value == 4 + 8 and metrics["blocked_requests"].value == 2
    reason = a11y_reason(run, list(login.axe.findings), metrics)
    assert reason.startswith(
        "4 violations (2 critical, 1 serious, 1 moderate) on 2 pages: login: label ×2, "
        "login: image-alt ×1, login: region ×1"
    )
    assert "12 element checks" in reason and "LCP 420 ms" in reason
    assert "2 requests blocked (not in allowed_hosts): https://cdn.example/x.js" in reason
    clean = a11y_reason(A11yRun(pages={"home": home}), [], metrics)
    assert clean.startswith("no violations on 1 pages")


# --- settings, metric names, default conditions, waivers ----------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pages": []}, "at least 1"),
        ({"pages": [{"name": "a"}]}, "exactly one of 'path' or 'url'"),
        ({"pages": [{"name": "a", "path": "/", "url": "http://x/"}]}, "exactly one"),
        ({"pages": [{"name": "a", "url": "ftp://x/"}]}, "absolute http"),
        ({"pages": [{"name": "A b", "path": "/"}]}, "pattern"),
        ({"pages": [{"name": "a", "path": "/"}, {"name": "a", "path": "/b"}]}, "duplicate"),
        ({**PAGES, "warn_on": "critical"}, "less severe than fail_on"),
        ({**PAGES, "fail_on": "moderate", "warn_on": "serious"}, "less severe"),
        ({**PAGES, "tags": []}, "at least 1"),
        ({**PAGES, "samples": 0}, "greater than or equal to 1"),
        ({**PAGES, "timeout": 5}, "Extra inputs"),  # the check's own timeout, not a setting
    ],
)
def test_settings_are_validated(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        A11ySettings.model_validate(settings)


def test_metric_names_per_page() -> None:
    kind = KINDS["a11y"]
    names = kind.metric_names(A11ySettings.model_validate(
        {"pages": [{"name": "login", "path": "/login"}, {"name": "home", "path": "/"}]}
    ))  # fmt: skip
    for metric in (
        "login.lcp_ms",
        "home.tbt_ms",
        "lcp_ms",
        "cls",
        "violations_serious",
        "login.violations",
        "elements_checked",
        "blocked_requests",
        "new_findings",
    ):
        assert names.produces(metric), metric
    assert not names.produces("other.lcp_ms") and not names.produces("login.p95_ms")
    assert names.findings and names.audit
    off = kind.metric_names(A11ySettings.model_validate({**PAGES, "timings": False}))
    assert not off.produces("lcp_ms") and off.produces("violations")
    assert "settings.timings = true" in off.problem("login.lcp_ms", "a11y", "a11y")


def test_default_conditions_block_serious_and_warn_on_moderate() -> None:
    kind = KINDS["a11y"]
    assert kind.exclusive and kind.needs_target
    assert kind.default_conditions(A11ySettings.model_validate(PAGES)) == (
        {"findings": "high", "max": 0},
        {"findings": "medium", "max": 0, "severity": "warning"},
        {"metric": "blocked_requests", "max": 0, "severity": "warning"},
    )
    strict = A11ySettings.model_validate({**PAGES, "fail_on": "minor", "warn_on": "none"})
    assert kind.default_conditions(strict)[0] == {"findings": "low", "max": 0}
    assert len(kind.default_conditions(strict)) == 2


def test_default_conditions_judge_the_findings(tmp_path: Path) -> None:
    check = make_check(PAGES)
    result = CheckResult("a11y", "a11y", CheckStatus.OK)
    result.findings = [
        f for f in parse_axe_results("login", AXE_RESULTS).findings if f.rule == "region"
    ]
    result.add_metric(audit_metrics([], 0)[-1])  # blocked_requests 0
    outcomes = [
        evaluate(ConditionSpec.model_validate({"check": "a11y", **d}), check, result, default=True)
        for d in A11yCheck().default_conditions(check.settings)
    ]
    # a moderate violation only warns; serious and worse would block
    assert [o.status for o in outcomes] == [
        OutcomeStatus.PASS,
        OutcomeStatus.WARN,
        OutcomeStatus.PASS,
    ]
    assert "login: iframe#ad >> p" in outcomes[1].reason


def test_waivers_apply_to_a11y_findings() -> None:
    check = make_check(PAGES)
    assert audit_checks([check]) == ["a11y"]
    result = CheckResult("a11y", "a11y", CheckStatus.OK)
    result.findings = list(parse_axe_results("login", AXE_RESULTS).findings)
    waiver = WaiverSpec(rule="label", path="login: #widget*", reason="third-party widget",
                        owner="ui-team", expires=date(2099, 1, 1))  # fmt: skip
    outcomes = apply_waivers({"a11y": result}, [waiver], ["a11y"], today=date(2030, 1, 1))
    assert [f.location for f in result.waived] == ["login: #widget >>> input.inner"]
    assert len(result.findings) == 3 and outcomes
