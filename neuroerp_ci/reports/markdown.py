"""``report.md``: the human summary of a stage run, also used as the Prefect artifacts.

The headline says the verdict, the stage and the version; then the one-line summary, the
outcomes (failing ones first), the checks, their metrics and their findings (waived ones with
their waiver, new ones marked), and the run folder's other files by name. No links, and
every piece of tool output goes through :func:`escape_markdown`, so it cannot break a table,
inject HTML or turn into Markdown (a ``>= 80`` cell into a blockquote, ``[x](y)`` into a
link). The Prefect artifacts use the same text with status words only, no emoji.
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
# What Markdown could read as markup, escaped with a backslash (CommonMark allows it before
# any ASCII punctuation). Anywhere in the text: backslash, code, emphasis, links, strikethrough,
# table pipes.
_MARKUP = re.compile(r"[\\`*\[\]|~]")
# "_" opens emphasis only at a word's edge: p95_ms stays readable.
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# "&amp;" and "&#60;" would be decoded; a lone "&" is text.
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# "<" followed by a letter, "/", "!" or "?" could open an HTML tag or autolink; "<= 300" cannot.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# At the start of a text (each Prefect table cell is rendered on its own): a blockquote, a
# heading, a bullet or numbered list item, a thematic break.
_BLOCK_START = re.compile(
    r"^(?:(?P<mark>[>#])|(?P<bullet>[-+])(?=\s|$|[-+])|(?P<num>\d{1,9})(?=[.)](?:\s|$)))"
)
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def render_markdown(report: StageReport, marks: bool = True) -> str:
    """The full text of ``report.md``; ``marks=False``: status words only (no emoji)."""
    parts = [
        _headline(report, marks),
        _facts(report),
        _section("Outcomes", _outcomes_table(report, marks)),
        _section("Checks", _checks_table(report.checks, marks)),
    ]
    metrics = _metrics_tables(report.checks)
    if metrics:
        parts.append(_section("Metrics", metrics))
    findings = _findings_lists(report.checks)
    if findings:
        parts.append(_section("Findings", findings))
    return "\n\n".join(parts) + "\n"


def markdown_summary(report: StageReport) -> str:
    """The Prefect markdown artifact: the text of ``report.md`` with status words, no emoji
    (the UI shows them beside its own state colours)."""
    return render_markdown(report, marks=False)


def outcome_table(report: StageReport) -> list[dict[str, str]]:
    """The Prefect table artifact: :func:`outcome_rows` with every cell escaped (the UI
    renders each cell as Markdown)."""
    return [
        {key: escape_markdown(text) for key, text in row.items()} for row in outcome_rows(report)
    ]


def check_markdown(result: CheckResult) -> str:
    """One check's own artifact (on its Prefect task run): status, reason, metrics, how many
    findings counted and how many were waived or suppressed, and the tools' versions."""
    lines = [
        f"## {escape_markdown(result.check_id)}: {result.status.value}",
        "",
        f"kind {escape_markdown(result.kind)} · {format_duration(result.duration_s)}",
        "",
        f"**Reason:** {escape_markdown(result.reason) or MISSING}",
        *([f"**Reused:** {escape_markdown(result.cache_note)}", ""] if result.cached_from else []),
        "",
        (
            f"**Findings:** {len(result.findings)} counted · {len(result.waived)} waived · "
            f"{len(result.suppressed)} suppressed"
        ),
    ]
    names = sorted(result.metrics)
    if names:
        rows = [
            [name, format_value(m.value), m.unit, str(len(m.samples))]
            for name in names[:MAX_METRICS_PER_CHECK]
            for m in (result.metrics[name],)
        ]
        if len(names) > MAX_METRICS_PER_CHECK:
            rows.append([f"... and {len(names) - MAX_METRICS_PER_CHECK} more", "", "", ""])
        lines += ["", "### Metrics", "", _table(["Metric", "Value", "Unit", "Samples"], rows)]
    if result.tool_versions:
        tools = sorted(result.tool_versions.items())
        lines += ["", "### Tools", "", _table(["Tool", "Version"], [list(t) for t in tools])]
    return "\n".join(lines) + "\n"


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


def escape_markdown(text: str) -> str:
    """``text`` as one line that Markdown shows literally, in a table cell or in a sentence.

    Tool output made printable, line breaks joined, then a backslash before whatever could
    be markup: ``\\ ` * [ ] | ~`` anywhere, ``_`` at a word's edge, ``&`` of an entity,
    ``<`` that could open a tag, and at the start ``>``, ``#``, a list marker::

        >>> escape_markdown(">= 80 | see [docs](x) <b>")
        '\\\\>= 80 \\\\| see \\\\[docs\\\\](x) \\\\<b>'
    """
    text = _LINE_BREAKS.sub(" ", plain_text(text)).strip()
    text = _MARKUP.sub(lambda m: "\\" + m.group(), text)
    text = _EDGE_UNDERSCORE.sub("\\\\_", text)
    text = _ENTITY.sub("\\\\&", text)
    text = _TAG_START.sub("\\\\<", text)
    return _BLOCK_START.sub(_escape_block_start, text)


def _escape_block_start(found: re.Match[str]) -> str:
    if found.group("num") is not None:  # "1. x" -> "1\. x": escape the "." or ")"
        return found.group("num") + "\\"
    return "\\" + found.group()


def _code(text: str) -> str:
    """``text`` as inline code, or escaped text when a backtick would end the code early."""
    return f"`{text}`" if text and "`" not in text and "\n" not in text else escape_markdown(text)


def _failing_first(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: _OUTCOME_ORDER[o.status])  # stable: config order kept


def _headline(report: StageReport, marks: bool) -> str:
    version = report.version or "(no version)"
    where = f"{escape_markdown(report.stage)} @ {escape_markdown(version)}"
    if report.recorded is False:  # a verdict the history does not hold counts for nothing
        said = f"NOT RECORDED — {where} (the gate said {report.verdict.value})"
        return f"## ❌ {said}" if marks else f"## {said}"
    return f"## {_mark(_VERDICT_MARK[report.verdict], marks)}{report.verdict.value} — {where}"


def _mark(mark: str, marks: bool) -> str:
    """The emoji and a space before a status word, or nothing (the Prefect artifacts)."""
    return f"{mark} " if marks else ""


def _facts(report: StageReport) -> str:
    summary = escape_markdown(summary_line(report.summary)) or MISSING
    if report.recorded is False:
        why = escape_markdown(report.record_error) or "the history store does not hold it (yet)"
        summary += (
            f"\n\n**Not recorded** in the history: {why}. This verdict does not count: no"
            " promotion and no baseline can use it."
        )
    facts = " · ".join(
        [
            f"target **{escape_markdown(report.target)}**",
            f"run {_code(report.run_id)}",
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

    def esc(key: str, default: str) -> str:
        return escape_markdown(tested.get(key, default))

    parts = []
    if tested.get("sha"):
        tree = f" + working tree {esc('tree', '')}" if tested.get("tree") else ""
        parts.append(f"commit {_code(tested['sha'][:12])}{tree} ({esc('source', '?')})")
    elif tested.get("version"):
        parts.append(f"version {esc('version', '')} ({esc('source', 'as given')})")
    if tested.get("checkout"):
        parts.append(f"in {esc('checkout', '')}")
    text = ", ".join(parts)
    if tested.get("python"):
        python = f"Python {esc('python_version', '?')} at {_code(tested['python'])}"
        text += ("; " if text else "") + f"{python} ({esc('python_source', '?')})"
    return "Tested: " + text


def _section(title: str, body: str) -> str:
    return f"### {title}\n\n{body}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_row(header), "|" + "|".join("---" for _ in header) + "|"]
    lines.extend(_row(row) for row in rows)
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(escape_markdown(cell) or " " for cell in cells) + " |"


def _outcomes_table(report: StageReport, marks: bool) -> str:
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
        row["status"] = _mark(_OUTCOME_MARK[outcome.status], marks) + status_text(outcome)
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


def _checks_table(checks: Sequence[CheckResult], marks: bool) -> str:
    if not checks:
        return "No check ran."
    rows = [
        [
            result.check_id,
            result.kind,
            _mark(_CHECK_MARK[result.status], marks)
            + (result.cache_note or result.status.value),
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
    return f"- {escape_markdown(check_id)}: Machine: {state} ({escape_markdown(figures)})"


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
        check_id = escape_markdown(result.check_id)
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
    rule = _code(finding.rule)
    details = [escape_markdown(finding.location)]
    if finding.confidence:
        details.append(f"confidence {escape_markdown(finding.confidence)}")
    if finding.fix_versions:
        details.append("fix: " + ", ".join(escape_markdown(v) for v in finding.fix_versions))
    if finding.aliases:
        details.append("aka " + ", ".join(escape_markdown(a) for a in finding.aliases))
    if finding.baseline_state is BaselineState.NEW:
        details.append("**new**")
    elif finding.baseline_state is BaselineState.UPDATED:
        details.append("moved or changed")
    waiver = finding.waiver
    if waiver is not None:
        state = "expired" if waiver.expired else "until"
        details.append(
            f"waiver {escape_markdown(waiver.id)} ({state} {waiver.expires}, "
            f"{escape_markdown(waiver.owner)}: {escape_markdown(_shorten(waiver.reason))})"
        )
    return (
        f"- **{finding.severity.value}** {rule} ({escape_markdown(finding.tool)}): "
        f"{escape_markdown(_shorten(finding.message))} — " + "; ".join(details)
    )


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
