"""The ``a11y`` kind: accessibility of the served pages in a real browser, and what a user
waits for while they load.

Example (pipeline file)::

    [[checks]]
    id = "a11y"
    kind = "a11y"
    settings = { pages = [
        { name = "home", path = "/" },
        { name = "login", path = "/login", wait_for = "form" },
    ] }

Each page is loaded in headless Chromium (Debian's ``chromium``, see
:mod:`neuroerp_ci.checks._browser`: no browser download, every request held to
``allowed_hosts``) and checked with axe-core, the copy bundled in the
``axe-playwright-python`` wheel, run with the WCAG 2.0/2.1 A and AA rules
(``tags``; ``include_best_practices = true`` adds axe's best practices). Every element a rule
flags is a finding: tool ``axe-core``, rule = the axe rule (``image-alt``, ``label``),
severity by impact (critical -> critical, serious -> high, moderate -> medium, minor -> low),
location ``"<page>: <selector>"``, the rule's help URL. Findings are a code audit's: waivers
apply (a waiver's ``path`` glob matches the location), and so do ``new = true`` limits.

**Timings** (``timings = true``, the default): ``warmup`` + ``samples`` cold loads per page,
round-robin over the pages, each in a fresh browser context; axe runs on each page's first
load, after its timings were read. Per page ``<page>.ttfb_ms``, ``.fcp_ms``, ``.lcp_ms``,
``.cls``, ``.tbt_ms``, ``.load_ms`` (medians of the counted loads, samples kept); overall, the
same names without a page: the worst page's median, with that page's samples. Every request
passes through a Playwright route, which adds a little to each; compare timings of this kind
with each other, not with another tool's.

Fails closed (status ``error``): no Chromium (the reason gives ``apt-get install -y
chromium``) or one that does not start; a page that does not load (a navigation error, a
timeout, HTTP 400 or more for the document, ``wait_for`` never visible), naming the page and
the status; a page whose body shows nothing (no text, no content element); axe checked no
element; axe's results unreadable. A request to a host outside ``allowed_hosts`` is aborted,
counted (``blocked_requests``, a default warning) and named in the reason.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from neuroerp_ci.checks._browser import (
    TIMING_UNITS,
    BrowserSession,
    OpenPage,
    PageTimings,
    chromium,
    find_chromium,
    listed,
    outside_event_loop,
)
from neuroerp_ci.checks._percentiles import median
from neuroerp_ci.checks.interface import (
    Check,
    CheckContext,
    CheckKind,
    KindSettings,
    typed_settings,
)
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.errors import TargetError, ToolError
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Direction,
    Finding,
    FindingSeverity,
    Metric,
    fingerprint_of,
)
from neuroerp_ci.support.hosts import ensure_allowed, http_url_problem, resolve_url

TOOL = "axe-core"
REPORT_FILE = "a11y.json"
AXE_PACKAGE = "axe_playwright_python"
AXE_SCRIPT = "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
BEST_PRACTICE_TAG = "best-practice"
IMPACTS = ("critical", "serious", "moderate", "minor")
IMPACT_SEVERITY = {
    "critical": FindingSeverity.CRITICAL,
    "serious": FindingSeverity.HIGH,
    "moderate": FindingSeverity.MEDIUM,
    "minor": FindingSeverity.LOW,
}
TIMINGS = tuple(TIMING_UNITS)
# axe's failure summaries start with which of the checks below must pass: no news.
_SUMMARY_HEADERS = ("fix any of the following", "fix all of the following")

Impact = Literal["critical", "serious", "moderate", "minor"]


class Page(KindSettings):
    """One page to check: a ``path`` under the target's base URL or an absolute ``url``."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)  # in findings and metric names
    path: str | None = None  # under the target's base URL, e.g. "/login"
    url: str | None = None  # absolute; its host must be in allowed_hosts
    # a CSS selector that must be visible before the page is timed and checked (a page
    # that renders on the client: its form, its main view)
    wait_for: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_location(self) -> Page:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of 'path' or 'url'")
        problem = http_url_problem(self.url) if self.url is not None else None
        if problem:
            raise ValueError(f"'url' must be an absolute http:// or https:// URL: {problem}")
        return self


class A11ySettings(KindSettings):
    """Settings of an ``a11y`` check."""

    pages: list[Page] = Field(min_length=1)  # loaded in this order, round-robin
    # axe rule tags to run (runOnly): WCAG 2.0 and 2.1, levels A and AA
    tags: list[str] = Field(default_factory=lambda: list(WCAG_TAGS), min_length=1)
    include_best_practices: bool = False  # also axe's "best-practice" rules
    # default conditions: findings of this impact or worse block (severity by the check's
    # priority: a high-priority check FAILs)
    fail_on: Impact = "serious"
    # default conditions: findings of this impact or worse warn; "none": none do
    warn_on: Impact | Literal["none"] = "moderate"
    timings: bool = True  # false: one load per page, accessibility only
    samples: int = Field(default=3, ge=1, le=100)  # counted loads per page (timings)
    warmup: int = Field(default=1, ge=0, le=10)  # loads per page not counted (timings)
    page_timeout: float = Field(default=30.0, gt=0)  # seconds for one page to load (and wait_for)
    # ms the page must be quiet (no new paint, layout shift or long task) after its load
    # event before its timings are read; at most ten times this is waited
    settle_ms: int = Field(default=250, ge=0, le=10_000)
    executable: str | None = None  # the Chromium to launch instead of the one found

    @field_validator("pages")
    @classmethod
    def _unique_names(cls, value: list[Page]) -> list[Page]:
        counts = Counter(p.name for p in value)
        dups = sorted(n for n, count in counts.items() if count > 1)
        if dups:
            raise ValueError(f"duplicate page names {dups}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        if any(not tag.strip() for tag in value):
            raise ValueError("tags must not be blank")
        return value

    @model_validator(mode="after")
    def _warn_below_fail(self) -> A11ySettings:
        if self.warn_on != "none" and IMPACTS.index(self.warn_on) <= IMPACTS.index(self.fail_on):
            raise ValueError(
                f"warn_on {self.warn_on!r} must be less severe than fail_on {self.fail_on!r}"
                ' (or "none")'
            )
        return self

    def rule_tags(self) -> list[str]:
        tags = list(self.tags)
        if self.include_best_practices and BEST_PRACTICE_TAG not in tags:
            tags.append(BEST_PRACTICE_TAG)
        return tags


@dataclass(frozen=True)
class ResolvedPage:
    page: Page
    url: str


@dataclass(frozen=True)
class AxeOutcome:
    """What axe found on one page."""

    page: str
    findings: tuple[Finding, ...]
    by_impact: Mapping[str, int]  # violating elements per impact ("unknown" for none given)
    elements_checked: int  # nodes of passing and violating rules
    incomplete: int  # elements axe could not decide (needs review)
    rules_run: int
    violations: tuple[dict[str, Any], ...] = ()  # axe's own violation records, for the report


@dataclass
class PageRun:
    """One page's loads: counted timings, and axe's outcome."""

    name: str
    url: str
    status: int | None = None
    timings: list[PageTimings] = field(default_factory=list)
    axe: AxeOutcome | None = None


@dataclass
class A11yRun:
    pages: dict[str, PageRun] = field(default_factory=dict)
    chromium: str = ""
    axe: str = ""
    blocked: list[str] = field(default_factory=list)
    loads: int = 0


def axe_script() -> str:
    """axe-core's source from the axe-playwright-python wheel; ToolError when missing."""
    try:
        return (importlib.resources.files(AXE_PACKAGE) / AXE_SCRIPT).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ToolError(
            f"axe-core not found ({AXE_PACKAGE}/{AXE_SCRIPT}): pip install axe-playwright-python"
        ) from exc


def axe_options(settings: A11ySettings) -> dict[str, Any]:
    return {
        "runOnly": {"type": "tag", "values": settings.rule_tags()},
        "resultTypes": ["violations", "passes", "incomplete"],
    }


def severity_of(impact: Any) -> FindingSeverity:
    """The finding severity of an axe impact; an unknown one counts as high (UNKNOWN)."""
    return IMPACT_SEVERITY.get(str(impact), FindingSeverity.UNKNOWN)


def selector_of(target: Any) -> str:
    """axe's ``target`` as one selector: frames joined with `` >> ``, shadow roots with
    `` >>> ``."""
    if isinstance(target, str):
        return target
    parts = [p if isinstance(p, str) else " >>> ".join(map(str, p)) for p in target]
    return " >> ".join(parts)


def summary_line(summary: Any) -> str:
    """The first line of a node's ``failureSummary`` that says what is wrong."""
    for line in str(summary or "").splitlines():
        text = line.strip()
        if text and not text.lower().rstrip(":").startswith(_SUMMARY_HEADERS):
            return text
    return ""


def parse_axe_results(page: str, data: Any) -> AxeOutcome:
    """Findings and counts of one page's ``axe.run`` results; ToolError for another shape."""
    try:
        findings: list[Finding] = []
        by_impact: Counter[str] = Counter()
        for violation in data["violations"]:
            rule = str(violation["id"])
            help_text = str(violation.get("help") or violation.get("description") or rule)
            url = violation.get("helpUrl")
            for node in violation["nodes"]:
                impact = node.get("impact") or violation.get("impact")
                selector = selector_of(node["target"])
                detail = summary_line(node.get("failureSummary"))
                by_impact[str(impact) if impact in IMPACT_SEVERITY else "unknown"] += 1
                findings.append(
                    Finding(
                        tool=TOOL,
                        rule=rule,
                        severity=severity_of(impact),
                        message=f"{help_text} ({detail})" if detail else help_text,
                        location=f"{page}: {selector}",
                        fingerprint=fingerprint_of(TOOL, rule, page, selector),
                        help_url=url if isinstance(url, str) else "",
                    )
                )
        checked = sum(len(r["nodes"]) for key in ("passes", "violations") for r in data[key])
        incomplete = sum(len(r["nodes"]) for r in data["incomplete"])
        rules = len({r["id"] for key in ("passes", "violations", "incomplete") for r in data[key]})
        kept = tuple(
            {
                "id": v["id"], "impact": v.get("impact"), "help": v.get("help"),
                "helpUrl": v.get("helpUrl"),
                "nodes": [
                    {"target": n["target"], "failureSummary": n.get("failureSummary")}
                    for n in v["nodes"]
                ],
            }
            for v in data["violations"]
        )  # fmt: skip
    except (KeyError, TypeError, AttributeError) as exc:
        raise ToolError(
            f"axe-core results for page {page!r} have an unexpected shape: {exc!r}"
        ) from exc
    return AxeOutcome(page, tuple(findings), dict(by_impact), checked, incomplete, rules, kept)


def run_axe(opened: OpenPage, source: str, options: Mapping[str, Any], timeout_s: float) -> Any:
    """Inject axe-core into the page and run it with ``options`` (bounded by ``timeout_s``)."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        opened.page.evaluate(source)
        if not opened.page.evaluate("() => typeof window.axe === 'object'"):
            raise ToolError(
                f"axe-core did not load into page {opened.name!r} (a page-defined AMD loader?)"
            )
        return opened.page.evaluate(
            """async ([options, ms]) => Promise.race([
                axe.run(document, options).then((r) => ({ version: axe.version, results: r })),
                new Promise((_, fail) => setTimeout(() => fail(new Error('axe timed out')), ms)),
            ])""",
            [dict(options), timeout_s * 1000],
        )
    except PlaywrightError as exc:
        raise ToolError(f"axe-core failed on page {opened.name!r}: {exc}".splitlines()[0]) from exc


def resolve_pages(
    pages: Sequence[Page], base_url: str | None, allowed_hosts: Sequence[str]
) -> list[ResolvedPage]:
    """Every page's URL, each host checked against ``allowed_hosts``, before any browser."""
    resolved = []
    for page in pages:
        url = page.url or resolve_url(page.path or "", base_url, f"page {page.name!r} path")
        ensure_allowed(url, allowed_hosts, f"page {page.name!r}")
        resolved.append(ResolvedPage(page, url))
    return resolved


@dataclass(frozen=True)
class _Deadline:
    at: float

    def remaining(self, cap: float) -> float:
        return min(cap, self.at - time.perf_counter())


def audit_pages(
    session: BrowserSession,
    pages: Sequence[ResolvedPage],
    settings: A11ySettings,
    source: str,
    deadline: _Deadline,
    run: A11yRun,
) -> None:
    """Load every page (round-robin), time the counted loads and run axe on each first load.

    Fills ``run`` as it goes, so a failure keeps what was measured before it."""
    rounds = settings.warmup + settings.samples if settings.timings else 1
    options = axe_options(settings)
    total = rounds * len(pages)
    for round_no in range(rounds):
        counted = settings.timings and round_no >= settings.warmup
        for target in pages:
            timeout = deadline.remaining(settings.page_timeout)
            if timeout <= 0:
                raise ToolError(
                    f"a11y check exceeded its timeout after {run.loads} of {total} page loads"
                )
            name = target.page.name
            record = run.pages.setdefault(name, PageRun(name, target.url))
            with session.open(
                target.url, name, timeout_s=timeout, wait_for=target.page.wait_for
            ) as opened:
                record.status = opened.status
                if counted:  # read before axe runs, so axe never weighs on a timing
                    record.timings.append(opened.timings(settings.settle_ms))
                if round_no == 0:
                    record.axe, run.axe = _check_page(opened, source, options, deadline, settings)
            run.loads += 1
            run.blocked = list(session.blocked)


def _check_page(
    opened: OpenPage,
    source: str,
    options: Mapping[str, Any],
    deadline: _Deadline,
    settings: A11ySettings,
) -> tuple[AxeOutcome, str]:
    """axe's outcome on an open page and axe's version as the page reported it."""
    if not opened.has_content():
        raise TargetError(
            f"page {opened.name!r} ({opened.url}) rendered nothing: its body has no text and no"
            " content element"
        )
    answer = run_axe(opened, source, options, max(deadline.remaining(settings.page_timeout), 1))
    try:
        version, results = str(answer["version"]), answer["results"]
    except (KeyError, TypeError) as exc:
        raise ToolError(f"axe-core returned no results for page {opened.name!r}") from exc
    outcome = parse_axe_results(opened.name, results)
    if outcome.elements_checked == 0:
        raise ToolError(
            f"axe-core checked no element on page {opened.name!r} ({opened.url}): nothing was"
            f" audited (rules: {', '.join(settings.rule_tags())})"
        )
    return outcome, version


def timing_metrics(pages: Sequence[PageRun]) -> list[Metric]:
    """Per page medians (``<page>.lcp_ms``) and, per timing, the worst page's median."""
    metrics: list[Metric] = []
    worst: dict[str, Metric] = {}
    for record in pages:
        for name in TIMINGS:
            samples = tuple(v for t in record.timings if (v := t.values().get(name)) is not None)
            if not samples:
                continue
            metric = Metric(
                f"{record.name}.{name}",
                median(samples),
                TIMING_UNITS[name],
                Direction.LOWER,
                samples,
            )
            metrics.append(metric)
            if name not in worst or metric.value > worst[name].value:
                worst[name] = metric
    metrics.extend(
        Metric(name, worst[name].value, worst[name].unit, Direction.LOWER, worst[name].samples)
        for name in TIMINGS
        if name in worst
    )
    return metrics


def audit_metrics(pages: Sequence[PageRun], blocked: int) -> list[Metric]:
    """Violations per impact and per page, what axe checked, blocked requests."""
    outcomes = [p.axe for p in pages if p.axe is not None]
    by_impact: Counter[str] = Counter()
    for outcome in outcomes:
        by_impact.update(outcome.by_impact)
    metrics = [Metric(f"{o.page}.violations", float(len(o.findings)), "count") for o in outcomes]
    metrics.append(Metric("violations", float(sum(len(o.findings) for o in outcomes)), "count"))
    metrics.extend(
        Metric(f"violations_{impact}", float(by_impact[impact]), "count") for impact in IMPACTS
    )
    metrics += [
        Metric("elements_checked", float(sum(o.elements_checked for o in outcomes)), "count",
               Direction.HIGHER),
        Metric("incomplete", float(sum(o.incomplete for o in outcomes)), "count"),
        Metric("pages", float(len(outcomes)), "count", Direction.HIGHER),
        Metric("blocked_requests", float(blocked), "count"),
    ]  # fmt: skip
    return metrics


def a11y_reason(run: A11yRun, findings: Sequence[Finding], metrics: Mapping[str, Metric]) -> str:
    """``3 violations (2 critical, 1 serious) on 2 pages: login: label ×1, ...; 57 element
    checks; LCP 420 ms, TBT 0 ms (worst page); 1 request blocked: ...``."""
    pages = len([p for p in run.pages.values() if p.axe is not None])
    if findings:
        counts = ", ".join(
            f"{int(metrics[f'violations_{i}'].value)} {i}"
            for i in IMPACTS
            if metrics[f"violations_{i}"].value
        )
        rules: Counter[tuple[str, str]] = Counter(
            (f.location.split(": ", 1)[0], f.rule) for f in findings
        )
        named = listed([f"{page}: {rule} ×{n}" for (page, rule), n in rules.most_common()], 4)
        text = (
            f"{len(findings)} violations ({counts or 'impact unknown'}) on {pages} pages: {named}"
        )
    else:
        text = f"no violations on {pages} pages"
    text += f"; {int(metrics['elements_checked'].value)} element checks"
    shown = [
        f"{label} {metrics[name].value:.0f} ms"
        for name, label in (("lcp_ms", "LCP"), ("tbt_ms", "TBT"), ("load_ms", "load"))
        if name in metrics
    ]
    if "cls" in metrics:
        shown.append(f"CLS {metrics['cls'].value:.3f}")
    if shown:
        text += f"; {', '.join(shown)} (worst page)"
    if run.blocked:
        many = len(run.blocked)
        text += f"; {many} request{'s' if many > 1 else ''} blocked (not in allowed_hosts):"
        text += f" {listed(sorted(set(run.blocked)), 2)}"
    return text


class A11yCheck(CheckKind):
    """``kind = "a11y"``: axe-core in headless Chromium, findings per element, page timings."""

    name: ClassVar[str] = "a11y"
    settings_model: ClassVar[type[KindSettings]] = A11ySettings
    exclusive: ClassVar[bool] = True  # it times page loads
    needs_target: ClassVar[bool] = True

    def metric_names(self, settings: KindSettings) -> MetricNames:
        own = settings if isinstance(settings, A11ySettings) else None
        pages = frozenset(p.name for p in own.pages) if own else frozenset()
        timings = own is None or own.timings
        fixed = {"violations", "elements_checked", "incomplete", "pages", "blocked_requests"}
        fixed |= {f"violations_{i}" for i in IMPACTS}
        needs = {} if timings else dict.fromkeys(TIMINGS, "settings.timings = true")
        return MetricNames(
            fixed=frozenset(fixed | (set(TIMINGS) if timings else set())),
            per_item=frozenset({"violations", *(TIMINGS if timings else ())}),
            items=pages,
            item="page",
            findings=True,
            audit=True,
            needs=needs,
        )

    def default_conditions(self, settings: KindSettings) -> tuple[dict[str, Any], ...]:
        own = settings if isinstance(settings, A11ySettings) else None
        fail_on = own.fail_on if own else "serious"
        warn_on = own.warn_on if own else "moderate"
        # Findings are counted from a severity up: the warning also lists the blocking ones.
        conditions: list[dict[str, Any]] = [{"findings": IMPACT_SEVERITY[fail_on].value, "max": 0}]
        if warn_on != "none":
            severity = IMPACT_SEVERITY[warn_on].value
            conditions.append({"findings": severity, "max": 0, "severity": "warning"})
        conditions.append({"metric": "blocked_requests", "max": 0, "severity": "warning"})
        return tuple(conditions)

    def measure(self, check: Check, ctx: CheckContext) -> CheckResult:
        settings = typed_settings(check, A11ySettings)
        pages = resolve_pages(settings.pages, ctx.base_url, ctx.allowed_hosts)
        executable = find_chromium(settings.executable, ctx.env, ctx.project_dir)
        source = axe_script()
        deadline = _Deadline(time.perf_counter() + check.timeout)
        report = ctx.work_dir / REPORT_FILE
        run = A11yRun()

        def work() -> None:
            with chromium(executable, ctx.allowed_hosts, timeout_s=check.timeout) as session:
                run.chromium = session.version
                audit_pages(session, pages, settings, source, deadline, run)

        try:
            outside_event_loop(work)
        finally:
            # Kept even when a page fails: what loaded, what was blocked, what axe said.
            _write_report(report, settings, executable, run)
        records = list(run.pages.values())
        result = CheckResult(check.id, check.kind, CheckStatus.OK)
        result.findings = [f for p in records if p.axe is not None for f in p.axe.findings]
        for metric in [*audit_metrics(records, len(run.blocked)), *timing_metrics(records)]:
            result.add_metric(metric)
        result.artifacts["a11y"] = str(report)
        result.tool_versions["chromium"] = run.chromium
        result.tool_versions[TOOL] = run.axe or "unknown"
        result.tool_versions["playwright"] = importlib.metadata.version("playwright")
        result.reason = a11y_reason(run, result.findings, result.metrics)
        return result


def _write_report(path: Path, settings: A11ySettings, executable: str, run: A11yRun) -> None:
    data = {
        "chromium": {"executable": executable, "version": run.chromium},
        "axe_options": axe_options(settings),
        "loads": run.loads,
        "blocked_requests": run.blocked,
        "pages": {
            name: {
                "url": record.url,
                "status": record.status,
                "timings": [asdict(t) for t in record.timings],
                "elements_checked": record.axe.elements_checked if record.axe else None,
                "incomplete": record.axe.incomplete if record.axe else None,
                "violations": list(record.axe.violations) if record.axe else [],
            }
            for name, record in run.pages.items()
        },
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
