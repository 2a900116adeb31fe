"""New findings against the baseline run: states, absent findings, the new_findings metrics and
``new = true`` limits (the store's side: tests/store/test_findings_baseline.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from neuroerp_ci.gates.conditions import ConditionSpec, evaluate
from neuroerp_ci.gates.new_findings import mark_baseline_states
from neuroerp_ci.gates.waivers import WaiverSpec, apply_waivers
from neuroerp_ci.model import (
    BaselineState,
    CheckResult,
    CheckStatus,
    Finding,
    FindingsBaseline,
    FindingSeverity,
    OutcomeStatus,
)
from tests.gates.baseline_fakes import make_check

SHELL = Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "app/run.py:12")
PICKLE = Finding("bandit", "B301", FindingSeverity.MEDIUM, "pickle", "app/io.py:7")
TEMP = Finding("bandit", "B108", FindingSeverity.MEDIUM, "tmp", "app/tmp.py:3")
NEW_HIGH = Finding("bandit", "B605", FindingSeverity.HIGH, "os.system", "app/new.py:1")


class OneRun:
    """The baseline run of every check: ``run_id`` with ``found``."""

    def __init__(self, run_id: str, *found: Finding) -> None:
        self.before = FindingsBaseline(run_id, found)

    def baseline(self, check: str, metric: str) -> None:
        return None

    def findings(self, check: str) -> FindingsBaseline | None:
        return self.before


def scan(*found: Finding) -> CheckResult:
    return CheckResult("sast", "bandit", CheckStatus.OK, findings=list(found))


def states(result: CheckResult) -> dict[str, BaselineState | None]:
    return {f.rule: f.baseline_state for f in result.findings}


def test_states_against_the_baseline_run() -> None:
    moved = replace(PICKLE, location="app/io.py:9")  # lines added above it
    result = scan(SHELL, moved, NEW_HIGH)
    compared = mark_baseline_states({"sast": result}, ["sast"], OneRun("r1", SHELL, PICKLE, TEMP))
    assert compared == {"sast": "r1"}
    assert states(result) == {
        "B602": BaselineState.UNCHANGED, "B301": BaselineState.UPDATED, "B605": BaselineState.NEW
    }  # fmt: skip
    assert [(f.rule, f.baseline_state) for f in result.absent] == [("B108", BaselineState.ABSENT)]
    assert result.metrics["new_findings"].value == 1
    assert result.metrics["new_findings_high"].value == 1
    assert result.metrics["new_findings_medium"].value == 0


def test_a_second_copy_of_a_known_finding_is_new() -> None:
    again = replace(SHELL, location="app/run.py:40", fingerprint="other-line")
    twin = replace(SHELL, location="app/run.py:40")  # same derived identity as SHELL
    result = scan(SHELL, twin, again)
    mark_baseline_states({"sast": result}, ["sast"], OneRun("r1", SHELL))
    assert [f.baseline_state for f in result.findings] == [
        BaselineState.UNCHANGED, BaselineState.NEW, BaselineState.NEW
    ]  # fmt: skip


def test_new_true_counts_only_what_this_version_introduced() -> None:
    result = scan(SHELL, NEW_HIGH)
    mark_baseline_states({"sast": result}, ["sast"], OneRun("r1", SHELL))
    check = make_check("sast")
    new_only = ConditionSpec.model_validate(
        {"check": "sast", "findings": "high", "new": True, "max": 0}
    )
    every = ConditionSpec.model_validate({"check": "sast", "findings": "high", "max": 0})
    outcome = evaluate(new_only, check, result)
    assert outcome.status is OutcomeStatus.FAIL and outcome.value == 1
    assert outcome.condition == "new_findings(high+) <= 0"
    assert "B605 high at app/new.py:1" in outcome.reason and "B602" not in outcome.reason
    assert evaluate(every, check, result).value == 2  # old findings stay visible and counted
    fixed = scan(SHELL)
    mark_baseline_states({"sast": fixed}, ["sast"], OneRun("r1", SHELL))
    assert evaluate(new_only, check, fixed).status is OutcomeStatus.PASS


def test_without_a_baseline_run_new_cannot_be_told_from_old() -> None:
    result = scan(SHELL)
    assert mark_baseline_states({"sast": result}, ["sast"], OneRun("r1")) == {"sast": "r1"}
    first = scan(SHELL)

    class Nothing(OneRun):
        def findings(self, check: str) -> FindingsBaseline | None:
            return None

    assert mark_baseline_states({"sast": first}, ["sast"], Nothing("-")) == {}
    assert first.findings[0].baseline_state is None
    assert first.metrics["new_findings"].value == 1
    new_only = ConditionSpec.model_validate(
        {"check": "sast", "findings": "any", "new": True, "max": 0}
    )
    outcome = evaluate(new_only, make_check("sast"), first)
    # like every baseline condition: on_no_baseline (warn), and its run may become the baseline
    assert outcome.status is OutcomeStatus.WARN and outcome.no_baseline
    assert "no baseline run yet to tell new findings from old: 1 findings in all" in outcome.reason
    strict = ConditionSpec.model_validate(
        {"check": "sast", "findings": "any", "new": True, "max": 0, "on_no_baseline": "fail"}
    )
    assert evaluate(strict, make_check("sast"), first).status is OutcomeStatus.FAIL
    none_at_all = scan()
    mark_baseline_states({"sast": none_at_all}, ["sast"], Nothing("-"))
    assert evaluate(new_only, make_check("sast"), none_at_all).status is OutcomeStatus.PASS


def test_waived_findings_are_compared_too_and_never_counted() -> None:
    result = scan(SHELL)
    expires = date.today() + timedelta(days=30)
    apply_waivers(
        {"sast": result},
        [WaiverSpec(rule="B602", reason="fixed argv", owner="qa", expires=expires)],
        ["sast"],
    )
    mark_baseline_states({"sast": result}, ["sast"], OneRun("r1"))
    assert result.findings == [] and result.waived[0].baseline_state is BaselineState.NEW
    assert result.metrics["new_findings"].value == 0
