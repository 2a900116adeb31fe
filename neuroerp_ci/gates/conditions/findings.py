"""The findings limit: ``{ findings = "high", max = 0 }`` counts the check's findings of that
severity or above (``"any"``: all of them) and allows at most ``max``. What a waiver covers
(gates/waivers.py) or the source suppresses (``# nosec``) is never counted here; a finding
whose waiver expired is, and the reason names the waiver.

``new = true`` counts only the findings this version introduced: those the stage's baseline
run did not have (gates/new_findings.py), so a team stops new debt while old findings stay
visible. Without a baseline run (the first run) it cannot tell new from old: within the limit
in all passes, beyond it resolves by the condition's ``on_no_baseline`` (``warn`` by default),
so the first run can become the baseline that later runs compare with.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from neuroerp_ci.gates.conditions.interface import ConditionForm, Evidence, FormParams
from neuroerp_ci.gates.conditions.judgement import Judgement
from neuroerp_ci.model import NEW_FINDINGS, BaselineState, Finding, FindingSeverity


class FindingsParams(FormParams):
    """A limit on the number of findings at or above a severity."""

    # the lowest severity counted ("unknown" counts as high), or "any": every finding
    findings: FindingSeverity | Literal["any"]
    max: int  # the most findings allowed: a whole number >= 0
    # count only the findings the stage's baseline run did not have ("clean as you code")
    new: bool = False

    @field_validator("max", mode="before")
    @classmethod
    def _a_count(cls, value: Any) -> Any:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and (value < 0 or value != int(value)):
            raise ValueError(f"findings 'max' must be a whole number >= 0, got {value}")
        return value


class FindingsLimit(ConditionForm[FindingsParams]):
    """At most ``max`` findings of severity ``findings`` or above; the reason names the first
    three."""

    name = "findings"
    keys = ("findings",)
    params_model = FindingsParams
    subject = "findings"
    usage = "a findings limit takes 'max' (a count), optionally 'new' (true/false)"

    def compares_with_baseline(self, params: FindingsParams) -> bool:
        return params.new  # with the baseline run's findings

    def describe(self, params: FindingsParams, metric: str | None) -> tuple[str, str]:
        level = "any" if params.findings == "any" else f"{params.findings}+"
        target = f"<= {params.max}"
        what = NEW_FINDINGS if params.new else "findings"
        return f"{what}({level}) {target}", target

    def judge(self, params: FindingsParams, evidence: Evidence) -> Judgement:
        result = evidence.result
        counted = counted_findings(result.findings, params.findings)
        unknown = False
        if params.new:
            if any(f.baseline_state is not None for f in [*result.findings, *result.waived]):
                counted = [f for f in counted if f.baseline_state is BaselineState.NEW]
            else:  # no baseline run: within the limit in all is within it for new ones too
                unknown = True
        count, limit = len(counted), params.max
        level = "" if params.findings == "any" else f" of severity {params.findings} or above"
        what = "new findings" if params.new else "findings"
        check_id = evidence.check_id
        waived = f"; {len(result.waived)} waived" if result.waived else ""
        if count > limit:
            named = "; ".join(_named(f) for f in counted[:3])
            more = f" and {count - 3} more" if count > 3 else ""
            if unknown:
                reason = (
                    f"{check_id}: no baseline run yet to tell new findings from old: {count} "
                    f"findings{level} in all > {limit}: {named}{more}"
                )
                return Judgement("no_baseline", float(count), f"<= {limit}", reason + waived)
            reason = f"{check_id}: {count} {what}{level} > {limit}: {named}{more}"
            return Judgement("breached", float(count), f"<= {limit}", reason + waived)
        reason = f"{check_id}: {count} {what}{level} (limit {limit}){waived}"
        return Judgement("met", float(count), f"<= {limit}", reason)


def _named(finding: Finding) -> str:
    text = f"{finding.rule} {finding.severity.value} at {finding.location}"
    if finding.path is None:  # a package: what is wrong with it is not in the rule's name
        message = " ".join(finding.message.split())
        text += f" ({message[:77]}...)" if len(message) > 80 else f" ({message})"
    if finding.waiver is not None and finding.waiver.expired:
        text += f" (waiver {finding.waiver.id} expired {finding.waiver.expires})"
    return text


def counted_findings(findings: list[Finding], level: FindingSeverity | str) -> list[Finding]:
    """The findings at or above ``level`` (all of them for ``"any"``)."""
    if level == "any":
        return list(findings)
    floor = FindingSeverity(level).rank
    return [f for f in findings if f.severity.rank >= floor]
