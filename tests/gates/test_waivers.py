"""Waivers: what they cover, what an expired, expiring or unused one concludes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from neuroerp_ci.gates.conditions import ConditionSpec, evaluate
from neuroerp_ci.gates.waivers import WAIVERS_CHECK, WaiverSpec, apply_waivers, too_far_ahead
from neuroerp_ci.model import (
    CheckResult,
    CheckStatus,
    Component,
    Finding,
    FindingSeverity,
    OutcomeStatus,
)
from tests.gates.baseline_fakes import make_check

TODAY = date(2026, 12, 2)

SHELL = Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "app/run.py:12")
LEGACY = Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "legacy/old.py:3")
IDNA = Finding(
    "pip-audit", "PYSEC-2024-60", FindingSeverity.HIGH, "idna DoS", "idna==3.6",
    aliases=("CVE-2024-3651",),
)  # fmt: skip


def waiver(**keys: object) -> WaiverSpec:
    base: dict[str, object] = {
        "rule": "B602", "reason": "argv is fixed", "owner": "qa", "expires": TODAY + timedelta(30)
    }  # fmt: skip
    return WaiverSpec.model_validate({**base, **keys})


def result(*findings: Finding, check: str = "sast") -> CheckResult:
    return CheckResult(check, "bandit", CheckStatus.OK, findings=list(findings))


def test_a_valid_waiver_moves_its_finding_to_waived_and_passes() -> None:
    sast = result(SHELL, LEGACY)
    outcomes = apply_waivers({"sast": sast}, [waiver(path="legacy/*")], ["sast"], TODAY)
    assert [f.location for f in sast.findings] == ["app/run.py:12"]
    assert [f.location for f in sast.waived] == ["legacy/old.py:3"]
    assert sast.waived[0].waiver is not None and sast.waived[0].waiver.reason == "argv is fixed"
    [outcome] = outcomes
    assert outcome.check == WAIVERS_CHECK and outcome.status is OutcomeStatus.PASS
    assert "waives 1 finding until 2027-01-01 (owner qa)" in outcome.reason


def test_an_expired_waiver_lets_its_finding_count_and_the_limit_names_it() -> None:
    sast = result(SHELL)
    [outcome] = apply_waivers(
        {"sast": sast}, [waiver(expires=TODAY - timedelta(1))], ["sast"], TODAY
    )
    assert sast.waived == [] and sast.findings[0].waiver is not None
    assert sast.findings[0].waiver.expired
    assert outcome.status is OutcomeStatus.WARN
    assert outcome.reason == (
        "waiver B602 expired on 2026-12-01 (owner qa): its 1 finding count again"
    )
    cond = ConditionSpec.model_validate({"check": "sast", "findings": "high", "max": 0})
    limit = evaluate(cond, make_check("sast"), sast)
    assert limit.status is OutcomeStatus.FAIL
    assert "(waiver B602 expired 2026-12-01)" in limit.reason


def test_a_waiver_ending_within_seven_days_warns() -> None:
    sast = result(SHELL)
    [outcome] = apply_waivers(
        {"sast": sast}, [waiver(expires=TODAY + timedelta(3))], ["sast"], TODAY
    )
    assert sast.findings == [] and len(sast.waived) == 1
    assert outcome.status is OutcomeStatus.WARN
    assert outcome.reason.startswith("waiver B602 expires in 3 days (2026-12-05, owner qa)")


def test_an_unused_waiver_is_reported_without_changing_the_verdict() -> None:
    sast = result(SHELL)
    [outcome] = apply_waivers({"sast": sast}, [waiver(rule="B101")], ["sast"], TODAY)
    assert sast.findings == [SHELL]
    assert outcome.status is OutcomeStatus.INFO and "matched no finding" in outcome.reason
    assert outcome.weight is OutcomeStatus.INFO


def test_package_version_range_and_aliases() -> None:
    audit = result(IDNA, check="deps")
    in_range = waiver(id="idna-dos", rule="CVE-2024-3651", package="IDNA", versions="<3.7")
    apply_waivers({"deps": audit}, [in_range], ["deps"], TODAY)
    assert [f.rule for f in audit.waived] == ["PYSEC-2024-60"]  # matched through its alias
    fixed = result(IDNA, check="deps")
    apply_waivers({"deps": fixed}, [waiver(rule="PYSEC-2024-60", package="idna",
                                           versions=">=3.7")], ["deps"], TODAY)  # fmt: skip
    assert fixed.waived == [] and len(fixed.findings) == 1
    other = result(IDNA, check="deps")
    apply_waivers(
        {"deps": other}, [waiver(rule="PYSEC-2024-60", package="requests")], ["deps"], TODAY
    )
    assert other.waived == []


def test_an_errored_check_is_left_alone() -> None:
    broken = CheckResult("sast", "bandit", CheckStatus.ERROR, reason="bandit crashed")
    # nothing completed that it could have matched: no news about the waiver either
    assert apply_waivers({"sast": broken}, [waiver()], ["sast"], TODAY) == []


def test_a_waiver_is_reported_unused_only_where_it_could_have_matched() -> None:
    idna = waiver(id="idna-dos", rule="PYSEC-2024-60", package="idna")
    tests = CheckResult("unit", "pytest", CheckStatus.OK)
    # a stage with no scanner: neither waiver says anything
    assert apply_waivers({"unit": tests}, [idna, waiver()], [], TODAY) == []
    # a scanner that did not examine idna: only the rule waiver is unused
    sast = result(check="sast")
    found = apply_waivers({"sast": sast}, [idna, waiver()], ["sast"], TODAY)
    assert [o.condition for o in found] == ["waiver B602 valid"]
    deps = CheckResult("deps", "pip-audit", CheckStatus.OK)
    deps.components = [Component("IDNA", "3.7")]
    found = apply_waivers({"deps": deps}, [idna], ["deps"], TODAY)
    assert [o.reason for o in found] == [
        "waiver idna-dos (owner qa) matched no finding in this run: unused"
    ]


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"expires": None}, "expires"),
        ({"reason": "  "}, "must not be blank"),
        ({"owner": ""}, "owner"),
        ({"versions": "<3.7"}, "'versions' needs 'package'"),
        ({"package": "idna", "versions": "three"}, "not a PEP 440 version range"),
        ({"package": "idna", "path": "app/*"}, "a package or a path, not both"),
        ({"note": "x"}, "note"),
    ],
)
def test_bad_waivers_are_refused(keys: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        waiver(**keys)


def test_no_waiver_for_ever() -> None:
    assert too_far_ahead(waiver(expires=TODAY + timedelta(90)), 90, TODAY) is None
    assert too_far_ahead(waiver(expires=TODAY + timedelta(91)), 90, TODAY) == (
        "expires 2027-03-03, 91 days ahead: at most max_waiver_days = 90"
    )
