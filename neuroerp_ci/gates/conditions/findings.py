"""The findings limit: ``{ findings = "high", max = 0 }`` counts the check's findings of that
severity or above (``"any"``: all of them) and allows at most ``max``. What a kind leaves
out on purpose (pip-audit's ``ignore``) is never a finding here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from neuroerp_ci.gates.conditions.interface import ConditionForm, Evidence, FormParams
from neuroerp_ci.gates.conditions.judgement import Judgement
from neuroerp_ci.model import Finding, FindingSeverity


class FindingsParams(FormParams):
    """A limit on the number of findings at or above a severity."""

    # the lowest severity counted ("unknown" counts as high), or "any": every finding
    findings: FindingSeverity | Literal["any"]
    max: int  # the most findings allowed: a whole number >= 0

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
    usage = "a findings limit takes 'max' (a count) and nothing else"

    def describe(self, params: FindingsParams, metric: str | None) -> tuple[str, str]:
        level = "any" if params.findings == "any" else f"{params.findings}+"
        target = f"<= {params.max}"
        return f"findings({level}) {target}", target

    def judge(self, params: FindingsParams, evidence: Evidence) -> Judgement:
        counted = counted_findings(evidence.result.findings, params.findings)
        count, limit = len(counted), params.max
        level = "" if params.findings == "any" else f" of severity {params.findings} or above"
        check_id = evidence.check_id
        if count > limit:
            named = "; ".join(f"{f.rule} {f.severity.value} at {f.location}" for f in counted[:3])
            more = f" and {count - 3} more" if count > 3 else ""
            reason = f"{check_id}: {count} findings{level} > {limit}: {named}{more}"
            return Judgement("breached", float(count), f"<= {limit}", reason)
        reason = f"{check_id}: {count} findings{level} (limit {limit})"
        return Judgement("met", float(count), f"<= {limit}", reason)


def counted_findings(findings: list[Finding], level: FindingSeverity | str) -> list[Finding]:
    """The findings at or above ``level`` (all of them for ``"any"``)."""
    if level == "any":
        return list(findings)
    floor = FindingSeverity(level).rank
    return [f for f in findings if f.severity.rank >= floor]
