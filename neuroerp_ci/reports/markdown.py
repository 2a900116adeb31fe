"""``report.md``: the human summary of a stage run, also used as the Prefect artifacts.

The headline says the verdict, the stage and the version; then the one-line summary, the
outcomes (failing ones first), the checks, their metrics and their findings (waived ones with
their waiver, new ones marked), and the run folder's other files by name. No links, and
every piece of tool output is escaped so it cannot break a table or inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from neuroerp_ci.model import (
    BaselineState,
    CheckResult,
    CheckStatus,
    Finding,
    NoiseReading,
    Outcome,
    OutcomeStatus,
    StageReport,
    Verdict,
    summary_line,
)
from neuroerp_ci.support.formatting import MISSING, format_duration, format_value, plain_text

MAX_FINDINGS_PER_CHECK = 20
MAX_METRICS_PER_CHECK = 30
MAX_MESSAGE_CHARS = 200  # advisory texts can be whole paragraphs; report.json keeps them whole

OUTCOME_COLUMNS = (
    "status",
    "check",
    "condition",
    "value",
    "target",
    "baseline",
    "change",
    "reason",
)
# Shown in report.md only when some outcome has them (conditions against the baseline).
_OPTIONAL_COLUMNS = {"baseline": "baseline", "change": "change_pct"}

_VERDICT_MARK = {Verdict.PASS: "✅", Verdict.WARN: "⚠️", Verdict.FAIL: "❌"}
_OUTCOME_MARK = {
    OutcomeStatus.FAIL: "❌",
    OutcomeStatus.WARN: "⚠️",
    OutcomeStatus.INCONCLUSIVE: "❔",
    OutcomeStatus.INFO: "ℹ️",
    OutcomeStatus.PASS: "✅",
}
_CHECK_MARK = {CheckStatus.OK: "✅", CheckStatus.ERROR: "💥", CheckStatus.SKIPPED: "⏭️"}
# Failing first: what decided the verdict is what a reader looks for. INCONCLUSIVE (the
# data could not decide) comes after the breaches and before what passed.
_OUTCOME_ORDER = {
    OutcomeStatus.FAIL: 0,
    OutcomeStatus.WARN: 1,
    OutcomeStatus.INCONCLUSIVE: 2,
    OutcomeStatus.INFO: 3,
    OutcomeStatus.PASS: 4,
}
# "<" followed by a letter, "/", "!" or "?" could open an HTML tag; "<= 300" cannot.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def render_markdown(report: StageReport) -> str:
    """The full text of ``report.md``."""
    parts = [
        _headline(report),
        _facts(report),
        _section("Outcomes", _outcomes_table(report)),
        _section("Checks", _checks_table(report.checks)),
    ]
    metrics = _metrics_tables(report.checks)
    if metrics:
        parts.append(_section("Metrics", metrics))
    findings = _findings_lists(report.checks)
    if findings:
        parts.append(_section("Findings", findings))
    return "\n\n".join(parts) + "\n"


def markdown_summary(report: StageReport) -> str:
    """The Prefect markdown artifact: the same text as ``report.md``."""
    return render_markdown(report)


def outcome_rows(report: StageReport) -> list[dict[str, str]]:
    """The outcomes as table rows for the Prefect table artifact, failing ones first.

    Every row has exactly the keys of :data:`OUTCOME_COLUMNS`; values are display text.
    """
    return [
        {
            "status": status_text(outcome),
            "check": outcome.check,
            "condition": outcome.condition,
            "value": format_value(outcome.value),
            "target": outcome.target or MISSING,
            "baseline": format_value(outcome.baseline),
            "change": change_text(outcome.change_pct),
            "reason": outcome.reason,
        }
        for outcome in _failing_first(report.outcomes)
    ]


def status_text(outcome: Outcome) -> str:
    """The status as shown: ``fail``, ..., and for INCONCLUSIVE what it counts as in the
    verdict (``inconclusive (counts as warn)``), so no reader takes it for a pass."""
    if outcome.status is OutcomeStatus.INCONCLUSIVE:
        return f"{outcome.status.value} (counts as {outcome.weight.value})"
    return outcome.status.value


def change_text(change_pct: float | None) -> str:
    """A relative change with its sign: ``+61.6 %``; ``"—"`` when there is none."""
    return MISSING if change_pct is None else f"{change_pct:+.1f} %"


def escape_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, no HTML tags."""
    return _escape_inline(text).replace("|", "\\|")


def _escape_inline(text: str) -> str:
    return _TAG_START.sub("\\\\<", _LINE_BREAKS.sub(" ", plain_text(text)).strip())


def _failing_first(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: _OUTCOME_ORDER[o.status])  # stable: config order kept


def _headline(report: StageReport) -> str:
    version = report.version or "(no version)"
    where = f"{_escape_inline(report.stage)} @ {_escape_inline(version)}"
    if report.recorded is False:  # a verdict the history does not hold counts for nothing
        return f"## ❌ NOT RECORDED — {where} (the gate said {report.verdict.value})"
    return f"## {_VERDICT_MARK[report.verdict]} {report.verdict.value} — {where}"


def _facts(report: StageReport) -> str:
    summary = _escape_inline(summary_line(report.summary)) or MISSING
    if report.recorded is False:
        why = _escape_inline(report.record_error) or "the history store does not hold it (yet)"
        summary += (
            f"\n\n**Not recorded** in the history: {why}. This verdict does not count: no"
            " promotion and no baseline can use it."
        )
    facts = " · ".join(
        [
            f"target **{_escape_inline(report.target)}**",
            f"run `{report.run_id}`" if "`" not in report.run_id else f"run {report.run_id}",
            f"{report.started_at} → {report.finished_at}",
            format_duration(report.duration_s),
        ]
    )
    tested = _tested_line(report.tested)
    return f"{summary}\n\n{facts}" + (f"\n\n{tested}" if tested else "") + _files_line(report)


def _files_line(report: StageReport) -> str:
    """Where the findings and the SBOM are, beside this file in the run's folder."""
    findings = sum(len(c.findings) + len(c.waived) + len(c.suppressed) for c in report.checks)
    components = len({(c.name, c.version) for r in report.checks for c in r.components})
    return (
        f"\n\nAlso in this run's folder: `report.sarif` ({findings} findings, SARIF 2.1.0 for "
        f"code scanning) · `bom.cdx.json` (SBOM, {components} components) · `junit.xml`"
    )


def _tested_line(tested: Mapping[str, str]) -> str:
    """'Tested: commit 3f9a2c1e4b5d + working tree 5d41402abc4b (git HEAD with local
    changes), in the checkout; Python 3.11.7 at /srv/app/.venv/bin/python (project .venv)'."""
    if not tested:
        return ""
    parts = []
    if tested.get("sha"):
        tree = f" + working tree {tested['tree']}" if tested.get("tree") else ""
        parts.append(f"commit `{tested['sha'][:12]}`{tree} ({tested.get('source', '?')})")
    elif tested.get("version"):
        parts.append(f"version {tested['version']} ({tested.get('source', 'as given')})")
    if tested.get("checkout"):
        parts.append(f"in {tested['checkout']}")
    text = ", ".join(parts)
    if tested.get("python"):
        python = f"Python {tested.get('python_version', '?')} at `{tested['python']}`"
        text += ("; " if text else "") + f"{python} ({tested.get('python_source', '?')})"
    return "Tested: " + _escape_inline(text)


def _section(title: str, body: str) -> str:
    return f"### {title}\n\n{body}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_row(header), "|" + "|".join("---" for _ in header) + "|"]
    lines.extend(_row(row) for row in rows)
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(escape_cell(cell) or " " for cell in cells) + " |"


def _outcomes_table(report: StageReport) -> str:
    if not report.outcomes:
        return "No condition was evaluated."
    hidden = {
        column
        for column, attribute in _OPTIONAL_COLUMNS.items()
        if all(getattr(o, attribute) is None for o in report.outcomes)
    }
    columns = [c for c in OUTCOME_COLUMNS if c not in hidden]
    rows = []
    for outcome, row in zip(_failing_first(report.outcomes), outcome_rows(report), strict=True):
        row["status"] = f"{_OUTCOME_MARK[outcome.status]} {status_text(outcome)}"
        rows.append([row[c] for c in columns])
    header = [c.capitalize() for c in columns]
    return _table(*_with_calibration(_failing_first(report.outcomes), header, rows))


def _with_calibration(
    outcomes: Sequence[Outcome], header: list[str], rows: list[list[str]]
) -> tuple[list[str], list[list[str]]]:
    """A Calibration column before the reason (``neuroerp-ci calibrate``'s measured error
    rates of each condition), when some outcome has one; ``rows`` are in ``outcomes`` order."""
    if all(o.calibration is None for o in outcomes):
        return header, rows
    at = header.index("Reason") if "Reason" in header else len(header)
    texts = [MISSING if o.calibration is None else o.calibration.text() for o in outcomes]
    return (
        [*header[:at], "Calibration", *header[at:]],
        [[*row[:at], text, *row[at:]] for row, text in zip(rows, texts, strict=True)],
    )


def _checks_table(checks: Sequence[CheckResult]) -> str:
    if not checks:
        return "No check ran."
    rows = [
        [
            result.check_id,
            result.kind,
            f"{_CHECK_MARK[result.status]} {result.status.value}",
            format_duration(result.duration_s),
            str(len(result.findings)),
            result.reason,
        ]
        for result in checks
    ]
    table = _table(["Check", "Kind", "Status", "Duration", "Findings", "Reason"], rows)
    machine = [_machine_line(r.check_id, r.noise) for r in checks if r.noise is not None]
    return table + ("\n\nWhile measuring:\n\n" + "\n".join(machine) if machine else "")


def _machine_line(check_id: str, noise: NoiseReading) -> str:
    """``- api-latency: Machine: busy (other processes used 48 % of 2 CPUs, ...; timings may
    move by up to 200 % for it)``: the reading's reason without its own ``machine busy:``."""
    head, sep, figures = noise.reason.partition(": ")
    figures = figures if sep else head
    state = "busy" if noise.noisy else "quiet"
    if noise.noisy:
        figures += f"; timings may move by up to {noise.allowance_pct:g} % for it"
    return f"- {_escape_inline(check_id)}: Machine: {state} ({_escape_inline(figures)})"


def _metrics_tables(checks: Sequence[CheckResult]) -> str:
    rows: list[list[str]] = []
    for result in checks:
        names = sorted(result.metrics)
        for name in names[:MAX_METRICS_PER_CHECK]:
            metric = result.metrics[name]
            samples = str(len(metric.samples)) if metric.samples else ""
            rows.append([result.check_id, name, format_value(metric.value, metric.unit), samples])
        if len(names) > MAX_METRICS_PER_CHECK:
            more = f"... and {len(names) - MAX_METRICS_PER_CHECK} more (see report.json)"
            rows.append([result.check_id, more, "", ""])
    return _table(["Check", "Metric", "Value", "Samples"], rows) if rows else ""


def _findings_lists(checks: Sequence[CheckResult]) -> str:
    blocks = []
    for result in checks:
        check_id = _escape_inline(result.check_id)
        if result.findings:
            blocks.append(_finding_block(f"{check_id} ({len(result.findings)})", result.findings))
        if result.waived:
            # Accepted by a pipeline waiver: listed with it, never counted.
            title = f"{check_id}: waived, not counted ({len(result.waived)})"
            blocks.append(_finding_block(title, result.waived))
        if result.suppressed:
            # Hidden by the project ("# nosec"): shown so nothing vanishes, not counted.
            title = f"{check_id}: suppressed, not counted ({len(result.suppressed)})"
            blocks.append(_finding_block(title, result.suppressed))
        if result.absent:
            title = f"{check_id}: fixed since the baseline run ({len(result.absent)})"
            blocks.append(_finding_block(title, result.absent))
    return "\n\n".join(blocks)


def _finding_block(title: str, findings: Sequence[Finding]) -> str:
    ranked = sorted(findings, key=lambda f: -f.severity.rank)  # stable within a rank
    lines = [f"#### {title}", ""]
    lines.extend(_finding_line(finding) for finding in ranked[:MAX_FINDINGS_PER_CHECK])
    if len(ranked) > MAX_FINDINGS_PER_CHECK:
        lines.append(f"- ... and {len(ranked) - MAX_FINDINGS_PER_CHECK} more")
    return "\n".join(lines)


def _finding_line(finding: Finding) -> str:
    rule = f"`{finding.rule}`" if "`" not in finding.rule else _escape_inline(finding.rule)
    details = [_escape_inline(finding.location)]
    if finding.confidence:
        details.append(f"confidence {_escape_inline(finding.confidence)}")
    if finding.fix_versions:
        details.append("fix: " + ", ".join(_escape_inline(v) for v in finding.fix_versions))
    if finding.aliases:
        details.append("aka " + ", ".join(_escape_inline(a) for a in finding.aliases))
    if finding.baseline_state is BaselineState.NEW:
        details.append("**new**")
    elif finding.baseline_state is BaselineState.UPDATED:
        details.append("moved or changed")
    waiver = finding.waiver
    if waiver is not None:
        state = "expired" if waiver.expired else "until"
        details.append(
            f"waiver {_escape_inline(waiver.id)} ({state} {waiver.expires}, "
            f"{_escape_inline(waiver.owner)}: {_escape_inline(_shorten(waiver.reason))})"
        )
    return (
        f"- **{finding.severity.value}** {rule} ({_escape_inline(finding.tool)}): "
        f"{_escape_inline(_shorten(finding.message))} — " + "; ".join(details)
    )


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
