"""``junit.xml``: the stage's outcomes as test cases, for CI systems that read JUnit.

One ``<testsuite name="neuroerp-ci.<stage>">`` holds one ``<testcase>`` per outcome (the gate
adds a ``completed`` outcome for every check without conditions, so an errored check always
shows up). The mapping:

- ``fail``: a ``<failure message="reason">`` with the details;
- any other status on a skipped check: ``<skipped message="reason">``;
- ``warn``: passes, its ``<system-out>`` says ``WARNING: reason``;
- ``inconclusive`` (the data could not decide): as what it counts as in the verdict, its
  condition's ``on_inconclusive``: a ``<failure>`` when it counts as a fail, else passes with
  ``WARNING: inconclusive: reason``;
- ``info``: passes, its ``<system-out>`` says ``INFO: reason``;
- ``pass``: passes, its ``<system-out>`` says ``PASS: reason``.

``errors`` is always 0: a check that could not run fails its outcomes instead, and its reason
says so. Every test case's ``time`` is the duration of the check it belongs to.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Outcome,
    OutcomeStatus,
    StageReport,
    summary_line,
)
from neuroerp_ci.reports.markdown import status_text
from neuroerp_ci.support.formatting import format_number, format_value, plain_text

SUITE_PREFIX = "neuroerp-ci"

# Characters XML 1.0 cannot carry at all (NUL, lone surrogates, U+FFFE, ...).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_STATUS_PREFIX = {
    OutcomeStatus.WARN: "WARNING",
    OutcomeStatus.INFO: "INFO",
    OutcomeStatus.PASS: "PASS",
    OutcomeStatus.FAIL: "FAIL",
}


def render_junit(report: StageReport) -> str:
    """The full text of ``junit.xml``."""
    checks = {result.check_id: result for result in report.checks}
    suite_name = f"{SUITE_PREFIX}.{report.stage}"
    cases = [_testcase(suite_name, outcome, checks) for outcome in report.outcomes]
    failures = sum(case.find("failure") is not None for case in cases)
    skipped = sum(case.find("skipped") is not None for case in cases)
    counts = {
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": _seconds(report.duration_s),
    }
    root = ET.Element("testsuites", {"name": SUITE_PREFIX, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {"name": _clean(suite_name), **counts, "timestamp": _clean(report.started_at)},
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", report.run_id),
        ("stage", report.stage),
        ("version", report.version),
        ("target", report.target),
        ("verdict", report.verdict.value),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = _clean(summary_line(report.summary))
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _testcase(suite_name: str, outcome: Outcome, checks: Mapping[str, CheckResult]) -> ET.Element:
    result = checks.get(outcome.check)
    case = ET.Element(
        "testcase",
        {
            "classname": _clean(f"{suite_name}.{outcome.check}"),
            "name": _clean(outcome.condition),
            "time": _seconds(result.duration_s if result else 0.0),
        },
    )
    properties = ET.SubElement(case, "properties")
    for name, value in (
        ("severity", outcome.severity.value),
        ("status", outcome.status.value),
        *_inconclusive_properties(outcome),
        ("value", format_value(outcome.value)),
        ("target", outcome.target),
        ("baseline", format_value(outcome.baseline)),
        *_baseline_properties(outcome),
        *_calibration_property(outcome),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    reason = _clean(outcome.reason)
    # An INCONCLUSIVE outcome shows as what it counts as in the verdict (its weight).
    if outcome.weight is OutcomeStatus.FAIL:
        attributes = {"message": reason, "type": outcome.severity.value}
        failure = ET.SubElement(case, "failure", attributes)
        failure.text = _details(outcome, result)
    elif result is not None and result.status is CheckStatus.SKIPPED:
        ET.SubElement(case, "skipped", {"message": reason})
    else:
        said = "inconclusive: " if outcome.status is OutcomeStatus.INCONCLUSIVE else ""
        prefix = _STATUS_PREFIX[outcome.weight]
        ET.SubElement(case, "system-out").text = f"{prefix}: {said}{reason}"
    return case


def _details(outcome: Outcome, result: CheckResult | None) -> str:
    lines = [
        outcome.reason,
        f"condition: {outcome.condition}",
        f"value: {format_value(outcome.value)}",
        f"target: {outcome.target}",
        f"baseline: {format_value(outcome.baseline)}",
        *(f"{name}: {value}" for name, value in _baseline_properties(outcome)),
        f"severity: {outcome.severity.value}",
        *(
            [f"status: {status_text(outcome)}"]
            if outcome.status is OutcomeStatus.INCONCLUSIVE
            else []
        ),
        *(
            f"{name}: {value}"
            for name, value in _inconclusive_properties(outcome)
            if name != "counts_as"  # the status line says it
        ),
        *(f"{name}: {value}" for name, value in _calibration_property(outcome)),
    ]
    if result is not None and result.status is not CheckStatus.OK:
        lines.append(f"check {result.status.value}: {result.reason}")
    return _clean("\n".join(lines))


def _baseline_properties(outcome: Outcome) -> list[tuple[str, str]]:
    """The comparison with the baseline, for outcomes that have one (else nothing)."""
    shown: list[tuple[str, str]] = []
    if outcome.change_pct is not None:
        shown.append(("change_pct", format_number(outcome.change_pct)))
    if outcome.p_value is not None:
        shown.append(("p_value", f"{outcome.p_value:.3g}"))
    if outcome.effect is not None:
        shown.append(("effect_pct", format_number(outcome.effect)))
    if outcome.effect_ci is not None:
        low, high = outcome.effect_ci
        shown.append(("effect_ci_pct", f"{format_number(low)} .. {format_number(high)}"))
    if outcome.baseline_runs:
        shown.append(("baseline_runs", ", ".join(outcome.baseline_runs)))
    return shown


def _inconclusive_properties(outcome: Outcome) -> list[tuple[str, str]]:
    """What an outcome says about its own certainty, when it says anything: what an
    INCONCLUSIVE counts as, the smallest effect its test detects, the samples that would
    decide, and the re-measurements of a breach (``confirm``)."""
    shown: list[tuple[str, str]] = []
    if outcome.status is OutcomeStatus.INCONCLUSIVE:
        shown.append(("counts_as", outcome.weight.value))
    if outcome.mde_pct is not None:
        shown.append(("mde_pct", format_number(outcome.mde_pct)))
    if outcome.needed_n is not None:
        shown.append(("needed_n", str(outcome.needed_n)))
    if outcome.confirmations:
        shown.append(("confirmations", "; ".join(c.reason for c in outcome.confirmations)))
    return shown


def _calibration_property(outcome: Outcome) -> list[tuple[str, str]]:
    """The condition's measured error rates (``neuroerp-ci calibrate``), when stored."""
    if outcome.calibration is None:
        return []
    return [("calibration", outcome.calibration.text())]


def _seconds(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "0.000"


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", plain_text(text))
