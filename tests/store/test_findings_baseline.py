"""The findings baseline the store gives ``new = true`` limits: which run, what it kept."""

from __future__ import annotations

from dataclasses import replace

from neuroerp_ci.model import Finding, FindingSeverity, Verdict
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
    record(store, make_report("r2", started=at(10), verdict=Verdict.FAIL))  # never a baseline
    provider = store.baseline_provider("staging", "erp", exclude_run_id="r3")
    before = provider.findings("scan")
    assert before is not None and before.run_id == "r1"
    assert [(f.rule, f.identity) for f in before.findings] == [
        ("B602", "code-hash"), ("B301", PICKLE.identity)
    ]  # fmt: skip
    assert provider.findings("api") is not None  # completed, with no findings
    assert store.baseline_provider("other", "erp").findings("scan") is None
