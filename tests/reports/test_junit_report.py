from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from neuroerp_ci.model import StageReport, Summary
from neuroerp_ci.reports.junit import render_junit

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "reports"


def _suite(report: StageReport) -> ET.Element:
    root = ET.fromstring(render_junit(report))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def test_declares_utf8_and_parses(any_report: StageReport) -> None:
    text = render_junit(any_report)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    ET.fromstring(text.encode("utf-8"))  # parsing bytes honours the declaration


def test_one_testcase_per_outcome_with_counts(fail_report: StageReport) -> None:
    suite = _suite(fail_report)
    cases = suite.findall("testcase")
    assert suite.get("name") == "neuroerp-ci.development"
    assert len(cases) == len(fail_report.outcomes) == 6
    assert suite.attrib | {"timestamp": ""} == {
        "name": "neuroerp-ci.development",
        "tests": "6",
        "failures": "2",
        "errors": "0",
        "skipped": "1",
        "time": "132.250",
        "timestamp": "",
    }
    assert [c.find("failure") is not None for c in cases].count(True) == 2
    assert [c.find("skipped") is not None for c in cases].count(True) == 1
    root = ET.fromstring(render_junit(fail_report))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("6", "2", "1")


def test_testcase_names_and_times(fail_report: StageReport) -> None:
    cases = _suite(fail_report).findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases[:3]] == [
        ("neuroerp-ci.development.unit-tests", "completed", "12.345"),
        ("neuroerp-ci.development.api-latency", "p95_ms <= 300", "4.500"),
        ("neuroerp-ci.development.api-latency", "throughput_rps >= 100", "4.500"),
    ]


def test_fail_becomes_failure_with_reason_and_details(fail_report: StageReport) -> None:
    case = _suite(fail_report).findall("testcase")[3]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "bandit: 8 findings high+ > 0 (B601 | B604)"
    assert failure.get("type") == "blocking"
    assert "condition: findings(high+) <= 0" in (failure.text or "")
    assert "value: 8" in (failure.text or "")


def test_errored_check_fails_with_clean_text(fail_report: StageReport) -> None:
    case = _suite(fail_report).findall("testcase")[4]
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert message.startswith("dependency-audit error: pip-audit exited 1: ERROR skipped 3")
    assert "\x1b" not in render_junit(fail_report)
    assert "check error: pip-audit exited 1" in (failure.text or "")


def test_warn_is_not_a_failure(warn_report: StageReport) -> None:
    suite = _suite(warn_report)
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "0")
    warned = suite.findall("testcase")[0]
    assert warned.find("failure") is None
    assert warned.findtext("system-out") == "WARNING: api-latency: p95_ms 412.8 > 400"
    properties = {p.get("name"): p.get("value") for p in warned.iter("property")}
    assert properties == {
        "severity": "warning",
        "status": "warn",
        "value": "412.8",
        "target": "<= 400",
        "baseline": "380",
    }


def test_info_on_skipped_check_is_skipped(fail_report: StageReport) -> None:
    case = _suite(fail_report).findall("testcase")[5]
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "e2e skipped: dependency dependency-audit did not complete"


def test_info_on_a_check_that_ran_is_reported_not_skipped(fail_report: StageReport) -> None:
    e2e = replace(fail_report.checks[4], status=fail_report.checks[0].status)
    report = replace(fail_report, checks=[*fail_report.checks[:4], e2e])
    case = _suite(report).findall("testcase")[5]
    assert case.find("skipped") is None
    assert (case.findtext("system-out") or "").startswith("INFO: e2e skipped")


def test_suite_properties_and_summary(fail_report: StageReport) -> None:
    suite = _suite(fail_report)
    properties = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert properties["verdict"] == "FAIL"
    assert properties["run_id"] == "20261128T104501Z-3f9a2c"
    assert suite.findtext("system-out") == "development: FAIL — sample"


def test_hostile_text_round_trips_through_xml(pass_report: StageReport) -> None:
    nasty = 'a "quote" & <tag> ]]> \x00 nul\nline two'
    outcome = replace(pass_report.outcomes[0], condition=nasty, reason=nasty)
    summary = Summary(pass_report.stage, pass_report.verdict, (nasty,))
    report = replace(pass_report, outcomes=[outcome], summary=summary)
    case = _suite(report).find("testcase")
    assert case is not None
    assert case.get("name") == 'a "quote" & <tag> ]]> \ufffd nul\nline two'
    assert case.findtext("system-out") == 'PASS: a "quote" & <tag> ]]> \ufffd nul\nline two'


def test_empty_report_is_valid(pass_report: StageReport) -> None:
    suite = _suite(replace(pass_report, checks=[], outcomes=[]))
    assert suite.get("tests") == "0"
    assert suite.findall("testcase") == []


def test_fail_report_matches_golden_file(fail_report: StageReport) -> None:
    text = render_junit(fail_report)
    path = GOLDEN / "fail" / "junit.xml"
    if os.environ.get("NEUROERP_CI_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_baseline_comparison_in_properties_and_details(baseline_report: StageReport) -> None:
    cases = _suite(baseline_report).findall("testcase")
    relative = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert relative["baseline"] == "255" and relative["change_pct"] == "61.9"
    assert relative["baseline_runs"] == "r5, r4, r3, r2, r1"
    assert "p_value" not in relative
    regression = {p.get("name"): p.get("value") for p in cases[1].iter("property")}
    assert regression["p_value"] == "0.0003"
    assert (regression["effect_pct"], regression["effect_ci_pct"]) == ("18.2", "12.1 .. 24.9")
    failure = cases[1].find("failure")
    assert failure is not None and "effect_ci_pct: 12.1 .. 24.9" in (failure.text or "")


def test_inconclusive_shows_as_what_it_counts_as(inconclusive_report: StageReport) -> None:
    suite = _suite(inconclusive_report)
    spike, weak, _, confirmed = suite.findall("testcase")
    assert suite.get("failures") == "1"  # only the one that counts as a fail
    # Counted as a warning: passes, and says it was inconclusive.
    assert spike.find("failure") is None
    assert spike.findtext("system-out") == (
        "WARNING: inconclusive: api-latency: p95_ms 412.8 > 300; not confirmed: re-measured"
        " p95_ms 212 within <= 300"
    )
    properties = {p.get("name"): p.get("value") for p in spike.iter("property")}
    assert properties["status"] == "inconclusive" and properties["counts_as"] == "warn"
    assert properties["confirmations"] == "p95_ms 212 within <= 300"
    # Counted as a fail: a failure, its details saying why.
    failure = weak.find("failure")
    assert failure is not None and failure.get("type") == "blocking"
    assert "status: inconclusive (counts as fail)" in (failure.text or "")
    assert "mde_pct: 38" in (failure.text or "") and "needed_n: 120" in (failure.text or "")
    weak_properties = {p.get("name"): p.get("value") for p in weak.iter("property")}
    assert (weak_properties["counts_as"], weak_properties["needed_n"]) == ("fail", "120")
    # A confirmed warning stays a warning, with its re-measurement.
    assert (confirmed.findtext("system-out") or "").startswith("WARNING: api-latency:")
    assert {p.get("name"): p.get("value") for p in confirmed.iter("property")}[
        "confirmations"
    ] == "throughput_rps 90.1 < 100"
