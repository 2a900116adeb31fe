from __future__ import annotations

import json
import math
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from neuroerp_ci.model import CheckResult, CheckStatus, Metric, StageReport
from neuroerp_ci.reports.json_report import (
    SCHEMA_VERSION,
    render_json,
    render_samples,
    report_from_dict,
    report_to_dict,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DOC = REPO / "docs" / "report-schema.md"
GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "reports"

TOP_LEVEL = [
    "schema_version", "run_id", "stage", "version", "target", "verdict", "summary",
    "recorded", "record_error", "tested", "started_at", "finished_at", "duration_s", "counts",
    "files", "checks", "outcomes",
]


def _golden(name: str, text: str) -> str:
    """The stored golden text; NEUROERP_CI_UPDATE_GOLDEN=1 rewrites it from ``text``."""
    path = GOLDEN / name
    if os.environ.get("NEUROERP_CI_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def test_top_level_keys_in_documented_order(any_report: StageReport) -> None:
    data = json.loads(render_json(any_report))
    assert list(data) == TOP_LEVEL
    assert data["schema_version"] == SCHEMA_VERSION == 2


def test_fail_report_matches_golden_file(fail_report: StageReport) -> None:
    assert render_json(fail_report) == _golden("fail/report.json", render_json(fail_report))
    assert render_samples(fail_report) == _golden("fail/samples.json", render_samples(fail_report))


def test_enums_are_strings_and_numbers_are_numbers(fail_report: StageReport) -> None:
    data = json.loads(render_json(fail_report))
    assert data["verdict"] == "FAIL"
    assert data["duration_s"] == 132.25
    latency = next(c for c in data["checks"] if c["id"] == "api-latency")
    assert latency["metrics"]["p95_ms"] == {
        "value": 412.75, "unit": "ms", "direction": "lower", "samples_count": 3,
    }
    audit = next(c for c in data["checks"] if c["id"] == "dependency-audit")
    assert audit["status"] == "error"
    assert audit["findings"][0] == {
        "tool": "pip-audit",
        "rule": "PYSEC-2021-108",
        "severity": "unknown",
        "confidence": None,
        "location": "jinja2==2.11.2",
        "message": "Jinja2 sandbox escape",
        "fix_versions": ["2.11.3"],
        "aliases": ["CVE-2020-28493"],
        "fingerprint": audit["findings"][0]["fingerprint"],
        "help_url": "",
        "baseline_state": None,
        "waiver": None,
    }
    assert len(audit["findings"][0]["fingerprint"]) == 16
    assert data["outcomes"][3] == {
        "check": "bandit",
        "condition": "findings(high+) <= 0",
        "status": "fail",
        "severity": "blocking",
        "value": 8.0,
        "target": "<= 0",
        "baseline": None,
        "change_pct": None,
        "p_value": None,
        "effect": None,
        "effect_ci": None,
        "baseline_runs": [],
        "metric": None,
        "no_baseline": False,
        "breached": False,
        "counts_as": None,
        "mde_pct": None,
        "needed_n": None,
        "confirmations": [],
        "calibration": None,
        "reason": "bandit: 8 findings high+ > 0 (B601 | B604)",
    }


def test_counts(fail_report: StageReport) -> None:
    counts = json.loads(render_json(fail_report))["counts"]
    assert counts == {
        "outcomes": {"pass": 2, "fail": 2, "warn": 1, "info": 1, "inconclusive": 0},
        "checks": {"ok": 3, "error": 1, "skipped": 1},
        "findings": {"critical": 0, "high": 8, "medium": 8, "low": 9, "unknown": 1},
        "new_findings": 0,
        "waived": 0,
    }


def test_samples_live_in_samples_json_only(fail_report: StageReport) -> None:
    text = render_json(fail_report)
    assert "401.5" not in text  # a raw sample of p95_ms
    samples = json.loads(render_samples(fail_report))
    assert samples == {"api-latency": {"p95_ms": [380.0, 401.5, 412.75], "throughput_rps": [88.4]}}


def test_metrics_artifacts_and_tool_versions_are_sorted(pass_report: StageReport) -> None:
    check = json.loads(render_json(pass_report))["checks"][0]
    assert list(check["metrics"]) == ["coverage", "failed", "tests"]
    assert list(check["artifacts"]) == ["coverage", "junit"]
    assert list(check) == [
        "id", "kind", "status", "reason", "duration_s", "metrics", "findings", "suppressed",
        "waived", "absent", "components", "artifacts", "tool_versions", "noise", "cache_key",
        "cached_from",
    ]


def test_rendering_is_deterministic_and_indented(any_report: StageReport) -> None:
    text = render_json(any_report)
    assert text == render_json(any_report)
    assert text.endswith("}\n")
    assert text.splitlines()[1] == '  "schema_version": 2,'
    assert "—" in text  # unicode kept readable, not \u2014


def test_round_trip_with_samples(any_report: StageReport) -> None:
    data = json.loads(render_json(any_report))
    samples = json.loads(render_samples(any_report))
    assert report_from_dict(data, samples) == any_report


def test_round_trip_without_samples_drops_only_the_samples(warn_report: StageReport) -> None:
    restored = report_from_dict(json.loads(render_json(warn_report)))
    latency = restored.checks[0]
    assert latency.metrics["p95_ms"].samples == ()
    assert latency.metrics["p95_ms"].value == 412.75
    assert restored.outcomes == warn_report.outcomes


def test_non_finite_numbers_become_null_and_read_back_as_nan(pass_report: StageReport) -> None:
    broken = CheckResult(
        "probe", "http_probe", CheckStatus.OK,
        metrics={"p95_ms": Metric("p95_ms", math.nan, "ms", samples=(1.0, math.inf))},
    )
    report = replace(pass_report, checks=[broken], duration_s=math.inf)
    text = render_json(report)
    json.loads(text, parse_constant=_reject)  # strict JSON: no NaN/Infinity literals
    data = json.loads(text)
    assert data["checks"][0]["metrics"]["p95_ms"]["value"] is None
    assert data["duration_s"] is None
    assert json.loads(render_samples(report)) == {"probe": {"p95_ms": [1.0, None]}}
    restored = report_from_dict(data, json.loads(render_samples(report)))
    assert math.isnan(restored.checks[0].metrics["p95_ms"].value)
    assert math.isnan(restored.checks[0].metrics["p95_ms"].samples[1])


def _reject(literal: str) -> Any:
    raise AssertionError(f"non-standard JSON literal {literal}")


def test_other_schema_version_is_refused(pass_report: StageReport) -> None:
    data = report_to_dict(pass_report)
    data["schema_version"] = 3
    with pytest.raises(ValueError, match="schema_version 3 is not 1 or 2"):
        report_from_dict(data)


def test_missing_key_is_named(pass_report: StageReport) -> None:
    data = report_to_dict(pass_report)
    del data["checks"][0]["kind"]
    with pytest.raises(ValueError, match="missing key 'kind'"):
        report_from_dict(data)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="expected an object, got list"):
        report_from_dict([])  # type: ignore[arg-type]


def test_bad_enum_value_is_refused(pass_report: StageReport) -> None:
    data = report_to_dict(pass_report)
    data["verdict"] = "MAYBE"
    with pytest.raises(ValueError, match="MAYBE"):
        report_from_dict(data)


def _documented_keys() -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", SCHEMA_DOC.read_text(encoding="utf-8")))


def _keys(value: object, skip_children_of: frozenset[str]) -> set[str]:
    """Every key of a JSON document, except inside maps keyed by data (metric names...)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            found.add(key)
            if key not in skip_children_of:
                found |= _keys(child, skip_children_of)
            elif key == "metrics":
                for metric in child.values():
                    found |= _keys(metric, skip_children_of)
    elif isinstance(value, list):
        for item in value:
            found |= _keys(item, skip_children_of)
    return found


def test_schema_doc_names_every_key(fail_report: StageReport) -> None:
    data = json.loads(render_json(fail_report))
    documented = _documented_keys()
    assert set(data) <= documented
    data_keyed = frozenset({"metrics", "artifacts", "tool_versions"})
    missing = _keys(data, data_keyed) - documented
    assert not missing, f"docs/report-schema.md does not mention {sorted(missing)}"


def test_baseline_comparison_fields(baseline_report: StageReport) -> None:
    outcomes = json.loads(render_json(baseline_report))["outcomes"]
    relative, regression = outcomes
    assert (relative["baseline"], relative["change_pct"], relative["p_value"]) == (
        255.0, 61.86, None,
    )
    assert relative["baseline_runs"] == ["r5", "r4", "r3", "r2", "r1"]
    assert regression["p_value"] == 0.0003 and regression["effect"] == 18.2
    assert regression["effect_ci"] == [12.1, 24.9]
    assert list(regression)[-1] == "reason"  # new keys come before the reason
    restored = report_from_dict(json.loads(render_json(baseline_report)))
    assert restored.outcomes == baseline_report.outcomes


def test_effect_ci_must_be_a_pair(baseline_report: StageReport) -> None:
    data = json.loads(render_json(baseline_report))
    data["outcomes"][1]["effect_ci"] = [1.0]
    with pytest.raises(ValueError, match="effect_ci"):
        report_from_dict(data)


def test_reports_without_the_new_keys_still_read(warn_report: StageReport) -> None:
    data = json.loads(render_json(warn_report))
    for outcome in data["outcomes"]:
        for key in ("change_pct", "p_value", "effect", "effect_ci", "baseline_runs"):
            del outcome[key]
    assert report_from_dict(data).outcomes == warn_report.outcomes


def test_inconclusive_outcomes_round_trip_with_every_new_field(
    inconclusive_report: StageReport,
) -> None:
    data = json.loads(render_json(inconclusive_report))
    spike, weak, _, confirmed = data["outcomes"]
    shown = ("status", "metric", "breached", "counts_as", "confirmations")
    assert {k: spike[k] for k in shown} == {
        "status": "inconclusive",
        "metric": "p95_ms",
        "breached": True,
        "counts_as": "warn",
        "confirmations": [
            {"attempt": 1, "value": 212.0, "breached": False, "reason": "p95_ms 212 within <= 300"}
        ],
    }
    assert (weak["counts_as"], weak["mde_pct"], weak["needed_n"]) == ("fail", 38.0, 120)
    assert weak["calibration"]["text"].startswith("false alarms 1.8 %, detects +10 % in 61 %")
    assert confirmed["status"] == "warn" and confirmed["confirmations"][0]["breached"] is True
    assert list(spike)[-1] == "reason"  # new keys come before the reason
    assert data["counts"]["outcomes"]["inconclusive"] == 2
    # Every field comes back, through JSON text and all.
    restored = report_from_dict(json.loads(render_json(inconclusive_report)))
    assert restored.outcomes == inconclusive_report.outcomes
    assert [o.weight.value for o in restored.outcomes] == ["warn", "fail", "pass", "warn"]


def test_a_schema_version_1_report_still_reads(warn_report: StageReport) -> None:
    """Version 1 had no INCONCLUSIVE and none of the outcome keys version 2 added."""
    data = json.loads(render_json(warn_report))
    data["schema_version"] = 1
    for outcome in data["outcomes"]:
        for key in (
            "metric", "no_baseline", "breached", "counts_as", "mde_pct", "needed_n",
            "confirmations", "calibration",
        ):
            del outcome[key]
    restored = report_from_dict(data)
    assert restored.outcomes == warn_report.outcomes
    assert restored.schema_version == SCHEMA_VERSION  # written again, it is version 2
