from __future__ import annotations

import os
import re
from dataclasses import replace
from html import unescape
from pathlib import Path

import pytest

from neuroerp_ci.model import Outcome, OutcomeStatus, Severity, StageReport, Verdict
from neuroerp_ci.reports.markdown import (
    MAX_FINDINGS_PER_CHECK,
    OUTCOME_COLUMNS,
    check_markdown,
    escape_markdown,
    markdown_summary,
    outcome_rows,
    outcome_table,
    render_markdown,
)

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "reports"


def _section(text: str, title: str) -> list[str]:
    """The lines of one ``### title`` section."""
    lines = text.splitlines()
    start = lines.index(f"### {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("### ")), len(lines))
    return lines[start:end]


def _table_rows(text: str, title: str) -> list[str]:
    return [line for line in _section(text, title) if line.startswith("| ")][1:]  # no header


def test_headline_names_verdict_stage_and_version(
    pass_report: StageReport, warn_report: StageReport, fail_report: StageReport
) -> None:
    assert render_markdown(fail_report).splitlines()[0] == (
        "## ❌ FAIL — development @ 1.4.2+g3f9a2c1"
    )
    assert render_markdown(warn_report).startswith("## ⚠️ WARN — development @ ")
    assert render_markdown(pass_report).startswith("## ✅ PASS — development @ ")
    assert "development: FAIL — sample" in render_markdown(fail_report)


def test_failing_outcomes_come_first(fail_report: StageReport) -> None:
    rows = _table_rows(render_markdown(fail_report), "Outcomes")
    statuses = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert statuses == ["❌ fail", "❌ fail", "⚠️ warn", "ℹ️ info", "✅ pass", "✅ pass"]
    # Within a status, the stage's order is kept.
    assert "| bandit |" in rows[0] and "| dependency-audit |" in rows[1]
    assert "| unit-tests |" in rows[4] and "| api-latency |" in rows[5]


def test_pipes_are_escaped_and_tables_keep_their_shape(fail_report: StageReport) -> None:
    text = render_markdown(fail_report)
    assert "(B601 \\| B604)" in text
    assert "skipped 3 dependencies \\| no service" in text
    for title, columns in (("Outcomes", 6), ("Checks", 6), ("Metrics", 4)):
        for row in _section(text, title):
            if row.startswith("|"):
                unescaped = row.replace("\\|", "")
                assert unescaped.count("|") == columns + 1, row


def _html(markdown: str) -> str:
    """What a CommonMark renderer with raw HTML and GFM tables makes of the text."""
    markdown_it = pytest.importorskip("markdown_it")  # comes with rich
    renderer = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")
    return str(renderer.render(markdown))


def test_rendered_html_has_no_injected_tags_and_intact_tables(fail_report: StageReport) -> None:
    html = _html(render_markdown(fail_report))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td>bandit: 8 findings high+ &gt; 0 (B601 | B604)</td>" in html
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    cells = [row.count("<td>") + row.count("<th>") for row in rows]
    assert cells == [6] * 7 + [6] * 6 + [4] * 8  # outcomes, checks, metrics with headers
    assert "<a " not in html


def test_tool_output_cannot_inject_html_or_terminal_codes(fail_report: StageReport) -> None:
    text = render_markdown(fail_report)
    assert re.search(r"(?<!\\)<[A-Za-z/]", text) is None
    assert "\x1b" not in text
    assert "pip-audit exited 1: ERROR skipped" in text
    assert "p95_ms <= 300" in text  # comparison signs stay readable


def test_baseline_column_only_when_a_baseline_exists(
    warn_report: StageReport, fail_report: StageReport
) -> None:
    assert _section(render_markdown(warn_report), "Outcomes")[1].startswith(
        "| Status | Check | Condition | Value | Target | Baseline | Reason |"
    )
    assert "Baseline" not in "\n".join(_section(render_markdown(fail_report), "Outcomes"))
    assert "| ⚠️ warn | api-latency | p95_ms <= 400 | 412.8 | <= 400 | 380 |" in (
        render_markdown(warn_report)
    )


def test_checks_table_shows_errors_and_durations(fail_report: StageReport) -> None:
    rows = _table_rows(render_markdown(fail_report), "Checks")
    assert len(rows) == 5
    assert rows[3].startswith("| dependency-audit | pip_audit | 💥 error | 0.8 s | 1 | pip-audit")
    assert rows[4].startswith("| e2e | pytest | ⏭️ skipped |")


def test_metrics_show_units(fail_report: StageReport) -> None:
    metrics = "\n".join(_section(render_markdown(fail_report), "Metrics"))
    assert "| api-latency | p95_ms | 412.8 ms | 3 |" in metrics
    assert "| unit-tests | coverage | 87.3 % |" in metrics


def test_findings_are_capped_per_check_most_severe_first(fail_report: StageReport) -> None:
    findings = _section(render_markdown(fail_report), "Findings")
    bandit = findings[findings.index("#### bandit (25)") + 2 :]
    bullets = bandit[: bandit.index("")]
    assert len(bullets) == MAX_FINDINGS_PER_CHECK + 1
    assert bullets[-1] == "- ... and 5 more"
    assert all(b.startswith("- **high**") for b in bullets[:8])
    assert bullets[8].startswith("- **medium**")
    assert "#### dependency-audit (1)" in findings
    assert any("fix: 2.11.3; aka CVE-2020-28493" in line for line in findings)


def test_no_findings_section_without_findings(pass_report: StageReport) -> None:
    text = render_markdown(pass_report)
    assert "### Findings" not in text
    assert "](" not in text  # link-free


def test_long_messages_are_cut(fail_report: StageReport) -> None:
    bandit = fail_report.checks[2]
    long = replace(bandit.findings[0], message="x" * 5000)
    report = replace(fail_report, checks=[replace(bandit, findings=[long])])
    line = next(x for x in render_markdown(report).splitlines() if x.startswith("- **low**"))
    assert "x" * 199 + "…" in line
    assert "x" * 201 not in line


def test_empty_report_says_so(pass_report: StageReport) -> None:
    text = render_markdown(replace(pass_report, checks=[], outcomes=[]))
    assert "No condition was evaluated." in text
    assert "No check ran." in text


def test_escape_markdown_joins_lines_and_escapes_pipes_and_tags() -> None:
    assert escape_markdown("a | b\nc\r\n d") == "a \\| b c d"
    assert escape_markdown("<img src=x> <= 3") == "\\<img src=x> <= 3"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        (">= 80", "\\>= 80"),  # a blockquote at a cell's start
        ("value >= 80", "value >= 80"),  # only there
        ("# 1", "\\# 1"),
        ("- x", "\\- x"),
        ("2) x", "2\\) x"),
        ("-5 ms", "-5 ms"),
        ("see [docs](http://x) `code`", "see \\[docs\\](http://x) \\`code\\`"),
        ("*bold* ~~gone~~", "\\*bold\\* \\~\\~gone\\~\\~"),
        ("p95_ms _em_", "p95_ms \\_em\\_"),  # "_" inside a word cannot emphasise
        ("&amp; & <=", "\\&amp; & <="),
        ("C:\\x\\*", "C:\\\\x\\\\\\*"),
    ],
)
def test_escape_markdown(text: str, escaped: str) -> None:
    assert escape_markdown(text) == escaped


@pytest.mark.parametrize(
    "text",
    [
        ">= 80", "> quote", "# head", "###", "- item", "+ item", "* item", "1. one", "10) ten",
        "---", "***", "___", "**bold** _em_ ~~del~~", "[a](b) ![i](u) [ref]: http://x",
        "`code` ```py", "<b>x</b> <http://x.y> <!-- c -->", "&amp; &#60; a & b", "a | b",
        "C:\\dir\\*x", "x__init__y", "p95_ms <= 300 and >= 1",
    ],
)  # fmt: skip
def test_escaped_text_renders_as_itself(text: str) -> None:
    """What a Markdown renderer shows is the text itself: one paragraph, no markup."""
    html = _html(escape_markdown(text)).strip()
    assert html.startswith("<p>") and html.endswith("</p>"), html
    inner = html.removeprefix("<p>").removesuffix("</p>")
    assert "<" not in inner and unescape(inner) == text, html


def test_outcome_rows_have_stable_columns_and_order(fail_report: StageReport) -> None:
    rows = outcome_rows(fail_report)
    assert all(tuple(row) == OUTCOME_COLUMNS for row in rows)
    assert [row["status"] for row in rows] == ["fail", "fail", "warn", "info", "pass", "pass"]
    assert rows[0] == {
        "status": "fail",
        "check": "bandit",
        "condition": "findings(high+) <= 0",
        "value": "8",
        "target": "<= 0",
        "baseline": "—",
        "change": "—",
        "reason": "bandit: 8 findings high+ > 0 (B601 | B604)",
    }


def test_outcome_rows_format_values_and_baselines() -> None:
    outcome = Outcome(
        "api",
        "error_rate <= 0.05",
        OutcomeStatus.PASS,
        Severity.BLOCKING,
        0.012345,
        "<= 0.05",
        "ok",
        baseline=0.0101,
    )
    report = StageReport("r", "staging", "v", "t", Verdict.PASS, "a", "b", 1.0, [], [outcome])
    row = outcome_rows(report)[0]
    assert (row["value"], row["baseline"]) == ("0.0123", "0.0101")


def test_markdown_summary_is_the_report_with_status_words(any_report: StageReport) -> None:
    summary = markdown_summary(any_report)
    assert summary == render_markdown(any_report, marks=False)
    assert not re.search(r"[\u2139\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff\ufe0f]", summary)
    verdict = any_report.verdict.value
    assert summary.startswith(f"## {verdict} — ")


def test_outcome_table_cells_are_escaped(fail_report: StageReport) -> None:
    table = outcome_table(fail_report)
    assert [tuple(row) for row in table] == [OUTCOME_COLUMNS] * len(fail_report.outcomes)
    assert table[0]["reason"] == "bandit: 8 findings high+ > 0 (B601 \\| B604)"
    assert all(row == {k: escape_markdown(v) for k, v in raw.items()}
               for row, raw in zip(table, outcome_rows(fail_report), strict=True))  # fmt: skip


def test_outcome_table_never_renders_a_blockquote() -> None:
    outcome = Outcome(
        "unit-tests",
        "coverage >= 80",
        OutcomeStatus.FAIL,
        Severity.BLOCKING,
        75.0,
        ">= 80",
        "> quoted [x](y) *tool* output",
    )
    report = StageReport("r", "development", "v", "t", Verdict.FAIL, "a", "b", 1.0, [], [outcome])
    row = outcome_table(report)[0]
    assert row["target"] == "\\>= 80"
    for cell in row.values():
        html = _html(cell)
        assert "<blockquote>" not in html and "<a " not in html and "<em>" not in html, html


def test_check_markdown_says_status_reason_metrics_findings_and_tools(
    fail_report: StageReport,
) -> None:
    latency, bandit = fail_report.checks[1], fail_report.checks[2]
    text = check_markdown(latency)
    assert text.startswith(f"## api-latency: {latency.status.value}\n")
    assert f"**Reason:** {escape_markdown(latency.reason) or '—'}" in text
    assert "| p95_ms | 412.8 | ms | 3 |" in text
    assert "**Findings:** 0 counted · 0 waived · 0 suppressed" in text
    bandit_text = check_markdown(bandit)
    assert f"**Findings:** {len(bandit.findings)} counted" in bandit_text
    assert "### Tools" in check_markdown(fail_report.checks[0])
    assert "| pytest | 9.0.1 |" in check_markdown(fail_report.checks[0])
    html = _html(bandit_text)
    assert "<script>" not in html and "<a " not in html


def test_fail_report_matches_golden_file(fail_report: StageReport) -> None:
    text = render_markdown(fail_report)
    path = GOLDEN / "fail" / "report.md"
    if os.environ.get("NEUROERP_CI_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_change_column_only_when_a_change_exists(
    warn_report: StageReport, baseline_report: StageReport
) -> None:
    assert "Change" not in "\n".join(_section(render_markdown(warn_report), "Outcomes"))
    outcomes = _section(render_markdown(baseline_report), "Outcomes")
    assert outcomes[1].startswith(
        "| Status | Check | Condition | Value | Target | Baseline | Change | Reason |"
    )
    assert (
        "| ❌ fail | api-latency | p95_ms <= baseline +10 % | 412.8 | <= 280.5 | 255 | +61.9 % |"
        in "\n".join(outcomes)
    )
    regressed = (
        "p95_ms regressed: shift +18.2 % \\[98 % CI +12.1, +24.9\\] p=0.0003 vs pinned run r0"
    )
    assert regressed in "\n".join(outcomes)  # brackets escaped: never a link


def test_outcome_rows_show_the_change_with_its_sign(baseline_report: StageReport) -> None:
    rows = outcome_rows(baseline_report)
    assert [row["change"] for row in rows] == ["+61.9 %", "+8.6 %"]


def test_inconclusive_is_shown_as_such_after_the_breaches(
    inconclusive_report: StageReport,
) -> None:
    rows = _table_rows(render_markdown(inconclusive_report), "Outcomes")
    statuses = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert statuses == [
        "⚠️ warn",
        "❔ inconclusive (counts as warn)",
        "❔ inconclusive (counts as fail)",
        "✅ pass",
    ]
    assert "not confirmed: re-measured p95_ms 212 within <= 300" in rows[1]
    assert "about n=120 would" in rows[2]
    assert [row["status"] for row in outcome_rows(inconclusive_report)] == [
        "warn",
        "inconclusive (counts as warn)",
        "inconclusive (counts as fail)",
        "pass",
    ]
