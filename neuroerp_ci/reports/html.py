"""``report.html``: one self-contained page a person reads a stage run in, and the trends page.

The first screen is the verdict and what decided it (``<section id="verdict"
data-verdict="FAIL">``); then what was tested, every outcome with its value, target, baseline
and reason, and a section per check with its charts (the metric over the stage's last runs
with its limit and baseline, the run's samples against the baseline, a load test over time)
and its findings, filterable by severity and text. Nothing outside the file is loaded: CSS,
script and charts (SVG from matplotlib, :mod:`.charts`, imported only when a page has a
chart: matplotlib alone takes a second or two to import) are inline, and the page's
Content-Security-Policy forbids any request. Every text from the report is escaped, so tool
output is shown, never interpreted.

Pure like every renderer: the earlier runs, load timelines and file links come in as a
:class:`~neuroerp_ci.reports.context.ReportContext`; no I/O, no clock.

Each chart is ``<figure class="chart" data-check=... data-metric=... data-status=...>``
(``data-kind``: ``trend``, ``distribution`` or ``timeline``), whose SVG marks its data series
``{chart id}-data-{n}`` and its limit line ``{chart id}-threshold``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from neuroerp_ci.model import (
    BaselineState,
    CheckResult,
    Finding,
    FindingSeverity,
    Metric,
    Outcome,
    OutcomeStatus,
    StageReport,
    summary_line,
)
from neuroerp_ci.reports.context import (
    ReportContext,
    RunSummary,
    TimelinePoint,
    TrendPoint,
)
from neuroerp_ci.reports.html_assets import CONTENT_SECURITY_POLICY, CSS, JS
from neuroerp_ci.reports.markdown import MAX_METRICS_PER_CHECK, change_text
from neuroerp_ci.support.formatting import MISSING, format_duration, format_value, plain_text

__all__ = ["ReportContext", "RunSummary", "TrendPoint", "render_html", "render_trends"]

MAX_BANNER_REASONS = 8  # the rest: "and N more", in the outcomes table below
MAX_BANNER_REASON_CHARS = 240
MAX_FINDING_ROWS = 500  # per check; report.sarif and report.json keep them all

# Failing first: what decided the verdict is what a reader looks for (as in report.md).
_ORDER = {
    OutcomeStatus.FAIL: 0,
    OutcomeStatus.WARN: 1,
    OutcomeStatus.INCONCLUSIVE: 2,
    OutcomeStatus.INFO: 3,
    OutcomeStatus.PASS: 4,
}
_SHORT = ' class="target"'  # a short target ("<= 300") is not broken across lines
_DECIDING = (OutcomeStatus.FAIL, OutcomeStatus.WARN, OutcomeStatus.INCONCLUSIVE)
# A numeric bound in an outcome's target: "<= 300", ">= 0.8", ">= 10 and <= 300".
_BOUND = re.compile(r"(<=|>=|<|>|≤|≥)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?!\S)")
_STARTED = re.compile(r"\d{4}-(\d\d-\d\d)[T ](\d\d:\d\d)")
_SLUG = re.compile(r"[^a-z0-9]+")
_TESTED_ORDER = (
    "version",
    "sha",
    "tree",
    "source",
    "checkout",
    "python",
    "python_version",
    "python_source",
)
_SEVERITY_FILTERS = (
    ("0", "all severities"),
    ("4", "critical"),
    ("3", "high and above"),
    ("2", "medium and above"),
)


def render_html(report: StageReport, context: ReportContext | None = None) -> str:
    """The full text of ``report.html``; ``context``: earlier runs, timelines, file links."""
    context = context or ReportContext()
    ids = _Ids()
    title = f"{report.verdict.value} · {report.stage} @ {report.version or '(no version)'}"
    body = [
        _banner(report),
        _nav(report.checks, ids),
        _tested(report),
        _outcomes(report, ids),
        _checks(report, context, ids),
        _notes(context.notes),
        _links(context.links),
    ]
    return _page(title, body)


def render_trends(
    stage: str,
    target: str,
    history: Mapping[tuple[str, str], Sequence[TrendPoint]],
    runs: Sequence[RunSummary],
    units: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """The trends page of one stage: its runs (as given, newest first) and one trend chart
    per (check, metric) of ``history`` (oldest first), the newest run ringed; ``units``:
    (check, metric) -> the metric's unit, for its axis and values."""
    units = units or {}
    ids = _Ids()
    head = (
        f'<section id="trends" data-stage="{_e(stage)}">'
        f"<h1>Trends · {_e(stage)}</h1>"
        f'<p class="facts">target <b>{_e(target)}</b> · {len(runs)} runs · '
        f"{len(history)} metrics</p></section>"
    )
    figures = []
    for (check, metric), points in sorted(history.items()):
        shown = [p for p in points if math.isfinite(p.value)]
        if not shown:
            continue
        status = (shown[-1].verdict or "info").lower()
        chart_id = ids.chart(check, metric, "trend")
        from neuroerp_ci.reports.charts import trend_chart  # matplotlib: only when drawn

        unit = units.get((check, metric), "")
        svg = trend_chart(
            chart_id,
            f"{check} · {metric}",
            unit,
            [(_when(p.started_at, p.run_id), p.value, p.verdict) for p in shown],
            current=len(shown) - 1,
        )
        caption = (
            f"{_e(check)} {_e(metric)} in the last {len(shown)} runs of {_e(stage)}, oldest "
            f"first; newest {_e(format_value(shown[-1].value, unit))} (run "
            f"{_e(shown[-1].run_id)}, ringed). Points are coloured by their run's verdict."
        )
        figures.append(_figure(chart_id, check, metric, status, "trend", svg, caption))
    charts_html = (
        f'<div class="charts">{"".join(figures)}</div>'
        if figures
        else "<p>No metric of this stage is recorded yet.</p>"
    )
    body = [
        head,
        _section("runs", "Runs", _runs_table(runs)),
        _section("metrics", "Metrics over the runs", charts_html),
    ]
    return _page(f"Trends · {stage} @ {target}", body)


# -- page -------------------------------------------------------------------------------------


def _page(title: str, body: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + f"\n</main>\n<script>{JS}</script>\n</body>\n</html>\n"
    )


def _section(section_id: str, title: str, content: str) -> str:
    return f'<section id="{section_id}">\n<h2>{_e(title)}</h2>\n{content}\n</section>'


def _e(text: object) -> str:
    """Text from a report, safe in HTML text and in a quoted attribute."""
    return escape(plain_text(str(text)), quote=True)


class _Ids:
    """Unique, readable element ids for checks and charts, in the order they are asked for."""

    def __init__(self) -> None:
        self._checks: dict[str, str] = {}
        self._taken: set[str] = set()
        self._charts = 0

    def check(self, check_id: str) -> str:
        if check_id not in self._checks:
            self._checks[check_id] = self._unique("check-" + _slug(check_id))
        return self._checks[check_id]

    def chart(self, *parts: str) -> str:
        self._charts += 1
        return self._unique(f"chart{self._charts}-" + "-".join(_slug(p) for p in parts))

    def _unique(self, wanted: str) -> str:
        found, n = wanted, 1
        while found in self._taken:
            n += 1
            found = f"{wanted}-{n}"
        self._taken.add(found)
        return found


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:40] or "x"


# -- the first screen ------------------------------------------------------------------------


def _banner(report: StageReport) -> str:
    verdict = report.verdict.value
    word = f'<span class="word s-{verdict.lower()}">{verdict}</span>'
    version = report.version or "(no version)"
    where = f'<span class="where">{_e(report.stage)} @ <b>{_e(version)}</b></span>'
    parts = [f"<h1>{word}{where}</h1>"]
    if report.recorded is False:
        why = report.record_error or "the history store does not hold it (yet)"
        parts.append(
            '<p class="notice"><b>NOT RECORDED</b> in the history: '
            f"{_e(why)}. This verdict does not count: no promotion and no baseline can use it.</p>"
        )
    summary = summary_line(report.summary)
    if summary:
        parts.append(f'<p class="summary">{_e(summary)}</p>')
    facts = [
        f"target <b>{_e(report.target)}</b>",
        f"run <code>{_e(report.run_id)}</code>",
        f"{_e(report.started_at)} → {_e(report.finished_at)}",
        _e(format_duration(report.duration_s)),
    ]
    parts.append(f'<p class="facts">{" · ".join(facts)}</p>')
    deciding = [o for o in _failing_first(report.outcomes) if o.status in _DECIDING]
    if deciding:
        items = [
            f'<li><span class="status s-{o.status.value}">{_e(_status_word(o))}</span> '
            f"<b>{_e(o.check)}</b> <code>{_e(o.condition)}</code>: "
            f"{_e(_shorten(o.reason, MAX_BANNER_REASON_CHARS))}</li>"
            for o in deciding[:MAX_BANNER_REASONS]
        ]
        left = len(deciding) - MAX_BANNER_REASONS
        if left > 0:
            items.append(f'<li><a href="#outcomes">and {left} more</a></li>')
        parts.append(f'<ul class="reasons">{"".join(items)}</ul>')
    elif report.outcomes:
        parts.append(f"<p>All {len(report.outcomes)} conditions met.</p>")
    else:
        parts.append("<p>No condition was evaluated.</p>")
    return f'<section id="verdict" data-verdict="{verdict}">\n' + "\n".join(parts) + "\n</section>"


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f'<p class="notice">{_e(note)}</p>' for note in notes)
    return f'<section id="notes">{items}</section>'


def _nav(checks: Sequence[CheckResult], ids: _Ids) -> str:
    links = [
        '<a href="#tested">What was tested</a>',
        '<a href="#outcomes">Outcomes</a>',
        '<a href="#checks">Checks</a>',
    ]
    links += [f'<a href="#{ids.check(c.check_id)}">{_e(c.check_id)}</a>' for c in checks]
    links.append('<a href="#files">Files</a>')
    return f"<nav>{' '.join(links)}</nav>"


def _tested(report: StageReport) -> str:
    tested = report.tested
    keys = [k for k in _TESTED_ORDER if k in tested]
    keys += sorted(k for k in tested if k not in _TESTED_ORDER)
    rows = [f"<dt>{_e(k.replace('_', ' '))}</dt><dd>{_e(tested[k])}</dd>" for k in keys]
    if report.recorded is None:
        history = "no history store"
    elif report.recorded:
        history = "recorded"
    else:
        history = "NOT recorded: " + (report.record_error or "not (yet) held by the store")
    rows.append(f"<dt>history</dt><dd>{_e(history)}</dd>")
    intro = "" if tested else "<p>The run did not record what it tested.</p>"
    return _section("tested", "What was tested", f'{intro}<dl class="facts">{"".join(rows)}</dl>')


# -- outcomes --------------------------------------------------------------------------------


def _outcomes(report: StageReport, ids: _Ids) -> str:
    if not report.outcomes:
        return _section("outcomes", "Outcomes", "<p>No condition was evaluated.</p>")
    header = ["Status", "Check", "Condition", "Severity", "Value", "Target", "Baseline", "Change"]
    ran = {result.check_id for result in report.checks}
    rows = []
    for outcome in _failing_first(report.outcomes):
        status = outcome.status.value
        cells = [
            f'<td class="status s-{status}">{_e(_status_word(outcome))}</td>',
            f"<td>{_check_link(outcome.check, ran, ids)}</td>",
            f"<td><code>{_e(outcome.condition)}</code></td>",
            f"<td>{_e(outcome.severity.value)}</td>",
            f'<td class="num">{_e(format_value(outcome.value))}</td>',
            f"<td{_SHORT if len(outcome.target) <= 16 else ''}>"
            f"{_e(outcome.target or MISSING)}</td>",
            f'<td class="num">{_e(format_value(outcome.baseline))}</td>',
            f'<td class="num">{_e(change_text(outcome.change_pct))}</td>',
            f'<td class="reason">{_e(_outcome_reason(outcome))}</td>',
        ]
        rows.append(f'<tr class="row-{status}">{"".join(cells)}</tr>')
    head = "".join(f"<th>{h}</th>" for h in [*header, "Reason"])
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return _section("outcomes", "Outcomes", table)


def _check_link(check: str, ran: set[str], ids: _Ids) -> str:
    """A check's name, linked to its section when it has one."""
    if check not in ran:
        return _e(check)
    return f'<a href="#{ids.check(check)}">{_e(check)}</a>'


def _outcome_reason(outcome: Outcome) -> str:
    """The reason, and what the statistics and a calibration add to it."""
    extra = []
    if outcome.baseline_runs:
        extra.append(f"baseline runs: {', '.join(outcome.baseline_runs)}")
    if outcome.calibration is not None:
        extra.append(f"calibration: {outcome.calibration.text()}")
    return "; ".join([outcome.reason, *extra]) if extra else outcome.reason


def _status_word(outcome: Outcome) -> str:
    """``FAIL``, ``PASS``, ..., and for INCONCLUSIVE what it counts as in the verdict."""
    word = outcome.status.value.upper()
    if outcome.status is OutcomeStatus.INCONCLUSIVE:
        return f"{word} (counts as {outcome.weight.value})"
    return word


def _failing_first(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """What counts as a failure first (an INCONCLUSIVE that counts as fail among the FAILs),
    then by status; stable, so the stage's order is kept within each."""
    return sorted(outcomes, key=lambda o: (_ORDER[o.weight], _ORDER[o.status]))


def _worst(outcomes: Sequence[Outcome]) -> str:
    return _failing_first(outcomes)[0].status.value if outcomes else "info"


# -- checks ----------------------------------------------------------------------------------


def _checks(report: StageReport, context: ReportContext, ids: _Ids) -> str:
    if not report.checks:
        return _section("checks", "Checks", "<p>No check ran.</p>")
    blocks = [_check(result, report, context, ids) for result in report.checks]
    return _section("checks", "Checks", "\n".join(blocks))


def _check(result: CheckResult, report: StageReport, context: ReportContext, ids: _Ids) -> str:
    outcomes = [o for o in report.outcomes if o.check == result.check_id]
    conditions = _worst(outcomes) if outcomes else None
    run = result.status.value
    head = f"<h3>{_e(result.check_id)} "
    head += f'<span class="status s-{run}">run {run.upper()}</span>'
    if conditions is not None:
        head += f' · <span class="status s-{conditions}">conditions {conditions.upper()}</span>'
    head += "</h3>"
    facts = [
        ("kind", result.kind),
        ("reason", result.reason or MISSING),
        ("duration", format_duration(result.duration_s)),
    ]
    if result.cached_from is not None:  # the run's result, judged again by today's gate
        facts.insert(0, ("reused", result.cache_note))
    if result.tool_versions:
        tools = ", ".join(f"{n} {v}" for n, v in sorted(result.tool_versions.items()))
        facts.append(("tools", tools))
    facts.append(
        (
            "findings",
            f"{len(result.findings)} counted · {len(result.waived)} waived · "
            f"{len(result.suppressed)} suppressed · {len(result.absent)} fixed since the baseline",
        )
    )
    if result.noise is not None:
        state = "busy" if result.noise.noisy else "quiet"
        facts.append(("machine", f"{state}: {result.noise.reason}"))
    if result.artifacts:
        raw = ", ".join(
            f"{name} ({PurePosixPath(path).name})"
            for name, path in sorted(result.artifacts.items())
        )
        facts.append(("raw outputs", raw))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    parts = [head, f'<dl class="facts">{rows}</dl>']
    if outcomes:
        items = "".join(
            f'<li><span class="status s-{o.status.value}">{_e(_status_word(o))}</span> '
            f"<code>{_e(o.condition)}</code>: {_e(o.reason)}</li>"
            for o in _failing_first(outcomes)
        )
        parts.append(f"<h4>Conditions</h4><ul>{items}</ul>")
    metrics = _metrics_table(result)
    if metrics:
        parts.append(metrics)
    figures = _check_charts(result, outcomes, context, ids)
    if figures:
        parts.append(f'<div class="charts">{"".join(figures)}</div>')
    findings = _findings(result)
    if findings:
        parts.append(findings)
    return (
        f'<section class="check" id="{ids.check(result.check_id)}" '
        f'data-check="{_e(result.check_id)}">\n' + "\n".join(parts) + "\n</section>"
    )


def _metrics_table(result: CheckResult) -> str:
    names = sorted(result.metrics)
    if not names:
        return ""
    rows = []
    for name in names[:MAX_METRICS_PER_CHECK]:
        metric = result.metrics[name]
        samples = str(len(metric.samples)) if metric.samples else ""
        rows.append(
            f"<tr><td><code>{_e(name)}</code></td>"
            f'<td class="num">{_e(format_value(metric.value, metric.unit))}</td>'
            f"<td>{_e(metric.direction.value)} is better</td>"
            f'<td class="num">{samples}</td></tr>'
        )
    if len(names) > MAX_METRICS_PER_CHECK:
        more = len(names) - MAX_METRICS_PER_CHECK
        rows.append(f'<tr><td colspan="4">... and {more} more (see report.json)</td></tr>')
    head = "<tr><th>Metric</th><th>Value</th><th>Direction</th><th>Samples</th></tr>"
    body = "".join(rows)
    return (
        f'<h4>Metrics</h4><table class="compact"><thead>{head}</thead><tbody>{body}</tbody></table>'
    )


# -- charts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limited:
    """A metric of a check and the outcomes that limit it, failing first."""

    name: str
    outcomes: tuple[Outcome, ...]

    @property
    def status(self) -> str:
        return self.outcomes[0].status.value

    @property
    def threshold(self) -> tuple[float, Outcome] | None:
        for outcome in self.outcomes:
            limit = threshold_of(outcome)
            if limit is not None:
                return limit, outcome
        return None

    @property
    def baseline(self) -> float | None:
        return next((o.baseline for o in self.outcomes if o.baseline is not None), None)


def threshold_of(outcome: Outcome) -> float | None:
    """The numeric limit in an outcome's target (``"<= 300"`` -> 300), None when it has
    none (``"<= baseline +10 %"``, a regression test); of two bounds, the breached one, else
    the one nearer the value."""
    bounds = [(op, float(number)) for op, number in _BOUND.findall(outcome.target)]
    bounds = [(op, limit) for op, limit in bounds if math.isfinite(limit)]
    if not bounds:
        return None
    value = outcome.value
    if value is None or not math.isfinite(value) or len(bounds) == 1:
        return bounds[0][1]
    for op, limit in bounds:
        if (op in ("<=", "<", "≤") and value > limit) or (op in (">=", ">", "≥") and value < limit):
            return limit
    return min(bounds, key=lambda bound: abs(bound[1] - value))[1]


def _limited_metrics(result: CheckResult, outcomes: Sequence[Outcome]) -> list[_Limited]:
    """The metrics an outcome limits, in the order the outcomes name them."""
    by_name: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        name = outcome.metric or _metric_in(outcome.condition, result.metrics)
        if name is not None:
            by_name.setdefault(name, []).append(outcome)
    return [_Limited(name, tuple(_failing_first(found))) for name, found in by_name.items()]


def _metric_in(condition: str, metrics: Mapping[str, Metric]) -> str | None:
    """The metric a condition's text starts with (``p95_ms <= 300``), when the check has it."""
    first = condition.split(" ", 1)[0]
    return first if first in metrics else None


def _check_charts(
    result: CheckResult, outcomes: Sequence[Outcome], context: ReportContext, ids: _Ids
) -> list[str]:
    figures = []
    for limited in _limited_metrics(result, outcomes):
        metric = result.metrics.get(limited.name)
        history = context.history.get((result.check_id, limited.name), ())
        trend = _trend_figure(result.check_id, limited, metric, history, ids)
        if trend:
            figures.append(trend)
        if metric is not None and len([s for s in metric.samples if math.isfinite(s)]) >= 2:
            figures.append(_distribution_figure(result.check_id, limited, metric, ids))
    timeline = context.timelines.get(result.check_id, ())
    if timeline:
        figures.append(_timeline_figure(result.check_id, _worst(outcomes), timeline, ids))
    return figures


def _trend_figure(
    check: str,
    limited: _Limited,
    metric: Metric | None,
    history: Sequence[TrendPoint],
    ids: _Ids,
) -> str:
    unit = metric.unit if metric is not None else ""
    points: list[tuple[str, float, str | None]] = [
        (_when(p.started_at, p.run_id), p.value, p.verdict)
        for p in history
        if math.isfinite(p.value)
    ]
    value = metric.value if metric is not None else limited.outcomes[0].value
    current = None
    if value is not None and math.isfinite(value):
        current = len(points)
        points.append(("this run", value, limited.status))
    if not points:
        return ""
    chart_id = ids.chart(check, limited.name, "trend")
    threshold = limited.threshold
    from neuroerp_ci.reports.charts import trend_chart  # matplotlib: only when drawn

    svg = trend_chart(
        chart_id,
        f"{check} · {limited.name}",
        unit,
        points,
        threshold=None if threshold is None else threshold[0],
        baseline=limited.baseline,
        current=current,
    )
    runs = len(points) - (current is not None)
    shown = MISSING if value is None else format_value(value, unit)
    caption = [
        f"<b>{_e(limited.name)}</b> of {_e(check)} in this run ({_e(shown)}, ringed)"
        + (f" and the stage's last {runs} runs, oldest first" if runs else ", no earlier run")
        + "; points coloured by status."
    ]
    caption.append(_limits_caption(limited, threshold, unit))
    return _figure(chart_id, check, limited.name, limited.status, "trend", svg, " ".join(caption))


def _distribution_figure(check: str, limited: _Limited, metric: Metric, ids: _Ids) -> str:
    chart_id = ids.chart(check, limited.name, "distribution")
    threshold = limited.threshold
    from neuroerp_ci.reports.charts import distribution_chart  # matplotlib: only when drawn

    svg = distribution_chart(
        chart_id,
        f"{check} · {limited.name}: distribution of the samples",
        metric.unit,
        metric.samples,
        (),
        threshold=None if threshold is None else threshold[0],
        baseline=limited.baseline,
    )
    caption = (
        f"Cumulative distribution of this run's {len(metric.samples)} samples of "
        f"<b>{_e(limited.name)}</b> (share of samples at or below each value). "
        "The baseline runs' samples are not part of the report; the baseline value is a "
        "dotted line. " + _limits_caption(limited, threshold, metric.unit)
    )
    return _figure(chart_id, check, limited.name, limited.status, "distribution", svg, caption)


def _timeline_figure(check: str, status: str, timeline: Sequence[TimelinePoint], ids: _Ids) -> str:
    chart_id = ids.chart(check, "timeline")
    from neuroerp_ci.reports.charts import timeline_chart  # matplotlib: only when drawn

    svg = timeline_chart(chart_id, f"{check} · load over time", timeline)
    duration = max(p[0] for p in timeline) - min(p[0] for p in timeline)
    caption = (
        f"The load test of {_e(check)} second by second over {_e(format_duration(duration))}: "
        "requests and failures per second (left axis), p95 latency in ms (right axis, dashed)."
    )
    return _figure(chart_id, check, None, status, "timeline", svg, caption)


def _limits_caption(limited: _Limited, threshold: tuple[float, Outcome] | None, unit: str) -> str:
    parts = []
    if threshold is not None:
        limit, outcome = threshold
        parts.append(
            f"Limit {_e(format_value(limit, unit))} (dashed red, condition "
            f"<code>{_e(outcome.condition)}</code>)"
        )
    else:
        parts.append("No fixed limit to draw")
    baseline = limited.baseline
    parts.append(
        "no baseline"
        if baseline is None
        else f"baseline {_e(format_value(baseline, unit))} (dotted grey)"
    )
    others = [o.condition for o in limited.outcomes if threshold is None or o is not threshold[1]]
    text = "; ".join(parts) + "."
    if others:
        text += " Also limited by " + ", ".join(f"<code>{_e(c)}</code>" for c in others) + "."
    return text


def _figure(
    chart_id: str,
    check: str,
    metric: str | None,
    status: str,
    kind: str,
    svg: str,
    caption: str,
) -> str:
    """A chart with its caption; ``caption`` is HTML already escaped."""
    metric_attribute = "" if metric is None else f' data-metric="{_e(metric)}"'
    return (
        f'<figure class="chart" id="{chart_id}-figure" data-check="{_e(check)}"'
        f'{metric_attribute} data-status="{_e(status)}" data-kind="{kind}">\n'
        f"{svg}<figcaption>{caption}</figcaption>\n</figure>"
    )


def _when(started_at: str, run_id: str) -> str:
    """A run's x-axis label: ``11-28 10:45`` from its start, else its id."""
    found = _STARTED.match(started_at)
    return f"{found.group(1)} {found.group(2)}" if found else run_id[:16]


# -- findings --------------------------------------------------------------------------------


def _findings(result: CheckResult) -> str:
    groups: list[tuple[str, Sequence[Finding]]] = [
        ("counted", result.findings),
        ("waived", result.waived),
        ("suppressed", result.suppressed),
        ("fixed", result.absent),
    ]
    rows: list[str] = []
    total = sum(len(found) for _, found in groups)
    if not total:
        return ""
    for state, found in groups:
        for finding in sorted(found, key=lambda f: -f.severity.rank):  # stable within a rank
            if len(rows) < MAX_FINDING_ROWS:
                rows.append(_finding_row(finding, state))
    if total > MAX_FINDING_ROWS:
        rows.append(
            f'<tr><td colspan="7">... and {total - MAX_FINDING_ROWS} more: report.sarif and '
            "report.json hold them all</td></tr>"
        )
    options = "".join(f'<option value="{v}">{label}</option>' for v, label in _SEVERITY_FILTERS)
    filters = (
        '<div class="filters" hidden>'
        f"<label>Severity <select>{options}</select></label>"
        '<label>Text <input type="search" placeholder="rule, location, message"></label>'
        '<span class="count muted"></span></div>'
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Severity", "Rule", "Location", "Message", "Baseline", "Waiver", "Counted")
    )
    title = (
        f"<h4>Findings: {len(result.findings)} counted, {len(result.waived)} waived, "
        f"{len(result.suppressed)} suppressed, {len(result.absent)} fixed</h4>"
    )
    return (
        f'<div class="findings" data-check="{_e(result.check_id)}">{title}{filters}'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _finding_row(finding: Finding, state: str) -> str:
    severity = finding.severity
    rule = finding.rule + (f" ({finding.tool})" if finding.tool else "")
    message = finding.message
    details = []
    if finding.fix_versions:
        details.append("fix: " + ", ".join(finding.fix_versions))
    if finding.aliases:
        details.append("aka " + ", ".join(finding.aliases))
    if finding.confidence:
        details.append(f"confidence {finding.confidence}")
    if details:
        message += " (" + "; ".join(details) + ")"
    baseline = _baseline_word(finding.baseline_state)
    waiver = MISSING
    if finding.waiver is not None:
        w = finding.waiver
        until = "expired" if w.expired else "until"
        waiver = f"{w.id} ({until} {w.expires}, {w.owner}: {w.reason})"
    counted = {"counted": "yes", "waived": "no: waived", "suppressed": "no: suppressed"}.get(
        state, "no: fixed since the baseline"
    )
    if state == "counted" and finding.waiver is not None and finding.waiver.expired:
        counted = "yes: waiver expired"
    cells = [
        f'<td class="status s-{_severity_class(severity)}">{_e(severity.value.upper())}</td>',
        f"<td><code>{_e(rule)}</code></td>",
        f"<td><code>{_e(finding.location)}</code></td>",
        f'<td class="message">{_e(message)}</td>',
        f"<td>{_e(baseline)}</td>",
        f"<td>{_e(waiver)}</td>",
        f"<td>{_e(counted)}</td>",
    ]
    return (
        f'<tr data-severity="{severity.value}" data-rank="{severity.rank}" '
        f'data-state="{state}">{"".join(cells)}</tr>'
    )


def _severity_class(severity: FindingSeverity) -> str:
    if severity.rank >= 3:
        return "fail"
    return "warn" if severity is FindingSeverity.MEDIUM else "info"


def _baseline_word(state: BaselineState | None) -> str:
    if state is None:
        return "no baseline run"
    return {
        BaselineState.NEW: "new",
        BaselineState.UNCHANGED: "unchanged",
        BaselineState.UPDATED: "moved or changed",
        BaselineState.ABSENT: "fixed",
    }[state]


# -- links and runs --------------------------------------------------------------------------


def _links(links: Mapping[str, str]) -> str:
    if not links:
        return _section("files", "Files", "<p>No other file of this run is linked.</p>")
    items = []
    for label, target in sorted(links.items()):
        href = _relative_href(target)
        if href is None:  # not a file beside this one: named, not linked
            items.append(f"<li>{_e(label)}: <code>{_e(target)}</code></li>")
        else:
            items.append(f'<li><a href="{href}">{_e(label)}</a> <code>{_e(target)}</code></li>')
    return _section("files", "Files", f"<ul>{''.join(items)}</ul>")


def _relative_href(target: str) -> str | None:
    """``target`` as an escaped relative href, None for a URL or an absolute path."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith(("/", "\\")) or not target.strip():
        return None
    return escape(quote(plain_text(target), safe="/#.-_~"), quote=True)


def _runs_table(runs: Sequence[RunSummary]) -> str:
    if not runs:
        return "<p>No run of this stage is recorded.</p>"
    rows = []
    for run in runs:
        verdict = run.verdict or MISSING
        status = (run.verdict or "info").lower()
        rows.append(
            f"<tr><td><code>{_e(run.run_id)}</code></td><td>{_e(run.started_at)}</td>"
            f"<td>{_e(run.version)}</td>"
            f'<td class="status s-{_e(status)}">{_e(verdict)}</td></tr>'
        )
    head = "<tr><th>Run</th><th>Started</th><th>Version</th><th>Verdict</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _shorten(text: str, most: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"
