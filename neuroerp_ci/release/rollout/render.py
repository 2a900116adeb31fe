"""``rollout.json`` and ``rollout.md``: a :class:`RolloutReport` as text (pure: no I/O).

They stay beside the model rather than in :mod:`neuroerp_ci.reports`: those renderers sit
below the release layer and cannot import the rollout's record.
"""

from __future__ import annotations

import json

from neuroerp_ci.model import summary_line
from neuroerp_ci.release.rollout.report import RolloutReport


def render_rollout_json(report: RolloutReport) -> str:
    """The text of ``rollout.json``."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_rollout_markdown(report: RolloutReport) -> str:
    """A short Markdown account: verdict, approval, one row per step."""
    lines = [f"# {report.stage} rollout of {report.version}: {report.verdict.value}", ""]
    lines += [summary_line(report.summary), ""]
    if report.lock is not None:
        released = f"; {report.lock.released}" if report.lock.released else ""
        lines += [f"Lock: {report.lock.reason}{released}", ""]
    if report.approval is not None:
        a = report.approval
        answer = "timed out" if a.timed_out else ("approved" if a.approved else "rejected")
        lines += [f"Approval: **{answer}** by {a.approver or '—'} at {a.at}: {a.comment or '—'}"]
        lines.append("")
    lines += ["| step | status | attempts | duration | reason |", "|---|---|---|---|---|"]
    for s in report.steps:
        reason = s.reason.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {s.step} | {s.status.value} | {s.attempts or '—'} | {s.duration_s:.2f} s "
            f"| {reason} |"
        )
    lines += ["", f"Rollback: {report.rollback}", ""]
    return "\n".join(lines)
