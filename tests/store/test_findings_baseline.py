"""The findings baseline the store gives ``new = true`` limits: which run, what it kept."""

from __future__ import annotations

from dataclasses import replace

from neuroerp_ci.model import Finding, FindingSeverity, Outcome, OutcomeStatus, Severity, Verdict
from neuroerp_ci.store import HistoryStore

from .conftest import at, make_report, record

SHELL = Finding("bandit", "B602", FindingSeverity.HIGH, "shell=True", "app/run.py:12")
PICKLE = Finding("bandit", "B301", FindingSeverity.MEDIUM, "pickle", "app/io.py:7")
TEMP = Finding("bandit", "B108", FindingSeverity.MEDIUM, "tmp", "app/tmp.py:3")


def test_the_store_keeps_fingerprints_and_waived_findings_for_the_next_run(
    store: HistoryStore,
) -> None:
    first = make_report("r1", started=at(0))
    scan_result = first.checks[1]
    scan_result.findings = [replace(SHELL, fingerprint="code-hash")]
    scan_result.waived = [PICKLE]
    scan_result.suppressed = [TEMP]  # hidden in the source: not a finding of the baseline
    record(store, first)
    record(store, make_report("r0", started=at(-10)))  # older
    provider = store.baseline_provider("staging", "erp", exclude_run_id="r3")
    before = provider.findings("scan")
    assert before is not None and before.run_id == "r1"
    assert [(f.rule, f.identity) for f in before.findings] == [
        ("B602", "code-hash"), ("B301", PICKLE.identity)
    ]  # fmt: skip
    assert provider.findings("api") is not None  # completed, with no findings
    assert store.baseline_provider("other", "erp").findings("scan") is None


def test_a_run_that_failed_for_other_reasons_is_the_baseline_one_that_flagged_new_is_not(
    store: HistoryStore,
) -> None:
    def run(run_id: str, minutes: float, new_status: OutcomeStatus, **keys: object) -> None:
        report = make_report(run_id, started=at(minutes), verdict=Verdict.FAIL)
        report.checks[1].findings = [SHELL]
        report.outcomes.append(
            Outcome(
                "scan", "new_findings(any) <= 0", new_status, Severity.BLOCKING, 0.0, "<= 0",
                "scan: new findings", **keys,  # type: ignore[arg-type]
            )
        )  # fmt: skip
        record(store, report)

    run("first", 0, OutcomeStatus.WARN, no_baseline=True)  # failed, old debt: a baseline
    provider = store.baseline_provider("staging", "erp")
    assert provider.findings("scan") is not None
    assert provider.findings("scan").run_id == "first"  # type: ignore[union-attr]
    run("flagged", 10, OutcomeStatus.FAIL)  # it brought a new finding: never the baseline
    assert store.baseline_provider("staging", "erp").findings("scan").run_id == "first"  # type: ignore[union-attr]
    run("clean", 20, OutcomeStatus.PASS)
    assert store.baseline_provider("staging", "erp").findings("scan").run_id == "clean"  # type: ignore[union-attr]
