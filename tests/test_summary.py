"""The verdict summary: data built once, one line rendered from it (``model.Summary``).

The gate's summary comes from :func:`neuroerp_ci.gates.summarize`; the rollout and the
promotion refusal build their own; every format renders it with :func:`summary_line`.
"""

from __future__ import annotations

from dataclasses import replace

from neuroerp_ci.gates import summarize
from neuroerp_ci.model import (
    NO_SUMMARY,
    Outcome,
    OutcomeStatus,
    Severity,
    Summary,
    Verdict,
    summary_detail,
    summary_line,
)


def outcome(status: OutcomeStatus, reason: str) -> Outcome:
    return Outcome("c", "x <= 1", status, Severity.BLOCKING, 2.0, "<= 1", reason)


def test_a_gate_summary_keeps_every_reason_and_shows_three() -> None:
    failed = [outcome(OutcomeStatus.FAIL, f"r{i}") for i in range(5)]
    passed = outcome(OutcomeStatus.PASS, "fine")
    summary = summarize("development", Verdict.FAIL, [*failed, failed[0], passed])
    assert summary.reasons == ("r0", "r1", "r2", "r3", "r4")  # distinct, in order
    assert (summary.evaluated, summary.deciding) == (7, 6)
    assert summary_line(summary) == (
        "development: FAIL — 6 of 7 conditions failed: r0; r1; r2; and 2 more"
    )


def test_the_gate_forms_render_as_before() -> None:
    passed = outcome(OutcomeStatus.PASS, "fine")
    warned = outcome(OutcomeStatus.WARN, "slow")
    assert summary_line(summarize("dev", Verdict.PASS, [passed])) == (
        "dev: PASS — 1 of 1 conditions met"
    )
    assert summary_line(summarize("dev", Verdict.WARN, [passed, warned])) == (
        "dev: WARN — 1 of 2 conditions warned: slow"
    )
    assert summary_line(summarize("dev", Verdict.PASS, [])) == (
        "dev: FAIL — no condition was evaluated"
    )


def test_reasons_without_counts_are_joined_and_no_reason_is_the_verdict_alone() -> None:
    rollout = Summary("production", Verdict.FAIL, ("deploy hook failed", "rolled back (ok)"))
    assert summary_line(rollout) == "production: FAIL — deploy hook failed; rolled back (ok)"
    assert summary_detail(rollout) == "deploy hook failed; rolled back (ok)"
    assert summary_line(Summary("staging", Verdict.PASS)) == "staging: PASS"


def test_a_run_the_store_refused_says_so_first_and_keeps_its_verdict() -> None:
    gate = summarize("dev", Verdict.PASS, [outcome(OutcomeStatus.PASS, "fine")])
    unrecorded = replace(gate, unrecorded="store down")
    assert summary_line(unrecorded) == (
        "dev: NOT RECORDED — store down; unrecorded verdict: dev: PASS — 1 of 1 conditions met"
    )
    # What a rollout quotes of it: the same words that follow the dash, without parsing.
    assert summary_detail(unrecorded) == (
        "store down; unrecorded verdict: dev: PASS — 1 of 1 conditions met"
    )


def test_a_summary_read_back_is_its_written_line_and_equals_the_one_written() -> None:
    built = Summary("dev", Verdict.FAIL, ("refused: no pass",))
    read = Summary("dev", Verdict.FAIL, written=summary_line(built))
    assert summary_line(read) == "dev: FAIL — refused: no pass"
    assert read == built and hash(read) == hash(built)
    assert read != Summary("dev", Verdict.FAIL, ("refused: other",))
    assert summary_line(NO_SUMMARY) == ""
