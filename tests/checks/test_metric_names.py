"""Every kind declares the metric names it can produce and its default conditions.

The declared names must cover what each kind's own code really produces (otherwise a good
condition would be refused at load), and every default condition must name one of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.checks import KINDS, KindSettings
from neuroerp_ci.checks._junit import parse_junit
from neuroerp_ci.checks._locust_stats import parse_run_record, parse_stats
from neuroerp_ci.checks.bandit import parse_bandit_report
from neuroerp_ci.checks.bandit import report_metrics as bandit_metrics
from neuroerp_ci.checks.database import StatementRun, statement_metrics
from neuroerp_ci.checks.detect_secrets import (
    FileList,
    HistoryScan,
    ScanOutput,
    Triage,
    scan_metrics,
)
from neuroerp_ci.checks.frontend import Chunk, PageLoad, page_metrics, size_metrics
from neuroerp_ci.checks.http import ProbeRun, Sample, probe_metrics
from neuroerp_ci.checks.licenses import report_metrics as licence_metrics
from neuroerp_ci.checks.load import LoadSettings, interpret
from neuroerp_ci.checks.metric_names import MetricNames
from neuroerp_ci.checks.network import Timing, network_metrics
from neuroerp_ci.checks.pip_audit import parse_report
from neuroerp_ci.checks.pip_audit import report_metrics as audit_metrics
from neuroerp_ci.checks.pytest import summary_metrics
from neuroerp_ci.config import ConditionSpec
from neuroerp_ci.support.tooling import ToolRun

# One typical check per kind; a new kind must add one here (the first test says so).
SAMPLES: dict[str, dict[str, Any]] = {
    "pytest": {"cov": ["app"]},
    "bandit": {},
    "pip-audit": {},
    "http": {"endpoints": [{"name": "index", "path": "/"}, {"name": "api", "path": "/api"}]},
    "command": {"argv": ["smoke"], "metrics_json": True},
    "load": {"duration_s": 5},
    "database": {"url": "sqlite:///x.db", "statements": [{"name": "one", "sql": "SELECT 1"}]},
    "network": {"hosts": [{"name": "api", "url": "/health"}]},
    "frontend": {},
    "secrets": {"history": "HEAD~3..HEAD"},
    "licenses": {"deny": ["GPL-3.0-only"]},
    "a11y": {"pages": [{"name": "home", "path": "/"}, {"name": "login", "path": "/login"}]},
}


def settings(kind: str, **changes: Any) -> KindSettings:
    return KINDS[kind].settings_model.model_validate({**SAMPLES[kind], **changes})


def names(kind: str, **changes: Any) -> MetricNames:
    return KINDS[kind].metric_names(settings(kind, **changes))


def test_every_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_defaults_or_a_reason_for_completed_alone(kind: str) -> None:
    defaults = KINDS[kind].default_conditions(settings(kind))
    assert defaults or KINDS[kind].completed_means, f"{kind}: no default and no reason"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_default_conditions_parse_and_name_produced_metrics(kind: str) -> None:
    declared = names(kind)
    for default in KINDS[kind].default_conditions(settings(kind)):
        cond = ConditionSpec.model_validate({"check": "c", **default})
        if cond.metric is not None:
            assert declared.produces(cond.metric), (kind, cond.metric)
        else:
            assert declared.findings, (kind, "findings default on a kind without findings")


def test_the_issues_defaults() -> None:
    def of(kind: str) -> list[tuple[str | None, str | None, float | None]]:
        return [
            (d.get("metric"), d.get("findings"), d.get("max"))
            for d in KINDS[kind].default_conditions(settings(kind))
        ]

    assert of("pytest") == [("failed", None, 0), ("errors", None, 0)]
    assert of("bandit") == [(None, "high", 0)]
    assert of("pip-audit") == [(None, "any", 0), ("advisory_age_days", None, 30)]
    assert of("http") == [("error_rate", None, 0.01)]
    assert ("failure_ratio", None, 0.01) in of("load")
    assert of("network") == [("api.failures", None, 0)]
    assert of("frontend") == [("page_failed_requests", None, 0)]
    assert of("command") == of("database") == []


def produced(kind: str, assets: Path, tmp_path: Path) -> set[str]:
    """The names the kind's own code produces for the sample settings."""
    if kind == "pytest":
        summary = parse_junit(assets / "pytest" / "junit-mixed.xml")
        return {m.name for m in summary_metrics(summary)} | {"coverage_pct"}
    if kind == "bandit":
        data = json.loads((assets / "bandit" / "bandit-findings.json").read_text("utf-8"))
        return {m.name for m in bandit_metrics(parse_bandit_report(data, tmp_path))}
    if kind == "pip-audit":
        data = json.loads((assets / "pip_audit" / "report-vulnerable.json").read_text("utf-8"))
        return {m.name for m in audit_metrics(parse_report(data))}
    if kind == "http":
        run = ProbeRun(wall_s=1.0)
        for endpoint in ("index", "api"):
            run.samples.append(Sample(endpoint, True, 5.0, 200, True, connect_ms=1.0))
            run.samples.append(Sample(endpoint, False, 2.0, 200, True, ttfb_ms=1.0))
        return {m.name for m in probe_metrics(run, ["index", "api"])}
    if kind == "command":
        return {"exit_code", "rows_migrated"}  # what its JSON line said
    if kind == "load":
        record = parse_run_record(json.loads((assets / "locust" / "run_ok.json").read_text()))
        rows = parse_stats(json.loads((assets / "locust" / "stats_ok.json").read_text()))
        run = ToolRun(("locust",), 0, "", "", 1.0)
        load = LoadSettings(duration_s=4, warmup_s=1)
        return {m.name for m in interpret(record, rows, load, run)}
    if kind == "database":
        runs = [StatementRun("one", samples_ms=[1.0, 2.0], plan=["SCAN t"], full_scans=["t"])]
        return {m.name for m in statement_metrics(runs)}
    if kind == "network":
        timing = Timing("api", False, 1.0, 1.0, 1.0, 1.0, status=200)
        return {m.name for m in network_metrics([timing], ["api"])}
    if kind == "secrets":
        listing = FileList(("a.py",), "git-tracked files", True)
        history = HistoryScan("HEAD~3..HEAD", ("abc",))
        return {m.name for m in scan_metrics(listing, ScanOutput((), {}, {}), Triage(), history)}
    if kind == "licenses":
        return {m.name for m in licence_metrics([])}
    if kind == "a11y":
        from neuroerp_ci.checks import a11y
        from neuroerp_ci.checks._browser import PageTimings

        timings = [PageTimings(1, 2, 3, 0.1, 4, 5)]
        pages = [a11y.PageRun(name, "/", 200, timings) for name in ("home", "login")]
        results = {"violations": [], "passes": [{"id": "x", "nodes": [{}]}], "incomplete": []}
        for page in pages:
            page.axe = a11y.parse_axe_results(page.name, results)
        return {m.name for m in [*a11y.audit_metrics(pages, 0), *a11y.timing_metrics(pages)]}
    assert kind == "frontend"
    chunks = [Chunk("app.js", "app.1a2b3c4d.js", 10, 5, 4), Chunk("main.css", "main.css", 9, 4, 3)]
    page = PageLoad(False, 200, 1.0, 2.0, assets=2, transfer_bytes=100)
    return {m.name for m in [*size_metrics(chunks, "br"), *page_metrics([page])]}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_declared_names_cover_what_the_kind_produces(
    kind: str, assets: Path, tmp_path: Path
) -> None:
    declared = names(kind)
    missing = sorted(n for n in produced(kind, assets, tmp_path) if not declared.produces(n))
    assert missing == [], f"{kind} produces metrics it does not declare: {missing}"


@pytest.mark.parametrize(
    ("kind", "changes", "metric", "needs"),
    [
        ("pytest", {"cov": []}, "coverage_pct", "settings.cov"),
        ("command", {"metrics_json": False}, "rows", "metrics_json = true"),
        ("database", {"explain": False}, "one.full_scans", "explain = true"),
        ("frontend", {"page_timings": False}, "page_load_ms", "page_timings = true"),
        ("frontend", {"compression": "zstd"}, "app.js.br_bytes", 'compression = "brotli"'),
    ],
)
def test_a_name_these_settings_cannot_produce_says_which_setting_would(
    kind: str, changes: dict[str, Any], metric: str, needs: str
) -> None:
    declared = names(kind, **changes)
    assert not declared.produces(metric)
    assert needs in declared.problem(metric, "c", kind)
    assert names(kind).produces(metric)  # the sample settings do produce it


@pytest.mark.parametrize(
    ("kind", "metric", "closest"),
    [
        ("pytest", "faild", "failed"),
        ("http", "p95", "p95_ms"),
        ("http", "index.p95", "index.p95_ms"),
        ("http", "indx.p95_ms", "index.p95_ms"),
        ("load", "get_api.p95", "get_api.p95_ms"),
        ("network", "api.connect", "api.connect_ms"),
        ("database", "one.p95", "one.p95_ms"),
        ("frontend", "app.js.gzip", "app.js.gzip_bytes"),
        ("bandit", "findings_hihg", "findings_high"),
        ("pip-audit", "vulnerabilitys", "vulnerabilities"),
    ],
)
def test_an_unknown_name_gets_the_closest_one(kind: str, metric: str, closest: str) -> None:
    declared = names(kind)
    assert not declared.produces(metric)
    problem = declared.problem(metric, "c", kind)
    assert f"did you mean {closest!r}?" in problem and "\n" not in problem


def test_derived_names_follow_the_settings() -> None:
    http = names("http")
    assert http.produces("index.p95_ms") and http.produces("api.error_rate")
    assert not http.produces("other.p95_ms")  # no such endpoint
    assert names("network").produces("api.ttfb_ms")
    assert names("network", hosts=[]).produces("target.failures")  # the target's base_url
    assert names("load").produces("get_api_articles_id.p95_ms")  # known at run time
    assert not names("load").produces("GET /api.p95_ms")
    assert names("frontend").produces("vendor.chunk.js.raw_bytes")
    assert not names("frontend").produces("app.raw_bytes")  # a chunk ends in .js or .css
    assert names("command").produces("anything_it_prints")
