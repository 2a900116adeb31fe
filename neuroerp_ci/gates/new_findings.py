"""New findings against the stage's baseline run ("clean as you code").

:func:`mark_baseline_states` gives every finding of a run (counted and waived) its
``baseline_state`` against the findings of the same check in the baseline run
(:meth:`~neuroerp_ci.gates.baselines.BaselineProvider.findings`), matched by fingerprint:
``unchanged`` where it sits as it did, ``updated`` where the same finding moved or changed
(another line, version or severity), ``new`` where the baseline run had none left to match;
the baseline's unmatched findings become the check's ``absent`` list. Matching is one to one,
so a second copy of a known finding is new. It also adds the ``new_findings`` metrics (all,
and per severity), which a ``{ findings = "high", new = true, max = 0 }`` condition limits
through the findings form.

Without a baseline run (a first run, no history store) no finding has a state, and a
``new = true`` limit counts every finding: fail closed, and the reason says why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace

from neuroerp_ci.gates.baselines import BaselineProvider
from neuroerp_ci.model import (
    NEW_FINDINGS,
    BaselineState,
    CheckResult,
    CheckStatus,
    Finding,
    FindingSeverity,
    Metric,
)


def mark_baseline_states(
    results: Mapping[str, CheckResult], finding_checks: Iterable[str], baselines: BaselineProvider
) -> dict[str, str]:
    """Mark the findings of every completed check in ``finding_checks`` (the checks whose
    kind reports findings) against its baseline run, in place, and add its ``new_findings``
    metrics; return check id -> the baseline run compared with."""
    compared: dict[str, str] = {}
    for check_id in finding_checks:
        result = results.get(check_id)
        if result is None or result.status is not CheckStatus.OK:
            continue
        before = baselines.findings(check_id)
        if before is None:
            _add_metrics(result, known=False)
            continue
        compared[check_id] = before.run_id
        pool: dict[str, list[Finding]] = defaultdict(list)
        for old in before.findings:
            pool[old.identity].append(old)
        result.findings = [_marked(f, pool) for f in result.findings]
        result.waived = [_marked(f, pool) for f in result.waived]
        result.absent = [
            replace(old, baseline_state=BaselineState.ABSENT)
            for left in pool.values()
            for old in left
        ]
        _add_metrics(result)
    return compared


def _marked(finding: Finding, pool: dict[str, list[Finding]]) -> Finding:
    candidates = pool.get(finding.identity)
    if not candidates:
        return replace(finding, baseline_state=BaselineState.NEW)
    # The same place first: of two copies of a finding, the one that did not move is unchanged.
    index = next((i for i, old in enumerate(candidates) if old.location == finding.location), 0)
    old = candidates.pop(index)
    same = old.location == finding.location and old.severity is finding.severity
    state = BaselineState.UNCHANGED if same else BaselineState.UPDATED
    return replace(finding, baseline_state=state)


def _add_metrics(result: CheckResult, known: bool = True) -> None:
    """``new_findings`` (and per severity) of the counted findings; without a baseline run
    every finding is new."""
    new = [f for f in result.findings if not known or f.baseline_state is BaselineState.NEW]
    result.add_metric(Metric(NEW_FINDINGS, float(len(new)), "count"))
    for severity in FindingSeverity:
        count = sum(1 for f in new if f.severity is severity)
        result.add_metric(Metric(f"{NEW_FINDINGS}_{severity.value}", float(count), "count"))
